//! The transport: one quinn endpoint per node, one outgoing connection per peer, stream
//! readers for incoming connections.

use crate::frame::{
    decode_frame, decode_preamble, split_frame, FrameError, Preamble, StreamKind, LENGTH_PREFIX, MAX_PREAMBLE_FRAME,
};
use crate::metrics::{Counters, QuicMetrics};
use crate::tls::{node_id_of, node_name, TlsConfig, TlsError};
use bytes::{Buf, Bytes, BytesMut};
use quinn::{Connection, Endpoint, RecvStream, SendStream, VarInt};
use raft_core::{Config, Message, NodeId, NodeInfo, SnapshotHeader};
use raft_tokio::{Inbound, SnapshotStream, Transport, TransportError};
use rustls_pki_types::CertificateDer;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;

/// Application close codes (QUIC `CONNECTION_CLOSE` with an application error).
mod close {
    use quinn::VarInt;
    /// The node stopped (detach).
    pub const STOPPED: VarInt = VarInt::from_u32(0);
    /// The peer was refused: identity, cluster, version or preamble.
    pub const REFUSED: VarInt = VarInt::from_u32(1);
    /// A frame longer than the limit: the stream's framing is lost.
    pub const FRAMING: VarInt = VarInt::from_u32(2);
    /// The peer left the configuration.
    pub const REMOVED: VarInt = VarInt::from_u32(3);
    /// The snapshot's source failed; the stream is reset with this code.
    pub const SNAPSHOT_SOURCE: VarInt = VarInt::from_u32(4);
}

/// How long a new stream may take to send its preamble.
const PREAMBLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes taken from a stream at once.
const READ_CHUNK: usize = 64 * 1024;
/// Writes are batched up to this many bytes of frames.
const WRITE_BATCH: usize = 64 * 1024;
/// Most bytes of a snapshot answer (status, length, reason).
const MAX_REPLY: usize = 1 + 4 + MAX_REASON;
/// Longest reason given with a refused snapshot.
const MAX_REASON: usize = 1024;

/// The largest message frame a node with `config` may send: the core's limits on an
/// append (`max_bytes_per_message`, plus one entry of up to `max_entry_bytes` that may
/// exceed it, plus per-entry overhead for `max_entries_per_message` entries) and slack for
/// the header and membership entries.
pub fn frame_limit(config: &Config) -> usize {
    config
        .max_bytes_per_message
        .saturating_add(config.max_entry_bytes)
        .saturating_add(config.max_entries_per_message.saturating_mul(32))
        .saturating_add(config.max_node_info_bytes.saturating_mul(16))
        .saturating_add(64 * 1024)
        .min(u32::MAX as usize)
}

/// Settings of a [`QuicTransport`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct QuicOptions {
    /// The cluster's id: carried in every stream's preamble; streams of another cluster
    /// are refused. Give every cluster its own.
    pub cluster_id: u64,
    /// The node's certificate, key and the cluster CA.
    pub tls: TlsConfig,
    /// Largest message frame sent or accepted (and largest snapshot header). Must be
    /// the same on every node; at least [`frame_limit`] of the nodes' `Config`.
    pub max_frame_len: usize,
    /// Messages queued per peer and stream (control, bulk) before new ones are dropped.
    pub queue_capacity: usize,
    /// How long a connection attempt may take.
    pub connect_timeout: Duration,
    /// A connection that hears nothing for this long is closed (and its peer reported
    /// unreachable).
    pub idle_timeout: Duration,
    /// Keep-alive packets keep an idle connection open (well below `idle_timeout`).
    pub keep_alive_interval: Duration,
    /// First wait after a failed connection attempt; doubled per failure.
    pub backoff_initial: Duration,
    /// Longest wait between connection attempts.
    pub backoff_max: Duration,
    /// Seed of the generator that jitters the backoff (mixed with the node id).
    pub seed: u64,
    /// Sends every message on the bulk stream (one stream, as a single-stream design
    /// would): only for measuring head-of-line blocking against the default.
    #[doc(hidden)]
    pub single_stream: bool,
}

impl QuicOptions {
    /// Defaults for a LAN: frames sized for `Config::new`'s limits, 1024 queued messages
    /// per peer and stream, 3 s connect timeout, 5 s idle timeout with 1 s keep-alives,
    /// backoff from 50 ms to 2 s.
    pub fn new(cluster_id: u64, tls: TlsConfig) -> Self {
        QuicOptions {
            cluster_id,
            tls,
            max_frame_len: frame_limit(&Config::new(1)),
            queue_capacity: 1024,
            connect_timeout: Duration::from_secs(3),
            idle_timeout: Duration::from_secs(5),
            keep_alive_interval: Duration::from_secs(1),
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
            seed: 0x5EED,
            single_stream: false,
        }
    }
}

/// Why a transport could not be bound.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QuicError {
    /// The UDP socket could not be bound (or no tokio runtime is running).
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The TLS material is unusable, or its certificate does not name this node.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// An option is out of range.
    #[error("invalid option: {0}")]
    Options(&'static str),
}

/// What every task of a transport shares.
struct Shared {
    id: NodeId,
    options: QuicOptions,
    client_config: quinn::ClientConfig,
    /// `None` once detached.
    endpoint: Mutex<Option<Endpoint>>,
    inbound: Mutex<Option<Inbound>>,
    counters: Arc<Counters>,
    runtime: tokio::runtime::Handle,
    /// xorshift state for backoff jitter.
    rng: Mutex<u64>,
    detached: AtomicBool,
}

