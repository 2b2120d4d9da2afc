//! The in-memory stores pass the conformance kit, with crashes that lose a random
//! prefix of the unsynced log calls, and its concurrency check.

use raft_storage::testkit::{check_concurrency, check_conformance, Concurrency, Conformance, StoreFactory};
use raft_storage::{mem_stores, MemLogStore, MemSnapshotStore};

struct MemFactory;

impl StoreFactory for MemFactory {
    type Log = MemLogStore;
    type Snapshots = MemSnapshotStore;

    fn create(&mut self) -> (MemLogStore, MemSnapshotStore) {
        mem_stores()
    }

    fn reopen(
        &mut self,
        log: MemLogStore,
        snapshots: MemSnapshotStore,
        crash_hint: u64,
    ) -> (MemLogStore, MemSnapshotStore) {
        let keep = crash_hint as usize % (log.unsynced_calls() + 1);
        (log.crash(keep), snapshots)
    }

    fn crash_copy(
        &mut self,
        log: &MemLogStore,
        snapshots: &MemSnapshotStore,
        crash_hint: u64,
    ) -> (MemLogStore, MemSnapshotStore) {
        self.reopen(log.clone(), snapshots.clone(), crash_hint)
    }
}

#[test]
fn mem_stores_pass_the_conformance_kit() {
    // Cheap: 300 cases unless RAFT_STORAGE_CASES says otherwise.
    let cases = std::env::var("RAFT_STORAGE_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(300);
    let config = Conformance { cases, ..Conformance::default() };
    check_conformance(&mut MemFactory, &config);
}

#[test]
fn mem_stores_pass_the_concurrency_check() {
    check_concurrency(&mut MemFactory, &Concurrency { cases: 20, ..Concurrency::default() });
}
