//! The Raft paper's scenarios, one test per sentence or figure, black-box through the
//! public API (modelled on etcd-io/raft's `raft_paper_test.go`). Each test fails when the
//! behaviour it names breaks; each was seen to fail with raft-core broken this way:
//!
//! | test                                              | raft-core broken so that ...                          |
//! |---------------------------------------------------|-------------------------------------------------------|
//! | `figure_7_...`                                    | a rejection backs up one entry (no fast backtracking) |
//! | `newer_uncommitted_entries_are_lost_...`          | a follower keeps an entry that conflicts              |
//! | `a_duplicate_or_reordered_old_append_...`         | an append truncates what follows its last entry       |
//! | `an_old_term_message_leaves_the_node_unchanged_...` | old-term messages are processed / not counted       |
//! | `an_election_in_a_joint_configuration_...`        | joint votes are counted with C_new (or C_old) alone   |
//! | `learners_never_campaign`                         | `can_campaign` does not check for a voter             |
//! | `a_follower_installing_a_snapshot_adopts_...`     | an install keeps the old membership                   |
//! | `a_snapshot_older_than_the_commit_index_...`      | an install is not checked against the commit index    |
//! | `removing_a_node_lowers_the_quorum_...`           | commits are counted with the committed configuration  |
//! | `check_quorum_a_minority_leader_steps_down_...`   | CheckQuorum never steps down                          |
//! | `a_split_vote_is_resolved_in_the_next_round`      | election timeouts are not randomized                  |
//! | `leader_transfer_sends_timeout_now_only_once_...` | TimeoutNow is sent before the target caught up        |

mod common;
use bytes::Bytes;
use common::*;
use raft_core::*;
use std::collections::BTreeSet;
use std::time::Duration;

fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
    ids.iter().copied().collect()
}

fn hard_state(term: Term, vote: Option<NodeId>) -> HardState {
    HardState { term, vote, commit: 0, incarnation: 1 }
}

fn membership_entry(index: Index, term: Term, m: Membership) -> Entry {
    Entry { term, index, payload: Payload::Membership(Box::new(m)) }
}

/// Asks `leader` for a membership change and lets it run to completion.
fn change(c: &mut Cluster, leader: NodeId, id: u64, ch: MembershipChange) {
    c.step(leader, Input::ChangeMembership { id: RequestId(id), change: Box::new(ch) });
    c.stabilize();
    c.advance(Duration::from_millis(120));
    let finished = c
        .events(leader)
        .iter()
        .any(|e| matches!(e, Event::MembershipChangeFinished { id: RequestId(i), .. } if *i == id));
    assert!(finished, "change {id} did not finish: {:?}", c.events(leader));
}

// ---- §5.3, Figure 7: the leader makes every follower's log identical to its own ----------

/// The leader's log in Figure 7 (terms of indexes 1..=10); it comes to power in term 8.
const FIGURE_7_LEADER: [Term; 10] = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];

/// The follower logs (a)-(f) of Figure 7.
const FIGURE_7_FOLLOWERS: [(&str, &[Term]); 6] = [
    ("a", &[1, 1, 1, 4, 4, 5, 5, 6, 6]),
    ("b", &[1, 1, 1, 4]),
    ("c", &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6]),
    ("d", &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7]),
    ("e", &[1, 1, 1, 4, 4, 4, 4]),
    ("f", &[1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]),
];

/// Round trips the leader may spend finding where `follower` diverges from `leader` when it
/// skips a whole conflicting term per rejection (§5.3, "the follower can include the term of
/// the conflicting entry and the first index it stores for that term"): one per distinct
/// term among the follower's entries that conflict with entries the leader has, plus one if
/// the follower lacks some of the leader's entries.
fn one_round_trip_per_conflicting_term(leader: &[Term], follower: &[Term]) -> usize {
    let common = leader.iter().zip(follower).take_while(|(a, b)| a == b).count();
    let overlap = leader.len().min(follower.len());
    let conflicting: BTreeSet<Term> = follower[common.min(overlap)..overlap].iter().copied().collect();
    conflicting.len() + usize::from(follower.len() < leader.len())
}

