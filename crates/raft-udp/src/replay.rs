//! The anti-replay window for authenticated datagrams (the sliding bitmap of IPsec's
//! RFC 4303 §3.4.3 and WireGuard).

/// Counters this far below the highest one seen are still accepted once (reordering).
pub const WINDOW: u64 = 4096;
const WORDS: usize = (WINDOW / 64) as usize;

/// Which (session, counter) pairs of one sender were already accepted. A datagram is new
/// if its session is above the current one (the sender restarted: the window starts over),
/// or it is of the current session and its counter is above the highest seen, or within
/// [`WINDOW`] below it and not seen yet. Everything else is a replay. Sessions below the
/// current one are refused for good: a restarted sender's old datagrams cannot be replayed.
#[derive(Clone, Debug)]
pub struct ReplayWindow {
    session: u64,
    /// The highest counter accepted in `session` (0: none yet).
    top: u64,
    /// Bit `c % WINDOW` is set when counter `c` (within the window below `top`) was seen.
    bits: [u64; WORDS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        ReplayWindow { session: 0, top: 0, bits: [0; WORDS] }
    }
}

impl ReplayWindow {
    fn bit(&self, c: u64) -> bool {
        let i = (c % WINDOW) as usize;
        self.bits[i / 64] & (1 << (i % 64)) != 0
    }

    fn set(&mut self, c: u64, on: bool) {
        let i = (c % WINDOW) as usize;
        if on {
            self.bits[i / 64] |= 1 << (i % 64);
        } else {
            self.bits[i / 64] &= !(1 << (i % 64));
        }
    }

    /// Whether (`session`, `counter`) would be accepted, without recording it.
    pub fn check(&self, session: u64, counter: u64) -> bool {
        if counter == 0 || session < self.session {
            return false;
        }
        if session > self.session || counter > self.top {
            return true;
        }
        self.top - counter < WINDOW && !self.bit(counter)
    }

    /// Accepts (`session`, `counter`) if it is new, recording it; false for a replay.
    /// Call it only for datagrams whose MAC was verified, so forgeries cannot move it.
    pub fn accept(&mut self, session: u64, counter: u64) -> bool {
        if !self.check(session, counter) {
            return false;
        }
        if session > self.session {
            *self = ReplayWindow { session, top: 0, bits: [0; WORDS] };
        }
        if counter > self.top {
            let advance = counter - self.top;
            if advance >= WINDOW {
                self.bits = [0; WORDS];
            } else {
                for c in self.top + 1..counter {
                    self.set(c, false);
                }
            }
            self.top = counter;
        }
        self.set(counter, true);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_counter_is_accepted_once_and_old_sessions_never() {
        let mut w = ReplayWindow::default();
        assert!(!w.accept(1, 0), "counter 0 is reserved");
        assert!(w.accept(5, 1));
        assert!(!w.accept(5, 1));
        assert!(w.accept(5, 3));
        assert!(w.accept(5, 2), "reordered within the window");
        assert!(!w.accept(5, 2));
        assert!(w.accept(5, 2 + WINDOW), "far ahead");
        assert!(!w.accept(5, 2), "fell out of the window");
        assert!(!w.accept(5, 3), "fell out of the window");
        assert!(w.accept(5, 3 + WINDOW - 1 - (WINDOW - 2)), "still inside: counter 4");
        assert!(w.accept(6, 1), "a newer session starts over");
        assert!(!w.accept(5, 10_000), "an older session is refused");
        assert!(!w.accept(6, 1));
    }

    /// Against a set of everything accepted: a counter is accepted iff unseen and inside
    /// the window, over a long pseudo-random sequence with reordering.
    #[test]
    fn agrees_with_a_model() {
        let mut w = ReplayWindow::default();
        let mut seen = std::collections::BTreeSet::new();
        let mut top = 0u64;
        let mut x = 0x1234_5678_9abc_def1u64;
        for i in 1..50_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let c = (i + (x % 6000)).saturating_sub(3000).max(1);
            let expect = !seen.contains(&c) && (c > top || top - c < WINDOW);
            assert_eq!(w.accept(9, c), expect, "counter {c} with top {top}");
            if expect {
                seen.insert(c);
                top = top.max(c);
            }
        }
    }
}
