//! Messages between peers and their wire encoding.
//!
//! Every message carries the sender's term; the rules for higher and lower terms are
//! applied once, in `Node::step`, before the body is looked at.

use crate::batch::Entries;
use crate::log::SnapshotMeta;
use crate::types::{Index, NodeId, Term, MAX_INDEX, MAX_TERM};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Names one read a follower forwarded to its leader, uniquely over the follower's whole
/// life: `incarnation` is taken durably at each start (see `HardState::incarnation`), so a
/// reply addressed to an earlier incarnation can never answer a later read.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReadContext {
    /// The follower's incarnation when it forwarded the read.
    pub incarnation: u64,
    /// Counts the incarnation's forwarded reads.
    pub seq: u64,
}

/// The version of the wire format: the first byte of every encoded message and snapshot
/// header. Every decoder checks it, so peers of incompatible versions refuse each other's
/// bytes with [`DecodeError::Version`] instead of misreading them.
pub const WIRE_VERSION: u8 = 2;

/// A message from one node to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The sender.
    pub from: NodeId,
    /// The receiver.
    pub to: NodeId,
    /// The sender's term (for a pre-vote request and a granted pre-vote response: the term
    /// the candidate would campaign in).
    pub term: Term,
    /// What the message says.
    pub body: MessageBody,
}

/// The kinds of message of the protocol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum MessageBody {
    /// A candidate asks for a vote (or, with `pre_vote`, whether it would get one).
    VoteRequest {
        /// True for a PreVote probe: the receiver changes no state.
        pre_vote: bool,
        /// Index of the candidate's last entry.
        last_log_index: Index,
        /// Term of the candidate's last entry.
        last_log_term: Term,
        /// True when the campaign follows a leader transfer (`TimeoutNow`): receivers must not
        /// ignore it because they recently heard from the old leader.
        transfer: bool,
    },
    /// The answer to a `VoteRequest`.
    VoteResponse {
        /// Answers a pre-vote request.
        pre_vote: bool,
        /// Whether the vote is granted.
        granted: bool,
    },
    /// The leader replicates entries following (`prev_log_index`, `prev_log_term`).
    Append {
        /// Index of the entry just before `entries`.
        prev_log_index: Index,
        /// Term of that entry.
        prev_log_term: Term,
        /// Entries to store, consecutive from `prev_log_index + 1` (may be empty). On the wire
        /// exactly a `Vec<Entry>`; in process, a window onto the leader's own batch.
        entries: Entries,
        /// The leader's commit index.
        commit: Index,
    },
    /// The answer to an `Append`.
    AppendResponse {
        /// Accepted or the hint to retry with.
        result: AppendResult,
    },
    /// Leader keep-alive; also confirms leadership for ReadIndex round `seq`.
    Heartbeat {
        /// The commit index, capped at what the receiver is known to hold.
        commit: Index,
        /// The leader's heartbeat round.
        seq: u64,
    },
    /// The answer to a `Heartbeat`.
    HeartbeatResponse {
        /// The round being acknowledged.
        seq: u64,
    },
    /// A follower asks the leader for a read index on behalf of a local read.
    ReadIndexRequest {
        /// Chosen by the follower to match the answer.
        ctx: ReadContext,
    },
    /// The leader's answer to a `ReadIndexRequest`.
    ReadIndexResponse {
        /// Echoes the request.
        ctx: ReadContext,
        /// The confirmed read index, or `None` if the leader could not serve it.
        index: Option<Index>,
    },
    /// The leader asks the receiver to start an election now (leader transfer).
    TimeoutNow,
    /// The answer to a snapshot stream (`Action::SendSnapshot`) once the receiver installed
    /// it, found it not needed, or failed to install it.
    InstallSnapshotResponse {
        /// The snapshot's last index.
        index: Index,
        /// Whether it was installed.
        success: bool,
    },
}

