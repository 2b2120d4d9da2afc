//! # raft-sled: durable stores for raft-core on sled and plain files
//!
//! [`open`] opens the two stores of a store directory together: a [`SledLogStore`]
//! ([`raft_storage::LogStore`]) on a [sled] 0.34 database, with checksummed records, a
//! real durability point and startup integrity checks, and a [`FileSnapshotStore`]
//! ([`raft_storage::SnapshotStore`]) of checksummed snapshot files in a directory of their
//! own. The two share no lock, no file and no fsync: the log writer thread syncs the log
//! while the applier writes and syncs a snapshot. See `docs/storage.md` for the design and
//! how its durability was verified.
//!
//! ## Layout
//!
//! A store is a directory holding:
//!
//! - `sled/`: the sled database, with three trees:
//!   - [`LOG_TREE`]: one record per log entry, keyed by the index as 8 big-endian bytes;
//!   - [`HARD_STATE_TREE`]: the hard state under the key `hard_state`;
//!   - [`SNAPSHOT_TREE`]: the snapshot point under `point`;
//! - `witness`: the log's durability witness ([`WITNESS_FILE`]), outside sled: two
//!   alternating checksummed copies of what the last log sync made durable (the last
//!   synced index and its term, the hard state, whether a snapshot point was recorded).
//! - `snapshots/` ([`SNAPSHOT_DIR`]): the snapshot store — the latest and the staged
//!   snapshot files and the `manifest` naming them (see [`FileSnapshotStore`]).
//!
//! Every record is the CRC-32 of its payload followed by the payload in postcard. A
//! `raft_core::Persist` is one sled transaction over the log, the hard state and the
//! snapshot point ([`LogStore::persist`]): a crash keeps
//! all of it or none of it.
//!
//! ## Durability
//!
//! sled 0.34 flushes its write buffers every 500 ms by default, and its `flush` uses
//! `sync_file_range` on Linux, which flushes neither the disk's write cache nor file
//! metadata. [`LogStore::sync`] therefore does what sled
//! does not: after `Db::flush` it `fdatasync`s sled's data file (`sled/db`), `fsync`s every
//! out-of-line value file sled created since the last sync (`sled/blobs/*`, which sled
//! writes without any sync) and the directories whose entries changed. sled's periodic
//! flush is off by default ([`SledConfig::flush_every_ms`]): writes reach the disk at the
//! durability points the runtime chooses, and many appends share one fsync. Last, it
//! writes the witness's next copy and `fdatasync`s it: one more fdatasync per sync.
//! The snapshot store's writes are durable when its calls return, through fsyncs of its
//! own files and directory only.
//!
//! The first failed write, flush or fsync poisons the handle: every later call fails with
//! [`StorageError::Poisoned`] until the store is reopened (after a failed fsync the kernel
//! may have dropped the dirty pages; a retry would report lost data as durable). Each of
//! the two stores poisons itself alone.
//!
//! ## Startup
//!
//! [`SledLogStore::open`] reads the witness and every record and refuses to start, naming
//! the path and the index, on a damaged or missing witness, on a checksum mismatch, an
//! undecodable record or a gap in the log at or below the witness's synced index, on a
//! log shorter than that index, on a hard state older than the synced one (a forgotten
//! vote), on a lost snapshot point record, or on a hard state whose commit index lies
//! past the log. Damage past the synced index is a torn tail (written but never reported
//! durable): it is truncated and reported by [`SledLogStore::repaired_tail`]. Then it
//! syncs, before anything is reported to the core: entries that survived a crash without
//! being synced are made durable first. [`FileSnapshotStore::open`] refuses a damaged
//! manifest or a named snapshot file of the wrong length.

mod record;
mod snapshot;
mod witness;

pub use snapshot::{
    FileSnapshotReader, FileSnapshotStore, FileSnapshotWriter, MANIFEST_FILE, SNAPSHOT_DIR, WRITER_SYNC_EVERY,
};
pub use witness::{WITNESS_FILE, WITNESS_SLOT};

use raft_core::{Entry, HardState, Index, Persist, SnapshotMeta, Term};
use raft_storage::{check_append, LogStore, StorageError};
use record::{decode, encode, entry_key};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use snapshot::sync_dir;
use std::collections::BTreeSet;
use std::fs::{self, File};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use witness::{Witness, WitnessFile};

