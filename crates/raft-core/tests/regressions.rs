//! Bugs found by review, each staged message by message as it happened. Every test here
//! failed on the code before its fix; docs/testing.md says which check or fault model now
//! catches each class of bug in the simulator too.

mod common;

use bytes::Bytes;
use common::*;
use raft_core::*;
use std::time::Duration;

/// Finding 1. A follower installing a snapshot keeps the log after the snapshot point when
/// it agrees with it; a configuration in that suffix that the commit index passed during the
/// install is committed, and must still be in force afterwards. (The old code rebuilt the
/// membership from the snapshot's configuration plus the *uncommitted* list, so it lost
/// every configuration committed while the install ran.)
#[test]
fn a_configuration_committed_during_a_snapshot_install_survives_the_install() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.propose(1, b"a");
    c.propose(1, b"b");
    c.stabilize();
    assert_eq!(c.node(3).commit_index(), 3);

    // Index 4 (a command) and 5 (add learner 4) reach node 3, but no commit index above 3.
    c.drop_if = Some(Box::new(|m: &Message| {
        m.to == 3
            && match &m.body {
                MessageBody::Append { commit, .. } | MessageBody::Heartbeat { commit, .. } => *commit > 3,
                _ => false,
            }
    }));
    c.propose_undrained(1, b"c");
    c.step(
        1,
        Input::ChangeMembership {
            id: RequestId(900),
            change: Box::new(MembershipChange::add_learner(4, NodeInfo::default())),
        },
    );
    c.stabilize();
    assert_eq!(c.node(1).commit_index(), 5);
    assert_eq!((c.node(3).log().last_index(), c.node(3).commit_index()), (5, 3));

    // A delayed InstallSnapshot for index 4 (sent while node 3 looked behind) arrives; the
    // transfer is slow.
    let meta = SnapshotMeta { index: 4, term: c.node(1).term(), membership: Membership::with_voters([1, 2, 3]) };
    let data = c.peers[&1].applied.iter().filter(|(i, _)| *i <= 4).cloned().collect();
    c.peer(3).hold_installs = true;
    let term = c.node(1).term();
    c.receive_snapshot(SnapshotHeader { from: 1, to: 3, term, meta }, data);

    // Meanwhile a heartbeat carries commit 5: the learner's configuration commits on node 3.
    c.heal();
    c.step(1, Input::Tick);
    c.advance(Duration::from_millis(60));
    assert_eq!(c.node(3).commit_index(), 5);
    assert!(c.node(3).committed_membership().learners.contains(&4));

    c.complete_install(3);
    c.stabilize();
    assert_eq!(c.node(3).membership(), c.node(1).membership(), "node 3 forgot a committed configuration");
    assert_eq!(c.node(3).committed_membership(), c.node(1).committed_membership());
    assert!(c.node(3).membership().learners.contains(&4));
    c.check_safety();
}

/// Finding 2. A follower's forwarded read is matched to the leader's reply by a context.
/// Contexts restarted from zero at each start, so a reply delayed past a restart answered
/// the new incarnation's first read with an old read index: the read began after a write
/// completed and did not see it. Now each start takes a new durable incarnation, which the
/// context carries.
#[test]
fn a_read_index_reply_from_before_a_restart_does_not_answer_a_later_read() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.stabilize();

    // Node 2 forwards a read; the leader's reply is delayed in the network.
    c.read(2, ReadConsistency::FollowerReadIndex);
    let mut delayed = None;
    while let Some(m) = c.queue.pop_front() {
        if matches!(m.body, MessageBody::ReadIndexResponse { .. }) && m.to == 2 {
            delayed = Some(m);
        } else {
            c.step(m.to, Input::Message(m));
        }
    }
    let delayed = delayed.expect("the leader answered the read");
    let MessageBody::ReadIndexResponse { index: Some(old_index), .. } = delayed.body else { panic!("{delayed:?}") };

    // Node 2 restarts in the same term; a write w then commits and is acknowledged.
    c.crash_and_restart(2);
    let w = c.propose(1, b"w");
    c.stabilize();
    let w_index = c.node(1).commit_index();
    assert!(w_index > old_index && c.proposals_applied(1).contains(&w));
    assert_eq!(c.node(2).leader(), Some(1));

    // A new read on node 2: its request is lost, and the old reply arrives.
    let read = c.read(2, ReadConsistency::FollowerReadIndex);
    c.queue.retain(|m| !matches!(m.body, MessageBody::ReadIndexRequest { .. }));
    c.step(2, Input::Message(delayed));
    let served: Vec<Index> = c.reads_ready(2).into_iter().filter(|(id, _)| *id == read).map(|(_, i)| i).collect();
    assert!(served.iter().all(|i| *i >= w_index), "read served at {served:?}, before the write at {w_index}");
    assert!(served.is_empty(), "the stale reply must be dropped");
}

