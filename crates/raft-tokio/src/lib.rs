//! # raft-tokio: a raft-core node in a tokio server
//!
//! Give it a log store and a snapshot store (`raft-storage`'s in-memory pair or
//! `raft-sled`'s), your [`StateMachine`] and a [`Transport`]; [`Raft::start`] returns a
//! cheap, cloneable async handle to propose, read, reconfigure, observe and stop the node.
//! The protocol lives in raft-core only: this crate makes no election, commit or
//! membership decision; it feeds the node and carries out every action it emits, exactly
//! as the core's crate docs specify.
//!
//! ## What runs where
//!
//! - **The driver task** (one tokio task per node) owns the `raft_core::Node`. It sleeps
//!   until the node's next deadline or the next input (a message, a handle call, a report
//!   from a thread), takes everything that is ready, drains the node until it is quiet and
//!   hands each action to its executor without waiting for any of them.
//! - **The disk worker** owns the `LogStore` and makes persists durable with group
//!   commit: it takes every persist queued while the previous fsync ran, applies them in
//!   order, syncs once and reports the highest seq. Each batch runs on tokio's blocking
//!   pool, one at a time (a store that never blocks, such as the memory store, is written
//!   by the driver itself instead). The leader's appends to its followers are sent by the
//!   driver while the disk worker syncs. A failed write or fsync stops the node.
//! - **The state machine worker** owns the [`StateMachine`], the same way: applies
//!   committed commands in log order, answers the proposals' callers, serves reads once
//!   the entries they must observe are applied, and creates and restores snapshots
//!   (streamed through the `SnapshotStore`).
//! - **Snapshot transfers** run on their own tasks (blocking reads and writes on tokio's
//!   blocking pool), through [`Transport::send_snapshot`] and [`Inbound::receive_snapshot`].
//!
//! A slow disk, a slow state machine or a slow peer delays only its own queue: the driver
//! keeps sending heartbeats. See `docs/runtime.md` for the shutdown order, backpressure and
//! how to write a transport or a state machine; `examples/counter.rs` is a complete
//! three-node program.

mod channel;
mod disk;
mod driver;
mod error;
mod metrics;
mod raft;
mod state_machine;
mod transport;

pub use channel::{ChannelNetwork, ChannelTransport};
pub use error::{ChangeError, ProposeError, ReadError, ShutdownError, StartError, Stopped, TransferLeaderError};
pub use metrics::{RuntimeMetrics, LATENCY_BUCKETS};
pub use raft::{Consistency, Options, Raft};
pub use state_machine::{Command, StateMachine};
pub use transport::{Inbound, InboundProbe, NodeStopped, SnapshotSink, SnapshotStream, Transport, TransportError};
