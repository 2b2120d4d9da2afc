//! Entry points for the fuzz targets (`fuzz/fuzz_targets/quic_frame.rs`) and the corpus
//! replay test. Not a stable API.

use crate::frame::{decode_frame, decode_preamble, split_frame, MAX_PREAMBLE_FRAME};
use bytes::BytesMut;

/// The frame limit the fuzz target decodes with: small, so that oversized lengths are
/// reached often.
pub const FUZZ_MAX_FRAME: usize = 64 * 1024;

/// Feeds `data` to a stream reader as the network would: the first byte chooses how the
/// rest is cut into reads; then the preamble, then message frames until the framing is
/// lost or the data ends; and the same bytes as a snapshot answer. Must never panic.
pub fn quic_frame(data: &[u8]) {
    let Some((&cut, rest)) = data.split_first() else { return };
    // The same bytes as a snapshot answer: any reading is fine, none may panic.
    let _ = crate::transport::decode_reply(rest);
    let step = usize::from(cut % 64) + 1;
    let mut buf = BytesMut::new();
    let mut preamble_done = false;
    for piece in rest.chunks(step) {
        buf.extend_from_slice(piece);
        loop {
            if !preamble_done {
                match split_frame(&mut buf, MAX_PREAMBLE_FRAME) {
                    Ok(Some(payload)) => {
                        if let Ok(p) = decode_preamble(&payload, 0xC1) {
                            assert_eq!(p.cluster_id, 0xC1, "a preamble of another cluster was accepted");
                        }
                        preamble_done = true;
                    }
                    Ok(None) => break,
                    Err(_) => return,
                }
            } else {
                match split_frame(&mut buf, FUZZ_MAX_FRAME) {
                    Ok(Some(payload)) => {
                        assert!(payload.len() <= FUZZ_MAX_FRAME, "a frame above the limit was split off");
                        if let Ok(msg) = decode_frame(&payload, FUZZ_MAX_FRAME) {
                            // What decodes re-encodes to a frame that decodes the same.
                            let again = decode_frame(&bytes::Bytes::from(msg.encode()), FUZZ_MAX_FRAME);
                            assert_eq!(again.as_ref(), Ok(&msg), "re-encoding changed the message");
                        }
                    }
                    Ok(None) => break,
                    Err(_) => return,
                }
            }
        }
    }
}
