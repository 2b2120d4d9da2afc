//! The frame format on its own: round trips of every kind, with and without a key, and
//! each kind of bad datagram refused with its own error.

use raft_core::{Message, MessageBody};
use raft_udp::{decode_frame, encode_frame, encode_message_frame, Body, Envelope, FrameError, UdpOptions};

const KEY: [u8; 32] = [7; 32];

fn env(key: Option<&[u8; 32]>) -> Envelope<'_> {
    Envelope { cluster_id: 42, key, sender: 3, session: 1000, counter: 17 }
}

fn options(key: Option<[u8; 32]>) -> UdpOptions {
    let mut o = UdpOptions::new(42);
    o.key = key;
    o
}

fn bodies() -> Vec<Body<'static>> {
    vec![
        Body::Message(b"\x02opaque"),
        Body::SnapshotStart { transfer: 9, header: b"header bytes" },
        Body::SnapshotChunk { transfer: 9, offset: 8192, last: false, data: b"chunk" },
        Body::SnapshotChunk { transfer: 9, offset: 8197, last: true, data: b"" },
        Body::SnapshotAck { transfer: 9, offset: 8197, complete: true },
        Body::SnapshotDone { transfer: 9, ok: false, reason: "disk full" },
        Body::SnapshotDone { transfer: 9, ok: true, reason: "" },
        Body::SnapshotAbort { transfer: 9 },
    ]
}

fn encoded(key: Option<&[u8; 32]>, body: &Body<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&env(key), body, &mut out);
    out
}

#[test]
fn every_kind_round_trips_with_and_without_a_key() {
    for key in [None, Some(KEY)] {
        let opts = options(key);
        for body in bodies() {
            let bytes = encoded(key.as_ref(), &body);
            let frame =
                decode_frame(&bytes, &opts).unwrap_or_else(|e| panic!("{body:?} with key {}: {e}", key.is_some()));
            assert_eq!(frame.body, body);
            assert_eq!((frame.sender, frame.session, frame.counter), (3, 1000, 17));
            assert_eq!(frame.authenticated, key.is_some());
        }
    }
}

#[test]
fn a_message_frame_carries_the_cores_encoding() {
    let msg = Message { from: 3, to: 1, term: 5, body: MessageBody::Heartbeat { commit: 4, seq: 2 } };
    let mut out = Vec::new();
    encode_message_frame(&env(Some(&KEY)), &msg, &mut out);
    let frame = decode_frame(&out, &options(Some(KEY))).expect("valid");
    let Body::Message(bytes) = frame.body else { panic!("a message frame") };
    assert_eq!(bytes, &msg.encode()[..]);
    assert_eq!(out.len(), raft_udp::HEADER_LEN + msg.encode().len() + raft_udp::MAC_LEN + raft_udp::CRC_LEN);
}

