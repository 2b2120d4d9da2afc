//! The seed sweep: a fixed set of seeds per fault profile, plus one sweep of every fault
//! with CheckQuorum off (630 runs in all), each run checked
//! for every safety property, liveness after healing and linearizability. A failure
//! prints the seed, the property, the last events and the replay command.

use raft_sim::{run_config, Profile, SimConfig};

/// Seeds per sweep; 9 sweeps make 630 runs.
const SEEDS: u64 = 70;

fn sweep(profile: Profile, first: u64) {
    sweep_with(profile, first, |_| {});
}

fn sweep_with(profile: Profile, first: u64, tweak: impl Fn(&mut SimConfig)) {
    let mut failures = Vec::new();
    let mut ops = 0;
    for seed in first..first + SEEDS {
        let mut cfg = SimConfig::from_seed(seed, profile);
        tweak(&mut cfg);
        match run_config(cfg).0 {
            Ok(s) => ops += s.ops_checked,
            Err(v) => failures.push(v),
        }
    }
    if let Some(v) = failures.first() {
        let seeds: Vec<String> = failures.iter().map(|v| format!("{} ({})", v.seed, v.property)).collect();
        panic!(
            "{} of {SEEDS} seeds failed in profile {profile}: {}\n\nfirst failure:\n{v}",
            failures.len(),
            seeds.join(", ")
        );
    }
    assert!(ops > SEEDS * 100, "profile {profile}: only {ops} client operations checked");
}

#[test]
fn no_faults() {
    sweep(Profile::None, 0);
}

#[test]
fn network_faults() {
    sweep(Profile::Network, 1_000);
}

#[test]
fn partitions() {
    sweep(Profile::Partition, 2_000);
}

#[test]
fn crashes_and_torn_writes() {
    sweep(Profile::Crash, 3_000);
}

#[test]
fn pauses_freezes_and_transfers() {
    sweep(Profile::Pause, 4_000);
}

#[test]
fn clock_drift_with_lease_reads() {
    sweep(Profile::Drift, 5_000);
}

#[test]
fn membership_churn_and_snapshots() {
    sweep(Profile::Churn, 6_000);
}

#[test]
fn everything() {
    sweep(Profile::All, 7_000);
}

/// CheckQuorum is optional in raft-core; without it (and so without lease reads and the
/// restart vote guard) every property must still hold.
#[test]
fn everything_without_check_quorum() {
    sweep_with(Profile::All, 8_000, |cfg| cfg.check_quorum = false);
}
