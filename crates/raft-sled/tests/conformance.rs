//! The sled store passes the storage conformance kit, reopened after crashes.

mod common;

use raft_sled::{SledConfig, SledStorage};
use raft_storage::testkit::{check_conformance, Conformance, StoreFactory};
use raft_storage::Storage;

/// One temporary directory per store; all removed when the factory is dropped.
struct SledFactory {
    dirs: Vec<tempfile::TempDir>,
    config: SledConfig,
    crashes: u64,
}

impl SledFactory {
    fn new_dir(&mut self) -> std::path::PathBuf {
        // Keep at most a few directories alive: cases run one after another.
        if self.dirs.len() > 4 {
            self.dirs.remove(0);
        }
        self.dirs.push(tempfile::tempdir().expect("creating a temporary directory"));
        self.dirs.last().expect("just pushed").path().join("store")
    }
}

impl StoreFactory for SledFactory {
    type Store = SledStorage;

    fn create(&mut self) -> SledStorage {
        let dir = self.new_dir();
        SledStorage::open(&dir, &self.config).expect("opening a new store")
    }

    /// Three reopens in four are crashes: the store's files are copied as a `kill -9`
    /// would leave them (sled's drop flushes, so a clean close never shows a crash
    /// state), and the copy is opened. The fourth is a clean close.
    fn reopen(&mut self, store: SledStorage, crash_hint: u64) -> SledStorage {
        let path = if crash_hint % 4 != 0 {
            self.crashes += 1;
            let to = self.new_dir();
            common::crash_copy(store, &to)
        } else {
            let path = store.path().to_path_buf();
            drop(store);
            path
        };
        SledStorage::open(&path, &self.config).unwrap_or_else(|e| panic!("reopening the store failed: {e}"))
    }
}

#[test]
fn sled_storage_passes_the_conformance_kit() {
    // Small cache: exercises eviction and reads back from disk.
    let mut factory = SledFactory {
        dirs: Vec::new(),
        config: SledConfig { cache_capacity: 1 << 20, ..Default::default() },
        crashes: 0,
    };
    // Each case opens and reopens real databases with real fsyncs; 20 cases take a few
    // seconds. RAFT_STORAGE_CASES=500 runs a longer search.
    let cases = std::env::var("RAFT_STORAGE_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(20);
    check_conformance(&mut factory, &Conformance { cases, ..Conformance::default() });
    eprintln!("{cases} cases, {} crash reopens", factory.crashes);
    assert!(factory.crashes > 0, "no case reopened after a crash");
}
