//! The on-disk record format: the CRC-32 (IEEE, via crc32fast) of the payload,
//! little-endian, followed by the payload encoded with postcard.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Why a stored record could not be read back.
#[derive(Debug)]
pub(crate) enum RecordError {
    /// Fewer than the 4 checksum bytes.
    Short(usize),
    /// The payload does not match its checksum.
    Checksum { stored: u32, computed: u32 },
    /// The checksum matches but the payload does not decode.
    Decode(postcard::Error),
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Short(n) => write!(f, "record is {n} bytes, shorter than its checksum"),
            RecordError::Checksum { stored, computed } => {
                write!(f, "checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")
            }
            RecordError::Decode(e) => write!(f, "undecodable payload: {e}"),
        }
    }
}

/// Encodes `value` as a checksummed record.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = postcard::to_extend(value, vec![0; 4]).expect("postcard encodes plain data into a Vec");
    let crc = crc32fast::hash(&out[4..]);
    out[..4].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes a checksummed record.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RecordError> {
    if bytes.len() < 4 {
        return Err(RecordError::Short(bytes.len()));
    }
    let stored = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
    let computed = crc32fast::hash(&bytes[4..]);
    if stored != computed {
        return Err(RecordError::Checksum { stored, computed });
    }
    postcard::from_bytes(&bytes[4..]).map_err(RecordError::Decode)
}

/// The key of log entry `index`: big-endian, so that sled's byte order is index order.
pub(crate) fn entry_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_detect_any_flipped_byte() {
        let value = (7u64, String::from("hello"), vec![1u8, 2, 3]);
        let bytes = encode(&value);
        assert_eq!(decode::<(u64, String, Vec<u8>)>(&bytes).unwrap(), value);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(decode::<(u64, String, Vec<u8>)>(&bad).is_err(), "flipping byte {i} went unnoticed");
        }
        assert!(matches!(decode::<u64>(&bytes[..3]), Err(RecordError::Short(3))));
    }
}
