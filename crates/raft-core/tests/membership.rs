//! Membership changes (joint consensus, learners) and snapshots with log compaction.

mod common;
use common::*;
use raft_core::*;
use std::collections::BTreeSet;
use std::time::Duration;

fn change(c: &mut Cluster, leader: NodeId, id: u64, ch: MembershipChange) {
    c.step(leader, Input::ChangeMembership { id: RequestId(id), change: Box::new(ch) });
    c.stabilize();
    c.advance(Duration::from_millis(120));
}

fn finished(c: &Cluster, node: NodeId, id: u64) -> Option<Membership> {
    c.events(node).into_iter().find_map(|e| match e {
        Event::MembershipChangeFinished { id: RequestId(i), membership } if i == id => Some(membership),
        _ => None,
    })
}

fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
    ids.iter().copied().collect()
}

#[test]
fn add_a_learner_then_promote_it() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.propose(1, b"before");
    c.stabilize();
    c.add_blank_node(4);
    change(&mut c, 1, 1, MembershipChange::add_learner(4, NodeInfo::default()));
    let m = finished(&c, 1, 1).expect("learner added");
    assert_eq!(m.learners, set(&[4]));
    assert_eq!(c.node(4).log().last_index(), c.node(1).log().last_index(), "the learner caught up");
    assert!(c.node(1).status().progress[&4].learner);
    // Promotion requires being caught up (here: within 0 entries).
    let mut promote = MembershipChange::add_voter(4);
    promote.require_caught_up = Some(0);
    change(&mut c, 1, 2, promote);
    let m = finished(&c, 1, 2).expect("promoted");
    assert_eq!(m.voters, set(&[1, 2, 3, 4]));
    assert!(m.learners.is_empty());
    assert!(c.events(1).iter().any(|e| matches!(e, Event::MembershipCommitted { new, .. } if new.is_joint())));
    assert_eq!(c.node(4).membership().voters, set(&[1, 2, 3, 4]));
    c.check_safety();
}

#[test]
fn promoting_a_learner_that_is_not_caught_up_is_rejected() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.add_blank_node(4);
    change(&mut c, 1, 1, MembershipChange::add_learner(4, NodeInfo::default()));
    c.isolate(4);
    for _ in 0..10 {
        c.propose(1, b"x");
    }
    c.stabilize();
    let mut promote = MembershipChange::add_voter(4);
    promote.require_caught_up = Some(2);
    c.step(1, Input::ChangeMembership { id: RequestId(2), change: Box::new(promote) });
    assert!(c.events(1).iter().any(|e| matches!(e,
        Event::MembershipChangeRejected { id: RequestId(2), error: ProposalError::InvalidChange(msg) } if msg.contains("not caught up"))));
}

#[test]
fn remove_the_leader() {
    let mut c = Cluster::new(3);
    c.elect(1);
    change(&mut c, 1, 1, MembershipChange::remove(1));
    assert_eq!(finished(&c, 1, 1).map(|m| m.voters), Some(set(&[2, 3])));
    assert!(c.history(1).iter().any(|t| t.reason == TransitionReason::RemovedFromCluster));
    assert!(c.events(1).contains(&Event::RemovedFromCluster));
    c.advance(Duration::from_secs(1));
    let leaders = c.leaders();
    assert_eq!(leaders.len(), 1);
    assert_ne!(leaders[0], 1);
    let l = leaders[0];
    c.propose(l, b"after");
    c.stabilize();
    assert_eq!(c.node(l).commit_index(), c.node(l).log().last_index(), "the two remaining voters commit");
    c.check_safety();
}

#[test]
fn replace_two_of_five_nodes_in_one_joint_change() {
    let mut c = Cluster::new(5);
    c.elect(1);
    c.add_blank_node(6);
    c.add_blank_node(7);
    let ch = MembershipChange { add_voters: vec![6, 7], remove: vec![4, 5], ..Default::default() };
    change(&mut c, 1, 1, ch);
    let m = finished(&c, 1, 1).expect("change finished");
    assert_eq!(m.voters, set(&[1, 2, 3, 6, 7]));
    // The joint configuration was committed on the way.
    assert!(c.events(1).iter().any(|e| matches!(e, Event::MembershipCommitted { new, .. }
        if new.voters == set(&[1, 2, 3, 6, 7]) && new.outgoing == set(&[1, 2, 3, 4, 5]))));
    // The new configuration works without the removed nodes.
    c.isolate(4);
    c.isolate(5);
    c.partition(&[&[1, 2, 3, 6, 7]]);
    c.propose(1, b"x");
    c.stabilize();
    assert_eq!(c.node(1).commit_index(), c.node(1).log().last_index());
    assert!(c.events(4).contains(&Event::RemovedFromCluster) || c.node(4).membership().voters == set(&[1, 2, 3, 6, 7]));
    c.check_safety();
}

