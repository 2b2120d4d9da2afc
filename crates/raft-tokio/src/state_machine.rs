//! The user's state machine and the thread that runs it in log order.

use crate::error::{ProposeError, ReadError};
use crate::metrics::SharedMetrics;
use bytes::Bytes;
use raft_core::{Index, Input, SnapshotMeta, Term};
use raft_storage::SnapshotStore;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// One committed command, as handed to [`StateMachine::apply`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// Its log index; strictly increasing across every `apply` call of a node's life
    /// (after a restart or a snapshot restore, it continues after the restored index).
    pub index: Index,
    /// The term of the leader that appended it.
    pub term: Term,
    /// The bytes the client proposed, exactly.
    pub data: Bytes,
}

/// The application's replicated state. The runtime calls it from one dedicated thread,
/// in log order, so it needs no locking of its own; a slow call delays only later applies
/// and reads on this node, never the node's heartbeats or its disk.
///
/// Every member must compute the same responses from the same commands: `apply` must be
/// deterministic (no clock, no randomness, no local IO that can fail differently).
pub trait StateMachine: Send + 'static {
    /// What a proposal resolves with once applied (on the node that proposed it).
    type Response: Send + 'static;
    /// A read-only question, answered by [`StateMachine::query`].
    type Query: Send + 'static;
    /// The answer to a query.
    type QueryResponse: Send + 'static;

    /// Applies a batch of consecutive committed commands and returns exactly one response
    /// per command, in the same order. Log entries that carry no command (a new leader's
    /// no-op, membership changes) are not passed: indexes may skip them.
    fn apply(&mut self, commands: &[Command]) -> Vec<Self::Response>;

    /// Answers a read-only query from the current state. Called only once every entry the
    /// read must observe has been applied.
    fn query(&self, query: Self::Query) -> Self::QueryResponse;

    /// Writes the whole state (everything applied so far, nothing else) into `out`. The
    /// bytes are streamed into the snapshot store; nothing requires them to fit in memory.
    fn snapshot(&mut self, out: &mut dyn Write) -> io::Result<()>;

    /// Replaces the whole state with the one a [`StateMachine::snapshot`] wrote. On error
    /// the runtime stops the node: the state may be half-restored.
    fn restore(&mut self, input: &mut dyn Read) -> io::Result<()>;

    /// Whether every call returns at once, never waiting on I/O, a lock or a sleep (a
    /// state machine in memory). The runtime then runs the batches on its state machine
    /// task instead of tokio's blocking pool, saving two thread hand-offs per batch. A
    /// call that blocks anyway holds up a tokio worker thread (on a current-thread runtime,
    /// every task, heartbeats included), so the default is `false`.
    fn never_blocks(&self) -> bool {
        false
    }
}

/// A reply to a proposal: the state machine's response or why it failed.
pub(crate) type ProposeReply<R> = oneshot::Sender<Result<R, ProposeError>>;
/// A reply to a read.
pub(crate) type ReadReply<R> = oneshot::Sender<Result<R, ReadError>>;

/// Work for the state machine thread, queued in the order the core emitted it.
pub(crate) enum Job<M: StateMachine> {
    /// Apply these commands; `last` is the last index of the whole `Action::Apply` batch
    /// (reported as applied even when the batch holds no command).
    Apply { commands: Vec<Command>, last: Index, replies: Vec<(Index, ProposeReply<M::Response>)> },
    /// Serve a read (the core said the entries it must observe are handed out before it).
    Query { query: M::Query, reply: ReadReply<M::QueryResponse> },
    /// `Action::CreateSnapshot`.
    Create(SnapshotMeta),
    /// `Action::InstallSnapshot`.
    Install(SnapshotMeta),
    /// `Action::DiscardSnapshot`.
    Discard(SnapshotMeta),
}

/// What the state machine thread tells the driver.
pub(crate) enum Report {
    /// Feed this input to the node.
    Input(Input),
    /// The node cannot go on (a snapshot store failed, a restore failed): stop it.
    Fatal(String),
}

/// The state machine worker: runs until `jobs` closes (after finishing what is queued) or
/// the node is killed (dropping what is queued, as a crash would).
///
/// Jobs run in the order they were queued, one batch at a time on tokio's blocking pool:
/// the machine moves to the batch and back, so it is only ever used by one thread at a
/// time. (A blocking-pool task rather than a thread of its own: tokio's paused test clock
/// does not jump ahead while a blocking-pool task runs, so tests under a paused clock see
/// the machine's work take no virtual time instead of an arbitrary amount.)
pub(crate) async fn run<M: StateMachine, S: SnapshotStore + 'static>(
    mut machine: M,
    store: Arc<Mutex<S>>,
    mut jobs: tokio::sync::mpsc::UnboundedReceiver<Job<M>>,
    reports: tokio::sync::mpsc::UnboundedSender<Report>,
    metrics: Arc<SharedMetrics>,
    killed: Arc<AtomicBool>,
    inline: bool,
) {
    let mut batch = Vec::new();
    while jobs.recv_many(&mut batch, MAX_JOBS_PER_BATCH).await > 0 {
        let jobs_now = std::mem::take(&mut batch);
        let (store, to_driver, metrics, killed) = (store.clone(), reports.clone(), metrics.clone(), killed.clone());
        let work = move || {
            let go_on = run_batch(&mut machine, &store, jobs_now, &to_driver, &metrics, &killed);
            (machine, go_on)
        };
        let ran = if inline { Ok(work()) } else { tokio::task::spawn_blocking(work).await };
        match ran {
            Ok((m, true)) => machine = m,
            Ok((_, false)) => return,
            Err(e) => {
                // A panicking state machine: its state is unknown, the node cannot go on.
                let _ = reports.send(Report::Fatal(format!("the state machine panicked: {e}")));
                return;
            }
        }
    }
}

