//! `raft-sim`: run many seeds in parallel with a progress bar and a summary table, or
//! replay one seed with full tracing. Either can write an HTML timeline.

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use raft_sim::config::MS;
use raft_sim::{run_config, Profile, SimConfig, Summary, TraceLevel, Violation};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Instant;

#[derive(Parser)]
#[command(name = "raft-sim", about = "Deterministic simulation of raft-core clusters under faults")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run many seeds in parallel and print a summary.
    Run {
        /// How many seeds.
        #[arg(long, default_value_t = 100)]
        seeds: u64,
        /// The first seed.
        #[arg(long, default_value_t = 0)]
        start: u64,
        /// Fault profile: none, network, partition, crash, pause, drift, churn or all.
        #[arg(long, default_value = "all")]
        profile: Profile,
        /// Cluster size (3, 5 or 7; default: drawn per seed).
        #[arg(long)]
        nodes: Option<usize>,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Write an HTML timeline of the first failing seed (or the first seed) here.
        #[arg(long)]
        timeline: Option<String>,
        /// The message kind the timeline draws (Vote, PreVote, Append, Heartbeat, ...).
        #[arg(long, default_value = "Vote")]
        timeline_kind: String,
        #[command(flatten)]
        tweaks: Tweaks,
        /// How many failures to print in full.
        #[arg(long, default_value_t = 3)]
        show: usize,
    },
    /// Re-run one seed, printing every event.
    Replay {
        /// The seed.
        seed: u64,
        /// The fault profile it ran with.
        #[arg(long, default_value = "all")]
        profile: Profile,
        /// Cluster size (as printed in the failure's replay command).
        #[arg(long)]
        nodes: Option<usize>,
        /// Write an HTML timeline here.
        #[arg(long)]
        timeline: Option<String>,
        /// The message kind the timeline draws.
        #[arg(long, default_value = "Vote")]
        timeline_kind: String,
        #[command(flatten)]
        tweaks: Tweaks,
        /// Print only the outcome, not every event.
        #[arg(long)]
        quiet: bool,
    },
}

/// Departures from the drawn configuration: planted bugs, to watch the checkers at work,
/// and optional protocol features switched off (a failure's replay command repeats them).
#[derive(clap::Args)]
struct Tweaks {
    /// Plant a bug in the simulated runtime (ack-before-persist, forge-vote-grants,
    /// forget-vote-on-restart, stale-reads) to see the checkers catch it.
    #[arg(long)]
    bug: Vec<String>,
    /// Run the nodes without CheckQuorum (and so without its restart vote guard and
    /// lease reads).
    #[arg(long)]
    no_check_quorum: bool,
}

fn config(seed: u64, profile: Profile, nodes: Option<usize>, tweaks: &Tweaks) -> Result<SimConfig, String> {
    let mut cfg = SimConfig::from_seed(seed, profile).with_nodes(nodes);
    for b in &tweaks.bug {
        cfg.plant(b)?;
    }
    cfg.check_quorum = !tweaks.no_check_quorum;
    Ok(cfg)
}

