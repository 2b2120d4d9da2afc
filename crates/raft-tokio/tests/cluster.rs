//! Three nodes in one process over the channel transport, with the in-memory stores (on
//! tokio's paused clock: deterministic timers, no waiting) and with raft-sled in temporary
//! directories (real time: real fsyncs).

#[macro_use]
mod common;

use common::{cmd, eventually, info, Cluster, Disk};
use raft_core::{Event, Role};
use raft_tokio::{Consistency, ProposeError};
use std::collections::BTreeSet;
use std::time::Duration;

async fn elects_one_leader(disk: Disk) {
    let c = Cluster::start(3, disk).await;
    let leader = c.leader().await;
    let status = c.node(leader).status();
    assert_eq!(status.role, Role::Leader);
    assert_eq!(status.membership.voters, BTreeSet::from([1, 2, 3]));
    // Every member's address came from the bootstrap list and is known to everyone.
    for n in c.nodes.values() {
        assert_eq!(n.status().membership.node_info(leader), Some(&info(leader)));
    }
    c.shutdown_all().await;
}
both_stores!(elects_one_leader, elect_memory, elect_sled);

/// 10,000 proposals from 64 concurrent proposers: each response is the position of its
/// value in the applied sequence, and every node applies the same sequence.
async fn ten_thousand_proposals(disk: Disk) {
    proposals_checked(Cluster::start(3, disk).await).await;
}

/// The same with `Options::inline_io` (the driver writes the log itself).
#[tokio::test(start_paused = true)]
async fn proposals_memory_inline() {
    let mut c = Cluster::build(3, Disk::Memory, |_| {});
    c.inline_io = true;
    c.start_founders().await;
    proposals_checked(c).await;
}

async fn proposals_checked(c: Cluster) {
    let c = std::sync::Arc::new(c);
    c.leader().await;
    let mut tasks = Vec::new();
    for p in 0..64u64 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in (p..10_000).step_by(64) {
                acked.push((i, c.propose(i).await));
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.expect("proposer"));
    }
    let values = c.converged(10_000).await;
    assert_eq!(values.len(), 10_000, "each value applied exactly once");
    for (value, position) in acked {
        assert_eq!(values[position as usize - 1], value, "response of {value} names its position");
    }
    let m = c.nodes.values().next().expect("node").metrics();
    assert!(m.fsyncs > 0 && m.entries_persisted >= 10_000, "{m:?}");
    c.shutdown_all().await;
}
both_stores!(ten_thousand_proposals, proposals_memory, proposals_sled);

/// The leader is killed mid-stream (no hand-over, queued work lost); the others elect a
/// new leader and still hold every acknowledged write.
async fn leader_killed(disk: Disk) {
    leader_killed_in(Cluster::start(3, disk).await).await;
}

/// The same with `Options::inline_io`.
#[tokio::test(start_paused = true)]
async fn kill_leader_memory_inline() {
    let mut c = Cluster::build(3, Disk::Memory, |_| {});
    c.inline_io = true;
    c.start_founders().await;
    leader_killed_in(c).await;
}

async fn leader_killed_in(mut c: Cluster) {
    let disk = c.disk;
    let old = c.leader().await;
    let mut acked = Vec::new();
    for v in 0..200 {
        acked.push(c.propose(v).await);
    }
    // In flight while it dies: these may or may not be applied, but never acknowledged
    // and then lost.
    let leader = c.node(old).clone();
    let inflight: Vec<_> = (200..230)
        .map(|v| {
            let l = leader.clone();
            tokio::spawn(async move { (v, l.propose(cmd(v)).await) })
        })
        .collect();
    tokio::task::yield_now().await;
    leader.kill().await.expect("kill");
    let mut acked_values: Vec<u64> = (0..200).collect();
    for t in inflight {
        let (v, r) = t.await.expect("task");
        match r {
            Ok(_) => acked_values.push(v),
            Err(ProposeError::Stopped) => {}
            Err(e) => panic!("unexpected error for an in-flight proposal: {e}"),
        }
    }
    c.nodes.remove(&old);
    let new = c.leader().await;
    assert_ne!(new, old);
    for v in 1000..1010 {
        c.propose(v).await;
        acked_values.push(v);
    }
    let values = c.converged(acked_values.len()).await;
    for v in &acked_values {
        assert!(values.contains(v), "acknowledged value {v} lost");
    }
    if disk == Disk::Sled {
        // Restarted from its directory, the old leader catches up with everything.
        c.start_node(old, true).await;
        let values_after = c.converged(values.len()).await;
        assert!(values_after.len() >= values.len());
        assert_eq!(values_after[..values.len()], values[..]);
    }
    c.shutdown_all().await;
}
both_stores!(leader_killed, kill_leader_memory, kill_and_restart_leader_sled);

