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
//! 1. Feed one [`Input`] with [`Node::step`] (a message, a tick, a proposal, a report, ...).
//!    Several steps may be fed before draining; the node then batches.
//! 2. Call [`Node::drain_actions`] and carry out every [`Action`] **in order**, then feed
//!    the reports they produce, and drain again **until nothing is left**: a report
//!    (`Persisted`, `Applied`, `SnapshotCreated`, ...) releases new actions (held vote
//!    grants, acknowledgements, commits, reads).
//!    - [`Action::Persist`]: write the snapshot point, then the entries (replacing any
//!      stored suffix from the first entry's index), then the hard state; make them
//!      durable; then feed `Input::Persisted { seq }`. Persists may share one fsync
//!      (group commit): report the highest `seq` covered. The node never sends a vote
//!      grant or an append acknowledgement before the state it promises is reported
//!      durable, and a leader counts itself toward a commit only for durable entries.
//!    - [`Action::Send`]: hand the message to the transport (encode it with
//!      [`Message::encode`]). Loss, duplication and reordering are tolerated; report a
//!      peer the transport cannot reach with `Input::PeerUnreachable`.
//!    - [`Action::Apply`]: apply the entries to the state machine in order, answer the
//!      clients listed in `proposals`, then feed `Input::Applied`.
//!    - [`Action::ReadReady`] / [`Action::ReadRejected`]: answer the read.
//!    - [`Action::ProposalRejected`]: answer the client (the error names the leader and
//!      its node info when known). A proposal's outcome is final: it is reported applied,
//!      or rejected only once it can never be applied (or with `OutcomeUnknown` when a
//!      snapshot swallowed it), so a client may retry a rejected command without applying
//!      it twice. A proposal accepted by a leader that then loses leadership stays pending
//!      until the commit index passes its entry.
//!    - [`Action::MembershipChangeDone`] / [`Action::TransferDone`]: the one outcome of a
//!      request made with `Input::ChangeMembership` / `Input::TransferLeadership`.
//!    - [`Action::SendSnapshot`]: stream [`SnapshotHeader::encode`] then the stored
//!      snapshot's bytes to `header.to`; feed `Input::SnapshotSent` when the transfer ends.
//!      On the receiving side, stage the stream durably, then feed
//!      `Input::SnapshotReceived` with its header.
//!    - [`Action::InstallSnapshot`] / [`Action::DiscardSnapshot`]: restore the state machine
//!      from the staged snapshot (then feed `Input::SnapshotInstalled`), or drop it.
//!    - [`Action::CreateSnapshot`]: snapshot the state machine at exactly `meta.index`
//!      (everything applied before this action, nothing after), store it with `meta`, then
//!      feed `Input::SnapshotCreated`.
//!    - [`Action::Event`]: tell user code (role, leader, membership, reachability).
//! 3. Sleep until the next input or [`Node::next_deadline`], then feed `Input::Tick`.
//!
//! A runtime must never: send a message before draining it from the node, report a
//! persist durable before it is, apply entries out of order, or feed a `now` from a clock
//! that can jump backwards by much (the node ignores backwards steps).
//!
//! The loop below is complete; `crates/raft-core/examples/three_nodes.rs` runs the same
//! loop for three nodes in one process.
//!
//! ```no_run
//! use raft_core::{Action, Config, Input, Instant, Node, RestoredState};
//! # use raft_core::*;
//! # struct Io;
//! # impl Io {
//! #     fn next_input(&mut self, deadline: Instant) -> (Instant, Option<Input>) { (deadline, None) }
//! #     fn send(&mut self, _: Message) {}
//! #     fn write(&mut self, _: &Persist) {}
//! #     fn fsync(&mut self) {}
//! #     fn apply(&mut self, _: &Entry) {}
//! #     fn answer_proposals(&mut self, _: &[(Index, ProposalId)]) {}
//! #     fn reject_proposal(&mut self, _: ProposalId, _: ProposalError) {}
//! #     fn serve_read(&mut self, _: ReadId) {}
//! #     fn reject_read(&mut self, _: ReadId, _: ReadError) {}
//! #     fn answer_change(&mut self, _: RequestId, _: Result<Membership, ProposalError>) {}
//! #     fn answer_transfer(&mut self, _: RequestId, _: Result<NodeId, TransferError>) {}
//! #     fn stream_snapshot(&mut self, _: SnapshotHeader) {}
//! #     fn restore_staged(&mut self, _: &SnapshotMeta) -> bool { true }
//! #     fn discard_staged(&mut self, _: &SnapshotMeta) {}
//! #     fn snapshot_state_machine(&mut self, _: &SnapshotMeta) -> bool { true }
//! #     fn notify(&mut self, _: Event) {}
//! # }
//! # fn main() -> Result<(), ConfigError> {
//! # let mut io = Io;
//! let mut node = Node::new(Config::new(1), RestoredState::bootstrap([1, 2, 3]), Instant::ZERO)?;
//! let mut actions = Vec::new();
//! let mut reports = Vec::new();
//! loop {
//!     let (now, input) = io.next_input(node.next_deadline());
//!     node.step(now, input.unwrap_or(Input::Tick));
//!     loop {
//!         node.drain_actions(&mut actions);
//!         if actions.is_empty() {
//!             break;
//!         }
//!         let mut durable = None;
//!         for action in actions.drain(..) {
//!             match action {
//!                 Action::Send(m) => io.send(m),
//!                 Action::Persist(p) => {
//!                     io.write(&p); // no fsync yet: one covers the whole batch
//!                     durable = Some(p.seq);
//!                 }
//!                 Action::Apply { entries, proposals } => {
//!                     entries.iter().for_each(|e| io.apply(e));
//!                     io.answer_proposals(&proposals);
//!                     if let Some(last) = entries.last() {
//!                         reports.push(Input::Applied { index: last.index });
//!                     }
//!                 }
//!                 Action::ProposalRejected { id, error } => io.reject_proposal(id, error),
//!                 Action::ReadReady { id, .. } => io.serve_read(id),
//!                 Action::ReadRejected { id, error } => io.reject_read(id, error),
//!                 Action::MembershipChangeDone { id, result } => io.answer_change(id, result),
//!                 Action::TransferDone { id, result } => io.answer_transfer(id, result),
//!                 // The transport feeds `Input::SnapshotSent` when the stream ends.
//!                 Action::SendSnapshot { header } => io.stream_snapshot(*header),
//!                 Action::InstallSnapshot { meta } => {
//!                     let success = io.restore_staged(&meta);
//!                     reports.push(Input::SnapshotInstalled { meta, success });
//!                 }
//!                 Action::DiscardSnapshot { meta, .. } => io.discard_staged(&meta),
//!                 Action::CreateSnapshot { meta } => {
//!                     let success = io.snapshot_state_machine(&meta);
//!                     reports.push(Input::SnapshotCreated { index: meta.index, success });
//!                 }
//!                 Action::Event(e) => io.notify(*e),
//!                 other => panic!("an action this loop does not know: {other:?}"),
//!             }
//!         }
//!         if let Some(seq) = durable {
//!             io.fsync(); // group commit: one fsync for every persist of the batch
//!             reports.push(Input::Persisted { seq });
//!         }
//!         for report in reports.drain(..) {
//!             node.step(now, report);
//!         }
//!     }
//! }
//! # }
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
mod wire;

pub use batch::Entries;
pub use config::{Config, ConfigError, SnapshotPolicy};
pub use event::{Event, MembershipSource, Transition, TransitionReason};
pub use io::{
    Action, Input, Limit, MembershipChange, Persist, ProposalError, ReadConsistency, ReadError, TransferError,
};
pub use log::{Entry, HardState, LogError, Payload, RaftLog, SnapshotMeta};
pub use membership::{Membership, NodeInfo, VoteResult};
pub use message::{AppendResult, DecodeError, Message, MessageBody, ReadContext, SnapshotHeader, WIRE_VERSION};
pub use metrics::Metrics;
pub use node::{Node, RestoredState};
pub use progress::{Inflights, Progress, ProgressState};
pub use status::{PeerStatus, Status};
pub use types::{Index, Instant, NodeId, ProposalId, ReadId, RequestId, Role, Term, MAX_INDEX, MAX_TERM};
