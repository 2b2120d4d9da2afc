//! Measurements shared by the `compare` binary and the tests: throughput, latency and
//! allocations per entry, plus a description of the machine.

use crate::alloc;
use crate::Cluster;
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

/// Runs rounds of `round` proposals for at least `time`; returns committed-and-applied
/// entries per second on the leader.
pub fn throughput<C: Cluster>(cluster: &mut C, round: usize, time: Duration) -> f64 {
    let before = cluster.leader_applied();
    let start = Instant::now();
    let mut elapsed;
    loop {
        cluster.round(round);
        elapsed = start.elapsed();
        if elapsed >= time {
            break;
        }
    }
    (cluster.leader_applied() - before) as f64 / elapsed.as_secs_f64()
}

/// Median of `trials` throughput measurements, each `time / trials` long, alternating
/// between a raft-core and a raft-rs cluster so that both see the same machine noise.
/// Returns (first library, second library) entries per second.
pub fn throughput_pair<A: Cluster, B: Cluster>(
    a: &mut A,
    b: &mut B,
    round: usize,
    time: Duration,
    trials: usize,
) -> (f64, f64) {
    let trials = trials.max(1);
    let each = time / trials as u32;
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for _ in 0..trials {
        xs.push(throughput(a, round, each));
        ys.push(throughput(b, round, each));
    }
    (median(&mut xs), median(&mut ys))
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Latency percentiles of single proposals, in nanoseconds.
#[derive(Copy, Clone, Debug)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Proposals measured.
    pub count: u64,
}

/// Proposes one command at a time (`warmup` unmeasured, then `count` measured), each
/// after the previous one has been applied and the cluster is quiescent.
pub fn latency<C: Cluster>(cluster: &mut C, warmup: usize, count: usize) -> Latency {
    for _ in 0..warmup {
        let _ = cluster.propose_one_timed();
    }
    let mut h = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).expect("valid histogram bounds");
    for _ in 0..count {
        let ns = cluster.propose_one_timed().as_nanos() as u64;
        h.saturating_record(ns.max(1));
    }
    Latency { p50: h.value_at_quantile(0.50), p99: h.value_at_quantile(0.99), count: h.len() }
}

/// Heap allocations per applied entry.
#[derive(Copy, Clone, Debug)]
pub struct Allocs {
    /// Made inside the leader's library calls (the leader's hot path).
    pub leader: f64,
    /// Made by the whole process during the rounds: three nodes and the drivers (the
    /// drivers allocate one payload per proposal and grow their in-memory stores).
    pub all: f64,
}

/// Counts allocations over `rounds` rounds of `round` proposals (after one warm-up round),
/// both figures in the same window so that `all >= leader` always holds.
/// With `round == 1` the rounds are single proposals, as in the latency workload.
pub fn allocs_per_entry<C: Cluster>(cluster: &mut C, round: usize, rounds: usize) -> Allocs {
    cluster.round(round);
    let entries = (round * rounds) as f64;
    let before = cluster.leader_allocations();
    cluster.count_leader_allocations(true);
    let ((), all) = alloc::count(|| {
        for _ in 0..rounds {
            cluster.round(round);
        }
    });
    cluster.count_leader_allocations(false);
    let leader = (cluster.leader_allocations() - before) as f64 / entries;
    Allocs { leader, all: all as f64 / entries }
}

/// The machine, as reported in docs/performance.md: `nproc` and the CPU model.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    format!("nproc={cpus} cpu=\"{model}\"")
}

/// One CSV row: `metric,library,round,value`.
pub fn csv_row(metric: &str, library: &str, round: usize, value: f64) -> String {
    format!("{metric},{library},{round},{value:.3}")
}

/// The CSV header matching [`csv_row`].
pub const CSV_HEADER: &str = "metric,library,round,value";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CoreCluster, RsCluster};

    #[test]
    fn measurements_run_and_count_on_both_libraries() {
        let (mut core, mut rs) = (CoreCluster::new(), RsCluster::new());
        let (c, r) = throughput_pair(&mut core, &mut rs, 64, Duration::from_millis(40), 2);
        assert!(c > 0.0 && r > 0.0);
        let l = latency(&mut core, 10, 100);
        assert!(l.count == 100 && l.p50 > 0 && l.p99 >= l.p50);
        let l = latency(&mut rs, 10, 100);
        assert!(l.count == 100 && l.p50 > 0 && l.p99 >= l.p50);
        for round in [1, 64] {
            let a = allocs_per_entry(&mut core, round, 20);
            assert!(a.leader > 0.0 && a.all >= a.leader, "raft-core {a:?}");
            let a = allocs_per_entry(&mut rs, round, 20);
            assert!(a.leader > 0.0 && a.all >= a.leader, "raft-rs {a:?}");
        }
        let (v, n) = alloc::count(|| vec![1u8; 64]);
        assert!(n >= 1, "a fresh Vec is counted");
        drop(v);
    }

    #[test]
    fn machine_and_csv_formats() {
        assert!(machine().starts_with("nproc="));
        assert_eq!(csv_row("entries_per_sec", "raft-core", 64, 1.5), "entries_per_sec,raft-core,64,1.500");
        assert_eq!(CSV_HEADER.split(',').count(), csv_row("m", "l", 1, 0.0).split(',').count());
    }
}
