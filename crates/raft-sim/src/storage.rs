//! Simulated durable storage of one node: what survives a crash (`Durable`) and the
//! persists written but not yet fsynced (lost, or torn, on a crash).

use crate::kv::Kv;
use raft_core::{Entry, HardState, Index, Persist, RestoredState, SnapshotMeta, Term};
use std::collections::{BTreeMap, VecDeque};

/// The state that survives a crash.
#[derive(Clone, Debug, Default)]
pub struct Durable {
    /// Term, vote, commit hint.
    pub hard_state: HardState,
    /// The snapshot point recorded by the core.
    pub snapshot: SnapshotMeta,
    /// Log entries after the snapshot point, consecutive.
    pub entries: Vec<Entry>,
    /// State machine snapshots by the index they cover (written before the core records
    /// the snapshot point; pruned below it).
    pub snapshot_data: BTreeMap<Index, Kv>,
    /// What each snapshot installed from a leader covers, by index: the runtime knows it
    /// before the core's persist of the new snapshot point is durable.
    pub installed: BTreeMap<Index, SnapshotMeta>,
}

impl Durable {
    /// A fresh node's storage.
    pub fn new(restored: &RestoredState) -> Self {
        Durable {
            hard_state: restored.hard_state,
            snapshot: restored.snapshot.clone(),
            entries: restored.entries.clone(),
            snapshot_data: BTreeMap::new(),
            installed: BTreeMap::new(),
        }
    }

    /// The index of the last durable entry (or the snapshot point).
    pub fn last_index(&self) -> Index {
        self.snapshot.index + self.entries.len() as Index
    }

    /// The term of the durable entry at `index`, if stored (the snapshot point included).
    pub fn term(&self, index: Index) -> Option<Term> {
        if index == self.snapshot.index {
            return Some(self.snapshot.term);
        }
        if index < self.snapshot.index {
            return None;
        }
        self.entries.get((index - self.snapshot.index - 1) as usize).map(|e| e.term)
    }

    /// True if the durable state holds entry (`index`, `term`), directly or inside the
    /// snapshot (which only ever covers committed entries).
    pub fn holds(&self, index: Index, term: Term) -> bool {
        index < self.snapshot.index || self.term(index) == Some(term)
    }

    /// Applies a persist, the whole of it. Fails (naming why) if the core asked for
    /// something impossible, such as entries that leave a gap.
    pub fn apply(&mut self, p: &Persist) -> Result<(), String> {
        if let Some(meta) = &p.snapshot {
            self.apply_snapshot(meta);
        }
        self.apply_entries(&p.entries)?;
        if let Some(hs) = p.hard_state {
            self.hard_state = hs;
        }
        Ok(())
    }

    /// The number of separate writes a persist makes, in the order every store makes them
    /// (the `Persist` contract): the snapshot point, each entry, the hard state.
    pub fn writes(p: &Persist) -> usize {
        usize::from(p.snapshot.is_some()) + p.entries.len() + usize::from(p.hard_state.is_some())
    }

    /// Applies the torn head of a persist: its first `done` writes (see [`Durable::writes`]),
    /// so a crash may fall between any two of them.
    pub fn apply_torn(&mut self, p: &Persist, mut done: usize) -> Result<(), String> {
        if let Some(meta) = &p.snapshot {
            if done == 0 {
                return Ok(());
            }
            self.apply_snapshot(meta);
            done -= 1;
        }
        let keep = done.min(p.entries.len());
        if keep > 0 {
            self.apply_entries(&p.entries[..keep])?;
        }
        if done > p.entries.len() {
            if let Some(hs) = p.hard_state {
                self.hard_state = hs;
            }
        }
        Ok(())
    }

    fn apply_entries(&mut self, entries: &[Entry]) -> Result<(), String> {
        let Some(first) = entries.first() else { return Ok(()) };
        let start = first.index;
        if start > self.last_index() + 1 {
            return Err(format!("persist of entries from {start} leaves a gap after {}", self.last_index()));
        }
        let base = self.snapshot.index;
        // Drop the stored suffix the new entries replace.
        let keep = start.saturating_sub(base + 1) as usize;
        self.entries.truncate(keep);
        for e in entries {
            if e.index > base {
                self.entries.push(e.clone());
            }
        }
        Ok(())
    }

    /// Records a snapshot point (Raft §7: keep the entries after it only if the log
    /// agrees with it at its index, else discard the whole log).
    fn apply_snapshot(&mut self, meta: &SnapshotMeta) {
        if meta.index <= self.snapshot.index {
            return;
        }
        if self.term(meta.index) == Some(meta.term) {
            let drop = (meta.index - self.snapshot.index) as usize;
            self.entries.drain(..drop);
        } else {
            self.entries.clear();
        }
        self.snapshot = meta.clone();
        self.snapshot_data = self.snapshot_data.split_off(&meta.index);
        self.installed = self.installed.split_off(&meta.index);
    }

    /// What a restarting node loads: the durable log and the newest state machine snapshot
    /// it can use (covering at least the snapshot point, at most the last entry).
    ///
    /// A snapshot installed from a leader whose point did not become durable before a crash
    /// is recorded first, durably, as a runtime must (see `RestoredState::applied`): the
    /// state machine already reflects it, and the stored log may disagree with it.
    pub fn restore(&mut self) -> Result<(RestoredState, Kv), String> {
        if let Some(meta) = self.installed.range(self.snapshot.index + 1..).next_back().map(|(_, m)| m.clone()) {
            self.apply_snapshot(&meta);
            if self.hard_state.term < meta.term {
                self.hard_state = HardState { term: meta.term, vote: None, ..self.hard_state };
            }
        }
        let d = &*self;
        let last = d.last_index();
        let (applied, kv) = match d.snapshot_data.range(d.snapshot.index..=last).next_back() {
            Some((i, kv)) => (*i, kv.clone()),
            None if d.snapshot.index == 0 => (0, Kv::default()),
            None => return Err(format!("no state machine snapshot at or after index {}", d.snapshot.index)),
        };
        let restored = RestoredState {
            hard_state: d.hard_state,
            snapshot: d.snapshot.clone(),
            entries: d.entries.clone(),
            applied,
        };
        Ok((restored, kv))
    }
}

/// A node's disk: durable state plus writes not yet fsynced.
#[derive(Clone, Debug, Default)]
pub struct Storage {
    /// What survives a crash.
    pub durable: Durable,
    /// Persists handed over but not yet fsynced, oldest first.
    pub unsynced: VecDeque<Persist>,
}

impl Storage {
    /// Makes every unsynced persist up to `seq` durable.
    pub fn sync(&mut self, seq: u64) -> Result<(), String> {
        while self.unsynced.front().is_some_and(|p| p.seq <= seq) {
            let p = self.unsynced.pop_front().expect("front exists");
            self.durable.apply(&p)?;
        }
        Ok(())
    }

    /// A crash: unsynced writes are lost, except that the first `full` of them may have
    /// reached the disk whole and the next one torn after `torn` of its writes (if `Some`).
    pub fn crash(&mut self, full: usize, torn: Option<usize>) -> Result<(), String> {
        let unsynced = std::mem::take(&mut self.unsynced);
        for (i, p) in unsynced.iter().enumerate() {
            if i < full {
                self.durable.apply(p)?;
            } else {
                if let Some(keep) = torn {
                    self.durable.apply_torn(p, keep)?;
                }
                break;
            }
        }
        Ok(())
    }
}
