//! Three raft-core nodes in one process, driven by the synchronous loop of the crate docs:
//! every action handled, reports fed back until nothing is left, one "fsync" per batch.
//!
//! The state machine is a counter; commands are `+N` in ASCII. The example elects a
//! leader, replicates and applies 200 additions (with snapshots and log compaction on the
//! way), reads the value linearizably, then adds a fourth node that catches up from a
//! snapshot streamed by the leader, and prints the value every node holds.
//!
//! Run it with `cargo run -p raft-core --example three_nodes`.

use bytes::Bytes;
use raft_core::{
    Action, Config, Entry, HardState, Index, Input, Instant, MembershipChange, Message, Node, NodeId, NodeInfo,
    Payload, ProposalId, ReadConsistency, ReadId, RequestId, RestoredState, SnapshotHeader, SnapshotMeta,
};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// What a node keeps on its "disk": the log store and the snapshot store.
#[derive(Default)]
struct Disk {
    hard_state: HardState,
    snapshot: SnapshotMeta,
    entries: Vec<Entry>,
    /// Snapshots by last index: (meta, the counter's value).
    snapshots: BTreeMap<Index, (SnapshotMeta, i64)>,
    /// A snapshot received from the leader and not yet installed (staged).
    staged: Option<(SnapshotMeta, i64)>,
    fsyncs: u64,
}

