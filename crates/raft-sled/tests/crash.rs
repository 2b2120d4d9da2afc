//! Crash safety with real processes: a child runs a follower-like workload (appends, term
//! changes and votes, truncations, compactions, installs of snapshots that disagree with
//! the log) and reports what each sync made durable; it is killed with SIGKILL at seeded
//! random moments and restarted on the same directory. After every kill the store must
//! open, a `raft_core::Node` must accept the restored state, and nothing reported may be
//! lost: not the hard state's term or vote, not an entry up to the reported commit point,
//! and not the last reported entry unless a later term (persisted atomically with the
//! truncation) replaced it.
//!
//! A process kill keeps the page cache: this tests the store's crash consistency and its
//! recovery, not power loss (see docs/storage.md). `RAFT_CRASH_CYCLES` sets the number of
//! kills (default 40); the 200-cycle figure in docs/storage.md is from
//! `RAFT_CRASH_CYCLES=200 cargo test --release -p raft-sled --test crash -- --nocapture`.

#[path = "../src/bin/crash_child/workload.rs"]
mod workload;

use raft_core::{Config, Index, Instant, Node};
use raft_sled::SledConfig;
use raft_storage::{restore, LogStore, SnapshotStore};
use rand_core::{RngCore, SeedableRng};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant as WallClock};
use workload::Report;

#[derive(Default, Debug)]
struct Tally {
    killed_before_ready: usize,
    torn_tails_repaired: usize,
    opens_with_unsynced_entries: usize,
    unsynced_entries_recovered: u64,
    /// Restarts that found a staged snapshot, and how many of those `restore` promoted
    /// (its point had reached the log) rather than discarded.
    staged_found: usize,
    staged_promoted: usize,
    syncs_reported: u64,
    /// Terms started, truncations, compactions and disagreeing snapshot installs begun.
    events: std::collections::BTreeMap<String, u64>,
}

#[test]
fn nothing_reported_is_lost_to_sigkill_and_every_restart_is_accepted() {
    let seed: u64 = std::env::var("RAFT_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0xC0FFEE);
    let cycles: usize = std::env::var("RAFT_CRASH_CYCLES").ok().and_then(|s| s.parse().ok()).unwrap_or(40);
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("creating a temporary directory");
    let mut reported = Report::default();
    let mut tally = Tally::default();
    let started = WallClock::now();
    for cycle in 0..cycles {
        let context = format!("cycle {cycle} (replay with RAFT_CRASH_SEED={seed} RAFT_CRASH_CYCLES={cycles})");
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
        // the store (up to 40 ms after the spawn), the others while it works: after a
        // seeded number of reported syncs (1 to 24) plus up to 3 ms, so that every cycle
        // does some work however slow this machine's disk is. A child that never gets
        // there is killed after 10 s.
        let early = rng.next_u64() % 5 == 0;
        let delay = Duration::from_millis(rng.next_u64() % 40);
        let syncs_before_kill = 1 + rng.next_u64() % 24;
        let tail = Duration::from_micros(rng.next_u64() % 3_000);
        let spawned = WallClock::now();
        let mut deadline = spawned + if early { delay } else { Duration::from_secs(10) };
        let mut ready = false;
        let mut syncs = 0;
        while WallClock::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(1)) {
                if note(&line, &mut reported, &mut tally, &context) {
                    ready = true;
                } else if ready && !early && line.starts_with("synced ") {
                    syncs += 1;
                    if syncs == syncs_before_kill {
                        deadline = WallClock::now() + tail;
                    }
                }
            }
        }
        child.kill().expect("killing the crash child");
        let status = child.wait().expect("waiting for the crash child");
        reader.join().expect("the reader thread");
        // Lines written before the kill still count: they were reported.
        for line in rx.try_iter() {
            ready |= note(&line, &mut reported, &mut tally, &context);
        }
        assert!(!status.success(), "{context}: the child exited by itself ({status}); see its stderr");
        tally.killed_before_ready += usize::from(!ready);
        check_store(dir.path(), &reported, &mut tally, &context);
    }
    eprintln!(
        "{cycles} kills in {:.1} s: {} syncs reported, last {:?}; events begun {:?}; {} killed before ready; \
         {} torn tails repaired; {} opens found {} unsynced entries and synced them; {} restarts found a \
         staged snapshot, {} promoted by restore; 0 reported entries or votes lost, every restart accepted by \
         Node::new",
        started.elapsed().as_secs_f64(),
        tally.syncs_reported,
        reported,
        tally.events,
        tally.killed_before_ready,
        tally.torn_tails_repaired,
        tally.opens_with_unsynced_entries,
        tally.unsynced_entries_recovered,
        tally.staged_found,
        tally.staged_promoted,
    );
    assert!(reported.last.0 > 100, "the children reported only up to index {} in {cycles} cycles", reported.last.0);
    for kind in ["term", "truncate", "install"] {
        assert!(tally.events.contains_key(kind), "no {kind} event in {cycles} cycles: {:?}", tally.events);
    }
    assert!(
        tally.killed_before_ready < cycles / 2,
        "{} of {cycles} children were killed before ready",
        tally.killed_before_ready
    );
}

