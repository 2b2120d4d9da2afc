//! Starting a node and the handle to it.

use crate::disk;
use crate::driver::{Driver, LogPath, Request};
use crate::error::{ChangeError, ProposeError, ReadError, ShutdownError, StartError, Stopped, TransferLeaderError};
use crate::metrics::{RuntimeMetrics, SharedMetrics};
use crate::state_machine::{self, StateMachine};
use crate::transport::{Inbound, SnapshotStream, Stager, Transport};
use bytes::Bytes;
use raft_core::{
    Config, Event, Instant, Membership, MembershipChange, Node, NodeId, NodeInfo, SnapshotMeta, Status, Transition,
};
use raft_storage::{LogStore, SnapshotStore};
use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tracing::Instrument;

/// How the runtime around a node is set up (the protocol's settings are in
/// `raft_core::Config`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// Founding members with their node info: on stores that hold nothing yet, record them
    /// as the initial configuration (every founder must be given the same list). Ignored on
    /// a restart (the stores are not empty). `None` for a node that joins an existing
    /// cluster: it starts empty and waits for a leader to add it.
    pub bootstrap: Option<Vec<(NodeId, NodeInfo)>>,
    /// Addresses of nodes to reach before the configuration names them: a node that joins
    /// an existing cluster starts knowing no member, yet must answer the leader that adds
    /// it. The configuration's node info replaces these as soon as it names the node.
    pub contacts: Vec<(NodeId, NodeInfo)>,
    /// Most messages waiting in the node's inbox; more are dropped (and counted).
    pub inbox_capacity: usize,
    /// Most handle calls waiting for the driver; callers wait beyond that (backpressure).
    pub request_capacity: usize,
    /// Events kept for a slow subscriber of [`Raft::events`] before it loses the oldest.
    pub event_capacity: usize,
    /// How long a graceful shutdown waits for the hand-over and for in-flight requests.
    pub shutdown_timeout: Duration,
    /// Runs the log store and the state machine as if both never blocked (see below),
    /// whatever they declare. Off by default.
    ///
    /// A log store that never blocks (`LogStore::never_blocks`, true for the in-memory
    /// store) is written and synced by the driver itself after each drain (one sync per
    /// drain, after the drain's sends); a state machine that never blocks
    /// (`StateMachine::never_blocks`) runs its batches on its worker task instead of
    /// tokio's blocking pool. Each saves two thread hand-offs per batch; a call that blocks
    /// anyway would hold up the driver, and on a current-thread runtime every task.
    pub inline_io: bool,
    /// Largest snapshot this node stages from a peer, in bytes. A stream that goes past it
    /// is refused (the sender's transfer fails, and it retries later); nothing of it is
    /// staged. Bounds the disk a member (or a bug) can fill through the staging slot. Set
    /// it well above the largest snapshot the state machine writes, on every node. `None`
    /// (the default): no bound.
    pub max_snapshot_bytes: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            bootstrap: None,
            contacts: Vec::new(),
            inbox_capacity: 16 << 10,
            request_capacity: 16 << 10,
            event_capacity: 1024,
            shutdown_timeout: Duration::from_secs(10),
            inline_io: false,
            max_snapshot_bytes: None,
        }
    }
}

impl Options {
    /// Options for a node joining an existing cluster, reaching it first through `contacts`
    /// (the members' node info, or at least the leader's).
    pub fn join(contacts: impl IntoIterator<Item = (NodeId, NodeInfo)>) -> Self {
        Options { contacts: contacts.into_iter().collect(), ..Options::default() }
    }

    /// Options for a founding member of a cluster of `members`.
    pub fn bootstrap(members: impl IntoIterator<Item = (NodeId, NodeInfo)>) -> Self {
        Options { bootstrap: Some(members.into_iter().collect()), ..Options::default() }
    }
}

/// How a read is confirmed before the state machine answers it.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Consistency {
    /// Linearizable: the leader confirms it still leads with a heartbeat round (ReadIndex),
    /// and the answer reflects every write acknowledged before the read was made.
    #[default]
    Linearizable,
    /// Linearizable under a clock-drift assumption: served by the leader from its lease
    /// without a round trip (needs `Config::lease_reads`).
    Lease,
    /// Linearizable, served by this node (leader or follower) after it has applied the
    /// leader's read index.
    FollowerLinearizable,
    /// Whatever this node has applied now: may be stale, never waits for the cluster.
    Local,
}

