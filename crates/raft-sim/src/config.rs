//! What one simulated run looks like: cluster size, fault rates, client load and planted
//! bugs. Everything is drawn from the seed by [`SimConfig::from_seed`].

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use std::fmt;
use std::str::FromStr;

/// Milliseconds of simulated time, in nanoseconds.
pub const MS: u64 = 1_000_000;

/// A family of faults to inject. A seed draws rates within the chosen family.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Profile {
    /// No faults at all: a healthy cluster under client load.
    None,
    /// Message loss, duplication, reordering and delay spikes.
    Network,
    /// Network partitions of every shape (plus mild message faults).
    Partition,
    /// Crashes and restarts, with torn writes.
    Crash,
    /// Frozen nodes, `Input::Pause` / `Resume` and leader transfers.
    Pause,
    /// Clock drift with lease reads, plus partitions and pauses that stress leases.
    Drift,
    /// Membership changes and snapshots, with crashes.
    Churn,
    /// Every family, each switched on or off by the seed.
    All,
}

impl Profile {
    /// Every profile except `All`, in a fixed order (the seed sweep cycles through them).
    pub const FAMILIES: [Profile; 7] = [
        Profile::None,
        Profile::Network,
        Profile::Partition,
        Profile::Crash,
        Profile::Pause,
        Profile::Drift,
        Profile::Churn,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Profile::None => "none",
            Profile::Network => "network",
            Profile::Partition => "partition",
            Profile::Crash => "crash",
            Profile::Pause => "pause",
            Profile::Drift => "drift",
            Profile::Churn => "churn",
            Profile::All => "all",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [Profile::All].iter().chain(Profile::FAMILIES.iter()).copied().find(|p| p.name() == s).ok_or_else(|| {
            format!("unknown profile {s:?}: use none, network, partition, crash, pause, drift, churn or all")
        })
    }
}

/// Bugs the simulation can plant in its own runtime (never in raft-core) to prove that the
/// checkers catch them.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Bugs {
    /// Storage reports `Input::Persisted` as soon as a persist is requested, before the data
    /// is durable (a crash then loses acknowledged entries).
    pub ack_before_persist: bool,
    /// The network forges a granted vote from every peer a candidate asks.
    pub forge_vote_grants: bool,
    /// Storage forgets the vote on restart. The drawn schedules restart nodes too slowly
    /// to expose it; the planted-bug test runs a hand-written election storm instead.
    pub forget_vote_on_restart: bool,
    /// Nodes answer reads from their local state machine at once, bypassing ReadIndex.
    pub stale_reads: bool,
    /// The runtime restores the state machine from a staged snapshot the core told it to
    /// discard (stale, or already covered).
    pub install_discarded: bool,
    /// User code never hears the configuration a node restarted with (as if the core did
    /// not emit `MembershipLoaded` on restart).
    pub skip_restart_membership: bool,
    /// The core's snapshot transfer timeout is set beyond the run, so a stream lost with
    /// no report leaves its follower waiting for good (an install that never completes).
    pub no_snapshot_timeout: bool,
}

impl Bugs {
    /// True if any bug is planted.
    pub fn any(&self) -> bool {
        self.ack_before_persist
            || self.forge_vote_grants
            || self.forget_vote_on_restart
            || self.stale_reads
            || self.install_discarded
            || self.skip_restart_membership
            || self.no_snapshot_timeout
    }
}

/// Rates of the faults one run injects. Zero (or `false`) switches a fault off.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct FaultParams {
    /// Probability that a message is lost.
    pub loss: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Network delay range, in nanoseconds; a wide range reorders messages.
    pub delay: (u64, u64),
    /// Probability of a delay spike, and its largest extra delay in nanoseconds.
    pub spike: (f64, u64),
    /// Fsync latency range, in nanoseconds.
    pub fsync: (u64, u64),
    /// Mean time between nemesis actions, in nanoseconds.
    pub nemesis_interval: u64,
    /// Partitions (every shape).
    pub partitions: bool,
    /// Crashes and restarts.
    pub crashes: bool,
    /// A crash may keep a torn prefix of the unsynced writes.
    pub torn_writes: bool,
    /// Frozen nodes (no input while frozen, then resumed with a stale view).
    pub freezes: bool,
    /// `Input::Pause` / `Input::Resume`.
    pub pauses: bool,
    /// Leader transfers.
    pub transfers: bool,
    /// Membership changes (add learner, promote, remove).
    pub churn: bool,
    /// Largest clock rate error, in parts per million (each node runs at 1 ± this).
    pub drift_ppm: u64,
    /// Snapshot every this many applied entries (0: never).
    pub snapshot_every: u64,
    /// Probability that a message reaching a crashed node is held (in a switch, a socket
    /// buffer, a retransmission) and delivered to its next incarnation instead of lost.
    pub survive_restart: f64,
    /// Some crashes restart within 1–20 ms, inside an election, as a supervisor would.
    pub quick_restarts: bool,
    /// Probability that creating a snapshot fails, or that a snapshot stream is lost
    /// (silently, or reported as failed).
    pub snapshot_faults: f64,
    /// Probability that a crash is an amnesia crash: the disk also loses entries it had
    /// reported durable (a write cache that lied about fsync), as far as Raft's safety
    /// survives it (see `FaultOp::Amnesia`).
    pub amnesia: f64,
}

