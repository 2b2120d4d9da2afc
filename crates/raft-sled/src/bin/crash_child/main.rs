//! The child process of the crash test: opens a sled store, then runs a follower-like
//! workload forever — appends, term changes and votes, truncations of uncommitted
//! suffixes, compactions, and installs of snapshots that disagree with the log (staged in
//! the snapshot store, then promoted before or after their point is persisted) — printing
//! a `synced …` line (see `workload::Report`) after every sync, and an `event …` line
//! when it starts a new term, truncates, compacts or installs a snapshot. The test kills it with
//! SIGKILL at a random moment and checks that nothing reported was lost.
//!
//! Usage: `raft-sled-crash-child <dir> <seed>`.

mod workload;

use raft_core::{HardState, Persist, SnapshotMeta};
use raft_sled::SledConfig;
use raft_storage::{apply_persist, restore, LogStore, SnapshotStore};
use std::io::Write;
use workload::Report;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(seed)) = (args.next(), args.next().and_then(|s| s.parse::<u64>().ok())) else {
        eprintln!("usage: raft-sled-crash-child <dir> <seed>");
        std::process::exit(2);
    };
    if let Err(e) = run(&dir, seed) {
        eprintln!("crash child: {e}");
        std::process::exit(1);
    }
}

fn run(dir: &str, seed: u64) -> Result<(), Box<dyn std::error::Error>> {
    let (mut store, mut snapshots) = raft_sled::open(dir, &SledConfig::default())?;
    let restored = restore(&mut store, &mut snapshots)?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "ready {}", store.last_index())?;
    stdout.flush()?;
    let mut rng = seed | 1;
    let mut next = move || {
        // xorshift64: the workload varies with the seed.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut hs = restored.hard_state;
    // Never truncated below: the restored commit point (the store checked it) or the
    // snapshot point.
    let mut commit = hs.commit.max(store.snapshot_point().index);
    let mut seq = 0;
    loop {
        seq += 1;
        let last = store.last_index();
        // The commit point moves up behind the synced log, durably with this persist.
        if last > commit + 20 {
            commit = last - next() % 20;
            hs.commit = commit;
        }
        let mut persist = Persist { seq, hard_state: None, entries: Default::default(), snapshot: None };
        let mut term = hs.term.max(store.term(last)?.unwrap_or(0));
        let roll = next() % 100;
        if roll < 25 {
            writeln!(stdout, "event term {}", term + 1)?;
            // A new term, with a vote (or none) in it.
            term += 1;
            let vote = next() % 4;
            hs = HardState { term, vote: (vote > 0).then_some(vote), ..hs };
        }
        let mut promote_after_sync = false;
        if roll < 4 && last > commit {
            // A snapshot from a new leader that disagrees with the log: at an index past
            // the commit point, in the new term (no stored entry has it). Received into
            // the staging slot, then promoted: before its point is persisted, or after
            // (a kill in between leaves a staged snapshot that `restore` promotes).
            let index = commit + 1 + next() % (last - commit + 5);
            let meta = SnapshotMeta { index, term, membership: Default::default() };
            let mut writer = snapshots.begin(&meta)?;
            writer.write_all(&workload::snapshot_data(index, term))?;
            snapshots.stage(writer)?;
            promote_after_sync = next() % 2 == 0;
            if !promote_after_sync {
                snapshots.promote()?;
            }
            persist.snapshot = Some(Box::new(meta));
            writeln!(stdout, "event install {index}")?;
            commit = index;
            hs.commit = index;
            let batch = next() % 4;
            persist.entries = (index + 1..=index + batch).map(|i| workload::entry(i, term)).collect();
        } else if roll < 12 && last > commit && term > store.term(last)?.unwrap_or(0) {
            // A new leader overwrites an uncommitted suffix.
            let from = commit + 1 + next() % (last - commit);
            let batch = 1 + next() % 8;
            writeln!(stdout, "event truncate {from}")?;
            persist.entries = (from..from + batch).map(|i| workload::entry(i, term)).collect();
        } else {
            let batch = 1 + next() % 8;
            persist.entries = (last + 1..=last + batch).map(|i| workload::entry(i, term)).collect();
            let point = store.snapshot_point().index;
            if commit > point && commit - point >= workload::COMPACT_EVERY {
                // Store snapshot data, then record its point, as a runtime would.
                let index = commit - workload::KEEP;
                let t = store.term(index)?.expect("the log holds the compaction point");
                let meta = SnapshotMeta { index, term: t, membership: Default::default() };
                let mut writer = snapshots.begin(&meta)?;
                writer.write_all(&workload::snapshot_data(index, t))?;
                // The point is recorded only for a snapshot that became the latest.
                if snapshots.finish(writer)? {
                    persist.snapshot = Some(Box::new(meta));
                    writeln!(stdout, "event compact {index}")?;
                }
            }
        }
        persist.hard_state = Some(hs);
        apply_persist(&mut store, &persist)?;
        store.sync()?;
        if promote_after_sync {
            snapshots.promote()?;
        }
        let last = store.last_index();
        let report = Report {
            last: (last, store.term(last)?.unwrap_or(0)),
            commit: (commit, store.term(commit)?.unwrap_or(0)),
            term: hs.term,
            vote: hs.vote.unwrap_or(0),
        };
        writeln!(stdout, "{}", report.line())?;
        stdout.flush()?;
    }
}
