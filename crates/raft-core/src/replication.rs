//! Log replication (Raft §5.3): proposals, appends with pipelining and flow control, fast
//! backtracking of divergent logs, heartbeats, and the commit rule of §5.4.2.

use crate::batch::Entries;
use crate::event::Event;
use crate::io::{Action, Limit, ProposalError};
use crate::log::Payload;
use crate::message::{AppendResult, Message, MessageBody, SnapshotHeader};
use crate::node::Node;
use crate::progress::{Progress, ProgressState};
use crate::types::{Index, NodeId, ProposalId, Role, Term};
use bytes::Bytes;

impl Node {
    pub(crate) fn propose(&mut self, id: ProposalId, data: Bytes) {
        let checked = self.check_can_propose().and_then(|()| {
            let max = self.cfg.max_entry_bytes;
            if data.len() > max {
                return Err(ProposalError::TooLarge { size: data.len(), max });
            }
            Ok(())
        });
        if let Err(error) = checked {
            self.metrics.proposals_rejected += 1;
            self.actions.push(Action::ProposalRejected { id, error });
            return;
        }
        let index = self.append_as_leader(Payload::Command(data));
        let term = self.term;
        // Kept in (index, term) order. Proposals of an earlier term may still be tracked
        // past `index` (their entries were truncated here but may yet commit elsewhere);
        // they have lower terms, so a new proposal goes after any at its own index.
        if self.proposals.back().is_none_or(|&(i, _, _)| i < index) {
            self.proposals.push_back((index, term, id));
        } else {
            let at = self.proposals.partition_point(|&(i, t, _)| (i, t) < (index, term));
            self.proposals.insert(at, (index, term, id));
        }
    }

    pub(crate) fn check_can_propose(&self) -> Result<(), ProposalError> {
        if self.role != Role::Leader {
            return Err(self.not_leader());
        }
        if self.paused {
            return Err(ProposalError::Paused);
        }
        if self.transfer.is_some() {
            return Err(ProposalError::TransferInProgress);
        }
        let over = |limit: usize, used: u64| limit > 0 && used >= limit as u64;
        let limit = if over(self.cfg.max_uncommitted_entries, self.log.last_index() - self.commit) {
            Limit::UncommittedEntries
        } else if over(self.cfg.max_unapplied_entries, self.commit.saturating_sub(self.applied)) {
            Limit::UnappliedEntries
        } else if over(self.cfg.max_persists_in_flight, self.persist_seq - self.durable_seq) {
            Limit::PersistsInFlight
        } else {
            return Ok(());
        };
        Err(ProposalError::Overloaded { limit })
    }

    /// Appends one entry of the current term to the leader's log; it is sent at the next
    /// flush, batched with whatever else was proposed meanwhile.
    pub(crate) fn append_as_leader(&mut self, payload: Payload) -> Index {
        self.log.push(self.term, payload)
    }

    /// Sends whatever each peer is missing, as flow control allows.
    pub(crate) fn replicate_all(&mut self) {
        let Node { progress, log, actions, cfg, metrics, snapshot, id, term, commit, now, .. } = self;
        for (&peer, pr) in progress.iter_mut() {
            let out = &mut *actions;
            replicate_to(
                ReplicateCtx { id: *id, now: *now, term: *term, commit: *commit, cfg, log, snapshot },
                peer,
                pr,
                out,
                metrics,
            );
        }
    }

