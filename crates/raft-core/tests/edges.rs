//! Paths the common scenarios do not reach: answers a follower gives to appends that
//! overlap its commit index, the hints in its rejections, reads whose leader changes or
//! whose answer never comes, snapshots requested, created late and installed over a longer
//! log, a new leader that inherits an unfinished change, and the messages a quiet cluster
//! does not send. Each test pins behaviour that a mutation audit could change silently.

mod common;

use common::*;
use raft_core::*;
use std::time::Duration;

const NS: Duration = Duration::from_nanos(1);

fn cluster(n: u64) -> Cluster {
    let mut c = Cluster::new(n);
    c.elect(1);
    c.stabilize();
    c
}

fn entry(index: Index, term: Term) -> Entry {
    Entry { term, index, payload: Payload::Command(bytes::Bytes::from(format!("e{index}"))) }
}

fn from_leader(c: &Cluster, to: NodeId, body: MessageBody) -> Input {
    Input::Message(Message { from: 1, to, term: c.node(1).term(), body })
}

fn answer_to_leader(c: &mut Cluster) -> AppendResult {
    let m = c.queue.iter().find(|m| m.to == 1).expect("an answer").clone();
    c.queue.clear();
    match m.body {
        MessageBody::AppendResponse { result } => result,
        other => panic!("{other:?}"),
    }
}

// ---- appends and their answers ------------------------------------------------------

/// An old append that overlaps the follower's commit index is re-anchored there: what it
/// carries past the commit index is appended (§5.3: the log matches up to the commit
/// index), and the predecessor's term is taken from the entry at the commit index.
#[test]
fn an_append_overlapping_the_commit_index_appends_what_lies_beyond_it() {
    let mut c = cluster(3);
    c.propose(1, b"a");
    c.propose(1, b"b");
    c.stabilize();
    let term = c.node(1).term();
    let commit = c.node(2).commit_index();
    // The last two entries the follower holds (up to `commit`), then three new ones.
    let held = c.node(2).log().entries().to_vec();
    let mut entries: Vec<Entry> = held[held.len() - 2..].to_vec();
    let prev = entries[0].index - 1;
    let prev_term = c.node(2).log().term(prev).expect("held");
    entries.extend((commit + 1..=commit + 3).map(|i| entry(i, term)));
    let body = MessageBody::Append { prev_log_index: prev, prev_log_term: prev_term, entries: entries.into(), commit };
    c.step(2, from_leader(&c, 2, body));
    assert_eq!(c.node(2).log().last_index(), commit + 3);
    assert_eq!(answer_to_leader(&mut c), AppendResult::Success { match_index: commit + 3 });
}

/// The re-anchored predecessor's term is the term of the entry at the commit index, even
/// where the next entry starts a new term.
#[test]
fn an_overlapping_append_is_re_anchored_with_the_term_at_the_commit_index() {
    let mut c = cluster(3);
    c.propose(1, b"a");
    c.stabilize();
    let (t1, commit) = (c.node(3).term(), c.node(3).commit_index());
    let mut entries = c.node(3).log().entries().to_vec();
    entries.push(entry(commit + 1, t1 + 1));
    let body = MessageBody::Append { prev_log_index: 0, prev_log_term: 0, entries: entries.into(), commit };
    c.step(3, Input::Message(Message { from: 2, to: 3, term: t1 + 1, body }));
    assert_eq!(c.node(3).log().last_index(), commit + 1);
    let ok = c.queue.iter().any(|m| {
        m.to == 2 && m.body == MessageBody::AppendResponse { result: AppendResult::Success { match_index: commit + 1 } }
    });
    assert!(ok, "{:?}", c.queue);
}

