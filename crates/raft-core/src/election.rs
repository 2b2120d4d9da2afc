//! Leader election (Raft §5.2) with PreVote (thesis §9.6) and the vote rules of §5.4.1.

use crate::event::TransitionReason;
use crate::log::{Entry, Payload};
use crate::membership::VoteResult;
use crate::message::MessageBody;
use crate::node::{Campaign, Node};
use crate::progress::Progress;
use crate::types::{Index, NodeId, Role, Term};
use std::collections::BTreeSet;

impl Node {
    /// Starts a (pre-)election. PreVote asks for term + 1 without raising ours, so a node
    /// that cannot win (cut off, or with a stale log) never forces the cluster's term up.
    pub(crate) fn campaign(&mut self, kind: Campaign, reason: crate::event::TransitionReason) {
        let was = self.role;
        self.votes.clear();
        let (pre_vote, term) = match kind {
            Campaign::PreVote => {
                self.role = Role::PreCandidate;
                self.votes.insert(self.id, true);
                (true, self.term + 1)
            }
            Campaign::Election | Campaign::Transfer => {
                self.term += 1;
                self.vote = Some(self.id);
                self.hard_state_dirty = true;
                self.role = Role::Candidate;
                self.metrics.elections_started += 1;
                (false, self.term)
            }
        };
        self.set_leader(None);
        self.reset_election_deadline();
        if was != self.role || !pre_vote {
            self.record_transition(was, reason);
        }
        if !pre_vote {
            // Our own vote counts once it is durable: `send` gates it on the persist.
            self.send(self.id, MessageBody::VoteResponse { pre_vote: false, granted: true });
        }
        let body = MessageBody::VoteRequest {
            pre_vote,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            transfer: kind == Campaign::Transfer,
        };
        let voters: Vec<NodeId> = self.membership.voters.union(&self.membership.outgoing).copied().collect();
        for peer in voters {
            if peer != self.id {
                // Not through `send`: the request promises nothing durable, and a pre-vote
                // carries the term it would campaign in rather than ours.
                let msg = crate::message::Message { from: self.id, to: peer, term, body: body.clone() };
                self.metrics.messages_sent += 1;
                self.actions.push(crate::io::Action::Send(msg));
            }
        }
        if pre_vote {
            self.tally(true);
        }
    }

    pub(crate) fn handle_vote_request(
        &mut self,
        from: NodeId,
        term: Term,
        pre_vote: bool,
        last_index: Index,
        last_term: Term,
    ) {
        // We already voted for this candidate (a retransmission), or have not voted and
        // follow no leader; a pre-vote for a later term is judged on the log alone.
        let may_vote =
            self.vote == Some(from) || (self.vote.is_none() && self.leader.is_none()) || (pre_vote && term > self.term);
        let granted = may_vote && self.log.is_up_to_date(last_index, last_term);
        if granted && !pre_vote {
            self.vote = Some(from);
            self.hard_state_dirty = true;
            self.reset_election_deadline();
        }
        let body = MessageBody::VoteResponse { pre_vote, granted };
        if pre_vote && granted {
            // A granted pre-vote answers in the term it was asked about.
            let msg = crate::message::Message { from: self.id, to: from, term, body };
            self.metrics.messages_sent += 1;
            self.actions.push(crate::io::Action::Send(msg));
        } else {
            self.send(from, body);
        }
    }

    pub(crate) fn handle_vote_response(&mut self, from: NodeId, term: Term, pre_vote: bool, granted: bool) {
        let expected = match (pre_vote, self.role) {
            // A granted pre-vote answers in the term it was asked about; a refusal comes in
            // the voter's own term, which is ours (a higher one deposed us before this).
            (true, Role::PreCandidate) if granted => self.term + 1,
            (true, Role::PreCandidate) => self.term,
            (false, Role::Candidate) => self.term,
            _ => {
                self.metrics.dropped_unexpected += 1;
                return;
            }
        };
        if term != expected {
            self.metrics.dropped_unexpected += 1;
            return;
        }
        self.votes.insert(from, granted);
        self.tally(pre_vote);
    }

    fn tally(&mut self, pre_vote: bool) {
        let votes = &self.votes;
        match self.membership.vote_result(|id| votes.get(&id).copied()) {
            VoteResult::Won => {
                let granted: BTreeSet<NodeId> = self.votes.iter().filter(|(_, g)| **g).map(|(id, _)| *id).collect();
                if pre_vote {
                    self.campaign(Campaign::Election, TransitionReason::PreVoteWon { votes: granted });
                } else {
                    self.become_leader(granted);
                }
            }
            VoteResult::Lost => self.become_follower(self.term, None, TransitionReason::LostElection),
            VoteResult::Pending => {}
        }
    }

    fn become_leader(&mut self, votes: BTreeSet<NodeId>) {
        let was = self.role;
        self.role = Role::Leader;
        self.votes.clear();
        let last = self.log.last_index();
        let max_inflight = self.cfg.max_inflight_messages;
        self.progress = self
            .membership
            .members()
            .into_iter()
            .filter(|id| *id != self.id)
            .map(|id| (id, Progress::new(last, max_inflight)))
            .collect();
        self.heartbeat_deadline = self.now + self.cfg.heartbeat_interval;
        self.check_quorum_deadline = self.now + self.cfg.election_timeout_min;
        self.lease_until = None;
        self.lease_forfeited = false;
        self.hb_sent_at.clear();
        self.quorum_lost = false;
        self.set_leader(Some(self.id));
        self.record_transition(was, TransitionReason::WonElection { votes });
        // Raft §5.4.2 / §8: a leader commits entries of earlier terms only by committing one
        // of its own; the no-op makes that happen without waiting for a client.
        let entry = Entry { term: self.term, index: last + 1, payload: Payload::Noop };
        self.log.append([entry]).expect("the no-op continues the log");
        self.finish_committed_joint();
    }

    pub(crate) fn handle_timeout_now(&mut self, from: NodeId) {
        // Only the leader we follow may start a transfer: the election it triggers bypasses
        // the voters' leases, so from anyone else it could unseat a leader serving lease reads.
        if self.role == Role::Leader || self.leader != Some(from) || !self.can_campaign() {
            self.metrics.dropped_unexpected += 1;
            return;
        }
        self.campaign(Campaign::Transfer, TransitionReason::TransferRequested { from });
    }
}