    pub(crate) fn handle_append_response(&mut self, from: NodeId, result: AppendResult) {
        if self.role != Role::Leader {
            self.metrics.dropped_unexpected += 1;
            return;
        }
        let last = self.log.last_index();
        let Some(pr) = self.progress.get_mut(&from) else {
            self.metrics.dropped_unexpected += 1;
            return;
        };
        pr.recent_active = true;
        pr.last_contact = Some(self.now);
        pr.heard_this_round = true;
        match result {
            AppendResult::Success { match_index } => {
                if match_index > last {
                    self.metrics.dropped_invalid += 1;
                    return;
                }
                let news = pr.ack(match_index);
                if pr.state == ProgressState::Probe {
                    pr.become_replicate();
                }
                let caught_up = pr.match_index == last;
                self.mark_reachable(from);
                // Raising one acknowledgement to at most the commit index cannot raise the
                // quorum index above it (the log's terms below it are fixed in this term).
                if news && match_index > self.commit {
                    self.maybe_commit();
                }
                if caught_up && self.transfer.is_some_and(|t| t.target == from) {
                    self.send(from, MessageBody::TimeoutNow);
                }
            }
            AppendResult::Conflict { rejected_index, hint_index, hint_term } => {
                if rejected_index > last {
                    // We never sent a predecessor past our log, and it only grows in our term.
                    self.metrics.dropped_invalid += 1;
                    return;
                }
                let stale = match pr.state {
                    // A refusal at the match index itself is not stale: the peer no longer
                    // holds an entry it acknowledged (see below).
                    ProgressState::Replicate => rejected_index < pr.match_index,
                    ProgressState::Probe => rejected_index + 1 != pr.next_index,
                    ProgressState::Snapshot { .. } => true,
                };
                if stale {
                    self.metrics.dropped_unexpected += 1;
                    return;
                }
                // Skip the follower's whole conflicting term at once (thesis §5.3 note).
                let next = match hint_term {
                    Some(t) => {
                        let i = self.log.last_index_with_term_at_most(t, rejected_index);
                        if self.log.term(i) == Some(t) {
                            i + 1
                        } else {
                            hint_index
                        }
                    }
                    None => hint_index,
                };
                let next = next.min(rejected_index).max(1);
                if next <= pr.match_index {
                    // The peer refuses an entry it acknowledged as durable: its storage lost
                    // it (or, rarely, this is a reordered refusal from before it held it).
                    // Holding on to the match index would pin every probe there, refused
                    // forever; forget it, so the probe follows the peer down to what it
                    // holds and the log is replicated to it again. A lower match index only
                    // delays commits: the commit index never moves back.
                    self.metrics.match_index_regressions += 1;
                    #[cfg(feature = "tracing")]
                    tracing::warn!(target: "raft::replication", node = self.id, peer = from,
                        match_index = pr.match_index, rejected_index, "peer refused an entry it had acknowledged");
                    pr.match_index = 0;
                }
                pr.become_probe(next);
                self.mark_reachable(from);
            }
        }
    }

    /// Advances the commit index to the highest index a quorum holds durably, if that entry
    /// is from the current term (§5.4.2: counting replicas never commits older terms'
    /// entries directly — the Figure 8 hazard).
    pub(crate) fn maybe_commit(&mut self) {
        let (id, stable) = (self.id, self.stable_index);
        let progress = &self.progress;
        let q = self.membership.quorum_index(|peer| {
            if peer == id {
                stable
            } else {
                progress.get(&peer).map_or(0, |p| p.match_index)
            }
        });
        if q > self.commit && q <= self.log.last_index() && self.log.term(q) == Some(self.term) {
            self.commit = q;
            self.on_commit_advanced();
        }
    }

    /// Everything that waits on the commit index moving: membership steps, reads waiting
    /// for the leader's first commit in its term.
    pub(crate) fn on_commit_advanced(&mut self) {
        self.advance_committed_membership(true);
        if self.role == Role::Leader && self.log.term(self.commit) == Some(self.term) {
            self.release_reads_waiting_for_commit();
        }
    }

