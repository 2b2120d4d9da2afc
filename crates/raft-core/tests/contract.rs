//! The runtime contract, scenario by scenario: what a runtime, a transport and a server can
//! rely on (node info, snapshot streams, one outcome per request, limits, transport
//! feedback, membership events).

mod common;

use bytes::Bytes;
use common::*;
use raft_core::*;
use std::time::Duration;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// (source, committed, latest) of every `MembershipLoaded` event of `id`.
fn loaded(c: &Cluster, id: NodeId) -> Vec<(MembershipSource, Membership, Membership)> {
    c.events(id)
        .into_iter()
        .filter_map(|e| match e {
            Event::MembershipLoaded { source, committed, latest, .. } => Some((source, committed, latest)),
            _ => None,
        })
        .collect()
}

// ---- node info ----------------------------------------------------------------------

/// Founding members carry their info from bootstrap; every node shows it in `Status`, and a
/// follower's `NotLeader` answer names where the leader is, so a client is redirected
/// without another source of truth.
#[test]
fn a_follower_redirects_to_the_leader_with_its_node_info() {
    let mut c = Cluster::with_info(3);
    c.elect(1);
    c.stabilize();
    for id in 1..=3 {
        let status = c.node(id).status();
        assert_eq!(status.membership.node_info(2), Some(&addr(2)), "node {id}");
        assert_eq!(status.leader_info, Some(addr(1)), "node {id}");
    }
    let p = c.propose(3, b"x");
    let r = c.read(2, ReadConsistency::ReadIndex);
    assert_eq!(c.proposal_rejections(3), vec![(p, ProposalError::NotLeader { leader: Some(1), info: Some(addr(1)) })]);
    assert_eq!(c.read_rejections(2), vec![(r, ReadError::NotLeader { leader: Some(1), info: Some(addr(1)) })]);
}

/// A learner's info travels with the change that adds it, reaches every member, is kept
/// across a restart (from the log) and across compaction (in the snapshot's membership),
/// and goes away with the member.
#[test]
fn node_info_is_replicated_with_membership_changes_kept_in_snapshots_and_dropped_on_removal() {
    let mut c = Cluster::with_config(3, |cfg| cfg.snapshot_policy.max_entries = 4);
    c.elect(1);
    c.stabilize();
    c.add_blank_node(4);
    c.add_learner(1, 4);
    for n in 1..=4 {
        assert_eq!(c.node(n).node_info(4), Some(&addr(4)), "node {n}");
    }
    for _ in 0..6 {
        c.propose(1, b"x");
        c.stabilize();
    }
    assert!(c.node(2).snapshot().index > 0, "node 2 compacted");
    assert_eq!(c.node(2).snapshot().membership.node_info(4), Some(&addr(4)), "the snapshot keeps it");
    c.crash_and_restart(2);
    assert_eq!(c.node(2).committed_membership().node_info(4), Some(&addr(4)), "restored on restart");

    // Info may be changed for an existing member on its own (no joint phase: quorums stay).
    let moved = NodeInfo::new(&b"10.0.1.4:7000"[..]);
    let id = c.request_id();
    let change = MembershipChange { info: [(4, moved.clone())].into(), ..Default::default() };
    c.step(1, Input::ChangeMembership { id, change: Box::new(change) });
    c.stabilize();
    c.advance(ms(100));
    assert_eq!(c.node(3).node_info(4), Some(&moved));

    let id = c.request_id();
    c.step(1, Input::ChangeMembership { id, change: Box::new(MembershipChange::remove(4)) });
    c.stabilize();
    c.advance(ms(100));
    assert!(c.node(1).membership().info.is_empty(), "no info for a non-member");
}

