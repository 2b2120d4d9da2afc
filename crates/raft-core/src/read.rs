//! Linearizable reads: ReadIndex (thesis §6.4), lease reads (§6.4.1), and follower reads
//! that ask the leader for a read index.
//!
//! A read index is the leader's commit index at the time of the request. The leader must
//! first have committed an entry of its own term (so its commit index is current), then
//! confirm it is still leader with a heartbeat round acknowledged by a quorum that started
//! after the request; the read is served once the state machine has applied the read index.
//! Heartbeat rounds are shared: all reads arriving while a round is in flight wait for
//! the next one, which starts as soon as the current one completes.

use crate::io::{Action, ReadConsistency, ReadError};
use crate::message::{MessageBody, ReadContext};
use crate::node::Node;
use crate::types::{Index, Instant, NodeId, ReadId, Role};
use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};

/// Who is waiting for a read index.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum ReadOrigin {
    Local(ReadId),
    Remote { from: NodeId, ctx: ReadContext },
}

/// All reads in progress on one node.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReadState {
    /// Leader: reads waiting for the first commit of the leader's term (with whether a
    /// lease may confirm them).
    waiting_commit: Vec<(ReadOrigin, bool)>,
    /// Leader: (heartbeat round that must be acknowledged, read index, origin).
    waiting_quorum: VecDeque<(u64, Index, ReadOrigin)>,
    /// Confirmed local reads waiting for the state machine: (read index, id, deadline).
    /// Reads confirmed by a remote leader keep their deadline: a follower that stopped
    /// receiving the log (cut off, or removed without knowing) would never apply them.
    waiting_apply: Vec<(Index, ReadId, Option<Instant>)>,
    /// Follower: reads forwarded to the leader, by `ReadContext::seq` (the incarnation is
    /// this node's own): (id, sent at).
    forwarded: BTreeMap<u64, (ReadId, Instant)>,
    next_seq: u64,
}

impl ReadState {
    /// When the oldest forwarded read times out.
    pub(crate) fn next_timeout(&self, timeout: Duration) -> Option<Instant> {
        let forwarded = self.forwarded.values().map(|(_, at)| *at + timeout);
        let applying = self.waiting_apply.iter().filter_map(|(_, _, deadline)| *deadline);
        forwarded.chain(applying).min()
    }
}

impl Node {
    pub(crate) fn read(&mut self, id: ReadId, consistency: ReadConsistency) {
        if self.shutting_down {
            self.actions.push(Action::ReadRejected { id, error: ReadError::ShuttingDown });
            return;
        }
        let lease = match consistency {
            ReadConsistency::Lease if !self.cfg.lease_reads => {
                self.actions.push(Action::ReadRejected { id, error: ReadError::LeaseNotEnabled });
                return;
            }
            ReadConsistency::Lease => true,
            _ => false,
        };
        match self.role {
            Role::Leader => self.leader_read(ReadOrigin::Local(id), lease),
            _ => match (consistency, self.leader) {
                // A node missing from its own latest configuration (removed, or not yet told
                // it joined) gets no more of the log, so it could never apply a read index.
                (ReadConsistency::FollowerReadIndex, Some(leader)) if self.membership.contains(self.id) => {
                    let seq = self.reads.next_seq;
                    self.reads.next_seq += 1;
                    self.reads.forwarded.insert(seq, (id, self.now));
                    let ctx = ReadContext { incarnation: self.incarnation, seq };
                    self.send(leader, MessageBody::ReadIndexRequest { ctx });
                }
                _ => self.reject_read_not_leader(id),
            },
        }
    }

    fn reject_read_not_leader(&mut self, id: ReadId) {
        let (leader, info) = self.leader_hint();
        self.actions.push(Action::ReadRejected { id, error: ReadError::NotLeader { leader, info } });
    }

    fn leader_read(&mut self, origin: ReadOrigin, lease: bool) {
        if self.log.term(self.commit) != Some(self.term) {
            self.reads.waiting_commit.push((origin, lease));
            return;
        }
        let index = self.commit;
        if lease && self.lease_valid() {
            self.read_confirmed(origin, index);
        } else {
            self.reads.waiting_quorum.push_back((self.hb_seq + 1, index, origin));
        }
    }

    /// A lease read is safe while followers that acknowledged our last confirmed round
    /// still refuse to vote for anyone else (they do for `election_timeout_min` after
    /// hearing from us), minus the allowed clock drift. Not during a transfer, which
    /// deliberately lets another node win.
    fn lease_valid(&self) -> bool {
        self.cfg.lease_reads
            && self.transfer.is_none()
            && !self.lease_forfeited
            && self.lease_until.is_some_and(|until| self.now < until)
    }

    fn read_confirmed(&mut self, origin: ReadOrigin, index: Index) {
        self.read_confirmed_until(origin, index, None);
    }

    fn read_confirmed_until(&mut self, origin: ReadOrigin, index: Index, deadline: Option<Instant>) {
        match origin {
            ReadOrigin::Local(id) => {
                if index <= self.applied {
                    self.actions.push(Action::ReadReady { id, index });
                } else {
                    self.reads.waiting_apply.push((index, id, deadline));
                }
            }
            ReadOrigin::Remote { from, ctx } => {
                self.send(from, MessageBody::ReadIndexResponse { ctx, index: Some(index) });
            }
        }
    }

