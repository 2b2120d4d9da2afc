//! Nodes over QUIC: replication, snapshots, unreachable peers, restarts.

mod common;

use common::*;
use raft_core::{Config, SnapshotPolicy};
use raft_tokio::Options;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_and_replicate() {
    elect_and_replicate(localhost()).await;
}

/// The same over IPv6 loopback: node info `[::1]:port`, connections from and to ::1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_and_replicate_on_ipv6() {
    elect_and_replicate("[::1]:0".parse().expect("an address")).await;
}

async fn elect_and_replicate(bind: std::net::SocketAddr) {
    let c = Cluster::start_on(3, |_| {}, bind).await;
    assert!(c.addrs.values().all(|a| a.ip() == bind.ip()), "{:?}", c.addrs);
    for i in 0..20 {
        c.propose(&[1, 2, 3], cmd(i, 64)).await;
    }
    let state = c.converged(&[1, 2, 3], 20).await;
    assert_eq!(state.values, (0..20).collect::<Vec<_>>());
    assert_eq!(state.ballast_len, 20 * (64 - 8));
    let leader = c.leader_among(&[1, 2, 3]).await;
    let m = c.node(leader).transport.metrics();
    assert!(m.messages_sent > 0 && m.connections_opened >= 2, "{m:?}");
    for id in [1, 2, 3] {
        let m = c.node(id).transport.metrics();
        assert_eq!(
            (m.malformed_messages, m.sender_mismatch, m.client_certs_refused, m.server_certs_refused),
            (0, 0, 0, 0),
            "node {id}: {m:?}"
        );
    }
    c.shutdown().await;
}

/// Entries larger than a packet and appends with many entries travel on the bulk stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_entries_replicate() {
    let c = Cluster::start(3, |_| {}).await;
    for i in 0..8 {
        c.propose(&[1, 2, 3], cmd(i, 200_000)).await;
    }
    let state = c.converged(&[1, 2, 3], 8).await;
    assert_eq!(state.values, (0..8).collect::<Vec<_>>());
    assert_eq!(state.ballast_len, 8 * (200_000 - 8));
    c.shutdown().await;
}

fn small_messages_and_frequent_snapshots(c: &mut Config) {
    c.max_bytes_per_message = 16 * 1024;
    c.max_entry_bytes = 8 * 1024;
    c.snapshot_policy = SnapshotPolicy { max_entries: 20, max_bytes: 1 << 30 };
}

/// A learner added after the log was compacted catches up by a snapshot several times
/// larger than the largest message frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_larger_than_a_message_arrives() {
    let mut c = Cluster::start(2, small_messages_and_frequent_snapshots).await;
    for i in 0..100 {
        c.propose(&[1, 2], cmd(i, 4096)).await;
    }
    c.converged(&[1, 2], 100).await;
    let leader = c.leader_among(&[1, 2]).await;
    eventually("the leader compacted its log", || {
        let s = c.node(leader).raft.status();
        async move { s.snapshot_index >= 80 }
    })
    .await;

    let t3 = c.bind(3, localhost()).await;
    c.addrs.insert(3, t3.local_addr());
    let max_frame = quic_options(c.ca.tls_config(3).unwrap(), &config(3, c.tweak)).max_frame_len;
    c.node(leader).raft.add_learner(3, info(t3.local_addr())).await.expect("learner added");
    let raft = start_raft(config(3, c.tweak), Options::join(c.members()), t3.clone()).await;
    c.nodes.insert(3, Node { raft, transport: t3 });

    let state = c.converged(&[1, 2, 3], 100).await;
    // A journal's snapshot: the count, each value, then the padding.
    let snapshot_bytes = 8 + 8 * state.values.len() + state.ballast_len;
    assert!(snapshot_bytes > 2 * max_frame, "the snapshot ({snapshot_bytes} B) must exceed a frame ({max_frame} B)");
    let received = c.node(3).transport.metrics();
    assert!(received.snapshots_received >= 1, "{received:?}");
    assert_eq!(received.snapshot_receive_failures, 0, "{received:?}");
    assert!(c.node(leader).transport.metrics().snapshots_sent >= 1);
    c.shutdown().await;
}

