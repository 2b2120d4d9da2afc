//! The disk thread: owns the log store and makes persists durable with group commit.

use crate::metrics::SharedMetrics;
use crate::state_machine::Report;
use raft_core::{Input, Persist};
use raft_storage::{apply_persist, LogStore};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

/// Runs until `persists` closes (then syncs one last time and returns) or `killed` is set
/// (then returns at once, dropping what is queued, as a crash would).
///
/// Group commit: it blocks for one persist, then takes every persist that queued while
/// it waited or while the previous sync ran, applies them in `seq` order, syncs once and
/// reports the highest `seq`. A slow disk thus makes batches larger, not the queue longer.
///
/// A failed write or sync is reported as fatal and the thread stops without reporting
/// anything durable: after a failed fsync the kernel may have dropped the dirty pages, so
/// a retry could report as durable what was lost.
pub(crate) fn run<L: LogStore>(
    mut log: L,
    persists: mpsc::Receiver<Persist>,
    reports: tokio::sync::mpsc::UnboundedSender<Report>,
    metrics: Arc<SharedMetrics>,
    killed: Arc<AtomicBool>,
) {
    let mut batch: Vec<Persist> = Vec::new();
    while let Ok(first) = persists.recv() {
        batch.push(first);
        batch.extend(persists.try_iter());
        if killed.load(Ordering::Acquire) {
            return;
        }
        let mut entries = 0;
        for p in &batch {
            if let Err(e) = apply_persist(&mut log, p) {
                let _ = reports.send(Report::Fatal(format!("writing persist {} failed: {e}", p.seq)));
                tracing::error!(target: "raft::disk", seq = p.seq, "log write failed, the node stops: {e}");
                return;
            }
            entries += p.entries.len();
        }
        let started = Instant::now();
        if let Err(e) = log.sync() {
            let _ = reports.send(Report::Fatal(format!("log fsync failed: {e}")));
            tracing::error!(target: "raft::disk", "log fsync failed, the node stops (never retried): {e}");
            return;
        }
        metrics.synced(batch.len(), entries, started.elapsed());
        let seq = batch.last().map(|p| p.seq).expect("the batch holds at least one persist");
        batch.clear();
        if reports.send(Report::Input(Input::Persisted { seq })).is_err() {
            break;
        }
    }
    if !killed.load(Ordering::Acquire) {
        if let Err(e) = log.sync() {
            tracing::error!(target: "raft::disk", "final log fsync failed: {e}");
        }
    }
}
