//! The bytes on a stream: a preamble, then length-prefixed frames. Pure functions over
//! buffers, so that the fuzzer and the tests reach every decision the stream readers make.
//!
//! ```text
//! frame    = length: u32 LE | payload (length bytes, at most the frame limit)
//! preamble = one frame whose payload is:
//!            magic "RFTQ" | version: u8 | kind: u8 | cluster id: u64 LE
//!            | sender node id: u64 LE | receiver node id: u64 LE
//! ```
//!
//! A message frame's payload is `raft_core::Message::encode()` (the core's `WIRE_VERSION`
//! byte, then postcard).

use bytes::{Buf, Bytes, BytesMut};
use raft_core::{DecodeError, Message, NodeId};

/// The protocol version carried in every preamble. A peer speaking another version is
/// refused on its first stream, before any of its bytes are read as messages.
pub const PROTOCOL_VERSION: u8 = 1;

/// The first bytes of every preamble.
pub const MAGIC: [u8; 4] = *b"RFTQ";

/// Bytes of a version-1 preamble payload.
pub const PREAMBLE_LEN: usize = 4 + 1 + 1 + 8 + 8 + 8;

/// Largest preamble frame a reader accepts (later versions may lengthen the preamble; the
/// version byte is checked before the length, so they are refused as another version).
pub const MAX_PREAMBLE_FRAME: usize = 256;

/// Bytes of a frame's length prefix.
pub const LENGTH_PREFIX: usize = 4;

/// What a stream carries, named in its preamble.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// A unidirectional stream of messages without entries: votes, heartbeats, responses,
    /// empty appends (probes).
    Control,
    /// A unidirectional stream of appends carrying entries.
    Bulk,
    /// A bidirectional stream carrying one snapshot, answered with one status.
    Snapshot,
}

impl StreamKind {
    fn code(self) -> u8 {
        match self {
            StreamKind::Control => 0,
            StreamKind::Bulk => 1,
            StreamKind::Snapshot => 2,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(StreamKind::Control),
            1 => Some(StreamKind::Bulk),
            2 => Some(StreamKind::Snapshot),
            _ => None,
        }
    }

    /// The stream a message travels on: appends with entries on the bulk stream,
    /// everything else on the control stream.
    pub fn for_message(msg: &Message) -> StreamKind {
        match &msg.body {
            raft_core::MessageBody::Append { entries, .. } if !entries.is_empty() => StreamKind::Bulk,
            _ => StreamKind::Control,
        }
    }
}

/// The first frame of every stream: who speaks, to whom, in which cluster, and what the
/// stream carries.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Preamble {
    /// What follows on the stream.
    pub kind: StreamKind,
    /// The cluster the sender belongs to.
    pub cluster_id: u64,
    /// The sender's node id; must be the one its certificate names.
    pub from: NodeId,
    /// The receiver's node id.
    pub to: NodeId,
}

/// Why bytes from a stream were refused. Each variant has its own counter in
/// [`crate::QuicMetrics`].
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A length prefix above the limit: the stream cannot be resynchronised and is closed.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The preamble does not start with [`MAGIC`] or is cut short: not this protocol.
    #[error("malformed preamble: {0}")]
    MalformedPreamble(&'static str),
    /// The preamble announces another protocol version.
    #[error("protocol version {found} (this node speaks {PROTOCOL_VERSION})")]
    Version {
        /// The version received.
        found: u8,
    },
    /// The preamble names another cluster.
    #[error("cluster id {found:#x} (this node is in cluster {expected:#x})")]
    WrongCluster {
        /// The cluster id received.
        found: u64,
        /// This node's cluster id.
        expected: u64,
    },
    /// A message frame of another wire version than the core speaks.
    #[error("message of wire version {found} (this node speaks {expected})")]
    MessageVersion {
        /// The first byte received.
        found: u8,
        /// `raft_core::WIRE_VERSION`.
        expected: u8,
    },
    /// A message frame that does not decode (or decodes to an impossible message).
    #[error("malformed message: {0}")]
    MalformedMessage(DecodeError),
}

