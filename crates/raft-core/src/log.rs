//! The replicated log as the core sees it: the entries after the last snapshot, held in
//! memory, plus which suffix has not yet been handed to the runtime for persistence.
//!
//! The core keeps every entry after the last snapshot in memory; compaction (taking a
//! snapshot) is what bounds that memory. The runtime's log store is the durable copy.

use crate::batch::Entries;
use crate::membership::Membership;
use crate::types::{Index, NodeId, Term};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The term of the leader that created the entry.
    pub term: Term,
    /// The entry's position in the log (1-based).
    pub index: Index,
    /// What the entry carries.
    pub payload: Payload,
}

/// The content of a log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// Appended by every new leader so it can commit entries of earlier terms (Raft §5.4.2).
    /// Applying it changes nothing in the user's state machine.
    Noop,
    /// A user command, opaque to the core.
    Command(#[serde(deserialize_with = "crate::wire::payload_bytes")] Bytes),
    /// A new cluster configuration; it takes effect as soon as it is appended. Boxed: it
    /// is rare, and keeping `Entry` small makes the hot path move less memory.
    Membership(Box<Membership>),
}

impl Entry {
    /// An approximation of the entry's encoded size, used for batching limits.
    pub fn size_hint(&self) -> usize {
        let body = match &self.payload {
            Payload::Noop => 0,
            Payload::Command(b) => b.len(),
            Payload::Membership(m) => {
                8 * (m.voters.len() + m.outgoing.len() + m.learners.len())
                    + m.info.values().map(|i| 8 + i.as_bytes().len()).sum::<usize>()
            }
        };
        body + 24
    }
}

/// The state that must survive a restart besides the log: a node that forgets its term or
/// its vote could vote twice in one term and let two leaders be elected.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: Term,
    /// The candidate this node voted for in `term`, if any.
    pub vote: Option<NodeId>,
    /// A commit index known at the time of writing. Only a hint for faster restarts: it may
    /// lag, and the core never relies on it being current.
    pub commit: Index,
    /// How many times the node has started. Each start takes the next number and writes it
    /// in its first persist; until that is durable the node forwards no read, so the
    /// contexts of forwarded reads (which carry it) are unique across restarts and a
    /// delayed reply to an earlier incarnation cannot answer a later read.
    pub incarnation: u64,
}

/// What a snapshot covers: everything up to and including `index`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The last log index the snapshot includes.
    pub index: Index,
    /// The term of the entry at `index`.
    pub term: Term,
    /// The membership in force at `index`.
    pub membership: Membership,
}

/// The in-memory log: entries `first_index()..=last_index()`, preceded by a snapshot point.
/// Read-only outside the core (`Node::log`); only the node changes it, keeping the
/// invariants its mutators assert (consecutive indexes, no truncation into the snapshot).
///
/// The entries are held as sealed shared segments (`Entries`) followed by an open tail the
/// leader appends its proposals to. The node seals the tail when it hands entries out, so
/// a persist, an append or an apply that falls within one segment is a window onto it, not
/// a copy; a range that spans several segments is copied into a new batch.
#[derive(Clone, Debug)]
pub struct RaftLog {
    /// Index and term of the last entry folded into the snapshot (0, 0 for none).
    snapshot_index: Index,
    snapshot_term: Term,
    /// Non-empty, consecutive segments covering `snapshot_index + 1..=sealed_last`.
    sealed: VecDeque<Entries>,
    /// The first index of each segment of `sealed`, kept beside it so that finding an
    /// index's segment is a binary search over plain numbers (with one segment per
    /// single proposal there may be many thousands).
    starts: VecDeque<Index>,
    /// The last index held in `sealed` (`snapshot_index` if it is empty).
    sealed_last: Index,
    /// The term of the last entry (or of the snapshot point), kept because the node asks
    /// for it, and for the term at the last index, on every flush.
    last_term: Term,
    /// The open tail: entries `sealed_last + 1..`.
    tail: Vec<Entry>,
    /// First index not yet handed to the runtime in a `Persist` action.
    unstable_from: Index,
}

/// Why a batch of entries could not be appended.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// The entries do not continue the log (their indexes are not consecutive after it).
    #[error("entries do not continue the log: expected index {expected}, found {found}")]
    Gap {
        /// The index that would continue the log.
        expected: Index,
        /// The index offered.
        found: Index,
    },
    /// An entry's term is lower than the term of the entry before it.
    #[error("term goes backwards at index {index}")]
    TermRegression {
        /// The offending index.
        index: Index,
    },
}

