//! Exact boundaries and guards: the lease's last nanosecond, the windows in which a node
//! refuses to vote, which targets a transfer accepts, the uncommitted-entries limit. A
//! mutation audit (cargo-mutants) found each of these could be changed without any test
//! failing; every test here fails when its boundary moves by one or its guard is dropped.

mod common;

use common::*;
use raft_core::*;
use std::time::Duration;

const NS: Duration = Duration::from_nanos(1);

fn lease_cluster() -> Cluster {
    let mut c = Cluster::with_config(3, |cfg| cfg.lease_reads = true);
    c.elect(1);
    c.stabilize();
    c
}

fn ready(c: &Cluster, id: NodeId, read: ReadId) -> bool {
    c.reads_ready(id).iter().any(|(r, _)| *r == read)
}

fn heartbeats_queued(c: &Cluster) -> usize {
    c.queue.iter().filter(|m| matches!(m.body, MessageBody::Heartbeat { .. })).count()
}

/// Thesis §6.4.1: a heartbeat round sent at `t` and acknowledged by a quorum gives the
/// leader a lease until `t + election_timeout_min − lease_clock_drift`, because the voters
/// that acknowledged it refuse to elect anyone else until then. A read strictly inside the
/// lease is served at once; from its end on, a read needs a new round.
#[test]
fn a_lease_read_is_served_locally_until_the_last_nanosecond_of_the_lease() {
    let mut c = lease_cluster();
    let cfg = c.peers[&1].cfg.clone();
    // Let any lease from the election's rounds run out, then start one round at `t`.
    c.now = c.now + cfg.election_timeout_min;
    let t = c.now;
    let first = c.read(1, ReadConsistency::Lease);
    assert_eq!(heartbeats_queued(&c), 2, "no lease yet: the read starts a round");
    c.stabilize();
    assert!(ready(&c, 1, first));
    let until = t + (cfg.election_timeout_min - cfg.lease_clock_drift);

    c.now = until - NS;
    let inside = c.read(1, ReadConsistency::Lease);
    assert!(ready(&c, 1, inside), "a read inside the lease is served at once");
    assert_eq!(heartbeats_queued(&c), 0, "and needs no round");

    c.now = until;
    let after = c.read(1, ReadConsistency::Lease);
    assert!(!ready(&c, 1, after), "the lease has ended");
    assert_eq!(heartbeats_queued(&c), 2);
    c.stabilize();
    assert!(ready(&c, 1, after));
}

fn vote_request(c: &Cluster, from: NodeId, to: NodeId) -> Input {
    let n = c.node(from);
    Input::Message(Message {
        from,
        to,
        term: c.node(to).term() + 1,
        body: MessageBody::VoteRequest {
            pre_vote: false,
            last_log_index: n.log().last_index(),
            last_log_term: n.log().last_term(),
            transfer: false,
        },
    })
}

/// Thesis §4.2.3 (leader stickiness, with CheckQuorum): a follower that heard from its
/// leader less than the minimum election timeout ago ignores vote requests, even of a
/// higher term; at the timeout it takes part again.
#[test]
fn a_follower_ignores_vote_requests_for_exactly_the_minimum_timeout_after_hearing_its_leader() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.stabilize();
    let etmin = c.peers[&2].cfg.election_timeout_min;
    let (term, commit) = (c.node(1).term(), c.node(1).commit_index());
    let heard = c.now + Duration::from_millis(7);
    c.now = heard;
    c.step(2, Input::Message(Message { from: 1, to: 2, term, body: MessageBody::Heartbeat { commit, seq: 0 } }));
    c.queue.clear();

    c.now = heard + etmin - NS;
    let dropped = c.node(2).metrics().dropped_in_lease;
    c.step(2, vote_request(&c, 3, 2));
    assert_eq!(c.node(2).term(), term, "a vote request inside the lease changes nothing");
    assert_eq!(c.node(2).metrics().dropped_in_lease, dropped + 1);

    c.now = heard + etmin;
    c.step(2, vote_request(&c, 3, 2));
    assert_eq!(c.node(2).term(), term + 1);
    assert_eq!(c.node(2).vote(), Some(3));
}

