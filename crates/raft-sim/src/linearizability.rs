//! Linearizability checker for the histories of a simulated key-value store.
//!
//! A history is a list of [`Operation`]s, each with the time a client invoked it, the time
//! the client saw the response (if it ever did) and the response itself. [`check`] decides
//! whether some total order of the operations (a *linearization*) both respects real time
//! (an operation that returned before another was invoked comes first) and explains every
//! recorded response when the operations are applied one by one to a sequential store in
//! which every key starts absent.
//!
//! # Algorithm
//!
//! 1. **One key at a time.** Linearizability is local (Herlihy and Wing; "P-compositionality"
//!    in Porcupine): a history is linearizable if and only if the sub-history of every object
//!    is. Each key is an independent object, so the history is split by key and each part is
//!    searched on its own, which keeps the search space small.
//! 2. **Just-in-time linearization** (Wing and Gong, refined by Lowe, as in Porcupine). The
//!    call and return events are sorted by time into a linked list. At any point of the search
//!    the operations that may be linearized next are exactly those invoked before the earliest
//!    return of an operation not yet linearized. The search tries each candidate in turn: if
//!    the sequential model accepts it (a `Get` must see the current value, a `Cas` must
//!    succeed or fail as recorded), the operation is unlinked and the search goes on; once no
//!    candidate is left, that branch is dead and the search backtracks.
//! 3. **Memoization.** A search state is the set of linearized operations (a bitset) plus the
//!    value of the key. Two paths that reach the same state have the same future, so each
//!    state is expanded at most once. The memo is only used for membership, so the search
//!    order, and hence every result and message, is deterministic.
//! 4. **Reductions**, each of which keeps a successful order if one exists:
//!    - a candidate that only reads (a `Get`, or a `Cas` that failed) and matches the current
//!      value is linearized at once, without trying alternatives: it changes nothing, so any
//!      order placing it later still works with it moved to the front;
//!    - values that no `Get` returned and no `Cas` expected are indistinguishable to every
//!      operation, so the model merges them into one.
//!
//! # Operations without a response
//!
//! A request whose response was never seen (a timeout, a crashed client, a partition) may
//! have taken effect at any moment after it was invoked, including after the end of the
//! history, or never at all. Its return time is therefore treated as +infinity: it never
//! forces another operation to come after it and it is never *required* to be linearized.
//! The search succeeds as soon as every operation *with* a response is linearized; the
//! remaining unanswered operations can be placed at the very end, where no recorded response
//! can observe them. Rejecting a history because an unanswered write is missing would be
//! wrong (it may have been lost), and so would assuming it took effect.
//!
//! Consequences used to keep the search small, all sound:
//! - an unanswered `Get` changes nothing and observes nothing, so it is dropped up front;
//! - an unanswered `Cas` linearized when the value differs from `expected` changes nothing,
//!   which is the same as not linearizing it, so it is only tried where it would succeed;
//! - unanswered operations with the same effect are interchangeable once invoked, so only
//!   the earliest invoked one not yet linearized is ever tried;
//! - an unanswered operation directly followed by an unanswered `Put` could as well never have
//!   happened, so two unanswered operations are never linearized in a row when the second
//!   is a `Put` (the order without the first one is tried instead);
//! - a state that has linearized a superset of the unanswered operations of another explored
//!   state, with the same answered operations and the same value, can do nothing the other
//!   could not (the extra operations only remove options), so it is pruned. Answered
//!   operations are tried before unanswered ones, so the smaller state is usually met first.
//!
//! # Limits
//!
//! The search is exponential in the worst case. [`check_with_budget`] bounds the number of
//! states remembered per key and returns [`CheckResult::Unknown`] when the bound is hit;
//! [`check`] uses [`DEFAULT_MAX_STATES_PER_KEY`]. In release mode, randomized single-key
//! histories with about ten operations in flight and 5% unanswered take tens of
//! milliseconds for 3,000 operations and under a second for 10,000, valid or not (see the
//! ignored `timing` test).
//!
//! Operations with equal timestamps are treated as concurrent: one precedes another only if
//! it returned strictly before the other was invoked.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

/// The number of search states [`check`] remembers per key before giving up with
/// [`CheckResult::Unknown`]. Each state costs on the order of a hundred bytes.
pub const DEFAULT_MAX_STATES_PER_KEY: usize = 1_000_000;

/// What a client asked the key-value store to do.
///
/// Every key starts absent; values are never deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvInput {
    /// Read the current value of `key`. Answered by [`KvOutput::Get`].
    Get {
        /// The key to read.
        key: String,
    },
    /// Set `key` to `value`, whatever it held. Answered by [`KvOutput::Put`].
    Put {
        /// The key to write.
        key: String,
        /// The value written.
        value: u64,
    },
    /// Set `key` to `new` if and only if its current value equals `expected`.
    /// Answered by [`KvOutput::Cas`].
    Cas {
        /// The key to compare and write.
        key: String,
        /// The value the key must hold for the write to happen; `None` means absent.
        expected: Option<u64>,
        /// The value written on success.
        new: u64,
    },
}

impl KvInput {
    /// The value this operation writes if it takes effect (for a `Cas`, if it succeeds).
    fn written(&self) -> Option<u64> {
        match self {
            KvInput::Get { .. } => None,
            KvInput::Put { value, .. } => Some(*value),
            KvInput::Cas { new, .. } => Some(*new),
        }
    }

    /// The key this operation reads or writes; the checker partitions histories by it.
    #[must_use]
    pub fn key(&self) -> &str {
        match self {
            KvInput::Get { key } | KvInput::Put { key, .. } | KvInput::Cas { key, .. } => key,
        }
    }
}

/// The response a client received. Its variant must match the [`KvInput`] variant of the
/// same operation; a mismatch makes the history malformed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvOutput {
    /// The value read by a `Get`; `None` means the key was absent.
    Get(Option<u64>),
    /// A `Put` was acknowledged.
    Put,
    /// Whether a `Cas` found `expected` and wrote `new`.
    Cas(bool),
}

/// One client request in a history, with its invocation and (if seen) its response.
///
/// A well-formed operation has `call < ret` when `ret` is `Some` (the checker also accepts
/// `call == ret` as an instantaneous operation), and `output` is `None` if and only if `ret`
/// is `None`. [`check`] reports any other combination as a violation whose reason starts
/// with "malformed history"; it never panics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// The client that issued the request; used only in messages.
    pub client: u64,
    /// Invocation time, in simulated nanoseconds.
    pub call: u64,
    /// Response time, in simulated nanoseconds. `None` means no response was ever seen:
    /// the operation may or may not have taken effect, at any time after `call`.
    pub ret: Option<u64>,
    /// What was requested.
    pub input: KvInput,
    /// The response; `None` if and only if `ret` is `None`.
    pub output: Option<KvOutput>,
}

/// The verdict of [`check`] on a history.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum CheckResult {
    /// Some linearization explains every response: the history is linearizable.
    Ok,
    /// No linearization exists for the operations on `key` (or the history is malformed;
    /// then `reason` starts with "malformed history"). When several keys fail, the first
    /// in byte order of the key is reported.
    Violation {
        /// The key whose sub-history is not linearizable.
        key: String,
        /// Every operation on `key`, in history order; `ops[i]` in `reason` indexes this.
        ops: Vec<Operation>,
        /// A human-readable explanation naming the operation where the search got stuck.
        reason: String,
    },
    /// The search for `key` exceeded the state budget before reaching a verdict, and no
    /// other key has a violation. Nothing is known about `key`; the other keys are fine.
    Unknown {
        /// The first key (in byte order) whose search ran out of budget.
        key: String,
    },
}

/// Checks `history` for linearizability with the default state budget,
/// [`DEFAULT_MAX_STATES_PER_KEY`]. Call it once the simulation has finished recording.
/// See [`check_with_budget`].
pub fn check(history: &[Operation]) -> CheckResult {
    check_with_budget(history, DEFAULT_MAX_STATES_PER_KEY)
}

