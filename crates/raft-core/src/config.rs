//! Node configuration: timing, protocol options and limits.

use crate::types::NodeId;
use core::time::Duration;

/// How a node behaves. Marked non-exhaustive: new settings come with defaults. Build one with [`Config::new`] and adjust fields; [`Config::validate`]
/// (called by `Node::new`) rejects inconsistent settings.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// This node's id (never 0).
    pub id: NodeId,
    /// Seed of the generator that randomizes election timeouts. Give every node a different
    /// seed (for example derived from its id); the same seed and inputs replay exactly.
    pub rng_seed: u64,
    /// Lower bound of the randomized election timeout. Also the "leader lease": a follower
    /// that heard from a leader less than this long ago ignores vote requests (with
    /// `check_quorum`).
    pub election_timeout_min: Duration,
    /// Upper bound (exclusive) of the randomized election timeout.
    pub election_timeout_max: Duration,
    /// How often a leader sends heartbeats. Must be well below `election_timeout_min`.
    pub heartbeat_interval: Duration,
    /// Probe with PreVote before raising the term, so a node that was cut off cannot
    /// disrupt a healthy leader when it rejoins.
    pub pre_vote: bool,
    /// A leader that has not heard from a quorum within an election timeout steps down,
    /// and followers that hear from a leader ignore vote requests for an election timeout.
    /// A node that (re)starts grants no vote for a higher term for `election_timeout_min`:
    /// it cannot know whether it recently heard a leader.
    pub check_quorum: bool,
    /// Allow `ReadConsistency::Lease`: reads served from a leader lease without a heartbeat
    /// round. Requires `check_quorum`. The lease lasts `election_timeout_min - lease_clock_drift` from the start of the
    /// last heartbeat round a quorum acknowledged.
    pub lease_reads: bool,
    /// The most the clocks of two nodes may drift apart over one election timeout; the
    /// lease is shortened by this much.
    pub lease_clock_drift: Duration,
    /// Most entries in one `Append` message.
    pub max_entries_per_message: usize,
    /// Most payload bytes in one `Append` message (a single larger entry is still sent).
    pub max_bytes_per_message: usize,
    /// Most `Append` messages in flight to one follower before waiting for acknowledgements.
    pub max_inflight_messages: usize,
    /// How many role transitions the node remembers (see `Node::history`).
    pub history_capacity: usize,
    /// A leader reports a peer unreachable after this many heartbeat rounds without an answer.
    pub unreachable_after_missed_heartbeats: u32,
    /// Start paused: state is loaded, but the node neither campaigns nor accepts proposals
    /// until it receives `Input::Resume`.
    pub start_paused: bool,
    /// When to ask the runtime for a snapshot (`Action::CreateSnapshot`).
    pub snapshot_policy: SnapshotPolicy,
    /// Largest uncommitted tail (in entries) a leader accepts before rejecting proposals
    /// with `Overloaded { limit: UncommittedEntries }`. Bounds the leader's memory and
    /// every follower's catch-up work while a quorum is slow or cut off. Zero: no limit.
    pub max_uncommitted_entries: usize,
    /// Most committed entries a leader lets wait for its state machine before rejecting
    /// proposals with `Overloaded { limit: UnappliedEntries }`. Bounds memory when the
    /// state machine applies more slowly than the cluster commits. Zero: no limit.
    pub max_unapplied_entries: usize,
    /// Most `Action::Persist`s a leader lets wait for `Input::Persisted` before rejecting
    /// proposals with `Overloaded { limit: PersistsInFlight }`. Bounds memory and latency
    /// when the disk is slower than the proposal rate. Zero: no limit.
    pub max_persists_in_flight: usize,
    /// Largest command a proposal may carry; larger ones are rejected with
    /// `ProposalError::TooLarge` and never appended. A transport with a message size limit
    /// (one UDP datagram) sets this below it so that every entry can be sent.
    pub max_entry_bytes: usize,
    /// Largest node info a membership change may record per member.
    pub max_node_info_bytes: usize,
    /// How long a leader waits for a snapshot transfer to end (`Input::SnapshotSent` or
    /// the follower's answer) before it gives up on it and, if still needed, starts a new
    /// one. A lost or stalled stream therefore never stalls a follower for good.
    pub snapshot_transfer_timeout: Duration,
}

impl Config {
    /// Defaults suited to a LAN: 150–300 ms election timeout, 50 ms heartbeats, PreVote and
    /// CheckQuorum on, lease reads off.
    pub fn new(id: NodeId) -> Self {
        Config {
            id,
            rng_seed: id.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            election_timeout_min: Duration::from_millis(150),
            election_timeout_max: Duration::from_millis(300),
            heartbeat_interval: Duration::from_millis(50),
            pre_vote: true,
            check_quorum: true,
            lease_reads: false,
            lease_clock_drift: Duration::from_millis(15),
            max_entries_per_message: 1024,
            max_bytes_per_message: 1 << 20,
            max_inflight_messages: 64,
            history_capacity: 256,
            unreachable_after_missed_heartbeats: 3,
            start_paused: false,
            max_uncommitted_entries: 8192,
            max_unapplied_entries: 65_536,
            max_persists_in_flight: 1024,
            max_entry_bytes: 1 << 20,
            max_node_info_bytes: 4096,
            snapshot_transfer_timeout: Duration::from_secs(60),
            snapshot_policy: SnapshotPolicy { max_entries: 100_000, max_bytes: 256 << 20 },
        }
    }

    /// Checks the settings fit together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.id == 0 {
            return Err(ConfigError::Invalid("id must not be 0"));
        }
        if self.election_timeout_min.is_zero() || self.election_timeout_max <= self.election_timeout_min {
            return Err(ConfigError::Invalid("need 0 < election_timeout_min < election_timeout_max"));
        }
        if self.heartbeat_interval.is_zero() || self.heartbeat_interval >= self.election_timeout_min {
            return Err(ConfigError::Invalid("need 0 < heartbeat_interval < election_timeout_min"));
        }
        if self.lease_reads && !self.check_quorum {
            return Err(ConfigError::Invalid("lease_reads requires check_quorum"));
        }
        if self.lease_reads && self.lease_clock_drift >= self.election_timeout_min {
            return Err(ConfigError::Invalid("lease_clock_drift must be below election_timeout_min"));
        }
        if self.max_entries_per_message == 0 || self.max_inflight_messages == 0 {
            return Err(ConfigError::Invalid("max_entries_per_message and max_inflight_messages must be positive"));
        }
        if self.max_entry_bytes == 0 {
            return Err(ConfigError::Invalid("max_entry_bytes must be positive"));
        }
        if self.snapshot_transfer_timeout.is_zero() {
            return Err(ConfigError::Invalid("snapshot_transfer_timeout must be positive"));
        }
        Ok(())
    }
}

/// Why a node could not be created.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A setting is out of range; the message names it.
    #[error("invalid config: {0}")]
    Invalid(&'static str),
    /// The restored state is inconsistent; the message says how.
    #[error("invalid restored state: {0}")]
    Restore(String),
}

/// When the core asks for a snapshot: once either limit is reached since the last one.
/// A zero disables that limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// Applied entries since the last snapshot.
    pub max_entries: u64,
    /// Applied payload bytes (approximate) since the last snapshot.
    pub max_bytes: u64,
}
