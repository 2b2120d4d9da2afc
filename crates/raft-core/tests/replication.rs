//! Log replication scenarios (Raft §5.3, §5.4; Figure 8), flow control and durability.

mod common;
use bytes::Bytes;
use common::*;
use raft_core::*;
use std::time::Duration;

#[test]
fn a_committed_proposal_is_applied_everywhere_and_reported_by_id() {
    let mut c = Cluster::new(3);
    c.elect(1);
    let id = c.propose(1, b"hello");
    c.stabilize();
    c.advance(Duration::from_millis(60)); // followers learn the commit index
    for n in [1, 2, 3] {
        assert_eq!(c.applied_commands(n), vec![Bytes::from_static(b"hello")], "node {n}");
    }
    assert_eq!(c.proposals_applied(1), vec![id]);
    assert!(c.proposals_applied(2).is_empty());
    c.check_safety();
}

#[test]
fn a_follower_rejects_proposals_naming_the_leader() {
    let mut c = Cluster::new(3);
    c.elect(1);
    let id = c.propose(2, b"x");
    assert_eq!(c.proposal_rejections(2), vec![(id, ProposalError::NotLeader { leader: Some(1), info: None })]);
}

#[test]
fn the_leader_counts_itself_only_for_durable_entries() {
    let mut c = Cluster::new(1);
    c.elect(1);
    c.peer(1).auto_persist = false;
    c.propose(1, b"x");
    c.stabilize();
    let before = c.node(1).commit_index();
    assert_eq!(before, 1, "only the no-op is committed");
    c.flush_disk(1);
    assert_eq!(c.node(1).commit_index(), 2);
}

#[test]
fn the_leader_replicates_before_its_own_fsync_and_commits_with_follower_acks() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.peer(1).auto_persist = false;
    c.propose(1, b"x");
    c.stabilize();
    // Two followers are a majority of three without the leader's own durable copy.
    assert_eq!(c.node(1).commit_index(), 2);
    assert!(c.applied_commands(1).is_empty(), "but it applies only what is durable locally");
    c.flush_disk(1);
    assert_eq!(c.applied_commands(1), vec![Bytes::from_static(b"x")]);
}

#[test]
fn follower_acks_wait_for_durability() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.peer(2).auto_persist = false;
    c.peer(3).auto_persist = false;
    c.propose(1, b"x");
    c.stabilize();
    assert_eq!(c.node(1).commit_index(), 1, "no follower acknowledged yet");
    c.flush_disk(2);
    c.stabilize();
    assert_eq!(c.node(1).commit_index(), 2);
}

#[test]
fn log_divergence_is_repaired_after_a_leader_change() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.propose(1, b"a");
    c.stabilize();
    // Leader 1 is cut off and appends entries nobody else gets.
    c.isolate(1);
    for _ in 0..5 {
        c.propose(1, b"lost");
    }
    c.stabilize();
    c.now = c.now + Duration::from_secs(1);
    c.elect(2);
    c.propose(2, b"b");
    c.propose(2, b"c");
    c.stabilize();
    c.heal();
    c.advance(Duration::from_millis(200));
    assert_eq!(c.log_terms(1), c.log_terms(2), "node 1's divergent suffix was replaced");
    assert_eq!(c.applied_commands(1), c.applied_commands(2));
    assert!(!c.applied_commands(1).contains(&Bytes::from_static(b"lost")));
    // The lost proposals sat at indices 3..=7. A proposal is reported superseded only once
    // a different entry is committed at its index: so far the new leader's log (no-op, b,
    // c) covers 3..=5.
    let superseded = |c: &Cluster| {
        let rejected = c.proposal_rejections(1);
        assert!(rejected.iter().all(|(_, e)| matches!(e, ProposalError::Superseded { .. })), "{rejected:?}");
        rejected.len()
    };
    assert_eq!(c.node(1).commit_index(), 5);
    assert_eq!(superseded(&c), 3);
    c.propose(2, b"d");
    c.propose(2, b"e");
    c.stabilize();
    c.advance(Duration::from_millis(100));
    assert_eq!(superseded(&c), 5, "every lost proposal is reported");
    assert!(c.proposals_applied(1).len() == 1, "only `a` was applied of node 1's proposals");
    c.check_safety();
}

#[test]
fn appends_are_batched_and_limited_per_message() {
    let mut c = Cluster::with_config(3, |cfg| cfg.max_entries_per_message = 10);
    c.elect(1);
    for _ in 0..25 {
        c.propose_undrained(1, b"x");
    }
    let mut actions = Vec::new();
    c.peer(1).node.drain_actions(&mut actions);
    let appends: Vec<usize> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(Message { to: 2, body: MessageBody::Append { entries, .. }, .. }) => Some(entries.len()),
            _ => None,
        })
        .collect();
    // 25 proposals drained at once: batched into messages of at most 10 entries.
    assert_eq!(appends, vec![10, 10, 5]);
    let persists = actions.iter().filter(|a| matches!(a, Action::Persist(_))).count();
    assert_eq!(persists, 1, "one persist for the whole batch");
}

