//! Raw datagrams from a plain `std::net::UdpSocket` at a live node: every kind of bad,
//! forged, replayed or spoofed datagram is dropped and counted, and the node's state does
//! not change; a valid one afterwards still works.
//!
//! Node 1 runs for real; its configuration names nodes 2 and 3 at the addresses of two
//! sockets the test owns, so the test speaks for them.

mod common;

use common::{eventually, lone};
use raft_core::{Message, MessageBody, NodeId, Role};
use raft_udp::{decode_frame, encode_frame, encode_message_frame, Body, Envelope, UdpOptions};
use std::time::Duration;

const KEY: [u8; 32] = [0x5A; 32];
const CLUSTER: u64 = 77;

fn heartbeat(from: NodeId, term: u64) -> Message {
    Message { from, to: 1, term, body: MessageBody::Heartbeat { commit: 0, seq: 1 } }
}

fn frame(key: Option<&[u8; 32]>, sender: NodeId, session: u64, counter: u64, msg: &Message) -> Vec<u8> {
    let env = Envelope { cluster_id: CLUSTER, key, sender, session, counter };
    let mut out = Vec::new();
    encode_message_frame(&env, msg, &mut out);
    out
}

fn fix_crc(bytes: &mut [u8]) {
    let n = bytes.len();
    let crc = crc32fast::hash(&bytes[..n - 4]);
    bytes[n - 4..].copy_from_slice(&crc.to_le_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_replayed_and_spoofed_datagrams_are_dropped_and_counted() {
    let mut options = UdpOptions::new(CLUSTER).with_key(KEY);
    options.silence_timeout = Duration::from_secs(60);
    let n = lone(options.clone()).await;

    // The node's own datagrams are signed: the first one node 2 gets is its pre-vote.
    let mut buf = vec![0u8; 65536];
    let mut seen_prevote = false;
    for _ in 0..100 {
        let Ok((len, src)) = n.s2.recv_from(&mut buf) else { continue };
        assert_eq!(src, n.node);
        let f = decode_frame(&buf[..len], &options).expect("the node's datagrams verify under the key");
        assert!(f.authenticated);
        assert_eq!(f.sender, 1);
        if let Body::Message(m) = f.body {
            let m = Message::decode(m, 1 << 16).expect("a message");
            if matches!(m.body, MessageBody::VoteRequest { pre_vote: true, .. }) {
                seen_prevote = true;
                break;
            }
        }
    }
    assert!(seen_prevote, "node 1 campaigns by pre-vote, signed");
    let before = n.term_and_leader();
    assert_ne!(before.1, Some(2));

    // Forged: signed with another key, or not signed.
    n.send_and_count(
        &n.s2,
        &frame(Some(&[1; 32]), 2, 1000, 1, &heartbeat(2, 10)),
        "forged",
        |m| m.dropped_unauthenticated,
        1,
    )
    .await;
    n.send_and_count(&n.s2, &frame(None, 2, 1000, 1, &heartbeat(2, 10)), "unsigned", |m| m.dropped_unauthenticated, 2)
        .await;
    assert_eq!(n.term_and_leader(), before, "forged datagrams change nothing");

    // A valid heartbeat from node 2 (session 1000, counter 1) makes it the leader of term 5.
    let valid = frame(Some(&KEY), 2, 1000, 1, &heartbeat(2, 5));
    n.s2.send_to(&valid, n.node).expect("send");
    eventually("node 2 is followed in term 5", Duration::from_secs(5), || n.term_and_leader() == (5, Some(2))).await;
    assert_eq!(n.raft.status().role, Role::Follower);

    // Replays: the same datagram again; the same counter with another content; an older
    // session (a datagram recorded before node 2 "restarted").
    n.send_and_count(&n.s2, &valid, "exact replay", |m| m.dropped_replayed, 1).await;
    n.send_and_count(
        &n.s2,
        &frame(Some(&KEY), 2, 1000, 1, &heartbeat(2, 9)),
        "counter reused",
        |m| m.dropped_replayed,
        2,
    )
    .await;
    n.send_and_count(
        &n.s2,
        &frame(Some(&KEY), 2, 999, 50, &heartbeat(2, 9)),
        "older session",
        |m| m.dropped_replayed,
        3,
    )
    .await;
    assert_eq!(n.term_and_leader(), (5, Some(2)), "replays change nothing");

    // Node 3's socket claims to be node 2: its configured address differs. The copy does
    // not use up the counter: the genuine datagram with it, from node 2, still counts.
    let genuine = frame(Some(&KEY), 2, 1000, 2, &heartbeat(2, 5));
    n.send_and_count(&n.s3, &genuine, "address mismatch", |m| m.dropped_address_mismatch, 1).await;
    let delivered = n.udp.metrics().messages_delivered;
    n.send_and_count(&n.s2, &genuine, "the genuine one delivered", |m| m.messages_delivered, delivered + 1).await;
    assert_eq!(n.udp.metrics().dropped_replayed, 3);
    // Node 2's frame carrying a message from node 3.
    n.send_and_count(
        &n.s2,
        &frame(Some(&KEY), 2, 1000, 3, &heartbeat(3, 9)),
        "sender mismatch",
        |m| m.dropped_sender_mismatch,
        1,
    )
    .await;
    // Another cluster, same key.
    let mut other = Vec::new();
    let env = Envelope { cluster_id: CLUSTER + 1, key: Some(&KEY), sender: 2, session: 1000, counter: 4 };
    encode_message_frame(&env, &heartbeat(2, 9), &mut other);
    n.send_and_count(&n.s2, &other, "wrong cluster", |m| m.dropped_wrong_cluster, 1).await;
    assert_eq!(n.term_and_leader(), (5, Some(2)), "spoofed datagrams change nothing");

    // Still listening: a valid, newer datagram is accepted.
    n.s2.send_to(&frame(Some(&KEY), 2, 1001, 1, &heartbeat(2, 7)), n.node).expect("send");
    eventually("term 7 from node 2's new session", Duration::from_secs(5), || n.term_and_leader() == (7, Some(2)))
        .await;
    let m = n.udp.metrics();
    assert_eq!(m.dropped_bad_checksum + m.dropped_malformed + m.dropped_truncated, 0, "{m:?}");
    n.raft.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_bad_datagram_is_dropped_and_counted_without_a_key() {
    let mut options = UdpOptions::new(CLUSTER);
    options.silence_timeout = Duration::from_secs(60);
    let n = lone(options).await;
    let before = n.term_and_leader();
    let good = frame(None, 2, 1, 1, &heartbeat(2, 9));
    let s = &n.s2;

    n.send_and_count(s, &good[..20], "truncated", |m| m.dropped_truncated, 1).await;
    n.send_and_count(s, b"hello, are you a DNS server?", "bad magic", |m| m.dropped_bad_magic, 1).await;
    let mut v = good.clone();
    v[4] = 9;
    n.send_and_count(s, &v, "frame version", |m| m.dropped_wrong_version, 1).await;
    let mut core_version = good.clone();
    core_version[raft_udp::HEADER_LEN] = raft_core::WIRE_VERSION + 1;
    fix_crc(&mut core_version);
    n.send_and_count(s, &core_version, "core wire version", |m| m.dropped_wrong_version, 2).await;
    let mut big = good.clone();
    big.resize(65_100, 0);
    n.send_and_count(s, &big, "oversized", |m| m.dropped_oversized, 1).await;
    let mut flipped = good.clone();
    flipped[raft_udp::HEADER_LEN + 2] ^= 0xFF;
    n.send_and_count(s, &flipped, "bad checksum", |m| m.dropped_bad_checksum, 1).await;
    let mut cluster = good.clone();
    cluster[8] ^= 1;
    fix_crc(&mut cluster);
    n.send_and_count(s, &cluster, "wrong cluster", |m| m.dropped_wrong_cluster, 1).await;
    let mut kind = good.clone();
    kind[5] = 200;
    fix_crc(&mut kind);
    n.send_and_count(s, &kind, "unknown kind", |m| m.dropped_unknown_kind, 1).await;
    let mut flags = good.clone();
    flags[7] = 1;
    fix_crc(&mut flags);
    n.send_and_count(s, &flags, "malformed header", |m| m.dropped_malformed, 1).await;
    let mut junk = Vec::new();
    let env = Envelope { cluster_id: CLUSTER, key: None, sender: 2, session: 1, counter: 2 };
    encode_frame(&env, &Body::Message(&[raft_core::WIRE_VERSION, 0xFF, 0xFF, 0xFF]), &mut junk);
    n.send_and_count(s, &junk, "malformed message", |m| m.dropped_malformed, 2).await;
    let mut keyed = Vec::new();
    encode_message_frame(&Envelope { key: Some(&KEY), ..env }, &heartbeat(2, 9), &mut keyed);
    n.send_and_count(s, &keyed, "a MAC the node cannot check", |m| m.dropped_unauthenticated, 1).await;
    let misaddressed = Message { to: 3, ..heartbeat(2, 9) };
    n.send_and_count(s, &frame(None, 2, 1, 3, &misaddressed), "misaddressed", |m| m.dropped_misaddressed, 1).await;
    n.send_and_count(&n.s3, &good, "address mismatch", |m| m.dropped_address_mismatch, 1).await;
    // Snapshot frames of transfers nobody started.
    let mut chunk = Vec::new();
    encode_frame(&env, &Body::SnapshotChunk { transfer: 5, offset: 0, last: false, data: b"x" }, &mut chunk);
    n.send_and_count(s, &chunk, "chunk of an unknown transfer", |m| m.snapshot_frames_ignored, 1).await;
    let mut ack = Vec::new();
    encode_frame(&env, &Body::SnapshotAck { transfer: 5, offset: 1, complete: false }, &mut ack);
    n.send_and_count(s, &ack, "ack of an unknown transfer", |m| m.snapshot_frames_ignored, 2).await;
    assert_eq!(n.term_and_leader(), before, "no bad datagram changed the node's state");

    // The good one, unchanged, still works.
    s.send_to(&good, n.node).expect("send");
    eventually("term 9 from node 2", Duration::from_secs(5), || n.term_and_leader() == (9, Some(2))).await;
    let m = n.udp.metrics();
    assert!(m.datagrams_received >= 16, "{m:?}");
    assert!(m.messages_delivered >= 1);
    n.raft.shutdown().await.expect("shutdown");
}

/// The receive path alone, behind an `Inbound::probe` instead of a node: a genuine
/// datagram delivers exactly the message it carries, once; a forged, a replayed and a
/// spoofed copy deliver nothing (so the node behind would never see them), and each is
/// counted under its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_genuine_datagrams_reach_the_inbound() {
    common::init_tracing();
    let options = UdpOptions::new(CLUSTER).with_key(KEY);
    let t = raft_udp::UdpTransport::bind(common::localhost(), options).await.expect("bind");
    let (node, udp) = (t.local_addr(), t.handle());
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let stranger = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let (inbound, mut probe) = raft_tokio::Inbound::probe(1, 16);
    use raft_tokio::Transport;
    t.attach(inbound);
    let peers = [(1, t.node_info()), (2, raft_core::NodeInfo::new(peer.local_addr().expect("addr").to_string()))];
    t.set_peers(&peers.into_iter().collect());

    let msg = heartbeat(2, 7);
    let genuine = frame(Some(&KEY), 2, 1000, 1, &msg);
    peer.send_to(&genuine, node).expect("send");
    let got = probe.message(Duration::from_secs(5)).await.expect("the genuine heartbeat arrives");
    assert_eq!(got, msg);

    peer.send_to(&frame(Some(&[1; 32]), 2, 1000, 2, &msg), node).expect("send"); // forged
    peer.send_to(&genuine, node).expect("send"); // replayed
    stranger.send_to(&frame(Some(&KEY), 2, 1000, 3, &msg), node).expect("send"); // spoofed
    eventually("three drops counted", Duration::from_secs(5), || {
        let m = udp.metrics();
        m.dropped_unauthenticated == 1 && m.dropped_replayed == 1 && m.dropped_address_mismatch == 1
    })
    .await;
    assert_eq!(probe.message(Duration::from_millis(200)).await, None, "nothing else reached the inbound");
    assert_eq!(probe.dropped_messages(), 0);
    t.detach();
}
