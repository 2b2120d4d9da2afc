//! The node: owns all protocol state, dispatches inputs by role, and turns the results
//! into actions. Protocol rules live in the sibling modules (`election`, `replication`,
//! `read`, `control`, `reconfig`), each an `impl Node` block with one concern.

use crate::batch::Entries;
use crate::config::{Config, ConfigError};
use crate::event::{Event, History, Transition, TransitionReason};
use crate::io::{Action, Input, Persist, ProposalError};
use crate::log::{Entry, HardState, RaftLog, SnapshotMeta};
use crate::membership::{Membership, NodeInfo};
use crate::message::{Message, MessageBody};
use crate::metrics::Metrics;
use crate::progress::Progress;
use crate::read::ReadState;
use crate::status::{PeerStatus, Status};
use crate::types::{Index, Instant, NodeId, ProposalId, RequestId, Role, Term, MAX_INDEX, MAX_TERM};
use rand_core::{RngCore, SeedableRng};
use rand_pcg::Pcg64Mcg;
use std::collections::{BTreeMap, VecDeque};

/// What the runtime loaded from durable storage when (re)starting a node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoredState {
    /// Term, vote, commit hint and incarnation. Its term may be below the last entry's
    /// term when a crash tore a persist after its entries and before its hard state (the
    /// documented write order); the node then adopts that term with no vote. Every term
    /// and index must be at most [`MAX_TERM`](crate::MAX_TERM) / [`MAX_INDEX`](crate::MAX_INDEX).
    pub hard_state: HardState,
    /// The latest snapshot point (index 0 with the initial membership for a new cluster).
    pub snapshot: SnapshotMeta,
    /// The durable log entries after the snapshot, consecutive.
    pub entries: Vec<Entry>,
    /// The index the user state machine has applied (at least `snapshot.index`); entries
    /// after it will be handed out again in `Action::Apply`. If the state machine was
    /// restored from a snapshot installed from a leader whose `Persist` of the snapshot
    /// point was not yet durable at a crash, record that point first (as a `Persist` with
    /// that `snapshot` would) so that `snapshot` and `entries` agree with the state machine,
    /// and raise `hard_state.term` to the snapshot's term if it is lower (with no vote: a
    /// vote in that term was never sent, since it was not durable).
    pub applied: Index,
}

impl RestoredState {
    /// The state of a brand-new cluster member whose initial voters are `voters`.
    /// Every founding node must be bootstrapped with the same set. A node joining an
    /// existing cluster starts from `RestoredState::default()` and learns the membership
    /// from the leader.
    pub fn bootstrap(voters: impl IntoIterator<Item = NodeId>) -> Self {
        RestoredState {
            snapshot: SnapshotMeta { index: 0, term: 0, membership: Membership::with_voters(voters) },
            ..Default::default()
        }
    }

    /// Like [`RestoredState::bootstrap`], with each founding voter's node info (every
    /// founding node must be given the same list).
    pub fn bootstrap_with_info(voters: impl IntoIterator<Item = (NodeId, NodeInfo)>) -> Self {
        let mut membership = Membership::default();
        for (id, info) in voters {
            membership.voters.insert(id);
            if !info.is_empty() {
                membership.info.insert(id, info);
            }
        }
        RestoredState { snapshot: SnapshotMeta { index: 0, term: 0, membership }, ..Default::default() }
    }
}

/// Election flavours.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Campaign {
    PreVote,
    Election,
    Transfer,
}

/// A leader transfer in progress.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Transfer {
    pub(crate) target: NodeId,
    pub(crate) deadline: Instant,
    /// The request to answer, if a client asked for it (pause and shutdown do not).
    pub(crate) id: Option<RequestId>,
}

/// A membership change requested through `Input::ChangeMembership`, on the leader.
#[derive(Clone, Debug)]
pub(crate) struct PendingChange {
    pub(crate) id: RequestId,
    /// Index of the entry that completes the change (C_new), once appended.
    pub(crate) final_index: Option<Index>,
}

/// One Raft node: the complete protocol state of one cluster member.
///
/// Drive it with [`Node::step`], then carry out what [`Node::drain_actions`] returns, and
/// call `step(now, Input::Tick)` when [`Node::next_deadline`] passes. See the crate docs.
#[derive(Debug)]
pub struct Node {
    pub(crate) cfg: Config,
    pub(crate) id: NodeId,
    pub(crate) rng: Pcg64Mcg,
    pub(crate) now: Instant,

