//! Arbitrary (forged, stale, malformed) messages never panic a node or break its invariants.

mod common;
use common::*;
use quickcheck::{Arbitrary, Gen, QuickCheck};
use raft_core::*;

#[derive(Clone, Debug)]
struct AnyMessage(Message);

impl Arbitrary for AnyMessage {
    fn arbitrary(g: &mut Gen) -> Self {
        let small = |g: &mut Gen| u64::arbitrary(g) % 8;
        let from = small(g);
        let to = if bool::arbitrary(g) { 1 } else { small(g) };
        let term = small(g);
        let body = match u8::arbitrary(g) % 9 {
            0 => MessageBody::VoteRequest {
                pre_vote: bool::arbitrary(g),
                last_log_index: small(g),
                last_log_term: small(g),
                transfer: bool::arbitrary(g),
            },
            1 => MessageBody::VoteResponse { pre_vote: bool::arbitrary(g), granted: bool::arbitrary(g) },
            2 => {
                let prev = small(g);
                let n = small(g);
                let mut t = small(g);
                let entries = (0..n)
                    .map(|k| {
                        if bool::arbitrary(g) {
                            t += small(g) % 2;
                        }
                        Entry { term: t, index: prev + 1 + k, payload: Payload::Noop }
                    })
                    .collect();
                MessageBody::Append { prev_log_index: prev, prev_log_term: small(g), entries, commit: small(g) }
            }
            3 => MessageBody::AppendResponse {
                result: if bool::arbitrary(g) {
                    AppendResult::Success { match_index: small(g) }
                } else {
                    AppendResult::Conflict {
                        rejected_index: small(g),
                        hint_index: small(g),
                        hint_term: Option::<u8>::arbitrary(g).map(|t| t as u64 % 8),
                    }
                },
            },
            4 => MessageBody::Heartbeat { commit: small(g), seq: small(g) },
            5 => MessageBody::HeartbeatResponse { seq: small(g) },
            6 => MessageBody::ReadIndexRequest { ctx: ReadContext { incarnation: small(g), seq: small(g) } },
            7 => MessageBody::TimeoutNow,
            _ => MessageBody::ReadIndexResponse {
                ctx: ReadContext { incarnation: small(g), seq: small(g) },
                index: Option::<u8>::arbitrary(g).map(u64::from),
            },
        };
        AnyMessage(Message { from, to, term, body })
    }
}

fn survives(msgs: Vec<AnyMessage>, leader: bool) -> bool {
    let mut c = Cluster::new(3);
    if leader {
        c.elect(1);
    }
    for AnyMessage(m) in msgs {
        c.step(1, Input::Message(m));
        c.queue.clear();
        let n = c.node(1);
        if n.commit_index() > n.log().last_index() || n.applied_index() > n.commit_index() {
            return false;
        }
    }
    true
}

#[test]
fn arbitrary_messages_never_panic_a_follower() {
    QuickCheck::new().tests(300).quickcheck(survives_follower as fn(Vec<AnyMessage>) -> bool);
}

#[test]
fn arbitrary_messages_never_panic_a_leader() {
    QuickCheck::new().tests(300).quickcheck(survives_leader as fn(Vec<AnyMessage>) -> bool);
}

fn survives_follower(msgs: Vec<AnyMessage>) -> bool {
    survives(msgs, false)
}

fn survives_leader(msgs: Vec<AnyMessage>) -> bool {
    survives(msgs, true)
}

#[test]
fn arbitrary_bytes_never_panic_the_decoder() {
    fn decode(bytes: Vec<u8>) -> bool {
        let _ = Message::decode(&bytes, 1 << 16);
        true
    }
    QuickCheck::new().tests(2000).quickcheck(decode as fn(Vec<u8>) -> bool);
}