#[test]
fn a_change_while_another_is_in_flight_is_rejected() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.add_blank_node(4);
    c.add_blank_node(5);
    c.step(1, Input::ChangeMembership { id: RequestId(1), change: Box::new(MembershipChange::add_voter(4)) });
    c.step(1, Input::ChangeMembership { id: RequestId(2), change: Box::new(MembershipChange::add_voter(5)) });
    assert!(c.events(1).iter().any(|e| matches!(
        e,
        Event::MembershipChangeRejected { id: RequestId(2), error: ProposalError::ChangeInProgress }
    )));
    c.stabilize();
    c.advance(Duration::from_millis(120));
    assert!(finished(&c, 1, 1).is_some());
}

#[test]
fn a_new_leader_changes_membership_only_after_committing_in_its_term() {
    let mut c = Cluster::new(3);
    c.add_blank_node(4);
    c.win_before_replicating(1);
    assert!(c.node(1).commit_index() < c.node(1).log().last_index(), "the no-op is not committed yet");
    c.step(
        1,
        Input::ChangeMembership {
            id: RequestId(1),
            change: Box::new(MembershipChange::add_learner(4, NodeInfo::default())),
        },
    );
    assert_eq!(rejections(&c, 1), vec![(RequestId(1), ProposalError::NotCommittedInTerm)]);
    // Once the no-op commits, the same change goes through.
    c.stabilize();
    assert_eq!(c.node(1).commit_index(), c.node(1).log().last_index());
    change(&mut c, 1, 2, MembershipChange::add_learner(4, NodeInfo::default()));
    assert!(finished(&c, 1, 2).is_some());
    assert!(c.node(1).membership().learners.contains(&4));
    assert_eq!(rejections(&c, 1).len(), 1);
}

fn rejections(c: &Cluster, id: NodeId) -> Vec<(RequestId, ProposalError)> {
    c.events(id)
        .into_iter()
        .filter_map(|e| match e {
            Event::MembershipChangeRejected { id, error } => Some((id, error)),
            _ => None,
        })
        .collect()
}

