//! Arbitrary (forged, stale, malformed) messages never panic a node or break its
//! invariants, and stale or foreign ones (an older term, a response from a non-member,
//! addressed to another node) leave its state unchanged. Terms, indexes and ids are drawn
//! over the whole `u64` range.

mod common;
use common::*;
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};
use raft_core::*;
use std::collections::BTreeSet;
use std::time::Duration;

/// A term, index or counter over the full range: the edges (0, 1, MAX-1, MAX), anything, or
/// a small value (where the node's real state is, so the message can also be meaningful).
fn full_range(g: &mut Gen) -> u64 {
    match u8::arbitrary(g) % 6 {
        0 => 0,
        1 => 1,
        2 => u64::MAX - 1,
        3 => u64::MAX,
        4 => u64::arbitrary(g),
        _ => u64::arbitrary(g) % 8,
    }
}

/// A node id: mostly a peer of node 1 (2 or 3), else node 1 itself, a non-member (7),
/// the reserved 0, or anything.
fn node_id(g: &mut Gen) -> NodeId {
    match u8::arbitrary(g) % 10 {
        0 => 0,
        1 => 7,
        2 => u64::MAX,
        3 => u64::arbitrary(g),
        4 => 1,
        5..=7 => 2,
        _ => 3,
    }
}

/// The term a message carries: relative to the receiver's term when it arrives (so that
/// messages of its own term, which reach the most code, are common), or any value.
#[derive(Clone, Copy, Debug)]
enum TermOf {
    Current,
    Next,
    Previous,
    Exactly(Term),
}

impl TermOf {
    fn arbitrary(g: &mut Gen) -> Self {
        match u8::arbitrary(g) % 5 {
            0 | 1 => TermOf::Current,
            2 => TermOf::Next,
            3 => TermOf::Previous,
            _ => TermOf::Exactly(full_range(g)),
        }
    }

    /// Sets `m.term` for a receiver in `term`, keeping the entries of an `Append` within it
    /// (in order) so that such a message is not simply refused as malformed.
    fn apply(self, m: &mut Message, term: Term) {
        m.term = match self {
            TermOf::Current => term,
            TermOf::Next => term.saturating_add(1),
            TermOf::Previous => term.saturating_sub(1),
            TermOf::Exactly(t) => t,
        };
        if let MessageBody::Append { prev_log_term, entries, .. } = &mut m.body {
            *prev_log_term = (*prev_log_term).min(m.term);
            let mut clamped = entries.to_vec();
            for e in &mut clamped {
                e.term = e.term.clamp(*prev_log_term, m.term);
            }
            *entries = clamped.into();
        }
    }
}

fn membership(g: &mut Gen) -> Membership {
    let ids = |g: &mut Gen| (0..u8::arbitrary(g) % 4).map(|_| node_id(g)).collect::<BTreeSet<_>>();
    let mut m = Membership::from_sets(ids(g), if bool::arbitrary(g) { ids(g) } else { BTreeSet::new() }, ids(g));
    for id in m.members() {
        if bool::arbitrary(g) {
            m.info.insert(id, NodeInfo::new(vec![u8::arbitrary(g); usize::from(u8::arbitrary(g) % 8)]));
        }
    }
    m
}