    // Durable state (mirrored by the runtime's storage once persisted).
    pub(crate) term: Term,
    pub(crate) vote: Option<NodeId>,
    /// This start's number (`HardState::incarnation`); forwarded reads carry it.
    pub(crate) incarnation: u64,
    pub(crate) log: RaftLog,
    /// The latest snapshot point.
    pub(crate) snapshot: SnapshotMeta,

    // Membership: the base is committed; `membership_log` holds later (uncommitted)
    // configurations in log order. The last one is in effect.
    pub(crate) committed_membership: Membership,
    pub(crate) committed_membership_index: Index,
    pub(crate) membership_log: VecDeque<(Index, Membership)>,
    pub(crate) membership: Membership,

    // Volatile state.
    pub(crate) role: Role,
    pub(crate) leader: Option<NodeId>,
    pub(crate) commit: Index,
    pub(crate) applied: Index,
    pub(crate) apply_sent: Index,
    pub(crate) election_deadline: Instant,
    pub(crate) votes: BTreeMap<NodeId, bool>,
    pub(crate) last_heard_leader: Option<Instant>,
    /// After a restart the node does not know whether it recently acknowledged a leader,
    /// so it refuses to vote until this passes (keeps leader leases safe across restarts).
    pub(crate) vote_guard_until: Instant,

    // Leader state.
    pub(crate) progress: BTreeMap<NodeId, Progress>,
    pub(crate) heartbeat_deadline: Instant,
    pub(crate) check_quorum_deadline: Instant,
    pub(crate) hb_seq: u64,
    pub(crate) hb_sent_at: VecDeque<(u64, Instant)>,
    pub(crate) lease_until: Option<Instant>,
    /// Set once this leader sent `TimeoutNow` in its term: the target's election may then
    /// bypass voters' lease stickiness at any later moment (the message may be delayed
    /// past our transfer timeout), so no lease read is safe for the rest of the term.
    pub(crate) lease_forfeited: bool,
    pub(crate) transfer: Option<Transfer>,
    /// A requested transfer that ended with this node's step-down: (request, target),
    /// answered once the next leader is known or the step-down's reason settles it.
    pub(crate) transfer_outcome: Option<(RequestId, NodeId, Instant)>,
    pub(crate) quorum_lost: bool,
    pub(crate) pending_change: Option<PendingChange>,
    pub(crate) reads: ReadState,
    /// Our proposals whose fate is not decided yet, in (index, term) order. One is
    /// decided when the commit index passes it: applied if the committed entry at its index
    /// has its term, superseded otherwise.
    pub(crate) proposals: VecDeque<(Index, Term, ProposalId)>,

    // Durability bookkeeping.
    pub(crate) hard_state_dirty: bool,
    pub(crate) persist_seq: u64,
    pub(crate) durable_seq: u64,
    /// (seq, last log index written by that persist), oldest first.
    pub(crate) inflight_persists: VecDeque<(u64, Index)>,
    /// Highest index such that the in-memory log up to it is durable.
    pub(crate) stable_index: Index,
    /// Messages held until the persist with the given seq is durable.
    pub(crate) gated: VecDeque<(u64, Message)>,
    pub(crate) pending_snapshot_persist: Option<SnapshotMeta>,
    /// The snapshot asked for with `Action::CreateSnapshot` and not yet reported.
    pub(crate) snapshot_requested: Option<Index>,
    pub(crate) bytes_since_snapshot: u64,
    /// A snapshot install from the leader that the runtime is carrying out.
    pub(crate) installing: Option<(SnapshotMeta, NodeId)>,

    pub(crate) actions: Vec<Action>,
    pub(crate) paused: bool,
    pub(crate) shutting_down: bool,
    pub(crate) ready_to_stop_sent: bool,
    /// False once `flush` has run and no input has been fed since. Flushing is a fixed
    /// point (a second flush with no input in between emits nothing), so a drain that
    /// finds this false skips it; drivers drain after every report, many of them idle.
    pub(crate) needs_flush: bool,
    pub(crate) history: History,
    pub(crate) metrics: Metrics,
}

