//! The shared transport suite (`raft-transport-suite`) over UDP on 127.0.0.1, without and
//! with a pre-shared key.

use raft_core::{NodeId, NodeInfo};
use raft_transport_suite::TransportFactory;
use raft_udp::{UdpOptions, UdpTransport};
use std::time::Duration;

/// Binds each node's transport on a free loopback port.
struct Udp(UdpOptions);

impl Udp {
    fn new(key: Option<[u8; 32]>) -> Self {
        let mut o = UdpOptions::new(0x5017E);
        o.key = key;
        // The suite's silent-peer scenario allows 15 s; report well within it.
        o.silence_timeout = Duration::from_millis(500);
        Udp(o)
    }
}

impl TransportFactory for Udp {
    type Transport = UdpTransport;

    async fn create(&self, _id: NodeId) -> (UdpTransport, NodeInfo) {
        let t = UdpTransport::bind("127.0.0.1:0".parse().expect("address"), self.0.clone()).await.expect("bind");
        let info = t.node_info();
        // No `tweak`: the transport fits the core's limits itself when the node starts.
        (t, info)
    }
}

mod plain {
    raft_transport_suite::transport_suite!(super::Udp::new(None));
}

mod authenticated {
    raft_transport_suite::transport_suite!(super::Udp::new(Some([0xA7; 32])));
}