/// Info for a node that will not be a member, or larger than the limit, is refused.
#[test]
fn node_info_for_a_non_member_or_over_the_limit_is_refused() {
    let mut c = Cluster::with_config(3, |cfg| cfg.max_node_info_bytes = 8);
    c.elect(1);
    c.stabilize();
    let id = c.request_id();
    let stray = MembershipChange { info: [(9, addr(9))].into(), ..Default::default() };
    c.step(1, Input::ChangeMembership { id, change: Box::new(stray) });
    let id2 = c.request_id();
    c.step(1, Input::ChangeMembership { id: id2, change: Box::new(MembershipChange::add_learner(4, addr(4))) });
    let done = c.changes_done(1);
    assert!(
        matches!(&done[..], [(a, Err(ProposalError::InvalidChange(_))), (b, Err(ProposalError::InvalidChange(_)))]
        if *a == id && *b == id2),
        "{done:?}"
    );
}

// ---- snapshot streams -----------------------------------------------------------------

/// A cluster where node 3 is far behind a compacted leader log, so it needs a snapshot.
fn lagging_follower() -> Cluster {
    let mut c = Cluster::with_config(3, |cfg| {
        cfg.snapshot_policy.max_entries = 4;
        cfg.snapshot_transfer_timeout = ms(2_000);
    });
    c.elect(1);
    c.stabilize();
    c.isolate(3);
    for _ in 0..8 {
        c.propose(1, b"x");
        c.stabilize();
    }
    assert!(c.node(1).snapshot().index > c.node(3).log().last_index());
    c
}

/// The stream carries its own header: from whom, to whom, in which term, and the snapshot's
/// metadata (index, term, membership with node info), which is all the receiver needs.
#[test]
fn a_snapshot_stream_describes_itself() {
    let mut c = lagging_follower();
    c.heal();
    c.advance(ms(60));
    let header = c.peers[&1]
        .outputs
        .iter()
        .rev()
        .find_map(|a| if let Action::SendSnapshot { header } = a { Some(SnapshotHeader::clone(header)) } else { None })
        .expect("a snapshot was sent");
    assert_eq!((header.from, header.to, header.term), (1, 3, c.node(1).term()));
    assert_eq!(&header.meta, c.node(1).snapshot());
    let (decoded, _) = SnapshotHeader::decode(&header.encode(), 1 << 16).unwrap();
    assert_eq!(decoded, header);
    c.stabilize();
    assert_eq!(c.node(3).snapshot().index, header.meta.index, "node 3 installed it");
    assert_eq!(c.node(3).commit_index(), c.node(1).commit_index());
}

fn snapshot_sends(c: &Cluster) -> Vec<SnapshotHeader> {
    let outs = &c.peers[&1].outputs;
    outs.iter()
        .filter_map(
            |a| if let Action::SendSnapshot { header } = a { Some(SnapshotHeader::clone(header)) } else { None },
        )
        .collect()
}

/// A stream lost with no report at all does not wedge the follower: after
/// `snapshot_transfer_timeout` the leader gives up on it and, once the follower answers a
/// heartbeat, sends the snapshot again.
#[test]
fn a_snapshot_stream_lost_without_a_report_is_retried_after_the_transfer_timeout() {
    let mut c = lagging_follower();
    c.peer(1).hold_snapshot_sends = true; // the stream vanishes; nobody reports anything
    c.heal();
    c.advance(ms(60));
    assert_eq!(snapshot_sends(&c).len(), 1);
    c.advance(ms(1_900));
    assert_eq!(snapshot_sends(&c).len(), 1, "the leader waits out the transfer timeout");
    assert_eq!(c.node(1).status().progress[&3].state, "snapshot");
    c.peer(1).hold_snapshot_sends = false;
    c.advance(ms(300));
    assert_eq!(c.node(1).metrics().snapshot_transfers_timed_out, 1);
    assert_eq!(snapshot_sends(&c).len(), 2, "sent again after the timeout");
    c.stabilize();
    c.advance(ms(100));
    assert_eq!(c.node(3).commit_index(), c.node(1).commit_index(), "caught up");
}

