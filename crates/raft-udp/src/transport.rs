//! The transport: one UDP socket, a receive task, and the per-peer state.

use crate::frame::{decode_frame, encode_frame, encode_message_frame, Body, Envelope, FrameError};
use crate::metrics::{Counters, UdpMetrics, WarnLimiter};
use crate::replay::ReplayWindow;
use crate::snapshot::{self, Incoming, SenderEvent};
use crate::UdpOptions;
use bytes::Bytes;
use raft_core::{DecodeError, Message, NodeId, NodeInfo, SnapshotHeader};
use raft_tokio::{Inbound, SnapshotStream, Transport, TransportError};
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Locks a mutex, ignoring poisoning: every critical section here leaves its data
/// consistent, so a panic elsewhere is no reason to stop the transport.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The source address as peers record it: an IPv4-mapped IPv6 address (a dual-stack
/// socket's view of an IPv4 peer) becomes the IPv4 address.
pub(crate) fn canonical(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => a,
        },
        SocketAddr::V4(_) => a,
    }
}

/// What this node knows of one member.
#[derive(Debug)]
struct Peer {
    addr: SocketAddr,
    /// When a valid datagram from it last arrived.
    last_heard: Option<Instant>,
    /// The first send since we last heard from it.
    silent_since: Option<Instant>,
    /// When it was last reported unreachable.
    last_report: Option<Instant>,
}

impl Peer {
    fn new(addr: SocketAddr) -> Self {
        Peer { addr, last_heard: None, silent_since: None, last_report: None }
    }

    /// Records a send at `now`; true when the peer should be reported unreachable: we
    /// have sent to it for `timeout` without hearing back, and did not report it within
    /// the last `timeout`.
    fn on_send(&mut self, now: Instant, timeout: Duration) -> bool {
        let since = *self.silent_since.get_or_insert(now);
        let silent = now.duration_since(since) >= timeout;
        if silent && self.last_report.is_none_or(|r| now.duration_since(r) >= timeout) {
            self.last_report = Some(now);
            return true;
        }
        false
    }

    fn on_heard(&mut self, now: Instant) {
        self.last_heard = Some(now);
        self.silent_since = None;
    }
}

/// State shared by the handle, the receive task and the snapshot tasks.
pub(crate) struct Shared {
    /// Receives, and sends the snapshot path's datagrams (waiting for buffer space).
    pub(crate) socket: UdpSocket,
    /// The same socket (a duplicated descriptor, non-blocking) for sends that must not
    /// wait: a plain system call that fails only when the buffer is really full, whatever
    /// the runtime's reactor has seen of the socket so far.
    sync_socket: std::net::UdpSocket,
    local: SocketAddr,
    pub(crate) opts: UdpOptions,
    session: u64,
    counter: AtomicU64,
    /// This node's id, known once attached (0 before).
    pub(crate) id: AtomicU64,
    pub(crate) counters: Counters,
    warn: WarnLimiter,
    peers: Mutex<HashMap<NodeId, Peer>>,
    replay: Mutex<HashMap<NodeId, ReplayWindow>>,
    /// Outgoing snapshot transfers by id: where acks and results for them go, and the peer
    /// they must come from.
    pub(crate) outgoing: Mutex<HashMap<u64, (NodeId, mpsc::Sender<SenderEvent>)>>,
    pub(crate) next_transfer: AtomicU64,
    snapshot_datagrams: AtomicU64,
}

impl Shared {
    pub(crate) fn id(&self) -> NodeId {
        self.id.load(Ordering::Acquire)
    }

