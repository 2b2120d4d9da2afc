//! The runtime benchmark: three raft-tokio nodes in one process over the channel
//! transport, client proposals through the async handle at 1, 64 and 256 concurrent
//! proposers, with the memory stores and with raft-sled; prints proposals/s, latency
//! percentiles and group-commit figures.
//!
//! ```text
//! cargo run -p raft-bench --release --bin runtime -- [--secs S] [--only memory|sled|openraft|transports|udp|quic]
//! ```
//!
//! The memory figures use `BenchLog` (a `Vec`) as the log store and raft-storage's
//! `MemSnapshotStore`, and a counter as the state machine. Both declare that they never
//! block (`never_blocks`), so the runtime runs them on its own tasks, as it does for any
//! store in memory; the `(mem, workers)` line makes them declare the opposite, to show
//! what the worker threads a disk store or an I/O-doing state machine get cost. Each
//! figure is one run of `--secs` seconds (default 3) after a 0.5 s warm-up, bounded
//! to 5,000,000 proposals. A proposal is counted when the handle returns the state
//! machine's response (applied on the leader). 16-byte commands, as in `compare`.
//!
//! `--only transports` runs the memory figure at 1 and 64 proposers over the channel
//! transport and then the same cluster over UDP and over QUIC (mutual TLS) on loopback.

mod bench_log;
mod openraft_cluster;
mod transports;

use bench_log::BenchLog;
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use raft_core::{Config, NodeId, NodeInfo, Role};
use raft_storage::{LogStore, SnapshotStore};
use raft_tokio::{ChannelNetwork, Command, Options, Raft, StateMachine};
use std::future::Future;
use std::io::{Read, Write};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The most proposals one measurement makes, whatever its duration.
const MAX_PROPOSALS: u64 = 5_000_000;
const WARM_UP: Duration = Duration::from_millis(500);
const PAYLOAD: &[u8; 16] = b"0123456789abcdef";

/// Counts applied commands; answers the count. `blocking` makes it declare that it may
/// block (it never does), to measure the runtime's worker-thread path.
#[derive(Default)]
struct Counter(u64, bool);

impl StateMachine for Counter {
    type Response = u64;
    type Query = ();
    type QueryResponse = u64;

    fn apply(&mut self, commands: &[Command]) -> Vec<u64> {
        commands
            .iter()
            .map(|_| {
                self.0 += 1;
                self.0
            })
            .collect()
    }
    fn query(&self, (): ()) -> u64 {
        self.0
    }
    fn snapshot(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        out.write_all(&self.0.to_le_bytes())
    }
    fn restore(&mut self, input: &mut dyn Read) -> std::io::Result<()> {
        let mut b = [0; 8];
        input.read_exact(&mut b)?;
        self.0 = u64::from_le_bytes(b);
        Ok(())
    }
    fn never_blocks(&self) -> bool {
        !self.1
    }
}

/// One proposal, as a boxed future (so that both libraries share the load generator).
type Propose = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// What one measurement found.
struct Load {
    ops: u64,
    secs: f64,
    latency: Histogram<u64>,
    failures: u64,
}

impl Load {
    fn line(&self, name: &str, proposers: usize) -> String {
        format!(
            "{name:<25} proposers {proposers:>3}: {:>9.0} proposals/s  p50 {:>8.1} µs  p99 {:>8.1} µs  ({} proposals, {} failed)",
            self.ops as f64 / self.secs,
            self.latency.value_at_quantile(0.5) as f64 / 1000.0,
            self.latency.value_at_quantile(0.99) as f64 / 1000.0,
            self.ops,
            self.failures,
        )
    }
}