impl Preamble {
    /// The preamble as one frame: length prefix and payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(LENGTH_PREFIX + PREAMBLE_LEN);
        out.extend_from_slice(&(PREAMBLE_LEN as u32).to_le_bytes());
        out.extend_from_slice(&MAGIC);
        out.push(PROTOCOL_VERSION);
        out.push(self.kind.code());
        out.extend_from_slice(&self.cluster_id.to_le_bytes());
        out.extend_from_slice(&self.from.to_le_bytes());
        out.extend_from_slice(&self.to.to_le_bytes());
        out
    }
}

/// Decodes a preamble frame's payload (without its length prefix) and checks it against
/// this node's `cluster_id`. Checks, in order: magic, version, length, kind, cluster.
/// Never panics. Who the sender and receiver are is checked by the caller, which knows
/// the certificate's node id and its own.
pub fn decode_preamble(payload: &[u8], cluster_id: u64) -> Result<Preamble, FrameError> {
    if payload.get(..4) != Some(&MAGIC[..]) {
        return Err(FrameError::MalformedPreamble("bad magic"));
    }
    let version = *payload.get(4).ok_or(FrameError::MalformedPreamble("truncated"))?;
    if version != PROTOCOL_VERSION {
        return Err(FrameError::Version { found: version });
    }
    if payload.len() != PREAMBLE_LEN {
        return Err(FrameError::MalformedPreamble("wrong length"));
    }
    let kind = StreamKind::from_code(payload[5]).ok_or(FrameError::MalformedPreamble("unknown stream kind"))?;
    let u64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&payload[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let found = u64_at(6);
    if found != cluster_id {
        return Err(FrameError::WrongCluster { found, expected: cluster_id });
    }
    Ok(Preamble { kind, cluster_id: found, from: u64_at(14), to: u64_at(22) })
}

/// Appends one frame (length prefix and `payload`) to `out`.
pub fn encode_frame(payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).expect("frame payloads are below the u32 limit checked by the sender");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(payload);
}

/// Takes one complete frame's payload off the front of `buf`: `Ok(None)` while more bytes
/// are needed, `Err(TooLarge)` for a length above `max_len` (framing is lost: close the
/// stream). Never panics; reserves room for the frame being received.
pub fn split_frame(buf: &mut BytesMut, max_len: usize) -> Result<Option<Bytes>, FrameError> {
    let Some(prefix) = buf.get(..LENGTH_PREFIX) else { return Ok(None) };
    let len = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    if len > max_len {
        return Err(FrameError::TooLarge { len, max: max_len });
    }
    if buf.len() < LENGTH_PREFIX + len {
        buf.reserve(LENGTH_PREFIX + len - buf.len());
        return Ok(None);
    }
    buf.advance(LENGTH_PREFIX);
    Ok(Some(buf.split_to(len).freeze()))
}