    fn envelope(&self) -> Envelope<'_> {
        Envelope {
            cluster_id: self.opts.cluster_id,
            key: self.opts.key.as_ref(),
            sender: self.id(),
            session: self.session,
            counter: self.counter.fetch_add(1, Ordering::Relaxed) + 1,
        }
    }

    /// The address of member `id`, if it has a parseable one.
    pub(crate) fn peer_addr(&self, id: NodeId) -> Option<SocketAddr> {
        lock(&self.peers).get(&id).map(|p| p.addr)
    }

    /// Logs a dropped datagram: one warning per reason per second, the rest at debug.
    pub(crate) fn note_drop(&self, reason: &'static str, src: SocketAddr, detail: &dyn std::fmt::Display) {
        match self.warn.allow(reason) {
            Some(suppressed) => tracing::warn!(
                target: "raft::udp", node = self.id(), %src, reason, suppressed,
                "dropped datagram: {detail}"
            ),
            None => tracing::debug!(target: "raft::udp", node = self.id(), %src, reason, "dropped datagram: {detail}"),
        }
    }

    fn reject(&self, e: &FrameError, src: SocketAddr) {
        let reason = self.counters.dropped(e);
        self.note_drop(reason, src, e);
    }

    /// Sends one snapshot-path frame (start, chunk, ack, result, abort), waiting for room
    /// in the socket buffer. Errors are counted and otherwise ignored: the snapshot
    /// protocol resends what was lost.
    pub(crate) async fn send_snapshot_frame(&self, to: SocketAddr, body: Body<'_>) {
        if let Some(out) = self.snapshot_datagram(&body) {
            let sent = self.socket.send_to(&out, to).await;
            self.count_snapshot_send(to, sent);
        }
    }

    /// As [`Shared::send_snapshot_frame`], without waiting: a full socket buffer drops it.
    pub(crate) fn send_snapshot_frame_now(&self, to: SocketAddr, body: Body<'_>) {
        if let Some(out) = self.snapshot_datagram(&body) {
            let sent = self.sync_socket.send_to(&out, to);
            self.count_snapshot_send(to, sent);
        }
    }

    /// The encoded snapshot-path datagram, or `None` when the test knob
    /// `test_drop_every_nth_snapshot_datagram` loses this one.
    fn snapshot_datagram(&self, body: &Body<'_>) -> Option<Vec<u8>> {
        let n = self.opts.test_drop_every_nth_snapshot_datagram;
        let k = self.snapshot_datagrams.fetch_add(1, Ordering::Relaxed) + 1;
        let mut out = Vec::new();
        encode_frame(&self.envelope(), body, &mut out);
        (n == 0 || k % u64::from(n) != 0).then_some(out)
    }

    fn count_snapshot_send(&self, to: SocketAddr, sent: std::io::Result<usize>) {
        match sent {
            Ok(_) => Counters::inc(&self.counters.datagrams_sent),
            Err(e) => {
                Counters::inc(&self.counters.send_failed);
                tracing::debug!(target: "raft::udp", %to, "snapshot datagram not sent: {e}");
            }
        }
    }

    /// Handles one received datagram. Returns false once the node stopped.
    fn on_datagram(
        self: &Arc<Self>,
        data: &Bytes,
        src: SocketAddr,
        inbound: &Inbound,
        incoming: &mut Incoming,
    ) -> bool {
        let frame = match decode_frame(data, &self.opts) {
            Ok(f) => f,
            Err(e) => {
                self.reject(&e, src);
                return true;
            }
        };
        // The source is checked before the replay window records the counter: a copy of a
        // genuine datagram sent from elsewhere must not use up the genuine one's counter.
        let src = canonical(src);
        if let Some(expected) = self.peer_addr(frame.sender).filter(|a| *a != src) {
            Counters::inc(&self.counters.dropped_address_mismatch);
            let detail = format!("claims to be node {} whose address is {expected}", frame.sender);
            self.note_drop("address_mismatch", src, &detail);
            return true;
        }
        if self.opts.key.is_some() {
            let fresh = lock(&self.replay).entry(frame.sender).or_default().accept(frame.session, frame.counter);
            if !fresh {
                self.reject(&FrameError::Replayed, src);
                return true;
            }
        }
        if let Some(p) = lock(&self.peers).get_mut(&frame.sender) {
            p.on_heard(Instant::now());
        }
        match frame.body {
            Body::Message(bytes) => self.on_message(data.slice_ref(bytes), frame.sender, src, inbound),
            Body::SnapshotStart { transfer, header } => {
                incoming.on_start(self, inbound, (frame.sender, frame.session, transfer), src, header);
                true
            }
            Body::SnapshotChunk { transfer, offset, last, data: chunk } => {
                incoming.on_chunk(
                    self,
                    (frame.sender, frame.session, transfer),
                    src,
                    offset,
                    last,
                    data.slice_ref(chunk),
                );
                true
            }
            Body::SnapshotAbort { transfer } => {
                incoming.on_abort(self, (frame.sender, frame.session, transfer));
                true
            }
            Body::SnapshotAck { transfer, offset, complete } => {
                self.to_sender(frame.sender, transfer, SenderEvent::Ack { offset, complete });
                true
            }
            Body::SnapshotDone { transfer, ok, reason } => {
                self.to_sender(frame.sender, transfer, SenderEvent::Done { ok, reason: reason.to_owned() });
                true
            }
        }
    }

    fn on_message(&self, bytes: Bytes, sender: NodeId, src: SocketAddr, inbound: &Inbound) -> bool {
        let msg = match Message::decode_bytes(&bytes, self.opts.max_datagram) {
            Ok(m) => m,
            Err(DecodeError::Version { found, .. }) => {
                self.reject(&FrameError::WrongVersion { found }, src);
                return true;
            }
            Err(e) => {
                Counters::inc(&self.counters.dropped_malformed);
                self.note_drop("malformed", src, &e);
                return true;
            }
        };
        if msg.from != sender {
            Counters::inc(&self.counters.dropped_sender_mismatch);
            let detail = format!("message from node {} in a frame of node {sender}", msg.from);
            self.note_drop("sender_mismatch", src, &detail);
            return true;
        }
        if msg.to != self.id() {
            Counters::inc(&self.counters.dropped_misaddressed);
            let detail = format!("message for node {}", msg.to);
            self.note_drop("misaddressed", src, &detail);
            return true;
        }
        if inbound.deliver(msg).is_err() {
            return false;
        }
        Counters::inc(&self.counters.messages_delivered);
        true
    }

    /// Hands an ack or result to the outgoing transfer it names, if `from` is its receiver.
    pub(crate) fn to_sender(&self, from: NodeId, transfer: u64, event: SenderEvent) {
        let outgoing = lock(&self.outgoing);
        match outgoing.get(&transfer) {
            // Full: the sender is behind; a later ack says as much (acks are cumulative).
            Some((peer, tx)) if *peer == from => {
                let _ = tx.try_send(event);
            }
            _ => Counters::inc(&self.counters.snapshot_frames_ignored),
        }
    }
}