#[test]
fn flow_control_bounds_inflight_appends_to_a_slow_follower() {
    let mut c = Cluster::with_config(3, |cfg| {
        cfg.max_entries_per_message = 1;
        cfg.max_inflight_messages = 4;
    });
    c.elect(1);
    c.cut.insert((2, 1)); // node 2's acks never arrive: it looks slow
    for _ in 0..20 {
        c.propose_undrained(1, b"x");
    }
    let mut actions = Vec::new();
    c.peer(1).node.drain_actions(&mut actions);
    let to2 = actions
        .iter()
        .filter(|a| matches!(a, Action::Send(Message { to: 2, body: MessageBody::Append { .. }, .. })))
        .count();
    let to3 = actions
        .iter()
        .filter(|a| matches!(a, Action::Send(Message { to: 3, body: MessageBody::Append { .. }, .. })))
        .count();
    assert_eq!(to2, 4, "no more than the in-flight window");
    assert_eq!(to3, 4);
    assert_eq!(c.node(1).status().progress[&2].inflight, 4);
}

#[test]
fn a_lost_probe_is_retried_after_a_heartbeat() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.isolate(3);
    c.propose(1, b"x");
    c.stabilize();
    c.heal();
    c.advance(Duration::from_millis(300));
    assert_eq!(c.node(3).log().last_index(), c.node(1).log().last_index());
}

fn figure_8_cluster() -> Cluster {
    Cluster::with_config(5, |cfg| {
        cfg.max_entries_per_message = 1;
        cfg.pre_vote = false;
        cfg.check_quorum = false;
    })
}

/// Figure 8 (a)-(b): S1 leads and stores an entry on S2 only; S1 crashes and S5 wins the
/// next term with votes from S3, S4, S5, appending a different entry at that index.
fn figure_8_prefix(c: &mut Cluster) -> (Index, Term) {
    c.elect(1);
    c.partition(&[&[1, 2], &[3, 4, 5]]);
    c.propose(1, b"from-s1");
    c.stabilize();
    let idx = c.node(1).log().last_index();
    let old_term = c.node(1).term();
    assert_eq!(c.node(2).log().term(idx), Some(old_term));
    c.crash_and_restart(1);
    c.partition(&[&[1], &[2], &[3, 4, 5]]);
    c.drop_if = Some(Box::new(|m| m.from == 5 && matches!(m.body, MessageBody::Append { .. })));
    assert!(c.campaign_until_leader(5, 5));
    assert_eq!(c.node(5).log().last_index(), idx, "S5's own no-op sits at the same index");
    assert!(c.node(5).log().term(idx) > Some(old_term));
    // S5 crashes before replicating; S1 comes back and wins a later term (S2, S3, S4).
    c.crash_and_restart(5);
    c.partition(&[&[1, 2, 3, 4], &[5]]);
    c.drop_if = None;
    (idx, old_term)
}

/// Figure 8 of the Raft paper: an entry from an earlier term stored on a majority is not
/// committed by counting replicas, because a later leader may still overwrite it.
#[test]
fn figure_8_old_term_entries_are_not_committed_by_counting_replicas() {
    let mut c = figure_8_cluster();
    let (idx, old_term) = figure_8_prefix(&mut c);
    // (c) S1 leads again; its old entry reaches a majority, its new-term no-op does not.
    // S3 and S4 lack the old entry, so their first probe (carrying the no-op) is rejected;
    // after that, appends carrying the no-op are lost on the way to them.
    let noop_index = idx + 1;
    let probed = std::cell::RefCell::new(std::collections::BTreeSet::new());
    c.drop_if = Some(Box::new(move |m| {
        let carries_noop =
            matches!(&m.body, MessageBody::Append { entries, .. } if entries.iter().any(|e| e.index >= noop_index));
        carries_noop && [3, 4].contains(&m.to) && !probed.borrow_mut().insert(m.to)
    }));
    assert!(c.campaign_until_leader(1, 5));
    c.advance(Duration::from_millis(200));
    let holders = [1, 2, 3, 4].iter().filter(|n| c.node(**n).log().term(idx) == Some(old_term)).count();
    assert!(holders >= 3, "the old entry sits on a majority");
    assert!(c.node(1).commit_index() < idx, "but it must not be committed by counting replicas");
    // (d) S1 crashes; S5 (last term higher) can win and overwrite the entry.
    c.crash_and_restart(1);
    c.partition(&[&[1], &[2, 3, 4, 5]]);
    c.drop_if = None;
    assert!(c.campaign_until_leader(5, 5));
    c.advance(Duration::from_millis(200));
    assert_ne!(c.node(3).log().term(idx), Some(old_term), "overwritten, as the paper warns");
    c.check_safety();
}

