//! Plain identifiers and the core's notion of time.

use core::ops::{Add, Sub};
use core::time::Duration;
use serde::{Deserialize, Serialize};

/// Identifies a node of the cluster. Zero is reserved and never a valid node id.
pub type NodeId = u64;
/// A Raft term: a logical clock that only grows; at most one leader is elected per term.
pub type Term = u64;
/// A position in the replicated log. The first entry has index 1; index 0 means "nothing".
pub type Index = u64;

/// The highest term a node accepts from the network or from storage (2^63 − 1).
///
/// Terms grow by one per election, so no real cluster comes near it; what does is a forged
/// or corrupted message, and accepting one would leave the node unable to campaign
/// (`term + 1` would overflow). Messages with a larger term are dropped as invalid, and a
/// node whose term reached the bound refuses to campaign rather than overflow.
pub const MAX_TERM: Term = i64::MAX as u64;

/// The highest log index a node accepts from the network or from storage (2^63 − 1), for
/// the same reason as [`MAX_TERM`]: every index from outside can then be incremented.
pub const MAX_INDEX: Index = i64::MAX as u64;

/// A point in time as the runtime reports it, in nanoseconds since an arbitrary epoch.
///
/// raft-core never reads a clock: every call that needs the time receives an `Instant`.
/// The runtime must pass values that never go backwards; the epoch is its choice (a tokio
/// runtime uses the moment it started, the simulator uses zero).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Instant(u64);

impl Instant {
    /// The epoch.
    pub const ZERO: Instant = Instant(0);

    /// The instant `nanos` nanoseconds after the epoch.
    pub const fn from_nanos(nanos: u64) -> Self {
        Instant(nanos)
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Time elapsed since `earlier`, or zero if `earlier` is later than `self`.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(nanos))
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_sub(nanos))
    }
}

/// Chosen by the runtime for each proposal so it can match the result to its caller.
/// The core never interprets it and does not require uniqueness, but results are reported
/// per id, so a runtime normally keeps them unique.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ProposalId(pub u64);

/// Names a leader transfer or membership change request; returned with its outcome
/// (`Action::TransferDone`, `Action::MembershipChangeDone`). Chosen by the runtime.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RequestId(pub u64);

/// Chosen by the runtime for each read request so it can match the answer to its caller.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReadId(pub u64);

/// The role a node plays in its current term.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Follows a leader (or waits for one); learners are always followers.
    Follower,
    /// Probing with PreVote whether it could win an election, without raising its term.
    PreCandidate,
    /// Asking for votes in a new term.
    Candidate,
    /// Accepts proposals and replicates the log for its term.
    Leader,
}