impl MessageBody {
    /// True if every term in the body is at most `MAX_TERM` and every index at most
    /// `MAX_INDEX`. With these bounds no `+ 1` on a value from the network can overflow.
    fn numbers_in_range(&self) -> bool {
        let t = |t: Term| t <= MAX_TERM;
        let i = |i: Index| i <= MAX_INDEX;
        match self {
            MessageBody::VoteRequest { last_log_index, last_log_term, .. } => i(*last_log_index) && t(*last_log_term),
            MessageBody::VoteResponse { .. } | MessageBody::TimeoutNow => true,
            MessageBody::Append { prev_log_index, prev_log_term, entries, commit } => {
                i(*prev_log_index)
                    && t(*prev_log_term)
                    && i(*commit)
                    && entries.last().is_none_or(|e| i(e.index) && t(e.term))
            }
            MessageBody::AppendResponse { result } => match result {
                AppendResult::Success { match_index } => i(*match_index),
                AppendResult::Conflict { rejected_index, hint_index, hint_term } => {
                    i(*rejected_index) && i(*hint_index) && hint_term.is_none_or(t)
                }
            },
            MessageBody::Heartbeat { commit, .. } => i(*commit),
            MessageBody::HeartbeatResponse { .. } | MessageBody::ReadIndexRequest { .. } => true,
            MessageBody::ReadIndexResponse { index, .. } => index.is_none_or(i),
            MessageBody::InstallSnapshotResponse { index, .. } => i(*index),
        }
    }
}

/// The outcome of an `Append` on the follower.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendResult {
    /// The follower's log matches the leader's up to `match_index` (durably).
    Success {
        /// The last index known to match.
        match_index: Index,
    },
    /// The follower has no entry at `rejected_index` with the leader's term.
    Conflict {
        /// The `prev_log_index` that failed to match.
        rejected_index: Index,
        /// Where the leader should try next: the first index of `hint_term` in the follower's
        /// log, or one past the follower's last index.
        hint_index: Index,
        /// The term of the follower's entry at `rejected_index`, if it has one.
        hint_term: Option<Term>,
    },
}

impl MessageBody {
    /// A short name for logs, metrics and timelines.
    pub fn kind(&self) -> &'static str {
        match self {
            MessageBody::VoteRequest { pre_vote: true, .. } => "PreVote",
            MessageBody::VoteRequest { .. } => "Vote",
            MessageBody::VoteResponse { pre_vote: true, .. } => "PreVoteResp",
            MessageBody::VoteResponse { .. } => "VoteResp",
            MessageBody::Append { .. } => "Append",
            MessageBody::AppendResponse { .. } => "AppendResp",
            MessageBody::Heartbeat { .. } => "Heartbeat",
            MessageBody::HeartbeatResponse { .. } => "HeartbeatResp",
            MessageBody::ReadIndexRequest { .. } => "ReadIndex",
            MessageBody::ReadIndexResponse { .. } => "ReadIndexResp",
            MessageBody::TimeoutNow => "TimeoutNow",
            MessageBody::InstallSnapshotResponse { .. } => "InstallSnapshotResp",
        }
    }
}

/// Why bytes from the network were not accepted as a message.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are of another wire version (or not a message at all).
    #[error("wire version {found} (this node speaks {expected})")]
    Version {
        /// The first byte received.
        found: u8,
        /// [`WIRE_VERSION`].
        expected: u8,
    },
    /// More bytes than the configured maximum message size.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Bytes received.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not a valid encoding of a message.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// Decoded, but the content is impossible (e.g. entries out of order).
    #[error("invalid message: {0}")]
    Invalid(&'static str),
    /// Bytes were left over after the message.
    #[error("{0} trailing bytes after the message")]
    Trailing(usize),
}