    pub(crate) fn handle_append(
        &mut self,
        from: NodeId,
        prev: Index,
        prev_term: Term,
        entries: Entries,
        leader_commit: Index,
    ) {
        self.follow(from);
        if self.installing.is_some() {
            // Our log is about to be replaced. A rejection would send the leader back to
            // sending the snapshot again; silence makes it wait for our install response.
            self.metrics.dropped_unexpected += 1;
            return;
        }
        let mut prev = prev;
        let mut prev_term = prev_term;
        let mut entries = entries;
        if prev < self.commit {
            // Everything up to our commit index matches the leader's log (Log Matching and
            // Leader Completeness); re-anchor the append there.
            let skip = (self.commit - prev) as usize;
            if skip >= entries.len() {
                self.send(
                    from,
                    MessageBody::AppendResponse { result: AppendResult::Success { match_index: self.commit } },
                );
                return;
            }
            prev_term = entries[skip - 1].term;
            prev = self.commit;
            entries.advance(skip);
        }
        if !self.log.matches(prev, prev_term) {
            let result = if prev > self.log.last_index() {
                AppendResult::Conflict { rejected_index: prev, hint_index: self.log.last_index() + 1, hint_term: None }
            } else {
                let t = self.log.term(prev);
                AppendResult::Conflict {
                    rejected_index: prev,
                    hint_index: self.log.first_index_of_term_at(prev).max(self.commit + 1),
                    hint_term: t,
                }
            };
            self.send(from, MessageBody::AppendResponse { result });
            return;
        }
        let last_new = prev + entries.len() as Index;
        // Find the first entry we do not already hold; everything before it is a duplicate.
        let first_new = entries.iter().position(|e| self.log.term(e.index) != Some(e.term)).unwrap_or(entries.len());
        if first_new < entries.len() {
            let at = entries[first_new].index;
            if at <= self.log.last_index() {
                if at <= self.commit {
                    self.metrics.dropped_committed_conflict += 1;
                    return;
                }
                self.log.truncate_from(at);
                self.on_truncate(at);
            }
            entries.advance(first_new);
            for e in &entries {
                if let Payload::Membership(m) = &e.payload {
                    self.membership_log.push_back((e.index, crate::membership::Membership::clone(m)));
                    self.membership = crate::membership::Membership::clone(m);
                }
            }
            if self.log.append_batch(entries).is_err() {
                // Unreachable after validation; never trust the network to keep it so.
                self.metrics.dropped_invalid += 1;
                return;
            }
        }
        let new_commit = leader_commit.min(last_new);
        if new_commit > self.commit {
            self.commit = new_commit;
            self.on_commit_advanced();
        }
        self.send(from, MessageBody::AppendResponse { result: AppendResult::Success { match_index: last_new } });
    }

    /// Records contact with the leader of the current term.
    pub(crate) fn follow(&mut self, leader: NodeId) {
        if self.role != Role::Follower {
            self.become_follower(self.term, Some(leader), crate::event::TransitionReason::LeaderDiscovered { leader });
        } else {
            self.set_leader(Some(leader));
        }
        self.last_heard_leader = Some(self.now);
        self.reset_election_deadline();
    }

    pub(crate) fn handle_heartbeat(&mut self, from: NodeId, commit: Index, seq: u64) {
        self.follow(from);
        // The leader caps `commit` at what it knows we hold, so it is safe to adopt.
        let c = commit.min(self.log.last_index());
        if c > self.commit {
            self.commit = c;
            self.on_commit_advanced();
        }
        self.send(from, MessageBody::HeartbeatResponse { seq });
    }

    pub(crate) fn handle_heartbeat_response(&mut self, from: NodeId, seq: u64) {
        if self.role != Role::Leader {
            self.metrics.dropped_unexpected += 1;
            return;
        }
        let Some(pr) = self.progress.get_mut(&from) else {
            self.metrics.dropped_unexpected += 1;
            return;
        };
        pr.recent_active = true;
        pr.last_contact = Some(self.now);
        pr.heard_this_round = true;
        pr.acked_seq = pr.acked_seq.max(seq);
        let behind = pr.match_index < self.log.last_index();
        match pr.state {
            // The probe may have been lost: allow another.
            ProgressState::Probe => pr.probe_sent = false,
            // A live peer that is behind may have lost appends we count as in flight; an
            // empty append at the end of the window finds the gap (it is rejected) or
            // confirms everything arrived.
            ProgressState::Replicate if behind => pr.resync = true,
            _ => {}
        }
        self.mark_reachable(from);
        self.on_read_acks();
    }

