//! Counters of the runtime's own work (the core's are in `raft_core::Metrics`).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Buckets of the fsync latency histogram: bucket `i` counts syncs that took less than
/// `2^i` microseconds (the last one everything longer).
pub const LATENCY_BUCKETS: usize = 24;

/// Shared between the driver, the disk thread and the state machine thread; only grows.
#[derive(Debug, Default)]
pub(crate) struct SharedMetrics {
    fsyncs: AtomicU64,
    persists: AtomicU64,
    entries_persisted: AtomicU64,
    fsync_micros: [AtomicU64; LATENCY_BUCKETS],
    commands_applied: AtomicU64,
    dropped_messages: AtomicU64,
}

impl SharedMetrics {
    pub(crate) fn synced(&self, persists: usize, entries: usize, took: Duration) {
        self.fsyncs.fetch_add(1, Relaxed);
        self.persists.fetch_add(persists as u64, Relaxed);
        self.entries_persisted.fetch_add(entries as u64, Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = (64 - micros.leading_zeros() as usize).min(LATENCY_BUCKETS - 1);
        self.fsync_micros[bucket].fetch_add(1, Relaxed);
    }

    pub(crate) fn applied(&self, commands: usize) {
        self.commands_applied.fetch_add(commands as u64, Relaxed);
    }

    pub(crate) fn dropped_message(&self) {
        self.dropped_messages.fetch_add(1, Relaxed);
    }

    pub(crate) fn read(&self) -> RuntimeMetrics {
        RuntimeMetrics {
            fsyncs: self.fsyncs.load(Relaxed),
            persists: self.persists.load(Relaxed),
            entries_persisted: self.entries_persisted.load(Relaxed),
            fsync_latency: std::array::from_fn(|i| self.fsync_micros[i].load(Relaxed)),
            commands_applied: self.commands_applied.load(Relaxed),
            dropped_messages: self.dropped_messages.load(Relaxed),
        }
    }
}

/// A point-in-time copy of the runtime's counters ([`crate::Raft::metrics`]). Every
/// counter only grows over a node's life.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuntimeMetrics {
    /// Successful log syncs (fsyncs) of the disk thread.
    pub fsyncs: u64,
    /// `Action::Persist`s made durable; `persists / fsyncs` is the group-commit factor.
    pub persists: u64,
    /// Log entries made durable; `entries_persisted / fsyncs` is entries per fsync.
    pub entries_persisted: u64,
    /// Fsync latency histogram: `fsync_latency[i]` syncs took less than `2^i` µs (and at
    /// least `2^(i-1)`); the last bucket holds every longer one.
    pub fsync_latency: [u64; LATENCY_BUCKETS],
    /// Commands the state machine applied.
    pub commands_applied: u64,
    /// Incoming messages dropped because the node's inbox was full.
    pub dropped_messages: u64,
}

impl RuntimeMetrics {
    /// Mean persists per fsync (0 before the first).
    pub fn persists_per_fsync(&self) -> f64 {
        ratio(self.persists, self.fsyncs)
    }

    /// Mean log entries per fsync (0 before the first).
    pub fn entries_per_fsync(&self) -> f64 {
        ratio(self.entries_persisted, self.fsyncs)
    }

    /// An upper bound of the `q`-quantile (0..=1) of fsync latency, from the histogram.
    pub fn fsync_latency_quantile(&self, q: f64) -> Duration {
        let total: u64 = self.fsync_latency.iter().sum();
        let target = ((total as f64) * q.clamp(0.0, 1.0)).ceil() as u64;
        let mut seen = 0;
        for (i, n) in self.fsync_latency.iter().enumerate() {
            seen += n;
            if seen >= target.max(1) {
                return Duration::from_micros(1u64 << i);
            }
        }
        Duration::ZERO
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}
