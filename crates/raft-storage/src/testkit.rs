//! The conformance kit: [`check_conformance`] and [`check_concurrency`] run the whole
//! storage contract against any pair of [`LogStore`] and [`SnapshotStore`]
//! implementations.
//!
//! [`check_conformance`] is a model-based property test. Each case starts from empty
//! stores and runs a random sequence of operations — appends, conflicting persists
//! through [`apply_persist`], truncations, hard-state saves, compactions, snapshot
//! installs (with and without a crash between storing the data and recording its point),
//! snapshots received from a peer and staged (then promoted before or after their point
//! is persisted, discarded, left pending, or cut short by a crash), syncs, restarts and
//! misuse that must be rejected — against both the stores and a plain reference model,
//! and compares every observable after every operation. A restart reopens the stores
//! through the factory, calls [`restore`], and accepts any state between the last sync and
//! the last call (a crash may lose a suffix of the unsynced log calls, nothing else, and a
//! `Persist` is one call; snapshot calls are durable on return) that `raft_core::Node::new`
//! accepts. The generated hard states follow Raft: terms never decrease and a vote never
//! changes within its term.
//!
//! [`check_concurrency`] runs the log store and the snapshot store on two threads at once
//! — the log appending and syncing while snapshots are created, staged and promoted on
//! the other — and takes crash copies at random moments, each of which must restore and be
//! accepted by `raft_core::Node::new` without losing anything reported durable.
//!
//! Everything derives from one seed. A failing case is shrunk to a short operation list
//! and reported with the seed that replays it.

use crate::{apply_persist, restore, LogStore, SnapshotStore, StorageError};
use bytes::Bytes;
use quickcheck::{Arbitrary, Gen};
use raft_core::{Config, Entry, HardState, Index, Instant, Membership, Node, Payload, Persist, SnapshotMeta, Term};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Mutex};

/// Creates and reopens the stores under test, always as a pair opened together.
///
/// A file-backed implementation keeps a temporary directory per pair:
///
/// ```ignore
/// struct Factory(Vec<tempfile::TempDir>);
/// impl StoreFactory for Factory {
///     type Log = MyLog;
///     type Snapshots = MySnapshots;
///     fn create(&mut self) -> (MyLog, MySnapshots) {
///         self.0.push(tempfile::tempdir().unwrap());
///         my_store::open(self.0.last().unwrap().path()).unwrap()
///     }
///     fn reopen(&mut self, log: MyLog, snapshots: MySnapshots, hint: u64) -> (MyLog, MySnapshots) {
///         let copy = self.crash_copy(&log, &snapshots, hint);
///         drop((log, snapshots));
///         copy
///     }
///     fn crash_copy(&mut self, log: &MyLog, _: &MySnapshots, _hint: u64) -> (MyLog, MySnapshots) {
///         self.0.push(tempfile::tempdir().unwrap());
///         copy_dir(log.path(), self.0.last().unwrap().path()); // the files as they are now
///         my_store::open(self.0.last().unwrap().path()).unwrap()
///     }
/// }
/// ```
pub trait StoreFactory {
    /// The log store under test.
    type Log: LogStore;
    /// The snapshot store under test.
    type Snapshots: SnapshotStore;

    /// New, empty stores (a fresh directory for file-backed ones).
    fn create(&mut self) -> (Self::Log, Self::Snapshots);

    /// Closes both stores and opens them again, as a restarting node would. The reopened
    /// log may have lost any suffix of the calls made since its last sync, and nothing
    /// else; the snapshot store keeps every call that returned. `crash_hint` is a random
    /// number that a simulated store can use to choose how much to lose. A file-backed
    /// store should mostly reopen from a crash state (see [`StoreFactory::crash_copy`]),
    /// not after a clean close, which may flush everything.
    fn reopen(&mut self, log: Self::Log, snapshots: Self::Snapshots, crash_hint: u64) -> (Self::Log, Self::Snapshots);

    /// Opens, as new handles, what a crash of the process right now would leave of the two
    /// stores, which stay open and in use (a file-backed store copies its files as they
    /// are now, while writers may be open on other threads).
    fn crash_copy(
        &mut self,
        log: &Self::Log,
        snapshots: &Self::Snapshots,
        crash_hint: u64,
    ) -> (Self::Log, Self::Snapshots);
}

/// How much to run. [`Conformance::default`] reads `RAFT_STORAGE_SEED` and
/// `RAFT_STORAGE_CASES` from the environment (to replay a failure or run longer).
#[derive(Clone, Debug)]
pub struct Conformance {
    /// The seed of case 0; case `i` uses `seed + i`.
    pub seed: u64,
    /// The number of cases (each starts from an empty store).
    pub cases: u64,
    /// The maximum number of operations per case.
    pub max_ops: usize,
}

impl Default for Conformance {
    fn default() -> Self {
        let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        Conformance {
            seed: env("RAFT_STORAGE_SEED").unwrap_or(0x5EED),
            cases: env("RAFT_STORAGE_CASES").unwrap_or(48),
            max_ops: 150,
        }
    }
}

/// Runs the storage contract against stores made by `factory`.
///
/// # Panics
///
/// On the first contract violation, after shrinking the failing case, with a message that
/// names the violation, the operations that reproduce it and the seed that replays it.
pub fn check_conformance<F: StoreFactory>(factory: &mut F, config: &Conformance) {
    for case in 0..config.cases {
        let seed = config.seed.wrapping_add(case);
        let ops = generate(seed, config.max_ops);
        let Err(error) = run_case(factory, &ops) else { continue };
        let (ops, error) = shrink(factory, ops, error);
        let mut listing = String::new();
        for (i, op) in ops.iter().enumerate() {
            let _ = writeln!(listing, "  {i:3}: {op:?}");
        }
        panic!(
            "storage conformance failed: {error}\nafter these operations (shrunk):\n{listing}\
             replay with RAFT_STORAGE_SEED={seed} RAFT_STORAGE_CASES=1"
        );
    }
}

