//! # raft-udp: a UDP transport for raft-tokio
//!
//! [`UdpTransport`] implements `raft_tokio::Transport` over one UDP socket per node: every
//! Raft message is one datagram, snapshots travel over a chunked, acknowledged path that
//! resumes after loss, and every datagram is checksummed and, with a pre-shared key,
//! authenticated and protected against replay. It is the reference datagram transport:
//! small, with no connection state, and it shows everything a network transport owes the
//! runtime. The wire format is specified in `docs/protocol.md` (section 3).
//!
//! ## Usage
//!
//! ```no_run
//! use raft_core::{Config, NodeInfo};
//! use raft_tokio::{Options, Raft};
//! use raft_udp::{UdpOptions, UdpTransport};
//! # struct Counter(u64);
//! # impl raft_tokio::StateMachine for Counter {
//! #     type Response = u64;
//! #     type Query = ();
//! #     type QueryResponse = u64;
//! #     fn apply(&mut self, c: &[raft_tokio::Command]) -> Vec<u64> { self.0 += c.len() as u64; vec![self.0; c.len()] }
//! #     fn query(&self, (): ()) -> u64 { self.0 }
//! #     fn snapshot(&mut self, out: &mut dyn std::io::Write) -> std::io::Result<()> { out.write_all(&self.0.to_le_bytes()) }
//! #     fn restore(&mut self, input: &mut dyn std::io::Read) -> std::io::Result<()> {
//! #         let mut b = [0u8; 8]; input.read_exact(&mut b)?; self.0 = u64::from_le_bytes(b); Ok(())
//! #     }
//! # }
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Same cluster id and key on every node; the key comes from your secret store.
//! let options = UdpOptions::new(0xC1A5_7E12).with_key([0x42; 32]);
//! let transport = UdpTransport::bind("10.0.0.1:7001".parse()?, options.clone()).await?;
//!
//! // Node info is each member's address as text; every founder is given the same list.
//! let members = vec![
//!     (1, transport.node_info()), // "10.0.0.1:7001"
//!     (2, NodeInfo::new(&b"10.0.0.2:7001"[..])),
//!     (3, NodeInfo::new(&b"10.0.0.3:7001"[..])),
//! ];
//! // `Raft::start` has the transport fit the core's limits: every message fits a datagram.
//! let config = Config::new(1);
//! let (log, snapshots) = raft_storage::mem_stores();
//! let raft = Raft::start(config, Options::bootstrap(members), log, snapshots, Counter(0), transport).await?;
//! raft.propose(&b"increment"[..]).await?;
//! # Ok(()) }
//! ```
//!
//! ## What it guarantees
//!
//! - **Nothing from the network panics the process or changes state unless valid.** A
//!   datagram is checked by [`decode_frame`] (magic, version, size, CRC-32, cluster id,
//!   MAC with a key, body structure), then by the transport (the sender's address, the replay
//!   window, the message's own sender and receiver), then by the core's decoder. A
//!   datagram failing any check is dropped, counted under its reason in [`UdpMetrics`],
//!   and logged: a warning at most once per second per reason (the rest at `debug`), so a
//!   flood of junk cannot flood the log.
//! - **`send` never waits.** A message is encoded into one datagram and handed to the
//!   socket without blocking; a full socket buffer drops it (counted in `send_failed`).
//!   Raft tolerates loss, duplication and reordering.
//! - **Messages fit one datagram**: `Raft::start` calls the transport's
//!   `Transport::fit_config`, which applies [`fit_config`] with the transport's options
//!   (see [`fitted_limits`] for the arithmetic). A message that does not fit anyway (a
//!   wrapper that skipped it) is dropped and counted (`send_too_large`), never split.
//! - **Snapshots** of any size travel in chunks with a window, cumulative acks and resume
//!   from the acknowledged offset; `send_snapshot` resolves once the receiver staged the
//!   snapshot durably, or fails after `snapshot_stall_timeout` without progress. Memory is
//!   bounded on both sides by the window, and incoming transfers by
//!   `max_incoming_snapshots`.
//! - **A silent peer is reported.** When this node has been sending to a peer for
//!   `silence_timeout` without receiving any valid datagram from it, `send` returns
//!   `TransportError::Unreachable` (at most once per `silence_timeout`; the datagram is
//!   still sent), and so does a send the system refused (ICMP unreachable surfaced as
//!   `ECONNREFUSED`, on systems that report it for unconnected sockets; Linux does not,
//!   so silence is the mechanism that always works). The runtime hands the report to the
//!   core, which probes the peer again.
//!
//! ## Authentication, and what a shared key does not give
//!
//! With `UdpOptions::key`, every datagram carries a 128-bit MAC (keyed BLAKE3 over the
//! whole frame) and a (session, counter) pair checked against a per-sender sliding
//! window of 4096 counters, as IPsec and WireGuard do: forged and replayed datagrams are
//! dropped. The session is the sender's start time in nanoseconds, so a restarted node's
//! datagrams supersede its old ones and old ones cannot be replayed. Datagrams are
//! authenticated, not encrypted: anyone on the path can read the log's contents.
//!
//! The sender id in a frame is bound to its source: a datagram claiming a member's id
//! from another address than that member's node info is dropped, and the message inside
//! must name the frame's sender. But **one cluster-wide key gives no per-node identity**:
//! any holder of the key can sign datagrams claiming any member's id, and with a forged
//! source address (possible on many networks) impersonate that member. A key keeps out
//! hosts without it; it does not protect members from each other. Per-node identity needs
//! per-node credentials, e.g. QUIC with mutual TLS. Without a key, anyone who can send
//! to the port can inject messages: use it only on a trusted network.
//!
//! ## Running a cluster across machines
//!
//! Open one UDP port per node (both directions, between all members). Bind each node to
//! the address its peers reach it at (not `0.0.0.0` on multi-homed hosts: the source
//! address of its datagrams must equal its node info, or set `UdpOptions::advertise`
//! and make sure it is). Give every node the same `cluster_id`, key and `max_datagram`,
//! and distribute the key like any secret (a file readable by the service only, or a
//! secret manager); changing it needs a restart of every node. NodeInfo is the text form
//! of a `SocketAddr` (`"10.0.0.2:7001"`, `"[fd00::2]:7001"`); host names are not resolved.

mod frame;
#[doc(hidden)]
pub mod fuzzing;
mod limits;
mod metrics;
mod options;
mod replay;
mod snapshot;
mod transport;

pub use frame::{
    decode_frame, encode_frame, encode_message_frame, Body, Envelope, Frame, FrameError, Kind, CRC_LEN, FRAME_VERSION,
    HEADER_LEN, MAC_LEN, MAGIC, MAX_OVERHEAD,
};
pub use limits::{
    fit_config, fitted_limits, FitError, APPEND_OVERHEAD, DEFAULT_MAX_DATAGRAM, ENTRY_OVERHEAD, MAX_UDP_PAYLOAD,
    MIN_NODE_INFO_BYTES,
};
pub use metrics::UdpMetrics;
pub use options::UdpOptions;
pub use replay::{ReplayWindow, WINDOW as REPLAY_WINDOW};
pub use transport::{parse_node_info, UdpHandle, UdpTransport};
