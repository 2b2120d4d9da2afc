//! The suite can fail: a transport that loses messages to a dead peer without saying so
//! (its `send` answers `Ok` for a peer that stopped) fails the unreachable scenario.

use raft_core::{Message, NodeId, NodeInfo, SnapshotHeader};
use raft_tokio::{ChannelNetwork, ChannelTransport, Inbound, SnapshotStream, Transport, TransportError};
use raft_transport_suite::TransportFactory;
use std::collections::BTreeMap;

/// The channel transport, except that an unreachable peer is never reported.
struct Mute(ChannelTransport);

impl Transport for Mute {
    fn attach(&self, inbound: Inbound) {
        self.0.attach(inbound)
    }
    fn set_peers(&self, peers: &BTreeMap<NodeId, NodeInfo>) {
        self.0.set_peers(peers)
    }
    fn send(&self, msg: Message) -> Result<(), TransportError> {
        let _ = self.0.send(msg);
        Ok(())
    }
    async fn send_snapshot(&self, header: SnapshotHeader, data: SnapshotStream) -> Result<(), TransportError> {
        self.0.send_snapshot(header, data).await
    }
    fn detach(&self) {
        self.0.detach()
    }
}

struct MuteChannels(ChannelNetwork);

impl TransportFactory for MuteChannels {
    type Transport = Mute;

    async fn create(&self, id: NodeId) -> (Mute, NodeInfo) {
        let info = NodeInfo::new(format!("chan://node-{id}").into_bytes());
        (Mute(self.0.transport(id, info.clone())), info)
    }
}

#[test]
fn a_transport_that_never_reports_a_dead_peer_fails_the_suite() {
    let outcome = std::panic::catch_unwind(|| {
        raft_transport_suite::run(raft_transport_suite::silent_peer_reported_unreachable(MuteChannels(
            ChannelNetwork::new(3),
        )))
    });
    let message = outcome.expect_err("the scenario must fail");
    let text = message
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| message.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(text.contains("never reported it unreachable"), "failed for another reason: {text}");
}
