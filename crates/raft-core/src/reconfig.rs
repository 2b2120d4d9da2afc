//! Membership changes by joint consensus (Raft thesis §4.3) and snapshots (§5).
//!
//! A configuration takes effect on each node as soon as it is in the node's log. The
//! leader appends `C_old,new` (joint), and once that commits, appends `C_new`; only one
//! change is in flight at a time, and only after the leader committed an entry of its term.

use crate::event::{Event, MembershipSource, TransitionReason};
use crate::io::{apply_change, Action, MembershipChange, ProposalError};
use crate::log::{Payload, SnapshotMeta};
use crate::membership::{Membership, NodeInfo};
use crate::message::{MessageBody, SnapshotHeader};
use crate::node::{Node, PendingChange};
use crate::progress::ProgressState;
use crate::types::{Index, NodeId, RequestId, Role};

impl MembershipChange {
    /// Add `id` as a learner (the first step of adding a node), with its node info.
    pub fn add_learner(id: NodeId, info: NodeInfo) -> Self {
        let mut change = MembershipChange { add_learners: vec![id], ..Default::default() };
        if !info.is_empty() {
            change.info.insert(id, info);
        }
        change
    }
    /// Promote learner `id` to voter (or add it directly as a voter, with no node info).
    pub fn add_voter(id: NodeId) -> Self {
        MembershipChange { add_voters: vec![id], ..Default::default() }
    }
    /// Remove member `id`.
    pub fn remove(id: NodeId) -> Self {
        MembershipChange { remove: vec![id], ..Default::default() }
    }
}

impl Node {
    pub(crate) fn change_membership(&mut self, id: RequestId, change: MembershipChange) {
        if let Err(error) = self.check_change(&change) {
            self.reject_change(id, error);
            return;
        }
        let next = match apply_change(&self.membership, &change, self.cfg.max_node_info_bytes) {
            Ok(next) => next,
            Err(reason) => {
                self.reject_change(id, ProposalError::InvalidChange(reason));
                return;
            }
        };
        if let Some(lag) = change.require_caught_up {
            let last = self.log.last_index();
            for v in &change.add_voters {
                let caught_up = self.progress.get(v).is_some_and(|p| p.match_index.saturating_add(lag) >= last);
                if !caught_up {
                    self.reject_change(id, ProposalError::InvalidChange(format!("learner {v} is not caught up")));
                    return;
                }
            }
        }
        let target = if next.voters == self.membership.voters {
            // Only learners (or node info) change: no quorum changes, so no joint phase.
            next
        } else {
            // While joint, the outgoing voters keep their info: they are still members.
            let mut info = self.membership.info.clone();
            info.extend(next.info);
            let mut joint = Membership {
                voters: next.voters,
                outgoing: self.membership.voters.clone(),
                learners: next.learners,
                info,
            };
            joint.prune_info();
            joint
        };
        let joint = target.is_joint();
        let index = self.append_membership(target);
        self.pending_change = Some(PendingChange { id, final_index: (!joint).then_some(index) });
    }

    /// Answers a membership change request that will not be made (or that this node can no
    /// longer finish): the event for observers and the completion for the requester.
    pub(crate) fn reject_change(&mut self, id: RequestId, error: ProposalError) {
        self.emit(Event::MembershipChangeRejected { id, error: error.clone() });
        self.actions.push(Action::MembershipChangeDone { id, result: Err(error) });
    }

