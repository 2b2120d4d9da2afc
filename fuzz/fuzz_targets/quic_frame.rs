//! Fuzz target `quic_frame`: a QUIC stream's bytes (preamble, then frames) cut into reads;
//! see `raft_quic::fuzzing::quic_frame` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| raft_quic::fuzzing::quic_frame(data));
