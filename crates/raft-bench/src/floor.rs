//! The floor: the data movement no implementation of the benchmark workload can avoid,
//! with no protocol at all, as a yardstick for the core's overhead.
//!
//! Per round of `n` proposals on three nodes: the leader makes each payload as the core
//! driver does (a zero-copy slice of a shared receive buffer) and appends the entry to
//! its log; it seals the round into one shared batch and hands that batch to two
//! followers, which append it to their logs; every node applies the batch (reads each
//! entry, as a state machine must); every 100,000 entries each log drops what it applied,
//! as the drivers' compaction does. No term checks, no messages, no persistence requests,
//! no acknowledgements: anything a Raft library does beyond this is its overhead.

use crate::{COMPACT_EVERY, PAYLOAD};
use bytes::Bytes;
use raft_core::{Entries, Entry, Index, Payload};
use std::collections::VecDeque;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Payloads carved from one receive buffer before a new one is allocated (as the core
/// driver does).
const PAYLOADS_PER_BUFFER: usize = 4096;

/// One node's log: shared segments.
#[derive(Default)]
struct Log {
    segments: VecDeque<Entries>,
    applied: u64,
}

impl Log {
    fn append(&mut self, batch: Entries) {
        self.segments.push_back(batch);
    }

    /// Reads every entry of `batch` (the state machine's unavoidable work); returns the
    /// commands seen.
    fn apply(&mut self, batch: &Entries) -> u64 {
        let n = batch.iter().filter(|e| matches!(e.payload, Payload::Command(_))).count() as u64;
        self.applied += batch.len() as u64;
        n
    }

    fn compact(&mut self) {
        self.segments.clear();
    }
}

/// Three logs and a payload buffer: the floor workload's whole state.
pub struct Floor {
    logs: [Log; 3],
    /// The leader's open tail, reused from round to round.
    tail: Vec<Entry>,
    next_index: Index,
    payloads: Bytes,
    applied_on_leader: u64,
    since_compaction: u64,
}

impl Default for Floor {
    fn default() -> Self {
        Self::new()
    }
}

impl Floor {
    /// Empty logs.
    pub fn new() -> Self {
        Floor {
            logs: Default::default(),
            tail: Vec::new(),
            next_index: 1,
            payloads: Bytes::new(),
            applied_on_leader: 0,
            since_compaction: 0,
        }
    }

    fn payload(&mut self) -> Bytes {
        if self.payloads.is_empty() {
            self.payloads = Bytes::from(PAYLOAD.repeat(PAYLOADS_PER_BUFFER));
        }
        self.payloads.split_to(PAYLOAD.len())
    }

    /// One round of `n` entries through all three nodes.
    pub fn round(&mut self, n: usize) {
        self.tail.reserve(n);
        for _ in 0..n {
            let payload = Payload::Command(self.payload());
            self.tail.push(Entry { term: 1, index: self.next_index, payload });
            self.next_index += 1;
        }
        let batch = Entries::from(std::mem::replace(&mut self.tail, Vec::with_capacity(n)));
        for log in &mut self.logs {
            log.append(batch.clone());
        }
        for (i, log) in self.logs.iter_mut().enumerate() {
            let commands = log.apply(black_box(&batch));
            if i == 0 {
                self.applied_on_leader += commands;
            }
        }
        self.since_compaction += n as u64;
        if self.since_compaction >= COMPACT_EVERY {
            self.since_compaction = 0;
            for log in &mut self.logs {
                log.compact();
            }
        }
    }

    /// Entries applied on the leader so far.
    pub fn applied(&self) -> u64 {
        self.applied_on_leader
    }
}

/// Runs rounds of `round` entries for at least `time` (after a short warm-up); returns
/// nanoseconds per entry.
pub fn ns_per_entry(round: usize, time: Duration) -> f64 {
    let mut f = Floor::new();
    let warm = Instant::now();
    while warm.elapsed() < time / 10 {
        f.round(round);
    }
    let before = f.applied();
    let start = Instant::now();
    let mut elapsed;
    loop {
        f.round(round);
        elapsed = start.elapsed();
        if elapsed >= time {
            break;
        }
    }
    elapsed.as_nanos() as f64 / (f.applied() - before) as f64
}

/// The median of `trials` measurements of `ns_per_entry`, each `time / trials` long.
pub fn ns_per_entry_median(round: usize, time: Duration, trials: usize) -> f64 {
    let trials = trials.max(1);
    let mut xs: Vec<f64> = (0..trials).map(|_| ns_per_entry(round, time / trials as u32)).collect();
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_node_holds_and_applies_every_entry_and_compaction_bounds_the_logs() {
        let mut f = Floor::new();
        f.round(3);
        f.round(5);
        assert_eq!(f.applied(), 8);
        for log in &f.logs {
            let indexes: Vec<Index> = log.segments.iter().flat_map(|s| s.iter().map(|e| e.index)).collect();
            assert_eq!(indexes, (1..=8).collect::<Vec<_>>());
            assert_eq!(log.applied, 8);
        }
        assert!(f.logs[1].segments[1].shares_allocation_with(&f.logs[0].segments[1]), "followers share the batch");
        while f.applied() < COMPACT_EVERY + 8 {
            f.round(1024);
        }
        assert!(f.logs.iter().all(|l| l.segments.len() < (COMPACT_EVERY / 1024) as usize + 1));
        assert!(ns_per_entry(64, Duration::from_millis(20)) > 0.0);
    }
}