/// A leader shutting down hands over: proposals it accepted before all succeed, and the
/// cluster goes on under the next leader.
async fn graceful_handover(disk: Disk) {
    let mut c = Cluster::start(3, disk).await;
    let old = c.leader().await;
    let leader = c.node(old).clone();
    let before = leader.status().last_log_index;
    let inflight: Vec<_> = (0..100u64)
        .map(|v| {
            let l = leader.clone();
            tokio::spawn(async move { (v, l.propose(cmd(v)).await) })
        })
        .collect();
    // The shutdown starts once the leader appended every proposal: those it accepted must
    // all be applied through the hand-over.
    eventually("the proposals appended", Duration::from_secs(10), || leader.status().last_log_index >= before + 100)
        .await;
    let history = leader.history().await.expect("history");
    leader.shutdown().await.expect("clean shutdown");
    for t in inflight {
        let (v, r) = t.await.expect("task");
        assert!(r.is_ok(), "proposal {v} failed during the hand-over: {r:?}");
    }
    assert!(leader.is_stopped());
    c.nodes.remove(&old);
    let new = c.leader().await;
    assert_ne!(new, old);
    // It handed leadership over rather than letting it lapse (the history before the
    // shutdown request shows it led until then).
    assert_eq!(history.last().map(|t| t.to), Some(Role::Leader));
    let events_of_new = c.node(new).history().await.expect("history");
    assert!(
        events_of_new
            .iter()
            .any(|t| matches!(t.reason, raft_core::TransitionReason::TransferRequested { from } if from == old)),
        "node {new} took over by transfer from {old}: {events_of_new:?}"
    );
    c.propose(1000).await;
    let values = c.converged(101).await;
    assert_eq!(values.len(), 101);
    c.shutdown_all().await;
}
both_stores!(graceful_handover, shutdown_hands_over_memory, shutdown_hands_over_sled);

async fn pause_resume_and_start_paused(disk: Disk) {
    // Every node starts paused: nobody campaigns.
    let c = Cluster::start_with(3, disk, |cfg| cfg.start_paused = true).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for n in c.nodes.values() {
        let s = n.status();
        assert!(s.paused);
        assert_eq!(s.role, Role::Follower);
        assert_eq!(s.leader, None);
    }
    for n in c.nodes.values() {
        n.resume().await.expect("resume");
    }
    let leader = c.leader().await;
    c.propose(1).await;
    // A paused leader hands leadership away and refuses proposals; another node leads.
    let l = c.node(leader).clone();
    l.pause().await.expect("pause");
    eventually("another leader", Duration::from_secs(10), || {
        c.nodes.values().any(|n| n.id() != leader && n.status().role == Role::Leader)
    })
    .await;
    assert!(matches!(l.propose(cmd(2)).await, Err(ProposeError::NotLeader { .. })));
    c.propose(2).await;
    // Paused, it still replicates and serves local reads.
    c.converged(2).await;
    l.resume().await.expect("resume");
    assert!(!l.status().paused);
    c.shutdown_all().await;
}
both_stores!(pause_resume_and_start_paused, pause_memory, pause_sled);

/// A node joins after the log was compacted and catches up from a snapshot streamed into
/// its snapshot store; it is promoted, and a founding voter is removed.
async fn membership_changes_and_join_by_snapshot(disk: Disk) {
    let mut c = Cluster::start_with(3, disk, |cfg| cfg.snapshot_policy.max_entries = 50).await;
    let leader = c.leader().await;
    for v in 0..300 {
        c.propose(v).await;
    }
    eventually("a snapshot on the leader", Duration::from_secs(10), || c.node(leader).status().snapshot_index > 0)
        .await;

    // Node 4 starts empty and is added as a learner: the leader's log no longer starts at
    // 1, so only a snapshot can catch it up.
    c.start_node(4, false).await;
    let l = c.node(leader).clone();
    let m = l.add_learner(4, info(4)).await.expect("add learner");
    assert!(m.learners.contains(&4));
    let values = c.converged(300).await;
    let joined = c.node(4).metrics();
    assert!(
        joined.commands_applied < 300,
        "node 4 applied {} commands itself: it was not caught up by a snapshot",
        joined.commands_applied
    );
    assert_eq!(values.len(), 300);

    let m = l.promote(4, Some(100)).await.expect("promote");
    assert!(m.voters.contains(&4) && m.learners.is_empty());
    let removed = c.nodes.keys().copied().find(|&id| id != leader && id != 4).expect("a follower");
    let m = l.remove(removed).await.expect("remove");
    assert_eq!(m.voters.len(), 3);
    assert!(!m.voters.contains(&removed));
    c.node(removed).shutdown().await.expect("shutdown");
    c.nodes.remove(&removed);
    c.propose(1000).await;
    c.converged(301).await;
    c.shutdown_all().await;
}
both_stores!(membership_changes_and_join_by_snapshot, membership_memory, membership_sled);

