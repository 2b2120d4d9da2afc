//! Fuzz target `udp_frame`: see `raft_udp::fuzzing::decode_frame` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = raft_udp::fuzzing::decode_frame(data);
});