/// One operation. Fields are raw random numbers, interpreted against the current state
/// when the operation runs, so that any subsequence of a case is still a valid case
/// (operations that do not apply are skipped).
#[derive(Clone, Debug)]
enum Op {
    /// `store.append` of 1..=4 entries continuing the log.
    Append { count: u8, term_bump: u8, kind: u8, seed: u32 },
    /// `apply_persist` replacing a suffix above the commit index, maybe with a hard state
    /// and a compaction (whose data is stored first).
    Persist { start: u16, count: u8, term_bump: u8, hard_state: bool, compact: Option<u16>, seed: u32 },
    /// A snapshot install from a leader: data stored past the commit index, then (unless
    /// `data_only`, a crash in between) `apply_persist` with the point, a hard state and
    /// entries appended after it in the same persist.
    Install { ahead: u8, term_bump: u8, then_append: u8, data_only: bool, seed: u32 },
    /// A snapshot received from a leader, past the commit index, staged; then, by
    /// `outcome`: discarded; installed (read back from the slot, promoted, then its point
    /// persisted); left staged (a decision still pending); cut short by a crash; or its
    /// point persisted first and a crash before the promotion.
    Receive { ahead: u8, term_bump: u8, then_append: u8, outcome: u8, sync: bool, seed: u32 },
    /// A local snapshot at or below the commit index: data stored, then (unless
    /// `data_only`) the point recorded directly or through `apply_persist`.
    Compact { at: u16, data_only: bool, via_persist: bool, seed: u32 },
    /// `store.save_hard_state`.
    SaveHardState { term_bump: u8, vote: u8, commit: u16 },
    /// `store.truncate_from` above the commit index.
    Truncate { at: u16 },
    /// `store.sync`.
    Sync,
    /// Reopen through the factory, then `restore`.
    Reopen { hint: u64 },
    /// An append that must be rejected (a gap, or a term going backwards).
    BadAppend { kind: u8 },
    /// A truncation into the snapshot, which must be rejected.
    BadTruncate,
    /// Snapshots behind the latest one: a finish must keep the latest (returning false),
    /// a promotion must be refused; the stale staged snapshot is then discarded.
    Stale { seed: u32 },
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Self {
        let mut next = || u64::arbitrary(g);
        Op::generate(&mut next)
    }
}

impl Op {
    fn generate(next: &mut impl FnMut() -> u64) -> Op {
        let small = |n: u64| (n % 256) as u8;
        match next() % 100 {
            0..=29 => {
                Op::Append { count: small(next()), term_bump: bump(next()), kind: small(next()), seed: next() as u32 }
            }
            30..=47 => Op::Persist {
                start: next() as u16,
                count: small(next()),
                term_bump: bump(next()),
                hard_state: next() % 2 == 0,
                compact: if next() % 4 == 0 { Some(next() as u16) } else { None },
                seed: next() as u32,
            },
            48..=50 => Op::Install {
                ahead: small(next()),
                term_bump: bump(next()),
                then_append: small(next()),
                data_only: next() % 4 == 0,
                seed: next() as u32,
            },
            51..=54 => Op::Receive {
                ahead: small(next()),
                term_bump: bump(next()),
                then_append: small(next()),
                outcome: small(next()),
                sync: next() % 2 == 0,
                seed: next() as u32,
            },
            55..=58 => Op::Compact {
                at: next() as u16,
                data_only: next() % 4 == 0,
                via_persist: next() % 2 == 0,
                seed: next() as u32,
            },
            59..=66 => Op::SaveHardState { term_bump: bump(next()), vote: small(next()), commit: next() as u16 },
            67..=74 => Op::Truncate { at: next() as u16 },
            75..=86 => Op::Sync,
            87..=94 => Op::Reopen { hint: next() },
            95..=96 => Op::BadAppend { kind: small(next()) },
            97 => Op::Stale { seed: next() as u32 },
            _ => Op::BadTruncate,
        }
    }
}

/// The vote a Raft node may store in `term`, wanting `wanted`: a vote, once cast, never
/// changes within its term (a store may rely on it to detect a forgotten vote).
fn raft_vote(old: &HardState, term: Term, wanted: Option<u64>) -> Option<u64> {
    if term == old.term && old.vote.is_some() {
        old.vote
    } else {
        wanted
    }
}

/// Terms mostly stay, sometimes advance.
fn bump(n: u64) -> u8 {
    u8::from(n % 4 == 0)
}

/// A case's operations, from a splitmix64 generator seeded with `seed`.
fn generate(seed: u64, max_ops: usize) -> Vec<Op> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let len = (next() as usize % max_ops.max(1)) + 1;
    (0..len).map(|_| Op::generate(&mut next)).collect()
}

/// Greedy shrinking with quickcheck's vector shrinker, bounded in runs.
fn shrink<F: StoreFactory>(factory: &mut F, mut ops: Vec<Op>, mut error: String) -> (Vec<Op>, String) {
    let mut budget = 400;
    'outer: while budget > 0 {
        for candidate in ops.shrink() {
            budget -= 1;
            if let Err(e) = run_case(factory, &candidate) {
                ops = candidate;
                error = e;
                continue 'outer;
            }
            if budget == 0 {
                break;
            }
        }
        break;
    }
    (ops, error)
}

/// The reference model of the log side of a store.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
struct ModelLog {
    hard_state: HardState,
    point: SnapshotMeta,
    /// Entries after the point, consecutive.
    entries: Vec<Entry>,
}

impl ModelLog {
    fn last_index(&self) -> Index {
        self.point.index + self.entries.len() as Index
    }

    fn last_term(&self) -> Term {
        self.entries.last().map_or(self.point.term, |e| e.term)
    }

