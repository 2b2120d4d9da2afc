//! The transport's settings.

use crate::frame::{CHUNK_PREFIX, MAX_OVERHEAD};
use crate::limits::{DEFAULT_MAX_DATAGRAM, MAX_UDP_PAYLOAD};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// How a [`crate::UdpTransport`] behaves. Build with [`UdpOptions::new`] and adjust
/// fields; every node of a cluster must use the same `cluster_id`, `key` and
/// `max_datagram` (the others may differ per node).
#[derive(Clone)]
#[non_exhaustive]
pub struct UdpOptions {
    /// Identifies the cluster: frames of another cluster id are dropped (`dropped_wrong_cluster`).
    /// Keeps two clusters on the same hosts and ports from mixing up.
    pub cluster_id: u64,
    /// A pre-shared key: every datagram carries a MAC under it (keyed BLAKE3), and
    /// datagrams without a valid MAC or replayed are dropped. `None`: datagrams carry only
    /// a CRC, and anyone who can send to the port can inject messages. See the crate docs
    /// for what a cluster-wide key does and does not protect.
    pub key: Option<[u8; 32]>,
    /// A peer this node has been sending to without hearing anything from it for this long
    /// is reported unreachable (at most once per this period).
    pub silence_timeout: Duration,
    /// The largest datagram sent or accepted, frame included. At most 65,507 (the IPv4
    /// limit). [`crate::fit_config`] derives the core's limits from it.
    pub max_datagram: usize,
    /// The most members a configuration may have for [`crate::fit_config`]'s guarantee
    /// that a membership entry with every member's address fits one datagram.
    pub max_members: usize,
    /// Snapshot bytes per chunk datagram.
    pub snapshot_chunk_bytes: usize,
    /// Snapshot chunks in flight (sent, not acknowledged) per transfer; the receiver
    /// buffers at most this many chunks out of order per transfer. Keep
    /// `snapshot_chunk_bytes × snapshot_window` well below the socket's receive buffer
    /// (Linux: `net.core.rmem_default`, about 200 KiB), or bursts overflow it.
    pub snapshot_window: usize,
    /// A sender that got no new acknowledgement for this long resends from the last
    /// acknowledged offset.
    pub snapshot_retransmit: Duration,
    /// A transfer without progress for this long fails on both sides.
    pub snapshot_stall_timeout: Duration,
    /// Most incoming snapshot transfers at once; more are refused (the leader retries).
    pub max_incoming_snapshots: usize,
    /// The address to give the cluster as this node's node info, when it differs from the
    /// bound address (e.g. bound to `0.0.0.0`). Peers check that datagrams claiming this
    /// node's id come from it, so it must be the address the node sends from.
    pub advertise: Option<SocketAddr>,
    /// Fault injection for tests: drops every n-th outgoing snapshot datagram (start,
    /// chunks, acks, results). Zero: off.
    #[doc(hidden)]
    pub test_drop_every_nth_snapshot_datagram: u32,
}

impl std::fmt::Debug for UdpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpOptions")
            .field("cluster_id", &self.cluster_id)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("silence_timeout", &self.silence_timeout)
            .field("max_datagram", &self.max_datagram)
            .field("max_members", &self.max_members)
            .field("snapshot_chunk_bytes", &self.snapshot_chunk_bytes)
            .field("snapshot_window", &self.snapshot_window)
            .field("snapshot_retransmit", &self.snapshot_retransmit)
            .field("snapshot_stall_timeout", &self.snapshot_stall_timeout)
            .field("max_incoming_snapshots", &self.max_incoming_snapshots)
            .field("advertise", &self.advertise)
            .finish_non_exhaustive()
    }
}

impl UdpOptions {
    /// Defaults for a LAN: no key, 1 s silence timeout, 65,000-byte datagrams, at most 64
    /// members, 8 KiB snapshot chunks with a window of 8, resend after 100 ms, give up
    /// after 10 s without progress, 2 incoming transfers at once.
    pub fn new(cluster_id: u64) -> Self {
        UdpOptions {
            cluster_id,
            key: None,
            silence_timeout: Duration::from_secs(1),
            max_datagram: DEFAULT_MAX_DATAGRAM,
            max_members: 64,
            snapshot_chunk_bytes: 8 << 10,
            snapshot_window: 8,
            snapshot_retransmit: Duration::from_millis(100),
            snapshot_stall_timeout: Duration::from_secs(10),
            max_incoming_snapshots: 2,
            advertise: None,
            test_drop_every_nth_snapshot_datagram: 0,
        }
    }

    /// The same options with `key` as the pre-shared key.
    pub fn with_key(mut self, key: [u8; 32]) -> Self {
        self.key = Some(key);
        self
    }

    /// Checks the settings fit together (called by `UdpTransport::bind`).
    pub fn validate(&self) -> io::Result<()> {
        let bad = |what: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, format!("invalid UdpOptions: {what}")));
        if self.max_datagram > MAX_UDP_PAYLOAD || self.max_datagram < 1024 {
            return bad("max_datagram must be between 1024 and 65507");
        }
        if self.snapshot_chunk_bytes == 0 || self.snapshot_chunk_bytes + CHUNK_PREFIX + MAX_OVERHEAD > self.max_datagram
        {
            return bad("snapshot_chunk_bytes must be positive and fit max_datagram with its frame");
        }
        if self.snapshot_window == 0 || self.max_incoming_snapshots == 0 || self.max_members == 0 {
            return bad("snapshot_window, max_incoming_snapshots and max_members must be positive");
        }
        if self.silence_timeout.is_zero() || self.snapshot_retransmit.is_zero() || self.snapshot_stall_timeout.is_zero()
        {
            return bad("timeouts must be positive");
        }
        Ok(())
    }
}