impl Disk {
    /// Applies one persist in the documented order; durable at the next `fsync`.
    fn write(&mut self, p: &raft_core::Persist) {
        if let Some(s) = &p.snapshot {
            let keep = self.entries.iter().any(|e| e.index == s.index && e.term == s.term);
            self.entries.retain(|e| keep && e.index > s.index);
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

/// One cluster member: the node, its disk and its state machine.
struct Member {
    node: Node,
    disk: Disk,
    counter: i64,
    applied: Index,
}

/// The cluster and its "network": messages and snapshot streams in flight.
struct Cluster {
    members: BTreeMap<NodeId, Member>,
    network: VecDeque<Message>,
    streams: VecDeque<(SnapshotHeader, i64)>,
    now: Instant,
    reads: Vec<(NodeId, i64)>,
}

impl Cluster {
    /// Feeds `input` to `id`, then runs the crate docs' loop until the node is quiet.
    fn step(&mut self, id: NodeId, input: Input) {
        let now = self.now;
        let mut actions = Vec::new();
        let mut reports = vec![input];
        while !reports.is_empty() {
            let m = self.members.get_mut(&id).expect("a member");
            for r in reports.drain(..) {
                m.node.step(now, r);
            }
            m.node.drain_actions(&mut actions);
            let mut durable = None;
            for action in actions.drain(..) {
                let m = self.members.get_mut(&id).expect("a member");
                match action {
                    Action::Send(msg) => {
                        // Through the wire format, as a transport would.
                        let wire = Bytes::from(msg.encode());
                        self.network.push_back(Message::decode_bytes(&wire, 1 << 20).expect("valid"));
                    }
                    Action::Persist(p) => {
                        m.disk.write(&p);
                        durable = Some(p.seq);
                    }
                    Action::Apply { entries, .. } => {
                        for e in entries.iter() {
                            if let Payload::Command(c) = &e.payload {
                                let n: i64 = std::str::from_utf8(c).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
                                m.counter += n;
                            }
                            m.applied = e.index;
                        }
                        if let Some(last) = entries.last() {
                            reports.push(Input::Applied { index: last.index });
                        }
                    }
                    Action::ReadReady { .. } => self.reads.push((id, m.counter)),
                    Action::ProposalRejected { id: p, error } => println!("n{id}: proposal {p:?} rejected: {error}"),
                    Action::ReadRejected { id: r, error } => println!("n{id}: read {r:?} rejected: {error}"),
                    Action::MembershipChangeDone { result, .. } => match result {
                        Ok(ms) => {
                            println!("n{id}: membership is now voters {:?} learners {:?}", ms.voters, ms.learners)
                        }
                        Err(e) => println!("n{id}: membership change failed: {e}"),
                    },
                    Action::TransferDone { result, .. } => println!("n{id}: transfer: {result:?}"),
                    Action::CreateSnapshot { meta } => {
                        // The state machine is exactly at `meta.index` here: actions run in order.
                        assert_eq!(m.applied, meta.index);
                        m.disk.snapshots.insert(meta.index, (SnapshotMeta::clone(&meta), m.counter));
                        reports.push(Input::SnapshotCreated { index: meta.index, success: true });
                    }
                    Action::SendSnapshot { header } => {
                        let (_, value) = m.disk.snapshots[&header.meta.index].clone();
                        // The header travels in front of the bytes, so the stream describes itself.
                        let wire = header.encode();
                        let (decoded, _) = SnapshotHeader::decode(&wire, 1 << 16).expect("valid header");
                        self.streams.push_back((decoded, value));
                        reports.push(Input::SnapshotSent { peer: header.to, index: header.meta.index, success: true });
                    }
                    Action::InstallSnapshot { meta } => {
                        let (staged, value) = m.disk.staged.take().expect("installs what was staged");
                        assert_eq!(staged, *meta);
                        m.counter = value;
                        m.applied = meta.index;
                        m.disk.snapshots.insert(meta.index, (staged, value));
                        reports.push(Input::SnapshotInstalled { meta, success: true });
                    }
                    Action::DiscardSnapshot { .. } => m.disk.staged = None,
                    Action::Event(e) => {
                        if let raft_core::Event::LeaderChanged { leader: Some(l), term } = *e {
                            println!("n{id}: leader is n{l} in term {term}");
                        }
                    }
                    other => panic!("an action this loop does not know: {other:?}"),
                }
            }
            if let Some(seq) = durable {
                let m = self.members.get_mut(&id).expect("a member");
                m.disk.fsyncs += 1; // one fsync for the whole batch (group commit)
                reports.push(Input::Persisted { seq });
            }
        }
    }

    /// Delivers messages and snapshot streams until the network is empty.
    fn deliver(&mut self) {
        loop {
            if let Some(msg) = self.network.pop_front() {
                if self.members.contains_key(&msg.to) {
                    self.step(msg.to, Input::Message(msg));
                }
            } else if let Some((header, value)) = self.streams.pop_front() {
                let to = header.to;
                self.members.get_mut(&to).expect("a member").disk.staged = Some((header.meta.clone(), value));
                self.step(to, Input::SnapshotReceived { header: Box::new(header) });
            } else {
                return;
            }
        }
    }

    /// Moves time forward, ticking every node whose deadline passed.
    fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        while let Some(next) = self.members.values().map(|m| m.node.next_deadline()).min().filter(|d| *d <= end) {
            self.now = next.max(self.now);
            let due: Vec<NodeId> =
                self.members.iter().filter(|(_, m)| m.node.next_deadline() <= self.now).map(|(id, _)| *id).collect();
            for id in due {
                self.step(id, Input::Tick);
            }
            self.deliver();
        }
        self.now = end;
    }

    fn leader(&self) -> Option<NodeId> {
        self.members.iter().find(|(_, m)| m.node.role() == raft_core::Role::Leader).map(|(id, _)| *id)
    }

    fn add(&mut self, id: NodeId, restored: RestoredState) {
        let mut cfg = Config::new(id);
        cfg.snapshot_policy.max_entries = 50;
        let node = Node::new(cfg, restored, self.now).expect("valid config");
        self.members.insert(id, Member { node, disk: Disk::default(), counter: 0, applied: 0 });
        self.step(id, Input::Tick); // carries out the first persist
    }
}

fn info(id: NodeId) -> NodeInfo {
    NodeInfo::new(format!("127.0.0.1:{}", 7000 + id).into_bytes())
}

#[allow(missing_docs)]
pub fn main() {
    let mut c = Cluster {
        members: BTreeMap::new(),
        network: VecDeque::new(),
        streams: VecDeque::new(),
        now: Instant::ZERO,
        reads: Vec::new(),
    };
    for id in 1..=3 {
        c.add(id, RestoredState::bootstrap_with_info((1..=3).map(|n| (n, info(n)))));
    }
    c.advance(Duration::from_secs(1));
    let leader = c.leader().expect("a leader is elected");
    for i in 1..=200 {
        c.step(leader, Input::Propose { id: ProposalId(i), data: Bytes::from(format!("{}", i % 7)) });
        c.deliver();
    }
    c.advance(Duration::from_millis(200));
    c.step(leader, Input::Read { id: ReadId(1), consistency: ReadConsistency::ReadIndex });
    c.deliver();
    println!("linearizable reads: {:?}", c.reads);

    // A fourth node joins empty; the leader's log is compacted, so it gets a snapshot.
    c.add(4, RestoredState::default());
    let change = MembershipChange::add_learner(4, info(4));
    c.step(leader, Input::ChangeMembership { id: RequestId(1), change: Box::new(change) });
    c.deliver();
    c.advance(Duration::from_millis(500));

    for (id, m) in &c.members {
        println!(
            "n{id}: counter = {}, applied {}, snapshot at {}, {} fsyncs, knows n4 at {:?}",
            m.counter,
            m.applied,
            m.node.snapshot().index,
            m.disk.fsyncs,
            m.node.node_info(4).map(|i| String::from_utf8_lossy(i.as_bytes()).into_owned()),
        );
    }
    let values: Vec<i64> = c.members.values().map(|m| m.counter).collect();
    assert!(values.windows(2).all(|w| w[0] == w[1]), "every node holds the same value: {values:?}");
    let expected: i64 = (1..=200).map(|i| i % 7).sum();
    assert_eq!(values[0], expected);
    println!("all four nodes hold {expected}");
}
