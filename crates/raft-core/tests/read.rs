//! Linearizable reads: ReadIndex, lease reads, follower reads (thesis §6.4).

mod common;
use common::*;
use raft_core::*;
use std::time::Duration;

#[test]
fn read_index_is_served_after_a_heartbeat_quorum_and_apply() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.propose(1, b"x");
    c.stabilize();
    c.trace.clear();
    let rid = c.read(1, ReadConsistency::ReadIndex);
    assert!(c.reads_ready(1).is_empty(), "not before leadership is confirmed");
    c.stabilize();
    assert_eq!(c.reads_ready(1), vec![(rid, c.node(1).commit_index())]);
    assert!(c.trace.iter().any(|m| m.contains("Heartbeat")), "a heartbeat round confirmed leadership");
}

#[test]
fn reads_wait_for_the_leaders_first_commit_in_its_term() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.isolate(1);
    c.now = c.now + Duration::from_secs(1);
    c.partition(&[&[2, 3], &[1]]);
    c.peer(2).auto_persist = false;
    c.peer(3).auto_persist = false;
    c.campaign(2);
    c.flush_disk(2);
    c.flush_disk(3);
    c.stabilize();
    c.flush_disk(3);
    c.stabilize();
    assert_eq!(c.node(2).role(), Role::Leader);
    // The new leader's no-op is not yet durable anywhere but on 2: no commit in its term.
    let rid = c.read(2, ReadConsistency::ReadIndex);
    c.stabilize();
    assert!(c.reads_ready(2).is_empty(), "commit index may be stale until the no-op commits");
    c.flush_disk(2);
    c.flush_disk(3);
    c.stabilize();
    c.flush_disk(3);
    c.stabilize();
    assert_eq!(c.reads_ready(2).len(), 1);
    assert_eq!(c.reads_ready(2)[0].0, rid);
}

#[test]
fn read_index_under_a_deposed_leader_is_never_served() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.isolate(1);
    c.now = c.now + Duration::from_secs(1);
    c.campaign(2);
    assert_eq!(c.node(2).role(), Role::Leader);
    c.propose(2, b"newer");
    c.stabilize();
    // The old leader still thinks it leads but cannot confirm it: the read must not be
    // served from its stale state.
    let rid = c.read(1, ReadConsistency::ReadIndex);
    c.stabilize();
    assert!(c.reads_ready(1).is_empty());
    c.advance(Duration::from_millis(500)); // CheckQuorum deposes it
    assert!(c.reads_ready(1).is_empty());
    assert_eq!(c.read_rejections(1), vec![(rid, ReadError::NotLeader { leader: None, info: None })]);
}

#[test]
fn lease_reads_skip_the_round_trip_while_the_lease_holds() {
    let mut c = Cluster::with_config(3, |cfg| cfg.lease_reads = true);
    c.elect(1);
    c.advance(Duration::from_millis(60)); // one acknowledged heartbeat round starts the lease
    let rid = c.read(1, ReadConsistency::Lease);
    assert_eq!(c.reads_ready(1), vec![(rid, c.node(1).commit_index())], "served without a round trip");
    // Cut off, the lease runs out and reads need a quorum again.
    c.isolate(1);
    c.now = c.now + Duration::from_millis(200);
    let rid2 = c.read(1, ReadConsistency::Lease);
    assert!(!c.reads_ready(1).iter().any(|(r, _)| *r == rid2));
}

