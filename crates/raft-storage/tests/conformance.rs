//! The in-memory store passes the conformance kit, with crashes that lose a random
//! prefix of the unsynced calls.

use raft_storage::testkit::{check_conformance, Conformance, StoreFactory};
use raft_storage::MemStorage;

struct MemFactory;

impl StoreFactory for MemFactory {
    type Store = MemStorage;

    fn create(&mut self) -> MemStorage {
        MemStorage::new()
    }

    fn reopen(&mut self, store: MemStorage, crash_hint: u64) -> MemStorage {
        let keep = crash_hint as usize % (store.unsynced_calls() + 1);
        store.crash(keep)
    }
}

#[test]
fn mem_storage_passes_the_conformance_kit() {
    // Cheap: 300 cases unless RAFT_STORAGE_CASES says otherwise.
    let cases = std::env::var("RAFT_STORAGE_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(300);
    let config = Conformance { cases, ..Conformance::default() };
    check_conformance(&mut MemFactory, &config);
}