/// A follower missing the entry before an append asks for the first index it lacks; one
/// whose entry there conflicts names the start of that term's run, never at or below its
/// commit index (those entries match the leader's).
#[test]
fn a_rejection_hints_at_the_first_missing_or_the_first_conflicting_index() {
    let mut c = cluster(3);
    let term = c.node(1).term();
    let last = c.node(2).log().last_index();
    let body =
        MessageBody::Append { prev_log_index: last + 3, prev_log_term: term, entries: Default::default(), commit: 0 };
    c.step(2, from_leader(&c, 2, body));
    assert_eq!(
        answer_to_leader(&mut c),
        AppendResult::Conflict { rejected_index: last + 3, hint_index: last + 1, hint_term: None }
    );

    // Node 2 holds uncommitted entries of the current term after its commit index; an
    // append claiming another term at the last of them is rejected with a hint just past
    // the commit index (the start of the run, capped below by commit + 1).
    // Two new entries reach node 2 in one append, with the old commit index, and nothing
    // after it does.
    c.cut.insert((1, 3));
    let commit = c.node(2).commit_index();
    c.propose_undrained(1, b"a");
    c.propose(1, b"b");
    let append = c.queue.iter().position(|m| m.to == 2).expect("an append to node 2");
    let append = c.queue.remove(append).expect("queued");
    c.queue.clear();
    c.step(2, Input::Message(append));
    c.queue.clear();
    let last = c.node(2).log().last_index();
    assert!(last >= commit + 2 && c.node(2).commit_index() == commit);
    let body =
        MessageBody::Append { prev_log_index: last, prev_log_term: term + 1, entries: Default::default(), commit: 0 };
    let m = Message { from: 1, to: 2, term: term + 1, body };
    c.step(2, Input::Message(m));
    let hint = c.queue.iter().find_map(|m| match m.body {
        MessageBody::AppendResponse { result: AppendResult::Conflict { hint_index, .. } } => Some(hint_index),
        _ => None,
    });
    assert_eq!(hint, Some(commit + 1));
}

/// §5.2: a candidate that receives an append from the leader of its own term recognizes
/// it and returns to follower.
#[test]
fn a_candidate_follows_a_leader_of_its_own_term() {
    let mut c = Cluster::with_config(3, |cfg| cfg.pre_vote = false);
    c.isolate(3);
    c.campaign(3);
    assert_eq!(c.node(3).role(), Role::Candidate);
    let term = c.node(3).term();
    let body = MessageBody::Append { prev_log_index: 0, prev_log_term: 0, entries: Default::default(), commit: 0 };
    c.step(3, Input::Message(Message { from: 2, to: 3, term, body }));
    assert_eq!((c.node(3).role(), c.node(3).leader()), (Role::Follower, Some(2)));
}

/// Once every follower holds the whole log and knows the commit index, the leader sends
/// heartbeats only: no empty appends, no resyncs.
#[test]
fn a_quiet_cluster_exchanges_heartbeats_and_nothing_else() {
    let mut c = cluster(3);
    c.propose(1, b"x");
    c.advance(Duration::from_millis(120));
    let from = c.delivered.len();
    c.advance(Duration::from_millis(500));
    let appends = c.delivered[from..].iter().filter(|m| matches!(m.body, MessageBody::Append { .. })).count();
    let heartbeats = c.delivered[from..].iter().filter(|m| matches!(m.body, MessageBody::Heartbeat { .. })).count();
    assert!(heartbeats >= 2 * 9, "one round per heartbeat interval: {heartbeats}");
    assert_eq!(appends, 0);
}

/// A follower in replicate whose appends were lost is found by an empty append at the
/// end of what was sent, which it rejects; the leader then resends the rest.
#[test]
fn lost_appends_are_found_by_an_empty_append_at_the_end_of_the_window() {
    let mut c = cluster(3);
    c.drop_if = Some(Box::new(|m: &Message| {
        m.to == 2 && matches!(&m.body, MessageBody::Append { entries, .. } if !entries.is_empty())
    }));
    c.propose(1, b"lost");
    c.stabilize();
    c.heal();
    let next = c.node(1).status().progress[&2].next_index;
    let from = c.delivered.len();
    c.advance(Duration::from_millis(120));
    let resync = c.delivered[from..].iter().find_map(|m| match &m.body {
        MessageBody::Append { prev_log_index, entries, .. } if m.to == 2 && entries.is_empty() => Some(*prev_log_index),
        _ => None,
    });
    assert_eq!(resync, Some(next - 1));
    assert_eq!(c.node(2).log().last_index(), c.node(1).log().last_index());
}

// ---- reads ----------------------------------------------------------------------------

