//! The one error type every store returns.

use raft_core::Index;
use std::path::PathBuf;

/// Why a storage call failed. Every variant names the store's path (`<memory>` for the
/// in-memory store) so that an operator can find the files involved.
///
/// Errors from [`LogStore::sync`](crate::LogStore::sync) and from opening a store are not
/// retriable: after a failed fsync the kernel may already have dropped the dirty pages, so
/// the only safe reaction is to stop the node and restart it from what is on disk.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An operating-system call failed.
    #[error("{path}: I/O error while {op}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What the store was doing.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The storage engine underneath the store failed.
    #[error("{path}: storage engine error while {op}: {source}")]
    Backend {
        /// The store's path.
        path: PathBuf,
        /// What the store was doing.
        op: &'static str,
        /// The engine's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A stored log entry failed its integrity check at startup, at or below the last index
    /// reported durable. The node must not start on this store: restore it from a peer.
    #[error(
        "{path}: log entry {index} is corrupt ({reason}); it was reported durable, so the node \
         must not start on this store: move the directory aside and let the node catch up from a peer"
    )]
    CorruptEntry {
        /// The store's path.
        path: PathBuf,
        /// The bad index.
        index: Index,
        /// What is wrong with it (checksum mismatch, undecodable, wrong index).
        reason: String,
    },
    /// A log entry at or below the last index reported durable is missing at startup.
    #[error(
        "{path}: log entry {index} is missing, but entries up to {durable} were reported durable; \
         the node must not start on this store: move the directory aside and let the node catch \
         up from a peer"
    )]
    MissingEntry {
        /// The store's path.
        path: PathBuf,
        /// The first missing index.
        index: Index,
        /// The last index reported durable.
        durable: Index,
    },
    /// A record other than a log entry (hard state, snapshot point, snapshot
    /// data) failed its integrity check.
    #[error("{path}: the {record} record is corrupt ({reason}); the node must not start on this store")]
    CorruptRecord {
        /// The store's path.
        path: PathBuf,
        /// Which record.
        record: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The stored hard state's commit index lies past the end of the stored log.
    #[error(
        "{path}: the hard state's commit index {commit} points past the last log index {last_index}; \
         committed entries are missing, so the node must not start on this store"
    )]
    HardStatePastLog {
        /// The store's path.
        path: PathBuf,
        /// The stored commit index.
        commit: Index,
        /// The last index in the log.
        last_index: Index,
    },
    /// The stored snapshot data is older than the log's snapshot point, so the entries in
    /// between can be recovered from neither.
    #[error(
        "{path}: the stored snapshot data ends at index {data_index} but the log was compacted to \
         {point_index}; entries {data_index}+1..={point_index} are lost (store the snapshot data \
         before recording its point)"
    )]
    SnapshotBehindLog {
        /// The store's path.
        path: PathBuf,
        /// The last index covered by the snapshot data.
        data_index: Index,
        /// The log's snapshot point.
        point_index: Index,
    },
    /// Appended entries do not directly continue the log.
    #[error("{path}: append at index {found} does not continue the log (expected index {expected})")]
    NotContiguous {
        /// The store's path.
        path: PathBuf,
        /// The index that would continue the log.
        expected: Index,
        /// The index offered.
        found: Index,
    },
    /// Appended entries have a term lower than the entry before them.
    #[error("{path}: entry {index} has term {term}, below the term {previous} of the entry before it")]
    TermRegression {
        /// The store's path.
        path: PathBuf,
        /// The offending index.
        index: Index,
        /// Its term.
        term: raft_core::Term,
        /// The term before it.
        previous: raft_core::Term,
    },
    /// A truncation reached into the snapshot (only uncommitted suffixes may be truncated).
    #[error("{path}: cannot truncate from index {index}: the log is compacted up to {snapshot_index}")]
    TruncateIntoSnapshot {
        /// The store's path.
        path: PathBuf,
        /// The requested index.
        index: Index,
        /// The snapshot point.
        snapshot_index: Index,
    },
    /// Entries were requested outside the stored range.
    #[error("{path}: entries {lo}..{hi} requested but the log holds {first_index}..={last_index}")]
    Unavailable {
        /// The store's path.
        path: PathBuf,
        /// First requested index.
        lo: Index,
        /// One past the last requested index.
        hi: Index,
        /// First stored index.
        first_index: Index,
        /// Last stored index.
        last_index: Index,
    },
    /// An earlier write or fsync of this handle failed, so the store refuses every call
    /// until it is reopened: after a failed fsync the kernel may have dropped the dirty
    /// pages, and a retry could report as durable data that is gone ("fsyncgate").
    #[error(
        "{path}: the store is poisoned: an earlier write or fsync failed ({cause}); nothing \
         done since the last successful sync may be durable, so every call fails until the \
         store is reopened: stop the node and restart it from the store"
    )]
    Poisoned {
        /// The store's path.
        path: PathBuf,
        /// The first failure.
        cause: String,
    },
    /// The durability witness (the record of what the last sync made durable, kept outside
    /// the storage engine) is damaged or missing, so nothing can vouch for the store.
    #[error(
        "{path}: the durability witness is damaged ({reason}); the store's durable state \
         cannot be vouched for, so the node must not start on it: move the directory aside \
         and let the node catch up from a peer"
    )]
    CorruptWitness {
        /// The witness file.
        path: PathBuf,
        /// What is wrong, with the index the readable copy vouches for, if any.
        reason: String,
    },
    /// State that the durability witness records as synced is missing or older in the
    /// store (a lost hard state, snapshot point or snapshot data record).
    #[error(
        "{path}: {what}, but the durability witness records it as synced (with entries up to \
         index {durable}); the store lost durable state, so the node must not start on it: \
         move the directory aside and let the node catch up from a peer"
    )]
    DurableStateLost {
        /// The store's path.
        path: PathBuf,
        /// What was lost.
        what: String,
        /// The last log index the witness vouches for.
        durable: Index,
    },
    /// [`SnapshotStore::promote`](crate::SnapshotStore::promote) was called with nothing
    /// staged.
    #[error("{path}: no snapshot is staged, so there is nothing to promote (stage one first)")]
    NothingStaged {
        /// The snapshot store's path.
        path: PathBuf,
    },
    /// A promotion would have moved the latest snapshot back.
    #[error(
        "{path}: the staged snapshot ends at index {index} but the latest snapshot already ends at \
         {latest}; the latest snapshot never moves back, so discard the staged one"
    )]
    StaleSnapshot {
        /// The snapshot store's path.
        path: PathBuf,
        /// The staged snapshot's index.
        index: Index,
        /// The latest snapshot's index.
        latest: Index,
    },
    /// A finished snapshot's data did not match its checksum when read back.
    #[error("{path}: snapshot data for index {index} is corrupt ({reason})")]
    CorruptSnapshot {
        /// The snapshot file.
        path: PathBuf,
        /// The snapshot's last index.
        index: Index,
        /// What is wrong with it.
        reason: String,
    },
}
