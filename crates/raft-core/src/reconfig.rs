//! Membership changes by joint consensus (Raft thesis §4.3) and snapshots (§5).
//!
//! A configuration takes effect on each node as soon as it is in the node's log. The
//! leader appends `C_old,new` (joint), and once that commits, appends `C_new`; only one
//! change is in flight at a time, and only after the leader committed an entry of its term.

use crate::event::{Event, TransitionReason};
use crate::io::{apply_change, Action, MembershipChange, ProposalError};
use crate::log::{Payload, SnapshotMeta};
use crate::membership::Membership;
use crate::message::MessageBody;
use crate::node::{Node, PendingChange};
use crate::progress::ProgressState;
use crate::types::{Index, NodeId, ProposalId, Role};

impl MembershipChange {
    /// Add `id` as a learner (the first step of adding a node).
    pub fn add_learner(id: NodeId) -> Self {
        MembershipChange { add_learners: vec![id], ..Default::default() }
    }
    /// Promote learner `id` to voter (or add it directly as a voter).
    pub fn add_voter(id: NodeId) -> Self {
        MembershipChange { add_voters: vec![id], ..Default::default() }
    }
    /// Remove member `id`.
    pub fn remove(id: NodeId) -> Self {
        MembershipChange { remove: vec![id], ..Default::default() }
    }
}

impl Node {
    pub(crate) fn change_membership(&mut self, id: ProposalId, change: MembershipChange) {
        if let Err(error) = self.check_change(&change) {
            self.emit(Event::MembershipChangeRejected { id, error });
            return;
        }
        let next = match apply_change(&self.membership, &change) {
            Ok(next) => next,
            Err(reason) => {
                self.emit(Event::MembershipChangeRejected { id, error: ProposalError::InvalidChange(reason) });
                return;
            }
        };
        if let Some(lag) = change.require_caught_up {
            let last = self.log.last_index();
            for v in &change.add_voters {
                let caught_up = self.progress.get(v).is_some_and(|p| p.match_index.saturating_add(lag) >= last);
                if !caught_up {
                    self.emit(Event::MembershipChangeRejected {
                        id,
                        error: ProposalError::InvalidChange(format!("learner {v} is not caught up")),
                    });
                    return;
                }
            }
        }
        let target = if next.voters == self.membership.voters {
            // Only learners change: no quorum changes, so no joint phase is needed.
            next
        } else {
            Membership { voters: next.voters, outgoing: self.membership.voters.clone(), learners: next.learners }
        };
        let joint = target.is_joint();
        let index = self.append_membership(target);
        self.pending_change = Some(PendingChange { id, final_index: (!joint).then_some(index) });
    }

    fn check_change(&self, _change: &MembershipChange) -> Result<(), ProposalError> {
        if self.role != Role::Leader {
            return Err(ProposalError::NotLeader { leader: self.leader });
        }
        if self.paused {
            return Err(ProposalError::Paused);
        }
        if self.pending_change.is_some()
            || self.membership.is_joint()
            || self.committed_membership_index < self.membership_log.back().map_or(0, |(i, _)| *i)
        {
            return Err(ProposalError::ChangeInProgress);
        }
        if self.log.term(self.commit) != Some(self.term) {
            // Thesis §4.1 (the bug found after publication): a leader must commit an entry
            // of its own term before it may change the configuration.
            return Err(ProposalError::NotCommittedInTerm);
        }
        if self.transfer.is_some() {
            return Err(ProposalError::TransferInProgress);
        }
        Ok(())
    }

    /// C_old,new (`joint`) is committed: appends C_new. Returns its index.
    fn leave_joint(&mut self, joint: &Membership) -> Index {
        let next =
            Membership { voters: joint.voters.clone(), outgoing: Default::default(), learners: joint.learners.clone() };
        self.append_membership(next)
    }

    /// Called by a new leader after its no-op: if the committed configuration is joint and
    /// nothing follows it in the log, the leader that committed it did not live to append
    /// C_new (or C_new reached nobody else), so this one does; otherwise the change would
    /// stay in its joint phase, and block every later change, forever.
    pub(crate) fn finish_committed_joint(&mut self) {
        if self.committed_membership.is_joint() && self.membership_log.is_empty() {
            let joint = self.committed_membership.clone();
            self.leave_joint(&joint);
        }
    }

