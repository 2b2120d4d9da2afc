//! Entry points for the cargo-fuzz targets in `fuzz/`, kept here so that a plain
//! `cargo test` replays each target's corpus on the stable toolchain
//! (`tests/fuzz_corpus.rs`). Each function panics exactly when it found a bug.

use crate::config::{Profile, SimConfig, MS};
use crate::schedule::FaultOp;
use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use raft_core::{
    Action, AppendResult, Config, Entry, Input, Instant, MembershipChange, Message, MessageBody, Node, Payload,
    ProposalId, ReadId, ReadPolicy, RestoredState, Role,
};
use std::time::Duration;

/// Target `decode_message`: arbitrary bytes as a peer message. Decoding must never panic,
/// and whatever decodes must re-encode to a message that decodes to itself.
pub fn decode_message(data: &[u8]) {
    if let Ok(m) = Message::decode(data, 1 << 20) {
        let again = Message::decode(&m.encode(), 1 << 20).expect("a decoded message re-encodes validly");
        assert_eq!(again, m, "encode/decode round trip");
    }
}

/// One operation a fuzzer can feed a single node.
#[derive(Debug, Arbitrary)]
enum NodeOp {
    Message { from: u8, term: u8, body: FuzzBody },
    Tick { advance_ms: u16 },
    Propose,
    Read { follower_ok: bool },
    Persist { all: bool },
    Apply,
    Transfer { to: Option<u8> },
    Pause,
    Resume,
    Shutdown,
    AddLearner { id: u8 },
    Remove { id: u8 },
    Snapshot,
}

#[derive(Debug, Arbitrary)]
enum FuzzBody {
    Vote { pre_vote: bool, last_index: u8, last_term: u8, transfer: bool, response: Option<bool> },
    Append { prev_index: u8, prev_term: u8, terms: Vec<u8>, commit: u8 },
    AppendOk { match_index: u8 },
    AppendConflict { rejected: u8, hint: u8, hint_term: Option<u8> },
    Heartbeat { commit: u8, seq: u8, response: bool },
    ReadIndex { ctx: u8, index: Option<u8>, response: bool },
    TimeoutNow,
}

fn body(b: FuzzBody) -> MessageBody {
    let (i, t) = (u64::from, u64::from);
    match b {
        FuzzBody::Vote { pre_vote, last_index, last_term, transfer, response: None } => {
            MessageBody::VoteRequest { pre_vote, last_log_index: i(last_index), last_log_term: t(last_term), transfer }
        }
        FuzzBody::Vote { pre_vote, response: Some(granted), .. } => MessageBody::VoteResponse { pre_vote, granted },
        FuzzBody::Append { prev_index, prev_term, terms, commit } => {
            // Terms made non-decreasing so that some appends pass validation.
            let mut term = t(prev_term);
            let entries = terms
                .iter()
                .take(16)
                .enumerate()
                .map(|(k, d)| {
                    term += u64::from(*d % 2);
                    Entry { term, index: i(prev_index) + 1 + k as u64, payload: Payload::Noop }
                })
                .collect();
            MessageBody::Append {
                prev_log_index: i(prev_index),
                prev_log_term: t(prev_term),
                entries,
                commit: i(commit),
            }
        }
        FuzzBody::AppendOk { match_index } => {
            MessageBody::AppendResponse { result: AppendResult::Success { match_index: i(match_index) } }
        }
        FuzzBody::AppendConflict { rejected, hint, hint_term } => MessageBody::AppendResponse {
            result: AppendResult::Conflict {
                rejected_index: i(rejected),
                hint_index: i(hint),
                hint_term: hint_term.map(t),
            },
        },
        FuzzBody::Heartbeat { commit, seq, response: false } => {
            MessageBody::Heartbeat { commit: i(commit), seq: u64::from(seq) }
        }
        FuzzBody::Heartbeat { seq, .. } => MessageBody::HeartbeatResponse { seq: u64::from(seq) },
        FuzzBody::ReadIndex { ctx, response: false, .. } => MessageBody::ReadIndexRequest { ctx: u64::from(ctx) },
        FuzzBody::ReadIndex { ctx, index, .. } => {
            MessageBody::ReadIndexResponse { ctx: u64::from(ctx), index: index.map(i) }
        }
        FuzzBody::TimeoutNow => MessageBody::TimeoutNow,
    }
}

