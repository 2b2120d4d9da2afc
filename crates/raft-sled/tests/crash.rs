//! Crash safety with real processes: a child appends and reports each synced index; it is
//! killed with SIGKILL at seeded random moments and restarted on the same directory, and
//! every index it ever reported durable must still be there, intact.

#[path = "../src/bin/crash_child/workload.rs"]
mod workload;

use raft_core::Index;
use raft_sled::{SledConfig, SledStorage};
use raft_storage::{restore, Storage};
use rand_core::{RngCore, SeedableRng};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const CYCLES: usize = 60;

#[test]
fn every_reported_index_survives_sigkill() {
    let seed: u64 = std::env::var("RAFT_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0xC0FFEE);
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("creating a temporary directory");
    let mut reported: Index = 0;
    let mut killed_before_ready = 0;
    let mut repaired = 0;
    for cycle in 0..CYCLES {
        let context = format!("cycle {cycle} (replay with RAFT_CRASH_SEED={seed})");
        let mut child = Command::new(env!("CARGO_BIN_EXE_raft-sled-crash-child"))
            .arg(dir.path())
            .arg(rng.next_u64().to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning the crash child");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Kill at a random moment: one cycle in five while the child opens and recovers
        // the store (up to 40 ms after the spawn), the others while it appends: after a
        // seeded number of reported syncs (1 to 24) plus up to 3 ms, so that every cycle
        // does some work however slow this machine's disk is. A child that never gets
        // there is killed after 10 s.
        let early = rng.next_u64() % 5 == 0;
        let delay = Duration::from_millis(rng.next_u64() % 40);
        let syncs_before_kill = 1 + rng.next_u64() % 24;
        let tail = Duration::from_micros(rng.next_u64() % 3_000);
        let started = Instant::now();
        let mut deadline = started + if early { delay } else { Duration::from_secs(10) };
        let mut ready = false;
        let mut syncs = 0;
        while Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(1)) {
                if record(&line, &mut reported, &context) {
                    ready = true;
                } else if ready && !early {
                    syncs += 1;
                    if syncs == syncs_before_kill {
                        deadline = Instant::now() + tail;
                    }
                }
            }
        }
        child.kill().expect("killing the crash child");
        let status = child.wait().expect("waiting for the crash child");
        reader.join().expect("the reader thread");
        // Lines written before the kill still count: they were reported.
        for line in rx.try_iter() {
            ready |= record(&line, &mut reported, &context);
        }
        assert!(!status.success(), "{context}: the child exited by itself ({status}); see its stderr");
        killed_before_ready += usize::from(!ready);
        repaired += usize::from(check_store(dir.path(), reported, &context));
    }
    let blobs = std::fs::read_dir(dir.path().join("sled/blobs")).map_or(0, |d| d.count());
    eprintln!("{CYCLES} kills: {reported} entries reported durable, {killed_before_ready} killed before ready, {repaired} torn tails repaired, {blobs} blob files now");
    assert!(reported > 100, "the children reported only {reported} entries in {CYCLES} cycles");
    assert!(killed_before_ready < CYCLES / 2, "{killed_before_ready} of {CYCLES} children were killed before ready");
}

/// Notes a line of the child's output; returns true for its `ready` line.
fn record(line: &str, reported: &mut Index, context: &str) -> bool {
    if let Some(index) = line.strip_prefix("synced ") {
        let index: Index = index.parse().unwrap_or_else(|_| panic!("{context}: bad line {line:?}"));
        assert!(index >= *reported, "{context}: reported {index} after {reported}");
        *reported = index;
        false
    } else {
        assert!(line.starts_with("ready "), "{context}: unexpected line {line:?}");
        true
    }
}

/// Opens the store as a restarting node would and checks everything reported is there.
/// Returns whether a torn tail was truncated.
fn check_store(path: &std::path::Path, reported: Index, context: &str) -> bool {
    let mut store =
        SledStorage::open(path, &SledConfig::default()).unwrap_or_else(|e| panic!("{context}: reopening failed: {e}"));
    if let Some(index) = store.repaired_tail() {
        assert!(index > reported, "{context}: a torn tail was truncated at {index}, at or below reported {reported}");
    }
    let state = restore(&mut store).unwrap_or_else(|e| panic!("{context}: restore failed: {e}"));
    let last = state.snapshot.index + state.entries.len() as Index;
    assert!(last >= reported, "{context}: the log ends at {last} but {reported} was reported durable");
    for e in &state.entries {
        assert_eq!(*e, workload::entry(e.index), "{context}: entry {} is not what was written", e.index);
    }
    if let Some((meta, mut reader)) = store.open_snapshot().expect("opening the snapshot") {
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut data)
            .unwrap_or_else(|e| panic!("{context}: reading snapshot {} failed: {e}", meta.index));
        assert_eq!(data, meta.index.to_le_bytes().repeat(512), "{context}: snapshot {} data", meta.index);
    }
    store.repaired_tail().is_some()
}
