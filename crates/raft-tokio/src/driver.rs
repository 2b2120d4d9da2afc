//! The driver task: owns the node, feeds it, and carries out every action it emits.

use crate::error::{ChangeError, ProposeError, ReadError, ShutdownError, TransferLeaderError};
use crate::state_machine::{Command, Job, ProposeReply, ReadReply, Report, StateMachine};
use crate::transport::{SnapshotStream, Transport};
use crate::Consistency;
use bytes::Bytes;
use raft_core::{
    Action, Event, Input, Instant, Membership, MembershipChange, Message, Node, NodeId, NodeInfo, Payload, Persist,
    ProposalId, ReadConsistency, ReadId, RequestId, Role, Status, Transition,
};
use raft_storage::{LogStore, SnapshotStore};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// Most inputs taken from the queues before the node's actions are drained: large enough
/// to batch a burst of proposals into one append, small enough that a flood cannot delay
/// the actions (and the heartbeats among them) for long.
const MAX_INPUTS_PER_ROUND: usize = 512;

/// The most often a status whose only change is its indexes is published.
const STATUS_INTERVAL: Duration = Duration::from_millis(1);

/// Chunk size of snapshot streams.
const SNAPSHOT_CHUNK: usize = 64 << 10;

/// A call of the handle, with the channel its answer goes back on.
pub(crate) enum Request<M: StateMachine> {
    Propose { data: Bytes, reply: ProposeReply<M::Response> },
    Read { query: M::Query, consistency: Consistency, reply: ReadReply<M::QueryResponse> },
    Change { change: MembershipChange, reply: oneshot::Sender<Result<Membership, ChangeError>> },
    Transfer { to: Option<NodeId>, reply: oneshot::Sender<Result<NodeId, TransferLeaderError>> },
    History(oneshot::Sender<Vec<Transition>>),
    CoreMetrics(oneshot::Sender<raft_core::Metrics>),
    Pause(oneshot::Sender<()>),
    Resume(oneshot::Sender<()>),
    Shutdown(oneshot::Sender<Result<(), ShutdownError>>),
    Kill(oneshot::Sender<()>),
}

/// Where the driver's persists go.
pub(crate) enum LogPath {
    /// To the disk worker task (its queue, and the task to await at the stop).
    Worker(mpsc::UnboundedSender<Persist>, tokio::task::JoinHandle<()>),
    /// To the log store itself, written and synced by the driver (a store that never
    /// blocks), with the metrics its syncs feed.
    Inline(Box<dyn LogStore>, Arc<crate::metrics::SharedMetrics>),
}

/// What woke the driver.
enum Wake<M: StateMachine> {
    Report(Report),
    Message(Message),
    Request(Option<Request<M>>),
    Timer,
}

/// A graceful shutdown in progress.
struct Stopping {
    replies: Vec<oneshot::Sender<Result<(), ShutdownError>>>,
    /// `Event::ReadyToStop` arrived: leadership is handed over (or was never held).
    ready: bool,
    /// Past this, the node stops whatever is still in flight.
    deadline: tokio::time::Instant,
}