/// Target `node_inputs`: an arbitrary sequence of inputs to one node of a 3-node cluster,
/// with the runtime's side (persisting, applying) done partly and late. The node must
/// never panic, and its basic invariants must hold after every step.
pub fn node_inputs(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(ops) = Vec::<NodeOp>::arbitrary(&mut u) else { return };
    let mut cfg = Config::new(1);
    cfg.snapshot_policy.max_entries = 8;
    let mut node = Node::new(cfg, RestoredState::bootstrap([1, 2, 3]), Instant::ZERO).expect("valid config");
    let mut now = Instant::ZERO;
    let mut actions = Vec::new();
    let (mut persists, mut applied_to) = (Vec::new(), 0);
    let mut last_term = 0;
    for (n, op) in ops.into_iter().take(512).enumerate() {
        let n = n as u64;
        let input = match op {
            NodeOp::Message { from, term, body: b } => {
                Input::Message(Message { from: u64::from(from % 5), to: 1, term: u64::from(term), body: body(b) })
            }
            NodeOp::Tick { advance_ms } => {
                now = now + Duration::from_millis(u64::from(advance_ms % 1000));
                Input::Tick
            }
            NodeOp::Propose => Input::Propose { id: ProposalId(n), data: Bytes::from_static(b"x") },
            NodeOp::Read { follower_ok } => Input::Read {
                id: ReadId(n),
                policy: if follower_ok { ReadPolicy::AllowFollower } else { ReadPolicy::LeaderOnly },
            },
            NodeOp::Persist { all } => {
                let seq = if all { persists.last().copied() } else { persists.first().copied() };
                let Some(seq) = seq else { continue };
                persists.retain(|s| *s > seq);
                Input::Persisted { seq }
            }
            NodeOp::Apply => Input::Applied { index: applied_to },
            NodeOp::Transfer { to } => Input::TransferLeadership { to: to.map(|t| u64::from(t % 4)) },
            NodeOp::Pause => Input::Pause,
            NodeOp::Resume => Input::Resume,
            NodeOp::Shutdown => Input::PrepareShutdown,
            NodeOp::AddLearner { id } => Input::ChangeMembership {
                id: ProposalId(n),
                change: Box::new(MembershipChange::add_learner(u64::from(id % 6))),
            },
            NodeOp::Remove { id } => Input::ChangeMembership {
                id: ProposalId(n),
                change: Box::new(MembershipChange::remove(u64::from(id % 6))),
            },
            NodeOp::Snapshot => Input::SnapshotCreated { index: node.applied_index() },
        };
        node.step(now, input);
        node.drain_actions(&mut actions);
        for a in actions.drain(..) {
            match a {
                Action::Persist(p) => persists.push(p.seq),
                Action::Apply { entries, .. } => applied_to = entries.last().map_or(applied_to, |e| e.index),
                _ => {}
            }
        }
        assert!(node.term() >= last_term, "term went backwards");
        last_term = node.term();
        assert!(node.commit_index() <= node.log().last_index(), "commit past the log");
        assert!(node.applied_index() <= node.commit_index(), "applied past commit");
        assert!(node.durable_index() <= node.log().last_index(), "durable past the log");
        assert!(node.role() != Role::Leader || node.leader() == Some(1), "a leader follows itself");
        let terms: Vec<u64> = node.log().entries().iter().map(|e| e.term).collect();
        assert!(terms.windows(2).all(|w| w[0] <= w[1]), "log terms decrease");
    }
}

/// Target `cluster_schedule`: an arbitrary fault schedule for a small simulated cluster.
/// Any violated property (safety, linearizability, or liveness after the faults heal)
/// is a bug.
pub fn cluster_schedule(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(seed) = u64::arbitrary(&mut u) else { return };
    let Ok(ops) = Vec::<FaultOp>::arbitrary(&mut u) else { return };
    let ops: Vec<FaultOp> = ops.into_iter().take(64).collect();
    let mut cfg = SimConfig::from_seed(seed, Profile::All);
    cfg.fault_time = 3_000 * MS;
    cfg.heal_time = 5_000 * MS;
    if let Err(v) = crate::run_schedule(cfg, &ops) {
        panic!("{v}");
    }
}