/// Session ids grow across the process too: two transports created in the same
/// nanosecond (or a clock that went back a little) still get distinct, increasing ones.
fn new_session() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(1);
    let mut prev = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(prev + 1);
        match LAST.compare_exchange(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(p) => prev = p,
        }
    }
}

/// A [`Transport`] over one UDP socket. See the crate docs for the protocol and its
/// guarantees.
///
/// `send` never waits: it encodes the message into one datagram and hands it to the
/// socket with a non-blocking send; a full socket buffer drops it (Raft copes with loss).
/// Snapshots travel over a chunked, acknowledged path. The receive task runs from
/// [`Transport::attach`] to [`Transport::detach`] (or drop).
pub struct UdpTransport {
    pub(crate) shared: Arc<Shared>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for UdpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpTransport")
            .field("local", &self.shared.local)
            .field("id", &self.shared.id())
            .finish_non_exhaustive()
    }
}

impl UdpTransport {
    /// Binds a UDP socket at `addr` (port 0 picks a free one). Fails if the options are
    /// invalid ([`UdpOptions::validate`]) or the address cannot be bound. Must be called
    /// inside a tokio runtime. Nothing is received until the runtime attaches it.
    pub async fn bind(addr: SocketAddr, options: UdpOptions) -> io::Result<UdpTransport> {
        options.validate()?;
        let std_socket = std::net::UdpSocket::bind(addr)?;
        std_socket.set_nonblocking(true)?;
        let sync_socket = std_socket.try_clone()?;
        let socket = UdpSocket::from_std(std_socket)?;
        let local = socket.local_addr()?;
        let shared = Shared {
            socket,
            sync_socket,
            local,
            session: new_session(),
            counter: AtomicU64::new(0),
            id: AtomicU64::new(0),
            counters: Counters::default(),
            warn: WarnLimiter::new(Duration::from_secs(1)),
            peers: Mutex::default(),
            replay: Mutex::default(),
            outgoing: Mutex::default(),
            next_transfer: AtomicU64::new(1),
            snapshot_datagrams: AtomicU64::new(0),
            opts: options,
        };
        Ok(UdpTransport { shared: Arc::new(shared), task: Mutex::new(None) })
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local
    }