/// After a restart a node cannot know whether it acknowledged a leader just before, so it
/// refuses to vote for the minimum election timeout (with CheckQuorum), and no longer.
#[test]
fn a_restarted_node_refuses_votes_for_exactly_the_minimum_timeout() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.stabilize();
    let etmin = c.peers[&2].cfg.election_timeout_min;
    let term = c.node(2).term();
    let restart = c.now + Duration::from_millis(3);
    c.now = restart;
    c.crash_and_restart(2);

    c.now = restart + etmin - NS;
    c.step(2, vote_request(&c, 3, 2));
    assert_eq!(c.node(2).term(), term, "inside the restart guard");

    c.now = restart + etmin;
    c.step(2, vote_request(&c, 3, 2));
    assert_eq!(c.node(2).term(), term + 1);
    assert_eq!(c.node(2).vote(), Some(3));
}

/// Without CheckQuorum there is no lease, so neither guard applies.
#[test]
fn without_check_quorum_a_follower_votes_at_once() {
    let mut c = Cluster::with_config(3, |cfg| cfg.check_quorum = false);
    c.elect(1);
    c.stabilize();
    let term = c.node(2).term();
    c.step(2, vote_request(&c, 3, 2));
    assert_eq!((c.node(2).term(), c.node(2).vote()), (term + 1, Some(3)));
}

fn transfer_rejections(c: &Cluster) -> Vec<Option<NodeId>> {
    c.events(1)
        .into_iter()
        .filter_map(|e| match e {
            Event::TransferRejected { target, .. } => Some(target),
            _ => None,
        })
        .collect()
}

fn timeout_now_to(c: &Cluster) -> Vec<NodeId> {
    c.queue.iter().filter(|m| matches!(m.body, MessageBody::TimeoutNow)).map(|m| m.to).collect()
}

/// Thesis §3.10: leadership goes only to a voter other than the leader.
#[test]
fn a_transfer_to_a_learner_an_unknown_node_or_the_leader_is_rejected() {
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
    for target in [4, 9, 1] {
        c.step(1, Input::TransferLeadership { id: RequestId(0), to: Some(target) });
        assert!(timeout_now_to(&c).is_empty(), "no transfer to {target}");
        assert_eq!(transfer_rejections(&c).last(), Some(&Some(target)));
        assert_eq!(c.leaders(), vec![1]);
        assert!(c.propose(1, b"x").0 > 0 && c.proposal_rejections(1).is_empty(), "proposals go on");
        c.stabilize();
    }
}

/// With no target named, the leader picks the voter with the most of its log, the lowest
/// id among equals.
#[test]
fn a_transfer_without_a_target_picks_the_most_caught_up_voter_then_the_lowest_id() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.stabilize();
    c.step(1, Input::TransferLeadership { id: RequestId(0), to: None });
    assert_eq!(timeout_now_to(&c), vec![2], "2 and 3 hold the whole log: the lower id");

    let mut c = Cluster::new(3);
    c.elect(1);
    c.stabilize();
    c.cut.insert((1, 2));
    c.propose(1, b"x");
    c.stabilize();
    c.cut.clear();
    c.step(1, Input::TransferLeadership { id: RequestId(0), to: None });
    assert_eq!(timeout_now_to(&c), vec![3], "3 holds more of the log than 2");
}

/// `max_uncommitted_entries` bounds the leader's uncommitted tail: exactly that many
/// proposals are accepted while nothing commits, and 0 means no bound.
#[test]
fn the_uncommitted_limit_accepts_exactly_its_size_and_zero_means_unbounded() {
    let mut c = Cluster::with_config(3, |cfg| cfg.max_uncommitted_entries = 3);
    c.elect(1);
    c.stabilize();
    c.isolate(1);
    let ids: Vec<ProposalId> = (0..4).map(|_| c.propose(1, b"x")).collect();
    let rejected = c.proposal_rejections(1);
    assert_eq!(rejected, vec![(ids[3], ProposalError::Overloaded { limit: Limit::UncommittedEntries })]);

    let mut c = Cluster::new(3);
    c.elect(1);
    c.stabilize();
    c.isolate(1);
    for _ in 0..100 {
        c.propose(1, b"x");
    }
    assert!(c.proposal_rejections(1).is_empty());
}

