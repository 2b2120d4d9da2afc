//! The suite over the in-process channel transport (`raft_tokio::ChannelNetwork`): the
//! reference the network transports are held to.

use raft_core::{NodeId, NodeInfo};
use raft_tokio::{ChannelNetwork, ChannelTransport};
use raft_transport_suite::TransportFactory;

/// Nodes of one channel network, found by their `chan://node-<id>` address.
struct Channels(ChannelNetwork);

impl TransportFactory for Channels {
    type Transport = ChannelTransport;

    async fn create(&self, id: NodeId) -> (ChannelTransport, NodeInfo) {
        let info = NodeInfo::new(format!("chan://node-{id}").into_bytes());
        (self.0.transport(id, info.clone()), info)
    }
}

raft_transport_suite::transport_suite!({
    let net = ChannelNetwork::new(11);
    net.encode_messages(true);
    Channels(net)
});