    /// The node info to record for this node in the cluster's configuration (at
    /// bootstrap or in `add_learner`): its address as UTF-8 text, `UdpOptions::advertise`
    /// if set, else the bound address. Peers send to it and accept this node's datagrams
    /// only from it.
    pub fn node_info(&self) -> NodeInfo {
        let addr = self.shared.opts.advertise.unwrap_or(self.shared.local);
        NodeInfo::new(addr.to_string().into_bytes())
    }

    /// The transport's counters now.
    pub fn metrics(&self) -> UdpMetrics {
        self.shared.counters.snapshot()
    }

    /// The options it was bound with.
    pub fn options(&self) -> &UdpOptions {
        &self.shared.opts
    }

    /// A cheap handle that reads this transport's counters after the transport itself was
    /// handed to `Raft::start`. It does not keep the receive task alive, but it keeps the
    /// socket bound while it exists.
    pub fn handle(&self) -> UdpHandle {
        UdpHandle { shared: self.shared.clone() }
    }

    fn stop(&self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }
}

impl Drop for UdpTransport {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads a [`UdpTransport`]'s counters and address from elsewhere (see
/// [`UdpTransport::handle`]). Cheap to clone.
#[derive(Clone)]
pub struct UdpHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for UdpHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpHandle").field("local", &self.shared.local).finish_non_exhaustive()
    }
}

impl UdpHandle {
    /// The transport's counters now.
    pub fn metrics(&self) -> UdpMetrics {
        self.shared.counters.snapshot()
    }

    /// The address the transport's socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local
    }

    /// The transport's session: the nanoseconds since the Unix epoch when it was bound
    /// (made unique and increasing within the process).
    pub fn session(&self) -> u64 {
        self.shared.session
    }
}

/// Parses a member's node info as a socket address (`"127.0.0.1:7001"`, `"[::1]:7001"`).
pub fn parse_node_info(info: &NodeInfo) -> Option<SocketAddr> {
    std::str::from_utf8(info.as_bytes()).ok()?.trim().parse().ok().map(canonical)
}