    /// Sends a heartbeat round to every peer, and does the per-round bookkeeping of
    /// reachability and quorum health.
    pub(crate) fn broadcast_heartbeat(&mut self) {
        self.hb_seq += 1;
        self.hb_sent_at.push_back((self.hb_seq, self.now));
        self.heartbeat_deadline = self.now + self.cfg.heartbeat_interval;
        let seq = self.hb_seq;
        let threshold = self.cfg.unreachable_after_missed_heartbeats.max(1);
        let peers: Vec<NodeId> = self.progress.keys().copied().collect();
        for peer in peers {
            let pr = self.progress.get_mut(&peer).expect("peer listed");
            if pr.heard_this_round {
                pr.missed_heartbeats = 0;
            } else {
                pr.missed_heartbeats += 1;
            }
            pr.heard_this_round = false;
            let newly_unreachable = !pr.unreachable && pr.missed_heartbeats >= threshold;
            if newly_unreachable {
                pr.unreachable = true;
            }
            let commit = self.commit.min(pr.match_index);
            self.send(peer, MessageBody::Heartbeat { commit, seq });
            if newly_unreachable {
                self.emit(Event::PeerUnreachable { peer });
            }
        }
        self.update_quorum_health();
        self.on_read_acks();
    }

    /// The transport reported `peer` unreachable: what is in flight to it is presumed lost,
    /// so the leader falls back to probing from the match point (etcd's ReportUnreachable).
    pub(crate) fn peer_unreachable(&mut self, peer: NodeId) {
        if self.role != Role::Leader {
            return;
        }
        let Some(pr) = self.progress.get_mut(&peer) else {
            self.metrics.dropped_unexpected += 1;
            return;
        };
        self.metrics.unreachable_reports += 1;
        // Only a peer in Replicate changes: it is probed once from its match index. A peer
        // already probing waits for a heartbeat answer as usual, so a transport that
        // fails (and reports) every send at once cannot make the leader spin.
        if pr.state == ProgressState::Replicate {
            let next = pr.match_index + 1;
            pr.become_probe(next);
        }
    }

    pub(crate) fn mark_reachable(&mut self, peer: NodeId) {
        if let Some(pr) = self.progress.get_mut(&peer) {
            pr.missed_heartbeats = 0;
            if pr.unreachable {
                pr.unreachable = false;
                self.emit(Event::PeerReachable { peer });
                self.update_quorum_health();
            }
        }
    }

    fn update_quorum_health(&mut self) {
        let id = self.id;
        let progress = &self.progress;
        let reachable = self.membership.vote_result(|peer| {
            if peer == id {
                Some(true)
            } else {
                Some(progress.get(&peer).is_some_and(|p| !p.unreachable))
            }
        });
        let lost = reachable != crate::membership::VoteResult::Won;
        if lost != self.quorum_lost {
            self.quorum_lost = lost;
            self.emit(if lost { Event::QuorumLost } else { Event::QuorumRegained });
        }
    }

    /// CheckQuorum: did a quorum of voters answer since the last check?
    pub(crate) fn quorum_recently_active(&self) -> bool {
        let id = self.id;
        let progress = &self.progress;
        self.membership.vote_result(|peer| {
            if peer == id {
                Some(true)
            } else {
                Some(progress.get(&peer).is_some_and(|p| p.recent_active))
            }
        }) == crate::membership::VoteResult::Won
    }

    /// Adds progress for new members and drops it for removed ones (leader only).
    pub(crate) fn sync_progress_with_membership(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let members = self.membership.members();
        self.progress.retain(|id, _| members.contains(id));
        let last = self.log.last_index();
        for id in members {
            if id != self.id {
                self.progress.entry(id).or_insert_with(|| Progress::new(last, self.cfg.max_inflight_messages));
            }
        }
    }
}