impl RaftLog {
    /// A log restored from storage: the snapshot point and the entries after it, all durable.
    pub(crate) fn restore(snapshot_index: Index, snapshot_term: Term, entries: Vec<Entry>) -> Result<Self, LogError> {
        let mut log = RaftLog {
            snapshot_index,
            snapshot_term,
            sealed: VecDeque::new(),
            starts: VecDeque::new(),
            sealed_last: snapshot_index,
            last_term: snapshot_term,
            tail: Vec::new(),
            unstable_from: snapshot_index + 1,
        };
        log.append_batch(Entries::from(entries))?;
        log.unstable_from = log.last_index() + 1;
        Ok(log)
    }

    /// Index of the last entry covered by the snapshot (0 if none).
    pub fn snapshot_index(&self) -> Index {
        self.snapshot_index
    }

    /// Term of the last entry covered by the snapshot (0 if none).
    pub fn snapshot_term(&self) -> Term {
        self.snapshot_term
    }

    /// The first index held in memory (one past the snapshot).
    pub fn first_index(&self) -> Index {
        self.snapshot_index + 1
    }

    /// The index of the last entry (the snapshot index if no entry follows it).
    #[inline]
    pub fn last_index(&self) -> Index {
        self.sealed_last + self.tail.len() as Index
    }

    /// The term of the last entry (or of the snapshot point).
    #[inline]
    pub fn last_term(&self) -> Term {
        self.last_term
    }

    /// Recomputes `last_term` after the log lost entries from its end or its start.
    fn reset_last_term(&mut self) {
        self.last_term = match self.tail.last().or_else(|| self.sealed.back().and_then(|s| s.last())) {
            Some(e) => e.term,
            None => self.snapshot_term,
        };
    }

    /// The term at `index`, if it is the snapshot point or held in memory.
    #[inline]
    pub fn term(&self, index: Index) -> Option<Term> {
        if index == self.last_index() {
            return Some(self.last_term);
        }
        if index == self.snapshot_index {
            return Some(self.snapshot_term);
        }
        self.entry(index).map(|e| e.term)
    }

    /// The position in `sealed` of the segment holding `index`, which must be in
    /// `first_index()..=sealed_last`.
    fn segment_of(&self, index: Index) -> usize {
        debug_assert!(index > self.snapshot_index && index <= self.sealed_last, "index {index} not sealed");
        // Most lookups are near the end of the log: try the last two segments first (the
        // leader looks up the entry before each follower's next, often the previous batch).
        let n = self.starts.len();
        if self.starts[n - 1] <= index {
            return n - 1;
        }
        if n >= 2 && self.starts[n - 2] <= index {
            return n - 2;
        }
        self.starts.partition_point(|&s| s <= index) - 1
    }

    /// The entry at `index`, if held in memory.
    pub fn entry(&self, index: Index) -> Option<&Entry> {
        if index <= self.snapshot_index {
            return None;
        }
        if index > self.sealed_last {
            return self.tail.get((index - self.sealed_last - 1) as usize);
        }
        let k = self.segment_of(index);
        self.sealed[k].get((index - self.starts[k]) as usize)
    }

