//! The transport trait (how a node talks to its peers) and what a transport feeds into a
//! node: [`Inbound`].

use crate::metrics::SharedMetrics;
use crate::state_machine::Report;
use bytes::Bytes;
use raft_core::{Config, Input, Message, NodeId, NodeInfo, SnapshotHeader, SnapshotMeta};
use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Why a message or a snapshot could not be handed to a peer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// No address is known for the peer, or the peer cannot be reached now. The runtime
    /// tells the core (`Input::PeerUnreachable`), which probes it again later.
    #[error("peer {0} is unreachable")]
    Unreachable(NodeId),
    /// The snapshot stream broke off or the receiver refused it; the message says why.
    #[error("snapshot transfer failed: {0}")]
    Snapshot(String),
}

/// How a node reaches its peers. Implementations own connections and buffers; the runtime
/// owns the protocol. The driver calls [`Transport::send`] from its task, so `send` must
/// not wait: queue the message (or drop it, the protocol copes with loss, duplication and
/// reordering) and return.
///
/// Addresses come from the cluster's configuration: the runtime passes every member's
/// node info (the bytes given at bootstrap or in a membership change) to
/// [`Transport::set_peers`] whenever it changes, and the transport parses it as it likes.
pub trait Transport: Send + Sync + 'static {
    /// Makes `config` fit what this transport can carry, before the core is built:
    /// [`crate::Raft::start`] calls it, so no user can forget it. It may lower the core's
    /// size limits (`max_entry_bytes`, `max_bytes_per_message`, `max_node_info_bytes`) so
    /// that every message the core can emit fits one of the transport's messages, and
    /// must never raise one (the start fails if it does); or it refuses a configuration
    /// it cannot carry, and the node does not start (an error now instead of appends
    /// dropped forever). The default, for transports that carry messages of any size,
    /// accepts every configuration.
    fn fit_config(&self, config: &mut Config) -> Result<(), String> {
        let _ = config;
        Ok(())
    }

    /// Called once at start with the sink for what arrives for this node. A network
    /// transport starts its listener here.
    fn attach(&self, inbound: Inbound);

    /// The node info of every member of the configuration in effect (this node included),
    /// called at start and whenever it changes. Messages to nodes missing here fail with
    /// [`TransportError::Unreachable`].
    fn set_peers(&self, peers: &BTreeMap<NodeId, NodeInfo>);

    /// Queues `msg` for `msg.to`, without waiting. Returns `Unreachable` when the peer is
    /// known to be unreachable right now (the runtime reports it to the core); a message
    /// lost later needs no report.
    fn send(&self, msg: Message) -> Result<(), TransportError>;

    /// Streams a snapshot to `header.to`: the header, then every chunk of `data`, and
    /// resolves once the receiver reported it staged durably (`Ok`) or the transfer failed.
    /// A network transport writes `header.encode()` in front of the bytes so the stream
    /// describes itself, and the receiver hands both to [`Inbound::receive_snapshot`].
    fn send_snapshot(
        &self,
        header: SnapshotHeader,
        data: SnapshotStream,
    ) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// Called once when the node stops: stop delivering to its [`Inbound`].
    fn detach(&self) {}
}

/// The bytes of a snapshot, as a stream of chunks. It never holds the whole snapshot:
/// the producer waits while a few chunks are buffered.
///
/// A stream is complete only if its producer said so ([`SnapshotSink::finish`]): a
/// producer that goes away without finishing (a task that failed, a connection dropped
/// mid-transfer) ends the stream with an error, never with a clean end, so a truncated
/// snapshot is never staged as a whole one.
#[derive(Debug)]
pub struct SnapshotStream {
    chunks: mpsc::Receiver<Piece>,
    /// The stream has ended (finished or failed): nothing more is read.
    ended: bool,
}

/// What travels from a [`SnapshotSink`] to its [`SnapshotStream`].
#[derive(Debug)]
enum Piece {
    Chunk(Bytes),
    End,
    Failed(io::Error),
}

/// The producing end of a [`SnapshotStream`]. Call [`SnapshotSink::finish`] after the
/// last chunk; dropping every clone without finishing ends the stream with an error.
#[derive(Clone, Debug)]
pub struct SnapshotSink {
    chunks: mpsc::Sender<Piece>,
}

impl SnapshotStream {
    /// A stream and its producing end, buffering at most `chunks` chunks (at least one).
    pub fn channel(chunks: usize) -> (SnapshotSink, SnapshotStream) {
        let (tx, rx) = mpsc::channel(chunks.max(1));
        (SnapshotSink { chunks: tx }, SnapshotStream { chunks: rx, ended: false })
    }