/// The caller picks the consistency per read: on a leader whose config allows leases, a
/// ReadIndex read still confirms leadership with a round while a lease read beside it is
/// served at once; without `lease_reads`, a lease read is refused rather than silently
/// downgraded.
#[test]
fn each_read_chooses_its_own_consistency() {
    let mut c = Cluster::with_config(3, |cfg| cfg.lease_reads = true);
    c.elect(1);
    c.advance(Duration::from_millis(60)); // the lease holds
    let lease = c.read(1, ReadConsistency::Lease);
    let index = c.read(1, ReadConsistency::ReadIndex);
    let ready: Vec<ReadId> = c.reads_ready(1).iter().map(|(r, _)| *r).collect();
    assert_eq!(ready, vec![lease], "only the lease read skips the round");
    let rounds = c.queue.iter().filter(|m| matches!(m.body, MessageBody::Heartbeat { .. })).count();
    assert_eq!(rounds, 2, "the ReadIndex read starts a heartbeat round");
    c.stabilize();
    assert!(c.reads_ready(1).iter().any(|(r, _)| *r == index));

    let mut c = Cluster::new(3);
    c.elect(1);
    c.stabilize();
    let refused = c.read(1, ReadConsistency::Lease);
    assert_eq!(c.read_rejections(1), vec![(refused, ReadError::LeaseNotEnabled)]);
    // A follower serves a FollowerReadIndex read but refuses a ReadIndex one, naming the leader.
    let here = c.read(2, ReadConsistency::FollowerReadIndex);
    let there = c.read(2, ReadConsistency::ReadIndex);
    c.stabilize();
    assert!(c.reads_ready(2).iter().any(|(r, _)| *r == here));
    assert_eq!(c.read_rejections(2), vec![(there, ReadError::NotLeader { leader: Some(1), info: None })]);
}

#[test]
fn lease_reads_are_refused_by_config_without_check_quorum() {
    let mut cfg = config(1);
    cfg.lease_reads = true;
    cfg.check_quorum = false;
    assert!(Node::new(cfg, RestoredState::bootstrap([1]), Instant::ZERO).is_err());
}

#[test]
fn a_follower_serves_a_read_by_asking_the_leader() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.propose(1, b"x");
    c.stabilize();
    let rid = c.read(2, ReadConsistency::FollowerReadIndex);
    c.stabilize();
    c.advance(Duration::from_millis(60)); // the follower learns the commit index and applies
    let ready = c.reads_ready(2);
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0].0, rid);
    assert!(ready[0].1 >= 2, "the read index covers the committed write");
    assert!(c.peers[&2].node.applied_index() >= ready[0].1);
}

#[test]
fn a_follower_rejects_leader_only_reads_naming_the_leader() {
    let mut c = Cluster::new(3);
    c.elect(1);
    let rid = c.read(3, ReadConsistency::ReadIndex);
    assert_eq!(c.read_rejections(3), vec![(rid, ReadError::NotLeader { leader: Some(1), info: None })]);
}

#[test]
fn a_forwarded_read_times_out_if_the_leader_never_answers() {
    let mut c = Cluster::with_config(3, |cfg| cfg.check_quorum = false);
    c.elect(1);
    c.cut.insert((2, 1));
    let rid = c.read(2, ReadConsistency::FollowerReadIndex);
    c.advance(Duration::from_millis(400));
    assert_eq!(c.read_rejections(2), vec![(rid, ReadError::Timeout)]);
}

#[test]
fn reads_arriving_together_share_one_heartbeat_round() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.trace.clear();
    let now = c.now;
    for i in 0..10 {
        c.peer(1).node.step(now, Input::Read { id: ReadId(100 + i), consistency: ReadConsistency::ReadIndex });
    }
    c.step(1, Input::Tick);
    c.stabilize();
    assert_eq!(c.reads_ready(1).len(), 10);
    let rounds = c.trace.iter().filter(|m| m.starts_with("1->2 Heartbeat")).count();
    assert_eq!(rounds, 1);
}

#[test]
fn a_leader_that_sent_timeout_now_serves_no_more_lease_reads_in_its_term() {
    let mut c = Cluster::with_config(3, |cfg| cfg.lease_reads = true);
    c.elect(1);
    c.advance(Duration::from_millis(60));
    c.cut.insert((1, 3)); // TimeoutNow is lost (or delayed past the transfer timeout)
    c.step(1, Input::TransferLeadership { id: RequestId(0), to: Some(3) });
    c.advance(Duration::from_millis(400)); // the transfer aborts
    assert!(c.events(1).contains(&Event::TransferAborted { target: 3 }));
    c.heal();
    c.advance(Duration::from_millis(60));
    let rid = c.read(1, ReadConsistency::Lease);
    assert!(c.reads_ready(1).iter().all(|(r, _)| *r != rid), "no lease read: it needs a heartbeat round");
    c.stabilize();
    assert!(c.reads_ready(1).iter().any(|(r, _)| *r == rid), "served after the round");
}

