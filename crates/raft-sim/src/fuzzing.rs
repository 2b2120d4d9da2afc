//! Entry points for the cargo-fuzz targets in `fuzz/`, kept here so that a plain
//! `cargo test` replays each target's corpus on the stable toolchain
//! (`tests/fuzz_corpus.rs`). Each function panics exactly when it found a bug.

use crate::config::{Profile, SimConfig, MS};
use crate::schedule::FaultOp;
use crate::storage::Durable;
use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use raft_core::{
    Action, AppendResult, Config, Entry, Input, Instant, MembershipChange, Message, MessageBody, Node, Payload,
    Persist, ProposalId, ReadConsistency, ReadContext, ReadId, RequestId, RestoredState, Role, SnapshotHeader,
    SnapshotMeta, MAX_TERM,
};
use std::time::Duration;

/// Target `decode_message`: arbitrary bytes as a peer message and as a snapshot stream's
/// header. Decoding must never panic, the copying and the zero-copy decoders must agree,
/// and whatever decodes must re-encode to a value that decodes to itself.
pub fn decode_message(data: &[u8]) {
    let copied = Message::decode(data, 1 << 20);
    let shared = Message::decode_bytes(&Bytes::copy_from_slice(data), 1 << 20);
    assert_eq!(copied, shared, "the two decoders disagree");
    if let Ok(m) = copied {
        let again = Message::decode(&m.encode(), 1 << 20).expect("a decoded message re-encodes validly");
        assert_eq!(again, m, "encode/decode round trip");
    }
    if let Ok((h, used)) = SnapshotHeader::decode(data, 1 << 20) {
        assert!(used <= data.len());
        let again = SnapshotHeader::decode(&h.encode(), 1 << 20).expect("a decoded header re-encodes validly");
        assert_eq!(again.0, h, "header round trip");
    }
}

/// A term, index, lag or counter drawn over the whole `u64` range, weighted toward the
/// values where arithmetic breaks: 0, 1, the accepted bounds and the type's maximum, as
/// well as small values (where a protocol actually runs) and uniformly random ones.
#[derive(Copy, Clone, Debug)]
pub struct Wide(pub u64);

impl<'a> Arbitrary<'a> for Wide {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Wide(match u8::arbitrary(u)? % 16 {
            0 => 0,
            1 => 1,
            2 => u64::MAX - 1,
            3 => u64::MAX,
            4 => MAX_TERM - 1,
            5 => MAX_TERM,
            6 => MAX_TERM + 1,
            7 => u64::arbitrary(u)?,
            _ => u64::from(u8::arbitrary(u)?),
        }))
    }
}

/// One operation a fuzzer can feed a single node.
#[derive(Debug, Arbitrary)]
enum NodeOp {
    Message {
        from: u8,
        term: Wide,
        body: FuzzBody,
    },
    Tick {
        advance_ms: u16,
    },
    Propose,
    Read {
        follower_ok: bool,
    },
    Persist {
        all: bool,
    },
    Apply,
    Transfer {
        to: Option<u8>,
    },
    Pause,
    Resume,
    Shutdown,
    AddLearner {
        id: u8,
    },
    Promote {
        id: u8,
        lag: Option<Wide>,
    },
    Remove {
        id: u8,
    },
    /// Reports the last snapshot asked for as made (or failed).
    Snapshot {
        success: bool,
    },
    /// A snapshot stream arrives from node `from` with any header.
    Stream {
        from: u8,
        term: Wide,
        index: Wide,
        snap_term: Wide,
    },
    /// Reports the last install asked for as done (or failed).
    Installed {
        success: bool,
    },
    /// The transport reports a peer unreachable.
    Unreachable {
        peer: u8,
    },
    /// Crash and restart from the durable state; the oldest unsynced persist is torn after
    /// `tear` of its writes (in the stores' order), the rest are lost.
    Restart {
        tear: u8,
    },
}

#[derive(Debug, Arbitrary)]
enum FuzzBody {
    Vote { pre_vote: bool, last_index: Wide, last_term: Wide, transfer: bool, response: Option<bool> },
    Append { prev_index: Wide, prev_term: Wide, terms: Vec<u8>, commit: Wide },
    AppendOk { match_index: Wide },
    AppendConflict { rejected: Wide, hint: Wide, hint_term: Option<Wide> },
    Heartbeat { commit: Wide, seq: Wide, response: bool },
    ReadIndex { incarnation: Wide, seq: Wide, index: Option<Wide>, response: bool },
    TimeoutNow,
}

fn body(b: FuzzBody) -> MessageBody {
    let (i, t) = (|w: Wide| w.0, |w: Wide| w.0);
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
                    term = term.saturating_add(u64::from(*d % 2));
                    let index = i(prev_index).wrapping_add(1 + k as u64);
                    Entry { term, index, payload: Payload::Noop }
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
            MessageBody::Heartbeat { commit: i(commit), seq: seq.0 }
        }
        FuzzBody::Heartbeat { seq, .. } => MessageBody::HeartbeatResponse { seq: seq.0 },
        FuzzBody::ReadIndex { incarnation, seq, response: false, .. } => {
            MessageBody::ReadIndexRequest { ctx: ReadContext { incarnation: incarnation.0, seq: seq.0 } }
        }
        FuzzBody::ReadIndex { incarnation, seq, index, .. } => MessageBody::ReadIndexResponse {
            ctx: ReadContext { incarnation: incarnation.0, seq: seq.0 },
            index: index.map(i),
        },
        FuzzBody::TimeoutNow => MessageBody::TimeoutNow,
    }
}