    fn check_change(&self, _change: &MembershipChange) -> Result<(), ProposalError> {
        if self.role != Role::Leader {
            return Err(self.not_leader());
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
        let mut next = Membership {
            voters: joint.voters.clone(),
            outgoing: Default::default(),
            learners: joint.learners.clone(),
            info: joint.info.clone(),
        };
        next.prune_info();
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
                    self.actions.push(Action::MembershipChangeDone { id: p.id, result: Ok(m.clone()) });
                }
                if !m.is_voter(self.id) {
                    // A leader that is not part of C_new steps down once C_new is committed.
                    self.become_follower(self.term, None, TransitionReason::RemovedFromCluster);
                }
            }
        }
    }

    /// Tells user code the whole configuration state after it was loaded other than entry
    /// by entry (restart, snapshot install).
    pub(crate) fn emit_membership_loaded(&mut self, source: MembershipSource) {
        self.emit(Event::MembershipLoaded {
            source,
            committed: self.committed_membership.clone(),
            committed_index: self.committed_membership_index,
            latest: self.membership.clone(),
        });
    }

    // ---- snapshots ------------------------------------------------------------------

    /// Asks the runtime for a snapshot when the policy says the log has grown enough. The
    /// snapshot is taken at `apply_sent`: the action follows the `Apply` actions up to it,
    /// so a runtime that applies in action order snapshots exactly there.
    pub(crate) fn maybe_request_snapshot(&mut self) {
        let policy = &self.cfg.snapshot_policy;
        let at = self.apply_sent;
        if self.snapshot_requested.is_some() || self.installing.is_some() || at <= self.log.snapshot_index() {
            return;
        }
        let by_entries = policy.max_entries > 0 && at - self.log.snapshot_index() >= policy.max_entries;
        let by_bytes = policy.max_bytes > 0 && self.bytes_since_snapshot >= policy.max_bytes;
        if !(by_entries || by_bytes) {
            return;
        }
        let Some(term) = self.log.term(at) else { return };
        let meta = SnapshotMeta { index: at, term, membership: self.membership_at(at) };
        self.snapshot_requested = Some(at);
        self.actions.push(Action::CreateSnapshot { meta: Box::new(meta) });
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

    pub(crate) fn snapshot_created(&mut self, index: Index, success: bool) {
        let Some(requested) = self.snapshot_requested else {
            self.reject_report("SnapshotCreated", format!("snapshot at {index} reported, but none was asked for"));
            return;
        };
        if index != requested {
            let detail = format!("snapshot reported at {index}, but it was asked for at {requested}");
            self.reject_report("SnapshotCreated", detail);
            return;
        }
        self.snapshot_requested = None;
        if !success {
            // Asked again when the policy next triggers (at the next apply).
            return;
        }
        if index <= self.log.snapshot_index() {
            // An installed snapshot overtook it (the applier made it while the install
            // ran): nothing to compact, and nothing wrong.
            return;
        }
        let Some(term) = self.log.term(index) else {
            self.reject_report("SnapshotCreated", format!("no entry at {index} to compact to"));
            return;
        };
        let meta = SnapshotMeta { index, term, membership: self.membership_at(index) };
        self.log.compact_to(index);
        self.snapshot = meta.clone();
        self.bytes_since_snapshot = 0;
        self.pending_snapshot_persist = Some(meta);
    }

    /// A snapshot stream arrived and is staged. Decides, by the usual term rules, whether
    /// to install it; answers every stream with exactly one install or discard.
    pub(crate) fn snapshot_received(&mut self, header: SnapshotHeader) {
        let discard = |node: &mut Node, meta: SnapshotMeta, reason: &'static str| {
            node.actions.push(Action::DiscardSnapshot { meta: Box::new(meta), reason });
        };
        if header.validate().is_err() {
            self.metrics.dropped_invalid += 1;
            return discard(self, header.meta, "invalid header");
        }
        if header.to != self.id {
            self.metrics.dropped_misaddressed += 1;
            return discard(self, header.meta, "addressed to another node");
        }
        let SnapshotHeader { from, term, meta, .. } = header;
        if term < self.term {
            self.metrics.dropped_stale_term += 1;
            // As for a stale append: the old leader learns it was deposed.
            if self.cfg.check_quorum || self.cfg.pre_vote {
                self.send(from, MessageBody::HeartbeatResponse { seq: 0 });
            }
            return discard(self, meta, "from an earlier term");
        }
        if term > self.term {
            self.become_follower(term, Some(from), TransitionReason::HigherTerm { from });
        }
        if self.role == Role::Leader {
            // Two leaders in one term cannot exist; only a forged stream gets here.
            self.metrics.dropped_invalid += 1;
            return discard(self, meta, "this node leads the term");
        }
        self.follow(from);
        if meta.index <= self.commit {
            // We already have everything it covers.
            self.send(from, MessageBody::InstallSnapshotResponse { index: self.commit, success: true });
            return discard(self, meta, "already covered by the commit index");
        }
        if self.installing.is_some() {
            // One install at a time: the state machine is being replaced already. The
            // leader sends again after its transfer ends or times out.
            self.metrics.dropped_unexpected += 1;
            return discard(self, meta, "another install is in progress");
        }
        self.installing = Some((meta.clone(), from));
        self.actions.push(Action::InstallSnapshot { meta: Box::new(meta) });
    }

    pub(crate) fn snapshot_installed(&mut self, meta: SnapshotMeta, success: bool) {
        let Some((pending, leader)) = self.installing.take_if(|(m, _)| *m == meta) else {
            let detail = format!("install of snapshot {} reported, but it is not being installed", meta.index);
            self.reject_report("SnapshotInstalled", detail);
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
        self.emit_membership_loaded(MembershipSource::Snapshot);
        self.apply_sent = meta.index;
        self.applied = meta.index;
        // A snapshot asked for before the install stays asked for: its report may still
        // come (the applier may be making it right now), and is then ignored as older.
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
        let Some(pr) = self.progress.get_mut(&peer) else {
            self.metrics.ignored_runtime_reports += 1;
            return;
        };
        // The runtime may have sent a newer snapshot than the one asked for.
        if !matches!(pr.state, ProgressState::Snapshot { index: i } if index >= i) {
            self.metrics.ignored_runtime_reports += 1;
            return;
        }
        if success {
            // The bytes arrived; the follower's answer comes once it has installed them.
            // Wait for it a little (appends now would only be refused until the install
            // is done, leading back to another snapshot), then probe right after it: a
            // lost answer costs one election timeout, not a new transfer.
            pr.snapshot_deadline = Some(self.now + self.cfg.election_timeout_max);
            pr.snapshot_delivered = Some(index);
        } else {
            // Probe from the old match point, which leads back to a fresh snapshot if still
            // needed, but only once the peer answers a heartbeat: retrying at once would
            // spin on a peer the runtime cannot reach.
            let next = pr.match_index + 1;
            pr.become_probe(next);
            pr.probe_sent = true;
        }
    }

    /// Gives up on snapshot transfers that neither ended nor were answered in time, so a
    /// stream lost without a report never leaves a follower without the log for good.
    pub(crate) fn expire_snapshot_transfers(&mut self) {
        let now = self.now;
        for pr in self.progress.values_mut() {
            if pr.snapshot_deadline.is_none_or(|d| now < d) {
                continue;
            }
            if let Some(index) = pr.snapshot_delivered {
                // Delivered, but the answer is late (or lost): probe right after it.
                pr.become_probe(index + 1);
            } else {
                self.metrics.snapshot_transfers_timed_out += 1;
                let next = pr.match_index + 1;
                pr.become_probe(next);
                // As after a failed transfer: try again once the peer answers a heartbeat.
                pr.probe_sent = true;
            }
        }
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
            // The install failed: retry after the peer answers a heartbeat, not at once.
            let next = pr.match_index + 1;
            pr.become_probe(next);
            pr.probe_sent = true;
        }
        self.mark_reachable(from);
    }
}
