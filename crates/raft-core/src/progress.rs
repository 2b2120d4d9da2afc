//! The leader's record of each peer's replication: how far it matches, what to send next,
//! and how many messages are in flight (flow control).

use crate::types::{Index, Instant};
use std::collections::VecDeque;

/// How the leader replicates to a peer.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// The peer's match point is unknown: send one `Append` at a time and wait.
    Probe,
    /// The peer is known to match: stream `Append`s, up to the in-flight limit.
    Replicate,
    /// The peer needs a snapshot of at least `index` before appends can continue.
    Snapshot {
        /// The snapshot's last index.
        index: Index,
    },
}

/// Last indexes of the `Append` messages in flight to one peer, oldest first.
#[derive(Clone, Debug, Default)]
pub struct Inflights {
    queue: VecDeque<Index>,
    capacity: usize,
}

impl Inflights {
    /// An empty window admitting `capacity` messages.
    pub fn new(capacity: usize) -> Self {
        Inflights { queue: VecDeque::with_capacity(capacity), capacity }
    }

    /// True when no more messages may be sent.
    pub fn is_full(&self) -> bool {
        self.queue.len() >= self.capacity
    }

    /// Messages in flight.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True if nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Records a message whose last entry is `last`.
    pub fn add(&mut self, last: Index) {
        debug_assert!(!self.is_full(), "inflight window overflow");
        self.queue.push_back(last);
    }

    /// Acknowledges everything up to `index`.
    pub fn free_to(&mut self, index: Index) {
        while self.queue.front().is_some_and(|&i| i <= index) {
            self.queue.pop_front();
        }
    }

    /// Forgets everything in flight.
    pub fn clear(&mut self) {
        self.queue.clear();
    }
}

/// The leader's view of one peer.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Highest index known to be durably replicated on the peer.
    pub match_index: Index,
    /// Next index to send.
    pub next_index: Index,
    /// Replication mode.
    pub state: ProgressState,
    /// In Probe: an append was sent and not yet answered.
    pub probe_sent: bool,
    /// Messages in flight (Replicate).
    pub inflights: Inflights,
    /// Heard from since the last CheckQuorum round.
    pub recent_active: bool,
    /// Last time the peer answered.
    pub last_contact: Option<Instant>,
    /// Highest heartbeat round it acknowledged.
    pub acked_seq: u64,
    /// Consecutive heartbeat rounds without an answer.
    pub missed_heartbeats: u32,
    /// Reported unreachable (and not yet reachable again).
    pub unreachable: bool,
    /// Commit index last sent to it.
    pub commit_sent: Index,
    /// Answered since the last heartbeat round.
    pub heard_this_round: bool,
    /// Send an empty append at `next_index - 1` even if nothing is new: the peer answered a
    /// heartbeat while behind, so an append may have been lost and the gap must be found.
    pub resync: bool,
    /// In Snapshot: when the leader gives up on the transfer (`Config::snapshot_transfer_timeout`).
    pub snapshot_deadline: Option<Instant>,
    /// In Snapshot: the runtime reported the snapshot (ending at this index) delivered; the
    /// leader awaits the follower's answer.
    pub snapshot_delivered: Option<Index>,
}

impl Progress {
    /// A fresh progress for a new leader whose last index is `last_index`.
    pub fn new(last_index: Index, max_inflight: usize) -> Self {
        Progress {
            match_index: 0,
            next_index: last_index + 1,
            state: ProgressState::Probe,
            probe_sent: false,
            inflights: Inflights::new(max_inflight),
            recent_active: false,
            last_contact: None,
            acked_seq: 0,
            missed_heartbeats: 0,
            unreachable: false,
            commit_sent: 0,
            heard_this_round: false,
            resync: false,
            snapshot_deadline: None,
            snapshot_delivered: None,
        }
    }

    /// True if the leader may send an append now (flow control).
    pub fn can_send(&self) -> bool {
        match self.state {
            ProgressState::Probe => !self.probe_sent,
            ProgressState::Replicate => !self.inflights.is_full(),
            ProgressState::Snapshot { .. } => false,
        }
    }