impl Message {
    /// Encodes the message: [`WIRE_VERSION`], then the message in postcard.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Appends the encoding of the message to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(WIRE_VERSION);
        let buf = std::mem::take(out);
        // Serializing plain data into a Vec cannot fail.
        *out = postcard::to_extend(self, buf).expect("postcard encoding of a Message into a Vec is infallible");
    }

    /// Decodes one message from untrusted bytes, rejecting anything over `max_len` bytes,
    /// of another wire version, malformed, or structurally invalid. Never panics. Command
    /// payloads are copied out of `bytes`; see [`Message::decode_bytes`] to share them.
    pub fn decode(bytes: &[u8], max_len: usize) -> Result<Message, DecodeError> {
        let body = check_frame(bytes, max_len)?;
        let (msg, rest): (Message, &[u8]) =
            postcard::take_from_bytes(body).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(DecodeError::Trailing(rest.len()));
        }
        msg.validate()?;
        Ok(msg)
    }

    /// Like [`Message::decode`], but command payloads are slices of `bytes` (sharing its
    /// allocation) rather than copies: decoding a large append moves no payload bytes.
    pub fn decode_bytes(bytes: &Bytes, max_len: usize) -> Result<Message, DecodeError> {
        let body = check_frame(bytes, max_len)?;
        let (msg, rest): (Message, &[u8]) = crate::wire::with_base(bytes, || {
            postcard::take_from_bytes(body).map_err(|e| DecodeError::Malformed(e.to_string()))
        })?;
        if !rest.is_empty() {
            return Err(DecodeError::Trailing(rest.len()));
        }
        msg.validate()?;
        Ok(msg)
    }

    /// Checks what the type system cannot: the structure a correct peer always produces.
    /// `Node::step` applies the same check, so forged messages are dropped either way.
    pub fn validate(&self) -> Result<(), DecodeError> {
        check_ids(self.from, self.to)?;
        if self.term > MAX_TERM {
            return Err(DecodeError::Invalid("term above MAX_TERM"));
        }
        if !self.body.numbers_in_range() {
            return Err(DecodeError::Invalid("term above MAX_TERM or index above MAX_INDEX"));
        }
        if let MessageBody::Append { prev_log_index, prev_log_term, entries, .. } = &self.body {
            let mut expect = prev_log_index.checked_add(1).ok_or(DecodeError::Invalid("index overflow"))?;
            let mut term = *prev_log_term;
            for e in entries.iter() {
                if e.index != expect {
                    return Err(DecodeError::Invalid("append entries are not consecutive"));
                }
                if e.term < term || e.term > self.term {
                    return Err(DecodeError::Invalid("append entry terms out of order"));
                }
                term = e.term;
                expect = expect.checked_add(1).ok_or(DecodeError::Invalid("index overflow"))?;
            }
        }
        Ok(())
    }
}

fn check_ids(from: NodeId, to: NodeId) -> Result<(), DecodeError> {
    if from == 0 || to == 0 {
        return Err(DecodeError::Invalid("node id 0 is reserved"));
    }
    if from == to {
        return Err(DecodeError::Invalid("message addressed to its sender"));
    }
    Ok(())
}

/// Checks the size limit and the version byte; returns the bytes after it.
fn check_frame(bytes: &[u8], max_len: usize) -> Result<&[u8], DecodeError> {
    if bytes.len() > max_len {
        return Err(DecodeError::TooLarge { len: bytes.len(), max: max_len });
    }
    match bytes.split_first() {
        Some((&WIRE_VERSION, body)) => Ok(body),
        Some((&found, _)) => Err(DecodeError::Version { found, expected: WIRE_VERSION }),
        None => Err(DecodeError::Malformed("empty input".into())),
    }
}

/// The header of a snapshot stream: who sends it, to whom, in which term, and what the
/// snapshot covers. It travels in front of the snapshot's bytes, so the receiver needs no
/// other message to know what it received (see `Action::SendSnapshot` and
/// `Input::SnapshotReceived`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotHeader {
    /// The sender (the leader).
    pub from: NodeId,
    /// The receiver.
    pub to: NodeId,
    /// The sender's term when it started the transfer.
    pub term: Term,
    /// What the snapshot covers: index, term and the configuration with node info.
    pub meta: SnapshotMeta,
}

impl SnapshotHeader {
    /// Bytes in front of the encoded header: [`WIRE_VERSION`], then the header's length as
    /// a little-endian `u32`. A stream reader reads these, then [`SnapshotHeader::body_len`]
    /// more bytes, then the snapshot data.
    pub const PREFIX_LEN: usize = 5;

