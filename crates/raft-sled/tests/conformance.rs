//! The sled log store and the file snapshot store pass the storage conformance kit,
//! reopened after crashes, and its concurrency check (the two stores on two threads,
//! crash copies taken while a snapshot is being written).

mod common;

use raft_sled::{FileSnapshotStore, SledConfig, SledLogStore};
use raft_storage::testkit::{check_concurrency, check_conformance, Concurrency, Conformance, StoreFactory};
use raft_storage::LogStore;

/// One temporary directory per pair of stores; all removed when the factory is dropped.
struct SledFactory {
    dirs: Vec<tempfile::TempDir>,
    config: SledConfig,
    crashes: u64,
}

impl SledFactory {
    fn new() -> Self {
        // Small cache: exercises eviction and reads back from disk.
        SledFactory {
            dirs: Vec::new(),
            config: SledConfig { cache_capacity: 1 << 20, ..Default::default() },
            crashes: 0,
        }
    }

    fn new_dir(&mut self) -> std::path::PathBuf {
        // Keep a bounded number of directories alive: cases run one after another, and
        // the store in use is always among the last 13 (a concurrency case makes 8).
        if self.dirs.len() > 12 {
            self.dirs.remove(0);
        }
        self.dirs.push(tempfile::tempdir().expect("creating a temporary directory"));
        self.dirs.last().expect("just pushed").path().join("store")
    }

    fn open(&self, path: &std::path::Path) -> (SledLogStore, FileSnapshotStore) {
        raft_sled::open(path, &self.config).unwrap_or_else(|e| panic!("opening {} failed: {e}", path.display()))
    }
}

impl StoreFactory for SledFactory {
    type Log = SledLogStore;
    type Snapshots = FileSnapshotStore;

    fn create(&mut self) -> (SledLogStore, FileSnapshotStore) {
        let dir = self.new_dir();
        self.open(&dir)
    }

    /// Three reopens in four are crashes (see `crash_copy`); the fourth is a clean close.
    fn reopen(
        &mut self,
        log: SledLogStore,
        snapshots: FileSnapshotStore,
        crash_hint: u64,
    ) -> (SledLogStore, FileSnapshotStore) {
        if crash_hint % 4 != 0 {
            let copy = self.crash_copy(&log, &snapshots, crash_hint);
            drop((log, snapshots));
            return copy;
        }
        let path = log.path().to_path_buf();
        drop((log, snapshots));
        self.open(&path)
    }

    /// The stores' files copied as a `kill -9` would leave them (sled's drop flushes, so a
    /// clean close never shows a crash state), while they stay open, and the copy opened.
    fn crash_copy(&mut self, log: &SledLogStore, _: &FileSnapshotStore, _: u64) -> (SledLogStore, FileSnapshotStore) {
        self.crashes += 1;
        let to = self.new_dir();
        common::copy_dir(log.path(), &to);
        self.open(&to)
    }
}

#[test]
fn sled_stores_pass_the_conformance_kit() {
    let mut factory = SledFactory::new();
    // Each case opens and reopens real databases with real fsyncs; 20 cases take a few
    // seconds. RAFT_STORAGE_CASES=500 runs a longer search.
    let cases = std::env::var("RAFT_STORAGE_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(20);
    check_conformance(&mut factory, &Conformance { cases, ..Conformance::default() });
    eprintln!("{cases} cases, {} crash reopens", factory.crashes);
    assert!(factory.crashes > 0, "no case reopened after a crash");
}

#[test]
fn sled_stores_pass_the_concurrency_check() {
    let mut factory = SledFactory::new();
    check_concurrency(&mut factory, &Concurrency::default());
    eprintln!("{} crash copies", factory.crashes);
}
