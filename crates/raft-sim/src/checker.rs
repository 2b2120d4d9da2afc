//! Safety checks that run after every step, outside the code under test: they read nodes
//! only through raft-core's public accessors and keep their own global record.
//!
//! Every check is incremental (it looks only at what changed since the node's last step),
//! so checking after every step stays cheap:
//! - **election safety**: at most one leader per term, across all time and restarts;
//! - **leader append-only**: a leader never removes or rewrites entries during its term;
//! - **log matching**: an (index, term) pair names one entry and one predecessor term,
//!   globally; by induction two logs that share an (index, term) share the whole prefix;
//! - **leader completeness**: a new leader holds every entry committed so far;
//! - **state machine safety**: no two nodes commit or apply different entries at an index,
//!   and replicas that applied the same index hold the same state;
//! - **membership from the log**: the configuration a node acts on is the latest one in
//!   its snapshot and log, and the one it calls committed is the latest at or below its
//!   commit index (a node that loses track of one can count the wrong quorum).

use crate::trace::Fnv;
use raft_core::{Entry, Index, Membership, Node, NodeId, Payload, Role, Term};
use std::collections::BTreeMap;

/// A violated property and what shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fail {
    /// The property, in words (e.g. "election safety").
    pub property: &'static str,
    /// What was observed.
    pub detail: String,
}

impl Fail {
    /// A failure of `property`.
    pub fn new(property: &'static str, detail: impl Into<String>) -> Self {
        Fail { property, detail: detail.into() }
    }
}

/// What the checker remembers of one node between steps.
#[derive(Clone, Debug, Default)]
struct Shadow {
    /// The term of each log entry at the last step (index `i` at `terms[i - 1]`; 0 where
    /// unknown, e.g. compacted).
    terms: Vec<Term>,
    /// The term in which the node was last seen leading.
    leading: Option<Term>,
    /// The commit index at the last step (reset on restart).
    commit: Index,
    /// The configuration entries of the node's log at the last step, by index.
    configs: BTreeMap<Index, Membership>,
}

/// The global record and the per-node shadows.
#[derive(Clone, Debug, Default)]
pub struct Checker {
    leaders: BTreeMap<Term, NodeId>,
    /// (term, payload hash, commit term bound) of the committed entry at each index
    /// (`[i - 1]`; term 0: unknown). The bound is the lowest term of a node seen holding the
    /// entry as committed: the leader that committed it had at most that term.
    committed: Vec<(Term, u64, Term)>,
    /// (index, term) -> (payload hash, term of the previous entry).
    entries: BTreeMap<(Index, Term), (u64, Term)>,
    /// State machine fingerprint after applying each index (where some node reported one).
    states: BTreeMap<Index, (u64, NodeId)>,
    shadows: BTreeMap<NodeId, Shadow>,
}

/// A fingerprint of an entry's payload.
pub fn payload_hash(p: &Payload) -> u64 {
    let mut h = Fnv::default();
    match p {
        Payload::Noop => h.u64(1),
        Payload::Command(b) => {
            h.u64(2);
            h.bytes(b);
        }
        Payload::Membership(m) => {
            h.u64(3);
            for set in [&m.voters, &m.outgoing, &m.learners] {
                h.u64(u64::MAX);
                set.iter().for_each(|id| h.u64(*id));
            }
        }
    }
    h.finish()
}

impl Checker {
    /// The highest index known committed.
    pub fn committed_len(&self) -> Index {
        self.committed.len() as Index
    }

    /// The committed (term, payload hash) at `index`, if recorded.
    pub fn committed_at(&self, index: Index) -> Option<(Term, u64)> {
        self.committed.get(index.checked_sub(1)? as usize).filter(|c| c.0 != 0).map(|c| (c.0, c.1))
    }

    /// Elections won, for summaries.
    pub fn leaders_elected(&self) -> usize {
        self.leaders.len()
    }

    /// Forget what the node showed before a crash (its log shadow stays: the restarted log
    /// is compared against it like any other change).
    pub fn on_restart(&mut self, id: NodeId) {
        let s = self.shadows.entry(id).or_default();
        s.leading = None;
        s.commit = 0;
    }

    /// Checks a node after it took a step.
    pub fn after_step(&mut self, node: &Node) -> Result<(), Fail> {
        let id = node.id();
        let log = node.log();
        let mut sh = self.shadows.remove(&id).unwrap_or_default();
        let result = self.check(node, log, &mut sh);
        self.shadows.insert(id, sh);
        result
    }