impl Node {
    /// Creates a node from its configuration and the state restored from storage, at time
    /// `now`. Fails if the configuration or the restored state is inconsistent.
    pub fn new(cfg: Config, restored: RestoredState, now: Instant) -> Result<Node, ConfigError> {
        cfg.validate()?;
        let RestoredState { hard_state, snapshot, entries, applied } = restored;
        let log = RaftLog::restore(snapshot.index, snapshot.term, entries).map_err(|e| {
            ConfigError::Restore(format!("log does not follow the snapshot at {}: {e}", snapshot.index))
        })?;
        if hard_state.term > MAX_TERM || snapshot.term > MAX_TERM || log.last_index() > MAX_INDEX {
            return Err(ConfigError::Restore(format!(
                "term or index beyond the accepted maximum (hard state term {}, snapshot term {}, last index {})",
                hard_state.term,
                snapshot.term,
                log.last_index()
            )));
        }
        let incarnation = hard_state.incarnation.checked_add(1).ok_or_else(|| {
            ConfigError::Restore(format!("incarnation {} cannot be incremented", hard_state.incarnation))
        })?;
        // A persist torn after its entries and before its hard state leaves entries of a
        // term the stored hard state has not reached. Adopting that term with no vote is
        // safe: a vote in it, if one was cast, was in the torn hard state, so the grant was
        // never sent (grants wait for durability).
        let (term, vote) = if hard_state.term < log.last_term() {
            (log.last_term(), None)
        } else {
            (hard_state.term, hard_state.vote)
        };
        if applied < snapshot.index || applied > log.last_index() {
            return Err(ConfigError::Restore(format!(
                "applied index {applied} outside snapshot {}..=last {}",
                snapshot.index,
                log.last_index()
            )));
        }
        let commit = hard_state.commit.max(applied).min(log.last_index());
        let mut node = Node {
            id: cfg.id,
            rng: Pcg64Mcg::seed_from_u64(cfg.rng_seed),
            now,
            term,
            vote,
            incarnation,
            stable_index: log.last_index(),
            log,
            committed_membership: snapshot.membership.clone(),
            committed_membership_index: snapshot.index,
            membership_log: VecDeque::new(),
            membership: snapshot.membership.clone(),
            snapshot,
            role: Role::Follower,
            leader: None,
            commit,
            applied,
            apply_sent: applied,
            election_deadline: now,
            votes: BTreeMap::new(),
            last_heard_leader: None,
            vote_guard_until: if cfg.check_quorum { now + cfg.election_timeout_min } else { now },
            progress: BTreeMap::new(),
            heartbeat_deadline: now,
            check_quorum_deadline: now,
            hb_seq: 0,
            hb_sent_at: VecDeque::new(),
            lease_until: None,
            lease_forfeited: false,
            transfer: None,
            transfer_outcome: None,
            quorum_lost: false,
            pending_change: None,
            reads: ReadState::default(),
            proposals: VecDeque::new(),
            // The new incarnation (and a term raised above) must be durable before it is used.
            hard_state_dirty: true,
            persist_seq: 0,
            durable_seq: 0,
            inflight_persists: VecDeque::new(),
            gated: VecDeque::new(),
            pending_snapshot_persist: None,
            snapshot_requested: None,
            bytes_since_snapshot: 0,
            installing: None,
            actions: Vec::new(),
            paused: cfg.start_paused,
            shutting_down: false,
            ready_to_stop_sent: false,
            needs_flush: true,
            history: History::new(cfg.history_capacity),
            metrics: Metrics::default(),
            cfg,
        };
        node.rebuild_membership();
        node.reset_election_deadline();
        node.record_transition(Role::Follower, TransitionReason::Restarted);
        node.emit_membership_loaded(crate::event::MembershipSource::Restart);
        Ok(node)
    }

    /// Feeds one input at time `now`. Never panics on external input: malformed or stale
    /// messages are dropped and counted in [`Node::metrics`]. Call [`Node::drain_actions`]
    /// afterwards (after one or several steps) and carry out what it returns.
    pub fn step(&mut self, now: Instant, input: Input) {
        // Time never goes backwards inside the node, even if the runtime's clock does.
        self.now = self.now.max(now);
        self.needs_flush = true;
        match input {
            Input::Message(m) => self.handle_message(m),
            Input::Tick => self.tick(),
            Input::Propose { id, data } => self.propose(id, data),
            Input::Read { id, consistency } => self.read(id, consistency),
            Input::Persisted { seq } => self.persisted(seq),
            Input::Applied { index } => self.handle_applied(index),
            Input::TransferLeadership { id, to } => self.transfer_leadership(id, to),
            Input::Pause => self.pause(false),
            Input::Resume => self.resume(),
            Input::PrepareShutdown => self.pause(true),
            Input::ChangeMembership { id, change } => self.change_membership(id, *change),
            Input::SnapshotCreated { index, success } => self.snapshot_created(index, success),
            Input::SnapshotReceived { header } => self.snapshot_received(*header),
            Input::SnapshotInstalled { meta, success } => self.snapshot_installed(*meta, success),
            Input::SnapshotSent { peer, index, success } => self.snapshot_sent(peer, index, success),
            Input::PeerUnreachable { peer } => self.peer_unreachable(peer),
        }
    }

