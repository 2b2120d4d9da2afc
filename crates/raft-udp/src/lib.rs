//! # raft-udp: a UDP transport for raft-tokio
//!
//! (crate docs are completed below)

mod frame;
#[doc(hidden)]
pub mod fuzzing;
mod limits;
mod metrics;
mod options;
mod replay;
mod snapshot;
mod transport;

pub use frame::{
    decode_frame, encode_frame, encode_message_frame, Body, Envelope, Frame, FrameError, Kind, CRC_LEN, FRAME_VERSION,
    HEADER_LEN, MAC_LEN, MAGIC, MAX_OVERHEAD,
};
pub use limits::{
    fit_config, fitted_limits, FitError, APPEND_OVERHEAD, DEFAULT_MAX_DATAGRAM, ENTRY_OVERHEAD, MAX_UDP_PAYLOAD,
    MIN_NODE_INFO_BYTES,
};
pub use metrics::UdpMetrics;
pub use options::UdpOptions;
pub use replay::{ReplayWindow, WINDOW as REPLAY_WINDOW};
pub use transport::{parse_node_info, UdpHandle, UdpTransport};