/// A transfer the runtime reports failed is retried, but only once the follower answers a
/// heartbeat, so an unreachable follower does not make the leader spin on snapshots.
#[test]
fn a_failed_snapshot_transfer_is_retried_once_the_follower_answers() {
    let mut c = lagging_follower();
    let before = c.peers[&1].outputs.iter().filter(|a| matches!(a, Action::SendSnapshot { .. })).count();
    // Still cut off: the harness reports every transfer failed.
    c.advance(ms(500));
    let during = c.peers[&1].outputs.iter().filter(|a| matches!(a, Action::SendSnapshot { .. })).count();
    assert!(during - before <= 1, "no retry without an answer from the follower ({} sends)", during - before);
    c.heal();
    c.advance(ms(200));
    assert_eq!(c.node(3).commit_index(), c.node(1).commit_index());
}

/// The runtime may send a newer snapshot than the one the action named (it made another
/// meanwhile); the leader takes the report and the follower's answer for the newer one.
#[test]
fn a_newer_snapshot_than_the_one_asked_for_is_accepted() {
    let mut c = lagging_follower();
    c.peer(1).hold_snapshot_sends = true;
    c.heal();
    c.advance(ms(60));
    let asked = snapshot_sends(&c)[0].meta.index;
    // The leader compacts again before the runtime gets to send.
    c.cut.insert((1, 3));
    for _ in 0..5 {
        c.propose(1, b"y");
        c.stabilize();
    }
    c.heal();
    let newer = c.node(1).snapshot().clone();
    assert!(newer.index > asked);
    let data = c.peers[&1].applied.iter().filter(|(i, _)| *i <= newer.index).cloned().collect();
    let term = c.node(1).term();
    c.receive_snapshot(SnapshotHeader { from: 1, to: 3, term, meta: newer.clone() }, data);
    c.step(1, Input::SnapshotSent { peer: 3, index: newer.index, success: true });
    c.stabilize();
    assert_eq!(c.node(3).snapshot().index, newer.index);
    assert!(c.node(1).status().progress[&3].match_index >= newer.index);
    assert_eq!(c.node(1).metrics().ignored_runtime_reports, 0, "the report for the newer snapshot is taken");
}

/// A snapshot the applier was making when an install from the leader overtook it is
/// reported afterwards: the report is taken quietly (nothing older is compacted over the
/// newer snapshot), and later snapshots are asked for as usual.
#[test]
fn a_snapshot_overtaken_by_an_install_is_reported_without_harm() {
    let mut c = Cluster::with_config(3, |cfg| cfg.snapshot_policy.max_entries = 4);
    c.elect(1);
    c.stabilize();
    c.peer(3).hold_snapshots = true;
    for _ in 0..4 {
        c.propose(1, b"x");
        c.stabilize();
    }
    let asked = c.snapshot_requests(3).first().expect("node 3 asked for a snapshot").index;
    c.isolate(3);
    for _ in 0..8 {
        c.propose(1, b"x");
        c.stabilize();
    }
    c.heal();
    c.advance(ms(100));
    let installed = c.node(3).snapshot().index;
    assert!(installed > asked, "node 3 installed the leader's newer snapshot");
    c.step(3, Input::SnapshotCreated { index: asked, success: true });
    assert_eq!(c.node(3).snapshot().index, installed, "the older snapshot compacts nothing");
    assert!(!c.events(3).iter().any(|e| matches!(e, Event::ReportRejected { .. })));
    let before = c.snapshot_requests(3).len();
    for _ in 0..6 {
        c.propose(1, b"x");
        c.stabilize();
    }
    let after = c.snapshot_requests(3).len();
    assert!(after > before, "snapshots are asked for again");
}

// ---- one outcome per request ------------------------------------------------------------

/// A leader transfer is answered once: with the new leader when the target took over.
#[test]
fn a_leader_transfer_completes_with_the_new_leader() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.stabilize();
    let id = c.request_id();
    c.step(1, Input::TransferLeadership { id, to: Some(2) });
    c.stabilize();
    c.advance(ms(100));
    assert_eq!(c.leaders(), vec![2]);
    assert_eq!(c.transfers_done(1), vec![(id, Ok(2))]);
}

