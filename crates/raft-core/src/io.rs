//! The node's boundary: the inputs a runtime feeds in and the actions it must carry out.

use crate::batch::Entries;
use crate::event::Event;
use crate::log::{HardState, SnapshotMeta};
use crate::membership::Membership;
use crate::message::Message;
use crate::types::{Index, NodeId, ProposalId, ReadId};
use bytes::Bytes;

/// Something that happened to the node. Passed to `Node::step` with the current time.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// A linearizable read. Answered with `Action::ReadReady` once the local state machine
    /// has applied everything the read must observe, or `Action::ReadRejected`.
    Read {
        /// Returned with the answer.
        id: ReadId,
        /// Whether a follower may serve it by asking the leader for a read index.
        policy: ReadPolicy,
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
    /// Hand leadership to `to` (or, with `None`, to the most up-to-date voter).
    TransferLeadership {
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
    /// Change the membership (joint consensus). Answered with
    /// `Event::MembershipChangeFinished` or `Event::MembershipChangeRejected` for `id`.
    ChangeMembership {
        /// Returned with the answer.
        id: ProposalId,
        /// The change (boxed to keep `Input` small).
        change: Box<MembershipChange>,
    },
    /// The state machine has a snapshot covering everything up to `index` (which the
    /// runtime reported applied); the log before it may be compacted.
    SnapshotCreated {
        /// The last index the snapshot covers.
        index: Index,
    },
    /// The runtime finished receiving and installing snapshot `meta` sent by the leader
    /// (or failed to, with `success: false`, in which case the state machine must be as it
    /// was before). The core applies nothing while an install is in progress.
    SnapshotInstalled {
        /// The snapshot received (boxed to keep `Input` small).
        meta: Box<SnapshotMeta>,
        /// Whether the state machine now reflects it (and it is durable).
        success: bool,
    },
    /// The runtime's transfer of a snapshot to `peer` ended (it arrived, or failed).
    SnapshotSent {
        /// The receiver.
        peer: NodeId,
        /// The snapshot's last index.
        index: Index,
        /// False if the transfer failed; the leader will retry later.
        success: bool,
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
}

/// Who may serve a read.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ReadPolicy {
    /// Only the leader; a follower rejects with the leader's id.
    LeaderOnly,
    /// A follower may ask the leader for a read index and serve it locally.
    AllowFollower,
}

/// Something the runtime must do. Actions are to be carried out in the order they are
/// returned by `Node::drain_actions`; see the crate documentation for the full contract.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "every action must be carried out"]
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
    /// Stream the latest snapshot (described by `meta`) to `peer`, then report
    /// `Input::SnapshotSent`. The bytes never pass through the core.
    SendSnapshot {
        /// The receiver.
        peer: NodeId,
        /// The snapshot to send.
        meta: Box<SnapshotMeta>,
    },
    /// Discard the state machine and restore it from the snapshot `meta` being received
    /// from `leader`; report `Input::SnapshotInstalled` once it is durable.
    InstallSnapshot {
        /// The snapshot to install.
        meta: Box<SnapshotMeta>,
        /// Who sends it.
        leader: NodeId,
    },
    /// Take a snapshot of the state machine at its current applied index (at least
    /// `index`), store it durably, then report `Input::SnapshotCreated` with its index.
    CreateSnapshot {
        /// The applied index when the policy triggered.
        index: Index,
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

/// Why a proposal was not (or will never be) applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProposalError {
    /// This node is not the leader; retry at `leader` if known.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this node knows of.
        leader: Option<NodeId>,
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
    /// Too many uncommitted entries; retry later.
    #[error("too many uncommitted entries")]
    Overloaded,
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

/// Why a read was not served.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// This node is not (or no longer) the leader; retry at `leader` if known.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this node knows of.
        leader: Option<NodeId>,
    },
    /// The leader did not answer a forwarded read in time; retry.
    #[error("read index request timed out")]
    Timeout,
    /// The node is paused or shutting down.
    #[error("node is paused")]
    Paused,
}

/// Requested changes to a membership, applied to `base`. Returns the new (incoming)
/// voter and learner sets or a reason the change is invalid.
pub(crate) fn apply_change(base: &Membership, change: &MembershipChange) -> Result<Membership, String> {
    let mut next =
        Membership { voters: base.voters.clone(), outgoing: Default::default(), learners: base.learners.clone() };
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
    if next.voters == base.voters && next.learners == base.learners {
        return Err("the change changes nothing".into());
    }
    Ok(next)
}
