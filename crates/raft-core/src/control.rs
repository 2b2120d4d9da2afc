//! Operations controls: leader transfer (thesis §3.10), pause / resume, and orderly shutdown.

use crate::event::{Event, TransitionReason};
use crate::io::{Action, TransferError};
use crate::message::MessageBody;
use crate::node::{Node, Transfer};
use crate::types::{NodeId, RequestId, Role};

impl Node {
    pub(crate) fn transfer_leadership(&mut self, id: RequestId, to: Option<NodeId>) {
        if let Err(error) = self.check_transfer(to) {
            let reason = error.to_string();
            self.emit(Event::TransferRejected { target: to, reason });
            self.actions.push(Action::TransferDone { id, result: Err(error) });
            return;
        }
        let target = to.or_else(|| self.best_transferee()).expect("checked: a target exists");
        self.start_transfer(target, Some(id));
    }

    fn check_transfer(&self, to: Option<NodeId>) -> Result<(), TransferError> {
        if self.role != Role::Leader {
            let (leader, info) = self.leader_hint();
            return Err(TransferError::NotLeader { leader, info });
        }
        if self.transfer.is_some() {
            return Err(TransferError::InProgress);
        }
        match to {
            Some(t) if t == self.id => Err(TransferError::AlreadyLeader),
            Some(t) if !self.membership.is_voter(t) || !self.progress.contains_key(&t) => {
                Err(TransferError::NotAVoter(t))
            }
            Some(_) => Ok(()),
            None if self.best_transferee().is_none() => Err(TransferError::NoTarget),
            None => Ok(()),
        }
    }

    fn start_transfer(&mut self, target: NodeId, id: Option<RequestId>) {
        self.transfer = Some(Transfer { target, deadline: self.now + self.cfg.election_timeout_max, id });
        let caught_up = self.progress.get(&target).is_some_and(|p| p.match_index == self.log.last_index());
        if caught_up {
            self.send(target, MessageBody::TimeoutNow);
        }
        // Otherwise the next flush replicates to it and the append response sends TimeoutNow.
    }

    /// After a requested transfer ended with our step-down: answers it once the next
    /// leader is known (the target, or someone else), or when its deadline passes.
    pub(crate) fn settle_transfer_outcome(&mut self) {
        let Some((id, target, deadline)) = self.transfer_outcome else { return };
        let result = match self.leader {
            Some(l) if l == target => Ok(target),
            Some(l) => Err(TransferError::LeadershipLost { leader: Some(l) }),
            None if self.now >= deadline => Err(TransferError::TimedOut),
            None => return,
        };
        self.transfer_outcome = None;
        self.actions.push(Action::TransferDone { id, result });
    }

    /// The reachable voter with the most of our log (lowest id on ties), for pause,
    /// shutdown and transfers to no one in particular. A peer the leader has reported
    /// unreachable is passed over: handing leadership to a stopped node would only abort.
    fn best_transferee(&self) -> Option<NodeId> {
        self.progress
            .iter()
            .filter(|(id, pr)| self.membership.is_voter(**id) && !pr.unreachable)
            .max_by(|(a, pa), (b, pb)| pa.match_index.cmp(&pb.match_index).then(b.cmp(a)))
            .map(|(id, _)| *id)
    }

    pub(crate) fn abort_transfer(&mut self) {
        let Some(t) = self.transfer.take() else { return };
        self.emit(Event::TransferAborted { target: t.target });
        if let Some(id) = t.id {
            self.actions.push(Action::TransferDone { id, result: Err(TransferError::TimedOut) });
        }
        if self.paused {
            // A paused leader keeps trying to hand over.
            self.hand_over_or_step_down();
        }
    }

    /// For pause and shutdown: hand leadership to the best voter, or (with no other voter)
    /// simply step down.
    fn hand_over_or_step_down(&mut self) {
        match self.best_transferee() {
            Some(t) => self.start_transfer(t, None),
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
