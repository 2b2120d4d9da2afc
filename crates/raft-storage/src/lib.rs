//! # raft-storage: the durable-storage contract for raft-core runtimes
//!
//! `raft-core` performs no IO: it asks its runtime to make state durable with
//! `Action::Persist` and waits for `Input::Persisted` before it promises anything that
//! depends on that state (a vote grant, an append acknowledgement, the leader counting
//! its own entries toward a commit). This crate defines what the runtime persists into:
//!
//! - [`Storage`]: the trait a store implements — the log (append, truncate, read ranges),
//!   the hard state, the snapshot point (compaction), the snapshot data (streamed through a
//!   writer and a reader, never held twice in memory), and one durability point,
//!   [`Storage::sync`].
//! - [`apply_persist`]: applies a whole `raft_core::Persist` in the order the core requires.
//! - [`restore`]: reads the `raft_core::RestoredState` a restarting node resumes from;
//!   [`bootstrap`] records a new cluster's initial membership.
//! - [`MemStorage`]: an in-memory store for tests and simulations that can simulate a crash.
//! - `testkit::check_conformance` (feature `testkit`): the whole contract as a
//!   model-based property test, for any implementation.
//!
//! The sled-backed store lives in the `raft-sled` crate.
//!
//! ## The durability rule
//!
//! Mutations take effect immediately for reads but become durable only at the next
//! successful [`Storage::sync`]. So the runtime's loop is:
//!
//! 1. for every `Action::Persist(p)` drained from the node, in order: [`apply_persist`];
//! 2. once per batch: [`Storage::sync`] — one fsync covers every persist applied before it
//!    (group commit);
//! 3. only after `sync` returned `Ok`: `node.step(now, Input::Persisted { seq })` with the
//!    highest `seq` applied before the sync.
//!
//! Snapshots: for `Action::CreateSnapshot` and `Action::InstallSnapshot`, stream the data
//! through [`Storage::begin_snapshot`] and finish it with [`Storage::finish_snapshot`],
//! which is durable when it returns; only then report `Input::SnapshotCreated` or
//! `Input::SnapshotInstalled`. The core then emits a `Persist` carrying the snapshot point,
//! which goes through steps 1–3 like any other.
//!
//! A failed `sync` (or any failed mutation) is fatal for the handle: do not report
//! anything as persisted, stop the node and restart it from the store. After a failed
//! fsync the kernel may already have dropped the dirty pages, so retrying could report
//! data durable that is not.
//!
//! ```no_run
//! use raft_core::{Action, Config, Input, Instant, Node};
//! use raft_storage::{apply_persist, bootstrap, restore, MemStorage, Storage};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut store = MemStorage::new(); // raft_sled::SledStorage::open(...) in production
//! bootstrap(&mut store, [1, 2, 3])?; // a founding member; no-op on restart
//! let mut node = Node::new(Config::new(1), restore(&mut store)?, Instant::ZERO)?;
//! let mut actions = Vec::new();
//! # let now = Instant::ZERO;
//! node.step(now, Input::Tick);
//! node.drain_actions(&mut actions);
//! let mut persisted = None;
//! for action in actions.drain(..) {
//!     match action {
//!         Action::Persist(p) => {
//!             apply_persist(&mut store, &p)?;
//!             persisted = Some(p.seq);
//!         }
//!         _ => { /* send, apply, ... (safe before the sync) */ }
//!     }
//! }
//! if let Some(seq) = persisted {
//!     store.sync()?; // one fsync for the whole batch
//!     node.step(now, Input::Persisted { seq });
//! }
//! # Ok(()) }
//! ```

mod apply;
mod error;
mod memory;
mod storage;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use apply::{apply_persist, bootstrap, check_append, is_empty, restore};
pub use error::StorageError;
pub use memory::{MemSnapshotWriter, MemStorage};
pub use storage::Storage;
