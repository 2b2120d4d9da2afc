//! # raft-core: the Raft protocol as a deterministic state machine
//!
//! This crate contains the whole Raft consensus protocol — elections with PreVote and
//! CheckQuorum, pipelined log replication with flow control, ReadIndex and lease reads,
//! leader transfer, joint-consensus membership changes and snapshots — and nothing else.
//! It performs no IO, reads no clock, spawns no thread and draws no OS randomness: time
//! is an argument, randomness comes from a generator seeded in [`Config`]. The same inputs
//! always produce the same actions, byte for byte.
//!
//! ## Driving a node
//!
//! A runtime owns one [`Node`] and loops:
//!
//! 1. Feed one [`Input`] with [`Node::step`] (a message, a tick, a proposal, a durability
//!    report, ...). Several steps may be fed before draining; the node then batches.
//! 2. Call [`Node::drain_actions`] and carry out every [`Action`] **in order**:
//!    - [`Action::Persist`]: write the entries (replacing any stored suffix from the first
//!      entry's index), the hard state and the snapshot point, make them durable, then feed
//!      `Input::Persisted { seq }`. Persists may be batched into one fsync; report the
//!      highest `seq` covered. The node never sends a vote grant or an append
//!      acknowledgement before the state it promises is reported durable, and a leader
//!      counts itself toward a commit only for entries reported durable.
//!    - [`Action::Send`]: hand the message to the transport. Loss, duplication and
//!      reordering are tolerated.
//!    - [`Action::Apply`]: apply the entries to the state machine in order, answer the
//!      clients listed in `proposals`, then feed `Input::Applied`.
//!    - [`Action::ReadReady`]: serve the read from the state machine now.
//!    - [`Action::ProposalRejected`] / [`Action::ReadRejected`]: answer the client (the
//!      error names the leader to retry at when known). A proposal's outcome is final:
//!      it is reported applied, or rejected only once it can never be applied (or with
//!      `OutcomeUnknown` when a snapshot swallowed it), so a client may retry a rejected
//!      command without applying it twice. A proposal accepted by a leader that then
//!      loses leadership stays pending until the commit index passes its entry.
//!    - [`Action::SendSnapshot`], [`Action::InstallSnapshot`], [`Action::CreateSnapshot`]:
//!      move snapshot bytes outside the core, then report back.
//!    - [`Action::Event`]: tell user code (role, leader, membership, reachability).
//! 3. Sleep until the next input or [`Node::next_deadline`], then feed `Input::Tick`.
//!
//! A runtime must never: send a message before draining it from the node, report a
//! persist durable before it is, apply entries out of order, or feed a `now` from a clock
//! that can jump backwards by much (the node ignores backwards steps).
//!
//! ```no_run
//! use raft_core::{Action, Config, Input, Instant, Node, RestoredState};
//!
//! # fn transport_send(_: raft_core::Message) {}
//! # fn storage_write(_: &raft_core::Persist) {}
//! # fn state_machine_apply(_: &raft_core::Entry) {}
//! # fn next_input_until(deadline: Instant) -> (Instant, Option<Input>) { (deadline, None) }
//! let mut node = Node::new(Config::new(1), RestoredState::bootstrap([1, 2, 3]), Instant::ZERO).unwrap();
//! let mut actions = Vec::new();
//! loop {
//!     let (now, input) = next_input_until(node.next_deadline());
//!     node.step(now, input.unwrap_or(Input::Tick));
//!     node.drain_actions(&mut actions);
//!     for action in actions.drain(..) {
//!         match action {
//!             Action::Send(m) => transport_send(m),
//!             Action::Persist(p) => {
//!                 storage_write(&p); // including fsync
//!                 node.step(now, Input::Persisted { seq: p.seq });
//!             }
//!             Action::Apply { entries, .. } => {
//!                 entries.iter().for_each(state_machine_apply);
//!                 if let Some(last) = entries.last() {
//!                     node.step(now, Input::Applied { index: last.index });
//!                 }
//!             }
//!             _ => { /* reads, rejections, snapshots, events */ }
//!         }
//!     }
//! }
//! ```

#![cfg_attr(not(test), warn(missing_docs))]

mod batch;
mod config;
mod control;
mod election;
mod event;
mod io;
mod log;
mod membership;
mod message;
mod metrics;
mod node;
mod progress;
mod read;
mod reconfig;
mod replication;
mod status;
mod types;

pub use batch::Entries;
pub use config::{Config, ConfigError, SnapshotPolicy};
pub use event::{Event, Transition, TransitionReason};
pub use io::{Action, Input, MembershipChange, Persist, ProposalError, ReadError, ReadPolicy};
pub use log::{Entry, HardState, LogError, Payload, RaftLog, SnapshotMeta};
pub use membership::{Membership, VoteResult};
pub use message::{AppendResult, DecodeError, Message, MessageBody, ReadContext};
pub use metrics::Metrics;
pub use node::{Node, RestoredState};
pub use progress::{Inflights, Progress, ProgressState};
pub use status::{PeerStatus, Status};
pub use types::{Index, Instant, NodeId, ProposalId, ReadId, Role, Term, MAX_INDEX, MAX_TERM};