/// Checks `history` for linearizability, remembering at most `max_states_per_key` search
/// states for each key.
///
/// Returns [`CheckResult::Violation`] for the first key (in byte order) with a malformed
/// operation, else for the first key that is not linearizable; else [`CheckResult::Unknown`]
/// for the first key whose search ran out of budget; else [`CheckResult::Ok`]. The result is
/// a function of the history and the budget. The verdict does not depend on the order of
/// `history` unless the budget runs out; `ops` in a violation keeps that order, and the
/// reason indexes `ops`.
///
/// Memory grows with the states remembered (on the order of a hundred bytes each) and time
/// with the states explored, both bounded by the budget for each key.
pub fn check_with_budget(history: &[Operation], max_states_per_key: usize) -> CheckResult {
    let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for op in history {
        by_key.entry(op.input.key()).or_default().push(op);
    }

    let mut parsed = Vec::with_capacity(by_key.len());
    for (&key, ops) in &by_key {
        match KeyHistory::parse(ops) {
            Ok(key_history) => parsed.push((key, ops, key_history)),
            Err(reason) => return violation(key, ops, reason),
        }
    }

    let mut first_unknown = None;
    for (key, ops, key_history) in &parsed {
        match key_history.check(ops, max_states_per_key) {
            KeyVerdict::Linearizable => {}
            KeyVerdict::Violation(reason) => return violation(key, ops, reason),
            KeyVerdict::OutOfBudget => {
                first_unknown.get_or_insert(*key);
            }
        }
    }
    match first_unknown {
        Some(key) => CheckResult::Unknown { key: key.to_owned() },
        None => CheckResult::Ok,
    }
}

fn violation(key: &str, ops: &[&Operation], reason: String) -> CheckResult {
    CheckResult::Violation { key: key.to_owned(), ops: ops.iter().map(|&op| op.clone()).collect(), reason }
}

/// What linearizing an operation does to the key's value, given the recorded response.
#[derive(Clone, Copy, Debug)]
enum Effect {
    /// A `Get` that saw this value.
    Read(Option<u64>),
    /// A `Put`, answered or not.
    Write(u64),
    /// A `Cas`; `succeeded` is `None` when no response was seen.
    Cas { expected: Option<u64>, new: u64, succeeded: Option<bool> },
}

impl Effect {
    /// The value this operation may write, if any.
    fn may_write(self) -> Option<u64> {
        match self {
            Effect::Read(_) => None,
            Effect::Write(new) => Some(new),
            Effect::Cas { new, succeeded, .. } => (succeeded != Some(false)).then_some(new),
        }
    }

    /// The value this operation proves the key held, if any.
    fn observed(self) -> Option<u64> {
        match self {
            Effect::Read(seen) => seen,
            Effect::Cas { expected, succeeded: Some(true), .. } => expected,
            _ => None,
        }
    }
}

/// An operation with a response.
#[derive(Clone, Copy, Debug)]
struct AnsweredOp {
    /// Position in the key's operations (the `ops` of a violation).
    index: usize,
    call: u64,
    ret: u64,
    effect: Effect,
}

/// An operation without a response that may change the value (`Put` or `Cas`).
#[derive(Clone, Copy, Debug)]
struct PendingOp {
    /// Position in the key's operations (the `ops` of a violation).
    index: usize,
    call: u64,
    effect: Effect,
}

/// The operations on one key, validated and sorted by invocation time.
struct KeyHistory {
    answered: Vec<AnsweredOp>,
    pending: Vec<PendingOp>,
}

enum KeyVerdict {
    Linearizable,
    Violation(String),
    OutOfBudget,
}

impl KeyHistory {
    /// Validates the operations of one key; the error is the reason for a violation.
    fn parse(ops: &[&Operation]) -> Result<KeyHistory, String> {
        let mut answered = Vec::new();
        let mut pending = Vec::new();
        for (index, op) in ops.iter().enumerate() {
            let malformed = |what: &str| format!("malformed history: ops[{index}] ({}) {what}", describe(op));
            match (op.ret, &op.output) {
                (Some(ret), Some(output)) => {
                    if ret < op.call {
                        return Err(malformed("returned before it was invoked"));
                    }
                    let effect = match (&op.input, output) {
                        (KvInput::Get { .. }, KvOutput::Get(seen)) => Effect::Read(*seen),
                        (KvInput::Put { value, .. }, KvOutput::Put) => Effect::Write(*value),
                        (KvInput::Cas { expected, new, .. }, KvOutput::Cas(succeeded)) => {
                            Effect::Cas { expected: *expected, new: *new, succeeded: Some(*succeeded) }
                        }
                        _ => return Err(malformed("has an output of the wrong kind")),
                    };
                    answered.push(AnsweredOp { index, call: op.call, ret, effect });
                }
                (None, None) => {
                    let effect = match op.input {
                        // Reads change nothing; without a response they observe nothing.
                        KvInput::Get { .. } => continue,
                        KvInput::Put { value, .. } => Effect::Write(value),
                        KvInput::Cas { expected, new, .. } => Effect::Cas { expected, new, succeeded: None },
                    };
                    pending.push(PendingOp { index, call: op.call, effect });
                }
                (Some(_), None) => return Err(malformed("has a response time but no output")),
                (None, Some(_)) => return Err(malformed("has an output but no response time")),
            }
        }
        answered.sort_by_key(|op| (op.call, op.ret, op.index));
        pending.sort_by_key(|op| (op.call, op.index));
        Ok(KeyHistory { answered, pending })
    }

    fn check(&self, ops: &[&Operation], max_states: usize) -> KeyVerdict {
        if let Some(reason) = self.unwritten_observation(ops) {
            return KeyVerdict::Violation(reason);
        }
        match Search::new(self).run(max_states) {
            SearchOutcome::Linearizable => KeyVerdict::Linearizable,
            SearchOutcome::OutOfBudget => KeyVerdict::OutOfBudget,
            SearchOutcome::NotLinearizable(stuck) => KeyVerdict::Violation(self.explain(ops, stuck)),
        }
    }

    /// A quick necessary condition: every value an operation proves the key held must be
    /// written by some operation. Gives a precise message for the commonest bug.
    fn unwritten_observation(&self, ops: &[&Operation]) -> Option<String> {
        let mut written: Vec<u64> = self
            .answered
            .iter()
            .map(|op| op.effect)
            .chain(self.pending.iter().map(|op| op.effect))
            .filter_map(Effect::may_write)
            .collect();
        written.sort_unstable();
        written.dedup();
        let mut suspects: Vec<&AnsweredOp> = self
            .answered
            .iter()
            .filter(|op| op.effect.observed().is_some_and(|value| written.binary_search(&value).is_err()))
            .collect();
        suspects.sort_by_key(|op| op.index);
        let op = suspects.first()?;
        let value = op.effect.observed()?;
        Some(format!(
            "ops[{}] ({}) observed the value {value}, which no operation on this key writes",
            op.index,
            describe(ops.get(op.index)?)
        ))
    }

    fn explain(&self, ops: &[&Operation], stuck: Option<Stuck>) -> String {
        let mut reason = format!(
            "no linearization exists for the {} operations on this key ({} with a response)",
            ops.len(),
            self.answered.len()
        );
        let detail = stuck.and_then(|stuck| {
            let blocked = self.answered.get(stuck.blocked)?;
            let op = ops.get(blocked.index)?;
            let state = match stuck.writer.and_then(|w| Some((w, ops.get(w)?))) {
                Some((w, writer)) => format!(
                    "the value {} written by ops[{w}] ({})",
                    writer.input.written().map_or_else(|| "?".to_owned(), |v| v.to_string()),
                    describe(writer)
                ),
                None => "the key absent".to_owned(),
            };
            Some(format!(
                ". The longest consistent order found linearizes {} of those with a response, \
                 leaving {state}; after it, ops[{}] ({}) cannot take effect before its response",
                stuck.linearized,
                blocked.index,
                describe(op)
            ))
        });
        if let Some(detail) = detail {
            reason.push_str(&detail);
        }
        reason
    }
}

