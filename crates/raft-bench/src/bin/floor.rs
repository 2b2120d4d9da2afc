//! The floor program: nanoseconds per entry of the unavoidable data movement of the
//! benchmark workload (see `raft_bench::floor`), at each round size.
//!
//! ```text
//! cargo run -p raft-bench --release --bin floor -- [--secs S] [--trials N]
//! ```

use clap::Parser;
use raft_bench::{floor, ROUND_SIZES};
use std::time::Duration;

/// Nanoseconds per entry of the benchmark workload's unavoidable data movement.
#[derive(Parser)]
#[command(name = "floor")]
struct Args {
    /// Measuring time per round size, in seconds (split into `--trials` trials; the median
    /// is reported).
    #[arg(long, default_value_t = 3.0)]
    secs: f64,
    /// Trials per round size.
    #[arg(long, default_value_t = 5)]
    trials: usize,
}

fn main() {
    let Args { secs, trials } = Args::parse();
    println!("machine {}", raft_bench::report::machine());
    for round in ROUND_SIZES {
        let ns = floor::ns_per_entry_median(round, Duration::from_secs_f64(secs), trials);
        println!("floor round={round} {ns:.1} ns/entry ({:.0} entries/s, median of {trials} trials)", 1e9 / ns);
    }
}