/// Any message body, with full-range fields.
fn body(g: &mut Gen, term: Term) -> MessageBody {
    match u8::arbitrary(g) % 11 {
        0 => MessageBody::VoteRequest {
            pre_vote: bool::arbitrary(g),
            last_log_index: full_range(g),
            last_log_term: full_range(g),
            transfer: bool::arbitrary(g),
        },
        1 => MessageBody::VoteResponse { pre_vote: bool::arbitrary(g), granted: bool::arbitrary(g) },
        2 => {
            let prev = full_range(g);
            let mut t = if bool::arbitrary(g) { full_range(g) } else { term };
            let entries = (0..u8::arbitrary(g) % 4)
                .map(|k| {
                    if bool::arbitrary(g) {
                        t = t.saturating_add(u64::arbitrary(g) % 2);
                    }
                    let payload = match u8::arbitrary(g) % 3 {
                        0 => Payload::Noop,
                        1 => Payload::Command(bytes::Bytes::from_static(b"forged")),
                        _ => Payload::Membership(Box::new(membership(g))),
                    };
                    // Wrapping: indexes past the end of the range are for `validate` to refuse.
                    Entry { term: t, index: prev.wrapping_add(1 + k as u64), payload }
                })
                .collect();
            MessageBody::Append { prev_log_index: prev, prev_log_term: full_range(g), entries, commit: full_range(g) }
        }
        3 => MessageBody::AppendResponse {
            result: if bool::arbitrary(g) {
                AppendResult::Success { match_index: full_range(g) }
            } else {
                AppendResult::Conflict {
                    rejected_index: full_range(g),
                    hint_index: full_range(g),
                    hint_term: bool::arbitrary(g).then(|| full_range(g)),
                }
            },
        },
        4 => MessageBody::Heartbeat { commit: full_range(g), seq: full_range(g) },
        5 => MessageBody::HeartbeatResponse { seq: full_range(g) },
        6 => MessageBody::ReadIndexRequest { ctx: ReadContext { incarnation: full_range(g), seq: full_range(g) } },
        7 => MessageBody::TimeoutNow,
        8 | 9 => MessageBody::InstallSnapshotResponse { index: full_range(g), success: bool::arbitrary(g) },
        _ => MessageBody::ReadIndexResponse {
            ctx: ReadContext { incarnation: full_range(g), seq: full_range(g) },
            index: bool::arbitrary(g).then(|| full_range(g)),
        },
    }
}

fn is_response(body: &MessageBody) -> bool {
    matches!(
        body,
        MessageBody::VoteResponse { .. }
            | MessageBody::AppendResponse { .. }
            | MessageBody::HeartbeatResponse { .. }
            | MessageBody::ReadIndexResponse { .. }
            | MessageBody::InstallSnapshotResponse { .. }
    )
}

/// What happens to node 1: a message (to it, mostly), its term fixed on arrival, or time
/// passing.
#[derive(Clone, Debug)]
enum Op {
    Deliver(Message, TermOf),
    /// A snapshot stream arrives, staged, with any header.
    Stream(SnapshotHeader, TermOf),
    Tick(u64),
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Self {
        if u8::arbitrary(g) % 8 == 0 {
            return Op::Tick(u64::arbitrary(g) % 400);
        }
        let from = node_id(g);
        let to = if u8::arbitrary(g) % 4 == 0 { node_id(g) } else { 1 };
        let term = full_range(g);
        if u8::arbitrary(g) % 8 == 0 {
            let meta = SnapshotMeta { index: full_range(g), term: full_range(g), membership: membership(g) };
            return Op::Stream(SnapshotHeader { from, to, term, meta }, TermOf::arbitrary(g));
        }
        Op::Deliver(Message { from, to, term, body: body(g, term) }, TermOf::arbitrary(g))
    }
}

/// The terms node 1 holds at or below its commit index: no message may change them.
fn committed_terms(node: &Node) -> Vec<(Index, Term)> {
    let log = node.log();
    (log.snapshot_index()..=node.commit_index()).filter_map(|i| log.term(i).map(|t| (i, t))).collect()
}

