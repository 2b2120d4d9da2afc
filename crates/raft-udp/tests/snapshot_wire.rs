//! The receiving side of a snapshot transfer, driven datagram by datagram from a plain
//! socket speaking for the leader: cumulative acks, out-of-order and duplicate chunks,
//! the final result, and the snapshot installed byte for byte.

mod common;

use common::{command, eventually, lone, Lone};
use raft_core::{Membership, Message, MessageBody, SnapshotHeader, SnapshotMeta};
use raft_udp::{decode_frame, encode_frame, encode_message_frame, Body, Envelope, UdpOptions};
use std::time::Duration;

const CLUSTER: u64 = 91;

/// A frame from node 2, numbered by `counter`.
fn from_leader(counter: &mut u64, body: &Body<'_>) -> Vec<u8> {
    *counter += 1;
    let env = Envelope { cluster_id: CLUSTER, key: None, sender: 2, session: 1, counter: *counter };
    let mut out = Vec::new();
    encode_frame(&env, body, &mut out);
    out
}

/// What node 1 sent node 2 about the transfer (messages are skipped).
#[derive(Debug, PartialEq)]
enum Reply {
    Ack(u64, bool),
    Done(bool, String),
}

fn next_reply(n: &Lone, opts: &UdpOptions) -> Reply {
    let mut buf = vec![0u8; 65536];
    for _ in 0..100 {
        let Ok((len, _)) = n.s2.recv_from(&mut buf) else { continue };
        match decode_frame(&buf[..len], opts).expect("node 1 sends valid frames").body {
            Body::SnapshotAck { transfer: 1, offset, complete } => return Reply::Ack(offset, complete),
            Body::SnapshotDone { transfer: 1, ok, reason } => return Reply::Done(ok, reason.to_owned()),
            Body::Message(_) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
    panic!("node 1 sent no snapshot reply within 100 reads; {:?}", n.udp.metrics());
}

/// A `Journal` snapshot of `values` applied as commands with `padding` bytes each: the
/// count, the values, then the padding (the suite's snapshot format).
fn journal_snapshot(values: std::ops::Range<u64>, padding: usize) -> Vec<u8> {
    let mut out = (values.end - values.start).to_le_bytes().to_vec();
    for v in values.clone() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for v in values {
        out.extend_from_slice(&command(v, padding)[8..]);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_out_of_order_and_duplicated_are_acked_cumulatively_and_installed() {
    let mut opts = UdpOptions::new(CLUSTER);
    opts.silence_timeout = Duration::from_secs(60);
    let n = lone(opts.clone()).await;
    let mut counter = 0;

    // Node 2 leads term 5.
    let hb = Message { from: 2, to: 1, term: 5, body: MessageBody::Heartbeat { commit: 0, seq: 1 } };
    counter += 1;
    let mut frame = Vec::new();
    encode_message_frame(&Envelope { cluster_id: CLUSTER, key: None, sender: 2, session: 1, counter }, &hb, &mut frame);
    n.s2.send_to(&frame, n.node).expect("send");
    eventually("node 2 followed", Duration::from_secs(5), || n.term_and_leader() == (5, Some(2))).await;

    let mut membership = Membership::with_voters([1, 2, 3]);
    membership.info.extend(n.members.iter().cloned());
    let header = SnapshotHeader { from: 2, to: 1, term: 5, meta: SnapshotMeta { index: 20, term: 5, membership } };
    let data = journal_snapshot(0..20, 1024);
    let chunks: Vec<(u64, &[u8])> = data.chunks(1000).enumerate().map(|(i, c)| (i as u64 * 1000, c)).collect();
    let send = |counter: &mut u64, body: Body<'_>| {
        n.s2.send_to(&from_leader(counter, &body), n.node).expect("send");
    };
    let chunk = |i: usize| Body::SnapshotChunk { transfer: 1, offset: chunks[i].0, last: false, data: chunks[i].1 };

    let encoded = header.encode();
    send(&mut counter, Body::SnapshotStart { transfer: 1, header: &encoded });
    assert_eq!(next_reply(&n, &opts), Reply::Ack(0, false), "the start is acknowledged");
    send(&mut counter, Body::SnapshotStart { transfer: 1, header: &encoded });
    assert_eq!(next_reply(&n, &opts), Reply::Ack(0, false), "a repeated start is acknowledged again");

    send(&mut counter, chunk(0));
    assert_eq!(next_reply(&n, &opts), Reply::Ack(1000, false));
    send(&mut counter, chunk(2));
    assert_eq!(next_reply(&n, &opts), Reply::Ack(1000, false), "a gap: the ack stays");
    send(&mut counter, chunk(1));
    assert_eq!(next_reply(&n, &opts), Reply::Ack(3000, false), "the gap filled: both chunks acknowledged");
    send(&mut counter, chunk(1));
    assert_eq!(next_reply(&n, &opts), Reply::Ack(3000, false), "a duplicate changes nothing");
    let ignored = n.udp.metrics().snapshot_frames_ignored;
    assert!(ignored >= 1, "the duplicate was counted as ignored");
    for (i, (offset, bytes)) in chunks.iter().enumerate().skip(3) {
        send(&mut counter, chunk(i));
        assert_eq!(next_reply(&n, &opts), Reply::Ack(offset + bytes.len() as u64, false));
    }
    let total = data.len() as u64;
    send(&mut counter, Body::SnapshotChunk { transfer: 1, offset: total, last: true, data: &[] });
    assert_eq!(next_reply(&n, &opts), Reply::Ack(total, true));
    assert_eq!(next_reply(&n, &opts), Reply::Done(true, String::new()), "staged durably");

    // A late chunk of the finished transfer is answered with its result again.
    send(&mut counter, chunk(0));
    assert_eq!(next_reply(&n, &opts), Reply::Done(true, String::new()));

    eventually("the snapshot installed", Duration::from_secs(10), || n.raft.status().snapshot_index == 20).await;
    let state = n.raft.read_with((), raft_tokio::Consistency::Local).await.expect("read");
    assert_eq!(state.values, (0..20).collect::<Vec<_>>());
    use raft_tokio::StateMachine;
    let mut sent = common::Journal::default();
    sent.restore(&mut &data[..]).expect("the snapshot sent is a journal");
    assert_eq!(state, sent.query(()), "installed byte for byte (the padding by checksum)");
    assert_eq!(n.udp.metrics().snapshots_received, 1);
    n.raft.shutdown().await.expect("shutdown");
}

/// A chunk of a transfer the node never heard of (say, it restarted since) is answered
/// with a failure at once, so the sender need not wait for its stall timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_of_an_unknown_transfer_is_answered_with_a_failure() {
    let mut opts = UdpOptions::new(CLUSTER);
    opts.silence_timeout = Duration::from_secs(60);
    let n = lone(opts.clone()).await;
    let mut counter = 0;
    let chunk = Body::SnapshotChunk { transfer: 1, offset: 4096, last: false, data: b"orphan" };
    n.s2.send_to(&from_leader(&mut counter, &chunk), n.node).expect("send");
    let reply = next_reply(&n, &opts);
    let Reply::Done(false, reason) = reply else { panic!("expected a failure, got {reply:?}") };
    assert!(reason.contains("unknown transfer"), "{reason}");
    assert_eq!(n.udp.metrics().snapshot_frames_ignored, 1);
    n.raft.shutdown().await.expect("shutdown");
}

/// A start whose header is addressed to another node is refused at once, with a reason,
/// and nothing is staged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_for_another_node_is_refused() {
    let mut opts = UdpOptions::new(CLUSTER);
    opts.silence_timeout = Duration::from_secs(60);
    let n = lone(opts.clone()).await;
    let mut counter = 0;
    let header = SnapshotHeader {
        from: 2,
        to: 3,
        term: 5,
        meta: SnapshotMeta { index: 20, term: 5, membership: Membership::with_voters([1, 2, 3]) },
    };
    let encoded = header.encode();
    n.s2.send_to(&from_leader(&mut counter, &Body::SnapshotStart { transfer: 1, header: &encoded }), n.node)
        .expect("send");
    let reply = next_reply(&n, &opts);
    let Reply::Done(false, reason) = reply else { panic!("expected a refusal, got {reply:?}") };
    assert!(reason.contains("addressed to node 3"), "{reason}");
    eventually("the refusal counted", Duration::from_secs(5), || n.udp.metrics().snapshots_refused == 1).await;
    assert_eq!(n.raft.status().snapshot_index, 0);
    n.raft.shutdown().await.expect("shutdown");
}
