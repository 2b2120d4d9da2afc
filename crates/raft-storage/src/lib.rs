//! # raft-storage: the durable-storage contract for raft-core runtimes
//!
//! `raft-core` performs no IO: it asks its runtime to make state durable with
//! `Action::Persist` and waits for `Input::Persisted` before it promises anything that
//! depends on that state (a vote grant, an append acknowledgement, the leader counting
//! its own entries toward a commit). This crate defines what the runtime persists into,
//! as two stores opened together and used from different threads:
//!
//! - [`LogStore`]: the log writer thread's store — the log (append, truncate, read
//!   ranges), the hard state, the snapshot point (compaction), and one durability point,
//!   [`LogStore::sync`].
//! - [`SnapshotStore`]: the snapshot data — the latest snapshot and a staging slot for one
//!   received from a peer, streamed through writers and readers (never held twice in
//!   memory), each write durable on return with its own fsyncs. The applier creates
//!   snapshots into it and the snapshot sender reads from it while the log writer keeps
//!   syncing: a large snapshot's fsync never stalls a log fsync.
//! - [`apply_persist`]: applies a whole `raft_core::Persist` in the order the core requires.
//! - [`restore`]: reconciles the two stores after a crash and reads the
//!   `raft_core::RestoredState` a restarting node resumes from; [`bootstrap`] records a new
//!   cluster's initial membership.
//! - [`MemLogStore`] and [`MemSnapshotStore`] ([`mem_stores`]): in-memory stores for tests
//!   and simulations that can simulate a crash.
//! - `testkit::check_conformance` and `testkit::check_concurrency` (feature `testkit`):
//!   the whole contract as model-based and multi-threaded property tests, for any pair of
//!   implementations.
//!
//! The sled-backed stores live in the `raft-sled` crate.
//!
//! ## The durability rule
//!
//! Log mutations take effect immediately for reads but become durable only at the next
//! successful [`LogStore::sync`]. So the log writer's loop is:
//!
//! 1. for every `Action::Persist(p)` drained from the node, in order: [`apply_persist`];
//! 2. once per batch: [`LogStore::sync`] — one fsync covers every persist applied before it
//!    (group commit);
//! 3. only after `sync` returned `Ok`: `node.step(now, Input::Persisted { seq })` with the
//!    highest `seq` applied before the sync.
//!
//! Snapshots go to the [`SnapshotStore`], on whichever thread runs the state machine:
//! for `Action::CreateSnapshot`, stream the state machine into [`SnapshotStore::begin`]'s
//! writer and call [`SnapshotStore::finish`], durable when it returns, before reporting
//! `Input::SnapshotCreated`. A snapshot arriving from a leader is streamed into a writer
//! and [`SnapshotStore::stage`]d; once the node decides to install it, restore the state
//! machine from [`SnapshotStore::open_staged`] and [`SnapshotStore::promote`] it (or
//! [`SnapshotStore::discard_staged`] it) before reporting `Input::SnapshotInstalled`. The
//! core then emits a `Persist` carrying the snapshot point, which goes through steps 1–3
//! like any other. [`restore`] repairs a crash between the two stores' writes.
//!
//! A failed `sync` (or any failed mutation) is fatal for the handle: do not report
//! anything as persisted, stop the node and restart it from the stores. After a failed
//! fsync the kernel may already have dropped the dirty pages, so retrying could report
//! data durable that is not.
//!
//! ```no_run
//! use raft_core::{Action, Config, Input, Instant, Node, SnapshotMeta};
//! use raft_storage::{apply_persist, bootstrap, mem_stores, restore, LogStore, SnapshotStore};
//! use std::io::{Read, Write};
//! use std::sync::mpsc;
//!
//! /// What the runtime hands the applier thread (built from the core's snapshot actions).
//! enum SnapshotJob {
//!     /// Snapshot the state machine under `meta` (`Action::CreateSnapshot`).
//!     Create(SnapshotMeta),
//!     /// A peer's snapshot stream arrived: stage it before telling the core.
//!     Received(SnapshotMeta, Vec<u8>),
//!     /// The core decided: install the staged snapshot, or discard it.
//!     Install(SnapshotMeta),
//!     Discard(SnapshotMeta),
//! }
//! # fn route(_: Action) {}
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // raft_sled::open(dir, &config) in production: the same pair, on disk.
//! let (mut log, mut snapshots) = mem_stores();
//! bootstrap(&mut log, &snapshots, [1, 2, 3])?; // a founding member; no-op on restart
//! let mut node = Node::new(Config::new(1), restore(&mut log, &mut snapshots)?, Instant::ZERO)?;
//!
//! // The applier owns the snapshot store: its snapshot writes and fsyncs run beside the
//! // log writer's, never in front of them. (A snapshot sender would share it behind a
//! // mutex, taken only for `open_latest`.)
//! let (jobs, applier_inbox) = mpsc::channel::<SnapshotJob>();
//! std::thread::spawn(move || -> Result<(), raft_storage::StorageError> {
//!     for job in applier_inbox {
//!         match job {
//!             SnapshotJob::Create(meta) => {
//!                 let mut writer = snapshots.begin(&meta)?;
//!                 writer.write_all(b"the state machine, streamed").expect("write");
//!                 // Durable on return; `false` if an install promoted meanwhile overtook it.
//!                 let _created = snapshots.finish(writer)?; // then report Input::SnapshotCreated
//!             }
//!             SnapshotJob::Received(meta, bytes) => {
//!                 let mut writer = snapshots.begin(&meta)?;
//!                 writer.write_all(&bytes).expect("write"); // streamed from the peer
//!                 snapshots.stage(writer)?; // durable; then report Input::SnapshotReceived
//!             }
//!             // Act only on the snapshot the core named: a newer arrival may have
//!             // replaced it in the slot.
//!             SnapshotJob::Install(meta) if snapshots.staged() == Some(meta.clone()) => {
//!                 let (_, mut reader) = snapshots.open_staged()?.expect("staged");
//!                 reader.read_to_end(&mut Vec::new()).expect("read"); // restore the state machine
//!                 snapshots.promote()?; // then report Input::SnapshotInstalled
//!             }
//!             SnapshotJob::Discard(meta) if snapshots.staged() == Some(meta.clone()) => {
//!                 snapshots.discard_staged()?;
//!             }
//!             _ => {}
//!         }
//!     }
//!     Ok(())
//! });
//!
//! // The log writer: the core's loop.
//! let mut actions = Vec::new();
//! # let now = Instant::ZERO;
//! loop {
//!     node.step(now, Input::Tick);
//!     node.drain_actions(&mut actions);
//!     let mut persisted = None;
//!     for action in actions.drain(..) {
//!         match action {
//!             Action::Persist(p) => {
//!                 apply_persist(&mut log, &p)?;
//!                 persisted = Some(p.seq);
//!             }
//!             // Snapshot work goes to the applier (safe before the sync).
//!             Action::CreateSnapshot { meta } => jobs.send(SnapshotJob::Create(*meta))?,
//!             Action::InstallSnapshot { meta } => jobs.send(SnapshotJob::Install(*meta))?,
//!             Action::DiscardSnapshot { meta, .. } => jobs.send(SnapshotJob::Discard(*meta))?,
//!             other => route(other), // send, apply, answer clients (safe before the sync)
//!         }
//!     }
//!     if let Some(seq) = persisted {
//!         log.sync()?; // one fsync for the whole batch, never behind a snapshot's
//!         node.step(now, Input::Persisted { seq });
//!     }
//! #   break;
//! }
//! # Ok(()) }
//! ```

mod apply;
mod error;
mod memory;
mod storage;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use apply::{apply_persist, bootstrap, bootstrap_with_info, check_append, is_empty, restore};
pub use error::StorageError;
pub use memory::{mem_stores, MemLogStore, MemSnapshotStore, MemSnapshotWriter};
pub use storage::{LogStore, SnapshotStore};
