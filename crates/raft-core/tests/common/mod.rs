//! A small in-memory cluster for scenario tests: synchronous delivery under the test's
//! control, per-node durable storage that survives `crash`, and captured outputs.
#![allow(dead_code)]

use bytes::Bytes;
use raft_core::*;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

/// What survived on a node's "disk".
#[derive(Clone, Debug, Default)]
pub struct Disk {
    pub hard_state: HardState,
    pub snapshot: SnapshotMeta,
    pub entries: Vec<Entry>,
    /// The state machine as of `snapshot` (the test KV is a list of applied commands).
    pub snapshot_data: Vec<Bytes>,
}

impl Disk {
    /// Applies a persist in the documented order: snapshot point, entries, hard state.
    fn apply(&mut self, p: &Persist) {
        if let Some(s) = &p.snapshot {
            let keep = self.entries.iter().any(|e| e.index == s.index && e.term == s.term);
            if keep {
                self.entries.retain(|e| e.index > s.index);
            } else {
                self.entries.clear();
            }
            self.snapshot = SnapshotMeta::clone(s);
        }
        if let Some(first) = p.entries.first() {
            self.entries.retain(|e| e.index < first.index);
            self.entries.extend(p.entries.iter().cloned());
        }
        if let Some(hs) = p.hard_state {
            self.hard_state = hs;
        }
    }
}

pub struct Peer {
    pub node: Node,
    pub cfg: Config,
    pub disk: Disk,
    /// Persists handed out but not yet reported durable (when `auto_persist` is off).
    pub held: Vec<Persist>,
    pub auto_persist: bool,
    /// Applied commands, in order (index, payload).
    pub applied: Vec<(Index, Payload)>,
    /// Everything that is not a send, persist or apply, in order.
    pub outputs: Vec<Action>,
    /// Hold `InstallSnapshot` actions until `complete_install` (a slow transfer).
    pub hold_installs: bool,
    pub held_install: Option<SnapshotMeta>,
    /// What this incarnation emitted, counted independently of its `Metrics`.
    pub emitted: Metrics,
    /// Leave `CreateSnapshot` unanswered (a slow snapshot); the test reports it.
    pub hold_snapshots: bool,
    /// Apply entries but do not report them applied (a slow state machine).
    pub hold_applied: bool,
    /// Record `SendSnapshot` actions but neither stream nor report them (the test does).
    pub hold_snapshot_sends: bool,
}

impl Peer {
    fn new(node: Node, cfg: Config, disk: Disk) -> Peer {
        Peer {
            node,
            cfg,
            disk,
            held: vec![],
            auto_persist: true,
            applied: vec![],
            outputs: vec![],
            hold_installs: false,
            held_install: None,
            emitted: Metrics::default(),
            hold_snapshots: false,
            hold_applied: false,
            hold_snapshot_sends: false,
        }
    }

    /// The node's counters of work done agree with what it actually emitted.
    fn check_metrics(&self) {
        let m = self.node.metrics();
        let e = &self.emitted;
        let counted = (m.messages_sent, m.entries_sent, m.persists, m.elections_started, m.proposals_rejected);
        let seen = (e.messages_sent, e.entries_sent, e.persists, e.elections_started, e.proposals_rejected);
        assert_eq!(
            counted,
            seen,
            "node {} metrics (sent, entries sent, persists, elections, proposals rejected) disagree with its actions",
            self.node.id()
        );
    }

    /// Counts one action the node emitted.
    fn count(&mut self, a: &Action) {
        let e = &mut self.emitted;
        match a {
            Action::Send(m) => {
                e.messages_sent += 1;
                if let MessageBody::Append { entries, .. } = &m.body {
                    e.entries_sent += entries.len() as u64;
                }
            }
            Action::Persist(_) => e.persists += 1,
            Action::ProposalRejected { .. } => e.proposals_rejected += 1,
            Action::Event(ev) => {
                if let Event::RoleChanged(t) = &**ev {
                    if t.to == Role::Candidate {
                        e.elections_started += 1;
                    }
                }
            }
            _ => {}
        }
    }
}

/// A snapshot in transit: what it covers and the applied entries it carries.
pub type SnapshotData = (SnapshotMeta, Vec<(Index, Payload)>);

/// Decides whether a message is lost in transit.
pub type DropRule = Box<dyn Fn(&Message) -> bool>;

