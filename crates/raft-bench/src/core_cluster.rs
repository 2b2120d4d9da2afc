//! The raft-core driver: three `Node`s, in-memory stores, a FIFO message queue.

use crate::{Cluster, LeaderMeter, COMPACT_EVERY, PAYLOAD};
use bytes::Bytes;
use raft_core::{
    Action, Config, Entries, HardState, Index, Input, Instant, Message, Node, Payload, ProposalId, RestoredState, Role,
    SnapshotMeta,
};
use std::collections::VecDeque;
use std::time::{Duration, Instant as WallClock};

/// The time every step is fed: past the restart vote guard and node 1's election timeout,
/// and it never moves afterwards, so no heartbeat or election interferes.
const NOW: Instant = Instant::from_nanos(1_000_000_000);

/// What a runtime keeps on "disk": here, memory. Persisting keeps the `Persist`'s shared
/// entry batch as one segment, without copying entries (raft-rs's `MemStorage` clones each
/// entry instead: that is its own storage's cost, the one its documentation shows).
#[derive(Default)]
struct MemStore {
    hard_state: HardState,
    snapshot: Option<SnapshotMeta>,
    /// Consecutive, non-empty segments of consecutive entries after the snapshot point.
    segments: VecDeque<Entries>,
}

impl MemStore {
    fn persist(&mut self, hard_state: Option<HardState>, entries: Entries, snapshot: Option<SnapshotMeta>) {
        // The documented order: snapshot point, entries, hard state.
        if let Some(meta) = snapshot {
            while let Some(seg) = self.segments.front_mut() {
                let last = seg[seg.len() - 1].index;
                if last <= meta.index {
                    self.segments.pop_front();
                } else {
                    let drop = meta.index.saturating_sub(seg[0].index - 1) as usize;
                    seg.advance(drop);
                    break;
                }
            }
            self.snapshot = Some(meta);
        }
        if let Some(first) = entries.first().map(|e| e.index) {
            // Drop the stored suffix from `first` on (a conflicting or rewritten tail).
            while let Some(seg) = self.segments.back_mut() {
                if seg[0].index >= first {
                    self.segments.pop_back();
                } else {
                    let keep = (first - seg[0].index) as usize;
                    seg.truncate(keep);
                    break;
                }
            }
            self.segments.push_back(entries);
        }
        if let Some(hs) = hard_state {
            self.hard_state = hs;
        }
    }

    /// The last stored index (0 if nothing was stored).
    #[cfg(test)]
    fn last_index(&self) -> Index {
        self.segments
            .back()
            .and_then(|s| s.last())
            .map_or_else(|| self.snapshot.as_ref().map_or(0, |s| s.index), |e| e.index)
    }
}

/// Three raft-core nodes (ids 1, 2, 3; node 1 leads) wired together in one process.
pub struct CoreCluster {
    nodes: Vec<Node>,
    stores: Vec<MemStore>,
    queue: VecDeque<Message>,
    /// Reused action buffer.
    actions: Vec<Action>,
    /// A snapshot each node asked for, created at the end of the round.
    snapshot_wanted: [Option<Index>; 3],
    next_proposal: u64,
    meter: LeaderMeter,
    /// A "receive buffer" the payloads are sliced from (see `payload`).
    payloads: Bytes,
}

/// Payloads carved from one receive buffer before a new one is allocated.
const PAYLOADS_PER_BUFFER: usize = 4096;

impl CoreCluster {
    /// The node with id `id`.
    pub fn node(&self, id: u64) -> &Node {
        &self.nodes[id as usize - 1]
    }

    /// Runs `f` on node `i` (0-based), counting its allocations if it is the leader and
    /// counting is on.
    #[inline]
    fn on_node<R>(&mut self, i: usize, f: impl FnOnce(&mut Node) -> R) -> R {
        if i == 0 {
            let Self { nodes, meter, .. } = self;
            meter.measure(|| f(&mut nodes[0]))
        } else {
            f(&mut self.nodes[i])
        }
    }

    /// Lets node `i` finish its work: drains and carries out actions until none are left.
    /// Returns whether there was anything to do.
    fn pump(&mut self, i: usize) -> bool {
        let mut busy = false;
        let mut actions = std::mem::take(&mut self.actions);
        loop {
            self.on_node(i, |n| n.drain_actions(&mut actions));
            if actions.is_empty() {
                break;
            }
            busy = true;
            for action in actions.drain(..) {
                self.carry_out(i, action);
            }
        }
        self.actions = actions;
        busy
    }

