//! Append throughput of the sled store with real fsyncs, next to the disk's raw fdatasync
//! rate, and the bytes written per entry. Figures are recorded in docs/performance.md.
//!
//! Run with `cargo bench -p raft-sled --bench append`.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use raft_core::{Entry, Index, Payload};
use raft_sled::{SledConfig, SledLogStore};
use raft_storage::LogStore;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ENTRY_BYTES: usize = 100;

fn entry(index: Index) -> Entry {
    Entry { term: 1, index, payload: Payload::Command(Bytes::from(vec![(index % 251) as u8; ENTRY_BYTES])) }
}

/// Benchmark directories live in the target directory, on the same disk as the build.
fn bench_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("creating a benchmark directory")
}

/// Appends `count` entries in batches of `batch`, one sync per batch.
fn append_synced(store: &mut SledLogStore, count: u64, batch: u64) {
    let mut next = store.last_index() + 1;
    let end = next + count;
    while next < end {
        let hi = (next + batch).min(end);
        store.append(&(next..hi).map(entry).collect::<Vec<_>>()).expect("append");
        store.sync().expect("sync");
        next = hi;
    }
}

fn appends(c: &mut Criterion) {
    let mut group = c.benchmark_group("sled_append_100B");
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));

    // The disk's own limits: a 100-byte write + fdatasync, appending (the file grows, so
    // each fdatasync also commits the size change to the filesystem journal) and
    // overwriting in place (data and the disk cache flush only, as in sled's preallocated
    // segments).
    let dir = bench_dir();
    let mut file = std::fs::File::create(dir.path().join("raw")).expect("creating the raw file");
    group.throughput(Throughput::Elements(1));
    group.bench_function("raw_append_fdatasync", |b| {
        b.iter(|| {
            file.write_all(&[7; ENTRY_BYTES]).expect("write");
            file.sync_data().expect("fdatasync");
        })
    });
    let mut file = std::fs::File::create(dir.path().join("raw_in_place")).expect("creating the raw file");
    file.write_all(&[0; 4096]).expect("write");
    file.sync_all().expect("fsync");
    group.bench_function("raw_overwrite_fdatasync", |b| {
        b.iter(|| {
            file.write_all_at(&[7; ENTRY_BYTES], 0).expect("write");
            file.sync_data().expect("fdatasync");
        })
    });

    for batch in [1u64, 64] {
        let dir = bench_dir();
        let mut store = SledLogStore::open(dir.path(), &SledConfig::default()).expect("opening the store");
        group.throughput(Throughput::Elements(batch));
        group.bench_function(BenchmarkId::new("sync_per_batch", batch), |b| {
            b.iter(|| append_synced(&mut store, batch, batch))
        });
    }
    group.finish();
}

/// The apparent size of every file under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("listing").flatten() {
            let meta = e.metadata().expect("metadata");
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

/// Bytes this process has caused to be written to storage (Linux `/proc/self/io`).
fn process_write_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines().find_map(|l| l.strip_prefix("write_bytes: ")).and_then(|v| v.trim().parse().ok())
}

/// Not a timing: the directory growth and device writes per entry, printed.
fn bytes_per_entry(_: &mut Criterion) {
    for (batch, count) in [(1u64, 1000u64), (64, 64 * 200)] {
        let dir = bench_dir();
        let mut store = SledLogStore::open(dir.path(), &SledConfig::default()).expect("opening the store");
        append_synced(&mut store, 64, 64); // past the store's creation
        let (size0, written0) = (dir_bytes(dir.path()), process_write_bytes());
        append_synced(&mut store, count, batch);
        let (size1, written1) = (dir_bytes(dir.path()), process_write_bytes());
        let growth = (size1 - size0) as f64 / count as f64;
        let device = match (written0, written1) {
            (Some(a), Some(b)) => format!("{:.0}", (b - a) as f64 / count as f64),
            _ => "n/a".into(),
        };
        println!(
            "bytes per 100-byte entry, one sync per {batch}: directory growth {growth:.0} B, written to the device {device} B ({count} entries)"
        );
    }
}

criterion_group!(benches, appends, bytes_per_entry);
criterion_main!(benches);
