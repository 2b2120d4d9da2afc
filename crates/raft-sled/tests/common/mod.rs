//! Helpers shared by the file-level tests: crash copies and byte-level damage.
#![allow(dead_code)]

use raft_sled::SledLogStore;
use std::path::{Path, PathBuf};

/// The on-disk record of `value`: CRC-32 (LE) of the postcard payload, then the payload
/// (the format documented in docs/storage.md).
pub fn record<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let payload = postcard::to_allocvec(value).expect("postcard encodes plain data");
    let mut out = crc32fast::hash(&payload).to_le_bytes().to_vec();
    out.extend_from_slice(&payload);
    out
}

/// Copies directory `from` to `to`, recursively, as the files read now (the page cache).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("creating the copy's directory");
    for entry in std::fs::read_dir(from).expect("listing a store directory") {
        let entry = entry.expect("listing a store directory");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            match std::fs::copy(entry.path(), &target) {
                Ok(_) => {}
                // Removed since the listing (sled's garbage collection).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("copying {}: {e}", entry.path().display()),
            }
        }
    }
}

/// What a `kill -9` of the process would leave of `store`: its files as they are now,
/// copied to `to` while the store is still open (sled's drop would flush). The store is
/// then dropped; only the copy is used afterwards.
pub fn crash_copy(store: SledLogStore, to: &Path) -> PathBuf {
    use raft_storage::LogStore;
    copy_dir(store.path(), to);
    drop(store);
    to.to_path_buf()
}

/// Every offset at which `needle` occurs in `haystack`.
pub fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return Vec::new();
    }
    (0..=haystack.len() - needle.len()).filter(|&i| &haystack[i..i + needle.len()] == needle).collect()
}

/// Flips one bit in the middle of every copy of `needle` in the file at `path`; returns
/// how many copies were damaged (the test asserts there was at least one).
pub fn flip_in_file(path: &Path, needle: &[u8]) -> usize {
    let mut bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let hits = find_all(&bytes, needle);
    for &at in &hits {
        bytes[at + needle.len() / 2] ^= 0x10;
    }
    std::fs::write(path, &bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    hits.len()
}

/// Waits for sled to let go of a dropped database's lock, then opens the store.
pub fn open(dir: &Path) -> Result<SledLogStore, raft_storage::StorageError> {
    SledLogStore::open(dir, &raft_sled::SledConfig::default())
}

/// Asserts the error names the store path and mentions `index`.
pub fn assert_names(err: &raft_storage::StorageError, path: &Path, index: u64) {
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "the error does not name {}: {msg}", path.display());
    assert!(
        msg.split(|c: char| !c.is_ascii_digit()).any(|w| w == index.to_string()),
        "the error does not name index {index}: {msg}"
    );
}