impl FaultParams {
    /// No faults.
    pub fn none() -> Self {
        FaultParams {
            loss: 0.0,
            duplicate: 0.0,
            delay: (MS, 5 * MS),
            spike: (0.0, 0),
            fsync: (MS / 10, 2 * MS),
            nemesis_interval: 1000 * MS,
            partitions: false,
            crashes: false,
            torn_writes: false,
            freezes: false,
            pauses: false,
            transfers: false,
            churn: false,
            drift_ppm: 0,
            survive_restart: 0.0,
            quick_restarts: false,
            snapshot_every: 0,
            snapshot_faults: 0.0,
            amnesia: 0.0,
        }
    }

    /// The number of fault families switched on (for summaries).
    pub fn families(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.loss > 0.0 || self.duplicate > 0.0 || self.spike.0 > 0.0 {
            v.push("net");
        }
        for (on, name) in [
            (self.partitions, "partition"),
            (self.crashes, "crash"),
            (self.torn_writes, "torn"),
            (self.freezes, "freeze"),
            (self.pauses, "pause"),
            (self.transfers, "transfer"),
            (self.churn, "churn"),
            (self.drift_ppm > 0, "drift"),
            (self.snapshot_every > 0, "snapshot"),
            (self.amnesia > 0.0, "amnesia"),
        ] {
            if on {
                v.push(name);
            }
        }
        v
    }
}

/// Everything that defines one run. Two runs with equal configs are identical.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The seed of the run's random generator.
    pub seed: u64,
    /// The profile the faults were drawn from (for replay commands).
    pub profile: Profile,
    /// Founding voters (3, 5 or 7).
    pub nodes: usize,
    /// Fault rates.
    pub faults: FaultParams,
    /// Concurrent clients.
    pub clients: usize,
    /// Distinct keys (few keys, many conflicts).
    pub keys: u8,
    /// Length of the phase with faults, in nanoseconds.
    pub fault_time: u64,
    /// Length of the final, fault-free phase, in nanoseconds.
    pub heal_time: u64,
    /// A leader must exist this long after faults heal.
    pub leader_bound: u64,
    /// Client request timeout, in nanoseconds.
    pub client_timeout: u64,
    /// Serve leader reads from a lease.
    pub lease_reads: bool,
    /// Run the nodes with CheckQuorum (and so with its restart vote guard). Every drawn
    /// configuration has it; `--no-check-quorum` and the sweep's runs without it switch it
    /// off. Without it, lease reads are off too (raft-core requires CheckQuorum for them).
    pub check_quorum: bool,
    /// Planted bugs (tests only).
    pub bugs: Bugs,
    /// How much to record.
    pub trace: TraceLevel,
    /// Record a timeline, showing messages of this kind (e.g. "Vote"; empty: none).
    pub timeline: Option<String>,
    /// Write a TLA+ trace of the run (for spec/RaftTrace.tla) to this path, at most this
    /// many events (`raft-sim replay SEED --tla-trace FILE`). Off: nothing is recorded.
    pub tla_trace: Option<(String, usize)>,
}

/// How much a run records about itself.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TraceLevel {
    /// Keep the last events in a ring (printed on failure).
    Ring,
    /// Print every event to standard error as it happens.
    Full,
}

impl SimConfig {
    /// A fault-free three-node configuration with default timing (a starting point for
    /// hand-written schedules).
    pub fn basic(seed: u64, nodes: usize) -> Self {
        SimConfig {
            seed,
            profile: Profile::None,
            nodes,
            faults: FaultParams::none(),
            clients: 4,
            keys: 3,
            fault_time: 6_000 * MS,
            heal_time: 6_000 * MS,
            leader_bound: 3_000 * MS,
            client_timeout: 1_000 * MS,
            lease_reads: false,
            check_quorum: true,
            bugs: Bugs::default(),
            trace: TraceLevel::Ring,
            timeline: None,
            tla_trace: None,
        }
    }