/// Feeds `m` to node 1 and checks Raft's invariants across the step; a stale or foreign
/// message must leave the node's state exactly as it was.
fn deliver_and_check(c: &mut Cluster, m: Message) -> Result<(), String> {
    let before = c.state(1);
    let committed = committed_terms(c.node(1));
    let from_member = m.from == 1 || c.node(1).membership().contains(m.from);
    c.step(1, Input::Message(m.clone()));
    c.queue.clear();
    let after = c.state(1);
    let node = c.node(1);
    let stale = m.term < before.term;
    let misaddressed = m.to != 1;
    let foreign_response = !from_member && m.term <= before.term && is_response(&m.body);
    if (stale || misaddressed || foreign_response) && after != before {
        return Err(format!("{m:?} changed the node from {before:?} to {after:?}"));
    }
    if after.term < before.term || after.commit < before.commit {
        return Err(format!("term or commit went backwards after {m:?}: {before:?} -> {after:?}"));
    }
    if after.term == before.term && before.vote.is_some() && after.vote != before.vote {
        return Err(format!("voted twice in term {} after {m:?}: {before:?} -> {after:?}", after.term));
    }
    if after.commit > after.last_index || node.applied_index() > after.commit {
        return Err(format!("applied <= commit <= last index broken after {m:?}: {after:?}"));
    }
    for (i, t) in committed {
        if node.log().term(i).is_some_and(|now| now != t) {
            return Err(format!("committed entry {i} (term {t}) changed after {m:?}"));
        }
    }
    Ok(())
}

/// Feeds a staged snapshot stream to node 1: it is answered exactly once (install or
/// discard), and one that is stale, misaddressed or malformed changes nothing.
fn receive_and_check(c: &mut Cluster, h: SnapshotHeader) -> Result<(), String> {
    let before = c.state(1);
    let answers = |c: &Cluster| {
        c.peers[&1]
            .outputs
            .iter()
            .filter(|a| matches!(a, Action::InstallSnapshot { .. } | Action::DiscardSnapshot { .. }))
            .count()
    };
    let answered = answers(c);
    let ignored = h.to != 1 || h.term < before.term || h.validate().is_err();
    c.snapshot_inbox.insert((1, h.meta.index), (h.meta.clone(), Vec::new()));
    c.step(1, Input::SnapshotReceived { header: Box::new(h.clone()) });
    c.queue.clear();
    let after = c.state(1);
    if answers(c) != answered + 1 {
        return Err(format!("stream {h:?} was not answered exactly once"));
    }
    if ignored && after != before {
        return Err(format!("stream {h:?} changed the node from {before:?} to {after:?}"));
    }
    if after.term < before.term || after.commit < before.commit {
        return Err(format!("term or commit went backwards after {h:?}: {before:?} -> {after:?}"));
    }
    Ok(())
}

fn run(ops: Vec<Op>, leader: bool) -> TestResult {
    let mut c = Cluster::new(3);
    if leader {
        c.elect(1);
        c.propose(1, b"x");
        c.stabilize();
    }
    for op in ops {
        match op {
            Op::Deliver(mut m, term) => {
                term.apply(&mut m, c.node(1).term());
                if let Err(e) = deliver_and_check(&mut c, m) {
                    return TestResult::error(e);
                }
            }
            Op::Stream(mut h, term) => {
                let mut carrier = Message { from: h.from, to: h.to, term: h.term, body: MessageBody::TimeoutNow };
                term.apply(&mut carrier, c.node(1).term());
                h.term = carrier.term;
                if let Err(e) = receive_and_check(&mut c, h) {
                    return TestResult::error(e);
                }
            }
            Op::Tick(ms) => {
                c.now = c.now + Duration::from_millis(ms);
                c.step(1, Input::Tick);
                c.queue.clear();
            }
        }
    }
    TestResult::passed()
}

#[test]
fn arbitrary_messages_never_panic_a_follower_or_break_its_invariants() {
    fn prop(ops: Vec<Op>) -> TestResult {
        run(ops, false)
    }
    QuickCheck::new().tests(500).quickcheck(prop as fn(Vec<Op>) -> TestResult);
}

#[test]
fn arbitrary_messages_never_panic_a_leader_or_break_its_invariants() {
    fn prop(ops: Vec<Op>) -> TestResult {
        run(ops, true)
    }
    QuickCheck::new().tests(500).quickcheck(prop as fn(Vec<Op>) -> TestResult);
}