/// Most jobs handed to the blocking pool at once (bounds how long a kill waits).
const MAX_JOBS_PER_BATCH: usize = 256;

/// Runs `jobs` in order; false once the worker must stop (killed, or a fatal error).
fn run_batch<M: StateMachine, S: SnapshotStore>(
    machine: &mut M,
    store: &Mutex<S>,
    jobs: Vec<Job<M>>,
    reports: &tokio::sync::mpsc::UnboundedSender<Report>,
    metrics: &SharedMetrics,
    killed: &AtomicBool,
) -> bool {
    let fatal = |what: String| {
        tracing::error!(target: "raft::apply", "{what}; the node stops");
        let _ = reports.send(Report::Fatal(what));
    };
    for job in jobs {
        if killed.load(Ordering::Acquire) {
            // A crash: queued work is lost, as it would be with the process.
            return false;
        }
        match job {
            Job::Apply { commands, last, replies } => {
                let responses = if commands.is_empty() { Vec::new() } else { machine.apply(&commands) };
                assert_eq!(responses.len(), commands.len(), "StateMachine::apply must return one response per command");
                metrics.applied(commands.len());
                // Replies are matched by index: the core lists (index, id) of this node's
                // proposals in the batch, and only command entries are proposals.
                let mut responses = commands.iter().map(|c| c.index).zip(responses).peekable();
                for (index, reply) in replies {
                    while responses.peek().is_some_and(|(i, _)| *i < index) {
                        responses.next();
                    }
                    match responses.next() {
                        Some((i, response)) if i == index => {
                            let _ = reply.send(Ok(response));
                        }
                        _ => {
                            let _ = reply.send(Err(ProposeError::Stopped));
                        }
                    }
                }
                if reports.send(Report::Input(Input::Applied { index: last })).is_err() {
                    return false;
                }
            }
            Job::Query { query, reply } => {
                let _ = reply.send(Ok(machine.query(query)));
            }
            Job::Create(meta) => {
                let success = match create_snapshot(machine, store, &meta) {
                    Ok(done) => done,
                    Err(e) => {
                        // Reported as unsuccessful: the core asks again later. A poisoned
                        // store fails every later call and the next failure is the same.
                        tracing::warn!(target: "raft::snapshot", index = meta.index, "snapshot failed: {e}");
                        false
                    }
                };
                let _ = reports.send(Report::Input(Input::SnapshotCreated { index: meta.index, success }));
            }
            Job::Install(meta) => match install_snapshot(machine, store, &meta) {
                Ok(true) => {
                    let _ =
                        reports.send(Report::Input(Input::SnapshotInstalled { meta: Box::new(meta), success: true }));
                }
                Ok(false) => {
                    // The slot holds another snapshot now (a newer arrival): nothing was
                    // restored, the state machine is as it was.
                    let _ =
                        reports.send(Report::Input(Input::SnapshotInstalled { meta: Box::new(meta), success: false }));
                }
                Err(e) => {
                    fatal(format!("installing the snapshot at index {} failed: {e}", meta.index));
                    return false;
                }
            },
            Job::Discard(meta) => {
                let mut store = store.lock().expect("snapshot store lock");
                if store.staged().as_ref() == Some(&meta) {
                    if let Err(e) = store.discard_staged() {
                        tracing::warn!(target: "raft::snapshot", "discarding a staged snapshot failed: {e}");
                    }
                }
            }
        }
    }
    true
}

fn create_snapshot<M: StateMachine, S: SnapshotStore>(
    machine: &mut M,
    store: &Mutex<S>,
    meta: &SnapshotMeta,
) -> Result<bool, String> {
    // The lock is held only to begin and to finish: the bytes are written without it, so
    // a snapshot sender or a receiver staging a stream is not held up by a large snapshot.
    let mut writer = store.lock().expect("snapshot store lock").begin(meta).map_err(|e| e.to_string())?;
    machine.snapshot(&mut writer).map_err(|e| e.to_string())?;
    writer.flush().map_err(|e| e.to_string())?;
    store.lock().expect("snapshot store lock").finish(writer).map_err(|e| e.to_string())
}

fn install_snapshot<M: StateMachine, S: SnapshotStore>(
    machine: &mut M,
    store: &Mutex<S>,
    meta: &SnapshotMeta,
) -> Result<bool, String> {
    // Held throughout: a stream staged meanwhile must not replace the snapshot between
    // the restore and the promotion (the promotion would then name another snapshot).
    let mut store = store.lock().expect("snapshot store lock");
    if store.staged().as_ref() != Some(meta) {
        return Ok(false);
    }
    let Some((_, mut reader)) = store.open_staged().map_err(|e| e.to_string())? else { return Ok(false) };
    machine.restore(&mut reader).map_err(|e| e.to_string())?;
    drop(reader);
    store.promote().map_err(|e| e.to_string())?;
    Ok(true)
}
