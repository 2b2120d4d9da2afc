//! Quick side-by-side figures of raft-core and raft-rs as plain lines.
//!
//! ```text
//! cargo run -p raft-bench --release --bin compare -- [--secs S] [--trials N]
//!     [--latency-samples N] [--csv PATH] [--only core|rs [--rounds N] [--round SIZE]]
//! ```
//!
//! `--secs` is the measuring time per library and round size (split into `--trials`
//! alternating trials; the median is reported). The floor program (`raft_bench::floor`,
//! no protocol, only the unavoidable data movement) is measured the same way at each round
//! size, after both libraries, and raft-core's cost per entry is reported as a multiple of
//! it. `--csv` also writes the figures as
//! `metric,library,round,value` rows for `scripts/plot_bench.py`. `--only` runs one
//! library's workload alone, for profilers: with `--rounds N` a fixed amount of work
//! (N rounds per round size, or of `--round SIZE` only, then the latency samples) instead
//! of a fixed time, so that instruction counts (callgrind) compare between runs.

use clap::{Parser, ValueEnum};
use raft_bench::report::{self, Allocs, Latency};
use raft_bench::{floor, Cluster, CoreCluster, RsCluster, ROUND_SIZES};
use std::time::Duration;

/// Side-by-side figures of raft-core and raft-rs (throughput, allocations, the floor, and
/// single-proposal latency).
#[derive(Parser)]
#[command(name = "compare")]
struct Args {
    /// Measuring time per library and round size, in seconds (split into `--trials`
    /// alternating trials; the median is reported).
    #[arg(long, default_value_t = 3.0)]
    secs: f64,
    /// Alternating trials per library and round size.
    #[arg(long, default_value_t = 5)]
    trials: usize,
    /// Single proposals timed for the latency figures (0: none).
    #[arg(long, default_value_t = 20_000)]
    latency_samples: usize,
    /// Also write the figures as `metric,library,round,value` rows here.
    #[arg(long)]
    csv: Option<String>,
    /// Run one library's workload alone (for profilers).
    #[arg(long, value_enum)]
    only: Option<Only>,
    /// With `--only`: this many rounds per round size instead of a fixed time, so that
    /// instruction counts compare between runs.
    #[arg(long, requires = "only")]
    rounds: Option<usize>,
    /// With `--only`: this round size only.
    #[arg(long, requires = "only")]
    round: Option<usize>,
}

/// The library `--only` runs.
#[derive(Copy, Clone, ValueEnum)]
enum Only {
    /// raft-core.
    Core,
    /// tikv raft-rs.
    Rs,
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// One library alone, for profilers: the throughput rounds, then single proposals.
fn run_alone<C: Cluster>(args: &Args) {
    let mut c = C::new();
    let sizes: Vec<usize> = args.round.map_or(ROUND_SIZES.to_vec(), |r| vec![r]);
    for round in sizes {
        if let Some(rounds) = args.rounds {
            for _ in 0..rounds {
                c.round(round);
            }
            println!("ran {rounds} rounds of {round} on {}", C::NAME);
            continue;
        }
        let eps = report::throughput(&mut c, round, Duration::from_secs_f64(args.secs));
        println!("throughput round={round} {}={eps:.0} entries/s", C::NAME);
    }
    if args.latency_samples == 0 {
        return;
    }
    let l = report::latency(&mut c, 100, args.latency_samples);
    println!("latency {} p50={:.3}us p99={:.3}us", C::NAME, us(l.p50), us(l.p99));
}

fn main() {
    let args = Args::parse();
    match args.only {
        Some(Only::Core) => return run_alone::<CoreCluster>(&args),
        Some(Only::Rs) => return run_alone::<RsCluster>(&args),
        None => {}
    }
    let mut csv = vec![report::CSV_HEADER.to_owned()];
    println!("machine {}", report::machine());
    println!(
        "workload: 3 nodes in one process, {}-byte entries, in-memory synchronous persist, FIFO delivery",
        raft_bench::ENTRY_SIZE
    );

    let (mut core, mut rs) = (CoreCluster::new(), RsCluster::new());
    let time = Duration::from_secs_f64(args.secs);
    // Warm both up (allocator, caches, log growth) before measuring.
    let _ = report::throughput_pair(&mut core, &mut rs, 256, Duration::from_millis(400), 2);
    let mut core_eps = Vec::new();
    for round in ROUND_SIZES {
        let (c, r) = report::throughput_pair(&mut core, &mut rs, round, time, args.trials);
        println!(
            "throughput round={round} raft-core={c:.0} raft-rs={r:.0} entries/s ratio={:.2} (median of {} trials)",
            c / r,
            args.trials
        );
        csv.push(report::csv_row("entries_per_sec", "raft-core", round, c));
        csv.push(report::csv_row("entries_per_sec", "raft-rs", round, r));
        core_eps.push(c);
    }
    for (round, c) in ROUND_SIZES.into_iter().zip(core_eps) {
        let f = floor::ns_per_entry_median(round, time, args.trials);
        let core_ns = 1e9 / c;
        println!(
            "floor round={round} {f:.1} ns/entry; raft-core {core_ns:.1} ns/entry = {:.2}x the floor",
            core_ns / f
        );
        csv.push(report::csv_row("entries_per_sec", "floor", round, 1e9 / f));
        csv.push(report::csv_row("floor_ns_per_entry", "floor", round, f));
        csv.push(report::csv_row("core_over_floor", "raft-core", round, core_ns / f));
    }

    let lc: Latency = report::latency(&mut core, 1000, args.latency_samples);
    let lr: Latency = report::latency(&mut rs, 1000, args.latency_samples);
    println!(
        "latency propose->applied on leader, {} samples: raft-core p50={:.2}us p99={:.2}us | raft-rs p50={:.2}us p99={:.2}us | p50 ratio raft-rs/raft-core={:.2}",
        lc.count,
        us(lc.p50),
        us(lc.p99),
        us(lr.p50),
        us(lr.p99),
        lr.p50 as f64 / lc.p50 as f64
    );
    for (lib, l) in [("raft-core", lc), ("raft-rs", lr)] {
        csv.push(report::csv_row("latency_p50_us", lib, 1, us(l.p50)));
        csv.push(report::csv_row("latency_p99_us", lib, 1, us(l.p99)));
    }

    for round in std::iter::once(1).chain(ROUND_SIZES) {
        let rounds = (8192 / round).max(50);
        let ac: Allocs = report::allocs_per_entry(&mut core, round, rounds);
        let ar: Allocs = report::allocs_per_entry(&mut rs, round, rounds);
        println!(
            "allocs/entry round={round}: raft-core leader={:.3} process={:.3} | raft-rs leader={:.3} process={:.3}",
            ac.leader, ac.all, ar.leader, ar.all
        );
        csv.push(report::csv_row("allocs_per_entry_leader", "raft-core", round, ac.leader));
        csv.push(report::csv_row("allocs_per_entry_leader", "raft-rs", round, ar.leader));
        csv.push(report::csv_row("allocs_per_entry_process", "raft-core", round, ac.all));
        csv.push(report::csv_row("allocs_per_entry_process", "raft-rs", round, ar.all));
    }

    if let Some(path) = &args.csv {
        let text = csv.join("\n") + "\n";
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("cannot write {path}: {e}");
            std::process::exit(1);
        }
        println!("wrote {path}");
    }
}