    fn check(&mut self, node: &Node, log: &raft_core::RaftLog, sh: &mut Shadow) -> Result<(), Fail> {
        let id = node.id();
        let (first, last) = (log.first_index(), log.last_index());
        let role = node.role();
        let term = node.term();
        let leading_same_term = role == Role::Leader && sh.leading == Some(term);

        // Find where the log differs from the shadow, walking back from the end.
        let old_len = sh.terms.len() as Index;
        let mut j = old_len.min(last);
        while j >= first && j > 0 && log.term(j) != Some(sh.terms[(j - 1) as usize]) {
            j -= 1;
        }
        if leading_same_term && (j < old_len.min(last) || last < old_len) {
            return Err(Fail::new(
                "leader append-only",
                format!("leader n{id} of term {term} changed its log from index {} (last {old_len} -> {last})", j + 1),
            ));
        }
        sh.terms.truncate(last as usize);
        sh.terms.resize(last as usize, 0);
        sh.configs.split_off(&(j + 1));
        for i in (j + 1).max(first)..=last {
            let e = log.entry(i).expect("index within the in-memory log");
            if let Payload::Membership(m) = &e.payload {
                sh.configs.insert(i, Membership::clone(m));
            }
            let prev = log.term(i - 1).unwrap_or(0);
            let h = payload_hash(&e.payload);
            match self.entries.get(&(i, e.term)) {
                Some(&(h0, p0)) if (h0, p0) != (h, prev) => {
                    return Err(Fail::new(
                        "log matching",
                        format!(
                            "n{id} holds entry {i}/t{} (prev term {prev}, payload {:?}) but another log holds a different entry with the same index and term (prev term {p0})",
                            e.term, e.payload
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    self.entries.insert((i, e.term), (h, prev));
                }
            }
            sh.terms[(i - 1) as usize] = e.term;
        }

        // Election safety and leader completeness.
        if role == Role::Leader {
            match self.leaders.get(&term) {
                Some(&other) if other != id => {
                    return Err(Fail::new(
                        "election safety",
                        format!("n{id} and n{other} were both leader in term {term}"),
                    ));
                }
                Some(_) => {}
                None => {
                    self.leaders.insert(term, id);
                }
            }
            if sh.leading != Some(term) {
                // Raft's Leader Completeness: entries committed in earlier terms. (A leader
                // of an old term, elected late, need not hold entries committed later.)
                for i in first..=self.committed_len() {
                    let (t, _, committed_in) = self.committed[(i - 1) as usize];
                    if t == 0 || committed_in >= term {
                        continue;
                    }
                    if log.term(i) != Some(t) {
                        return Err(Fail::new(
                            "leader completeness",
                            format!(
                                "n{id} became leader of term {term} without committed entry {i}/t{t} (its log has {:?} there, last {last})",
                                log.term(i)
                            ),
                        ));
                    }
                }
                sh.leading = Some(term);
            }
        } else {
            sh.leading = None;
        }

        // Newly committed entries.
        let commit = node.commit_index();
        if commit > last {
            return Err(Fail::new(
                "commit within log",
                format!("n{id} commit index {commit} beyond last index {last}"),
            ));
        }
        if commit > sh.commit {
            for i in (sh.commit + 1).max(first)..=commit {
                let e = log.entry(i).expect("index within the in-memory log");
                self.record("state machine safety (commit)", id, e, term)?;
            }
        }
        sh.commit = commit;

        // Membership from the log: what the snapshot and the log say, nothing else.
        let snapshot = &node.snapshot().membership;
        let latest = sh.configs.range(first..).next_back().map_or(snapshot, |(_, m)| m);
        let committed = sh.configs.range(first..=commit.max(first)).next_back();
        let committed = committed.filter(|(i, _)| **i <= commit).map_or(snapshot, |(_, m)| m);
        if node.membership() != latest || node.committed_membership() != committed {
            return Err(Fail::new(
                "membership from the log",
                format!(
                    "n{id} acts on {:?} (committed {:?}), but its snapshot and log say {latest:?} (committed {committed:?}; snapshot {}, commit {commit}, last {last})",
                    node.membership(),
                    node.committed_membership(),
                    node.snapshot().index
                ),
            ));
        }
        Ok(())
    }

    fn record(&mut self, property: &'static str, id: NodeId, e: &Entry, term: Term) -> Result<(), Fail> {
        let h = payload_hash(&e.payload);
        let k = (e.index - 1) as usize;
        if self.committed.len() <= k {
            self.committed.resize(k + 1, (0, 0, 0));
        }
        let slot = &mut self.committed[k];
        if slot.0 == 0 {
            *slot = (e.term, h, term);
            return Ok(());
        }
        slot.2 = slot.2.min(term);
        if (slot.0, slot.1) != (e.term, h) {
            return Err(Fail::new(
                property,
                format!(
                    "n{id} has entry {}/t{} ({:?}) at an index where t{} was committed",
                    e.index, e.term, e.payload, slot.0
                ),
            ));
        }
        Ok(())
    }

    /// A node applies `e` to its state machine.
    pub fn on_apply(&mut self, id: NodeId, e: &Entry, term: Term) -> Result<(), Fail> {
        self.record("state machine safety (apply)", id, e, term)
    }

    /// A node's state machine reached `index` with state fingerprint `fp`.
    pub fn on_state(&mut self, id: NodeId, index: Index, fp: u64) -> Result<(), Fail> {
        match self.states.get(&index) {
            Some(&(f, other)) if f != fp => Err(Fail::new(
                "state machine safety (state)",
                format!("n{id} and n{other} hold different states after applying index {index}"),
            )),
            Some(_) => Ok(()),
            None => {
                self.states.insert(index, (fp, id));
                Ok(())
            }
        }
    }
}
