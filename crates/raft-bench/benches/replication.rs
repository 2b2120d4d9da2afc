//! Criterion benchmarks: the three-node replication workload on raft-core and raft-rs side
//! by side, single-proposal latency, and raft-core micro-benchmarks.
//!
//! `cargo bench -p raft-bench` runs everything; `cargo bench -p raft-bench -- replicate`
//! only the side-by-side throughput group.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use raft_bench::{Cluster, CoreCluster, RsCluster, PAYLOAD, ROUND_SIZES};
use raft_core::{Entry, Message, MessageBody, Payload};
use std::time::Duration;

/// Rounds of 64, 256 and 1024 proposals, run to quiescence; throughput is entries
/// committed and applied on the leader.
fn replicate(c: &mut Criterion) {
    let mut g = c.benchmark_group("replicate_3_nodes");
    g.measurement_time(Duration::from_secs(4));
    for round in ROUND_SIZES {
        g.throughput(Throughput::Elements(round as u64));
        let mut core = CoreCluster::new();
        g.bench_with_input(BenchmarkId::new("raft-core", round), &round, |b, &n| b.iter(|| core.round(n)));
        let mut rs = RsCluster::new();
        g.bench_with_input(BenchmarkId::new("raft-rs", round), &round, |b, &n| b.iter(|| rs.round(n)));
    }
    g.finish();
}

/// One proposal at a time, from propose to applied on the leader.
fn propose_to_applied(c: &mut Criterion) {
    fn timed<C: Cluster>(cluster: &mut C, iters: u64) -> Duration {
        (0..iters).map(|_| cluster.propose_one_timed()).sum()
    }
    let mut g = c.benchmark_group("propose_to_applied");
    let mut core = CoreCluster::new();
    g.bench_function("raft-core", |b| b.iter_custom(|iters| timed(&mut core, iters)));
    let mut rs = RsCluster::new();
    g.bench_function("raft-rs", |b| b.iter_custom(|iters| timed(&mut rs, iters)));
    g.finish();
}

/// A 64-entry `Append` with 16-byte commands, as the leader sends it.
fn append_64() -> Message {
    let entries = (0..64)
        .map(|k| Entry { term: 3, index: 101 + k, payload: Payload::Command(bytes::Bytes::copy_from_slice(&PAYLOAD)) })
        .collect();
    Message {
        from: 1,
        to: 2,
        term: 3,
        body: MessageBody::Append { prev_log_index: 100, prev_log_term: 3, entries, commit: 100 },
    }
}

/// raft-core alone: a follower's step of a 64-entry append, the leader's handling of an
/// append response, and the postcard wire format of a 64-entry append.
fn core_micro(c: &mut Criterion) {
    let mut g = c.benchmark_group("core_micro");
    g.throughput(Throughput::Elements(64));
    let mut cluster = CoreCluster::new();
    g.bench_function("follower_step_append_64", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| cluster.time_follower_append(64)).sum())
    });
    let mut cluster = CoreCluster::new();
    g.bench_function("leader_append_response_64", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| cluster.time_leader_append_response(64)).sum())
    });
    let msg = append_64();
    g.bench_function("encode_append_64", |b| b.iter(|| msg.encode()));
    let mut buf = Vec::new();
    g.bench_function("encode_into_append_64", |b| {
        b.iter(|| {
            buf.clear();
            msg.encode_into(&mut buf);
        })
    });
    let bytes = msg.encode();
    g.bench_function("decode_append_64", |b| b.iter(|| Message::decode(&bytes, 1 << 20).expect("valid")));
    g.finish();
}

criterion_group!(benches, replicate, propose_to_applied, core_micro);
criterion_main!(benches);