    fn term(&self, index: Index) -> Option<Term> {
        if index == self.point.index {
            return Some(self.point.term);
        }
        if index < self.point.index || index > self.last_index() {
            return None;
        }
        Some(self.entries[(index - self.point.index - 1) as usize].term)
    }

    fn truncate_from(&mut self, index: Index) {
        self.entries.truncate((index - self.point.index - 1) as usize);
    }

    fn append(&mut self, entries: &[Entry]) {
        self.entries.extend_from_slice(entries);
    }

    fn set_point(&mut self, meta: &SnapshotMeta) {
        if self.term(meta.index) == Some(meta.term) {
            self.entries.drain(..(meta.index - self.point.index) as usize);
        } else {
            self.entries.clear();
        }
        self.point = meta.clone();
    }

    /// The commit index bounds what may be truncated or compacted.
    fn commit(&self) -> Index {
        self.hard_state.commit
    }
}

struct Model {
    log: ModelLog,
    /// The states a crash may leave: the synced one first, then one per later store call.
    window: Vec<ModelLog>,
    /// The latest snapshot.
    data: Option<(SnapshotMeta, Vec<u8>)>,
    /// The staged snapshot.
    staged: Option<(SnapshotMeta, Vec<u8>)>,
}

impl Model {
    /// Records the state after one store call.
    fn changed(&mut self) {
        self.window.push(self.log.clone());
    }

    /// The persist semantics, one store call at a time (a crash may stop between calls):
    /// the snapshot point, then the entries (truncate, append), then the hard state.
    fn apply_persist(&mut self, p: &Persist) {
        if let Some(s) = &p.snapshot {
            self.log.set_point(s);
            self.changed();
        }
        if let Some(first) = p.entries.first() {
            if first.index <= self.log.last_index() {
                self.log.truncate_from(first.index);
                self.changed();
            }
            self.log.append(&p.entries);
            self.changed();
        }
        if let Some(hs) = p.hard_state {
            self.log.hard_state = hs;
            self.changed();
        }
    }

    fn data_index(&self) -> Index {
        self.data.as_ref().map_or(0, |(m, _)| m.index)
    }

    /// What [`restore`] makes of the log state `c`: the staged snapshot promoted if the
    /// point names it and it is newer than the latest one, then the point moved to a newer
    /// latest snapshot (with the term raised to its). Returns the log and the latest
    /// snapshot.
    fn restored(&self, c: &ModelLog) -> (ModelLog, Option<(SnapshotMeta, Vec<u8>)>) {
        let mut c = c.clone();
        let mut data = self.data.clone();
        if let Some((staged, bytes)) = &self.staged {
            let named = staged.index == c.point.index && staged.term == c.point.term;
            if named && data.as_ref().is_none_or(|(d, _)| d.index < staged.index) {
                data = Some((staged.clone(), bytes.clone()));
            }
        }
        if let Some((d, _)) = &data {
            if d.index > c.point.index {
                c.set_point(d);
                if c.hard_state.term < d.term {
                    c.hard_state = HardState { term: d.term, vote: None, ..c.hard_state };
                }
            }
        }
        (c, data)
    }
}

fn check<T: PartialEq + std::fmt::Debug>(what: &str, store: T, model: T) -> Result<(), String> {
    if store == model {
        Ok(())
    } else {
        Err(format!("{what}: the store has {store:?}, the model expects {model:?}"))
    }
}

fn ok<T>(what: &str, r: Result<T, StorageError>) -> Result<T, String> {
    r.map_err(|e| format!("{what} failed: {e}"))
}

fn run_case<F: StoreFactory>(factory: &mut F, ops: &[Op]) -> Result<(), String> {
    let mut store = Some(factory.create());
    let mut model = Model { log: ModelLog::default(), window: vec![ModelLog::default()], data: None, staged: None };
    for (i, op) in ops.iter().enumerate() {
        let result = catch_unwind(AssertUnwindSafe(|| run_op(factory, &mut store, &mut model, op)));
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("operation {i} ({op:?}): {e}")),
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                return Err(format!("operation {i} ({op:?}) panicked: {msg}"));
            }
        }
        let (log, snapshots) = store.as_ref().expect("the stores are present between operations");
        let read_data = matches!(
            op,
            Op::Reopen { .. }
                | Op::Install { .. }
                | Op::Receive { .. }
                | Op::Compact { .. }
                | Op::Persist { .. }
                | Op::Stale { .. }
        );
        verify(log, snapshots, &model, read_data).map_err(|e| format!("after operation {i} ({op:?}): {e}"))?;
    }
    Ok(())
}

fn payload(kind: u8, seed: u32, index: Index) -> Payload {
    match kind % 16 {
        0 => Payload::Noop,
        1 => Payload::Membership(Box::new(Membership::with_voters([1, 2, index % 5 + 3]))),
        // Rarely, an entry large enough that a paged engine stores it out of line.
        2 if seed % 8 == 0 => Payload::Command(Bytes::from(vec![(index % 251) as u8; 200 * 1024 + index as usize % 7])),
        _ => {
            let len = (seed as usize ^ index as usize) % 120;
            Payload::Command(Bytes::from((0..len).map(|k| (k as u64 ^ index ^ seed as u64) as u8).collect::<Vec<_>>()))
        }
    }
}

fn make_entries(from: Index, count: u64, term: Term, kind: u8, seed: u32) -> Vec<Entry> {
    // At most one large entry per call.
    let kind = if count > 1 && kind % 16 == 2 { 3 } else { kind };
    (from..from + count).map(|index| Entry { term, index, payload: payload(kind, seed, index) }).collect()
}

fn snapshot_bytes(seed: u32, index: Index) -> Vec<u8> {
    let len = (seed as usize % 3000) + usize::from(seed % 5 == 0) * 70_000;
    (0..len).map(|k| (k as u64).wrapping_mul(31).wrapping_add(index ^ seed as u64) as u8).collect()
}