pub struct Cluster {
    pub peers: BTreeMap<NodeId, Peer>,
    pub now: Instant,
    pub queue: VecDeque<Message>,
    /// Links that drop everything: (from, to).
    pub cut: BTreeSet<(NodeId, NodeId)>,
    /// Extra drop rule.
    pub drop_if: Option<DropRule>,
    /// Every message ever delivered, in order, as one-line strings.
    pub trace: Vec<String>,
    /// Every message ever delivered, in order (for counting round trips).
    pub delivered: Vec<Message>,
    /// Snapshot data in transit to (or staged at) a node: (meta, applied entries it covers).
    pub snapshot_inbox: BTreeMap<(NodeId, Index), SnapshotData>,
    /// Snapshot streams in transit, delivered after the queued messages.
    pub streams: VecDeque<SnapshotHeader>,
    next_id: u64,
}

/// The node info test clusters give node `id`.
pub fn addr(id: NodeId) -> NodeInfo {
    NodeInfo::new(format!("10.0.0.{id}:7000").into_bytes())
}

pub fn config(id: NodeId) -> Config {
    let mut c = Config::new(id);
    c.rng_seed = 1000 + id;
    c
}

impl Cluster {
    pub fn new(n: u64) -> Cluster {
        Cluster::with_config(n, |_| {})
    }

    pub fn with_config(n: u64, tweak: impl Fn(&mut Config)) -> Cluster {
        let ids: Vec<NodeId> = (1..=n).collect();
        Cluster::with_bootstrap(n, tweak, RestoredState::bootstrap(ids))
    }

    /// Founding members that carry node info: node `id` is at `addr(id)`.
    pub fn with_info(n: u64) -> Cluster {
        let restored = RestoredState::bootstrap_with_info((1..=n).map(|id| (id, addr(id))));
        Cluster::with_bootstrap(n, |_| {}, restored)
    }

    fn with_bootstrap(n: u64, tweak: impl Fn(&mut Config), bootstrap: RestoredState) -> Cluster {
        let ids: Vec<NodeId> = (1..=n).collect();
        let mut c = Cluster {
            peers: BTreeMap::new(),
            now: Instant::ZERO,
            queue: VecDeque::new(),
            cut: BTreeSet::new(),
            drop_if: None,
            trace: Vec::new(),
            delivered: Vec::new(),
            snapshot_inbox: BTreeMap::new(),
            streams: VecDeque::new(),
            next_id: 1,
        };
        for &id in &ids {
            let mut cfg = config(id);
            tweak(&mut cfg);
            let restored = bootstrap.clone();
            let disk = Disk { snapshot: restored.snapshot.clone(), ..Default::default() };
            let node = Node::new(cfg.clone(), restored, Instant::ZERO).expect("valid config");
            c.peers.insert(id, Peer::new(node, cfg, disk));
            c.collect(id); // a new incarnation's first persist
        }
        c
    }

    /// Adds a node that is not (yet) a member: it starts empty and learns from the leader.
    pub fn add_blank_node(&mut self, id: NodeId) {
        let cfg = config(id);
        let node = Node::new(cfg.clone(), RestoredState::default(), self.now).expect("valid config");
        self.peers.insert(id, Peer::new(node, cfg, Disk::default()));
        self.collect(id);
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.peers[&id].node
    }

    pub fn peer(&mut self, id: NodeId) -> &mut Peer {
        self.peers.get_mut(&id).expect("known peer")
    }

    /// Feeds one input to `id` and processes what comes out (sends are queued, not delivered).
    pub fn step(&mut self, id: NodeId, input: Input) {
        let now = self.now;
        self.peer(id).node.step(now, input);
        self.collect(id);
    }

