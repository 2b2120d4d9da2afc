//! Snapshot transfers: chunked, windowed, cumulatively acknowledged, resumed from the
//! acknowledged offset after a loss.
//!
//! Sender: `SnapshotStart` (transfer id + encoded header) until acknowledged; then chunks
//! of at most `snapshot_chunk_bytes`, at most `snapshot_window` unacknowledged at once;
//! an empty chunk flagged `last` ends the stream. Every chunk the receiver gets is
//! answered with a cumulative `SnapshotAck`. Two duplicate acks resend the first
//! unacknowledged chunk at once; a `snapshot_retransmit` without a new ack resends the
//! whole window from the acknowledged offset. `SnapshotDone` from the receiver ends the
//! transfer; `snapshot_stall_timeout` without progress fails it (and sends
//! `SnapshotAbort`).
//!
//! Receiver: a task per transfer (at most `max_incoming_snapshots`) keeps out-of-order
//! chunks within the window, feeds the in-order bytes into the `SnapshotStream` given to
//! `Inbound::receive_snapshot`, and acknowledges only what the stream accepted, so a
//! slow snapshot store slows the sender instead of filling memory. Once the store staged
//! it (or refused it) the receive loop sends `SnapshotDone` and remembers the outcome for
//! a while to answer a sender that missed it.

use crate::frame::{Body, MAX_OVERHEAD};
use crate::metrics::Counters;
use crate::transport::{lock, Shared};
use bytes::Bytes;
use raft_core::{NodeId, SnapshotHeader};
use raft_tokio::{Inbound, SnapshotSink, SnapshotStream, TransportError};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// What the receive loop hands an outgoing transfer.
#[derive(Debug)]
pub(crate) enum SenderEvent {
    Ack { offset: u64, complete: bool },
    Done { ok: bool, reason: String },
}

/// What the receive loop hands an incoming transfer's task.
#[derive(Debug)]
enum ReceiverEvent {
    Start,
    Chunk { offset: u64, last: bool, data: Bytes },
    Abort,
}

/// An incoming transfer: sender, sender session, transfer id.
type Key = (NodeId, u64, u64);

/// How an incoming transfer ended: staged, or why not.
pub(crate) type Outcome = Result<(), String>;

/// Results longer than this are cut (at a character boundary) to fit any datagram.
const MAX_REASON: usize = 512;

fn cut(reason: &str) -> &str {
    let mut end = reason.len().min(MAX_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

/// Removes an outgoing transfer's registration when its sender returns or is dropped.
struct Registration<'a> {
    shared: &'a Shared,
    transfer: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        lock(&self.shared.outgoing).remove(&self.transfer);
    }
}

