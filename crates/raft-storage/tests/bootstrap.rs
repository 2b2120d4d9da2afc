//! A founder's first state, node info included, is durable before anything else happens.

use raft_core::{NodeId, NodeInfo};
use raft_storage::{bootstrap, bootstrap_with_info, mem_stores, restore, LogStore};

fn founders() -> Vec<(NodeId, NodeInfo)> {
    vec![
        (1, NodeInfo::new(b"10.0.0.1:7000".to_vec())),
        (2, NodeInfo::new(b"10.0.0.2:7000".to_vec())),
        (3, NodeInfo::default()),
    ]
}

#[test]
fn founders_info_survives_a_crash_right_after_bootstrap() {
    let (mut log, mut snapshots) = mem_stores();
    assert!(bootstrap_with_info(&mut log, &snapshots, founders()).expect("bootstrap"));
    // A crash that loses every unsynced call: bootstrap synced, so nothing is lost.
    let mut log = log.crash(0);
    let restored = restore(&mut log, &mut snapshots).expect("restore");
    let m = &restored.snapshot.membership;
    assert_eq!(m.voters.iter().copied().collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(m.info.get(&1), Some(&founders()[0].1));
    assert_eq!(m.info.get(&2), Some(&founders()[1].1));
    assert!(!m.info.contains_key(&3), "empty info is not recorded");
}

#[test]
fn a_second_bootstrap_changes_nothing() {
    let (mut log, snapshots) = mem_stores();
    assert!(bootstrap_with_info(&mut log, &snapshots, founders()).expect("bootstrap"));
    let before = log.snapshot_point();
    assert!(!bootstrap_with_info(&mut log, &snapshots, vec![(9, NodeInfo::default())]).expect("bootstrap"));
    assert!(!bootstrap(&mut log, &snapshots, [7, 8]).expect("bootstrap"));
    assert_eq!(log.snapshot_point(), before);
}