/// A read forwarded to a leader that is then replaced is answered at once with the new
/// leader to retry at, not left to time out.
#[test]
fn a_forwarded_read_is_redirected_when_the_leader_changes() {
    let mut c = cluster(3);
    let read = c.read(2, ReadConsistency::FollowerReadIndex);
    c.queue.clear(); // the request is lost
    let term = c.node(2).term() + 1;
    let body = MessageBody::Heartbeat { commit: 0, seq: 1 };
    c.step(2, Input::Message(Message { from: 3, to: 2, term, body }));
    assert_eq!(c.read_rejections(2), vec![(read, ReadError::NotLeader { leader: Some(3), info: None })]);
}

/// A read forwarded to the leader whose answer never comes times out exactly one maximum
/// election timeout after it was sent; so does a read confirmed at an index the follower
/// never gets to apply.
#[test]
fn follower_reads_time_out_exactly_one_maximum_election_timeout_after_they_were_sent() {
    let mut c = cluster(3);
    let timeout = c.peers[&2].cfg.election_timeout_max;
    let lost = c.read(2, ReadConsistency::FollowerReadIndex);
    c.queue.clear();
    // The leader's heartbeats go on, so node 2 keeps its leader; it is ticked just before
    // the read's deadline.
    c.advance(timeout - NS);
    c.step(2, Input::Tick);
    assert!(c.read_rejections(2).is_empty());
    c.advance(NS);
    assert_eq!(c.read_rejections(2), vec![(lost, ReadError::Timeout)]);

    // Confirmed at an index node 2 never receives.
    c.queue.clear();
    c.drop_if = Some(Box::new(|m: &Message| m.to == 2 && matches!(m.body, MessageBody::Append { .. })));
    c.propose(1, b"w");
    c.stabilize();
    let unapplied = c.read(2, ReadConsistency::FollowerReadIndex);
    c.stabilize();
    assert!(!c.reads_ready(2).iter().any(|(r, _)| *r == unapplied));
    c.advance(timeout - NS);
    c.step(2, Input::Tick);
    assert_eq!(c.read_rejections(2).len(), 1);
    c.advance(NS);
    assert_eq!(c.read_rejections(2).last(), Some(&(unapplied, ReadError::Timeout)));
}

// ---- membership -----------------------------------------------------------------------

/// A new leader that inherited a configuration entry it has not committed yet refuses
/// another change as one in progress, before asking whether it committed in its term.
#[test]
fn a_new_leader_with_an_inherited_uncommitted_change_reports_it_in_progress() {
    let mut c = cluster(5);
    c.partition(&[&[1, 2], &[3, 4, 5]]);
    c.step(
        1,
        Input::ChangeMembership {
            id: RequestId(1),
            change: Box::new(MembershipChange::add_learner(6, NodeInfo::default())),
        },
    );
    c.stabilize();
    assert!(c.node(2).membership().learners.contains(&6));
    assert!(!c.node(2).committed_membership().learners.contains(&6));
    c.partition(&[&[2, 3, 4, 5], &[1]]);
    c.win_before_replicating(2);
    c.step(
        2,
        Input::ChangeMembership {
            id: RequestId(2),
            change: Box::new(MembershipChange::add_learner(7, NodeInfo::default())),
        },
    );
    let rejected = c.events(2).into_iter().find_map(|e| match e {
        Event::MembershipChangeRejected { id: RequestId(2), error } => Some(error),
        _ => None,
    });
    assert_eq!(rejected, Some(ProposalError::ChangeInProgress));
}

/// Committing a configuration tells a node it was removed only if it was: members of the
/// new configuration hear nothing of the kind. (The removed node itself may never learn
/// that the change committed: the leader stops replicating to it.)
#[test]
fn only_removed_nodes_are_told_they_were_removed() {
    let mut c = cluster(3);
    c.add_blank_node(4);
    c.step(
        1,
        Input::ChangeMembership {
            id: RequestId(1),
            change: Box::new(MembershipChange::add_learner(4, NodeInfo::default())),
        },
    );
    c.stabilize();
    c.step(1, Input::ChangeMembership { id: RequestId(2), change: Box::new(MembershipChange::remove(3)) });
    c.stabilize();
    c.advance(Duration::from_millis(100));
    assert!(!c.node(1).membership().contains(3));
    for id in [1, 2, 4] {
        assert!(!c.events(id).contains(&Event::RemovedFromCluster), "node {id}");
    }
}

// ---- snapshots ------------------------------------------------------------------------

fn snapshot_requests(c: &Cluster, id: NodeId) -> Vec<Index> {
    c.snapshot_requests(id).iter().map(|m| m.index).collect()
}