/// Streams `header` and `data` to `header.to`; resolves once the receiver staged it or
/// the transfer failed.
pub(crate) async fn send(
    shared: Arc<Shared>,
    header: SnapshotHeader,
    mut data: SnapshotStream,
) -> Result<(), TransportError> {
    let to = header.to;
    let addr = shared.peer_addr(to).ok_or(TransportError::Unreachable(to))?;
    let opts = &shared.opts;
    let start = header.encode();
    if start.len() + 8 + MAX_OVERHEAD > opts.max_datagram {
        return Err(TransportError::Snapshot(format!(
            "the snapshot header ({} bytes) does not fit a datagram; use raft_udp::fit_config",
            start.len()
        )));
    }
    let transfer = shared.next_transfer.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = mpsc::channel(4 * opts.snapshot_window + 16);
    lock(&shared.outgoing).insert(transfer, (to, tx));
    let _registration = Registration { shared: &shared, transfer };
    let (rto, stall) = (opts.snapshot_retransmit, opts.snapshot_stall_timeout);
    let fail = |why: String| TransportError::Snapshot(format!("to node {to}, transfer {transfer}: {why}"));
    let abort = || shared.send_snapshot_frame(addr, Body::SnapshotAbort { transfer });

    // Open the transfer.
    let mut last_progress = Instant::now();
    loop {
        shared.send_snapshot_frame(addr, Body::SnapshotStart { transfer, header: &start }).await;
        match tokio::time::timeout(rto, rx.recv()).await {
            Ok(Some(SenderEvent::Ack { .. })) => break,
            Ok(Some(SenderEvent::Done { reason, .. })) => return Err(fail(format!("refused: {reason}"))),
            Ok(None) => return Err(fail("the transport stopped".into())),
            Err(_) if last_progress.elapsed() >= stall => {
                return Err(fail(format!("no answer to the start within {stall:?}")));
            }
            Err(_) => {}
        }
    }

    // Stream the bytes.
    let chunk = opts.snapshot_chunk_bytes;
    let mut window: VecDeque<(u64, Bytes, bool)> = VecDeque::with_capacity(opts.snapshot_window + 1);
    let mut input: Option<Bytes> = None;
    let (mut acked, mut next) = (0u64, 0u64);
    let (mut eof, mut complete) = (false, false);
    let mut dup_acks = 0u32;
    last_progress = Instant::now();
    let mut retransmit_at = last_progress + rto;
    loop {
        // Move input into the window while it has room, sending each piece once.
        while window.len() < opts.snapshot_window {
            let Some(mut buf) = input.take() else { break };
            let piece = buf.split_to(buf.len().min(chunk));
            if !buf.is_empty() {
                input = Some(buf);
            }
            let offset = next;
            next += piece.len() as u64;
            shared.send_snapshot_frame(addr, Body::SnapshotChunk { transfer, offset, last: false, data: &piece }).await;
            Counters::inc(&shared.counters.snapshot_chunks_sent);
            window.push_back((offset, piece, false));
        }
        let can_read = !eof && input.is_none() && window.len() < opts.snapshot_window;
        tokio::select! {
            biased;
            event = rx.recv() => match event {
                Some(SenderEvent::Ack { offset, complete: c }) => {
                    if offset > acked && offset <= next {
                        acked = offset;
                        while window.front().is_some_and(|(o, d, last)| !last && o + d.len() as u64 <= acked) {
                            window.pop_front();
                        }
                        last_progress = Instant::now();
                        retransmit_at = last_progress + rto;
                        dup_acks = 0;
                    } else if offset == acked && !window.is_empty() && !c {
                        dup_acks += 1;
                        if dup_acks == 2 {
                            if let Some((o, d, last)) = window.front() {
                                shared.send_snapshot_frame(addr, Body::SnapshotChunk { transfer, offset: *o, last: *last, data: d }).await;
                                Counters::inc(&shared.counters.snapshot_chunks_resent);
                            }
                        }
                    }
                    if c && eof && offset == next && !complete {
                        complete = true;
                        window.clear();
                        last_progress = Instant::now();
                    }
                }
                Some(SenderEvent::Done { ok: true, .. }) if eof => return Ok(()),
                Some(SenderEvent::Done { ok: true, .. }) => return Err(fail("the receiver ended before the stream did".into())),
                Some(SenderEvent::Done { ok: false, reason }) => return Err(fail(format!("refused: {reason}"))),
                None => return Err(fail("the transport stopped".into())),
            },
            read = data.next(), if can_read => match read {
                Some(Ok(bytes)) => input = (!bytes.is_empty()).then_some(bytes),
                None => {
                    eof = true;
                    shared.send_snapshot_frame(addr, Body::SnapshotChunk { transfer, offset: next, last: true, data: &[] }).await;
                    window.push_back((next, Bytes::new(), true));
                }
                Some(Err(e)) => {
                    abort().await;
                    return Err(fail(format!("reading the snapshot failed: {e}")));
                }
            },
            () = tokio::time::sleep_until(retransmit_at) => {
                let now = Instant::now();
                if window.is_empty() && !eof {
                    // Waiting for our own snapshot store, not for the peer.
                    last_progress = now;
                } else if now.duration_since(last_progress) >= stall {
                    abort().await;
                    return Err(fail(format!("no progress for {stall:?} (acknowledged {acked} of {next} bytes)")));
                }
                if complete {
                    // Everything arrived but the result was lost: ask again.
                    shared.send_snapshot_frame(addr, Body::SnapshotChunk { transfer, offset: next, last: true, data: &[] }).await;
                }
                for (o, d, last) in &window {
                    shared.send_snapshot_frame(addr, Body::SnapshotChunk { transfer, offset: *o, last: *last, data: d }).await;
                    Counters::inc(&shared.counters.snapshot_chunks_resent);
                }
                dup_acks = 0;
                retransmit_at = now + rto;
            }
        }
    }
}

