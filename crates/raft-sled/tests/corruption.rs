//! Startup integrity: damage at or below the synced index is refused with an error naming
//! the store's path and the bad index; damage past it (a torn tail) is truncated.
//!
//! The tests damage a store through sled directly, using the documented layout: tree
//! `log` keyed by big-endian index, records = CRC-32 (LE) + postcard payload.

use bytes::Bytes;
use raft_core::{Entry, HardState, Index, Payload, SnapshotMeta};
use raft_sled::{SledConfig, SledLogStore, LOG_TREE};
use raft_storage::{LogStore, SnapshotStore, StorageError};
use std::io::{Read, Write};
use std::path::Path;

fn entry(index: Index) -> Entry {
    Entry { term: 1, index, payload: Payload::Command(Bytes::from(format!("command {index}"))) }
}

/// A store holding entries 1..=`last`, all synced.
fn store_with(dir: &Path, last: Index) -> SledLogStore {
    let mut store = SledLogStore::open(dir, &SledConfig::default()).unwrap();
    store.append(&(1..=last).map(entry).collect::<Vec<_>>()).unwrap();
    store.sync().unwrap();
    store
}

/// Opens the raw sled database of a closed store (retrying while sled lets go of its lock).
fn raw(dir: &Path) -> sled::Db {
    for _ in 0..200 {
        match sled::Config::new().path(dir.join("sled")).open() {
            Ok(db) => return db,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
    panic!("cannot open the raw sled database");
}

/// Runs `damage` on the raw database, flushing after.
fn damage(dir: &Path, damage: impl FnOnce(&sled::Db)) {
    let db = raw(dir);
    damage(&db);
    db.flush().unwrap();
}

fn flip_byte(db: &sled::Db, index: Index) {
    let log = db.open_tree(LOG_TREE).unwrap();
    let mut value = log.get(index.to_be_bytes()).unwrap().expect("the entry exists").to_vec();
    let middle = value.len() / 2;
    value[middle] ^= 0x01;
    log.insert(index.to_be_bytes(), value).unwrap();
}

fn record(payload: &[u8]) -> Vec<u8> {
    let mut out = crc32fast::hash(payload).to_le_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// The one snapshot data file of a store.
fn snapshot_file(dir: &Path) -> std::path::PathBuf {
    let files: Vec<_> = std::fs::read_dir(dir.join(raft_sled::SNAPSHOT_DIR))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

fn open_err(dir: &Path) -> StorageError {
    SledLogStore::open(dir, &SledConfig::default()).expect_err("the damaged store must be refused")
}

fn assert_names(err: &StorageError, dir: &Path, index: &str) {
    let msg = err.to_string();
    assert!(msg.contains(&dir.display().to_string()), "the error does not name the path: {msg}");
    assert!(msg.contains(index), "the error does not name index {index}: {msg}");
}

#[test]
fn a_flipped_byte_in_a_synced_entry_is_refused_naming_path_and_index() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_with(dir.path(), 10));
    damage(dir.path(), |db| flip_byte(db, 5));
    let err = open_err(dir.path());
    assert!(matches!(err, StorageError::CorruptEntry { index: 5, .. }), "{err:?}");
    assert_names(&err, dir.path(), "log entry 5 is corrupt");
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
}

#[test]
fn a_deleted_middle_entry_is_refused_naming_path_and_index() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_with(dir.path(), 10));
    damage(dir.path(), |db| {
        db.open_tree(LOG_TREE).unwrap().remove(5u64.to_be_bytes()).unwrap();
    });
    let err = open_err(dir.path());
    assert!(matches!(err, StorageError::MissingEntry { index: 5, durable: 10, .. }), "{err:?}");
    assert_names(&err, dir.path(), "log entry 5 is missing");
}

#[test]
fn a_lost_synced_suffix_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_with(dir.path(), 10));
    damage(dir.path(), |db| {
        let log = db.open_tree(LOG_TREE).unwrap();
        for i in 9..=10u64 {
            log.remove(i.to_be_bytes()).unwrap();
        }
    });
    let err = open_err(dir.path());
    assert!(matches!(err, StorageError::MissingEntry { index: 9, durable: 10, .. }), "{err:?}");
}