impl Shared {
    fn endpoint(&self) -> Option<Endpoint> {
        self.endpoint.lock().expect("endpoint lock").clone()
    }

    fn inbound(&self) -> Option<Inbound> {
        self.inbound.lock().expect("inbound lock").clone()
    }

    /// Tells the node that `peer` cannot be reached.
    fn report_unreachable(&self, peer: NodeId) {
        if let Some(inbound) = self.inbound() {
            Counters::add(&self.counters.unreachable_reports);
            inbound.unreachable(peer);
        }
    }

    /// The wait before the next attempt after `failures` consecutive failures.
    fn backoff(&self, failures: u32) -> Duration {
        let o = &self.options;
        backoff(o.backoff_initial, o.backoff_max, failures, &mut self.rng.lock().expect("rng lock"))
    }

    fn count_refusal(&self, e: &FrameError) {
        let c = &self.counters;
        Counters::add(match e {
            FrameError::TooLarge { .. } => &c.oversized_frames,
            FrameError::MalformedPreamble(_) => &c.malformed_preambles,
            FrameError::Version { .. } => &c.wrong_protocol_version,
            FrameError::WrongCluster { .. } => &c.wrong_cluster,
            FrameError::MessageVersion { .. } => &c.wrong_wire_version,
            FrameError::MalformedMessage(_) => &c.malformed_messages,
        });
    }
}

/// The wait after `failures` consecutive failures: `initial` doubled per failure after
/// the first, capped at `max`, scaled by a factor in [0.5, 1) drawn from the xorshift
/// state `rng` (never 0).
fn backoff(initial: Duration, max: Duration, failures: u32, rng: &mut u64) -> Duration {
    let base = initial.saturating_mul(1u32 << failures.saturating_sub(1).min(20)).min(max);
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    let permille = 500 + (*rng % 500) as u32;
    base * permille / 1000
}

/// One peer's outgoing side: its address and its connection.
struct Link {
    peer: NodeId,
    addr: SocketAddr,
    state: Mutex<LinkState>,
    /// Held while connecting, so that the streams of a peer share one attempt.
    connecting: tokio::sync::Mutex<()>,
    /// Set when the peer left the configuration: a connection made after is closed.
    removed: AtomicBool,
}

#[derive(Default)]
struct LinkState {
    conn: Option<Connection>,
    /// When the connection was established.
    connected_at: Option<Instant>,
    /// The task reporting the connection's end.
    watcher: Option<AbortHandle>,
    /// Consecutive failures (connection attempts that failed, connections lost soon after
    /// they were made).
    failures: u32,
    /// No attempt before this instant.
    retry_at: Option<Instant>,
}

impl Link {
    fn backing_off(&self, now: Instant) -> bool {
        self.state.lock().expect("link lock").retry_at.is_some_and(|at| now < at)
    }

    /// The open connection, if any; a closed one is taken down (and reported) here.
    fn current(&self, shared: &Shared) -> Option<Connection> {
        let conn = self.state.lock().expect("link lock").conn.clone()?;
        if conn.close_reason().is_none() {
            return Some(conn);
        }
        self.lost(shared, conn.stable_id());
        None
    }

    /// The connection to the peer, connecting if there is none and the backoff allows.
    /// `None` when the peer cannot be reached now.
    async fn connection(self: &Arc<Self>, shared: &Arc<Shared>) -> Option<Connection> {
        if let Some(conn) = self.current(shared) {
            return Some(conn);
        }
        let _attempt = self.connecting.lock().await;
        if let Some(conn) = self.current(shared) {
            return Some(conn);
        }
        if self.backing_off(Instant::now()) || self.is_gone(shared) {
            return None;
        }
        let result = match shared.endpoint() {
            None => return None,
            Some(endpoint) => {
                match endpoint.connect_with(shared.client_config.clone(), self.addr, &node_name(self.peer)) {
                    Ok(connecting) => match tokio::time::timeout(shared.options.connect_timeout, connecting).await {
                        Ok(Ok(conn)) => Ok(conn),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => Err("timed out".to_string()),
                    },
                    Err(e) => Err(e.to_string()),
                }
            }
        };
        match result {
            Ok(conn) if self.is_gone(shared) => {
                // The peer was removed (or the node stopped) while connecting.
                conn.close(close::REMOVED, b"peer removed");
                None
            }
            Ok(conn) => {
                Counters::add(&shared.counters.connections_opened);
                tracing::debug!(target: "raft::quic", node = shared.id, peer = self.peer, addr = %self.addr, "connected");
                // The state is set before the watcher can look at it (it takes the lock).
                let mut state = self.state.lock().expect("link lock");
                state.conn = Some(conn.clone());
                state.connected_at = Some(Instant::now());
                state.retry_at = None;
                let watcher = {
                    let (link, shared, conn) = (self.clone(), shared.clone(), conn.clone());
                    shared.runtime.clone().spawn(async move {
                        let reason = conn.closed().await;
                        tracing::info!(target: "raft::quic", node = shared.id, peer = link.peer, "connection lost: {reason}");
                        link.lost(&shared, conn.stable_id());
                    })
                };
                if let Some(old) = state.watcher.replace(watcher.abort_handle()) {
                    old.abort();
                }
                drop(state);
                Some(conn)
            }
            Err(e) => {
                Counters::add(&shared.counters.connect_failures);
                let wait = {
                    let mut state = self.state.lock().expect("link lock");
                    state.failures = state.failures.saturating_add(1);
                    let wait = shared.backoff(state.failures);
                    state.retry_at = Some(Instant::now() + wait);
                    wait
                };
                tracing::warn!(
                    target: "raft::quic", node = shared.id, peer = self.peer, addr = %self.addr,
                    retry_in = ?wait, "cannot connect: {e}"
                );
                shared.report_unreachable(self.peer);
                None
            }
        }
    }

