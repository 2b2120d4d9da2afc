//! The storage contract, split in two: the log store (the log writer thread's) and the
//! snapshot store (the applier's and the snapshot sender's), so that a large snapshot's
//! fsync never stalls a log fsync.

use crate::StorageError;
use raft_core::{Entry, HardState, Index, Persist, SnapshotMeta, Term};
use std::io;
use std::ops::Range;
use std::path::Path;

/// The durable log of one Raft node: its entries, its hard state and its snapshot point.
/// It is the log writer thread's store; snapshot data lives in a separate
/// [`SnapshotStore`] with its own durability, so that the two never wait for each other.
///
/// # Ordering and durability
///
/// Mutating calls take effect immediately for reads through this handle, in call order.
/// They become durable only at the next successful [`LogStore::sync`] (the one durability
/// point, so that a runtime can make many appends durable with one fsync). A crash may
/// lose any suffix of the calls made since the last sync, but never a call made before it,
/// and never leaves a state that was not the result of some prefix of the calls (so a
/// store reopened after a crash always passes its own startup checks). Nothing done to
/// the [`SnapshotStore`] opened with it changes what this store holds or when it is
/// durable.
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
pub trait LogStore: Send {
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

    /// Applies one `raft_core::Persist` as one atomic step: a crash leaves all of it or
    /// none of it (never, say, entries of a new term without the hard state recording that
    /// term, which `raft_core::Node::new` refuses). Like every mutation it becomes durable
    /// at the next [`LogStore::sync`]. Call it through [`apply_persist`](crate::apply_persist).
    ///
    /// The order of its parts is that of `raft_core::Persist`: the snapshot point (as
    /// [`LogStore::set_snapshot_point`]), then the entries (dropping stored entries from
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
    /// nothing changed since the last sync. It never waits for a snapshot being written or
    /// synced in the [`SnapshotStore`].
    fn sync(&mut self) -> Result<(), StorageError>;

    /// Whether every call returns without waiting on I/O or on another thread, as a store
    /// in memory does. A runtime may then call the store from its protocol task rather than
    /// hand each batch to a worker thread and back (raft-tokio does). The default, `false`,
    /// is right for every store that touches a disk: a blocking call there would hold up
    /// the node's heartbeats.
    fn never_blocks(&self) -> bool {
        false
    }
}

/// The durable snapshot data of one Raft node: the latest snapshot (the one the log's
/// snapshot point refers to, or a newer one whose point is not recorded yet) and one
/// staging slot for a snapshot received from a peer that the node has not yet decided to
/// install.
///
/// # Durability
///
/// Independent of the [`LogStore`]: [`SnapshotStore::finish`], [`SnapshotStore::stage`]
/// and [`SnapshotStore::promote`] are each durable when they return, with their own
/// fsyncs, and never wait for (nor make a log sync wait for) anything in the log store.
/// A crash keeps every call that returned and loses a snapshot still being written.
/// Bytes written into a writer are never held whole in memory by a file-backed store.
///
/// # The staging slot
///
/// A snapshot streamed from a peer is written with [`SnapshotStore::begin`] and
/// [`SnapshotStore::stage`], which makes it durable without touching the latest snapshot.
/// The runtime then tells the core (`Input::SnapshotReceived` in the core's v2 contract),
/// and on the core's answer either restores its state machine from
/// [`SnapshotStore::open_staged`] and calls [`SnapshotStore::promote`], or calls
/// [`SnapshotStore::discard_staged`]. The core names the snapshot in its answer: act only
/// if [`SnapshotStore::staged`] is still that one (a newer arrival may have replaced it in
/// the slot). Until promoted, the staged snapshot never replaces
/// the latest one, whatever crash comes; at a restart [`restore`](crate::restore)
/// promotes it only if the log's snapshot point already names it, and discards it
/// otherwise.
///
/// # Errors
///
/// As for [`LogStore`]: a file-backed store poisons itself at the first failed write or
/// fsync of `finish`, `stage`, `promote` or `discard_staged`, and refuses every later call
/// until reopened. Its poisoning is its own: the log store keeps working.
pub trait SnapshotStore: Send {
    /// Streams a snapshot's bytes into the store; see [`SnapshotStore::begin`].
    type Writer: io::Write + Send;
    /// Streams a stored snapshot's bytes out; see [`SnapshotStore::open_latest`].
    type Reader: io::Read + Send;

    /// Where the store lives, as named in its error messages.
    fn path(&self) -> &Path;

    /// Starts writing a snapshot that covers everything up to `meta.index`. Write the bytes
    /// into the returned writer (with no access to the store meanwhile, so another thread
    /// may use it), then hand the writer to [`SnapshotStore::finish`] (a snapshot this node
    /// created) or [`SnapshotStore::stage`] (one received from a peer). Dropping the writer
    /// instead abandons it; nothing stored changes. Several writers may be open at once.
    fn begin(&self, meta: &SnapshotMeta) -> Result<Self::Writer, StorageError>;

    /// Makes the snapshot written into `writer` durable and the latest one (replacing the
    /// previous latest snapshot), then returns `true`. It does not move the log's snapshot
    /// point: the core asks for that with a later `Persist`. If a crash comes in between,
    /// [`restore`](crate::restore) moves the point to the snapshot's index. The staged
    /// snapshot, if any, is left as it is.
    ///
    /// The latest snapshot never moves back: if it is already past the writer's index (an
    /// install promoted on another thread while this snapshot was being written), the
    /// writer is discarded, nothing changes, and it returns `false`.
    fn finish(&mut self, writer: Self::Writer) -> Result<bool, StorageError>;

    /// The metadata of the latest snapshot, if any.
    fn latest(&self) -> Option<SnapshotMeta>;

    /// Opens the latest snapshot for reading (to restore the state machine or stream it to
    /// a peer). The reader reads a snapshot that stays readable even if a later call
    /// replaces it. A file-backed reader verifies the checksum as it reaches the end and
    /// fails the read there with `io::ErrorKind::InvalidData` on a mismatch.
    fn open_latest(&self) -> Result<Option<(SnapshotMeta, Self::Reader)>, StorageError>;

    /// Makes the snapshot written into `writer` durable in the staging slot, replacing any
    /// snapshot staged before, and returns. The latest snapshot does not change.
    fn stage(&mut self, writer: Self::Writer) -> Result<(), StorageError>;

    /// The metadata of the staged snapshot, if any.
    fn staged(&self) -> Option<SnapshotMeta>;

    /// Opens the staged snapshot for reading (to restore the state machine from it before
    /// promoting it), with the same checks as [`SnapshotStore::open_latest`].
    fn open_staged(&self) -> Result<Option<(SnapshotMeta, Self::Reader)>, StorageError>;

    /// Makes the staged snapshot the latest one, durably, empties the staging slot and
    /// returns the promoted snapshot's metadata. Like [`SnapshotStore::finish`], it does not
    /// move the log's snapshot point. Changes nothing and fails with
    /// [`StorageError::NothingStaged`] if the slot is empty, and with
    /// [`StorageError::StaleSnapshot`] if the latest snapshot is already past the staged
    /// one (the latest snapshot never moves back; discard the staged one).
    fn promote(&mut self) -> Result<SnapshotMeta, StorageError>;

    /// Empties the staging slot (a no-op if it is empty); the latest snapshot stays. A
    /// crash may bring a discarded snapshot back into the slot, where
    /// [`restore`](crate::restore) discards it again (the core never records the point of a
    /// snapshot it told the runtime to discard).
    fn discard_staged(&mut self) -> Result<(), StorageError>;
}