/// The tree holding log entries, keyed by big-endian index.
pub const LOG_TREE: &str = "log";
/// The tree holding the hard state (key `hard_state`).
pub const HARD_STATE_TREE: &str = "hard_state";
/// The tree holding the snapshot point (key `point`).
pub const SNAPSHOT_TREE: &str = "snapshot";

const HARD_STATE_KEY: &[u8] = b"hard_state";
const POINT_KEY: &[u8] = b"point";
/// Entries removed per sled batch when compacting (bounds the batch's memory).
const COMPACT_CHUNK: u64 = 4096;

/// Tuning for a [`SledLogStore`].
#[derive(Clone, Debug)]
pub struct SledConfig {
    /// The most memory sled's page cache may use, in bytes (sled's own default is 1 GiB;
    /// ours is 64 MiB: the core keeps the live log in memory anyway).
    pub cache_capacity: u64,
    /// sled's background flush period. `None` (the default): writes reach the disk only at
    /// [`LogStore::sync`], or when sled's write buffers fill.
    /// A background flush is not a durability point either way.
    pub flush_every_ms: Option<u64>,
    /// How long [`LogStore::sync`] waits for sled's flush.
    /// sled 0.34 can wait forever for a write that failed (seen with ENOSPC on a full
    /// tmpfs); past this the store is poisoned instead of hanging the node. 60 s by
    /// default.
    pub flush_timeout: Duration,
}

impl Default for SledConfig {
    fn default() -> Self {
        SledConfig { cache_capacity: 64 << 20, flush_every_ms: None, flush_timeout: Duration::from_secs(60) }
    }
}

/// Opens the two stores of the store directory `path` (creating it if needed), as a node
/// starts: the log store ([`SledLogStore::open`]) and the snapshot store in
/// `path/snapshots` ([`FileSnapshotStore::open`]). Hand both to
/// [`raft_storage::restore`], then move each to the thread that uses it.
pub fn open(path: impl AsRef<Path>, config: &SledConfig) -> Result<(SledLogStore, FileSnapshotStore), StorageError> {
    let log = SledLogStore::open(path.as_ref(), config)?;
    let snapshots = FileSnapshotStore::open(path.as_ref().join(SNAPSHOT_DIR))?;
    Ok((log, snapshots))
}

/// A durable Raft log store on sled. See the crate documentation.
pub struct SledLogStore {
    path: PathBuf,
    sled_dir: PathBuf,
    db: sled::Db,
    log: sled::Tree,
    hard: sled::Tree,
    snap: sled::Tree,
    /// sled's data file, opened by us to fdatasync it.
    db_file: File,
    witness: WitnessFile,
    flush_timeout: Duration,
    // Cached state (the trees are the truth; these mirror them).
    hard_state: HardState,
    point: SnapshotMeta,
    /// A snapshot point record exists (the bootstrap record, for one).
    point_recorded: bool,
    last_index: Index,
    last_term: Term,
    /// Something was written since the last sync.
    dirty: bool,
    /// The first failed write or fsync: every later call fails (see the crate docs).
    poisoned: Option<String>,
    /// Out-of-line value files already fsynced.
    blobs_synced: BTreeSet<String>,
    /// The listing of sled's directory as of its last fsync.
    sled_dir_synced: BTreeSet<String>,
    repaired_tail: Option<Index>,
    recovered_unsynced: Index,
    /// Declared last, so dropped after sled's handles: see `Drop for SledLogStore`.
    dropped: DropSignal,
}

