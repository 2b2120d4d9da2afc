//! A run's protocol steps as a TLA+ trace that `spec/RaftTrace.tla` checks against the
//! protocol spec `spec/Raft.tla` (see docs/spec.md).
//!
//! One event per core step the simulator drives: a `Node::step` input together with
//! everything the runtime fed back before the node went quiet (`Sim::feed`), a start
//! (`Node::new` from the disk) or a crash. Each event names the node, what triggered it
//! (and for a delivered message, the message and the event that sent it), the messages
//! it sent, and the node's state afterwards: role, term, vote, commit index, snapshot
//! point and log as the core reports them (`Node::role`, `term`, `vote`, `commit_index`,
//! `snapshot`, `log`), and the disk as the simulated storage holds it (`Durable`).
//! Nothing here reads the core's internals, so the format follows the public API.
//!
//! Steps that change nothing and send nothing are left out (they are stutters). The
//! writer stops after `limit` events: a prefix of a behaviour is a behaviour.

use crate::storage::Durable;
use raft_core::{
    AppendResult, Entry, Membership, Message, MessageBody, Node, NodeId, Payload, Role, SnapshotHeader, SnapshotMeta,
};
use std::collections::HashMap;
use std::fmt::Write as _;

/// What started a recorded step.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// A message was delivered (`Input::Message`).
    Receive,
    /// `Input::Tick`.
    Tick,
    /// `Input::Persisted`: an fsync finished.
    Persisted,
    /// `Input::Propose`.
    Propose,
    /// `Input::ChangeMembership`.
    Change,
    /// `Input::SnapshotInstalled` (a snapshot's data arrived).
    Installed,
    /// Any other input (reads, pause, resume, transfers, snapshot sent).
    Other,
    /// The node started from its disk (`Node::new`).
    Restart,
    /// The node crashed: memory gone, unsynced writes lost or torn.
    Crash,
}

impl Trigger {
    fn name(self) -> &'static str {
        match self {
            Trigger::Receive => "recv",
            Trigger::Tick => "tick",
            Trigger::Persisted => "persisted",
            Trigger::Propose => "propose",
            Trigger::Change => "change",
            Trigger::Installed => "installed",
            Trigger::Other => "other",
            Trigger::Restart => "restart",
            Trigger::Crash => "crash",
        }
    }
}

struct Open {
    node: NodeId,
    trigger: Trigger,
    msg: Option<String>,
    sent: Vec<String>,
}

/// Collects the events of one run; [`TlaTrace::module`] renders them.
pub struct TlaTrace {
    limit: usize,
    init: Vec<(NodeId, String)>,
    events: Vec<String>,
    /// Each message's record, mapped to the (1-based) event that first sent it.
    sent_at: HashMap<String, usize>,
    /// Each node's state as last recorded.
    last: HashMap<NodeId, String>,
    open: Option<Open>,
    /// Events left out because the limit was reached.
    pub dropped: usize,
}

impl TlaTrace {
    /// A trace of at most `limit` events.
    pub fn new(limit: usize) -> Self {
        TlaTrace {
            limit,
            init: Vec::new(),
            events: Vec::new(),
            sent_at: HashMap::new(),
            last: HashMap::new(),
            open: None,
            dropped: 0,
        }
    }

    /// Records node `id`'s disk before the run (the node is down until it starts).
    pub fn add_node(&mut self, id: NodeId, disk: &Durable) {
        let mut s = String::new();
        write!(
            s,
            "[dterm |-> {}, dvote |-> {}, dsnap |-> {}, dlog |-> {}]",
            disk.hard_state.term,
            disk.hard_state.vote.unwrap_or(0),
            snap(&disk.snapshot),
            entries(&disk.entries)
        )
        .expect("write to string");
        self.init.push((id, s));
        self.last.insert(id, state(None, disk));
    }

    /// The number of events recorded.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// True if no event was recorded.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Starts a step of `id`.
    pub fn begin(&mut self, id: NodeId, trigger: Trigger, msg: Option<&Message>) {
        self.open = Some(Open { node: id, trigger, msg: msg.map(message), sent: Vec::new() });
    }

    /// The open step sent `m`.
    pub fn sent(&mut self, m: &Message) {
        if let Some(open) = &mut self.open {
            open.sent.push(message(m));
        }
    }