    /// Whether the peer left the configuration or the node stopped.
    fn is_gone(&self, shared: &Shared) -> bool {
        self.removed.load(Ordering::Acquire) || shared.detached.load(Ordering::Acquire)
    }

    /// The connection `stable_id` ended: forget it, back off if it did not last, and
    /// report the peer unreachable. Only the first call for a connection does anything.
    fn lost(&self, shared: &Shared, stable_id: usize) {
        {
            let mut state = self.state.lock().expect("link lock");
            if state.conn.as_ref().map(Connection::stable_id) != Some(stable_id) {
                return;
            }
            state.conn = None;
            state.watcher = None;
            let now = Instant::now();
            let lasted = state.connected_at.take().map(|at| now.duration_since(at)).unwrap_or_default();
            // A connection that lasted is a new start; one closed at once (the peer
            // refuses us) counts as another failure, so refusals back off too.
            state.failures = if lasted >= shared.options.backoff_max { 1 } else { state.failures.saturating_add(1) };
            state.retry_at = Some(now + shared.backoff(state.failures));
        }
        Counters::add(&shared.counters.connections_lost);
        if !self.is_gone(shared) {
            shared.report_unreachable(self.peer);
        }
    }
}

/// A peer's link with its queues and tasks; dropping it stops them and closes the
/// connection.
struct LinkHandle {
    link: Arc<Link>,
    control: mpsc::Sender<Message>,
    bulk: mpsc::Sender<Message>,
    tasks: Vec<AbortHandle>,
}

impl LinkHandle {
    fn start(shared: &Arc<Shared>, peer: NodeId, addr: SocketAddr) -> LinkHandle {
        let link = Arc::new(Link {
            peer,
            addr,
            state: Mutex::new(LinkState::default()),
            connecting: tokio::sync::Mutex::new(()),
            removed: AtomicBool::new(false),
        });
        let capacity = shared.options.queue_capacity.max(1);
        let (control, control_rx) = mpsc::channel(capacity);
        let (bulk, bulk_rx) = mpsc::channel(capacity);
        let tasks = [(StreamKind::Control, control_rx), (StreamKind::Bulk, bulk_rx)]
            .into_iter()
            .map(|(kind, rx)| shared.runtime.spawn(writer(shared.clone(), link.clone(), kind, rx)).abort_handle())
            .collect();
        LinkHandle { link, control, bulk, tasks }
    }
}

impl Drop for LinkHandle {
    fn drop(&mut self) {
        self.link.removed.store(true, Ordering::Release);
        for t in &self.tasks {
            t.abort();
        }
        let mut state = self.link.state.lock().expect("link lock");
        if let Some(w) = state.watcher.take() {
            w.abort();
        }
        if let Some(conn) = state.conn.take() {
            conn.close(close::REMOVED, b"peer removed");
        }
    }
}

/// Drains one of a peer's queues onto its stream of `kind`, (re)opening the stream on
/// the current connection as needed.
async fn writer(shared: Arc<Shared>, link: Arc<Link>, kind: StreamKind, mut queue: mpsc::Receiver<Message>) {
    let max = shared.options.max_frame_len;
    let mut stream: Option<(usize, SendStream)> = None;
    let mut batch: Vec<u8> = Vec::new();
    while let Some(first) = queue.recv().await {
        batch.clear();
        let mut count = 0u64;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            let start = batch.len();
            batch.extend_from_slice(&[0; LENGTH_PREFIX]);
            msg.encode_into(&mut batch);
            let len = batch.len() - start - LENGTH_PREFIX;
            if len > max {
                batch.truncate(start);
                Counters::add(&shared.counters.dropped_oversized);
                tracing::warn!(
                    target: "raft::quic", node = shared.id, peer = link.peer, kind = msg.body.kind(), len, max,
                    "message exceeds the frame limit, dropped"
                );
            } else {
                batch[start..start + LENGTH_PREFIX].copy_from_slice(&(len as u32).to_le_bytes());
                count += 1;
            }
            if batch.len() < WRITE_BATCH {
                next = queue.try_recv().ok();
            }
        }
        if count == 0 {
            continue;
        }
        let Some(conn) = link.connection(&shared).await else {
            shared.counters.dropped_unreachable.fetch_add(count, Ordering::Relaxed);
            continue;
        };
        if stream.as_ref().map(|(id, _)| *id) != Some(conn.stable_id()) {
            stream = None;
            match open_stream(&shared, &conn, kind, link.peer).await {
                Ok(s) => stream = Some((conn.stable_id(), s)),
                Err(e) => {
                    tracing::debug!(target: "raft::quic", node = shared.id, peer = link.peer, "cannot open a stream: {e}");
                    shared.counters.dropped_write_failed.fetch_add(count, Ordering::Relaxed);
                    continue;
                }
            }
        }
        let Some((_, send)) = stream.as_mut() else { continue };
        match send.write_all(&batch).await {
            Ok(()) => {
                shared.counters.messages_sent.fetch_add(count, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::debug!(target: "raft::quic", node = shared.id, peer = link.peer, "stream write failed: {e}");
                shared.counters.dropped_write_failed.fetch_add(count, Ordering::Relaxed);
                stream = None;
            }
        }
    }
}