/// Figure 7: "When the leader at the top comes to power, it is possible that any of
/// scenarios (a–f) could occur in follower logs." The term-8 leader forces each follower's
/// log to duplicate its own (§5.3), spending at most one rejected append per conflicting
/// term of the follower.
#[test]
fn figure_7_the_leader_makes_every_follower_log_identical_with_one_round_trip_per_conflicting_term() {
    for (case, follower) in FIGURE_7_FOLLOWERS {
        let mut c = Cluster::new(3);
        // Node 1 is the leader of the figure; node 3 holds the same log (so node 1 can win
        // term 8 with its vote); node 2 holds the follower log of the case.
        c.restart_with_log(1, hard_state(7, None), log_with_terms(&FIGURE_7_LEADER));
        c.restart_with_log(3, hard_state(7, None), log_with_terms(&FIGURE_7_LEADER));
        c.restart_with_log(2, hard_state(7, None), log_with_terms(follower));
        c.elect(1);
        assert_eq!(c.node(1).term(), 8, "({case}) the leader of Figure 7 comes to power in term 8");
        c.advance(Duration::from_millis(100));

        let leader_log = c.node(1).log().entries().to_vec();
        assert_eq!(leader_log.len(), FIGURE_7_LEADER.len() + 1, "({case}) the leader's log plus its no-op");
        assert_eq!(c.node(2).log().entries(), &leader_log[..], "({case}) the follower's log duplicates the leader's");
        assert_eq!(c.node(2).commit_index(), leader_log.len() as Index, "({case}) and everything commits");
        let rejected = c.rejections(2, 1);
        let bound = one_round_trip_per_conflicting_term(&FIGURE_7_LEADER, follower);
        assert!(
            rejected == bound,
            "({case}) {rejected} rejected appends, expected exactly {bound} (one per conflicting term): {:?}",
            c.trace
        );
        // And the append it finally accepts starts right where the two logs part: nothing
        // the follower already holds correctly is sent again.
        let shared = FIGURE_7_LEADER.iter().zip(follower.iter()).take_while(|(a, b)| a == b).count() as Index;
        let first_accepted = c
            .delivered
            .iter()
            .position(|m| {
                m.from == 2 && matches!(m.body, MessageBody::AppendResponse { result: AppendResult::Success { .. } })
            })
            .expect("an append was accepted");
        let accepted = c.delivered[..first_accepted]
            .iter()
            .rev()
            .find_map(|m| match m.body {
                MessageBody::Append { prev_log_index, .. } if m.from == 1 && m.to == 2 => Some(prev_log_index),
                _ => None,
            })
            .expect("the accepted append");
        assert_eq!(accepted, shared, "({case}) the accepted append starts after the shared prefix");
        c.check_safety();
    }
}

// ---- §5.4.1 / etcd's TestLeaderElectionOverwriteNewerLogs --------------------------------

/// Uncommitted entries of a later term can be lost: n1 and n2 hold [t1], n3 (leader of
/// term 2) holds [t2], n4 and n5 voted in term 2 but got nothing. n1's first campaign fails
/// (a majority knows term 2) and teaches it term 2; its second wins term 3, and the
/// winner's log overwrites n3's newer entry: every log ends [t1, t3].
#[test]
fn newer_uncommitted_entries_are_lost_when_an_older_log_wins_the_election() {
    let mut c = Cluster::new(5);
    c.restart_with_log(1, hard_state(1, Some(1)), log_with_terms(&[1]));
    c.restart_with_log(2, hard_state(1, Some(1)), log_with_terms(&[1]));
    c.restart_with_log(3, hard_state(2, Some(3)), log_with_terms(&[2]));
    c.restart_with_log(4, hard_state(2, Some(3)), vec![]);
    c.restart_with_log(5, hard_state(2, Some(3)), vec![]);

    c.campaign(1);
    assert_ne!(c.node(1).role(), Role::Leader, "a majority already voted in term 2");
    assert_eq!(c.node(1).term(), 2, "the failed campaign pushed node 1 to term 2");

    c.campaign(1);
    assert_eq!(c.node(1).role(), Role::Leader, "history: {:?}", c.history(1));
    assert_eq!(c.node(1).term(), 3);
    c.advance(Duration::from_millis(100));
    for n in 1..=5 {
        assert_eq!(c.log_terms(n), vec![1, 3], "node {n}");
        assert_eq!(c.node(n).commit_index(), 2, "node {n}");
    }
    c.check_safety();
}

