//! Fuzz target `decode_message`: see `raft_sim::fuzzing::decode_message` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| raft_sim::fuzzing::decode_message(data));