/// Every way a transfer cannot happen has its own error, given at once, exactly once.
#[test]
fn a_leader_transfer_that_cannot_happen_fails_with_a_typed_error() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.stabilize();
    let mut expect = Vec::new();
    for (to, error) in [(Some(1), TransferError::AlreadyLeader), (Some(7), TransferError::NotAVoter(7))] {
        let id = c.request_id();
        c.step(1, Input::TransferLeadership { id, to });
        expect.push((id, Err(error)));
    }
    let id = c.request_id();
    c.step(2, Input::TransferLeadership { id, to: None });
    assert_eq!(c.transfers_done(2), vec![(id, Err(TransferError::NotLeader { leader: Some(1), info: None }))]);
    // A second request while one is in flight.
    c.cut.insert((1, 3));
    let first = c.request_id();
    c.step(1, Input::TransferLeadership { id: first, to: Some(3) });
    let second = c.request_id();
    c.step(1, Input::TransferLeadership { id: second, to: Some(2) });
    expect.push((second, Err(TransferError::InProgress)));
    // The target never hears: the first times out.
    c.advance(ms(400));
    expect.push((first, Err(TransferError::TimedOut)));
    assert_eq!(c.transfers_done(1), expect);
}

/// A membership change is answered once: with the committed configuration, after `C_new`
/// commits (not when the joint configuration does).
#[test]
fn a_membership_change_completes_once_with_the_committed_configuration() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.stabilize();
    c.add_blank_node(4);
    let id = c.request_id();
    c.step(1, Input::ChangeMembership { id, change: Box::new(MembershipChange::add_voter(4)) });
    c.stabilize();
    c.advance(ms(100));
    let done = c.changes_done(1);
    assert_eq!(done.len(), 1, "{done:?}");
    let (got, result) = &done[0];
    assert_eq!(*got, id);
    let m = result.as_ref().expect("completed");
    assert!(!m.is_joint());
    assert_eq!(m.voters, [1, 2, 3, 4].into());
    assert_eq!(m, c.node(1).committed_membership());
}

/// A change refused up front, and a change whose leader is deposed before it finishes, are
/// each answered once with an error.
#[test]
fn a_membership_change_that_fails_is_answered_with_its_error() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.stabilize();
    let refused = c.request_id();
    c.step(2, Input::ChangeMembership { id: refused, change: Box::new(MembershipChange::remove(3)) });
    assert_eq!(c.changes_done(2), vec![(refused, Err(ProposalError::NotLeader { leader: Some(1), info: None }))]);

    c.add_blank_node(4);
    c.isolate(1);
    let cut_off = c.request_id();
    c.step(1, Input::ChangeMembership { id: cut_off, change: Box::new(MembershipChange::add_voter(4)) });
    c.advance(ms(500)); // CheckQuorum deposes node 1
    assert_eq!(c.changes_done(1), vec![(cut_off, Err(ProposalError::NotLeader { leader: None, info: None }))]);
}

// ---- limits -----------------------------------------------------------------------------

/// A command larger than `max_entry_bytes` is refused before it is appended; one of exactly
/// the limit is taken.
#[test]
fn a_command_over_the_entry_size_limit_is_refused() {
    let mut c = Cluster::with_config(3, |cfg| cfg.max_entry_bytes = 16);
    c.elect(1);
    c.stabilize();
    let last = c.node(1).log().last_index();
    let big = ProposalId(900);
    c.step(1, Input::Propose { id: big, data: Bytes::from(vec![0u8; 17]) });
    assert_eq!(c.proposal_rejections(1), vec![(big, ProposalError::TooLarge { size: 17, max: 16 })]);
    assert_eq!(c.node(1).log().last_index(), last, "nothing appended");
    c.step(1, Input::Propose { id: ProposalId(901), data: Bytes::from(vec![0u8; 16]) });
    assert_eq!(c.node(1).log().last_index(), last + 1);
}

