//! The point of the storage split: log syncs keep completing while a large snapshot is
//! being written and fsynced on another thread.
//!
//! The log writer (this thread) appends one entry and syncs, over and over; the applier
//! (another thread) streams a large snapshot into the snapshot store and finishes it
//! (fsync + manifest). Only ordering facts are asserted, and they cannot depend on the
//! machine's speed: halfway through the snapshot the applier waits until the log writer
//! has completed several syncs while the writer is open (a log sync that needed the
//! snapshot store would never complete, and the handshake would time out). The latencies
//! are printed, not asserted: how many log syncs completed during the snapshot's fsync,
//! and how long they took compared with before the snapshot and with the fsync itself
//! (which a log sync queued behind it on a single store would have waited for).
//!
//! `RAFT_SPLIT_SNAPSHOT_MIB` sets the snapshot's size (default 64); the figures in
//! docs/storage.md come from
//! `RAFT_SPLIT_SNAPSHOT_MIB=256 cargo test --release -p raft-sled --test split -- --nocapture`.

use bytes::Bytes;
use raft_core::{Entry, Index, Payload, SnapshotMeta};
use raft_sled::SledConfig;
use raft_storage::{LogStore, SnapshotStore};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

fn entry(index: Index) -> Entry {
    Entry { term: 1, index, payload: Payload::Command(Bytes::from(vec![(index % 251) as u8; 100])) }
}

/// Syncs the log writer must complete while the snapshot writer is open.
const SYNCS_WHILE_OPEN: u64 = 5;
/// Fails a handshake that never comes instead of hanging.
const PATIENCE: Duration = Duration::from_secs(120);

/// What the applier measured.
struct Applier {
    /// Log syncs completed when the finish began and when it returned.
    syncs_at_finish: (u64, u64),
    /// When the finish began and returned.
    finish: (Instant, Instant),
    /// When the writer was opened.
    opened: Instant,
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Percentiles of sync latencies, in ms.
fn summary(mut lat: Vec<Duration>) -> String {
    if lat.is_empty() {
        return "no syncs".into();
    }
    lat.sort();
    let at = |q: f64| millis(lat[((lat.len() - 1) as f64 * q) as usize]);
    format!("{} syncs, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms", lat.len(), at(0.5), at(0.99), at(1.0))
}

#[test]
fn log_syncs_keep_completing_while_a_large_snapshot_is_written_and_synced() {
    let mib: usize = std::env::var("RAFT_SPLIT_SNAPSHOT_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    let total = mib << 20;
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a directory on the build disk");
    let (mut log, mut snapshots) = raft_sled::open(dir.path(), &SledConfig::default()).expect("opening the stores");
    log.append(&(1..=10).map(entry).collect::<Vec<_>>()).unwrap();
    log.sync().unwrap();

    // A baseline: log syncs with no snapshot in progress.
    let mut syncs: Vec<(Instant, Instant)> = Vec::new();
    for _ in 0..50 {
        let next = log.last_index() + 1;
        log.append(&[entry(next)]).unwrap();
        let start = Instant::now();
        log.sync().unwrap();
        syncs.push((start, Instant::now()));
    }

    let log_syncs = Arc::new(AtomicU64::new(0));
    let (half_tx, half_rx) = mpsc::channel::<()>();
    let (ack_tx, ack_rx) = mpsc::channel::<()>();
    let meta = SnapshotMeta { index: 10, term: 1, membership: Default::default() };
    let applier = {
        let log_syncs = Arc::clone(&log_syncs);
        let meta = meta.clone();
        std::thread::spawn(move || {
            let chunk: Vec<u8> = (0..1 << 20).map(|i| (i % 253) as u8).collect();
            let opened = Instant::now();
            let mut writer = snapshots.begin(&meta).expect("begin");
            for k in 0..mib {
                if k == mib / 2 {
                    half_tx.send(()).expect("the log writer is waiting");
                    ack_rx.recv_timeout(PATIENCE).expect("the log writer completed no syncs while the writer was open");
                }
                writer.write_all(&chunk).expect("writing the snapshot");
            }
            let at_start = log_syncs.load(Ordering::SeqCst);
            let started = Instant::now();
            assert!(snapshots.finish(writer).expect("finish"), "the only snapshot did not become the latest");
            let ended = Instant::now();
            let at_end = log_syncs.load(Ordering::SeqCst);
            (snapshots, Applier { syncs_at_finish: (at_start, at_end), finish: (started, ended), opened })
        })
    };

    // The log writer: one entry per sync until the applier is done. Each sync's start,
    // end, and the count when the half-way signal came.
    let mut half_at = None;
    let mut acked = false;
    let begun = Instant::now();
    while !applier.is_finished() {
        let next = log.last_index() + 1;
        log.append(&[entry(next)]).unwrap();
        let start = Instant::now();
        log.sync().unwrap();
        syncs.push((start, Instant::now()));
        let done = log_syncs.fetch_add(1, Ordering::SeqCst) + 1;
        if half_at.is_none() && half_rx.try_recv().is_ok() {
            half_at = Some(done);
        }
        if let Some(h) = half_at {
            if !acked && done >= h + SYNCS_WHILE_OPEN {
                ack_tx.send(()).expect("the applier is waiting");
                acked = true;
            }
        }
        assert!(begun.elapsed() < 4 * PATIENCE, "the applier never finished");
    }
    let (snapshots, a) = applier.join().expect("the applier panicked");

    // The ordering facts.
    let half = half_at.expect("the applier reached half-way");
    assert!(acked, "the log writer never completed {SYNCS_WHILE_OPEN} syncs while the snapshot writer was open");
    assert!(a.syncs_at_finish.0 >= half + SYNCS_WHILE_OPEN);
    assert_eq!(snapshots.latest(), Some(meta));
    let (_, mut reader) = snapshots.open_latest().unwrap().expect("the finished snapshot");
    let mut read = 0u64;
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = reader.read(&mut buf).expect("reading the snapshot back");
        if n == 0 {
            break;
        }
        read += n as u64;
    }
    assert_eq!(read, total as u64);

    // The figures.
    let (fs, fe) = a.finish;
    let before: Vec<Duration> = syncs.iter().filter(|(s, _)| *s < a.opened).map(|(s, e)| *e - *s).collect();
    let writing: Vec<Duration> =
        syncs.iter().filter(|(s, e)| *s >= a.opened && *e <= fs).map(|(s, e)| *e - *s).collect();
    let during: Vec<Duration> = syncs.iter().filter(|(s, e)| *e > fs && *s < fe).map(|(s, e)| *e - *s).collect();
    let completed_during = syncs.iter().filter(|(s, e)| *s >= fs && *e <= fe).count();
    eprintln!(
        "snapshot of {mib} MiB: written in {:.0} ms, finish (fsync + manifest) {:.0} ms",
        millis(fs - a.opened),
        millis(fe - fs)
    );
    eprintln!("log syncs before the snapshot: {}", summary(before));
    eprintln!("log syncs while the snapshot was written: {}", summary(writing));
    eprintln!(
        "log syncs overlapping the snapshot's finish: {} ({} began and completed inside it; counter {} -> {})",
        summary(during),
        completed_during,
        a.syncs_at_finish.0,
        a.syncs_at_finish.1
    );
    eprintln!(
        "a log sync queued behind the snapshot's finish on one store would have waited {:.0} ms (the finish \
         alone: the writer fdatasyncs every {} MiB as it goes)",
        millis(fe - fs),
        raft_sled::WRITER_SYNC_EVERY >> 20
    );
}
