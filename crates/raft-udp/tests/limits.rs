//! The arithmetic of `fit_config`: the largest messages the core can emit under the fitted
//! limits, with the largest numbers (every varint at its longest), fit one datagram with
//! a MAC.

use bytes::Bytes;
use raft_core::{
    Entry, Membership, Message, MessageBody, NodeInfo, Payload, SnapshotHeader, SnapshotMeta, MAX_INDEX, MAX_TERM,
};
use raft_udp::{encode_frame, encode_message_frame, fit_config, fitted_limits, Body, Envelope, UdpOptions};

const KEY: [u8; 32] = [3; 32];

fn options() -> UdpOptions {
    UdpOptions::new(u64::MAX).with_key(KEY)
}

fn frame_len(msg: &Message) -> usize {
    let env =
        Envelope { cluster_id: u64::MAX, key: Some(&KEY), sender: u64::MAX, session: u64::MAX, counter: u64::MAX };
    let mut out = Vec::new();
    encode_message_frame(&env, msg, &mut out);
    out.len()
}

/// An append of `entries` with the longest encodings of every other field.
fn append(entries: Vec<Entry>) -> Message {
    Message {
        from: u64::MAX,
        to: u64::MAX - 1,
        term: MAX_TERM,
        body: MessageBody::Append {
            prev_log_index: MAX_INDEX,
            prev_log_term: MAX_TERM,
            entries: entries.into(),
            commit: MAX_INDEX,
        },
    }
}

fn entry(payload: Payload) -> Entry {
    Entry { term: MAX_TERM, index: MAX_INDEX, payload }
}

/// Sums `size_hint`s the way the core's batching does: entries while the sum stays within
/// `max_bytes` (at least one).
fn batch_of(max_bytes: usize, make: impl Fn() -> Entry) -> Vec<Entry> {
    let mut out = vec![make()];
    let mut sum = out[0].size_hint();
    loop {
        let e = make();
        sum += e.size_hint();
        if sum > max_bytes {
            return out;
        }
        out.push(e);
    }
}

/// `M` members with the largest ids, every one a voter of both halves of a joint
/// configuration, each with node info of the fitted limit.
fn maximal_membership(members: usize, info: usize) -> Membership {
    let ids: Vec<u64> = (0..members as u64).map(|i| u64::MAX - i).collect();
    let mut m = Membership::from_sets(ids.clone(), ids.clone(), []);
    for id in ids {
        m.info.insert(id, NodeInfo::new(Bytes::from(vec![b'9'; info])));
    }
    m
}

#[test]
fn fit_config_only_lowers_limits() {
    let o = options();
    let (entry, batch, info) = fitted_limits(&o).expect("fits");
    let mut cfg = raft_core::Config::new(1);
    fit_config(&mut cfg, &o).expect("fits");
    assert_eq!((cfg.max_entry_bytes, cfg.max_bytes_per_message, cfg.max_node_info_bytes), (entry, batch, info));
    cfg.max_entry_bytes = 10;
    fit_config(&mut cfg, &o).expect("fits");
    assert_eq!(cfg.max_entry_bytes, 10, "never raised");
    assert!(cfg.validate().is_ok());
    let mut crowded = o.clone();
    crowded.max_members = 10_000;
    assert!(fit_config(&mut cfg, &crowded).is_err(), "10,000 addresses cannot fit one datagram");
}

#[test]
fn the_largest_command_fits_one_datagram() {
    let o = options();
    let (max_entry, _, _) = fitted_limits(&o).expect("fits");
    let msg = append(vec![entry(Payload::Command(Bytes::from(vec![0xEE; max_entry])))]);
    let len = frame_len(&msg);
    assert!(len <= o.max_datagram, "{len} > {}", o.max_datagram);
}

#[test]
fn the_fullest_batches_fit_one_datagram() {
    let o = options();
    let (_, batch, _) = fitted_limits(&o).expect("fits");
    let small_commands = batch_of(batch, || entry(Payload::Command(Bytes::new())));
    let noops = batch_of(batch, || entry(Payload::Noop));
    let tiny_configs = batch_of(batch, || {
        let mut m = Membership::with_voters([u64::MAX]);
        m.info.insert(u64::MAX, NodeInfo::new(Bytes::new()));
        entry(Payload::Membership(Box::new(m)))
    });
    for (name, entries) in [("small commands", small_commands), ("noops", noops), ("tiny configurations", tiny_configs)]
    {
        let n = entries.len();
        let len = frame_len(&append(entries));
        assert!(len <= o.max_datagram, "{name}: {n} entries make {len} bytes > {}", o.max_datagram);
    }
}

#[test]
fn the_largest_configuration_fits_as_an_entry_and_as_a_snapshot_header() {
    let o = options();
    let (_, _, info) = fitted_limits(&o).expect("fits");
    let m = maximal_membership(o.max_members, info);
    let len = frame_len(&append(vec![entry(Payload::Membership(Box::new(m.clone())))]));
    assert!(len <= o.max_datagram, "membership entry: {len} bytes");

    let header = SnapshotHeader {
        from: u64::MAX,
        to: u64::MAX - 1,
        term: MAX_TERM,
        meta: SnapshotMeta { index: MAX_INDEX, term: MAX_TERM, membership: m },
    };
    let encoded = header.encode();
    let env = Envelope { cluster_id: 1, key: Some(&KEY), sender: u64::MAX, session: u64::MAX, counter: u64::MAX };
    let mut out = Vec::new();
    encode_frame(&env, &Body::SnapshotStart { transfer: u64::MAX, header: &encoded }, &mut out);
    assert!(out.len() <= o.max_datagram, "snapshot start: {} bytes", out.len());
}

/// The figures `docs/protocol.md` (section 3) quotes for the default options.
#[test]
fn the_default_limits_are_the_documented_ones() {
    assert_eq!(fitted_limits(&UdpOptions::new(1)), Ok((64_825, 28_198, 972)));
}
