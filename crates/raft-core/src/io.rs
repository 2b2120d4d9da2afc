//! The node's boundary: the inputs a runtime feeds in and the actions it must carry out.

use crate::batch::Entries;
use crate::event::Event;
use crate::log::{HardState, SnapshotMeta};
use crate::membership::{Membership, NodeInfo};
use crate::message::{Message, SnapshotHeader};
use crate::types::{Index, NodeId, ProposalId, ReadId, RequestId};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Something that happened to the node. Passed to `Node::step` with the current time.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input {
    /// A message from a peer (already decoded; see `Message::decode`).
    Message(Message),
    /// Time has passed. Call at (or after) `Node::next_deadline`; extra ticks are harmless.
    Tick,
    /// A client command to replicate. The result arrives as `Action::Apply` (listing `id`)
    /// or `Action::ProposalRejected`.
    Propose {
        /// Returned with the result.
        id: ProposalId,
        /// The command, opaque to the core.
        data: Bytes,
    },
    /// A read. Answered with `Action::ReadReady` once the local state machine has applied
    /// everything the read must observe, or `Action::ReadRejected`.
    Read {
        /// Returned with the answer.
        id: ReadId,
        /// How the read is confirmed (and where it may be served).
        consistency: ReadConsistency,
    },
    /// Every `Action::Persist` with a sequence number up to `seq` is durable (fsynced).
    /// Report in order; reporting a lower `seq` than before is ignored.
    Persisted {
        /// The highest durable persist sequence number.
        seq: u64,
    },
    /// The state machine has applied every entry up to `index`.
    Applied {
        /// The highest applied index.
        index: Index,
    },
    /// Hand leadership to `to` (or, with `None`, to the most up-to-date voter). Answered
    /// with exactly one `Action::TransferDone` for `id`.
    TransferLeadership {
        /// Returned with the outcome.
        id: RequestId,
        /// The chosen successor.
        to: Option<NodeId>,
    },
    /// Stop campaigning and accepting proposals; a leader hands leadership away first.
    /// A paused follower keeps replicating and voting.
    Pause,
    /// Undo `Pause` (or `Config::start_paused`).
    Resume,
    /// Pause, hand leadership away, and emit `Event::ReadyToStop` when stopping this node
    /// no longer costs the cluster its leader.
    PrepareShutdown,
    /// Change the membership (joint consensus). Answered with exactly one
    /// `Action::MembershipChangeDone` for `id`.
    ChangeMembership {
        /// Returned with the outcome.
        id: RequestId,
        /// The change (boxed to keep `Input` small).
        change: Box<MembershipChange>,
    },
    /// The answer to `Action::CreateSnapshot`: with `success`, the state machine's
    /// snapshot at `index` (which must be the action's `meta.index`) is durable and the log
    /// before it may be compacted; without, it could not be made (the core asks again
    /// when the policy next triggers). Any other `index` is rejected loudly
    /// (`Event::ReportRejected`).
    SnapshotCreated {
        /// The snapshot's last index.
        index: Index,
        /// Whether the snapshot was made durable.
        success: bool,
    },
    /// A snapshot stream from a peer has arrived and is staged durably (not yet installed).
    /// The header is the one the sender's `Action::SendSnapshot` carried. Answered with
    /// exactly one `Action::InstallSnapshot` or `Action::DiscardSnapshot` for its `meta`.
    SnapshotReceived {
        /// The stream's header (boxed to keep `Input` small).
        header: Box<SnapshotHeader>,
    },
    /// The answer to `Action::InstallSnapshot`: the state machine was restored from the
    /// staged snapshot `meta` and it is durable (`success`), or the install failed and the
    /// state machine is as it was before (`!success`).
    SnapshotInstalled {
        /// The snapshot installed (boxed to keep `Input` small).
        meta: Box<SnapshotMeta>,
        /// Whether the state machine now reflects it (and it is durable).
        success: bool,
    },
    /// The runtime's transfer of a snapshot to `peer` ended (it arrived, or failed). `index`
    /// is the last index of the snapshot actually sent: the one the action named, or a
    /// newer one the runtime had by then.
    SnapshotSent {
        /// The receiver.
        peer: NodeId,
        /// The sent snapshot's last index.
        index: Index,
        /// False if the transfer failed; the leader will retry later.
        success: bool,
    },
    /// The transport could not reach `peer` (a connection failed, a send buffer is full).
    /// A leader stops assuming that messages in flight to it arrive and probes it again
    /// with the next message, rather than waiting for a heartbeat round to reveal the loss.
    PeerUnreachable {
        /// The peer.
        peer: NodeId,
    },
}