/// The lease runs from the start of a round that a quorum acknowledged, never from one it
/// did not: an answer to an older round (a duplicate, or delayed) extends nothing.
#[test]
fn a_lease_starts_only_from_a_round_a_quorum_acknowledged() {
    let mut c = lease_cluster();
    let cfg = c.peers[&1].cfg.clone();
    c.now = c.now + cfg.election_timeout_min;
    c.step(1, Input::Tick); // a heartbeat round, answered by both followers
    c.stabilize();
    c.now = c.now + cfg.election_timeout_min; // its lease has ended
    let term = c.node(1).term();
    let old_round = c.trace.iter().filter(|l| l.starts_with("2->1 HeartbeatResp")).count();
    assert!(old_round > 0);

    // A read starts a new round; neither follower's answer to it arrives, but a duplicate
    // of an answer to an earlier round does.
    let read = c.read(1, ReadConsistency::ReadIndex);
    let sent: Vec<Message> = c.queue.drain(..).collect();
    let seq = sent
        .iter()
        .find_map(|m| match m.body {
            MessageBody::Heartbeat { seq, .. } => Some(seq),
            _ => None,
        })
        .expect("the read started a round");
    let stale = Message { from: 2, to: 1, term, body: MessageBody::HeartbeatResponse { seq: seq - 1 } };
    c.step(1, Input::Message(stale));
    assert!(!ready(&c, 1, read), "the round was not acknowledged");
    let second = c.read(1, ReadConsistency::ReadIndex);
    assert!(!ready(&c, 1, second), "no lease came from the stale answer");

    // The round's own answers confirm both reads.
    for m in sent {
        c.step(m.to, Input::Message(m));
    }
    c.stabilize();
    assert!(ready(&c, 1, read) && ready(&c, 1, second));
}

fn transitions_to(c: &Cluster, id: NodeId, role: Role) -> Vec<Term> {
    c.history(id).into_iter().filter(|t| t.to == role).map(|t| t.term).collect()
}

/// The history records a transition per role change, and per new term of a real election;
/// a pre-candidate that probes again in the same term is not a new transition.
#[test]
fn transitions_are_recorded_per_role_change_and_per_election_term() {
    let mut c = Cluster::new(3);
    c.isolate(1);
    let t0 = c.node(1).term();
    c.campaign(1);
    assert_eq!(c.node(1).role(), Role::PreCandidate);
    assert_eq!(transitions_to(&c, 1, Role::PreCandidate), vec![t0], "becoming a pre-candidate is recorded");
    c.campaign(1);
    assert_eq!(transitions_to(&c, 1, Role::PreCandidate), vec![t0], "probing again is not");

    let mut c = Cluster::with_config(3, |cfg| cfg.pre_vote = false);
    c.isolate(1);
    c.campaign(1);
    assert_eq!(transitions_to(&c, 1, Role::Candidate), vec![t0 + 1]);
    c.campaign(1);
    assert_eq!(c.node(1).role(), Role::Candidate);
    assert_eq!(transitions_to(&c, 1, Role::Candidate), vec![t0 + 1, t0 + 2], "one per election term");
}

/// A pre-vote asks "would you vote for me in the next term?"; asked about the receiver's
/// current term (the asker is behind), it gets the answer a real vote in that term would:
/// no, when the receiver follows a leader in it.
#[test]
fn a_pre_vote_for_the_current_term_is_refused_by_a_follower_of_its_leader() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.stabilize();
    let n = c.node(3);
    let body = MessageBody::VoteRequest {
        pre_vote: true,
        last_log_index: n.log().last_index(),
        last_log_term: n.log().last_term(),
        transfer: false,
    };
    c.step(2, Input::Message(Message { from: 3, to: 2, term: c.node(2).term(), body }));
    let answer = c.queue.iter().find(|m| m.to == 3).map(|m| m.body.clone());
    assert_eq!(answer, Some(MessageBody::VoteResponse { pre_vote: true, granted: false }));
}

/// A way to break one rule of the configuration.
type Breakage = Box<dyn Fn(&mut Config)>;

/// Each rule of `Config::validate` rejects its own violation, alone.
#[test]
fn each_config_rule_rejects_its_violation_alone() {
    assert_eq!(Config::new(1).validate(), Ok(()));
    let ms = Duration::from_millis;
    let broken: Vec<(&str, Breakage)> = vec![
        ("id 0", Box::new(|c| c.id = 0)),
        ("zero election timeout", Box::new(|c| c.election_timeout_min = Duration::ZERO)),
        ("max timeout not above min", Box::new(|c| c.election_timeout_max = c.election_timeout_min)),
        ("zero heartbeat", Box::new(|c| c.heartbeat_interval = Duration::ZERO)),
        ("heartbeat not below the timeout", Box::new(|c| c.heartbeat_interval = c.election_timeout_min)),
        (
            "lease reads without CheckQuorum",
            Box::new(|c| {
                c.lease_reads = true;
                c.check_quorum = false;
            }),
        ),
        (
            "drift not below the timeout",
            Box::new(move |c| {
                c.lease_reads = true;
                c.check_quorum = true;
                c.lease_clock_drift = c.election_timeout_min;
                c.election_timeout_max = c.election_timeout_min + ms(1);
            }),
        ),
        ("no entries per message", Box::new(|c| c.max_entries_per_message = 0)),
        ("no messages in flight", Box::new(|c| c.max_inflight_messages = 0)),
    ];
    for (what, f) in broken {
        let mut cfg = Config::new(1);
        f(&mut cfg);
        assert!(matches!(cfg.validate(), Err(ConfigError::Invalid(_))), "{what} was accepted");
        assert!(Node::new(cfg, RestoredState::bootstrap([1]), Instant::ZERO).is_err(), "{what}");
    }
    let mut cfg = Config::new(1);
    cfg.lease_reads = true;
    cfg.check_quorum = true;
    cfg.lease_clock_drift = cfg.election_timeout_min - ms(1);
    assert_eq!(cfg.validate(), Ok(()), "a drift just below the timeout is fine");
}