/// Tells a thread holding clones of a poisoned store's sled handles that the store's own
/// handles are gone, so that the thread's are the last and sled's flush-on-drop runs there.
#[derive(Default)]
struct DropSignal(Option<std::sync::mpsc::Sender<()>>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for SledLogStore {
    /// sled flushes when its last handle is dropped, and after some failed writes (ENOSPC)
    /// that flush waits forever. A poisoned store hands its sled handles to a thread that
    /// drops them last, so that dropping the store never hangs the caller. sled keeps its
    /// lock meanwhile: reopen a poisoned store in a new process.
    fn drop(&mut self) {
        if self.poisoned.is_some() {
            let (tx, rx) = std::sync::mpsc::channel();
            let handles = (self.db.clone(), self.log.clone(), self.hard.clone(), self.snap.clone());
            self.dropped.0 = Some(tx);
            let _ = std::thread::Builder::new().name("raft-sled-poisoned-drop".into()).spawn(move || {
                let _ = rx.recv();
                drop(handles);
            });
        }
    }
}

impl std::fmt::Debug for SledLogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledLogStore")
            .field("path", &self.path)
            .field("point", &self.point)
            .field("last_index", &self.last_index)
            .field("synced", &self.witness.current.synced_index)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

/// Turns a panic inside sled (it may panic on damaged files) into an error.
fn no_panic<T>(path: &Path, op: &'static str, f: impl FnOnce() -> Result<T, StorageError>) -> Result<T, StorageError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(StorageError::Backend { path: path.to_path_buf(), op, source: format!("sled panicked: {msg}").into() })
        }
    }
}

impl SledLogStore {
    /// Opens the store in directory `path`, creating it if needed, and checks its integrity
    /// (see the crate documentation): a store that fails the checks is refused with an
    /// error naming the path and the bad index, and the node must not start on it. Before
    /// it returns, everything it reports is durable (it syncs).
    pub fn open(path: impl AsRef<Path>, config: &SledConfig) -> Result<SledLogStore, StorageError> {
        let path = path.as_ref().to_path_buf();
        no_panic(&path, "opening the store", || Self::open_inner(path.clone(), config))
    }

    fn open_inner(path: PathBuf, config: &SledConfig) -> Result<SledLogStore, StorageError> {
        let sled_dir = path.join("sled");
        let witness_path = path.join(WITNESS_FILE);
        let io = |path: &Path, op| {
            let path = path.to_path_buf();
            move |source| StorageError::Io { path, op, source }
        };
        let witness = if witness_path.exists() {
            WitnessFile::open(&witness_path)?
        } else if sled_dir.exists() {
            return Err(StorageError::CorruptWitness {
                path: witness_path,
                reason: "it is missing but sled's database exists; nothing vouches for what was synced".into(),
            });
        } else {
            // A new store: the witness first (it vouches for nothing yet), atomically, so
            // that a crash during creation never leaves a database without one.
            fs::create_dir_all(&path).map_err(io(&path, "creating the store directory"))?;
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
            WitnessFile::create(&path)?
        };
        let backend = |op| {
            let path = path.clone();
            move |e: sled::Error| StorageError::Backend { path, op, source: Box::new(e) }
        };
        let sled_config = sled::Config::new()
            .path(&sled_dir)
            .cache_capacity(config.cache_capacity)
            .flush_every_ms(config.flush_every_ms);
        // sled releases its file lock only when its background threads let go of a
        // dropped database, a moment after the drop: retry briefly on a lock conflict.
        let mut attempts = 0;
        let db = loop {
            match sled_config.open() {
                Err(sled::Error::Io(e)) if attempts < 1000 && e.to_string().contains("could not acquire lock") => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                other => break other.map_err(backend("opening the sled database"))?,
            }
        };
        let tree = |name: &str| db.open_tree(name).map_err(backend("opening a sled tree"));
        let (log, hard, snap) = (tree(LOG_TREE)?, tree(HARD_STATE_TREE)?, tree(SNAPSHOT_TREE)?);
        let db_path = sled_dir.join("db");
        let db_file = File::open(&db_path).map_err(io(&db_path, "opening sled's data file"))?;
        let mut store = SledLogStore {
            path,
            sled_dir,
            db,
            log,
            hard,
            snap,
            db_file,
            witness,
            flush_timeout: config.flush_timeout,
            hard_state: HardState::default(),
            point: SnapshotMeta::default(),
            point_recorded: false,
            last_index: 0,
            last_term: 0,
            dirty: false,
            poisoned: None,
            blobs_synced: BTreeSet::new(),
            sled_dir_synced: BTreeSet::new(),
            repaired_tail: None,
            recovered_unsynced: 0,
            dropped: DropSignal::default(),
        };
        store.load()?;
        // Sync before anything is reported: entries, blobs and directories that survived a
        // crash without being synced become durable now (the core counts every restored
        // entry as durable).
        store.dirty = true;
        store.sync()?;
        Ok(store)
    }