/// Streams a snapshot into the store; `finish` it (a local snapshot) or `stage` it (one
/// received from a peer).
fn store_data<S: SnapshotStore>(
    snapshots: &mut S,
    model: &mut Model,
    meta: &SnapshotMeta,
    seed: u32,
    staged: bool,
) -> Result<(), String> {
    let bytes = snapshot_bytes(seed, meta.index);
    let mut writer = ok("begin", snapshots.begin(meta))?;
    // Several writes, as a streaming producer would make.
    for chunk in bytes.chunks(4096) {
        writer.write_all(chunk).map_err(|e| format!("writing snapshot data failed: {e}"))?;
    }
    if staged {
        ok("stage", snapshots.stage(writer))?;
        model.staged = Some((meta.clone(), bytes));
    } else {
        if !ok("finish", snapshots.finish(writer))? {
            return Err(format!("finish of snapshot {} (not behind the latest) returned false", meta.index));
        }
        model.data = Some((meta.clone(), bytes));
    }
    Ok(())
}

/// Reads a whole snapshot back.
fn read_all(what: &str, opened: Option<(SnapshotMeta, impl Read)>) -> Result<Option<(SnapshotMeta, Vec<u8>)>, String> {
    let Some((meta, mut reader)) = opened else { return Ok(None) };
    let mut got = Vec::new();
    reader.read_to_end(&mut got).map_err(|e| format!("reading the {what} snapshot failed: {e}"))?;
    Ok(Some((meta, got)))
}

fn membership(seed: u32) -> Membership {
    let mut m = Membership::with_voters([1, 2, 3 + seed as u64 % 3]);
    if seed % 3 == 0 {
        m.learners.insert(9);
    }
    m
}