/// Opens a unidirectional stream of `kind` and writes its preamble.
async fn open_stream(shared: &Shared, conn: &Connection, kind: StreamKind, peer: NodeId) -> Result<SendStream, String> {
    let mut send = conn.open_uni().await.map_err(|e| e.to_string())?;
    // Heartbeats and votes go before queued bulk data on the same connection.
    let _ = send.set_priority(if kind == StreamKind::Control { 1 } else { 0 });
    let preamble = Preamble { kind, cluster_id: shared.options.cluster_id, from: shared.id, to: peer };
    send.write_all(&preamble.encode()).await.map_err(|e| e.to_string())?;
    Ok(send)
}

struct Inner {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    peers: Mutex<HashMap<NodeId, LinkHandle>>,
    accept_task: Mutex<Option<AbortHandle>>,
}

impl Inner {
    fn stop(&self) {
        self.shared.detached.store(true, Ordering::Release);
        *self.shared.inbound.lock().expect("inbound lock") = None;
        if let Some(task) = self.accept_task.lock().expect("task lock").take() {
            task.abort();
        }
        // Closing the endpoint first gives every connection the "stopped" close code.
        if let Some(endpoint) = self.shared.endpoint.lock().expect("endpoint lock").take() {
            endpoint.close(close::STOPPED, b"node stopped");
        }
        self.peers.lock().expect("peers lock").clear();
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A raft-tokio [`Transport`] over QUIC with mutual TLS. Cheap to clone: clones share the
/// endpoint, so a test or an operator keeps one to read [`QuicTransport::metrics`] after
/// handing another to `Raft::start`.
///
/// Node info: each member's node info is its socket address as UTF-8, for example
/// `127.0.0.1:7001` or `[::1]:7001` (no host names: they would need a resolver on the
/// send path). Members whose node info is not such an address are unreachable.
#[derive(Clone)]
pub struct QuicTransport {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for QuicTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicTransport")
            .field("id", &self.inner.shared.id)
            .field("local_addr", &self.inner.local_addr)
            .finish_non_exhaustive()
    }
}

impl QuicTransport {
    /// Binds node `id`'s endpoint to `addr` (port 0 picks a free port; see
    /// [`QuicTransport::local_addr`]). Must be called inside a tokio runtime. Fails if the
    /// socket cannot be bound, the TLS material is unusable, or its certificate does not
    /// name node `id` (`node-<id>.raft`). Incoming connections are served once the
    /// runtime attaches the transport.
    pub fn bind(addr: SocketAddr, id: NodeId, options: QuicOptions) -> Result<Self, QuicError> {
        let named = options.tls.node_id().map_err(|e| TlsError::Identity { expected: id, reason: e.to_string() })?;
        if named != id {
            return Err(TlsError::Identity { expected: id, reason: format!("it names node {named}") }.into());
        }
        Self::bind_unchecked(addr, id, options)
    }

    /// As [`QuicTransport::bind`] without checking that the certificate names node `id`:
    /// for tests of how peers refuse such a node.
    #[doc(hidden)]
    pub fn bind_unchecked(addr: SocketAddr, id: NodeId, options: QuicOptions) -> Result<Self, QuicError> {
        if id == 0 {
            return Err(QuicError::Options("node id 0 is reserved"));
        }
        if options.max_frame_len < LENGTH_PREFIX || options.max_frame_len > u32::MAX as usize {
            return Err(QuicError::Options("max_frame_len must fit a u32 length prefix"));
        }
        if options.keep_alive_interval.is_zero() || options.keep_alive_interval >= options.idle_timeout {
            return Err(QuicError::Options("need 0 < keep_alive_interval < idle_timeout"));
        }
        if options.backoff_initial.is_zero() || options.backoff_max < options.backoff_initial {
            return Err(QuicError::Options("need 0 < backoff_initial <= backoff_max"));
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| QuicError::Bind { addr, source: std::io::Error::other(e.to_string()) })?;
        let counters = Arc::new(Counters::default());
        let mut transport = quinn::TransportConfig::default();
        transport
            .max_idle_timeout(Some(
                quinn::IdleTimeout::try_from(options.idle_timeout)
                    .map_err(|_| QuicError::Options("idle_timeout too long"))?,
            ))
            .keep_alive_interval(Some(options.keep_alive_interval))
            // Two message streams and a few snapshots per connection; a peer cannot open more.
            .max_concurrent_uni_streams(VarInt::from_u32(4))
            .max_concurrent_bidi_streams(VarInt::from_u32(4));
        let transport = Arc::new(transport);
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(options.tls.server_config(counters.clone())?));
        server.transport_config(transport.clone()).max_incoming(256);
        let mut client_config = quinn::ClientConfig::new(Arc::new(options.tls.client_config(counters.clone())?));
        client_config.transport_config(transport);
        let endpoint = {
            let _guard = runtime.enter();
            Endpoint::server(server, addr).map_err(|source| QuicError::Bind { addr, source })?
        };
        let local_addr = endpoint.local_addr().map_err(|source| QuicError::Bind { addr, source })?;
        let seed = options.seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let shared = Arc::new(Shared {
            id,
            options,
            client_config,
            endpoint: Mutex::new(Some(endpoint)),
            inbound: Mutex::new(None),
            counters,
            runtime,
            rng: Mutex::new(seed | 1),
            detached: AtomicBool::new(false),
        });
        Ok(QuicTransport {
            inner: Arc::new(Inner {
                shared,
                local_addr,
                peers: Mutex::new(HashMap::new()),
                accept_task: Mutex::new(None),
            }),
        })
    }