/// The receive loop's view of incoming transfers.
#[derive(Default)]
pub(crate) struct Incoming {
    active: HashMap<Key, (SocketAddr, mpsc::Sender<ReceiverEvent>)>,
    /// Outcomes of finished transfers, kept for a while to answer a sender that missed them.
    finished: HashMap<Key, (SocketAddr, Result<(), String>, Instant)>,
    /// The transfers' tasks; dropping the set (the receive loop ends) aborts them.
    pub(crate) tasks: JoinSet<Outcome>,
    /// Which transfer each task serves.
    ids: HashMap<tokio::task::Id, Key>,
}

impl Incoming {
    /// Answers a frame of a finished transfer with its outcome again; true if it was one.
    fn answer_finished(&self, shared: &Shared, key: Key) -> bool {
        let Some((addr, result, _)) = self.finished.get(&key) else { return false };
        let (ok, reason) = match result {
            Ok(()) => (true, ""),
            Err(e) => (false, cut(e)),
        };
        shared.send_snapshot_frame_now(*addr, Body::SnapshotDone { transfer: key.2, ok, reason });
        true
    }

    fn refuse(shared: &Shared, to: SocketAddr, transfer: u64, why: &str) {
        Counters::inc(&shared.counters.snapshots_refused);
        tracing::info!(target: "raft::udp", node = shared.id(), %to, transfer, "snapshot refused: {why}");
        shared.send_snapshot_frame_now(to, Body::SnapshotDone { transfer, ok: false, reason: cut(why) });
    }

    pub(crate) fn on_start(
        &mut self,
        shared: &Arc<Shared>,
        inbound: &Inbound,
        key: Key,
        src: SocketAddr,
        header: &[u8],
    ) {
        if let Some((_, tx)) = self.active.get(&key) {
            let _ = tx.try_send(ReceiverEvent::Start);
            return;
        }
        if self.answer_finished(shared, key) {
            return;
        }
        let transfer = key.2;
        if self.active.len() >= shared.opts.max_incoming_snapshots {
            return Incoming::refuse(shared, src, transfer, "too many incoming snapshots at once; retry later");
        }
        let header = match SnapshotHeader::decode(header, shared.opts.max_datagram) {
            Ok((h, used)) if used == header.len() => h,
            Ok(_) => return Incoming::refuse(shared, src, transfer, "bytes after the snapshot header"),
            Err(e) => return Incoming::refuse(shared, src, transfer, &format!("bad snapshot header: {e}")),
        };
        if header.from != key.0 {
            return Incoming::refuse(shared, src, transfer, "the header's sender is not the frame's");
        }
        if header.to != shared.id() {
            let why = format!("addressed to node {}, not {}", header.to, shared.id());
            return Incoming::refuse(shared, src, transfer, &why);
        }
        let (tx, rx) = mpsc::channel(2 * shared.opts.snapshot_window + 8);
        self.active.insert(key, (src, tx));
        let task = receive(shared.clone(), inbound.clone(), transfer, src, header, rx);
        let handle = self.tasks.spawn(task);
        self.ids.insert(handle.id(), key);
    }

    pub(crate) fn on_chunk(
        &mut self,
        shared: &Shared,
        key: Key,
        src: SocketAddr,
        offset: u64,
        last: bool,
        data: Bytes,
    ) {
        if let Some((_, tx)) = self.active.get(&key) {
            if tx.try_send(ReceiverEvent::Chunk { offset, last, data }).is_err() {
                Counters::inc(&shared.counters.snapshot_frames_ignored);
            }
        } else if !self.answer_finished(shared, key) {
            // A transfer this node does not know (it restarted, or forgot it long ago):
            // tell the sender at once rather than let it wait for its stall timeout.
            Counters::inc(&shared.counters.snapshot_frames_ignored);
            let reason = "unknown transfer (the receiver restarted?)";
            shared.send_snapshot_frame_now(src, Body::SnapshotDone { transfer: key.2, ok: false, reason });
        }
    }

    pub(crate) fn on_abort(&mut self, shared: &Shared, key: Key) {
        match self.active.get(&key) {
            Some((_, tx)) => {
                let _ = tx.try_send(ReceiverEvent::Abort);
            }
            None => Counters::inc(&shared.counters.snapshot_frames_ignored),
        }
    }

