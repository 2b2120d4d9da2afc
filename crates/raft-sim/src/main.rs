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
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        #[command(flatten)]
        setup: Setup,
        #[command(flatten)]
        timeline: TimelineArgs,
        /// How many failures to print in full.
        #[arg(long, default_value_t = 3)]
        show: usize,
    },
    /// Re-run one seed, printing every event.
    Replay {
        /// The seed.
        seed: u64,
        #[command(flatten)]
        setup: Setup,
        #[command(flatten)]
        timeline: TimelineArgs,
        /// Print only the outcome, not every event.
        #[arg(long)]
        quiet: bool,
        /// Write a TLA+ trace of the run here, for spec/RaftTrace.tla (scripts/tla-trace.sh
        /// checks it with TLC).
        #[arg(long)]
        tla_trace: Option<String>,
        /// At most this many events in the TLA+ trace (the run's prefix).
        #[arg(long, default_value_t = 1500)]
        tla_events: usize,
    },
}

/// How each seed's configuration is made: drawn from the seed within a profile, then
/// departures from it (a failure's replay command repeats them all).
#[derive(clap::Args)]
struct Setup {
    /// Fault profile: none, network, partition, crash, pause, drift, churn or all.
    #[arg(long, default_value = "all")]
    profile: Profile,
    /// Cluster size (3, 5 or 7; default: drawn per seed).
    #[arg(long)]
    nodes: Option<usize>,
    /// Plant a bug in the simulated runtime (ack-before-persist, forge-vote-grants,
    /// forget-vote-on-restart, stale-reads) to see the checkers catch it.
    #[arg(long)]
    bug: Vec<String>,
    /// Run the nodes without CheckQuorum (and so without its restart vote guard and
    /// lease reads).
    #[arg(long)]
    no_check_quorum: bool,
}

impl Setup {
    fn config(&self, seed: u64) -> Result<SimConfig, String> {
        let mut cfg = SimConfig::from_seed(seed, self.profile).with_nodes(self.nodes);
        for b in &self.bug {
            cfg.plant(b)?;
        }
        cfg.check_quorum = !self.no_check_quorum;
        Ok(cfg)
    }
}

/// An HTML timeline to write.
#[derive(clap::Args)]
struct TimelineArgs {
    /// Write an HTML timeline here (`run`: of the first failing seed, or the first seed).
    #[arg(long)]
    timeline: Option<String>,
    /// The message kind the timeline draws (Vote, PreVote, Append, Heartbeat, ...).
    #[arg(long, default_value = "Vote")]
    timeline_kind: String,
}

/// Writes `args`' timeline of `cfg`, if one was asked for.
fn write_timeline(mut cfg: SimConfig, args: &TimelineArgs) -> Result<(), String> {
    let Some(path) = &args.timeline else { return Ok(()) };
    cfg.timeline = Some(args.timeline_kind.clone());
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
        Cmd::Run { seeds, start, threads, setup, timeline, show } => {
            run(seeds, start, threads, &setup, &timeline, show)
        }
        Cmd::Replay { seed, setup, timeline, quiet, tla_trace, tla_events } => {
            replay(seed, &setup, &timeline, quiet, tla_trace.map(|p| (p, tla_events)))
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
    setup: &Setup,
    timeline: &TimelineArgs,
    quiet: bool,
    tla_trace: Option<(String, usize)>,
) -> Result<bool, String> {
    let mut cfg = setup.config(seed)?;
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
    cfg.tla_trace = tla_trace;
    let (result, _) = run_config(cfg.clone());
    cfg.tla_trace = None;
    if timeline.timeline.is_some() {
        cfg.trace = TraceLevel::Ring;
        write_timeline(cfg, timeline)?;
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

fn run(
    seeds: u64,
    start: u64,
    threads: Option<usize>,
    setup: &Setup,
    timeline: &TimelineArgs,
    show: usize,
) -> Result<bool, String> {
    setup.config(start)?;
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
    let mut busiest_idle = (0, 0);
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
                let cfg = setup.config(seed).expect("validated before the workers started");
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
                    total.entries_forgotten += s.entries_forgotten;
                    if s.idle_messages > total.idle_messages {
                        total.idle_messages = s.idle_messages;
                        busiest_idle = (s.seed, s.nodes);
                    }
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
    println!("summary ({} profile, {threads} threads)", setup.profile);
    row("seeds", seeds.to_string());
    row("passed", (seeds - failures.len() as u64).to_string());
    row("failed", failures.len().to_string());
    row("steps", total.steps.to_string());
    row("simulated time (s)", format!("{:.1}", total.sim_time as f64 / 1e9));
    row("nemesis faults injected", total.faults.to_string());
    row("messages lost or duplicated", total.message_faults.to_string());
    row("acked entries lost (amnesia)", total.entries_forgotten.to_string());
    row("client ops checked", total.ops_checked.to_string());
    row("ops with unknown outcome", total.ops_unknown.to_string());
    row("linearizability undecided", lin_unknown.to_string());
    row(
        "most msgs in the idle second",
        format!("{} (seed {}, {} nodes)", total.idle_messages, busiest_idle.0, busiest_idle.1),
    );
    row("wall time (s)", format!("{wall:.1}"));
    row("seeds / s", format!("{:.1}", seeds as f64 / wall));
    row("steps / s", format!("{:.0}", total.steps as f64 / wall));
    row("simulated ms per wall ms", format!("{:.0}", total.sim_time as f64 / MS as f64 / (wall * 1e3)));
    if !failures.is_empty() {
        let list: Vec<String> = failures.iter().map(|v| format!("{} ({})", v.seed, v.property)).collect();
        println!("failing seeds: {}", list.join(", "));
    }
    let seed = failures.first().map_or(start, |v| v.seed);
    write_timeline(setup.config(seed)?, timeline)?;
    Ok(failures.is_empty())
}
