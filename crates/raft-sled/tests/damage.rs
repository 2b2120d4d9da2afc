//! File-level damage: bits flipped in, and truncations of, the files of a closed store —
//! sled's data file, its blob files and the durability witness — at and below the
//! durability point. Each must be refused at open with an error naming the path and an
//! index, never opened short (issue 10, finding 1).

mod common;

use bytes::Bytes;
use common::{assert_names, flip_in_file, open, record};
use raft_core::{Entry, HardState, Index, Payload};
use raft_sled::SledLogStore;
use raft_storage::{bootstrap, LogStore, StorageError};
use std::path::Path;

fn entry(index: Index) -> Entry {
    Entry { term: 1, index, payload: Payload::Command(Bytes::from(format!("damage-test entry {index:08} payload"))) }
}

/// An entry sled stores out of line, in a blob file of its own.
fn large_entry(index: Index) -> Entry {
    Entry { term: 1, index, payload: Payload::Command(Bytes::from(vec![(index % 251) as u8; 300 * 1024])) }
}

/// Entries 1..=20 synced, entry 10 large (a blob), with hard state {term 7, vote 2}.
fn synced_store(dir: &Path) -> SledLogStore {
    let mut store = open(dir).expect("a new store opens");
    let entries: Vec<Entry> = (1..=20).map(|i| if i == 10 { large_entry(i) } else { entry(i) }).collect();
    store.append(&entries).unwrap();
    store.save_hard_state(&HardState { term: 7, vote: Some(2), commit: 4, incarnation: 1 }).unwrap();
    store.sync().unwrap();
    store
}

fn refused(dir: &Path) -> StorageError {
    match open(dir) {
        Ok(store) => panic!(
            "the damaged store opened: last index {}, synced index {}, hard state {:?}",
            store.last_index(),
            store.synced_index(),
            store.hard_state()
        ),
        Err(e) => e,
    }
}

fn blob_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> =
        std::fs::read_dir(dir.join("sled/blobs")).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    files.sort();
    files
}

#[test]
fn a_flipped_bit_in_a_synced_entry_in_the_data_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(synced_store(dir.path()));
    assert!(flip_in_file(&dir.path().join("sled/db"), &record(&entry(15))) > 0, "entry 15 not found in sled/db");
    let err = refused(dir.path());
    assert_names(&err, dir.path(), 20);
}

#[test]
fn a_flipped_bit_in_the_synced_hard_state_is_refused_not_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    drop(synced_store(dir.path()));
    let hs = HardState { term: 7, vote: Some(2), commit: 4, incarnation: 1 };
    assert!(flip_in_file(&dir.path().join("sled/db"), &record(&hs)) > 0, "the hard state not found in sled/db");
    let err = refused(dir.path());
    let msg = err.to_string();
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    assert!(
        msg.contains("term 7") || msg.contains("index 20"),
        "the error names neither the term nor the index: {msg}"
    );
}

#[test]
fn a_flipped_bit_in_the_bootstrap_record_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, snapshots) = raft_sled::open(dir.path(), &Default::default()).unwrap();
    assert!(bootstrap(&mut store, &snapshots, [1, 2, 3]).unwrap());
    drop(snapshots);
    let point = store.snapshot_point();
    drop(store);
    assert!(flip_in_file(&dir.path().join("sled/db"), &record(&point)) > 0, "the point not found in sled/db");
    match open(dir.path()) {
        Err(err) => {
            assert_names(&err, dir.path(), 0);
            assert!(err.to_string().contains("snapshot point"), "{err}");
        }
        Ok(mut store) => {
            let kept = store.snapshot_point() == point;
            let snapshots = raft_sled::FileSnapshotStore::open(dir.path().join(raft_sled::SNAPSHOT_DIR)).unwrap();
            let founded_again = bootstrap(&mut store, &snapshots, [1, 2, 3]).unwrap();
            panic!("the damaged store opened (point kept: {kept}; bootstrap founded the node again: {founded_again})");
        }
    }
}

#[test]
fn a_flipped_bit_in_a_synced_blob_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(synced_store(dir.path()));
    let blobs = blob_files(dir.path());
    assert!(!blobs.is_empty(), "the large entry was not stored as a blob");
    for blob in &blobs {
        let mut bytes = std::fs::read(blob).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        std::fs::write(blob, bytes).unwrap();
    }
    let err = refused(dir.path());
    assert_names(&err, dir.path(), 20);
}

