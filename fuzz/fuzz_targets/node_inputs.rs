//! Fuzz target `node_inputs`: see `raft_sim::fuzzing::node_inputs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| raft_sim::fuzzing::node_inputs(data));
