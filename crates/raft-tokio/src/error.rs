//! The typed errors of the handle's calls.

use raft_core::{NodeId, NodeInfo, ProposalError, TransferError};

/// Why a proposal was not applied. Every variant is final for that call: the command was
/// not applied, except with `Stopped` and `Rejected(OutcomeUnknown)`, where it may have been.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProposeError {
    /// This node is not the leader; retry at `leader` (reachable at `info`) if known.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this node knows of.
        leader: Option<NodeId>,
        /// The leader's node info from the configuration, if known.
        info: Option<NodeInfo>,
    },
    /// The core rejected it for another reason (overloaded, paused, superseded, ...).
    #[error(transparent)]
    Rejected(ProposalError),
    /// The node stopped before the outcome was known; the command may or may not be applied.
    #[error("the node stopped")]
    Stopped,
}

impl From<ProposalError> for ProposeError {
    fn from(e: ProposalError) -> Self {
        match e {
            ProposalError::NotLeader { leader, info } => ProposeError::NotLeader { leader, info },
            other => ProposeError::Rejected(other),
        }
    }
}

/// Why a read was not served.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// This node is not the leader (for a read that must be served by one); retry at
    /// `leader` if known.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this node knows of.
        leader: Option<NodeId>,
        /// The leader's node info, if known.
        info: Option<NodeInfo>,
    },
    /// The core rejected it for another reason (timeout, shutting down, lease reads off).
    #[error(transparent)]
    Rejected(raft_core::ReadError),
    /// The node stopped before serving it.
    #[error("the node stopped")]
    Stopped,
}

impl From<raft_core::ReadError> for ReadError {
    fn from(e: raft_core::ReadError) -> Self {
        match e {
            raft_core::ReadError::NotLeader { leader, info } => ReadError::NotLeader { leader, info },
            other => ReadError::Rejected(other),
        }
    }
}

/// Why a membership change did not complete.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChangeError {
    /// This node is not (or stopped being) the leader. If it stopped being one after the
    /// change started, the change may still complete under the next leader.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this node knows of.
        leader: Option<NodeId>,
        /// The leader's node info, if known.
        info: Option<NodeInfo>,
    },
    /// The core refused the change (invalid, another in progress, ...).
    #[error(transparent)]
    Rejected(ProposalError),
    /// The node stopped before the outcome was known.
    #[error("the node stopped")]
    Stopped,
}

impl From<ProposalError> for ChangeError {
    fn from(e: ProposalError) -> Self {
        match e {
            ProposalError::NotLeader { leader, info } => ChangeError::NotLeader { leader, info },
            other => ChangeError::Rejected(other),
        }
    }
}

/// Why a leader transfer did not happen.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransferLeaderError {
    /// The core refused it or it failed (not the leader, timed out, ...).
    #[error(transparent)]
    Rejected(TransferError),
    /// The node stopped before the outcome was known.
    #[error("the node stopped")]
    Stopped,
}

/// The node has stopped (shut down, killed, or stopped by a fatal storage error); the
/// call could not be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the node stopped")]
pub struct Stopped;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Reading or reconciling the stores failed.
    #[error("storage: {0}")]
    Storage(#[from] raft_storage::StorageError),
    /// The state machine could not be restored from the latest snapshot.
    #[error("restoring the state machine from the snapshot at index {index} failed: {error}")]
    Restore {
        /// The snapshot's index.
        index: raft_core::Index,
        /// What failed.
        error: std::io::Error,
    },
    /// The core refused the configuration or the restored state.
    #[error(transparent)]
    Config(#[from] raft_core::ConfigError),
    /// The transport cannot carry the messages this configuration allows
    /// ([`crate::Transport::fit_config`]); the message says what to change.
    #[error("the transport refused the configuration: {0}")]
    Transport(String),
}

/// How a shutdown ended when it was not clean.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShutdownError {
    /// The node had already stopped (a fatal storage error says why in the logs).
    #[error("the node had already stopped")]
    AlreadyStopped,
    /// The node stopped because of a fatal error (a failed fsync, a failed snapshot
    /// install); what was acknowledged before it is durable, nothing after.
    #[error("the node stopped on a fatal error: {0}")]
    Fatal(String),
}