    /// The index from which a torn tail was truncated when the store was opened, if one was:
    /// entries written after the last sync that did not survive a crash intact.
    pub fn repaired_tail(&self) -> Option<Index> {
        self.repaired_tail
    }

    /// How many intact entries past the last synced index the store found when it was
    /// opened (written but not synced before a crash); `open` synced them.
    pub fn recovered_unsynced(&self) -> Index {
        self.recovered_unsynced
    }

    /// The last log index covered by a successful [`LogStore::sync`], as the durability
    /// witness records it.
    pub fn synced_index(&self) -> Index {
        self.witness.current.synced_index
    }

    fn backend(&self, op: &'static str) -> impl FnOnce(sled::Error) -> StorageError {
        let path = self.path.clone();
        move |e| StorageError::Backend { path, op, source: Box::new(e) }
    }

    fn corrupt_record(&self, record: &'static str, reason: String) -> StorageError {
        StorageError::CorruptRecord { path: self.path.clone(), record, reason }
    }

    fn lost(&self, what: String) -> StorageError {
        StorageError::DurableStateLost { path: self.path.clone(), what, durable: self.witness.current.synced_index }
    }

    fn read_record<T: serde::de::DeserializeOwned>(
        &self,
        tree: &sled::Tree,
        key: &[u8],
        record: &'static str,
    ) -> Result<Option<T>, StorageError> {
        match tree.get(key).map_err(self.backend("reading a record"))? {
            None => Ok(None),
            Some(bytes) => decode(&bytes).map(Some).map_err(|e| self.corrupt_record(record, e.to_string())),
        }
    }

    /// Reads and checks everything against the witness (see the crate documentation).
    fn load(&mut self) -> Result<(), StorageError> {
        let w = self.witness.current.clone();
        self.hard_state = self.read_record(&self.hard, HARD_STATE_KEY, "hard state")?.unwrap_or_default();
        let point: Option<SnapshotMeta> = self.read_record(&self.snap, POINT_KEY, "snapshot point")?;
        self.point_recorded = point.is_some();
        self.point = point.unwrap_or_default();

        // Scan the log: consecutive entries after the point, each intact.
        let durable = w.synced_index;
        let mut expected = self.point.index + 1;
        let mut last_term = self.point.term;
        let mut leftovers = Vec::new();
        let mut bad: Option<(Index, Option<String>)> = None;
        for item in self.log.iter() {
            let (key, value) = match item {
                Ok(kv) => kv,
                Err(e) => {
                    bad = Some((expected, Some(format!("sled cannot read it: {e}"))));
                    break;
                }
            };
            let Ok(key) = <[u8; 8]>::try_from(&*key) else {
                return Err(self.corrupt_record("log key", format!("key {key:?} is not an 8-byte index")));
            };
            let index = Index::from_be_bytes(key);
            if index <= self.point.index {
                leftovers.push(index); // an interrupted compaction
                continue;
            }
            if index != expected {
                bad = Some((expected, None));
                break;
            }
            let reason = match decode::<Entry>(&value) {
                Err(e) => Some(e.to_string()),
                Ok(e) if e.index != index => Some(format!("the record holds entry {}", e.index)),
                Ok(e) if e.term < last_term => Some(format!("term {} below the previous term {last_term}", e.term)),
                Ok(e) if index == durable && e.term != w.synced_term => {
                    Some(format!("term {}, but the witness recorded term {} when it was synced", e.term, w.synced_term))
                }
                Ok(e) => {
                    last_term = e.term;
                    None
                }
            };
            if let Some(reason) = reason {
                bad = Some((index, Some(reason)));
                break;
            }
            expected += 1;
        }
        if bad.is_none() && expected <= durable {
            bad = Some((expected, None));
        }
        let mut torn = None;
        if let Some((index, reason)) = bad {
            if index <= durable {
                let path = self.path.clone();
                return Err(match reason {
                    Some(reason) => StorageError::CorruptEntry { path, index, reason },
                    None => StorageError::MissingEntry { path, index, durable },
                });
            }
            torn = Some((index, reason));
        }
        self.last_index = expected - 1;
        self.last_term = last_term;
        // The hard state may have moved on since the sync (a later term, or a vote in the
        // synced term that had none), never back.
        let (hs, whs) = (self.hard_state, w.hard_state);
        if hs.term < whs.term || (hs.term == whs.term && whs.vote.is_some() && hs.vote != whs.vote) {
            return Err(self.lost(format!(
                "the stored hard state is term {}, vote {:?}, older than the synced term {}, vote {:?} (a vote \
                 could be cast twice)",
                hs.term, hs.vote, whs.term, whs.vote
            )));
        }
        if let Some(p) = w.point_index {
            if !self.point_recorded || self.point.index < p {
                return Err(self.lost(format!(
                    "the snapshot point record is {}, older than the synced point at index {p}",
                    if self.point_recorded { format!("at index {}", self.point.index) } else { "missing".into() }
                )));
            }
        }
        self.recovered_unsynced = self.last_index.saturating_sub(durable.max(self.point.index));
        if self.hard_state.commit > self.last_index {
            return Err(StorageError::HardStatePastLog {
                path: self.path.clone(),
                commit: self.hard_state.commit,
                last_index: self.last_index,
            });
        }
        // Every check passed: now repair.
        if let Some((index, reason)) = torn {
            // Never reported durable: a torn tail. Drop it and everything after it.
            tracing::warn!(target: "raft::storage", path = %self.path.display(), index, reason = reason.as_deref().unwrap_or("missing"), "truncating a torn log tail");
            let mut batch = sled::Batch::default();
            for key in self.log.range(entry_key(index)..).keys() {
                match key {
                    Ok(key) => batch.remove(key),
                    Err(e) => {
                        return Err(StorageError::CorruptEntry {
                            path: self.path.clone(),
                            index,
                            reason: format!("past the synced index {durable}, but sled cannot remove it: {e}"),
                        })
                    }
                }
            }
            self.log.apply_batch(batch).map_err(self.backend("truncating a torn tail"))?;
            self.repaired_tail = Some(index);
        }
        if !leftovers.is_empty() {
            let mut batch = sled::Batch::default();
            leftovers.iter().for_each(|i| batch.remove(&entry_key(*i)));
            self.log.apply_batch(batch).map_err(self.backend("finishing a compaction"))?;
        }
        Ok(())
    }

