//! The durability witness: a small record of what the last sync made durable, kept outside
//! sled so that sled's recovery cannot truncate it together with the data it vouches for.
//!
//! The file `witness` holds two slots of [`WITNESS_SLOT`] bytes. Each sync writes the next
//! generation into the slot the previous one did not use (`generation % 2`) and
//! `fdatasync`s the file; the file never changes size, so the fdatasync writes one block
//! and no metadata. A slot is `WIT2` ‖ payload length (u32 LE) ‖ CRC-32 of the payload
//! (u32 LE) ‖ postcard payload, then zeros. At open the newest generation wins; a damaged
//! slot, a wrong size or a missing file refuses the store (`StorageError::CorruptWitness`).

use raft_core::{HardState, Index, Term};
use raft_storage::StorageError;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The witness file's name inside the store directory.
pub const WITNESS_FILE: &str = "witness";
/// The size of each of the witness file's two slots, in bytes (the file is twice that).
pub const WITNESS_SLOT: usize = 4096;
/// Version 2: since the snapshot store has its own manifest, the witness no longer records
/// the snapshot data's index. A version-1 witness is refused as damaged.
const MAGIC: &[u8; 4] = b"WIT2";
const HEADER: usize = 12;

/// What the last successful sync made durable.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Witness {
    /// Increases by one per write; the newer slot holds the higher one.
    pub(crate) generation: u64,
    /// The last log index made durable (or the snapshot point's index for an empty log).
    /// Lowered, durably, before a truncation or a dropped log removes synced entries.
    pub(crate) synced_index: Index,
    /// The term of the entry at `synced_index` (the point's term at the point).
    pub(crate) synced_term: Term,
    /// The synced hard state.
    pub(crate) hard_state: HardState,
    /// The synced snapshot point's index, if a point was recorded.
    pub(crate) point_index: Option<Index>,
}

impl Witness {
    /// The same claims, ignoring the generation.
    pub(crate) fn same_claims(&self, other: &Witness) -> bool {
        Witness { generation: 0, ..self.clone() } == Witness { generation: 0, ..other.clone() }
    }
}

fn slot_bytes(w: &Witness) -> Vec<u8> {
    let payload = postcard::to_allocvec(w).expect("postcard encodes plain data");
    assert!(payload.len() + HEADER <= WITNESS_SLOT, "a witness record is {} bytes", payload.len());
    let mut out = Vec::with_capacity(WITNESS_SLOT);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out.resize(WITNESS_SLOT, 0);
    out
}

fn decode_slot(bytes: &[u8]) -> Result<Witness, String> {
    if &bytes[..4] == b"WIT1" {
        return Err("a version-1 witness, from before the storage split: this store cannot be opened by \
                    this version"
            .into());
    }
    if &bytes[..4] != MAGIC {
        return Err("bad magic".into());
    }
    let len = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")) as usize;
    if len > WITNESS_SLOT - HEADER {
        return Err(format!("payload length {len} too large"));
    }
    let stored = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    let payload = &bytes[HEADER..HEADER + len];
    let computed = crc32fast::hash(payload);
    if stored != computed {
        return Err(format!("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"));
    }
    if bytes[HEADER + len..].iter().any(|b| *b != 0) {
        return Err("bytes after the record".into());
    }
    postcard::from_bytes(payload).map_err(|e| format!("undecodable: {e}"))
}

/// The open witness file and its newest record.
#[derive(Debug)]
pub(crate) struct WitnessFile {
    path: PathBuf,
    file: File,
    pub(crate) current: Witness,
}

