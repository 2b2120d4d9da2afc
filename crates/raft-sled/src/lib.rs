//! # raft-sled: a durable log store for raft-core on sled
//!
//! [`SledStorage`] implements [`raft_storage::Storage`] on a [sled] 0.34 database, with
//! checksummed records, a real durability point and startup integrity checks. See
//! `docs/storage.md` for the design and how its durability was verified.
//!
//! ## Layout
//!
//! A store is a directory holding:
//!
//! - `sled/`: the sled database, with four trees:
//!   - [`LOG_TREE`]: one record per log entry, keyed by the index as 8 big-endian bytes;
//!   - [`HARD_STATE_TREE`]: the hard state under the key `hard_state`;
//!   - [`SNAPSHOT_TREE`]: the snapshot point under `point` and the latest snapshot file's
//!     description (metadata, name, length, checksum) under `data`;
//!   - [`SYNC_TREE`]: the sync marker under `synced`: the last log index reported durable.
//! - `snapshots/`: the latest snapshot data file (`snapshot-<index>-<nonce>.bin`).
//!
//! Every record is the CRC-32 of its payload followed by the payload in postcard.
//!
//! ## Durability
//!
//! sled 0.34 flushes its write buffers every 500 ms by default, and its `flush` uses
//! `sync_file_range` on Linux, which flushes neither the disk's write cache nor file
//! metadata. [`Storage::sync`](raft_storage::Storage::sync) therefore does what sled does
//! not: after `Db::flush` it `fdatasync`s sled's data file (`sled/db`), `fsync`s every
//! out-of-line value file sled created since the last sync (`sled/blobs/*`, which sled
//! writes without any sync) and the directories whose entries changed. sled's periodic
//! flush is off by default ([`SledConfig::flush_every_ms`]): writes reach the disk at the
//! durability points the runtime chooses, and many appends share one fsync.
//!
//! ## Startup
//!
//! [`SledStorage::open`] reads every record and refuses to start, naming the path and the
//! index, on a checksum mismatch, an undecodable record, a gap in the log or a hard state
//! whose commit index lies past the log — at or below the sync marker. Damage past the
//! marker is a torn tail (written but never reported durable): it is truncated and
//! reported by [`SledStorage::repaired_tail`].

mod record;
mod snapshot;

pub use snapshot::{SledSnapshotReader, SledSnapshotWriter};

use raft_core::{Entry, HardState, Index, SnapshotMeta, Term};
use raft_storage::{check_append, Storage, StorageError};
use record::{decode, encode, entry_key};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use snapshot::{sync_dir, SnapshotFile};
use std::collections::BTreeSet;
use std::fs::{self, File};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// The tree holding log entries, keyed by big-endian index.
pub const LOG_TREE: &str = "log";
/// The tree holding the hard state (key `hard_state`).
pub const HARD_STATE_TREE: &str = "hard_state";
/// The tree holding the snapshot point (key `point`) and the snapshot file record (key `data`).
pub const SNAPSHOT_TREE: &str = "snapshot";
/// The tree holding the sync marker (key `synced`).
pub const SYNC_TREE: &str = "sync";

const HARD_STATE_KEY: &[u8] = b"hard_state";
const POINT_KEY: &[u8] = b"point";
const DATA_KEY: &[u8] = b"data";
const SYNCED_KEY: &[u8] = b"synced";
/// Entries removed per sled batch when compacting (bounds the batch's memory).
const COMPACT_CHUNK: u64 = 4096;

/// Tuning for a [`SledStorage`].
#[derive(Clone, Debug)]
pub struct SledConfig {
    /// The most memory sled's page cache may use, in bytes (sled's own default is 1 GiB;
    /// ours is 64 MiB: the core keeps the live log in memory anyway).
    pub cache_capacity: u64,
    /// sled's background flush period. `None` (the default): writes reach the disk only at
    /// [`Storage::sync`](raft_storage::Storage::sync), or when sled's write buffers fill.
    /// A background flush is not a durability point either way.
    pub flush_every_ms: Option<u64>,
}

impl Default for SledConfig {
    fn default() -> Self {
        SledConfig { cache_capacity: 64 << 20, flush_every_ms: None }
    }
}

/// The sync marker: the last log index that a successful sync covered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct SyncMarker {
    last_index: Index,
}

