//! The runtime benchmark over the network transports on loopback: the same three nodes,
//! memory stores and load as the channel figure, with UDP or QUIC between them.

use crate::bench_log::BenchLog;
use crate::{cluster_over, leader_of, load, propose_to, Counter};
use raft_core::NodeId;
use raft_quic::dev_certs::DevCa;
use raft_quic::{QuicOptions, QuicTransport};
use raft_tokio::Raft;
use raft_udp::{UdpOptions, UdpTransport};

/// Proposer counts measured over each transport.
const PROPOSERS: [usize; 2] = [1, 64];

async fn measure(name: &str, secs: f64, nodes: Vec<Raft<Counter>>, proposers: usize) {
    let leader = leader_of(&nodes);
    let l = load(propose_to(leader.clone()), proposers, secs).await;
    println!("{}", l.line(name, proposers));
    for n in &nodes {
        let _ = n.shutdown().await;
    }
}

/// Three nodes over QUIC with mutual TLS (certificates of one development CA).
pub async fn quic(secs: f64) {
    let ca = DevCa::generate().expect("a development CA");
    for p in PROPOSERS {
        let transports = (1..=3)
            .map(|id: NodeId| {
                let options = QuicOptions::new(0xBE_7C, ca.tls_config(id).expect("a node certificate"));
                let t = QuicTransport::bind("127.0.0.1:0".parse().expect("an address"), id, options).expect("bind");
                let info = t.node_info();
                (t, info)
            })
            .collect();
        let nodes =
            cluster_over(false, transports, |_| {}, |_| (BenchLog::new(), raft_storage::MemSnapshotStore::new())).await;
        measure("raft-tokio (mem, QUIC)", secs, nodes, p).await;
    }
}

/// Three nodes over UDP, the core's limits fitted to a datagram; `key` adds the MAC and
/// replay window to every datagram.
pub async fn udp(secs: f64, key: Option<[u8; 32]>) {
    let mut options = UdpOptions::new(0xBE_7D);
    options.key = key;
    let name = if key.is_some() { "raft-tokio (mem, UDP+MAC)" } else { "raft-tokio (mem, UDP)" };
    for p in PROPOSERS {
        let mut transports = Vec::new();
        for _ in 1..=3 {
            let t =
                UdpTransport::bind("127.0.0.1:0".parse().expect("an address"), options.clone()).await.expect("bind");
            let info = t.node_info();
            transports.push((t, info));
        }
        // The transport fits the core's limits to a datagram when each node starts.
        let nodes =
            cluster_over(false, transports, |_| {}, |_| (BenchLog::new(), raft_storage::MemSnapshotStore::new())).await;
        measure(name, secs, nodes, p).await;
    }
}
