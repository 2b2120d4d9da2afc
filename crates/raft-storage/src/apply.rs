//! Helpers that drive a [`Storage`] the way the core requires, so runtimes cannot get the
//! order wrong.

use crate::{Storage, StorageError};
use raft_core::{Entry, HardState, Index, Membership, NodeId, Persist, RestoredState, SnapshotMeta, Term};
use std::path::Path;

/// Applies one `Action::Persist` to `store`, exactly as `raft_core::Persist` specifies:
///
/// 1. record `snapshot` if set: drop the entries up to its index, and if the stored entry
///    at its index does not have its term, drop the stored log (Raft §7);
/// 2. drop stored entries with index `>= entries[0].index` and append `entries`;
/// 3. store `hard_state` if set.
///
/// Nothing is durable until [`Storage::sync`]: apply any number of persists, sync once,
/// then report `Input::Persisted { seq }` with the highest `seq` applied.
///
/// The store applies it atomically ([`Storage::persist`]): a crash leaves all of it or
/// none of it.
pub fn apply_persist<S: Storage + ?Sized>(store: &mut S, persist: &Persist) -> Result<(), StorageError> {
    store.persist(persist)
}

/// Reads the state a restarting node resumes from, for `raft_core::Node::new`.
///
/// If the latest snapshot data is newer than the snapshot point (a crash came between
/// [`Storage::finish_snapshot`] and the persist recording its point), the point is moved to
/// it first and synced. `applied` is set to the snapshot point: the state machine is
/// restored from the snapshot data and the entries after it are applied again. A runtime
/// whose state machine is itself durable may raise `applied` to what it has applied.
///
/// Fails with [`StorageError::SnapshotBehindLog`] if snapshot data exists but is older than
/// the snapshot point (the entries between them are lost).
pub fn restore<S: Storage + ?Sized>(store: &mut S) -> Result<RestoredState, StorageError> {
    let point = store.snapshot_point();
    if let Some(data) = store.snapshot_data_meta() {
        if data.index > point.index {
            // The term persisted with the install may have been lost with it. Raising the
            // term (with no vote) is safe: a vote in that term was never sent, as it was
            // not durable. The point and the term go in one persist, so that a crash
            // cannot keep the point without the term.
            let hs = store.hard_state();
            let raised = (hs.term < data.term).then_some(HardState { term: data.term, vote: None, ..hs });
            let persist =
                Persist { seq: 0, hard_state: raised, entries: Default::default(), snapshot: Some(Box::new(data)) };
            store.persist(&persist)?;
            store.sync()?;
        } else if data.index < point.index {
            return Err(StorageError::SnapshotBehindLog {
                path: store.path().to_path_buf(),
                data_index: data.index,
                point_index: point.index,
            });
        }
    }
    let snapshot = store.snapshot_point();
    let entries = store.entries(store.first_index()..store.last_index() + 1)?;
    Ok(RestoredState { hard_state: store.hard_state(), applied: snapshot.index, snapshot, entries })
}

/// Makes a brand-new store the first state of a founding member of a new cluster whose
/// initial voters are `voters` (every founder must use the same set), and syncs it.
/// Returns `false` and changes nothing if the store is not empty (the node restarted).
///
/// Call it before [`restore`] when starting a new cluster. Without it the initial
/// membership would live only in memory, and a founder restarting before its first
/// snapshot would come back as a member of no cluster. A node joining an existing cluster
/// skips it.
pub fn bootstrap<S: Storage + ?Sized>(
    store: &mut S,
    voters: impl IntoIterator<Item = NodeId>,
) -> Result<bool, StorageError> {
    if !is_empty(store) {
        return Ok(false);
    }
    let meta = SnapshotMeta { index: 0, term: 0, membership: Membership::with_voters(voters) };
    store.set_snapshot_point(&meta)?;
    store.sync()?;
    Ok(true)
}

/// True if the store holds nothing at all: no entry, no hard state, no snapshot point, no
/// snapshot data.
pub fn is_empty<S: Storage + ?Sized>(store: &S) -> bool {
    store.last_index() == 0
        && store.hard_state() == Default::default()
        && store.snapshot_point() == SnapshotMeta::default()
        && store.snapshot_data_meta().is_none()
}

/// Checks that `entries` may be appended to a log whose last entry is (`last_index`,
/// `last_term`): consecutive from `last_index + 1`, terms non-decreasing. For
/// implementations of [`Storage::append`].
pub fn check_append(path: &Path, last_index: Index, last_term: Term, entries: &[Entry]) -> Result<(), StorageError> {
    let (mut expected, mut previous) = (last_index + 1, last_term);
    for e in entries {
        if e.index != expected {
            return Err(StorageError::NotContiguous { path: path.to_path_buf(), expected, found: e.index });
        }
        if e.term < previous {
            return Err(StorageError::TermRegression {
                path: path.to_path_buf(),
                index: e.index,
                term: e.term,
                previous,
            });
        }
        expected += 1;
        previous = e.term;
    }
    Ok(())
}
