//! Operations controls: leader transfer (thesis §3.10), pause / resume, and orderly shutdown.

use crate::event::{Event, TransitionReason};
use crate::message::MessageBody;
use crate::node::{Node, Transfer};
use crate::types::{NodeId, Role};

impl Node {
    pub(crate) fn transfer_leadership(&mut self, to: Option<NodeId>) {
        if self.role != Role::Leader {
            self.emit(Event::TransferRejected {
                target: to,
                reason: format!("not the leader (leader: {:?})", self.leader),
            });
            return;
        }
        let target = match to {
            Some(t) => t,
            None => match self.best_transferee() {
                Some(t) => t,
                None => {
                    self.emit(Event::TransferRejected { target: None, reason: "no other voter".into() });
                    return;
                }
            },
        };
        if target == self.id {
            self.emit(Event::TransferRejected { target: Some(target), reason: "already the leader".into() });
            return;
        }
        if !self.membership.is_voter(target) || !self.progress.contains_key(&target) {
            self.emit(Event::TransferRejected { target: Some(target), reason: "target is not a voter".into() });
            return;
        }
        self.start_transfer(target);
    }

    fn start_transfer(&mut self, target: NodeId) {
        self.transfer = Some(Transfer { target, deadline: self.now + self.cfg.election_timeout_max });
        let caught_up = self.progress.get(&target).is_some_and(|p| p.match_index == self.log.last_index());
        if caught_up {
            self.send(target, MessageBody::TimeoutNow);
        }
        // Otherwise the next flush replicates to it and the append response sends TimeoutNow.
    }

    /// The voter with the most of our log (lowest id on ties), for pause and shutdown.
    fn best_transferee(&self) -> Option<NodeId> {
        self.progress
            .iter()
            .filter(|(id, _)| self.membership.is_voter(**id))
            .max_by(|(a, pa), (b, pb)| pa.match_index.cmp(&pb.match_index).then(b.cmp(a)))
            .map(|(id, _)| *id)
    }

    pub(crate) fn abort_transfer(&mut self) {
        let Some(t) = self.transfer.take() else { return };
        self.emit(Event::TransferAborted { target: t.target });
        if self.paused {
            // A paused leader keeps trying to hand over.
            self.hand_over_or_step_down();
        }
    }

    /// For pause and shutdown: hand leadership to the best voter, or (with no other voter)
    /// simply step down.
    fn hand_over_or_step_down(&mut self) {
        match self.best_transferee() {
            Some(t) => self.start_transfer(t),
            None => self.become_follower(self.term, None, TransitionReason::Paused),
        }
    }

    pub(crate) fn pause(&mut self, shutdown: bool) {
        self.shutting_down |= shutdown;
        if self.paused {
            return;
        }
        self.paused = true;
        let role = self.role;
        match role {
            Role::Leader => {
                self.record_transition(role, TransitionReason::Paused);
                if self.transfer.is_none() {
                    self.hand_over_or_step_down();
                }
            }
            Role::Candidate | Role::PreCandidate => {
                self.become_follower(self.term, None, TransitionReason::Paused);
            }
            Role::Follower => self.record_transition(role, TransitionReason::Paused),
        }
    }

    pub(crate) fn resume(&mut self) {
        if !self.paused {
            return;
        }
        self.paused = false;
        self.shutting_down = false;
        self.ready_to_stop_sent = false;
        self.reset_election_deadline();
        self.record_transition(self.role, TransitionReason::Resumed);
    }
}
