//! The datagram format: one frame per datagram, a fixed header, a kind-specific body, an
//! optional MAC and a CRC-32 trailer. [`decode_frame`] is a pure function of the bytes and
//! the options; the stateful checks (replay window, sender address) are the transport's.
//!
//! Layout (all integers little-endian; `N` is the body length):
//!
//! | offset   | size | field                                                   |
//! |----------|------|---------------------------------------------------------|
//! | 0        | 4    | magic `RAFU`                                            |
//! | 4        | 1    | frame version ([`FRAME_VERSION`])                       |
//! | 5        | 1    | kind ([`Kind`])                                         |
//! | 6        | 1    | flags: bit 0 = a MAC follows the body; others zero      |
//! | 7        | 1    | reserved, zero                                          |
//! | 8        | 8    | cluster id                                              |
//! | 16       | 8    | sender node id (never 0)                                |
//! | 24       | 8    | sender session                                          |
//! | 32       | 8    | datagram counter within the session                     |
//! | 40       | 4    | body length `N`                                         |
//! | 44       | N    | body                                                    |
//! | 44+N     | 16   | MAC, only with flag bit 0: keyed BLAKE3 of bytes 0..44+N |
//! | end − 4  | 4    | CRC-32 (IEEE) of every byte before it                   |

use crate::UdpOptions;
use raft_core::NodeId;

/// The first four bytes of every frame.
pub const MAGIC: [u8; 4] = *b"RAFU";
/// The version of this frame layout (byte 4). A frame of another version is refused with
/// [`FrameError::WrongVersion`]; the core's own `WIRE_VERSION` is checked separately
/// inside message bodies.
pub const FRAME_VERSION: u8 = 1;
/// Bytes of the fixed header, before the body.
pub const HEADER_LEN: usize = 44;
/// Bytes of the MAC (a truncated keyed BLAKE3 hash), present with a key.
pub const MAC_LEN: usize = 16;
/// Bytes of the CRC-32 trailer.
pub const CRC_LEN: usize = 4;
/// The most bytes a frame adds around its body (header, MAC and CRC).
pub const MAX_OVERHEAD: usize = HEADER_LEN + MAC_LEN + CRC_LEN;
/// Bytes a snapshot chunk body spends before its data (transfer id, offset, flags).
pub const CHUNK_PREFIX: usize = 17;

const FLAG_MAC: u8 = 1;

/// What a frame carries.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// A Raft message in the core's encoding (`Message::encode`).
    Message = 1,
    /// Opens a snapshot transfer: the transfer id, then `SnapshotHeader::encode()`.
    SnapshotStart = 2,
    /// Bytes of a snapshot at an offset; the flag marks the end of the stream.
    SnapshotChunk = 3,
    /// The receiver holds every byte before `offset` (cumulative).
    SnapshotAck = 4,
    /// The receiver's final answer: staged durably, or why not.
    SnapshotDone = 5,
    /// The sender gave up on the transfer.
    SnapshotAbort = 6,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Message,
            2 => Kind::SnapshotStart,
            3 => Kind::SnapshotChunk,
            4 => Kind::SnapshotAck,
            5 => Kind::SnapshotDone,
            6 => Kind::SnapshotAbort,
            _ => return None,
        })
    }
}

/// The decoded body of a frame; byte fields borrow from the datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body<'a> {
    /// An encoded `raft_core::Message`, not decoded yet (the transport decodes it sharing
    /// the datagram's buffer).
    Message(&'a [u8]),
    /// Opens transfer `transfer` with an encoded `SnapshotHeader`.
    SnapshotStart {
        /// Chosen by the sender, unique per sender session.
        transfer: u64,
        /// `SnapshotHeader::encode()`.
        header: &'a [u8],
    },
    /// `data` belongs at `offset` of the stream; `last` ends the stream at `offset + data.len()`.
    SnapshotChunk {
        /// The transfer.
        transfer: u64,
        /// Where `data` starts in the stream.
        offset: u64,
        /// Whether the stream ends after `data`.
        last: bool,
        /// The bytes (empty only with `last`).
        data: &'a [u8],
    },
    /// The receiver has every byte before `offset`; `complete` once it also saw the end.
    SnapshotAck {
        /// The transfer.
        transfer: u64,
        /// Bytes received in order.
        offset: u64,
        /// Whether the end of the stream was received.
        complete: bool,
    },
    /// The transfer's outcome on the receiver.
    SnapshotDone {
        /// The transfer.
        transfer: u64,
        /// Whether the snapshot was staged durably.
        ok: bool,
        /// Why not (UTF-8, empty on success).
        reason: &'a str,
    },
    /// The sender abandoned the transfer.
    SnapshotAbort {
        /// The transfer.
        transfer: u64,
    },
}