/// A change of membership; all parts apply together in one joint change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MembershipChange {
    /// Nodes to add as learners.
    pub add_learners: Vec<NodeId>,
    /// Learners to make voters (or new nodes to add directly as voters).
    pub add_voters: Vec<NodeId>,
    /// Voters to make learners.
    pub demote: Vec<NodeId>,
    /// Members (voters or learners) to remove.
    pub remove: Vec<NodeId>,
    /// Reject promotions of learners that are not caught up (match within
    /// this many entries of the leader's last index).
    pub require_caught_up: Option<u64>,
    /// Node info to record for members of the new configuration (new or existing ones);
    /// members not listed keep theirs.
    pub info: BTreeMap<NodeId, NodeInfo>,
}

/// How a read is confirmed linearizable, chosen per read. Every choice observes every write
/// completed before the read was requested; they differ in cost and in what they assume.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ReadConsistency {
    /// ReadIndex on the leader (thesis §6.4): a heartbeat round confirms leadership (shared
    /// by all reads waiting for one). A follower rejects the read, naming the leader.
    #[default]
    ReadIndex,
    /// A lease read on the leader (thesis §6.4.1): no round trip while the lease holds,
    /// falling back to ReadIndex when it does not. Assumes clocks drift less than
    /// `Config::lease_clock_drift`; rejected with `ReadError::LeaseNotEnabled` unless
    /// `Config::lease_reads` allows it.
    Lease,
    /// ReadIndex served on any member: a follower asks the leader for a read index and
    /// serves the read locally once it has applied that far.
    FollowerReadIndex,
}

/// Something the runtime must do. Actions are to be carried out in the order they are
/// returned by `Node::drain_actions`; see the crate documentation for the full contract.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "every action must be carried out"]
#[non_exhaustive]
pub enum Action {
    /// Send a message to a peer. Best effort: it may be lost, the protocol copes.
    /// Everything is safe to send immediately; durability gating already happened.
    Send(Message),
    /// Make state durable, then report `Input::Persisted { seq }`. Persists must take
    /// effect in `seq` order (they may be batched into one fsync).
    Persist(Persist),
    /// Apply these committed entries to the state machine, in order, then report
    /// `Input::Applied`. `proposals` lists the ones this node proposed: answer their clients.
    Apply {
        /// Consecutive committed entries (shared with the log, the persist and the appends
        /// that carried them: drop it when done, nothing is copied).
        entries: Entries,
        /// (index, id) of the entries that are this node's proposals.
        proposals: Vec<(Index, ProposalId)>,
    },
    /// A proposal failed: it will never be applied (or, for `NotLeader`, was not accepted).
    ProposalRejected {
        /// The proposal.
        id: ProposalId,
        /// Why.
        error: ProposalError,
    },
    /// Serve read `id` now from the local state machine: it has applied `index`, which
    /// covers every write completed before the read was requested.
    ReadReady {
        /// The read.
        id: ReadId,
        /// The read index.
        index: Index,
    },
    /// Read `id` cannot be served here.
    ReadRejected {
        /// The read.
        id: ReadId,
        /// Why.
        error: ReadError,
    },
    /// The outcome of `Input::ChangeMembership` `id`, exactly once: the final configuration
    /// once it is committed, or why the change was not made. A `NotLeader` error after the
    /// change started means this node lost leadership first; the change may still complete
    /// under the next leader (follow `Event::MembershipCommitted`).
    MembershipChangeDone {
        /// The request.
        id: RequestId,
        /// The committed configuration, or the error.
        result: Result<Membership, ProposalError>,
    },
    /// The outcome of `Input::TransferLeadership` `id`, exactly once: the new leader once
    /// this node learns the target won, or why the transfer did not happen.
    TransferDone {
        /// The request.
        id: RequestId,
        /// The new leader, or the error.
        result: Result<NodeId, TransferError>,
    },
    /// Stream a snapshot to `header.to`: write the header (`SnapshotHeader::encode`), then
    /// the bytes of the stored snapshot `header.meta` describes, then report
    /// `Input::SnapshotSent`. A newer stored snapshot may be sent instead, with its own
    /// meta in the header. The bytes never pass through the core.
    SendSnapshot {
        /// Who sends, to whom, in which term, and what (boxed: rare and large).
        header: Box<SnapshotHeader>,
    },
    /// Restore the state machine from the staged snapshot `meta` (reported by
    /// `Input::SnapshotReceived`), make it the node's latest snapshot, then report
    /// `Input::SnapshotInstalled`. The core applies nothing until then.
    InstallSnapshot {
        /// The snapshot to install.
        meta: Box<SnapshotMeta>,
    },
    /// Drop the staged snapshot `meta`: it is stale or not needed (the reason says which).
    DiscardSnapshot {
        /// The staged snapshot.
        meta: Box<SnapshotMeta>,
        /// Why it is not installed.
        reason: &'static str,
    },
    /// Snapshot the state machine once it has applied every entry handed out in
    /// `Action::Apply` before this action and nothing after (that is, exactly up to
    /// `meta.index`), store it durably under `meta`, then report `Input::SnapshotCreated`.
    CreateSnapshot {
        /// The snapshot's metadata: last index, its term and the membership (with node
        /// info) in force there.
        meta: Box<SnapshotMeta>,
    },
    /// Something user code may want to know (boxed: events are rare and some are large).
    Event(Box<Event>),
}

