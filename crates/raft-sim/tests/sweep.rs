//! The seed sweep: a fixed set of seeds per fault profile (560 in all), each run checked
//! for every safety property, liveness after healing and linearizability. A failure
//! prints the seed, the property, the last events and the replay command.

use raft_sim::{run_seed, Profile};

/// Seeds per profile; 8 profiles make 560 runs.
const SEEDS: u64 = 70;

fn sweep(profile: Profile, first: u64) {
    let mut failures = Vec::new();
    let mut ops = 0;
    for seed in first..first + SEEDS {
        match run_seed(seed, profile) {
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
