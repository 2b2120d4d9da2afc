//! Real `raft_tokio::Raft` clusters over UDP on 127.0.0.1: replication with and without a
//! key, the size limits through the core, a snapshot larger than a datagram over a lossy
//! path, and a silent peer reported unreachable.

mod common;

use common::{command, eventually, Cluster};
use raft_core::ProposalError;
use raft_tokio::ProposeError;
use raft_udp::UdpOptions;
use std::time::Duration;

const KEY: [u8; 32] = [0x42; 32];

async fn replicate(options: UdpOptions) {
    replicate_on(options, common::localhost()).await
}

async fn replicate_on(options: UdpOptions, bind: std::net::SocketAddr) {
    let c = Cluster::start_on(3, options, bind).await;
    for info in c.infos.values() {
        let addr: std::net::SocketAddr =
            std::str::from_utf8(info.as_bytes()).expect("text").parse().expect("an address");
        assert_eq!(addr.ip(), bind.ip(), "node info names the bound address");
    }
    c.leader().await;
    for v in 0..50 {
        c.propose(command(v, 100)).await.expect("proposal");
    }
    let values = c.converged(50).await;
    assert_eq!(values, (0..50).collect::<Vec<_>>());
    for n in c.nodes.values() {
        let m = n.udp.metrics();
        assert!(m.messages_delivered > 0, "{m:?}");
        let bad = m.dropped_unauthenticated + m.dropped_replayed + m.dropped_bad_checksum + m.dropped_malformed;
        assert_eq!(bad, 0, "a healthy cluster drops nothing: {m:?}");
    }
    c.shutdown_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_over_udp() {
    replicate(UdpOptions::new(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_over_authenticated_udp() {
    replicate(UdpOptions::new(2).with_key(KEY)).await;
}

/// The same over IPv6 loopback: node info `[::1]:port`, every datagram from and to ::1,
/// the sender's address checked against it (no IPv4-mapped form in between).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_over_authenticated_udp_on_ipv6() {
    replicate_on(UdpOptions::new(9).with_key(KEY), "[::1]:0".parse().expect("an address")).await;
}

/// The transport fits the core's limits at start (`Transport::fit_config`, called by
/// `Raft::start`): the core refuses a proposal one byte over the limit with `TooLarge`,
/// and the largest accepted command replicates: its append fits one datagram.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_core_refuses_too_large_proposals_and_replicates_maximal_ones() {
    let options = UdpOptions::new(3).with_key(KEY);
    let (max_entry, _, _) = raft_udp::fitted_limits(&options).expect("limits");
    let c = Cluster::start(3, options, |_| {}).await;
    c.leader().await;
    match c.propose(command(1, max_entry - 8 + 1)).await {
        Err(ProposeError::Rejected(ProposalError::TooLarge { size, max })) => {
            assert_eq!((size, max), (max_entry + 1, max_entry));
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    c.propose(command(2, max_entry - 8)).await.expect("a maximal command is accepted");
    c.propose(command(3, 0)).await.expect("a small one after it");
    assert_eq!(c.converged(2).await, vec![2, 3]);
    for n in c.nodes.values() {
        assert_eq!(n.udp.metrics().send_too_large, 0, "nothing was too large to send");
    }
    c.shutdown_all().await;
}

/// A config that raises the core's limits above what a datagram carries is lowered again
/// when the node starts: the user cannot forget `fit_config`. Before, the transport left
/// the config alone unless its user called `fit_config`, and a 100 kB command was
/// accepted, appended and never sent (the test below).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transport_fits_a_config_that_raised_the_limits() {
    let options = UdpOptions::new(6);
    let (max_entry, _, _) = raft_udp::fitted_limits(&options).expect("limits");
    let c = Cluster::start(3, options, |cfg| {
        cfg.max_entry_bytes = 1 << 20;
        cfg.max_bytes_per_message = 1 << 20;
    })
    .await;
    c.leader().await;
    // Unfitted, the command would be appended and never sent: it would never complete.
    let answer = tokio::time::timeout(Duration::from_secs(10), c.propose(command(1, 100_000))).await;
    match answer.expect("the proposal was answered") {
        Err(ProposeError::Rejected(ProposalError::TooLarge { max, .. })) => assert_eq!(max, max_entry),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    c.propose(command(2, 0)).await.expect("a small command");
    assert_eq!(c.converged(1).await, vec![2]);
    for n in c.nodes.values() {
        assert_eq!(n.udp.metrics().send_too_large, 0, "nothing was too large to send");
    }
    c.shutdown_all().await;
}

/// A transport that does not fit the config (a wrapper whose `fit_config` accepts
/// anything) lets the leader accept a command no datagram can carry: the append is
/// dropped at send and counted, nothing panics, and the command never commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_too_large_for_a_datagram_is_dropped_and_counted() {
    let c = Cluster::start_unfitted(3, UdpOptions::new(6), |cfg| {
        cfg.max_entry_bytes = 1 << 20;
        cfg.max_bytes_per_message = 1 << 20;
    })
    .await;
    let leader = c.leader().await;
    let raft = c.raft(leader).clone();
    let proposal = tokio::spawn(async move { raft.propose(command(1, 100_000)).await });
    eventually("the oversized append counted", Duration::from_secs(10), || {
        c.nodes[&leader].udp.metrics().send_too_large >= 1
    })
    .await;
    // The status is published after each drain: wait for it to show the appended entry.
    eventually("the oversized entry appended, not committed", Duration::from_secs(10), || {
        let s = c.raft(leader).status();
        s.last_log_index > s.commit_index
    })
    .await;
    assert!(!proposal.is_finished(), "a command that cannot be replicated does not commit");
    proposal.abort();
    for n in c.nodes.values() {
        let _ = n.raft.kill().await;
    }
}

/// A node joins after the log was compacted: the leader streams a ~200 KiB snapshot to it
/// in chunks while every 5th snapshot datagram (both ways) is lost. It arrives intact (the
/// joiner's journal, 1 KiB of padding per command, equals the others' by checksum), and
/// lost chunks are resent from the acknowledged offset, not from the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_larger_than_a_datagram_arrives_intact_over_a_lossy_path() {
    let mut options = UdpOptions::new(4).with_key(KEY);
    options.test_drop_every_nth_snapshot_datagram = 5;
    options.snapshot_retransmit = Duration::from_millis(50);
    let mut c = Cluster::start(3, options, |cfg| cfg.snapshot_policy.max_entries = 50).await;
    let leader = c.leader().await;
    let total = 200u64;
    for v in 0..total {
        c.propose(command(v, 1024)).await.expect("proposal");
    }
    eventually("a snapshot on the leader", Duration::from_secs(20), || c.raft(leader).status().snapshot_index > 0)
        .await;

    let info = c.start_joiner(4).await;
    c.raft(leader).add_learner(4, info).await.expect("add learner");
    let values = c.converged(total as usize).await;
    assert_eq!(values, (0..total).collect::<Vec<_>>());
    let joined = c.raft(4).metrics();
    assert!(joined.commands_applied < total, "node 4 applied {} commands itself: no snapshot", joined.commands_applied);

    // The result may have been lost too: the leader learns it on a resend.
    eventually("the transfer counted on both sides", Duration::from_secs(20), || {
        c.nodes[&leader].udp.metrics().snapshots_sent >= 1 && c.nodes[&4].udp.metrics().snapshots_received >= 1
    })
    .await;
    let sent = c.nodes[&leader].udp.metrics();
    assert!(sent.snapshot_chunks_sent * 8 * 1024 > 65_507, "more than one datagram's worth: {sent:?}");
    assert!(sent.snapshot_chunks_resent > 0, "losses were repaired: {sent:?}");
    assert!(
        sent.snapshot_chunks_resent < sent.snapshot_chunks_sent,
        "resent from the acknowledged offset, not from scratch: {sent:?}"
    );
    c.shutdown_all().await;
}

/// A follower that stops answering is reported to the leader's core as unreachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_is_reported_unreachable() {
    let mut options = UdpOptions::new(5);
    options.silence_timeout = Duration::from_millis(300);
    let c = Cluster::start(3, options, |_| {}).await;
    let leader = c.leader().await;
    let follower = *c.nodes.keys().find(|&&id| id != leader).expect("a follower");
    let before = c.raft(leader).core_metrics().await.expect("metrics").unreachable_reports;
    c.raft(follower).kill().await.expect("kill");

    let start = tokio::time::Instant::now();
    loop {
        let now = c.raft(leader).core_metrics().await.expect("metrics").unreachable_reports;
        if now > before {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "the silent follower was never reported");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(c.nodes[&leader].udp.metrics().unreachable_reports >= 1);
    c.shutdown_all().await;
}