fn describe_value(value: Option<u64>) -> String {
    match value {
        Some(value) => value.to_string(),
        None => "absent".to_owned(),
    }
}

fn describe(op: &Operation) -> String {
    let input = match &op.input {
        KvInput::Get { .. } => "get".to_owned(),
        KvInput::Put { value, .. } => format!("put {value}"),
        KvInput::Cas { expected, new, .. } => {
            format!("cas {} -> {new}", describe_value(*expected))
        }
    };
    let output = match &op.output {
        None => "unknown".to_owned(),
        Some(KvOutput::Get(seen)) => describe_value(*seen),
        Some(KvOutput::Put) => "ok".to_owned(),
        Some(KvOutput::Cas(succeeded)) => succeeded.to_string(),
    };
    let ret = match op.ret {
        Some(ret) => format!("returned at {ret}"),
        None => "no response".to_owned(),
    };
    format!("client {}: {input} => {output}, called at {}, {ret}", op.client, op.call)
}

/// Where the deepest branch of a failed search ended.
#[derive(Clone, Copy, Debug)]
struct Stuck {
    /// How many answered operations that branch linearized.
    linearized: usize,
    /// The answered operation (index into `KeyHistory::answered`) whose return was reached
    /// before it could be linearized.
    blocked: usize,
    /// The operation (index into the key's `ops`) that wrote the value at that point, or
    /// `None` if the key was still absent.
    writer: Option<usize>,
}

enum SearchOutcome {
    Linearizable,
    NotLinearizable(Option<Stuck>),
    OutOfBudget,
}

/// A value as the search sees it: [`ABSENT`], `i + 1` for the `i`-th observable value, or
/// [`Values::other`] for every value no operation can tell apart from the others.
type ValueId = u64;

/// The key is absent.
const ABSENT: ValueId = 0;

/// The values some operation can distinguish: those read by a `Get` and those expected by a
/// `Cas`. Every other value passes and fails exactly the same tests, so the search merges
/// them into one, which makes, for example, all unanswered puts of unread values alike.
struct Values {
    observable: Vec<u64>,
}

impl Values {
    fn new(history: &KeyHistory) -> Values {
        let effects = history.answered.iter().map(|op| op.effect).chain(history.pending.iter().map(|op| op.effect));
        let mut observable: Vec<u64> = effects
            .filter_map(|effect| match effect {
                Effect::Read(seen) => seen,
                Effect::Cas { expected, .. } => expected,
                Effect::Write(_) => None,
            })
            .collect();
        observable.sort_unstable();
        observable.dedup();
        Values { observable }
    }

    fn other(&self) -> ValueId {
        self.observable.len() as u64 + 1
    }

    fn id(&self, value: Option<u64>) -> ValueId {
        match value {
            None => ABSENT,
            Some(value) => match self.observable.binary_search(&value) {
                Ok(i) => i as u64 + 1,
                Err(_) => self.other(),
            },
        }
    }

    fn step(&self, effect: Effect) -> Step {
        match effect {
            Effect::Read(seen) => Step::Read(self.id(seen)),
            Effect::Write(new) => Step::Write(self.id(Some(new))),
            Effect::Cas { expected, new, succeeded } => {
                Step::Cas { expected: self.id(expected), new: self.id(Some(new)), succeeded }
            }
        }
    }
}

/// An [`Effect`] over [`ValueId`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Read(ValueId),
    Write(ValueId),
    Cas { expected: ValueId, new: ValueId, succeeded: Option<bool> },
}

impl Step {
    /// The value after applying this operation to `value`, or `None` if the sequential
    /// store could not have produced the recorded response (or, for an unanswered `Cas`
    /// that would fail, because linearizing it is the same as leaving it out).
    fn apply(self, value: ValueId) -> Option<ValueId> {
        match self {
            Step::Read(seen) => (seen == value).then_some(value),
            Step::Write(new) => Some(new),
            Step::Cas { expected, new, succeeded: Some(true) | None } => (value == expected).then_some(new),
            Step::Cas { expected, succeeded: Some(false), .. } => (value != expected).then_some(value),
        }
    }

    /// Whether the operation never changes the value (a `Get`, or a `Cas` known to fail).
    fn is_read_only(self) -> bool {
        matches!(self, Step::Read(_) | Step::Cas { succeeded: Some(false), .. })
    }
}

/// Unanswered operations with the same [`Step`]. Once invoked, they are interchangeable
/// forever (none has a return), so the search only ever linearizes the earliest invoked one
/// not yet linearized: the linearized ones of a class are always a prefix of `calls`.
struct PendingClass {
    step: Step,
    /// Invocation times, ascending, with each operation's index in the key's `ops`.
    calls: Vec<(u64, usize)>,
    /// The memo bit of `calls[0]`; `calls[i]` has bit `first_bit + i`.
    first_bit: usize,
}

/// End of a linked list.
const NIL: usize = usize::MAX;
/// The sentinel node heading the event list.
const HEAD: usize = 0;

/// Where the search is in exploring the moves of the current state.
#[derive(Clone, Copy, Debug)]
enum Cursor {
    /// Just arrived: look for a read that must go next, else start at the first candidate.
    Enter,
    /// At this node of the event list (or `NIL`).
    Answered(usize),
    /// At this pending class; its next operation qualifies only if invoked no later than
    /// `frontier` (the earliest return of an unlinearized answered operation).
    Pending { class: usize, frontier: u64 },
    /// No moves left: backtrack.
    Exhausted,
}

/// An operation linearized by the search.
#[derive(Clone, Copy, Debug)]
enum Move {
    /// The answered operation with this call node.
    Answered(usize),
    /// The next operation of this pending class, and the frontier of the state it was made in.
    Pending { class: usize, frontier: u64 },
}

/// A move on the search stack, with what is needed to undo it.
struct Frame {
    /// What was linearized.
    choice: Move,
    /// The value before the move.
    value: ValueId,
    /// The writer of that value (see [`Stuck::writer`]).
    writer: Option<usize>,
    /// Whether it was the only move tried from its state (see [`Search::enabled_read`]).
    forced: bool,
}

/// The just-in-time linearization search over one key.
///
/// Answered operations live in a doubly linked list of call and return events sorted by
/// time (calls before returns at equal times). Linearizing one unlinks its two events;
/// backtracking relinks them in reverse order ("dancing links"), so each move is O(1)
/// apart from memoization. Unanswered operations live in [`PendingClass`]es.
struct Search {
    /// Per answered operation (in `KeyHistory::answered` order): its step.
    steps: Vec<Step>,
    /// Per answered operation: its index in the key's `ops`.
    indices: Vec<usize>,
    /// Event list: node 0 is the head; node `n >= 1` is an event.
    next: Vec<usize>,
    prev: Vec<usize>,
    /// Per event node: the answered operation it belongs to.
    event_op: Vec<usize>,
    /// Per event node: whether it is a call (else a return).
    event_is_call: Vec<bool>,
    /// Per event node: its time.
    event_time: Vec<u64>,
    /// Per answered operation: its return node.
    ret_node: Vec<usize>,
    classes: Vec<PendingClass>,
    /// Per class: how many of its operations are linearized.
    used: Vec<usize>,
    /// The number of unanswered operations.
    pending: usize,
}

impl Search {
    fn new(history: &KeyHistory) -> Search {
        let values = Values::new(history);
        let answered = &history.answered;

        let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * answered.len());
        for (i, op) in answered.iter().enumerate() {
            // `false` sorts first: calls before returns at equal times.
            events.push((op.call, false, i));
            events.push((op.ret, true, i));
        }
        events.sort_unstable();
        let nodes = events.len() + 1;
        let mut event_op = Vec::with_capacity(nodes);
        let mut event_is_call = Vec::with_capacity(nodes);
        let mut event_time = Vec::with_capacity(nodes);
        let mut ret_node = vec![NIL; answered.len()];
        // The head sentinel: never read as an event.
        event_op.push(NIL);
        event_is_call.push(false);
        event_time.push(0);
        for (node, &(time, is_return, op)) in (1..).zip(&events) {
            event_op.push(op);
            event_is_call.push(!is_return);
            event_time.push(time);
            if is_return {
                ret_node[op] = node;
            }
        }