/// Target `node_inputs`: an arbitrary sequence of inputs to one node of a 3-node cluster,
/// with the runtime's side (persisting, applying) done partly and late, and crashes that
/// tear a persist. The node must never panic, must restart from every crash state, and its
/// basic invariants must hold after every step.
pub fn node_inputs(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(ops) = Vec::<NodeOp>::arbitrary(&mut u) else { return };
    let mut cfg = Config::new(1);
    cfg.snapshot_policy.max_entries = 8;
    let mut disk = Durable::new(&RestoredState::bootstrap([1, 2, 3]));
    let mut node = Node::new(cfg.clone(), RestoredState::bootstrap([1, 2, 3]), Instant::ZERO).expect("valid config");
    let mut now = Instant::ZERO;
    let mut actions = Vec::new();
    let (mut persists, mut applied_to): (Vec<Persist>, _) = (Vec::new(), 0);
    let mut last_term = 0;
    let (mut requested, mut installing): (Option<u64>, Option<SnapshotMeta>) = (None, None);
    for (n, op) in ops.into_iter().take(512).enumerate() {
        let n = n as u64;
        let input = match op {
            NodeOp::Message { from, term, body: b } => {
                Input::Message(Message { from: u64::from(from % 5), to: 1, term: term.0, body: body(b) })
            }
            NodeOp::Tick { advance_ms } => {
                now = now + Duration::from_millis(u64::from(advance_ms % 1000));
                Input::Tick
            }
            NodeOp::Propose => Input::Propose { id: ProposalId(n), data: Bytes::from_static(b"x") },
            NodeOp::Read { follower_ok } => Input::Read {
                id: ReadId(n),
                consistency: if follower_ok { ReadConsistency::FollowerReadIndex } else { ReadConsistency::ReadIndex },
            },
            NodeOp::Persist { all } => {
                let seq = if all { persists.last() } else { persists.first() }.map(|p| p.seq);
                let Some(seq) = seq else { continue };
                for p in persists.iter().take_while(|p| p.seq <= seq) {
                    disk.apply(p).unwrap_or_else(|e| panic!("the core asked for an impossible persist: {e}"));
                }
                persists.retain(|p| p.seq > seq);
                Input::Persisted { seq }
            }
            NodeOp::Restart { tear } => {
                if let Some(p) = persists.first() {
                    let done = usize::from(tear) % (Durable::writes(p) + 1);
                    disk.apply_torn(p, done).unwrap_or_else(|e| panic!("impossible torn persist: {e}"));
                }
                persists.clear();
                let restored = RestoredState {
                    hard_state: disk.hard_state,
                    snapshot: disk.snapshot.clone(),
                    entries: disk.entries.clone(),
                    applied: disk.snapshot.index,
                };
                node = Node::new(cfg.clone(), restored, now)
                    .unwrap_or_else(|e| panic!("no restart from a crash state: {e}\n{disk:?}"));
                applied_to = disk.snapshot.index;
                last_term = node.term();
                (requested, installing) = (None, None);
                continue;
            }
            NodeOp::Apply => Input::Applied { index: applied_to },
            NodeOp::Transfer { to } => Input::TransferLeadership { id: RequestId(n), to: to.map(|t| u64::from(t % 4)) },
            NodeOp::Pause => Input::Pause,
            NodeOp::Resume => Input::Resume,
            NodeOp::Shutdown => Input::PrepareShutdown,
            NodeOp::AddLearner { id } => Input::ChangeMembership {
                id: RequestId(n),
                change: Box::new(MembershipChange::add_learner(u64::from(id % 6), Default::default())),
            },
            NodeOp::Promote { id, lag } => Input::ChangeMembership {
                id: RequestId(n),
                change: Box::new(MembershipChange {
                    require_caught_up: lag.map(|l| l.0),
                    ..MembershipChange::add_voter(u64::from(id % 6))
                }),
            },
            NodeOp::Remove { id } => Input::ChangeMembership {
                id: RequestId(n),
                change: Box::new(MembershipChange::remove(u64::from(id % 6))),
            },
            NodeOp::Snapshot { success } => {
                let Some(index) = requested.take() else { continue };
                Input::SnapshotCreated { index, success }
            }
            NodeOp::Stream { from, term, index, snap_term } => {
                let meta = SnapshotMeta { index: index.0, term: snap_term.0, membership: node.membership().clone() };
                let header = SnapshotHeader { from: u64::from(from % 5), to: 1, term: term.0, meta };
                Input::SnapshotReceived { header: Box::new(header) }
            }
            NodeOp::Installed { success } => {
                let Some(meta) = installing.take() else { continue };
                if success {
                    applied_to = meta.index;
                }
                Input::SnapshotInstalled { meta: Box::new(meta), success }
            }
            NodeOp::Unreachable { peer } => Input::PeerUnreachable { peer: u64::from(peer % 5) },
        };
        node.step(now, input);
        node.drain_actions(&mut actions);
        for a in actions.drain(..) {
            match a {
                Action::Persist(p) => persists.push(p),
                Action::Apply { entries, .. } => applied_to = entries.last().map_or(applied_to, |e| e.index),
                Action::CreateSnapshot { meta } => requested = Some(meta.index),
                Action::InstallSnapshot { meta } => installing = Some(*meta),
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