    /// Records a finished transfer task's outcome and sends it to the sender. The receive
    /// loop does both, between two datagrams, so any frame of the transfer that arrives
    /// after the result went out finds it among the finished transfers.
    pub(crate) fn finished(
        &mut self,
        shared: &Shared,
        done: Result<(tokio::task::Id, Outcome), tokio::task::JoinError>,
    ) {
        let (id, outcome) = match done {
            Ok((id, result)) => (id, result),
            // A task that panicked (a bug) still frees its slot and fails its transfer.
            Err(e) => (e.id(), Err(format!("the transfer task failed: {e}"))),
        };
        let Some(key) = self.ids.remove(&id) else { return };
        let Some((addr, _)) = self.active.remove(&key) else { return };
        let c = &shared.counters;
        Counters::inc(if outcome.is_ok() { &c.snapshots_received } else { &c.snapshots_refused });
        if let Err(e) = &outcome {
            tracing::info!(target: "raft::udp", node = shared.id(), from = key.0, transfer = key.2, "incoming snapshot failed: {e}");
        }
        let now = Instant::now();
        let keep = shared.opts.snapshot_stall_timeout * 2;
        self.finished.retain(|_, (_, _, at)| now.duration_since(*at) < keep);
        if self.finished.len() >= 64 {
            if let Some(oldest) = self.finished.iter().min_by_key(|(_, (_, _, at))| *at).map(|(k, _)| *k) {
                self.finished.remove(&oldest);
            }
        }
        self.finished.insert(key, (addr, outcome, now));
        self.answer_finished(shared, key);
    }
}

/// One incoming transfer: acknowledges the start and feeds the stream while the node
/// stages it; the receive loop sends the outcome.
async fn receive(
    shared: Arc<Shared>,
    inbound: Inbound,
    transfer: u64,
    src: SocketAddr,
    header: SnapshotHeader,
    mut rx: mpsc::Receiver<ReceiverEvent>,
) -> Outcome {
    shared.send_snapshot_frame(src, Body::SnapshotAck { transfer, offset: 0, complete: false }).await;
    let (sink, stream) = SnapshotStream::channel(4);
    let (staged, fed) =
        tokio::join!(inbound.receive_snapshot(header, stream), feed(&shared, src, transfer, &mut rx, sink));
    // The node's own reason first: when it refused the snapshot, feeding failed too.
    match (staged, fed) {
        (Err(e), _) => Err(e.to_string()),
        (Ok(()), Err(e)) => Err(e),
        (Ok(()), Ok(())) => Ok(()),
    }
}

/// Puts the chunks in order into `sink`; returns once the end arrived (the sink is then
/// dropped, ending the stream) or fails the stream.
async fn feed(
    shared: &Shared,
    src: SocketAddr,
    transfer: u64,
    rx: &mut mpsc::Receiver<ReceiverEvent>,
    sink: SnapshotSink,
) -> Result<(), String> {
    let opts = &shared.opts;
    // Chunks are kept out of order only this far ahead of the stream.
    let ahead = (opts.snapshot_window * opts.snapshot_chunk_bytes) as u64 * 2;
    let max_pending = 2 * opts.snapshot_window;
    let mut pending: BTreeMap<u64, (Bytes, bool)> = BTreeMap::new();
    let mut expected = 0u64;
    let ack =
        |offset: u64, complete: bool| shared.send_snapshot_frame(src, Body::SnapshotAck { transfer, offset, complete });
    let stall: Duration = opts.snapshot_stall_timeout;
    let failure = loop {
        let event = match tokio::time::timeout(stall, rx.recv()).await {
            Err(_) => break format!("no data for {stall:?}"),
            Ok(None) => break "the transport stopped".to_owned(),
            Ok(Some(event)) => event,
        };
        let (mut offset, last, mut data) = match event {
            ReceiverEvent::Start => {
                ack(expected, false).await;
                continue;
            }
            ReceiverEvent::Abort => break "the sender gave up".to_owned(),
            ReceiverEvent::Chunk { offset, last, data } => (offset, last, data),
        };
        let end = offset + data.len() as u64;
        let stale = end < expected || (end == expected && !last);
        if stale || offset >= expected + ahead || (pending.len() >= max_pending && !pending.contains_key(&offset)) {
            Counters::inc(&shared.counters.snapshot_frames_ignored);
            ack(expected, false).await;
            continue;
        }
        if offset < expected {
            data = data.slice((expected - offset) as usize..);
            offset = expected;
        }
        pending.entry(offset).or_insert((data, last));
        let mut complete = false;
        while let Some((data, last)) = pending.remove(&expected) {
            if !data.is_empty() {
                expected += data.len() as u64;
                if sink.send(data).await.is_err() {
                    // The node refused the snapshot; its reason comes from `receive_snapshot`.
                    return Err("the node stopped reading the snapshot".to_owned());
                }
            }
            if last {
                complete = true;
                break;
            }
        }
        pending.retain(|&o, _| o >= expected);
        ack(expected, complete).await;
        if complete {
            sink.finish().await;
            return Ok(());
        }
    };
    sink.fail(std::io::Error::other(failure.clone())).await;
    Err(failure)
}