/// A state machine that falls behind makes the leader refuse proposals once
/// `max_unapplied_entries` committed entries wait for it, and accept them again as it
/// catches up.
#[test]
fn a_slow_state_machine_makes_the_leader_refuse_proposals() {
    let mut c = Cluster::with_config(3, |cfg| cfg.max_unapplied_entries = 3);
    c.elect(1);
    c.stabilize();
    c.peer(1).hold_applied = true;
    let ids: Vec<ProposalId> = (0..4).map(|_| c.propose(1, b"x")).collect();
    c.stabilize();
    let applied = c.node(1).applied_index();
    assert!(c.node(1).commit_index() - applied >= 3);
    let refused = c.propose(1, b"x");
    assert!(ids.iter().all(|id| !c.proposal_rejections(1).iter().any(|(r, _)| r == id)));
    assert_eq!(c.proposal_rejections(1), vec![(refused, ProposalError::Overloaded { limit: Limit::UnappliedEntries })]);
    c.peer(1).hold_applied = false;
    let commit = c.node(1).commit_index();
    c.step(1, Input::Applied { index: commit });
    let accepted = c.propose(1, b"x");
    c.stabilize();
    assert!(c.proposals_applied(1).contains(&accepted));
}

/// A disk that falls behind makes the leader refuse proposals once
/// `max_persists_in_flight` persists wait for it.
#[test]
fn a_slow_disk_makes_the_leader_refuse_proposals() {
    let mut c = Cluster::with_config(3, |cfg| cfg.max_persists_in_flight = 2);
    c.elect(1);
    c.stabilize();
    c.peer(1).auto_persist = false;
    c.propose(1, b"a");
    c.propose(1, b"b");
    let refused = c.propose(1, b"c");
    assert_eq!(c.proposal_rejections(1), vec![(refused, ProposalError::Overloaded { limit: Limit::PersistsInFlight })]);
    c.flush_disk(1);
    let accepted = c.propose(1, b"d");
    assert!(c.proposal_rejections(1).iter().all(|(r, _)| *r != accepted));
}

/// The defaults bound every queue: a user who sets nothing is protected.
#[test]
fn every_limit_is_on_by_default() {
    let cfg = Config::new(1);
    assert!(cfg.max_uncommitted_entries > 0);
    assert!(cfg.max_unapplied_entries > 0);
    assert!(cfg.max_persists_in_flight > 0);
    assert!(cfg.max_entry_bytes > 0);
    assert!(cfg.max_entry_bytes <= cfg.max_bytes_per_message, "a maximal entry fits one append");
}

// ---- transport feedback -----------------------------------------------------------------

/// `PeerUnreachable` makes the leader stop counting on what it had in flight to the peer:
/// the next message to it is a probe from its match index, sent at once instead of after
/// a heartbeat round reveals the loss.
#[test]
fn a_peer_reported_unreachable_is_probed_from_its_match_index_at_once() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.stabilize();
    let matched = c.node(1).status().progress[&3].match_index;
    c.cut.insert((1, 3));
    for _ in 0..3 {
        c.propose(1, b"x");
    }
    c.stabilize();
    assert_eq!(c.node(1).status().progress[&3].inflight, 3, "appends count as in flight");
    c.heal();
    c.queue.clear();
    c.step(1, Input::PeerUnreachable { peer: 3 });
    let probes: Vec<&Message> = c.queue.iter().filter(|m| m.to == 3).collect();
    assert!(
        matches!(probes.as_slice(), [Message { body: MessageBody::Append { prev_log_index, .. }, .. }] if *prev_log_index == matched),
        "one probe from the match index: {probes:?}"
    );
    assert_eq!(c.node(1).metrics().unreachable_reports, 1);
    c.stabilize();
    assert_eq!(c.node(3).log().last_index(), c.node(1).log().last_index());
}

/// A transport that fails every send at once, and reports each failure, cannot make the
/// leader spin: a peer already being probed is not probed again until it answers.
#[test]
fn repeated_unreachable_reports_send_no_more_probes() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.stabilize();
    c.isolate(3);
    c.propose(1, b"x");
    c.queue.clear();
    c.step(1, Input::PeerUnreachable { peer: 3 });
    let probes = |c: &Cluster| c.peers[&1].emitted.messages_sent;
    let after_first = probes(&c);
    for _ in 0..10 {
        c.step(1, Input::PeerUnreachable { peer: 3 });
    }
    assert_eq!(probes(&c), after_first, "no message for the repeated reports");
    assert_eq!(c.node(1).status().progress[&3].state, "probe");
}

