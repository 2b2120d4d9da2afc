//! An in-process transport over channels, with fault knobs for tests: drop, delay,
//! partition.

use crate::transport::{Inbound, SnapshotStream, Transport, TransportError};
use bytes::Bytes;
use raft_core::{Message, NodeId, NodeInfo, SnapshotHeader};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The faults a [`ChannelNetwork`] injects, changeable at any time.
#[derive(Clone, Debug, Default)]
struct Faults {
    /// Probability in parts per million that a message is lost.
    drop_ppm: u32,
    /// Every message and snapshot is delivered this much later.
    delay: Duration,
    /// Node pairs that cannot talk (both directions are listed).
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Nodes that can talk to nobody.
    isolated: BTreeSet<NodeId>,
}

/// Largest encoded message [`ChannelNetwork::encode_messages`] lets through.
const MAX_ENCODED: usize = 64 << 20;

#[derive(Debug, Default)]
struct Inner {
    /// Whether any fault is set: lets the common path skip the faults' lock.
    faulty: std::sync::atomic::AtomicBool,
    /// Whether messages cross as bytes (encoded and decoded) rather than moved.
    encode: std::sync::atomic::AtomicBool,
    /// Nodes by address (their node info bytes), as they attached.
    nodes: Mutex<HashMap<Bytes, Inbound>>,
    faults: Mutex<Faults>,
    /// State of the generator deciding drops (deterministic per seed).
    rng: Mutex<u64>,
}

/// A simulated network connecting nodes of one process. Each node gets its own
/// [`ChannelTransport`] with [`ChannelNetwork::transport`]; nodes find each other by
/// address: the node info each one is given (and that the cluster's configuration
/// records), exactly as a network transport would resolve them.
///
/// Messages are moved, not encoded, unless [`ChannelNetwork::encode_messages`] asks for
/// the wire encoding (what a network transport does). A partitioned or isolated pair behaves as an
/// unreachable peer: `send` fails, so the sender's core hears of it at once.
#[derive(Clone, Debug, Default)]
pub struct ChannelNetwork {
    inner: Arc<Inner>,
}

impl ChannelNetwork {
    /// A network with no faults; `seed` drives the drop decisions.
    pub fn new(seed: u64) -> Self {
        let net = ChannelNetwork::default();
        *net.inner.rng.lock().expect("lock") = seed | 1;
        net
    }

    /// The transport of node `id`, reachable at `address` (which must be the node info
    /// the cluster records for it).
    pub fn transport(&self, id: NodeId, address: NodeInfo) -> ChannelTransport {
        ChannelTransport { id, address: address.0, net: self.inner.clone(), peers: Mutex::default() }
    }

    /// Sends every message through its wire encoding (`Message::encode`, then
    /// `Message::decode_bytes` at the receiver), as a network transport would, so tests
    /// over this network exercise the encoding. Off by default: moving is cheaper, and the
    /// runtime benchmark measures the runtime, not the codec.
    pub fn encode_messages(&self, on: bool) {
        self.inner.encode.store(on, std::sync::atomic::Ordering::Release);
    }

