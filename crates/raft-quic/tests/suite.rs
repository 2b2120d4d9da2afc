//! The shared transport suite over QUIC with mutual TLS: every node's certificate comes
//! from one development CA generated for the test.

use raft_core::{NodeId, NodeInfo};
use raft_quic::dev_certs::DevCa;
use raft_quic::{QuicOptions, QuicTransport};
use raft_transport_suite::TransportFactory;
use std::time::Duration;

/// Nodes on 127.0.0.1 (a free port each), with certificates of one CA.
struct Quic {
    ca: DevCa,
}

impl Quic {
    fn new() -> Self {
        Quic { ca: DevCa::generate().expect("a development CA") }
    }
}

impl TransportFactory for Quic {
    type Transport = QuicTransport;

    async fn create(&self, id: NodeId) -> (QuicTransport, NodeInfo) {
        let mut options = QuicOptions::new(0x5417E, self.ca.tls_config(id).expect("a node certificate"));
        // Short enough that a silent peer is noticed within the suite's patience.
        options.idle_timeout = Duration::from_millis(1500);
        options.keep_alive_interval = Duration::from_millis(300);
        options.connect_timeout = Duration::from_secs(1);
        options.backoff_max = Duration::from_millis(500);
        let t = QuicTransport::bind("127.0.0.1:0".parse().expect("an address"), id, options).expect("bound");
        let info = t.node_info();
        (t, info)
    }
}

raft_transport_suite::transport_suite!(Quic::new());
