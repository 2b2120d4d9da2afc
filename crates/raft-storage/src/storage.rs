//! The storage contract: what a durable log store offers a runtime.

use crate::StorageError;
use raft_core::{Entry, HardState, Index, Persist, SnapshotMeta, Term};
use std::io;
use std::ops::Range;
use std::path::Path;

/// A durable store for one Raft node: its log, its hard state, its snapshot point and the
/// latest snapshot data.
///
/// # Ordering and durability
///
/// Mutating calls take effect immediately for reads through this handle, in call order.
/// They become durable only at the next successful [`Storage::sync`] (the one durability
/// point, so that a runtime can make many appends durable with one fsync), except
/// [`Storage::finish_snapshot`], which is durable when it returns. A crash may lose any
/// suffix of the calls made since the last sync, but never a call made before it, and
/// never leaves a state that was not the result of some prefix of the calls (so a store
/// reopened after a crash always passes its own startup checks).
///
/// # Errors
///
/// Every call that touches the disk can fail with [`StorageError`]. A failed mutation or
/// sync leaves the handle in an unknown state: drop it, stop the node, and reopen. A
/// file-backed store poisons itself at the first failed write or fsync: every later call
/// fails with [`StorageError::Poisoned`] until the store is reopened, so that a retry can
/// never report as durable what a failed fsync lost.
///
/// Runtimes should not call the mutating methods one by one for `raft_core::Persist`
/// actions: [`apply_persist`](crate::apply_persist) applies a whole persist in the order
/// the core requires. Implementations can be checked with the conformance kit
/// (`testkit::check_conformance`, feature `testkit`).
pub trait Storage {
    /// Streams a snapshot's bytes into the store; see [`Storage::begin_snapshot`].
    type SnapshotWriter: io::Write;
    /// Streams a stored snapshot's bytes out; see [`Storage::open_snapshot`].
    type SnapshotReader: io::Read;

    /// Where the store lives, as named in its error messages.
    fn path(&self) -> &Path;

    /// The stored term, vote and commit hint (all zero for a new store).
    fn hard_state(&self) -> HardState;

    /// The snapshot point: the log holds no entries at or below `snapshot_point().index`
    /// (index 0, term 0 and no members for a new store).
    fn snapshot_point(&self) -> SnapshotMeta;

    /// The first index the log can hold: `snapshot_point().index + 1`.
    fn first_index(&self) -> Index;

    /// The index of the last stored entry, or the snapshot point's index if the log is empty.
    fn last_index(&self) -> Index;

    /// The term of the entry at `index`: the snapshot point's term at its index, `None`
    /// below it or past the last index.
    fn term(&self, index: Index) -> Result<Option<Term>, StorageError>;

    /// Entries `range.start..range.end`, in order. The range must lie within
    /// `first_index()..=last_index()` (an empty range anywhere is fine), else
    /// [`StorageError::Unavailable`].
    fn entries(&self, range: Range<Index>) -> Result<Vec<Entry>, StorageError>;

    /// Appends `entries`, which must be consecutive, start at `last_index() + 1` and have
    /// non-decreasing terms at least the last entry's ([`StorageError::NotContiguous`],
    /// [`StorageError::TermRegression`]). Nothing is appended if the check fails.
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError>;

    /// Removes every entry with index `>= index` (a conflicting, uncommitted suffix). A no-op
    /// past the last index; [`StorageError::TruncateIntoSnapshot`] at or below the snapshot
    /// point.
    fn truncate_from(&mut self, index: Index) -> Result<(), StorageError>;

    /// Replaces the stored hard state. As Raft requires, the term never decreases and a
    /// vote, once cast, never changes within its term: a file-backed store checks the
    /// stored hard state against the synced one at startup on that basis.
    fn save_hard_state(&mut self, hard_state: &HardState) -> Result<(), StorageError>;

    /// Records `meta` as the snapshot point. If the log holds an entry at `meta.index` with
    /// `meta.term`, the entries up to it are dropped and the ones after it kept (compaction);
    /// otherwise the whole log is dropped (the log disagrees with the snapshot, Raft §7). A
    /// point below the current one is ignored; one at the same index replaces it.
    fn set_snapshot_point(&mut self, meta: &SnapshotMeta) -> Result<(), StorageError>;

    /// Starts storing the data of a snapshot that covers everything up to `meta.index`.
    /// Write the bytes into the returned writer (they go straight to the store, never held
    /// whole in memory by a file-backed store), then call [`Storage::finish_snapshot`].
    /// Dropping the writer instead abandons the snapshot; the previous one stays.
    fn begin_snapshot(&mut self, meta: &SnapshotMeta) -> Result<Self::SnapshotWriter, StorageError>;

    /// Makes the snapshot written into `writer` durable and the latest one (replacing the
    /// previous snapshot data), then returns. It does not move the snapshot point: the core
    /// asks for that with a later `Persist`. If a crash comes in between, [`restore`] moves
    /// the point to the data's index.
    ///
    /// [`restore`]: crate::restore
    fn finish_snapshot(&mut self, writer: Self::SnapshotWriter) -> Result<(), StorageError>;

    /// The metadata of the latest finished snapshot data, if any.
    fn snapshot_data_meta(&self) -> Option<SnapshotMeta>;

    /// Opens the latest finished snapshot data for reading (to restore the state machine or
    /// stream it to a peer). A file-backed reader verifies the checksum as it reaches the
    /// end and fails the read there with `io::ErrorKind::InvalidData` on a mismatch.
    fn open_snapshot(&self) -> Result<Option<(SnapshotMeta, Self::SnapshotReader)>, StorageError>;

    /// Applies one `raft_core::Persist` as one atomic step: a crash leaves all of it or
    /// none of it (never, say, entries of a new term without the hard state recording that
    /// term, which `raft_core::Node::new` refuses). Like every mutation it becomes durable
    /// at the next [`Storage::sync`]. Call it through [`apply_persist`](crate::apply_persist).
    ///
    /// The order of its parts is that of `raft_core::Persist`: the snapshot point (as
    /// [`Storage::set_snapshot_point`]), then the entries (dropping stored entries from
    /// `entries[0].index` on, then appending), then the hard state.
    ///
    /// The provided implementation calls those methods one by one, which is atomic only for
    /// a store that loses nothing but whole syncs; a store that can lose a suffix of the
    /// calls since the last sync overrides it. The conformance kit checks it.
    fn persist(&mut self, persist: &Persist) -> Result<(), StorageError> {
        if let Some(s) = &persist.snapshot {
            self.set_snapshot_point(s)?;
        }
        if let Some(first) = persist.entries.first() {
            if first.index <= self.last_index() {
                self.truncate_from(first.index)?;
            }
            self.append(&persist.entries)?;
        }
        if let Some(hs) = &persist.hard_state {
            self.save_hard_state(hs)?;
        }
        Ok(())
    }

    /// The durability point: returns once every earlier call is durable (survives a process
    /// crash, an OS crash and a power loss, as far as the disk honours flushes). Cheap when
    /// nothing changed since the last sync.
    fn sync(&mut self) -> Result<(), StorageError>;
}