    fn read_entry(&self, index: Index) -> Result<Entry, StorageError> {
        let value = self.log.get(entry_key(index)).map_err(self.backend("reading an entry"))?;
        let Some(value) = value else {
            return Err(StorageError::MissingEntry {
                path: self.path.clone(),
                index,
                durable: self.witness.current.synced_index,
            });
        };
        self.decode_entry(index, &value)
    }

    fn decode_entry(&self, index: Index, value: &[u8]) -> Result<Entry, StorageError> {
        match decode::<Entry>(value) {
            Ok(e) if e.index == index => Ok(e),
            Ok(e) => Err(StorageError::CorruptEntry {
                path: self.path.clone(),
                index,
                reason: format!("the record holds entry {}", e.index),
            }),
            Err(e) => Err(StorageError::CorruptEntry { path: self.path.clone(), index, reason: e.to_string() }),
        }
    }

    /// The term at `index` as the store holds it now (the point's term at the point).
    fn term_at(&self, point: &SnapshotMeta, index: Index) -> Result<Term, StorageError> {
        if index == point.index {
            Ok(point.term)
        } else {
            Ok(self.read_entry(index)?.term)
        }
    }

    /// Before synced entries are removed (a truncation, a log dropped by a disagreeing
    /// snapshot), the witness is lowered durably to what stays, so that a crash after the
    /// removal is never mistaken for lost data.
    fn lower_witness(&mut self, index: Index, term: Term) -> Result<(), StorageError> {
        if index >= self.witness.current.synced_index {
            return Ok(());
        }
        let lowered = Witness { synced_index: index, synced_term: term, ..self.witness.current.clone() };
        self.witness.write(lowered)
    }

    fn check_poisoned(&self) -> Result<(), StorageError> {
        match &self.poisoned {
            None => Ok(()),
            Some(cause) => Err(StorageError::Poisoned { path: self.path.clone(), cause: cause.clone() }),
        }
    }