    /// Loses each message with probability `rate` (0 to 1). Snapshots are not dropped.
    pub fn set_drop_rate(&self, rate: f64) {
        self.inner.faults.lock().expect("lock").drop_ppm = (rate.clamp(0.0, 1.0) * 1e6) as u32;
        self.inner.faulty.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Delivers every message and snapshot `delay` after it was sent.
    pub fn set_delay(&self, delay: Duration) {
        self.inner.faults.lock().expect("lock").delay = delay;
        self.inner.faulty.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Cuts every link between a node of `a` and a node of `b`, both ways.
    pub fn partition(&self, a: &[NodeId], b: &[NodeId]) {
        self.inner.faulty.store(true, std::sync::atomic::Ordering::Release);
        let mut f = self.inner.faults.lock().expect("lock");
        for &x in a {
            for &y in b {
                f.cut.insert((x, y));
                f.cut.insert((y, x));
            }
        }
    }

    /// Cuts `id` off from every node.
    pub fn isolate(&self, id: NodeId) {
        self.inner.faults.lock().expect("lock").isolated.insert(id);
        self.inner.faulty.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Removes every partition and isolation (drop rate and delay stay).
    pub fn heal(&self) {
        let mut f = self.inner.faults.lock().expect("lock");
        f.cut.clear();
        f.isolated.clear();
    }
}

impl Inner {
    /// Whether `from` can reach `to` now, and the delay to apply.
    fn link(&self, from: NodeId, to: NodeId) -> Option<Duration> {
        if !self.faulty.load(std::sync::atomic::Ordering::Acquire) {
            return Some(Duration::ZERO);
        }
        let f = self.faults.lock().expect("lock");
        let blocked = f.isolated.contains(&from) || f.isolated.contains(&to) || f.cut.contains(&(from, to));
        (!blocked).then_some(f.delay)
    }

    fn lose(&self) -> bool {
        if !self.faulty.load(std::sync::atomic::Ordering::Acquire) {
            return false;
        }
        let ppm = self.faults.lock().expect("lock").drop_ppm;
        if ppm == 0 {
            return false;
        }
        // xorshift64: cheap, deterministic for a seed; quality is irrelevant here.
        let mut x = self.rng.lock().expect("lock");
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        (*x % 1_000_000) < u64::from(ppm)
    }

    fn inbound(&self, address: &Bytes) -> Option<Inbound> {
        self.nodes.lock().expect("lock").get(address).cloned()
    }
}

/// One node's end of a [`ChannelNetwork`].
#[derive(Debug)]
pub struct ChannelTransport {
    id: NodeId,
    address: Bytes,
    net: Arc<Inner>,
    /// Addresses of the members, from their node info, with the node found there (looked
    /// up at the first send, dropped when it stops).
    peers: Mutex<BTreeMap<NodeId, (Bytes, Option<Inbound>)>>,
}

impl ChannelTransport {
    /// Runs `f` on the receiver of `to`, found by its address (looked up once, then
    /// cached); `f` answers whether the receiver is still running. A stopped receiver is
    /// dropped from the cache, so a node restarted at that address is found again.
    fn with_peer<R>(&self, to: NodeId, f: impl FnOnce(&Inbound) -> Option<R>) -> Result<R, TransportError> {
        let mut peers = self.peers.lock().expect("lock");
        let (address, cached) = peers.get_mut(&to).ok_or(TransportError::Unreachable(to))?;
        if cached.is_none() {
            *cached = self.net.inbound(address).filter(|i| i.id() == to);
        }
        let outcome = cached.as_ref().and_then(f);
        if outcome.is_none() {
            *cached = None;
        }
        outcome.ok_or(TransportError::Unreachable(to))
    }

    /// The receiver of `to`, for a delivery that happens later.
    fn resolve(&self, to: NodeId) -> Result<Inbound, TransportError> {
        self.with_peer(to, |inbound| Some(inbound.clone()))
    }

    /// Hands `msg` to its receiver without cloning the receiver's handle.
    fn deliver_now(&self, msg: Message) -> Result<(), TransportError> {
        self.with_peer(msg.to, |inbound| inbound.deliver(msg).ok())
    }
}

impl Transport for ChannelTransport {
    fn attach(&self, inbound: Inbound) {
        self.net.nodes.lock().expect("lock").insert(self.address.clone(), inbound);
    }

    fn set_peers(&self, peers: &BTreeMap<NodeId, NodeInfo>) {
        *self.peers.lock().expect("lock") = peers.iter().map(|(id, info)| (*id, (info.0.clone(), None))).collect();
    }

    fn send(&self, msg: Message) -> Result<(), TransportError> {
        let to = msg.to;
        let msg = if self.net.encode.load(std::sync::atomic::Ordering::Acquire) {
            let wire = Bytes::from(msg.encode());
            match Message::decode_bytes(&wire, MAX_ENCODED) {
                Ok(m) => m,
                Err(e) => {
                    // A message the core made that does not decode is a codec bug: drop
                    // it, loudly, as a receiver would.
                    tracing::error!(target: "raft::transport", from = self.id, to, error = %e, "message does not decode");
                    return Ok(());
                }
            }
        } else {
            msg
        };
        let delay = self.net.link(self.id, to).ok_or(TransportError::Unreachable(to))?;
        if self.net.lose() {
            return Ok(());
        }
        if delay.is_zero() {
            self.deliver_now(msg)
        } else {
            let inbound = self.resolve(to)?;
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = inbound.deliver(msg);
            });
            Ok(())
        }
    }

    async fn send_snapshot(&self, header: SnapshotHeader, data: SnapshotStream) -> Result<(), TransportError> {
        let to = header.to;
        let delay = self.net.link(self.id, to).ok_or(TransportError::Unreachable(to))?;
        let inbound = self.resolve(to)?;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        // The header goes through its wire encoding, as it would in front of the bytes on
        // a real stream, so the encoding is exercised by every in-process transfer.
        let wire = header.encode();
        let (decoded, _) =
            SnapshotHeader::decode(&wire, 1 << 20).map_err(|e| TransportError::Snapshot(e.to_string()))?;
        inbound.receive_snapshot(decoded, data).await
    }

    fn detach(&self) {
        let mut nodes = self.net.nodes.lock().expect("lock");
        if nodes.get(&self.address).is_some_and(|i| i.id() == self.id) {
            nodes.remove(&self.address);
        }
    }
}