impl WitnessFile {
    /// Creates the witness of a new, empty store atomically (temporary file, fsync,
    /// rename, directory fsync).
    pub(crate) fn create(dir: &Path) -> Result<WitnessFile, StorageError> {
        let path = dir.join(WITNESS_FILE);
        let tmp = dir.join(format!("{WITNESS_FILE}.tmp"));
        let io = |path: &Path, op| {
            let path = path.to_path_buf();
            move |source| StorageError::Io { path, op, source }
        };
        let first = Witness::default();
        let mut bytes = slot_bytes(&first);
        bytes.extend_from_slice(&slot_bytes(&first));
        let mut f = File::create(&tmp).map_err(io(&tmp, "creating the durability witness"))?;
        f.write_all(&bytes).map_err(io(&tmp, "writing the durability witness"))?;
        f.sync_all().map_err(io(&tmp, "fsyncing the durability witness"))?;
        drop(f);
        fs::rename(&tmp, &path).map_err(io(&path, "renaming the durability witness into place"))?;
        crate::snapshot::sync_dir(dir)?;
        Self::open(&path)
    }

    /// Opens and reads the witness: both copies must be intact; the newer one counts.
    pub(crate) fn open(path: &Path) -> Result<WitnessFile, StorageError> {
        let corrupt = |reason: String| StorageError::CorruptWitness { path: path.to_path_buf(), reason };
        let file = File::options()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| corrupt(format!("cannot open it ({e}); it vouches for the log, which is present")))?;
        let bytes = fs::read(path).map_err(|e| corrupt(format!("cannot read it: {e}")))?;
        if bytes.len() != 2 * WITNESS_SLOT {
            return Err(corrupt(format!(
                "{} bytes, expected {}; neither copy can be trusted to say which indexes were synced",
                bytes.len(),
                2 * WITNESS_SLOT
            )));
        }
        let slots = [decode_slot(&bytes[..WITNESS_SLOT]), decode_slot(&bytes[WITNESS_SLOT..])];
        match slots {
            [Ok(a), Ok(b)] => {
                let current = if b.generation > a.generation { b } else { a };
                Ok(WitnessFile { path: path.to_path_buf(), file, current })
            }
            [Err(e), Ok(w)] | [Ok(w), Err(e)] => {
                let bad = if matches!(slots_bad_first(&bytes), Some(0)) { 0 } else { 1 };
                Err(corrupt(format!(
                    "copy {bad} is damaged ({e}); the other copy (generation {}) vouches for log \
                     index {} (term {}), and the damaged one may have vouched for more",
                    w.generation, w.synced_index, w.synced_term
                )))
            }
            [Err(a), Err(b)] => {
                Err(corrupt(format!("both copies are damaged ({a}; {b}); no index can be vouched for")))
            }
        }
    }

    /// Writes `w` as the next generation into the other slot and fdatasyncs it.
    pub(crate) fn write(&mut self, mut w: Witness) -> Result<(), StorageError> {
        w.generation = self.current.generation + 1;
        let offset = (w.generation % 2) * WITNESS_SLOT as u64;
        let io = |op| {
            let path = self.path.clone();
            move |source| StorageError::Io { path, op, source }
        };
        self.file.write_all_at(&slot_bytes(&w), offset).map_err(io("writing the durability witness"))?;
        self.file.sync_data().map_err(io("fdatasyncing the durability witness"))?;
        self.current = w;
        Ok(())
    }
}

/// Which slot fails to decode first, if any.
fn slots_bad_first(bytes: &[u8]) -> Option<usize> {
    (0..2).find(|i| decode_slot(&bytes[i * WITNESS_SLOT..(i + 1) * WITNESS_SLOT]).is_err())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_round_trip_and_detect_any_flipped_byte() {
        let w = Witness {
            generation: 9,
            synced_index: 1234,
            synced_term: 7,
            hard_state: HardState { term: 7, vote: Some(2), commit: 1200, incarnation: 3 },
            point_index: Some(1000),
        };
        let bytes = slot_bytes(&w);
        assert_eq!(decode_slot(&bytes).unwrap(), w);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x08;
            assert!(decode_slot(&bad).is_err(), "flipping byte {i} went unnoticed");
        }
    }
}
