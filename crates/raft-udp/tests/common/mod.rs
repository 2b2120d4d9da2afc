//! The test harness: clusters of real `raft_tokio::Raft` nodes over UDP on 127.0.0.1 with
//! in-memory stores, running the transport suite's state machine (`Journal`).
#![allow(dead_code, missing_docs)]

use bytes::Bytes;
use raft_core::{Config, NodeId, NodeInfo, Role};
use raft_core::{Message, SnapshotHeader};
use raft_tokio::{Inbound, Options, ProposeError, Raft, SnapshotStream, Transport, TransportError};
use raft_udp::{UdpHandle, UdpMetrics, UdpOptions, UdpTransport};
use std::collections::BTreeMap;
use std::net::UdpSocket;

// Each test file uses some of these.
#[allow(unused_imports)]
pub use raft_transport_suite::{command, eventually, init_tracing, Journal};
use std::time::Duration;

pub fn localhost() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().expect("address")
}

/// A node of a [`Cluster`].
pub struct Node {
    pub raft: Raft<Journal>,
    pub udp: UdpHandle,
}

/// Nodes of one cluster over UDP.
pub struct Cluster {
    pub nodes: BTreeMap<NodeId, Node>,
    pub infos: BTreeMap<NodeId, NodeInfo>,
    pub options: UdpOptions,
    pub tweak: fn(&mut Config),
    /// False: nodes start on [`Unfitted`] transports, which leave the core's limits as
    /// `tweak` set them.
    pub fitted: bool,
}

/// A UDP transport whose `fit_config` accepts every configuration unchanged: the only way
/// to give the core limits its messages cannot fit, to test the guard at send time.
pub struct Unfitted(pub UdpTransport);

impl Transport for Unfitted {
    fn attach(&self, inbound: Inbound) {
        self.0.attach(inbound)
    }

    fn set_peers(&self, peers: &BTreeMap<NodeId, NodeInfo>) {
        self.0.set_peers(peers)
    }

    fn send(&self, msg: Message) -> Result<(), TransportError> {
        self.0.send(msg)
    }

    fn send_snapshot(
        &self,
        header: SnapshotHeader,
        data: SnapshotStream,
    ) -> impl std::future::Future<Output = Result<(), TransportError>> + Send {
        self.0.send_snapshot(header, data)
    }

    fn detach(&self) {
        self.0.detach()
    }
}

impl Cluster {
    /// Founders `1..=n`, each with a transport bound on 127.0.0.1 with `options`.
    pub async fn start(n: u64, options: UdpOptions, tweak: fn(&mut Config)) -> Cluster {
        Cluster::start_with(n, options, tweak, true, localhost()).await
    }

    /// [`Cluster::start`] on [`Unfitted`] transports.
    pub async fn start_unfitted(n: u64, options: UdpOptions, tweak: fn(&mut Config)) -> Cluster {
        Cluster::start_with(n, options, tweak, false, localhost()).await
    }

    /// [`Cluster::start`] with every transport bound on `bind` (a free port each).
    pub async fn start_on(n: u64, options: UdpOptions, bind: std::net::SocketAddr) -> Cluster {
        Cluster::start_with(n, options, |_| {}, true, bind).await
    }

    async fn start_with(
        n: u64,
        options: UdpOptions,
        tweak: fn(&mut Config),
        fitted: bool,
        bind: std::net::SocketAddr,
    ) -> Cluster {
        init_tracing();
        let mut transports = BTreeMap::new();
        for id in 1..=n {
            let t = UdpTransport::bind(bind, options.clone()).await.expect("bind");
            transports.insert(id, t);
        }
        let infos: BTreeMap<NodeId, NodeInfo> = transports.iter().map(|(id, t)| (*id, t.node_info())).collect();
        let mut c = Cluster { nodes: BTreeMap::new(), infos: infos.clone(), options, tweak, fitted };
        for (id, t) in transports {
            let opts = Options::bootstrap(infos.clone());
            c.start_node(id, t, opts).await;
        }
        c
    }

    /// Starts node `id` on transport `t`.
    pub async fn start_node(&mut self, id: NodeId, t: UdpTransport, mut opts: Options) -> &Node {
        // The transport fits the core's limits to a datagram in `Raft::start`.
        let mut config = Config::new(id);
        (self.tweak)(&mut config);
        opts.shutdown_timeout = Duration::from_secs(2);
        let udp = t.handle();
        self.infos.insert(id, t.node_info());
        let (log, snaps) = raft_storage::mem_stores();
        let machine = Journal::default();
        let raft = if self.fitted {
            Raft::start(config, opts, log, snaps, machine, t).await
        } else {
            Raft::start(config, opts, log, snaps, machine, Unfitted(t)).await
        };
        let raft = raft.expect("node starts");
        self.nodes.insert(id, Node { raft, udp });
        &self.nodes[&id]
    }