fn run_op<F: StoreFactory>(
    factory: &mut F,
    slot: &mut Option<(F::Log, F::Snapshots)>,
    model: &mut Model,
    op: &Op,
) -> Result<(), String> {
    let (store, snapshots) = slot.as_mut().expect("the stores are present between operations");
    let log = &model.log;
    let (point, last, commit) = (log.point.index, log.last_index(), log.commit());
    match *op {
        Op::Append { count, term_bump, kind, seed } => {
            let count = u64::from(count % 4) + 1;
            // A node appends in its current term at most: a raw append never raises the
            // last log term past the stored hard state's (which `Node::new` would refuse).
            let term = if term_bump > 0 { log.hard_state.term.max(log.last_term()) } else { log.last_term() };
            let entries = make_entries(last + 1, count, term, kind, seed);
            ok("append", store.append(&entries))?;
            model.log.append(&entries);
            model.changed();
        }
        Op::Persist { start, count, term_bump, hard_state, compact, seed } => {
            let lo = commit.max(point) + 1;
            let start = lo + Index::from(start) % (last + 2 - lo);
            let count = u64::from(count % 5);
            // A leader's entries replacing a suffix carry at least the last term seen; a
            // new term comes with the hard state that records it.
            let term = if hard_state {
                log.last_term() + Term::from(term_bump)
            } else {
                log.last_term().max(log.hard_state.term.min(log.last_term() + Term::from(term_bump)))
            };
            let entries = make_entries(start, count, term, seed as u8, seed);
            let new_last = if count > 0 { start + count - 1 } else { last };
            let hs = hard_state.then(|| HardState {
                term: log.hard_state.term.max(term),
                vote: raft_vote(&log.hard_state, log.hard_state.term.max(term), Some(u64::from(seed % 3) + 1)),
                commit: commit + Index::from(seed) % (new_last - commit + 1),
                // A restart takes the next incarnation with its first persist.
                incarnation: log.hard_state.incarnation + u64::from(seed % 2),
            });
            let lo_c = point.max(model.data_index());
            let snapshot = match compact {
                Some(at) if lo_c <= commit => {
                    let c = lo_c + Index::from(at) % (commit - lo_c + 1);
                    let term = log.term(c).expect("c is in the log");
                    let meta = SnapshotMeta { index: c, term, membership: membership(seed) };
                    store_data(snapshots, model, &meta, seed, false)?;
                    Some(meta)
                }
                _ => None,
            };
            let persist = Persist { seq: 1, hard_state: hs, entries: entries.into(), snapshot: snapshot.map(Box::new) };
            ok("apply_persist", apply_persist(store, &persist))?;
            model.apply_persist(&persist);
        }
        Op::Install { ahead, term_bump, then_append, data_only, seed } => {
            let s = commit.max(point).max(model.data_index()) + 1 + Index::from(ahead % 4);
            let term = log.last_term() + Term::from(term_bump);
            let hs_term = log.hard_state.term.max(term);
            let hs = HardState {
                term: hs_term,
                vote: raft_vote(&log.hard_state, hs_term, None),
                commit: s,
                ..log.hard_state
            };
            let meta = SnapshotMeta { index: s, term, membership: membership(seed) };
            store_data(snapshots, model, &meta, seed, false)?;
            if data_only {
                // A crash before the persist recording the point: the core had reset its
                // log to the snapshot, so nothing else may happen before the restart.
                reopen(factory, slot, model, u64::from(seed))?;
            } else {
                let entries = make_entries(s + 1, u64::from(then_append % 3), term, seed as u8, seed);
                let persist =
                    Persist { seq: 1, hard_state: Some(hs), entries: entries.into(), snapshot: Some(Box::new(meta)) };
                ok("apply_persist (snapshot install)", apply_persist(store, &persist))?;
                model.apply_persist(&persist);
            }
        }
        Op::Receive { ahead, term_bump, then_append, outcome, sync, seed } => {
            let s = commit.max(point).max(model.data_index()) + 1 + Index::from(ahead % 4);
            let term = log.last_term() + Term::from(term_bump);
            let hs_term = log.hard_state.term.max(term);
            let hs = HardState {
                term: hs_term,
                vote: raft_vote(&log.hard_state, hs_term, None),
                commit: s,
                ..log.hard_state
            };
            let meta = SnapshotMeta { index: s, term, membership: membership(seed) };
            let entries = make_entries(s + 1, u64::from(then_append % 3), term, seed as u8, seed);
            let persist = Persist {
                seq: 1,
                hard_state: Some(hs),
                entries: entries.into(),
                snapshot: Some(Box::new(meta.clone())),
            };
            store_data(snapshots, model, &meta, seed, true)?;
            check("staged meta after stage", snapshots.staged(), Some(meta.clone()))?;
            match outcome % 5 {
                0 => {
                    ok("discard_staged", snapshots.discard_staged())?;
                    model.staged = None;
                }
                1 => {
                    // Install: the state machine reads the staged snapshot, then it is
                    // promoted, then the core persists its point.
                    let got = read_all("staged", ok("open_staged", snapshots.open_staged())?)?;
                    check("staged snapshot read back", got.as_ref(), model.staged.as_ref())?;
                    check("promoted meta", ok("promote", snapshots.promote())?, meta)?;
                    model.data = model.staged.take();
                    ok("apply_persist (staged install)", apply_persist(store, &persist))?;
                    model.apply_persist(&persist);
                    if sync {
                        ok("sync", store.sync())?;
                        model.window = vec![model.log.clone()];
                    }
                }
                2 => {
                    // Still undecided: later operations run with a snapshot staged.
                }
                3 => {
                    // A crash before the core decided: the staged snapshot must not
                    // replace the latest one.
                    reopen(factory, slot, model, u64::from(seed))?;
                }
                _ => {
                    // The point reaches the log first (maybe durably), then a crash
                    // before the promotion: restore promotes it only if the point survived.
                    ok("apply_persist (point before promotion)", apply_persist(store, &persist))?;
                    model.apply_persist(&persist);
                    if sync {
                        ok("sync", store.sync())?;
                        model.window = vec![model.log.clone()];
                    }
                    reopen(factory, slot, model, u64::from(seed))?;
                }
            }
        }
        Op::Compact { at, data_only, via_persist, seed } => {
            let lo = point.max(model.data_index());
            if lo > commit {
                return Ok(());
            }
            let c = lo + Index::from(at) % (commit - lo + 1);
            let meta =
                SnapshotMeta { index: c, term: log.term(c).expect("c is in the log"), membership: membership(seed) };
            store_data(snapshots, model, &meta, seed, false)?;
            if !data_only {
                if via_persist {
                    let persist = Persist {
                        seq: 1,
                        hard_state: None,
                        entries: Default::default(),
                        snapshot: Some(Box::new(meta)),
                    };
                    ok("apply_persist (compaction)", apply_persist(store, &persist))?;
                    model.apply_persist(&persist);
                } else {
                    ok("set_snapshot_point", store.set_snapshot_point(&meta))?;
                    model.log.set_point(&meta);
                    model.changed();
                }
            }
        }
        Op::SaveHardState { term_bump, vote, commit: c } => {
            let term = log.hard_state.term + Term::from(term_bump);
            let hs = HardState {
                term,
                vote: raft_vote(&log.hard_state, term, (vote % 5 != 0).then_some(u64::from(vote % 5))),
                commit: commit + Index::from(c) % (last - commit + 1),
                incarnation: log.hard_state.incarnation + 1,
            };
            ok("save_hard_state", store.save_hard_state(&hs))?;
            model.log.hard_state = hs;
            model.changed();
        }
        Op::Truncate { at } => {
            let lo = commit.max(point) + 1;
            if lo > last {
                return Ok(());
            }
            let at = lo + Index::from(at) % (last - lo + 2);
            ok("truncate_from", store.truncate_from(at))?;
            if at <= last {
                model.log.truncate_from(at);
                model.changed();
            }
        }
        Op::Sync => {
            ok("sync", store.sync())?;
            model.window = vec![model.log.clone()];
        }
        Op::Reopen { hint } => reopen(factory, slot, model, hint)?,
        Op::BadAppend { kind } => {
            let last_term = log.last_term();
            let (entries, what) = if kind % 2 == 0 || last_term == 0 {
                (make_entries(last + 2, 1, last_term, 3, 7), "an append leaving a gap")
            } else {
                let mut e = make_entries(last + 1, 2, last_term, 3, 7);
                e[1].term = last_term - 1;
                (e, "an append whose term goes backwards")
            };
            if store.append(&entries).is_ok() {
                return Err(format!("{what} was accepted"));
            }
        }
        Op::Stale { seed } => {
            let latest = model.data_index();
            if latest == 0 {
                return Ok(());
            }
            let meta = SnapshotMeta { index: Index::from(seed) % latest, term: 0, membership: membership(seed) };
            let mut writer = ok("begin", snapshots.begin(&meta))?;
            writer.write_all(b"stale").map_err(|e| format!("writing snapshot data failed: {e}"))?;
            if ok("finish (stale)", snapshots.finish(writer))? {
                return Err(format!("finish of snapshot {} behind the latest {latest} returned true", meta.index));
            }
            store_data(snapshots, model, &meta, seed, true)?;
            match snapshots.promote() {
                Err(StorageError::StaleSnapshot { .. }) => {}
                other => {
                    return Err(format!(
                        "promoting snapshot {} behind the latest {latest}: {:?}, not StaleSnapshot",
                        meta.index,
                        other.map_err(|e| e.to_string())
                    ))
                }
            }
            ok("discard_staged", snapshots.discard_staged())?;
            model.staged = None;
        }
        Op::BadTruncate => {
            if store.truncate_from(point).is_ok() {
                return Err(format!("truncating at the snapshot point {point} was accepted"));
            }
        }
    }
    Ok(())
}