fn change_rejections(c: &Cluster) -> Vec<RequestId> {
    c.events(1)
        .into_iter()
        .filter_map(|e| match e {
            Event::MembershipChangeRejected { id, error: ProposalError::InvalidChange(_) } => Some(id),
            _ => None,
        })
        .collect()
}

/// A change is checked against the configuration before anything is appended: a member
/// can be removed, a voter demoted, a new node added; nothing else.
#[test]
fn membership_changes_that_name_the_wrong_nodes_are_rejected() {
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
    let invalid = [
        MembershipChange::remove(9),
        MembershipChange { demote: vec![4], ..Default::default() },
        MembershipChange { demote: vec![9], ..Default::default() },
        MembershipChange::add_learner(0, NodeInfo::default()),
        MembershipChange::add_learner(2, NodeInfo::default()),
        MembershipChange::add_learner(4, NodeInfo::default()),
        MembershipChange::add_voter(0),
        MembershipChange::add_voter(2),
    ];
    for (n, change) in invalid.into_iter().enumerate() {
        let id = RequestId(100 + n as u64);
        c.step(1, Input::ChangeMembership { id, change: Box::new(change.clone()) });
        assert_eq!(change_rejections(&c).last(), Some(&id), "{change:?} was accepted");
    }
    assert_eq!(c.node(1).membership().voters, [1, 2, 3].into());

    // Demoting a voter makes it a learner (through the joint configuration).
    c.step(
        1,
        Input::ChangeMembership {
            id: RequestId(200),
            change: Box::new(MembershipChange { demote: vec![3], ..Default::default() }),
        },
    );
    c.stabilize();
    let m = c.node(1).membership().clone();
    assert_eq!((m.voters, m.learners), ([1, 2].into(), [3, 4].into()));
}

/// A new leader asserts itself one heartbeat interval after winning, not at once (its
/// no-op append already told everyone), and checks its quorum one election timeout later.
#[test]
fn a_new_leader_sends_its_first_heartbeat_one_interval_after_winning() {
    let mut c = Cluster::new(3);
    c.elect(1);
    let won = c.history(1).last().map(|t| t.at).expect("won");
    let hb = c.peers[&1].cfg.heartbeat_interval;
    assert_eq!(c.node(1).next_deadline(), won + hb);
}

// ---- reads waiting for the state machine ----------------------------------------------

/// Thesis §6.4: a read is served only once the state machine has applied its read index.
/// A follower confirmed at an index it has not applied yet waits; reads waiting at
/// different indices are released one by one as the entries arrive.
#[test]
fn follower_reads_wait_until_their_read_index_is_applied() {
    let mut c = Cluster::with_config(3, |cfg| cfg.max_entries_per_message = 1);
    c.elect(1);
    c.stabilize();
    c.drop_if = Some(Box::new(|m: &Message| m.to == 2 && matches!(m.body, MessageBody::Append { .. })));
    c.propose(1, b"w1");
    c.stabilize();
    let i1 = c.node(1).commit_index();
    let r1 = c.read(2, ReadConsistency::FollowerReadIndex);
    c.stabilize();
    c.propose(1, b"w2");
    c.stabilize();
    let i2 = c.node(1).commit_index();
    let r2 = c.read(2, ReadConsistency::FollowerReadIndex);
    c.stabilize();
    assert!(i2 > i1 && c.node(2).applied_index() < i1);
    assert!(!ready(&c, 2, r1) && !ready(&c, 2, r2), "neither read index is applied on node 2");

    // Entries up to i1 only reach node 2.
    c.drop_if = Some(Box::new(move |m: &Message| {
        m.to == 2
            && matches!(&m.body, MessageBody::Append { entries, .. } if entries.last().is_some_and(|e| e.index > i1))
    }));
    c.advance(Duration::from_millis(200));
    assert_eq!(c.node(2).applied_index(), i1);
    assert_eq!(c.reads_ready(2), vec![(r1, i1)]);

    c.heal();
    c.advance(Duration::from_millis(200));
    assert_eq!(c.reads_ready(2), vec![(r1, i1), (r2, i2)]);
}