/// The read-only leader state `replicate_to` needs, split from the node so a peer's
/// progress can be borrowed mutably at the same time.
struct ReplicateCtx<'a> {
    id: NodeId,
    now: crate::types::Instant,
    term: Term,
    commit: Index,
    cfg: &'a crate::config::Config,
    log: &'a crate::log::RaftLog,
    snapshot: &'a crate::log::SnapshotMeta,
}

fn replicate_to(
    ctx: ReplicateCtx<'_>,
    peer: NodeId,
    pr: &mut Progress,
    out: &mut Vec<Action>,
    metrics: &mut crate::metrics::Metrics,
) {
    let send = |out: &mut Vec<Action>, metrics: &mut crate::metrics::Metrics, body| {
        metrics.messages_sent += 1;
        out.push(Action::Send(Message { from: ctx.id, to: peer, term: ctx.term, body }));
    };
    let last = ctx.log.last_index();
    if pr.next_index > last && !pr.resync && pr.state == ProgressState::Replicate && !pr.wants_commit(ctx.commit, last)
    {
        // Caught up and told the commit index: the common case on every flush of a leader.
        return;
    }
    if std::mem::take(&mut pr.resync) && pr.state == ProgressState::Replicate {
        let prev = pr.next_index - 1;
        match ctx.log.term(prev) {
            Some(prev_term) => {
                pr.commit_sent = ctx.commit;
                let body = MessageBody::Append {
                    prev_log_index: prev,
                    prev_log_term: prev_term,
                    entries: Entries::new(),
                    commit: ctx.commit,
                };
                send(out, metrics, body);
            }
            // What may have been lost is compacted away: start over from the match point,
            // which leads to a snapshot in the loop below.
            None => pr.become_probe(pr.match_index + 1),
        }
    }
    while pr.can_send() {
        let prev = pr.next_index - 1;
        let Some(prev_term) = ctx.log.term(prev) else {
            // The entries this peer needs were compacted away: it needs the snapshot.
            pr.state = ProgressState::Snapshot { index: ctx.snapshot.index };
            pr.inflights.clear();
            pr.snapshot_deadline = Some(ctx.now + ctx.cfg.snapshot_transfer_timeout);
            let header = SnapshotHeader { from: ctx.id, to: peer, term: ctx.term, meta: ctx.snapshot.clone() };
            out.push(Action::SendSnapshot { header: Box::new(header) });
            return;
        };
        let batch = ctx.log.batch(pr.next_index, ctx.cfg.max_entries_per_message, ctx.cfg.max_bytes_per_message);
        if batch.is_empty() {
            // Nothing new. A probe still goes out if the match point is unknown; a peer in
            // Replicate gets an empty append only to learn a newer commit index.
            let probe = pr.state == ProgressState::Probe && pr.match_index < prev;
            let commit_news = pr.state == ProgressState::Replicate && pr.wants_commit(ctx.commit, last);
            if probe || commit_news {
                pr.commit_sent = ctx.commit;
                send(
                    out,
                    metrics,
                    MessageBody::Append {
                        prev_log_index: prev,
                        prev_log_term: prev_term,
                        entries: Entries::new(),
                        commit: ctx.commit,
                    },
                );
                pr.sent(prev, false);
            }
            return;
        }
        let batch_last = batch[batch.len() - 1].index;
        metrics.entries_sent += batch.len() as u64;
        pr.commit_sent = ctx.commit;
        send(
            out,
            metrics,
            MessageBody::Append { prev_log_index: prev, prev_log_term: prev_term, entries: batch, commit: ctx.commit },
        );
        pr.sent(batch_last, true);
        if pr.state == ProgressState::Probe {
            // One probe at a time; `next_index` stays put so a rejection can be matched.
            return;
        }
    }
}