#[test]
fn invalid_changes_are_rejected_with_a_reason() {
    let mut c = Cluster::new(1);
    c.elect(1);
    c.step(1, Input::ChangeMembership { id: RequestId(1), change: Box::new(MembershipChange::remove(1)) });
    c.step(1, Input::ChangeMembership { id: RequestId(2), change: Box::new(MembershipChange::remove(9)) });
    let errors: Vec<String> = c
        .events(1)
        .into_iter()
        .filter_map(|e| match e {
            Event::MembershipChangeRejected { error, .. } => Some(error.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 2);
    assert!(errors[0].contains("last voter"), "{errors:?}");
    assert!(errors[1].contains("not a member"), "{errors:?}");
}

#[test]
fn a_removed_node_that_keeps_campaigning_does_not_disturb_the_leader() {
    let mut c = Cluster::new(4);
    c.elect(1);
    c.isolate(4); // node 4 never learns it was removed
    change(&mut c, 1, 1, MembershipChange::remove(4));
    assert!(finished(&c, 1, 1).is_some());
    let term = c.node(1).term();
    c.heal();
    // Node 4 still believes it is a voter and keeps timing out; the others hear the leader.
    for _ in 0..20 {
        c.advance(Duration::from_millis(100));
    }
    assert_eq!(c.leaders(), vec![1]);
    assert_eq!(c.node(1).term(), term, "the leader's term was not disturbed");
    c.check_safety();
}

#[test]
fn a_follower_far_behind_is_restored_from_a_snapshot() {
    let mut c = Cluster::with_config(3, |cfg| cfg.snapshot_policy = SnapshotPolicy { max_entries: 5, max_bytes: 0 });
    c.elect(1);
    c.isolate(3);
    for _ in 0..30 {
        c.propose(1, b"x");
        c.stabilize();
    }
    assert!(c.node(1).log().snapshot_index() > 10, "the leader compacted its log");
    c.heal();
    c.advance(Duration::from_millis(300));
    assert!(c.peers[&1].outputs.iter().any(|a| matches!(a, Action::SendSnapshot { header } if header.to == 3)));
    assert!(c.node(3).snapshot().index > 0, "node 3 installed a snapshot");
    assert_eq!(c.node(3).log().last_index(), c.node(1).log().last_index());
    assert_eq!(c.applied_commands(3), c.applied_commands(1));
    c.check_safety();
}

#[test]
fn a_node_restarted_after_compaction_recovers_from_snapshot_and_log() {
    let mut c = Cluster::with_config(3, |cfg| cfg.snapshot_policy = SnapshotPolicy { max_entries: 4, max_bytes: 0 });
    c.elect(1);
    c.add_blank_node(4);
    change(&mut c, 1, 1, MembershipChange::add_learner(4, NodeInfo::default()));
    for _ in 0..10 {
        c.propose(1, b"x");
        c.stabilize();
    }
    c.advance(Duration::from_millis(100));
    let before = c.applied_commands(2);
    let snap = c.node(2).snapshot().clone();
    assert!(snap.index > 0);
    assert_eq!(snap.membership.learners, set(&[4]), "the snapshot records the membership");
    c.crash_and_restart(2);
    assert_eq!(c.node(2).log().first_index(), snap.index + 1);
    assert_eq!(c.node(2).membership().learners, set(&[4]), "membership recovered");
    c.advance(Duration::from_millis(200));
    assert_eq!(c.applied_commands(2), before, "state rebuilt from snapshot + log");
    c.check_safety();
}

fn snapshot_cluster(max_entries: u64) -> Cluster {
    Cluster::with_config(3, |cfg| {
        cfg.snapshot_policy = SnapshotPolicy { max_entries, max_bytes: 0 };
        cfg.max_entries_per_message = 1;
        cfg.max_inflight_messages = 2;
    })
}

#[test]
fn appends_during_a_slow_snapshot_install_are_applied_after_it() {
    let mut c = snapshot_cluster(5);
    c.elect(1);
    c.isolate(3);
    for _ in 0..20 {
        c.propose(1, b"x");
        c.stabilize();
    }
    c.peer(3).hold_installs = true;
    c.heal();
    c.advance(Duration::from_millis(120));
    assert!(c.peers[&3].held_install.is_some(), "node 3 is installing");
    // Meanwhile replication continues and commits past the snapshot.
    for _ in 0..5 {
        c.propose(1, b"y");
        c.stabilize();
    }
    c.advance(Duration::from_millis(120));
    c.peer(3).hold_installs = false; // later installs (the leader compacted again) go through
    c.complete_install(3);
    c.advance(Duration::from_millis(200));
    assert_eq!(c.applied_commands(3), c.applied_commands(1), "no entry lost or applied twice around the install");
    c.check_safety();
}

#[test]
fn a_replicating_follower_whose_lost_appends_were_compacted_gets_a_snapshot() {
    let mut c = snapshot_cluster(3);
    c.elect(1);
    c.propose(1, b"a");
    c.stabilize();
    assert_eq!(c.node(1).status().progress[&3].state, "replicate");
    // Appends to node 3 are lost while the window is full and the leader compacts past them.
    c.cut.insert((1, 3));
    for _ in 0..20 {
        c.propose(1, b"x");
        c.stabilize();
    }
    assert!(c.node(1).log().snapshot_index() > c.node(3).log().last_index());
    c.heal();
    c.advance(Duration::from_millis(300));
    assert_eq!(c.node(3).log().last_index(), c.node(1).log().last_index());
    assert_eq!(c.applied_commands(3), c.applied_commands(1));
}

#[test]
fn a_leader_elected_after_the_joint_configuration_committed_finishes_the_change() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.add_blank_node(4);
    // Every append carrying C_new is lost, so node 1 is the only one that ever holds it;
    // heartbeats still tell the others that C_old,new is committed.
    c.drop_if = Some(Box::new(|m: &Message| match &m.body {
        MessageBody::Append { entries, .. } => {
            entries.iter().any(|e| matches!(&e.payload, Payload::Membership(m) if !m.is_joint()))
        }
        _ => false,
    }));
    change(&mut c, 1, 1, MembershipChange::add_voter(4));
    for id in [2, 3] {
        assert!(c.node(id).committed_membership().is_joint(), "node {id} knows C_old,new committed");
        assert!(c.node(id).membership().is_joint(), "node {id} never received C_new");
    }
    // Node 1 goes away; node 2 is elected (by a majority of both the old and new voters).
    c.isolate(1);
    c.drop_if = None;
    c.now = c.now + Duration::from_secs(1);
    assert!(c.campaign_until_leader(2, 5));
    c.advance(Duration::from_millis(200));
    let m = c.node(2).membership().clone();
    assert!(!m.is_joint(), "the new leader moved on to C_new: {m:?}");
    assert_eq!(m.voters, set(&[1, 2, 3, 4]));
    assert_eq!(c.node(2).committed_membership(), &m);
    for id in [3, 4] {
        assert_eq!(c.node(id).membership(), &m);
    }
    c.check_safety();
}
