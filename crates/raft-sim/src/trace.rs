//! What a run remembers about itself: a ring of the last events (printed when a check
//! fails), a running hash of every event (two runs of one seed must agree on it), and, when
//! asked, every event printed as it happens.

use crate::config::MS;
use raft_core::{NodeId, Role, Term};
use std::collections::VecDeque;
use std::fmt;

/// FNV-1a, 64 bit: a fixed, platform-independent hash for traces and fingerprints.
#[derive(Clone, Debug)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    /// Mixes in bytes.
    pub fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= x as u64;
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    /// Mixes in a number.
    pub fn u64(&mut self, x: u64) {
        self.bytes(&x.to_le_bytes());
    }
    /// The hash so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// One thing that happened in a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceKind {
    /// A message was delivered to `node`.
    Recv {
        /// Sender.
        from: NodeId,
        /// The message kind.
        kind: &'static str,
        /// The message's term.
        term: Term,
    },
    /// A timer fired.
    Tick,
    /// An fsync finished.
    Persisted {
        /// Highest persist sequence number made durable.
        seq: u64,
    },
    /// After a step: the node's state.
    State {
        /// Role.
        role: Role,
        /// Term.
        term: Term,
        /// Commit index.
        commit: u64,
        /// Last log index.
        last: u64,
    },
    /// A client request arrived.
    Client {
        /// Client id.
        client: u64,
        /// What it asked.
        what: String,
    },
    /// A fault or other action of the nemesis, described.
    Nemesis(String),
    /// A runtime action worth noting (snapshot, apply, membership event).
    Note(String),
}

/// A timestamped event at a node (node 0: the whole cluster).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEvent {
    /// Simulated time, in nanoseconds.
    pub at: u64,
    /// The node concerned (0 for cluster-wide events).
    pub node: NodeId,
    /// What happened.
    pub kind: TraceKind,
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>6}.{:03}ms ", self.at / MS, (self.at % MS) / 1000)?;
        if self.node == 0 {
            write!(f, "   * ")?;
        } else {
            write!(f, "n{:<3} ", self.node)?;
        }
        match &self.kind {
            TraceKind::Recv { from, kind, term } => write!(f, "<- n{from} {kind} t{term}"),
            TraceKind::Tick => write!(f, "tick"),
            TraceKind::Persisted { seq } => write!(f, "persisted seq {seq}"),
            TraceKind::State { role, term, commit, last } => {
                write!(f, "   = {role:?} t{term} commit {commit} last {last}")
            }
            TraceKind::Client { client, what } => write!(f, "client c{client}: {what}"),
            TraceKind::Nemesis(s) => write!(f, "NEMESIS {s}"),
            TraceKind::Note(s) => write!(f, "{s}"),
        }
    }
}

/// The run's record of events.
#[derive(Debug)]
pub struct Trace {
    ring: VecDeque<TraceEvent>,
    capacity: usize,
    hash: Fnv,
    print: bool,
    /// Events recorded.
    pub count: u64,
}

impl Trace {
    /// A trace keeping the last `capacity` events, printing each if `print`.
    pub fn new(capacity: usize, print: bool) -> Self {
        Trace { ring: VecDeque::with_capacity(capacity), capacity, hash: Fnv::default(), print, count: 0 }
    }

    /// Records an event.
    pub fn push(&mut self, at: u64, node: NodeId, kind: TraceKind) {
        self.hash.u64(at);
        self.hash.u64(node);
        match &kind {
            TraceKind::Recv { from, kind, term } => {
                self.hash.u64(*from);
                self.hash.bytes(kind.as_bytes());
                self.hash.u64(*term);
            }
            TraceKind::Tick => self.hash.u64(1),
            TraceKind::Persisted { seq } => self.hash.u64(*seq),
            TraceKind::State { role, term, commit, last } => {
                self.hash.u64(*role as u64);
                self.hash.u64(*term);
                self.hash.u64(*commit);
                self.hash.u64(*last);
            }
            TraceKind::Client { client, what } => {
                self.hash.u64(*client);
                self.hash.bytes(what.as_bytes());
            }
            TraceKind::Nemesis(s) | TraceKind::Note(s) => self.hash.bytes(s.as_bytes()),
        }
        self.count += 1;
        let ev = TraceEvent { at, node, kind };
        if self.print {
            eprintln!("{ev}");
        }
        if self.ring.len() == self.capacity {
            self.ring.pop_front();
        }
        self.ring.push_back(ev);
    }

    /// The hash of every event so far.
    pub fn hash(&self) -> u64 {
        self.hash.finish()
    }

    /// The most recent events, oldest first.
    pub fn last(&self) -> Vec<TraceEvent> {
        self.ring.iter().cloned().collect()
    }
}