/// An answer from a peer of the leader, in the leader's term, with any content: what a
/// buggy or forged peer can send without being dropped as stale.
#[derive(Clone, Debug)]
struct PeerAnswer(Message);

impl Arbitrary for PeerAnswer {
    fn arbitrary(g: &mut Gen) -> Self {
        let mut b = body(g, 0);
        while !is_response(&b) {
            b = body(g, 0);
        }
        let from = if bool::arbitrary(g) { 2 } else { 3 };
        PeerAnswer(Message { from, to: 1, term: 0, body: b })
    }
}

#[test]
fn arbitrary_answers_from_its_peers_never_panic_a_leader_or_break_its_invariants() {
    fn prop(answers: Vec<PeerAnswer>) -> TestResult {
        let mut c = Cluster::new(3);
        c.elect(1);
        c.propose(1, b"x");
        c.stabilize();
        for PeerAnswer(mut m) in answers {
            m.term = c.node(1).term();
            if let Err(e) = deliver_and_check(&mut c, m) {
                return TestResult::error(e);
            }
        }
        TestResult::passed()
    }
    QuickCheck::new().tests(500).quickcheck(prop as fn(Vec<PeerAnswer>) -> TestResult);
}

/// An operator's membership change request, with any ids and any catch-up lag.
#[derive(Clone, Debug)]
struct ChangeRequest(MembershipChange);

impl Arbitrary for ChangeRequest {
    fn arbitrary(g: &mut Gen) -> Self {
        let ids = |g: &mut Gen| (0..u8::arbitrary(g) % 3).map(|_| node_id(g)).collect::<Vec<_>>();
        ChangeRequest(MembershipChange {
            add_learners: ids(g),
            add_voters: ids(g),
            demote: ids(g),
            remove: ids(g),
            require_caught_up: bool::arbitrary(g).then(|| full_range(g)),
            info: ids(g).into_iter().map(|id| (id, NodeInfo::new(vec![1u8; usize::from(u8::arbitrary(g))]))).collect(),
        })
    }
}

#[test]
fn arbitrary_membership_change_requests_never_panic_a_leader() {
    fn prop(requests: Vec<ChangeRequest>) -> TestResult {
        let mut c = Cluster::new(3);
        c.elect(1);
        for (i, ChangeRequest(change)) in requests.into_iter().enumerate() {
            c.step(1, Input::ChangeMembership { id: RequestId(1000 + i as u64), change: Box::new(change) });
            c.advance(Duration::from_millis(100));
            let n = c.node(1);
            if n.commit_index() > n.log().last_index() || n.applied_index() > n.commit_index() {
                return TestResult::error(format!("applied <= commit <= last index broken: {:?}", c.state(1)));
            }
            c.check_safety();
        }
        TestResult::passed()
    }
    QuickCheck::new().tests(200).quickcheck(prop as fn(Vec<ChangeRequest>) -> TestResult);
}

/// A message that is stale (older term than the node's), foreign (a response from a
/// non-member, in the node's term or before) or addressed to another node.
#[derive(Clone, Debug)]
struct Foreign(Message);

/// Node 1's term (small or up to 2^40), its role, and what is sent to it.
#[derive(Clone, Debug)]
struct ForeignCase {
    term: Term,
    leader: bool,
    msgs: Vec<Foreign>,
}