fn write_timeline(cfg: SimConfig, path: &str, kind: &str) -> Result<(), String> {
    let mut cfg = cfg;
    cfg.timeline = Some(kind.to_string());
    let title = format!(
        "seed {} profile {} nodes {} faults [{}]",
        cfg.seed,
        cfg.profile,
        cfg.nodes,
        cfg.faults.families().join(", ")
    );
    let (_, timeline) = run_config(cfg);
    let mut timeline = timeline.expect("timeline requested");
    timeline.title = title;
    std::fs::write(path, timeline.to_html()).map_err(|e| format!("cannot write {path}: {e}"))?;
    println!("timeline written to {path}");
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Run { seeds, start, profile, nodes, threads, timeline, timeline_kind, tweaks, show } => {
            run(seeds, start, profile, nodes, threads, timeline, &timeline_kind, &tweaks, show)
        }
        Cmd::Replay { seed, profile, nodes, timeline, timeline_kind, tweaks, quiet } => {
            replay(seed, profile, nodes, timeline, &timeline_kind, &tweaks, quiet)
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn replay(
    seed: u64,
    profile: Profile,
    nodes: Option<usize>,
    timeline: Option<String>,
    kind: &str,
    tweaks: &Tweaks,
    quiet: bool,
) -> Result<bool, String> {
    let mut cfg = config(seed, profile, nodes, tweaks)?;
    eprintln!(
        "replaying seed {seed}: {} nodes, {} clients, {} keys, faults [{}], check quorum {}, lease reads {}, {:?}",
        cfg.nodes,
        cfg.clients,
        cfg.keys,
        cfg.faults.families().join(", "),
        cfg.check_quorum,
        cfg.lease_reads && cfg.check_quorum,
        cfg.faults
    );
    if !quiet {
        cfg.trace = TraceLevel::Full;
    }
    let (result, _) = run_config(cfg.clone());
    if let Some(path) = timeline {
        cfg.trace = TraceLevel::Ring;
        write_timeline(cfg, &path, kind)?;
    }
    match result {
        Ok(s) => {
            println!(
                "seed {seed}: ok: {} steps, {:.1} s simulated, {} faults, {} ops checked, trace hash {:016x}",
                s.steps,
                s.sim_time as f64 / 1e9,
                s.faults + s.message_faults,
                s.ops_checked,
                s.trace_hash
            );
            Ok(true)
        }
        Err(v) => {
            println!("{v}");
            Ok(false)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run(
    seeds: u64,
    start: u64,
    profile: Profile,
    nodes: Option<usize>,
    threads: Option<usize>,
    timeline: Option<String>,
    kind: &str,
    tweaks: &Tweaks,
    show: usize,
) -> Result<bool, String> {
    config(start, profile, nodes, tweaks)?;
    let threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let began = Instant::now();
    let bar = ProgressBar::new(seeds);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} seeds {per_sec} eta {eta} {msg}").expect("valid template"),
    );
    let next = AtomicU64::new(0);
    let (tx, rx) = mpsc::channel::<(u64, Result<Summary, Violation>)>();
    let mut total = Summary::default();
    let mut failures: Vec<Violation> = Vec::new();
    let mut lin_unknown = 0;
    std::thread::scope(|s| {
        for _ in 0..threads {
            let tx = tx.clone();
            let next = &next;
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= seeds {
                    break;
                }
                let seed = start + i;
                let cfg = config(seed, profile, nodes, tweaks).expect("bugs validated");
                let (result, _) = run_config(cfg);
                if tx.send((seed, result)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        for (_, result) in rx {
            bar.inc(1);
            match result {
                Ok(s) => {
                    total.steps += s.steps;
                    total.sim_time += s.sim_time;
                    total.faults += s.faults;
                    total.message_faults += s.message_faults;
                    total.ops_checked += s.ops_checked;
                    total.ops_unknown += s.ops_unknown;
                    lin_unknown += u64::from(s.lin_unknown);
                }
                Err(v) => {
                    bar.set_message(format!("{} failed", failures.len() + 1));
                    failures.push(v);
                }
            }
        }
    });
    bar.finish();
    let wall = began.elapsed().as_secs_f64();
    failures.sort_by_key(|v| v.seed);
    for v in failures.iter().take(show) {
        println!("{v}");
    }
    let row = |k: &str, v: String| println!("  {k:<28} {v:>16}");
    println!("summary ({profile} profile, {threads} threads)");
    row("seeds", seeds.to_string());
    row("passed", (seeds - failures.len() as u64).to_string());
    row("failed", failures.len().to_string());
    row("steps", total.steps.to_string());
    row("simulated time (s)", format!("{:.1}", total.sim_time as f64 / 1e9));
    row("nemesis faults injected", total.faults.to_string());
    row("messages lost or duplicated", total.message_faults.to_string());
    row("client ops checked", total.ops_checked.to_string());
    row("ops with unknown outcome", total.ops_unknown.to_string());
    row("linearizability undecided", lin_unknown.to_string());
    row("wall time (s)", format!("{wall:.1}"));
    row("seeds / s", format!("{:.1}", seeds as f64 / wall));
    row("steps / s", format!("{:.0}", total.steps as f64 / wall));
    row("simulated ms per wall ms", format!("{:.0}", total.sim_time as f64 / MS as f64 / (wall * 1e3)));
    if !failures.is_empty() {
        let list: Vec<String> = failures.iter().map(|v| format!("{} ({})", v.seed, v.property)).collect();
        println!("failing seeds: {}", list.join(", "));
    }
    if let Some(path) = timeline {
        let seed = failures.first().map_or(start, |v| v.seed);
        write_timeline(config(seed, profile, nodes, tweaks)?, &path, kind)?;
    }
    Ok(failures.is_empty())
}
