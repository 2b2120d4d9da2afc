//! Fuzz target `cluster_schedule`: see `raft_sim::fuzzing::cluster_schedule` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| raft_sim::fuzzing::cluster_schedule(data));