/// Everything the driver task owns.
pub(crate) struct Driver<M: StateMachine, T: Transport, S: SnapshotStore> {
    pub(crate) node: Node,
    pub(crate) epoch: tokio::time::Instant,
    pub(crate) transport: Arc<T>,
    pub(crate) store: Arc<Mutex<S>>,
    pub(crate) disk: Option<mpsc::UnboundedSender<Persist>>,
    pub(crate) disk_task: Option<tokio::task::JoinHandle<()>>,
    pub(crate) applier: Option<mpsc::UnboundedSender<Job<M>>>,
    pub(crate) applier_task: Option<tokio::task::JoinHandle<()>>,
    pub(crate) killed: Arc<AtomicBool>,
    pub(crate) reports_tx: mpsc::UnboundedSender<Report>,
    pub(crate) status: watch::Sender<Status>,
    pub(crate) events: broadcast::Sender<Event>,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) proposals: HashMap<ProposalId, ProposeReply<M::Response>>,
    pub(crate) reads: HashMap<ReadId, (M::Query, ReadReply<M::QueryResponse>)>,
    pub(crate) changes: HashMap<RequestId, oneshot::Sender<Result<Membership, ChangeError>>>,
    pub(crate) transfers: HashMap<RequestId, oneshot::Sender<Result<NodeId, TransferLeaderError>>>,
    pub(crate) next_id: u64,
    pub(crate) peers: BTreeMap<NodeId, NodeInfo>,
    /// Addresses known without the configuration (`Options::contacts`).
    pub(crate) contacts: BTreeMap<NodeId, NodeInfo>,
    contacts_sent: bool,
    /// When each peer was last reported unreachable.
    unreachable: HashMap<NodeId, tokio::time::Instant>,
    pub(crate) actions: Vec<Action>,
    pub(crate) reports: Vec<Input>,
    stopping: Option<Stopping>,
    fatal: Option<String>,
    kill: Option<oneshot::Sender<()>>,
    /// With `Options::inline_io` or a log store that never blocks: the log store (and the
    /// metrics its syncs feed), written and synced by the driver itself after each drain
    /// (group commit over the drain's persists) instead of a worker.
    inline_log: Option<(Box<dyn LogStore>, Arc<crate::metrics::SharedMetrics>)>,
    inline_batch: Vec<Persist>,
    /// Pause and resume requests, answered at the end of the round.
    acks: Vec<oneshot::Sender<()>>,
    /// The time of the current round's inputs.
    round_now: Instant,
    /// When a status whose indexes changed is to be published (at most one per
    /// `STATUS_INTERVAL`); `None` when the published status is current.
    status_due: Option<tokio::time::Instant>,
    /// When the status was last published.
    status_at: tokio::time::Instant,
    /// The status fields last published, to skip rebuilding an unchanged status.
    published: (Role, u64, Option<NodeId>, u64, u64, u64, u64, u64, bool),
}

