//! Replays every fuzz target's corpus (`fuzz/corpus/<target>/`) on the stable toolchain,
//! so CI covers what the fuzzers found without running them.

use raft_core::Message;
use std::path::PathBuf;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} unreadable: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());
    for f in files {
        let data = std::fs::read(&f).expect("corpus file");
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(
            outcome.is_ok(),
            "{target}: {} fails; reproduce with `cargo fuzz run {target} {}`",
            f.display(),
            f.display()
        );
    }
}

#[test]
fn decode_message_corpus() {
    replay("decode_message", raft_sim::fuzzing::decode_message);
}

#[test]
fn node_inputs_corpus() {
    replay("node_inputs", raft_sim::fuzzing::node_inputs);
}

#[test]
fn cluster_schedule_corpus() {
    replay("cluster_schedule", raft_sim::fuzzing::cluster_schedule);
}

/// The hand-written seeds of the `decode_message` corpus: one message of each common kind,
/// so the fuzzer starts inside the format. Written to `fuzz/corpus/decode_message/valid-*`
/// by `write_decode_seeds` whenever the wire format changes.
fn decode_seeds() -> Vec<(&'static str, Message)> {
    use raft_core::*;
    let msg = |body| Message { from: 1, to: 2, term: 7, body };
    let entry = |index, payload| Entry { term: 7, index, payload };
    vec![
        (
            "append-command",
            msg(MessageBody::Append {
                prev_log_index: 4,
                prev_log_term: 6,
                entries: vec![entry(5, Payload::Command(bytes::Bytes::from_static(b"put k v")))].into(),
                commit: 4,
            }),
        ),
        (
            "append-membership",
            msg(MessageBody::Append {
                prev_log_index: 4,
                prev_log_term: 6,
                entries: vec![entry(5, Payload::Membership(Box::new(Membership::with_voters([1, 2, 3]))))].into(),
                commit: 4,
            }),
        ),
        ("append-ok", msg(MessageBody::AppendResponse { result: AppendResult::Success { match_index: 9 } })),
        ("heartbeat", msg(MessageBody::Heartbeat { commit: 9, seq: 3 })),
        (
            "prevote",
            msg(MessageBody::VoteRequest { pre_vote: true, last_log_index: 9, last_log_term: 7, transfer: false }),
        ),
        (
            "read-index-response",
            msg(MessageBody::ReadIndexResponse { ctx: ReadContext { incarnation: 2, seq: 5 }, index: Some(9) }),
        ),
        ("timeout-now", msg(MessageBody::TimeoutNow)),
    ]
}

fn seed_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/decode_message").join(format!("valid-{name}"))
}

#[test]
fn the_decode_corpus_holds_valid_messages() {
    for (name, m) in decode_seeds() {
        let path = seed_path(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let decoded = Message::decode(&bytes, 1 << 20);
        assert_eq!(
            decoded.as_ref(),
            Ok(&m),
            "{} no longer decodes to its message; after a wire change run \
             `cargo test -p raft-sim --test fuzz_corpus -- --ignored write_decode_seeds`",
            path.display()
        );
    }
}

#[test]
#[ignore = "rewrites the corpus seeds; run after a wire format change"]
fn write_decode_seeds() {
    for (name, m) in decode_seeds() {
        std::fs::write(seed_path(name), m.encode()).expect("write seed");
    }
}