    /// Completes the work of the preceding steps (batched appends, the persist request,
    /// committed entries to apply) and moves every pending action into `out`, in the order
    /// they must be carried out. Actions are safe to execute immediately. A drain with no
    /// `step` since the last one returns nothing and costs only a flag test, so a driver
    /// may drain as often as it likes.
    pub fn drain_actions(&mut self, out: &mut Vec<Action>) {
        if self.needs_flush {
            self.needs_flush = false;
            self.flush();
        } else if cfg!(feature = "check-flush") {
            // The skip is sound only if flushing is a fixed point: prove it on every skip.
            let pending = self.actions.len();
            self.flush();
            assert_eq!(
                self.actions.len(),
                pending,
                "a flush with no input since the last one emitted {:?}",
                &self.actions[pending..]
            );
        }
        out.append(&mut self.actions);
    }

    /// The latest time by which `step(_, Input::Tick)` must be called.
    pub fn next_deadline(&self) -> Instant {
        let mut d = match self.role {
            Role::Leader => {
                let mut d = self.heartbeat_deadline;
                if self.cfg.check_quorum {
                    d = d.min(self.check_quorum_deadline);
                }
                if let Some(t) = &self.transfer {
                    d = d.min(t.deadline);
                }
                if let Some(s) = self.progress.values().filter_map(|p| p.snapshot_deadline).min() {
                    d = d.min(s);
                }
                d
            }
            _ => self.election_deadline,
        };
        if let Some(t) = self.reads.next_timeout(self.cfg.election_timeout_max) {
            d = d.min(t);
        }
        if let Some((_, _, t)) = self.transfer_outcome {
            d = d.min(t);
        }
        d
    }

    fn flush(&mut self) {
        // Everything handed out below (appends, the persist, the apply) then shares the
        // sealed segments instead of copying entries.
        self.log.seal();
        if self.role == Role::Leader {
            self.replicate_all();
            self.maybe_start_read_round();
        }
        self.emit_persist();
        self.emit_apply();
        if self.shutting_down && self.role != Role::Leader && !self.ready_to_stop_sent {
            self.ready_to_stop_sent = true;
            self.emit(Event::ReadyToStop);
        }
    }

    fn tick(&mut self) {
        let now = self.now;
        if self.role == Role::Leader {
            if now >= self.heartbeat_deadline {
                self.broadcast_heartbeat();
            }
            if now >= self.check_quorum_deadline {
                self.check_quorum_deadline = now + self.cfg.election_timeout_min;
                if self.cfg.check_quorum && !self.quorum_recently_active() {
                    self.become_follower(self.term, None, TransitionReason::CheckQuorumLost);
                    return;
                }
                for pr in self.progress.values_mut() {
                    pr.recent_active = false;
                }
            }
            if self.transfer.is_some_and(|t| now >= t.deadline) {
                self.abort_transfer();
            }
            self.expire_snapshot_transfers();
        } else if now >= self.election_deadline {
            self.reset_election_deadline();
            if self.can_campaign() {
                let kind = if self.cfg.pre_vote { Campaign::PreVote } else { Campaign::Election };
                self.campaign(kind, TransitionReason::ElectionTimeout);
            }
        }
        if self.transfer_outcome.is_some() {
            self.settle_transfer_outcome();
        }
        self.expire_forwarded_reads();
    }

    // ---- messages ------------------------------------------------------------------