/// Reopens the store, restores it, and checks it holds one of the states a crash may
/// leave (after moving the point to newer snapshot data, as `restore` does).
fn reopen<F: StoreFactory>(
    factory: &mut F,
    slot: &mut Option<(F::Log, F::Snapshots)>,
    model: &mut Model,
    hint: u64,
) -> Result<(), String> {
    let (log, snapshots) = slot.take().expect("the stores are present between operations");
    let (log, snapshots) = slot.insert(factory.reopen(log, snapshots, hint));
    let restored = ok("restore after reopen", restore(log, snapshots))?;
    check("staged snapshot after restore", snapshots.staged(), None)?;
    let latest = snapshots.latest();
    let mut found = None;
    for candidate in model.window.iter().rev() {
        let (c, data) = model.restored(candidate);
        if restored.hard_state == c.hard_state
            && restored.snapshot == c.point
            && restored.entries == c.entries
            && latest == data.as_ref().map(|(m, _)| m.clone())
        {
            found = Some((c, data));
            break;
        }
    }
    let Some((state, data)) = found else {
        return Err(format!(
            "the reopened stores restored a state that no prefix of the unsynced calls explains: \
             hard state {:?}, snapshot point {:?}, entries {}..={}, latest snapshot {:?}; the synced state \
             was hard state {:?}, point {:?}, entries up to {}; latest snapshot {:?}, staged {:?}",
            restored.hard_state,
            restored.snapshot,
            restored.snapshot.index + 1,
            restored.snapshot.index + restored.entries.len() as Index,
            latest,
            model.window[0].hard_state,
            model.window[0].point,
            model.window[0].last_index(),
            model.data.as_ref().map(|(m, _)| m),
            model.staged.as_ref().map(|(m, _)| m),
        ));
    };
    check("restored applied index", restored.applied, state.point.index)?;
    // The state must be one a node can restart from (a persist torn between its entries
    // and its hard state, for one, is not: the log's last term would pass the stored term).
    if let Err(e) = Node::new(Config::new(1), restored.clone(), Instant::ZERO) {
        return Err(format!(
            "Node::new refuses the reopened state ({e}): hard state {:?}, snapshot point {:?}, last log term {}",
            restored.hard_state,
            restored.snapshot,
            restored.entries.last().map_or(restored.snapshot.term, |e| e.term),
        ));
    }
    model.log = state;
    model.window = vec![model.log.clone()];
    model.data = data;
    model.staged = None;
    Ok(())
}

/// Compares every observable of the stores with the model.
fn verify<L: LogStore, S: SnapshotStore>(
    store: &L,
    snapshots: &S,
    model: &Model,
    read_data: bool,
) -> Result<(), String> {
    let log = &model.log;
    check("hard state", store.hard_state(), log.hard_state)?;
    check("snapshot point", store.snapshot_point(), log.point.clone())?;
    check("first index", store.first_index(), log.point.index + 1)?;
    check("last index", store.last_index(), log.last_index())?;
    let (first, last) = (log.point.index + 1, log.last_index());
    let mut probes = vec![log.point.index, last, last + 1, first + (last - log.point.index) / 2];
    if log.point.index > 0 {
        probes.push(log.point.index - 1);
    }
    for i in probes {
        check(&format!("term at {i}"), ok("term", store.term(i))?, log.term(i))?;
    }
    // All entries for a short log, a window at each end for a long one.
    let mut ranges: Vec<Range<Index>> = Vec::new();
    if last + 1 - first <= 48 {
        ranges.push(first..last + 1);
    } else {
        ranges.extend([first..first + 16, last - 15..last + 1]);
    }
    for r in ranges {
        let got = ok("entries", store.entries(r.clone()))?;
        let want = &log.entries[(r.start - first) as usize..(r.end - first) as usize];
        if got != want {
            let bad = got.iter().zip(want).find(|(g, w)| g != w).map(|(g, _)| g.index);
            return Err(format!(
                "entries {r:?}: the store returned {} entries, differing from the model at {bad:?}",
                got.len()
            ));
        }
    }
    check("empty range", ok("entries", store.entries(last + 1..last + 1))?.len(), 0)?;
    if store.entries(first - 1..first).is_ok() {
        return Err(format!("entries at the snapshot point {} were served", first - 1));
    }
    if store.entries(last + 1..last + 2).is_ok() {
        return Err(format!("entries past the last index {last} were served"));
    }
    check("latest snapshot meta", snapshots.latest(), model.data.as_ref().map(|(m, _)| m.clone()))?;
    check("staged snapshot meta", snapshots.staged(), model.staged.as_ref().map(|(m, _)| m.clone()))?;
    if read_data {
        let got = read_all("latest", ok("open_latest", snapshots.open_latest())?)?;
        if got != model.data {
            return Err(format!(
                "open_latest: the store returned {:?}, the model expects {:?}",
                got.map(|(m, b)| (m, b.len())),
                model.data.as_ref().map(|(m, b)| (m, b.len()))
            ));
        }
        let got = read_all("staged", ok("open_staged", snapshots.open_staged())?)?;
        if got != model.staged {
            return Err(format!(
                "open_staged: the store returned {:?}, the model expects {:?}",
                got.map(|(m, b)| (m, b.len())),
                model.staged.as_ref().map(|(m, b)| (m, b.len()))
            ));
        }
    }
    Ok(())
}

/// How much [`check_concurrency`] runs. [`Concurrency::default`] reads `RAFT_STORAGE_SEED`
/// from the environment.
#[derive(Clone, Debug)]
pub struct Concurrency {
    /// The seed of case 0; case `i` uses `seed + i`.
    pub seed: u64,
    /// The number of cases (each starts from empty stores).
    pub cases: u64,
    /// Log syncs per case.
    pub syncs: u64,
    /// The size of each snapshot written on the other thread, in bytes.
    pub snapshot_bytes: usize,
    /// Crash copies taken per case, at random moments.
    pub crash_copies: usize,
}

