//! Making every message the core can emit fit one datagram.

use crate::frame::MAX_OVERHEAD;
use crate::UdpOptions;
use raft_core::Config;

/// The largest UDP payload over IPv4 (65,535 − 8 − 20).
pub const MAX_UDP_PAYLOAD: usize = 65_507;
/// The default datagram limit: below [`MAX_UDP_PAYLOAD`] with room to spare for IPv6
/// extension headers and tunnels.
pub const DEFAULT_MAX_DATAGRAM: usize = 65_000;

/// An upper bound of an `Append` message's encoding without its entries: the version
/// byte, `from`, `to`, `term` (a varint of at most 10 bytes each), the body tag,
/// `prev_log_index`, `prev_log_term`, `commit` and the entry count (10 each), rounded up.
pub const APPEND_OVERHEAD: usize = 80;
/// An upper bound of what one command entry encodes to beyond its payload: term and
/// index (10 each), the payload tag (1) and the payload length (10).
pub const ENTRY_OVERHEAD: usize = 31;
/// The smallest node info limit [`fit_config`] accepts: room for any socket address
/// written as text (`[ipv6%scope]:port`).
pub const MIN_NODE_INFO_BYTES: usize = 64;

/// The core's byte limits could not be made to fit the datagram.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{max_members} members with addresses do not fit a datagram of {max_datagram} bytes; lower max_members")]
pub struct FitError {
    /// `UdpOptions::max_members`.
    pub max_members: usize,
    /// `UdpOptions::max_datagram`.
    pub max_datagram: usize,
}

/// The core limits that make every message fit one datagram of `options.max_datagram`
/// bytes for clusters of up to `options.max_members` members: `(max_entry_bytes,
/// max_bytes_per_message, max_node_info_bytes)`.
///
/// The arithmetic, with `B = max_datagram − MAX_OVERHEAD` the room for a message
/// (the frame adds at most [`MAX_OVERHEAD`] bytes with a MAC) and `M = max_members`:
///
/// - **One command entry** encodes to at most `payload + ENTRY_OVERHEAD` bytes, inside an
///   append of at most `APPEND_OVERHEAD` more, so
///   `max_entry_bytes = B − APPEND_OVERHEAD − ENTRY_OVERHEAD`. The core refuses larger
///   proposals with `ProposalError::TooLarge`, and sends an entry larger than
///   `max_bytes_per_message` alone.
/// - **One membership entry** (sets of at most `2M` ids, at most `M` node infos of at
///   most `I` bytes) encodes to at most `61 + 40·M + M·I` bytes (21 for the entry's
///   term, index and tag, 10 for each of four lengths, 10 per id, 20 + `I` per info), so
///   `I = (B − APPEND_OVERHEAD − 61) / M − 40`. The snapshot header a transfer starts
///   with carries the same membership and less besides, so it fits too.
/// - **A batch of several entries**: the core stops a batch before the sum of the entries'
///   `size_hint`s (payload + 24 for a command; 24 + 8 per id + 8 per info + info bytes
///   for a membership) exceeds `max_bytes_per_message`. A command entry encodes to at most
///   its hint + 7 (at most 7/24 ≈ 0.29 × its hint more), a membership entry to at most 1.3
///   × its hint more (37 fixed bytes, 2 per id and 12 per info beyond the hint, against a
///   hint of at least 40 when it has an info), so a batch encodes to at most 2.3 × the
///   hints' sum: `max_bytes_per_message = (B − APPEND_OVERHEAD) × 10 / 23`.
///
/// Every other message is a few dozen bytes.
pub fn fitted_limits(options: &UdpOptions) -> Result<(usize, usize, usize), FitError> {
    let err = FitError { max_members: options.max_members, max_datagram: options.max_datagram };
    let room = options.max_datagram.checked_sub(MAX_OVERHEAD + APPEND_OVERHEAD).ok_or(err.clone())?;
    let entry = room.checked_sub(ENTRY_OVERHEAD).filter(|&n| n > 0).ok_or(err.clone())?;
    let members = options.max_members.max(1);
    let info = room.checked_sub(61).map(|r| r / members).and_then(|per| per.checked_sub(40)).ok_or(err.clone())?;
    if info < MIN_NODE_INFO_BYTES {
        return Err(err);
    }
    let batch = room * 10 / 23;
    Ok((entry, batch, info))
}

/// Lowers `config`'s byte limits (never raises them) so that every message the core can
/// emit fits one datagram of this transport; see [`fitted_limits`] for the arithmetic.
/// `Raft::start` applies it through the transport (`Transport::fit_config`) with the
/// transport's own options; call it yourself only to see the limits before starting.
/// Fails when `max_members` members with addresses cannot fit.
///
/// A message that is still too large at send time (a config that skipped this) is dropped,
/// counted in `UdpMetrics::send_too_large` and logged, never sent in pieces.
pub fn fit_config(config: &mut Config, options: &UdpOptions) -> Result<(), FitError> {
    let (entry, batch, info) = fitted_limits(options)?;
    config.max_entry_bytes = config.max_entry_bytes.min(entry);
    config.max_bytes_per_message = config.max_bytes_per_message.min(batch);
    config.max_node_info_bytes = config.max_node_info_bytes.min(info);
    Ok(())
}