// ---- §5.3: appends are idempotent; old ones never truncate ------------------------------

/// "If an existing entry conflicts with a new one (same index but different terms), delete
/// the existing entry and all that follow it" — and only then. A duplicated or reordered
/// old append holds nothing that conflicts, so the follower keeps every entry it has, even
/// uncommitted ones past the old append's end.
#[test]
fn a_duplicate_or_reordered_old_append_never_truncates_the_follower_log() {
    let mut c = Cluster::with_config(3, |cfg| cfg.max_entries_per_message = 1);
    c.elect(1);
    c.isolate(3);
    c.cut.insert((2, 1)); // node 2's acks are lost: nothing new commits
    for _ in 0..4 {
        c.propose(1, b"x");
    }
    let appends: Vec<Message> = c
        .queue
        .drain(..)
        .filter(|m| m.to == 2 && matches!(&m.body, MessageBody::Append { entries, .. } if !entries.is_empty()))
        .collect();
    assert_eq!(appends.len(), 4, "one append per entry");
    for m in &appends {
        c.step(2, Input::Message(m.clone()));
    }
    c.queue.clear();
    let held = c.node(2).log().entries().to_vec();
    assert_eq!(held.len(), 5, "the no-op and four entries");
    assert!(c.node(2).commit_index() < 5, "the tail is not committed");

    // The network duplicates and reorders: every old append again, newest first, then the
    // oldest once more.
    let replay = appends.iter().rev().chain(appends.first());
    for m in replay {
        c.step(2, Input::Message(m.clone()));
        assert_eq!(c.node(2).log().entries(), &held[..], "after replaying {m:?}");
        let answers: Vec<Message> = c.queue.drain(..).collect();
        assert!(
            answers
                .iter()
                .all(|a| matches!(a.body, MessageBody::AppendResponse { result: AppendResult::Success { .. } })),
            "an old append is acknowledged, not rejected: {answers:?}"
        );
    }
}

// ---- §5.1: stale terms ----------------------------------------------------------------