    fn carry_out(&mut self, i: usize, action: Action) {
        match action {
            Action::Send(m) => self.queue.push_back(m),
            Action::Persist(p) => {
                let seq = p.seq;
                self.stores[i].persist(p.hard_state, p.entries, p.snapshot.map(|s| *s));
                self.on_node(i, |n| n.step(NOW, Input::Persisted { seq }));
            }
            Action::Apply { entries, .. } => {
                let Some(last) = entries.last().map(|e| e.index) else { return };
                if i == 0 {
                    let commands = entries.iter().filter(|e| matches!(e.payload, Payload::Command(_))).count();
                    self.meter.on_applied(commands as u64, last);
                }
                self.on_node(i, |n| n.step(NOW, Input::Applied { index: last }));
            }
            Action::CreateSnapshot { meta } => self.snapshot_wanted[i] = Some(meta.index),
            Action::ProposalRejected { id, error } => panic!("proposal {id:?} rejected: {error}"),
            Action::InstallSnapshot { .. } | Action::SendSnapshot { .. } => {
                panic!("the benchmark workload never needs a snapshot transfer")
            }
            // Reads, events and request completions: the workload makes none it waits for.
            _ => {}
        }
    }

    /// Hands every queued message to its receiver, oldest first.
    fn deliver(&mut self) {
        while let Some(m) = self.queue.pop_front() {
            let i = m.to as usize - 1;
            self.on_node(i, |n| n.step(NOW, Input::Message(m)));
        }
    }

    /// Runs until every node is idle and no message is in flight, then creates the
    /// snapshots the nodes asked for (and runs until idle again).
    fn run_until_quiet(&mut self) {
        loop {
            let mut busy = false;
            for i in 0..self.nodes.len() {
                busy |= self.pump(i);
            }
            if !self.queue.is_empty() {
                busy = true;
                self.deliver();
            }
            if busy {
                continue;
            }
            let mut snapshots = false;
            for i in 0..self.nodes.len() {
                if let Some(index) = self.snapshot_wanted[i].take() {
                    snapshots = true;
                    self.on_node(i, |n| n.step(NOW, Input::SnapshotCreated { index, success: true }));
                }
            }
            if !snapshots {
                return;
            }
        }
    }

    /// Micro-benchmark hook: proposes `n` commands, lets the leader send its appends, and
    /// times node 2 handling the first one: `step(Message(Append))` plus `drain_actions`
    /// (up to and including the `Persist` it emits). The rest runs untimed to quiescence.
    pub fn time_follower_append(&mut self, n: usize) -> Duration {
        for _ in 0..n {
            self.propose();
        }
        self.pump(0);
        let pos = self.queue.iter().position(|m| m.to == 2).expect("the leader sent node 2 an append");
        let m = self.queue.remove(pos).expect("position is in range");
        let mut actions = std::mem::take(&mut self.actions);
        let start = WallClock::now();
        self.nodes[1].step(NOW, Input::Message(m));
        self.nodes[1].drain_actions(&mut actions);
        let took = start.elapsed();
        for a in actions.drain(..) {
            self.carry_out(1, a);
        }
        self.actions = actions;
        self.run_until_quiet();
        took
    }

    /// Micro-benchmark hook: proposes `n` commands, replicates them to both followers, and
    /// times the leader handling the first append response: `step(Message(AppendResponse))`
    /// plus `drain_actions` (the commit, and the apply and commit-index appends it emits).
    pub fn time_leader_append_response(&mut self, n: usize) -> Duration {
        for _ in 0..n {
            self.propose();
        }
        self.pump(0);
        self.deliver();
        self.pump(1);
        self.pump(2);
        let pos = self.queue.iter().position(|m| m.to == 1).expect("a follower answered");
        let m = self.queue.remove(pos).expect("position is in range");
        let mut actions = std::mem::take(&mut self.actions);
        let start = WallClock::now();
        self.nodes[0].step(NOW, Input::Message(m));
        self.nodes[0].drain_actions(&mut actions);
        let took = start.elapsed();
        for a in actions.drain(..) {
            self.carry_out(0, a);
        }
        self.actions = actions;
        self.run_until_quiet();
        took
    }

    /// The next 16-byte command. raft-core takes `Bytes`, so a client hands it commands
    /// the way they arrive from the network: zero-copy slices of a shared receive buffer
    /// (one allocation per 4096 commands, and cloning a slice is a reference-count
    /// increment). raft-rs takes a `Vec<u8>` per proposal, so its driver allocates one.
    fn payload(&mut self) -> Bytes {
        if self.payloads.is_empty() {
            self.payloads = Bytes::from(PAYLOAD.repeat(PAYLOADS_PER_BUFFER));
        }
        self.payloads.split_to(PAYLOAD.len())
    }