    /// Starts a step of `id` that receives the snapshot stream `h` (staged whole).
    pub fn begin_stream(&mut self, id: NodeId, h: &SnapshotHeader) {
        self.open = Some(Open { node: id, trigger: Trigger::Receive, msg: Some(stream(h)), sent: Vec::new() });
    }

    /// The open step sent the snapshot stream `h`.
    pub fn sent_stream(&mut self, h: &SnapshotHeader) {
        if let Some(open) = &mut self.open {
            open.sent.push(stream(h));
        }
    }

    /// Ends the open step: `node` and `disk` are the state after it.
    pub fn end(&mut self, node: Option<&Node>, disk: &Durable) {
        let Some(open) = self.open.take() else { return };
        let post = state(node, disk);
        // A step after which the node is as last recorded, sending nothing, is a stutter,
        // except a received message that changes state the core does not show: counted
        // votes and acknowledgements, a snapshot install started.
        let counted = open
            .msg
            .as_deref()
            .is_some_and(|m| ["RVR", "AER", "ISR", "IS"].iter().any(|k| m.starts_with(&format!("[type |-> \"{k}\""))));
        if self.last.get(&open.node) == Some(&post) && open.sent.is_empty() && !counted {
            return;
        }
        if self.events.len() >= self.limit {
            self.dropped += 1;
            return;
        }
        self.last.insert(open.node, post.clone());
        let index = self.events.len() + 1;
        let from = open.msg.as_ref().and_then(|m| self.sent_at.get(m).copied()).unwrap_or(0);
        for m in &open.sent {
            self.sent_at.entry(m.clone()).or_insert(index);
        }
        let mut e = String::new();
        write!(
            e,
            "[n |-> {}, kind |-> \"{}\", msg |-> {}, from |-> {}, sent |-> <<{}>>, post |-> {}]",
            open.node,
            open.trigger.name(),
            open.msg.as_deref().unwrap_or("NoMsg"),
            from,
            open.sent.join(", "),
            post
        )
        .expect("write to string");
        self.events.push(e);
    }

    /// The TLA+ module `TraceData` holding this trace; `title` goes in a comment.
    pub fn module(&self, title: &str) -> String {
        let mut s = String::new();
        s.push_str("---- MODULE TraceData ----\n");
        let _ = writeln!(s, "\\* {title}");
        let _ = writeln!(
            s,
            "\\* {} events{}",
            self.events.len(),
            if self.dropped > 0 { format!(" (the run went on for {} more)", self.dropped) } else { String::new() }
        );
        s.push_str("EXTENDS Naturals, Sequences\n");
        s.push_str("NC == [v |-> {}, o |-> {}, l |-> {}]\n");
        s.push_str("E(t) == [term |-> t, cfg |-> NC]\n");
        s.push_str("C(t, v, o, l) == [term |-> t, cfg |-> [v |-> v, o |-> o, l |-> l]]\n");
        s.push_str("NoMsg == [type |-> \"none\", from |-> 0, to |-> 0, term |-> 0]\n");
        let ids: Vec<String> = self.init.iter().map(|(id, _)| id.to_string()).collect();
        let _ = writeln!(s, "TraceNodes == {{{}}}", ids.join(", "));
        s.push_str("TraceDisk == ");
        let disks: Vec<String> = self.init.iter().map(|(_, d)| d.clone()).collect();
        let _ = writeln!(s, "<<{}>>", disks.join(",\n    "));
        s.push_str("TraceLog == <<\n");
        s.push_str(&self.events.join(",\n"));
        s.push_str("\n>>\n====\n");
        s
    }
}

fn set(ids: &std::collections::BTreeSet<NodeId>) -> String {
    let v: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    format!("{{{}}}", v.join(", "))
}

fn cfg(m: &Membership) -> String {
    format!("[v |-> {}, o |-> {}, l |-> {}]", set(&m.voters), set(&m.outgoing), set(&m.learners))
}

fn snap(s: &SnapshotMeta) -> String {
    format!("[index |-> {}, term |-> {}, cfg |-> {}]", s.index, s.term, cfg(&s.membership))
}

fn entry(e: &Entry) -> String {
    match &e.payload {
        Payload::Membership(m) => {
            format!("C({}, {}, {}, {})", e.term, set(&m.voters), set(&m.outgoing), set(&m.learners))
        }
        _ => format!("E({})", e.term),
    }
}

