//! The checks can fail: bugs planted in the simulated runtime (never in raft-core) are
//! caught, by the right property, within a bounded number of seeds.

use raft_sim::{run_config, Profile, SimConfig};

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