    /// Draws a whole configuration from `seed` within `profile`: cluster size, which fault
    /// families are on and at what rates, client load.
    pub fn from_seed(seed: u64, profile: Profile) -> Self {
        let mut rng = Pcg64::seed_from_u64(seed ^ 0x5EED_C0DE_F00D_D00D);
        let nodes = [3, 3, 5, 5, 7][rng.gen_range(0..5)];
        let mut cfg = SimConfig::basic(seed, nodes);
        cfg.profile = profile;
        cfg.clients = rng.gen_range(2..=5);
        cfg.keys = rng.gen_range(1..=4);
        cfg.fault_time = rng.gen_range(4_000..=8_000) * MS;
        let f = &mut cfg.faults;
        let all = profile == Profile::All;
        let on = |family: Profile, rng: &mut Pcg64| profile == family || (all && rng.gen_bool(0.5));
        if on(Profile::Network, &mut rng) {
            f.loss = rng.gen_range(0.0..0.2);
            f.duplicate = rng.gen_range(0.0..0.1);
            f.delay = (rng.gen_range(0..2) * MS, rng.gen_range(3..30) * MS);
            f.spike = (rng.gen_range(0.0..0.05), rng.gen_range(50..600) * MS);
        }
        if on(Profile::Partition, &mut rng) {
            f.partitions = true;
            f.loss = f.loss.max(rng.gen_range(0.0..0.02));
        }
        if on(Profile::Crash, &mut rng) {
            f.crashes = true;
            f.torn_writes = rng.gen_bool(0.7);
            f.fsync = (rng.gen_range(0..1000) * MS / 1000, rng.gen_range(1..20) * MS);
        }
        if on(Profile::Pause, &mut rng) {
            f.freezes = true;
            f.pauses = true;
            f.transfers = true;
        }
        if on(Profile::Drift, &mut rng) {
            f.drift_ppm = rng.gen_range(1_000..50_000);
            f.partitions |= rng.gen_bool(0.5);
            f.freezes |= rng.gen_bool(0.5);
        }
        if on(Profile::Churn, &mut rng) {
            f.churn = true;
            f.crashes |= rng.gen_bool(0.5);
            f.snapshot_every = rng.gen_range(5..60);
        } else if rng.gen_bool(0.3) {
            f.snapshot_every = rng.gen_range(10..200);
        }
        f.nemesis_interval = rng.gen_range(100..800) * MS;
        cfg.lease_reads = f.drift_ppm > 0 || rng.gen_bool(0.3);
        // Fault models added later draw from a stream of their own, so the draws above
        // (and the runs they describe) stay what they were for every seed.
        let mut aux = Pcg64::seed_from_u64(seed ^ 0x0A0C_5EED_0000_0001);
        let f = &mut cfg.faults;
        if f.crashes {
            f.survive_restart = if aux.gen_bool(0.7) { aux.gen_range(0.0..0.5) } else { 0.0 };
            f.quick_restarts = aux.gen_bool(0.5);
        }
        if f.snapshot_every > 0 && aux.gen_bool(0.5) {
            f.snapshot_faults = aux.gen_range(0.05..0.3);
        }
        if f.crashes && aux.gen_bool(0.5) {
            f.amnesia = aux.gen_range(0.1..0.5);
        }
        cfg
    }

    /// The command that replays this run with full tracing.
    pub fn replay_command(&self) -> String {
        let mut cmd = format!(
            "cargo run -p raft-sim --release -- replay {} --profile {} --nodes {}",
            self.seed, self.profile, self.nodes
        );
        for (on, name) in [
            (self.bugs.ack_before_persist, "ack-before-persist"),
            (self.bugs.forge_vote_grants, "forge-vote-grants"),
            (self.bugs.forget_vote_on_restart, "forget-vote-on-restart"),
            (self.bugs.stale_reads, "stale-reads"),
            (self.bugs.install_discarded, "install-discarded"),
            (self.bugs.skip_restart_membership, "skip-restart-membership"),
            (self.bugs.no_snapshot_timeout, "no-snapshot-timeout"),
        ] {
            if on {
                cmd.push_str(" --bug ");
                cmd.push_str(name);
            }
        }
        if !self.check_quorum {
            cmd.push_str(" --no-check-quorum");
        }
        cmd
    }

    /// Plants the bug named `name` (as printed by `replay_command`).
    pub fn plant(&mut self, name: &str) -> Result<(), String> {
        match name {
            "ack-before-persist" => self.bugs.ack_before_persist = true,
            "forge-vote-grants" => self.bugs.forge_vote_grants = true,
            "forget-vote-on-restart" => self.bugs.forget_vote_on_restart = true,
            "stale-reads" => self.bugs.stale_reads = true,
            "install-discarded" => self.bugs.install_discarded = true,
            "skip-restart-membership" => self.bugs.skip_restart_membership = true,
            "no-snapshot-timeout" => self.bugs.no_snapshot_timeout = true,
            _ => {
                return Err(format!(
                    "unknown bug {name:?}: use ack-before-persist, forge-vote-grants, forget-vote-on-restart, \
                     stale-reads, install-discarded, skip-restart-membership or no-snapshot-timeout"
                ))
            }
        }
        Ok(())
    }

    /// Changes the cluster size (the seed draws one otherwise).
    pub fn with_nodes(mut self, nodes: Option<usize>) -> Self {
        if let Some(n) = nodes {
            self.nodes = n;
        }
        self
    }
}
