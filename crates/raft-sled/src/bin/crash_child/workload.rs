//! The crash test's workload, shared by the child process and the test that checks it:
//! the content of every entry is a function of its index.

use bytes::Bytes;
use raft_core::{Entry, Index, Payload};

/// The entry the child writes at `index`. Every 128th entry is large enough (150 KiB) for
/// sled to store it out of line, as a blob file.
pub fn entry(index: Index) -> Entry {
    let len = if index % 128 == 5 { 150 * 1024 } else { (index as usize * 37) % 200 + 1 };
    let data: Vec<u8> = (0..len).map(|k| (index as usize + k) as u8 ^ 0x5a).collect();
    Entry { term: 1 + index / 1000, index, payload: Payload::Command(Bytes::from(data)) }
}

/// Entries are compacted once this many are stored, keeping the last `KEEP`.
#[allow(dead_code)]
pub const COMPACT_EVERY: Index = 300;
/// Entries kept after a compaction.
#[allow(dead_code)]
pub const KEEP: Index = 50;