        // `history.pending` is sorted by call, so each class's calls come out ascending.
        let mut by_step: BTreeMap<Step, Vec<(u64, usize)>> = BTreeMap::new();
        for op in &history.pending {
            by_step.entry(values.step(op.effect)).or_default().push((op.call, op.index));
        }
        let mut classes = Vec::with_capacity(by_step.len());
        let mut first_bit = 0;
        for (step, calls) in by_step {
            let len = calls.len();
            classes.push(PendingClass { step, calls, first_bit });
            first_bit += len;
        }

        Search {
            steps: answered.iter().map(|op| values.step(op.effect)).collect(),
            indices: answered.iter().map(|op| op.index).collect(),
            next: (1..=nodes).map(|n| if n == nodes { NIL } else { n }).collect(),
            prev: (0..nodes).map(|n| n.wrapping_sub(1)).collect(),
            event_op,
            event_is_call,
            event_time,
            ret_node,
            used: vec![0; classes.len()],
            classes,
            pending: history.pending.len(),
        }
    }

    fn unlink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = n;
        if n != NIL {
            self.prev[n] = p;
        }
    }

    fn relink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = node;
        if n != NIL {
            self.prev[n] = node;
        }
    }

    /// Removes the answered operation with call node `node` from the event list.
    fn take_answered(&mut self, node: usize) {
        self.unlink(node);
        self.unlink(self.ret_node[self.event_op[node]]);
    }

    /// Undoes [`Search::take_answered`]; must be called in reverse order of the takes.
    fn restore_answered(&mut self, node: usize) {
        self.relink(self.ret_node[self.event_op[node]]);
        self.relink(node);
    }

    /// The first candidate that only reads and whose response matches `value`, with its call
    /// node and the resulting value. Linearizing it first loses nothing: it changes nothing,
    /// so any order that places it later stays valid with it moved to the front.
    fn enabled_read(&self, value: ValueId) -> Option<(usize, ValueId)> {
        let mut node = self.next[HEAD];
        while node != NIL && self.event_is_call[node] {
            let step = self.steps[self.event_op[node]];
            if step.is_read_only() {
                if let Some(after) = step.apply(value) {
                    return Some((node, after));
                }
            }
            node = self.next[node];
        }
        None
    }

    /// The memo bit and `ops` index of the next operation of `class`, if it is invoked by
    /// `frontier`.
    fn pending_candidate(&self, class: usize, frontier: u64) -> Option<(usize, usize)> {
        let used = self.used[class];
        let class = &self.classes[class];
        let (call, index) = *class.calls.get(used)?;
        (call <= frontier).then_some((class.first_bit + used, index))
    }

    fn run(&mut self, max_states: usize) -> SearchOutcome {
        let mut remaining = self.steps.len();
        if remaining == 0 {
            return SearchOutcome::Linearizable;
        }
        let mut memo = Memo::new(self.steps.len(), self.pending);
        let mut value = ABSENT;
        let fresh = memo.visit(value);
        debug_assert!(fresh, "the initial state is the first one remembered");
        if memo.states > max_states {
            return SearchOutcome::OutOfBudget;
        }

        let mut stack: Vec<Frame> = Vec::with_capacity(self.steps.len() + self.pending);
        let mut stuck: Option<Stuck> = None;
        let mut writer: Option<usize> = None;
        let mut cursor = Cursor::Enter;
        loop {
            if remaining == 0 {
                return SearchOutcome::Linearizable;
            }
            match cursor {
                Cursor::Enter => {
                    cursor = Cursor::Answered(self.next[HEAD]);
                    if let Some((node, after)) = self.enabled_read(value) {
                        // The only move worth trying from this state.
                        let op = self.event_op[node];
                        memo.answered.set(op);
                        if memo.visit(after) {
                            if memo.states > max_states {
                                return SearchOutcome::OutOfBudget;
                            }
                            stack.push(Frame { choice: Move::Answered(node), value, writer, forced: true });
                            value = after;
                            remaining -= 1;
                            self.take_answered(node);
                            cursor = Cursor::Enter;
                        } else {
                            memo.answered.clear(op);
                            cursor = Cursor::Exhausted;
                        }
                    }
                }
                Cursor::Answered(node) if node != NIL && self.event_is_call[node] => {
                    let op = self.event_op[node];
                    if let Some(after) = self.steps[op].apply(value) {
                        memo.answered.set(op);
                        if memo.visit(after) {
                            if memo.states > max_states {
                                return SearchOutcome::OutOfBudget;
                            }
                            stack.push(Frame { choice: Move::Answered(node), value, writer, forced: false });
                            if after != value {
                                writer = Some(self.indices[op]);
                            }
                            value = after;
                            remaining -= 1;
                            self.take_answered(node);
                            cursor = Cursor::Enter;
                            continue;
                        }
                        memo.answered.clear(op);
                    }
                    cursor = Cursor::Answered(self.next[node]);
                }
                Cursor::Answered(node) => {
                    // The earliest return of an unlinearized answered operation: no answered
                    // operation invoked later may go next. Try the pending ones.
                    let frontier = if node == NIL {
                        u64::MAX
                    } else {
                        let linearized = self.steps.len() - remaining;
                        if stuck.is_none_or(|deepest| linearized > deepest.linearized) {
                            stuck = Some(Stuck { linearized, blocked: self.event_op[node], writer });
                        }
                        self.event_time[node]
                    };
                    cursor = Cursor::Pending { class: 0, frontier };
                }
                Cursor::Pending { class, frontier } if class < self.classes.len() => {
                    cursor = Cursor::Pending { class: class + 1, frontier };
                    let Some((bit, index)) = self.pending_candidate(class, frontier) else {
                        continue;
                    };
                    let step = self.classes[class].step;
                    // A pending operation directly followed by a `Put` could as well never
                    // have happened, and that shorter order is tried from the state before it.
                    let after_pending = stack.last().is_some_and(|frame| matches!(frame.choice, Move::Pending { .. }));
                    if after_pending && matches!(step, Step::Write(_)) {
                        continue;
                    }
                    let Some(after) = step.apply(value) else {
                        continue;
                    };
                    memo.pending.set(bit);
                    if memo.visit(after) {
                        if memo.states > max_states {
                            return SearchOutcome::OutOfBudget;
                        }
                        stack.push(Frame { choice: Move::Pending { class, frontier }, value, writer, forced: false });
                        if after != value {
                            writer = Some(index);
                        }
                        value = after;
                        self.used[class] += 1;
                        cursor = Cursor::Enter;
                    } else {
                        memo.pending.clear(bit);
                    }
                }
                Cursor::Pending { .. } | Cursor::Exhausted => {
                    // Every move from this state failed: undo the last move and try the one
                    // after it (none after a forced one).
                    let Some(frame) = stack.pop() else {
                        return SearchOutcome::NotLinearizable(stuck);
                    };
                    value = frame.value;
                    writer = frame.writer;
                    cursor = match frame.choice {
                        Move::Answered(node) => {
                            self.restore_answered(node);
                            memo.answered.clear(self.event_op[node]);
                            remaining += 1;
                            Cursor::Answered(self.next[node])
                        }
                        Move::Pending { class, frontier } => {
                            self.used[class] -= 1;
                            memo.pending.clear(self.classes[class].first_bit + self.used[class]);
                            Cursor::Pending { class: class + 1, frontier }
                        }
                    };
                    if frame.forced {
                        cursor = Cursor::Exhausted;
                    }
                }
            }
        }
    }
}

/// A fixed-size set of small integers.
struct BitSet {
    words: Vec<u64>,
}

impl BitSet {
    fn new(len: usize) -> BitSet {
        BitSet { words: vec![0; len.div_ceil(64)] }
    }

    fn set(&mut self, bit: usize) {
        self.words[bit / 64] |= 1 << (bit % 64);
    }

