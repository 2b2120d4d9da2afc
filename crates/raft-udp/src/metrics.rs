//! Counters of the transport, and the rate limit of its warnings.

use crate::frame::FrameError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// A snapshot of the transport's counters (see [`crate::UdpTransport::metrics`]).
        /// Every counter only grows while the transport lives.
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct UdpMetrics {
            $($(#[$doc])* pub $name: u64,)*
        }

        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $(pub(crate) $name: AtomicU64,)*
        }

        impl Counters {
            pub(crate) fn snapshot(&self) -> UdpMetrics {
                UdpMetrics { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }
    };
}

counters! {
    /// Datagrams handed to the socket.
    datagrams_sent,
    /// Datagrams read from the socket (good or bad).
    datagrams_received,
    /// Raft messages delivered to the node.
    messages_delivered,
    /// Dropped: shorter than the header or than the declared length.
    dropped_truncated,
    /// Dropped: not our magic.
    dropped_bad_magic,
    /// Dropped: another frame version or core wire version.
    dropped_wrong_version,
    /// Dropped: longer than `max_datagram`.
    dropped_oversized,
    /// Dropped: CRC mismatch.
    dropped_bad_checksum,
    /// Dropped: another cluster id.
    dropped_wrong_cluster,
    /// Dropped: MAC missing, wrong, or unexpected (forged or a key mismatch).
    dropped_unauthenticated,
    /// Dropped: a replayed or stale (session, counter).
    dropped_replayed,
    /// Dropped: unknown frame kind.
    dropped_unknown_kind,
    /// Dropped: a frame or message body that does not parse or is invalid.
    dropped_malformed,
    /// Dropped: the sender id's configured address is not the datagram's source.
    dropped_address_mismatch,
    /// Dropped: the message's `from` is not the frame's sender id.
    dropped_sender_mismatch,
    /// Dropped: a message addressed to another node.
    dropped_misaddressed,
    /// Outgoing messages dropped because their frame would exceed `max_datagram`.
    send_too_large,
    /// Outgoing datagrams dropped because the socket buffer was full or sending failed.
    send_failed,
    /// Outgoing messages to a node with no (parseable) address.
    send_no_address,
    /// Times a peer was reported unreachable (silence or a refused send).
    unreachable_reports,
    /// Snapshot transfers this node sent that the receiver staged.
    snapshots_sent,
    /// Snapshot transfers this node sent that failed.
    snapshots_failed,
    /// Snapshot transfers this node received and staged.
    snapshots_received,
    /// Incoming snapshot transfers refused (too many at once, bad header) or that failed.
    snapshots_refused,
    /// Snapshot chunks sent for the first time.
    snapshot_chunks_sent,
    /// Snapshot chunks sent again after a loss (timeout or duplicate acks).
    snapshot_chunks_resent,
    /// Snapshot frames ignored: stale, duplicate, outside the window, or of an unknown
    /// transfer.
    snapshot_frames_ignored,
}

impl Counters {
    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a dropped datagram under its reason.
    pub(crate) fn dropped(&self, e: &FrameError) -> &'static str {
        let (c, name) = match e {
            FrameError::Truncated { .. } => (&self.dropped_truncated, "truncated"),
            FrameError::BadMagic => (&self.dropped_bad_magic, "bad_magic"),
            FrameError::WrongVersion { .. } => (&self.dropped_wrong_version, "wrong_version"),
            FrameError::Oversized { .. } => (&self.dropped_oversized, "oversized"),
            FrameError::BadChecksum => (&self.dropped_bad_checksum, "bad_checksum"),
            FrameError::WrongCluster { .. } => (&self.dropped_wrong_cluster, "wrong_cluster"),
            FrameError::Unauthenticated => (&self.dropped_unauthenticated, "unauthenticated"),
            FrameError::Replayed => (&self.dropped_replayed, "replayed"),
            FrameError::UnknownKind(_) => (&self.dropped_unknown_kind, "unknown_kind"),
            FrameError::Malformed(_) => (&self.dropped_malformed, "malformed"),
        };
        Counters::inc(c);
        name
    }
}

/// Lets through one warning per reason per period; the rest go to `debug`. A flood of bad
/// datagrams (a misconfigured or hostile host) must not flood the log.
#[derive(Debug)]
pub(crate) struct WarnLimiter {
    period: Duration,
    last: Mutex<std::collections::HashMap<&'static str, (Instant, u64)>>,
}

impl WarnLimiter {
    pub(crate) fn new(period: Duration) -> Self {
        WarnLimiter { period, last: Mutex::default() }
    }

    /// Whether to warn about `reason` now; if so, also how many were suppressed since the
    /// last warning.
    pub(crate) fn allow(&self, reason: &'static str) -> Option<u64> {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        match last.get_mut(reason) {
            Some((at, suppressed)) if now.duration_since(*at) < self.period => {
                *suppressed += 1;
                None
            }
            Some((at, suppressed)) => {
                let n = *suppressed;
                *at = now;
                *suppressed = 0;
                Some(n)
            }
            None => {
                last.insert(reason, (now, 0));
                Some(0)
            }
        }
    }
}
