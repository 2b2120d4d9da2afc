//! The durability point after a crash (issue 10, finding 2) and the snapshot reader's
//! checksum on a read that stops at the declared length.

mod common;

use bytes::Bytes;
use common::{crash_copy, open, record};
use raft_core::{Entry, HardState, Index, Payload, SnapshotMeta};
use raft_storage::{LogStore, SnapshotStore};
use std::io::{Read, Write};

fn entry(index: Index) -> Entry {
    let len = if index == 15 { 300 * 1024 } else { 40 };
    Entry { term: 1, index, payload: Payload::Command(Bytes::from(vec![(index % 251) as u8; len])) }
}

#[test]
fn entries_recovered_past_the_durability_point_are_synced_before_open_returns() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path()).unwrap();
    store.append(&(1..=10).map(entry).collect::<Vec<_>>()).unwrap();
    store.sync().unwrap();
    drop(store);
    // Entries that reached sled's files but were never synced by the store (as a crash
    // after sled wrote its buffer and before the store's fsyncs would leave them),
    // including one stored as a blob.
    {
        let db = loop {
            match sled::Config::new().path(dir.path().join("sled")).open() {
                Ok(db) => break db,
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        };
        let log = db.open_tree(raft_sled::LOG_TREE).unwrap();
        for i in 11..=20u64 {
            log.insert(i.to_be_bytes(), record(&entry(i))).unwrap();
        }
        db.flush().unwrap();
    }
    let store = open(dir.path()).unwrap();
    assert_eq!(store.last_index(), 20);
    assert_eq!(
        store.synced_index(),
        20,
        "entries 11..=20 are reported to the core as durable, so open must have synced them"
    );
}

#[test]
fn a_crash_copy_reopens_at_the_durability_point_or_later_and_is_synced() {
    let dir = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let mut store = open(dir.path()).unwrap();
    store.append(&(1..=12).map(entry).collect::<Vec<_>>()).unwrap();
    store.save_hard_state(&HardState { term: 3, vote: Some(1), commit: 2, incarnation: 1 }).unwrap();
    store.sync().unwrap();
    store.append(&(13..=20).map(entry).collect::<Vec<_>>()).unwrap();
    let path = crash_copy(store, &crashed.path().join("store"));
    let store = open(&path).unwrap();
    assert!(store.last_index() >= 12, "lost synced entries: last index {}", store.last_index());
    assert_eq!(store.hard_state(), HardState { term: 3, vote: Some(1), commit: 2, incarnation: 1 });
    assert_eq!(store.synced_index(), store.last_index());
    assert_eq!(
        store.entries(1..store.last_index() + 1).unwrap(),
        (1..=store.last_index()).map(entry).collect::<Vec<_>>()
    );
}

#[test]
fn the_snapshot_reader_checks_the_checksum_when_reading_stops_at_the_declared_length() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, mut snapshots) = raft_sled::open(dir.path(), &Default::default()).unwrap();
    store.append(&(1..=10).map(entry).collect::<Vec<_>>()).unwrap();
    store.sync().unwrap();
    let meta = SnapshotMeta { index: 8, term: 1, membership: Default::default() };
    let mut w = snapshots.begin(&meta).unwrap();
    w.write_all(&[7u8; 10_000]).unwrap();
    snapshots.finish(w).unwrap();
    drop((store, snapshots));
    let file = std::fs::read_dir(dir.path().join(raft_sled::SNAPSHOT_DIR))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "bin"))
        .expect("a snapshot file");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[5_000] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let (_store, snapshots) = raft_sled::open(dir.path(), &Default::default()).unwrap();
    let (_, mut reader) = snapshots.open_latest().unwrap().unwrap();
    // A consumer that knows the length reads exactly that much and never sees EOF.
    let mut buf = vec![0u8; 10_000];
    let err = reader.read_exact(&mut buf).expect_err("a corrupt snapshot read exactly to its length must fail");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("checksum"), "{err}");
}