    /// The address the endpoint is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// The node info to record for this node: [`QuicTransport::local_addr`] as UTF-8.
    pub fn node_info(&self) -> NodeInfo {
        NodeInfo::new(self.inner.local_addr.to_string().into_bytes())
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.inner.shared.id
    }

    /// The counters so far.
    pub fn metrics(&self) -> QuicMetrics {
        self.inner.shared.counters.snapshot()
    }

    /// Opens a connection to node `peer` at `addr` with this node's certificate and
    /// nothing else: for tests that write raw bytes at a node.
    #[doc(hidden)]
    pub async fn raw_connection(&self, peer: NodeId, addr: SocketAddr) -> Result<Connection, String> {
        let shared = &self.inner.shared;
        let endpoint = shared.endpoint().ok_or("the transport is closed")?;
        let connecting =
            endpoint.connect_with(shared.client_config.clone(), addr, &node_name(peer)).map_err(|e| e.to_string())?;
        connecting.await.map_err(|e| e.to_string())
    }

    /// Stops the transport as [`Transport::detach`] does: closes every connection and
    /// the endpoint. The UDP port is released once the closes have been sent.
    pub fn close(&self) {
        self.inner.stop();
    }
}

/// The socket address a node info names, if it is one.
pub fn parse_node_info(info: &NodeInfo) -> Option<SocketAddr> {
    std::str::from_utf8(info.as_bytes()).ok()?.trim().parse().ok()
}

impl Transport for QuicTransport {
    /// Refuses a configuration whose largest message ([`frame_limit`]) would not fit
    /// `max_frame_len`: such appends would be refused by every receiver, forever. The
    /// limits are left as they are (which one to lower is the operator's choice).
    fn fit_config(&self, config: &mut Config) -> Result<(), String> {
        let (needed, max) = (frame_limit(config), self.inner.shared.options.max_frame_len);
        if needed > max {
            return Err(format!(
                "messages under this config need frames of up to {needed} bytes, but max_frame_len is {max}: \
                 set QuicOptions::max_frame_len to raft_quic::frame_limit(&config) on every node, or lower the config's limits"
            ));
        }
        Ok(())
    }

    fn attach(&self, inbound: Inbound) {
        let shared = &self.inner.shared;
        if shared.detached.load(Ordering::Acquire) {
            return;
        }
        *shared.inbound.lock().expect("inbound lock") = Some(inbound);
        let Some(endpoint) = shared.endpoint() else { return };
        let task = shared.runtime.spawn(accept_loop(shared.clone(), endpoint));
        if let Some(old) = self.inner.accept_task.lock().expect("task lock").replace(task.abort_handle()) {
            old.abort();
        }
    }

    fn set_peers(&self, peers: &BTreeMap<NodeId, NodeInfo>) {
        let shared = &self.inner.shared;
        if shared.detached.load(Ordering::Acquire) {
            return;
        }
        let mut links = self.inner.peers.lock().expect("peers lock");
        let mut next = HashMap::with_capacity(peers.len());
        for (&id, info) in peers {
            if id == shared.id {
                continue;
            }
            let Some(addr) = parse_node_info(info) else {
                tracing::warn!(
                    target: "raft::quic", node = shared.id, peer = id, info = ?info.as_bytes(),
                    "node info is not a socket address; the peer is unreachable"
                );
                continue;
            };
            match links.remove(&id) {
                Some(link) if link.link.addr == addr => {
                    next.insert(id, link);
                }
                _ => {
                    next.insert(id, LinkHandle::start(shared, id, addr));
                }
            }
        }
        // Links of peers that left (or moved) are dropped here: tasks stop, connections close.
        *links = next;
    }

