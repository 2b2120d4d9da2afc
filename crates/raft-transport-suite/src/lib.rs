//! # raft-transport-suite: the tests every transport passes
//!
//! A transport for `raft-tokio` is correct when real nodes over it do what Raft promises,
//! whatever the transport does inside. This crate holds those checks once, so the
//! in-process channel transport, UDP and QUIC are held to the same bar:
//!
//! - [`elect_replicate_kill_leader`]: three nodes elect a leader and replicate 10,000
//!   proposals, each applied exactly once on every node; the leader's task is killed
//!   mid-stream; the other two elect a new leader and no acknowledged write is lost.
//! - [`snapshot_to_lagging_node`]: a node that was down while the others compacted their
//!   logs catches up from a snapshot several times larger than one message.
//! - [`graceful_shutdown_hands_over`]: a leader that shuts down hands leadership over and
//!   every proposal it accepted succeeds.
//! - [`silent_peer_reported_unreachable`]: a follower that goes silent is reported to the
//!   leader's core as unreachable, and the other two go on committing.
//!
//! A transport crate implements [`TransportFactory`] and writes, in one test file:
//!
//! ```ignore
//! raft_transport_suite::transport_suite!(MyFactory::new());
//! ```
//!
//! which expands to one `#[test]` per scenario, each on its own two-thread tokio runtime
//! with real time (real sockets need it). Put each use in its own module to run the suite
//! twice in one file (say, with and without authentication).
//!
//! Every wait is bounded (a scenario fails with a message naming what it waited for);
//! nothing asserts on speed. Set `RUST_LOG=raft=debug` to see the nodes' logs.

use bytes::Bytes;
use raft_core::{Config, NodeId, NodeInfo, ProposalError, Role};
use raft_tokio::{Command, ProposeError, Raft, StateMachine, Transport};
use std::collections::BTreeMap;
use std::future::Future;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Makes the transports of a test cluster's nodes.
pub trait TransportFactory: Send + Sync + 'static {
    /// The transport it makes.
    type Transport: Transport;

    /// Node `id`'s transport, bound and ready to be attached, and the node info (its
    /// address) the cluster records for it. Called once per node, before any node starts:
    /// a node started later (as a lagging one is) has its transport from the beginning,
    /// unattached, exactly as a machine that is down keeps its address.
    fn create(&self, id: NodeId) -> impl Future<Output = (Self::Transport, NodeInfo)> + Send;
}

/// Runs one scenario on a fresh two-thread tokio runtime; what [`transport_suite!`]'s
/// tests call.
pub fn run<F: Future<Output = ()>>(scenario: F) {
    init_tracing();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(scenario)
}

/// One `#[test]` per scenario of the suite, over the transports that `$factory` (an
/// expression giving a [`TransportFactory`], evaluated once per test) makes.
#[macro_export]
macro_rules! transport_suite {
    ($factory:expr) => {
        #[test]
        fn elect_replicate_kill_leader() {
            $crate::run($crate::elect_replicate_kill_leader($factory));
        }
        #[test]
        fn snapshot_to_lagging_node() {
            $crate::run($crate::snapshot_to_lagging_node($factory));
        }
        #[test]
        fn graceful_shutdown_hands_over() {
            $crate::run($crate::graceful_shutdown_hands_over($factory));
        }
        #[test]
        fn silent_peer_reported_unreachable() {
            $crate::run($crate::silent_peer_reported_unreachable($factory));
        }
    };
}

/// The suite's state machine. A command is a `u64` value (little endian) followed by any
/// number of padding bytes; the state is the sequence of values and every padding byte,
/// so padded commands make the state (and its snapshots) as large as a test needs.
#[derive(Debug, Default)]
pub struct Journal {
    values: Vec<u64>,
    ballast: Vec<u8>,
}

/// What a read of a [`Journal`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalState {
    /// Every value applied, in log order.
    pub values: Vec<u64>,
    /// How many padding bytes were applied.
    pub ballast_len: usize,
    /// A checksum of the padding bytes (FNV-1a), so two nodes' ballasts are compared
    /// without copying them.
    pub ballast_sum: u64,
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// A command carrying `value` and `padding` bytes of ballast (a pattern derived from the
/// value, so a byte lost or moved in a snapshot shows in the checksum).
pub fn command(value: u64, padding: usize) -> Bytes {
    let mut c = Vec::with_capacity(8 + padding);
    c.extend_from_slice(&value.to_le_bytes());
    c.extend((0..padding).map(|i| (value as usize).wrapping_mul(31).wrapping_add(i) as u8));
    Bytes::from(c)
}

