//! Deterministic simulation of raft-core clusters.

pub mod linearizability;