#[test]
fn a_hard_state_pointing_past_the_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_with(dir.path(), 10);
    store.save_hard_state(&HardState { term: 1, vote: Some(1), commit: 12, incarnation: 0 }).unwrap();
    store.sync().unwrap();
    drop(store);
    let err = open_err(dir.path());
    assert!(matches!(err, StorageError::HardStatePastLog { commit: 12, last_index: 10, .. }), "{err:?}");
    assert_names(&err, dir.path(), "commit index 12 points past the last log index 10");
}

#[test]
fn a_torn_tail_past_the_synced_index_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_with(dir.path(), 10));
    // Entries 11..=15 reached sled's files but were never synced by the store (never
    // reported durable), and the write of 13 was torn.
    damage(dir.path(), |db| {
        let log = db.open_tree(LOG_TREE).unwrap();
        for i in 11..=15u64 {
            log.insert(i.to_be_bytes(), record(&postcard::to_allocvec(&entry(i)).unwrap())).unwrap();
        }
        flip_byte(db, 13);
    });
    let mut store = SledLogStore::open(dir.path(), &SledConfig::default()).unwrap();
    assert_eq!(store.repaired_tail(), Some(13));
    assert_eq!(store.last_index(), 12);
    assert_eq!(store.synced_index(), 12, "the repair is itself synced");
    assert_eq!(store.entries(1..13).unwrap(), (1..=12).map(entry).collect::<Vec<_>>());
    store.append(&[entry(13)]).unwrap();
    store.sync().unwrap();
    drop(store);
    // A missing entry past the synced index is a torn tail too.
    damage(dir.path(), |db| {
        let log = db.open_tree(LOG_TREE).unwrap();
        log.insert(15u64.to_be_bytes(), record(&postcard::to_allocvec(&entry(15)).unwrap())).unwrap();
    });
    let store = SledLogStore::open(dir.path(), &SledConfig::default()).unwrap();
    assert_eq!((store.repaired_tail(), store.last_index()), (Some(14), 13));
}

#[test]
fn an_unsynced_truncation_never_looks_like_a_lost_synced_entry() {
    // Truncating below the marker lowers it atomically with the removal.
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_with(dir.path(), 10);
    store.truncate_from(6).unwrap();
    assert_eq!(store.synced_index(), 5);
    drop(store);
    let store = SledLogStore::open(dir.path(), &SledConfig::default()).unwrap();
    assert_eq!((store.last_index(), store.repaired_tail()), (5, None));
}

#[test]
fn corrupt_snapshot_data_is_detected_when_read_and_when_truncated() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_with(dir.path(), 10));
    let (store, mut snapshots) = raft_sled::open(dir.path(), &SledConfig::default()).unwrap();
    let meta = SnapshotMeta { index: 8, term: 1, membership: Default::default() };
    let mut w = snapshots.begin(&meta).unwrap();
    w.write_all(&[7u8; 100_000]).unwrap();
    snapshots.finish(w).unwrap();
    drop((store, snapshots));
    let file = snapshot_file(dir.path());
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[50_000] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let (store, snapshots) = raft_sled::open(dir.path(), &SledConfig::default()).unwrap();
    let (_, mut reader) = snapshots.open_latest().unwrap().unwrap();
    let err = reader.read_to_end(&mut Vec::new()).expect_err("a corrupt snapshot must not read cleanly");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains(&file.display().to_string()) && err.to_string().contains("index 8"), "{err}");
    drop((store, snapshots, reader));
    std::fs::write(&file, &bytes[..1000]).unwrap();
    let err = raft_sled::open(dir.path(), &SledConfig::default()).expect_err("a truncated snapshot must be refused");
    assert!(matches!(err, StorageError::CorruptRecord { record: "snapshot data", .. }), "{err:?}");
}
