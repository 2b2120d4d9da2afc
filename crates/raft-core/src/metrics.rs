//! Counters of input the node dropped and work it did, for operators.

/// Counts of notable things; all only grow. Dropped input is never an error to the runtime:
/// it is counted here (and logged at debug level with the `tracing` feature).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Metrics {
    /// Messages failing structural validation (forged or corrupt).
    pub dropped_invalid: u64,
    /// Messages addressed to another node.
    pub dropped_misaddressed: u64,
    /// Messages from an older term (answered or not, they change nothing but the answer).
    pub dropped_stale_term: u64,
    /// Vote requests ignored because a leader was heard recently (CheckQuorum lease).
    pub dropped_in_lease: u64,
    /// Responses that do not fit the node's current state (late, duplicated, unknown peer).
    pub dropped_unexpected: u64,
    /// Appends that would overwrite committed entries (only a forged or buggy peer sends one).
    pub dropped_committed_conflict: u64,
    /// Runtime reports that do not fit (a `Persisted` beyond what was requested, ...).
    pub ignored_runtime_reports: u64,
    /// Messages the node produced for peers.
    pub messages_sent: u64,
    /// Entries the leader sent in `Append` messages.
    pub entries_sent: u64,
    /// `Persist` actions produced.
    pub persists: u64,
    /// Elections this node started (not counting pre-votes).
    pub elections_started: u64,
    /// Proposals rejected.
    pub proposals_rejected: u64,
    /// Snapshot transfers a leader gave up on after `Config::snapshot_transfer_timeout`.
    pub snapshot_transfers_timed_out: u64,
    /// `Input::PeerUnreachable` reports received while leader.
    pub unreachable_reports: u64,
    /// Times a leader found a peer refusing an entry the peer had acknowledged, and
    /// replicated to it again from what it still held. Non-zero means a node's storage
    /// lost durable writes (or, rarely, a refusal arrived after the peer's later success).
    pub match_index_regressions: u64,
}