/// Reads a follower forwards at once are told apart: each gets its own answer.
#[test]
fn concurrent_follower_reads_are_each_answered() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.stabilize();
    let reads: Vec<ReadId> = (0..3).map(|_| c.read(2, ReadConsistency::FollowerReadIndex)).collect();
    c.stabilize();
    for r in reads {
        assert!(ready(&c, 2, r), "{r:?} unanswered");
    }
}

// ---- stale messages -------------------------------------------------------------------

/// A pre-candidate stuck in an old term learns the current one from the refusal.
#[test]
fn a_stale_pre_vote_is_refused_in_the_current_term() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.stabilize();
    let term = c.node(2).term();
    let body = MessageBody::VoteRequest { pre_vote: true, last_log_index: 0, last_log_term: 0, transfer: false };
    c.step(2, Input::Message(Message { from: 3, to: 2, term: term - 1, body }));
    let answer = c.queue.pop_front().expect("answered");
    assert_eq!((answer.to, answer.term), (3, term));
    assert_eq!(answer.body, MessageBody::VoteResponse { pre_vote: true, granted: false });
}

/// A leader of an old term learns it was deposed from the answer to its append, but only
/// with CheckQuorum or PreVote, which can stop it from learning any other way (without
/// either, the higher-term elections reach it anyway).
#[test]
fn a_stale_append_is_answered_only_with_check_quorum_or_pre_vote() {
    for (check_quorum, pre_vote, answered) in [(true, false, true), (false, true, true), (false, false, false)] {
        let mut c = Cluster::with_config(3, |cfg| {
            cfg.check_quorum = check_quorum;
            cfg.pre_vote = pre_vote;
        });
        c.elect(1);
        c.stabilize();
        let term = c.node(2).term();
        let body = MessageBody::Append { prev_log_index: 0, prev_log_term: 0, entries: Default::default(), commit: 0 };
        c.step(2, Input::Message(Message { from: 3, to: 2, term: term - 1, body }));
        let answers: Vec<Message> = c.queue.drain(..).collect();
        let told = answers.iter().any(|m| m.to == 3 && m.term == term);
        assert_eq!(told, answered, "check_quorum {check_quorum}, pre_vote {pre_vote}: {answers:?}");
    }
}

/// A leader handing over to `t` that learns of a higher term from `t` records the
/// transfer as done; from anyone else, as an ordinary higher term.
#[test]
fn a_higher_term_ends_a_transfer_as_transferred_only_if_it_comes_from_the_target() {
    for (from, transferred) in [(3, true), (2, false)] {
        let mut c = Cluster::new(3);
        c.elect(1);
        c.stabilize();
        c.cut.insert((1, 3));
        c.propose(1, b"x"); // node 3 lags, so the transfer waits for it
        c.step(1, Input::TransferLeadership { id: RequestId(0), to: Some(3) });
        assert_eq!(c.node(1).status().transferring_to, Some(3));
        let term = c.node(1).term() + 1;
        c.step(1, Input::Message(Message { from, to: 1, term, body: MessageBody::HeartbeatResponse { seq: 0 } }));
        let reason = c.history(1).last().expect("stepped down").reason.clone();
        let expect = if transferred {
            TransitionReason::TransferredLeadership { to: 3 }
        } else {
            TransitionReason::HigherTerm { from }
        };
        assert_eq!(reason, expect);
    }
}

// ---- durability bookkeeping -----------------------------------------------------------

/// `Persisted { seq }` covers every persist up to `seq`: one report makes all of them
/// durable, and the leader counts its whole log toward the commit.
#[test]
fn one_persisted_report_covers_every_earlier_persist() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.stabilize();
    c.peer(1).auto_persist = false;
    c.propose(1, b"a");
    c.propose(1, b"b");
    assert!(c.peers[&1].held.len() >= 2);
    let last = c.node(1).log().last_index();
    assert!(c.node(1).durable_index() < last);
    c.flush_disk(1);
    assert_eq!(c.node(1).durable_index(), last);
    c.stabilize();
    assert_eq!(c.node(1).commit_index(), last);
}