/// Finding 2, the other half: a restarted node forwards no read before its new incarnation
/// is durable (a crash before that would let the next start take the same number).
#[test]
fn a_restarted_follower_forwards_reads_only_once_its_incarnation_is_durable() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.stabilize();
    c.peer(2).auto_persist = false;
    c.crash_and_restart(2);
    c.step(1, Input::Tick);
    c.advance(Duration::from_millis(60)); // node 2 learns the leader again
    assert_eq!(c.node(2).leader(), Some(1));
    let first = c.peers[&2].held.first().expect("the restart's first persist");
    assert_eq!(first.hard_state.map(|h| h.incarnation), Some(2), "bootstrap was incarnation 1");
    c.read(2, ReadConsistency::FollowerReadIndex);
    assert!(!c.queue.iter().any(|m| matches!(m.body, MessageBody::ReadIndexRequest { .. })));
    c.flush_disk(2);
    let sent = c.queue.iter().find_map(|m| match m.body {
        MessageBody::ReadIndexRequest { ctx } => Some(ctx),
        _ => None,
    });
    assert_eq!(sent, Some(ReadContext { incarnation: 2, seq: 0 }));
}

/// Finding 3. No single message may panic a node. A conflict answer naming the largest
/// index overflowed `rejected_index + 1` on a leader probing that peer.
#[test]
fn a_conflict_naming_the_largest_index_is_dropped_not_a_panic() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.stabilize();
    c.crash_and_restart(2);
    c.propose(1, b"x"); // the leader probes node 2 again after a rejection
    let term = c.node(1).term();
    let before = c.node(1).metrics().dropped_invalid;
    for rejected_index in [u64::MAX, u64::MAX - 1, MAX_INDEX + 1] {
        let result = AppendResult::Conflict { rejected_index, hint_index: rejected_index, hint_term: Some(term) };
        c.step(1, Input::Message(Message { from: 2, to: 1, term, body: MessageBody::AppendResponse { result } }));
    }
    assert_eq!(c.node(1).metrics().dropped_invalid, before + 3);
    assert_eq!(c.node(1).role(), Role::Leader);
    c.stabilize();
    c.check_safety();
}

/// Finding 3. A message whose term is beyond `MAX_TERM` is invalid: it must not raise the
/// node's term (the next campaign's `term + 1` would overflow).
#[test]
fn a_term_beyond_the_maximum_is_refused_and_the_node_can_still_campaign() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.stabilize();
    for term in [u64::MAX, MAX_TERM + 1] {
        let m = Message { from: 3, to: 2, term, body: MessageBody::Heartbeat { commit: 0, seq: 1 } };
        assert!(matches!(Message::decode(&m.encode(), 1 << 20), Err(DecodeError::Invalid(_))));
        c.step(2, Input::Message(m));
    }
    assert_eq!(c.node(2).term(), c.node(1).term());
    assert_eq!(c.node(2).metrics().dropped_invalid, 2);
    c.isolate(1);
    assert!(c.campaign_until_leader(2, 5));
    c.check_safety();
}

/// Finding 3. Operator input must not panic either: a promotion that tolerates any lag.
#[test]
fn a_promotion_with_the_largest_lag_is_judged_not_a_panic() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.add_blank_node(4);
    c.step(
        1,
        Input::ChangeMembership {
            id: RequestId(1),
            change: Box::new(MembershipChange::add_learner(4, NodeInfo::default())),
        },
    );
    c.stabilize();
    let change = MembershipChange { require_caught_up: Some(u64::MAX), ..MembershipChange::add_voter(4) };
    c.step(1, Input::ChangeMembership { id: RequestId(2), change: Box::new(change) });
    c.stabilize();
    assert!(c.node(1).membership().is_voter(4));
}