    /// The next chunk; `None` once the producer finished the stream, `Some(Err)` if it
    /// failed or went away without finishing (then the snapshot is incomplete and must be
    /// dropped). After `None` or an error, always `None`.
    pub async fn next(&mut self) -> Option<io::Result<Bytes>> {
        if self.ended {
            return None;
        }
        let piece = self.chunks.recv().await;
        self.take(piece)
    }

    /// As [`SnapshotStream::next`], blocking the thread; call it outside the async runtime.
    pub(crate) fn blocking_next(&mut self) -> Option<io::Result<Bytes>> {
        if self.ended {
            return None;
        }
        let piece = self.chunks.blocking_recv();
        self.take(piece)
    }

    fn take(&mut self, piece: Option<Piece>) -> Option<io::Result<Bytes>> {
        match piece {
            Some(Piece::Chunk(bytes)) => Some(Ok(bytes)),
            Some(Piece::End) => {
                self.ended = true;
                None
            }
            Some(Piece::Failed(e)) => {
                self.ended = true;
                Some(Err(e))
            }
            None => {
                self.ended = true;
                Some(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the snapshot's producer went away before finishing it",
                )))
            }
        }
    }
}

impl SnapshotSink {
    /// Sends one chunk; fails once the stream was dropped (the transfer was abandoned).
    pub async fn send(&self, chunk: Bytes) -> Result<(), TransportError> {
        self.chunks
            .send(Piece::Chunk(chunk))
            .await
            .map_err(|_| TransportError::Snapshot("the receiver went away".into()))
    }

    /// Ends the stream cleanly: every chunk was sent. Without it the stream ends with an
    /// error.
    pub async fn finish(self) {
        let _ = self.chunks.send(Piece::End).await;
    }

    /// Ends the stream with an error: the receiver drops what it got.
    pub async fn fail(&self, error: io::Error) {
        let _ = self.chunks.send(Piece::Failed(error)).await;
    }

    /// As [`SnapshotSink::send`] (or [`SnapshotSink::fail`] for an error), blocking the
    /// thread; call it outside the async runtime.
    pub(crate) fn blocking_send(&self, chunk: io::Result<Bytes>) -> bool {
        let piece = match chunk {
            Ok(bytes) => Piece::Chunk(bytes),
            Err(e) => Piece::Failed(e),
        };
        self.chunks.blocking_send(piece).is_ok()
    }

    /// As [`SnapshotSink::finish`], blocking the thread.
    pub(crate) fn blocking_finish(self) {
        let _ = self.chunks.blocking_send(Piece::End);
    }
}

/// Stages a received snapshot stream durably; type-erased so that [`Inbound`] does not
/// carry the snapshot store's type.
pub(crate) type Stager =
    Arc<dyn Fn(SnapshotMeta, SnapshotStream) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// What a transport feeds into its node: messages, snapshot streams and unreachable
/// peers. Cheap to clone; every method is safe to call from any task or thread.
#[derive(Clone)]
pub struct Inbound {
    id: NodeId,
    messages: mpsc::Sender<Message>,
    reports: mpsc::UnboundedSender<Report>,
    stager: Stager,
    metrics: Arc<SharedMetrics>,
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbound").field("id", &self.id).finish_non_exhaustive()
    }
}

/// The node behind an [`Inbound`] has stopped.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the node has stopped")]
pub struct NodeStopped;

impl Inbound {
    pub(crate) fn new(
        id: NodeId,
        messages: mpsc::Sender<Message>,
        reports: mpsc::UnboundedSender<Report>,
        stager: Stager,
        metrics: Arc<SharedMetrics>,
    ) -> Self {
        Inbound { id, messages, reports, stager, metrics }
    }

