//! Replays every fuzz target's corpus (`fuzz/corpus/<target>/`) on the stable toolchain,
//! so CI covers what the fuzzers found without running them.

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

#[test]
fn the_decode_corpus_holds_valid_messages() {
    // Hand-encoded seeds give the fuzzer a start inside the format.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/decode_message");
    let valid = std::fs::read_dir(&dir)
        .expect("corpus")
        .filter_map(|e| {
            let p = e.ok()?.path();
            p.file_name()?.to_str()?.starts_with("valid-").then_some(p)
        })
        .filter(|p| raft_core::Message::decode(&std::fs::read(p).expect("seed"), 1 << 20).is_ok())
        .count();
    assert!(valid >= 7, "only {valid} hand-encoded seeds decode");
}