/// Runs `proposers` concurrent loops of `propose` for `secs` (after a warm-up).
async fn load(propose: Propose, proposers: usize, secs: f64) -> Load {
    let measuring = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let latency = Arc::new(Mutex::new(Histogram::<u64>::new(3).expect("histogram")));
    let stop_at = Instant::now() + WARM_UP + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for _ in 0..proposers {
        let (propose, measuring, count, failures, latency) =
            (propose.clone(), measuring.clone(), count.clone(), failures.clone(), latency.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine = Histogram::<u64>::new(3).expect("histogram");
            while Instant::now() < stop_at && count.load(Ordering::Relaxed) < MAX_PROPOSALS {
                let started = Instant::now();
                let ok = propose().await;
                if measuring.load(Ordering::Relaxed) {
                    if ok {
                        count.fetch_add(1, Ordering::Relaxed);
                        let _ = mine.record(started.elapsed().as_nanos() as u64);
                    } else {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latency.lock().expect("lock").add(&mine).expect("same bounds");
        }));
    }
    tokio::time::sleep(WARM_UP).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    for t in tasks {
        t.await.expect("proposer");
    }
    let secs = started.elapsed().as_secs_f64();
    let latency = Arc::try_unwrap(latency).map(|m| m.into_inner().expect("lock")).expect("tasks done");
    Load { ops: count.load(Ordering::Relaxed), secs, latency, failures: failures.load(Ordering::Relaxed) }
}

fn info(id: NodeId) -> NodeInfo {
    NodeInfo::new(format!("bench-{id}").into_bytes())
}

/// Starts three raft-tokio nodes over the channel transport with stores from `open` and
/// returns them once one leads.
async fn raft_tokio_cluster<L, S>(workers: bool, open: impl FnMut(NodeId) -> (L, S)) -> Vec<Raft<Counter>>
where
    L: LogStore + 'static,
    S: SnapshotStore + 'static,
{
    let net = ChannelNetwork::new(1);
    let transports = (1..=3).map(|id| (net.transport(id, info(id)), info(id))).collect();
    cluster_over(workers, transports, |_| {}, open).await
}

/// Starts three raft-tokio nodes, node `i + 1` on `transports[i]` (with the node info
/// peers reach it at), configs adjusted by `tweak`, stores from `open`; returns them once
/// one leads. With `workers`, the state machine declares that it may block, so the
/// runtime runs it on tokio's blocking pool (the log store decides for itself).
async fn cluster_over<T, L, S>(
    workers: bool,
    transports: Vec<(T, NodeInfo)>,
    tweak: impl Fn(&mut Config),
    mut open: impl FnMut(NodeId) -> (L, S),
) -> Vec<Raft<Counter>>
where
    T: raft_tokio::Transport,
    L: LogStore + 'static,
    S: SnapshotStore + 'static,
{
    let members: Vec<_> = (1..).zip(transports.iter().map(|(_, i)| i.clone())).collect();
    let mut nodes = Vec::new();
    for (id, (transport, _)) in (1..).zip(transports) {
        let (log, snaps) = open(id);
        let mut options = Options::bootstrap(members.clone());
        options.shutdown_timeout = Duration::from_millis(500);
        let mut config = Config::new(id);
        // Let the load, not the limits, decide the batch sizes at 256 proposers.
        config.max_uncommitted_entries = 65_536;
        tweak(&mut config);
        let node = Raft::start(config, options, log, snaps, Counter(0, workers), transport).await.expect("start");
        nodes.push(node);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !nodes.iter().any(|n| n.status().role == Role::Leader) {
        assert!(Instant::now() < deadline, "no leader elected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    nodes
}

fn leader_of(nodes: &[Raft<Counter>]) -> Raft<Counter> {
    nodes.iter().find(|n| n.status().role == Role::Leader).expect("a leader").clone()
}

fn propose_to(leader: Raft<Counter>) -> Propose {
    let payload = Bytes::from_static(PAYLOAD);
    Arc::new(move || {
        let (leader, payload) = (leader.clone(), payload.clone());
        Box::pin(async move { leader.propose(payload).await.is_ok() })
    })
}

/// The memory figure. By default the log store and the state machine declare truly that
/// they never block, and the runtime runs them on its own tasks; with `workers` both
/// declare that they may block, and run on tokio's blocking pool (what a disk store and a
/// state machine doing I/O get).
async fn bench_memory(secs: f64, proposers: &[usize], workers: bool) -> Vec<(usize, f64)> {
    let mut rates = Vec::new();
    for &p in proposers {
        let nodes = raft_tokio_cluster(workers, |_| {
            let mut log = BenchLog::new();
            log.never_blocks = !workers;
            (log, raft_storage::MemSnapshotStore::new())
        })
        .await;
        let leader = leader_of(&nodes);
        let l = load(propose_to(leader.clone()), p, secs).await;
        let name = if workers { "raft-tokio (mem, workers)" } else { "raft-tokio (memory)" };
        println!("{}", l.line(name, p));
        rates.push((p, l.ops as f64 / l.secs));
        for n in &nodes {
            let _ = n.shutdown().await;
        }
    }
    rates
}

async fn bench_sled(secs: f64) {
    for p in [1, 64] {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_path_buf();
        let nodes = raft_tokio_cluster(false, |id| {
            raft_sled::open(path.join(format!("node-{id}")), &Default::default()).expect("open sled")
        })
        .await;
        let leader = leader_of(&nodes);
        let before = leader.metrics();
        let l = load(propose_to(leader.clone()), p, secs).await;
        let after = leader.metrics();
        let fsyncs = after.fsyncs - before.fsyncs;
        let entries = after.entries_persisted - before.entries_persisted;
        println!(
            "{}  leader: {:.1} entries/fsync, {:.1} persists/fsync, fsync p50 ≤ {:?} p99 ≤ {:?}",
            l.line("raft-tokio (sled)", p),
            entries as f64 / fsyncs.max(1) as f64,
            (after.persists - before.persists) as f64 / fsyncs.max(1) as f64,
            after.fsync_latency_quantile(0.5),
            after.fsync_latency_quantile(0.99),
        );
        for n in &nodes {
            let _ = n.shutdown().await;
        }
    }
}

/// Proposals/s, latency and group commit of three raft-tokio nodes in one process, beside
/// openraft.
#[derive(Parser)]
#[command(name = "runtime")]
struct Args {
    /// Length of each figure's run, in seconds (after a 0.5 s warm-up).
    #[arg(long, default_value_t = 3.0)]
    secs: f64,
    /// Run only these figures.
    #[arg(long, value_enum)]
    only: Option<Only>,
}

/// The figures `--only` selects.
#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
enum Only {
    /// raft-tokio with the memory stores (and with worker threads).
    Memory,
    /// raft-tokio with raft-sled.
    Sled,
    /// openraft 0.9, the baseline.
    Openraft,
    /// The channel transport beside UDP (plain and authenticated) and QUIC.
    Transports,
    /// UDP alone.
    Udp,
    /// QUIC alone.
    Quic,
}

fn main() {
    let Args { secs, only } = Args::parse();
    let runs = |what: Only| only.is_none_or(|o| o == what);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(async {
        println!(
            "3 nodes in one process, {} worker threads, {secs} s per figure",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        let proposers = [1, 64, 256];
        let mut ours = Vec::new();
        let mut theirs: Vec<(usize, f64)> = Vec::new();
        for &p in &proposers {
            if runs(Only::Memory) {
                ours.extend(bench_memory(secs, &[p], false).await);
                bench_memory(secs, &[p], true).await;
            }
            if runs(Only::Openraft) {
                let l = openraft_cluster::bench(p, secs, load).await;
                println!("{}", l.line("openraft 0.9 (memory)", p));
                theirs.push((p, l.ops as f64 / l.secs));
            }
        }
        for ((p, a), (_, b)) in ours.iter().zip(&theirs) {
            println!("proposers {p:>3}: raft-tokio / openraft = {:.2}", a / b);
        }
        if runs(Only::Sled) {
            bench_sled(secs).await;
        }
        let only_is = |what: Only| only == Some(what);
        if only_is(Only::Transports) {
            // The channel figure the network transports stand beside.
            bench_memory(secs, &[1, 64], false).await;
        }
        if runs(Only::Transports) || only_is(Only::Udp) {
            transports::udp(secs, None).await;
            transports::udp(secs, Some([7; 32])).await;
        }
        if runs(Only::Transports) || only_is(Only::Quic) {
            transports::quic(secs).await;
        }
    });
}
