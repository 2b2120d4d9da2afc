//! Replays the `udp_frame` fuzz corpus (`fuzz/corpus/udp_frame/`) on the stable
//! toolchain, so CI covers what the fuzzer found without running it.

use raft_core::{Message, MessageBody};
use raft_udp::fuzzing::{CLUSTER, KEY};
use raft_udp::{encode_frame, encode_message_frame, Body, Envelope};
use std::path::PathBuf;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/udp_frame")
}

#[test]
fn udp_frame_corpus() {
    let dir = corpus();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} unreadable: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(files.len() >= seeds().len(), "corpus {} lacks its seeds", dir.display());
    for f in files {
        let data = std::fs::read(&f).expect("corpus file");
        let outcome = std::panic::catch_unwind(|| raft_udp::fuzzing::decode_frame(&data));
        assert!(outcome.is_ok(), "{} fails; reproduce with `cargo fuzz run udp_frame {}`", f.display(), f.display());
    }
}

/// The hand-written seeds: valid frames of every kind (mode 0), with and without the
/// fuzzing key, bodies to seal (mode 1), a replay sequence (mode 2) and junk.
fn seeds() -> Vec<(String, Vec<u8>)> {
    let msg = Message { from: 2, to: 1, term: 7, body: MessageBody::Heartbeat { commit: 3, seq: 9 } };
    let bodies: Vec<(&str, Body<'static>)> = vec![
        ("start", Body::SnapshotStart { transfer: 1, header: b"\x02\x03\x00\x00\x00abc" }),
        ("chunk", Body::SnapshotChunk { transfer: 1, offset: 0, last: false, data: b"snapshot bytes" }),
        ("end", Body::SnapshotChunk { transfer: 1, offset: 14, last: true, data: b"" }),
        ("ack", Body::SnapshotAck { transfer: 1, offset: 14, complete: true }),
        ("done", Body::SnapshotDone { transfer: 1, ok: false, reason: "refused" }),
        ("abort", Body::SnapshotAbort { transfer: 1 }),
    ];
    let mut out = Vec::new();
    for (tag, key) in [("plain", None), ("keyed", Some(&KEY))] {
        let env = Envelope { cluster_id: CLUSTER, key, sender: 2, session: 5, counter: 1 };
        let mut m = Vec::new();
        encode_message_frame(&env, &msg, &mut m);
        out.push((format!("valid-{tag}-message"), [&[0u8][..], &m].concat()));
        for (name, body) in &bodies {
            let mut f = Vec::new();
            encode_frame(&env, body, &mut f);
            out.push((format!("valid-{tag}-{name}"), [&[0u8][..], &f].concat()));
        }
    }
    out.push(("sealed-message".into(), [&[1u8, 1][..], &msg.encode()].concat()));
    out.push((
        "sealed-chunk".into(),
        [&[1u8, 3][..], &[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xAB][..]].concat(),
    ));
    out.push(("sealed-done".into(), vec![1, 5, 1, 0, 0, 0, 0, 0, 0, 0, 1, b'o', b'k']));
    out.push(("replay-sequence".into(), vec![2, 1, 1, 0, 1, 2, 0, 1, 1, 0, 2, 1, 0, 0, 5, 0]));
    out.push(("junk".into(), b"\x00RAFU\x01\x01\x00\x00not really a frame".to_vec()));
    out
}

#[test]
fn the_corpus_holds_the_seeds() {
    for (name, bytes) in seeds() {
        let path = corpus().join(&name);
        let stored = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            stored,
            bytes,
            "{} differs from its seed; after a format change run \
             `cargo test -p raft-udp --test fuzz_corpus -- --ignored write_seeds`",
            path.display()
        );
    }
}

#[test]
#[ignore = "rewrites the corpus seeds; run after a frame format change"]
fn write_seeds() {
    std::fs::create_dir_all(corpus()).expect("corpus directory");
    for (name, bytes) in seeds() {
        std::fs::write(corpus().join(name), bytes).expect("write seed");
    }
}
