//! Who may talk to a node: certificates of another CA or naming another node are
//! refused, and bad bytes from an authenticated peer are counted and dropped.

mod common;

use common::*;
use raft_core::{Config, Message, MessageBody, NodeId};
use raft_quic::dev_certs::DevCa;
use raft_quic::{encode_frame, Preamble, QuicMetrics, QuicTransport, StreamKind};
use raft_tokio::{Options, Raft};
use std::net::SocketAddr;

/// Nodes 1 and 2 with certificates of the cluster CA and node 3 with `tls3` (bound
/// without the check that its certificate names it), all founders of one cluster.
async fn cluster_with_intruder(ca: &DevCa, tls3: raft_quic::TlsConfig) -> (Vec<Raft<Journal>>, Vec<QuicTransport>) {
    init_tracing();
    let mut transports = Vec::new();
    for id in [1, 2] {
        transports
            .push(bind_retrying(localhost(), id, quic_options(ca.tls_config(id).unwrap(), &Config::new(id))).await);
    }
    let t3 = QuicTransport::bind_unchecked(localhost(), 3, quic_options(tls3, &Config::new(3))).expect("bind");
    transports.push(t3);
    let members: Vec<_> = transports.iter().map(|t| (t.id(), info(t.local_addr()))).collect();
    let mut rafts = Vec::new();
    for t in &transports {
        rafts.push(start_raft(Config::new(t.id()), Options::bootstrap(members.clone()), t.clone()).await);
    }
    (rafts, transports)
}

/// Nodes 1 and 2 elect a leader and commit without node 3; returns the leader's index.
async fn commit_without_intruder(rafts: &[Raft<Journal>]) -> usize {
    let mut leader = None;
    eventually("nodes 1 and 2 elect a leader", || {
        leader = rafts[..2].iter().position(|r| r.status().role == raft_core::Role::Leader);
        async move { leader.is_some() }
    })
    .await;
    let leader = leader.unwrap();
    for i in 0..5 {
        rafts[leader].propose(cmd(i, 8)).await.expect("committed by nodes 1 and 2");
    }
    leader
}

async fn wait_for(what: &str, transport: &QuicTransport, check: fn(&QuicMetrics) -> bool) {
    eventually(what, || {
        let ok = check(&transport.metrics());
        async move { ok }
    })
    .await;
}