    fn clear(&mut self, bit: usize) {
        self.words[bit / 64] &= !(1 << (bit % 64));
    }
}

/// The set of explored search states.
///
/// A state is (linearized answered operations, linearized pending operations, value). States
/// with the same answered set and value are grouped; within a group a state is skipped if a
/// remembered one linearized a subset of its pending operations (it dominates: it can do
/// everything the new one can). Without pending operations this is plain set membership.
struct Memo {
    /// The answered operations linearized in the current state.
    answered: BitSet,
    /// The pending operations linearized in the current state.
    pending: BitSet,
    /// Group key (value, then the answered set with full leading words trimmed) to the
    /// pending sets remembered for it, concatenated.
    groups: HashMap<Box<[u64]>, Vec<u64>, BuildHasherDefault<FxHasher>>,
    /// Reused buffer for building group keys.
    key: Vec<u64>,
    /// States remembered so far (never decreases).
    states: usize,
}

impl Memo {
    fn new(answered: usize, pending: usize) -> Memo {
        Memo {
            answered: BitSet::new(answered),
            pending: BitSet::new(pending),
            groups: HashMap::default(),
            key: Vec::new(),
            states: 0,
        }
    }

    /// Records the current sets with `value`; returns false if an explored state dominates.
    fn visit(&mut self, value: ValueId) -> bool {
        let words = &self.answered.words;
        // Linearized sets tend to be a prefix of the operations sorted by call time plus a
        // few more, so drop the leading full words and trailing empty words. The encoding
        // stays injective because the offset is part of the key.
        let start = words.iter().take_while(|&&w| w == u64::MAX).count();
        let end = words.iter().rposition(|&w| w != 0).map_or(start, |last| (last + 1).max(start));
        self.key.clear();
        self.key.extend_from_slice(&[value, start as u64]);
        self.key.extend_from_slice(&words[start..end]);

        let current = &self.pending.words[..];
        if let Some(group) = self.groups.get_mut(&self.key[..]) {
            if current.is_empty() {
                return false;
            }
            let width = current.len();
            if group.chunks_exact(width).any(|seen| is_subset(seen, current)) {
                return false;
            }
            // Remembered supersets are dominated by the current set: forget them.
            let mut kept = 0;
            for i in 0..group.len() / width {
                let (from, to) = (i * width, kept * width);
                if !is_subset(current, &group[from..from + width]) {
                    group.copy_within(from..from + width, to);
                    kept += 1;
                }
            }
            group.truncate(kept * width);
            group.extend_from_slice(current);
        } else {
            self.groups.insert(self.key[..].into(), current.to_vec());
        }
        self.states += 1;
        true
    }
}

fn is_subset(small: &[u64], big: &[u64]) -> bool {
    small.iter().zip(big).all(|(s, b)| s & !b == 0)
}

/// A fast deterministic hasher for the memo (FxHash's mixing step plus a final avalanche).
/// The memo is only queried for membership, so the hash never influences results.
#[derive(Default)]
struct FxHasher {
    hash: u64,
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        // murmur3's fmix64, so that every input bit reaches the low (bucket) bits.
        let mut h = self.hash;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "k";

    fn answered(client: u64, call: u64, ret: u64, input: KvInput, output: KvOutput) -> Operation {
        Operation { client, call, ret: Some(ret), input, output: Some(output) }
    }

    fn get(client: u64, call: u64, ret: u64, seen: Option<u64>) -> Operation {
        answered(client, call, ret, get_input(), KvOutput::Get(seen))
    }

    fn put(client: u64, call: u64, ret: u64, value: u64) -> Operation {
        answered(client, call, ret, put_input(value), KvOutput::Put)
    }

    fn cas(client: u64, call: u64, ret: u64, expected: Option<u64>, new: u64, succeeded: bool) -> Operation {
        answered(client, call, ret, cas_input(expected, new), KvOutput::Cas(succeeded))
    }

    /// An operation whose response was never seen.
    fn unanswered(client: u64, call: u64, input: KvInput) -> Operation {
        Operation { client, call, ret: None, input, output: None }
    }

    fn get_input() -> KvInput {
        KvInput::Get { key: KEY.to_owned() }
    }

    fn put_input(value: u64) -> KvInput {
        KvInput::Put { key: KEY.to_owned(), value }
    }

    fn cas_input(expected: Option<u64>, new: u64) -> KvInput {
        KvInput::Cas { key: KEY.to_owned(), expected, new }
    }

    /// The same operation on another key.
    fn on(key: &str, mut op: Operation) -> Operation {
        match &mut op.input {
            KvInput::Get { key: k } | KvInput::Put { key: k, .. } | KvInput::Cas { key: k, .. } => {
                *k = key.to_owned();
            }
        }
        op
    }

    fn assert_linearizable(history: &[Operation]) {
        let result = check(history);
        assert_eq!(result, CheckResult::Ok, "history: {history:#?}");
    }

    /// Asserts a violation on `key` that lists exactly the operations on `key` in history
    /// order, and returns its reason.
    fn assert_violation_on(key: &str, history: &[Operation]) -> String {
        match check(history) {
            CheckResult::Violation { key: found, ops, reason } => {
                assert_eq!(found, key, "{reason}");
                let expected: Vec<Operation> = history.iter().filter(|op| op.input.key() == key).cloned().collect();
                assert_eq!(ops, expected);
                assert!(!reason.is_empty());
                reason
            }
            other => {
                panic!("expected a violation on {key:?}, got {other:?}\nhistory: {history:#?}")
            }
        }
    }

    fn assert_violation(history: &[Operation]) -> String {
        assert_violation_on(KEY, history)
    }

    // Valid histories.

    #[test]
    fn empty_history_is_linearizable() {
        assert_linearizable(&[]);
    }

    #[test]
    fn sequential_history_is_linearizable() {
        assert_linearizable(&[
            get(0, 0, 1, None),
            put(0, 2, 3, 1),
            get(0, 4, 5, Some(1)),
            cas(0, 6, 7, Some(1), 2, true),
            cas(0, 8, 9, Some(1), 3, false),
            cas(0, 10, 11, None, 4, false),
            get(0, 12, 13, Some(2)),
            put(0, 14, 15, 2),
            get(0, 16, 17, Some(2)),
        ]);
    }

    #[test]
    fn history_order_does_not_matter() {
        assert_linearizable(&[
            get(0, 4, 5, Some(1)),
            cas(0, 6, 7, Some(1), 2, true),
            put(0, 2, 3, 1),
            get(0, 8, 9, Some(2)),
            get(0, 0, 1, None),
        ]);
    }

    #[test]
    fn overlapping_puts_may_be_read_in_either_order() {
        let puts = [put(1, 0, 10, 1), put(2, 5, 15, 2)];
        for last in [1, 2] {
            let mut history = puts.to_vec();
            history.push(get(3, 20, 21, Some(last)));
            history.push(get(3, 22, 23, Some(last)));
            assert_linearizable(&history);
        }
        // A read inside the overlap may see the put that ends up overwritten.
        let mut history = puts.to_vec();
        history.push(get(3, 6, 8, Some(2)));
        history.push(get(3, 20, 21, Some(1)));
        assert_linearizable(&history);
    }

    #[test]
    fn overlapping_puts_settle_on_one_value() {
        assert_violation(&[put(1, 0, 10, 1), put(2, 5, 15, 2), get(3, 20, 21, Some(1)), get(3, 22, 23, Some(2))]);
    }

    #[test]
    fn equal_timestamps_count_as_concurrent() {
        // The put returns at 10 and the read is invoked at 10: either order is allowed.
        assert_linearizable(&[put(1, 0, 10, 1), get(2, 10, 12, None)]);
        // An instantaneous operation (call == ret) is accepted.
        assert_linearizable(&[put(1, 5, 5, 1), get(2, 6, 7, Some(1))]);
    }

    #[test]
    fn concurrent_cas_chain_is_linearizable() {
        assert_linearizable(&[
            cas(1, 0, 10, None, 1, true),
            cas(2, 2, 12, Some(1), 2, true),
            cas(3, 4, 14, Some(2), 3, true),
            cas(4, 1, 13, None, 9, false),
            cas(5, 3, 11, Some(3), 9, false),
            get(6, 20, 21, Some(3)),
        ]);
    }