struct Shared<M: StateMachine> {
    id: NodeId,
    requests: mpsc::Sender<Request<M>>,
    status: watch::Receiver<Status>,
    events: broadcast::Sender<Event>,
    metrics: Arc<SharedMetrics>,
}

/// A cheap, cloneable handle to a running node. Every call is a message to the node's
/// driver task with its own reply; outcomes are the core's outcomes for that request (by
/// its id), never guesses from events. Once the node stopped every call fails with a
/// `Stopped` error.
pub struct Raft<M: StateMachine> {
    shared: Arc<Shared<M>>,
}

impl<M: StateMachine> Clone for Raft<M> {
    fn clone(&self) -> Self {
        Raft { shared: self.shared.clone() }
    }
}

impl<M: StateMachine> std::fmt::Debug for Raft<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Raft").field("id", &self.shared.id).finish_non_exhaustive()
    }
}

impl<M: StateMachine> Raft<M> {
    /// Starts node `config.id` on a tokio runtime: reconciles and reads the stores
    /// (recording `options.bootstrap` first on empty stores), restores `machine` from the
    /// latest snapshot, attaches `transport`, and spawns the driver task, the disk thread
    /// (which takes `log`) and the state machine thread (which takes `machine`).
    ///
    /// A node with `config.start_paused` loads its state but neither campaigns nor accepts
    /// proposals until [`Raft::resume`].
    pub async fn start<L, S, T>(
        config: Config,
        options: Options,
        log: L,
        snapshots: S,
        machine: M,
        transport: T,
    ) -> Result<Raft<M>, StartError>
    where
        L: LogStore + 'static,
        S: SnapshotStore + 'static,
        T: Transport,
    {
        let mut config = config;
        let limits = |c: &Config| [c.max_entry_bytes, c.max_bytes_per_message, c.max_node_info_bytes];
        let before = limits(&config);
        transport.fit_config(&mut config).map_err(StartError::Transport)?;
        if limits(&config).iter().zip(before).any(|(after, before)| *after > before) {
            // A limit the user set is a promise about resources; only the user raises it.
            return Err(StartError::Transport(format!(
                "Transport::fit_config raised a size limit (entry, message, node info: {before:?} -> {:?})",
                limits(&config)
            )));
        }
        let id = config.id;
        let span = tracing::info_span!("raft", node = id);
        let bootstrap = options.bootstrap.clone();
        // Storage reads and the state machine's restore block: off the async threads.
        let loaded = tokio::task::spawn_blocking(move || load(log, snapshots, machine, bootstrap))
            .await
            .expect("loading the stores does not panic");
        let (log, snapshots, machine, restored) = loaded?;
        let epoch = tokio::time::Instant::now();
        let node = Node::new(config, restored, Instant::ZERO)?;

        let metrics = Arc::new(SharedMetrics::default());
        let killed = Arc::new(AtomicBool::new(false));
        let store = Arc::new(Mutex::new(snapshots));
        let (reports_tx, reports_rx) = mpsc::unbounded_channel();
        let (messages_tx, messages_rx) = mpsc::channel(options.inbox_capacity.max(1));
        let (requests_tx, requests_rx) = mpsc::channel(options.request_capacity.max(1));
        let (status_tx, status_rx) = watch::channel(node.status());
        let (events_tx, _) = broadcast::channel(options.event_capacity.max(1));

        // Inline: the driver writes and syncs the log itself after each drain (a store that
        // never blocks gains nothing from a worker but two task hand-offs per batch).
        let inline_disk = options.inline_io || log.never_blocks();
        let inline_machine = options.inline_io || machine.never_blocks();
        let log_path = if inline_disk {
            LogPath::Inline(Box::new(log), metrics.clone())
        } else {
            let (tx, rx) = mpsc::unbounded_channel();
            let task = disk::run(log, rx, reports_tx.clone(), metrics.clone(), killed.clone());
            LogPath::Worker(tx, tokio::spawn(task.instrument(span.clone())))
        };
        let applier = {
            let (tx, rx) = mpsc::unbounded_channel();
            let task = state_machine::run(
                machine,
                store.clone(),
                rx,
                reports_tx.clone(),
                metrics.clone(),
                killed.clone(),
                inline_machine,
            );
            (tx, tokio::spawn(task.instrument(span.clone())))
        };

        let transport = Arc::new(transport);
        transport.attach(Inbound::new(
            id,
            messages_tx,
            reports_tx.clone(),
            stager(store.clone(), options.max_snapshot_bytes),
            metrics.clone(),
        ));
        let mut driver = Driver::new(
            node,
            epoch,
            transport,
            store,
            log_path,
            applier,
            killed,
            reports_tx,
            status_tx,
            events_tx.clone(),
            options.shutdown_timeout,
        );
        driver.contacts = options.contacts.iter().cloned().collect();
        tokio::spawn(driver.run(requests_rx, messages_rx, reports_rx).instrument(span));
        Ok(Raft {
            shared: Arc::new(Shared { id, requests: requests_tx, status: status_rx, events: events_tx, metrics }),
        })
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.shared.id
    }