    fn send(&self, msg: Message) -> Result<(), TransportError> {
        let shared = &self.inner.shared;
        let to = msg.to;
        let links = self.inner.peers.lock().expect("peers lock");
        let Some(link) = links.get(&to).filter(|l| !l.link.backing_off(Instant::now())) else {
            Counters::add(&shared.counters.dropped_unreachable);
            return Err(TransportError::Unreachable(to));
        };
        let queue = match StreamKind::for_message(&msg) {
            _ if shared.options.single_stream => &link.bulk,
            StreamKind::Bulk => &link.bulk,
            _ => &link.control,
        };
        match queue.try_send(msg) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(m)) => {
                Counters::add(&shared.counters.dropped_queue_full);
                tracing::debug!(target: "raft::quic", node = shared.id, peer = to, kind = m.body.kind(), "send queue full, message dropped");
                Ok(())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(TransportError::Unreachable(to)),
        }
    }

    async fn send_snapshot(&self, header: SnapshotHeader, data: SnapshotStream) -> Result<(), TransportError> {
        let shared = self.inner.shared.clone();
        let to = header.to;
        let link = self.inner.peers.lock().expect("peers lock").get(&to).map(|l| l.link.clone());
        let Some(link) = link else { return Err(TransportError::Unreachable(to)) };
        let Some(conn) = link.connection(&shared).await else { return Err(TransportError::Unreachable(to)) };
        let result = stream_snapshot(&shared, &conn, header, data).await;
        match &result {
            Ok(()) => Counters::add(&shared.counters.snapshots_sent),
            Err(e) => {
                Counters::add(&shared.counters.snapshot_send_failures);
                tracing::warn!(target: "raft::quic", node = shared.id, peer = to, "snapshot transfer failed: {e}");
            }
        }
        result
    }

    fn detach(&self) {
        self.inner.stop();
    }
}

/// Writes the preamble, the header and the snapshot's bytes on a new bidirectional
/// stream, then waits for the receiver's answer.
async fn stream_snapshot(
    shared: &Shared,
    conn: &Connection,
    header: SnapshotHeader,
    mut data: SnapshotStream,
) -> Result<(), TransportError> {
    let failed = |what: &str, e: &dyn std::fmt::Display| TransportError::Snapshot(format!("{what}: {e}"));
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| failed("cannot open a stream", &e))?;
    let _ = send.set_priority(-1);
    let preamble =
        Preamble { kind: StreamKind::Snapshot, cluster_id: shared.options.cluster_id, from: shared.id, to: header.to };
    send.write_all(&preamble.encode()).await.map_err(|e| failed("write failed", &e))?;
    send.write_all(&header.encode()).await.map_err(|e| failed("write failed", &e))?;
    while let Some(chunk) = data.next().await {
        match chunk {
            Ok(bytes) => send.write_chunk(bytes).await.map_err(|e| failed("write failed", &e))?,
            Err(e) => {
                let _ = send.reset(close::SNAPSHOT_SOURCE);
                return Err(failed("reading the snapshot failed", &e));
            }
        }
    }
    send.finish().map_err(|e| failed("finish failed", &e))?;
    let reply = recv.read_to_end(MAX_REPLY).await.map_err(|e| failed("no answer", &e))?;
    decode_reply(&reply).map_err(TransportError::Snapshot)
}

/// The receiver's answer to a snapshot: `[0]` staged, or `[1][u32 LE length][reason]`.
fn encode_reply(result: &Result<(), String>) -> Vec<u8> {
    match result {
        Ok(()) => vec![0],
        Err(reason) => {
            let mut end = reason.len().min(MAX_REASON);
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            let mut out = vec![1];
            out.extend_from_slice(&(end as u32).to_le_bytes());
            out.extend_from_slice(&reason.as_bytes()[..end]);
            out
        }
    }
}

/// Reads an answer written by [`encode_reply`]; anything else is a failure.
pub(crate) fn decode_reply(reply: &[u8]) -> Result<(), String> {
    match reply {
        [0] => Ok(()),
        [1, len @ ..] if len.len() >= 4 => {
            let n = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
            let reason = len.get(4..4 + n).map(String::from_utf8_lossy).unwrap_or_default();
            Err(format!("refused by the receiver: {reason}"))
        }
        _ => Err("malformed answer from the receiver".into()),
    }
}

async fn accept_loop(shared: Arc<Shared>, endpoint: Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        if shared.detached.load(Ordering::Acquire) {
            incoming.refuse();
            break;
        }
        shared.runtime.spawn(serve_connection(shared.clone(), incoming));
    }
}

/// Completes an incoming handshake, binds the connection to the node its certificate
/// names, and serves its streams.
async fn serve_connection(shared: Arc<Shared>, incoming: quinn::Incoming) {
    let remote = incoming.remote_address();
    let conn = match incoming.await {
        Ok(conn) => conn,
        Err(e) => {
            Counters::add(&shared.counters.handshake_failures);
            tracing::warn!(target: "raft::quic", node = shared.id, %remote, "incoming handshake failed: {e}");
            return;
        }
    };
    let identity = conn
        .peer_identity()
        .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
        .ok_or(crate::tls::IdentityError::NoCertificate)
        .and_then(|certs| certs.first().map(node_id_of).unwrap_or(Err(crate::tls::IdentityError::NoCertificate)));
    let peer = match identity {
        Ok(peer) => peer,
        Err(e) => {
            Counters::add(&shared.counters.identities_refused);
            tracing::warn!(target: "raft::quic", node = shared.id, %remote, "connection refused: {e}");
            conn.close(close::REFUSED, b"certificate names no single node");
            return;
        }
    };
    Counters::add(&shared.counters.connections_accepted);
    tracing::debug!(target: "raft::quic", node = shared.id, peer, %remote, "accepted a connection");
    loop {
        tokio::select! {
            uni = conn.accept_uni() => match uni {
                Ok(recv) => { shared.runtime.spawn(read_messages(shared.clone(), conn.clone(), peer, recv)); }
                Err(_) => break,
            },
            bi = conn.accept_bi() => match bi {
                Ok((send, recv)) => { shared.runtime.spawn(receive_snapshot(shared.clone(), conn.clone(), peer, send, recv)); }
                Err(_) => break,
            },
        }
    }
}

