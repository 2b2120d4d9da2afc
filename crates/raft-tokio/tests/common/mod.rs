//! The test harness: a state machine that records every command, and a cluster of nodes
//! over the channel transport with in-memory or sled stores.
#![allow(dead_code, missing_docs)]

/// Declares one test per store for a scenario `async fn(Disk)`.
macro_rules! both_stores {
    ($scenario:ident, $mem:ident, $sled:ident) => {
        #[tokio::test(start_paused = true)]
        async fn $mem() {
            $scenario(Disk::Memory).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sled() {
            $scenario(Disk::Sled).await;
        }
    };
}

use raft_core::{Config, NodeId, NodeInfo, Role};
use raft_storage::{LogStore, SnapshotStore};
use raft_tokio::{ChannelNetwork, Command, Options, ProposeError, Raft, StateMachine};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::time::Duration;
use tempfile::TempDir;

/// Every command is a `u64` (little endian); the state is the sequence of applied values.
/// A proposal's response is the value's position in that sequence (1-based), so a test
/// can check each response against the final state.
#[derive(Default)]
pub struct Recorder {
    pub values: Vec<u64>,
    /// Slept in every `apply` call, to model a slow state machine.
    pub apply_delay: Duration,
}

impl StateMachine for Recorder {
    type Response = u64;
    type Query = ();
    type QueryResponse = Vec<u64>;

    fn apply(&mut self, commands: &[Command]) -> Vec<u64> {
        if !self.apply_delay.is_zero() {
            std::thread::sleep(self.apply_delay);
        }
        commands
            .iter()
            .map(|c| {
                let v = u64::from_le_bytes(c.data[..8].try_into().expect("8-byte command"));
                self.values.push(v);
                self.values.len() as u64
            })
            .collect()
    }

    fn query(&self, (): ()) -> Vec<u64> {
        self.values.clone()
    }

    fn snapshot(&mut self, out: &mut dyn Write) -> io::Result<()> {
        for v in &self.values {
            out.write_all(&v.to_le_bytes())?;
        }
        Ok(())
    }

    fn restore(&mut self, input: &mut dyn Read) -> io::Result<()> {
        let mut bytes = Vec::new();
        input.read_to_end(&mut bytes)?;
        self.values = bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect();
        Ok(())
    }
}

pub fn cmd(v: u64) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(&v.to_le_bytes())
}

pub fn info(id: NodeId) -> NodeInfo {
    NodeInfo::new(format!("chan://node-{id}").into_bytes())
}

/// Where the nodes keep their state.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Disk {
    Memory,
    Sled,
    /// In memory, behind a [`LogControl`] the test uses to slow, block or fail syncs.
    Controlled,
}

/// Faults a test injects into one node's log store.
#[derive(Default)]
pub struct LogControl {
    /// Every sync sleeps this long (real time).
    pub sync_delay: std::sync::Mutex<Duration>,
    /// The next sync fails.
    pub fail_next_sync: std::sync::atomic::AtomicBool,
    /// While true, syncs wait (the fsync of a stalled disk).
    blocked: std::sync::Mutex<bool>,
    unblocked: std::sync::Condvar,
    /// Syncs completed.
    pub syncs: std::sync::atomic::AtomicU64,
}

impl LogControl {
    pub fn block(&self, blocked: bool) {
        *self.blocked.lock().expect("lock") = blocked;
        self.unblocked.notify_all();
    }
}

/// A memory log store whose syncs a [`LogControl`] slows, blocks or fails.
pub struct ControlledLog {
    inner: raft_storage::MemLogStore,
    control: std::sync::Arc<LogControl>,
}

