//! The disk thread: owns the log store and makes persists durable with group commit.

use crate::metrics::SharedMetrics;
use crate::state_machine::Report;
use raft_core::{Input, Persist};
use raft_storage::{apply_persist, LogStore};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Most persists made durable by one sync (the core bounds what is in flight anyway).
const MAX_PERSISTS_PER_SYNC: usize = 4096;

/// The disk worker: runs until `persists` closes (then syncs one last time and returns)
/// or the node is killed (then returns at once, dropping what is queued, as a crash
/// would).
///
/// Group commit: it waits for one persist, then takes every persist that queued while it
/// waited or while the previous sync ran, applies them in `seq` order, syncs once and
/// reports the highest `seq`. A slow disk thus makes batches larger, not the queue longer.
/// Each batch's writes and its fsync run on tokio's blocking pool with the store moved to
/// it and back, never two batches at once (see `state_machine::run` for why a
/// blocking-pool task rather than a thread of its own).
///
/// A failed write or sync is reported as fatal and the worker stops without reporting
/// anything durable: after a failed fsync the kernel may have dropped the dirty pages, so
/// a retry could report as durable what was lost.
pub(crate) async fn run<L: LogStore + 'static>(
    mut log: L,
    mut persists: tokio::sync::mpsc::UnboundedReceiver<Persist>,
    reports: tokio::sync::mpsc::UnboundedSender<Report>,
    metrics: Arc<SharedMetrics>,
    killed: Arc<AtomicBool>,
) {
    let mut batch: Vec<Persist> = Vec::new();
    loop {
        if persists.recv_many(&mut batch, MAX_PERSISTS_PER_SYNC).await == 0 {
            break;
        }
        if killed.load(Ordering::Acquire) {
            return;
        }
        let (metrics, taken) = (metrics.clone(), std::mem::take(&mut batch));
        let work = move || {
            let result = write_and_sync(&mut log, &taken, &metrics);
            (log, result)
        };
        let synced = tokio::task::spawn_blocking(work).await;
        let (returned, result) = match synced {
            Ok(done) => done,
            Err(e) => {
                let _ = reports.send(Report::Fatal(format!("the disk worker panicked: {e}")));
                return;
            }
        };
        log = returned;
        match result {
            Ok(seq) => {
                if reports.send(Report::Input(Input::Persisted { seq })).is_err() {
                    break;
                }
            }
            Err(why) => {
                tracing::error!(target: "raft::disk", "{why}; the node stops (never retried)");
                let _ = reports.send(Report::Fatal(why));
                return;
            }
        }
    }
    if !killed.load(Ordering::Acquire) {
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(e) = log.sync() {
                tracing::error!(target: "raft::disk", "final log fsync failed: {e}");
            }
        })
        .await;
    }
}

/// Applies `batch` in order and syncs once; the highest seq made durable, or what failed.
pub(crate) fn write_and_sync<L: LogStore + ?Sized>(
    log: &mut L,
    batch: &[Persist],
    metrics: &SharedMetrics,
) -> Result<u64, String> {
    let mut entries = 0;
    for p in batch {
        apply_persist(log, p).map_err(|e| format!("writing persist {} failed: {e}", p.seq))?;
        entries += p.entries.len();
    }
    let started = Instant::now();
    log.sync().map_err(|e| format!("log fsync failed: {e}"))?;
    metrics.synced(batch.len(), entries, started.elapsed());
    Ok(batch.last().map(|p| p.seq).expect("the batch holds at least one persist"))
}
