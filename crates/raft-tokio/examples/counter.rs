//! A replicated counter on three in-process nodes: start them, add to the counter through
//! whichever node leads, read it back linearizably, print what every node holds, stop.
//!
//! Run it with `cargo run -p raft-tokio --example counter`. To start your own service,
//! replace `Counter` with your state machine, the memory stores with `raft_sled::open`,
//! and the channel transport with a network one.

use raft_core::{Config, NodeInfo};
use raft_tokio::{ChannelNetwork, Command, Consistency, Options, ProposeError, Raft, StateMachine};
use std::io::{Read, Write};

/// The state machine: a number. Commands are `i64` additions; each answers the new value.
#[derive(Default)]
struct Counter(i64);

impl StateMachine for Counter {
    type Response = i64;
    type Query = ();
    type QueryResponse = i64;

    fn apply(&mut self, commands: &[Command]) -> Vec<i64> {
        let add = |c: &Command| i64::from_le_bytes(c.data[..].try_into().unwrap_or([0; 8]));
        commands
            .iter()
            .map(|c| {
                self.0 += add(c);
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
        let mut bytes = [0; 8];
        input.read_exact(&mut bytes)?;
        self.0 = i64::from_le_bytes(bytes);
        Ok(())
    }
}

/// Starts three nodes, adds 1..=10 through whichever leads, and prints every node's sum.
#[tokio::main]
pub async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let members: Vec<_> = (1..=3).map(|id| (id, NodeInfo::new(format!("node-{id}")))).collect();
    let network = ChannelNetwork::new(1);
    let mut nodes = Vec::new();
    for (id, address) in &members {
        let (log, snapshots) = raft_storage::mem_stores();
        let transport = network.transport(*id, address.clone());
        let mut options = Options::bootstrap(members.clone());
        // The last leader standing has nobody to hand over to and waits this long.
        options.shutdown_timeout = std::time::Duration::from_secs(1);
        nodes.push(Raft::start(Config::new(*id), options, log, snapshots, Counter::default(), transport).await?);
    }

    // Propose at node 1; a follower answers NotLeader with the leader's id: go there.
    let mut at = 0;
    for add in 1..=10i64 {
        loop {
            match nodes[at].propose(add.to_le_bytes().to_vec()).await {
                Ok(value) => break println!("+{add} -> {value} (through node {})", nodes[at].id()),
                Err(ProposeError::NotLeader { leader: Some(l), .. }) => at = (l - 1) as usize,
                // No leader yet: wait for the election.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
    }
    println!("linearizable read at the leader: {}", nodes[at].read(()).await?);

    // A follower read asks the leader how far it committed and waits until this node has
    // applied that far, so it sees every acknowledged write (a `Local` read might not yet).
    for node in &nodes {
        let value = node.read_with((), Consistency::FollowerLinearizable).await?;
        println!("node {}: counter = {value}", node.id());
        assert_eq!(value, 55, "every node holds 1 + 2 + ... + 10");
    }
    for node in &nodes {
        node.shutdown().await?;
    }
    Ok(())
}