    /// The node this inbound feeds.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Hands a decoded message to the node without waiting. When the node's inbox is full
    /// (it is slower than its peers send) the message is dropped, counted in
    /// `RuntimeMetrics::dropped_messages` and logged: Raft recovers from loss, while an
    /// unbounded inbox would grow without limit. Fails only once the node stopped.
    pub fn deliver(&self, msg: Message) -> Result<(), NodeStopped> {
        match self.messages.try_send(msg) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(m)) => {
                self.metrics.dropped_message();
                tracing::warn!(target: "raft::transport", node = self.id, from = m.from, "inbox full, message dropped");
                Ok(())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(NodeStopped),
        }
    }

    /// Tells the node that `peer` cannot be reached (a connection failed, a buffer is full),
    /// so a leader probes it again with its next message rather than after a heartbeat round.
    pub fn unreachable(&self, peer: NodeId) {
        let _ = self.reports.send(Report::Input(Input::PeerUnreachable { peer }));
    }

    /// Receives a snapshot stream that `header` describes: stages it durably in the node's
    /// snapshot store, then tells the node (`Input::SnapshotReceived`), which decides
    /// whether to install it. Resolves once it is staged (`Ok`: acknowledge the sender) or
    /// was refused (a header not addressed to this node or invalid, a broken stream, a
    /// failed write).
    pub async fn receive_snapshot(&self, header: SnapshotHeader, data: SnapshotStream) -> Result<(), TransportError> {
        if header.to != self.id {
            return Err(TransportError::Snapshot(format!("addressed to node {}, not {}", header.to, self.id)));
        }
        header.validate().map_err(|e| TransportError::Snapshot(format!("invalid header: {e}")))?;
        if self.reports.is_closed() {
            return Err(TransportError::Snapshot("the node has stopped".into()));
        }
        (self.stager)(header.meta.clone(), data).await.map_err(TransportError::Snapshot)?;
        self.reports
            .send(Report::Input(Input::SnapshotReceived { header: Box::new(header) }))
            .map_err(|_| TransportError::Snapshot("the node has stopped".into()))
    }

    /// An inbound for node `id` with no node behind it, and the [`InboundProbe`] that
    /// shows what reached it: for testing a transport's receiving side alone (what its
    /// `attach` is given is what a node would get). Messages wait in an inbox of
    /// `capacity` (a full one drops and counts, as a node's does); snapshot streams are
    /// read to the end into memory, and a broken stream is refused as a node refuses it.
    /// Dropping the probe stops the "node": from then on `deliver` fails with
    /// [`NodeStopped`] and `receive_snapshot` is refused.
    pub fn probe(id: NodeId, capacity: usize) -> (Inbound, InboundProbe) {
        let (messages_tx, messages) = mpsc::channel(capacity.max(1));
        let (reports_tx, reports) = mpsc::unbounded_channel();
        let staged: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let into = staged.clone();
        let stager: Stager = Arc::new(move |_meta, mut data: SnapshotStream| {
            let into = into.clone();
            Box::pin(async move {
                let mut bytes = Vec::new();
                while let Some(chunk) = data.next().await {
                    bytes.extend_from_slice(&chunk.map_err(|e| format!("snapshot stream: {e}"))?);
                }
                into.lock().unwrap_or_else(|e| e.into_inner()).push(bytes);
                Ok(())
            })
        });
        let metrics = Arc::new(SharedMetrics::default());
        let inbound = Inbound::new(id, messages_tx, reports_tx, stager, metrics.clone());
        let probe = InboundProbe { messages, reports, staged, metrics, unreachable: Vec::new(), received: Vec::new() };
        (inbound, probe)
    }
}

/// What reached an [`Inbound`] made by [`Inbound::probe`]. Each accessor returns what
/// arrived since it was last called.
#[derive(Debug)]
pub struct InboundProbe {
    messages: mpsc::Receiver<Message>,
    reports: mpsc::UnboundedReceiver<Report>,
    staged: Arc<Mutex<Vec<Vec<u8>>>>,
    metrics: Arc<SharedMetrics>,
    unreachable: Vec<NodeId>,
    received: Vec<SnapshotHeader>,
}

impl InboundProbe {
    /// The next message delivered, waiting up to `timeout`; `None` if none came.
    pub async fn message(&mut self, timeout: Duration) -> Option<Message> {
        tokio::time::timeout(timeout, self.messages.recv()).await.ok().flatten()
    }

    /// The messages delivered and not yet taken, without waiting.
    pub fn messages(&mut self) -> Vec<Message> {
        std::iter::from_fn(|| self.messages.try_recv().ok()).collect()
    }

    /// Messages dropped because the inbox was full.
    pub fn dropped_messages(&self) -> u64 {
        self.metrics.read().dropped_messages
    }

    /// The peers reported unreachable (`Inbound::unreachable`), in order.
    pub fn unreachable(&mut self) -> Vec<NodeId> {
        self.sort_reports();
        std::mem::take(&mut self.unreachable)
    }

    /// The snapshots received whole (`Inbound::receive_snapshot` returned `Ok`): each
    /// header with the bytes of its stream.
    pub fn snapshots(&mut self) -> Vec<(SnapshotHeader, Vec<u8>)> {
        self.sort_reports();
        let headers = std::mem::take(&mut self.received);
        let mut staged = self.staged.lock().unwrap_or_else(|e| e.into_inner());
        // Staged in the order they were reported: a stream is staged before its report.
        let n = headers.len().min(staged.len());
        let bytes: Vec<Vec<u8>> = staged.drain(..n).collect();
        headers.into_iter().zip(bytes).collect()
    }

