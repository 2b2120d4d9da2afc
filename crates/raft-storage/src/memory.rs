//! In-memory stores for tests, which can simulate a crash.

use crate::{check_append, LogStore, SnapshotStore, StorageError};
use bytes::Bytes;
use raft_core::{Entry, HardState, Index, Persist, SnapshotMeta, Term};
use std::io::{self, Cursor};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A log store held in memory. Nothing survives the process, but [`MemLogStore::crash`]
/// models what a crash does to a durable store: everything synced survives, and of the
/// calls made since the last sync, any prefix may. That makes it the reference model of
/// the conformance kit and a faithful store for simulations.
#[derive(Clone, Debug)]
pub struct MemLogStore {
    path: PathBuf,
    current: LogState,
    durable: LogState,
    unsynced: Vec<Op>,
}

/// The log-side state: everything but the snapshot data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct LogState {
    hard_state: HardState,
    point: SnapshotMeta,
    /// The entries after the point, consecutive.
    entries: Vec<Entry>,
}

/// A mutation not yet synced, kept to replay a prefix of them in `crash`.
#[derive(Clone, Debug)]
enum Op {
    Append(Vec<Entry>),
    Truncate(Index),
    HardState(HardState),
    Point(SnapshotMeta),
    /// A whole `Persist`, applied as one call (a crash keeps all of it or none).
    Persist(Box<Persist>),
}

impl LogState {
    fn last_index(&self) -> Index {
        self.point.index + self.entries.len() as Index
    }

    fn term(&self, index: Index) -> Option<Term> {
        if index == self.point.index {
            return Some(self.point.term);
        }
        let offset = index.checked_sub(self.point.index + 1)?;
        self.entries.get(offset as usize).map(|e| e.term)
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Append(entries) => self.entries.extend_from_slice(entries),
            Op::Truncate(index) => {
                let keep = index.saturating_sub(self.point.index + 1) as usize;
                self.entries.truncate(keep);
            }
            Op::HardState(hs) => self.hard_state = *hs,
            Op::Point(meta) => {
                if meta.index < self.point.index {
                    return;
                }
                if self.term(meta.index) == Some(meta.term) {
                    let drop = (meta.index - self.point.index) as usize;
                    self.entries.drain(..drop.min(self.entries.len()));
                } else {
                    self.entries.clear();
                }
                self.point = meta.clone();
            }
            Op::Persist(p) => {
                if let Some(s) = &p.snapshot {
                    self.apply(&Op::Point(SnapshotMeta::clone(s)));
                }
                if let Some(first) = p.entries.first() {
                    self.apply(&Op::Truncate(first.index));
                    self.apply(&Op::Append(p.entries.to_vec()));
                }
                if let Some(hs) = p.hard_state {
                    self.hard_state = hs;
                }
            }
        }
    }
}

impl Default for MemLogStore {
    fn default() -> Self {
        Self::new()
    }
}

/// A new, empty pair of in-memory stores, as a runtime opens them together.
pub fn mem_stores() -> (MemLogStore, MemSnapshotStore) {
    (MemLogStore::new(), MemSnapshotStore::new())
}

impl MemLogStore {
    /// An empty store.
    pub fn new() -> Self {
        MemLogStore {
            path: PathBuf::from("<memory>"),
            current: LogState::default(),
            durable: LogState::default(),
            unsynced: Vec::new(),
        }
    }

    /// The number of mutating calls made since the last sync (what a crash may lose).
    pub fn unsynced_calls(&self) -> usize {
        self.unsynced.len()
    }

    /// Simulates a crash and restart: returns the store as it would be found afterwards,
    /// holding everything synced plus the first `keep` calls made since the last sync (all
    /// of them if `keep` is larger than [`MemLogStore::unsynced_calls`]).
    #[must_use]
    pub fn crash(mut self, keep: usize) -> Self {
        let mut state = self.durable.clone();
        for op in self.unsynced.iter().take(keep) {
            state.apply(op);
        }
        self.current = state.clone();
        self.durable = state;
        self.unsynced.clear();
        self
    }

    fn record(&mut self, op: Op) {
        self.current.apply(&op);
        self.unsynced.push(op);
    }
}

impl LogStore for MemLogStore {
    fn path(&self) -> &Path {
        &self.path
    }

    fn hard_state(&self) -> HardState {
        self.current.hard_state
    }

    fn snapshot_point(&self) -> SnapshotMeta {
        self.current.point.clone()
    }

    fn first_index(&self) -> Index {
        self.current.point.index + 1
    }

    fn last_index(&self) -> Index {
        self.current.last_index()
    }

    fn term(&self, index: Index) -> Result<Option<Term>, StorageError> {
        Ok(self.current.term(index))
    }