    #[test]
    fn unanswered_put_observed_later_is_linearizable() {
        assert_linearizable(&[
            put(1, 0, 1, 1),
            unanswered(2, 5, put_input(2)),
            get(3, 10, 11, Some(1)),
            get(3, 100, 101, Some(2)),
            get(4, 102, 103, Some(2)),
        ]);
    }

    #[test]
    fn unanswered_put_never_observed_is_linearizable() {
        assert_linearizable(&[
            put(1, 0, 1, 1),
            unanswered(2, 5, put_input(2)),
            get(3, 100, 101, Some(1)),
            get(4, 102, 103, Some(1)),
        ]);
    }

    #[test]
    fn unanswered_put_may_take_effect_long_after_its_call() {
        // The lost put of 1 must land between the put of 3 and the last read, long after
        // everything else around it completed. (The search meets a state that linearized it
        // too early first; that state must not hide the later, correct one.)
        assert_linearizable(&[
            put(1, 0, 10, 1),
            put(2, 0, 10, 2),
            unanswered(3, 0, put_input(1)),
            get(4, 20, 21, Some(1)),
            put(4, 22, 23, 3),
            get(4, 24, 25, Some(1)),
        ]);
    }

    #[test]
    fn unanswered_get_is_ignored() {
        // Its (unknown) result must not be compared with anything.
        assert_linearizable(&[put(1, 0, 1, 1), unanswered(2, 2, get_input()), get(3, 10, 11, Some(1))]);
    }

    #[test]
    fn unanswered_cas_may_or_may_not_take_effect() {
        for seen in [1, 2] {
            assert_linearizable(&[
                put(1, 0, 1, 1),
                unanswered(2, 5, cas_input(Some(1), 2)),
                get(3, 10, 11, Some(seen)),
            ]);
        }
        // But once it could only have failed, it cannot write.
        assert_violation(&[put(1, 0, 1, 1), unanswered(2, 5, cas_input(Some(7), 2)), get(3, 10, 11, Some(2))]);
    }

    #[test]
    fn unanswered_put_explains_a_failed_cas() {
        let history = [put(1, 0, 1, 1), unanswered(2, 2, put_input(5)), cas(3, 10, 11, Some(1), 2, false)];
        assert_linearizable(&history);
        // Without the unanswered put nothing changed the value, so the cas had to succeed.
        assert_violation(&[history[0].clone(), history[2].clone()]);
    }

    // Invalid histories.

    #[test]
    fn unanswered_put_cannot_take_effect_before_its_call() {
        assert_violation(&[put(1, 0, 1, 1), get(2, 10, 20, Some(2)), unanswered(3, 30, put_input(2))]);
    }

    #[test]
    fn stale_read_after_completed_put_is_a_violation() {
        let reason = assert_violation(&[put(1, 0, 1, 1), put(2, 2, 3, 2), get(3, 4, 5, Some(1))]);
        assert!(reason.contains("ops[2]"), "{reason}");
    }

    #[test]
    fn read_of_a_value_never_written_is_a_violation() {
        let reason = assert_violation(&[put(1, 0, 10, 1), get(2, 5, 15, Some(7))]);
        assert!(reason.contains("no operation on this key writes"), "{reason}");
        // A value written only to another key does not count.
        assert_violation(&[on("other", put(1, 0, 1, 7)), get(2, 5, 15, Some(7))]);
    }

    #[test]
    fn two_successful_cas_from_the_same_value_is_a_violation() {
        let reason =
            assert_violation(&[put(1, 0, 1, 1), cas(2, 2, 3, Some(1), 2, true), cas(3, 4, 5, Some(1), 3, true)]);
        assert!(reason.contains("ops[2]"), "{reason}");
        // Concurrent is no better: after either one the value is no longer 1.
        assert_violation(&[put(1, 0, 1, 1), cas(2, 2, 10, Some(1), 2, true), cas(3, 4, 12, Some(1), 3, true)]);
    }

    #[test]
    fn value_going_back_in_time_is_a_violation() {
        // Both reads after the put completed.
        assert_violation(&[put(1, 0, 1, 0), put(1, 10, 20, 1), get(2, 21, 22, Some(1)), get(2, 23, 24, Some(0))]);
        // Both reads while the put is in flight: the new value, once seen, stays.
        assert_violation(&[put(1, 0, 1, 0), put(1, 10, 20, 1), get(2, 12, 14, Some(1)), get(3, 15, 16, Some(0))]);
        // The reverse order is fine.
        assert_linearizable(&[put(1, 0, 1, 0), put(1, 10, 20, 1), get(2, 12, 14, Some(0)), get(3, 15, 16, Some(1))]);
    }

    #[test]
    fn lost_write_is_a_violation() {
        assert_violation(&[put(1, 0, 1, 1), get(2, 5, 6, None)]);
        // An acknowledged write lost behind a concurrent one.
        assert_violation(&[
            put(1, 0, 10, 1),
            put(2, 0, 10, 2),
            get(3, 11, 12, Some(2)),
            cas(3, 13, 14, Some(2), 3, true),
            get(4, 15, 16, Some(1)),
        ]);
    }

    #[test]
    fn malformed_histories_are_rejected_without_panicking() {
        let mut backwards = put(1, 10, 5, 1);
        backwards.ret = Some(5);
        let mut wrong_kind = get(1, 0, 1, None);
        wrong_kind.output = Some(KvOutput::Put);
        let mut output_without_ret = put(1, 0, 1, 1);
        output_without_ret.ret = None;
        let mut ret_without_output = put(1, 0, 1, 1);
        ret_without_output.output = None;
        for bad in [backwards, wrong_kind, output_without_ret, ret_without_output] {
            let history = [put(0, 0, 1, 3), bad];
            let reason = assert_violation(&history);
            assert!(reason.starts_with("malformed history: ops[1]"), "{reason}");
        }
        // Extreme values are fine.
        assert_linearizable(&[
            put(0, 0, u64::MAX, u64::MAX),
            get(1, u64::MAX, u64::MAX, Some(u64::MAX)),
            unanswered(2, u64::MAX, put_input(0)),
        ]);
    }

    #[test]
    fn arbitrary_histories_never_panic() {
        fn time(rng: &mut Rng) -> u64 {
            [0, 1, 2, 3, u64::MAX - 1, u64::MAX][rng.below(6) as usize]
        }
        fn value(rng: &mut Rng) -> Option<u64> {
            [None, Some(0), Some(1), Some(u64::MAX)][rng.below(4) as usize]
        }
        let mut rng = Rng(42);
        let mut verdicts = [0; 3];
        for _ in 0..2_000 {
            let len = rng.below(12) as usize;
            let history: Vec<Operation> = (0..len)
                .map(|_| {
                    let (call, ret) = (time(&mut rng), time(&mut rng));
                    let (expected, new) = (value(&mut rng), value(&mut rng).unwrap_or(7));
                    let key = if rng.chance(500) { KEY.to_owned() } else { String::new() };
                    let input = match rng.below(3) {
                        0 => KvInput::Get { key },
                        1 => KvInput::Put { key, value: new },
                        _ => KvInput::Cas { key, expected, new },
                    };
                    let output = match rng.below(4) {
                        0 => None,
                        1 => Some(KvOutput::Get(value(&mut rng))),
                        2 => Some(KvOutput::Put),
                        _ => Some(KvOutput::Cas(rng.chance(500))),
                    };
                    Operation { client: rng.next(), call, ret: Some(ret).filter(|_| rng.chance(800)), input, output }
                })
                .collect();
            let result = check_with_budget(&history, 1 + rng.below(50) as usize);
            verdicts[match result {
                CheckResult::Ok => 0,
                CheckResult::Violation { .. } => 1,
                CheckResult::Unknown { .. } => 2,
            }] += 1;
        }
        assert!(verdicts[..2].iter().all(|&n| n >= 100), "ok, violation, unknown: {verdicts:?}");
    }

