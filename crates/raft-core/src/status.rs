//! A point-in-time view of a node for operators and user code.

use crate::membership::{Membership, NodeInfo};
use crate::types::{Index, Instant, NodeId, Role, Term};
use std::collections::BTreeMap;

/// What a node knows about itself and (as leader) its peers.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Status {
    /// This node.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its current term.
    pub term: Term,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// Highest index known committed.
    pub commit_index: Index,
    /// Highest index the runtime reported applied.
    pub applied_index: Index,
    /// Index of the last log entry.
    pub last_log_index: Index,
    /// Highest index known durable in the local log.
    pub durable_index: Index,
    /// Index covered by the latest snapshot.
    pub snapshot_index: Index,
    /// The membership in effect (the latest in the log), with every member's node info.
    pub membership: Membership,
    /// The leader's node info from that membership, if the leader is known and has some.
    pub leader_info: Option<NodeInfo>,
    /// Per-peer replication state; filled on the leader only.
    pub progress: BTreeMap<NodeId, PeerStatus>,
    /// Paused (or shutting down).
    pub paused: bool,
    /// A leader transfer target, while one is in progress.
    pub transferring_to: Option<NodeId>,
}

/// The leader's view of one peer.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct PeerStatus {
    /// Highest index known replicated (durably) on the peer.
    pub match_index: Index,
    /// Next index to send.
    pub next_index: Index,
    /// Append messages in flight.
    pub inflight: usize,
    /// Replication mode: "probe", "replicate" or "snapshot".
    pub state: &'static str,
    /// When the peer last answered this leader.
    pub last_contact: Option<Instant>,
    /// Whether the peer is a learner.
    pub learner: bool,
    /// Whether the leader currently considers it unreachable.
    pub unreachable: bool,
}