fn entries(es: &[Entry]) -> String {
    let v: Vec<String> = es.iter().map(entry).collect();
    format!("<<{}>>", v.join(", "))
}

fn role(r: Role) -> &'static str {
    match r {
        Role::Follower => "Follower",
        Role::PreCandidate => "PreCandidate",
        Role::Candidate => "Candidate",
        Role::Leader => "Leader",
    }
}

/// A node's state as the trace records it (a down node: its disk only matters).
fn state(node: Option<&Node>, disk: &Durable) -> String {
    let mut s = String::new();
    match node {
        Some(n) => {
            let _ = write!(
                s,
                "[up |-> TRUE, role |-> \"{}\", term |-> {}, vote |-> {}, commit |-> {}, snap |-> {}, log |-> {}, ",
                role(n.role()),
                n.term(),
                n.vote().unwrap_or(0),
                n.commit_index(),
                snap(n.snapshot()),
                entries(&n.log().entries())
            );
        }
        None => s.push_str("[up |-> FALSE, role |-> \"Follower\", term |-> 0, vote |-> 0, commit |-> 0, snap |-> [index |-> 0, term |-> 0, cfg |-> NC], log |-> <<>>, "),
    }
    let _ = write!(
        s,
        "dterm |-> {}, dvote |-> {}, dsnap |-> {}, dlog |-> {}]",
        disk.hard_state.term,
        disk.hard_state.vote.unwrap_or(0),
        snap(&disk.snapshot),
        entries(&disk.entries)
    );
    s
}

/// A message as the spec's record of its kind (fields the spec does not model are left
/// out: heartbeat rounds, read contexts, rejection hints).
fn message(m: &Message) -> String {
    let head = format!("from |-> {}, to |-> {}, term |-> {}", m.from, m.to, m.term);
    match &m.body {
        MessageBody::VoteRequest { pre_vote, last_log_index, last_log_term, .. } => format!(
            "[type |-> \"RV\", {head}, pre |-> {}, lastIndex |-> {last_log_index}, lastTerm |-> {last_log_term}]",
            tla_bool(*pre_vote)
        ),
        MessageBody::VoteResponse { pre_vote, granted } => {
            format!("[type |-> \"RVR\", {head}, pre |-> {}, granted |-> {}]", tla_bool(*pre_vote), tla_bool(*granted))
        }
        MessageBody::Append { prev_log_index, prev_log_term, entries: es, commit } => format!(
            "[type |-> \"AE\", {head}, prevIndex |-> {prev_log_index}, prevTerm |-> {prev_log_term}, entries |-> {}, commit |-> {commit}]",
            entries(es)
        ),
        MessageBody::AppendResponse { result } => match result {
            AppendResult::Success { match_index } => {
                format!("[type |-> \"AER\", {head}, success |-> TRUE, index |-> {match_index}]")
            }
            AppendResult::Conflict { rejected_index, .. } => {
                format!("[type |-> \"AER\", {head}, success |-> FALSE, index |-> {rejected_index}]")
            }
        },
        MessageBody::Heartbeat { commit, .. } => format!("[type |-> \"HB\", {head}, commit |-> {commit}]"),
        MessageBody::InstallSnapshotResponse { index, success } => {
            format!("[type |-> \"ISR\", {head}, success |-> {}, index |-> {index}]", tla_bool(*success))
        }
        MessageBody::TimeoutNow => format!("[type |-> \"TN\", {head}]"),
        // Heartbeat answers and read-index traffic, which the spec does not model.
        _ => format!("[type |-> \"{}\", {head}]", m.body.kind()),
    }
}

/// A snapshot stream as the spec's `IS` message: the header says who sends it to whom, in
/// which term, and what it covers, which is all the spec's message carried.
fn stream(h: &SnapshotHeader) -> String {
    format!(
        "[type |-> \"IS\", from |-> {}, to |-> {}, term |-> {}, index |-> {}, sterm |-> {}, cfg |-> {}]",
        h.from,
        h.to,
        h.term,
        h.meta.index,
        h.meta.term,
        cfg(&h.meta.membership)
    )
}

fn tla_bool(b: bool) -> &'static str {
    if b {
        "TRUE"
    } else {
        "FALSE"
    }
}
