//! Fault schedules: the nemesis's plan for the faulty phase of a run, as plain data.
//!
//! A seed draws a schedule with [`draw`]; a fuzzer can build one directly (with the
//! `arbitrary`) and run it with `run_schedule`. Targets are small numbers resolved
//! when the operation runs (modulo the live nodes), so every schedule is valid.

use crate::config::{FaultParams, MS};
use rand::Rng;

/// The shape of a network partition.
#[derive(Copy, Clone, Debug, PartialEq, Eq, arbitrary::Arbitrary)]
pub enum PartitionKind {
    /// Two random groups that cannot talk to each other.
    Symmetric,
    /// One node cannot send to another (but hears it).
    OneWay,
    /// The current leader is cut off from everyone.
    IsolateLeader,
    /// A majority and a minority, the leader in the minority.
    LeaderInMinority,
    /// Two halves that both reach one bridge node but not each other.
    Bridge,
}

/// One step of a fault schedule.
#[derive(Clone, Debug, PartialEq, Eq, arbitrary::Arbitrary)]
pub enum FaultOp {
    /// Let time pass, in milliseconds.
    Wait {
        /// How long.
        ms: u16,
    },
    /// Replace the current partition (healing it after `ms`).
    Partition {
        /// Its shape.
        kind: PartitionKind,
        /// Picks the groups.
        pick: u8,
        /// How long it lasts.
        ms: u16,
    },
    /// Heal every partition now.
    Heal,
    /// Crash a node, restarting it after `down_ms`.
    Crash {
        /// Picks the node (255: the leader).
        node: u8,
        /// How long it stays down.
        down_ms: u16,
        /// Keep a torn prefix of its unsynced writes.
        torn: bool,
    },
    /// Freeze a node (no input at all) for `ms`.
    Freeze {
        /// Picks the node (255: the leader).
        node: u8,
        /// How long.
        ms: u16,
    },
    /// Feed `Input::Pause` to a node, and `Input::Resume` after `ms`.
    Pause {
        /// Picks the node (255: the leader).
        node: u8,
        /// How long.
        ms: u16,
    },
    /// Ask the leader to transfer leadership (to a picked voter, or the best one).
    Transfer {
        /// Picks the target (`None`: let the leader choose).
        to: Option<u8>,
    },
    /// Start a new node and ask the leader to add it as a learner.
    AddLearner,
    /// Ask the leader to promote a learner to voter.
    Promote {
        /// Picks the learner.
        pick: u8,
    },
    /// Ask the leader to remove a voter (only if at least three voters remain).
    Remove {
        /// Picks the voter.
        pick: u8,
    },
    /// Crash a node as `Crash` does (unsynced writes lost), and have its disk also lose
    /// the newest entries it had reported durable, restarting it after `down_ms`. Only
    /// entries every other member holds durably, and none at or below the node's durable
    /// commit index or state machine snapshot, can be lost: so every committed entry is
    /// still on a quorum and no election can go the wrong way, but the leader's match
    /// index for the node is now above what the node holds (the case that once made a
    /// leader probe a follower without end).
    Amnesia {
        /// Picks the node (255: the leader).
        node: u8,
        /// How long it stays down.
        down_ms: u16,
    },
}

/// Draws the schedule of a run's faulty phase, `duration` nanoseconds long, using the
/// fault families switched on in `f`. Later fault models draw from `aux` only, so that
/// adding one leaves `rng`'s draws, and the schedules older seeds name, unchanged.
pub fn draw(rng: &mut impl Rng, aux: &mut impl Rng, f: &FaultParams, duration: u64) -> Vec<FaultOp> {
    let mut kinds: Vec<u8> = Vec::new();
    let mut add = |on: bool, k: u8, weight: usize| {
        if on {
            kinds.extend(std::iter::repeat_n(k, weight));
        }
    };
    add(f.partitions, 0, 3);
    add(f.crashes, 1, 3);
    add(f.freezes, 2, 2);
    add(f.pauses, 3, 1);
    add(f.transfers, 4, 1);
    add(f.churn, 5, 3);
    let mut ops = Vec::new();
    let mut t = 0;
    while t < duration {
        let wait = rng.gen_range(f.nemesis_interval / 4..=f.nemesis_interval * 7 / 4);
        let wait_ms = (wait / MS).clamp(1, u16::MAX as u64);
        t += wait_ms * MS;
        ops.push(FaultOp::Wait { ms: wait_ms as u16 });
        if kinds.is_empty() || t >= duration {
            continue;
        }
        let ms = rng.gen_range(50..2500);
        let node = if rng.gen_bool(0.3) { 255 } else { rng.gen() };
        let op = match kinds[rng.gen_range(0..kinds.len())] {
            0 => {
                if rng.gen_bool(0.15) {
                    FaultOp::Heal
                } else {
                    let kind = [
                        PartitionKind::Symmetric,
                        PartitionKind::OneWay,
                        PartitionKind::IsolateLeader,
                        PartitionKind::LeaderInMinority,
                        PartitionKind::Bridge,
                    ][rng.gen_range(0..5)];
                    FaultOp::Partition { kind, pick: rng.gen(), ms }
                }
            }
            1 => {
                let torn = f.torn_writes && rng.gen_bool(0.5);
                let down_ms = if f.quick_restarts && aux.gen_bool(0.3) { aux.gen_range(1..20) } else { ms };
                if f.amnesia > 0.0 && aux.gen_bool(f.amnesia) {
                    FaultOp::Amnesia { node, down_ms }
                } else {
                    FaultOp::Crash { node, down_ms, torn }
                }
            }
            2 => FaultOp::Freeze { node, ms: ms.min(1200) },
            3 => FaultOp::Pause { node, ms },
            4 => FaultOp::Transfer { to: rng.gen_bool(0.5).then(|| rng.gen()) },
            _ => match rng.gen_range(0..3) {
                0 => FaultOp::AddLearner,
                1 => FaultOp::Promote { pick: rng.gen() },
                _ => FaultOp::Remove { pick: rng.gen() },
            },
        };
        ops.push(op);
    }
    ops
}
