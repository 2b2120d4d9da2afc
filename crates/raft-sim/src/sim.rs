//! The simulator: a discrete-event loop driving real raft-core nodes through a simulated
//! network, disk and clock, with clients, a nemesis and the checkers.
//!
//! Events sit in a `BTreeMap` keyed by (time, sequence number), so ties break by insertion
//! order and a run depends on nothing but its configuration and schedule. Every random
//! choice comes from one PCG generator seeded from the run's seed.

use crate::checker::{Checker, Fail};
use crate::config::{SimConfig, TraceLevel, MS};
use crate::kv::{key_name, Command, Kv, Write};
use crate::linearizability::{self, CheckResult, KvInput, KvOutput, Operation};
use crate::schedule::{FaultOp, PartitionKind};
use crate::storage::{Durable, Storage};
use crate::timeline::{role_name, Timeline};
use crate::tla::{TlaTrace, Trigger};
use crate::trace::{Trace, TraceEvent, TraceKind};
use raft_core::{
    Action, Config, Event, Index, Input, Instant, Membership, MembershipChange, Message, MessageBody, Node, NodeId,
    NodeInfo, ProposalError, ProposalId, ReadConsistency, ReadError, ReadId, RequestId, RestoredState, Role,
    SnapshotHeader, SnapshotMeta, SnapshotPolicy,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::time::Duration;

/// How many events a failure report shows.
pub const REPORT_EVENTS: usize = 60;

/// The run's last stretch of simulated time, in nanoseconds, whose messages count toward
/// `Summary::idle_messages` (shortened to one client timeout if that is less): the clients
/// stopped two client timeouts earlier and the faults long before, so the nodes should be
/// exchanging little more than heartbeats.
pub const QUIET_WINDOW: u64 = 1000 * MS;

/// A run that broke a property: everything needed to understand and replay it.
#[derive(Clone, Debug)]
pub struct Violation {
    /// The seed.
    pub seed: u64,
    /// The violated property.
    pub property: &'static str,
    /// What was observed.
    pub detail: String,
    /// Simulated time of the failing step, in nanoseconds.
    pub at: u64,
    /// The last events before the failure, oldest first.
    pub last_events: Vec<TraceEvent>,
    /// The command that replays the run with full tracing.
    pub replay: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "seed {}: {} violated at {} ms", self.seed, self.property, self.at / MS)?;
        writeln!(f, "  {}", self.detail)?;
        writeln!(f, "  replay: {}", self.replay)?;
        writeln!(f, "  last {} events:", self.last_events.len())?;
        for e in &self.last_events {
            writeln!(f, "    {e}")?;
        }
        Ok(())
    }
}

/// What a successful run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// The seed.
    pub seed: u64,
    /// Founding voters.
    pub nodes: usize,
    /// Events processed.
    pub steps: u64,
    /// Simulated time, in nanoseconds.
    pub sim_time: u64,
    /// Nemesis actions carried out (partitions, crashes, freezes, pauses, transfers, churn).
    pub faults: u64,
    /// Messages lost or duplicated by the network.
    pub message_faults: u64,
    /// Client operations with a response, checked for linearizability.
    pub ops_checked: u64,
    /// Client operations whose outcome stayed unknown (timeouts).
    pub ops_unknown: u64,
    /// Highest committed index.
    pub committed: u64,
    /// Terms that had a leader.
    pub leaders: u64,
    /// Hash of every event: equal seeds give equal hashes.
    pub trace_hash: u64,
    /// The linearizability search ran out of budget (nothing known about one key).
    pub lin_unknown: bool,
    /// Entries that nodes had reported durable and lost to amnesia crashes.
    pub entries_forgotten: u64,
    /// Messages the nodes sent in the run's last second, when the cluster is healed and
    /// idle (see `QUIET_WINDOW`).
    pub idle_messages: u64,
}

#[derive(Clone, Debug)]
enum Req {
    Write(u8, Write),
    Read(u8, ReadConsistency),
}

#[derive(Clone, Debug)]
enum Reply {
    Done(KvOutput),
    Redirect(Option<NodeId>),
    Failed,
    Unknown,
}

#[derive(Debug)]
enum Ev {
    Deliver { msg: Message, sent: u64 },
    Tick { node: NodeId, gen: u64 },
    Fsync { node: NodeId, inc: u64, seq: u64 },
    SnapArrive { from: NodeId, from_inc: u64, header: Box<SnapshotHeader>, data: Kv },
    SnapSent { node: NodeId, inc: u64, peer: NodeId, index: Index, success: bool },
    ClientArrive { node: NodeId, client: usize, attempt: u64, req: Req },
    ClientReply { client: usize, attempt: u64, reply: Reply },
    ClientTimeout { client: usize, attempt: u64 },
    ClientStart { client: usize },
    Nemesis,
    HealPartition { gen: u64 },
    Restart { node: NodeId, inc: u64 },
    Thaw { node: NodeId, gen: u64 },
    Resume { node: NodeId, inc: u64 },
    Heal,
    LeaderDeadline,
    StopClients,
    End,
}