/// Finding 4. A follower that learns a new term from the new leader's first append writes
/// one persist with the new hard state and entries of that term. The documented order is
/// snapshot → entries → hard state, so a crash inside it can leave entries of a term the
/// stored hard state has not reached. The node must restart from that (adopting the term
/// with no vote: a vote in it was never sent), not refuse to start.
#[test]
fn a_persist_torn_between_its_entries_and_its_hard_state_restarts() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.stabilize();
    let old_term = c.node(1).term();
    // Leadership moves to 2 without node 3 taking part in the vote, so node 3 first hears
    // of the new term from the new leader's first append.
    c.drop_if = Some(Box::new(|m: &Message| {
        (m.to == 3 || m.from == 3)
            && matches!(m.body, MessageBody::VoteRequest { .. } | MessageBody::VoteResponse { .. })
    }));
    c.peer(3).auto_persist = false;
    c.step(1, Input::TransferLeadership { id: RequestId(0), to: Some(2) });
    c.stabilize();
    assert_eq!(c.leaders(), vec![2]);
    let term = c.node(2).term();
    assert!(term > old_term);
    let held = std::mem::take(&mut c.peer(3).held);
    assert_eq!(held.len(), 1, "{held:?}");
    let p = &held[0];
    assert_eq!(p.hard_state.map(|h| h.term), Some(term));
    assert!(p.entries.iter().any(|e| e.term == term));

    // Torn: the entries reached the disk, the hard state did not.
    let disk = &mut c.peer(3).disk;
    let first = p.entries[0].index;
    disk.entries.retain(|e| e.index < first);
    disk.entries.extend(p.entries.iter().cloned());
    assert_eq!(disk.hard_state.term, old_term);
    c.crash_and_restart(3);
    assert_eq!(c.node(3).term(), term);
    assert_eq!(c.node(3).vote(), None, "a vote in the adopted term was never sent");

    c.heal();
    c.peer(3).auto_persist = true;
    c.flush_disk(3);
    c.propose(2, b"y");
    c.advance(Duration::from_millis(200));
    assert_eq!(c.leaders(), vec![2]);
    assert_eq!(c.applied_commands(3).last(), Some(&Bytes::from_static(b"y")));
    c.check_safety();
}

/// Found by review: `TimeoutNow` was obeyed from any sender in the node's term, and the
/// election it starts bypasses the voters' CheckQuorum leases, so a forged or misrouted one
/// could unseat a leader that still serves lease reads. Only the leader the node follows
/// may start a transfer.
#[test]
fn timeout_now_is_obeyed_only_from_the_leader_the_node_follows() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.stabilize();
    let term = c.node(1).term();
    c.step(2, Input::Message(Message { from: 3, to: 2, term, body: MessageBody::TimeoutNow }));
    assert_eq!(c.node(2).role(), Role::Follower);
    assert_eq!(c.node(2).term(), term);
    c.stabilize();
    assert_eq!(c.leaders(), vec![1]);
    // From the leader it is a transfer, and node 2 campaigns at once.
    c.step(2, Input::Message(Message { from: 1, to: 2, term, body: MessageBody::TimeoutNow }));
    assert_eq!(c.node(2).role(), Role::Candidate);
}

/// Found by the harness's metrics check: a proposal whose entry a snapshot install swallowed
/// was reported `OutcomeUnknown` without being counted in `proposals_rejected`. The old
/// leader's pending proposal is folded into a snapshot from the new leader.
#[test]
fn a_proposal_swallowed_by_a_snapshot_install_is_reported_and_counted() {
    let mut c = Cluster::with_config(3, |cfg| cfg.snapshot_policy.max_entries = 4);
    c.elect(1);
    c.stabilize();
    c.isolate(1);
    let lost = c.propose(1, b"lost");
    assert!(c.campaign_until_leader(2, 5));
    for _ in 0..8 {
        c.propose(2, b"x");
    }
    c.stabilize();
    assert!(c.node(2).snapshot().index > c.node(1).log().last_index(), "node 2 compacted past node 1's log");
    c.heal();
    c.advance(Duration::from_millis(300));
    let outcome = c.proposal_rejections(1).into_iter().find(|(id, _)| *id == lost);
    assert!(matches!(outcome, Some((_, ProposalError::OutcomeUnknown { .. }))), "{outcome:?}");
    assert_eq!(c.node(1).metrics().proposals_rejected, 1);
    c.check_safety();
}