async fn receive_loop(shared: Arc<Shared>, inbound: Inbound) {
    let mut buf = vec![0u8; 1 << 16];
    let mut incoming = Incoming::default();
    loop {
        tokio::select! {
            // Finished transfers first, so a frame arriving after a transfer's result was
            // sent finds it among the finished ones and is answered with it.
            biased;
            Some(done) = incoming.tasks.join_next_with_id(), if !incoming.tasks.is_empty() => incoming.finished(&shared, done),
            received = shared.socket.recv_from(&mut buf) => match received {
                Ok((n, src)) => {
                    Counters::inc(&shared.counters.datagrams_received);
                    let data = Bytes::copy_from_slice(&buf[..n]);
                    if !shared.on_datagram(&data, src, &inbound, &mut incoming) {
                        tracing::debug!(target: "raft::udp", node = shared.id(), "node stopped; receive loop ends");
                        return;
                    }
                }
                // Some systems report an ICMP "port unreachable" for an earlier send here;
                // it says nothing about this socket, which keeps working.
                Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset) => {}
                Err(e) => {
                    if shared.warn.allow("receive_error").is_some() {
                        tracing::warn!(target: "raft::udp", node = shared.id(), "receive failed: {e}");
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
}

impl Transport for UdpTransport {
    /// Lowers the core's limits so every message fits one datagram: [`crate::fit_config`]
    /// with this transport's options. Refuses the configuration when `max_members`
    /// members' addresses cannot fit one.
    fn fit_config(&self, config: &mut raft_core::Config) -> Result<(), String> {
        crate::fit_config(config, &self.shared.opts).map_err(|e| e.to_string())
    }

    fn attach(&self, inbound: Inbound) {
        self.shared.id.store(inbound.id(), Ordering::Release);
        let task = tokio::spawn(receive_loop(self.shared.clone(), inbound));
        if let Some(old) = lock(&self.task).replace(task) {
            old.abort();
        }
    }

    /// Parses every member's node info as a socket address; members whose info does not
    /// parse are left out (with a warning), so sends to them fail `Unreachable`.
    fn set_peers(&self, peers: &BTreeMap<NodeId, NodeInfo>) {
        let me = self.shared.id();
        let mut current = lock(&self.shared.peers);
        let mut next = HashMap::with_capacity(peers.len());
        for (&id, info) in peers {
            if id == me && me != 0 {
                continue;
            }
            let Some(addr) = parse_node_info(info) else {
                tracing::warn!(
                    target: "raft::udp", node = me, peer = id, info = %String::from_utf8_lossy(info.as_bytes()),
                    "node info is not a socket address; the peer is unreachable"
                );
                continue;
            };
            let peer = match current.remove(&id) {
                Some(p) if p.addr == addr => p,
                _ => Peer::new(addr),
            };
            next.insert(id, peer);
        }
        *current = next;
    }

    /// Sends `msg` as one datagram without waiting. Fails `Unreachable` when the peer has
    /// no address, when the system refused the send (ICMP unreachable), or when we have
    /// been sending to it for `silence_timeout` without hearing from it (at most once per
    /// `silence_timeout`; the datagram is sent all the same, so a peer that comes back
    /// hears from us). A message too large for a datagram is dropped and counted.
    fn send(&self, msg: Message) -> Result<(), TransportError> {
        let s = &self.shared;
        let to = msg.to;
        let (addr, silent) = {
            let mut peers = lock(&s.peers);
            match peers.get_mut(&to) {
                Some(p) => (p.addr, p.on_send(Instant::now(), s.opts.silence_timeout)),
                None => {
                    Counters::inc(&s.counters.send_no_address);
                    return Err(TransportError::Unreachable(to));
                }
            }
        };
        let mut out = Vec::with_capacity(256);
        encode_message_frame(&s.envelope(), &msg, &mut out);
        if out.len() > s.opts.max_datagram {
            Counters::inc(&s.counters.send_too_large);
            let detail =
                format!("{} message of {} bytes to node {to} exceeds max_datagram", msg.body.kind(), out.len());
            match s.warn.allow("send_too_large") {
                Some(suppressed) => {
                    tracing::warn!(target: "raft::udp", node = s.id(), suppressed, "dropped: {detail}; use raft_udp::fit_config")
                }
                None => tracing::debug!(target: "raft::udp", node = s.id(), "dropped: {detail}"),
            }
            return Ok(());
        }
        let refused = match s.sync_socket.send_to(&out, addr) {
            Ok(_) => {
                Counters::inc(&s.counters.datagrams_sent);
                false
            }
            Err(e) => {
                Counters::inc(&s.counters.send_failed);
                tracing::debug!(target: "raft::udp", node = s.id(), to, %addr, "send failed: {e}");
                matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::HostUnreachable
                        | io::ErrorKind::NetworkUnreachable
                )
            }
        };
        if refused || silent {
            Counters::inc(&s.counters.unreachable_reports);
            tracing::debug!(target: "raft::udp", node = s.id(), to, refused, "peer unreachable");
            return Err(TransportError::Unreachable(to));
        }
        Ok(())
    }

    async fn send_snapshot(&self, header: SnapshotHeader, data: SnapshotStream) -> Result<(), TransportError> {
        let result = snapshot::send(self.shared.clone(), header, data).await;
        let c = &self.shared.counters;
        Counters::inc(if result.is_ok() { &c.snapshots_sent } else { &c.snapshots_failed });
        result
    }

    fn detach(&self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::MessageBody;

    #[test]
    fn node_info_parses_as_a_socket_address_or_not_at_all() {
        let parse = |s: &[u8]| parse_node_info(&NodeInfo::new(s.to_vec()));
        assert_eq!(parse(b"127.0.0.1:7001"), Some("127.0.0.1:7001".parse().unwrap()));
        assert_eq!(parse(b" 10.0.0.2:9 \n"), Some("10.0.0.2:9".parse().unwrap()));
        assert_eq!(parse(b"[::1]:7001"), Some("[::1]:7001".parse().unwrap()));
        assert_eq!(parse(b"[::ffff:127.0.0.1]:5"), Some("127.0.0.1:5".parse().unwrap()), "mapped IPv4 as IPv4");
        assert_eq!(parse(b"chan://node-1"), None);
        assert_eq!(parse(b"localhost:7001"), None, "host names are not resolved");
        assert_eq!(parse(b"127.0.0.1"), None, "a port is required");
        assert_eq!(parse(b"\xff\xfe"), None);
        assert_eq!(parse(b""), None);
    }

    /// Silence is reported once `timeout` passed since the first unanswered send, then at
    /// most once per `timeout`; hearing from the peer starts over.
    #[test]
    fn a_silent_peer_is_reported_at_most_once_per_timeout() {
        let t = Duration::from_secs(1);
        let ms = |n: u64| Duration::from_millis(n);
        let t0 = Instant::now();
        let mut p = Peer::new("127.0.0.1:1".parse().unwrap());
        assert!(!p.on_send(t0, t));
        assert!(!p.on_send(t0 + ms(500), t));
        assert!(p.on_send(t0 + ms(1000), t), "silent for the timeout");
        assert!(!p.on_send(t0 + ms(1500), t), "reported less than a timeout ago");
        assert!(p.on_send(t0 + ms(2000), t), "still silent a timeout later");
        p.on_heard(t0 + ms(2100));
        assert!(!p.on_send(t0 + ms(2200), t));
        assert!(!p.on_send(t0 + ms(3100), t), "silent again, but not for a whole timeout yet");
        assert!(p.on_send(t0 + ms(3200), t));
    }

    /// A member whose node info is not an address is left out: sends to it fail
    /// `Unreachable` and are counted, without a datagram.
    #[tokio::test]
    async fn a_member_without_an_address_is_unreachable() {
        let t = UdpTransport::bind("127.0.0.1:0".parse().unwrap(), UdpOptions::new(1)).await.expect("bind");
        t.shared.id.store(1, Ordering::Release);
        let peers = BTreeMap::from([
            (1, t.node_info()),
            (2, NodeInfo::new(&b"chan://node-2"[..])),
            (3, NodeInfo::new(&b"127.0.0.1:9"[..])),
        ]);
        t.set_peers(&peers);
        let msg = |to| Message { from: 1, to, term: 1, body: MessageBody::TimeoutNow };
        assert_eq!(t.send(msg(2)), Err(TransportError::Unreachable(2)));
        assert_eq!(t.send(msg(4)), Err(TransportError::Unreachable(4)), "not a member");
        assert_eq!(t.send(msg(3)), Ok(()));
        let m = t.metrics();
        assert_eq!((m.send_no_address, m.datagrams_sent), (2, 1));
    }
}