/// The entry policy counts the entries applied since the last snapshot, and a byte limit
/// of zero means no byte policy.
#[test]
fn snapshots_are_requested_every_max_entries_applied_and_a_zero_byte_limit_is_off() {
    let mut c = Cluster::with_config(3, |cfg| {
        cfg.snapshot_policy.max_entries = 5;
        cfg.snapshot_policy.max_bytes = 0;
    });
    c.elect(1);
    c.stabilize();
    for _ in 0..12 {
        c.propose(1, b"x");
        c.stabilize();
    }
    let at = snapshot_requests(&c, 1);
    assert_eq!(at, vec![5, 10], "one request per 5 applied entries");
}

/// While the runtime is making one snapshot the node asks for no other, however much it
/// applies meanwhile.
#[test]
fn no_second_snapshot_is_requested_while_one_is_being_made() {
    let mut c = Cluster::with_config(3, |cfg| cfg.snapshot_policy.max_entries = 2);
    c.elect(1);
    c.stabilize();
    c.peer(1).hold_snapshots = true;
    for _ in 0..8 {
        c.propose(1, b"x");
        c.stabilize();
    }
    assert_eq!(snapshot_requests(&c, 1).len(), 1);
    let index = snapshot_requests(&c, 1)[0];
    c.step(1, Input::SnapshotCreated { index, success: true });
    c.propose(1, b"x");
    c.stabilize();
    assert_eq!(snapshot_requests(&c, 1).len(), 2, "the next one once it is done");
}

/// `CreateSnapshot` names the snapshot exactly: the index of the last entry handed out to
/// apply (even before the runtime reported it applied), its term, and the configuration
/// in force there with node info; a report at that index is taken even if it arrives
/// before `Applied` does.
#[test]
fn a_snapshot_request_carries_its_metadata_and_is_taken_before_the_applied_report() {
    let mut c = Cluster::with_config(3, |cfg| cfg.snapshot_policy.max_entries = 4);
    c.elect(1);
    c.stabilize();
    c.peer(1).hold_snapshots = true;
    for _ in 0..4 {
        c.propose(1, b"x");
        c.stabilize();
    }
    let meta = c.snapshot_requests(1).into_iter().next().expect("a snapshot was asked for");
    assert_eq!(meta.term, c.node(1).log().term(meta.index).unwrap());
    assert_eq!(&meta.membership, c.node(1).membership());
    c.step(1, Input::SnapshotCreated { index: meta.index, success: true });
    assert_eq!(c.node(1).snapshot(), &meta);
    assert_eq!(c.node(1).log().first_index(), meta.index + 1);
}

/// A snapshot reported at another index than the one asked for is refused loudly (an
/// event and a counter) and compacts nothing; a failed one is asked for again later.
#[test]
fn a_snapshot_reported_at_the_wrong_index_is_refused_and_a_failed_one_is_retried() {
    let mut c = Cluster::with_config(3, |cfg| cfg.snapshot_policy.max_entries = 3);
    c.elect(1);
    c.stabilize();
    c.peer(1).hold_snapshots = true;
    for _ in 0..3 {
        c.propose(1, b"x");
        c.stabilize();
    }
    let asked = snapshot_requests(&c, 1);
    assert_eq!(asked.len(), 1);
    let ignored = c.node(1).metrics().ignored_runtime_reports;
    c.step(1, Input::SnapshotCreated { index: asked[0] - 1, success: true });
    assert_eq!(c.node(1).metrics().ignored_runtime_reports, ignored + 1);
    assert!(c.events(1).iter().any(|e| matches!(e, Event::ReportRejected { report: "SnapshotCreated", .. })));
    assert_eq!(c.node(1).snapshot().index, 0, "nothing compacted");
    c.step(1, Input::SnapshotCreated { index: asked[0], success: false });
    assert_eq!(c.node(1).snapshot().index, 0);
    c.propose(1, b"x");
    c.stabilize();
    assert_eq!(snapshot_requests(&c, 1).len(), 2, "asked again at the next apply");
}