    /// Encodes the header as [`SnapshotHeader::PREFIX_LEN`] prefix bytes and a postcard body.
    pub fn encode(&self) -> Vec<u8> {
        let body = postcard::to_allocvec(self).expect("postcard encoding of a header into a Vec is infallible");
        let mut out = Vec::with_capacity(Self::PREFIX_LEN + body.len());
        out.push(WIRE_VERSION);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// The length of the body that follows `prefix`, checked against `max_len`.
    pub fn body_len(prefix: &[u8; Self::PREFIX_LEN], max_len: usize) -> Result<usize, DecodeError> {
        if prefix[0] != WIRE_VERSION {
            return Err(DecodeError::Version { found: prefix[0], expected: WIRE_VERSION });
        }
        let len = u32::from_le_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
        if len > max_len {
            return Err(DecodeError::TooLarge { len, max: max_len });
        }
        Ok(len)
    }

    /// Decodes a header from the front of `bytes` (prefix and body; snapshot data may
    /// follow) and returns it with the number of bytes it took. Never panics.
    pub fn decode(bytes: &[u8], max_len: usize) -> Result<(SnapshotHeader, usize), DecodeError> {
        let prefix: &[u8; Self::PREFIX_LEN] = bytes
            .get(..Self::PREFIX_LEN)
            .and_then(|p| p.try_into().ok())
            .ok_or_else(|| DecodeError::Malformed("truncated snapshot header".into()))?;
        let len = Self::body_len(prefix, max_len)?;
        let body = bytes
            .get(Self::PREFIX_LEN..Self::PREFIX_LEN + len)
            .ok_or_else(|| DecodeError::Malformed("truncated snapshot header".into()))?;
        let (header, rest): (SnapshotHeader, &[u8]) =
            postcard::take_from_bytes(body).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(DecodeError::Trailing(rest.len()));
        }
        header.validate()?;
        Ok((header, Self::PREFIX_LEN + len))
    }