/// "If a server receives a request with a stale term number, it rejects the request." A
/// message of an older term changes nothing on the receiver, follower or leader: it is
/// answered with the current term (so a deposed leader learns it) or dropped and counted.
#[test]
fn an_old_term_message_leaves_the_node_unchanged_and_is_counted() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.propose(1, b"a");
    c.stabilize();
    // Node 1 is cut off; node 2 is elected in a later term and commits an entry of its own.
    c.isolate(1);
    c.now = c.now + Duration::from_secs(1);
    c.elect(2);
    c.propose(2, b"b");
    c.stabilize();
    let stale = c.node(1).term();
    let current = c.node(2).term();
    assert!(stale < current);

    let last = c.node(1).log().last_index();
    let meta = SnapshotMeta { index: last + 5, term: stale, membership: c.node(1).membership().clone() };
    let bodies = vec![
        MessageBody::VoteRequest { pre_vote: false, last_log_index: 100, last_log_term: stale, transfer: false },
        MessageBody::VoteRequest { pre_vote: true, last_log_index: 100, last_log_term: stale, transfer: true },
        MessageBody::VoteResponse { pre_vote: false, granted: true },
        MessageBody::Append {
            prev_log_index: last,
            prev_log_term: stale,
            entries: vec![Entry { term: stale, index: last + 1, payload: Payload::Noop }].into(),
            commit: last + 1,
        },
        MessageBody::AppendResponse { result: AppendResult::Success { match_index: 1 } },
        MessageBody::AppendResponse {
            result: AppendResult::Conflict { rejected_index: 1, hint_index: 1, hint_term: None },
        },
        MessageBody::Heartbeat { commit: last, seq: 7 },
        MessageBody::HeartbeatResponse { seq: 1 },
        MessageBody::ReadIndexRequest { ctx: ReadContext { incarnation: 1, seq: 3 } },
        MessageBody::ReadIndexResponse { ctx: ReadContext { incarnation: 1, seq: 0 }, index: Some(1) },
        MessageBody::TimeoutNow,
        MessageBody::InstallSnapshotResponse { index: 1, success: true },
    ];
    c.heal();
    for to in [3, 2] {
        for body in &bodies {
            let before = c.state(to);
            let counted_before = c.node(to).metrics().dropped_stale_term;
            let m = Message { from: 1, to, term: stale, body: body.clone() };
            c.step(to, Input::Message(m.clone()));
            assert_eq!(c.state(to), before, "node {to} after {m:?}");
            let counted = c.node(to).metrics().dropped_stale_term - counted_before;
            let answers: Vec<Message> = c.queue.drain(..).collect();
            assert_eq!(counted, 1, "node {to}: {m:?} was not counted as stale");
            match answers.as_slice() {
                [] => {}
                [a] => {
                    assert_eq!((a.from, a.to, a.term), (to, 1, current), "node {to} answers {m:?} with its term");
                }
                more => panic!("node {to}: {m:?} caused {more:?}"),
            }
            if matches!(body, MessageBody::Append { .. } | MessageBody::Heartbeat { .. }) {
                assert_eq!(answers.len(), 1, "node {to} tells the stale leader of the new term: {m:?}");
            }
        }
    }
    // A snapshot stream from the stale leader is discarded the same way, and it too tells
    // the stale leader of the new term.
    for to in [3, 2] {
        let before = c.state(to);
        let header = SnapshotHeader { from: 1, to, term: stale, meta: meta.clone() };
        c.receive_snapshot(header, Vec::new());
        assert_eq!(c.state(to), before, "node {to} after a stale snapshot");
        assert!(
            matches!(c.peers[&to].outputs.last(), Some(Action::DiscardSnapshot { .. })),
            "node {to} discards a stale snapshot"
        );
        let answers: Vec<Message> = c.queue.drain(..).collect();
        assert!(matches!(answers.as_slice(), [a] if a.term == current && a.to == 1), "{answers:?}");
    }
    // The answers depose the stale leader once delivered.
    c.step(
        1,
        Input::Message(Message { from: 3, to: 1, term: current, body: MessageBody::HeartbeatResponse { seq: 0 } }),
    );
    assert_eq!(c.node(1).role(), Role::Follower);
    assert_eq!(c.node(1).term(), current);
    c.stabilize();
    c.check_safety();
}

// ---- Joint consensus (§6 / thesis §4.3) and learners ------------------------------------

