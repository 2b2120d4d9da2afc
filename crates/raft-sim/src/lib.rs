//! # raft-sim: deterministic simulation of raft-core clusters
//!
//! A run puts 3, 5 or 7 real [`raft_core::Node`]s on a simulated network, disk and clock,
//! lets a few clients use a replicated key-value store through them, and has a nemesis
//! inject faults: message loss, duplication, reordering and delay spikes; partitions of
//! every shape; crashes that lose (or tear) unsynced writes, and some that also lose
//! acknowledged entries (amnesia, where safety survives it); frozen nodes; clock drift;
//! `Pause` / `Resume`; leader transfers; membership changes; snapshots. Everything comes
//! from one `u64` seed: the same seed gives the same run, event for event
//! ([`Summary::trace_hash`]).
//!
//! After every step the [`checker`] verifies election safety, leader append-only, log
//! matching, leader completeness, state machine safety and that committed entries are
//! durable on a quorum; at the end the client history must be linearizable
//! ([`linearizability`]). The faulty phase is followed by a healed phase in which a leader
//! must appear within a bound, every client operation must be answered, every member must
//! catch up, and the idle cluster must go quiet (heartbeats, not a storm of messages).
//!
//! ```no_run
//! use raft_sim::{run_seed, Profile};
//! match run_seed(42, Profile::All) {
//!     Ok(summary) => println!("{} steps, {} ops checked", summary.steps, summary.ops_checked),
//!     Err(violation) => panic!("{violation}"),
//! }
//! ```

pub mod checker;
pub mod config;
pub mod fuzzing;
pub mod kv;
pub mod linearizability;
pub mod schedule;
pub mod sim;
pub mod storage;
pub mod timeline;
pub mod tla;
pub mod trace;

pub use config::{Bugs, FaultParams, Profile, SimConfig, TraceLevel};
pub use schedule::{FaultOp, PartitionKind};
pub use sim::{Sim, Summary, Violation};
pub use timeline::Timeline;

use rand::SeedableRng;
use rand_pcg::Pcg64;

/// Runs the seed's configuration and fault schedule (both drawn from `seed` within
/// `profile`) and checks every property.
pub fn run_seed(seed: u64, profile: Profile) -> Result<Summary, Violation> {
    run_config(SimConfig::from_seed(seed, profile)).0
}

/// Runs `cfg` with the fault schedule drawn from its seed; also returns the timeline if
/// `cfg.timeline` asked for one.
pub fn run_config(cfg: SimConfig) -> (Result<Summary, Violation>, Option<Timeline>) {
    let schedule = draw_schedule(&cfg);
    Sim::new(cfg, schedule).run()
}

/// The fault schedule a configuration's seed draws.
pub fn draw_schedule(cfg: &SimConfig) -> Vec<FaultOp> {
    let mut rng = Pcg64::seed_from_u64(cfg.seed ^ 0x00C0_FFEE_D00D_F00D);
    let mut aux = Pcg64::seed_from_u64(cfg.seed ^ 0x0A0C_5EED_0000_0002);
    schedule::draw(&mut rng, &mut aux, &cfg.faults, cfg.fault_time)
}

/// Runs a cluster through an arbitrary fault schedule (for fuzzing): `schedule` replaces
/// the one the seed would draw. Network fault rates still come from `cfg.faults`.
pub fn run_schedule(cfg: SimConfig, schedule: &[FaultOp]) -> Result<Summary, Violation> {
    Sim::new(cfg, schedule.to_vec()).run().0
}
