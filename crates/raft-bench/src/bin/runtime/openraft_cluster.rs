//! openraft 0.9 (crates.io) set up the way its own cluster benchmark does: an in-memory
//! log store (a `BTreeMap` behind a lock, flushed at once), a state machine that only
//! records the last applied log id, and an in-process network that calls the target
//! node's `Raft` methods directly. Three nodes, node 1 initializes the cluster.

use super::{Load, Propose};
use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Config, Entry, EntryPayload, LogId, OptionalSend, RaftLogReader, RaftSnapshotBuilder, SnapshotMeta,
    SnapshotPolicy, StorageError, StoredMembership, Vote,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::future::Future;
use std::io::Cursor;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type NodeId = u64;

/// A proposal: 16 bytes, like the raft-tokio side's.
#[derive(Clone, Debug)]
pub struct Req(#[allow(dead_code)] [u8; 16]);

/// The answer: nothing.
#[derive(Clone, Debug)]
pub struct Resp;

openraft::declare_raft_types!(
    /// The benchmark's types.
    pub TypeConfig:
        D = Req,
        R = Resp,
);

type Raft = openraft::Raft<TypeConfig>;

#[derive(Default)]
struct LogInner {
    vote: Option<Vote<NodeId>>,
    log: BTreeMap<u64, Entry<TypeConfig>>,
    last_purged: Option<LogId<NodeId>>,
}

/// The log store: shared by the writer and its readers.
#[derive(Clone, Default)]
struct LogStore(Arc<Mutex<LogInner>>);

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let inner = self.0.lock().expect("lock");
        Ok(inner.log.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let inner = self.0.lock().expect("lock");
        let last = inner.log.values().next_back().map(|e| e.log_id).or(inner.last_purged);
        Ok(LogState { last_purged_log_id: inner.last_purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.0.lock().expect("lock").vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.0.lock().expect("lock").vote)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        {
            let mut inner = self.0.lock().expect("lock");
            inner.log.extend(entries.into_iter().map(|e| (e.log_id.index, e)));
        }
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.0.lock().expect("lock");
        inner.log.split_off(&log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.0.lock().expect("lock");
        inner.last_purged = Some(log_id);
        inner.log = inner.log.split_off(&(log_id.index + 1));
        Ok(())
    }
}

#[derive(Default)]
struct SmInner {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    snapshot: Option<SnapshotMeta<NodeId, BasicNode>>,
    snapshots: u64,
}

/// The state machine: the last applied log id and membership, nothing else.
#[derive(Clone, Default)]
struct StateMachine(Arc<Mutex<SmInner>>);

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let mut sm = self.0.lock().expect("lock");
        sm.snapshots += 1;
        let meta = SnapshotMeta {
            last_log_id: sm.last_applied,
            last_membership: sm.membership.clone(),
            snapshot_id: format!("{}", sm.snapshots),
        };
        sm.snapshot = Some(meta.clone());
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(Vec::new())) })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>> {
        let sm = self.0.lock().expect("lock");
        Ok((sm.last_applied, sm.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Resp>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut sm = self.0.lock().expect("lock");
        let mut out = Vec::new();
        for e in entries {
            sm.last_applied = Some(e.log_id);
            if let EntryPayload::Membership(m) = e.payload {
                sm.membership = StoredMembership::new(Some(e.log_id), m);
            }
            out.push(Resp);
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        _snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let mut sm = self.0.lock().expect("lock");
        sm.last_applied = meta.last_log_id;
        sm.membership = meta.last_membership.clone();
        sm.snapshot = Some(meta.clone());
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let sm = self.0.lock().expect("lock");
        Ok(sm.snapshot.clone().map(|meta| Snapshot { meta, snapshot: Box::new(Cursor::new(Vec::new())) }))
    }
}

/// The nodes by id, for the network to call into.
#[derive(Clone, Default)]
struct Router(Arc<Mutex<BTreeMap<NodeId, Raft>>>);

impl Router {
    fn get(&self, id: NodeId) -> Raft {
        self.0.lock().expect("lock").get(&id).cloned().expect("a known node")
    }
}

/// One node's connection to `target`: a direct call.
struct Connection {
    target: NodeId,
    router: Router,
}

impl RaftNetworkFactory<TypeConfig> for Router {
    type Network = Connection;
    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Connection {
        Connection { target, router: self.clone() }
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let raft = self.router.get(self.target);
        raft.append_entries(rpc).await.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>>
    {
        let raft = self.router.get(self.target);
        raft.install_snapshot(rpc).await.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let raft = self.router.get(self.target);
        raft.vote(rpc).await.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

/// Starts a three-node openraft cluster, runs the load at `proposers`, shuts it down.
pub async fn bench<F, Fut>(proposers: usize, secs: f64, load: F) -> Load
where
    F: FnOnce(Propose, usize, f64) -> Fut,
    Fut: Future<Output = Load>,
{
    let config = Config {
        heartbeat_interval: 50,
        election_timeout_min: 150,
        election_timeout_max: 300,
        max_payload_entries: 1024,
        purge_batch_size: 1024,
        // Like raft-core's default snapshot policy, so neither side compacts in a run.
        snapshot_policy: SnapshotPolicy::LogsSinceLast(100_000),
        ..Default::default()
    };
    let config = Arc::new(config.validate().expect("valid openraft config"));
    let router = Router::default();
    for id in 1..=3u64 {
        let raft = Raft::new(id, config.clone(), router.clone(), LogStore::default(), StateMachine::default())
            .await
            .expect("openraft node");
        router.0.lock().expect("lock").insert(id, raft);
    }
    let leader = router.get(1);
    leader.initialize(BTreeSet::from([1u64, 2, 3])).await.expect("initialize");
    leader
        .wait(Some(Duration::from_secs(10)))
        .state(openraft::ServerState::Leader, "node 1 leads")
        .await
        .expect("node 1 elected");
    let propose: Propose = Arc::new(move || {
        let leader = leader.clone();
        Box::pin(async move { leader.client_write(Req(*super::PAYLOAD)).await.is_ok() })
    });
    let result = load(propose, proposers, secs).await;
    let nodes: Vec<Raft> = router.0.lock().expect("lock").values().cloned().collect();
    for raft in nodes {
        let _ = raft.shutdown().await;
    }
    result
}
