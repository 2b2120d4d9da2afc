//! The child process of the crash test: opens a sled store, then appends forever,
//! printing `synced <index>` after every sync that made `<index>` durable. The test kills
//! it with SIGKILL at a random moment and checks every reported index survived.
//!
//! Usage: `raft-sled-crash-child <dir> <seed>`.

mod workload;

use raft_core::{HardState, Persist, SnapshotMeta};
use raft_sled::{SledConfig, SledStorage};
use raft_storage::{apply_persist, restore, Storage};
use std::io::Write;

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
    let mut store = SledStorage::open(dir, &SledConfig::default())?;
    let restored = restore(&mut store)?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "ready {}", store.last_index())?;
    stdout.flush()?;
    let mut rng = seed | 1;
    let mut next = move || {
        // xorshift64: batch sizes vary with the seed.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut seq = 0;
    let mut term = restored.hard_state.term;
    loop {
        let last = store.last_index();
        let batch = 1 + next() % 8;
        let entries: Vec<_> = (last + 1..=last + batch).map(workload::entry).collect();
        term = term.max(entries.last().map_or(0, |e| e.term));
        seq += 1;
        let mut persist = Persist {
            seq,
            hard_state: Some(HardState { term, vote: Some(1), commit: last, incarnation: 1 }),
            entries,
            snapshot: None,
        };
        let point = store.snapshot_point().index;
        if last - point >= workload::COMPACT_EVERY {
            // Store snapshot data, then record its point, as a runtime would.
            let index = last - workload::KEEP;
            let meta = SnapshotMeta { index, term: workload::entry(index).term, membership: Default::default() };
            let mut writer = store.begin_snapshot(&meta)?;
            writer.write_all(&index.to_le_bytes().repeat(512))?;
            store.finish_snapshot(writer)?;
            persist.snapshot = Some(Box::new(meta));
        }
        apply_persist(&mut store, &persist)?;
        store.sync()?;
        writeln!(stdout, "synced {}", store.last_index())?;
        stdout.flush()?;
    }
}