#[test]
fn a_synced_blob_truncated_to_nothing_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(synced_store(dir.path()));
    let blobs = blob_files(dir.path());
    assert!(!blobs.is_empty(), "the large entry was not stored as a blob");
    for blob in &blobs {
        std::fs::File::create(blob).unwrap(); // truncates to 0 bytes
    }
    let err = refused(dir.path());
    assert_names(&err, dir.path(), 20);
}

#[test]
fn a_truncated_data_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(synced_store(dir.path()));
    let db = dir.path().join("sled/db");
    let len = std::fs::metadata(&db).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
    file.set_len(len / 2).unwrap();
    drop(file);
    let err = refused(dir.path());
    let msg = err.to_string();
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
}

/// The durability witness: two copies, the newest holding the durability point.
fn witness(dir: &Path) -> std::path::PathBuf {
    let path = dir.join(raft_sled::WITNESS_FILE);
    assert!(path.exists(), "no durability witness at {}", path.display());
    path
}

#[test]
fn a_flipped_bit_in_either_copy_of_the_witness_is_refused_naming_it() {
    for copy in 0..2u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut store = synced_store(dir.path());
        store.append(&[entry(21)]).unwrap();
        store.sync().unwrap();
        drop(store);
        let path = witness(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        let at = (copy as usize * raft_sled::WITNESS_SLOT) + 9;
        bytes[at] ^= 0x04;
        std::fs::write(&path, bytes).unwrap();
        let err = refused(dir.path());
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "copy {copy}: the error does not name the witness: {msg}");
        assert!(msg.contains("21") || msg.contains("20"), "copy {copy}: the error names no index: {msg}");
    }
}

#[test]
fn a_truncated_or_deleted_witness_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(synced_store(dir.path()));
    let path = witness(dir.path());
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(10).unwrap();
    drop(file);
    let err = refused(dir.path());
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    std::fs::remove_file(&path).unwrap();
    let err = refused(dir.path());
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
}

/// A store whose snapshot store holds a latest snapshot (index 8) and a staged one (12).
fn store_with_snapshots(dir: &Path) {
    use raft_storage::SnapshotStore;
    use std::io::Write;
    drop(synced_store(dir));
    let (_log, mut snapshots) = raft_sled::open(dir, &Default::default()).unwrap();
    for (index, staged) in [(8, false), (12, true)] {
        let meta = raft_core::SnapshotMeta { index, term: 1, membership: Default::default() };
        let mut w = snapshots.begin(&meta).unwrap();
        w.write_all(&vec![index as u8; 50_000]).unwrap();
        if staged {
            snapshots.stage(w).unwrap();
        } else {
            snapshots.finish(w).unwrap();
        }
    }
}

#[test]
fn a_flipped_bit_in_the_snapshot_manifest_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    store_with_snapshots(dir.path());
    let manifest = dir.path().join(raft_sled::SNAPSHOT_DIR).join(raft_sled::MANIFEST_FILE);
    let mut bytes = std::fs::read(&manifest).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(&manifest, bytes).unwrap();
    let err = raft_sled::open(dir.path(), &Default::default()).expect_err("a damaged manifest must be refused");
    assert!(matches!(err, StorageError::CorruptRecord { record: "snapshot manifest", .. }), "{err:?}");
    assert!(err.to_string().contains(&manifest.display().to_string()), "{err}");
}

#[test]
fn a_missing_staged_snapshot_file_is_refused_and_unnamed_files_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    store_with_snapshots(dir.path());
    let snapshots = dir.path().join(raft_sled::SNAPSHOT_DIR);
    // A file no manifest names (a writer cut short by a crash) goes at open.
    std::fs::write(snapshots.join("snapshot-00000000000000000099-1-0.bin"), b"partial").unwrap();
    drop(raft_sled::open(dir.path(), &Default::default()).unwrap());
    let mut files: Vec<String> =
        std::fs::read_dir(&snapshots).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    assert_eq!(files.len(), 3, "the manifest and the two named files: {files:?}");
    let staged = files.iter().find(|f| f.starts_with("snapshot-00000000000000000012")).expect("the staged file");
    std::fs::remove_file(snapshots.join(staged)).unwrap();
    let err = raft_sled::open(dir.path(), &Default::default()).expect_err("a lost staged file must be refused");
    assert!(err.to_string().contains(staged.as_str()), "{err}");
}