    fn entries(&self, range: Range<Index>) -> Result<Vec<Entry>, StorageError> {
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let (first_index, last_index) = (self.first_index(), self.last_index());
        if range.start < first_index || range.end > last_index + 1 {
            return Err(StorageError::Unavailable {
                path: self.path.clone(),
                lo: range.start,
                hi: range.end,
                first_index,
                last_index,
            });
        }
        let lo = (range.start - first_index) as usize;
        let hi = (range.end - first_index) as usize;
        Ok(self.current.entries[lo..hi].to_vec())
    }

    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        let last_index = self.last_index();
        let last_term = self.current.term(last_index).expect("the last index always has a term");
        check_append(&self.path, last_index, last_term, entries)?;
        if !entries.is_empty() {
            self.record(Op::Append(entries.to_vec()));
        }
        Ok(())
    }

    fn truncate_from(&mut self, index: Index) -> Result<(), StorageError> {
        if index <= self.current.point.index {
            return Err(StorageError::TruncateIntoSnapshot {
                path: self.path.clone(),
                index,
                snapshot_index: self.current.point.index,
            });
        }
        if index <= self.last_index() {
            self.record(Op::Truncate(index));
        }
        Ok(())
    }

    fn save_hard_state(&mut self, hard_state: &HardState) -> Result<(), StorageError> {
        self.record(Op::HardState(*hard_state));
        Ok(())
    }

    fn set_snapshot_point(&mut self, meta: &SnapshotMeta) -> Result<(), StorageError> {
        if meta.index >= self.current.point.index {
            self.record(Op::Point(meta.clone()));
        }
        Ok(())
    }

    fn persist(&mut self, persist: &Persist) -> Result<(), StorageError> {
        // Check the whole persist against a scratch copy first: nothing is recorded if any
        // part would be rejected.
        let mut scratch = self.current.clone();
        if let Some(s) = &persist.snapshot {
            scratch.apply(&Op::Point(SnapshotMeta::clone(s)));
        }
        if let Some(first) = persist.entries.first() {
            if first.index <= scratch.point.index {
                return Err(StorageError::TruncateIntoSnapshot {
                    path: self.path.clone(),
                    index: first.index,
                    snapshot_index: scratch.point.index,
                });
            }
            scratch.apply(&Op::Truncate(first.index));
            let last_index = scratch.last_index();
            let last_term = scratch.term(last_index).expect("the last index always has a term");
            check_append(&self.path, last_index, last_term, &persist.entries)?;
        }
        self.record(Op::Persist(Box::new(persist.clone())));
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        for op in self.unsynced.drain(..) {
            self.durable.apply(&op);
        }
        debug_assert_eq!(self.durable, self.current, "replaying the synced calls must reproduce the state");
        Ok(())
    }

    fn never_blocks(&self) -> bool {
        true
    }
}

/// A snapshot store held in memory. Every call is durable when it returns, as the contract
/// requires, so a crash loses only writers not yet finished or staged (which live outside
/// the store): a clone taken at any moment is what a restart would find.
#[derive(Clone, Debug)]
pub struct MemSnapshotStore {
    path: PathBuf,
    latest: Option<(SnapshotMeta, Bytes)>,
    staged: Option<(SnapshotMeta, Bytes)>,
}

impl Default for MemSnapshotStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemSnapshotStore {
    /// An empty store.
    pub fn new() -> Self {
        MemSnapshotStore { path: PathBuf::from("<memory snapshots>"), latest: None, staged: None }
    }
}

/// Collects the bytes of a snapshot being written into a [`MemSnapshotStore`].
#[derive(Debug)]
pub struct MemSnapshotWriter {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

impl io::Write for MemSnapshotWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.data.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl SnapshotStore for MemSnapshotStore {
    type Writer = MemSnapshotWriter;
    type Reader = Cursor<Bytes>;

    fn path(&self) -> &Path {
        &self.path
    }

    fn begin(&self, meta: &SnapshotMeta) -> Result<MemSnapshotWriter, StorageError> {
        Ok(MemSnapshotWriter { meta: meta.clone(), data: Vec::new() })
    }

    fn finish(&mut self, writer: MemSnapshotWriter) -> Result<bool, StorageError> {
        if self.latest.as_ref().is_some_and(|(latest, _)| latest.index > writer.meta.index) {
            return Ok(false);
        }
        self.latest = Some((writer.meta, Bytes::from(writer.data)));
        Ok(true)
    }

    fn latest(&self) -> Option<SnapshotMeta> {
        self.latest.as_ref().map(|(meta, _)| meta.clone())
    }

    fn open_latest(&self) -> Result<Option<(SnapshotMeta, Cursor<Bytes>)>, StorageError> {
        Ok(self.latest.as_ref().map(|(meta, data)| (meta.clone(), Cursor::new(data.clone()))))
    }

    fn stage(&mut self, writer: MemSnapshotWriter) -> Result<(), StorageError> {
        self.staged = Some((writer.meta, Bytes::from(writer.data)));
        Ok(())
    }

    fn staged(&self) -> Option<SnapshotMeta> {
        self.staged.as_ref().map(|(meta, _)| meta.clone())
    }

    fn open_staged(&self) -> Result<Option<(SnapshotMeta, Cursor<Bytes>)>, StorageError> {
        Ok(self.staged.as_ref().map(|(meta, data)| (meta.clone(), Cursor::new(data.clone()))))
    }

    fn promote(&mut self) -> Result<SnapshotMeta, StorageError> {
        let Some((meta, _)) = &self.staged else {
            return Err(StorageError::NothingStaged { path: self.path.clone() });
        };
        if let Some((latest, _)) = self.latest.as_ref().filter(|(latest, _)| latest.index > meta.index) {
            return Err(StorageError::StaleSnapshot {
                path: self.path.clone(),
                index: meta.index,
                latest: latest.index,
            });
        }
        let staged = self.staged.take().expect("checked above");
        let meta = staged.0.clone();
        self.latest = Some(staged);
        Ok(meta)
    }

    fn discard_staged(&mut self) -> Result<(), StorageError> {
        self.staged = None;
        Ok(())
    }
}
