//! # raft-bench: raft-core measured side by side with tikv raft-rs
//!
//! Two drivers run the same workload on a three-node cluster living in one process:
//!
//! - [`CoreCluster`] drives three `raft_core::Node`s;
//! - [`RsCluster`] drives three `raft::RawNode<MemStorage>`s (the `raft` crate, tikv
//!   raft-rs) with the Ready loop from its documentation.
//!
//! Both are equivalent by construction (see [`Cluster`]): node 1 is elected once, then
//! the leader is handed proposals of 16-byte payloads in rounds and the cluster runs until
//! nothing is left to do. Persistence is synchronous and in memory, messages are handed
//! to the receiver directly in FIFO order, no clock ticks during the measurement, and the
//! leader counts an entry when it applies it.
//!
//! The crate also installs a counting global allocator ([`alloc`]) so the drivers can
//! report heap allocations per replicated entry.
//!
//! Entry points: `cargo bench -p raft-bench` (criterion) and
//! `cargo run -p raft-bench --release --bin compare` (plain lines and a CSV for
//! `scripts/plot_bench.py`).

pub mod alloc;
mod core_cluster;
pub mod floor;
pub mod report;
mod rs_cluster;

pub use core_cluster::CoreCluster;
pub use rs_cluster::RsCluster;

use std::time::{Duration, Instant as WallClock};

/// Size of every proposed command, in bytes.
pub const ENTRY_SIZE: usize = 16;

/// The round sizes of the throughput workload.
pub const ROUND_SIZES: [usize; 3] = [64, 256, 1024];

/// Both drivers compact their logs (core log and in-memory storage) once the leader has
/// applied this many entries since the last compaction, at the end of a round.
pub const COMPACT_EVERY: u64 = 100_000;

/// The payload of every proposal.
pub const PAYLOAD: [u8; ENTRY_SIZE] = *b"0123456789abcdef";

/// A three-node, single-process cluster with node 1 as the leader.
///
/// The contract both implementations keep, so their figures compare:
/// - `new` elects node 1 and commits its first (empty) entry before returning;
/// - a round proposes `n` fresh 16-byte commands on the leader (each payload is one heap
///   allocation made by the driver, as a client would), then runs the cluster until it is
///   quiescent: every node has handled everything it produced, every message was delivered;
/// - each pass of the run loop first lets every node (1, 2, 3 in turn) finish its pending
///   work (persist synchronously into an in-memory store, queue outgoing messages, apply
///   committed entries), then delivers every queued message in FIFO order;
/// - the leader counts a command when its state machine applies it.
pub trait Cluster {
    /// The library's name in reports.
    const NAME: &'static str;

    /// A fresh cluster whose leader is node 1 and has committed its first entry.
    fn new() -> Self
    where
        Self: Sized;

    /// Proposes one fresh command on the leader without running the cluster.
    fn propose(&mut self);

    /// Runs the cluster until it is quiescent (see the trait docs).
    fn run_until_quiet(&mut self);

    /// The leader's last log index.
    fn leader_last_index(&self) -> u64;

    /// What is measured on the leader.
    fn meter(&self) -> &LeaderMeter;

    /// What is measured on the leader, for updating.
    fn meter_mut(&mut self) -> &mut LeaderMeter;

    /// Proposes `n` commands on the leader and runs until quiescent. Panics if the leader
    /// did not apply all of them (the workload has no faults, so that would be a bug).
    fn round(&mut self, n: usize) {
        let before = self.meter().applied;
        for _ in 0..n {
            self.propose();
        }
        self.run_until_quiet();
        assert_eq!(self.meter().applied - before, n as u64, "the leader applies every proposal of the round");
    }

    /// Proposes one command and runs until quiescent; returns the time from just before
    /// the proposal to the moment the leader applied it.
    fn propose_one_timed(&mut self) -> Duration {
        let target = self.leader_last_index() + 1;
        self.meter_mut().apply_target = Some((target, None));
        let start = WallClock::now();
        self.propose();
        self.run_until_quiet();
        let (_, at) = self.meter_mut().apply_target.take().expect("set above");
        at.expect("the leader applied the proposal").duration_since(start)
    }

    /// Commands applied by the leader so far.
    fn leader_applied(&self) -> u64 {
        self.meter().applied
    }

    /// Starts or stops counting the allocations made inside the leader's library calls
    /// (step / propose / drain or ready / advance), excluding the driver's own work.
    fn count_leader_allocations(&mut self, on: bool) {
        self.meter_mut().counting = on;
    }

    /// Allocations counted inside the leader's library calls so far.
    fn leader_allocations(&self) -> u64 {
        self.meter().allocs
    }
}

/// What both drivers measure on the leader, in one place so that they count alike.
#[derive(Debug, Default)]
pub struct LeaderMeter {
    applied: u64,
    /// (index awaited on the leader, when it was applied).
    apply_target: Option<(u64, Option<WallClock>)>,
    counting: bool,
    allocs: u64,
}

impl LeaderMeter {
    /// Records that the leader applied `commands` commands in a batch ending at `last`.
    pub fn on_applied(&mut self, commands: u64, last: u64) {
        self.applied += commands;
        if let Some((target, at @ None)) = &mut self.apply_target {
            if last >= *target {
                *at = Some(WallClock::now());
            }
        }
    }

    /// Runs `f`, a library call on the leader, counting its allocations if counting is on.
    #[inline]
    pub fn measure<R>(&mut self, f: impl FnOnce() -> R) -> R {
        if !self.counting {
            return f();
        }
        let guard = alloc::Counting::start();
        let r = f();
        self.allocs += guard.so_far();
        r
    }
}