/// Figure 8 (e): once the leader's current-term entry is on a majority, both it and the
/// earlier entry are committed, and S5 can no longer be elected.
#[test]
fn figure_8_a_current_term_entry_commits_the_earlier_ones() {
    let mut c = figure_8_cluster();
    let (idx, _) = figure_8_prefix(&mut c);
    assert!(c.campaign_until_leader(1, 5));
    c.advance(Duration::from_millis(200));
    assert!(c.node(1).commit_index() > idx, "the no-op of the new term commits everything before it");
    c.crash_and_restart(1);
    c.partition(&[&[1], &[2, 3, 4, 5]]);
    assert!(!c.campaign_until_leader(5, 5), "S5 lacks committed entries and cannot win");
    c.check_safety();
}

#[test]
fn malformed_and_misaddressed_messages_are_dropped_and_counted() {
    let mut c = Cluster::new(3);
    c.elect(1);
    let term = c.node(2).term();
    let bad = Message {
        from: 1,
        to: 2,
        term,
        body: MessageBody::Append {
            prev_log_index: 1,
            prev_log_term: 1,
            entries: vec![Entry { term, index: 9, payload: Payload::Noop }].into(),
            commit: 100,
        },
    };
    c.step(2, Input::Message(bad));
    let wrong = Message { from: 1, to: 3, term, body: MessageBody::TimeoutNow };
    c.step(2, Input::Message(wrong));
    let forged = Message {
        from: 3,
        to: 1,
        term,
        body: MessageBody::AppendResponse { result: AppendResult::Success { match_index: 1_000_000 } },
    };
    c.step(1, Input::Message(forged));
    assert_eq!(c.node(2).metrics().dropped_invalid, 1);
    assert_eq!(c.node(2).metrics().dropped_misaddressed, 1);
    assert_eq!(c.node(1).metrics().dropped_invalid, 1);
    assert!(c.node(1).commit_index() < 1_000_000);
    c.stabilize();
    c.check_safety();
}

#[test]
fn status_reports_progress_of_every_peer() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.propose(1, b"x");
    c.stabilize();
    let s = c.node(1).status();
    assert_eq!(s.role, Role::Leader);
    assert_eq!(s.leader, Some(1));
    assert_eq!(s.progress.len(), 2);
    for p in s.progress.values() {
        assert_eq!(p.match_index, s.last_log_index);
        assert_eq!(p.state, "replicate");
        assert!(p.last_contact.is_some());
    }
    assert_eq!(s.commit_index, s.last_log_index);
    assert!(c.node(2).status().progress.is_empty());
}

#[test]
fn a_proposal_truncated_from_its_leader_can_still_commit_and_is_reported_applied() {
    // Raft does not promise that an entry removed from one log is lost: a node that still
    // holds it may be elected and commit it. So a proposal is never rejected just because
    // its entry was truncated.
    let mut c = Cluster::new(5);
    c.elect(1);
    // Leader 1 gets `x` to node 2 only: 2 of 5, not committed.
    c.partition(&[&[1, 2], &[3, 4, 5]]);
    let x = c.propose(1, b"x");
    c.stabilize();
    let i = c.node(1).log().last_index();
    assert!(c.node(2).log().last_index() == i && c.node(1).commit_index() < i);
    // Node 3 wins term 2 with 4 and 5, but its first appends reach only node 1, where its
    // no-op overwrites `x` at index i.
    c.now = c.now + Duration::from_secs(1);
    c.win_before_replicating(3);
    c.queue.clear();
    c.partition(&[&[1, 3], &[2], &[4], &[5]]);
    c.advance(Duration::from_millis(60));
    assert_ne!(c.node(1).log().term(i), c.node(2).log().term(i), "x was overwritten on node 1");
    assert!(c.proposal_rejections(1).is_empty(), "x is not rejected: it may still commit");
    // Node 2, which still holds `x`, is elected by 4 and 5 and commits it.
    c.partition(&[&[2, 4, 5], &[1], &[3]]);
    c.now = c.now + Duration::from_secs(1);
    assert!(c.campaign_until_leader(2, 5));
    c.advance(Duration::from_millis(60));
    assert!(c.node(2).commit_index() > i);
    c.heal();
    c.advance(Duration::from_millis(200));
    assert!(c.applied_commands(1).contains(&Bytes::from_static(b"x")));
    assert_eq!(c.proposals_applied(1), vec![x], "node 1 reports x applied");
    assert!(c.proposal_rejections(1).is_empty());
    c.check_safety();
}