#[test]
fn a_follower_read_confirmed_by_the_leader_times_out_if_the_follower_cannot_apply_it() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.step(3, Input::Pause); // so that, cut off from the log, it does not campaign
                             // Node 3 no longer receives the log, but read index traffic still flows.
    c.drop_if =
        Some(Box::new(|m| m.to == 3 && matches!(m.body, MessageBody::Append { .. } | MessageBody::Heartbeat { .. })));
    c.propose(1, b"x");
    c.stabilize();
    let rid = c.read(3, ReadConsistency::FollowerReadIndex);
    c.stabilize();
    assert!(c.reads_ready(3).is_empty(), "node 3 has not applied the read index");
    c.advance(Duration::from_millis(400));
    assert_eq!(c.read_rejections(3), vec![(rid, ReadError::Timeout)]);
}

#[test]
fn a_node_outside_its_own_configuration_rejects_follower_reads() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.add_blank_node(4);
    // The new learner hears heartbeats (so it knows the leader) but no log yet.
    c.drop_if = Some(Box::new(|m| m.to == 4 && matches!(m.body, MessageBody::Append { .. })));
    c.step(
        1,
        Input::ChangeMembership {
            id: RequestId(1),
            change: Box::new(MembershipChange::add_learner(4, NodeInfo::default())),
        },
    );
    c.advance(Duration::from_millis(60));
    assert_eq!(c.node(4).leader(), Some(1));
    assert!(!c.node(4).membership().contains(4));
    let rid = c.read(4, ReadConsistency::FollowerReadIndex);
    assert_eq!(c.read_rejections(4), vec![(rid, ReadError::NotLeader { leader: Some(1), info: None })]);
}

#[test]
fn a_node_removed_without_knowing_does_not_hang_on_a_follower_read() {
    let mut c = Cluster::new(4);
    c.elect(1);
    c.isolate(4);
    c.step(1, Input::ChangeMembership { id: RequestId(1), change: Box::new(MembershipChange::remove(4)) });
    c.stabilize();
    c.advance(Duration::from_millis(100));
    c.heal();
    c.step(4, Input::Pause); // keep it from campaigning: only the read is under test
    assert!(c.node(4).membership().contains(4), "node 4 never learned of its removal");
    let rid = c.read(4, ReadConsistency::FollowerReadIndex);
    c.advance(Duration::from_millis(400));
    assert!(c.reads_ready(4).is_empty());
    assert!(c.read_rejections(4).iter().any(|(r, _)| *r == rid), "the read is answered with an error");
}

#[test]
fn a_stale_read_index_request_is_answered_so_the_sender_learns_the_term() {
    let mut c = Cluster::new(3);
    c.elect(1);
    let old_term = c.node(1).term();
    c.isolate(3);
    c.now = c.now + Duration::from_secs(1);
    c.partition(&[&[1, 2], &[3]]);
    c.step(1, Input::TransferLeadership { id: RequestId(0), to: Some(2) });
    c.stabilize();
    assert_eq!(c.leaders(), vec![2]);
    // Node 3 still believes node 1 leads in the old term and forwards a read to it.
    assert_eq!((c.node(3).leader(), c.node(3).term()), (Some(1), old_term));
    c.heal();
    c.partition(&[&[1, 3], &[2]]);
    let rid = c.read(3, ReadConsistency::FollowerReadIndex);
    c.stabilize();
    assert!(c.node(3).term() > old_term, "node 3 learned the newer term");
    assert!(matches!(c.read_rejections(3).as_slice(), [(r, ReadError::NotLeader { .. })] if *r == rid));
}