impl Body<'_> {
    /// The kind byte of this body.
    pub fn kind(&self) -> Kind {
        match self {
            Body::Message(_) => Kind::Message,
            Body::SnapshotStart { .. } => Kind::SnapshotStart,
            Body::SnapshotChunk { .. } => Kind::SnapshotChunk,
            Body::SnapshotAck { .. } => Kind::SnapshotAck,
            Body::SnapshotDone { .. } => Kind::SnapshotDone,
            Body::SnapshotAbort { .. } => Kind::SnapshotAbort,
        }
    }
}

/// A frame that passed every stateless check: magic, version, size, checksum, cluster,
/// MAC (with a key) and body structure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The node that claims to have sent it (never 0).
    pub sender: NodeId,
    /// The sender's session (grows with each start of the sender).
    pub session: u64,
    /// The datagram's number within the session (from 1).
    pub counter: u64,
    /// Whether a MAC was present and verified.
    pub authenticated: bool,
    /// What it carries.
    pub body: Body<'a>,
}

/// Why a datagram was dropped. Each reason has a counter in [`crate::UdpMetrics`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Shorter than its header or its declared length: cut off in transit or not ours.
    #[error("truncated datagram ({len} bytes)")]
    Truncated {
        /// Bytes received.
        len: usize,
    },
    /// Does not start with the magic: not a frame of this protocol.
    #[error("not a raft-udp frame (bad magic)")]
    BadMagic,
    /// A frame layout this node does not speak (or a message of another core wire version).
    #[error("frame version {found} (this node speaks {FRAME_VERSION})")]
    WrongVersion {
        /// The version byte received.
        found: u8,
    },
    /// Larger than `UdpOptions::max_datagram`.
    #[error("datagram of {len} bytes exceeds the limit of {max}")]
    Oversized {
        /// Bytes received.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The CRC does not match: corrupted in transit.
    #[error("checksum mismatch")]
    BadChecksum,
    /// From another cluster (check `UdpOptions::cluster_id` on both sides).
    #[error("frame of cluster {found}, this node is in cluster {expected}")]
    WrongCluster {
        /// The cluster id received.
        found: u64,
        /// Ours.
        expected: u64,
    },
    /// The MAC is missing, wrong, or present when this node has no key: forged or sent
    /// with another key (both sides need the same `UdpOptions::key`).
    #[error("unauthenticated datagram (missing or wrong MAC, or a key mismatch)")]
    Unauthenticated,
    /// Authenticated, but its (session, counter) was seen before or is too old.
    #[error("replayed or stale datagram")]
    Replayed,
    /// An unknown kind byte.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// The header or body does not have the structure a correct sender produces.
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
}

/// Reads little-endian integers from a body, failing with `Malformed` at its end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        if self.0.len() < n {
            return Err(FrameError::Malformed("body too short"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u64(&mut self) -> Result<u64, FrameError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().map_err(|_| FrameError::Malformed("body too short"))?))
    }
    fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.take(1)?[0])
    }
    fn rest(self) -> &'a [u8] {
        self.0
    }
    fn end(self) -> Result<(), FrameError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Malformed("trailing bytes in body"))
        }
    }
}

fn le_u64(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

fn mac(key: &[u8; 32], covered: &[u8]) -> [u8; MAC_LEN] {
    let full = blake3::keyed_hash(key, covered);
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&full.as_bytes()[..MAC_LEN]);
    out
}