/// State to make durable. Apply in this order:
/// 1. `snapshot`, if set: record the snapshot point; drop stored entries up to its index,
///    and if the stored entry at its index is missing or has another term, drop them all;
/// 2. `entries`: drop stored entries with index `>=` `entries[0].index` (a conflicting
///    suffix), then append `entries` (they continue the log, or the snapshot point);
/// 3. `hard_state`, if set.
///
/// The snapshot goes first because an install followed by new appends in one drain
/// produces a single `Persist` whose entries start right after the snapshot point.
///
/// A store need not make a persist atomic: a crash may leave any prefix of these writes
/// (the snapshot point, some entries, not the hard state), and `Node::new` accepts every
/// such state. What it must never do is report `seq` durable before all of it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Persist {
    /// Report `Input::Persisted { seq }` once this and every earlier persist is durable.
    pub seq: u64,
    /// The new term, vote, commit hint and incarnation, if changed (always in a node's
    /// first persist: it carries the incarnation of that start).
    pub hard_state: Option<HardState>,
    /// Entries to store, consecutive; they replace any stored entries at the same indexes
    /// and everything after them. Shared with the log and the appends: keeping it (as an
    /// in-memory store may) copies nothing.
    pub entries: Entries,
    /// A snapshot point to record (after installing a snapshot, or to compact the log).
    pub snapshot: Option<Box<SnapshotMeta>>,
}

/// Why a proposal (or a membership change) was not, or will never be, applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize)]
#[non_exhaustive]
pub enum ProposalError {
    /// This node is not the leader; retry at `leader` (reachable at `info`) if known.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this node knows of.
        leader: Option<NodeId>,
        /// The leader's node info from the configuration, if known.
        info: Option<NodeInfo>,
    },
    /// The entry was appended, then a different entry was committed at its index: it will
    /// never be applied. Reported only once that is certain (an entry truncated from this
    /// node's log may still be committed by a later leader that holds it).
    #[error("superseded by a later leader at index {index}")]
    Superseded {
        /// Where the proposal had been appended.
        index: Index,
    },
    /// A leader transfer is in progress; retry once it finishes.
    #[error("leadership transfer in progress")]
    TransferInProgress,
    /// The node is paused or shutting down.
    #[error("node is paused")]
    Paused,
    /// The entry was appended, then this node installed a snapshot covering it before
    /// learning its fate; it may or may not have been committed.
    #[error("outcome unknown: index {index} was folded into an installed snapshot")]
    OutcomeUnknown {
        /// Where the proposal had been appended.
        index: Index,
    },
    /// A limit that protects the node is reached (see [`Limit`]); retry later. Nothing was
    /// appended.
    #[error("overloaded: {limit}")]
    Overloaded {
        /// Which limit.
        limit: Limit,
    },
    /// The command is larger than `Config::max_entry_bytes`; it was not appended.
    #[error("command of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The command's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A membership change is already in flight.
    #[error("membership change in progress")]
    ChangeInProgress,
    /// This leader has not yet committed an entry of its own term (its no-op commits within
    /// a round trip of its election), so it may not change the configuration yet (Raft
    /// thesis §4.1); retry shortly.
    #[error("leader has not yet committed an entry of its term")]
    NotCommittedInTerm,
    /// The membership change is not allowed; the message says why.
    #[error("invalid membership change: {0}")]
    InvalidChange(String),
}