    fn collect(&mut self, id: NodeId) {
        let mut actions = Vec::new();
        self.peer(id).node.drain_actions(&mut actions);
        for a in &actions {
            self.peer(id).count(a);
        }
        self.peers[&id].check_metrics();
        let mut follow_up = Vec::new();
        for a in actions {
            match a {
                Action::Send(m) => {
                    if self.cut.contains(&(m.from, m.to)) || self.drop_if.as_ref().is_some_and(|f| f(&m)) {
                        continue;
                    }
                    self.queue.push_back(m);
                }
                Action::Persist(p) => {
                    let peer = self.peer(id);
                    if peer.auto_persist {
                        peer.disk.apply(&p);
                        follow_up.push(Input::Persisted { seq: p.seq });
                    } else {
                        peer.held.push(p);
                    }
                }
                Action::Apply { entries, proposals } => {
                    let last = entries.last().map(|e| e.index).unwrap_or(0);
                    let peer = self.peer(id);
                    for e in entries {
                        peer.applied.push((e.index, e.payload));
                    }
                    peer.outputs.push(Action::Apply { entries: Default::default(), proposals });
                    if !peer.hold_applied {
                        follow_up.push(Input::Applied { index: last });
                    }
                }
                Action::SendSnapshot { .. } if self.peers[&id].hold_snapshot_sends => self.peer(id).outputs.push(a),
                Action::SendSnapshot { header } => {
                    // The "bytes": the sender's applied entries the snapshot covers.
                    let (peer, index) = (header.to, header.meta.index);
                    let data: Vec<(Index, Payload)> =
                        self.peers[&id].applied.iter().filter(|(i, _)| *i <= index).cloned().collect();
                    let arrives = !self.cut.contains(&(id, peer)) && self.peers.contains_key(&peer);
                    if arrives {
                        self.snapshot_inbox.insert((peer, index), (header.meta.clone(), data));
                        self.streams.push_back(SnapshotHeader::clone(&header));
                    }
                    self.peer(id).outputs.push(Action::SendSnapshot { header });
                    follow_up.push(Input::SnapshotSent { peer, index, success: arrives });
                }
                Action::InstallSnapshot { meta } if self.peers[&id].hold_installs => {
                    self.peer(id).held_install = Some(*meta);
                }
                Action::InstallSnapshot { meta } => {
                    let got = self.snapshot_inbox.remove(&(id, meta.index));
                    let success = got.as_ref().is_some_and(|(m, _)| *m == *meta);
                    if let Some((_, data)) = got.filter(|_| success) {
                        self.peer(id).applied = data;
                    }
                    self.peer(id).outputs.push(Action::InstallSnapshot { meta: meta.clone() });
                    follow_up.push(Input::SnapshotInstalled { meta, success });
                }
                Action::DiscardSnapshot { meta, reason } => {
                    self.snapshot_inbox.remove(&(id, meta.index));
                    self.peer(id).outputs.push(Action::DiscardSnapshot { meta, reason });
                }
                Action::CreateSnapshot { .. } if self.peers[&id].hold_snapshots => self.peer(id).outputs.push(a),
                Action::CreateSnapshot { ref meta } => {
                    let peer = self.peer(id);
                    let applied = peer.applied.last().map_or(0, |(i, _)| *i);
                    assert!(applied <= meta.index, "a snapshot is asked for at what was handed out");
                    follow_up.push(Input::SnapshotCreated { index: meta.index, success: true });
                    peer.outputs.push(a);
                }
                other => self.peer(id).outputs.push(other),
            }
        }
        for input in follow_up {
            self.step(id, input);
        }
    }

    /// Finishes a held snapshot install on `id`.
    pub fn complete_install(&mut self, id: NodeId) {
        let meta = self.peer(id).held_install.take().expect("an install is held");
        let (m, data) = self.snapshot_inbox.remove(&(id, meta.index)).expect("snapshot data arrived");
        assert_eq!(m, meta);
        self.peer(id).applied = data;
        self.step(id, Input::SnapshotInstalled { meta: Box::new(meta), success: true });
    }

    /// Makes every held persist of `id` durable and reports it.
    pub fn flush_disk(&mut self, id: NodeId) {
        let held = std::mem::take(&mut self.peer(id).held);
        let Some(last) = held.last().map(|p| p.seq) else { return };
        for p in &held {
            self.peer(id).disk.apply(p);
        }
        self.step(id, Input::Persisted { seq: last });
    }

    /// A snapshot stream with `header` and `data` arrives at `header.to` (staged there).
    pub fn receive_snapshot(&mut self, header: SnapshotHeader, data: Vec<(Index, Payload)>) {
        let to = header.to;
        self.snapshot_inbox.insert((to, header.meta.index), (header.meta.clone(), data));
        self.step(to, Input::SnapshotReceived { header: Box::new(header) });
    }

    /// Delivers the snapshot streams in transit.
    pub fn deliver_streams(&mut self) {
        while let Some(h) = self.streams.pop_front() {
            if self.peers.contains_key(&h.to) {
                let to = h.to;
                self.step(to, Input::SnapshotReceived { header: Box::new(h) });
            }
        }
    }