/// Decodes a message frame's payload (at most `max_len` bytes). Command payloads share
/// `payload`'s buffer. Never panics.
pub fn decode_frame(payload: &Bytes, max_len: usize) -> Result<Message, FrameError> {
    Message::decode_bytes(payload, max_len).map_err(|e| match e {
        DecodeError::Version { found, expected } => FrameError::MessageVersion { found, expected },
        DecodeError::TooLarge { len, max } => FrameError::TooLarge { len, max },
        other => FrameError::MalformedMessage(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::MessageBody;

    fn preamble() -> Preamble {
        Preamble { kind: StreamKind::Bulk, cluster_id: 0xC1, from: 1, to: 2 }
    }

    #[test]
    fn preamble_round_trip() {
        let wire = preamble().encode();
        let mut buf = BytesMut::from(&wire[..]);
        let payload = split_frame(&mut buf, MAX_PREAMBLE_FRAME).unwrap().unwrap();
        assert!(buf.is_empty());
        assert_eq!(decode_preamble(&payload, 0xC1), Ok(preamble()));
    }

    #[test]
    fn preamble_refusals() {
        let wire = preamble().encode();
        let payload = &wire[LENGTH_PREFIX..];
        assert_eq!(decode_preamble(payload, 0xC2), Err(FrameError::WrongCluster { found: 0xC1, expected: 0xC2 }));
        let mut v = payload.to_vec();
        v[4] = PROTOCOL_VERSION + 1;
        v.push(0); // a longer future preamble is refused for its version, not its length
        assert_eq!(decode_preamble(&v, 0xC1), Err(FrameError::Version { found: PROTOCOL_VERSION + 1 }));
        let mut v = payload.to_vec();
        v[0] = b'X';
        assert_eq!(decode_preamble(&v, 0xC1), Err(FrameError::MalformedPreamble("bad magic")));
        let mut v = payload.to_vec();
        v[5] = 9;
        assert_eq!(decode_preamble(&v, 0xC1), Err(FrameError::MalformedPreamble("unknown stream kind")));
        assert_eq!(decode_preamble(&payload[..10], 0xC1), Err(FrameError::MalformedPreamble("wrong length")));
        assert_eq!(decode_preamble(&payload[..4], 0xC1), Err(FrameError::MalformedPreamble("truncated")));
        assert_eq!(decode_preamble(&[], 0xC1), Err(FrameError::MalformedPreamble("bad magic")));
    }

    #[test]
    fn frames_split_across_reads() {
        let msg = Message { from: 1, to: 2, term: 3, body: MessageBody::Heartbeat { commit: 0, seq: 1 } };
        let mut wire = Vec::new();
        encode_frame(&msg.encode(), &mut wire);
        encode_frame(&msg.encode(), &mut wire);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for byte in wire {
            buf.extend_from_slice(&[byte]);
            while let Some(payload) = split_frame(&mut buf, 1024).unwrap() {
                got.push(decode_frame(&payload, 1024).unwrap());
            }
        }
        assert_eq!(got, vec![msg.clone(), msg]);
        assert!(buf.is_empty());
    }

    #[test]
    fn oversized_length_is_refused_before_reading_the_payload() {
        let mut buf = BytesMut::from(&(2000u32).to_le_bytes()[..]);
        assert_eq!(split_frame(&mut buf, 1024), Err(FrameError::TooLarge { len: 2000, max: 1024 }));
    }

    #[test]
    fn bad_message_frames_are_classified() {
        let msg = Message { from: 1, to: 2, term: 3, body: MessageBody::TimeoutNow };
        let mut wire = msg.encode();
        wire[0] = wire[0].wrapping_add(1);
        assert!(matches!(decode_frame(&Bytes::from(wire), 1024), Err(FrameError::MessageVersion { .. })));
        let garbage = Bytes::from(vec![raft_core::WIRE_VERSION, 0xff, 0xff, 0xff]);
        assert!(matches!(decode_frame(&garbage, 1024), Err(FrameError::MalformedMessage(_))));
        let own = Message { from: 2, to: 2, term: 3, body: MessageBody::TimeoutNow };
        assert!(matches!(decode_frame(&Bytes::from(own.encode()), 1024), Err(FrameError::MalformedMessage(_))));
    }

    #[test]
    fn appends_with_entries_go_bulk() {
        use raft_core::{Entry, Payload};
        let append = |entries: Vec<Entry>| Message {
            from: 1,
            to: 2,
            term: 3,
            body: MessageBody::Append { prev_log_index: 0, prev_log_term: 0, entries: entries.into(), commit: 0 },
        };
        assert_eq!(StreamKind::for_message(&append(vec![])), StreamKind::Control);
        let e = Entry { term: 3, index: 1, payload: Payload::Command(Bytes::from_static(b"x")) };
        assert_eq!(StreamKind::for_message(&append(vec![e])), StreamKind::Bulk);
    }
}