impl Arbitrary for ForeignCase {
    fn arbitrary(g: &mut Gen) -> Self {
        // Any term a node can reach by elections (the message fields are full-range; the
        // node's own term stays below any bound a node puts on terms it accepts).
        let term = if bool::arbitrary(g) { 2 + u64::arbitrary(g) % 8 } else { (u64::arbitrary(g) >> 24).max(2) };
        let leader = bool::arbitrary(g);
        let n = usize::arbitrary(g) % 16;
        let msgs = (0..n)
            .map(|_| {
                let below = |g: &mut Gen| match u8::arbitrary(g) % 3 {
                    0 => 0,
                    1 => term - 1,
                    _ => u64::arbitrary(g) % term,
                };
                let m = match u8::arbitrary(g) % 3 {
                    0 => {
                        let t = below(g);
                        Message { from: node_id(g), to: 1, term: t, body: body(g, t) }
                    }
                    1 => {
                        let t = if bool::arbitrary(g) { term } else { below(g) };
                        let from = [0, 4, 7, u64::MAX][usize::arbitrary(g) % 4];
                        let mut b = body(g, t);
                        while !is_response(&b) {
                            b = body(g, t);
                        }
                        Message { from, to: 1, term: t, body: b }
                    }
                    _ => {
                        let t = full_range(g);
                        let to = [0, 2, 3, 7, u64::MAX][usize::arbitrary(g) % 5];
                        Message { from: node_id(g), to, term: t, body: body(g, t) }
                    }
                };
                Foreign(m)
            })
            .collect();
        ForeignCase { term, leader, msgs }
    }
}

#[test]
fn stale_or_foreign_messages_leave_the_node_state_unchanged() {
    fn prop(case: ForeignCase) -> TestResult {
        // Every node restarts in term `case.term - 1` with one committed entry; node 1 (or
        // node 2, which node 1 then follows) is elected in `case.term`.
        let mut c = Cluster::new(3);
        let entry = Entry { term: 1, index: 1, payload: Payload::Noop };
        for n in 1..=3 {
            c.restart_with_log(
                n,
                HardState { term: case.term - 1, vote: None, commit: 1, incarnation: 1 },
                vec![entry.clone()],
            );
        }
        c.elect(if case.leader { 1 } else { 2 });
        c.advance(Duration::from_millis(10));
        assert_eq!(c.node(1).term(), case.term);
        let before = c.state(1);
        for Foreign(m) in case.msgs {
            c.step(1, Input::Message(m.clone()));
            c.queue.clear();
            if c.state(1) != before {
                return TestResult::error(format!("{m:?} changed node 1 from {before:?} to {:?}", c.state(1)));
            }
        }
        TestResult::passed()
    }
    QuickCheck::new().tests(1000).quickcheck(prop as fn(ForeignCase) -> TestResult);
}

#[test]
fn arbitrary_bytes_never_panic_the_decoder() {
    fn decode(bytes: Vec<u8>) -> bool {
        let _ = Message::decode(&bytes, 1 << 16);
        true
    }
    QuickCheck::new().tests(2000).quickcheck(decode as fn(Vec<u8>) -> bool);
}

// ---- a peer that lost acknowledged entries ------------------------------------------------

/// Three nodes with five commands everywhere; then node 3's disk loses every entry (its
/// storage broke the durability contract) and it restarts in the same term. Returns the
/// leader's last index.
fn cluster_with_a_wiped_follower() -> (Cluster, Index) {
    let mut c = Cluster::new(3);
    c.elect(1);
    for _ in 0..5 {
        c.propose(1, b"x");
    }
    c.stabilize();
    let last = c.node(1).log().last_index();
    assert_eq!(c.node(1).status().progress[&3].match_index, last);
    let term = c.node(3).term();
    c.restart_with_log(3, HardState { term, vote: None, commit: 0, incarnation: 1 }, vec![]);
    assert_eq!(c.node(3).log().last_index(), 0);
    (c, last)
}

