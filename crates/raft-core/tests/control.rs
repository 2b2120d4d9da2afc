//! Operations controls: leader transfer, pause / resume, start paused, prepare shutdown,
//! and the reachability events operators rely on.

mod common;
use common::*;
use raft_core::*;
use std::time::Duration;

#[test]
fn leader_transfer_to_an_up_to_date_follower() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.step(1, Input::TransferLeadership { id: RequestId(0), to: Some(3) });
    c.stabilize();
    assert_eq!(c.leaders(), vec![3]);
    let t = c.history(1).pop().expect("transition");
    assert_eq!(t.reason, TransitionReason::TransferredLeadership { to: 3 });
    let t3 = c.history(3);
    assert!(t3.iter().any(|t| t.reason == TransitionReason::TransferRequested { from: 1 }));
    c.check_safety();
}

#[test]
fn leader_transfer_catches_a_lagging_target_up_first_and_pauses_proposals() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.isolate(3);
    for _ in 0..5 {
        c.propose(1, b"x");
    }
    c.stabilize();
    // Healed before the request, so a premature TimeoutNow would reach node 3, not be lost.
    c.heal();
    let last = c.node(1).log().last_index();
    c.step(1, Input::TransferLeadership { id: RequestId(0), to: Some(3) });
    let rejected = c.propose(1, b"during");
    assert!(c.proposal_rejections(1).contains(&(rejected, ProposalError::TransferInProgress)));
    assert_eq!(c.node(1).status().transferring_to, Some(3));
    c.stabilize();
    c.advance(Duration::from_millis(100));
    assert_eq!(c.leaders(), vec![3]);
    // Node 3 acknowledged the leader's whole log before TimeoutNow reached it.
    let position = |want: &dyn Fn(&Message) -> bool| c.delivered.iter().position(want);
    let caught_up = position(&|m| {
        m.from == 3
            && matches!(m.body, MessageBody::AppendResponse { result: AppendResult::Success { match_index } } if match_index == last)
    })
    .expect("node 3 caught up");
    let timeout_now = position(&|m| m.to == 3 && m.body == MessageBody::TimeoutNow).expect("TimeoutNow sent");
    assert!(caught_up < timeout_now, "TimeoutNow went out before node 3 was caught up: {:?}", c.trace);
    assert_eq!(c.node(3).log().entries().iter().filter(|e| matches!(e.payload, Payload::Command(_))).count(), 5);
    c.check_safety();
}

#[test]
fn leader_transfer_aborts_after_an_election_timeout() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.cut.insert((1, 3)); // the target never hears from us
    c.propose(1, b"x");
    c.stabilize();
    c.step(1, Input::TransferLeadership { id: RequestId(0), to: Some(3) });
    c.advance(Duration::from_millis(400));
    assert!(c.events(1).contains(&Event::TransferAborted { target: 3 }));
    assert_eq!(c.node(1).role(), Role::Leader);
    c.propose(1, b"after");
    assert!(c.proposal_rejections(1).is_empty(), "proposals resume after the abort");
}

#[test]
fn transfer_requests_that_cannot_work_are_rejected() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.step(2, Input::TransferLeadership { id: RequestId(0), to: Some(3) });
    c.step(1, Input::TransferLeadership { id: RequestId(0), to: Some(9) });
    c.step(1, Input::TransferLeadership { id: RequestId(0), to: Some(1) });
    assert!(matches!(c.events(2).last(), Some(Event::TransferRejected { .. })));
    let rejected = c.events(1).iter().filter(|e| matches!(e, Event::TransferRejected { .. })).count();
    assert_eq!(rejected, 2);
}

#[test]
fn a_paused_follower_never_campaigns_but_keeps_replicating() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.step(3, Input::Pause);
    c.isolate(1);
    c.partition(&[&[1], &[2, 3]]);
    c.advance(Duration::from_secs(2));
    assert_ne!(c.node(3).role(), Role::Leader);
    assert!(c.node(3).history().all(|t| t.to != Role::Candidate && t.to != Role::PreCandidate));
    assert!(c.history(3).iter().any(|t| t.reason == TransitionReason::Paused));
    // Node 2 can still be elected with node 3's vote: a paused node votes and replicates.
    assert_eq!(c.node(2).role(), Role::Leader);
    c.propose(2, b"x");
    c.stabilize();
    assert_eq!(c.node(3).log().last_index(), c.node(2).log().last_index());
    c.step(3, Input::Resume);
    assert!(!c.node(3).is_paused());
    assert_eq!(c.history(3).last().map(|t| t.reason.clone()), Some(TransitionReason::Resumed));
}

#[test]
fn a_paused_leader_hands_leadership_to_the_most_up_to_date_peer() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.cut.insert((1, 3));
    c.propose(1, b"x");
    c.stabilize();
    c.heal();
    c.step(1, Input::Pause);
    assert_eq!(c.node(1).status().transferring_to, Some(2), "node 2 has the most of the log");
    c.stabilize();
    assert_eq!(c.leaders(), vec![2]);
    c.advance(Duration::from_secs(2));
    assert_ne!(c.node(1).role(), Role::Leader, "a paused node does not take leadership back");
}

#[test]
fn a_node_started_paused_waits_for_resume() {
    let mut c = Cluster::with_config(1, |cfg| cfg.start_paused = true);
    c.advance(Duration::from_secs(2));
    assert_eq!(c.node(1).role(), Role::Follower);
    c.step(1, Input::Resume);
    c.advance(Duration::from_secs(1));
    assert_eq!(c.node(1).role(), Role::Leader);
}

#[test]
fn prepare_shutdown_moves_leadership_away_then_reports_ready() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.step(1, Input::PrepareShutdown);
    assert!(!c.events(1).contains(&Event::ReadyToStop), "still leader");
    c.stabilize();
    assert_ne!(c.node(1).role(), Role::Leader);
    assert!(c.events(1).contains(&Event::ReadyToStop));
    assert_eq!(c.leaders().len(), 1);
    // A follower is ready at once.
    let follower = if c.leaders() == vec![2] { 3 } else { 2 };
    c.step(follower, Input::PrepareShutdown);
    assert!(c.events(follower).contains(&Event::ReadyToStop));
}

#[test]
fn unreachable_peers_and_quorum_loss_are_reported() {
    let mut c = Cluster::with_config(3, |cfg| {
        cfg.check_quorum = false;
        cfg.unreachable_after_missed_heartbeats = 2;
    });
    c.elect(1);
    // Paused followers never campaign, so only reachability changes here.
    c.step(2, Input::Pause);
    c.step(3, Input::Pause);
    c.isolate(3);
    c.advance(Duration::from_millis(200));
    assert!(c.events(1).contains(&Event::PeerUnreachable { peer: 3 }));
    assert!(!c.events(1).contains(&Event::QuorumLost));
    c.isolate(2);
    c.advance(Duration::from_millis(200));
    assert!(c.events(1).contains(&Event::QuorumLost));
    assert!(c.node(1).status().progress[&2].unreachable);
    c.heal();
    c.advance(Duration::from_millis(100));
    let ev = c.events(1);
    assert!(ev.contains(&Event::PeerReachable { peer: 2 }));
    assert!(ev.contains(&Event::QuorumRegained));
}
