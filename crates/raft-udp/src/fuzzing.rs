//! Entry points shared by the fuzz target (`fuzz/fuzz_targets/udp_frame.rs`) and the
//! corpus replay test, so both run exactly the same checks. Not a stable API.

use crate::frame::{decode_frame as decode, encode_frame, seal_raw, Body, Envelope, FrameError};
use crate::replay::{ReplayWindow, WINDOW};
use crate::UdpOptions;
use raft_core::{Message, SnapshotHeader};

/// The key and cluster id the fuzz target's frames use.
pub const KEY: [u8; 32] = *b"raft-udp fuzzing key, not secret";
/// See [`KEY`].
pub const CLUSTER: u64 = 0xF022;

fn options(key: Option<[u8; 32]>) -> UdpOptions {
    let mut o = UdpOptions::new(CLUSTER);
    o.key = key;
    o
}

/// Checks a decoded frame: it re-encodes to exactly the same bytes (the format is
/// canonical), and its payload decodes (or is refused) without a panic.
fn check_frame(data: &[u8], key: Option<&[u8; 32]>, opts: &UdpOptions) -> Result<(), FrameError> {
    let frame = decode(data, opts)?;
    let env =
        Envelope { cluster_id: CLUSTER, key, sender: frame.sender, session: frame.session, counter: frame.counter };
    let mut again = Vec::new();
    encode_frame(&env, &frame.body, &mut again);
    assert_eq!(again, data, "a decoded frame re-encodes to its own bytes");
    match frame.body {
        Body::Message(m) => {
            if let Ok(msg) = Message::decode(m, opts.max_datagram) {
                assert_eq!(Message::decode(&msg.encode(), opts.max_datagram).as_ref(), Ok(&msg));
            }
        }
        Body::SnapshotStart { header, .. } => {
            let _ = SnapshotHeader::decode(header, opts.max_datagram);
        }
        _ => {}
    }
    Ok(())
}

/// Fuzzes the datagram decoder. The first byte picks a mode:
/// - `0`: the rest is a datagram, decoded without and with a key;
/// - `1`: byte 1 is a kind and the rest a body, sealed into a frame with a correct MAC and
///   CRC, so the body parsers are reached; only body-level errors may come back;
/// - `2`: the rest drives a replay window (pairs of session and counter bytes) against a
///   model: a pair is accepted at most once, never for an older session.
pub fn decode_frame(data: &[u8]) -> Option<()> {
    let (&mode, rest) = data.split_first()?;
    match mode % 3 {
        0 => {
            let _ = check_frame(rest, None, &options(None));
            let _ = check_frame(rest, Some(&KEY), &options(Some(KEY)));
        }
        1 => {
            let (&kind, body) = rest.split_first()?;
            for key in [None, Some(&KEY)] {
                let env = Envelope { cluster_id: CLUSTER, key, sender: 9, session: 1, counter: 1 };
                let sealed = seal_raw(&env, kind, body);
                match check_frame(&sealed, key, &options(key.copied())) {
                    Ok(()) | Err(FrameError::Malformed(_)) | Err(FrameError::UnknownKind(_)) => {}
                    Err(e) => panic!("a sealed frame failed a check behind the seal: {e}"),
                }
            }
        }
        _ => {
            let mut w = ReplayWindow::default();
            let mut accepted = std::collections::BTreeSet::new();
            let (mut session, mut top) = (0u64, 0u64);
            for pair in rest.chunks_exact(3) {
                let s = u64::from(pair[0] % 4);
                let c = u64::from(u16::from_le_bytes([pair[1], pair[2]]));
                let fresh = c > 0
                    && s >= session
                    && (s > session || c > top || (top - c < WINDOW && !accepted.contains(&(s, c))));
                assert_eq!(w.accept(s, c), fresh, "session {s} counter {c}");
                if fresh {
                    if s > session {
                        top = 0;
                    }
                    session = s;
                    top = top.max(c);
                    assert!(accepted.insert((s, c)), "accepted twice");
                }
            }
        }
    }
    Some(())
}
