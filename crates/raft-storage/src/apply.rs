//! Helpers that drive a [`LogStore`] and a [`SnapshotStore`] the way the core requires, so
//! runtimes cannot get the order wrong.

use crate::{LogStore, SnapshotStore, StorageError};
use raft_core::{Entry, HardState, Index, NodeId, NodeInfo, Persist, RestoredState, SnapshotMeta, Term};
use std::path::Path;

/// Applies one `Action::Persist` to `log`, exactly as `raft_core::Persist` specifies:
///
/// 1. record `snapshot` if set: drop the entries up to its index, and if the stored entry
///    at its index does not have its term, drop the stored log (Raft §7);
/// 2. drop stored entries with index `>= entries[0].index` and append `entries`;
/// 3. store `hard_state` if set.
///
/// Nothing is durable until [`LogStore::sync`]: apply any number of persists, sync once,
/// then report `Input::Persisted { seq }` with the highest `seq` applied.
///
/// The store applies it atomically ([`LogStore::persist`]): a crash leaves all of it or
/// none of it.
pub fn apply_persist<L: LogStore + ?Sized>(log: &mut L, persist: &Persist) -> Result<(), StorageError> {
    log.persist(persist)
}

/// Reads the state a restarting node resumes from, for `raft_core::Node::new`, and
/// reconciles the two stores, which a crash may have left one step apart:
///
/// - A staged snapshot is promoted if the log's snapshot point names it (same index and
///   term) and it is newer than the latest snapshot (the core's decision to install it
///   reached the log before the promotion did); otherwise it is discarded (the core never
///   decided to install it, or the decision was not durable).
/// - If the latest snapshot is then newer than the log's snapshot point (a crash came
///   between [`SnapshotStore::finish`] or [`SnapshotStore::promote`] and the persist
///   recording its point), the point is moved to it first, with the term raised to the
///   snapshot's if it is lower, and synced.
///
/// `applied` is set to the snapshot point: the state machine is restored from the latest
/// snapshot and the entries after it are applied again. A runtime whose state machine is
/// itself durable may raise `applied` to what it has applied.
///
/// Fails with [`StorageError::SnapshotBehindLog`] if a snapshot exists but is older than
/// the snapshot point (the entries between them are lost).
pub fn restore<L, S>(log: &mut L, snapshots: &mut S) -> Result<RestoredState, StorageError>
where
    L: LogStore + ?Sized,
    S: SnapshotStore + ?Sized,
{
    let point = log.snapshot_point();
    if let Some(staged) = snapshots.staged() {
        let named = staged.index == point.index && staged.term == point.term;
        let newer = snapshots.latest().is_none_or(|l| l.index < staged.index);
        if named && newer {
            snapshots.promote()?;
        } else {
            snapshots.discard_staged()?;
        }
    }
    if let Some(data) = snapshots.latest() {
        if data.index > point.index {
            // The term persisted with the install may have been lost with it. Raising the
            // term (with no vote) is safe: a vote in that term was never sent, as it was
            // not durable. The point and the term go in one persist, so that a crash
            // cannot keep the point without the term.
            let hs = log.hard_state();
            let raised = (hs.term < data.term).then_some(HardState { term: data.term, vote: None, ..hs });
            let persist =
                Persist { seq: 0, hard_state: raised, entries: Default::default(), snapshot: Some(Box::new(data)) };
            log.persist(&persist)?;
            log.sync()?;
        } else if data.index < point.index {
            return Err(StorageError::SnapshotBehindLog {
                path: snapshots.path().to_path_buf(),
                data_index: data.index,
                point_index: point.index,
            });
        }
    }
    let snapshot = log.snapshot_point();
    let entries = log.entries(log.first_index()..log.last_index() + 1)?;
    Ok(RestoredState { hard_state: log.hard_state(), applied: snapshot.index, snapshot, entries })
}

/// Makes brand-new stores the first state of a founding member of a new cluster whose
/// initial voters are `voters` (every founder must use the same set), and syncs the log.
/// Returns `false` and changes nothing if the stores are not empty (the node restarted).
///
/// Call it before [`restore`] when starting a new cluster. Without it the initial
/// membership would live only in memory, and a founder restarting before its first
/// snapshot would come back as a member of no cluster. A node joining an existing cluster
/// skips it. [`bootstrap_with_info`] records the founders' node info (their addresses)
/// too; a runtime whose transport resolves peers from it needs that one.
pub fn bootstrap<L, S>(
    log: &mut L,
    snapshots: &S,
    voters: impl IntoIterator<Item = NodeId>,
) -> Result<bool, StorageError>
where
    L: LogStore + ?Sized,
    S: SnapshotStore + ?Sized,
{
    bootstrap_with_info(log, snapshots, voters.into_iter().map(|id| (id, NodeInfo::default())))
}

/// As [`bootstrap`], recording each founder's node info with it (empty info is not
/// recorded), exactly as `RestoredState::bootstrap_with_info` describes the first state:
/// the info is in the configuration from the first start, so every node resolves every
/// founder's address before any entry is replicated, and after a restart too.
pub fn bootstrap_with_info<L, S>(
    log: &mut L,
    snapshots: &S,
    members: impl IntoIterator<Item = (NodeId, NodeInfo)>,
) -> Result<bool, StorageError>
where
    L: LogStore + ?Sized,
    S: SnapshotStore + ?Sized,
{
    if !is_empty(log, snapshots) {
        return Ok(false);
    }
    log.set_snapshot_point(&RestoredState::bootstrap_with_info(members).snapshot)?;
    log.sync()?;
    Ok(true)
}

/// True if the stores hold nothing at all: no entry, no hard state, no snapshot point, no
/// snapshot, nothing staged.
pub fn is_empty<L, S>(log: &L, snapshots: &S) -> bool
where
    L: LogStore + ?Sized,
    S: SnapshotStore + ?Sized,
{
    log.last_index() == 0
        && log.hard_state() == Default::default()
        && log.snapshot_point() == SnapshotMeta::default()
        && snapshots.latest().is_none()
        && snapshots.staged().is_none()
}

/// Checks that `entries` may be appended to a log whose last entry is (`last_index`,
/// `last_term`): consecutive from `last_index + 1`, terms non-decreasing. For
/// implementations of [`LogStore::append`].
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