    /// Entries `lo..=hi` that are held in memory, as the consecutive slices of the
    /// segments (and tail) that hold them, in index order; no slice is empty.
    fn chunks(&self, lo: Index, hi: Index) -> impl Iterator<Item = &[Entry]> + '_ {
        let lo = lo.max(self.first_index());
        let hi = hi.min(self.last_index());
        // (first segment, offset in it); `sealed.len()` when the range starts in the tail.
        let (k, off) = if lo > hi || lo > self.sealed_last {
            (self.sealed.len(), 0)
        } else {
            let k = self.segment_of(lo);
            (k, (lo - self.starts[k]) as usize)
        };
        let segments = self.sealed.range(k..).enumerate().map(move |(j, s)| if j == 0 { &s[off..] } else { &s[..] });
        let tail_from = if lo > self.sealed_last { (lo - self.sealed_last - 1) as usize } else { 0 };
        let tail = std::iter::once(self.tail.get(tail_from..).unwrap_or(&[]));
        let mut left = if lo > hi { 0 } else { (hi - lo + 1) as usize };
        segments.chain(tail).map_while(move |c| {
            let c = &c[..c.len().min(left)];
            left -= c.len();
            (!c.is_empty()).then_some(c)
        })
    }

    /// Entries `lo..=hi` that are held in memory (empty if none), in index order, without
    /// copying any.
    pub fn iter_range(&self, lo: Index, hi: Index) -> impl Iterator<Item = &Entry> + '_ {
        self.chunks(lo, hi).flatten()
    }

    /// Entries `lo..=hi` that are held in memory (an empty batch if none): a window onto
    /// one sealed segment when they lie within one, otherwise a copy.
    pub fn range(&self, lo: Index, hi: Index) -> Entries {
        let lo = lo.max(self.first_index());
        let hi = hi.min(self.last_index());
        if lo > hi {
            return Entries::new();
        }
        if hi <= self.sealed_last {
            let k = self.segment_of(lo);
            let (seg, first) = (&self.sealed[k], self.starts[k]);
            if hi < first + seg.len() as Index {
                return seg.window((lo - first) as usize, (hi - first + 1) as usize);
            }
        }
        self.copy_range(lo, hi)
    }

    /// `lo..=hi` (within the log) spans segments: copied into a new batch. Out of line:
    /// the rare path, kept away from the hot ones.
    #[cold]
    #[inline(never)]
    fn copy_range(&self, lo: Index, hi: Index) -> Entries {
        let mut copy = Vec::with_capacity((hi - lo + 1) as usize);
        for chunk in self.chunks(lo, hi) {
            copy.extend_from_slice(chunk);
        }
        Entries::from(copy)
    }

    /// All entries held in memory, in index order (see `range` for when this copies).
    pub fn entries(&self) -> Entries {
        self.range(self.first_index(), self.last_index())
    }

    /// Up to `max_entries` entries from `lo`, stopping before `max_bytes` is exceeded
    /// (but always at least one entry if any exists, so a huge entry still makes progress).
    pub fn batch(&self, lo: Index, max_entries: usize, max_bytes: usize) -> Entries {
        if lo > self.last_index() {
            // The common case on every flush of a leader whose followers are caught up.
            return Entries::new();
        }
        let lo = lo.max(self.first_index());
        let max_entries = max_entries.max(1);
        let (mut bytes, mut n) = (0, 0);
        // Counts entries of `chunk` while the limits allow; false once they stop the batch.
        let mut take = |chunk: &[Entry]| {
            for e in chunk {
                bytes += e.size_hint();
                if n == max_entries || (n > 0 && bytes > max_bytes) {
                    return false;
                }
                n += 1;
            }
            true
        };
        // Plain loops over the segments' slices: this runs once per follower per flush.
        let mut more = true;
        if lo <= self.sealed_last {
            let k = self.segment_of(lo);
            more = take(&self.sealed[k][(lo - self.starts[k]) as usize..]);
            for seg in self.sealed.range(k + 1..) {
                if !more {
                    break;
                }
                more = take(seg);
            }
        }
        if more {
            let from = lo.saturating_sub(self.sealed_last + 1) as usize;
            take(self.tail.get(from..).unwrap_or(&[]));
        }
        if n == 0 {
            return Entries::new();
        }
        self.range(lo, lo + n as Index - 1)
    }

    /// True if the log holds an entry at `index` with `term` (index 0 always matches).
    pub fn matches(&self, index: Index, term: Term) -> bool {
        index == 0 || self.term(index) == Some(term)
    }

    /// Raft §5.4.1: a candidate's log is at least as up to date as ours if its last term is
    /// higher, or equal with an index at least as high.
    pub fn is_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }

    /// The last index whose term is `term` or lower, searching down from `from`.
    /// Used by the leader to skip a whole conflicting term per round trip.
    pub fn last_index_with_term_at_most(&self, term: Term, from: Index) -> Index {
        let mut i = from.min(self.last_index());
        while i > self.snapshot_index {
            match self.term(i) {
                Some(t) if t <= term => return i,
                _ => i -= 1,
            }
        }
        self.snapshot_index
    }

    /// The first index of the run of entries that have the same term as `index`
    /// (not going below the snapshot point).
    pub fn first_index_of_term_at(&self, index: Index) -> Index {
        let Some(t) = self.term(index) else { return index };
        let mut i = index;
        while i > self.first_index() && self.term(i - 1) == Some(t) {
            i -= 1;
        }
        i
    }

    /// Appends entries that must directly continue the log, one by one to the open tail
    /// (the leader's proposals). On an error the entries before the offending one stay.
    pub(crate) fn append(&mut self, entries: impl IntoIterator<Item = Entry>) -> Result<(), LogError> {
        for e in entries {
            let expected = self.last_index() + 1;
            if e.index != expected {
                return Err(LogError::Gap { expected, found: e.index });
            }
            if e.term < self.last_term() {
                return Err(LogError::TermRegression { index: e.index });
            }
            self.last_term = e.term;
            self.tail.push(e);
        }
        Ok(())
    }

    /// Appends one entry of `term` (at least the last term) at the next index to the open
    /// tail and returns its index: the leader's proposals, which continue its log by
    /// construction.
    #[inline]
    pub(crate) fn push(&mut self, term: Term, payload: Payload) -> Index {
        assert!(term >= self.last_term(), "a new entry's term {term} is below the last term {}", self.last_term());
        let index = self.last_index() + 1;
        self.tail.push(Entry { term, index, payload });
        self.last_term = term;
        index
    }

    /// Appends a batch that must directly continue the log, keeping it as a shared segment
    /// (no entry is copied). All or nothing: on an error the log is unchanged.
    pub(crate) fn append_batch(&mut self, batch: Entries) -> Result<(), LogError> {
        let (mut expected, mut term) = (self.last_index() + 1, self.last_term());
        for e in batch.iter() {
            if e.index != expected {
                return Err(LogError::Gap { expected, found: e.index });
            }
            if e.term < term {
                return Err(LogError::TermRegression { index: e.index });
            }
            (expected, term) = (expected + 1, e.term);
        }
        if batch.is_empty() {
            return Ok(());
        }
        self.seal();
        self.sealed_last = expected - 1;
        self.last_term = term;
        if let Some(back) = self.sealed.back_mut() {
            if back.try_join(&batch) {
                return Ok(());
            }
        }
        self.starts.push_back(batch[0].index);
        self.sealed.push_back(batch);
        Ok(())
    }

    /// Turns the open tail into a sealed segment, so that ranges over it can be shared.
    /// Cheap when the tail is empty; the node calls it before handing entries out.
    #[inline]
    pub(crate) fn seal(&mut self) {
        if !self.tail.is_empty() {
            self.seal_tail();
        }
    }

    fn seal_tail(&mut self) {
        self.starts.push_back(self.sealed_last + 1);
        self.sealed_last += self.tail.len() as Index;
        // Moved into one exact allocation; the tail keeps its capacity, so a leader's tail
        // is allocated once, not once per round.
        let segment = match self.tail.len() {
            // A single proposal per flush, the latency-bound case: moved straight in (the
            // general collect costs it about 30 ns more, measured with `compare --only core`).
            1 => Entries::from_one(self.tail.pop().expect("the tail holds one entry")),
            _ => self.tail.drain(..).collect(),
        };
        self.sealed.push_back(segment);
    }

    /// Removes every entry at `index` and after. The caller guarantees none is committed.
    pub(crate) fn truncate_from(&mut self, index: Index) {
        assert!(
            index > self.snapshot_index,
            "truncating into the snapshot: index {index} <= snapshot {}",
            self.snapshot_index
        );
        if index > self.sealed_last {
            self.tail.truncate((index - self.sealed_last - 1) as usize);
        } else {
            self.tail.clear();
            while let Some(back) = self.sealed.back_mut() {
                let first = *self.starts.back().expect("a start per segment");
                if first >= index {
                    self.sealed.pop_back();
                    self.starts.pop_back();
                } else {
                    if first + (back.len() as Index) > index {
                        back.truncate((index - first) as usize);
                    }
                    break;
                }
            }
            self.sealed_last = index - 1;
        }
        self.reset_last_term();
        self.unstable_from = self.unstable_from.min(index);
    }

    /// Folds everything up to `index` (which must be held in memory or be the snapshot point)
    /// into a snapshot point, dropping those entries from memory.
    pub(crate) fn compact_to(&mut self, index: Index) {
        if index <= self.snapshot_index {
            return;
        }
        let Some(term) = self.term(index) else {
            panic!("compacting to index {index} past the last index {}", self.last_index());
        };
        if index > self.sealed_last {
            self.seal();
        }
        while let Some(front) = self.sealed.front_mut() {
            let first = *self.starts.front().expect("a start per segment");
            let last = first + front.len() as Index - 1;
            if last <= index {
                self.sealed.pop_front();
                self.starts.pop_front();
            } else {
                if first <= index {
                    front.advance((index + 1 - first) as usize);
                    *self.starts.front_mut().expect("a start per segment") = index + 1;
                }
                break;
            }
        }
        self.snapshot_index = index;
        self.snapshot_term = term;
        self.sealed_last = self.sealed_last.max(index);
        self.reset_last_term();
        self.unstable_from = self.unstable_from.max(index + 1);
    }

    /// Replaces the whole log with a snapshot point (a snapshot install from the leader).
    pub(crate) fn reset_to_snapshot(&mut self, index: Index, term: Term) {
        self.sealed.clear();
        self.starts.clear();
        self.tail.clear();
        self.snapshot_index = index;
        self.snapshot_term = term;
        self.sealed_last = index;
        self.last_term = term;
        self.unstable_from = index + 1;
    }

    /// The first index not yet handed out for persistence.
    pub fn unstable_from(&self) -> Index {
        self.unstable_from
    }

    /// Takes the entries not yet handed out for persistence, marking them handed out.
    pub(crate) fn take_unstable(&mut self) -> Entries {
        self.seal();
        let out = self.range(self.unstable_from, self.last_index());
        self.unstable_from = self.last_index() + 1;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::{quickcheck, Arbitrary, Gen};

    fn entry(index: Index, term: Term) -> Entry {
        Entry { term, index, payload: Payload::Noop }
    }

    #[test]
    fn append_rejects_gaps_and_term_regressions() {
        let mut log = RaftLog::restore(0, 0, vec![]).unwrap();
        log.append([entry(1, 1), entry(2, 2)]).unwrap();
        assert_eq!(log.append([entry(4, 2)]), Err(LogError::Gap { expected: 3, found: 4 }));
        assert_eq!(log.append([entry(3, 1)]), Err(LogError::TermRegression { index: 3 }));
        assert_eq!(log.last_index(), 2);
    }

    fn log_with_terms(terms: &[Term]) -> RaftLog {
        RaftLog::restore(0, 0, terms.iter().enumerate().map(|(i, t)| entry(i as Index + 1, *t)).collect()).unwrap()
    }

    #[test]
    fn the_leader_finds_the_last_index_of_a_term_at_most_the_followers() {
        let mut log = log_with_terms(&[1, 1, 2, 2, 4, 4]);
        assert_eq!(log.last_index_with_term_at_most(4, 6), 6);
        assert_eq!(log.last_index_with_term_at_most(4, 5), 5);
        assert_eq!(log.last_index_with_term_at_most(3, 6), 4);
        assert_eq!(log.last_index_with_term_at_most(1, 6), 2);
        assert_eq!(log.last_index_with_term_at_most(0, 6), 0);
        assert_eq!(log.last_index_with_term_at_most(4, 99), 6, "capped at the last index");
        log.compact_to(2);
        assert_eq!(log.last_index_with_term_at_most(0, 6), 2, "never below the snapshot point");
    }

    #[test]
    fn the_follower_finds_the_first_index_of_the_conflicting_term() {
        let mut log = log_with_terms(&[1, 1, 2, 2, 2, 4]);
        assert_eq!(log.first_index_of_term_at(5), 3);
        assert_eq!(log.first_index_of_term_at(6), 6);
        assert_eq!(log.first_index_of_term_at(2), 1);
        assert_eq!(log.first_index_of_term_at(9), 9, "an index past the log is its own answer");
        log.compact_to(1);
        assert_eq!(log.first_index_of_term_at(2), 2, "never below the first index held");
    }

    #[test]
    fn size_hints_count_the_payload_and_a_fixed_overhead() {
        let e = |payload| Entry { term: 1, index: 1, payload }.size_hint();
        assert_eq!(e(Payload::Noop), 24);
        assert_eq!(e(Payload::Command(Bytes::from(vec![0; 10]))), 34);
        let m = Membership::from_sets([1, 2, 3], [1, 2], [4]);
        assert_eq!(e(Payload::Membership(Box::new(m))), 24 + 8 * 6);
    }

    #[test]
    fn a_batch_may_fill_its_byte_limit_exactly() {
        let cmd = |index| Entry { term: 1, index, payload: Payload::Command(Bytes::from(vec![0; 76])) };
        let log = RaftLog::restore(0, 0, (1..=3).map(cmd).collect()).unwrap();
        assert_eq!(log.batch(1, 10, 200).len(), 2, "two entries of 100 bytes fill 200");
        assert_eq!(log.batch(1, 10, 199).len(), 1);
    }

    #[test]
    fn restored_compacted_and_reset_logs_hand_out_nothing_already_durable() {
        let log = log_with_terms(&[1, 2]);
        assert_eq!(log.unstable_from(), 3, "restored entries are durable");
        let log = RaftLog::restore(5, 2, vec![]).unwrap();
        assert_eq!((log.unstable_from(), log.snapshot_term()), (6, 2));

        let mut log = RaftLog::restore(0, 0, vec![]).unwrap();
        log.append([entry(1, 1), entry(2, 1), entry(3, 2)]).unwrap();
        assert_eq!(log.unstable_from(), 1);
        log.compact_to(2);
        assert_eq!(log.unstable_from(), 3, "compacted entries are never handed out");
        assert_eq!(log.snapshot_term(), 1);
        assert_eq!(log.take_unstable(), vec![entry(3, 2)]);

        log.reset_to_snapshot(10, 3);
        assert_eq!((log.first_index(), log.last_index(), log.unstable_from()), (11, 10, 11));
        assert_eq!((log.snapshot_term(), log.last_term()), (3, 3));
    }

    #[test]
    fn compaction_keeps_terms_reachable_at_the_snapshot_point() {
        let mut log = RaftLog::restore(0, 0, (1..=5).map(|i| entry(i, i)).collect()).unwrap();
        log.compact_to(3);
        assert_eq!(log.first_index(), 4);
        assert_eq!(log.term(3), Some(3));
        assert_eq!(log.term(2), None);
        assert!(log.matches(3, 3));
        assert_eq!(log.range(1, 10).len(), 2);
    }

    #[test]
    fn batch_respects_limits_but_always_makes_progress() {
        let big = Entry { term: 1, index: 1, payload: Payload::Command(Bytes::from(vec![0; 1000])) };
        let mut log = RaftLog::restore(0, 0, vec![big]).unwrap();
        log.append([entry(2, 1), entry(3, 1)]).unwrap();
        assert_eq!(log.batch(1, 10, 10).len(), 1);
        assert_eq!(log.batch(2, 10, 1000).len(), 2);
        assert_eq!(log.batch(2, 1, 1000).len(), 1);
    }

    fn terms_of(e: &[Entry]) -> Vec<(Index, Term)> {
        e.iter().map(|e| (e.index, e.term)).collect()
    }

    /// Segments 1..=3 and 4..=6, then the open tail 7..=8.
    fn segmented() -> RaftLog {
        let mut log = RaftLog::restore(0, 0, vec![]).unwrap();
        log.append_batch((1..=3).map(|i| entry(i, 1)).collect()).unwrap();
        log.append_batch((4..=6).map(|i| entry(i, 2)).collect()).unwrap();
        log.push(2, Payload::Noop);
        log.push(3, Payload::Noop);
        log
    }

    #[test]
    fn ranges_within_a_segment_are_shared_and_ranges_across_segments_are_copied() {
        let mut log = segmented();
        assert_eq!(log.sealed.len(), 2);
        let second = log.range(4, 6);
        assert!(second.shares_allocation_with(&log.sealed[1]), "one whole segment");
        assert!(log.range(5, 5).shares_allocation_with(&log.sealed[1]), "inside one segment");
        let across = log.range(2, 5);
        assert_eq!(terms_of(&across), [(2, 1), (3, 1), (4, 2), (5, 2)]);
        assert!(!across.shares_allocation_with(&log.sealed[0]) && !across.shares_allocation_with(&log.sealed[1]));
        assert_eq!(terms_of(&log.range(5, 99)), [(5, 2), (6, 2), (7, 2), (8, 3)], "into the tail, capped");
        assert_eq!(log.iter_range(0, 99).map(|e| e.index).collect::<Vec<_>>(), (1..=8).collect::<Vec<_>>());
        assert_eq!(log.iter_range(3, 7).map(|e| e.index).collect::<Vec<_>>(), [3, 4, 5, 6, 7]);
        assert_eq!(log.iter_range(8, 8).count(), 1);
        assert_eq!(log.iter_range(9, 20).count(), 0);
        assert_eq!(log.entry(7).map(|e| e.term), Some(2));
        log.seal();
        assert!(log.range(7, 8).shares_allocation_with(&log.sealed[2]), "the sealed tail is shared too");
        assert_eq!(log.batch(2, 3, 1 << 20).len(), 3, "a batch may span segments");
        assert_eq!(terms_of(&log.batch(5, 10, 1 << 20)), [(5, 2), (6, 2), (7, 2), (8, 3)]);
    }

    #[test]
    fn the_leaders_persist_append_and_apply_share_one_sealed_batch() {
        let mut log = RaftLog::restore(0, 0, vec![]).unwrap();
        for _ in 0..3 {
            log.push(1, Payload::Command(Bytes::from_static(b"x")));
        }
        let persist = log.take_unstable();
        let append = log.batch(1, 64, 1 << 20);
        let apply = log.range(1, 3);
        assert_eq!(persist.len(), 3);
        assert!(persist.shares_allocation_with(&append) && append.shares_allocation_with(&apply));
        assert!(log.take_unstable().is_empty(), "handed out once");
    }

    #[test]
    fn a_follower_joins_consecutive_pieces_of_one_leader_batch() {
        let leader: Entries = (1..=6).map(|i| entry(i, 1)).collect();
        let mut log = RaftLog::restore(0, 0, vec![]).unwrap();
        log.append_batch(leader.slice(..2)).unwrap();
        log.append_batch(leader.slice(2..5)).unwrap();
        assert_eq!(log.sealed.len(), 1, "joined into one window");
        assert!(log.range(1, 5).shares_allocation_with(&leader));
        assert_eq!(log.append_batch(leader.slice(..1)), Err(LogError::Gap { expected: 6, found: 1 }));
        let regress: Entries = vec![entry(6, 0)].into();
        assert_eq!(log.append_batch(regress), Err(LogError::TermRegression { index: 6 }));
        assert_eq!(log.last_index(), 5, "a refused batch leaves the log unchanged");
    }

    #[test]
    fn truncation_into_a_sealed_segment_keeps_its_prefix_shared() {
        let mut log = segmented();
        log.truncate_from(5);
        assert_eq!((log.last_index(), log.last_term()), (4, 2));
        assert_eq!(log.sealed.len(), 2);
        assert!(log.range(4, 4).shares_allocation_with(&log.sealed[1]));
        log.append_batch(vec![entry(5, 4)].into()).unwrap();
        assert_eq!(terms_of(&log.range(3, 9)), [(3, 1), (4, 2), (5, 4)]);
        log.truncate_from(2);
        assert_eq!((log.last_index(), log.last_term(), log.sealed.len()), (1, 1, 1));
        log.push(5, Payload::Noop);
        assert_eq!(terms_of(&log.entries()), [(1, 1), (2, 5)]);
        log.truncate_from(2);
        assert_eq!(log.last_index(), 1, "truncating the open tail");
    }

    #[test]
    fn compaction_drops_whole_segments_and_trims_the_first_kept() {
        let mut log = segmented();
        log.compact_to(4);
        assert_eq!((log.first_index(), log.snapshot_term()), (5, 2));
        assert_eq!(log.sealed.len(), 1);
        assert_eq!(terms_of(&log.entries()), [(5, 2), (6, 2), (7, 2), (8, 3)]);
        assert_eq!(log.term(4), Some(2));
        assert_eq!(log.entry(4), None);
        log.compact_to(7);
        assert_eq!(terms_of(&log.entries()), [(8, 3)], "compaction into the open tail seals it first");
        log.compact_to(8);
        assert_eq!((log.first_index(), log.last_index(), log.last_term()), (9, 8, 3));
        assert!(log.entries().is_empty());
        log.push(3, Payload::Noop);
        assert_eq!(terms_of(&log.entries()), [(9, 3)]);
    }

    /// Operations for the model-based property test of the segmented log.
    #[derive(Clone, Debug)]
    enum SegOp {
        /// The leader's path: `n` entries pushed to the open tail.
        Push(u8, u8),
        /// The follower's path: a batch of `n`, cut at `skip` from a larger allocation.
        Batch(u8, u8, u8),
        Seal,
        TakeUnstable,
        Truncate(u8),
        Compact(u8),
    }

    impl Arbitrary for SegOp {
        fn arbitrary(g: &mut Gen) -> Self {
            match u8::arbitrary(g) % 6 {
                0 => SegOp::Push(u8::arbitrary(g) % 4 + 1, u8::arbitrary(g) % 3),
                1 => SegOp::Batch(u8::arbitrary(g) % 6 + 1, u8::arbitrary(g) % 3, u8::arbitrary(g) % 3),
                2 => SegOp::Seal,
                3 => SegOp::TakeUnstable,
                4 => SegOp::Truncate(u8::arbitrary(g)),
                _ => SegOp::Compact(u8::arbitrary(g)),
            }
        }
    }

    /// Operations for the model-based property test.
    #[derive(Clone, Debug)]
    enum Op {
        Append(u8, u8),
        Truncate(u8),
        Compact(u8),
    }

    impl Arbitrary for Op {
        fn arbitrary(g: &mut Gen) -> Self {
            match u8::arbitrary(g) % 3 {
                0 => Op::Append(u8::arbitrary(g) % 5 + 1, u8::arbitrary(g) % 3),
                1 => Op::Truncate(u8::arbitrary(g)),
                _ => Op::Compact(u8::arbitrary(g)),
            }
        }
    }

    quickcheck! {
        /// The log agrees with a plain vector of terms after any sequence of appends,
        /// truncations and compactions.
        fn log_matches_model(ops: Vec<Op>) -> bool {
            let mut log = RaftLog::restore(0, 0, vec![]).unwrap();
            let mut model: Vec<Term> = vec![]; // model[i] = term at index i + 1
            let mut compacted: Index = 0;
            for op in ops {
                match op {
                    Op::Append(n, bump) => {
                        let term = model.last().copied().unwrap_or(0) + bump as Term;
                        let start = model.len() as Index + 1;
                        let batch: Vec<_> = (0..n as Index).map(|k| entry(start + k, term)).collect();
                        log.append(batch).unwrap();
                        model.extend(std::iter::repeat_n(term, n as usize));
                    }
                    Op::Truncate(at) => {
                        let at = at as Index;
                        if at > compacted && at <= model.len() as Index {
                            log.truncate_from(at);
                            model.truncate(at as usize - 1);
                        }
                    }
                    Op::Compact(at) => {
                        let at = at as Index;
                        if at <= model.len() as Index && at > compacted {
                            log.compact_to(at);
                            compacted = at;
                        }
                    }
                }
                if log.last_index() != model.len() as Index { return false; }
                for i in 1..=model.len() as Index {
                    let expect = if i < compacted { None } else { Some(model[i as usize - 1]) };
                    if log.term(i) != expect { return false; }
                }
                if log.last_term() != model.last().copied().unwrap_or(0) { return false; }
            }
            true
        }

        /// The segmented log agrees with a plain vector of entries after any sequence of
        /// pushes, shared batches, seals, takes, truncations and compactions: every range,
        /// batch and term lookup, and a range within one segment is never a copy.
        fn segmented_log_matches_model(ops: Vec<SegOp>, lo: u8, len: u8) -> bool {
            let mut log = RaftLog::restore(0, 0, vec![]).unwrap();
            let mut model: Vec<Entry> = vec![];
            let mut compacted: Index = 0;
            let mut unstable: Index = 1;
            let mut snap_term: Term = 0;
            let next = |model: &Vec<Entry>, (compacted, snap_term): (Index, Term), k: u64, bump: u8| {
                let term = model.last().map_or(snap_term, |e| e.term) + bump as Term;
                let index = compacted.max(model.last().map_or(0, |e| e.index)) + 1 + k;
                Entry { term, index, payload: Payload::Command(Bytes::from(index.to_le_bytes().to_vec())) }
            };
            for op in ops {
                match op {
                    SegOp::Push(n, bump) => {
                        for _ in 0..n {
                            let e = next(&model, (compacted, snap_term), 0, bump);
                            if log.push(e.term, e.payload.clone()) != e.index { return false; }
                            model.push(e);
                        }
                    }
                    SegOp::Batch(n, bump, skip) => {
                        let fresh: Vec<Entry> = (0..n as u64).map(|k| next(&model, (compacted, snap_term), k, bump)).collect();
                        // A larger allocation: `skip` entries before the batch and one after.
                        let mut whole: Vec<Entry> = (0..skip).map(|_| entry(0, 0)).collect();
                        whole.extend(fresh.iter().cloned());
                        whole.push(entry(0, 0));
                        let whole = Entries::from(whole);
                        let batch = whole.slice(skip as usize..skip as usize + fresh.len());
                        if log.append_batch(batch).is_err() { return false; }
                        model.extend(fresh);
                    }
                    SegOp::Seal => log.seal(),
                    SegOp::TakeUnstable => {
                        let taken = log.take_unstable();
                        let want: Vec<Entry> = model.iter().filter(|e| e.index >= unstable).cloned().collect();
                        if taken != want { return false; }
                        unstable = log.last_index() + 1;
                    }
                    SegOp::Truncate(at) => {
                        let at = at as Index;
                        if at > compacted && at <= log.last_index() {
                            log.truncate_from(at);
                            model.retain(|e| e.index < at);
                            unstable = unstable.min(at);
                        }
                    }
                    SegOp::Compact(at) => {
                        let at = at as Index;
                        if at > compacted && at <= log.last_index() {
                            log.compact_to(at);
                            snap_term = log.term(at).unwrap_or(0);
                            model.retain(|e| e.index > at);
                            compacted = at;
                            unstable = unstable.max(at + 1);
                        }
                    }
                }
                let last = model.last().map_or(compacted, |e| e.index);
                if log.last_index() != last || log.first_index() != compacted + 1 { return false; }
                if log.unstable_from() != unstable { return false; }
                if log.last_term() != model.last().map_or(snap_term, |e| e.term) { return false; }
                if log.entries() != model { return false; }
                for e in &model {
                    if log.term(e.index) != Some(e.term) || log.entry(e.index) != Some(e) { return false; }
                }
                let (lo, hi) = (lo as Index, lo as Index + len as Index % 8);
                let want: Vec<Entry> = model.iter().filter(|e| e.index >= lo && e.index <= hi).cloned().collect();
                let got = log.range(lo, hi);
                if got != want || log.iter_range(lo, hi).cloned().collect::<Vec<_>>() != want { return false; }
                if log.starts.len() != log.sealed.len() || log.sealed.iter().zip(&log.starts).any(|(s, &i)| s[0].index != i) {
                    return false;
                }
                let within = log.sealed.iter().find(|s| s[0].index <= lo && hi <= s[s.len() - 1].index);
                if let Some(seg) = within {
                    if !got.shares_allocation_with(seg) { return false; }
                }
                let batch = log.batch(lo.max(1), len as usize % 5, 1 << 20);
                let want: Vec<Entry> = model.iter().filter(|e| e.index >= lo.max(1)).take((len as usize % 5).max(1)).cloned().collect();
                if batch != want { return false; }
            }
            true
        }

        /// The up-to-date comparison is the lexicographic order of (last term, last index).
        fn up_to_date_is_lexicographic(terms: Vec<u8>, idx: u8, term: u8) -> bool {
            let mut sorted = terms.clone();
            sorted.sort();
            let entries: Vec<_> = sorted.iter().enumerate().map(|(i, t)| entry(i as Index + 1, *t as Term)).collect();
            let log = RaftLog::restore(0, 0, entries).unwrap();
            let expect = (term as Term > log.last_term())
                || (term as Term == log.last_term() && idx as Index >= log.last_index());
            log.is_up_to_date(idx as Index, term as Term) == expect
        }
    }
}
