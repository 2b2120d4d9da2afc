//! The test harness: nodes over QUIC on 127.0.0.1, with in-memory stores and the
//! transport suite's state machine (`Journal`), certificates from one development CA.
#![allow(dead_code, missing_docs)]

use bytes::Bytes;
use raft_core::{Config, NodeId, NodeInfo, Role};
use raft_quic::dev_certs::DevCa;
use raft_quic::{QuicOptions, QuicTransport, TlsConfig};
use raft_tokio::{Consistency, Options, ProposeError, Raft};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

pub const CLUSTER: u64 = 0xC1A5_7E57;

/// The longest any wait of a test may take (real time: QUIC runs on the real clock).
pub const PATIENCE: Duration = Duration::from_secs(30);

pub use raft_transport_suite::{init_tracing, Journal, JournalState};

/// Transport options with short timeouts, sized for `config`.
pub fn quic_options(tls: TlsConfig, config: &Config) -> QuicOptions {
    let mut o = QuicOptions::new(CLUSTER, tls);
    o.max_frame_len = raft_quic::frame_limit(config);
    o.connect_timeout = Duration::from_secs(1);
    o.idle_timeout = Duration::from_millis(1500);
    o.keep_alive_interval = Duration::from_millis(300);
    o.backoff_initial = Duration::from_millis(20);
    o.backoff_max = Duration::from_millis(300);
    o
}

pub fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().expect("an address")
}

/// Binds `addr`, retrying for a while if it is still held (a node that just stopped on
/// that port releases it once its connections have closed).
pub async fn bind_retrying(addr: SocketAddr, id: NodeId, options: QuicOptions) -> QuicTransport {
    let start = tokio::time::Instant::now();
    loop {
        match QuicTransport::bind(addr, id, options.clone()) {
            Ok(t) => return t,
            Err(e) => {
                assert!(start.elapsed() < PATIENCE, "cannot bind {addr}: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Waits until `check` holds, polling; panics with `what` after [`PATIENCE`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = tokio::time::Instant::now();
    while !check().await {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub struct Node {
    pub raft: Raft<Journal>,
    pub transport: QuicTransport,
}

/// Nodes of one cluster, all with certificates of `ca`.
pub struct Cluster {
    pub ca: DevCa,
    pub nodes: BTreeMap<NodeId, Node>,
    pub addrs: BTreeMap<NodeId, SocketAddr>,
    pub tweak: fn(&mut Config),
}

pub fn config(id: NodeId, tweak: fn(&mut Config)) -> Config {
    let mut c = Config::new(id);
    tweak(&mut c);
    c
}

pub async fn start_raft(config: Config, options: Options, transport: QuicTransport) -> Raft<Journal> {
    let (log, snaps) = raft_storage::mem_stores();
    let mut options = options;
    options.shutdown_timeout = Duration::from_secs(2);
    Raft::start(config, options, log, snaps, Journal::default(), transport).await.expect("node starts")
}

impl Cluster {
    /// Founders `1..=n`, started.
    pub async fn start(n: u64, tweak: fn(&mut Config)) -> Cluster {
        Cluster::start_on(n, tweak, localhost()).await
    }

    /// [`Cluster::start`] with every transport bound on `bind` (a free port each).
    pub async fn start_on(n: u64, tweak: fn(&mut Config), bind: SocketAddr) -> Cluster {
        init_tracing();
        let mut c =
            Cluster { ca: DevCa::generate().expect("dev CA"), nodes: BTreeMap::new(), addrs: BTreeMap::new(), tweak };
        let mut transports = BTreeMap::new();
        for id in 1..=n {
            let t = c.bind(id, bind).await;
            c.addrs.insert(id, t.local_addr());
            transports.insert(id, t);
        }
        let members = c.members();
        for (id, t) in transports {
            let raft = start_raft(config(id, tweak), Options::bootstrap(members.clone()), t.clone()).await;
            c.nodes.insert(id, Node { raft, transport: t });
        }
        c
    }

    /// Node `id`'s transport with a certificate of the cluster CA, bound to `addr`.
    pub async fn bind(&self, id: NodeId, addr: SocketAddr) -> QuicTransport {
        let tls = self.ca.tls_config(id).expect("node certificate");
        bind_retrying(addr, id, quic_options(tls, &config(id, self.tweak))).await
    }

    pub fn members(&self) -> Vec<(NodeId, NodeInfo)> {
        self.addrs.iter().map(|(&id, a)| (id, info(*a))).collect()
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[&id]
    }

    /// Waits until one of `among` leads and all of them know it.
    pub async fn leader_among(&self, among: &[NodeId]) -> NodeId {
        let mut found = 0;
        eventually("a leader known to the nodes", || {
            let statuses: Vec<_> = among.iter().map(|id| self.nodes[id].raft.status()).collect();
            let leaders: Vec<_> = statuses.iter().filter(|s| s.role == Role::Leader).map(|s| s.id).collect();
            let ok = match leaders[..] {
                [l] if statuses.iter().all(|s| s.leader == Some(l)) => {
                    found = l;
                    true
                }
                _ => false,
            };
            async move { ok }
        })
        .await;
        found
    }

    /// Proposes at `leader`, retrying on `NotLeader` redirections for a while.
    pub async fn propose(&self, among: &[NodeId], data: Bytes) -> u64 {
        let start = tokio::time::Instant::now();
        loop {
            let leader = self.leader_among(among).await;
            match self.nodes[&leader].raft.propose(data.clone()).await {
                Ok(n) => return n,
                Err(ProposeError::NotLeader { .. }) => {}
                Err(e) => panic!("proposal failed: {e}"),
            }
            assert!(start.elapsed() < PATIENCE, "proposal never succeeded");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every node of `ids` applied the same `count` or more commands (their
    /// whole journals, padding included by checksum, agree).
    pub async fn converged(&self, ids: &[NodeId], count: usize) -> JournalState {
        let start = tokio::time::Instant::now();
        loop {
            let mut states = Vec::new();
            for id in ids {
                states.push(self.nodes[id].raft.read_with((), Consistency::Local).await.expect("local read"));
            }
            if states[0].values.len() >= count && states.iter().all(|s| *s == states[0]) {
                return states.swap_remove(0);
            }
            assert!(
                start.elapsed() < PATIENCE,
                "nodes {ids:?} did not converge on {count} commands: {:?}",
                states.iter().map(|s| s.values.len()).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn shutdown(&self) {
        for n in self.nodes.values().filter(|n| !n.raft.is_stopped()) {
            let _ = n.raft.shutdown().await;
        }
    }
}

pub fn info(addr: SocketAddr) -> NodeInfo {
    NodeInfo::new(addr.to_string().into_bytes())
}

/// A suite command of `size` bytes in all: the value `i`, then padding.
pub fn cmd(i: u64, size: usize) -> Bytes {
    raft_transport_suite::command(i, size.saturating_sub(8))
}
