//! One seed gives one run: the same seed twice gives the same trace hash and summary.

use raft_sim::{run_config, run_schedule, run_seed, FaultOp, PartitionKind, Profile, SimConfig};

#[test]
fn same_seed_same_trace() {
    for (seed, profile) in [(1, Profile::All), (2, Profile::Crash), (3, Profile::Churn), (4, Profile::Drift)] {
        let a = run_seed(seed, profile).unwrap_or_else(|v| panic!("{v}"));
        let b = run_seed(seed, profile).unwrap_or_else(|v| panic!("{v}"));
        assert_eq!(a, b, "seed {seed} ({profile}) ran differently twice");
        assert!(a.steps > 1000 && a.ops_checked > 0);
    }
}

#[test]
fn different_seeds_differ() {
    let a = run_seed(10, Profile::All).unwrap_or_else(|v| panic!("{v}"));
    let b = run_seed(11, Profile::All).unwrap_or_else(|v| panic!("{v}"));
    assert_ne!(a.trace_hash, b.trace_hash);
}

#[test]
fn recording_a_timeline_does_not_change_the_run() {
    let mut cfg = SimConfig::from_seed(5, Profile::Partition);
    let (plain, _) = run_config(cfg.clone());
    cfg.timeline = Some("Vote".into());
    let (recorded, timeline) = run_config(cfg);
    assert_eq!(plain.unwrap_or_else(|v| panic!("{v}")), recorded.unwrap_or_else(|v| panic!("{v}")));
    let html = timeline.expect("timeline recorded").to_html();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("const DATA"));
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"), "the page must be self-contained");
}

#[test]
fn hand_written_schedule() {
    let cfg = SimConfig::basic(7, 5);
    let schedule = [
        FaultOp::Wait { ms: 500 },
        FaultOp::Crash { node: 255, down_ms: 400, torn: true },
        FaultOp::Wait { ms: 600 },
        FaultOp::Partition { kind: PartitionKind::IsolateLeader, pick: 0, ms: 800 },
        FaultOp::Wait { ms: 300 },
        FaultOp::Freeze { node: 1, ms: 500 },
        FaultOp::Wait { ms: 900 },
        FaultOp::Partition { kind: PartitionKind::Bridge, pick: 3, ms: 700 },
        FaultOp::Wait { ms: 400 },
        FaultOp::Transfer { to: None },
        FaultOp::Pause { node: 2, ms: 300 },
        FaultOp::Wait { ms: 1000 },
    ];
    let s = run_schedule(cfg, &schedule).unwrap_or_else(|v| panic!("{v}"));
    assert!(s.faults >= 5, "{s:?}");
    assert!(s.ops_checked > 100, "{s:?}");
}