/// Why a stream was refused at its preamble.
enum Refusal {
    /// The stream ended or failed before its preamble: nothing to count.
    Closed,
    /// Counted and logged; the connection is closed.
    Refused,
}

/// Reads and checks a stream's preamble (into `buf`, which keeps what follows it). A
/// refused peer's connection is closed: a correct peer never sends a bad preamble.
async fn read_preamble(
    shared: &Shared,
    conn: &Connection,
    peer: NodeId,
    recv: &mut RecvStream,
    buf: &mut BytesMut,
    expect: fn(StreamKind) -> bool,
) -> Result<Preamble, Refusal> {
    let read = async {
        loop {
            match split_frame(buf, MAX_PREAMBLE_FRAME) {
                Ok(Some(payload)) => return Some(decode_preamble(&payload, shared.options.cluster_id)),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
            match recv.read_chunk(READ_CHUNK, true).await {
                Ok(Some(chunk)) => buf.extend_from_slice(&chunk.bytes),
                Ok(None) | Err(_) => return None,
            }
        }
    };
    let outcome = match tokio::time::timeout(PREAMBLE_TIMEOUT, read).await {
        Ok(Some(decoded)) => decoded.map_err(|e| {
            shared.count_refusal(&e);
            e.to_string()
        }),
        Ok(None) => return Err(Refusal::Closed),
        Err(_) => {
            Counters::add(&shared.counters.malformed_preambles);
            Err("no preamble in time".to_string())
        }
    };
    let checked = outcome.and_then(|p| {
        if p.from != peer {
            Counters::add(&shared.counters.sender_mismatch);
            Err(format!("preamble claims node {} but the certificate names node {peer}", p.from))
        } else if p.to != shared.id {
            Counters::add(&shared.counters.wrong_receiver);
            Err(format!("preamble addressed to node {}", p.to))
        } else if !expect(p.kind) {
            Counters::add(&shared.counters.malformed_preambles);
            Err(format!("a {:?} preamble on the wrong kind of stream", p.kind))
        } else {
            Ok(p)
        }
    });
    checked.map_err(|reason| {
        tracing::warn!(target: "raft::quic", node = shared.id, peer, remote = %conn.remote_address(), "stream refused: {reason}");
        conn.close(close::REFUSED, reason.as_bytes());
        Refusal::Refused
    })
}

/// Reads a message stream: preamble, then frames, each decoded, checked against the
/// connection's node id and delivered.
async fn read_messages(shared: Arc<Shared>, conn: Connection, peer: NodeId, mut recv: RecvStream) {
    let mut buf = BytesMut::new();
    let uni = |k: StreamKind| matches!(k, StreamKind::Control | StreamKind::Bulk);
    if read_preamble(&shared, &conn, peer, &mut recv, &mut buf, uni).await.is_err() {
        return;
    }
    let Some(inbound) = shared.inbound() else { return };
    let max = shared.options.max_frame_len;
    loop {
        loop {
            let payload = match split_frame(&mut buf, max) {
                Ok(Some(payload)) => payload,
                Ok(None) => break,
                Err(e) => {
                    shared.count_refusal(&e);
                    tracing::warn!(target: "raft::quic", node = shared.id, peer, "closing the connection: {e}");
                    conn.close(close::FRAMING, b"frame too large");
                    return;
                }
            };
            if deliver(&shared, &inbound, peer, &payload).is_err() {
                return;
            }
        }
        match recv.read_chunk(READ_CHUNK, true).await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk.bytes),
            Ok(None) | Err(_) => return,
        }
    }
}

/// Decodes and checks one message frame from `peer` and hands it to the node; bad frames
/// are counted and dropped. Fails only once the node stopped.
fn deliver(shared: &Shared, inbound: &Inbound, peer: NodeId, payload: &Bytes) -> Result<(), raft_tokio::NodeStopped> {
    let msg = match decode_frame(payload, shared.options.max_frame_len) {
        Ok(msg) => msg,
        Err(e) => {
            shared.count_refusal(&e);
            tracing::warn!(target: "raft::quic", node = shared.id, peer, "frame dropped: {e}");
            return Ok(());
        }
    };
    if msg.from != peer {
        Counters::add(&shared.counters.sender_mismatch);
        tracing::warn!(target: "raft::quic", node = shared.id, peer, from = msg.from, "message from another node than the certificate names, dropped");
        return Ok(());
    }
    if msg.to != shared.id {
        Counters::add(&shared.counters.wrong_receiver);
        tracing::warn!(target: "raft::quic", node = shared.id, peer, to = msg.to, "message for another node, dropped");
        return Ok(());
    }
    Counters::add(&shared.counters.messages_delivered);
    inbound.deliver(msg)
}