/// Node 3 is being probed when the leader has a new entry for it, and the probe (which
/// carries the entry) is refused at node 3's old match index. Before the fix, the refusal
/// moved the probe back to the match index (which never went down) and the pair exchanged
/// probe and refusal without end, never giving the cluster a quiet moment. Now the leader
/// forgets the match index it can no longer rely on, follows the refusal down to what the
/// peer holds, and replicates the log to it again in a few messages.
#[test]
fn a_probe_refused_below_the_match_index_backs_off_instead_of_looping() {
    let (mut c, last) = cluster_with_a_wiped_follower();
    c.step(1, Input::PeerUnreachable { peer: 3 });
    assert_eq!(c.node(1).status().progress[&3].state, "probe");
    let sent_before = c.peers[&1].emitted.messages_sent;
    c.propose(1, b"y");
    c.stabilize();
    let sent = c.peers[&1].emitted.messages_sent - sent_before;
    assert!(sent <= 10, "the leader sent {sent} messages to bring one peer back");
    assert_eq!(c.node(3).log().last_index(), last + 1, "node 3 holds the log again");
    assert_eq!(c.node(1).status().progress[&3].match_index, last + 1);
    assert_eq!(c.node(1).metrics().match_index_regressions, 1);
    c.check_safety();
}

/// The same wipe seen from replication: the next append to node 3 is refused at exactly
/// its match index. Before the fix the leader took that for a late answer to an old probe
/// and dropped it, every time: node 3 never got another entry.
#[test]
fn an_append_refused_at_the_match_index_restarts_replication() {
    let (mut c, last) = cluster_with_a_wiped_follower();
    c.propose(1, b"y");
    c.stabilize();
    assert_eq!(c.node(3).log().last_index(), last + 1, "node 3 holds the log again");
    assert_eq!(c.node(1).status().progress[&3].match_index, last + 1);
    assert_eq!(c.node(1).metrics().match_index_regressions, 1);
    assert_eq!(c.applied_commands(3).len(), 6, "node 3 applied every command, the lost ones again");
    c.check_safety();
}

/// Amnesia as a fault model: node 3's storage keeps only a prefix of the entries it had
/// acknowledged (from none to all of them), the leader may have compacted its log past
/// that prefix (so only a snapshot can bring node 3 back), and the leader finds out by an
/// append or while probing. Whatever was lost, the cluster goes quiet after a bounded
/// number of messages (no probe and refusal loop) and node 3 ends with the whole log
/// applied. The two tests above are single cases of this property.
#[test]
fn a_follower_that_forgets_acknowledged_entries_is_brought_back_in_few_messages() {
    fn prop(entries: u8, keep: u8, compact: bool, probe_first: bool) -> TestResult {
        let entries = 1 + usize::from(entries % 24);
        let mut c = Cluster::with_config(3, |cfg| {
            if compact {
                cfg.snapshot_policy.max_entries = 4;
            }
        });
        c.elect(1);
        for _ in 0..entries {
            c.propose(1, b"x");
        }
        c.stabilize();
        let held = c.peers[&3].disk.entries.len();
        let keep = usize::from(keep) % (held + 1);
        c.peer(3).disk.entries.truncate(keep);
        c.crash_and_restart(3);
        if probe_first {
            c.step(1, Input::PeerUnreachable { peer: 3 });
        }
        let sent_before = c.peers[&1].emitted.messages_sent;
        c.propose(1, b"y");
        c.stabilize();
        let sent = c.peers[&1].emitted.messages_sent - sent_before;
        let last = c.node(1).log().last_index();
        let commands = c.applied_commands(1).len();
        if sent > 12 {
            return TestResult::error(format!("{sent} messages to bring node 3 back (kept {keep} of {held})"));
        }
        if c.node(3).log().last_index() != last || c.node(3).applied_index() != last {
            return TestResult::error(format!("node 3 is not back: {:?}", c.node(3).status()));
        }
        if c.applied_commands(3).len() != commands {
            return TestResult::error("node 3 applied a different number of commands");
        }
        c.check_safety();
        TestResult::passed()
    }
    QuickCheck::new().tests(300).quickcheck(prop as fn(u8, u8, bool, bool) -> TestResult);
}