/// A durable Raft log store on sled. See the crate documentation.
pub struct SledStorage {
    path: PathBuf,
    sled_dir: PathBuf,
    snapshot_dir: PathBuf,
    db: sled::Db,
    log: sled::Tree,
    hard: sled::Tree,
    snap: sled::Tree,
    sync_tree: sled::Tree,
    /// sled's data file, opened by us to fdatasync it.
    db_file: File,
    // Cached state (the trees are the truth; these mirror them).
    hard_state: HardState,
    point: SnapshotMeta,
    last_index: Index,
    last_term: Term,
    data: Option<SnapshotFile>,
    /// What the durable sync marker says.
    synced: SyncMarker,
    /// Something was written since the last sync.
    dirty: bool,
    /// Out-of-line value files already fsynced.
    blobs_synced: BTreeSet<String>,
    /// The listing of sled's directory as of its last fsync.
    sled_dir_synced: BTreeSet<String>,
    repaired_tail: Option<Index>,
}

impl std::fmt::Debug for SledStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStorage")
            .field("path", &self.path)
            .field("point", &self.point)
            .field("last_index", &self.last_index)
            .field("synced", &self.synced.last_index)
            .finish_non_exhaustive()
    }
}

impl SledStorage {
    /// Opens the store in directory `path`, creating it if needed, and checks its integrity
    /// (see the crate documentation): a store that fails the checks is refused with an
    /// error naming the path and the bad index, and the node must not start on it.
    pub fn open(path: impl AsRef<Path>, config: &SledConfig) -> Result<SledStorage, StorageError> {
        let path = path.as_ref().to_path_buf();
        let sled_dir = path.join("sled");
        let snapshot_dir = path.join("snapshots");
        let created = !sled_dir.exists();
        for dir in [&path, &snapshot_dir] {
            fs::create_dir_all(dir).map_err(|source| StorageError::Io {
                path: dir.clone(),
                op: "creating the store directory",
                source,
            })?;
        }
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
        let (log, hard, snap, sync_tree) =
            (tree(LOG_TREE)?, tree(HARD_STATE_TREE)?, tree(SNAPSHOT_TREE)?, tree(SYNC_TREE)?);
        let db_path = sled_dir.join("db");
        let db_file = File::open(&db_path).map_err(|source| StorageError::Io {
            path: db_path,
            op: "opening sled's data file",
            source,
        })?;
        let mut store = SledStorage {
            path: path.clone(),
            sled_dir,
            snapshot_dir,
            db,
            log,
            hard,
            snap,
            sync_tree,
            db_file,
            hard_state: HardState::default(),
            point: SnapshotMeta::default(),
            last_index: 0,
            last_term: 0,
            data: None,
            synced: SyncMarker::default(),
            dirty: false,
            blobs_synced: BTreeSet::new(),
            sled_dir_synced: BTreeSet::new(),
            repaired_tail: None,
        };
        if created {
            // Make the new directories and sled's files themselves durable.
            store.dirty = true;
            store.sync()?;
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
            sync_dir(&path)?;
        }
        store.load()?;
        Ok(store)
    }

    /// The index from which a torn tail was truncated when the store was opened, if one was:
    /// entries written after the last sync that did not survive a crash intact.
    pub fn repaired_tail(&self) -> Option<Index> {
        self.repaired_tail
    }

    /// The last log index covered by a successful [`Storage::sync`].
    pub fn synced_index(&self) -> Index {
        self.synced.last_index
    }

    fn backend(&self, op: &'static str) -> impl FnOnce(sled::Error) -> StorageError {
        let path = self.path.clone();
        move |e| StorageError::Backend { path, op, source: Box::new(e) }
    }