/// A follower whose process stops (its endpoint closes) is reported unreachable to the
/// leader's core.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_peer_is_reported_unreachable() {
    let c = Cluster::start(3, |_| {}).await;
    c.propose(&[1, 2, 3], cmd(1, 8)).await;
    c.converged(&[1, 2, 3], 1).await;
    let leader = c.leader_among(&[1, 2, 3]).await;
    let follower = [1, 2, 3].into_iter().find(|&id| id != leader).expect("a follower");
    let lead = &c.node(leader).raft;
    let before = lead.core_metrics().await.expect("running").unreachable_reports;
    let lost_before = c.node(leader).transport.metrics().connections_lost;

    c.node(follower).raft.kill().await.expect("killed");
    eventually("the leader's core hears the follower is unreachable", || {
        let lead = lead.clone();
        async move { lead.core_metrics().await.expect("running").unreachable_reports > before }
    })
    .await;
    let m = c.node(leader).transport.metrics();
    assert!(m.connections_lost > lost_before, "{m:?}");
    assert!(m.unreachable_reports >= 1, "{m:?}");
    c.shutdown().await;
}

/// A member whose address answers nothing (a silent host): connection attempts time out,
/// and the leader's core is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_peer_is_reported_unreachable() {
    init_tracing();
    let ca = raft_quic::dev_certs::DevCa::generate().unwrap();
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("a UDP socket");
    let mut transports = Vec::new();
    for id in [1, 2] {
        transports
            .push(bind_retrying(localhost(), id, quic_options(ca.tls_config(id).unwrap(), &Config::new(id))).await);
    }
    let members = vec![
        (1, info(transports[0].local_addr())),
        (2, info(transports[1].local_addr())),
        (3, info(silent.local_addr().unwrap())),
    ];
    let mut rafts = Vec::new();
    for (i, t) in transports.iter().enumerate() {
        let id = i as u64 + 1;
        rafts.push(start_raft(Config::new(id), Options::bootstrap(members.clone()), t.clone()).await);
    }
    let mut leader = None;
    eventually("nodes 1 and 2 elect a leader", || {
        leader = rafts.iter().position(|r| r.status().role == raft_core::Role::Leader);
        async move { leader.is_some() }
    })
    .await;
    let (lead, transport) = (&rafts[leader.unwrap()], &transports[leader.unwrap()]);
    eventually("the leader's core hears node 3 is unreachable", || {
        let lead = lead.clone();
        async move { lead.core_metrics().await.expect("running").unreachable_reports > 0 }
    })
    .await;
    eventually("a connection attempt to node 3 timed out", || {
        let m = transport.metrics();
        async move { m.connect_failures > 0 && m.unreachable_reports > 0 }
    })
    .await;
    for r in &rafts {
        let _ = r.shutdown().await;
    }
    drop(silent);
}

