//! A replicated counter on three nodes talking QUIC with mutual TLS on 127.0.0.1: a
//! development CA is generated at start, so it runs with no setup. It adds to the counter
//! through whichever node leads, reads it back linearizably, prints every node's value and
//! transport counters, and stops.
//!
//! Run it with `cargo run -p raft-quic --example quic_counter`. Across machines, give each
//! node its own process, bind its address, and load the certificates from files
//! (`TlsConfig::from_pem_files`); see `docs/protocol.md` (section 4).

use raft_core::{Config, NodeInfo};
use raft_quic::dev_certs::DevCa;
use raft_quic::{QuicOptions, QuicTransport};
use raft_tokio::{Command, Consistency, Options, ProposeError, Raft, StateMachine};
use std::io::{Read, Write};
use std::time::Duration;

/// A number; commands are `i64` additions, each answered with the new value.
#[derive(Default)]
struct Counter(i64);

impl StateMachine for Counter {
    type Response = i64;
    type Query = ();
    type QueryResponse = i64;

    fn apply(&mut self, commands: &[Command]) -> Vec<i64> {
        commands
            .iter()
            .map(|c| {
                self.0 += i64::from_le_bytes(c.data[..].try_into().unwrap_or([0; 8]));
                self.0
            })
            .collect()
    }

    fn query(&self, (): ()) -> i64 {
        self.0
    }

    fn snapshot(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        out.write_all(&self.0.to_le_bytes())
    }

    fn restore(&mut self, input: &mut dyn Read) -> std::io::Result<()> {
        let mut b = [0; 8];
        input.read_exact(&mut b)?;
        self.0 = i64::from_le_bytes(b);
        Ok(())
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ca = DevCa::generate()?;
    // Bind every node first (port 0: the system picks), so that the members' addresses
    // are known before any node starts.
    let mut transports = Vec::new();
    for id in 1..=3u64 {
        let options = QuicOptions::new(0xC0_FFEE, ca.tls_config(id)?);
        transports.push(QuicTransport::bind("127.0.0.1:0".parse()?, id, options)?);
    }
    let members: Vec<(u64, NodeInfo)> = transports.iter().map(|t| (t.id(), t.node_info())).collect();
    let mut nodes = Vec::new();
    for t in &transports {
        let (log, snapshots) = raft_storage::mem_stores();
        let options = Options::bootstrap(members.clone());
        nodes.push(Raft::start(Config::new(t.id()), options, log, snapshots, Counter(0), t.clone()).await?);
    }
    let mut at = 0;
    for add in 1..=10i64 {
        let value = loop {
            match nodes[at].propose(add.to_le_bytes().to_vec()).await {
                Ok(value) => break value,
                Err(ProposeError::NotLeader { leader: Some(l), .. }) => at = (l - 1) as usize,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    at = (at + 1) % nodes.len();
                }
            }
        };
        println!("node {} added {add}: counter is {value}", at + 1);
    }
    println!("linearizable read at node {}: {}", at + 1, nodes[at].read_with((), Consistency::Linearizable).await?);
    for (node, t) in nodes.iter().zip(&transports) {
        let m = t.metrics();
        println!(
            "node {} at {}: local value {}, {} messages sent, {} delivered, {} refused certificates",
            t.id(),
            t.local_addr(),
            node.read_with((), Consistency::Local).await?,
            m.messages_sent,
            m.messages_delivered,
            m.client_certs_refused + m.server_certs_refused + m.identities_refused,
        );
    }
    for node in &nodes {
        node.shutdown().await?;
    }
    Ok(())
}
