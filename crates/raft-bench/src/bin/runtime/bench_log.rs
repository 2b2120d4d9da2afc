//! A plain in-memory log store for the runtime benchmark.
//!
//! `raft_storage::MemLogStore` models crashes (it keeps every unsynced call to replay a
//! prefix of them) and checks each persist against a copy of its whole state, which costs
//! time proportional to the log per persist: right for tests, wrong for a benchmark. This
//! one keeps a `Vec` of entries and makes `sync` free, like the in-memory store of
//! openraft's cluster benchmark.

use raft_core::{Entry, HardState, Index, SnapshotMeta, Term};
use raft_storage::{check_append, LogStore, StorageError};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Entries after a snapshot point, a hard state; nothing survives the process.
pub struct BenchLog {
    /// What `LogStore::never_blocks` answers: true (the truth), or false to measure the
    /// runtime's worker-thread path with a store that costs nothing.
    pub never_blocks: bool,
    path: PathBuf,
    hard_state: HardState,
    point: SnapshotMeta,
    entries: Vec<Entry>,
}

impl BenchLog {
    /// An empty store.
    pub fn new() -> Self {
        BenchLog {
            never_blocks: true,
            path: PathBuf::from("<bench memory>"),
            hard_state: HardState::default(),
            point: SnapshotMeta::default(),
            entries: Vec::new(),
        }
    }

    fn offset(&self, index: Index) -> usize {
        (index - self.point.index - 1) as usize
    }
}

impl LogStore for BenchLog {
    fn never_blocks(&self) -> bool {
        self.never_blocks
    }
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
        self.point.index + self.entries.len() as Index
    }
    fn term(&self, index: Index) -> Result<Option<Term>, StorageError> {
        Ok(if index == self.point.index {
            Some(self.point.term)
        } else if index > self.point.index && index <= self.last_index() {
            Some(self.entries[self.offset(index)].term)
        } else {
            None
        })
    }
    fn entries(&self, range: Range<Index>) -> Result<Vec<Entry>, StorageError> {
        if range.is_empty() {
            return Ok(Vec::new());
        }
        if range.start < self.first_index() || range.end > self.last_index() + 1 {
            return Err(StorageError::Unavailable {
                path: self.path.clone(),
                lo: range.start,
                hi: range.end,
                first_index: self.first_index(),
                last_index: self.last_index(),
            });
        }
        Ok(self.entries[self.offset(range.start)..self.offset(range.end)].to_vec())
    }
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        let last = self.last_index();
        let last_term = self.term(last)?.unwrap_or(0);
        check_append(&self.path, last, last_term, entries)?;
        self.entries.extend_from_slice(entries);
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
        if index <= self.last_index() {
            let keep = self.offset(index);
            self.entries.truncate(keep);
        }
        Ok(())
    }
    fn save_hard_state(&mut self, hard_state: &HardState) -> Result<(), StorageError> {
        self.hard_state = *hard_state;
        Ok(())
    }
    fn set_snapshot_point(&mut self, meta: &SnapshotMeta) -> Result<(), StorageError> {
        if meta.index < self.point.index {
            return Ok(());
        }
        if self.term(meta.index)? == Some(meta.term) {
            let drop = (meta.index - self.point.index) as usize;
            self.entries.drain(..drop);
        } else {
            self.entries.clear();
        }
        self.point = meta.clone();
        Ok(())
    }
    fn sync(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
}