/// "Agreement (for elections and entry commitment) requires separate majorities from both
/// the old and new configurations." Node 1 with C_old = {1,2,3} and C_new = {1,4,5} in its
/// log cannot win with votes from one half only.
#[test]
fn an_election_in_a_joint_configuration_needs_a_majority_of_both_halves() {
    let joint = Membership::from_sets(set(&[1, 4, 5]), set(&[1, 2, 3]), BTreeSet::new());
    let mut c = Cluster::new(5);
    for n in 1..=5 {
        c.restart_with_log(n, hard_state(1, None), vec![membership_entry(1, 1, joint.clone())]);
    }
    assert_eq!(c.node(1).membership(), &joint);

    c.partition(&[&[1, 4, 5], &[2, 3]]);
    c.campaign(1);
    assert_ne!(c.node(1).role(), Role::Leader, "votes of C_new {{1,4,5}} alone must not elect");
    c.campaign(1);
    assert_ne!(c.node(1).role(), Role::Leader, "nor in a second round");

    c.partition(&[&[1, 2, 3], &[4, 5]]);
    c.campaign(1);
    assert_ne!(c.node(1).role(), Role::Leader, "votes of C_old {{1,2,3}} alone must not elect");

    c.partition(&[&[1, 2, 4], &[3, 5]]);
    c.campaign(1);
    assert_eq!(c.node(1).role(), Role::Leader, "{{1,2}} of C_old and {{1,4}} of C_new elect");
    match c.history(1).last().map(|t| t.reason.clone()) {
        Some(TransitionReason::WonElection { votes }) => assert_eq!(votes, set(&[1, 2, 4])),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(c.leaders(), vec![1]);
    c.check_safety();
}

/// Learners (thesis §4.2.1, "non-voting members") never start an election: not on an
/// election timeout, not when asked to by `TimeoutNow`.
#[test]
fn learners_never_campaign() {
    let m = Membership::from_sets(set(&[1, 2, 3]), BTreeSet::new(), set(&[4]));
    let mut c = Cluster::new(4);
    for n in 1..=4 {
        c.restart_with_log(n, hard_state(1, None), vec![membership_entry(1, 1, m.clone())]);
    }
    c.isolate(4); // it never hears a leader, so its election timer fires again and again
    c.advance(Duration::from_secs(3));
    let leader = c.leaders()[0];
    assert_ne!(leader, 4);
    let term = c.node(leader).term();
    c.step(4, Input::Message(Message { from: leader, to: 4, term, body: MessageBody::TimeoutNow }));
    c.advance(Duration::from_secs(1));
    assert_eq!(c.node(4).metrics().elections_started, 0);
    assert!(c.history(4).iter().all(|t| t.to == Role::Follower), "history: {:?}", c.history(4));
    assert_eq!(c.node(4).role(), Role::Follower);
}

// ---- §7: snapshots --------------------------------------------------------------------

/// A follower that installs a snapshot takes the configuration recorded in it (§7: "the
/// snapshot also includes the latest configuration as of the last included index"): here
/// node 3 missed both steps of adding node 4 as a voter, which were compacted away.
#[test]
fn a_follower_installing_a_snapshot_adopts_the_snapshot_membership() {
    let mut c = Cluster::with_config(3, |cfg| cfg.snapshot_policy = SnapshotPolicy { max_entries: 4, max_bytes: 0 });
    c.elect(1);
    c.add_blank_node(4);
    c.isolate(3);
    change(&mut c, 1, 1, MembershipChange::add_learner(4, NodeInfo::default()));
    let mut promote = MembershipChange::add_voter(4);
    promote.require_caught_up = Some(0);
    change(&mut c, 1, 2, promote);
    for _ in 0..8 {
        c.propose(1, b"x");
    }
    c.stabilize();
    c.advance(Duration::from_millis(100));
    let wanted = Membership::with_voters([1, 2, 3, 4]);
    let snap = c.node(1).snapshot().clone();
    assert_eq!(snap.membership, wanted, "the leader's snapshot covers the whole change");
    assert!(c.node(1).log().entries().iter().all(|e| !matches!(e.payload, Payload::Membership(_))));
    assert_eq!(c.node(3).membership().voters, set(&[1, 2, 3]), "node 3 knows only the old configuration");

    c.heal();
    c.advance(Duration::from_millis(300));
    assert!(
        c.peers[&3].outputs.iter().any(|a| matches!(a, Action::InstallSnapshot { .. })),
        "node 3 caught up by a snapshot"
    );
    assert!(c.node(3).snapshot().index >= snap.index);
    assert_eq!(c.node(3).membership(), &wanted);
    assert_eq!(c.node(3).committed_membership(), &wanted);
    assert_eq!(c.node(3).log().last_index(), c.node(1).log().last_index());
    c.check_safety();
}

/// A snapshot that covers less than the follower has committed (a delayed or duplicated
/// `InstallSnapshot`) is ignored: installing it would move the state machine backwards.
#[test]
fn a_snapshot_older_than_the_commit_index_is_ignored() {
    let mut c = Cluster::new(3);
    c.elect(1);
    for _ in 0..4 {
        c.propose(1, b"x");
    }
    c.stabilize();
    c.advance(Duration::from_millis(100));
    let commit = c.node(2).commit_index();
    assert_eq!(commit, 5);
    assert_eq!(c.node(2).applied_index(), 5);
    // An honest snapshot of the leader's log at index 2, arriving late, with its data.
    let meta =
        SnapshotMeta { index: 2, term: c.node(1).log().term(2).unwrap(), membership: c.node(1).membership().clone() };
    let data: Vec<(Index, Payload)> = c.peers[&1].applied.iter().filter(|(i, _)| *i <= 2).cloned().collect();

    let before = c.state(2);
    let applied = c.peers[&2].applied.clone();
    let term = c.node(1).term();
    c.receive_snapshot(SnapshotHeader { from: 1, to: 2, term, meta }, data);
    assert!(
        !c.peers[&2].outputs.iter().any(|a| matches!(a, Action::InstallSnapshot { .. })),
        "the runtime is not asked to install it"
    );
    assert!(
        matches!(c.peers[&2].outputs.last(), Some(Action::DiscardSnapshot { .. })),
        "the runtime is told to drop the staged copy"
    );
    assert_eq!(c.state(2), before);
    assert_eq!(c.node(2).applied_index(), 5);
    assert_eq!(c.node(2).log().first_index(), 1, "nothing compacted");
    assert_eq!(c.peers[&2].applied, applied);
    let answer: Vec<Message> = c.queue.drain(..).collect();
    assert!(
        matches!(
            answer.as_slice(),
            [Message { body: MessageBody::InstallSnapshotResponse { index: 5, success: true }, .. }]
        ),
        "the leader learns what the follower already has: {answer:?}"
    );
}

// ---- Membership: removal ----------------------------------------------------------------

/// Removing a node lowers the quorum, so entries that a majority of the remaining voters
/// holds commit even though they are on a minority of the old configuration (etcd's
/// TestCommitAfterRemoveNode). Four voters, node 4 down: `x` is appended after the joint
/// entry and reaches nodes 1 and 2 only (2 of 4); it commits once C_new = {1,2,3} does.
#[test]
fn removing_a_node_lowers_the_quorum_so_pending_entries_commit() {
    let mut c = Cluster::new(4);
    c.elect(1);
    c.isolate(4);
    let joint_index = c.node(1).log().last_index() + 1;
    // Node 3 takes part in the joint phase only: no later entry reaches it.
    c.drop_if = Some(Box::new(move |m| {
        m.to == 3
            && matches!(&m.body, MessageBody::Append { entries, .. } if entries.iter().any(|e| e.index > joint_index))
    }));
    c.step(1, Input::ChangeMembership { id: RequestId(100), change: Box::new(MembershipChange::remove(4)) });
    let x = c.propose(1, b"x");
    let x_index = joint_index + 1;
    assert_eq!(c.node(1).log().last_index(), x_index);
    c.stabilize();
    c.advance(Duration::from_millis(200));

    assert_eq!(c.node(1).committed_membership(), &Membership::with_voters([1, 2, 3]));
    assert!(c.node(3).log().last_index() < x_index, "node 3 never got x");
    assert!(c.node(1).commit_index() > x_index, "x and C_new committed with nodes 1 and 2 only");
    assert_eq!(c.proposals_applied(1), vec![x]);
    assert_eq!(c.applied_commands(1), vec![Bytes::from_static(b"x")]);
    c.check_safety();
}

// ---- CheckQuorum, split votes, leader transfer ---------------------------------------

/// CheckQuorum (thesis §6.2): "a leader steps down if an election timeout elapses without
/// a successful round of heartbeats to a majority of its cluster". The leader checks once
/// per `election_timeout_min`, so it steps down at the first check a full timeout after
/// the partition: within two minimum timeouts (the maximum election timeout here).
#[test]
fn check_quorum_a_minority_leader_steps_down_within_one_election_timeout() {
    let mut c = Cluster::new(5);
    c.elect(1);
    c.propose(1, b"a");
    c.stabilize();
    c.advance(Duration::from_millis(70));
    let cfg = c.peers[&1].cfg.clone();
    c.partition(&[&[1, 2], &[3, 4, 5]]);
    let cut_at = c.now;
    let mut stepped_down = None;
    for _ in 0..1000 {
        c.advance(Duration::from_millis(1));
        if c.node(1).role() != Role::Leader {
            stepped_down = Some(c.now);
            break;
        }
    }
    let at = stepped_down.expect("the minority leader never stepped down");
    let took = at.saturating_duration_since(cut_at);
    assert!(took >= cfg.election_timeout_min, "it waited a full timeout: {took:?}");
    assert!(took <= 2 * cfg.election_timeout_min, "stepped down after {took:?}");
    assert!(cfg.election_timeout_max <= 2 * cfg.election_timeout_min);
    assert_eq!(c.history(1).last().map(|t| t.reason.clone()), Some(TransitionReason::CheckQuorumLost));
    // The majority elects a new leader; the old one rejoins as its follower.
    c.advance(Duration::from_secs(1));
    let leaders = c.leaders();
    assert_eq!(leaders.len(), 1);
    assert!([3, 4, 5].contains(&leaders[0]));
    c.heal();
    c.advance(Duration::from_millis(200));
    assert_eq!(c.node(1).leader(), Some(leaders[0]));
    c.check_safety();
}

/// §5.2: "Raft uses randomized election timeouts to ensure that split votes are rare and
/// that they are resolved quickly." Two candidates split four votes in one term; the next
/// round (one election timeout later) elects a single leader in the following term.
#[test]
fn a_split_vote_is_resolved_in_the_next_round() {
    let mut c = Cluster::with_config(4, |cfg| cfg.pre_vote = false);
    c.now = Instant::ZERO + Duration::from_millis(400);
    c.cut.extend([(1, 4), (4, 1), (2, 3), (3, 2)]);
    c.step(1, Input::Tick);
    c.step(2, Input::Tick);
    c.stabilize();
    let split_term = c.node(1).term();
    assert_eq!(c.node(2).term(), split_term, "both campaigned in the same term");
    assert!(c.leaders().is_empty(), "two votes of four elect nobody");
    assert!([1, 2].iter().all(|n| c.node(*n).role() == Role::Candidate));

    c.heal();
    let timeout = c.peers[&1].cfg.election_timeout_max;
    c.advance(timeout);
    let leaders = c.leaders();
    assert_eq!(leaders.len(), 1, "one leader within one more election timeout");
    assert_eq!(c.node(leaders[0]).term(), split_term + 1, "elected in the very next term");
    for n in 1..=4 {
        assert_eq!(c.node(n).term(), split_term + 1, "node {n}");
    }
    c.check_safety();
}

/// Thesis §3.10: before sending TimeoutNow, "the prior leader ... brings the target's log
/// up to date". The target lags by five entries; at the moment TimeoutNow is sent its log
/// already matches the leader's.
#[test]
fn leader_transfer_sends_timeout_now_only_once_the_target_is_caught_up() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.isolate(3);
    for _ in 0..5 {
        c.propose(1, b"x");
    }
    c.stabilize();
    c.heal();
    assert!(c.node(3).log().last_index() + 5 <= c.node(1).log().last_index());
    c.step(1, Input::TransferLeadership { id: RequestId(0), to: Some(3) });
    // Run the cluster one message round (or, when it is quiet, one leader heartbeat) at a
    // time, and stop as soon as the leader has sent TimeoutNow.
    let mut rounds = 0;
    while !c.queue.iter().any(|m| m.body == MessageBody::TimeoutNow) {
        assert!(rounds < 20, "TimeoutNow was never sent: {:?}", c.trace);
        if c.queue.is_empty() {
            c.now = c.node(1).next_deadline();
            c.step(1, Input::Tick);
        } else {
            c.deliver_round();
        }
        rounds += 1;
    }
    assert!(rounds > 0, "TimeoutNow must not go out with the transfer request: node 3 lags");
    assert_eq!(c.node(3).log().entries(), c.node(1).log().entries(), "the target is caught up first");
    assert_eq!(c.node(3).durable_index(), c.node(1).log().last_index());
    c.stabilize();
    assert_eq!(c.leaders(), vec![3]);
    c.check_safety();
}