/// A follower that loses a suffix of its log to a new leader's conflicting entries no
/// longer counts it durable, and drops the configurations it held.
#[test]
fn a_truncated_suffix_is_no_longer_durable_and_its_configurations_are_gone() {
    let mut c = Cluster::new(5);
    c.elect(1);
    c.stabilize();
    // The leader's next entries, a command and a configuration, reach node 3 alone.
    c.partition(&[&[1, 3], &[2, 4, 5]]);
    c.propose(1, b"x");
    c.step(
        1,
        Input::ChangeMembership {
            id: RequestId(9),
            change: Box::new(MembershipChange::add_learner(6, NodeInfo::default())),
        },
    );
    c.stabilize();
    let held = c.node(3).log().last_index();
    assert!(c.node(3).membership().learners.contains(&6));
    assert_eq!(c.node(3).durable_index(), held);

    // A new leader without them; node 3 takes its conflicting entries, not yet durable.
    assert!(c.campaign_until_leader(2, 5));
    c.propose(2, b"y");
    c.stabilize();
    c.peer(3).auto_persist = false;
    c.partition(&[&[2, 3, 4, 5], &[1]]);
    c.advance(Duration::from_millis(100));
    let n3 = c.node(3);
    assert!(n3.log().entries().iter().all(|e| !matches!(&e.payload, Payload::Command(b) if b == "x")));
    // `x` was at `held - 1`: the log is durable up to just before it, no further.
    assert_eq!(n3.durable_index(), held - 2, "the replaced suffix is not durable any more");
    assert!(n3.durable_index() <= n3.log().last_index());
    assert!(!n3.membership().learners.contains(&6), "the configuration went with its entry");
    c.flush_disk(3);
    c.advance(Duration::from_millis(100));
    assert_eq!(c.node(3).durable_index(), c.node(3).log().last_index());
    c.check_safety();
}

/// The snapshot policy counts the bytes applied since the last snapshot.
#[test]
fn a_snapshot_is_requested_once_enough_bytes_are_applied() {
    let mut c = Cluster::with_config(3, |cfg| {
        cfg.snapshot_policy.max_entries = 0;
        cfg.snapshot_policy.max_bytes = 200;
    });
    c.elect(1);
    c.stabilize();
    c.propose(1, &[0; 60]);
    c.stabilize();
    assert_eq!(c.node(1).snapshot().index, 0, "84 bytes applied of 200");
    for _ in 0..2 {
        c.propose(1, &[0; 60]);
    }
    c.stabilize();
    assert!(c.node(1).snapshot().index > 0, "252 bytes applied");
}

/// A node whose term reached `MAX_TERM` cannot campaign (the next term would be out of
/// range for every peer), and says who it is and whether it is paused like any other.
#[test]
fn a_node_at_the_maximum_term_does_not_campaign() {
    let mut c = Cluster::new(3);
    c.restart_with_log(1, HardState { term: MAX_TERM, vote: None, commit: 0, incarnation: 1 }, vec![]);
    c.campaign(1);
    assert_eq!((c.node(1).role(), c.node(1).term()), (Role::Follower, MAX_TERM));
    assert_eq!(c.node(1).id(), 1);
    c.step(1, Input::Pause);
    assert!(c.node(1).is_paused());
}

/// A follower that hears a new leader of a higher term moves straight to it: user code sees
/// one `LeaderChanged` naming the new leader, never a transient "no leader" in between.
#[test]
fn a_new_leaders_first_message_changes_the_leader_in_one_event() {
    for kind in ["append", "heartbeat"] {
        let mut c = Cluster::new(3);
        c.elect(1);
        c.stabilize();
        let term = c.node(3).term() + 1;
        let before = c.events(3).len();
        let body = match kind {
            "append" => {
                MessageBody::Append { prev_log_index: 0, prev_log_term: 0, entries: Default::default(), commit: 0 }
            }
            _ => MessageBody::Heartbeat { commit: 0, seq: 1 },
        };
        c.step(3, Input::Message(Message { from: 2, to: 3, term, body }));
        let changes: Vec<Event> =
            c.events(3)[before..].iter().filter(|e| matches!(e, Event::LeaderChanged { .. })).cloned().collect();
        assert_eq!(changes, vec![Event::LeaderChanged { leader: Some(2), term }], "{kind}");
    }
}