impl Default for Concurrency {
    fn default() -> Self {
        let seed = std::env::var("RAFT_STORAGE_SEED").ok().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0xC0C0);
        Concurrency { seed, cases: 4, syncs: 80, snapshot_bytes: 1 << 20, crash_copies: 6 }
    }
}

/// The entry the concurrency check writes at `index`.
fn concurrent_entry(index: Index) -> Entry {
    let len = (index as usize * 13) % 90;
    Entry { term: 1, index, payload: Payload::Command(Bytes::from(vec![(index % 251) as u8; len])) }
}

/// Chunk `k` of the snapshot at `index`: the bytes are a function of both.
fn concurrent_chunk(index: Index, k: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u64 ^ index.wrapping_mul(7919) ^ k as u64) as u8).collect()
}

const CHUNK: usize = 64 * 1024;

/// Streams the snapshot at `index` of `total` bytes into `w`.
fn write_concurrent_snapshot(w: &mut impl Write, index: Index, total: usize) -> std::io::Result<()> {
    let mut k = 0;
    while k * CHUNK < total {
        w.write_all(&concurrent_chunk(index, k, CHUNK.min(total - k * CHUNK)))?;
        k += 1;
    }
    Ok(())
}

/// Reads a snapshot written by [`write_concurrent_snapshot`] and compares it chunk by chunk.
fn check_concurrent_snapshot(r: &mut impl Read, index: Index, total: usize) -> Result<(), String> {
    let mut k = 0;
    let mut buf = vec![0; CHUNK];
    while k * CHUNK < total {
        let len = CHUNK.min(total - k * CHUNK);
        r.read_exact(&mut buf[..len]).map_err(|e| format!("reading snapshot {index}, chunk {k}: {e}"))?;
        if buf[..len] != concurrent_chunk(index, k, len)[..] {
            return Err(format!("snapshot {index}: chunk {k} differs from what was written"));
        }
        k += 1;
    }
    if r.read(&mut buf[..1]).map_err(|e| format!("reading past snapshot {index}: {e}"))? != 0 {
        return Err(format!("snapshot {index} is longer than the {total} bytes written"));
    }
    Ok(())
}

/// What the worker thread reports: a snapshot finished (or promoted) and durable.
type Done = Result<SnapshotMeta, String>;

/// Runs the log store and the snapshot store on two threads at once.
///
/// Each case bootstraps nothing and starts with a synced log. The main thread then appends
/// and syncs `syncs` times (one `Persist` per sync, the commit index following the log);
/// a worker thread owns snapshot work: for every request it streams `snapshot_bytes`
/// bytes into a writer, then either finishes it (a local snapshot) or stages it, reads it
/// back from the slot and promotes it (an install), and reports it durable. The main
/// thread records each reported snapshot's point in its next `Persist`, as the core would.
/// The snapshot store sits behind a mutex taken only for the store calls, never while the
/// worker streams bytes, so the log keeps syncing while a writer is open.
///
/// At `crash_copies` random moments (after a persist and before its sync, or after the
/// sync) it takes a crash copy through [`StoreFactory::crash_copy`] and checks that it
/// restores, that `raft_core::Node::new` accepts it, that every entry is the one written
/// and none synced is lost, that the latest snapshot is at least the last one reported
/// durable and reads back byte for byte, and that nothing staged survives [`restore`].
/// Finally the stores are reopened through [`StoreFactory::reopen`] and checked the same
/// way.
///
/// # Panics
///
/// On the first violation, with the case's seed.
pub fn check_concurrency<F: StoreFactory>(factory: &mut F, config: &Concurrency) {
    for case in 0..config.cases {
        let seed = config.seed.wrapping_add(case);
        if let Err(e) = concurrent_case(factory, config, seed) {
            panic!("storage concurrency check failed: {e}\nreplay with RAFT_STORAGE_SEED={seed}");
        }
    }
}

/// What a crash copy must keep.
struct Reported {
    /// The last index a sync returned for.
    synced_last: Index,
    /// The newest snapshot reported durable by the worker.
    snapshot: Option<SnapshotMeta>,
}