impl LogStore for ControlledLog {
    fn path(&self) -> &std::path::Path {
        self.inner.path()
    }
    fn hard_state(&self) -> raft_core::HardState {
        self.inner.hard_state()
    }
    fn snapshot_point(&self) -> raft_core::SnapshotMeta {
        self.inner.snapshot_point()
    }
    fn first_index(&self) -> raft_core::Index {
        self.inner.first_index()
    }
    fn last_index(&self) -> raft_core::Index {
        self.inner.last_index()
    }
    fn term(&self, index: raft_core::Index) -> Result<Option<raft_core::Term>, raft_storage::StorageError> {
        self.inner.term(index)
    }
    fn entries(
        &self,
        range: std::ops::Range<raft_core::Index>,
    ) -> Result<Vec<raft_core::Entry>, raft_storage::StorageError> {
        self.inner.entries(range)
    }
    fn append(&mut self, entries: &[raft_core::Entry]) -> Result<(), raft_storage::StorageError> {
        self.inner.append(entries)
    }
    fn truncate_from(&mut self, index: raft_core::Index) -> Result<(), raft_storage::StorageError> {
        self.inner.truncate_from(index)
    }
    fn save_hard_state(&mut self, hs: &raft_core::HardState) -> Result<(), raft_storage::StorageError> {
        self.inner.save_hard_state(hs)
    }
    fn set_snapshot_point(&mut self, meta: &raft_core::SnapshotMeta) -> Result<(), raft_storage::StorageError> {
        self.inner.set_snapshot_point(meta)
    }
    fn persist(&mut self, p: &raft_core::Persist) -> Result<(), raft_storage::StorageError> {
        self.inner.persist(p)
    }
    fn sync(&mut self) -> Result<(), raft_storage::StorageError> {
        let delay = *self.control.sync_delay.lock().expect("lock");
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let mut blocked = self.control.blocked.lock().expect("lock");
        while *blocked {
            blocked = self.control.unblocked.wait(blocked).expect("lock");
        }
        drop(blocked);
        if self.control.fail_next_sync.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Err(raft_storage::StorageError::Io {
                path: self.inner.path().to_path_buf(),
                op: "fsync",
                source: io::Error::other("injected fsync failure"),
            });
        }
        self.control.syncs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.sync()
    }
}

/// Nodes of one cluster over one channel network.
pub struct Cluster {
    pub net: ChannelNetwork,
    pub nodes: BTreeMap<NodeId, Raft<Recorder>>,
    pub disk: Disk,
    pub dir: TempDir,
    pub founders: Vec<NodeId>,
    /// Applied to every node's config before it starts.
    pub tweak: fn(&mut Config),
    pub apply_delay: Duration,
    /// Start nodes with `Options::inline_io`.
    pub inline_io: bool,
    /// The log controls of `Disk::Controlled` nodes.
    pub controls: BTreeMap<NodeId, std::sync::Arc<LogControl>>,
}