    #[test]
    fn keys_are_checked_independently() {
        // Interleaved in time, each key on its own is fine, though "a" reading 2 would be
        // stale if the keys were one object.
        assert_linearizable(&[
            on("a", put(1, 0, 1, 1)),
            on("b", put(2, 2, 3, 2)),
            on("a", get(1, 4, 5, Some(1))),
            on("b", get(2, 6, 7, Some(2))),
        ]);
        assert_violation_on(
            "b",
            &[
                on("a", put(1, 0, 1, 1)),
                on("b", put(2, 2, 3, 2)),
                on("a", get(1, 4, 5, Some(1))),
                on("b", get(2, 6, 7, None)),
                on("c", put(3, 0, 1, 1)),
                on("c", get(3, 2, 3, None)),
            ],
        );
    }

    /// Sixteen puts of distinct values, all concurrent, then a read of one of them: valid,
    /// but the search must remember many states to find the order.
    fn many_concurrent_puts(key: &str) -> Vec<Operation> {
        let mut history: Vec<Operation> = (0..16).map(|v| on(key, put(v, 0, 100, v))).collect();
        history.push(on(key, get(99, 200, 201, Some(0))));
        history
    }

    #[test]
    fn exceeding_the_budget_returns_unknown() {
        let history = many_concurrent_puts(KEY);
        assert_eq!(check(&history), CheckResult::Ok);
        for budget in [0, 1, 5] {
            assert_eq!(
                check_with_budget(&history, budget),
                CheckResult::Unknown { key: KEY.to_owned() },
                "budget {budget}"
            );
        }
        // Keys without answered operations need no states at all.
        assert_eq!(check_with_budget(&[unanswered(1, 0, put_input(1))], 0), CheckResult::Ok);
    }

    #[test]
    fn violation_is_reported_even_if_an_earlier_key_is_unknown() {
        let mut history = many_concurrent_puts("a");
        history.push(on("b", put(1, 0, 1, 1)));
        history.push(on("b", get(1, 2, 3, None)));
        match check_with_budget(&history, 5) {
            CheckResult::Violation { key, .. } => assert_eq!(key, "b"),
            other => panic!("expected a violation on b, got {other:?}"),
        }
        history.pop();
        assert_eq!(check_with_budget(&history, 5), CheckResult::Unknown { key: "a".to_owned() });
    }

    #[test]
    fn many_unanswered_puts_do_not_blow_up_the_search() {
        // Forty lost puts that could each take effect anywhere after their call, then a
        // long run of acknowledged writes and reads, then a stale read at the very end.
        // Without pruning, every subset of the lost puts would be explored.
        let mut history: Vec<Operation> = (0..40).map(|i| unanswered(100 + i, i, put_input(i + 1))).collect();
        for i in 0..100 {
            let t = 1_000 + 10 * i;
            history.push(put(1, t, t + 5, 1_000 + i));
            history.push(get(2, t + 6, t + 7, Some(1_000 + i)));
        }
        history.push(get(2, 5_000, 5_001, Some(1_000)));
        let budget = 100_000;
        match check_with_budget(&history, budget) {
            CheckResult::Violation { reason, .. } => {
                assert!(reason.contains("ops[240]"), "{reason}")
            }
            other => panic!("expected a violation, got {other:?}"),
        }
        history.pop();
        assert_eq!(check_with_budget(&history, budget), CheckResult::Ok);
    }

    // Randomized histories.

