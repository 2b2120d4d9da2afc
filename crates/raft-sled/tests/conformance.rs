//! The sled store passes the storage conformance kit.

use raft_sled::{SledConfig, SledStorage};
use raft_storage::testkit::{check_conformance, Conformance, StoreFactory};
use raft_storage::Storage;

/// One temporary directory per store; all removed when the factory is dropped.
struct SledFactory {
    dirs: Vec<tempfile::TempDir>,
    config: SledConfig,
}

impl StoreFactory for SledFactory {
    type Store = SledStorage;

    fn create(&mut self) -> SledStorage {
        // Keep at most a few directories alive: cases run one after another.
        if self.dirs.len() > 4 {
            self.dirs.remove(0);
        }
        let dir = tempfile::tempdir().expect("creating a temporary directory");
        let store = SledStorage::open(dir.path(), &self.config).expect("opening a new store");
        self.dirs.push(dir);
        store
    }

    fn reopen(&mut self, store: SledStorage, _crash_hint: u64) -> SledStorage {
        let path = store.path().to_path_buf();
        drop(store);
        SledStorage::open(&path, &self.config).expect("reopening the store")
    }
}

#[test]
fn sled_storage_passes_the_conformance_kit() {
    // Small cache: exercises eviction and reads back from disk.
    let mut factory =
        SledFactory { dirs: Vec::new(), config: SledConfig { cache_capacity: 1 << 20, ..Default::default() } };
    // Each case opens and reopens real databases with real fsyncs; 20 cases take a few
    // seconds. RAFT_STORAGE_CASES=500 runs a longer search.
    let cases = std::env::var("RAFT_STORAGE_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(20);
    check_conformance(&mut factory, &Conformance { cases, ..Conformance::default() });
}