/// The intruder never got a connection through: it delivered nothing, heard nothing,
/// and the leader never saw it acknowledge anything.
fn assert_isolated(rafts: &[Raft<Journal>], transports: &[QuicTransport], leader: usize) {
    let m3 = transports[2].metrics();
    assert_eq!(m3.messages_delivered, 0, "{m3:?}");
    assert_eq!(m3.connections_accepted, 0, "{m3:?}");
    let s3 = rafts[2].status();
    assert_eq!((s3.commit_index, s3.leader), (0, None), "{s3:?}");
    let progress = &rafts[leader].status().progress[&3];
    assert_eq!(progress.match_index, 0, "{progress:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_with_certificate_of_another_ca_cannot_join() {
    let ca = DevCa::generate().unwrap();
    let foreign = DevCa::generate().unwrap();
    // Node 3 trusts the cluster CA but presents a certificate of another CA.
    let tls3 = ca.tls_config_with(foreign.node_cert(3).unwrap()).unwrap();
    let (rafts, transports) = cluster_with_intruder(&ca, tls3).await;
    let leader = commit_without_intruder(&rafts).await;
    // Node 3 campaigns (it hears no leader): both nodes refuse its certificate.
    for t in &transports[..2] {
        wait_for("the intruder's client certificate refused", t, |m| m.client_certs_refused > 0).await;
    }
    // The leader dials node 3 and refuses its server certificate.
    wait_for("the intruder's server certificate refused", &transports[leader], |m| m.server_certs_refused > 0).await;
    // (Node 3 may see its handshakes complete: in TLS 1.3 the client finishes before the
    // server checked its certificate; the server then closes the connection unread.)
    assert_isolated(&rafts, &transports, leader);
    for r in &rafts {
        let _ = r.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_naming_another_node_is_refused() {
    let ca = DevCa::generate().unwrap();
    // A certificate of the cluster CA, but for node 4, used by node 3.
    let tls3 = ca.tls_config(4).unwrap();
    let checked = QuicTransport::bind(localhost(), 3, quic_options(tls3.clone(), &Config::new(3)));
    assert!(matches!(checked, Err(raft_quic::QuicError::Tls(raft_quic::TlsError::Identity { expected: 3, .. }))));
    let (rafts, transports) = cluster_with_intruder(&ca, tls3).await;
    let leader = commit_without_intruder(&rafts).await;
    // Node 3's streams claim node 3 over a connection authenticated as node 4.
    for t in &transports[..2] {
        wait_for("the intruder's streams refused", t, |m| m.sender_mismatch > 0).await;
    }
    // Dialling node-3.raft, the leader finds a certificate for node-4.raft.
    wait_for("the intruder's server certificate refused", &transports[leader], |m| m.server_certs_refused > 0).await;
    assert_isolated(&rafts, &transports, leader);
    for r in &rafts {
        let _ = r.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_naming_no_node_is_refused() {
    init_tracing();
    let ca = DevCa::generate().unwrap();
    let (raft, t1) = single_node(&ca).await;
    let anonymous = ca.tls_config_with(ca.cert_for_names(vec!["example.org".into()]).unwrap()).unwrap();
    assert!(QuicTransport::bind(localhost(), 5, quic_options(anonymous.clone(), &Config::new(5))).is_err());
    let t5 = QuicTransport::bind_unchecked(localhost(), 5, quic_options(anonymous, &Config::new(5))).expect("bind");
    // The handshake succeeds (the CA signed it), then node 1 closes the connection.
    let conn = t5.raw_connection(1, t1.local_addr()).await.expect("handshake");
    let _ = conn.closed().await;
    wait_for("the anonymous certificate refused", &t1, |m| m.identities_refused == 1).await;
    assert_eq!(t1.metrics().connections_accepted, 0);
    let _ = raft.shutdown().await;
}

/// A single-node cluster (node 1, leading) over QUIC.
async fn single_node(ca: &DevCa) -> (Raft<Journal>, QuicTransport) {
    let t1 = bind_retrying(localhost(), 1, quic_options(ca.tls_config(1).unwrap(), &Config::new(1))).await;
    let raft = start_raft(Config::new(1), Options::bootstrap([(1, info(t1.local_addr()))]), t1.clone()).await;
    eventually("node 1 leads", || {
        let s = raft.status();
        async move { s.role == raft_core::Role::Leader }
    })
    .await;
    (raft, t1)
}

fn preamble(kind: StreamKind, cluster_id: u64, from: NodeId, to: NodeId) -> Vec<u8> {
    Preamble { kind, cluster_id, from, to }.encode()
}

fn framed(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(payload, &mut out);
    out
}

/// A heartbeat of term 0: stale for any node, so the core drops it without a change.
fn heartbeat(from: NodeId, to: NodeId) -> Message {
    Message { from, to, term: 0, body: MessageBody::Heartbeat { commit: 0, seq: 1 } }
}

/// Opens a stream on a new connection from node 3 to node 1 and writes `bytes`.
async fn write_stream(t3: &QuicTransport, to: SocketAddr, bytes: Vec<u8>) {
    let conn = t3.raw_connection(1, to).await.expect("handshake");
    let mut send = conn.open_uni().await.expect("a stream");
    let _ = send.write_all(&bytes).await;
    let _ = send.finish();
    // The node closes the connection of a refused stream; a bounded wait otherwise.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), conn.closed()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_and_preambles_are_counted_without_panic() {
    init_tracing();
    let ca = DevCa::generate().unwrap();
    let (raft, t1) = single_node(&ca).await;
    let addr = t1.local_addr();
    let t3 = bind_retrying(localhost(), 3, quic_options(ca.tls_config(3).unwrap(), &Config::new(3))).await;

    // One stream from an authenticated peer, with a frame of each kind of fault.
    let mut bytes = preamble(StreamKind::Control, CLUSTER, 3, 1);
    bytes.extend(framed(&[raft_core::WIRE_VERSION, 0xff, 0xff, 0xff, 0xff, 0xff]));
    let mut old = heartbeat(3, 1).encode();
    old[0] = raft_core::WIRE_VERSION.wrapping_add(1);
    bytes.extend(framed(&old));
    bytes.extend(framed(&heartbeat(2, 1).encode()));
    bytes.extend(framed(&heartbeat(3, 9).encode()));
    bytes.extend(framed(&heartbeat(3, 1).encode()));
    let conn = t3.raw_connection(1, addr).await.expect("handshake");
    let mut send = conn.open_uni().await.expect("a stream");
    send.write_all(&bytes).await.expect("written");
    send.finish().expect("finished");
    wait_for("the good frame delivered", &t1, |m| m.messages_delivered == 1).await;
    let m = t1.metrics();
    assert_eq!(
        (m.malformed_messages, m.wrong_wire_version, m.sender_mismatch, m.wrong_receiver),
        (1, 1, 1, 1),
        "{m:?}"
    );
    // The good frame reached the core, which dropped it as stale: no state change.
    assert!(raft.core_metrics().await.expect("running").dropped_stale_term >= 1);

    // A length above the limit: framing is lost, the connection is closed.
    let mut huge = preamble(StreamKind::Bulk, CLUSTER, 3, 1);
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    huge.extend_from_slice(&[0; 64]);
    let mut send = conn.open_uni().await.expect("a stream");
    let _ = send.write_all(&huge).await;
    let _ = send.finish();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), conn.closed()).await;
    wait_for("the oversized frame refused", &t1, |m| m.oversized_frames == 1).await;

    // Preambles refused, each on a connection of its own.
    write_stream(&t3, addr, preamble(StreamKind::Control, CLUSTER + 1, 3, 1)).await;
    wait_for("the other cluster refused", &t1, |m| m.wrong_cluster == 1).await;
    let mut future = preamble(StreamKind::Control, CLUSTER, 3, 1);
    future[raft_quic::LENGTH_PREFIX + 4] = raft_quic::PROTOCOL_VERSION + 1;
    write_stream(&t3, addr, future).await;
    wait_for("the other protocol version refused", &t1, |m| m.wrong_protocol_version == 1).await;
    write_stream(&t3, addr, framed(b"GET / HTTP/1.1\r\n")).await;
    wait_for("a foreign protocol refused", &t1, |m| m.malformed_preambles == 1).await;
    write_stream(&t3, addr, preamble(StreamKind::Snapshot, CLUSTER, 3, 1)).await;
    wait_for("a snapshot preamble on a message stream refused", &t1, |m| m.malformed_preambles == 2).await;
    write_stream(&t3, addr, preamble(StreamKind::Control, CLUSTER, 2, 1)).await;
    wait_for("a preamble claiming node 2 refused", &t1, |m| m.sender_mismatch == 2).await;
    write_stream(&t3, addr, preamble(StreamKind::Control, CLUSTER, 3, 7)).await;
    wait_for("a preamble for node 7 refused", &t1, |m| m.wrong_receiver == 2).await;
    let mut truncated = (1000u32).to_le_bytes().to_vec();
    truncated.extend_from_slice(b"RFTQ");
    write_stream(&t3, addr, truncated).await;
    wait_for("a preamble frame above its limit refused", &t1, |m| m.oversized_frames == 2).await;

    // The node is unharmed: still the leader, still committing.
    assert_eq!(raft.status().role, raft_core::Role::Leader);
    raft.propose(cmd(1, 8)).await.expect("still commits");
    let m = t1.metrics();
    assert_eq!(m.messages_delivered, 1, "{m:?}");
    let _ = raft.shutdown().await;
}

/// Writes a snapshot stream (preamble, `header`, `data`) from node 3 to node 1 and returns
/// node 1's answer.
async fn snapshot_answer(
    t3: &QuicTransport,
    to: SocketAddr,
    header: &raft_core::SnapshotHeader,
    data: &[u8],
) -> Vec<u8> {
    let conn = t3.raw_connection(1, to).await.expect("handshake");
    let (mut send, mut recv) = conn.open_bi().await.expect("a stream");
    let mut bytes = preamble(StreamKind::Snapshot, CLUSTER, 3, 1);
    bytes.extend(header.encode());
    bytes.extend_from_slice(data);
    send.write_all(&bytes).await.expect("written");
    send.finish().expect("finished");
    tokio::time::timeout(std::time::Duration::from_secs(10), recv.read_to_end(4096))
        .await
        .expect("an answer in time")
        .expect("an answer")
}

/// A snapshot stream whose header names another sender than the certificate is refused
/// with an answer, counted, and never staged; one that breaks off is refused too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_or_truncated_snapshots_are_refused_with_an_answer() {
    init_tracing();
    let ca = DevCa::generate().unwrap();
    let (raft, t1) = single_node(&ca).await;
    let t3 = bind_retrying(localhost(), 3, quic_options(ca.tls_config(3).unwrap(), &Config::new(3))).await;
    let meta = raft_core::SnapshotMeta { index: 5, term: 1, membership: raft_core::Membership::with_voters([1, 2]) };
    let forged = raft_core::SnapshotHeader { from: 2, to: 1, term: 1, meta: meta.clone() };
    let answer = snapshot_answer(&t3, t1.local_addr(), &forged, b"state").await;
    assert_eq!(answer.first(), Some(&1), "refused: {answer:?}");
    assert!(String::from_utf8_lossy(&answer[5..]).contains("certificate names node 3"), "{answer:?}");
    let m = t1.metrics();
    assert_eq!((m.sender_mismatch, m.snapshot_receive_failures, m.snapshots_received), (1, 1, 0), "{m:?}");

    // A header cut short: the stream ends inside it.
    let conn = t3.raw_connection(1, t1.local_addr()).await.expect("handshake");
    let (mut send, mut recv) = conn.open_bi().await.expect("a stream");
    let mut bytes = preamble(StreamKind::Snapshot, CLUSTER, 3, 1);
    bytes.extend(&forged.encode()[..7]);
    send.write_all(&bytes).await.expect("written");
    send.finish().expect("finished");
    let answer = recv.read_to_end(4096).await.expect("an answer");
    assert_eq!(answer.first(), Some(&1), "refused: {answer:?}");
    wait_for("the truncated snapshot refused", &t1, |m| m.snapshot_receive_failures == 2).await;
    assert_eq!(raft.status().snapshot_index, 0, "nothing was installed");
    let _ = raft.shutdown().await;
}