    fn handle_message(&mut self, m: Message) {
        if m.validate().is_err() {
            self.metrics.dropped_invalid += 1;
            trace_drop("invalid", &m);
            return;
        }
        if m.to != self.id {
            self.metrics.dropped_misaddressed += 1;
            trace_drop("misaddressed", &m);
            return;
        }
        if m.term > self.term {
            match &m.body {
                MessageBody::VoteRequest { pre_vote, transfer, .. } => {
                    if !*transfer && self.in_lease() {
                        self.metrics.dropped_in_lease += 1;
                        trace_drop("in lease", &m);
                        return;
                    }
                    if !*pre_vote {
                        let reason = self.higher_term_reason(m.from);
                        self.become_follower(m.term, None, reason);
                    }
                }
                MessageBody::VoteResponse { pre_vote: true, granted: true } => {}
                MessageBody::Append { .. } | MessageBody::Heartbeat { .. } => {
                    self.become_follower(m.term, Some(m.from), TransitionReason::HigherTerm { from: m.from });
                }
                _ => {
                    let reason = self.higher_term_reason(m.from);
                    self.become_follower(m.term, None, reason);
                }
            }
        } else if m.term < self.term {
            // Counted whether or not it is answered: its content never touches our state.
            self.metrics.dropped_stale_term += 1;
            match &m.body {
                // A leader of an older term (cut off, now back) learns it was deposed;
                // without this it could stay stuck if PreVote stops us from raising terms.
                MessageBody::Append { .. } | MessageBody::Heartbeat { .. }
                    if self.cfg.check_quorum || self.cfg.pre_vote =>
                {
                    self.send(m.from, MessageBody::HeartbeatResponse { seq: 0 });
                }
                MessageBody::VoteRequest { pre_vote: true, .. } => {
                    self.send(m.from, MessageBody::VoteResponse { pre_vote: true, granted: false });
                }
                // A node stuck in an old term (e.g. removed without knowing) learns the
                // current term from the answer and stops waiting on its read.
                MessageBody::ReadIndexRequest { ctx } => {
                    let ctx = *ctx;
                    self.send(m.from, MessageBody::ReadIndexResponse { ctx, index: None });
                }
                _ => {}
            }
            return;
        }
        let from = m.from;
        match m.body {
            MessageBody::VoteRequest { pre_vote, last_log_index, last_log_term, .. } => {
                self.handle_vote_request(from, m.term, pre_vote, last_log_index, last_log_term)
            }
            MessageBody::VoteResponse { pre_vote, granted } => {
                self.handle_vote_response(from, m.term, pre_vote, granted)
            }
            MessageBody::Append { prev_log_index, prev_log_term, entries, commit } => {
                self.handle_append(from, prev_log_index, prev_log_term, entries, commit)
            }
            MessageBody::AppendResponse { result } => self.handle_append_response(from, result),
            MessageBody::Heartbeat { commit, seq } => self.handle_heartbeat(from, commit, seq),
            MessageBody::HeartbeatResponse { seq } => self.handle_heartbeat_response(from, seq),
            MessageBody::ReadIndexRequest { ctx } => self.handle_read_index_request(from, ctx),
            MessageBody::ReadIndexResponse { ctx, index } => self.handle_read_index_response(ctx, index),
            MessageBody::TimeoutNow => self.handle_timeout_now(from),
            MessageBody::InstallSnapshotResponse { index, success } => {
                self.handle_install_snapshot_response(from, index, success)
            }
        }
    }

    /// A higher term from the transfer target means the transfer worked.
    fn higher_term_reason(&self, from: NodeId) -> TransitionReason {
        match self.transfer {
            Some(t) if t.target == from => TransitionReason::TransferredLeadership { to: from },
            _ => TransitionReason::HigherTerm { from },
        }
    }

    /// Queues a message from this node, holding it back if it promises state that is not
    /// yet durable (Raft thesis §3.8: vote grants and append acknowledgements).
    pub(crate) fn send(&mut self, to: NodeId, body: MessageBody) {
        if matches!(body, MessageBody::TimeoutNow) {
            self.lease_forfeited = true;
            self.lease_until = None;
        }
        let gate = match body {
            MessageBody::VoteResponse { pre_vote: false, .. }
            | MessageBody::AppendResponse { .. }
            | MessageBody::InstallSnapshotResponse { .. } => true,
            // A read context is unique only once this start's incarnation is durable (the
            // first persist carries it).
            MessageBody::ReadIndexRequest { .. } => self.durable_seq == 0,
            _ => false,
        };
        let msg = Message { from: self.id, to, term: self.term, body };
        if gate {
            let seq = self.covering_persist_seq();
            if seq > self.durable_seq {
                self.gated.push_back((seq, msg));
                return;
            }
        }
        self.deliver(msg);
    }

    fn deliver(&mut self, msg: Message) {
        if msg.to == self.id {
            // Our own vote counts only once it is durable; it arrives here when released.
            if let MessageBody::VoteResponse { granted, .. } = msg.body {
                if msg.term == self.term {
                    self.handle_vote_response(self.id, msg.term, false, granted);
                }
            }
            return;
        }
        self.metrics.messages_sent += 1;
        self.actions.push(Action::Send(msg));
    }

    /// The persist sequence number whose completion makes everything decided so far durable.
    fn covering_persist_seq(&self) -> u64 {
        let dirty = self.hard_state_dirty
            || self.log.unstable_from() <= self.log.last_index()
            || self.pending_snapshot_persist.is_some();
        if dirty {
            self.persist_seq + 1
        } else {
            self.persist_seq
        }
    }