    /// Starts node `id` empty, to be added by the leader; returns its node info.
    pub async fn start_joiner(&mut self, id: NodeId) -> NodeInfo {
        let t = UdpTransport::bind(localhost(), self.options.clone()).await.expect("bind");
        let info = t.node_info();
        let contacts: Vec<_> = self.infos.iter().map(|(id, i)| (*id, i.clone())).collect();
        self.start_node(id, t, Options::join(contacts)).await;
        info
    }

    pub fn raft(&self, id: NodeId) -> &Raft<Journal> {
        &self.nodes[&id].raft
    }

    /// Waits until exactly one running node leads and every running node knows it.
    pub async fn leader(&self) -> NodeId {
        let mut found = 0;
        eventually("a leader known to every running node", Duration::from_secs(30), || {
            let running: Vec<_> = self.nodes.values().map(|n| &n.raft).filter(|n| !n.is_stopped()).collect();
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

    /// Proposes `data` at whichever node leads, following redirections; bounded in time.
    pub async fn propose(&self, data: Bytes) -> Result<u64, ProposeError> {
        let start = tokio::time::Instant::now();
        let mut at = *self.nodes.keys().next().expect("a node");
        loop {
            assert!(start.elapsed() < Duration::from_secs(30), "a proposal never succeeded");
            match self.raft(at).propose(data.clone()).await {
                Ok(pos) => return Ok(pos),
                Err(ProposeError::NotLeader { leader: Some(l), .. }) if self.nodes.contains_key(&l) => at = l,
                Err(ProposeError::Rejected(e)) if matches!(e, raft_core::ProposalError::TooLarge { .. }) => {
                    return Err(ProposeError::Rejected(e));
                }
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    at = self
                        .nodes
                        .range(at + 1..)
                        .next()
                        .map(|(id, _)| *id)
                        .unwrap_or(*self.nodes.keys().next().expect("a node"));
                }
            }
        }
    }

    /// The values every running node applied, once they all hold at least `count` and
    /// their whole journals (padding included, by checksum) agree.
    pub async fn converged(&self, count: usize) -> Vec<u64> {
        let start = tokio::time::Instant::now();
        loop {
            let mut states = BTreeMap::new();
            for (id, n) in self.nodes.iter().filter(|(_, n)| !n.raft.is_stopped()) {
                let state = n.raft.read_with((), raft_tokio::Consistency::Local).await.expect("local read");
                states.insert(*id, state);
            }
            let first = states.values().next().cloned().expect("a running node");
            if first.values.len() >= count && states.values().all(|s| *s == first) {
                return first.values;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "nodes did not converge on {count} values: {:?}",
                states.iter().map(|(id, s)| (id, s.values.len())).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn shutdown_all(&self) {
        for n in self.nodes.values().filter(|n| !n.raft.is_stopped()) {
            let _ = n.raft.shutdown().await;
        }
    }
}

/// Node 1 running for real, whose configuration names nodes 2 and 3 at the addresses of
/// two plain sockets the test owns, so the test speaks for them.
pub struct Lone {
    pub raft: Raft<Journal>,
    pub udp: UdpHandle,
    pub node: std::net::SocketAddr,
    pub s2: UdpSocket,
    pub s3: UdpSocket,
    /// The configuration's members and their node info.
    pub members: Vec<(NodeId, NodeInfo)>,
}

pub async fn lone(options: UdpOptions) -> Lone {
    init_tracing();
    let s2 = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let s3 = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s2.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
    let t = UdpTransport::bind(localhost(), options.clone()).await.expect("bind");
    let node = t.local_addr();
    let udp = t.handle();
    let members = vec![
        (1, t.node_info()),
        (2, raft_core::NodeInfo::new(s2.local_addr().expect("addr").to_string().into_bytes())),
        (3, raft_core::NodeInfo::new(s3.local_addr().expect("addr").to_string().into_bytes())),
    ];
    let config = raft_core::Config::new(1);
    let (log, snaps) = raft_storage::mem_stores();
    let raft = Raft::start(config, Options::bootstrap(members.clone()), log, snaps, Journal::default(), t)
        .await
        .expect("node starts");
    Lone { raft, udp, node, s2, s3, members }
}

impl Lone {
    /// Sends `bytes` from `socket` and waits until `counter` of the node's metrics grew
    /// to `expect`.
    pub async fn send_and_count(
        &self,
        socket: &UdpSocket,
        bytes: &[u8],
        what: &str,
        counter: fn(&UdpMetrics) -> u64,
        expect: u64,
    ) {
        socket.send_to(bytes, self.node).expect("send");
        eventually(what, Duration::from_secs(5), || counter(&self.udp.metrics()) == expect).await;
    }

    pub fn term_and_leader(&self) -> (u64, Option<NodeId>) {
        let s = self.raft.status();
        (s.term, s.leader)
    }
}