    async fn call<R>(&self, make: impl FnOnce(oneshot::Sender<R>) -> Request<M>) -> Option<R> {
        let (tx, rx) = oneshot::channel();
        self.shared.requests.send(make(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Replicates `command` and resolves with the state machine's response once it is
    /// applied on this node. Only a leader accepts proposals: elsewhere it fails with
    /// [`ProposeError::NotLeader`], naming the leader and its node info when known.
    pub async fn propose(&self, command: impl Into<Bytes>) -> Result<M::Response, ProposeError> {
        let data = command.into();
        self.call(|reply| Request::Propose { data, reply }).await.unwrap_or(Err(ProposeError::Stopped))
    }

    /// Answers `query` from the state machine, linearizably: the answer reflects every
    /// write acknowledged before the call.
    pub async fn read(&self, query: M::Query) -> Result<M::QueryResponse, ReadError> {
        self.read_with(query, Consistency::Linearizable).await
    }

    /// Answers `query` with the chosen [`Consistency`].
    pub async fn read_with(&self, query: M::Query, consistency: Consistency) -> Result<M::QueryResponse, ReadError> {
        self.call(|reply| Request::Read { query, consistency, reply }).await.unwrap_or(Err(ReadError::Stopped))
    }

    /// Applies a membership change (joint consensus) and resolves with the final
    /// configuration once it is committed. Leader only.
    pub async fn change_membership(&self, change: MembershipChange) -> Result<Membership, ChangeError> {
        self.call(|reply| Request::Change { change, reply }).await.unwrap_or(Err(ChangeError::Stopped))
    }

    /// Adds `id` as a learner reachable at `info`: it receives the log (by snapshot if
    /// needed) without voting.
    pub async fn add_learner(&self, id: NodeId, info: NodeInfo) -> Result<Membership, ChangeError> {
        let mut change = MembershipChange { add_learners: vec![id], ..Default::default() };
        change.info.insert(id, info);
        self.change_membership(change).await
    }

    /// Makes learner `id` a voter. Refused while it is more than `max_lag` entries behind
    /// the leader (`None`: no check).
    pub async fn promote(&self, id: NodeId, max_lag: Option<u64>) -> Result<Membership, ChangeError> {
        let change = MembershipChange { add_voters: vec![id], require_caught_up: max_lag, ..Default::default() };
        self.change_membership(change).await
    }

    /// Removes member `id` (voter or learner).
    pub async fn remove(&self, id: NodeId) -> Result<Membership, ChangeError> {
        self.change_membership(MembershipChange { remove: vec![id], ..Default::default() }).await
    }

    /// Hands leadership to `to` (or, with `None`, to the most up-to-date voter) and
    /// resolves with the new leader once this node learns it won.
    pub async fn transfer_leader(&self, to: Option<NodeId>) -> Result<NodeId, TransferLeaderError> {
        self.call(|reply| Request::Transfer { to, reply }).await.unwrap_or(Err(TransferLeaderError::Stopped))
    }

    /// The node's latest published status (role, term, leader, indexes, membership, the
    /// leader's view of its peers; see [`Raft::watch`] for how fresh). Kept after the node
    /// stopped (its last value).
    pub fn status(&self) -> Status {
        self.shared.status.borrow().clone()
    }

    /// A watch of the status. A change of role, term, leader or the paused flag is
    /// published at the end of the driver round that made it; a change of indexes only
    /// (commit, applied, durable, last log, snapshot) within a millisecond, coalesced under
    /// load. `watch.wait_for(|s| ...)` waits for a condition.
    pub fn watch(&self) -> watch::Receiver<Status> {
        self.shared.status.clone()
    }

    /// The node's events from now on, in the order the core emitted them (role, leader,
    /// membership, reachability, quorum). A subscriber more than `Options::event_capacity`
    /// events behind loses the oldest (`RecvError::Lagged` says how many).
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }

    /// The node's most recent role transitions, oldest first.
    pub async fn history(&self) -> Result<Vec<Transition>, Stopped> {
        self.call(Request::History).await.ok_or(Stopped)
    }

    /// The core's counters (dropped input, messages, persists, elections).
    pub async fn core_metrics(&self) -> Result<raft_core::Metrics, Stopped> {
        self.call(Request::CoreMetrics).await.ok_or(Stopped)
    }

    /// The runtime's counters (fsyncs, group commit, applies, dropped messages).
    pub fn metrics(&self) -> RuntimeMetrics {
        self.shared.metrics.read()
    }

    /// Stops campaigning and accepting proposals (a leader hands leadership away first);
    /// the node keeps replicating, voting and serving reads. Returns once the status
    /// shows the node paused.
    pub async fn pause(&self) -> Result<(), Stopped> {
        self.call(Request::Pause).await.ok_or(Stopped)
    }

    /// Undoes [`Raft::pause`] (or `Config::start_paused`). Returns once the status shows
    /// the node resumed. Ignored while shutting down.
    pub async fn resume(&self) -> Result<(), Stopped> {
        self.call(Request::Resume).await.ok_or(Stopped)
    }

    /// Stops the node gracefully and resolves once every part has stopped: it stops
    /// accepting proposals, hands leadership over if it leads, waits (up to
    /// `Options::shutdown_timeout`) until every accepted proposal and change has its
    /// outcome, lets the state machine apply what it was given, makes every queued persist
    /// durable, and detaches the transport. No acknowledged write is lost: acknowledged
    /// writes are committed on a quorum.
    pub async fn shutdown(&self) -> Result<(), ShutdownError> {
        self.call(Request::Shutdown).await.unwrap_or(Err(ShutdownError::AlreadyStopped))
    }

    /// Stops the node as a crash would, for fault-injection tests: no hand-over, queued
    /// persists and state machine work are dropped (what was synced stays, as on a crash).
    /// Resolves once the stores are released, so they can be reopened.
    pub async fn kill(&self) -> Result<(), Stopped> {
        self.call(Request::Kill).await.ok_or(Stopped)
    }

    /// Whether the node has stopped (shut down, killed, or stopped by a fatal error); true
    /// from the moment [`Raft::shutdown`] or [`Raft::kill`] returns.
    pub fn is_stopped(&self) -> bool {
        self.shared.requests.is_closed()
    }
}

/// Records the bootstrap configuration on empty stores, reconciles them, and restores the
/// state machine from the latest snapshot.
#[allow(clippy::type_complexity)]
fn load<L: LogStore, S: SnapshotStore, M: StateMachine>(
    mut log: L,
    mut snapshots: S,
    mut machine: M,
    bootstrap: Option<Vec<(NodeId, NodeInfo)>>,
) -> Result<(L, S, M, raft_core::RestoredState), StartError> {
    if let Some(members) = bootstrap {
        raft_storage::bootstrap_with_info(&mut log, &snapshots, members)?;
    }
    let restored = raft_storage::restore(&mut log, &mut snapshots)?;
    if let Some((meta, mut reader)) = snapshots.open_latest()? {
        machine.restore(&mut reader).map_err(|error| StartError::Restore { index: meta.index, error })?;
    }
    Ok((log, snapshots, machine, restored))
}

/// Stages a received stream into the snapshot store on a blocking thread: the bytes go
/// straight from the stream into the store's writer; a stream longer than `max` bytes is
/// refused before its excess is written (the writer is dropped, so nothing is staged).
fn stager<S: SnapshotStore + 'static>(store: Arc<Mutex<S>>, max: Option<u64>) -> Stager {
    Arc::new(move |meta: SnapshotMeta, mut stream: SnapshotStream| {
        let store = store.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut writer = store.lock().expect("snapshot store lock").begin(&meta).map_err(|e| e.to_string())?;
                let mut received: u64 = 0;
                while let Some(chunk) = stream.blocking_next() {
                    let chunk = chunk.map_err(|e| format!("the stream broke off: {e}"))?;
                    received = received.saturating_add(chunk.len() as u64);
                    if let Some(max) = max.filter(|&max| received > max) {
                        return Err(format!("the snapshot is larger than max_snapshot_bytes ({max})"));
                    }
                    writer.write_all(&chunk).map_err(|e| e.to_string())?;
                }
                writer.flush().map_err(|e| e.to_string())?;
                store.lock().expect("snapshot store lock").stage(writer).map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| format!("staging task failed: {e}"))?
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::Membership;

    /// Streams `chunks` into a fresh in-memory store through the stager with `max`.
    async fn stage(max: Option<u64>, chunks: &[&'static [u8]]) -> (Result<(), String>, Option<SnapshotMeta>) {
        let store = Arc::new(Mutex::new(raft_storage::MemSnapshotStore::new()));
        let meta = SnapshotMeta { index: 4, term: 1, membership: Membership::with_voters([1]) };
        // Room for every chunk and the end, so the whole stream is written before it is read.
        let (sink, stream) = SnapshotStream::channel(chunks.len() + 1);
        for c in chunks {
            sink.send(Bytes::from_static(c)).await.expect("buffered");
        }
        sink.finish().await;
        let result = stager(store.clone(), max)(meta, stream).await;
        let staged = store.lock().expect("lock").staged();
        (result, staged)
    }

    /// A transport whose `fit_config` applies `fit` and that carries nothing.
    struct Fitting(fn(&mut Config));

    impl Transport for Fitting {
        fn fit_config(&self, config: &mut Config) -> Result<(), String> {
            (self.0)(config);
            Ok(())
        }
        fn attach(&self, _: Inbound) {}
        fn set_peers(&self, _: &std::collections::BTreeMap<NodeId, NodeInfo>) {}
        fn send(&self, msg: raft_core::Message) -> Result<(), crate::TransportError> {
            Err(crate::TransportError::Unreachable(msg.to))
        }
        async fn send_snapshot(
            &self,
            header: raft_core::SnapshotHeader,
            _: SnapshotStream,
        ) -> Result<(), crate::TransportError> {
            Err(crate::TransportError::Unreachable(header.to))
        }
    }

    /// A state machine that keeps nothing.
    struct Nothing;

    impl StateMachine for Nothing {
        type Response = ();
        type Query = ();
        type QueryResponse = ();
        fn apply(&mut self, commands: &[crate::Command]) -> Vec<()> {
            vec![(); commands.len()]
        }
        fn query(&self, (): ()) {}
        fn snapshot(&mut self, _: &mut dyn Write) -> std::io::Result<()> {
            Ok(())
        }
        fn restore(&mut self, _: &mut dyn std::io::Read) -> std::io::Result<()> {
            Ok(())
        }
    }

    async fn start_with(fit: fn(&mut Config)) -> Result<Raft<Nothing>, StartError> {
        let (log, snapshots) = raft_storage::mem_stores();
        let options = Options::bootstrap([(1, NodeInfo::new(&b"one"[..]))]);
        Raft::start(Config::new(1), options, log, snapshots, Nothing, Fitting(fit)).await
    }

    /// `Raft::start` lets a transport lower the core's size limits but not raise one: a
    /// limit the user set is a promise about memory and the network.
    #[tokio::test]
    async fn a_transport_may_lower_the_size_limits_but_not_raise_them() {
        let lowered = start_with(|c| c.max_entry_bytes /= 2).await.expect("lowering is allowed");
        let _ = lowered.kill().await;
        match start_with(|c| c.max_bytes_per_message *= 2).await {
            Err(StartError::Transport(why)) => assert!(why.contains("raised a size limit"), "{why}"),
            Err(other) => panic!("expected the transport's refusal, got {other}"),
            Ok(_) => panic!("a transport raised a limit and the node started"),
        }
    }

    /// A received snapshot up to `Options::max_snapshot_bytes` is staged; one byte more
    /// is refused and nothing of it is staged.
    #[tokio::test]
    async fn a_received_snapshot_over_the_limit_is_refused_and_not_staged() {
        let (result, staged) = stage(Some(10), &[b"01234", b"56789"]).await;
        assert_eq!(result, Ok(()));
        assert_eq!(staged.map(|m| m.index), Some(4));

        let (result, staged) = stage(Some(10), &[b"01234", b"56789", b"!"]).await;
        let refusal = result.expect_err("eleven bytes are over a limit of ten");
        assert!(refusal.contains("max_snapshot_bytes (10)"), "{refusal}");
        assert_eq!(staged, None, "nothing staged");

        let (result, _) = stage(None, &[b"01234", b"56789", b"!"]).await;
        assert_eq!(result, Ok(()), "no limit by default");
    }
}
