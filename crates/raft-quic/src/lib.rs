//! # raft-quic: a QUIC transport with mutual TLS for raft-tokio
//!
//! [`QuicTransport`] implements `raft_tokio::Transport` over [quinn] with rustls (ring
//! provider). Each node runs one QUIC endpoint that both accepts and dials:
//!
//! - **Identity**: every node holds a certificate signed by the cluster CA that names it
//!   with the DNS name `node-<id>.raft` ([`node_name`]). Dialling node `n` verifies the
//!   server's certificate against the CA and the name `node-<n>.raft`; accepting a
//!   connection requires a client certificate signed by the CA and binds the connection
//!   to the one node id it names. Messages whose sender is not that node are dropped.
//! - **Node info**: a member's node info is its socket address as UTF-8
//!   (`"127.0.0.1:7001"`), see [`QuicTransport::node_info`].
//! - **Connections**: one outgoing connection per peer, opened on the first message,
//!   re-opened after a failure with a capped, jittered exponential backoff. A failed
//!   attempt or a lost connection is reported once with `Inbound::unreachable`; while
//!   backing off, `send` returns `TransportError::Unreachable`.
//! - **Streams**: a "control" stream (votes, heartbeats, responses) and a "bulk" stream
//!   (appends with entries) per connection, so heartbeats never queue behind a large
//!   append; one bidirectional stream per snapshot. Every stream starts with a preamble
//!   (protocol version, cluster id, sender, receiver); frames are a `u32` length and a
//!   `Message::encode()` payload. See `docs/protocol.md` (section 4).
//! - **Refusals** (bad certificates, wrong cluster or version, malformed or oversized
//!   frames, forged senders) are counted in [`QuicMetrics`] and logged; nothing from the
//!   network panics or reaches the node unchecked.
//!
//! ## Example
//!
//! A node with a development CA (feature `dev-certs`); in production build the
//! [`TlsConfig`] with [`TlsConfig::from_pem_files`] and give every node the same CA.
//!
//! ```no_run
//! use raft_quic::{dev_certs::DevCa, QuicOptions, QuicTransport};
//! use raft_core::Config;
//! use raft_tokio::{Options, Raft};
//! # use raft_tokio::{Command, StateMachine};
//! # struct Counter(u64);
//! # impl StateMachine for Counter {
//! #     type Response = u64; type Query = (); type QueryResponse = u64;
//! #     fn apply(&mut self, c: &[Command]) -> Vec<u64> { c.iter().map(|_| { self.0 += 1; self.0 }).collect() }
//! #     fn query(&self, (): ()) -> u64 { self.0 }
//! #     fn snapshot(&mut self, out: &mut dyn std::io::Write) -> std::io::Result<()> { out.write_all(&self.0.to_le_bytes()) }
//! #     fn restore(&mut self, input: &mut dyn std::io::Read) -> std::io::Result<()> {
//! #         let mut b = [0; 8]; input.read_exact(&mut b)?; self.0 = u64::from_le_bytes(b); Ok(()) }
//! # }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let ca = DevCa::generate()?;
//! let addrs = ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"];
//! let members: Vec<_> = (1..=3u64).map(|id| (id, raft_core::NodeInfo::new(addrs[id as usize - 1]))).collect();
//! let id = 1;
//! let mut options = QuicOptions::new(0xC1A5, ca.tls_config(id)?);
//! let config = Config::new(id);
//! options.max_frame_len = raft_quic::frame_limit(&config);
//! let transport = QuicTransport::bind(addrs[0].parse()?, id, options)?;
//! let metrics = transport.clone();
//! let (log, snapshots) = raft_storage::mem_stores();
//! let raft = Raft::start(config, Options::bootstrap(members), log, snapshots, Counter(0), transport).await?;
//! raft.propose(&b"tick"[..]).await?;
//! println!("{:?}", metrics.metrics());
//! # Ok(()) }
//! ```

#[cfg(feature = "dev-certs")]
pub mod dev_certs;
mod frame;
#[doc(hidden)]
pub mod fuzzing;
mod metrics;
mod tls;
mod transport;

pub use frame::{
    decode_frame, decode_preamble, encode_frame, split_frame, FrameError, Preamble, StreamKind, LENGTH_PREFIX, MAGIC,
    MAX_PREAMBLE_FRAME, PREAMBLE_LEN, PROTOCOL_VERSION,
};
pub use metrics::QuicMetrics;
pub use tls::{node_id_of, node_name, parse_node_name, IdentityError, TlsConfig, TlsError, ALPN};
pub use transport::{frame_limit, parse_node_info, QuicError, QuicOptions, QuicTransport};