    /// Delivers queued messages and snapshot streams (and whatever they cause) until the
    /// network is quiet.
    pub fn stabilize(&mut self) {
        self.stabilize_messages();
        while !self.streams.is_empty() {
            self.deliver_streams();
            self.stabilize_messages();
        }
    }

    fn stabilize_messages(&mut self) {
        let mut budget = 100_000;
        while let Some(m) = self.queue.pop_front() {
            budget -= 1;
            assert!(budget > 0, "cluster did not stabilize: {:?}", &self.trace[self.trace.len().saturating_sub(12)..]);
            let to = m.to;
            if !self.peers.contains_key(&to) || self.cut.contains(&(m.from, m.to)) {
                continue;
            }
            self.trace.push(format!("{}->{} {} t{}", m.from, m.to, m.body.kind(), m.term));
            self.delivered.push(m.clone());
            self.step(to, Input::Message(m));
        }
    }

    /// Delivers only the messages currently queued (one "round"), not their consequences.
    pub fn deliver_round(&mut self) {
        let batch: Vec<Message> = self.queue.drain(..).collect();
        for m in batch {
            if self.peers.contains_key(&m.to) && !self.cut.contains(&(m.from, m.to)) {
                self.delivered.push(m.clone());
                self.step(m.to, Input::Message(m));
            }
        }
    }

