//! Nothing the core ignores goes unseen: every message and runtime report it drops is
//! counted exactly once, in the counter of `Metrics` that names why, and no other counter
//! moves. Operators read these counters to tell a forged, stale or buggy peer from a quiet
//! one, so a wrong count is a bug.

mod common;

use common::*;
use raft_core::*;

/// The counters of dropped input, by name.
fn drops(m: &Metrics) -> [(&'static str, u64); 8] {
    [
        ("invalid", m.dropped_invalid),
        ("misaddressed", m.dropped_misaddressed),
        ("stale_term", m.dropped_stale_term),
        ("in_lease", m.dropped_in_lease),
        ("unexpected", m.dropped_unexpected),
        ("committed_conflict", m.dropped_committed_conflict),
        ("ignored_runtime_reports", m.ignored_runtime_reports),
        ("proposals_rejected", m.proposals_rejected),
    ]
}

/// Steps `input` into `id` and checks that exactly `counter` went up, by one.
fn expect_counted(c: &mut Cluster, id: NodeId, input: Input, counter: &str) {
    let what = format!("{input:?}");
    let before = drops(c.node(id).metrics());
    c.step(id, input);
    let after = drops(c.node(id).metrics());
    for ((name, b), (_, a)) in before.iter().zip(after.iter()) {
        let want = if *name == counter { b + 1 } else { *b };
        assert_eq!(*a, want, "node {id}, counter {name}, after {what}");
    }
    c.queue.clear();
}

fn msg(c: &Cluster, from: NodeId, to: NodeId, body: MessageBody) -> Input {
    Input::Message(Message { from, to, term: c.node(to).term(), body })
}

fn cluster() -> Cluster {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.stabilize();
    c
}

#[test]
fn a_follower_counts_every_message_it_drops() {
    let mut c = cluster();
    let ctx = ReadContext { incarnation: 1, seq: 99 };
    let ok = AppendResult::Success { match_index: 1 };
    let cases = [
        (msg(&c, 3, 2, MessageBody::VoteResponse { pre_vote: false, granted: true }), "unexpected"),
        (msg(&c, 3, 2, MessageBody::AppendResponse { result: ok }), "unexpected"),
        (msg(&c, 3, 2, MessageBody::HeartbeatResponse { seq: 1 }), "unexpected"),
        (msg(&c, 1, 2, MessageBody::ReadIndexResponse { ctx, index: Some(1) }), "unexpected"),
        (msg(&c, 3, 2, MessageBody::TimeoutNow), "unexpected"),
        (Input::Message(Message { from: 0, to: 2, term: 1, body: MessageBody::TimeoutNow }), "invalid"),
        (msg(&c, 1, 3, MessageBody::TimeoutNow), "misaddressed"),
    ];
    // Each is stepped into node 2 (the misaddressed one names node 3).
    for (input, counter) in cases {
        expect_counted(&mut c, 2, input, counter);
    }
    let term = c.node(2).term();
    let last = (c.node(3).log().last_index(), c.node(3).log().last_term());
    let vote =
        MessageBody::VoteRequest { pre_vote: false, last_log_index: last.0, last_log_term: last.1, transfer: false };
    let higher = Input::Message(Message { from: 3, to: 2, term: term + 1, body: vote });
    expect_counted(&mut c, 2, higher, "in_lease");
    let stale = Input::Message(Message { from: 3, to: 2, term: term - 1, body: MessageBody::TimeoutNow });
    expect_counted(&mut c, 2, stale, "stale_term");
}

#[test]
fn a_leader_counts_every_answer_it_drops() {
    let mut c = cluster();
    c.propose(1, b"x");
    c.stabilize();
    let last = c.node(1).log().last_index();
    let cases = [
        (msg(&c, 3, 1, MessageBody::VoteResponse { pre_vote: false, granted: true }), "unexpected"),
        (msg(&c, 9, 1, MessageBody::AppendResponse { result: AppendResult::Success { match_index: 1 } }), "unexpected"),
        (msg(&c, 9, 1, MessageBody::HeartbeatResponse { seq: 1 }), "unexpected"),
        (
            msg(&c, 2, 1, MessageBody::AppendResponse { result: AppendResult::Success { match_index: last + 1 } }),
            "invalid",
        ),
        (
            // No leader sends a predecessor past its own log: a rejection of one is forged.
            msg(
                &c,
                2,
                1,
                MessageBody::AppendResponse {
                    result: AppendResult::Conflict { rejected_index: last + 1, hint_index: 1, hint_term: None },
                },
            ),
            "invalid",
        ),
        (
            // Node 2 is in replicate and matches `last`: a rejection below that is old (one
            // at `last` itself means node 2 lost an entry it acknowledged; see robustness.rs).
            msg(
                &c,
                2,
                1,
                MessageBody::AppendResponse {
                    result: AppendResult::Conflict { rejected_index: last - 1, hint_index: 1, hint_term: None },
                },
            ),
            "unexpected",
        ),
    ];
    for (input, counter) in cases {
        expect_counted(&mut c, 1, input, counter);
    }
    assert_eq!(c.leaders(), vec![1]);
}

#[test]
fn a_pre_candidate_counts_an_answer_for_the_wrong_term() {
    let mut c = cluster();
    c.isolate(3);
    c.campaign(3);
    assert_eq!(c.node(3).role(), Role::PreCandidate);
    // A granted pre-vote answers in the term asked about (ours + 1); this one does not.
    let wrong = msg(&c, 2, 3, MessageBody::VoteResponse { pre_vote: true, granted: true });
    expect_counted(&mut c, 3, wrong, "unexpected");
    assert_eq!(c.node(3).role(), Role::PreCandidate);
}

#[test]
fn a_follower_installing_a_snapshot_counts_appends_and_a_second_snapshot() {
    let mut c = cluster();
    c.peer(3).hold_installs = true;
    let term = c.node(1).term();
    let last = c.node(1).log().last_index();
    let meta = |index| SnapshotMeta { index, term, membership: Membership::with_voters([1, 2, 3]) };
    let stream = |m: SnapshotMeta| Input::SnapshotReceived {
        header: Box::new(SnapshotHeader { from: 1, to: 3, term, meta: m }),
    };
    c.step(3, stream(meta(last + 2)));
    assert!(c.peers[&3].held_install.is_some());
    let append =
        MessageBody::Append { prev_log_index: last, prev_log_term: term, entries: Default::default(), commit: last };
    let append = msg(&c, 1, 3, append);
    expect_counted(&mut c, 3, append, "unexpected");
    expect_counted(&mut c, 3, stream(meta(last + 3)), "unexpected");
    assert!(
        matches!(c.peers[&3].outputs.last(), Some(Action::DiscardSnapshot { meta, .. }) if meta.index == last + 3),
        "the second stream is discarded, not left staged"
    );
}

#[test]
fn every_impossible_runtime_report_is_counted_and_changes_nothing() {
    let mut c = cluster();
    let n = c.node(2);
    let (persists, applied) = (n.metrics().persists, n.applied_index());
    let before = n.status();
    let meta = SnapshotMeta { index: 1, term: 1, membership: Membership::with_voters([1, 2, 3]) };
    let cases = [
        Input::Persisted { seq: persists + 1 },
        Input::Applied { index: applied + 1 },
        Input::SnapshotCreated { index: 0, success: true },
        Input::SnapshotCreated { index: applied + 1, success: true },
        Input::SnapshotInstalled { meta: Box::new(meta), success: true },
    ];
    for input in cases {
        let loud = c.events(2).iter().filter(|e| matches!(e, Event::ReportRejected { .. })).count();
        expect_counted(&mut c, 2, input.clone(), "ignored_runtime_reports");
        let now = c.events(2).iter().filter(|e| matches!(e, Event::ReportRejected { .. })).count();
        assert_eq!(now, loud + 1, "{input:?} is rejected loudly");
    }
    assert_eq!(c.node(2).status(), before);
    // On the leader: a snapshot sent to a peer that was not being sent one.
    expect_counted(&mut c, 1, Input::SnapshotSent { peer: 2, index: 1, success: true }, "ignored_runtime_reports");
}

#[test]
fn a_rejected_proposal_is_counted() {
    let mut c = cluster();
    expect_counted(&mut c, 2, Input::Propose { id: ProposalId(7), data: bytes::Bytes::new() }, "proposals_rejected");
}