impl Ev {
    /// The node whose input this event is (deferred while that node is frozen).
    fn target(&self) -> Option<NodeId> {
        match self {
            Ev::Deliver { msg, .. } => Some(msg.to),
            Ev::Tick { node, .. } | Ev::Fsync { node, .. } | Ev::SnapSent { node, .. } => Some(*node),
            Ev::SnapArrive { header, .. } => Some(header.to),
            Ev::ClientArrive { node, .. } => Some(*node),
            _ => None,
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Status {
    /// Not part of the cluster yet (a spare id for membership changes).
    Spare,
    Up,
    Down,
    /// Removed from the cluster and stopped for good.
    Retired,
}

struct Slot {
    id: NodeId,
    node: Option<Node>,
    status: Status,
    inc: u64,
    frozen: Option<u64>,
    backlog: Vec<Ev>,
    clock_offset: u64,
    drift_ppm: i64,
    storage: Storage,
    kv: Kv,
    sm_index: Index,
    tick_gen: u64,
    tick_at: u64,
    fsync_tail: u64,
    /// Snapshots received and staged, by last index (lost in a crash, like a staging file
    /// the runtime discards at start).
    incoming: BTreeMap<Index, Kv>,
    /// The committed configuration as user code knows it from the node's events
    /// (`MembershipLoaded`, `MembershipCommitted`); a new incarnation starts knowing nothing.
    observed: Option<raft_core::Membership>,
    /// Transfer and membership change requests fed to this incarnation and not yet
    /// completed: each must be completed exactly once.
    requests: BTreeSet<u64>,
    leader_commit: Index,
    leader_term: Option<raft_core::Term>,
    last_state: Option<(Role, u64, u64, u64)>,
    /// Messages that reached the node while it was down and will reach its next
    /// incarnation (`FaultParams::survive_restart`).
    survivors: Vec<Message>,
}

impl Slot {
    /// Takes the node off the cluster (crashed or retired): its in-memory state, queued
    /// input, timers and snapshot transfers are gone; only `storage` remains.
    fn stop(&mut self, status: Status) {
        self.node = None;
        self.status = status;
        self.inc += 1;
        self.frozen = None;
        self.backlog.clear();
        self.tick_gen += 1;
        self.tick_at = u64::MAX;
        self.incoming.clear();
        self.observed = None;
        self.requests.clear();
    }

    fn local(&self, t: u64) -> Instant {
        let d = t as i128 * self.drift_ppm as i128 / 1_000_000;
        Instant::from_nanos((self.clock_offset as i128 + t as i128 + d) as u64)
    }

    fn to_sim(&self, local: Instant) -> u64 {
        let l = local.as_nanos() as i128 - self.clock_offset as i128;
        if l <= 0 {
            return 0;
        }
        let mut t = (l * 1_000_000 / (1_000_000 + self.drift_ppm as i128)).max(0) as u64;
        while self.local(t) < local {
            t += 1;
        }
        t
    }
}

struct Client {
    target: NodeId,
    attempt: u64,
    /// The operation in flight: its index in the history and the request.
    op: Option<(usize, Req)>,
    last_seen: BTreeMap<u8, u64>,
}

/// One simulated run. Build it with [`Sim::new`] and call [`Sim::run`].
pub struct Sim {
    cfg: SimConfig,
    rng: Pcg64,
    /// Draws of fault models added after `rng`'s were fixed (see `SimConfig::from_seed`).
    aux_rng: Pcg64,
    now: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Ev>,
    slots: Vec<Slot>,
    clients: Vec<Client>,
    history: Vec<Operation>,
    props: BTreeMap<u64, (usize, u64)>,
    reads: BTreeMap<u64, (usize, u64, u8)>,
    next_id: u64,
    next_value: u64,
    blocked: BTreeSet<(NodeId, NodeId)>,
    partition_gen: u64,
    schedule: Vec<FaultOp>,
    cursor: usize,
    healed: bool,
    leader_after_heal: bool,
    strict_clients: bool,
    clients_stopped: bool,
    /// The leader's commit index when the clients stopped (for the final replication check).
    commit_at_stop: Option<Index>,
    /// Messages sent from here on count toward `Summary::idle_messages`.
    quiet_from: u64,
    done: bool,
    to_retire: Vec<NodeId>,
    checker: Checker,
    trace: Trace,
    timeline: Option<Timeline>,
    summary: Summary,
    actions: Vec<Action>,
    /// The TLA+ trace being written (`SimConfig::tla_trace`).
    tla: Option<Box<TlaTrace>>,
}

impl Sim {
    /// Sets up a run of `cfg` whose faulty phase follows `schedule`.
    pub fn new(cfg: SimConfig, schedule: Vec<FaultOp>) -> Self {
        let mut rng = Pcg64::seed_from_u64(cfg.seed);
        let n = cfg.nodes as NodeId;
        let spares = if cfg.faults.churn { 3 } else { 0 };
        let drift = cfg.faults.drift_ppm as i64;
        let slots: Vec<Slot> = (1..=n + spares)
            .map(|id| Slot {
                id,
                node: None,
                status: if id <= n { Status::Down } else { Status::Spare },
                inc: 0,
                frozen: None,
                backlog: Vec::new(),
                clock_offset: rng.gen_range(0..1_000) * MS,
                drift_ppm: if drift > 0 { rng.gen_range(-drift..=drift) } else { 0 },
                storage: Storage {
                    durable: Durable::new(&if id <= n {
                        RestoredState::bootstrap(1..=n)
                    } else {
                        RestoredState::default()
                    }),
                    ..Default::default()
                },
                kv: Kv::default(),
                sm_index: 0,
                tick_gen: 0,
                tick_at: u64::MAX,
                fsync_tail: 0,
                incoming: BTreeMap::new(),
                observed: None,
                requests: BTreeSet::new(),
                leader_commit: 0,
                leader_term: None,
                last_state: None,
                survivors: Vec::new(),
            })
            .collect();
        let clients = (0..cfg.clients)
            .map(|_| Client { target: rng.gen_range(1..=n), attempt: 0, op: None, last_seen: BTreeMap::new() })
            .collect();
        let trace = Trace::new(REPORT_EVENTS, cfg.trace == TraceLevel::Full);
        let timeline = cfg.timeline.clone().map(|kind| Timeline::new(cfg.nodes + spares as usize, kind));
        let summary = Summary { seed: cfg.seed, nodes: cfg.nodes, ..Default::default() };
        let tla = cfg.tla_trace.as_ref().map(|(_, limit)| {
            let mut t = Box::new(TlaTrace::new(*limit));
            for s in &slots {
                t.add_node(s.id, &s.storage.durable);
            }
            t
        });
        Sim {
            rng,
            aux_rng: Pcg64::seed_from_u64(cfg.seed ^ 0x0A0C_5EED_0000_0003),
            now: 0,
            seq: 0,
            queue: BTreeMap::new(),
            slots,
            clients,
            history: Vec::new(),
            props: BTreeMap::new(),
            reads: BTreeMap::new(),
            next_id: 1,
            next_value: 1,
            blocked: BTreeSet::new(),
            partition_gen: 0,
            schedule,
            cursor: 0,
            healed: false,
            leader_after_heal: false,
            strict_clients: false,
            clients_stopped: false,
            commit_at_stop: None,
            quiet_from: u64::MAX,
            done: false,
            to_retire: Vec::new(),
            checker: Checker::default(),
            trace,
            timeline,
            summary,
            actions: Vec::new(),
            tla,
            cfg,
        }
    }

    /// Runs to the end: the faulty phase, then the healed phase, then the final checks.
    /// Returns the timeline (if one was asked for) with the result.
    pub fn run(mut self) -> (Result<Summary, Violation>, Option<Timeline>) {
        let result = self.run_inner();
        self.write_tla_trace(&result);
        let result = result.map_err(|mut f| {
            if f.property.starts_with("liveness") {
                // Show where the cluster is stuck.
                for s in &self.slots {
                    if let Some(n) = &s.node {
                        let st = n.status();
                        f.detail.push_str(&format!(
                            "\n  n{}: {:?} t{} leader {:?} commit {} applied {} last {} durable {} snapshot {} paused {} membership {:?}",
                            st.id, st.role, st.term, st.leader, st.commit_index, st.applied_index, st.last_log_index,
                            st.durable_index, st.snapshot_index, st.paused, st.membership
                        ));
                        for (peer, p) in &st.progress {
                            f.detail.push_str(&format!("\n      -> n{peer}: {p:?}"));
                        }
                    }
                }
            }
            f
        });
        let result = result.map_err(|f| Violation {
            seed: self.cfg.seed,
            property: f.property,
            detail: f.detail,
            at: self.now,
            last_events: self.trace.last(),
            replay: self.cfg.replay_command(),
        });
        if let Some(t) = &mut self.timeline {
            t.end = self.now;
            if let Err(v) = &result {
                t.failure = Some(format!("{}: {}", v.property, v.detail));
            }
        }
        (result, self.timeline)
    }

    fn run_inner(&mut self) -> Result<Summary, Fail> {
        for id in 1..=self.cfg.nodes as NodeId {
            self.start_node(id)?;
        }
        for c in 0..self.clients.len() {
            let at = self.rng.gen_range(0..50 * MS);
            self.at(at, Ev::ClientStart { client: c });
        }
        self.at(0, Ev::Nemesis);
        let heal = self.cfg.fault_time;
        let end = heal + self.cfg.heal_time;
        self.at(heal, Ev::Heal);
        self.at(heal + self.cfg.leader_bound, Ev::LeaderDeadline);
        self.at(end.saturating_sub(3 * self.cfg.client_timeout), Ev::StopClients);
        self.at(end, Ev::End);
        self.quiet_from = end.saturating_sub(self.quiet_window());
        while let Some(((t, _), ev)) = self.queue.pop_first() {
            self.now = t;
            self.summary.steps += 1;
            self.handle(ev)?;
            while let Some(id) = self.to_retire.pop() {
                self.retire(id);
            }
            if self.done {
                break;
            }
        }
        self.final_checks()?;
        self.summary.sim_time = self.now;
        self.summary.trace_hash = self.trace.hash();
        self.summary.committed = self.checker.committed_len();
        self.summary.leaders = self.checker.leaders_elected() as u64;
        Ok(self.summary.clone())
    }

    fn at(&mut self, t: u64, ev: Ev) {
        self.seq += 1;
        self.queue.insert((t.max(self.now), self.seq), ev);
    }

    fn slot(&mut self, id: NodeId) -> &mut Slot {
        &mut self.slots[(id - 1) as usize]
    }

    fn note(&mut self, node: NodeId, s: String) {
        self.trace.push(self.now, node, TraceKind::Nemesis(s.clone()));
        if let Some(t) = &mut self.timeline {
            t.marks.push((self.now, node, s));
        }
    }

    // ---- nodes ----------------------------------------------------------------------

    fn node_config(&self, id: NodeId, inc: u64) -> Config {
        let mut c = Config::new(id);
        c.rng_seed = self.cfg.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (id << 32) ^ inc;
        c.check_quorum = self.cfg.check_quorum;
        c.lease_reads = self.cfg.lease_reads && self.cfg.check_quorum;
        // Two clocks drift apart by at most 2ε over one election timeout.
        let drift = 2 * self.cfg.faults.drift_ppm * c.election_timeout_min.as_nanos() as u64 / 1_000_000;
        c.lease_clock_drift = Duration::from_nanos(drift + MS);
        c.max_entries_per_message = 64;
        c.max_inflight_messages = 16;
        c.snapshot_policy = SnapshotPolicy { max_entries: self.cfg.faults.snapshot_every, max_bytes: 0 };
        // Streams here take 5-60 ms; a lost one is retried after half a second.
        c.snapshot_transfer_timeout =
            if self.cfg.bugs.no_snapshot_timeout { Duration::from_secs(3600) } else { Duration::from_millis(500) };
        c
    }

    fn start_node(&mut self, id: NodeId) -> Result<(), Fail> {
        let inc = self.slot(id).inc + 1;
        let cfg = self.node_config(id, inc);
        let now = self.now;
        let forget = self.cfg.bugs.forget_vote_on_restart && inc > 1;
        self.tla_begin(id, Trigger::Restart, None);
        let slot = self.slot(id);
        let (mut restored, kv) = slot.storage.durable.restore().map_err(|e| Fail::new("restart", e))?;
        if forget {
            restored.hard_state.vote = None;
        }
        let local = slot.local(now);
        let node = Node::new(cfg, restored.clone(), local)
            .map_err(|e| Fail::new("restart", format!("n{id} cannot restart from its durable state: {e}")))?;
        slot.inc = inc;
        slot.node = Some(node);
        slot.status = Status::Up;
        slot.kv = kv;
        slot.sm_index = restored.applied;
        slot.frozen = None;
        slot.backlog.clear();
        slot.fsync_tail = now;
        slot.incoming.clear();
        slot.observed = None;
        slot.requests.clear();
        slot.leader_commit = 0;
        slot.leader_term = None;
        slot.last_state = None;
        // The restart's trace event ends after its first drain (`run_node` below).
        self.checker.on_restart(id);
        if inc > 1 {
            self.note(id, format!("restart (applied {}, last {})", restored.applied, slot_last(&restored)));
        }
        // What was in flight to the previous incarnation and survived reaches this one.
        for msg in std::mem::take(&mut self.slot(id).survivors) {
            let d = self.aux_rng.gen_range(0..=300 * MS);
            self.at(self.now + d, Ev::Deliver { msg, sent: self.now });
        }
        // A new incarnation's first actions (its first persist, the configuration it
        // loaded) are carried out at once, as a runtime does when it starts the node.
        self.run_node(id, None)
    }

    fn crash(&mut self, id: NodeId, torn: bool) -> Result<(), Fail> {
        let n = self.slot(id).storage.unsynced.len();
        let (full, keep) = if torn && n > 0 {
            let full = self.rng.gen_range(0..n);
            let writes = Durable::writes(&self.slot(id).storage.unsynced[full]);
            (full, Some(self.aux_rng.gen_range(0..=writes)))
        } else {
            (0, None)
        };
        self.tla_begin(id, Trigger::Crash, None);
        let slot = self.slot(id);
        slot.storage.crash(full, keep).map_err(|e| Fail::new("persist contract", e))?;
        slot.stop(Status::Down);
        self.tla_end(id);
        let what = match keep {
            Some(k) => format!("crash ({n} unsynced persists: {full} kept whole, next torn after {k} writes)"),
            None => format!("crash ({n} unsynced persists lost)"),
        };
        self.note(id, what);
        self.timeline_role(id, "Down");
        self.check_committed_durable(None)
    }

    /// The length of the idle stretch at the end of the run (see `QUIET_WINDOW`).
    fn quiet_window(&self) -> u64 {
        QUIET_WINDOW.min(self.cfg.client_timeout)
    }

    /// Amnesia (`FaultOp::Amnesia`): the crashed node `id`'s disk loses a suffix of the
    /// entries it had reported durable; returns how many. The suffix lies above all that
    /// the node's own restart depends on (its durable commit index, snapshot point and
    /// state machine snapshots) and holds only entries every other member holds durably
    /// (or has compacted into a snapshot, which covers only committed entries). So every
    /// committed entry keeps a quorum, and a candidate lacking a lost entry cannot win:
    /// Raft's safety survives, while the leader's match index for the node does not.
    fn forget_acknowledged(&mut self, id: NodeId) -> u64 {
        let d = &self.slots[(id - 1) as usize].storage.durable;
        let floor = [d.hard_state.commit, d.snapshot.index]
            .into_iter()
            .chain(d.snapshot_data.keys().next_back().copied())
            .chain(d.installed.keys().next_back().copied())
            .max()
            .unwrap_or(0);
        let others: Vec<&Durable> = self
            .slots
            .iter()
            .filter(|s| s.id != id && matches!(s.status, Status::Up | Status::Down))
            .map(|s| &s.storage.durable)
            .collect();
        let last = d.last_index();
        // Walk down from the last entry while every other member holds it.
        let mut lowest = last;
        while lowest > floor {
            let Some(term) = d.term(lowest) else { break };
            if !others.iter().all(|o| o.holds(lowest, term)) {
                break;
            }
            lowest -= 1;
        }
        if lowest == last {
            return 0;
        }
        let keep = self.aux_rng.gen_range(lowest..last);
        let d = &mut self.slots[(id - 1) as usize].storage.durable;
        d.entries.truncate((keep - d.snapshot.index) as usize);
        last - keep
    }

    fn retire(&mut self, id: NodeId) {
        let slot = self.slot(id);
        if matches!(slot.status, Status::Retired) {
            return;
        }
        slot.stop(Status::Retired);
        self.note(id, "retired (removed from the cluster)".into());
        self.timeline_role(id, "Retired");
    }

    /// Feeds one input to a node and carries out everything it asks for, feeding back the
    /// runtime's reports (applied, snapshot created, ...) until it is quiet.
    fn feed(&mut self, id: NodeId, input: Input) -> Result<(), Fail> {
        if self.tla.is_some() {
            let (trigger, msg) = match &input {
                Input::Message(m) => (Trigger::Receive, Some(m)),
                Input::Tick => (Trigger::Tick, None),
                Input::Persisted { .. } => (Trigger::Persisted, None),
                Input::Propose { .. } => (Trigger::Propose, None),
                Input::ChangeMembership { .. } => (Trigger::Change, None),
                Input::SnapshotInstalled { .. } => (Trigger::Installed, None),
                _ => (Trigger::Other, None),
            };
            let msg = msg.cloned();
            match (&input, &mut self.tla) {
                // A staged stream is the spec's `InstallSnapshot` message, received; the
                // install it leads to happens within the same step.
                (Input::SnapshotReceived { header }, Some(t)) => t.begin_stream(id, header),
                _ => self.tla_begin(id, trigger, msg.as_ref()),
            }
        }
        self.run_node(id, Some(input))
    }

    /// Steps `id` with `input` (if any), then drains and carries out its actions, feeding
    /// the runtime's own reports back, until it has nothing more to do. The trace event
    /// begun by the caller ends here.
    fn run_node(&mut self, id: NodeId, input: Option<Input>) -> Result<(), Fail> {
        let mut queue: VecDeque<Input> = input.into_iter().collect();
        let mut actions = std::mem::take(&mut self.actions);
        let mut first = true;
        while first || !queue.is_empty() {
            let now = self.now;
            let slot = self.slot(id);
            let local = slot.local(now);
            let Some(node) = slot.node.as_mut() else { break };
            if let Some(input) = queue.pop_front() {
                node.step(local, input);
            }
            first = false;
            node.drain_actions(&mut actions);
            for a in actions.drain(..) {
                self.execute(id, a, &mut queue)?;
            }
        }
        self.actions = actions;
        self.tla_end(id);
        self.after_step(id)
    }

    fn tla_begin(&mut self, id: NodeId, trigger: Trigger, msg: Option<&Message>) {
        if let Some(t) = &mut self.tla {
            t.begin(id, trigger, msg);
        }
    }

    fn tla_end(&mut self, id: NodeId) {
        if let Some(t) = &mut self.tla {
            let s = &self.slots[(id - 1) as usize];
            t.end(s.node.as_ref(), &s.storage.durable);
        }
    }

    fn write_tla_trace(&mut self, result: &Result<Summary, Fail>) {
        let (Some(t), Some((path, _))) = (&self.tla, &self.cfg.tla_trace) else { return };
        let title = format!(
            "raft-sim seed {} profile {} nodes {} bugs {:?}: {}",
            self.cfg.seed,
            self.cfg.profile,
            self.cfg.nodes,
            self.cfg.bugs,
            match result {
                Ok(_) => "run passed its checks".to_string(),
                Err(f) => format!("run failed: {}", f.property),
            }
        );
        if let Err(e) = std::fs::write(path, t.module(&title)) {
            eprintln!("cannot write the TLA+ trace to {path}: {e}");
        }
    }

    fn after_step(&mut self, id: NodeId) -> Result<(), Fail> {
        let now = self.now;
        let healed = self.healed;
        let slot = &mut self.slots[(id - 1) as usize];
        let Some(node) = slot.node.as_ref() else { return Ok(()) };
        self.checker.after_step(node)?;
        if slot.observed.as_ref() != Some(node.committed_membership()) {
            return Err(Fail::new(
                "membership events",
                format!(
                    "n{id}'s user code knows the committed configuration as {:?}, the node has {:?}",
                    slot.observed,
                    node.committed_membership()
                ),
            ));
        }
        let state = (node.role(), node.term(), node.commit_index(), node.log().last_index());
        if slot.last_state != Some(state) {
            if slot.last_state.map(|s| (s.0, s.1)) != Some((state.0, state.1)) {
                if let Some(t) = &mut self.timeline {
                    t.roles.push((now, id, role_name(state.0), state.1));
                }
            }
            slot.last_state = Some(state);
            self.trace.push(now, id, TraceKind::State { role: state.0, term: state.1, commit: state.2, last: state.3 });
        }
        // The durability check runs when a leader advances its commit index itself (what
        // it committed before leading was checked by the leader that committed it).
        let mut leader_commit = None;
        if node.role() == Role::Leader {
            if slot.leader_term != Some(node.term()) {
                slot.leader_term = Some(node.term());
                slot.leader_commit = node.commit_index();
            } else if node.commit_index() > slot.leader_commit {
                leader_commit = Some(node.commit_index());
            }
        } else {
            slot.leader_term = None;
        }
        if healed && node.role() == Role::Leader && node.log().term(node.commit_index()) == Some(node.term()) {
            self.leader_after_heal = true;
        }
        // Timer: make sure a tick is scheduled no later than the node's deadline.
        let deadline = slot.to_sim(node.next_deadline()).max(now + 1000);
        if deadline < slot.tick_at || slot.tick_at <= now {
            slot.tick_gen += 1;
            slot.tick_at = deadline;
            let gen = slot.tick_gen;
            self.at(deadline, Ev::Tick { node: id, gen });
        }
        if let Some(c) = leader_commit {
            self.slot(id).leader_commit = c;
            self.check_committed_durable(Some(id))?;
        }
        Ok(())
    }

    /// Committed entries must be durable on a quorum: checked when a leader's commit index
    /// moves (with its configuration) and after every crash (with the last leader's).
    fn check_committed_durable(&mut self, leader: Option<NodeId>) -> Result<(), Fail> {
        let (membership, index) = match leader {
            Some(id) => {
                let node = self.slots[(id - 1) as usize].node.as_ref().expect("leader is up");
                (node.membership().clone(), node.commit_index())
            }
            None => {
                // After a crash: the highest entry an up node knows committed, against the
                // incoming voters of the configuration that node knows committed. Whatever
                // configuration the entry was committed under, a majority of those holds it.
                let Some(node) =
                    self.slots.iter().filter_map(|s| s.node.as_ref()).max_by_key(|n| (n.commit_index(), n.id()))
                else {
                    return Ok(());
                };
                let mut m = node.committed_membership().clone();
                m.outgoing.clear();
                (m, node.commit_index())
            }
        };
        let Some((term, _)) = self.checker.committed_at(index) else { return Ok(()) };
        let holds =
            |id: NodeId| self.slots.get((id - 1) as usize).is_some_and(|s| s.storage.durable.holds(index, term));
        for half in [&membership.voters, &membership.outgoing] {
            if half.is_empty() {
                continue;
            }
            let n = half.iter().filter(|id| holds(**id)).count();
            if n * 2 <= half.len() {
                let holders: Vec<NodeId> = half.iter().copied().filter(|id| holds(*id)).collect();
                return Err(Fail::new(
                    "committed entries are durable",
                    format!(
                        "entry {index}/t{term} is committed but durable only on {holders:?} of voters {half:?}{}",
                        if leader.is_some() {
                            " (when the leader advanced its commit index)"
                        } else {
                            " (after a crash)"
                        }
                    ),
                ));
            }
        }
        Ok(())
    }

    fn execute(&mut self, id: NodeId, action: Action, queue: &mut VecDeque<Input>) -> Result<(), Fail> {
        match action {
            Action::Send(msg) => {
                if let Some(t) = &mut self.tla {
                    t.sent(&msg);
                }
                self.send(msg)
            }
            Action::Persist(p) => {
                let seq = p.seq;
                let delay = self.rng.gen_range(self.cfg.faults.fsync.0..=self.cfg.faults.fsync.1);
                let now = self.now;
                let slot = self.slot(id);
                let done = slot.fsync_tail.max(now + delay);
                slot.fsync_tail = done;
                slot.storage.unsynced.push_back(p);
                let inc = slot.inc;
                self.at(done, Ev::Fsync { node: id, inc, seq });
                if self.cfg.bugs.ack_before_persist {
                    queue.push_back(Input::Persisted { seq });
                }
            }
            Action::Apply { entries, proposals } => {
                let mut outputs = Vec::new();
                for e in &entries {
                    let slot = &self.slots[(id - 1) as usize];
                    if e.index != slot.sm_index + 1 {
                        return Err(Fail::new(
                            "apply in order",
                            format!("n{id} asked to apply index {} after {}", e.index, slot.sm_index),
                        ));
                    }
                    let term = slot.node.as_ref().map_or(0, |n| n.term());
                    self.checker.on_apply(id, e, term)?;
                    let slot = self.slot(id);
                    if let raft_core::Payload::Command(b) = &e.payload {
                        if let Some(c) = Command::decode(b) {
                            outputs.push((e.index, slot.kv.apply(&c)));
                        }
                    }
                    slot.sm_index = e.index;
                }
                let slot = &self.slots[(id - 1) as usize];
                let (index, fp) = (slot.sm_index, slot.kv.fingerprint());
                self.checker.on_state(id, index, fp)?;
                for (index, pid) in proposals {
                    if let Some((client, attempt)) = self.props.remove(&pid.0) {
                        let out = outputs.iter().find(|(i, _)| *i == index).map(|(_, o)| o.clone());
                        let reply = match out {
                            Some(o) => Reply::Done(o),
                            None => Reply::Unknown,
                        };
                        self.reply(client, attempt, reply);
                    }
                }
                if let Some(last) = entries.last() {
                    queue.push_back(Input::Applied { index: last.index });
                }
            }
            Action::ProposalRejected { id: pid, error } => {
                if let Some((client, attempt)) = self.props.remove(&pid.0) {
                    let reply = match error {
                        ProposalError::NotLeader { leader, .. } => Reply::Redirect(leader),
                        ProposalError::OutcomeUnknown { .. } => Reply::Unknown,
                        _ => Reply::Failed,
                    };
                    self.reply(client, attempt, reply);
                }
            }
            Action::ReadReady { id: rid, index } => {
                if let Some((client, attempt, key)) = self.reads.remove(&rid.0) {
                    let slot = &self.slots[(id - 1) as usize];
                    if slot.sm_index < index {
                        return Err(Fail::new(
                            "read index applied",
                            format!("n{id} served a read at index {index} having applied only {}", slot.sm_index),
                        ));
                    }
                    let v = slot.kv.get(key);
                    self.reply(client, attempt, Reply::Done(KvOutput::Get(v)));
                }
            }
            Action::ReadRejected { id: rid, error } => {
                if let Some((client, attempt, _)) = self.reads.remove(&rid.0) {
                    let reply = match error {
                        ReadError::NotLeader { leader, .. } => Reply::Redirect(leader),
                        _ => Reply::Failed,
                    };
                    self.reply(client, attempt, reply);
                }
            }
            Action::CreateSnapshot { meta } => {
                let slot = self.slot(id);
                if slot.sm_index != meta.index {
                    return Err(Fail::new(
                        "snapshot request contract",
                        format!(
                            "n{id} asked for a snapshot at {} with the state machine at {}",
                            meta.index, slot.sm_index
                        ),
                    ));
                }
                let fail =
                    self.cfg.faults.snapshot_faults > 0.0 && self.aux_rng.gen_bool(self.cfg.faults.snapshot_faults);
                let slot = self.slot(id);
                if !fail {
                    let data = slot.kv.clone();
                    slot.storage.durable.snapshot_data.insert(meta.index, data);
                }
                let what = if fail { "failed" } else { "created" };
                self.trace.push(self.now, id, TraceKind::Note(format!("snapshot {what} at {}", meta.index)));
                queue.push_back(Input::SnapshotCreated { index: meta.index, success: !fail });
            }
            Action::SendSnapshot { header } => {
                if let Some(t) = &mut self.tla {
                    t.sent_stream(&header);
                }
                let slot = &self.slots[(id - 1) as usize];
                let index = header.meta.index;
                let peer = header.to;
                // A snapshot is always stored before the core learns of it.
                let Some(data) = slot.storage.durable.snapshot_data.get(&index).cloned() else {
                    return Err(Fail::new(
                        "snapshot available",
                        format!("n{id} asked to send snapshot {index} that was never created"),
                    ));
                };
                let from_inc = slot.inc;
                let delay = self.rng.gen_range(5 * MS..60 * MS);
                self.trace.push(self.now, id, TraceKind::Note(format!("send snapshot {index} to n{peer}")));
                let f = self.cfg.faults.snapshot_faults;
                if f > 0.0 && self.aux_rng.gen_bool(f) {
                    // The stream is lost and nobody tells the leader: its transfer timeout
                    // must recover. Or the transfer fails and is reported so.
                    if self.aux_rng.gen_bool(0.5) {
                        self.note(id, format!("snapshot stream {index} to n{peer} lost silently"));
                    } else {
                        self.note(id, format!("snapshot stream {index} to n{peer} failed"));
                        self.at(
                            self.now + delay,
                            Ev::SnapSent { node: id, inc: from_inc, peer, index, success: false },
                        );
                    }
                    return Ok(());
                }
                self.at(self.now + delay, Ev::SnapArrive { from: id, from_inc, header, data });
            }
            Action::InstallSnapshot { meta } => {
                if !self.slot(id).incoming.contains_key(&meta.index) {
                    return Err(Fail::new(
                        "snapshot install contract",
                        format!("n{id} was told to install snapshot {} that is not staged", meta.index),
                    ));
                }
                self.trace.push(self.now, id, TraceKind::Note(format!("install snapshot {}", meta.index)));
                let input = self.install(id, *meta)?;
                queue.push_back(input);
            }
            Action::DiscardSnapshot { meta, reason } => {
                if self.cfg.bugs.install_discarded && self.slot(id).incoming.contains_key(&meta.index) {
                    // The planted bug: the runtime restores the state machine from it anyway.
                    self.install(id, *meta)?;
                } else {
                    self.slot(id).incoming.remove(&meta.index);
                    if self.trace_full() {
                        self.note(id, format!("discard snapshot {}: {reason}", meta.index));
                    }
                }
            }
            Action::MembershipChangeDone { id: rid, result } => {
                self.complete_request(id, rid.0, "membership change")?;
                if let Err(e) = result {
                    self.trace.push(self.now, id, TraceKind::Note(format!("membership change failed: {e}")));
                }
            }
            Action::TransferDone { id: rid, result } => {
                self.complete_request(id, rid.0, "leader transfer")?;
                if self.trace_full() {
                    self.note(id, format!("transfer done: {result:?}"));
                }
            }
            Action::Event(e) => self.on_event(id, *e)?,
            other => {
                return Err(Fail::new("every action handled", format!("n{id} emitted an unknown action {other:?}")))
            }
        }
        Ok(())
    }

    /// A request's completion: it must be outstanding on this incarnation (so each request
    /// completes exactly once).
    fn complete_request(&mut self, id: NodeId, request: u64, what: &str) -> Result<(), Fail> {
        if !self.slot(id).requests.remove(&request) {
            return Err(Fail::new(
                "one outcome per request",
                format!("n{id} completed {what} request #{request}, which is not outstanding"),
            ));
        }
        Ok(())
    }

    /// Installs received snapshot data into the state machine and durable storage, and
    /// returns the report for the core.
    fn install(&mut self, id: NodeId, meta: SnapshotMeta) -> Result<Input, Fail> {
        let slot = self.slot(id);
        let data = slot.incoming.remove(&meta.index).expect("data present");
        if slot.sm_index > meta.index {
            // The core promises to apply nothing while an install is in progress, so the
            // state machine can never be ahead of the snapshot it is told to restore.
            return Err(Fail::new(
                "snapshot install contract",
                format!("n{id} was told to restore snapshot {} after applying {}", meta.index, slot.sm_index),
            ));
        }
        slot.storage.durable.snapshot_data.insert(meta.index, data.clone());
        slot.storage.durable.installed.insert(meta.index, meta.clone());
        let fp = data.fingerprint();
        slot.kv = data;
        slot.sm_index = meta.index;
        self.checker.on_state(id, meta.index, fp)?;
        Ok(Input::SnapshotInstalled { meta: Box::new(meta), success: true })
    }

    fn on_event(&mut self, id: NodeId, e: Event) -> Result<(), Fail> {
        match &e {
            Event::MembershipLoaded { source, committed, .. } => {
                let skip = match source {
                    raft_core::MembershipSource::Restart => self.cfg.bugs.skip_restart_membership,
                    _ => false,
                };
                if !skip {
                    self.slot(id).observed = Some(committed.clone());
                }
            }
            Event::MembershipCommitted { new, .. } => self.slot(id).observed = Some(new.clone()),
            Event::ReportRejected { report, detail } => {
                return Err(Fail::new("runtime reports accepted", format!("n{id} rejected {report}: {detail}")));
            }
            _ => {}
        }
        match e {
            Event::MembershipChangeFinished { membership, .. } => {
                let members = membership.members();
                self.trace.push(self.now, id, TraceKind::Note(format!("membership change finished: {membership:?}")));
                for s in &self.slots {
                    if matches!(s.status, Status::Up | Status::Down) && !members.contains(&s.id) {
                        self.to_retire.push(s.id);
                    }
                }
            }
            Event::MembershipChangeRejected { error, .. } => {
                self.trace.push(self.now, id, TraceKind::Note(format!("membership change rejected: {error}")));
            }
            Event::MembershipCommitted { index, new, .. } if self.trace_full() => {
                self.trace.push(self.now, id, TraceKind::Note(format!("membership committed at {index}: {new:?}")));
            }
            _ => {}
        }
        Ok(())
    }

    fn trace_full(&self) -> bool {
        self.cfg.trace == TraceLevel::Full
    }

    // ---- network --------------------------------------------------------------------

    fn send(&mut self, msg: Message) {
        if self.now >= self.quiet_from {
            self.summary.idle_messages += 1;
        }
        let f = self.cfg.faults;
        let lossy = !self.healed;
        if self.cfg.bugs.forge_vote_grants {
            if let MessageBody::VoteRequest { pre_vote: false, .. } = msg.body {
                let forged = Message {
                    from: msg.to,
                    to: msg.from,
                    term: msg.term,
                    body: MessageBody::VoteResponse { pre_vote: false, granted: true },
                };
                let d = self.rng.gen_range(f.delay.0..=f.delay.1);
                self.at(self.now + d, Ev::Deliver { msg: forged, sent: self.now });
            }
        }
        if self.blocked.contains(&(msg.from, msg.to)) {
            return;
        }
        if lossy && f.loss > 0.0 && self.rng.gen_bool(f.loss) {
            self.summary.message_faults += 1;
            return;
        }
        let copies = if lossy && f.duplicate > 0.0 && self.rng.gen_bool(f.duplicate) {
            self.summary.message_faults += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut d = self.rng.gen_range(f.delay.0..=f.delay.1);
            if lossy && f.spike.0 > 0.0 && self.rng.gen_bool(f.spike.0) {
                d += self.rng.gen_range(0..=f.spike.1);
            }
            self.at(self.now + d, Ev::Deliver { msg: msg.clone(), sent: self.now });
        }
    }

    fn client_delay(&mut self) -> u64 {
        self.rng.gen_range(MS / 2..3 * MS)
    }

    // ---- event dispatch ---------------------------------------------------------------

    fn handle(&mut self, ev: Ev) -> Result<(), Fail> {
        if let Some(target) = ev.target() {
            let survive = self.cfg.faults.survive_restart;
            if self.slot(target).status == Status::Down
                && matches!(ev, Ev::Deliver { .. })
                && survive > 0.0
                && self.aux_rng.gen_bool(survive)
            {
                if let Ev::Deliver { msg, .. } = ev {
                    self.slot(target).survivors.push(msg);
                }
                return Ok(());
            }
            let slot = self.slot(target);
            if slot.node.is_none() {
                if let Ev::SnapArrive { from, from_inc, header, .. } = ev {
                    let d = self.client_delay();
                    let (peer, index) = (header.to, header.meta.index);
                    self.at(self.now + d, Ev::SnapSent { node: from, inc: from_inc, peer, index, success: false });
                }
                return Ok(());
            }
            if slot.frozen.is_some() {
                slot.backlog.push(ev);
                return Ok(());
            }
        }
        match ev {
            Ev::Deliver { msg, sent } => {
                if self.blocked.contains(&(msg.from, msg.to)) {
                    return Ok(());
                }
                if let Some(t) = &mut self.timeline {
                    if msg.body.kind() == t.kind {
                        t.messages.push((sent, self.now, msg.from, msg.to));
                    }
                }
                self.trace.push(
                    self.now,
                    msg.to,
                    TraceKind::Recv { from: msg.from, kind: msg.body.kind(), term: msg.term },
                );
                let to = msg.to;
                self.feed(to, Input::Message(msg))
            }
            Ev::Tick { node, gen } => {
                let slot = self.slot(node);
                if slot.tick_gen != gen {
                    return Ok(());
                }
                slot.tick_at = u64::MAX;
                if self.trace_full() {
                    self.trace.push(self.now, node, TraceKind::Tick);
                }
                self.feed(node, Input::Tick)
            }
            Ev::Fsync { node, inc, seq } => {
                let slot = self.slot(node);
                if slot.inc != inc {
                    return Ok(());
                }
                slot.storage.sync(seq).map_err(|e| Fail::new("persist contract", e))?;
                if self.trace_full() {
                    self.trace.push(self.now, node, TraceKind::Persisted { seq });
                }
                if self.cfg.bugs.ack_before_persist {
                    return Ok(());
                }
                self.feed(node, Input::Persisted { seq })
            }
            Ev::SnapArrive { from, from_inc, header, data } => {
                let (to, index) = (header.to, header.meta.index);
                let ok = !self.blocked.contains(&(from, to));
                if ok {
                    // Staged durably by the receiving runtime, then reported.
                    self.slot(to).incoming.insert(index, data);
                    self.trace.push(self.now, to, TraceKind::Note(format!("snapshot {index} received from n{from}")));
                    self.feed(to, Input::SnapshotReceived { header })?;
                }
                let d = self.client_delay();
                self.at(self.now + d, Ev::SnapSent { node: from, inc: from_inc, peer: to, index, success: ok });
                Ok(())
            }
            Ev::SnapSent { node, inc, peer, index, success } => {
                if self.slot(node).inc != inc {
                    return Ok(());
                }
                self.feed(node, Input::SnapshotSent { peer, index, success })
            }
            Ev::ClientArrive { node, client, attempt, req } => {
                let pid = self.next_id;
                self.next_id += 1;
                if self.trace_full() {
                    self.trace.push(
                        self.now,
                        node,
                        TraceKind::Client { client: client as u64, what: format!("{req:?} as #{pid}") },
                    );
                }
                match req {
                    Req::Write(key, write) => {
                        self.props.insert(pid, (client, attempt));
                        let data = Command { op: pid, key, write }.encode();
                        self.feed(node, Input::Propose { id: ProposalId(pid), data })
                    }
                    Req::Read(key, _) if self.cfg.bugs.stale_reads => {
                        let v = self.slot(node).kv.get(key);
                        self.reply(client, attempt, Reply::Done(KvOutput::Get(v)));
                        Ok(())
                    }
                    Req::Read(key, policy) => {
                        self.reads.insert(pid, (client, attempt, key));
                        self.feed(node, Input::Read { id: ReadId(pid), consistency: policy })
                    }
                }
            }
            Ev::ClientReply { client, attempt, reply } => self.client_reply(client, attempt, reply),
            Ev::ClientTimeout { client, attempt } => self.client_timeout(client, attempt),
            Ev::ClientStart { client } => {
                self.start_op(client);
                Ok(())
            }
            Ev::Nemesis => self.nemesis(),
            Ev::HealPartition { gen } => {
                if gen == self.partition_gen && !self.blocked.is_empty() {
                    self.blocked.clear();
                    self.note(0, "partition healed".into());
                    self.timeline_partition(None);
                }
                Ok(())
            }
            Ev::Restart { node, inc } => {
                let slot = self.slot(node);
                if slot.status != Status::Down || slot.inc != inc {
                    return Ok(());
                }
                self.start_node(node)
            }
            Ev::Thaw { node, gen } => {
                if self.slot(node).frozen == Some(gen) {
                    self.thaw(node);
                }
                Ok(())
            }
            Ev::Resume { node, inc } => {
                if self.slot(node).inc == inc && self.slot(node).node.as_ref().is_some_and(|n| n.is_paused()) {
                    self.note(node, "Input::Resume".into());
                    self.feed(node, Input::Resume)?;
                }
                Ok(())
            }
            Ev::Heal => self.heal(),
            Ev::LeaderDeadline => {
                if !self.leader_after_heal {
                    return Err(Fail::new(
                        "liveness (leader)",
                        format!("no leader committed in its term within {} ms of healing", self.cfg.leader_bound / MS),
                    ));
                }
                self.strict_clients = true;
                Ok(())
            }
            Ev::StopClients => {
                self.clients_stopped = true;
                self.commit_at_stop = self.leader().and_then(|l| self.slot(l).node.as_ref().map(|n| n.commit_index()));
                Ok(())
            }
            Ev::End => {
                self.done = true;
                Ok(())
            }
        }
    }

    fn thaw(&mut self, id: NodeId) {
        let slot = self.slot(id);
        slot.frozen = None;
        let backlog = std::mem::take(&mut slot.backlog);
        self.note(id, format!("thawed ({} queued inputs)", backlog.len()));
        if let Some(role) = self.slot(id).node.as_ref().map(|n| n.role()) {
            self.timeline_role(id, role_name(role));
        }
        for ev in backlog {
            self.at(self.now, ev);
        }
    }

    fn heal(&mut self) -> Result<(), Fail> {
        self.healed = true;
        self.note(0, "HEAL: faults off, every node up".into());
        if !self.blocked.is_empty() {
            self.blocked.clear();
            self.timeline_partition(None);
        }
        let ids: Vec<NodeId> = self.slots.iter().map(|s| s.id).collect();
        for id in ids {
            let slot = self.slot(id);
            match slot.status {
                Status::Down => self.start_node(id)?,
                Status::Up => {
                    if slot.frozen.is_some() {
                        self.thaw(id);
                    }
                    if self.slot(id).node.as_ref().is_some_and(|n| n.is_paused()) {
                        self.feed(id, Input::Resume)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    // ---- clients ----------------------------------------------------------------------

    fn members(&self) -> Vec<NodeId> {
        self.slots.iter().filter(|s| matches!(s.status, Status::Up | Status::Down)).map(|s| s.id).collect()
    }

    fn start_op(&mut self, c: usize) {
        if self.clients_stopped || self.clients[c].op.is_some() {
            return;
        }
        let key = self.rng.gen_range(0..self.cfg.keys);
        let r = self.rng.gen_range(0..100);
        let req = if r < 40 {
            let policy = if self.rng.gen_bool(0.3) {
                ReadConsistency::FollowerReadIndex
            } else if self.cfg.lease_reads && self.cfg.check_quorum && self.aux_rng.gen_bool(0.5) {
                ReadConsistency::Lease
            } else {
                ReadConsistency::ReadIndex
            };
            Req::Read(key, policy)
        } else if r < 75 {
            self.next_value += 1;
            Req::Write(key, Write::Put(self.next_value))
        } else {
            self.next_value += 1;
            let expected = if self.rng.gen_bool(0.8) { self.clients[c].last_seen.get(&key).copied() } else { None };
            Req::Write(key, Write::Cas { expected, new: self.next_value })
        };
        self.begin(c, req);
    }

    /// Records the invocation of `req` by client `c` and sends its first attempt.
    fn begin(&mut self, c: usize, req: Req) {
        let input = match &req {
            Req::Read(k, _) => KvInput::Get { key: key_name(*k) },
            Req::Write(k, w) => Command { op: 0, key: *k, write: w.clone() }.input(),
        };
        self.history.push(Operation { client: c as u64, call: self.now, ret: None, input, output: None });
        self.clients[c].op = Some((self.history.len() - 1, req));
        self.send_attempt(c, 0);
    }

    fn send_attempt(&mut self, c: usize, delay: u64) {
        let members = self.members();
        let client = &mut self.clients[c];
        client.attempt += 1;
        if !members.contains(&client.target) {
            client.target = members[self.rng.gen_range(0..members.len())];
        }
        let client = &self.clients[c];
        let (mut node, attempt, req) =
            (client.target, client.attempt, client.op.as_ref().expect("op in flight").1.clone());
        if matches!(req, Req::Read(_, ReadConsistency::FollowerReadIndex)) && delay == 0 {
            // A follower read: ask any member (the first attempt; redirects go to the leader).
            node = members[self.rng.gen_range(0..members.len())];
        }
        let d = delay + self.client_delay();
        self.at(self.now + d, Ev::ClientArrive { node, client: c, attempt, req });
        self.at(self.now + delay + self.cfg.client_timeout, Ev::ClientTimeout { client: c, attempt });
    }

    fn reply(&mut self, client: usize, attempt: u64, reply: Reply) {
        let d = self.client_delay();
        self.at(self.now + d, Ev::ClientReply { client, attempt, reply });
    }

    fn client_reply(&mut self, c: usize, attempt: u64, reply: Reply) -> Result<(), Fail> {
        if self.clients[c].attempt != attempt || self.clients[c].op.is_none() {
            return Ok(());
        }
        match reply {
            Reply::Done(out) => {
                let (h, req) = self.clients[c].op.take().expect("op in flight");
                let seen = match (&out, &req) {
                    (KvOutput::Get(Some(v)), Req::Read(k, _)) => Some((*k, *v)),
                    (KvOutput::Put, Req::Write(k, Write::Put(v))) => Some((*k, *v)),
                    (KvOutput::Cas(true), Req::Write(k, Write::Cas { new, .. })) => Some((*k, *new)),
                    _ => None,
                };
                if let Some((k, v)) = seen {
                    self.clients[c].last_seen.insert(k, v);
                }
                let op = &mut self.history[h];
                op.ret = Some(self.now);
                op.output = Some(out);
                self.summary.ops_checked += 1;
                let think = self.rng.gen_range(0..30 * MS);
                self.at(self.now + think, Ev::ClientStart { client: c });
            }
            Reply::Redirect(leader) => {
                let members = self.members();
                let target = leader.filter(|l| members.contains(l));
                let backoff = if target.is_some() { 0 } else { self.rng.gen_range(10 * MS..80 * MS) };
                self.clients[c].target = target.unwrap_or_else(|| members[self.rng.gen_range(0..members.len())]);
                self.send_attempt(c, backoff);
            }
            Reply::Failed => {
                let backoff = self.rng.gen_range(10 * MS..80 * MS);
                if self.rng.gen_bool(0.5) {
                    let members = self.members();
                    self.clients[c].target = members[self.rng.gen_range(0..members.len())];
                }
                self.send_attempt(c, backoff);
            }
            Reply::Unknown => self.give_up(c)?,
        }
        Ok(())
    }

    fn client_timeout(&mut self, c: usize, attempt: u64) -> Result<(), Fail> {
        if self.clients[c].attempt != attempt || self.clients[c].op.is_none() {
            return Ok(());
        }
        if self.strict_clients {
            let (h, _) = self.clients[c].op.as_ref().expect("op in flight");
            let op = &self.history[*h];
            return Err(Fail::new(
                "liveness (clients)",
                format!(
                    "client c{c} got no answer to {:?} (invoked at {} ms, target n{}) within {} ms, after faults healed",
                    op.input,
                    op.call / MS,
                    self.clients[c].target,
                    self.cfg.client_timeout / MS
                ),
            ));
        }
        let members = self.members();
        self.clients[c].target = members[self.rng.gen_range(0..members.len())];
        self.give_up(c)
    }

    /// The outcome of the op in flight is unknown: it stays in the history without a
    /// response, and the client retries the same request as a new operation.
    fn give_up(&mut self, c: usize) -> Result<(), Fail> {
        let (_, req) = self.clients[c].op.take().expect("op in flight");
        self.summary.ops_unknown += 1;
        if !self.clients_stopped {
            self.begin(c, req);
        }
        Ok(())
    }

    // ---- nemesis ----------------------------------------------------------------------

    fn leader(&self) -> Option<NodeId> {
        self.slots
            .iter()
            .filter(|s| s.frozen.is_none())
            .filter_map(|s| s.node.as_ref())
            .filter(|n| n.role() == Role::Leader)
            .max_by_key(|n| n.term())
            .map(|n| n.id())
    }

    /// Resolves a node pick: 255 is the leader (if any), anything else picks among `from`.
    fn pick(&self, pick: u8, from: &[NodeId]) -> Option<NodeId> {
        if from.is_empty() {
            return None;
        }
        if pick == 255 {
            if let Some(l) = self.leader().filter(|l| from.contains(l)) {
                return Some(l);
            }
        }
        Some(from[pick as usize % from.len()])
    }

    /// Nodes up, not frozen: candidates for crashing, freezing or pausing, as long as at
    /// most a minority of the voters is unavailable at once.
    fn disruptable(&self) -> Vec<NodeId> {
        let tolerated = self.members().len().saturating_sub(1) / 2;
        let unavailable = self.slots.iter().filter(|s| s.status == Status::Down || s.frozen.is_some()).count();
        if unavailable + 1 > tolerated {
            return Vec::new();
        }
        self.slots.iter().filter(|s| s.status == Status::Up && s.frozen.is_none()).map(|s| s.id).collect()
    }

    fn nemesis(&mut self) -> Result<(), Fail> {
        while self.cursor < self.schedule.len() && !self.healed {
            let op = self.schedule[self.cursor].clone();
            self.cursor += 1;
            if let FaultOp::Wait { ms } = op {
                self.at(self.now + ms as u64 * MS, Ev::Nemesis);
                return Ok(());
            }
            self.fault(op)?;
        }
        Ok(())
    }

    fn fault(&mut self, op: FaultOp) -> Result<(), Fail> {
        match op {
            FaultOp::Wait { .. } => {}
            FaultOp::Heal => {
                if !self.blocked.is_empty() {
                    self.blocked.clear();
                    self.note(0, "partition healed".into());
                    self.timeline_partition(None);
                }
            }
            FaultOp::Partition { kind, pick, ms } => {
                self.partition(kind, pick);
                self.partition_gen += 1;
                let gen = self.partition_gen;
                self.at(self.now + ms as u64 * MS, Ev::HealPartition { gen });
            }
            FaultOp::Crash { node, down_ms, torn } => {
                let Some(id) = self.pick(node, &self.disruptable()) else { return Ok(()) };
                self.summary.faults += 1;
                self.crash(id, torn)?;
                let inc = self.slot(id).inc;
                self.at(self.now + down_ms as u64 * MS, Ev::Restart { node: id, inc });
            }
            FaultOp::Amnesia { node, down_ms } => {
                let Some(id) = self.pick(node, &self.disruptable()) else { return Ok(()) };
                self.summary.faults += 1;
                self.crash(id, false)?;
                // The TLA+ spec's disks keep what they acknowledged: a traced run crashes
                // the node plainly.
                if self.tla.is_none() {
                    let lost = self.forget_acknowledged(id);
                    self.summary.entries_forgotten += lost;
                    self.note(id, format!("amnesia: the disk lost the last {lost} entries it had reported durable"));
                    // Nothing lost may leave a committed entry without a quorum.
                    self.check_committed_durable(None)?;
                }
                let inc = self.slot(id).inc;
                self.at(self.now + down_ms as u64 * MS, Ev::Restart { node: id, inc });
            }
            FaultOp::Freeze { node, ms } => {
                let Some(id) = self.pick(node, &self.disruptable()) else { return Ok(()) };
                self.summary.faults += 1;
                let gen = self.now;
                self.slot(id).frozen = Some(gen);
                self.note(id, format!("frozen for {ms} ms"));
                self.timeline_role(id, "Frozen");
                self.at(self.now + ms as u64 * MS, Ev::Thaw { node: id, gen });
            }
            FaultOp::Pause { node, ms } => {
                let Some(id) = self.pick(node, &self.disruptable()) else { return Ok(()) };
                self.summary.faults += 1;
                self.note(id, format!("Input::Pause for {ms} ms"));
                self.feed(id, Input::Pause)?;
                let inc = self.slot(id).inc;
                self.at(self.now + ms as u64 * MS, Ev::Resume { node: id, inc });
            }
            FaultOp::Transfer { to } => {
                let Some(leader) = self.leader() else { return Ok(()) };
                let voters = self.leader_members(leader, |m| &m.voters);
                let to = to.and_then(|p| self.pick(p, &voters));
                self.summary.faults += 1;
                self.note(leader, format!("Input::TransferLeadership to {to:?}"));
                let id = self.next_id;
                self.next_id += 1;
                self.slot(leader).requests.insert(id);
                self.feed(leader, Input::TransferLeadership { id: RequestId(id), to })?;
            }
            FaultOp::AddLearner => {
                let Some(leader) = self.leader() else { return Ok(()) };
                let Some(spare) = self.slots.iter().find(|s| s.status == Status::Spare).map(|s| s.id) else {
                    return Ok(());
                };
                self.summary.faults += 1;
                self.start_node(spare)?;
                self.note(leader, format!("add learner n{spare}"));
                let info = NodeInfo::new(format!("sim://n{spare}").into_bytes());
                self.change(leader, MembershipChange::add_learner(spare, info))?;
            }
            FaultOp::Promote { pick } => {
                let Some(leader) = self.leader() else { return Ok(()) };
                let learners = self.leader_members(leader, |m| &m.learners);
                let Some(id) = self.pick(pick, &learners) else { return Ok(()) };
                self.summary.faults += 1;
                self.note(leader, format!("promote learner n{id}"));
                self.change(leader, MembershipChange::add_voter(id))?;
            }
            FaultOp::Remove { pick } => {
                let Some(leader) = self.leader() else { return Ok(()) };
                let voters = self.leader_members(leader, |m| &m.voters);
                if voters.len() < 4 {
                    return Ok(());
                }
                let Some(id) = self.pick(pick, &voters) else { return Ok(()) };
                self.summary.faults += 1;
                self.note(leader, format!("remove voter n{id}"));
                self.change(leader, MembershipChange::remove(id))?;
            }
        }
        Ok(())
    }

    /// One part (voters or learners) of the membership in effect on `leader`.
    fn leader_members(&self, leader: NodeId, part: fn(&Membership) -> &BTreeSet<NodeId>) -> Vec<NodeId> {
        self.slots[(leader - 1) as usize]
            .node
            .as_ref()
            .map(|n| part(n.membership()).iter().copied().collect())
            .unwrap_or_default()
    }

    fn change(&mut self, leader: NodeId, change: MembershipChange) -> Result<(), Fail> {
        let id = self.next_id;
        self.next_id += 1;
        self.slot(leader).requests.insert(id);
        self.feed(leader, Input::ChangeMembership { id: RequestId(id), change: Box::new(change) })
    }

    fn partition(&mut self, kind: PartitionKind, pick: u8) {
        let mut ids = self.members();
        if ids.len() < 2 {
            return;
        }
        ids.shuffle(&mut self.rng);
        let leader = self.leader().filter(|l| ids.contains(l));
        if let Some(l) = leader {
            // Put the leader first, for the shapes that care.
            let at = ids.iter().position(|x| *x == l).expect("leader listed");
            ids.swap(0, at);
        }
        let n = ids.len();
        self.blocked.clear();
        let cut = |a: &[NodeId], b: &[NodeId], blocked: &mut BTreeSet<(NodeId, NodeId)>| {
            for &x in a {
                for &y in b {
                    blocked.insert((x, y));
                    blocked.insert((y, x));
                }
            }
        };
        let mut blocked = BTreeSet::new();
        let desc = match kind {
            PartitionKind::Symmetric => {
                let k = 1 + pick as usize % (n - 1);
                cut(&ids[..k], &ids[k..], &mut blocked);
                format!("partition {:?} | {:?}", &ids[..k], &ids[k..])
            }
            PartitionKind::OneWay => {
                let links = 1 + pick as usize % n;
                for i in 0..links {
                    blocked.insert((ids[i % n], ids[(i + 1) % n]));
                }
                format!("one-way cuts {blocked:?}")
            }
            PartitionKind::IsolateLeader => {
                cut(&ids[..1], &ids[1..], &mut blocked);
                format!("isolate n{}", ids[0])
            }
            PartitionKind::LeaderInMinority => {
                let k = n.div_ceil(2) - 1;
                let k = k.max(1);
                cut(&ids[..k], &ids[k..], &mut blocked);
                format!("minority {:?} | majority {:?}", &ids[..k], &ids[k..])
            }
            PartitionKind::Bridge => {
                if n < 3 {
                    return;
                }
                let bridge = ids[n - 1];
                let half = (n - 1) / 2;
                cut(&ids[..half], &ids[half..n - 1], &mut blocked);
                format!("bridge n{bridge} between {:?} and {:?}", &ids[..half], &ids[half..n - 1])
            }
        };
        self.blocked = blocked;
        self.summary.faults += 1;
        self.note(0, desc.clone());
        self.timeline_partition(Some(desc));
    }

    fn timeline_role(&mut self, id: NodeId, role: &'static str) {
        let term = self.slot(id).node.as_ref().map_or(0, |n| n.term());
        if let Some(t) = &mut self.timeline {
            t.roles.push((self.now, id, role, term));
        }
    }

    fn timeline_partition(&mut self, desc: Option<String>) {
        let blocked: Vec<(NodeId, NodeId)> = self.blocked.iter().copied().collect();
        if let Some(t) = &mut self.timeline {
            t.partitions.push((self.now, desc, blocked));
        }
    }

    // ---- the end ----------------------------------------------------------------------

    fn final_checks(&mut self) -> Result<(), Fail> {
        // A membership change started before healing has had the whole heal phase to
        // finish: no leader may still be in (or heading into) a joint configuration.
        for s in &self.slots {
            if let Some(n) = s.node.as_ref().filter(|n| s.status == Status::Up && n.role() == Role::Leader) {
                if n.membership().is_joint() {
                    return Err(Fail::new(
                        "liveness (membership)",
                        format!("leader n{} is still in a joint configuration at the end: {:?}", s.id, n.membership()),
                    ));
                }
            }
        }
        // Three client timeouts after the clients stopped, every member the leader still
        // counts holds what was committed then: a lost snapshot stream or a stalled
        // install must not leave a follower behind for good.
        if let (Some(target), Some(leader)) = (self.commit_at_stop, self.leader()) {
            let members = self.slots[(leader - 1) as usize].node.as_ref().map(|n| n.membership().members());
            for s in &self.slots {
                let Some(n) = s.node.as_ref().filter(|_| s.status == Status::Up) else { continue };
                if members.as_ref().is_some_and(|m| m.contains(&s.id)) && n.durable_index() < target {
                    return Err(Fail::new(
                        "liveness (replication)",
                        format!(
                            "n{} holds the log only up to {} at the end; {target} was committed {} ms earlier",
                            s.id,
                            n.durable_index(),
                            3 * self.cfg.client_timeout / MS
                        ),
                    ));
                }
            }
        }
        // In the last second the cluster is healed, caught up and idle: a leader and its
        // followers exchange heartbeats, and little else. Three times that is allowed; a
        // leader and a follower trading appends and refusals without end (a probe storm)
        // send far more.
        if let Some(leader) = self.leader() {
            let members = self.slots[(leader - 1) as usize].node.as_ref().map_or(0, |n| n.membership().members().len());
            let interval = self.node_config(leader, 0).heartbeat_interval.as_nanos() as u64;
            let window = self.quiet_window();
            let beats = (window / interval + 1) * (1_000_000 + self.cfg.faults.drift_ppm) / 1_000_000 + 1;
            let allowed = 3 * 2 * (members.max(1) as u64 - 1) * beats;
            if self.summary.idle_messages > allowed {
                return Err(Fail::new(
                    "liveness (quiet when idle)",
                    format!(
                        "{} messages in the last {} ms of an idle cluster of {members} members (heartbeats \
                         and their answers: about {}; allowed {allowed})",
                        self.summary.idle_messages,
                        window / MS,
                        allowed / 3
                    ),
                ));
            }
        }
        for (c, client) in self.clients.iter().enumerate() {
            if let Some((h, _)) = &client.op {
                let op = &self.history[*h];
                return Err(Fail::new(
                    "liveness (clients)",
                    format!("client c{c} still waits for {:?} invoked at {} ms", op.input, op.call / MS),
                ));
            }
        }
        match linearizability::check(&self.history) {
            CheckResult::Ok => Ok(()),
            CheckResult::Unknown { .. } => {
                self.summary.lin_unknown = true;
                Ok(())
            }
            CheckResult::Violation { key, ops, reason } => {
                let mut detail = format!("key {key}: {reason}\n  operations on {key}:");
                for (i, op) in ops.iter().enumerate() {
                    detail.push_str(&format!(
                        "\n    ops[{i}] c{} {:?} call {:.3} ms -> {} {:?}",
                        op.client,
                        op.input,
                        op.call as f64 / MS as f64,
                        op.ret.map_or("never".to_string(), |r| format!("{:.3} ms", r as f64 / MS as f64)),
                        op.output
                    ));
                }
                Err(Fail::new("linearizability", detail))
            }
        }
    }
}

fn slot_last(r: &RestoredState) -> Index {
    r.snapshot.index + r.entries.len() as Index
}