    fn sort_reports(&mut self) {
        while let Ok(report) = self.reports.try_recv() {
            match report {
                Report::Input(Input::PeerUnreachable { peer }) => self.unreachable.push(peer),
                Report::Input(Input::SnapshotReceived { header }) => self.received.push(*header),
                // An inbound sends nothing else.
                Report::Input(_) | Report::Fatal(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a transport hands an `Inbound::probe` is what the probe shows: messages (a
    /// full inbox drops and counts), unreachable reports, snapshots received whole (a
    /// broken stream is refused and never shows), and the "node" stops with the probe.
    #[tokio::test]
    async fn a_probe_shows_what_reached_its_inbound() {
        use raft_core::{Membership, MessageBody};
        let (inbound, mut probe) = Inbound::probe(1, 1);
        let m = Message { from: 2, to: 1, term: 1, body: MessageBody::TimeoutNow };
        inbound.deliver(m.clone()).expect("delivered");
        inbound.deliver(m.clone()).expect("dropped, not an error");
        assert_eq!(probe.messages(), vec![m.clone()]);
        assert_eq!(probe.dropped_messages(), 1, "an inbox of one holds one message");
        inbound.unreachable(3);
        assert_eq!(probe.unreachable(), vec![3]);

        let meta = SnapshotMeta { index: 5, term: 1, membership: Membership::with_voters([1, 2]) };
        let header = SnapshotHeader { from: 2, to: 1, term: 1, meta };
        let (sink, stream) = SnapshotStream::channel(2);
        let producer = tokio::spawn(async move {
            sink.send(Bytes::from_static(b"ab")).await.expect("send");
            sink.send(Bytes::from_static(b"c")).await.expect("send");
            sink.finish().await;
        });
        inbound.receive_snapshot(header.clone(), stream).await.expect("staged");
        producer.await.expect("producer");
        assert_eq!(probe.snapshots(), vec![(header.clone(), b"abc".to_vec())]);

        let (sink, stream) = SnapshotStream::channel(2);
        drop(sink);
        assert!(inbound.receive_snapshot(header, stream).await.is_err(), "a stream that never finished");
        assert!(probe.snapshots().is_empty());

        drop(probe);
        assert_eq!(inbound.deliver(m), Err(NodeStopped));
    }

    async fn drain(mut stream: SnapshotStream) -> (Vec<Bytes>, Option<io::ErrorKind>) {
        let mut chunks = Vec::new();
        while let Some(next) = stream.next().await {
            match next {
                Ok(c) => chunks.push(c),
                Err(e) => {
                    assert!(stream.next().await.is_none(), "nothing after an error");
                    return (chunks, Some(e.kind()));
                }
            }
        }
        assert!(stream.next().await.is_none(), "nothing after the end");
        (chunks, None)
    }

    #[tokio::test]
    async fn a_finished_stream_ends_cleanly() {
        let (sink, stream) = SnapshotStream::channel(4);
        let producer = tokio::spawn(async move {
            sink.send(Bytes::from_static(b"ab")).await.expect("send");
            sink.send(Bytes::from_static(b"cd")).await.expect("send");
            sink.finish().await;
        });
        let (chunks, error) = drain(stream).await;
        producer.await.expect("producer");
        assert_eq!(chunks, vec![Bytes::from_static(b"ab"), Bytes::from_static(b"cd")]);
        assert_eq!(error, None);
    }

    /// A producer that goes away mid-stream (its task failed, its connection dropped)
    /// must not look like a complete snapshot: the stager would store a truncated one.
    #[tokio::test]
    async fn a_producer_gone_without_finishing_is_an_error_not_an_end() {
        let (sink, stream) = SnapshotStream::channel(4);
        let producer = tokio::spawn(async move {
            sink.send(Bytes::from_static(b"half")).await.expect("send");
            drop(sink);
        });
        let (chunks, error) = drain(stream).await;
        producer.await.expect("producer");
        assert_eq!(chunks, vec![Bytes::from_static(b"half")]);
        assert_eq!(error, Some(io::ErrorKind::UnexpectedEof));
    }

    #[tokio::test]
    async fn a_failed_stream_reports_the_failure_once() {
        let (sink, stream) = SnapshotStream::channel(4);
        sink.fail(io::Error::new(io::ErrorKind::ConnectionReset, "reset")).await;
        let (chunks, error) = drain(stream).await;
        assert!(chunks.is_empty());
        assert_eq!(error, Some(io::ErrorKind::ConnectionReset));
    }

    #[test]
    fn the_blocking_ends_behave_alike() {
        let (sink, mut stream) = SnapshotStream::channel(4);
        assert!(sink.blocking_send(Ok(Bytes::from_static(b"x"))));
        sink.blocking_finish();
        assert_eq!(stream.blocking_next().map(|r| r.expect("chunk")), Some(Bytes::from_static(b"x")));
        assert!(stream.blocking_next().is_none());
        let (sink, mut stream) = SnapshotStream::channel(4);
        drop(sink);
        assert_eq!(stream.blocking_next().map(|r| r.expect_err("error").kind()), Some(io::ErrorKind::UnexpectedEof));
    }
}
