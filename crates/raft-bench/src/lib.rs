//! Placeholder: the benchmark helper owns this crate.