/// A follower whose longer, durable log disagrees with a snapshot installs it: the log is
/// replaced, and nothing past the snapshot is counted durable any more.
#[test]
fn installing_a_snapshot_over_a_longer_conflicting_log_resets_the_durable_index() {
    let mut c = cluster(3);
    let term = c.node(1).term();
    // Node 3 holds three entries of a later term that nobody else has.
    let last = c.node(3).log().last_index();
    let mut log = c.node(3).log().entries().to_vec();
    log.extend((last + 1..=last + 3).map(|i| entry(i, term + 1)));
    let hs = HardState { term: term + 1, vote: None, commit: 0, incarnation: 1 };
    c.restart_with_log(3, hs, log);
    assert_eq!(c.node(3).durable_index(), last + 3);
    let meta = SnapshotMeta { index: last + 1, term: term + 2, membership: Membership::with_voters([1, 2, 3]) };
    let data = c.peers[&1].applied.clone();
    c.receive_snapshot(SnapshotHeader { from: 1, to: 3, term: term + 2, meta }, data);
    let n = c.node(3);
    assert_eq!((n.snapshot().index, n.log().last_index()), (last + 1, last + 1));
    assert_eq!(n.durable_index(), last + 1, "nothing past the snapshot is durable");
}

/// Installing a snapshot that the log agrees with compacts the log up to it.
#[test]
fn installing_a_snapshot_the_log_agrees_with_compacts_the_log_to_it() {
    let mut c = cluster(3);
    for _ in 0..4 {
        c.propose(1, b"x");
    }
    c.stabilize();
    let index = c.node(3).commit_index() - 2;
    let term = c.node(3).log().term(index).expect("held");
    // A follower told a lower commit index than it holds entries for.
    let meta = SnapshotMeta { index, term, membership: Membership::with_voters([1, 2, 3]) };
    c.restart_with_log(
        3,
        HardState { term, vote: None, commit: 0, incarnation: 1 },
        c.node(3).log().entries().to_vec(),
    );
    let data = c.peers[&1].applied.iter().filter(|(i, _)| *i <= index).cloned().collect();
    let leader_term = c.node(1).term();
    c.receive_snapshot(SnapshotHeader { from: 1, to: 3, term: leader_term, meta }, data);
    let n = c.node(3);
    assert_eq!((n.snapshot().index, n.log().snapshot_index(), n.log().first_index()), (index, index, index + 1));
    assert_eq!(n.log().last_index(), c.node(1).log().last_index(), "the entries after it are kept");
}

/// The install's answer moves the leader's view of the peer straight to replicate at the
/// snapshot's index.
#[test]
fn an_install_answer_puts_the_peer_in_replicate_at_the_snapshot() {
    let mut c = Cluster::with_config(3, |cfg| cfg.snapshot_policy.max_entries = 4);
    c.elect(1);
    c.stabilize();
    c.isolate(3);
    for _ in 0..8 {
        c.propose(1, b"x");
    }
    c.stabilize();
    let snap = c.node(1).snapshot().index;
    assert!(snap > c.node(3).log().last_index());
    c.peer(3).hold_installs = true;
    c.heal();
    c.advance(Duration::from_millis(60));
    assert!(c.peers[&3].held_install.is_some(), "node 3 is installing");
    c.complete_install(3);
    // Deliver node 3's answer alone.
    let answer =
        c.queue.iter().position(|m| m.to == 1 && matches!(m.body, MessageBody::InstallSnapshotResponse { .. }));
    let answer = c.queue.remove(answer.expect("answered")).expect("queued");
    c.step(1, Input::Message(answer));
    let p = &c.node(1).status().progress[&3];
    assert_eq!((p.state, p.match_index), ("replicate", c.node(3).snapshot().index));
    assert!(c.node(3).snapshot().index >= snap);
}

// ---- proposals ------------------------------------------------------------------------

/// Node 1 proposes five entries while cut off, node 2 is elected meanwhile, and node 1
/// rejoins and loses those entries to node 2's: it still tracks the five proposals.
fn deposed_leader_with_old_proposals() -> (Cluster, Vec<ProposalId>) {
    let mut c = cluster(3);
    c.isolate(1);
    let old: Vec<ProposalId> = (0..5).map(|_| c.propose(1, b"old")).collect();
    assert!(c.campaign_until_leader(2, 5));
    c.stabilize();
    c.heal();
    c.advance(Duration::from_millis(200));
    assert_eq!(c.leaders(), vec![2]);
    (c, old)
}

