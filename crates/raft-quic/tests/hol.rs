//! A rough measurement of head-of-line blocking (ignored by default; prints numbers and
//! asserts nothing about time): linearizable read latency on a leader whose follower
//! receives a stream of large appends, with control messages on their own stream (the
//! default) and with every message on one stream.
//!
//! `cargo test -p raft-quic --test hol -- --ignored --nocapture`

mod common;

use common::*;
use raft_core::Config;
use raft_quic::dev_certs::DevCa;
use raft_tokio::{Consistency, Options};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn measure(single_stream: bool) -> Vec<Duration> {
    let ca = DevCa::generate().unwrap();
    let mut transports = Vec::new();
    for id in [1, 2] {
        let mut o = quic_options(ca.tls_config(id).unwrap(), &Config::new(id));
        o.single_stream = single_stream;
        transports.push(bind_retrying(localhost(), id, o).await);
    }
    let members: Vec<_> = transports.iter().map(|t| (t.id(), info(t.local_addr()))).collect();
    let mut rafts = Vec::new();
    for t in &transports {
        rafts.push(start_raft(Config::new(t.id()), Options::bootstrap(members.clone()), t.clone()).await);
    }
    let mut leader = None;
    eventually("a leader", || {
        leader = rafts.iter().position(|r| r.status().role == raft_core::Role::Leader);
        async move { leader.is_some() }
    })
    .await;
    let lead = rafts[leader.unwrap()].clone();
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for task in 0..8u64 {
        let (lead, stop) = (lead.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) && i < 10_000 {
                let _ = lead.propose(cmd(task * 1_000_000 + i, 1000 * 1024)).await;
                i += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut samples = Vec::new();
    for _ in 0..60 {
        let start = Instant::now();
        lead.read_with((), Consistency::Linearizable).await.expect("a read");
        samples.push(start.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for l in load {
        let _ = l.await;
    }
    for r in &rafts {
        let _ = r.shutdown().await;
    }
    samples.sort();
    samples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check: run by hand"]
async fn head_of_line_blocking() {
    init_tracing();
    for single in [false, true] {
        let s = measure(single).await;
        let at = |q: f64| s[((s.len() - 1) as f64 * q) as usize];
        println!(
            "{}: linearizable read under 8 x 1000 KiB proposals in flight: p50 {:?} p90 {:?} max {:?}",
            if single { "one stream       " } else { "control + bulk   " },
            at(0.5),
            at(0.9),
            s[s.len() - 1]
        );
    }
}
