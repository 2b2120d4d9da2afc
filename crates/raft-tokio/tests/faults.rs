//! The disk and the network misbehave: group commit under a slow disk, a leader whose
//! fsync stalls, a failed fsync, and the channel transport's drop, delay and partition.

#[macro_use]
mod common;

use common::{cmd, eventually, Cluster, Disk};
use raft_core::Role;
use raft_tokio::{Consistency, ProposeError, ShutdownError};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// With every fsync taking 2 ms and 64 proposers, the disk worker makes many entries
/// durable per fsync (one at a time would be 64 times slower).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_batches_persists() {
    let mut c = Cluster::build(3, Disk::Controlled, |_| {});
    c.start_founders().await;
    for control in c.controls.values() {
        *control.sync_delay.lock().expect("lock") = Duration::from_millis(2);
    }
    let leader = c.leader().await;
    let c = Arc::new(c);
    let before = c.node(leader).metrics();
    let tasks: Vec<_> = (0..64u64)
        .map(|p| {
            let c = c.clone();
            tokio::spawn(async move {
                for i in 0..20 {
                    c.propose(p * 100 + i).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("proposer");
    }
    let after = c.node(leader).metrics();
    let (fsyncs, entries) = (after.fsyncs - before.fsyncs, after.entries_persisted - before.entries_persisted);
    assert!(entries >= 1280, "{entries} entries persisted");
    assert!(
        entries as f64 / fsyncs as f64 >= 4.0,
        "group commit: {entries} entries in {fsyncs} fsyncs ({} persists)",
        after.persists - before.persists
    );
    c.shutdown_all().await;
}

/// The leader's fsync stalls completely; its appends still reach the followers, whose
/// durable copies commit the entry while the leader's own copy is not durable. (The core
/// applies an entry only once it is durable locally, so the answer waits for the stall.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_sends_before_its_fsync() {
    // Long election timeouts: on a loaded machine a late heartbeat must not hand
    // leadership to another node mid-test (the proposal would then fail at once).
    let mut c = Cluster::build(3, Disk::Controlled, |cfg| {
        cfg.heartbeat_interval = Duration::from_millis(100);
        cfg.election_timeout_min = Duration::from_secs(2);
        cfg.election_timeout_max = Duration::from_secs(4);
    });
    c.start_founders().await;
    let leader = c.leader().await;
    let l = c.node(leader).clone();
    // The published indexes may lag the core by up to a millisecond (more on a loaded
    // machine), so the next entry's index is read only once the status shows the first
    // proposal appended and everything applied and durable; a stale status would point
    // the assertions below at an entry that is already durable.
    let before = l.status().last_log_index;
    c.propose(1).await;
    let mut settled = 0;
    eventually("the first proposal shown applied and durable", Duration::from_secs(10), || {
        let s = l.status();
        settled = s.last_log_index;
        s.last_log_index > before && s.applied_index == s.last_log_index && s.durable_index == s.last_log_index
    })
    .await;
    let index = settled + 1;
    c.controls[&leader].block(true);
    // Unblocks the disk however the test ends: a sync thread left waiting would keep the
    // runtime (and the test) from ever finishing after a failed assertion.
    struct Unblock(std::sync::Arc<common::LogControl>);
    impl Drop for Unblock {
        fn drop(&mut self) {
            self.0.block(false);
        }
    }
    let _unblock = Unblock(c.controls[&leader].clone());
    let answer = tokio::spawn({
        let l = l.clone();
        async move { l.propose(cmd(2)).await }
    });
    eventually("the entry committed by the followers' copies", Duration::from_secs(10), || {
        l.status().commit_index >= index
    })
    .await;
    let status = l.status();
    assert!(status.durable_index < index, "the leader's copy is not durable yet: {status:?}");
    if answer.is_finished() {
        panic!("answered before the leader applied it: {:?}", answer.await);
    }
    c.controls[&leader].block(false);
    assert_eq!(answer.await.expect("task").expect("applied"), 2);
    c.shutdown_all().await;
}

/// A failed fsync stops the node for good (never retried); the others elect a leader.
#[tokio::test(start_paused = true)]
async fn failed_fsync_stops_the_node() {
    let mut c = Cluster::build(3, Disk::Controlled, |_| {});
    c.start_founders().await;
    let leader = c.leader().await;
    c.propose(1).await;
    let l = c.node(leader).clone();
    c.controls[&leader].fail_next_sync.store(true, Ordering::SeqCst);
    // The failing sync comes no later than the one that would cover this entry, and the
    // core applies only locally durable entries: it can never be answered Ok.
    let r = l.propose(cmd(2)).await;
    assert_eq!(r, Err(ProposeError::Stopped));
    eventually("the node stops", Duration::from_secs(10), || l.is_stopped()).await;
    assert_eq!(l.shutdown().await, Err(ShutdownError::AlreadyStopped));
    assert!(matches!(l.propose(cmd(3)).await, Err(ProposeError::Stopped)));
    c.nodes.remove(&leader);
    let new = c.leader().await;
    assert_ne!(new, leader);
    c.propose(3).await;
    c.shutdown_all().await;
}

/// A fifth of the messages lost and every message 5 ms late: every proposal still
/// succeeds, exactly once.
async fn lossy_slow_network(disk: Disk) {
    let c = Cluster::start(3, disk).await;
    c.net.set_drop_rate(0.2);
    c.net.set_delay(Duration::from_millis(5));
    for v in 0..100 {
        c.propose(v).await;
    }
    c.net.set_drop_rate(0.0);
    let values = c.converged(100).await;
    let mut sorted = values.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted, (0..100).collect::<Vec<_>>(), "every value exactly once");
    c.shutdown_all().await;
}
both_stores!(lossy_slow_network, lossy_slow_network_memory, lossy_slow_network_sled);

/// The leader is cut off: the majority elects another leader and goes on; the old leader
/// steps down (CheckQuorum) and, healed, catches up.
async fn partitioned_leader_steps_down_and_catches_up(disk: Disk) {
    let c = Cluster::start(3, disk).await;
    let old = c.leader().await;
    c.propose(1).await;
    c.net.isolate(old);
    eventually("a leader in the majority", Duration::from_secs(10), || {
        c.nodes.values().any(|n| n.id() != old && n.status().role == Role::Leader)
    })
    .await;
    eventually("the old leader steps down", Duration::from_secs(10), || c.node(old).status().role != Role::Leader)
        .await;
    let majority_leader = c.nodes.values().find(|n| n.status().role == Role::Leader).expect("leader").clone();
    majority_leader.propose(cmd(2)).await.expect("majority makes progress");
    assert!(matches!(c.node(old).read(()).await, Err(raft_tokio::ReadError::NotLeader { .. })));
    c.net.heal();
    let values = c.converged(2).await;
    assert_eq!(values, vec![1, 2]);
    let stale = c.node(old).read_with((), Consistency::Local).await.expect("local read");
    assert_eq!(stale, vec![1, 2]);
    c.shutdown_all().await;
}
both_stores!(partitioned_leader_steps_down_and_catches_up, partitioned_leader_memory, partitioned_leader_sled);
