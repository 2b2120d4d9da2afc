//! Counters of what the transport did and refused.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($( $(#[$doc:meta])* $name:ident, )*) => {
        /// A snapshot of a [`crate::QuicTransport`]'s counters (see
        /// [`crate::QuicTransport::metrics`]). Every refusal has its own counter, named by
        /// its reason; none of them changes the node's state.
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct QuicMetrics {
            $( $(#[$doc])* pub $name: u64, )*
        }

        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $( pub(crate) $name: AtomicU64, )*
        }

        impl Counters {
            pub(crate) fn snapshot(&self) -> QuicMetrics {
                QuicMetrics { $( $name: self.$name.load(Ordering::Relaxed), )* }
            }
        }
    };
}

counters! {
    /// Messages handed to a peer's stream.
    messages_sent,
    /// Messages decoded, checked and handed to the node.
    messages_delivered,
    /// Messages dropped because the peer's send queue was full.
    dropped_queue_full,
    /// Messages refused by `send` while the peer was backing off after a failed connect
    /// (or unknown, or its node info is not an address).
    dropped_unreachable,
    /// Messages dropped because their encoding exceeds the frame limit (the receiver would
    /// refuse them).
    dropped_oversized,
    /// Messages lost because their stream failed while they were written.
    dropped_write_failed,
    /// Outgoing connections established.
    connections_opened,
    /// Outgoing connection attempts that failed (unreachable address, handshake refused,
    /// timeout).
    connect_failures,
    /// Established outgoing connections that closed or timed out.
    connections_lost,
    /// Incoming connections accepted (certificate verified, node id bound).
    connections_accepted,
    /// Incoming handshakes that failed (for instance a client certificate that the
    /// cluster CA did not sign).
    handshake_failures,
    /// Client certificates refused by the cluster CA check (incoming connections).
    client_certs_refused,
    /// Server certificates refused when dialling: not signed by the cluster CA, or not
    /// naming the node dialled.
    server_certs_refused,
    /// Incoming connections whose CA-signed certificate names no node, or several.
    identities_refused,
    /// Streams whose preamble names another sender than the peer's certificate, and
    /// messages whose `from` is not the peer's certificate's node id.
    sender_mismatch,
    /// Streams and messages addressed to another node than this one.
    wrong_receiver,
    /// Preambles of another cluster.
    wrong_cluster,
    /// Preambles of another protocol version.
    wrong_protocol_version,
    /// Preambles that are not this protocol (bad magic, length or stream kind), or that
    /// did not arrive in time.
    malformed_preambles,
    /// Frames with a length above the limit (the stream is closed: framing is lost).
    oversized_frames,
    /// Message frames of another core wire version.
    wrong_wire_version,
    /// Message frames that do not decode to a valid message.
    malformed_messages,
    /// Unreachable reports given to the node (`Inbound::unreachable`).
    unreachable_reports,
    /// Snapshots sent and acknowledged by their receiver.
    snapshots_sent,
    /// Snapshot transfers that failed on the sending side.
    snapshot_send_failures,
    /// Snapshots received and staged.
    snapshots_received,
    /// Incoming snapshot streams refused or failed (bad header, wrong sender, staging
    /// failure, broken stream).
    snapshot_receive_failures,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
