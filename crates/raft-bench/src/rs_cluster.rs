//! The raft-rs driver: three `RawNode<MemStorage>`s run with the Ready loop of the raft-rs
//! documentation, a FIFO message queue.

use crate::{Cluster, LeaderMeter, COMPACT_EVERY, PAYLOAD};
use raft::eraftpb::{ConfState, Entry, Message};
use raft::storage::MemStorage;
use raft::{RawNode, StateRole};
use std::collections::VecDeque;

/// Three raft-rs nodes (ids 1, 2, 3; node 1 leads) wired together in one process.
pub struct RsCluster {
    nodes: Vec<RawNode<MemStorage>>,
    /// Handles on the nodes' storages (shared with the nodes).
    stores: Vec<MemStorage>,
    queue: VecDeque<Message>,
    /// Applied index at the last compaction, per node.
    compacted: [u64; 3],
    meter: LeaderMeter,
}

impl RsCluster {
    /// The raft-rs node with id `id`.
    pub fn node(&self, id: u64) -> &RawNode<MemStorage> {
        &self.nodes[id as usize - 1]
    }

    /// Runs `f` on node `i` (0-based), counting its allocations if it is the leader and
    /// counting is on.
    #[inline]
    fn on_node<R>(&mut self, i: usize, f: impl FnOnce(&mut RawNode<MemStorage>) -> R) -> R {
        if i == 0 {
            let Self { nodes, meter, .. } = self;
            meter.measure(|| f(&mut nodes[0]))
        } else {
            f(&mut self.nodes[i])
        }
    }

    fn apply(&mut self, i: usize, entries: Vec<Entry>) {
        if i != 0 {
            return;
        }
        let Some(last) = entries.last().map(|e| e.index) else { return };
        let commands = entries.iter().filter(|e| !e.data.is_empty()).count();
        self.meter.on_applied(commands as u64, last);
    }

    /// Lets node `i` finish its work: handles Ready until it has none. Returns whether
    /// there was anything to do.
    fn pump(&mut self, i: usize) -> bool {
        let mut busy = false;
        while self.on_node(i, |n| n.has_ready()) {
            busy = true;
            let mut ready = self.on_node(i, |n| n.ready());
            self.queue.extend(ready.take_messages());
            assert!(ready.snapshot().is_empty(), "the benchmark workload never sends snapshots");
            let committed = ready.take_committed_entries();
            self.apply(i, committed);
            if !ready.entries().is_empty() {
                self.stores[i].wl().append(ready.entries()).expect("entries continue the stored log");
            }
            if let Some(hs) = ready.hs() {
                self.stores[i].wl().set_hardstate(hs.clone());
            }
            self.queue.extend(ready.take_persisted_messages());
            let mut light = self.on_node(i, |n| n.advance(ready));
            if let Some(commit) = light.commit_index() {
                self.stores[i].wl().mut_hard_state().set_commit(commit);
            }
            self.queue.extend(light.take_messages());
            let committed = light.take_committed_entries();
            self.apply(i, committed);
            self.on_node(i, |n| n.advance_apply());
        }
        busy
    }

    /// Hands every queued message to its receiver, oldest first.
    fn deliver(&mut self) {
        while let Some(m) = self.queue.pop_front() {
            let i = m.to as usize - 1;
            self.on_node(i, |n| n.step(m)).expect("raft-rs accepts messages from members");
        }
    }

    /// Runs until every node is idle and no message is in flight, then compacts the logs
    /// that grew by `COMPACT_EVERY` applied entries.
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
            if !busy {
                break;
            }
        }
        for i in 0..self.nodes.len() {
            let applied = self.nodes[i].raft.raft_log.applied;
            if applied - self.compacted[i] >= COMPACT_EVERY {
                self.stores[i].wl().compact(applied).expect("applied entries can be compacted");
                self.compacted[i] = applied;
            }
        }
    }

    fn propose(&mut self) {
        let data = PAYLOAD.to_vec();
        self.on_node(0, |n| n.propose(Vec::new(), data)).expect("the leader accepts proposals");
    }
}

impl Cluster for RsCluster {
    const NAME: &'static str = "raft-rs";

    fn new() -> Self {
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let mut stores = Vec::new();
        let nodes = (1..=3)
            .map(|id| {
                let cfg = raft::Config {
                    id,
                    election_tick: 10,
                    heartbeat_tick: 3,
                    // The same limits as raft-core's defaults: 1 MiB per message, 64 in flight.
                    max_size_per_msg: 1 << 20,
                    max_inflight_msgs: 64,
                    pre_vote: true,
                    check_quorum: true,
                    ..Default::default()
                };
                let store = MemStorage::new_with_conf_state(ConfState::from((vec![1, 2, 3], vec![])));
                stores.push(store.clone());
                RawNode::new(&cfg, store, &logger).expect("valid raft-rs config")
            })
            .collect();
        let mut c =
            RsCluster { nodes, stores, queue: VecDeque::new(), compacted: [0; 3], meter: LeaderMeter::default() };
        c.nodes[0].campaign().expect("node 1 can campaign");
        c.run_until_quiet();
        assert_eq!(c.nodes[0].raft.state, StateRole::Leader, "node 1 must win the first election");
        let last = c.nodes[0].raft.raft_log.last_index();
        assert!(
            c.nodes.iter().all(|n| n.raft.raft_log.applied == last),
            "the leader's first entry is applied everywhere"
        );
        c
    }

    fn propose(&mut self) {
        Self::propose(self)
    }

    fn run_until_quiet(&mut self) {
        Self::run_until_quiet(self)
    }

    fn leader_last_index(&self) -> u64 {
        self.nodes[0].raft.raft_log.last_index()
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

    #[test]
    fn every_node_stores_the_whole_log_and_compacts() {
        let mut c = RsCluster::new();
        for n in [1, 64, 1024] {
            c.round(n);
        }
        while c.leader_applied() < COMPACT_EVERY + 1024 {
            c.round(1024);
        }
        c.round(3);
        assert!(c.propose_one_timed() > std::time::Duration::ZERO);
        let last = c.nodes[0].raft.raft_log.last_index();
        for (node, store) in c.nodes.iter().zip(&c.stores) {
            assert_eq!(node.raft.raft_log.applied, last);
            assert_eq!(raft::Storage::last_index(store).expect("readable"), last);
            assert!(
                raft::Storage::first_index(store).expect("readable") > COMPACT_EVERY,
                "node {} compacted",
                node.raft.id
            );
        }
    }
}