/// A follower whose process freezes without closing anything (its runtime is dropped:
/// no close is sent, packets are no longer answered) is reported unreachable once the
/// connection's idle timeout expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_peer_times_out_and_is_reported_unreachable() {
    init_tracing();
    let ca = raft_quic::dev_certs::DevCa::generate().unwrap();
    let options = |id| quic_options(ca.tls_config(id).unwrap(), &Config::new(id));
    let mut transports = Vec::new();
    for id in [1, 2] {
        transports.push(bind_retrying(localhost(), id, options(id)).await);
    }
    // Node 3 lives on a runtime of its own, built and entered on another thread.
    let options3 = options(3);
    let (rt3, t3) = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let t = rt.block_on(async { raft_quic::QuicTransport::bind(localhost(), 3, options3).expect("bind") });
        (rt, t)
    })
    .join()
    .expect("node 3's thread");
    let members: Vec<_> = transports.iter().chain([&t3]).map(|t| (t.id(), info(t.local_addr()))).collect();
    let mut rafts = Vec::new();
    for t in &transports {
        // Nodes 1 and 2 never elect node 3: it may not campaign (it starts paused).
        rafts.push(start_raft(Config::new(t.id()), Options::bootstrap(members.clone()), t.clone()).await);
    }
    let members3 = members.clone();
    let raft3 = rt3
        .spawn(async move {
            let mut c = Config::new(3);
            c.start_paused = true;
            start_raft(c, Options::bootstrap(members3), t3).await
        })
        .await
        .expect("node 3 starts");
    let mut leader = None;
    eventually("nodes 1 and 2 elect a leader", || {
        leader = rafts.iter().position(|r| r.status().role == raft_core::Role::Leader);
        async move { leader.is_some() }
    })
    .await;
    let (lead, transport) = (&rafts[leader.unwrap()], &transports[leader.unwrap()]);
    lead.propose(cmd(1, 8)).await.expect("committed");
    eventually("node 3 catches up", || {
        let s = raft3.status();
        async move { s.commit_index >= 2 }
    })
    .await;
    let before = lead.core_metrics().await.expect("running").unreachable_reports;
    let lost = transport.metrics().connections_lost;

    rt3.shutdown_background();
    eventually("the leader's connection to node 3 times out", || {
        let m = transport.metrics();
        async move { m.connections_lost > lost }
    })
    .await;
    eventually("the leader's core hears node 3 is unreachable", || {
        let lead = lead.clone();
        async move { lead.core_metrics().await.expect("running").unreachable_reports > before }
    })
    .await;
    lead.propose(cmd(2, 8)).await.expect("nodes 1 and 2 still commit");
    for r in &rafts {
        let _ = r.shutdown().await;
    }
    drop(raft3);
}