/// Notes a line of the child's output; returns true for its `ready` line.
fn note(line: &str, reported: &mut Report, tally: &mut Tally, context: &str) -> bool {
    if line.starts_with("synced ") {
        let r = Report::parse(line).unwrap_or_else(|| panic!("{context}: bad line {line:?}"));
        assert!(r.term >= reported.term, "{context}: reported term {} after {}", r.term, reported.term);
        assert!(
            r.commit.0 >= reported.commit.0,
            "{context}: reported commit {:?} after {:?}",
            r.commit,
            reported.commit
        );
        *reported = r;
        tally.syncs_reported += 1;
        false
    } else if let Some(event) = line.strip_prefix("event ") {
        let kind = event.split(' ').next().unwrap_or_default().to_string();
        *tally.events.entry(kind).or_default() += 1;
        false
    } else {
        assert!(line.starts_with("ready "), "{context}: unexpected line {line:?}");
        true
    }
}

/// Opens the store as a restarting node would and checks that nothing reported is lost
/// and that a node accepts the restored state.
fn check_store(path: &std::path::Path, reported: &Report, tally: &mut Tally, context: &str) {
    let (mut store, mut snapshots) =
        raft_sled::open(path, &SledConfig::default()).unwrap_or_else(|e| panic!("{context}: reopening failed: {e}"));
    if let Some(index) = store.repaired_tail() {
        assert!(
            index > reported.commit.0,
            "{context}: a torn tail was truncated at {index}, at or below the reported commit {:?}",
            reported.commit
        );
        tally.torn_tails_repaired += 1;
    }
    if store.recovered_unsynced() > 0 {
        tally.opens_with_unsynced_entries += 1;
        tally.unsynced_entries_recovered += store.recovered_unsynced();
    }
    assert_eq!(store.synced_index(), store.last_index(), "{context}: open returned before syncing what it found");
    let staged = snapshots.staged();
    let state = restore(&mut store, &mut snapshots).unwrap_or_else(|e| panic!("{context}: restore failed: {e}"));
    if let Some(staged) = staged {
        tally.staged_found += 1;
        if snapshots.latest() == Some(staged) {
            tally.staged_promoted += 1;
        }
    }
    assert_eq!(snapshots.staged(), None, "{context}: restore left a snapshot staged");
    let hs = state.hard_state;
    // The hard state: never an older term, never another vote in the reported term.
    assert!(
        hs.term >= reported.term,
        "{context}: the hard state's term {} is below the reported {}",
        hs.term,
        reported.term
    );
    if hs.term == reported.term && reported.vote != 0 {
        assert_eq!(hs.vote, Some(reported.vote), "{context}: the vote in term {} was forgotten", hs.term);
    }
    // Entries: all well-formed; everything up to the reported commit point there.
    let point = &state.snapshot;
    for e in &state.entries {
        assert_eq!(*e, workload::entry(e.index, e.term), "{context}: entry {} is not what was written", e.index);
    }
    let last = point.index + state.entries.len() as Index;
    let term_at = |i: Index| {
        if i == point.index {
            Some(point.term)
        } else if i > point.index && i <= last {
            Some(state.entries[(i - point.index - 1) as usize].term)
        } else {
            None
        }
    };
    let (c, ct) = reported.commit;
    assert!(last >= c, "{context}: the log ends at {last} but the commit point {c} was reported durable");
    if c >= point.index {
        assert_eq!(term_at(c), Some(ct), "{context}: the entry at the reported commit point {c} changed");
    }
    // The last reported entry survives unless a later term replaced it.
    let (l, lt) = reported.last;
    if hs.term == reported.term {
        assert!(last >= l, "{context}: the log ends at {last} but {l} was reported durable in the same term");
        if l >= point.index {
            assert_eq!(term_at(l), Some(lt), "{context}: the reported last entry {l} changed in the same term");
        }
    }
    if let Some((meta, mut reader)) = snapshots.open_latest().expect("opening the snapshot") {
        assert!(
            meta.index <= point.index,
            "{context}: snapshot {} is past the restored point {}",
            meta.index,
            point.index
        );
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut data)
            .unwrap_or_else(|e| panic!("{context}: reading snapshot {} failed: {e}", meta.index));
        assert_eq!(data, workload::snapshot_data(meta.index, meta.term), "{context}: snapshot {} data", meta.index);
    }
    let applied = state.applied;
    if let Err(e) = Node::new(Config::new(1), state, Instant::ZERO) {
        panic!("{context}: Node::new refuses the restored state (applied {applied}): {e}");
    }
}