    fn propose(&mut self) {
        self.next_proposal += 1;
        let id = ProposalId(self.next_proposal);
        let data = self.payload();
        self.on_node(0, |n| n.step(NOW, Input::Propose { id, data }));
    }
}

impl Cluster for CoreCluster {
    const NAME: &'static str = "raft-core";

    fn new() -> Self {
        let nodes = (1..=3)
            .map(|id| {
                let mut cfg = Config::new(id);
                cfg.snapshot_policy.max_entries = COMPACT_EVERY;
                cfg.snapshot_policy.max_bytes = 0;
                Node::new(cfg, RestoredState::bootstrap([1, 2, 3]), Instant::ZERO).expect("valid config")
            })
            .collect();
        let mut c = CoreCluster {
            nodes,
            stores: (0..3).map(|_| MemStore::default()).collect(),
            queue: VecDeque::new(),
            actions: Vec::new(),
            snapshot_wanted: [None; 3],
            next_proposal: 0,
            meter: LeaderMeter::default(),
            payloads: Bytes::new(),
        };
        // Only node 1 sees its election timeout pass.
        c.nodes[0].step(NOW, Input::Tick);
        c.run_until_quiet();
        assert_eq!(c.nodes[0].role(), Role::Leader, "node 1 must win the first election");
        let last = c.nodes[0].log().last_index();
        assert!(c.nodes.iter().all(|n| n.applied_index() == last), "the leader's first entry is applied everywhere");
        c
    }

    fn propose(&mut self) {
        Self::propose(self)
    }

    fn run_until_quiet(&mut self) {
        Self::run_until_quiet(self)
    }

    fn leader_last_index(&self) -> u64 {
        self.nodes[0].log().last_index()
    }

    fn meter(&self) -> &LeaderMeter {
        &self.meter
    }

    fn meter_mut(&mut self) -> &mut LeaderMeter {
        &mut self.meter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(lo: Index, hi: Index, term: u64) -> Vec<raft_core::Entry> {
        (lo..=hi).map(|index| raft_core::Entry { term, index, payload: Payload::Noop }).collect()
    }

    #[test]
    fn store_replaces_suffixes_and_compacts_across_segments() {
        let mut s = MemStore::default();
        s.persist(None, entries(1, 5, 1).into(), None);
        s.persist(None, entries(6, 9, 1).into(), None);
        s.persist(None, entries(4, 6, 2).into(), None);
        assert_eq!(s.last_index(), 6);
        let terms: Vec<_> = s.segments.iter().flat_map(|s| s.iter()).map(|e| (e.index, e.term)).collect();
        assert_eq!(terms, [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (6, 2)]);
        let meta = SnapshotMeta { index: 4, term: 2, membership: Default::default() };
        s.persist(None, Entries::new(), Some(meta));
        let left: Vec<_> = s.segments.iter().flat_map(|s| s.iter()).map(|e| e.index).collect();
        assert_eq!(left, [5, 6]);
        let meta = SnapshotMeta { index: 6, term: 2, membership: Default::default() };
        s.persist(None, Entries::new(), Some(meta));
        assert!(s.segments.is_empty());
        assert_eq!(s.last_index(), 6);
    }

    #[test]
    fn every_node_stores_the_whole_log_and_compacts() {
        let mut c = CoreCluster::new();
        for n in [1, 64, 1024] {
            c.round(n);
        }
        // Past the compaction threshold: every node snapshots and drops its prefix.
        while c.leader_applied() < COMPACT_EVERY + 1024 {
            c.round(1024);
        }
        c.round(3);
        let last = c.nodes[0].log().last_index();
        for (node, store) in c.nodes.iter().zip(&c.stores) {
            assert_eq!(store.last_index(), last);
            assert_eq!(node.applied_index(), last);
            assert!(node.log().snapshot_index() >= COMPACT_EVERY, "node {} compacted", node.id());
            assert_eq!(store.snapshot.as_ref().map(|s| s.index), Some(node.log().snapshot_index()));
        }
        assert!(c.time_follower_append(64) > Duration::ZERO);
        assert!(c.time_leader_append_response(64) > Duration::ZERO);
        assert!(c.propose_one_timed() > Duration::ZERO);
    }
}