/// Waits until `check` holds, polling; panics with `what` after `limit` (virtual time
/// under a paused clock).
pub async fn eventually<F: FnMut() -> bool>(what: &str, limit: Duration, mut check: F) {
    let start = tokio::time::Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl Cluster {
    /// A cluster of founders `1..=n`, started.
    pub async fn start(n: u64, disk: Disk) -> Cluster {
        Cluster::start_with(n, disk, |_| {}).await
    }

    pub async fn start_with(n: u64, disk: Disk, tweak: fn(&mut Config)) -> Cluster {
        let mut c = Cluster::build(n, disk, tweak);
        c.start_founders().await;
        c
    }

    /// A cluster of founders `1..=n`, not started yet (set fields, then `start_founders`).
    pub fn build(n: u64, disk: Disk, tweak: fn(&mut Config)) -> Cluster {
        init_tracing();
        Cluster {
            net: {
                // The tests' messages cross as bytes, through the wire encoding.
                let net = ChannelNetwork::new(7);
                net.encode_messages(true);
                net
            },
            nodes: BTreeMap::new(),
            disk,
            dir: tempfile::tempdir().expect("temp dir"),
            founders: (1..=n).collect(),
            tweak,
            apply_delay: Duration::ZERO,
            inline_io: false,
            controls: BTreeMap::new(),
        }
    }

    pub async fn start_founders(&mut self) {
        for id in self.founders.clone() {
            self.start_node(id, true).await;
        }
    }

    /// Starts (or restarts, from its directory with sled) node `id`; `founder` bootstraps
    /// it with the founders' list, otherwise it starts empty to join.
    pub async fn start_node(&mut self, id: NodeId, founder: bool) -> Raft<Recorder> {
        let mut config = Config::new(id);
        (self.tweak)(&mut config);
        let mut options = if founder {
            Options::bootstrap(self.founders.iter().map(|&f| (f, info(f))))
        } else {
            Options::join(self.nodes.keys().map(|&n| (n, info(n))))
        };
        // Short: the last node standing cannot hand leadership to anyone and waits it out.
        options.shutdown_timeout = Duration::from_secs(2);
        options.inline_io = self.inline_io;
        let machine = Recorder { values: Vec::new(), apply_delay: self.apply_delay };
        let transport = self.net.transport(id, info(id));
        let raft = match self.disk {
            Disk::Memory => {
                let (log, snaps) = raft_storage::mem_stores();
                start(config, options, log, snaps, machine, transport).await
            }
            Disk::Controlled => {
                let control = self.controls.entry(id).or_default().clone();
                let (log, snaps) = raft_storage::mem_stores();
                start(config, options, ControlledLog { inner: log, control }, snaps, machine, transport).await
            }
            Disk::Sled => {
                let (log, snaps) = raft_sled::open(self.dir.path().join(format!("node-{id}")), &Default::default())
                    .expect("open sled stores");
                start(config, options, log, snaps, machine, transport).await
            }
        };
        self.nodes.insert(id, raft.clone());
        raft
    }

    pub fn node(&self, id: NodeId) -> &Raft<Recorder> {
        &self.nodes[&id]
    }

    /// Waits until exactly one running node leads and every running node knows it.
    pub async fn leader(&self) -> NodeId {
        let mut found = 0;
        eventually("a leader known to every running node", Duration::from_secs(30), || {
            let running: Vec<_> = self.nodes.values().filter(|n| !n.is_stopped()).collect();
            let leaders: Vec<_> = running.iter().filter(|n| n.status().role == Role::Leader).map(|n| n.id()).collect();
            if let [l] = leaders[..] {
                found = l;
                running.iter().all(|n| n.status().leader == Some(l))
            } else {
                false
            }
        })
        .await;
        found
    }

    /// Proposes `value` at whichever node leads, following `NotLeader` redirections.
    pub async fn propose(&self, value: u64) -> u64 {
        let start = tokio::time::Instant::now();
        let mut at = self.nodes.keys().next().copied().expect("a node");
        loop {
            assert!(start.elapsed() < Duration::from_secs(60), "proposal {value} never succeeded");
            match self.nodes.get(&at).filter(|n| !n.is_stopped()) {
                Some(node) => match node.propose(cmd(value)).await {
                    Ok(pos) => return pos,
                    Err(ProposeError::NotLeader { leader: Some(l), .. }) if self.nodes.contains_key(&l) => at = l,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        at = self.next_after(at);
                    }
                },
                None => at = self.next_after(at),
            }
        }
    }

    fn next_after(&self, id: NodeId) -> NodeId {
        self.nodes.range(id + 1..).next().or_else(|| self.nodes.iter().next()).map(|(id, _)| *id).expect("a node")
    }

    /// The values every running node has applied, once they all hold at least `count`.
    pub async fn converged(&self, count: usize) -> Vec<u64> {
        let mut states = BTreeMap::new();
        let start = tokio::time::Instant::now();
        loop {
            states.clear();
            for (id, n) in self.nodes.iter().filter(|(_, n)| !n.is_stopped()) {
                let values = n.read_with((), raft_tokio::Consistency::Local).await.expect("local read");
                states.insert(*id, values);
            }
            let first = states.values().next().cloned().unwrap_or_default();
            if first.len() >= count && states.values().all(|v| *v == first) {
                return first;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "nodes did not converge on {count} values: {:?}",
                states.iter().map(|(id, v)| (id, v.len())).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn shutdown_all(&self) {
        for n in self.nodes.values().filter(|n| !n.is_stopped()) {
            n.shutdown().await.expect("clean shutdown");
        }
    }
}

async fn start<L: LogStore + 'static, S: SnapshotStore + 'static>(
    config: Config,
    options: Options,
    log: L,
    snaps: S,
    machine: Recorder,
    transport: raft_tokio::ChannelTransport,
) -> Raft<Recorder> {
    Raft::start(config, options, log, snaps, machine, transport).await.expect("node starts")
}

/// Logs to the test output when `RUST_LOG` is set (e.g. `RUST_LOG=raft=debug`).
pub fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}
