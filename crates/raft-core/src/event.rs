//! Events for user code, and the bounded history of role transitions.

use crate::membership::Membership;
use crate::types::{Index, Instant, NodeId, RequestId, Role, Term};
use serde::Serialize;
use std::collections::{BTreeSet, VecDeque};

/// Why a node changed role (or, for pause and resume, changed mode in place).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum TransitionReason {
    /// The node restarted from storage.
    Restarted,
    /// No leader was heard within the election timeout.
    ElectionTimeout,
    /// A pre-vote quorum answered; the real election starts.
    PreVoteWon {
        /// Who granted the pre-vote (including this node).
        votes: BTreeSet<NodeId>,
    },
    /// Won the election with these votes (including its own).
    WonElection {
        /// Who granted the vote.
        votes: BTreeSet<NodeId>,
    },
    /// A quorum rejected the vote or, for a pre-candidate, the pre-vote.
    LostElection,
    /// A message with a higher term arrived from `from`.
    HigherTerm {
        /// The sender.
        from: NodeId,
    },
    /// Another node won the election for the current term.
    LeaderDiscovered {
        /// The new leader.
        leader: NodeId,
    },
    /// The leader asked this node to take over (`TimeoutNow`).
    TransferRequested {
        /// The old leader.
        from: NodeId,
    },
    /// This leader handed leadership to `to`.
    TransferredLeadership {
        /// The successor.
        to: NodeId,
    },
    /// The leader did not hear from a quorum within an election timeout.
    CheckQuorumLost,
    /// The node was paused.
    Paused,
    /// The node was resumed.
    Resumed,
    /// The node is no longer a voter of the committed membership.
    RemovedFromCluster,
}

/// One change of role, as kept in the history ring and reported in `Event::RoleChanged`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Transition {
    /// When it happened (the `now` of the step that caused it).
    pub at: Instant,
    /// The term after the transition.
    pub term: Term,
    /// The role before.
    pub from: Role,
    /// The role after.
    pub to: Role,
    /// Why.
    pub reason: TransitionReason,
    /// The leader known after the transition.
    pub leader: Option<NodeId>,
}

/// Where a node learned its configuration from without seeing its entries appended.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum MembershipSource {
    /// The node (re)started from storage.
    Restart,
    /// The node installed a snapshot from the leader.
    Snapshot,
}

/// A notification for user code. Events never require an answer.
///
/// Membership: user code that tracks the configuration (to rebalance work, say) needs
/// `MembershipLoaded` (every start and every snapshot install), `MembershipProposed`
/// and `MembershipCommitted`; together they never miss a configuration this node acts on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum Event {
    /// The role changed (also recorded in `Node::history`).
    RoleChanged(Transition),
    /// The known leader changed (`None`: no leader known).
    LeaderChanged {
        /// The leader now known.
        leader: Option<NodeId>,
        /// Its term.
        term: Term,
    },
    /// (Leader's view) `peer` missed `Config::unreachable_after_missed_heartbeats` rounds.
    PeerUnreachable {
        /// The peer.
        peer: NodeId,
    },
    /// (Leader's view) `peer` answered again after being reported unreachable.
    PeerReachable {
        /// The peer.
        peer: NodeId,
    },
    /// (Leader's view) fewer than a quorum of voters are reachable.
    QuorumLost,
    /// (Leader's view) a quorum is reachable again.
    QuorumRegained,
    /// A leader transfer to `target` was abandoned (timeout, or the target is gone).
    TransferAborted {
        /// The intended successor.
        target: NodeId,
    },
    /// A leader transfer could not start.
    TransferRejected {
        /// The intended successor, if one was named.
        target: Option<NodeId>,
        /// Why.
        reason: String,
    },
    /// After `Input::PrepareShutdown`: this node is no longer leader; stopping it now
    /// does not cost the cluster its leader.
    ReadyToStop,
    /// The configuration this node acts on was loaded whole: at every start (from storage)
    /// and after every snapshot install. Emitted even when nothing changed, so user code
    /// can rebuild its view from this event alone.
    MembershipLoaded {
        /// Restart or snapshot install.
        source: MembershipSource,
        /// The latest committed configuration and its index.
        committed: Membership,
        /// The index of `committed`'s entry (or of the snapshot that holds it).
        committed_index: Index,
        /// The configuration in effect (the latest in the log; may be uncommitted).
        latest: Membership,
    },
    /// (Leader's view) the leader appended a membership entry to its log; it is in effect
    /// on the leader now. Followers learn configurations through `MembershipCommitted`
    /// (and `MembershipLoaded`); `Node::membership` shows the one in effect on any node.
    MembershipProposed {
        /// Where it was appended.
        index: Index,
        /// The configuration now in effect.
        membership: Membership,
    },
    /// A membership entry was committed.
    MembershipCommitted {
        /// Its index.
        index: Index,
        /// The previous committed configuration.
        old: Membership,
        /// The configuration now committed.
        new: Membership,
    },
    /// This node is not a member of the committed configuration any more.
    RemovedFromCluster,
    /// A requested membership change is complete (`C_new` committed). The requester also
    /// gets `Action::MembershipChangeDone`.
    MembershipChangeFinished {
        /// The request.
        id: RequestId,
        /// The final configuration.
        membership: Membership,
    },
    /// A requested membership change was not started (the error says why), or this node
    /// lost leadership before finishing it (`NotLeader`). In the second case the change's
    /// entries may still be committed, and the next leader completes a committed joint
    /// configuration: follow `MembershipCommitted` for the configuration in force.
    MembershipChangeRejected {
        /// The request.
        id: RequestId,
        /// Why.
        error: crate::io::ProposalError,
    },
    /// The runtime reported something the contract does not allow (a snapshot created at
    /// an index other than the one asked for, a persist sequence number never issued, ...).
    /// The report was ignored and counted in `Metrics::ignored_runtime_reports`; it points
    /// at a runtime bug.
    ReportRejected {
        /// The input, by name.
        report: &'static str,
        /// What was wrong.
        detail: String,
    },
}

/// A bounded ring of the most recent transitions.
#[derive(Clone, Debug)]
pub(crate) struct History {
    ring: VecDeque<Transition>,
    capacity: usize,
}

impl History {
    pub(crate) fn new(capacity: usize) -> Self {
        History { ring: VecDeque::with_capacity(capacity.min(1024)), capacity }
    }

    pub(crate) fn record(&mut self, t: Transition) {
        if self.capacity == 0 {
            return;
        }
        if self.ring.len() == self.capacity {
            self.ring.pop_front();
        }
        self.ring.push_back(t);
    }

    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &Transition> + ExactSizeIterator {
        self.ring.iter()
    }
}