/// The limits a leader enforces on proposals, each protecting one resource.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum Limit {
    /// `Config::max_uncommitted_entries`: the leader's memory and every follower's catch-up
    /// work while a quorum is slow or unreachable.
    #[error("too many uncommitted entries")]
    UncommittedEntries,
    /// `Config::max_unapplied_entries`: memory held for a state machine that applies more
    /// slowly than the cluster commits.
    #[error("too many committed entries not yet applied")]
    UnappliedEntries,
    /// `Config::max_persists_in_flight`: memory and latency while the disk is slower than
    /// the proposal rate.
    #[error("too many persists in flight")]
    PersistsInFlight,
}

/// Why a leader transfer did not happen.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize)]
#[non_exhaustive]
pub enum TransferError {
    /// This node is not the leader; ask `leader` if known.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this node knows of.
        leader: Option<NodeId>,
        /// The leader's node info, if known.
        info: Option<NodeInfo>,
    },
    /// The target is this node, which already leads.
    #[error("already the leader")]
    AlreadyLeader,
    /// No target was named and there is no other voter.
    #[error("no other voter to transfer to")]
    NoTarget,
    /// The target is not a voter of the configuration in effect.
    #[error("node {0} is not a voter")]
    NotAVoter(NodeId),
    /// Another transfer is in progress.
    #[error("another leader transfer is in progress")]
    InProgress,
    /// The target did not take over within an election timeout.
    #[error("the target did not take over in time")]
    TimedOut,
    /// This node stopped leading, but not to the target (for example another node won an
    /// election, or the leader lost its quorum).
    #[error("leadership was lost otherwise (leader: {leader:?})")]
    LeadershipLost {
        /// The leader known afterwards.
        leader: Option<NodeId>,
    },
}

/// Why a read was not served.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize)]
#[non_exhaustive]
pub enum ReadError {
    /// This node is not (or no longer) the leader; retry at `leader` (reachable at `info`)
    /// if known.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this node knows of.
        leader: Option<NodeId>,
        /// The leader's node info, if known.
        info: Option<NodeInfo>,
    },
    /// The leader did not answer a forwarded read, or this node did not catch up to the
    /// read index, in time; retry.
    #[error("read timed out")]
    Timeout,
    /// The node is shutting down (`Input::PrepareShutdown`). A node that is only paused
    /// still serves reads.
    #[error("node is shutting down")]
    ShuttingDown,
    /// `ReadConsistency::Lease` was asked for, but `Config::lease_reads` is off.
    #[error("lease reads are not enabled")]
    LeaseNotEnabled,
}

/// Requested changes to a membership, applied to `base`. Returns the new (incoming)
/// voter and learner sets, with node info, or a reason the change is invalid.
pub(crate) fn apply_change(
    base: &Membership,
    change: &MembershipChange,
    max_info_bytes: usize,
) -> Result<Membership, String> {
    let mut next = Membership {
        voters: base.voters.clone(),
        outgoing: Default::default(),
        learners: base.learners.clone(),
        info: base.info.clone(),
    };
    for id in &change.remove {
        if !next.voters.remove(id) && !next.learners.remove(id) {
            return Err(format!("node {id} is not a member"));
        }
    }
    for id in &change.demote {
        if !next.voters.remove(id) {
            return Err(format!("node {id} is not a voter"));
        }
        next.learners.insert(*id);
    }
    for id in &change.add_learners {
        if *id == 0 || next.contains(*id) {
            return Err(format!("node {id} is already a member or invalid"));
        }
        next.learners.insert(*id);
    }
    for id in &change.add_voters {
        if *id == 0 || next.voters.contains(id) {
            return Err(format!("node {id} is already a voter or invalid"));
        }
        next.learners.remove(id);
        next.voters.insert(*id);
    }
    if next.voters.is_empty() {
        return Err("the change would remove the last voter".into());
    }
    for (id, info) in &change.info {
        if !next.contains(*id) {
            return Err(format!("info given for node {id}, which is not a member of the new configuration"));
        }
        if info.as_bytes().len() > max_info_bytes {
            return Err(format!("info of node {id} is larger than {max_info_bytes} bytes"));
        }
        next.info.insert(*id, info.clone());
    }
    next.prune_info();
    if next.voters == base.voters && next.learners == base.learners && next.info == base.info {
        return Err("the change changes nothing".into());
    }
    Ok(next)
}