    fn emit_persist(&mut self) {
        let dirty_log = self.log.unstable_from() <= self.log.last_index();
        if !(self.hard_state_dirty || dirty_log || self.pending_snapshot_persist.is_some()) {
            return;
        }
        self.persist_seq += 1;
        let hard_state = self.hard_state_dirty.then(|| self.hard_state());
        self.hard_state_dirty = false;
        let entries = if dirty_log { self.log.take_unstable() } else { Entries::new() };
        self.inflight_persists.push_back((self.persist_seq, self.log.last_index()));
        self.metrics.persists += 1;
        self.actions.push(Action::Persist(Persist {
            seq: self.persist_seq,
            hard_state,
            entries,
            snapshot: self.pending_snapshot_persist.take().map(Box::new),
        }));
    }

    fn persisted(&mut self, seq: u64) {
        if seq <= self.durable_seq {
            return;
        }
        if seq > self.persist_seq {
            let detail = format!("persisted seq {seq}, but the last persist issued is {}", self.persist_seq);
            self.reject_report("Persisted", detail);
            return;
        }
        self.durable_seq = seq;
        while let Some(&(s, last)) = self.inflight_persists.front() {
            if s > seq {
                break;
            }
            self.stable_index = self.stable_index.max(last);
            self.inflight_persists.pop_front();
        }
        while self.gated.front().is_some_and(|(s, _)| *s <= seq) {
            let (_, msg) = self.gated.pop_front().expect("front exists");
            self.deliver(msg);
        }
        if self.role == Role::Leader {
            self.maybe_commit();
        }
    }

    /// Called whenever the in-memory log loses its suffix from `index` on.
    pub(crate) fn on_truncate(&mut self, index: Index) {
        let keep = index - 1;
        self.stable_index = self.stable_index.min(keep);
        for p in self.inflight_persists.iter_mut() {
            p.1 = p.1.min(keep);
        }
        // Our proposals in the removed suffix stay tracked: losing an entry here does not
        // mean it cannot commit (another node that still holds it may be elected and commit
        // it). Their fate is decided when the commit index passes them (`emit_apply`).
        let mut changed = false;
        while self.membership_log.back().is_some_and(|(i, _)| *i >= index) {
            self.membership_log.pop_back();
            changed = true;
        }
        if changed {
            self.membership = match self.membership_log.back() {
                Some((_, m)) => m.clone(),
                None => self.committed_membership.clone(),
            };
        }
    }

    fn emit_apply(&mut self) {
        if self.installing.is_some() {
            // The runtime is about to replace the state machine with a snapshot; entries
            // applied now would be wiped out by it.
            return;
        }
        let hi = self.commit.min(self.stable_index);
        if hi <= self.apply_sent {
            return;
        }
        let lo = self.apply_sent + 1;
        let entries = self.log.range(lo, hi);
        debug_assert_eq!(entries.first().map(|e| e.index), Some(lo), "apply range must be in memory");
        self.apply_sent = hi;
        if self.cfg.snapshot_policy.max_bytes > 0 {
            // Only the byte policy reads the count; without it, skip a pass over the entries.
            self.bytes_since_snapshot += entries.iter().map(|e| e.size_hint() as u64).sum::<u64>();
        }
        // `proposals` is sorted by index: ours in this range are a prefix, taken in one
        // pass into one exact allocation (none when no proposal of ours is applied).
        let mine = self.proposals.partition_point(|&(index, _, _)| index <= hi);
        let mut proposals = Vec::with_capacity(mine);
        for (index, term, id) in self.proposals.drain(..mine) {
            // The batch in hand answers for its own range without a search of the log.
            let held = match index.checked_sub(lo) {
                Some(k) => entries.get(k as usize).map(|e| e.term),
                None => self.log.term(index),
            };
            if held == Some(term) {
                proposals.push((index, id));
            } else {
                self.metrics.proposals_rejected += 1;
                self.actions.push(Action::ProposalRejected { id, error: ProposalError::Superseded { index } });
            }
        }
        self.actions.push(Action::Apply { entries, proposals });
        self.maybe_request_snapshot();
    }

    fn handle_applied(&mut self, index: Index) {
        if index > self.apply_sent {
            let detail = format!("applied {index}, but entries were handed out only up to {}", self.apply_sent);
            self.reject_report("Applied", detail);
        }
        let index = index.min(self.apply_sent);
        if index <= self.applied {
            return;
        }
        self.applied = index;
        self.release_applied_reads();
    }