fn bad_data(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

impl StateMachine for Journal {
    /// The value's position in the sequence (1-based).
    type Response = u64;
    type Query = ();
    type QueryResponse = JournalState;

    fn apply(&mut self, commands: &[Command]) -> Vec<u64> {
        commands
            .iter()
            .map(|c| {
                // The suite proposes only well-formed commands; anything shorter is a
                // corrupted entry, recorded as value u64::MAX so a check fails loudly.
                let value = c.data.get(..8).map_or(u64::MAX, |b| u64::from_le_bytes(b.try_into().unwrap_or([0xff; 8])));
                self.values.push(value);
                self.ballast.extend_from_slice(c.data.get(8..).unwrap_or_default());
                self.values.len() as u64
            })
            .collect()
    }

    fn query(&self, (): ()) -> JournalState {
        JournalState { values: self.values.clone(), ballast_len: self.ballast.len(), ballast_sum: fnv1a(&self.ballast) }
    }

    fn snapshot(&mut self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(&(self.values.len() as u64).to_le_bytes())?;
        for v in &self.values {
            out.write_all(&v.to_le_bytes())?;
        }
        out.write_all(&self.ballast)
    }

    fn restore(&mut self, input: &mut dyn Read) -> io::Result<()> {
        let mut bytes = Vec::new();
        input.read_to_end(&mut bytes)?;
        let count = bytes.get(..8).ok_or_else(|| bad_data("snapshot shorter than its count"))?;
        let count = u64::from_le_bytes(count.try_into().map_err(|_| bad_data("count"))?) as usize;
        let end = count.checked_mul(8).and_then(|n| n.checked_add(8)).filter(|&e| e <= bytes.len());
        let end = end.ok_or_else(|| bad_data("snapshot shorter than its values"))?;
        self.values =
            bytes[8..end].chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect();
        self.ballast = bytes[end..].to_vec();
        Ok(())
    }
}

/// Waits until `check` holds, polling every 10 ms; panics naming `what` after `limit`.
pub async fn eventually<F: FnMut() -> bool>(what: &str, limit: Duration, mut check: F) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A test cluster: every node's transport made up front, nodes started when the scenario
/// says, in-memory stores.
pub struct Cluster<F: TransportFactory> {
    founders: Vec<NodeId>,
    infos: BTreeMap<NodeId, NodeInfo>,
    /// Transports of nodes not started yet.
    unstarted: BTreeMap<NodeId, F::Transport>,
    /// Applied to every node's config (the transport fits its size limits at start).
    tweak: fn(&mut Config),
    /// Running and stopped nodes (a stopped handle stays until the scenario removes it).
    pub nodes: BTreeMap<NodeId, Raft<Journal>>,
}

impl<F: TransportFactory> Cluster<F> {
    /// Makes the transports of founders `1..=n`; starts nobody.
    pub async fn new(factory: F, n: u64, tweak: fn(&mut Config)) -> Self {
        let mut infos = BTreeMap::new();
        let mut unstarted = BTreeMap::new();
        for id in 1..=n {
            let (t, info) = factory.create(id).await;
            infos.insert(id, info);
            unstarted.insert(id, t);
        }
        Cluster { founders: (1..=n).collect(), infos, unstarted, tweak, nodes: BTreeMap::new() }
    }

    /// Starts founder `id` on its transport.
    pub async fn start(&mut self, id: NodeId) -> Raft<Journal> {
        let transport = self.unstarted.remove(&id).unwrap_or_else(|| panic!("node {id} has no unstarted transport"));
        let mut config = Config::new(id);
        (self.tweak)(&mut config);
        let mut options = raft_tokio::Options::bootstrap(self.founders.iter().map(|f| (*f, self.infos[f].clone())));
        // The last node standing cannot hand over and waits this out.
        options.shutdown_timeout = Duration::from_secs(3);
        let (log, snapshots) = raft_storage::mem_stores();
        let raft = Raft::start(config, options, log, snapshots, Journal::default(), transport)
            .await
            .unwrap_or_else(|e| panic!("node {id} does not start: {e}"));
        self.nodes.insert(id, raft.clone());
        raft
    }

    /// Starts every founder not started yet.
    pub async fn start_all(&mut self) {
        for id in self.unstarted.keys().copied().collect::<Vec<_>>() {
            self.start(id).await;
        }
    }

    /// The running node `id`.
    pub fn node(&self, id: NodeId) -> &Raft<Journal> {
        &self.nodes[&id]
    }

    fn running(&self) -> impl Iterator<Item = &Raft<Journal>> {
        self.nodes.values().filter(|n| !n.is_stopped())
    }

    /// Waits until exactly one running node leads and every running node knows it.
    pub async fn leader(&self) -> NodeId {
        let mut found = 0;
        eventually("one leader known to every running node", Duration::from_secs(30), || {
            let leaders: Vec<_> = self.running().filter(|n| n.status().role == Role::Leader).map(|n| n.id()).collect();
            match leaders[..] {
                [l] => {
                    found = l;
                    self.running().all(|n| n.status().leader == Some(l))
                }
                _ => false,
            }
        })
        .await;
        found
    }

    /// A cloneable client of the running nodes.
    pub fn client(&self) -> Client {
        Client { nodes: Arc::new(self.running().map(|n| (n.id(), n.clone())).collect()) }
    }

    /// The state of every running node, once they all applied at least `count` values
    /// and agree.
    pub async fn converged(&self, count: usize) -> JournalState {
        let start = Instant::now();
        loop {
            let mut states = BTreeMap::new();
            for n in self.running() {
                if let Ok(s) = n.read_with((), raft_tokio::Consistency::Local).await {
                    states.insert(n.id(), s);
                }
            }
            let first = states.values().next().cloned();
            if let Some(first) = first.filter(|f| f.values.len() >= count) {
                if states.values().all(|s| *s == first) && states.len() == self.running().count() {
                    return first;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the nodes did not converge on {count} values: {:?}",
                states.iter().map(|(id, s)| (id, s.values.len())).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Shuts every running node down gracefully.
    pub async fn shutdown_all(&self) {
        for n in self.running() {
            n.shutdown().await.unwrap_or_else(|e| panic!("node {} does not shut down cleanly: {e}", n.id()));
        }
    }
}

/// Proposes at whichever node leads, following `NotLeader` answers.
#[derive(Clone)]
pub struct Client {
    nodes: Arc<BTreeMap<NodeId, Raft<Journal>>>,
}

/// How a proposal through a [`Client`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Applied, at this position of the sequence.
    Acknowledged(u64),
    /// The node it was given to stopped first: it may or may not be applied.
    Unknown,
}

impl Client {
    /// Proposes `command` until a leader acknowledges it or the node holding it stops;
    /// retries elsewhere only on answers that prove it was not appended or will never be
    /// applied (NotLeader, Overloaded, Superseded, ...), so nothing is applied twice.
    /// Panics after 60 s.
    pub async fn propose(&self, command: Bytes) -> Outcome {
        let start = Instant::now();
        let mut at = *self.nodes.keys().next().expect("a node");
        loop {
            assert!(start.elapsed() < Duration::from_secs(60), "a proposal found no leader in 60 s");
            let node = &self.nodes[&at];
            if node.is_stopped() {
                at = self.after(at);
                continue;
            }
            match node.propose(command.clone()).await {
                Ok(pos) => return Outcome::Acknowledged(pos),
                Err(ProposeError::Stopped | ProposeError::Rejected(ProposalError::OutcomeUnknown { .. })) => {
                    return Outcome::Unknown
                }
                Err(ProposeError::Rejected(e @ ProposalError::TooLarge { .. })) => panic!("the suite's command: {e}"),
                Err(ProposeError::NotLeader { leader: Some(l), .. }) if self.nodes.contains_key(&l) && l != at => {
                    at = l
                }
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    at = self.after(at);
                }
            }
        }
    }

    fn after(&self, id: NodeId) -> NodeId {
        self.nodes.range(id + 1..).next().or_else(|| self.nodes.iter().next()).map(|(id, _)| *id).expect("a node")
    }
}

/// Proposes `values` from `proposers` concurrent tasks (value `v` goes to task
/// `v % proposers`, each task proposing its share in order) and returns the values
/// acknowledged and those whose outcome is unknown.
pub async fn propose_all(client: &Client, values: std::ops::Range<u64>, proposers: u64) -> (Vec<u64>, Vec<u64>) {
    let tasks: Vec<_> = (0..proposers)
        .map(|p| {
            let client = client.clone();
            let values = values.clone();
            tokio::spawn(async move {
                let mut done = (Vec::new(), Vec::new());
                for v in values.filter(|v| v % proposers == p) {
                    match client.propose(command(v, 0)).await {
                        Outcome::Acknowledged(_) => done.0.push(v),
                        Outcome::Unknown => done.1.push(v),
                    }
                }
                done
            })
        })
        .collect();
    let (mut acked, mut unknown) = (Vec::new(), Vec::new());
    for t in tasks {
        let (a, u) = t.await.expect("a proposer task");
        acked.extend(a);
        unknown.extend(u);
    }
    (acked, unknown)
}

/// Three nodes elect one leader and replicate 10,000 proposals, each applied exactly once
/// on every node. Then the leader's task is killed (no hand-over; proposals in flight on
/// it end unknown) while 32 proposers keep going; the other two elect a new leader,
/// commit the rest, and hold every acknowledged write.
pub async fn elect_replicate_kill_leader<F: TransportFactory>(factory: F) {
    let mut c = Cluster::new(factory, 3, |_| {}).await;
    c.start_all().await;
    let first = c.leader().await;

    let client = c.client();
    let (acked, unknown) = propose_all(&client, 0..10_000, 32).await;
    assert!(unknown.is_empty(), "no node stopped, yet outcomes are unknown: {unknown:?}");
    assert_eq!(acked.len(), 10_000);
    let state = c.converged(10_000).await;
    let mut sorted = state.values.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..10_000).collect::<Vec<_>>(), "every proposal applied exactly once");

    // Kill the leader while proposals stream in.
    let load = {
        let client = client.clone();
        tokio::spawn(async move { propose_all(&client, 10_000..12_000, 32).await })
    };
    let leader = c.node(first).clone();
    eventually("proposals under way on the leader", Duration::from_secs(30), || {
        leader.status().last_log_index > state.values.len() as u64 + 100
    })
    .await;
    leader.kill().await.expect("kill the leader");
    let (acked_after, unknown_after) = load.await.expect("the load task");
    c.nodes.remove(&first);
    let second = c.leader().await;
    assert_ne!(second, first, "a killed node cannot lead");

    let state = c.converged(10_000 + acked_after.len()).await;
    let held: std::collections::BTreeSet<u64> = state.values.iter().copied().collect();
    assert_eq!(held.len(), state.values.len(), "a value applied twice");
    for v in acked.iter().chain(&acked_after) {
        assert!(held.contains(v), "acknowledged value {v} lost after the leader was killed");
    }
    for v in &held {
        assert!(*v < 12_000, "value {v} was never proposed");
    }
    assert!(
        acked_after.len() + unknown_after.len() == 2_000,
        "every proposal ends acknowledged or unknown: {} + {}",
        acked_after.len(),
        unknown_after.len()
    );
    c.shutdown_all().await;
}

/// How many values the snapshot scenario proposes, each padded with [`SNAPSHOT_PADDING`]
/// bytes: about 2.4 MB of state, larger than the core's default message limit (1 MiB)
/// and than any datagram.
pub const SNAPSHOT_VALUES: u64 = 600;
/// The padding of each value in the snapshot scenario.
pub const SNAPSHOT_PADDING: usize = 4000;

/// Nodes 1 and 2 run while node 3 is down; they commit [`SNAPSHOT_VALUES`] padded values
/// and compact their logs (a snapshot every 64 entries). Node 3 then starts empty: only a
/// snapshot several messages long can catch it up. It ends with the same state,
/// byte for byte, having applied fewer commands itself than the state holds.
pub async fn snapshot_to_lagging_node<F: TransportFactory>(factory: F) {
    let mut c = Cluster::new(factory, 3, |cfg| cfg.snapshot_policy.max_entries = 64).await;
    // The message limit node 3 will run with: what its transport fits the config to.
    let max_message = {
        let mut cfg = Config::new(3);
        c.unstarted[&3].fit_config(&mut cfg).expect("the transport carries the suite's config");
        cfg.max_bytes_per_message
    };
    c.start(1).await;
    c.start(2).await;
    let leader = c.leader().await;
    let client = c.client();
    for v in 0..SNAPSHOT_VALUES {
        assert!(
            matches!(client.propose(command(v, SNAPSHOT_PADDING)).await, Outcome::Acknowledged(_)),
            "value {v} not acknowledged with both live nodes running"
        );
    }
    let expected = c.converged(SNAPSHOT_VALUES as usize).await;
    let snapshot_bytes = 8 + 8 * expected.values.len() + expected.ballast_len;
    assert!(
        snapshot_bytes > 2 * max_message,
        "the snapshot ({snapshot_bytes} bytes) must span several messages ({max_message} bytes at most)"
    );
    let l = c.node(leader).clone();
    eventually("the leader compacted its log", Duration::from_secs(30), || {
        l.status().snapshot_index > SNAPSHOT_VALUES / 2
    })
    .await;

    let late = c.start(3).await;
    let state = c.converged(SNAPSHOT_VALUES as usize).await;
    assert_eq!(state, expected, "node 3 holds exactly the state the others hold");
    let applied_itself = late.metrics().commands_applied;
    assert!(
        applied_itself < SNAPSHOT_VALUES,
        "node 3 applied {applied_itself} commands itself: it was not caught up by a snapshot"
    );
    // And it takes part afterwards.
    assert!(matches!(client.propose(command(SNAPSHOT_VALUES, 0)).await, Outcome::Acknowledged(_)));
    c.converged(SNAPSHOT_VALUES as usize + 1).await;
    c.shutdown_all().await;
}

/// A leader asked to shut down while 100 proposals are appended hands leadership to a
/// follower by transfer (not by letting it lapse), and every proposal it accepted
/// succeeds.
pub async fn graceful_shutdown_hands_over<F: TransportFactory>(factory: F) {
    let mut c = Cluster::new(factory, 3, |_| {}).await;
    c.start_all().await;
    let old = c.leader().await;
    let leader = c.node(old).clone();
    let before = leader.status().last_log_index;
    let inflight: Vec<_> = (0..100u64)
        .map(|v| {
            let l = leader.clone();
            tokio::spawn(async move { (v, l.propose(command(v, 0)).await) })
        })
        .collect();
    eventually("the proposals appended", Duration::from_secs(30), || leader.status().last_log_index >= before + 100)
        .await;
    leader.shutdown().await.expect("a clean shutdown");
    for t in inflight {
        let (v, r) = t.await.expect("a proposer task");
        assert!(r.is_ok(), "proposal {v} failed during the hand-over: {r:?}");
    }
    c.nodes.remove(&old);
    let new = c.leader().await;
    assert_ne!(new, old);
    let taken_over = c.node(new).history().await.expect("history");
    assert!(
        taken_over
            .iter()
            .any(|t| matches!(t.reason, raft_core::TransitionReason::TransferRequested { from } if from == old)),
        "node {new} took over by transfer from {old}: {taken_over:?}"
    );
    let client = c.client();
    assert!(matches!(client.propose(command(1000, 0)).await, Outcome::Acknowledged(_)));
    let state = c.converged(101).await;
    assert_eq!(state.values.len(), 101);
    c.shutdown_all().await;
}

/// A follower's task is killed (its transport detached, nothing answers at its address).
/// The transport reports it unreachable to the leader's core within 15 s, and the other
/// two go on committing.
pub async fn silent_peer_reported_unreachable<F: TransportFactory>(factory: F) {
    let mut c = Cluster::new(factory, 3, |_| {}).await;
    c.start_all().await;
    let leader_id = c.leader().await;
    let client = c.client();
    assert!(matches!(client.propose(command(1, 0)).await, Outcome::Acknowledged(_)));
    let leader = c.node(leader_id).clone();
    let before = leader.core_metrics().await.expect("core metrics").unreachable_reports;
    let silent = *c.nodes.keys().find(|&&id| id != leader_id).expect("a follower");
    c.node(silent).kill().await.expect("kill the follower");
    c.nodes.remove(&silent);

    let start = Instant::now();
    let mut next = 2;
    loop {
        // Proposals keep the leader sending to the silent peer, as heartbeats do.
        assert!(matches!(client.propose(command(next, 0)).await, Outcome::Acknowledged(_)));
        next += 1;
        let reports = leader.core_metrics().await.expect("core metrics").unreachable_reports;
        if reports > before {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "node {silent} is silent, yet the transport never reported it unreachable"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(leader.status().role, Role::Leader, "two of three keep the leader");
    c.converged(next as usize - 1).await;
    c.shutdown_all().await;
}

/// Logs to the test's output when `RUST_LOG` is set (e.g. `RUST_LOG=raft=debug`); a no-op
/// after the first call.
pub fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}