    fn corrupt_record(&self, record: &'static str, reason: String) -> StorageError {
        StorageError::CorruptRecord { path: self.path.clone(), record, reason }
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

    /// Reads and checks everything (see the crate documentation).
    fn load(&mut self) -> Result<(), StorageError> {
        self.hard_state = self.read_record(&self.hard, HARD_STATE_KEY, "hard state")?.unwrap_or_default();
        self.point = self.read_record(&self.snap, POINT_KEY, "snapshot point")?.unwrap_or_default();
        self.synced = self.read_record(&self.sync_tree, SYNCED_KEY, "sync marker")?.unwrap_or_default();
        self.data = self.read_record(&self.snap, DATA_KEY, "snapshot data")?;

        // Scan the log: consecutive entries after the point, each intact.
        let mut expected = self.point.index + 1;
        let mut last_term = self.point.term;
        let mut leftovers = Vec::new();
        let mut bad: Option<(Index, Option<String>)> = None;
        for item in self.log.iter() {
            let (key, value) = item.map_err(self.backend("scanning the log"))?;
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
        if bad.is_none() && expected <= self.synced.last_index {
            bad = Some((expected, None));
        }
        if let Some((index, reason)) = bad {
            if index <= self.synced.last_index {
                let path = self.path.clone();
                return Err(match reason {
                    Some(reason) => StorageError::CorruptEntry { path, index, reason },
                    None => StorageError::MissingEntry { path, index, durable: self.synced.last_index },
                });
            }
            // Never reported durable: a torn tail. Drop it and everything after it.
            tracing::warn!(target: "raft::storage", path = %self.path.display(), index, reason = reason.as_deref().unwrap_or("missing"), "truncating a torn log tail");
            let mut batch = sled::Batch::default();
            for key in self.log.range(entry_key(index)..).keys() {
                batch.remove(key.map_err(self.backend("scanning the log"))?);
            }
            self.log.apply_batch(batch).map_err(self.backend("truncating a torn tail"))?;
            self.repaired_tail = Some(index);
            self.dirty = true;
        }
        self.last_index = expected - 1;
        self.last_term = last_term;
        if self.hard_state.commit > self.last_index {
            return Err(StorageError::HardStatePastLog {
                path: self.path.clone(),
                commit: self.hard_state.commit,
                last_index: self.last_index,
            });
        }
        if !leftovers.is_empty() {
            let mut batch = sled::Batch::default();
            leftovers.iter().for_each(|i| batch.remove(&entry_key(*i)));
            self.log.apply_batch(batch).map_err(self.backend("finishing a compaction"))?;
            self.dirty = true;
        }
        self.check_snapshot_files()?;
        if self.dirty {
            self.sync()?;
        }
        Ok(())
    }

    /// Checks the recorded snapshot file and removes any other (abandoned or replaced) one.
    fn check_snapshot_files(&mut self) -> Result<(), StorageError> {
        let io = |path: &Path, op| {
            let path = path.to_path_buf();
            move |source| StorageError::Io { path, op, source }
        };
        if let Some(data) = &self.data {
            let path = self.snapshot_dir.join(&data.name);
            let len = fs::metadata(&path).map_err(io(&path, "checking the snapshot file"))?.len();
            if len != data.len {
                return Err(self.corrupt_record(
                    "snapshot data",
                    format!("{} is {len} bytes, {} recorded", path.display(), data.len),
                ));
            }
        }
        let keep = self.data.as_ref().map(|d| d.name.clone());
        for entry in fs::read_dir(&self.snapshot_dir).map_err(io(&self.snapshot_dir, "listing snapshot files"))? {
            let entry = entry.map_err(io(&self.snapshot_dir, "listing snapshot files"))?;
            if Some(entry.file_name().to_string_lossy().into_owned()) != keep {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    fn read_entry(&self, index: Index) -> Result<Entry, StorageError> {
        let value = self.log.get(entry_key(index)).map_err(self.backend("reading an entry"))?;
        let Some(value) = value else {
            return Err(StorageError::MissingEntry { path: self.path.clone(), index, durable: self.synced.last_index });
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

    /// Removes entries `lo..=hi` in one transaction with the sync marker lowered to
    /// `lo - 1` if it covered them, and with `point` recorded if given: a crash leaves all
    /// of it or none of it.
    fn remove_range_atomically(
        &mut self,
        lo: Index,
        hi: Index,
        point: Option<&SnapshotMeta>,
    ) -> Result<(), StorageError> {
        let marker = (self.synced.last_index >= lo).then(|| SyncMarker { last_index: lo - 1 });
        let mut batch = sled::Batch::default();
        for i in lo..=hi {
            batch.remove(&entry_key(i));
        }
        let marker_record = marker.map(|m| encode(&m));
        let point_record = point.map(encode);
        let result: Result<(), TransactionError<()>> =
            (&self.log, &self.sync_tree, &self.snap).transaction(|(log, sync_tree, snap)| {
                log.apply_batch(&batch)?;
                if let Some(m) = &marker_record {
                    sync_tree.insert(SYNCED_KEY, m.as_slice())?;
                }
                if let Some(p) = &point_record {
                    snap.insert(POINT_KEY, p.as_slice())?;
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            });
        result.map_err(|e| match e {
            TransactionError::Storage(e) => self.backend("removing log entries")(e),
            TransactionError::Abort(()) => unreachable!("the transaction never aborts"),
        })?;
        if let Some(m) = marker {
            self.synced = m;
        }
        Ok(())
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
            self.sled_dir_synced = names;
        }
        Ok(())
    }
}

impl Storage for SledStorage {
    type SnapshotWriter = SledSnapshotWriter;
    type SnapshotReader = SledSnapshotReader;

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
        let mut out = Vec::with_capacity((range.end - range.start) as usize);
        for item in self.log.range(entry_key(range.start)..entry_key(range.end)) {
            let (key, value) = item.map_err(self.backend("reading entries"))?;
            let expected = range.start + out.len() as Index;
            let index = <[u8; 8]>::try_from(&*key).map_or(expected, Index::from_be_bytes);
            if index != expected {
                return Err(StorageError::MissingEntry {
                    path: self.path.clone(),
                    index: expected,
                    durable: self.synced.last_index,
                });
            }
            out.push(self.decode_entry(index, &value)?);
        }
        if out.len() as Index != range.end - range.start {
            let index = range.start + out.len() as Index;
            return Err(StorageError::MissingEntry { path: self.path.clone(), index, durable: self.synced.last_index });
        }
        Ok(out)
    }

    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        check_append(&self.path, self.last_index, self.last_term, entries)?;
        let Some(last) = entries.last() else { return Ok(()) };
        let mut batch = sled::Batch::default();
        for e in entries {
            batch.insert(&entry_key(e.index), encode(e));
        }
        self.log.apply_batch(batch).map_err(self.backend("appending entries"))?;
        self.last_index = last.index;
        self.last_term = last.term;
        self.dirty = true;
        Ok(())
    }

    fn truncate_from(&mut self, index: Index) -> Result<(), StorageError> {
        if index <= self.point.index {
            return Err(StorageError::TruncateIntoSnapshot {
                path: self.path.clone(),
                index,
                snapshot_index: self.point.index,
            });
        }
        if index > self.last_index {
            return Ok(());
        }
        let term = if index - 1 == self.point.index { self.point.term } else { self.read_entry(index - 1)?.term };
        self.remove_range_atomically(index, self.last_index, None)?;
        self.last_index = index - 1;
        self.last_term = term;
        self.dirty = true;
        Ok(())
    }

    fn save_hard_state(&mut self, hard_state: &HardState) -> Result<(), StorageError> {
        self.hard.insert(HARD_STATE_KEY, encode(hard_state)).map_err(self.backend("saving the hard state"))?;
        self.hard_state = *hard_state;
        self.dirty = true;
        Ok(())
    }

    fn set_snapshot_point(&mut self, meta: &SnapshotMeta) -> Result<(), StorageError> {
        if meta.index < self.point.index {
            return Ok(());
        }
        if self.term(meta.index)? == Some(meta.term) {
            // Compaction: record the point, then drop the entries it covers in bounded
            // batches. A crash in between leaves entries at or below the point, which
            // `open` ignores and removes.
            self.snap.insert(POINT_KEY, encode(meta)).map_err(self.backend("recording the snapshot point"))?;
            let mut lo = self.point.index + 1;
            while lo <= meta.index {
                let hi = meta.index.min(lo + COMPACT_CHUNK - 1);
                let mut batch = sled::Batch::default();
                (lo..=hi).for_each(|i| batch.remove(&entry_key(i)));
                self.log.apply_batch(batch).map_err(self.backend("compacting the log"))?;
                lo = hi + 1;
            }
        } else {
            // The log disagrees with the snapshot: drop all of it with the point, atomically.
            let (lo, hi) = (self.point.index + 1, self.last_index);
            if lo <= hi {
                self.remove_range_atomically(lo, hi, Some(meta))?;
            } else {
                self.snap.insert(POINT_KEY, encode(meta)).map_err(self.backend("recording the snapshot point"))?;
            }
            self.last_index = meta.index;
            self.last_term = meta.term;
        }
        self.point = meta.clone();
        self.dirty = true;
        Ok(())
    }

    fn begin_snapshot(&mut self, meta: &SnapshotMeta) -> Result<SledSnapshotWriter, StorageError> {
        SledSnapshotWriter::create(&self.snapshot_dir, meta)
    }

    fn finish_snapshot(&mut self, writer: SledSnapshotWriter) -> Result<(), StorageError> {
        let record = writer.persist(&self.snapshot_dir)?;
        self.snap.insert(DATA_KEY, encode(&record)).map_err(self.backend("recording the snapshot file"))?;
        self.dirty = true;
        self.sync()?;
        if let Some(old) = self.data.replace(record) {
            // Best effort: `open` removes any file the record does not name.
            let _ = fs::remove_file(self.snapshot_dir.join(old.name));
        }
        Ok(())
    }

    fn snapshot_data_meta(&self) -> Option<SnapshotMeta> {
        self.data.as_ref().map(|d| d.meta.clone())
    }

    fn open_snapshot(&self) -> Result<Option<(SnapshotMeta, SledSnapshotReader)>, StorageError> {
        let Some(data) = &self.data else { return Ok(None) };
        Ok(Some((data.meta.clone(), SledSnapshotReader::open(&self.snapshot_dir, data)?)))
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        if !self.dirty {
            return Ok(());
        }
        let marker = SyncMarker { last_index: self.last_index };
        if marker != self.synced {
            self.sync_tree.insert(SYNCED_KEY, encode(&marker)).map_err(self.backend("writing the sync marker"))?;
        }
        self.db.flush().map_err(self.backend("flushing sled"))?;
        self.fsync_files()?;
        self.synced = marker;
        self.dirty = false;
        Ok(())
    }
}