    /// Runs a mutation: refused once poisoned, and its failure poisons the store.
    fn mutate<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, StorageError>) -> Result<T, StorageError> {
        self.check_poisoned()?;
        let result = f(self);
        if let Err(e) = &result {
            // Misuse rejected before anything was written leaves the store as it was.
            if !matches!(
                e,
                StorageError::NotContiguous { .. }
                    | StorageError::TermRegression { .. }
                    | StorageError::TruncateIntoSnapshot { .. }
            ) {
                tracing::error!(target: "raft::storage", path = %self.path.display(), error = %e, "poisoning the store");
                self.poisoned = Some(e.to_string());
            }
        }
        result
    }

    /// `db.flush()`, bounded by the flush timeout: sled 0.34 can wait forever for a write
    /// that failed.
    fn flush_sled(&self) -> Result<(), StorageError> {
        let db = self.db.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("raft-sled-flush".into())
            .spawn(move || {
                let _ = tx.send(db.flush());
            })
            .map_err(|source| StorageError::Io { path: self.path.clone(), op: "starting sled's flush", source })?;
        match rx.recv_timeout(self.flush_timeout) {
            Ok(r) => r.map(drop).map_err(self.backend("flushing sled")),
            Err(_) => Err(StorageError::Backend {
                path: self.path.clone(),
                op: "flushing sled",
                source: format!(
                    "the flush did not finish within {:?} (sled 0.34 waits forever after some failed writes, \
                     e.g. on a full disk)",
                    self.flush_timeout
                )
                .into(),
            }),
        }
    }

    /// Makes what sled wrote durable: see the crate documentation.
    fn fsync_files(&mut self) -> Result<(), StorageError> {
        let io = |path: &Path, op| {
            let path = path.to_path_buf();
            move |source| StorageError::Io { path, op, source }
        };
        self.db_file.sync_data().map_err(io(&self.sled_dir.join("db"), "fdatasyncing sled's data file"))?;
        let blobs = self.sled_dir.join("blobs");
        let mut new_blobs = false;
        for entry in fs::read_dir(&blobs).map_err(io(&blobs, "listing sled's blob files"))? {
            let entry = entry.map_err(io(&blobs, "listing sled's blob files"))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !self.blobs_synced.contains(&name) {
                let path = entry.path();
                match File::open(&path) {
                    Ok(f) => f.sync_all().map_err(io(&path, "fsyncing a sled blob file"))?,
                    // Garbage-collected by sled since the listing.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io(&path, "opening a sled blob file")(e)),
                }
                self.blobs_synced.insert(name);
                new_blobs = true;
            }
        }
        if new_blobs {
            sync_dir(&blobs)?;
        }
        // sled creates, renames and removes its own snapshot files (`snap.*`) in its
        // directory: fsync it when its listing changed (a clean directory's fsync still
        // costs about a fifth of a data fsync).
        let mut names = BTreeSet::new();
        for entry in fs::read_dir(&self.sled_dir).map_err(io(&self.sled_dir, "listing sled's directory"))? {
            names.insert(
                entry
                    .map_err(io(&self.sled_dir, "listing sled's directory"))?
                    .file_name()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        if names != self.sled_dir_synced {
            sync_dir(&self.sled_dir)?;
            if self.sled_dir_synced.is_empty() {
                // The first sync of this handle: the store directory's entries too.
                sync_dir(&self.path)?;
            }
            self.sled_dir_synced = names;
        }
        Ok(())
    }

    /// The witness of the current state.
    fn current_witness(&self) -> Witness {
        Witness {
            generation: 0,
            synced_index: self.last_index,
            synced_term: self.last_term,
            hard_state: self.hard_state,
            point_index: self.point_recorded.then_some(self.point.index),
        }
    }

    fn sync_inner(&mut self) -> Result<(), StorageError> {
        if !self.dirty {
            return Ok(());
        }
        self.flush_sled()?;
        self.fsync_files()?;
        let want = self.current_witness();
        if !want.same_claims(&self.witness.current) {
            self.witness.write(want)?;
        }
        self.dirty = false;
        Ok(())
    }

    /// Compaction: drops entries `lo..=hi` (at or below the recorded point) in bounded
    /// batches. A crash in between leaves entries at or below the point, which `open`
    /// ignores and removes.
    fn remove_compacted(&self, lo: Index, hi: Index) -> Result<(), StorageError> {
        let mut lo = lo;
        while lo <= hi {
            let chunk_hi = hi.min(lo + COMPACT_CHUNK - 1);
            let mut batch = sled::Batch::default();
            (lo..=chunk_hi).for_each(|i| batch.remove(&entry_key(i)));
            self.log.apply_batch(batch).map_err(self.backend("compacting the log"))?;
            lo = chunk_hi + 1;
        }
        Ok(())
    }

    /// One persist as one sled transaction (see [`LogStore::persist`]).
    fn persist_inner(&mut self, p: &Persist) -> Result<(), StorageError> {
        let mut point = self.point.clone();
        let (mut last_index, mut last_term) = (self.last_index, self.last_term);
        let mut remove: Option<(Index, Index)> = None;
        let mut compacted: Option<(Index, Index)> = None;
        let mut lower: Option<(Index, Term)> = None;
        let mut new_point = None;
        if let Some(s) = p.snapshot.as_deref() {
            if s.index >= point.index {
                if s.index <= last_index && self.term_at(&point, s.index)? == s.term {
                    compacted = Some((point.index + 1, s.index));
                } else {
                    if point.index < last_index {
                        remove = Some((point.index + 1, last_index));
                    }
                    lower = Some((point.index, point.term));
                    (last_index, last_term) = (s.index, s.term);
                }
                point = s.clone();
                new_point = Some(s);
            }
        }
        if let Some(first) = p.entries.first() {
            if first.index <= last_index {
                if first.index <= point.index {
                    return Err(StorageError::TruncateIntoSnapshot {
                        path: self.path.clone(),
                        index: first.index,
                        snapshot_index: point.index,
                    });
                }
                let term = self.term_at(&point, first.index - 1)?;
                remove = Some((first.index, remove.map_or(last_index, |(_, hi)| hi).max(last_index)));
                if lower.is_none_or(|(i, _)| first.index - 1 < i) {
                    lower = Some((first.index - 1, term));
                }
                (last_index, last_term) = (first.index - 1, term);
            }
            check_append(&self.path, last_index, last_term, &p.entries)?;
            let last = p.entries.last().expect("not empty");
            (last_index, last_term) = (last.index, last.term);
        }
        if let Some((index, term)) = lower {
            self.lower_witness(index, term)?;
        }
        let mut batch = sled::Batch::default();
        if let Some((lo, hi)) = remove {
            // A disagreeing snapshot and a truncation may both remove: from the lowest.
            let lo = lo.min(p.entries.first().map_or(lo, |e| e.index));
            (lo..=hi).for_each(|i| batch.remove(&entry_key(i)));
        }
        for e in &p.entries {
            batch.insert(&entry_key(e.index), encode(e));
        }
        let point_record = new_point.map(encode);
        let hs_record = p.hard_state.as_ref().map(encode);
        let result: Result<(), TransactionError<()>> =
            (&self.log, &self.hard, &self.snap).transaction(|(log, hard, snap)| {
                log.apply_batch(&batch)?;
                if let Some(r) = &point_record {
                    snap.insert(POINT_KEY, r.as_slice())?;
                }
                if let Some(r) = &hs_record {
                    hard.insert(HARD_STATE_KEY, r.as_slice())?;
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            });
        result.map_err(|e| match e {
            TransactionError::Storage(e) => self.backend("applying a persist")(e),
            TransactionError::Abort(()) => unreachable!("the transaction never aborts"),
        })?;
        self.dirty = true;
        if let Some(s) = new_point {
            self.point = s.clone();
            self.point_recorded = true;
        }
        (self.last_index, self.last_term) = (last_index, last_term);
        if let Some(hs) = p.hard_state {
            self.hard_state = hs;
        }
        if let Some((lo, hi)) = compacted {
            self.remove_compacted(lo, hi)?;
        }
        Ok(())
    }
}

impl LogStore for SledLogStore {
    fn path(&self) -> &Path {
        &self.path
    }

    fn hard_state(&self) -> HardState {
        self.hard_state
    }

    fn snapshot_point(&self) -> SnapshotMeta {
        self.point.clone()
    }

    fn first_index(&self) -> Index {
        self.point.index + 1
    }

    fn last_index(&self) -> Index {
        self.last_index
    }

    fn term(&self, index: Index) -> Result<Option<Term>, StorageError> {
        self.check_poisoned()?;
        if index == self.point.index {
            return Ok(Some(self.point.term));
        }
        if index < self.point.index || index > self.last_index {
            return Ok(None);
        }
        if index == self.last_index {
            return Ok(Some(self.last_term));
        }
        Ok(Some(self.read_entry(index)?.term))
    }

    fn entries(&self, range: Range<Index>) -> Result<Vec<Entry>, StorageError> {
        self.check_poisoned()?;
        if range.is_empty() {
            return Ok(Vec::new());
        }
        if range.start <= self.point.index || range.end > self.last_index + 1 {
            return Err(StorageError::Unavailable {
                path: self.path.clone(),
                lo: range.start,
                hi: range.end,
                first_index: self.point.index + 1,
                last_index: self.last_index,
            });
        }
        let durable = self.witness.current.synced_index;
        let mut out = Vec::with_capacity((range.end - range.start) as usize);
        for item in self.log.range(entry_key(range.start)..entry_key(range.end)) {
            let expected = range.start + out.len() as Index;
            let (key, value) = item.map_err(|e| StorageError::CorruptEntry {
                path: self.path.clone(),
                index: expected,
                reason: format!("sled cannot read it: {e}"),
            })?;
            let index = <[u8; 8]>::try_from(&*key).map_or(expected, Index::from_be_bytes);
            if index != expected {
                return Err(StorageError::MissingEntry { path: self.path.clone(), index: expected, durable });
            }
            out.push(self.decode_entry(index, &value)?);
        }
        if out.len() as Index != range.end - range.start {
            let index = range.start + out.len() as Index;
            return Err(StorageError::MissingEntry { path: self.path.clone(), index, durable });
        }
        Ok(out)
    }

    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        self.mutate(|s| {
            check_append(&s.path, s.last_index, s.last_term, entries)?;
            let Some(last) = entries.last() else { return Ok(()) };
            let mut batch = sled::Batch::default();
            for e in entries {
                batch.insert(&entry_key(e.index), encode(e));
            }
            s.log.apply_batch(batch).map_err(s.backend("appending entries"))?;
            s.last_index = last.index;
            s.last_term = last.term;
            s.dirty = true;
            Ok(())
        })
    }

    fn truncate_from(&mut self, index: Index) -> Result<(), StorageError> {
        self.mutate(|s| {
            if index <= s.point.index {
                return Err(StorageError::TruncateIntoSnapshot {
                    path: s.path.clone(),
                    index,
                    snapshot_index: s.point.index,
                });
            }
            if index > s.last_index {
                return Ok(());
            }
            let term = s.term_at(&s.point.clone(), index - 1)?;
            s.lower_witness(index - 1, term)?;
            let mut batch = sled::Batch::default();
            (index..=s.last_index).for_each(|i| batch.remove(&entry_key(i)));
            s.log.apply_batch(batch).map_err(s.backend("truncating the log"))?;
            s.last_index = index - 1;
            s.last_term = term;
            s.dirty = true;
            Ok(())
        })
    }

    fn save_hard_state(&mut self, hard_state: &HardState) -> Result<(), StorageError> {
        self.mutate(|s| {
            s.hard.insert(HARD_STATE_KEY, encode(hard_state)).map_err(s.backend("saving the hard state"))?;
            s.hard_state = *hard_state;
            s.dirty = true;
            Ok(())
        })
    }

    fn set_snapshot_point(&mut self, meta: &SnapshotMeta) -> Result<(), StorageError> {
        let persist =
            Persist { seq: 0, hard_state: None, entries: Default::default(), snapshot: Some(Box::new(meta.clone())) };
        self.mutate(|s| s.persist_inner(&persist))
    }

    fn persist(&mut self, persist: &Persist) -> Result<(), StorageError> {
        self.mutate(|s| s.persist_inner(persist))
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.mutate(|s| s.sync_inner())
    }
}