/// Serves a snapshot stream: preamble, header, bytes; answers whether it was staged.
async fn receive_snapshot(
    shared: Arc<Shared>,
    conn: Connection,
    peer: NodeId,
    mut send: SendStream,
    mut recv: RecvStream,
) {
    let mut buf = BytesMut::new();
    if read_preamble(&shared, &conn, peer, &mut recv, &mut buf, |k| k == StreamKind::Snapshot).await.is_err() {
        return;
    }
    let result = receive_snapshot_body(&shared, peer, recv, buf).await;
    match &result {
        Ok(()) => Counters::add(&shared.counters.snapshots_received),
        Err(e) => {
            Counters::add(&shared.counters.snapshot_receive_failures);
            tracing::warn!(target: "raft::quic", node = shared.id, peer, "incoming snapshot refused: {e}");
        }
    }
    if send.write_all(&encode_reply(&result)).await.is_ok() {
        let _ = send.finish();
        // Wait until the peer has read the answer (or the connection ends), so that
        // dropping the stream cannot cut it off.
        let _ = send.stopped().await;
    }
}

/// Reads from `recv` into `buf` until it holds at least `want` bytes.
async fn fill(buf: &mut BytesMut, want: usize, recv: &mut RecvStream) -> Result<(), String> {
    while buf.len() < want {
        match recv.read_chunk(READ_CHUNK, true).await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk.bytes),
            Ok(None) => return Err("the stream ended inside the header".into()),
            Err(e) => return Err(format!("read failed: {e}")),
        }
    }
    Ok(())
}

async fn receive_snapshot_body(
    shared: &Shared,
    peer: NodeId,
    mut recv: RecvStream,
    mut buf: BytesMut,
) -> Result<(), String> {
    let max = shared.options.max_frame_len;
    fill(&mut buf, SnapshotHeader::PREFIX_LEN, &mut recv).await?;
    let mut prefix = [0u8; SnapshotHeader::PREFIX_LEN];
    prefix.copy_from_slice(&buf[..SnapshotHeader::PREFIX_LEN]);
    let len = SnapshotHeader::body_len(&prefix, max).map_err(|e| format!("bad header: {e}"))?;
    fill(&mut buf, SnapshotHeader::PREFIX_LEN + len, &mut recv).await?;
    let (header, used) = SnapshotHeader::decode(&buf, max).map_err(|e| format!("bad header: {e}"))?;
    buf.advance(used);
    if header.from != peer {
        Counters::add(&shared.counters.sender_mismatch);
        return Err(format!("header names sender {} but the certificate names node {peer}", header.from));
    }
    if header.to != shared.id {
        Counters::add(&shared.counters.wrong_receiver);
        return Err(format!("header addressed to node {}", header.to));
    }
    let inbound = shared.inbound().ok_or_else(|| "the node has stopped".to_string())?;
    let (sink, stream) = SnapshotStream::channel(4);
    let pump = async move {
        if !buf.is_empty() && sink.send(buf.freeze()).await.is_err() {
            return;
        }
        loop {
            match recv.read_chunk(READ_CHUNK, true).await {
                Ok(Some(chunk)) => {
                    if sink.send(chunk.bytes).await.is_err() {
                        return;
                    }
                }
                Ok(None) => {
                    sink.finish().await;
                    return;
                }
                Err(e) => {
                    sink.fail(std::io::Error::other(format!("snapshot stream broke off: {e}"))).await;
                    return;
                }
            }
        }
    };
    let ((), staged) = tokio::join!(pump, inbound.receive_snapshot(header, stream));
    staged.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_round_trip() {
        assert_eq!(decode_reply(&encode_reply(&Ok(()))), Ok(()));
        let long = "é".repeat(MAX_REASON);
        let Err(reason) = decode_reply(&encode_reply(&Err(long))) else { panic!("a refusal") };
        assert!(reason.len() <= MAX_REASON + 40);
        assert!(decode_reply(&[]).is_err());
        assert!(decode_reply(&[1, 200, 0, 0, 0]).is_err());
        assert!(decode_reply(&[7]).is_err());
    }

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let (initial, max) = (Duration::from_millis(50), Duration::from_secs(2));
        let mut rng = 0x5EED | 1;
        let mut distinct = std::collections::BTreeSet::new();
        for failures in 1..40u32 {
            let base = (initial * 2u32.pow(failures.min(20) - 1)).min(max);
            let wait = backoff(initial, max, failures, &mut rng);
            assert!(wait >= base / 2 && wait < base, "failure {failures}: {wait:?} outside [{:?}, {base:?})", base / 2);
            distinct.insert(wait);
        }
        assert!(distinct.len() > 20, "the jitter varies: {distinct:?}");
        let (mut a, mut b) = (7u64, 7u64);
        assert_eq!(backoff(initial, max, 3, &mut a), backoff(initial, max, 3, &mut b), "same seed, same wait");
    }

    #[test]
    fn node_info_is_a_socket_address() {
        assert_eq!(parse_node_info(&NodeInfo::new(&b"127.0.0.1:7001"[..])), Some("127.0.0.1:7001".parse().unwrap()));
        assert_eq!(parse_node_info(&NodeInfo::new(&b"[::1]:7001"[..])), Some("[::1]:7001".parse().unwrap()));
        assert_eq!(parse_node_info(&NodeInfo::new(&b"localhost:7001"[..])), None);
        assert_eq!(parse_node_info(&NodeInfo::new(&b"\xff"[..])), None);
    }

    #[test]
    fn frame_limit_covers_a_full_append() {
        let c = Config::new(1);
        assert!(frame_limit(&c) > c.max_bytes_per_message + c.max_entry_bytes);
    }
}