    fn append_membership(&mut self, m: Membership) -> Index {
        let index = self.append_as_leader(Payload::Membership(Box::new(m.clone())));
        self.membership_log.push_back((index, m.clone()));
        self.membership = m.clone();
        self.sync_progress_with_membership();
        self.emit(Event::MembershipProposed { index, membership: m });
        index
    }

    /// Derives the membership state from its sources of truth, the snapshot's configuration
    /// and the configuration entries in the log: the latest is in effect, the latest at or
    /// below the commit index is committed. Tells user code nothing (the caller decides).
    pub(crate) fn rebuild_membership(&mut self) {
        self.committed_membership = self.snapshot.membership.clone();
        self.committed_membership_index = self.snapshot.index;
        self.membership_log = self
            .log
            .iter_range(self.log.first_index(), self.log.last_index())
            .filter_map(|e| match &e.payload {
                Payload::Membership(m) => Some((e.index, Membership::clone(m))),
                _ => None,
            })
            .collect();
        self.membership =
            self.membership_log.back().map_or_else(|| self.snapshot.membership.clone(), |(_, m)| m.clone());
        self.advance_committed_membership(false);
    }

    /// Moves membership entries at or below the commit index into the committed base, and
    /// takes the next step of a change in flight.
    pub(crate) fn advance_committed_membership(&mut self, notify: bool) {
        while self.membership_log.front().is_some_and(|(i, _)| *i <= self.commit) {
            let (index, m) = self.membership_log.pop_front().expect("front exists");
            let old = std::mem::replace(&mut self.committed_membership, m.clone());
            self.committed_membership_index = index;
            if !notify {
                continue;
            }
            self.emit(Event::MembershipCommitted { index, old, new: m.clone() });
            if !m.contains(self.id) && !m.is_joint() {
                self.emit(Event::RemovedFromCluster);
            }
            if self.role != Role::Leader {
                continue;
            }
            if m.is_joint() && self.membership_log.is_empty() {
                let final_index = self.leave_joint(&m);
                if let Some(p) = &mut self.pending_change {
                    p.final_index = Some(final_index);
                }
            } else if !m.is_joint() {
                if let Some(p) = self.pending_change.take_if(|p| p.final_index == Some(index)) {
                    self.emit(Event::MembershipChangeFinished { id: p.id, membership: m.clone() });
                }
                if !m.is_voter(self.id) {
                    // A leader that is not part of C_new steps down once C_new is committed.
                    self.become_follower(self.term, None, TransitionReason::RemovedFromCluster);
                }
            }
        }
    }

    // ---- snapshots ------------------------------------------------------------------

    /// Asks the runtime for a snapshot when the policy says the log has grown enough.
    pub(crate) fn maybe_request_snapshot(&mut self) {
        let policy = &self.cfg.snapshot_policy;
        if self.snapshot_requested || self.applied <= self.log.snapshot_index() {
            return;
        }
        let by_entries = policy.max_entries > 0 && self.applied - self.log.snapshot_index() >= policy.max_entries;
        let by_bytes = policy.max_bytes > 0 && self.bytes_since_snapshot >= policy.max_bytes;
        if by_entries || by_bytes {
            self.snapshot_requested = true;
            self.actions.push(Action::CreateSnapshot { index: self.applied });
        }
    }

    /// The membership in force at `index` (which must be at or after the snapshot point).
    fn membership_at(&self, index: Index) -> Membership {
        if index >= self.committed_membership_index && index <= self.commit {
            // The committed configuration is the latest at or below the commit index, so no
            // configuration entry lies between it and `index`: no need to scan the log
            // (a scan per snapshot of 100,000 entries cost several percent of throughput).
            return self.committed_membership.clone();
        }
        let mut m = self.snapshot.membership.clone();
        for e in self.log.iter_range(self.log.first_index(), index) {
            if let Payload::Membership(c) = &e.payload {
                m = Membership::clone(c);
            }
        }
        m
    }

    pub(crate) fn snapshot_created(&mut self, index: Index) {
        self.snapshot_requested = false;
        if index <= self.log.snapshot_index() || index > self.applied {
            self.metrics.ignored_runtime_reports += 1;
            return;
        }
        let Some(term) = self.log.term(index) else {
            self.metrics.ignored_runtime_reports += 1;
            return;
        };
        let meta = SnapshotMeta { index, term, membership: self.membership_at(index) };
        self.log.compact_to(index);
        self.snapshot = meta.clone();
        self.bytes_since_snapshot = 0;
        self.pending_snapshot_persist = Some(meta);
    }