    /// SplitMix64: a tiny deterministic generator, enough for test data.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn chance(&mut self, per_mille: u64) -> bool {
            self.below(1_000) < per_mille
        }
    }

    struct Shape {
        ops: usize,
        keys: u64,
        /// How far call and return may stray from the linearization point; with points
        /// 100 ns apart, a spread of 500 gives about ten concurrent operations.
        spread: u64,
        /// Values are drawn from `0..n`, or are fresh for every operation if `None`.
        values: Option<u64>,
        unanswered_per_mille: u64,
    }

    /// A history that is linearizable by construction: operations are generated
    /// sequentially against the model, each at its own linearization point, then their
    /// call and return times are moved apart around that point so that they overlap.
    /// Some get no response; of those, half never take effect.
    fn random_history(rng: &mut Rng, shape: &Shape) -> Vec<Operation> {
        let mut values: Vec<Option<u64>> = vec![None; shape.keys as usize];
        let mut written: Vec<Vec<u64>> = vec![Vec::new(); shape.keys as usize];
        let mut fresh = 0;
        let mut history = Vec::with_capacity(shape.ops);
        for i in 0..shape.ops as u64 {
            let k = rng.below(shape.keys) as usize;
            let key = format!("k{k}");
            let point = 1_000_000 + 100 * i;
            let call = point - rng.below(shape.spread + 1);
            let ret = point + 1 + rng.below(shape.spread + 1);
            let value = match shape.values {
                Some(n) => rng.below(n),
                None => {
                    fresh += 1;
                    fresh
                }
            };
            let current = values[k];
            let (input, output, after) = match rng.below(3) {
                0 => (KvInput::Get { key }, KvOutput::Get(current), current),
                1 => (KvInput::Put { key, value }, KvOutput::Put, Some(value)),
                _ => {
                    let expected = if rng.chance(500) {
                        current
                    } else if !written[k].is_empty() && rng.chance(700) {
                        Some(written[k][rng.below(written[k].len() as u64) as usize])
                    } else {
                        None
                    };
                    let succeeded = current == expected;
                    let after = if succeeded { Some(value) } else { current };
                    let input = KvInput::Cas { key, expected, new: value };
                    (input, KvOutput::Cas(succeeded), after)
                }
            };
            let is_answered = !rng.chance(shape.unanswered_per_mille);
            if is_answered || rng.chance(500) {
                values[k] = after;
                if let Some(v) = after {
                    written[k].push(v);
                }
            }
            history.push(Operation {
                client: rng.below(10),
                call,
                ret: is_answered.then_some(ret),
                input,
                output: is_answered.then_some(output),
            });
        }
        for i in (1..history.len()).rev() {
            history.swap(i, rng.below(i as u64 + 1) as usize);
        }
        history
    }

    #[test]
    fn random_valid_histories_are_linearizable() {
        let shapes = [
            Shape { ops: 200, keys: 3, spread: 500, values: Some(4), unanswered_per_mille: 100 },
            Shape { ops: 200, keys: 1, spread: 300, values: Some(2), unanswered_per_mille: 0 },
            Shape { ops: 300, keys: 2, spread: 500, values: None, unanswered_per_mille: 200 },
        ];
        for seed in 0..100 {
            for shape in &shapes {
                let history = random_history(&mut Rng(seed), shape);
                let result = check(&history);
                assert_eq!(result, CheckResult::Ok, "seed {seed}");
            }
        }
    }

    /// Ways to make one read impossible in every linearization, given fresh values.
    #[derive(Clone, Copy, Debug)]
    enum Mutation {
        /// Return a value nothing writes.
        NeverWritten,
        /// Return the value of a write invoked after the read returned.
        FromTheFuture,
        /// Return the value of a write overwritten before the read was invoked.
        Stale,
        /// Return "absent" after a write completed.
        Absent,
    }

    /// The value the operation may write, if any (a `Cas` known to fail writes nothing).
    fn writes(op: &Operation) -> Option<u64> {
        match (&op.input, &op.output) {
            (KvInput::Put { value, .. }, _) => Some(*value),
            (KvInput::Cas { new, .. }, Some(KvOutput::Cas(true)) | None) => Some(*new),
            _ => None,
        }
    }

    /// The value the operation certainly wrote before its return, if any.
    fn surely_wrote(op: &Operation) -> Option<(u64, u64)> {
        Some((writes(op)?, op.ret?)).filter(|_| op.output.is_some())
    }

    /// Applies `mutation` to a random answered read of `history` it fits; returns the
    /// mutated key, or `None` if it fits no read.
    fn mutate(rng: &mut Rng, history: &mut [Operation], mutation: Mutation) -> Option<String> {
        let mut reads: Vec<usize> =
            (0..history.len()).filter(|&g| matches!(history[g].output, Some(KvOutput::Get(_)))).collect();
        for i in (1..reads.len()).rev() {
            reads.swap(i, rng.below(i as u64 + 1) as usize);
        }
        for g in reads {
            let read = &history[g];
            let (key, read_ret) = (read.input.key(), read.ret?);
            let same_key = || history.iter().filter(|op| op.input.key() == key);
            let options: Vec<Option<u64>> = match mutation {
                Mutation::NeverWritten => vec![Some(1 << 40)],
                Mutation::FromTheFuture => {
                    same_key().filter(|w| w.call > read_ret).filter_map(writes).map(Some).collect()
                }
                Mutation::Stale => {
                    // The latest invocation of a write that surely completed before the read.
                    let latest = same_key()
                        .filter(|second| surely_wrote(second).is_some_and(|(_, ret)| ret < read.call))
                        .map(|second| second.call)
                        .max();
                    same_key()
                        .filter_map(surely_wrote)
                        .filter(|&(_, first_ret)| latest.is_some_and(|call| first_ret < call))
                        .map(|(v, _)| Some(v))
                        .collect()
                }
                Mutation::Absent => {
                    if same_key().any(|w| surely_wrote(w).is_some_and(|(_, ret)| ret < read.call)) {
                        vec![None]
                    } else {
                        Vec::new()
                    }
                }
            };
            if options.is_empty() {
                continue;
            }
            let seen = options[rng.below(options.len() as u64) as usize];
            let key = key.to_owned();
            history[g].output = Some(KvOutput::Get(seen));
            return Some(key);
        }
        None
    }

    #[test]
    fn random_histories_with_an_impossible_read_are_violations() {
        let shape = Shape { ops: 150, keys: 2, spread: 500, values: None, unanswered_per_mille: 100 };
        let mutations = [Mutation::NeverWritten, Mutation::FromTheFuture, Mutation::Stale, Mutation::Absent];
        let mut applied = [0; 4];
        for seed in 0..100 {
            for (m, &mutation) in mutations.iter().enumerate() {
                let mut rng = Rng(seed);
                let mut history = random_history(&mut rng, &shape);
                assert_eq!(check(&history), CheckResult::Ok, "seed {seed}");
                let Some(key) = mutate(&mut rng, &mut history, mutation) else {
                    continue;
                };
                applied[m] += 1;
                match check(&history) {
                    CheckResult::Violation { key: found, .. } => {
                        assert_eq!(found, key, "seed {seed}, {mutation:?}")
                    }
                    other => {
                        panic!("seed {seed}, {mutation:?}: expected a violation, got {other:?}")
                    }
                }
            }
        }
        // Guard against the generator quietly producing nothing to mutate.
        assert!(applied.iter().all(|&n| n >= 50), "mutations applied: {applied:?}");
    }

    /// Whether some order of `history` (one key) explains it, by trying every order.
    fn brute_force(history: &[Operation]) -> bool {
        fn extend(history: &[Operation], done: &mut [bool], value: Option<u64>) -> bool {
            if history.iter().zip(&*done).all(|(op, &done)| done || op.ret.is_none()) {
                return true;
            }
            for i in 0..history.len() {
                let op = &history[i];
                let blocked =
                    history.iter().zip(&*done).any(|(other, &done)| !done && other.ret.is_some_and(|r| r < op.call));
                if done[i] || blocked {
                    continue;
                }
                let after = match (&op.input, &op.output) {
                    (KvInput::Get { .. }, Some(KvOutput::Get(seen))) => (*seen == value).then_some(value),
                    (KvInput::Get { .. }, _) => Some(value),
                    (KvInput::Put { value: new, .. }, _) => Some(Some(*new)),
                    (KvInput::Cas { expected, new, .. }, Some(KvOutput::Cas(succeeded))) => {
                        ((value == *expected) == *succeeded).then_some(if *succeeded { Some(*new) } else { value })
                    }
                    (KvInput::Cas { expected, new, .. }, _) => {
                        Some(if value == *expected { Some(*new) } else { value })
                    }
                };
                if let Some(after) = after {
                    done[i] = true;
                    if extend(history, done, after) {
                        return true;
                    }
                    done[i] = false;
                }
            }
            false
        }
        extend(history, &mut vec![false; history.len()], None)
    }

    #[test]
    fn agrees_with_brute_force_on_small_histories() {
        let mut verdicts = [0; 2];
        for seed in 0..5_000 {
            let mut rng = Rng(seed);
            let shape = Shape {
                ops: 2 + rng.below(7) as usize,
                keys: 1,
                spread: 150,
                values: Some(3),
                unanswered_per_mille: 300,
            };
            let mut history = random_history(&mut rng, &shape);
            if rng.chance(500) {
                // Coarse clocks: many equal timestamps.
                for op in &mut history {
                    op.call -= op.call % 200;
                    op.ret = op.ret.map(|ret| ret - ret % 200);
                }
            }
            if rng.chance(750) {
                // Corrupt one response, possibly into another valid one.
                let i = rng.below(history.len() as u64) as usize;
                let random_value = |rng: &mut Rng| Some(rng.below(4)).filter(|&v| v < 3);
                history[i].output = match history[i].output {
                    Some(KvOutput::Get(_)) => Some(KvOutput::Get(random_value(&mut rng))),
                    Some(KvOutput::Cas(succeeded)) => Some(KvOutput::Cas(!succeeded)),
                    ref other => other.clone(),
                };
            }
            let expected = brute_force(&history);
            let result = check(&history);
            assert_eq!(result == CheckResult::Ok, expected, "seed {seed}: {result:?}\nhistory: {history:#?}");
            verdicts[usize::from(expected)] += 1;
        }
        // Both verdicts must be well represented for the comparison to mean anything.
        assert!(verdicts.iter().all(|&n| n >= 600), "violations, linearizable: {verdicts:?}");
    }

    /// A long single-key history, about ten operations in flight at a time, 5% unanswered.
    fn long_history(rng: &mut Rng, ops: usize, values: Option<u64>) -> Vec<Operation> {
        random_history(rng, &Shape { ops, keys: 1, spread: 500, values, unanswered_per_mille: 50 })
    }

    #[test]
    fn a_few_thousand_operations_on_one_key_are_checked() {
        let history = long_history(&mut Rng(7), 3_000, Some(8));
        assert_eq!(check_with_budget(&history, 200_000), CheckResult::Ok);
    }

    /// Prints the slowest of five checks per size; run with `cargo test --release -p raft-sim
    /// --lib linearizability::tests::timing -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing report, run by hand in release mode"]
    fn timing() {
        let time = |history: &[Operation]| {
            let start = std::time::Instant::now();
            let result = check(history);
            (start.elapsed(), result)
        };
        for ops in [1_000, 3_000, 5_000, 10_000] {
            let mut slowest = [std::time::Duration::ZERO; 3];
            for seed in 0..5 {
                let mut rng = Rng(seed);
                let (few_values, result) = time(&long_history(&mut rng, ops, Some(8)));
                assert_eq!(result, CheckResult::Ok, "seed {seed}");
                let mut history = long_history(&mut rng, ops, None);
                let (fresh_values, result) = time(&history);
                assert_eq!(result, CheckResult::Ok, "seed {seed}");
                assert!(mutate(&mut rng, &mut history, Mutation::Stale).is_some());
                let (stale_read, result) = time(&history);
                assert!(matches!(result, CheckResult::Violation { .. }), "seed {seed}: {result:?}");
                for (max, t) in slowest.iter_mut().zip([few_values, fresh_values, stale_read]) {
                    *max = (*max).max(t);
                }
            }
            let [few_values, fresh_values, stale_read] = slowest;
            println!(
                "{ops} ops on one key, slowest of 5: valid with 8 values {few_values:?}, valid with \
                 fresh values {fresh_values:?}, one stale read {stale_read:?}"
            );
        }
    }
}
