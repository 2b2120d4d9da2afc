//! The floor program: nanoseconds per entry of the unavoidable data movement of the
//! benchmark workload (see `raft_bench::floor`), at each round size.
//!
//! ```text
//! cargo run -p raft-bench --release --bin floor -- [--secs S] [--trials N]
//! ```

use raft_bench::{floor, ROUND_SIZES};
use std::time::Duration;

fn main() {
    let (mut secs, mut trials) = (3.0_f64, 5_usize);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next();
        let parsed = match (flag.as_str(), value.as_deref()) {
            ("--secs", Some(v)) => v.parse().map(|v| secs = v).map_err(|e| e.to_string()),
            ("--trials", Some(v)) => v.parse().map(|v| trials = v).map_err(|e| e.to_string()),
            _ => Err("usage: floor [--secs S] [--trials N]".to_owned()),
        };
        if let Err(e) = parsed {
            eprintln!("{flag}: {e}");
            std::process::exit(2);
        }
    }
    println!("machine {}", raft_bench::report::machine());
    for round in ROUND_SIZES {
        let ns = floor::ns_per_entry_median(round, Duration::from_secs_f64(secs), trials);
        println!("floor round={round} {ns:.1} ns/entry ({:.0} entries/s, median of {trials} trials)", 1e9 / ns);
    }
}