    pub(crate) fn release_reads_waiting_for_commit(&mut self) {
        for (origin, lease) in std::mem::take(&mut self.reads.waiting_commit) {
            self.leader_read(origin, lease);
        }
    }

    /// Starts a heartbeat round if reads wait for one and none is in flight.
    pub(crate) fn maybe_start_read_round(&mut self) {
        let wants_round = self.reads.waiting_quorum.back().is_some_and(|(seq, _, _)| *seq > self.hb_seq);
        if wants_round && self.quorum_acked_seq() >= self.hb_seq {
            self.broadcast_heartbeat();
        }
    }

    fn quorum_acked_seq(&self) -> u64 {
        let (id, hb) = (self.id, self.hb_seq);
        let progress = &self.progress;
        self.membership
            .quorum_index(|peer| if peer == id { hb } else { progress.get(&peer).map_or(0, |p| p.acked_seq) })
    }

    /// After heartbeat acknowledgements: confirm reads and extend the lease.
    pub(crate) fn on_read_acks(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let acked = self.quorum_acked_seq();
        let mut started = None;
        while self.hb_sent_at.front().is_some_and(|(s, _)| *s <= acked) {
            started = self.hb_sent_at.pop_front().map(|(_, at)| at);
        }
        if let Some(at) = started.filter(|_| !self.lease_forfeited) {
            self.lease_until = Some(at + self.cfg.election_timeout_min.saturating_sub(self.cfg.lease_clock_drift));
        }
        while self.reads.waiting_quorum.front().is_some_and(|(s, _, _)| *s <= acked) {
            let (_, index, origin) = self.reads.waiting_quorum.pop_front().expect("front exists");
            self.read_confirmed(origin, index);
        }
    }

    pub(crate) fn release_applied_reads(&mut self) {
        let applied = self.applied;
        let mut i = 0;
        while i < self.reads.waiting_apply.len() {
            let (index, id, _) = self.reads.waiting_apply[i];
            if index <= applied {
                self.reads.waiting_apply.swap_remove(i);
                self.actions.push(Action::ReadReady { id, index });
            } else {
                i += 1;
            }
        }
    }

    pub(crate) fn handle_read_index_request(&mut self, from: NodeId, ctx: ReadContext) {
        if self.role != Role::Leader {
            self.send(from, MessageBody::ReadIndexResponse { ctx, index: None });
            return;
        }
        self.leader_read(ReadOrigin::Remote { from, ctx }, false);
    }

    pub(crate) fn handle_read_index_response(&mut self, ctx: ReadContext, index: Option<Index>) {
        // A reply to an earlier incarnation's read names a context this one never used.
        let forwarded = if ctx.incarnation == self.incarnation { self.reads.forwarded.remove(&ctx.seq) } else { None };
        let Some((id, sent)) = forwarded else {
            self.metrics.dropped_unexpected += 1;
            return;
        };
        match index {
            Some(index) => {
                let deadline = sent + self.cfg.election_timeout_max;
                self.read_confirmed_until(ReadOrigin::Local(id), index, Some(deadline));
            }
            None => self.reject_read_not_leader(id),
        }
    }

    /// On losing leadership: reads that were not confirmed cannot be answered by us.
    pub(crate) fn reject_leader_reads(&mut self) {
        let (leader, info) = self.leader_hint();
        let waiting: Vec<ReadOrigin> = std::mem::take(&mut self.reads.waiting_commit)
            .into_iter()
            .map(|(o, _)| o)
            .chain(std::mem::take(&mut self.reads.waiting_quorum).into_iter().map(|(_, _, o)| o))
            .collect();
        for origin in waiting {
            match origin {
                ReadOrigin::Local(id) => {
                    let error = ReadError::NotLeader { leader, info: info.clone() };
                    self.actions.push(Action::ReadRejected { id, error })
                }
                ReadOrigin::Remote { from, ctx } => {
                    self.send(from, MessageBody::ReadIndexResponse { ctx, index: None })
                }
            }
        }
    }

    /// When the leader changes, forwarded reads will not be answered.
    pub(crate) fn reject_forwarded_reads(&mut self) {
        for (_, (id, _)) in std::mem::take(&mut self.reads.forwarded) {
            self.reject_read_not_leader(id);
        }
    }

    pub(crate) fn expire_forwarded_reads(&mut self) {
        let deadline = self.cfg.election_timeout_max;
        let now = self.now;
        let expired: Vec<u64> =
            self.reads.forwarded.iter().filter(|(_, (_, at))| now >= *at + deadline).map(|(c, _)| *c).collect();
        for ctx in expired {
            if let Some((id, _)) = self.reads.forwarded.remove(&ctx) {
                self.actions.push(Action::ReadRejected { id, error: ReadError::Timeout });
            }
        }
        let mut i = 0;
        while i < self.reads.waiting_apply.len() {
            let (_, id, deadline) = self.reads.waiting_apply[i];
            if deadline.is_some_and(|d| now >= d) {
                self.reads.waiting_apply.swap_remove(i);
                self.actions.push(Action::ReadRejected { id, error: ReadError::Timeout });
            } else {
                i += 1;
            }
        }
    }
}