    /// Counts a runtime report that breaks the contract and tells user code loudly.
    pub(crate) fn reject_report(&mut self, report: &'static str, detail: String) {
        self.metrics.ignored_runtime_reports += 1;
        #[cfg(feature = "tracing")]
        tracing::warn!(target: "raft::input", node = self.id, report, %detail, "runtime report rejected");
        self.emit(Event::ReportRejected { report, detail });
    }

    /// The node info of `id` in the configuration in effect.
    pub fn node_info(&self, id: NodeId) -> Option<&NodeInfo> {
        self.membership.node_info(id)
    }

    /// The leader this node knows of with its node info, for `NotLeader` answers (never
    /// this node itself: a leader stepping down still names itself until it learns more).
    pub(crate) fn leader_hint(&self) -> (Option<NodeId>, Option<NodeInfo>) {
        let leader = self.leader.filter(|l| *l != self.id);
        (leader, leader.and_then(|l| self.membership.node_info(l).cloned()))
    }

    pub(crate) fn not_leader(&self) -> ProposalError {
        let (leader, info) = self.leader_hint();
        ProposalError::NotLeader { leader, info }
    }

    // ---- role changes ---------------------------------------------------------------

    pub(crate) fn hard_state(&self) -> HardState {
        HardState { term: self.term, vote: self.vote, commit: self.commit, incarnation: self.incarnation }
    }

    pub(crate) fn reset_election_deadline(&mut self) {
        let min = self.cfg.election_timeout_min.as_nanos() as u64;
        let span = (self.cfg.election_timeout_max.as_nanos() as u64).saturating_sub(min).max(1);
        let jitter = self.rng.next_u64() % span;
        self.election_deadline = Instant::from_nanos(self.now.as_nanos().saturating_add(min + jitter));
    }

    pub(crate) fn record_transition(&mut self, from: Role, reason: TransitionReason) {
        let t = Transition { at: self.now, term: self.term, from, to: self.role, reason, leader: self.leader };
        #[cfg(feature = "tracing")]
        tracing::info!(target: "raft::election", node = self.id, term = t.term, from = ?t.from, to = ?t.to,
            reason = ?t.reason, leader = ?t.leader, "role transition");
        self.history.record(t.clone());
        self.emit(Event::RoleChanged(t));
    }

    pub(crate) fn set_leader(&mut self, leader: Option<NodeId>) {
        if self.leader != leader {
            self.leader = leader;
            self.reject_forwarded_reads();
            self.emit(Event::LeaderChanged { leader, term: self.term });
        }
        self.settle_transfer_outcome();
    }

    /// Steps down (or stays) a follower in `term`, following `leader` if known.
    pub(crate) fn become_follower(&mut self, term: Term, leader: Option<NodeId>, reason: TransitionReason) {
        let new_term = term > self.term;
        if new_term {
            self.term = term;
            self.vote = None;
            self.hard_state_dirty = true;
        }
        let was = self.role;
        if was == Role::Leader {
            self.step_down_cleanup();
        }
        self.role = Role::Follower;
        self.votes.clear();
        if leader.is_some() {
            self.last_heard_leader = Some(self.now);
        }
        self.reset_election_deadline();
        // Keep following the same leader only within the same term and as a follower.
        let leader = if new_term || was != Role::Follower { leader } else { leader.or(self.leader) };
        self.set_leader(leader);
        if was != Role::Follower {
            self.record_transition(was, reason);
        }
    }

    fn step_down_cleanup(&mut self) {
        self.progress.clear();
        self.lease_until = None;
        self.hb_sent_at.clear();
        self.quorum_lost = false;
        // Losing leadership to anyone completes (or obsoletes) a transfer; its outcome is
        // decided once the new leader is known (`set_leader`), or now if it is unknowable.
        if let Some(t) = self.transfer.take() {
            if let Some(id) = t.id {
                self.transfer_outcome = Some((id, t.target, t.deadline));
            }
        }
        if let Some(change) = self.pending_change.take() {
            self.reject_change(change.id, ProposalError::NotLeader { leader: None, info: None });
        }
        self.reject_leader_reads();
    }

    pub(crate) fn emit(&mut self, e: Event) {
        self.actions.push(Action::Event(Box::new(e)));
    }

    /// True if this node may start an election now.
    pub(crate) fn can_campaign(&self) -> bool {
        !self.paused && self.membership.is_voter(self.id) && self.installing.is_none() && self.term < MAX_TERM
    }