/// Pausing (or shutting down) a leader hands leadership to a reachable voter, passing
/// over one it has found unreachable even if that one holds more of the log.
#[test]
fn a_leader_hands_over_to_a_reachable_voter() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.stabilize();
    // Node 2 misses an entry; node 3 has everything, then stops answering.
    c.cut.insert((1, 2));
    c.propose(1, b"x");
    c.stabilize();
    c.heal();
    c.isolate(3);
    c.advance(ms(200)); // three missed heartbeat rounds: 3 is reported unreachable
    assert!(c.events(1).contains(&Event::PeerUnreachable { peer: 3 }));
    c.step(1, Input::PrepareShutdown);
    c.advance(ms(300));
    assert_eq!(c.node(2).role(), Role::Leader, "node 2 took over: {:?}", c.history(2));
}

// ---- events user code can rely on -------------------------------------------------------

/// A restarted node tells user code the configuration it loaded, even though no
/// configuration entry is appended or committed: the first user rebalances work on
/// membership events and must never miss one.
#[test]
fn a_restarted_node_reports_the_configuration_it_loaded() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.stabilize();
    c.add_blank_node(4);
    c.add_learner(1, 4);
    c.crash_and_restart(2);
    let got = loaded(&c, 2);
    let (source, committed, latest) = got.last().expect("reported");
    assert_eq!(*source, MembershipSource::Restart);
    assert_eq!(committed, c.node(2).committed_membership());
    assert!(latest.learners.contains(&4), "{latest:?}");
    assert_eq!(latest.node_info(4), Some(&addr(4)));
}

/// A node that learns its configuration from a snapshot tells user code as well.
#[test]
fn a_node_that_installs_a_snapshot_reports_the_configuration_it_holds() {
    let mut c = Cluster::with_config(3, |cfg| cfg.snapshot_policy.max_entries = 4);
    c.elect(1);
    c.stabilize();
    c.isolate(3);
    c.add_blank_node(4);
    let id = c.request_id();
    c.step(1, Input::ChangeMembership { id, change: Box::new(MembershipChange::add_learner(4, addr(4))) });
    c.stabilize();
    for _ in 0..8 {
        c.propose(1, b"x");
        c.stabilize();
    }
    c.heal();
    c.advance(ms(200));
    let got = loaded(&c, 3);
    let last = got.last().expect("reported");
    assert_eq!(last.0, MembershipSource::Snapshot);
    assert_eq!(last.1.node_info(4), Some(&addr(4)), "with node info");
    assert_eq!(&last.1, c.node(3).committed_membership());
}

/// Thesis §9.6: a pre-candidate that a quorum refuses gives up (`LostElection`) at once,
/// rather than waiting out its election timer as a pre-candidate. The refusals come in
/// the voters' own term.
#[test]
fn a_pre_candidate_refused_by_a_quorum_loses_at_once() {
    let mut c = Cluster::with_config(3, |cfg| cfg.check_quorum = false);
    c.elect(1);
    c.propose(1, b"x");
    c.stabilize();
    // Node 3 misses the entry, so its log is behind: the others refuse to pre-vote for it.
    c.isolate(3);
    c.propose(1, b"y");
    c.stabilize();
    c.heal();
    c.campaign(3);
    let history = c.history(3);
    let last = history.last().expect("transitions");
    assert_eq!((last.from, last.to), (Role::PreCandidate, Role::Follower), "{history:?}");
    assert_eq!(last.reason, TransitionReason::LostElection);
}

/// Status, events and transitions serialize (a server returns them as JSON).
#[test]
fn status_events_and_transitions_serialize() {
    fn encoded<T: serde::Serialize>(v: &T) -> usize {
        postcard::to_allocvec(v).expect("serializes").len()
    }
    let mut c = Cluster::with_info(3);
    c.elect(1);
    assert!(encoded(&c.node(1).status()) > 0);
    assert!(encoded(&c.history(1)) > 0);
    assert!(encoded(&c.events(1)) > 0);
    assert!(encoded(c.node(1).metrics()) > 0);
}
