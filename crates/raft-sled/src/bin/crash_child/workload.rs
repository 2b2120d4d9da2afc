//! The crash test's workload, shared by the child process and the test that checks it:
//! the content of every entry is a function of its index and term, and the content of
//! snapshot data a function of its index and term.

use bytes::Bytes;
use raft_core::{Entry, Index, Payload, Term};

/// The entry the child writes at `index` in `term`. Every 128th entry is large enough
/// (150 KiB) for sled to store it out of line, as a blob file.
pub fn entry(index: Index, term: Term) -> Entry {
    let len = if index % 128 == 5 { 150 * 1024 } else { (index as usize * 37) % 200 + 1 };
    let data: Vec<u8> = (0..len).map(|k| (index as usize + k) as u8 ^ 0x5a ^ term as u8).collect();
    Entry { term, index, payload: Payload::Command(Bytes::from(data)) }
}

/// The snapshot data the child stores for a snapshot at `index` in `term`.
#[allow(dead_code)]
pub fn snapshot_data(index: Index, term: Term) -> Vec<u8> {
    let mut data = index.to_le_bytes().repeat(512);
    data.extend_from_slice(&term.to_le_bytes());
    data
}

/// Entries are compacted once this many are stored, keeping the last `KEEP`.
#[allow(dead_code)]
pub const COMPACT_EVERY: Index = 300;
/// Entries kept after a compaction.
#[allow(dead_code)]
pub const KEEP: Index = 50;

/// What the child reports after each sync, one line: `synced <last index> <last term>
/// <commit> <commit term> <hard state term> <vote or 0>`. Everything in it is durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The last log index and its term.
    pub last: (Index, Term),
    /// An index below which the child never truncates, and its term (the log matching
    /// property then fixes every entry up to it).
    pub commit: (Index, Term),
    /// The hard state's term and vote.
    pub term: Term,
    /// The vote (0 for none).
    pub vote: u64,
}

impl Report {
    /// The line the child prints.
    #[allow(dead_code)]
    pub fn line(&self) -> String {
        format!(
            "synced {} {} {} {} {} {}",
            self.last.0, self.last.1, self.commit.0, self.commit.1, self.term, self.vote
        )
    }

    /// Parses a line printed by [`Report::line`].
    #[allow(dead_code)]
    pub fn parse(line: &str) -> Option<Report> {
        let mut f = line.strip_prefix("synced ")?.split(' ').map(|w| w.parse::<u64>().ok());
        let mut next = || f.next().flatten();
        Some(Report { last: (next()?, next()?), commit: (next()?, next()?), term: next()?, vote: next()? })
    }
}