/// Compares two MACs in constant time (no early exit on the first differing byte).
fn mac_eq(a: &[u8], b: &[u8; MAC_LEN]) -> bool {
    a.len() == MAC_LEN && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks one datagram against `options` (size, magic, version, checksum, cluster id, MAC
/// when `options.key` is set) and parses its body. Never panics, whatever the bytes; the
/// replay window and the sender's address are checked by the transport, which has the
/// state for them.
pub fn decode_frame<'a>(bytes: &'a [u8], options: &UdpOptions) -> Result<Frame<'a>, FrameError> {
    let len = bytes.len();
    if len < MAGIC.len() {
        return Err(FrameError::Truncated { len });
    }
    if bytes[..4] != MAGIC {
        return Err(FrameError::BadMagic);
    }
    if len > options.max_datagram {
        return Err(FrameError::Oversized { len, max: options.max_datagram });
    }
    if len < 5 {
        return Err(FrameError::Truncated { len });
    }
    if bytes[4] != FRAME_VERSION {
        return Err(FrameError::WrongVersion { found: bytes[4] });
    }
    if len < HEADER_LEN + CRC_LEN {
        return Err(FrameError::Truncated { len });
    }
    let flags = bytes[6];
    let has_mac = flags & FLAG_MAC != 0;
    let body_len = u32::from_le_bytes([bytes[40], bytes[41], bytes[42], bytes[43]]) as usize;
    let expected = HEADER_LEN + body_len + if has_mac { MAC_LEN } else { 0 } + CRC_LEN;
    if len < expected {
        return Err(FrameError::Truncated { len });
    }
    if len > expected {
        return Err(FrameError::Malformed("bytes after the checksum"));
    }
    let (covered, crc) = bytes.split_at(len - CRC_LEN);
    if crc32fast::hash(covered).to_le_bytes() != crc {
        return Err(FrameError::BadChecksum);
    }
    if flags & !FLAG_MAC != 0 || bytes[7] != 0 {
        return Err(FrameError::Malformed("unknown flags"));
    }
    let cluster = le_u64(bytes, 8);
    if cluster != options.cluster_id {
        return Err(FrameError::WrongCluster { found: cluster, expected: options.cluster_id });
    }
    let body_end = HEADER_LEN + body_len;
    match (&options.key, has_mac) {
        (Some(key), true) => {
            if !mac_eq(&covered[body_end..], &mac(key, &covered[..body_end])) {
                return Err(FrameError::Unauthenticated);
            }
        }
        (None, false) => {}
        _ => return Err(FrameError::Unauthenticated),
    }
    let sender = le_u64(bytes, 16);
    if sender == 0 {
        return Err(FrameError::Malformed("sender id 0"));
    }
    let session = le_u64(bytes, 24);
    let counter = le_u64(bytes, 32);
    let kind = Kind::from_byte(bytes[5]).ok_or(FrameError::UnknownKind(bytes[5]))?;
    let body = parse_body(kind, &bytes[HEADER_LEN..body_end])?;
    Ok(Frame { sender, session, counter, authenticated: has_mac, body })
}

fn parse_body(kind: Kind, bytes: &[u8]) -> Result<Body<'_>, FrameError> {
    let mut r = Reader(bytes);
    let body = match kind {
        Kind::Message => {
            if bytes.is_empty() {
                return Err(FrameError::Malformed("empty message"));
            }
            return Ok(Body::Message(bytes));
        }
        Kind::SnapshotStart => {
            let transfer = r.u64()?;
            let header = r.rest();
            if header.is_empty() {
                return Err(FrameError::Malformed("snapshot start without a header"));
            }
            return Ok(Body::SnapshotStart { transfer, header });
        }
        Kind::SnapshotChunk => {
            let transfer = r.u64()?;
            let offset = r.u64()?;
            let last = match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(FrameError::Malformed("chunk flag")),
            };
            let data = r.rest();
            if data.is_empty() && !last {
                return Err(FrameError::Malformed("empty chunk that does not end the stream"));
            }
            if offset.checked_add(data.len() as u64).is_none_or(|end| end > i64::MAX as u64) {
                return Err(FrameError::Malformed("chunk offset out of range"));
            }
            return Ok(Body::SnapshotChunk { transfer, offset, last, data });
        }
        Kind::SnapshotAck => {
            let transfer = r.u64()?;
            let offset = r.u64()?;
            let complete = match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(FrameError::Malformed("ack flag")),
            };
            Body::SnapshotAck { transfer, offset, complete }
        }
        Kind::SnapshotDone => {
            let transfer = r.u64()?;
            let ok = match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(FrameError::Malformed("done flag")),
            };
            let reason = std::str::from_utf8(r.rest()).map_err(|_| FrameError::Malformed("reason is not UTF-8"))?;
            return Ok(Body::SnapshotDone { transfer, ok, reason });
        }
        Kind::SnapshotAbort => Body::SnapshotAbort { transfer: r.u64()? },
    };
    r.end()?;
    Ok(body)
}