/// A state machine that takes 400 ms per apply call (longer than the election timeout)
/// does not cost the leader its leadership: the driver keeps sending heartbeats while the
/// state machine worker sleeps. Real time: the sleep must cost time.
async fn slow_state_machine_keeps_leadership(disk: Disk) {
    let mut c = Cluster::build(3, disk, |_| {});
    c.apply_delay = Duration::from_millis(400);
    c.start_founders().await;
    let leader = c.leader().await;
    let term = c.node(leader).status().term;
    let history_before = c.node(leader).history().await.expect("history").len();
    for v in 0..5 {
        c.propose(v).await;
    }
    c.converged(5).await;
    let s = c.node(leader).status();
    assert_eq!((s.role, s.term), (Role::Leader, term), "leadership changed while applying slowly");
    assert_eq!(c.node(leader).history().await.expect("history").len(), history_before);
    c.shutdown_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_apply_memory() {
    slow_state_machine_keeps_leadership(Disk::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_apply_sled() {
    slow_state_machine_keeps_leadership(Disk::Sled).await;
}

/// A read made after a write was acknowledged observes it, on the leader and through a
/// follower (which asks the leader for a read index).
async fn reads_observe_acknowledged_writes(disk: Disk) {
    let c = Cluster::start(3, disk).await;
    let leader = c.leader().await;
    let follower = c.nodes.keys().copied().find(|&id| id != leader).expect("a follower");
    for v in 0..100u64 {
        c.propose(v).await;
        let seen = c.node(leader).read(()).await.expect("leader read");
        assert_eq!(seen.last(), Some(&v), "leader read missed write {v}");
        let seen = c.node(follower).read_with((), Consistency::FollowerLinearizable).await.expect("follower read");
        assert!(seen.contains(&v), "follower read missed write {v}");
    }
    // A linearizable read on a follower is refused with the leader's address.
    match c.node(follower).read(()).await {
        Err(raft_tokio::ReadError::NotLeader { leader: Some(l), info: Some(i) }) => {
            assert_eq!((l, i), (leader, info(leader)));
        }
        other => panic!("expected NotLeader naming the leader, got {other:?}"),
    }
    c.shutdown_all().await;
}
both_stores!(reads_observe_acknowledged_writes, reads_observe_writes_memory, reads_observe_writes_sled);

/// Events arrive in the order the node emitted them: each role change starts from the
/// role the previous one ended in, terms never go back, and the transitions seen are the
/// node's history.
async fn events_arrive_in_order(disk: Disk) {
    let mut c = Cluster::start(3, disk).await;
    let first = c.leader().await;
    let mut streams = std::collections::BTreeMap::new();
    let mut before = std::collections::BTreeMap::new();
    for (&id, n) in c.nodes.iter().filter(|(&id, _)| id != first) {
        streams.insert(id, n.events());
        before.insert(id, n.history().await.expect("history").len());
    }
    c.node(first).kill().await.expect("kill");
    c.nodes.remove(&first);
    // The new leader's stream holds its whole campaign.
    let watcher = c.leader().await;
    c.propose(1).await;
    let mut events = streams.remove(&watcher).expect("a stream");
    let history_before = before[&watcher];
    let history = c.node(watcher).history().await.expect("history");
    let mut transitions = Vec::new();
    let mut leaders = Vec::new();
    while let Ok(e) = events.try_recv() {
        match e {
            Event::RoleChanged(t) => transitions.push(t),
            Event::LeaderChanged { leader, term } => leaders.push((leader, term)),
            _ => {}
        }
    }
    assert!(transitions.len() >= 2, "the new leader campaigned: {transitions:?}");
    assert_eq!(transitions.last().map(|t| t.to), Some(Role::Leader));
    assert_eq!(transitions[..], history[history_before..], "events and history agree, in order");
    for w in transitions.windows(2) {
        assert_eq!(w[0].to, w[1].from, "role changes chain");
        assert!(w[0].term <= w[1].term && w[0].at <= w[1].at, "terms and times never go back");
    }
    assert!(leaders.windows(2).all(|w| w[0].1 <= w[1].1));
    assert!(leaders.last().is_some_and(|(l, _)| l.is_some()));
    c.shutdown_all().await;
}
both_stores!(events_arrive_in_order, events_in_order_memory, events_in_order_sled);