    /// Enter Probe, resuming from `next` (never below `match_index + 1`).
    pub fn become_probe(&mut self, next: Index) {
        self.state = ProgressState::Probe;
        self.next_index = next.max(self.match_index + 1);
        self.probe_sent = false;
        self.inflights.clear();
        self.snapshot_deadline = None;
        self.snapshot_delivered = None;
    }

    /// Enter Replicate after the peer's match point is established.
    pub fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next_index = self.match_index + 1;
        self.probe_sent = false;
        self.inflights.clear();
        self.snapshot_deadline = None;
        self.snapshot_delivered = None;
    }

    /// True if the peer holds the whole log (`last`) but was last told a commit index below
    /// `commit` (of what it holds): an empty append would let it apply more.
    #[inline]
    pub fn wants_commit(&self, commit: Index, last: Index) -> bool {
        self.commit_sent < commit.min(self.match_index) && self.match_index == last
    }

    /// Records that an append ending at `last` was sent (`last == next - 1` for an empty one).
    pub fn sent(&mut self, last: Index, had_entries: bool) {
        match self.state {
            ProgressState::Replicate if had_entries => {
                self.inflights.add(last);
                self.next_index = last + 1;
            }
            ProgressState::Probe => self.probe_sent = true,
            _ => {}
        }
    }

    /// Records an acknowledgement up to `index`; returns false if it told nothing new.
    pub fn ack(&mut self, index: Index) -> bool {
        let news = index > self.match_index;
        if news {
            self.match_index = index;
            self.next_index = self.next_index.max(index + 1);
        }
        self.inflights.free_to(index);
        self.probe_sent = false;
        news
    }

    /// A short name of the state.
    pub fn state_name(&self) -> &'static str {
        match self.state {
            ProgressState::Probe => "probe",
            ProgressState::Replicate => "replicate",
            ProgressState::Snapshot { .. } => "snapshot",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_empty_until_something_is_in_flight_and_after_it_is_freed() {
        let mut w = Inflights::new(4);
        assert!(w.is_empty());
        w.add(3);
        w.add(5);
        assert!(!w.is_empty());
        w.free_to(4);
        assert_eq!(w.len(), 1);
        w.free_to(5);
        assert!(w.is_empty());
        w.add(7);
        w.clear();
        assert!(w.is_empty() && !w.is_full());
    }

    #[test]
    fn an_empty_append_in_replicate_takes_no_room_in_the_window() {
        let mut p = Progress::new(10, 1);
        p.match_index = 10;
        p.become_replicate();
        p.sent(10, false);
        assert!(p.inflights.is_empty() && p.can_send());
        assert_eq!(p.next_index, 11);
    }

    #[test]
    fn an_acknowledgement_is_news_only_above_the_match_index() {
        let mut p = Progress::new(10, 4);
        assert!(p.ack(5));
        assert_eq!((p.match_index, p.next_index), (5, 11), "next never moves back");
        assert!(!p.ack(5), "the same index again tells nothing new");
        assert!(!p.ack(3));
        assert!(p.ack(12));
        assert_eq!((p.match_index, p.next_index), (12, 13));
    }

    #[test]
    fn replicate_window_limits_inflight_and_frees_on_ack() {
        let mut p = Progress::new(10, 2);
        p.match_index = 10;
        p.become_replicate();
        assert!(p.can_send());
        p.sent(12, true);
        p.sent(14, true);
        assert!(!p.can_send(), "window of 2 is full");
        assert_eq!(p.next_index, 15);
        p.ack(12);
        assert!(p.can_send());
        assert_eq!(p.inflights.len(), 1);
    }

    #[test]
    fn probe_sends_one_at_a_time_and_never_regresses_below_match() {
        let mut p = Progress::new(10, 4);
        p.sent(10, false);
        assert!(!p.can_send());
        p.match_index = 5;
        p.become_probe(2);
        assert_eq!(p.next_index, 6);
        assert!(p.can_send());
    }
}