fn concurrent_case<F: StoreFactory>(factory: &mut F, config: &Concurrency, seed: u64) -> Result<(), String> {
    let mut rng = seed | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (mut log, snapshots) = factory.create();
    let first: Vec<Entry> = (1..=20).map(concurrent_entry).collect();
    ok("append", log.append(&first))?;
    ok("save_hard_state", log.save_hard_state(&HardState { term: 1, vote: Some(1), commit: 20, incarnation: 1 }))?;
    ok("sync", log.sync())?;
    let copies: Vec<(u64, bool)> = (0..config.crash_copies).map(|_| (next() % config.syncs, next() % 2 == 0)).collect();
    let snapshots = Mutex::new(snapshots);
    let bytes = config.snapshot_bytes;
    let mut reported = Reported { synced_last: 20, snapshot: None };
    let (request_tx, request_rx) = mpsc::channel::<(SnapshotMeta, bool)>();
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    let result = std::thread::scope(|scope| {
        let store = &snapshots;
        scope.spawn(move || {
            for (meta, staged) in request_rx {
                let done = worker_snapshot(store, &meta, staged, bytes).map(|()| meta);
                if done_tx.send(done).is_err() {
                    break;
                }
            }
        });
        let mut outstanding = false;
        let mut pending_point: Option<SnapshotMeta> = None;
        let mut requests = 0u64;
        let mut copies_taken = 0;
        // Four times per case the log waits for the snapshot in progress, so that every
        // case finishes and promotes some however the two threads are scheduled.
        let wait_every = (config.syncs / 4).max(1);
        for i in 0..config.syncs {
            if outstanding && i % wait_every == wait_every - 1 {
                let done = done_rx.recv().map_err(|_| "the worker stopped".to_string())?;
                let meta = done?;
                outstanding = false;
                reported.snapshot = Some(meta.clone());
                pending_point = Some(meta);
            }
            for done in done_rx.try_iter() {
                let meta = done?;
                outstanding = false;
                reported.snapshot = Some(meta.clone());
                pending_point = Some(meta);
            }
            let last = log.last_index();
            let count = 1 + next() % 6;
            let entries: Vec<Entry> = (last + 1..=last + count).map(concurrent_entry).collect();
            let hs = HardState { term: 1, vote: Some(1), commit: last + count, incarnation: 1 };
            let persist = Persist {
                seq: i + 1,
                hard_state: Some(hs),
                entries: entries.into(),
                snapshot: pending_point.take().map(Box::new),
            };
            ok("apply_persist", apply_persist(&mut log, &persist))?;
            for &(at, before_sync) in &copies {
                if at == i && before_sync {
                    copies_taken += 1;
                    let (l, s) = {
                        let guard = snapshots.lock().map_err(|_| "the worker panicked".to_string())?;
                        factory.crash_copy(&log, &guard, next())
                    };
                    check_restored(l, s, &reported, bytes).map_err(|e| format!("crash copy before sync {i}: {e}"))?;
                }
            }
            ok("sync", log.sync())?;
            reported.synced_last = log.last_index();
            for &(at, before_sync) in &copies {
                if at == i && !before_sync {
                    copies_taken += 1;
                    let (l, s) = {
                        let guard = snapshots.lock().map_err(|_| "the worker panicked".to_string())?;
                        factory.crash_copy(&log, &guard, next())
                    };
                    check_restored(l, s, &reported, bytes).map_err(|e| format!("crash copy after sync {i}: {e}"))?;
                }
            }
            if !outstanding {
                // A snapshot at the commit index, which the log agrees with.
                let index = log.last_index();
                let meta = SnapshotMeta { index, term: 1, membership: Membership::with_voters([1]) };
                requests += 1;
                request_tx.send((meta, requests % 2 == 0)).map_err(|_| "the worker stopped".to_string())?;
                outstanding = true;
            }
        }
        drop(request_tx);
        for done in done_rx.iter() {
            reported.snapshot = Some(done?);
        }
        if copies_taken != config.crash_copies {
            return Err(format!("{copies_taken} crash copies taken, {} planned", config.crash_copies));
        }
        if requests < 4 {
            return Err(format!("only {requests} snapshots were requested in {} syncs", config.syncs));
        }
        Ok(())
    });
    result?;
    let snapshots = snapshots.into_inner().map_err(|_| "the worker panicked".to_string())?;
    let (l, s) = factory.reopen(log, snapshots, next());
    check_restored(l, s, &reported, bytes).map_err(|e| format!("after the final reopen: {e}"))
}

/// The worker's part: stream a snapshot without holding the store, then finish it, or
/// stage, read back and promote it.
fn worker_snapshot<S: SnapshotStore>(
    store: &Mutex<S>,
    meta: &SnapshotMeta,
    staged: bool,
    bytes: usize,
) -> Result<(), String> {
    let lock = || store.lock().map_err(|_| "the snapshot store's mutex is poisoned".to_string());
    let mut writer = ok("begin", lock()?.begin(meta))?;
    write_concurrent_snapshot(&mut writer, meta.index, bytes).map_err(|e| format!("writing a snapshot: {e}"))?;
    if !staged {
        return match ok("finish", lock()?.finish(writer))? {
            true => Ok(()),
            false => Err(format!("finish of snapshot {} (past every earlier one) returned false", meta.index)),
        };
    }
    ok("stage", lock()?.stage(writer))?;
    let opened = ok("open_staged", lock()?.open_staged())?;
    let Some((got, mut reader)) = opened else { return Err("nothing staged after stage".into()) };
    check("staged meta", &got, meta)?;
    check_concurrent_snapshot(&mut reader, meta.index, bytes)?;
    check("promoted meta", ok("promote", lock()?.promote())?, meta.clone())
}

fn check_restored<L: LogStore, S: SnapshotStore>(
    mut log: L,
    mut snapshots: S,
    reported: &Reported,
    bytes: usize,
) -> Result<(), String> {
    let restored = ok("restore", restore(&mut log, &mut snapshots))?;
    check("staged snapshot after restore", snapshots.staged(), None)?;
    let last = restored.snapshot.index + restored.entries.len() as Index;
    if last < reported.synced_last {
        return Err(format!("the log ends at {last}, but entries up to {} were synced", reported.synced_last));
    }
    for e in &restored.entries {
        check(&format!("entry {}", e.index), e, &concurrent_entry(e.index))?;
    }
    let latest = snapshots.latest();
    if let Some(want) = &reported.snapshot {
        if latest.as_ref().is_none_or(|l| l.index < want.index) {
            return Err(format!("snapshot {} was reported durable, but the latest is {latest:?}", want.index));
        }
    }
    if let Some(l) = &latest {
        if restored.snapshot.index < l.index {
            return Err(format!(
                "the snapshot point {} is behind the latest snapshot {}",
                restored.snapshot.index, l.index
            ));
        }
        let Some((meta, mut reader)) = ok("open_latest", snapshots.open_latest())? else {
            return Err("latest() names a snapshot that open_latest does not return".into());
        };
        check("opened meta", &meta, l)?;
        check_concurrent_snapshot(&mut reader, meta.index, bytes)?;
    }
    if let Err(e) = Node::new(Config::new(1), restored.clone(), Instant::ZERO) {
        return Err(format!(
            "Node::new refuses the restored state ({e}): hard state {:?}, point {:?}, {} entries",
            restored.hard_state,
            restored.snapshot,
            restored.entries.len()
        ));
    }
    Ok(())
}