    /// The structural checks a correct sender always passes; `Node::step` applies them too.
    pub fn validate(&self) -> Result<(), DecodeError> {
        check_ids(self.from, self.to)?;
        if self.term > MAX_TERM || self.meta.term > self.term || self.meta.index > MAX_INDEX {
            return Err(DecodeError::Invalid("snapshot term or index out of range"));
        }
        if self.meta.index == 0 {
            return Err(DecodeError::Invalid("a snapshot covers at least one entry"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{Entry, Payload};
    use crate::membership::Membership;
    use bytes::Bytes;

    fn append(entries: Vec<Entry>) -> Message {
        Message {
            from: 1,
            to: 2,
            term: 3,
            body: MessageBody::Append { prev_log_index: 4, prev_log_term: 2, entries: entries.into(), commit: 4 },
        }
    }

    #[test]
    fn round_trip() {
        let m = append(vec![Entry { term: 3, index: 5, payload: Payload::Command(Bytes::from_static(b"x")) }]);
        let bytes = m.encode();
        assert_eq!(Message::decode(&bytes, 1 << 20), Ok(m));
    }

    /// A command decoded from a `Bytes` buffer points into that buffer: no payload copy.
    #[test]
    fn decode_bytes_shares_the_payloads_with_the_input() {
        let payload = Bytes::from(vec![7u8; 4096]);
        let m = append(vec![Entry { term: 3, index: 5, payload: Payload::Command(payload) }]);
        let wire = Bytes::from(m.encode());
        let decoded = Message::decode_bytes(&wire, 1 << 20).unwrap();
        assert_eq!(decoded, m);
        let MessageBody::Append { entries, .. } = &decoded.body else { panic!("an append") };
        let Payload::Command(b) = &entries[0].payload else { panic!("a command") };
        let range = wire.as_ptr() as usize..wire.as_ptr() as usize + wire.len();
        assert!(range.contains(&(b.as_ptr() as usize)), "the payload lies inside the received buffer");
        // The slice-based decoder copies instead.
        let copied = Message::decode(&wire, 1 << 20).unwrap();
        let MessageBody::Append { entries, .. } = &copied.body else { panic!("an append") };
        let Payload::Command(c) = &entries[0].payload else { panic!("a command") };
        assert!(!range.contains(&(c.as_ptr() as usize)));
    }

    #[test]
    fn snapshot_headers_round_trip_and_refuse_bad_input() {
        let mut meta = SnapshotMeta { index: 9, term: 2, membership: crate::Membership::with_voters([1, 2, 3]) };
        meta.membership.info.insert(2, crate::NodeInfo::new(&b"10.0.0.2:7000"[..]));
        let h = SnapshotHeader { from: 1, to: 2, term: 3, meta };
        let mut bytes = h.encode();
        bytes.extend_from_slice(b"snapshot data follows");
        let (back, used) = SnapshotHeader::decode(&bytes, 1 << 16).unwrap();
        assert_eq!(back, h);
        assert_eq!(&bytes[used..], b"snapshot data follows");
        for cut in 0..used {
            assert!(SnapshotHeader::decode(&bytes[..cut], 1 << 16).is_err(), "truncated at {cut}");
        }
        assert!(matches!(SnapshotHeader::decode(&bytes, 4), Err(DecodeError::TooLarge { .. })));
        let mut v = bytes.clone();
        v[0] = 1;
        assert!(matches!(SnapshotHeader::decode(&v, 1 << 16), Err(DecodeError::Version { .. })));
        let future = SnapshotHeader { term: 1, ..h.clone() };
        assert!(SnapshotHeader::decode(&future.encode(), 1 << 16).is_err(), "snapshot term above the sender's");
        let to_self = SnapshotHeader { to: 1, ..h };
        assert!(SnapshotHeader::decode(&to_self.encode(), 1 << 16).is_err());
    }

    /// The bytes of this append as encoded when `entries` was a `Vec<Entry>` (captured from
    /// that version, then given the version byte and the empty node info map of the v2
    /// format): sharing the batch did not change the wire format, whether the batch is a
    /// whole allocation or a window onto a larger one.
    #[test]
    fn the_wire_format_of_an_append_is_unchanged() {
        const BEFORE: [u8; 30] =
            [WIRE_VERSION, 1, 2, 3, 2, 4, 2, 3, 3, 5, 1, 3, 120, 121, 122, 3, 6, 0, 3, 7, 2, 2, 1, 2, 1, 1, 1, 4, 0, 4];
        let m = Membership::from_sets([1, 2], [1], [4]);
        let all: Entries = vec![
            Entry { term: 1, index: 4, payload: Payload::Noop },
            Entry { term: 3, index: 5, payload: Payload::Command(Bytes::from_static(b"xyz")) },
            Entry { term: 3, index: 6, payload: Payload::Noop },
            Entry { term: 3, index: 7, payload: Payload::Membership(Box::new(m)) },
            Entry { term: 3, index: 8, payload: Payload::Noop },
        ]
        .into();
        let body = MessageBody::Append { prev_log_index: 4, prev_log_term: 2, entries: all.slice(1..4), commit: 4 };
        let msg = Message { from: 1, to: 2, term: 3, body };
        assert_eq!(msg.encode(), BEFORE);
        let whole = Message {
            from: 1,
            to: 2,
            term: 3,
            body: MessageBody::Append {
                prev_log_index: 4,
                prev_log_term: 2,
                entries: all.slice(1..4).to_vec().into(),
                commit: 4,
            },
        };
        assert_eq!(whole.encode(), BEFORE);
        assert_eq!(Message::decode(&BEFORE, 1 << 20), Ok(msg));
    }

    #[test]
    fn encode_into_appends_the_same_bytes_as_encode() {
        let m = append(vec![Entry { term: 3, index: 5, payload: Payload::Noop }]);
        let mut out = vec![0xAB];
        m.encode_into(&mut out);
        assert_eq!(out[0], 0xAB);
        assert_eq!(&out[1..], &m.encode()[..]);
    }

    #[test]
    fn a_message_of_exactly_the_size_limit_decodes() {
        let m = append(vec![]);
        let bytes = m.encode();
        assert_eq!(Message::decode(&bytes, bytes.len()), Ok(m));
        assert!(matches!(Message::decode(&bytes, bytes.len() - 1), Err(DecodeError::TooLarge { .. })));
    }

    #[test]
    fn node_id_zero_is_refused_as_sender_or_receiver_alone() {
        for (from, to) in [(0, 2), (1, 0)] {
            let m = Message { from, to, term: 1, body: MessageBody::TimeoutNow };
            assert!(matches!(m.validate(), Err(DecodeError::Invalid(_))), "{from} -> {to}");
        }
    }

    /// Every term and index field is bounded on its own: the field at its bound is
    /// accepted, one past it makes the message invalid.
    #[test]
    fn each_term_and_index_is_bounded_on_its_own() {
        assert_eq!(MAX_TERM, MAX_INDEX, "one bound serves both below");
        type Field = fn(u64) -> MessageBody;
        fn vote(i: Index, t: Term) -> MessageBody {
            MessageBody::VoteRequest { pre_vote: false, last_log_index: i, last_log_term: t, transfer: false }
        }
        fn app(i: Index, t: Term, c: Index) -> MessageBody {
            MessageBody::Append { prev_log_index: i, prev_log_term: t, entries: Default::default(), commit: c }
        }
        fn conflict(r: Index, h: Index, t: Term) -> MessageBody {
            MessageBody::AppendResponse {
                result: AppendResult::Conflict { rejected_index: r, hint_index: h, hint_term: Some(t) },
            }
        }
        let fields: Vec<(&str, Field)> = vec![
            ("vote last index", |x| vote(x, 1)),
            ("vote last term", |x| vote(1, x)),
            ("append prev index", |x| app(x, 1, 1)),
            ("append prev term", |x| app(1, x, 1)),
            ("append commit", |x| app(1, 1, x)),
            ("success match index", |x| MessageBody::AppendResponse {
                result: AppendResult::Success { match_index: x },
            }),
            ("conflict rejected index", |x| conflict(x, 1, 1)),
            ("conflict hint index", |x| conflict(1, x, 1)),
            ("conflict hint term", |x| conflict(1, 1, x)),
            ("heartbeat commit", |x| MessageBody::Heartbeat { commit: x, seq: 1 }),
            ("read index", |x| MessageBody::ReadIndexResponse {
                ctx: ReadContext { incarnation: 1, seq: 1 },
                index: Some(x),
            }),
            ("snapshot response index", |x| MessageBody::InstallSnapshotResponse { index: x, success: true }),
        ];
        let msg = |body| Message { from: 1, to: 2, term: MAX_TERM, body };
        for (name, field) in fields {
            assert_eq!(msg(field(MAX_INDEX)).validate(), Ok(()), "{name} at the bound");
            assert!(msg(field(MAX_INDEX + 1)).validate().is_err(), "{name} past the bound");
        }
        let entry_past = vec![Entry { term: 1, index: MAX_INDEX + 1, payload: Payload::Noop }];
        assert!(msg(app(MAX_INDEX, 1, 1)).validate().is_ok());
        let past =
            MessageBody::Append { prev_log_index: MAX_INDEX, prev_log_term: 1, entries: entry_past.into(), commit: 1 };
        assert!(msg(past).validate().is_err(), "an entry past the bound");
        assert!(Message { term: MAX_TERM + 1, ..msg(MessageBody::TimeoutNow) }.validate().is_err(), "message term");
    }

    #[test]
    fn rejects_oversized_truncated_trailing_and_invalid_input() {
        let m = append(vec![Entry { term: 3, index: 5, payload: Payload::Noop }]);
        let bytes = m.encode();
        assert!(matches!(Message::decode(&bytes, 3), Err(DecodeError::TooLarge { .. })));
        assert!(matches!(Message::decode(&bytes[..bytes.len() - 1], 1 << 20), Err(DecodeError::Malformed(_))));
        assert!(matches!(Message::decode(&[], 1 << 20), Err(DecodeError::Malformed(_))));
        let mut old = bytes.clone();
        old[0] = WIRE_VERSION - 1;
        assert_eq!(
            Message::decode(&old, 1 << 20),
            Err(DecodeError::Version { found: WIRE_VERSION - 1, expected: WIRE_VERSION })
        );
        assert_eq!(
            Message::decode_bytes(&Bytes::from(old), 1 << 20).map(|_| ()),
            Err(DecodeError::Version { found: WIRE_VERSION - 1, expected: WIRE_VERSION })
        );
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(Message::decode(&long, 1 << 20), Err(DecodeError::Trailing(1)));
        let gap = append(vec![Entry { term: 3, index: 7, payload: Payload::Noop }]);
        assert!(matches!(Message::decode(&gap.encode(), 1 << 20), Err(DecodeError::Invalid(_))));
        let future = append(vec![Entry { term: 9, index: 5, payload: Payload::Noop }]);
        assert!(matches!(Message::decode(&future.encode(), 1 << 20), Err(DecodeError::Invalid(_))));
    }
}