/// A voter that stops and restarts from its disk on the same address is reached again:
/// the leader reconnects and the voter catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_peer_restarts_on_same_address() {
    init_tracing();
    let dir = tempfile::tempdir().expect("a temp dir");
    let ca = raft_quic::dev_certs::DevCa::generate().unwrap();
    let options = |id| quic_options(ca.tls_config(id).unwrap(), &Config::new(id));
    let mut transports = std::collections::BTreeMap::new();
    for id in [1, 2, 3] {
        transports.insert(id, bind_retrying(localhost(), id, options(id)).await);
    }
    let members: Vec<_> = transports.iter().map(|(&id, t)| (id, info(t.local_addr()))).collect();
    let start = |id: u64, t: raft_quic::QuicTransport| {
        let (members, path) = (members.clone(), dir.path().join(format!("node-{id}")));
        async move {
            let (log, snaps) = raft_sled::open(path, &Default::default()).expect("sled stores");
            let mut o = Options::bootstrap(members);
            o.shutdown_timeout = Duration::from_secs(2);
            raft_tokio::Raft::start(Config::new(id), o, log, snaps, Journal::default(), t).await.expect("node starts")
        }
    };
    let mut rafts = std::collections::BTreeMap::new();
    for (&id, t) in &transports {
        rafts.insert(id, start(id, t.clone()).await);
    }
    let leader_of = |rafts: &std::collections::BTreeMap<u64, raft_tokio::Raft<Journal>>, among: &[u64]| {
        among.iter().copied().find(|id| rafts[id].status().role == raft_core::Role::Leader)
    };
    let propose = |rafts: std::collections::BTreeMap<u64, raft_tokio::Raft<Journal>>, among: Vec<u64>, i: u64| async move {
        let begin = tokio::time::Instant::now();
        loop {
            assert!(begin.elapsed() < PATIENCE, "proposal {i} never succeeded");
            if let Some(l) = among.iter().copied().find(|id| rafts[id].status().role == raft_core::Role::Leader) {
                if rafts[&l].propose(cmd(i, 8)).await.is_ok() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    for i in 0..5 {
        propose(rafts.clone(), vec![1, 2, 3], i).await;
    }
    // Stop a follower; the two others keep the quorum.
    let mut victim = 0;
    eventually("a leader", || {
        victim = leader_of(&rafts, &[1, 2, 3]).map(|l| if l == 3 { 1 } else { 3 }).unwrap_or(0);
        async move { victim != 0 }
    })
    .await;
    let addr = transports[&victim].local_addr();
    rafts[&victim].kill().await.expect("killed");
    let others: Vec<u64> = [1, 2, 3].into_iter().filter(|&id| id != victim).collect();
    for i in 5..10 {
        propose(rafts.clone(), others.clone(), i).await;
    }
    let opened: u64 = others.iter().map(|id| transports[id].metrics().connections_opened).sum();

    let t = bind_retrying(addr, victim, options(victim)).await;
    assert_eq!(t.local_addr(), addr);
    transports.insert(victim, t.clone());
    rafts.insert(victim, start(victim, t).await);
    for i in 10..15 {
        propose(rafts.clone(), vec![1, 2, 3], i).await;
    }
    eventually("the restarted node catches up", || {
        let r = rafts[&victim].clone();
        async move { r.read_with((), raft_tokio::Consistency::Local).await.map(|s| s.values.len()).unwrap_or(0) == 15 }
    })
    .await;
    let state = rafts[&victim].read_with((), raft_tokio::Consistency::Local).await.expect("a read");
    assert_eq!((state.values, state.ballast_len), ((0..15).collect::<Vec<_>>(), 0));
    let reopened: u64 = others.iter().map(|id| transports[id].metrics().connections_opened).sum();
    assert!(reopened > opened, "the peers reconnected to the restarted node");
    assert!(transports[&victim].metrics().messages_delivered > 0);
    for r in rafts.values() {
        let _ = r.shutdown().await;
    }
}

/// `send` never waits: with the peer's queue full, messages are dropped and counted. On a
/// current-thread runtime the peer's writer cannot run while the loop below does (it would
/// take messages off the queue as they come, as many as it likes), so exactly the queue's
/// capacity is kept and the rest dropped.
#[tokio::test(flavor = "current_thread")]
async fn full_queue_drops_and_counts() {
    use raft_core::{Message, MessageBody};
    use raft_tokio::Transport;
    init_tracing();
    let ca = raft_quic::dev_certs::DevCa::generate().unwrap();
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("a UDP socket");
    let mut options = quic_options(ca.tls_config(1).unwrap(), &Config::new(1));
    options.queue_capacity = 4;
    options.connect_timeout = Duration::from_secs(5);
    let t = bind_retrying(localhost(), 1, options).await;
    let peers = [(2, info(silent.local_addr().unwrap()))].into_iter().collect();
    t.set_peers(&peers);
    let hb = |seq| Message { from: 1, to: 2, term: 1, body: MessageBody::Heartbeat { commit: 0, seq } };
    for seq in 0..100 {
        assert_eq!(t.send(hb(seq)), Ok(()));
    }
    let m = t.metrics();
    assert_eq!(m.dropped_queue_full, 96, "{m:?}");
    t.close();
    drop(silent);
}

/// A node whose config allows messages larger than its transport's `max_frame_len` does
/// not start (`Transport::fit_config`, called by `Raft::start`): every receiver would
/// refuse those appends, so the alternative is a cluster that never replicates them.
/// With `max_frame_len` set from the config, the same node starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_larger_than_the_frame_limit_is_refused_at_start() {
    init_tracing();
    let ca = raft_quic::dev_certs::DevCa::generate().expect("dev CA");
    let mut config = Config::new(1);
    config.max_bytes_per_message = 8 << 20;
    let members = vec![(1, info(localhost()))];

    let small = quic_options(ca.tls_config(1).unwrap(), &Config::new(1));
    let t = bind_retrying(localhost(), 1, small).await;
    let (log, snaps) = raft_storage::mem_stores();
    match raft_tokio::Raft::start(
        config.clone(),
        Options::bootstrap(members.clone()),
        log,
        snaps,
        Journal::default(),
        t,
    )
    .await
    {
        Err(raft_tokio::StartError::Transport(why)) => assert!(why.contains("max_frame_len"), "{why}"),
        Err(other) => panic!("expected a transport refusal, got {other}"),
        Ok(_) => panic!("a node whose messages cannot fit a frame started"),
    }

    let fitted = quic_options(ca.tls_config(1).unwrap(), &config);
    let t = bind_retrying(localhost(), 1, fitted).await;
    let raft = start_raft(config, Options::bootstrap(members), t).await;
    let _ = raft.kill().await;
}
