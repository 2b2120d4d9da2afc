//! Cluster membership: who votes, who only learns, and what a quorum is.
//!
//! A membership is either simple (one voter set) or joint (`C_old,new`: the incoming voter
//! set plus the outgoing one). In a joint membership every decision (election, commit,
//! read confirmation) needs a majority of *both* sets.

use crate::types::{Index, NodeId};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Application-defined information about a member, opaque to the core (a runtime puts its
/// Raft address and its client-facing address there). It is replicated with the
/// configuration that names the member, kept in snapshots and restored on restart, so the
/// log is the one source of truth for where members are.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeInfo(pub Bytes);

impl NodeInfo {
    /// Info holding `bytes`.
    pub fn new(bytes: impl Into<Bytes>) -> Self {
        NodeInfo(bytes.into())
    }
    /// The bytes as given.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    /// True if no info was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A cluster configuration as stored in the log and in snapshots.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// Voters of the (incoming) configuration.
    pub voters: BTreeSet<NodeId>,
    /// Voters of the outgoing configuration; non-empty only while a joint change is in flight.
    pub outgoing: BTreeSet<NodeId>,
    /// Members that receive the log but neither vote nor count toward any quorum.
    pub learners: BTreeSet<NodeId>,
    /// Node info of members that have some (every key is a member; a member without an
    /// entry has empty info).
    pub info: BTreeMap<NodeId, NodeInfo>,
}

impl Membership {
    /// A simple membership whose voters are `voters` and which has no learners.
    pub fn with_voters(voters: impl IntoIterator<Item = NodeId>) -> Self {
        Membership { voters: voters.into_iter().collect(), ..Default::default() }
    }

    /// A membership from its three sets, with no node info.
    pub fn from_sets(
        voters: impl IntoIterator<Item = NodeId>,
        outgoing: impl IntoIterator<Item = NodeId>,
        learners: impl IntoIterator<Item = NodeId>,
    ) -> Self {
        Membership {
            voters: voters.into_iter().collect(),
            outgoing: outgoing.into_iter().collect(),
            learners: learners.into_iter().collect(),
            info: BTreeMap::new(),
        }
    }

    /// The info of member `id` (`None` if it is not a member or has none).
    pub fn node_info(&self, id: NodeId) -> Option<&NodeInfo> {
        self.info.get(&id).filter(|_| self.contains(id))
    }

    /// True if the two configurations have the same voters, outgoing voters and learners
    /// (node info aside).
    pub fn same_sets(&self, other: &Membership) -> bool {
        self.voters == other.voters && self.outgoing == other.outgoing && self.learners == other.learners
    }

    /// Drops the info of nodes that are no longer members.
    pub(crate) fn prune_info(&mut self) {
        let members = self.members();
        self.info.retain(|id, _| members.contains(id));
    }

    /// True while the membership is joint (`C_old,new`).
    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// True if `id` votes in either half of the configuration.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.outgoing.contains(&id)
    }

    /// True if `id` is a voter or a learner.
    pub fn contains(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.learners.contains(&id)
    }

    /// Every member (voters of both halves and learners), in ascending order, once each.
    pub fn members(&self) -> BTreeSet<NodeId> {
        let mut all = self.voters.clone();
        all.extend(self.outgoing.iter().copied());
        all.extend(self.learners.iter().copied());
        all
    }

    /// The highest index acknowledged by a quorum, given each voter's acknowledged index.
    ///
    /// `acked(id)` returns what `id` has acknowledged (0 if nothing). For a joint membership
    /// the result is the minimum over both halves. An empty voter set acknowledges
    /// everything (`u64::MAX`), so that a joint config with an empty half reduces to the other.
    pub fn quorum_index(&self, acked: impl Fn(NodeId) -> Index) -> Index {
        let incoming = majority_index(&self.voters, &acked);
        if self.outgoing.is_empty() {
            incoming
        } else {
            incoming.min(majority_index(&self.outgoing, &acked))
        }
    }

    /// The outcome of a vote given `vote(id)`: `Some(true)` granted, `Some(false)` rejected,
    /// `None` not yet heard.
    pub fn vote_result(&self, vote: impl Fn(NodeId) -> Option<bool>) -> VoteResult {
        let incoming = majority_vote(&self.voters, &vote);
        if self.outgoing.is_empty() {
            return incoming;
        }
        let outgoing = majority_vote(&self.outgoing, &vote);
        match (incoming, outgoing) {
            (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
            (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
            _ => VoteResult::Pending,
        }
    }
}

/// Where a vote (election, pre-vote or any other quorum question) stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum VoteResult {
    /// A quorum said yes.
    Won,
    /// A quorum can no longer say yes.
    Lost,
    /// Neither yet.
    Pending,
}

fn majority_index(voters: &BTreeSet<NodeId>, acked: &impl Fn(NodeId) -> Index) -> Index {
    if voters.is_empty() {
        return Index::MAX;
    }
    // Small clusters: a fixed stack buffer avoids an allocation on the commit hot path.
    let mut buf = [0 as Index; 16];
    let mut heap;
    let values: &mut [Index] = if voters.len() <= buf.len() {
        let slot = &mut buf[..voters.len()];
        for (v, id) in slot.iter_mut().zip(voters) {
            *v = acked(*id);
        }
        slot
    } else {
        heap = voters.iter().map(|id| acked(*id)).collect::<Vec<_>>();
        &mut heap
    };
    values.sort_unstable_by(|a, b| b.cmp(a));
    values[voters.len() / 2]
}

fn majority_vote(voters: &BTreeSet<NodeId>, vote: &impl Fn(NodeId) -> Option<bool>) -> VoteResult {
    if voters.is_empty() {
        return VoteResult::Won;
    }
    let (mut yes, mut no) = (0, 0);
    for id in voters {
        match vote(*id) {
            Some(true) => yes += 1,
            Some(false) => no += 1,
            None => {}
        }
    }
    let majority = voters.len() / 2 + 1;
    if yes >= majority {
        VoteResult::Won
    } else if voters.len() - no < majority {
        VoteResult::Lost
    } else {
        VoteResult::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_index_is_the_median_acknowledgement() {
        let m = Membership::with_voters([1, 2, 3]);
        let acked = |id| [0, 5, 9, 7][id as usize];
        assert_eq!(m.quorum_index(acked), 7);
        let m = Membership::with_voters([1, 2, 3, 4]);
        let acked = |id| [0, 5, 9, 7, 1][id as usize];
        assert_eq!(m.quorum_index(acked), 5);
    }

    #[test]
    fn joint_quorum_needs_both_halves() {
        let m = Membership::from_sets([1, 2, 3], [3, 4, 5], []);
        let acked = |id| [0, 10, 10, 10, 1, 1][id as usize];
        assert_eq!(m.quorum_index(acked), 1);
        let votes = |id| [None, Some(true), Some(true), Some(true), Some(false), None][id as usize];
        assert_eq!(m.vote_result(votes), VoteResult::Pending);
        let votes = |id| [None, Some(true), Some(true), Some(false), Some(false), None][id as usize];
        assert_eq!(m.vote_result(votes), VoteResult::Lost);
    }

    #[test]
    fn vote_lost_when_majority_impossible() {
        let m = Membership::with_voters([1, 2, 3]);
        assert_eq!(m.vote_result(|id| if id == 1 { Some(true) } else { None }), VoteResult::Pending);
        assert_eq!(m.vote_result(|id| Some(id == 1)), VoteResult::Lost);
        assert_eq!(m.vote_result(|id| Some(id != 3)), VoteResult::Won);
    }
}