impl<M: StateMachine, T: Transport, S: SnapshotStore + 'static> Driver<M, T, S> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        node: Node,
        epoch: tokio::time::Instant,
        transport: Arc<T>,
        store: Arc<Mutex<S>>,
        log: LogPath,
        applier: (mpsc::UnboundedSender<Job<M>>, tokio::task::JoinHandle<()>),
        killed: Arc<AtomicBool>,
        reports_tx: mpsc::UnboundedSender<Report>,
        status: watch::Sender<Status>,
        events: broadcast::Sender<Event>,
        shutdown_timeout: Duration,
    ) -> Self {
        let (disk, disk_task, inline_log) = match log {
            LogPath::Worker(tx, task) => (Some(tx), Some(task), None),
            LogPath::Inline(store, metrics) => (None, None, Some((store, metrics))),
        };
        Driver {
            inline_log,
            inline_batch: Vec::new(),
            node,
            epoch,
            transport,
            store,
            disk,
            disk_task,
            applier: Some(applier.0),
            applier_task: Some(applier.1),
            killed,
            reports_tx,
            status,
            events,
            shutdown_timeout,
            proposals: HashMap::new(),
            reads: HashMap::new(),
            changes: HashMap::new(),
            transfers: HashMap::new(),
            next_id: 0,
            peers: BTreeMap::new(),
            unreachable: HashMap::new(),
            contacts: BTreeMap::new(),
            contacts_sent: false,
            actions: Vec::new(),
            reports: Vec::new(),
            stopping: None,
            fatal: None,
            kill: None,
            published: (Role::Follower, 0, None, 0, 0, 0, 0, 0, false),
            acks: Vec::new(),
            round_now: Instant::ZERO,
            status_due: None,
            status_at: tokio::time::Instant::now(),
        }
    }

    fn now(&self) -> Instant {
        Instant::from_nanos(u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    /// Reads the clock once for the inputs of a round: they happened within microseconds
    /// of each other, and the node only needs time that never goes backwards.
    fn refresh_now(&mut self) {
        self.round_now = self.now();
    }

    fn deadline(&self) -> tokio::time::Instant {
        let d = Duration::from_nanos(self.node.next_deadline().as_nanos());
        // A node with nothing scheduled reports a far deadline; an hour is as good.
        let far = tokio::time::Instant::now() + Duration::from_secs(3600);
        self.epoch.checked_add(d).map_or(far, |t| t.min(far))
    }

    fn step(&mut self, input: Input) {
        self.node.step(self.round_now, input);
    }

    fn on_message(&mut self, m: Message) {
        tracing::trace!(target: "raft::driver", from = m.from, term = m.term, kind = m.body.kind(), "received");
        self.step(Input::Message(m));
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The task's body: wait for input or the deadline, take everything ready, drain the
    /// node until it is quiet, repeat until stopped.
    pub(crate) async fn run(
        mut self,
        mut requests: mpsc::Receiver<Request<M>>,
        mut messages: mpsc::Receiver<Message>,
        mut reports: mpsc::UnboundedReceiver<Report>,
    ) {
        self.refresh_now();
        self.update_peers();
        self.flush();
        let sleep = tokio::time::sleep_until(self.deadline());
        tokio::pin!(sleep);
        let mut requests_open = true;
        loop {
            let mut deadline = self.deadline();
            if let Some(due) = self.status_due {
                deadline = deadline.min(due);
            }
            if let Some(s) = &self.stopping {
                // Wake at the shutdown's deadline even if nothing else happens.
                deadline = deadline.min(s.deadline);
            }
            if sleep.deadline() != deadline {
                sleep.as_mut().reset(deadline);
            }
            let woke = tokio::select! {
                biased;
                Some(r) = reports.recv() => Wake::Report(r),
                Some(m) = messages.recv() => Wake::Message(m),
                r = requests.recv(), if requests_open => Wake::Request(r),
                () = &mut sleep => Wake::Timer,
            };
            self.refresh_now();
            match woke {
                Wake::Report(r) => self.on_report(r),
                Wake::Message(m) => self.on_message(m),
                Wake::Request(Some(r)) => self.on_request(r),
                Wake::Request(None) => {
                    // Every handle is gone: nobody can stop the node any more, so it shuts
                    // down as if asked to.
                    requests_open = false;
                    self.begin_shutdown(None);
                }
                Wake::Timer => {}
            }
            // Take what else is ready, so a burst is handled in one drain (one append, one
            // persist, one message per peer).
            for _ in 0..MAX_INPUTS_PER_ROUND {
                if let Ok(r) = reports.try_recv() {
                    self.on_report(r);
                } else if let Ok(m) = messages.try_recv() {
                    self.on_message(m);
                } else if let Some(r) = requests_open.then(|| requests.try_recv().ok()).flatten() {
                    self.on_request(r);
                } else {
                    break;
                }
            }
            if self.round_now >= self.node.next_deadline() {
                self.step(Input::Tick);
            }
            self.flush();
            self.publish_status();
            // Answered once the status shows the change (`paused`), so a caller that reads
            // the status after `pause` or `resume` returns sees it.
            for ack in self.acks.drain(..) {
                let _ = ack.send(());
            }
            if self.kill.is_some() || self.fatal.is_some() || self.ready_to_stop() {
                break;
            }
        }
        // Closed before anyone is told the node stopped: `Raft::is_stopped` holds once
        // `shutdown` or `kill` returns.
        drop(messages);
        drop(requests);
        self.stop(reports).await;
    }

    /// Drains the node until it emits nothing more, carrying out every action in order.
    fn flush(&mut self) {
        let mut actions = std::mem::take(&mut self.actions);
        loop {
            self.node.drain_actions(&mut actions);
            if actions.is_empty() {
                break;
            }
            for action in actions.drain(..) {
                self.execute(action);
            }
            self.sync_inline();
            for report in std::mem::take(&mut self.reports) {
                self.node.step(self.round_now, report);
            }
        }
        self.actions = actions;
        self.update_peers();
    }

    fn execute(&mut self, action: Action) {
        match action {
            Action::Send(msg) => {
                let to = msg.to;
                tracing::trace!(target: "raft::driver", to, term = msg.term, kind = msg.body.kind(), "send");
                if self.transport.send(msg).is_err() {
                    self.peer_unreachable(to);
                }
            }
            // Queued, not awaited: the sends drained with it (the leader's appends to its
            // followers) go out while the disk thread syncs.
            Action::Persist(p) => {
                if self.inline_log.is_some() {
                    self.inline_batch.push(p);
                } else if let Some(disk) = &self.disk {
                    if disk.send(p).is_err() {
                        self.fatal.get_or_insert_with(|| "the disk worker stopped".into());
                    }
                }
            }
            Action::Apply { entries, proposals } => {
                let Some(last) = entries.last().map(|e| e.index) else { return };
                let commands: Vec<Command> = entries
                    .iter()
                    .filter_map(|e| match &e.payload {
                        Payload::Command(data) => Some(Command { index: e.index, term: e.term, data: data.clone() }),
                        _ => None,
                    })
                    .collect();
                let replies = proposals
                    .iter()
                    .filter_map(|(index, id)| self.proposals.remove(id).map(|reply| (*index, reply)))
                    .collect();
                self.queue_for_machine(Job::Apply { commands, last, replies });
            }
            Action::ProposalRejected { id, error } => {
                if let Some(reply) = self.proposals.remove(&id) {
                    let _ = reply.send(Err(ProposeError::from(error)));
                }
            }
            // The applier serves it after every apply queued before it, which covers
            // `index`: the core emits this only once the state machine was handed that far.
            Action::ReadReady { id, .. } => {
                if let Some((query, reply)) = self.reads.remove(&id) {
                    self.queue_for_machine(Job::Query { query, reply });
                }
            }
            Action::ReadRejected { id, error } => {
                if let Some((_, reply)) = self.reads.remove(&id) {
                    let _ = reply.send(Err(ReadError::from(error)));
                }
            }
            Action::MembershipChangeDone { id, result } => {
                if let Some(reply) = self.changes.remove(&id) {
                    let _ = reply.send(result.map_err(ChangeError::from));
                }
            }
            Action::TransferDone { id, result } => {
                if let Some(reply) = self.transfers.remove(&id) {
                    let _ = reply.send(result.map_err(TransferLeaderError::Rejected));
                }
            }
            Action::SendSnapshot { header } => self.send_snapshot(*header),
            Action::InstallSnapshot { meta } => self.queue_for_machine(Job::Install(*meta)),
            Action::DiscardSnapshot { meta, reason } => {
                tracing::debug!(target: "raft::snapshot", index = meta.index, reason, "discarding a staged snapshot");
                self.queue_for_machine(Job::Discard(*meta));
            }
            Action::CreateSnapshot { meta } => self.queue_for_machine(Job::Create(*meta)),
            Action::Event(event) => self.on_event(*event),
            other => {
                // The core added an action this runtime does not know: a runtime bug that
                // must not pass silently, but not a reason to take the node down.
                tracing::error!(target: "raft::driver", "an action this runtime does not handle: {other:?}");
            }
        }
    }

    /// With an inline log store: makes the persists of this drain durable with one sync,
    /// after the drain's sends went out, and reports the highest seq.
    fn sync_inline(&mut self) {
        let Some((log, metrics)) = self.inline_log.as_mut() else { return };
        if self.inline_batch.is_empty() || self.fatal.is_some() {
            return;
        }
        let batch = std::mem::take(&mut self.inline_batch);
        match crate::disk::write_and_sync(&mut **log, &batch, metrics) {
            Ok(seq) => self.reports.push(Input::Persisted { seq }),
            Err(why) => {
                tracing::error!(target: "raft::disk", "{why}; the node stops (never retried)");
                self.fatal.get_or_insert(why);
            }
        }
        self.inline_batch = batch;
        self.inline_batch.clear();
    }

    /// Reports `peer` unreachable at most once per heartbeat interval: the core answers a
    /// report with a fresh probe at once, and a transport that fails synchronously would
    /// otherwise turn the two into a busy loop.
    fn peer_unreachable(&mut self, peer: NodeId) {
        let now = tokio::time::Instant::now();
        let every = self.node.config().heartbeat_interval;
        if self.unreachable.get(&peer).is_none_or(|last| now.duration_since(*last) >= every) {
            self.unreachable.insert(peer, now);
            self.reports.push(Input::PeerUnreachable { peer });
        }
    }

    fn queue_for_machine(&mut self, job: Job<M>) {
        let sent = self.applier.as_ref().is_some_and(|a| a.send(job).is_ok());
        if !sent {
            self.fatal.get_or_insert_with(|| "the state machine worker stopped".into());
        }
    }

    /// Streams the latest stored snapshot (the one the action names, or a newer one) to its
    /// receiver on other tasks; the outcome comes back as `Input::SnapshotSent`.
    fn send_snapshot(&mut self, mut header: raft_core::SnapshotHeader) {
        let store = self.store.clone();
        let transport = self.transport.clone();
        let reports = self.reports_tx.clone();
        let opened = store.lock().expect("snapshot store lock").open_latest();
        let (meta, reader) = match opened {
            Ok(Some((meta, reader))) if meta.index >= header.meta.index => (meta, reader),
            other => {
                let why = match other {
                    Err(e) => e.to_string(),
                    _ => "no stored snapshot covers it".into(),
                };
                tracing::warn!(target: "raft::snapshot", to = header.to, index = header.meta.index, "cannot send snapshot: {why}");
                self.reports.push(Input::SnapshotSent { peer: header.to, index: header.meta.index, success: false });
                return;
            }
        };
        header.meta = meta;
        let (peer, index) = (header.to, header.meta.index);
        let (sink, stream) = SnapshotStream::channel(4);
        tokio::task::spawn_blocking(move || {
            let mut reader = reader;
            loop {
                let mut chunk = vec![0u8; SNAPSHOT_CHUNK];
                match reader.read(&mut chunk) {
                    Ok(0) => {
                        sink.blocking_finish();
                        break;
                    }
                    Ok(n) => {
                        chunk.truncate(n);
                        if !sink.blocking_send(Ok(Bytes::from(chunk))) {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        sink.blocking_send(Err(e));
                        break;
                    }
                }
            }
        });
        tokio::spawn(async move {
            let result = transport.send_snapshot(header, stream).await;
            if let Err(e) = &result {
                tracing::info!(target: "raft::snapshot", to = peer, index, "snapshot transfer failed: {e}");
            }
            let _ = reports.send(Report::Input(Input::SnapshotSent { peer, index, success: result.is_ok() }));
        });
    }

    fn on_event(&mut self, event: Event) {
        match &event {
            Event::RoleChanged(t) => tracing::debug!(
                target: "raft::event",
                term = t.term, from = ?t.from, to = ?t.to, leader = ?t.leader, reason = ?t.reason,
                "role changed"
            ),
            Event::ReadyToStop => {
                if let Some(s) = &mut self.stopping {
                    s.ready = true;
                }
            }
            Event::ReportRejected { report, detail } => {
                tracing::error!(target: "raft::driver", report, "the core rejected a runtime report: {detail}")
            }
            other => tracing::debug!(target: "raft::event", event = ?other),
        }
        // No receiver is fine; a receiver that lags loses the oldest events (broadcast).
        let _ = self.events.send(event);
    }

    fn on_report(&mut self, report: Report) {
        match report {
            Report::Input(input) => self.step(input),
            Report::Fatal(why) => {
                tracing::error!(target: "raft::driver", "stopping the node: {why}");
                self.fatal.get_or_insert(why);
            }
        }
    }

    fn on_request(&mut self, request: Request<M>) {
        match request {
            Request::Propose { data, reply } => {
                if self.stopping.is_some() {
                    let _ = reply.send(Err(ProposeError::Rejected(raft_core::ProposalError::Paused)));
                    return;
                }
                let id = ProposalId(self.next_id());
                self.proposals.insert(id, reply);
                self.step(Input::Propose { id, data });
            }
            Request::Read { query, consistency, reply } => {
                let consistency = match consistency {
                    Consistency::Linearizable => ReadConsistency::ReadIndex,
                    Consistency::Lease => ReadConsistency::Lease,
                    Consistency::FollowerLinearizable => ReadConsistency::FollowerReadIndex,
                    // Served from whatever is applied: no round, no core involvement.
                    Consistency::Local => {
                        self.queue_for_machine(Job::Query { query, reply });
                        return;
                    }
                };
                let id = ReadId(self.next_id());
                self.reads.insert(id, (query, reply));
                self.step(Input::Read { id, consistency });
            }
            Request::Change { change, reply } => {
                let id = RequestId(self.next_id());
                self.changes.insert(id, reply);
                self.step(Input::ChangeMembership { id, change: Box::new(change) });
            }
            Request::Transfer { to, reply } => {
                let id = RequestId(self.next_id());
                self.transfers.insert(id, reply);
                self.step(Input::TransferLeadership { id, to });
            }
            Request::History(reply) => {
                let _ = reply.send(self.node.history().cloned().collect());
            }
            Request::CoreMetrics(reply) => {
                let _ = reply.send(self.node.metrics().clone());
            }
            Request::Pause(reply) => {
                self.step(Input::Pause);
                self.acks.push(reply);
            }
            Request::Resume(reply) => {
                if self.stopping.is_none() {
                    self.step(Input::Resume);
                }
                self.acks.push(reply);
            }
            Request::Shutdown(reply) => self.begin_shutdown(Some(reply)),
            Request::Kill(reply) => {
                self.killed.store(true, Ordering::Release);
                self.kill = Some(reply);
            }
        }
    }

    fn begin_shutdown(&mut self, reply: Option<oneshot::Sender<Result<(), ShutdownError>>>) {
        match &mut self.stopping {
            Some(s) => s.replies.extend(reply),
            None => {
                tracing::info!(target: "raft::driver", "shutting down");
                self.stopping = Some(Stopping {
                    replies: reply.into_iter().collect(),
                    ready: false,
                    deadline: tokio::time::Instant::now() + self.shutdown_timeout,
                });
                self.step(Input::PrepareShutdown);
            }
        }
    }

    /// A graceful shutdown may complete once leadership is handed over and every request
    /// this node accepted has its outcome (or the shutdown's deadline passed).
    fn ready_to_stop(&self) -> bool {
        let Some(s) = &self.stopping else { return false };
        let idle = self.proposals.is_empty() && self.changes.is_empty() && self.transfers.is_empty();
        (s.ready && idle) || tokio::time::Instant::now() >= s.deadline
    }

    /// Tells the transport the members' addresses whenever the configuration changes them.
    /// The configuration's node info wins over `Options::contacts`, which only fill in
    /// nodes it does not name (a joining node knows no configuration yet).
    fn update_peers(&mut self) {
        let info = &self.node.membership().info;
        if *info != self.peers || !self.contacts_sent {
            self.peers = info.clone();
            let mut all = self.contacts.clone();
            all.extend(self.peers.iter().map(|(id, i)| (*id, i.clone())));
            self.transport.set_peers(&all);
            self.contacts_sent = true;
        }
    }

    /// Publishes the status when it changed. A change of role, term, leader or paused flag
    /// is published at once; a change of indexes only (every round under load) at most once
    /// per `STATUS_INTERVAL`, since rebuilding the status and waking its watchers costs more
    /// than a round's work.
    fn publish_status(&mut self) {
        let n = &self.node;
        let key = (
            n.role(),
            n.term(),
            n.leader(),
            n.commit_index(),
            n.applied_index(),
            n.durable_index(),
            n.snapshot().index,
            n.log().last_index(),
            n.is_paused(),
        );
        if key == self.published {
            self.status_due = None;
            return;
        }
        let p = &self.published;
        let urgent = (key.0, key.1, key.2, key.8) != (p.0, p.1, p.2, p.8);
        let now = tokio::time::Instant::now();
        if urgent || now >= self.status_at + STATUS_INTERVAL {
            self.published = key;
            self.status_at = now;
            self.status_due = None;
            self.status.send_replace(self.node.status());
        } else {
            self.status_due = Some(self.status_at + STATUS_INTERVAL);
        }
    }

    /// Stops every part in dependency order: answer what is left, let the state machine
    /// finish its queue, let the disk thread sync its queue, detach the transport.
    async fn stop(mut self, reports: mpsc::UnboundedReceiver<Report>) {
        let killed = self.kill.is_some();
        for (_, reply) in self.proposals.drain() {
            let _ = reply.send(Err(ProposeError::Stopped));
        }
        for (_, (_, reply)) in self.reads.drain() {
            let _ = reply.send(Err(ReadError::Stopped));
        }
        for (_, reply) in self.changes.drain() {
            let _ = reply.send(Err(ChangeError::Stopped));
        }
        for (_, reply) in self.transfers.drain() {
            let _ = reply.send(Err(TransferLeaderError::Stopped));
        }
        self.transport.detach();
        // Closing the queues lets each worker finish what is queued (or, once killed,
        // stop at once) and return: the state machine first, then the disk, whose last
        // act is a sync.
        self.applier = None;
        self.disk = None;
        let mut clean = true;
        for task in [self.applier_task.take(), self.disk_task.take()].into_iter().flatten() {
            clean &= task.await.is_ok();
        }
        if !clean {
            self.fatal.get_or_insert_with(|| "a runtime worker panicked".into());
        }
        if let Some((mut log, _)) = self.inline_log.take() {
            if !killed && self.fatal.is_none() {
                if let Err(e) = log.sync() {
                    tracing::error!(target: "raft::disk", "final log fsync failed: {e}");
                }
            }
        }
        drop(reports);
        let outcome = match &self.fatal {
            Some(why) => Err(ShutdownError::Fatal(why.clone())),
            None => Ok(()),
        };
        tracing::info!(target: "raft::driver", killed, ?outcome, "stopped");
        if let Some(s) = self.stopping.take() {
            for reply in s.replies {
                let _ = reply.send(outcome.clone());
            }
        }
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
    }
}
