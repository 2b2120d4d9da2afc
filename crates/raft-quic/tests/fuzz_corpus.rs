//! Replays the `quic_frame` fuzz corpus (`fuzz/corpus/quic_frame/`) on the stable
//! toolchain, so `cargo test` covers what the fuzzer found without running it.

use raft_core::{Entry, Message, MessageBody, Payload};
use raft_quic::{encode_frame, Preamble, StreamKind};
use std::path::PathBuf;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/quic_frame")
}

#[test]
fn quic_frame_corpus() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap_or_else(|e| panic!("corpus {} unreadable: {e}", corpus().display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(files.len() >= seeds().len(), "corpus {} lacks its seeds", corpus().display());
    for f in files {
        let data = std::fs::read(&f).expect("corpus file");
        let outcome = std::panic::catch_unwind(|| raft_quic::fuzzing::quic_frame(&data));
        assert!(outcome.is_ok(), "{} fails; reproduce with `cargo fuzz run quic_frame {}`", f.display(), f.display());
    }
}

/// Hand-written seeds: streams a correct peer sends (and a few a broken one does), so
/// the fuzzer starts inside the format. The first byte chooses how reads are cut.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let preamble = |cluster_id| Preamble { kind: StreamKind::Control, cluster_id, from: 1, to: 2 }.encode();
    let frames = |msgs: &[Message]| {
        let mut out = Vec::new();
        for m in msgs {
            encode_frame(&m.encode(), &mut out);
        }
        out
    };
    let msg = |body| Message { from: 1, to: 2, term: 3, body };
    let append = msg(MessageBody::Append {
        prev_log_index: 4,
        prev_log_term: 2,
        entries: vec![Entry { term: 3, index: 5, payload: Payload::Command(bytes::Bytes::from_static(b"put k v")) }]
            .into(),
        commit: 4,
    });
    let heartbeat = msg(MessageBody::Heartbeat { commit: 4, seq: 9 });
    let stream = |cut: u8, cluster, msgs: &[Message]| {
        let mut s = vec![cut];
        s.extend(preamble(cluster));
        s.extend(frames(msgs));
        s
    };
    let mut oversized = stream(63, 0xC1, &[]);
    oversized.extend_from_slice(&u32::MAX.to_le_bytes());
    vec![
        ("valid-control", stream(63, 0xC1, &[heartbeat.clone(), msg(MessageBody::TimeoutNow)])),
        ("valid-bulk-bytewise", stream(0, 0xC1, &[append.clone(), append])),
        ("wrong-cluster", stream(7, 0xC2, &[heartbeat])),
        ("oversized", oversized),
    ]
}

#[test]
fn the_corpus_holds_the_seeds() {
    for (name, bytes) in seeds() {
        let path = corpus().join(format!("seed-{name}"));
        let stored = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            stored,
            bytes,
            "{} is stale; after a format change run \
             `cargo test -p raft-quic --test fuzz_corpus -- --ignored write_quic_frame_seeds`",
            path.display()
        );
    }
}

#[test]
#[ignore = "rewrites the corpus seeds; run after a format change"]
fn write_quic_frame_seeds() {
    for (name, bytes) in seeds() {
        std::fs::write(corpus().join(format!("seed-{name}")), bytes).expect("write seed");
    }
}