    pub(crate) fn handle_install_snapshot(&mut self, from: NodeId, meta: SnapshotMeta) {
        self.follow(from);
        if meta.index <= self.commit {
            // We already have everything it covers.
            self.send(from, MessageBody::InstallSnapshotResponse { index: self.commit, success: true });
            return;
        }
        if self.installing.is_some() {
            // One install at a time: the runtime restores the state machine as it goes, so
            // a second one could leave it at either snapshot if the other fails. The leader
            // retries after this one finishes.
            self.metrics.dropped_unexpected += 1;
            return;
        }
        self.installing = Some((meta.clone(), from));
        self.actions.push(Action::InstallSnapshot { meta: Box::new(meta), leader: from });
    }

    pub(crate) fn snapshot_installed(&mut self, meta: SnapshotMeta, success: bool) {
        let Some((pending, leader)) = self.installing.take_if(|(m, _)| *m == meta) else {
            self.metrics.ignored_runtime_reports += 1;
            return;
        };
        if !success {
            self.send(leader, MessageBody::InstallSnapshotResponse { index: pending.index, success: false });
            return;
        }
        // Applying was frozen while installing, so the state machine — now restored to
        // `meta.index` — is never behind what the core counts as applied, even if the
        // commit index moved past the snapshot meanwhile.
        debug_assert!(self.apply_sent <= meta.index, "applied past a snapshot being installed");
        // Raft §7: keep the log after the snapshot if it agrees with it, else discard it all.
        if self.log.term(meta.index) == Some(meta.term) {
            if meta.index > self.log.snapshot_index() {
                self.log.compact_to(meta.index);
            }
        } else {
            if meta.index < self.log.last_index() {
                self.on_truncate(meta.index + 1);
            }
            self.log.reset_to_snapshot(meta.index, meta.term);
        }
        self.stable_index = self.stable_index.max(meta.index);
        self.commit = self.commit.max(meta.index);
        self.snapshot = meta.clone();
        // From the snapshot's configuration and the entries kept after it, not from what
        // was uncommitted before: the commit index may have moved past configurations in
        // the kept suffix while the install ran (they are committed, and must stay so).
        self.rebuild_membership();
        self.apply_sent = meta.index;
        self.applied = meta.index;
        // Our own proposals folded into the snapshot: their fate is not knowable here.
        while self.proposals.front().is_some_and(|(i, _, _)| *i <= meta.index) {
            let (index, _, id) = self.proposals.pop_front().expect("front exists");
            self.metrics.proposals_rejected += 1;
            self.actions.push(Action::ProposalRejected { id, error: ProposalError::OutcomeUnknown { index } });
        }
        self.bytes_since_snapshot = 0;
        self.pending_snapshot_persist = Some(meta.clone());
        self.release_applied_reads();
        self.send(leader, MessageBody::InstallSnapshotResponse { index: meta.index, success: true });
    }

    pub(crate) fn snapshot_sent(&mut self, peer: NodeId, index: Index, success: bool) {
        let Some(pr) = self.progress.get_mut(&peer) else { return };
        if !matches!(pr.state, ProgressState::Snapshot { index: i } if i == index) {
            self.metrics.ignored_runtime_reports += 1;
            return;
        }
        // Optimistically probe right after the snapshot; a failed transfer probes from the
        // old match point, which leads back to a fresh snapshot if still needed.
        let next = if success { index + 1 } else { pr.match_index + 1 };
        pr.become_probe(next);
    }

    pub(crate) fn handle_install_snapshot_response(&mut self, from: NodeId, index: Index, success: bool) {
        if self.role != Role::Leader {
            return;
        }
        let Some(pr) = self.progress.get_mut(&from) else { return };
        pr.recent_active = true;
        pr.last_contact = Some(self.now);
        pr.heard_this_round = true;
        if success && index <= self.log.last_index() {
            pr.ack(index);
            pr.become_replicate();
            self.maybe_commit();
        } else if matches!(pr.state, ProgressState::Snapshot { .. }) {
            let next = pr.match_index + 1;
            pr.become_probe(next);
        }
        self.mark_reachable(from);
    }
}