/// A leader may still track proposals of an earlier term of its own past a new proposal's
/// index (their entries were replaced here but could commit elsewhere). The new proposal
/// is decided as soon as the commit index passes it, not after those.
#[test]
fn a_new_proposal_is_decided_when_its_index_commits_even_with_older_ones_tracked_beyond_it() {
    let (mut c, old) = deposed_leader_with_old_proposals();
    assert!(c.node(1).log().last_index() < c.node(2).log().last_index() + 5, "node 1's old entries were replaced");
    // Leadership returns to node 1, which proposes at an index below its old proposals.
    c.step(2, Input::TransferLeadership { id: RequestId(0), to: Some(1) });
    c.stabilize();
    assert_eq!(c.leaders(), vec![1]);
    let new = c.propose(1, b"new");
    c.stabilize();
    assert!(c.proposals_applied(1).contains(&new), "decided when its index committed");
    let decided: Vec<ProposalId> = c.proposal_rejections(1).into_iter().map(|(id, _)| id).collect();
    assert!(decided.iter().all(|id| old.contains(id)));
    c.check_safety();
}

// ---- runtime reports and time ---------------------------------------------------------

/// The harness makes only correct reports, so a node running normally ignores none.
#[test]
fn a_correct_runtime_has_no_report_ignored() {
    let mut c = Cluster::with_config(3, |cfg| cfg.snapshot_policy.max_entries = 3);
    c.elect(1);
    for _ in 0..10 {
        c.propose(1, b"x");
        c.stabilize();
    }
    c.advance(Duration::from_millis(300));
    for id in 1..=3 {
        assert_eq!(c.node(id).metrics().ignored_runtime_reports, 0, "node {id}");
    }
}

/// A deposed leader names no leader until it hears one (it must not keep naming itself).
#[test]
fn a_leader_stepping_down_by_check_quorum_names_no_leader() {
    let mut c = cluster(3);
    c.isolate(1);
    c.advance(c.peers[&1].cfg.election_timeout_max);
    assert_eq!(c.node(1).role(), Role::Follower);
    assert_eq!(c.node(1).leader(), None);
}

#[test]
fn instants_subtract_durations_and_saturate_at_the_epoch() {
    let t = Instant::from_nanos(10);
    assert_eq!(t - Duration::from_nanos(3), Instant::from_nanos(7));
    assert_eq!(t - Duration::from_nanos(30), Instant::ZERO);
}

/// An old proposal tracked below a new one is decided as soon as the commit index passes
/// it, even while the new one (queued after it, by index) is still uncommitted.
#[test]
fn an_old_proposal_below_a_new_one_is_decided_when_the_commit_index_passes_it() {
    let (mut c, old) = deposed_leader_with_old_proposals();
    // Node 1 is cut off from node 2 again.
    let decided_before = c.proposal_rejections(1).len();
    c.partition(&[&[1, 3], &[2]]);
    let base = c.node(1).log().last_index();
    c.now = c.now + c.peers[&1].cfg.election_timeout_max;
    c.win_before_replicating(1);
    let noop = c.node(1).log().last_index();
    assert_eq!(noop, base + 1);
    // A new proposal after the no-op, below some of the old ones still tracked.
    let new = c.propose(1, b"new");
    assert!(noop + 1 < base + 5 - 1, "old proposals are tracked past the new one");
    // Only the no-op's append and its answer get through: the commit index stops at it.
    let noop_append = c.queue.iter().position(|m| {
        m.to == 3
            && matches!(&m.body, MessageBody::Append { entries, .. } if entries.last().is_some_and(|e| e.index == noop))
    });
    let noop_append = c.queue.remove(noop_append.expect("the no-op's append")).expect("queued");
    c.queue.clear();
    c.step(3, Input::Message(noop_append));
    let answer = c.queue.iter().position(|m| m.to == 1).expect("node 3 answers");
    let answer = c.queue.remove(answer).expect("queued");
    c.queue.clear();
    c.step(1, Input::Message(answer));
    assert_eq!(c.node(1).commit_index(), noop);
    let decided: Vec<ProposalId> = c.proposal_rejections(1)[decided_before..].iter().map(|(id, _)| *id).collect();
    assert!(!decided.is_empty(), "the old proposal at the no-op's index is decided now");
    assert!(decided.iter().all(|id| old.contains(id)));
    assert!(!c.proposals_applied(1).contains(&new));
}