#[cfg(test)]
mod tests {
    //! The sending side against a scripted receiver: resume after a loss without resending
    //! what was acknowledged, and failure after a stall.

    use super::*;
    use crate::frame::{decode_frame, encode_frame, Envelope};
    use crate::{UdpOptions, UdpTransport};
    use raft_core::{Membership, NodeInfo, SnapshotMeta};
    use raft_tokio::Transport;
    use std::collections::BTreeMap;
    use tokio::net::UdpSocket;

    const CLUSTER: u64 = 5;

    fn options() -> UdpOptions {
        let mut o = UdpOptions::new(CLUSTER);
        o.snapshot_chunk_bytes = 1000;
        o.snapshot_window = 4;
        o.snapshot_retransmit = Duration::from_millis(30);
        o.snapshot_stall_timeout = Duration::from_millis(300);
        o
    }

    /// Node 1's transport sending to `peer` (node 2), with a stand-in for the receive
    /// loop that routes acks and results to the transfer (attaching needs a node).
    async fn sender(peer: SocketAddr) -> (UdpTransport, tokio::task::JoinHandle<()>) {
        let t = UdpTransport::bind("127.0.0.1:0".parse().expect("address"), options()).await.expect("bind");
        t.shared.id.store(1, Ordering::Release);
        t.set_peers(&BTreeMap::from([(2, NodeInfo::new(peer.to_string().into_bytes()))]));
        let shared = t.shared.clone();
        let router = tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            while let Ok((n, _)) = shared.socket.recv_from(&mut buf).await {
                let Ok(f) = decode_frame(&buf[..n], &shared.opts) else { continue };
                match f.body {
                    Body::SnapshotAck { transfer, offset, complete } => {
                        shared.to_sender(f.sender, transfer, SenderEvent::Ack { offset, complete })
                    }
                    Body::SnapshotDone { transfer, ok, reason } => {
                        shared.to_sender(f.sender, transfer, SenderEvent::Done { ok, reason: reason.into() })
                    }
                    _ => {}
                }
            }
        });
        (t, router)
    }

    fn header() -> SnapshotHeader {
        SnapshotHeader {
            from: 1,
            to: 2,
            term: 3,
            meta: SnapshotMeta { index: 9, term: 3, membership: Membership::with_voters([1, 2]) },
        }
    }

    fn stream_of(data: Vec<u8>) -> SnapshotStream {
        let (sink, stream) = SnapshotStream::channel(2);
        tokio::spawn(async move {
            for c in data.chunks(2000) {
                if sink.send(Bytes::copy_from_slice(c)).await.is_err() {
                    return;
                }
            }
            sink.finish().await;
        });
        stream
    }

    async fn reply(socket: &UdpSocket, to: SocketAddr, counter: &mut u64, body: Body<'_>) {
        *counter += 1;
        let env = Envelope { cluster_id: CLUSTER, key: None, sender: 2, session: 1, counter: *counter };
        let mut out = Vec::new();
        encode_frame(&env, &body, &mut out);
        socket.send_to(&out, to).await.expect("send");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_chunk_is_resent_from_the_acknowledged_offset() {
        let peer = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let (t, router) = sender(peer.local_addr().expect("addr")).await;
        let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let sending = tokio::spawn({
            let stream = stream_of(data.clone());
            let shared = t.shared.clone();
            async move { send(shared, header(), stream).await }
        });

        // The receiver: loses the chunk at offset 3000 once, acknowledges cumulatively.
        let (mut got, mut arrivals) = (Vec::new(), BTreeMap::<u64, u32>::new());
        let (mut counter, mut lost) = (0, false);
        let mut buf = vec![0u8; 65536];
        for _ in 0..1000 {
            let (n, from) = tokio::time::timeout(Duration::from_secs(5), peer.recv_from(&mut buf))
                .await
                .expect("the sender keeps sending")
                .expect("recv");
            let f = decode_frame(&buf[..n], &options()).expect("valid frames");
            match f.body {
                Body::SnapshotStart { transfer, header: h } => {
                    assert_eq!(SnapshotHeader::decode(h, 1 << 16).expect("header").0, header());
                    reply(&peer, from, &mut counter, Body::SnapshotAck { transfer, offset: 0, complete: false }).await;
                }
                Body::SnapshotChunk { transfer, offset, last, data: d } => {
                    *arrivals.entry(offset).or_default() += 1;
                    if offset == 3000 && !lost {
                        lost = true;
                        continue;
                    }
                    if offset == got.len() as u64 {
                        got.extend_from_slice(d);
                    }
                    let complete = last && offset == got.len() as u64;
                    reply(
                        &peer,
                        from,
                        &mut counter,
                        Body::SnapshotAck { transfer, offset: got.len() as u64, complete },
                    )
                    .await;
                    if complete {
                        reply(&peer, from, &mut counter, Body::SnapshotDone { transfer, ok: true, reason: "" }).await;
                        break;
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let result = tokio::time::timeout(Duration::from_secs(10), sending).await.expect("bounded").expect("task");
        assert_eq!(result, Ok(()));
        assert_eq!(got, data, "every byte, in order");
        assert_eq!(arrivals[&0], 1, "nothing before the lost chunk was resent: {arrivals:?}");
        assert_eq!(arrivals[&2000], 1, "nothing before the lost chunk was resent: {arrivals:?}");
        assert!(arrivals[&3000] >= 2, "the lost chunk was resent: {arrivals:?}");
        let m = t.metrics();
        assert!(m.snapshot_chunks_resent >= 1 && m.snapshot_chunks_sent == 20, "{m:?}");
        router.abort();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transfer_without_progress_fails_and_is_aborted() {
        let peer = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let (t, router) = sender(peer.local_addr().expect("addr")).await;
        let sending = tokio::spawn({
            let stream = stream_of(vec![1; 50_000]);
            let shared = t.shared.clone();
            async move { send(shared, header(), stream).await }
        });
        // Acknowledge the start, then go silent; the sender must give up and say so.
        let mut buf = vec![0u8; 65536];
        let (mut counter, mut aborted) = (0, false);
        for _ in 0..1000 {
            let Ok(received) = tokio::time::timeout(Duration::from_secs(5), peer.recv_from(&mut buf)).await else {
                break;
            };
            let (n, from) = received.expect("recv");
            match decode_frame(&buf[..n], &options()).expect("valid frames").body {
                Body::SnapshotStart { transfer, .. } if counter == 0 => {
                    reply(&peer, from, &mut counter, Body::SnapshotAck { transfer, offset: 0, complete: false }).await;
                }
                Body::SnapshotAbort { .. } => {
                    aborted = true;
                    break;
                }
                _ => {}
            }
        }
        assert!(aborted, "the sender told the receiver it gave up");
        let result = tokio::time::timeout(Duration::from_secs(10), sending).await.expect("bounded").expect("task");
        match result {
            Err(TransportError::Snapshot(why)) => assert!(why.contains("no progress"), "{why}"),
            other => panic!("expected a snapshot failure, got {other:?}"),
        }
        assert!(lock(&t.shared.outgoing).is_empty(), "the transfer unregistered");
        router.abort();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unanswered_start_fails() {
        let peer = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let (t, router) = sender(peer.local_addr().expect("addr")).await;
        let result =
            tokio::time::timeout(Duration::from_secs(10), send(t.shared.clone(), header(), stream_of(vec![1; 10])))
                .await
                .expect("bounded");
        assert!(matches!(result, Err(TransportError::Snapshot(_))), "{result:?}");
        let mut buf = vec![0u8; 65536];
        let mut starts = 0;
        while let Ok(Ok((n, _))) = tokio::time::timeout(Duration::from_millis(50), peer.recv_from(&mut buf)).await {
            if matches!(decode_frame(&buf[..n], &options()).expect("valid").body, Body::SnapshotStart { .. }) {
                starts += 1;
            }
            if starts > 100 {
                break;
            }
        }
        assert!(starts >= 2, "the start was retransmitted ({starts} seen)");
        router.abort();
    }
}