/// Recomputes the CRC after a test changed a byte it covers, so the change reaches the
/// check behind the checksum.
fn fix_crc(bytes: &mut [u8]) {
    let n = bytes.len();
    let crc = crc32fast::hash(&bytes[..n - 4]);
    bytes[n - 4..].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn each_kind_of_bad_datagram_is_refused_with_its_reason() {
    let opts = options(None);
    let good = encoded(None, &Body::SnapshotAck { transfer: 1, offset: 2, complete: false });
    assert!(decode_frame(&good, &opts).is_ok());

    assert_eq!(decode_frame(b"RA", &opts), Err(FrameError::Truncated { len: 2 }));
    assert_eq!(decode_frame(&good[..30], &opts), Err(FrameError::Truncated { len: 30 }));
    assert_eq!(decode_frame(&good[..good.len() - 1], &opts), Err(FrameError::Truncated { len: good.len() - 1 }));
    assert_eq!(decode_frame(b"GET / HTTP/1.1\r\n\r\n", &opts), Err(FrameError::BadMagic));

    let mut v = good.clone();
    v[4] = 2;
    assert_eq!(decode_frame(&v, &opts), Err(FrameError::WrongVersion { found: 2 }));

    let mut big = good.clone();
    big.resize(opts.max_datagram + 1, 0);
    assert!(matches!(decode_frame(&big, &opts), Err(FrameError::Oversized { .. })));

    let mut flipped = good.clone();
    flipped[50] ^= 1;
    assert_eq!(decode_frame(&flipped, &opts), Err(FrameError::BadChecksum));

    assert!(matches!(
        decode_frame(&good, &UdpOptions::new(43)),
        Err(FrameError::WrongCluster { found: 42, expected: 43 })
    ));

    let mut kind = good.clone();
    kind[5] = 99;
    fix_crc(&mut kind);
    assert_eq!(decode_frame(&kind, &opts), Err(FrameError::UnknownKind(99)));

    let mut flags = good.clone();
    flags[6] = 0x80;
    fix_crc(&mut flags);
    assert!(matches!(decode_frame(&flags, &opts), Err(FrameError::Malformed(_))));

    let mut trailing = good.clone();
    trailing.push(0);
    assert!(matches!(decode_frame(&trailing, &opts), Err(FrameError::Malformed(_))));

    let mut zero = good.clone();
    zero[16..24].copy_from_slice(&0u64.to_le_bytes());
    fix_crc(&mut zero);
    assert!(matches!(decode_frame(&zero, &opts), Err(FrameError::Malformed(_))), "sender id 0");

    // A body that is too short for its kind.
    let short = encoded(None, &Body::Message(b"x"));
    let mut ack_short = short.clone();
    ack_short[5] = 4;
    fix_crc(&mut ack_short);
    assert!(matches!(decode_frame(&ack_short, &opts), Err(FrameError::Malformed(_))));

    let empty_chunk = encoded(None, &Body::SnapshotChunk { transfer: 1, offset: 0, last: false, data: b"" });
    assert!(matches!(decode_frame(&empty_chunk, &opts), Err(FrameError::Malformed(_))));
    let far = encoded(None, &Body::SnapshotChunk { transfer: 1, offset: u64::MAX - 1, last: false, data: b"ab" });
    assert!(matches!(decode_frame(&far, &opts), Err(FrameError::Malformed(_))));
}

#[test]
fn a_key_refuses_forged_unsigned_and_foreign_frames() {
    let keyed = options(Some(KEY));
    let body = Body::Message(b"\x02opaque");
    let signed = encoded(Some(&KEY), &body);
    assert!(decode_frame(&signed, &keyed).is_ok());

    // Signed with another key.
    let other = encoded(Some(&[8; 32]), &body);
    assert_eq!(decode_frame(&other, &keyed), Err(FrameError::Unauthenticated));
    // Without a MAC, to a node with a key; with a MAC, to a node without one.
    assert_eq!(decode_frame(&encoded(None, &body), &keyed), Err(FrameError::Unauthenticated));
    assert_eq!(decode_frame(&signed, &options(None)), Err(FrameError::Unauthenticated));
    // A changed sender id with a fixed-up CRC: the MAC no longer matches.
    let mut spoofed = signed.clone();
    spoofed[16] ^= 1;
    fix_crc(&mut spoofed);
    assert_eq!(decode_frame(&spoofed, &keyed), Err(FrameError::Unauthenticated));
    // Every single bit flip is refused (by the CRC, or the MAC once the CRC is fixed up).
    for i in 0..signed.len() - 4 {
        let mut f = signed.clone();
        f[i] ^= 0x10;
        assert!(decode_frame(&f, &keyed).is_err(), "flip at byte {i}");
        fix_crc(&mut f);
        assert!(decode_frame(&f, &keyed).is_err(), "flip at byte {i} with the CRC fixed");
    }
}

#[test]
fn no_prefix_or_byte_pattern_panics_the_decoder() {
    let opts = options(Some(KEY));
    let signed = encoded(Some(&KEY), &Body::SnapshotChunk { transfer: 1, offset: 0, last: false, data: &[1; 100] });
    for cut in 0..=signed.len() {
        let _ = decode_frame(&signed[..cut], &opts);
    }
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for n in 0..2000usize {
        let mut junk = signed.clone();
        for _ in 0..(n % 7 + 1) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let at = (x as usize) % junk.len();
            junk[at] = (x >> 32) as u8;
        }
        let _ = decode_frame(&junk, &opts);
    }
}
