//! The replicated key-value store the simulated clients use: its commands, their byte
//! encoding inside `Payload::Command`, and the state machine that applies them.

use crate::linearizability::{KvInput, KvOutput};
use bytes::Bytes;

/// A write command as stored in the log. `op` makes every command's bytes unique.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// A unique id of the client attempt (so equal writes stay distinguishable in logs).
    pub op: u64,
    /// The key's index.
    pub key: u8,
    /// What to do.
    pub write: Write,
}

/// The two kinds of write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// Set the key.
    Put(u64),
    /// Set the key to `new` if it holds `expected`.
    Cas {
        /// The value the key must hold (`None`: absent).
        expected: Option<u64>,
        /// The value written on success.
        new: u64,
    },
}

const TAG_PUT: u8 = 1;
const TAG_CAS: u8 = 2;
const LEN: usize = 1 + 1 + 8 + 8 + 1 + 8;

impl Command {
    /// Encodes the command: tag, key, op id, and two values, little endian, fixed length.
    pub fn encode(&self) -> Bytes {
        let mut b = Vec::with_capacity(LEN);
        let (tag, a, has, c) = match self.write {
            Write::Put(v) => (TAG_PUT, v, 0, 0),
            Write::Cas { expected, new } => (TAG_CAS, new, u8::from(expected.is_some()), expected.unwrap_or(0)),
        };
        b.push(tag);
        b.push(self.key);
        b.extend_from_slice(&self.op.to_le_bytes());
        b.extend_from_slice(&a.to_le_bytes());
        b.push(has);
        b.extend_from_slice(&c.to_le_bytes());
        Bytes::from(b)
    }

    /// Decodes a command; `None` for bytes no client wrote.
    pub fn decode(b: &[u8]) -> Option<Command> {
        if b.len() != LEN {
            return None;
        }
        let u = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        let (key, op, a, has, c) = (b[1], u(2), u(10), b[18], u(19));
        let write = match (b[0], has) {
            (TAG_PUT, 0) => Write::Put(a),
            (TAG_CAS, 0) => Write::Cas { expected: None, new: a },
            (TAG_CAS, 1) => Write::Cas { expected: Some(c), new: a },
            _ => return None,
        };
        Some(Command { op, key, write })
    }

    /// The command as the linearizability checker sees it.
    pub fn input(&self) -> KvInput {
        let key = key_name(self.key);
        match self.write {
            Write::Put(value) => KvInput::Put { key, value },
            Write::Cas { expected, new } => KvInput::Cas { key, expected, new },
        }
    }
}

/// The name of key number `k`.
pub fn key_name(k: u8) -> String {
    format!("k{k}")
}

/// The state machine: a few keys holding optional values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kv {
    values: Vec<Option<u64>>,
}

impl Kv {
    /// The value of key `k`.
    pub fn get(&self, k: u8) -> Option<u64> {
        self.values.get(k as usize).copied().flatten()
    }

    /// Applies one command and returns what its client is told.
    pub fn apply(&mut self, c: &Command) -> KvOutput {
        let k = c.key as usize;
        if self.values.len() <= k {
            self.values.resize(k + 1, None);
        }
        match c.write {
            Write::Put(v) => {
                self.values[k] = Some(v);
                KvOutput::Put
            }
            Write::Cas { expected, new } => {
                let ok = self.values[k] == expected;
                if ok {
                    self.values[k] = Some(new);
                }
                KvOutput::Cas(ok)
            }
        }
    }

    /// A fingerprint of the whole state (FNV-1a), to compare replicas.
    pub fn fingerprint(&self) -> u64 {
        let mut h = crate::trace::Fnv::default();
        for v in &self.values {
            h.u64(v.map_or(u64::MAX, |x| x.wrapping_add(1)));
        }
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip() {
        for write in [Write::Put(7), Write::Cas { expected: None, new: 3 }, Write::Cas { expected: Some(9), new: 1 }] {
            let c = Command { op: 42, key: 2, write };
            assert_eq!(Command::decode(&c.encode()), Some(c));
        }
        assert_eq!(Command::decode(b"junk"), None);
    }

    #[test]
    fn cas_needs_the_expected_value() {
        let mut kv = Kv::default();
        let cas = |expected, new| Command { op: 0, key: 0, write: Write::Cas { expected, new } };
        assert_eq!(kv.apply(&cas(Some(1), 2)), KvOutput::Cas(false));
        assert_eq!(kv.apply(&cas(None, 2)), KvOutput::Cas(true));
        assert_eq!(kv.get(0), Some(2));
    }
}