    /// Moves time forward by `d`, ticking every node whose deadline passed, then stabilizes.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next = self.peers.values().map(|p| p.node.next_deadline()).min().expect("nodes");
            if next > end {
                break;
            }
            self.now = self.now.max(next);
            let due: Vec<NodeId> =
                self.peers.iter().filter(|(_, p)| p.node.next_deadline() <= self.now).map(|(id, _)| *id).collect();
            for id in due {
                self.step(id, Input::Tick);
            }
            self.stabilize();
        }
        self.now = end;
    }

    /// Lets `id`'s election timer fire (only `id` is ticked) and runs the election.
    pub fn campaign(&mut self, id: NodeId) {
        let deadline = self.node(id).next_deadline();
        self.now = self.now.max(deadline);
        self.step(id, Input::Tick);
        self.stabilize();
    }

    /// Lets `id`'s election timer fire and runs the election one message round at a time,
    /// stopping as soon as `id` has won: its first appends (the no-op) are still queued.
    pub fn win_before_replicating(&mut self, id: NodeId) {
        // Past the restart vote guard of every node.
        let guard = self.peers[&id].cfg.election_timeout_min;
        self.now = self.now.max(Instant::ZERO + guard).max(self.node(id).next_deadline());
        self.step(id, Input::Tick);
        for _ in 0..8 {
            if self.node(id).role() == Role::Leader {
                return;
            }
            self.deliver_round();
        }
        panic!("node {id} should have won; history: {:?}", self.history(id));
    }

    /// Elects `id` and checks it won.
    pub fn elect(&mut self, id: NodeId) {
        // Past the restart vote guard of every node.
        let guard = self.peers[&id].cfg.election_timeout_min;
        self.now = self.now.max(Instant::ZERO + guard);
        self.campaign(id);
        assert_eq!(self.node(id).role(), Role::Leader, "node {id} should have won; history: {:?}", self.history(id));
    }

    pub fn leaders(&self) -> Vec<NodeId> {
        self.peers.iter().filter(|(_, p)| p.node.role() == Role::Leader).map(|(id, _)| *id).collect()
    }

    pub fn isolate(&mut self, id: NodeId) {
        let ids: Vec<NodeId> = self.peers.keys().copied().collect();
        for other in ids {
            if other != id {
                self.cut.insert((id, other));
                self.cut.insert((other, id));
            }
        }
    }

    /// Cuts every link between nodes of different groups (nodes in no group are isolated).
    pub fn partition(&mut self, groups: &[&[NodeId]]) {
        self.cut.clear();
        let ids: Vec<NodeId> = self.peers.keys().copied().collect();
        let group_of = |id: NodeId| groups.iter().position(|g| g.contains(&id));
        for &a in &ids {
            for &b in &ids {
                if a != b && (group_of(a).is_none() || group_of(a) != group_of(b)) {
                    self.cut.insert((a, b));
                }
            }
        }
    }

    /// Lets `id` campaign until it wins (at most `tries` elections); returns whether it won.
    pub fn campaign_until_leader(&mut self, id: NodeId, tries: usize) -> bool {
        for _ in 0..tries {
            self.campaign(id);
            if self.node(id).role() == Role::Leader {
                return true;
            }
        }
        false
    }

    /// Proposes directly on the node without draining, so the next drain batches.
    pub fn propose_undrained(&mut self, id: NodeId, data: &'static [u8]) {
        let pid = ProposalId(self.next_id);
        self.next_id += 1;
        let now = self.now;
        self.peer(id).node.step(now, Input::Propose { id: pid, data: Bytes::from_static(data) });
    }

    pub fn heal(&mut self) {
        self.cut.clear();
        self.drop_if = None;
    }

    pub fn propose(&mut self, id: NodeId, data: &'static [u8]) -> ProposalId {
        let pid = ProposalId(self.next_id);
        self.next_id += 1;
        self.step(id, Input::Propose { id: pid, data: Bytes::from_static(data) });
        pid
    }

    pub fn read(&mut self, id: NodeId, consistency: ReadConsistency) -> ReadId {
        let rid = ReadId(self.next_id);
        self.next_id += 1;
        self.step(id, Input::Read { id: rid, consistency });
        rid
    }

    /// The snapshots `id` asked its runtime for (`Action::CreateSnapshot`), in order.
    pub fn snapshot_requests(&self, id: NodeId) -> Vec<SnapshotMeta> {
        let outs = &self.peers[&id].outputs;
        outs.iter()
            .filter_map(
                |a| if let Action::CreateSnapshot { meta } = a { Some(SnapshotMeta::clone(meta)) } else { None },
            )
            .collect()
    }

    /// Asks leader `leader` to add node `id` as a learner with its test node info, and lets
    /// the change commit everywhere.
    pub fn add_learner(&mut self, leader: NodeId, id: NodeId) {
        let rid = self.request_id();
        self.step(
            leader,
            Input::ChangeMembership { id: rid, change: Box::new(MembershipChange::add_learner(id, addr(id))) },
        );
        self.stabilize();
        self.advance(Duration::from_millis(100));
    }

    /// A fresh id for a transfer or membership change request.
    pub fn request_id(&mut self) -> RequestId {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        id
    }

    /// Completions of transfer requests on `id`, in order.
    pub fn transfers_done(&self, id: NodeId) -> Vec<(RequestId, Result<NodeId, TransferError>)> {
        let outs = &self.peers[&id].outputs;
        outs.iter()
            .filter_map(|a| match a {
                Action::TransferDone { id, result } => Some((*id, result.clone())),
                _ => None,
            })
            .collect()
    }

    /// Completions of membership change requests on `id`, in order.
    pub fn changes_done(&self, id: NodeId) -> Vec<(RequestId, Result<Membership, ProposalError>)> {
        let outs = &self.peers[&id].outputs;
        outs.iter()
            .filter_map(|a| match a {
                Action::MembershipChangeDone { id, result } => Some((*id, result.clone())),
                _ => None,
            })
            .collect()
    }

    /// Crashes `id` (losing everything not durable and all in-flight input to it) and
    /// restarts it from its disk.
    pub fn crash_and_restart(&mut self, id: NodeId) {
        let now = self.now;
        self.queue.retain(|m| m.to != id && m.from != id);
        let peer = self.peer(id);
        peer.held.clear();
        let d = peer.disk.clone();
        let restored = RestoredState {
            hard_state: d.hard_state,
            snapshot: d.snapshot.clone(),
            entries: d.entries,
            applied: d.snapshot.index,
        };
        peer.node = Node::new(peer.cfg.clone(), restored, now).expect("restart from disk");
        peer.emitted = Metrics::default();
        peer.applied.retain(|(i, _)| *i <= d.snapshot.index);
        self.collect(id);
    }

    /// Replaces what `id` holds on disk (its hard state and the log after its snapshot
    /// point) and restarts it from there: the way to give a node an arbitrary log, like the
    /// follower logs of the paper's Figure 7.
    pub fn restart_with_log(&mut self, id: NodeId, hard_state: HardState, entries: Vec<Entry>) {
        let peer = self.peer(id);
        peer.disk.hard_state = hard_state;
        peer.disk.entries = entries;
        self.crash_and_restart(id);
    }

    /// `AppendResponse` conflicts (rejections) delivered from `from` to `to` so far.
    pub fn rejections(&self, from: NodeId, to: NodeId) -> usize {
        self.delivered
            .iter()
            .filter(|m| {
                m.from == from
                    && m.to == to
                    && matches!(m.body, MessageBody::AppendResponse { result: AppendResult::Conflict { .. } })
            })
            .count()
    }

    /// The parts of a node's state that no stale or foreign message may change.
    pub fn state(&self, id: NodeId) -> NodeState {
        NodeState::of(self.node(id))
    }

    pub fn history(&self, id: NodeId) -> Vec<Transition> {
        self.node(id).history().cloned().collect()
    }

    pub fn events(&self, id: NodeId) -> Vec<Event> {
        self.peers[&id]
            .outputs
            .iter()
            .filter_map(|a| if let Action::Event(e) = a { Some(Event::clone(e)) } else { None })
            .collect()
    }

    pub fn applied_commands(&self, id: NodeId) -> Vec<Bytes> {
        self.peers[&id]
            .applied
            .iter()
            .filter_map(|(_, p)| if let Payload::Command(b) = p { Some(b.clone()) } else { None })
            .collect()
    }

    pub fn log_terms(&self, id: NodeId) -> Vec<Term> {
        self.node(id).log().entries().iter().map(|e| e.term).collect()
    }

    /// Reads answered on `id`: (read id, index).
    pub fn reads_ready(&self, id: NodeId) -> Vec<(ReadId, Index)> {
        self.peers[&id]
            .outputs
            .iter()
            .filter_map(|a| if let Action::ReadReady { id, index } = a { Some((*id, *index)) } else { None })
            .collect()
    }

    pub fn read_rejections(&self, id: NodeId) -> Vec<(ReadId, ReadError)> {
        self.peers[&id]
            .outputs
            .iter()
            .filter_map(|a| if let Action::ReadRejected { id, error } = a { Some((*id, error.clone())) } else { None })
            .collect()
    }

    pub fn proposal_rejections(&self, id: NodeId) -> Vec<(ProposalId, ProposalError)> {
        self.peers[&id]
            .outputs
            .iter()
            .filter_map(
                |a| if let Action::ProposalRejected { id, error } = a { Some((*id, error.clone())) } else { None },
            )
            .collect()
    }

    /// Proposals reported applied on `id`.
    pub fn proposals_applied(&self, id: NodeId) -> Vec<ProposalId> {
        self.peers[&id]
            .outputs
            .iter()
            .flat_map(|a| match a {
                Action::Apply { proposals, .. } => proposals.iter().map(|(_, p)| *p).collect(),
                _ => vec![],
            })
            .collect()
    }

    /// Raft's safety properties over the current state of every node.
    pub fn check_safety(&self) {
        // Election safety: at most one leader per term.
        let mut by_term: BTreeMap<Term, NodeId> = BTreeMap::new();
        for (id, p) in &self.peers {
            if p.node.role() == Role::Leader {
                if let Some(other) = by_term.insert(p.node.term(), *id) {
                    panic!("two leaders in term {}: {other} and {id}", p.node.term());
                }
            }
        }
        // State machine safety: no two nodes applied different entries at one index.
        let mut applied: BTreeMap<Index, &Payload> = BTreeMap::new();
        for p in self.peers.values() {
            for (i, payload) in &p.applied {
                if let Some(prev) = applied.insert(*i, payload) {
                    assert_eq!(prev, payload, "different entries applied at index {i}");
                }
            }
        }
    }
}

/// Entries with the given terms at indexes 1, 2, ...; each carries a command naming its
/// index and term, so two logs are equal only if they hold the same entries.
pub fn log_with_terms(terms: &[Term]) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(i, &term)| {
            let index = i as Index + 1;
            Entry { term, index, payload: Payload::Command(Bytes::from(format!("{index}@{term}"))) }
        })
        .collect()
}

/// What a node's `status()` says about its term, vote, commit point, log and role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeState {
    pub term: Term,
    pub vote: Option<NodeId>,
    pub commit: Index,
    pub last_index: Index,
    pub last_term: Term,
    pub role: Role,
}

impl NodeState {
    pub fn of(node: &Node) -> NodeState {
        let s = node.status();
        NodeState {
            term: s.term,
            vote: node.vote(),
            commit: s.commit_index,
            last_index: s.last_log_index,
            last_term: node.log().last_term(),
            role: s.role,
        }
    }
}
