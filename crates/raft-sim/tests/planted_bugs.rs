//! The checks can fail: bugs planted in the simulated runtime (never in raft-core) are
//! caught, by the right property, within a bounded number of seeds.

use raft_sim::{run_config, run_schedule, FaultOp, PartitionKind, Profile, SimConfig};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

/// Runs seeds `0..limit` of `profile` with `bug` planted; returns the first violated
/// property and its seed.
fn first_failure(profile: Profile, bug: &str, limit: u64) -> Option<(u64, &'static str)> {
    (0..limit).find_map(|seed| {
        let mut cfg = SimConfig::from_seed(seed, profile);
        cfg.plant(bug).expect("known bug");
        run_config(cfg).0.err().map(|v| {
            assert!(v.replay.contains(bug), "the replay command must plant the bug: {}", v.replay);
            (v.seed, v.property)
        })
    })
}

#[test]
fn acknowledging_before_persisting_is_caught() {
    let found = first_failure(Profile::Crash, "ack-before-persist", 10);
    assert_eq!(found.map(|f| f.1), Some("committed entries are durable"), "{found:?}");
}

#[test]
fn forged_vote_grants_elect_two_leaders() {
    let found = first_failure(Profile::Partition, "forge-vote-grants", 40);
    assert_eq!(found.map(|f| f.1), Some("election safety"), "{found:?}");
}

#[test]
fn reads_that_bypass_read_index_are_not_linearizable() {
    let found = first_failure(Profile::Partition, "stale-reads", 20);
    assert_eq!(found.map(|f| f.1), Some("linearizability"), "{found:?}");
}

/// An election storm: the leader is cut off, and while the others elect a new one, voters
/// crash and come back within milliseconds, many times over. The drawn schedules restart a
/// node 50 ms or more after a crash, by which time the election it voted in is decided, so
/// they never give a forgotten vote a second use.
fn election_storm(seed: u64) -> Vec<FaultOp> {
    let mut rng = Pcg64::seed_from_u64(seed);
    let mut ops = Vec::new();
    for _ in 0..20 {
        ops.push(FaultOp::Wait { ms: rng.gen_range(200..400) });
        ops.push(FaultOp::Partition { kind: PartitionKind::IsolateLeader, pick: 0, ms: 1000 });
        ops.push(FaultOp::Wait { ms: rng.gen_range(140..260) });
        for _ in 0..6 {
            ops.push(FaultOp::Crash { node: rng.gen(), down_ms: rng.gen_range(1..=15), torn: false });
            ops.push(FaultOp::Wait { ms: rng.gen_range(1..=20) });
        }
    }
    ops
}

/// Three nodes on a slow network (1-40 ms), so that vote requests are still in flight
/// when a voter comes back.
fn storm_config(seed: u64) -> SimConfig {
    let mut cfg = SimConfig::from_seed(seed, Profile::Network);
    cfg.nodes = 3;
    cfg.faults.delay = (1_000_000, 40_000_000);
    cfg.faults.loss = 0.0;
    cfg
}

#[test]
fn forgetting_the_vote_on_restart_elects_two_leaders() {
    let found = (0..60).find_map(|seed| {
        let mut cfg = storm_config(seed);
        cfg.plant("forget-vote-on-restart").expect("known bug");
        run_schedule(cfg, &election_storm(seed)).err().map(|v| (v.seed, v.property))
    });
    assert_eq!(found.map(|f| f.1), Some("election safety"), "{found:?}");
}

#[test]
fn the_election_storm_alone_breaks_nothing() {
    // The control for the test above: the same schedules without the bug pass (0 of 400 fail).
    for seed in 0..60 {
        if let Err(v) = run_schedule(storm_config(seed), &election_storm(seed)) {
            panic!("{v}");
        }
    }
}

/// A runtime that restores a snapshot the core told it to discard (a stale or already
/// covered stream) moves its state machine backwards.
#[test]
fn installing_a_discarded_snapshot_is_caught() {
    let found = first_failure(Profile::Churn, "install-discarded", 40);
    assert_eq!(found.map(|f| f.1), Some("snapshot install contract"), "{found:?}");
}

/// User code that does not hear the configuration a node restarted with (as if
/// `MembershipLoaded` were not emitted) no longer knows the members it must serve.
#[test]
fn a_missed_membership_event_on_restart_is_caught() {
    let found = first_failure(Profile::Crash, "skip-restart-membership", 5);
    assert_eq!(found.map(|f| f.1), Some("membership events"), "{found:?}");
}

/// Snapshot streams are lost without a report in these runs; a leader that never gives up
/// on such a transfer leaves its follower behind for good (an install that never
/// completes), which the end-of-run replication check catches.
#[test]
fn a_snapshot_transfer_that_never_times_out_is_caught() {
    let found = first_failure(Profile::Churn, "no-snapshot-timeout", 40);
    assert_eq!(found.map(|f| f.1), Some("liveness (replication)"), "{found:?}");
}