    /// With CheckQuorum, a node that heard from a leader within the minimum election timeout
    /// (or restarted that recently) refuses to help elect another: this is what makes a
    /// removed or partitioned node harmless and leader leases safe.
    pub(crate) fn in_lease(&self) -> bool {
        if !self.cfg.check_quorum {
            return false;
        }
        if self.role == Role::Leader || self.now < self.vote_guard_until {
            return true;
        }
        self.leader.is_some() && self.last_heard_leader.is_some_and(|t| self.now < t + self.cfg.election_timeout_min)
    }

    // ---- accessors ------------------------------------------------------------------

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }
    /// The current role.
    pub fn role(&self) -> Role {
        self.role
    }
    /// The current term.
    pub fn term(&self) -> Term {
        self.term
    }
    /// The vote cast in the current term.
    pub fn vote(&self) -> Option<NodeId> {
        self.vote
    }
    /// The leader this node knows of.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    /// Highest index known committed.
    pub fn commit_index(&self) -> Index {
        self.commit
    }
    /// Highest index the runtime reported applied.
    pub fn applied_index(&self) -> Index {
        self.applied
    }
    /// Highest index known durable locally.
    pub fn durable_index(&self) -> Index {
        self.stable_index
    }
    /// The in-memory log (entries after the last snapshot).
    pub fn log(&self) -> &RaftLog {
        &self.log
    }
    /// The membership in effect (the latest appended).
    pub fn membership(&self) -> &Membership {
        &self.membership
    }
    /// The latest committed membership.
    pub fn committed_membership(&self) -> &Membership {
        &self.committed_membership
    }
    /// The latest snapshot point.
    pub fn snapshot(&self) -> &SnapshotMeta {
        &self.snapshot
    }
    /// Paused (by `Input::Pause`, `Config::start_paused` or `Input::PrepareShutdown`).
    pub fn is_paused(&self) -> bool {
        self.paused
    }
    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }
    /// Counters of dropped input and work done.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
    /// The most recent role transitions, oldest first (at most `Config::history_capacity`).
    pub fn history(&self) -> impl DoubleEndedIterator<Item = &Transition> + ExactSizeIterator {
        self.history.iter()
    }

    /// A snapshot of the node's state for operators.
    pub fn status(&self) -> Status {
        let progress = self
            .progress
            .iter()
            .map(|(&id, p)| {
                (
                    id,
                    PeerStatus {
                        match_index: p.match_index,
                        next_index: p.next_index,
                        inflight: p.inflights.len(),
                        state: p.state_name(),
                        last_contact: p.last_contact,
                        learner: !self.membership.is_voter(id),
                        unreachable: p.unreachable,
                    },
                )
            })
            .collect();
        Status {
            id: self.id,
            role: self.role,
            term: self.term,
            leader: self.leader,
            commit_index: self.commit,
            applied_index: self.applied,
            last_log_index: self.log.last_index(),
            durable_index: self.stable_index,
            snapshot_index: self.log.snapshot_index(),
            membership: self.membership.clone(),
            leader_info: self.leader.and_then(|l| self.membership.node_info(l).cloned()),
            progress,
            paused: self.paused,
            transferring_to: self.transfer.map(|t| t.target),
        }
    }
}

#[allow(unused_variables)]
fn trace_drop(why: &str, m: &Message) {
    #[cfg(feature = "tracing")]
    tracing::debug!(target: "raft::input", why, from = m.from, to = m.to, term = m.term, kind = m.body.kind(), "dropped message");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A drain skips the flush when no input came since the last one. That is sound only
    /// because every change to the node arrives through `step`; a change that bypassed
    /// it (only code inside this crate could make one) would go unflushed. With the
    /// `check-flush` feature (which raft-sim turns on) every skipped flush runs anyway
    /// and must emit nothing, so such a change panics instead of going unnoticed.
    #[test]
    #[cfg_attr(feature = "check-flush", should_panic(expected = "a flush with no input since the last one emitted"))]
    fn a_drain_without_input_skips_the_flush_and_check_flush_catches_a_change_behind_its_back() {
        let mut node = Node::new(Config::new(1), RestoredState::bootstrap([1]), Instant::ZERO).expect("valid");
        let mut out = Vec::new();
        node.drain_actions(&mut out);
        assert!(!out.is_empty(), "a new incarnation persists first");
        out.clear();
        node.drain_actions(&mut out);
        assert!(out.is_empty(), "nothing new without an input");
        // Behind `step`'s back: an entry the next flush would hand out for persistence.
        node.log.push(node.term, crate::log::Payload::Noop);
        node.drain_actions(&mut out);
        assert!(out.is_empty(), "without an input the drain skipped the flush");
    }
}