/// The fields of a frame being encoded, besides its body.
#[derive(Copy, Clone, Debug)]
pub struct Envelope<'k> {
    /// `UdpOptions::cluster_id`.
    pub cluster_id: u64,
    /// `UdpOptions::key`: with a key, a MAC is appended.
    pub key: Option<&'k [u8; 32]>,
    /// This node.
    pub sender: NodeId,
    /// This transport's session.
    pub session: u64,
    /// The datagram's number within the session.
    pub counter: u64,
}

/// Appends a frame carrying `body` to `out` (cleared first). The inverse of
/// [`decode_frame`] for options with the same cluster id and key.
pub fn encode_frame(env: &Envelope<'_>, body: &Body<'_>, out: &mut Vec<u8>) {
    start_frame(env, body.kind(), out);
    match body {
        Body::Message(m) => out.extend_from_slice(m),
        Body::SnapshotStart { transfer, header } => {
            out.extend_from_slice(&transfer.to_le_bytes());
            out.extend_from_slice(header);
        }
        Body::SnapshotChunk { transfer, offset, last, data } => {
            out.extend_from_slice(&transfer.to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            out.push(u8::from(*last));
            out.extend_from_slice(data);
        }
        Body::SnapshotAck { transfer, offset, complete } => {
            out.extend_from_slice(&transfer.to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            out.push(u8::from(*complete));
        }
        Body::SnapshotDone { transfer, ok, reason } => {
            out.extend_from_slice(&transfer.to_le_bytes());
            out.push(u8::from(*ok));
            out.extend_from_slice(reason.as_bytes());
        }
        Body::SnapshotAbort { transfer } => out.extend_from_slice(&transfer.to_le_bytes()),
    }
    finish_frame(env, out);
}

/// Appends a frame carrying `msg` to `out` (cleared first), encoding the message in place.
pub fn encode_message_frame(env: &Envelope<'_>, msg: &raft_core::Message, out: &mut Vec<u8>) {
    start_frame(env, Kind::Message, out);
    msg.encode_into(out);
    finish_frame(env, out);
}

/// A frame of raw `kind` byte and `body` bytes, sealed with a correct length, MAC and CRC:
/// lets the fuzzer reach the body parsers behind the checksum.
pub(crate) fn seal_raw(env: &Envelope<'_>, kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    start_frame(env, Kind::Message, &mut out);
    out[5] = kind;
    out.extend_from_slice(body);
    finish_frame(env, &mut out);
    out
}

/// Clears `out` and writes the header with a zero body length.
fn start_frame(env: &Envelope<'_>, kind: Kind, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&MAGIC);
    out.push(FRAME_VERSION);
    out.push(kind as u8);
    out.push(if env.key.is_some() { FLAG_MAC } else { 0 });
    out.push(0);
    out.extend_from_slice(&env.cluster_id.to_le_bytes());
    out.extend_from_slice(&env.sender.to_le_bytes());
    out.extend_from_slice(&env.session.to_le_bytes());
    out.extend_from_slice(&env.counter.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
}

/// Writes the body length, then the MAC (with a key) and the CRC.
fn finish_frame(env: &Envelope<'_>, out: &mut Vec<u8>) {
    let body_len = out.len() - HEADER_LEN;
    // A body never reaches 4 GiB: the caller checks the datagram limit before sending.
    let body_len = u32::try_from(body_len).unwrap_or(u32::MAX);
    out[40..44].copy_from_slice(&body_len.to_le_bytes());
    if let Some(key) = env.key {
        let tag = mac(key, out);
        out.extend_from_slice(&tag);
    }
    let crc = crc32fast::hash(out);
    out.extend_from_slice(&crc.to_le_bytes());
}
