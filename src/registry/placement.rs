//! Which broker a board is on: the broker its latest status message was
//! heard on (copies from a bridge are dropped before they get here), and
//! whether it keeps changing (two boards with one id on two brokers, or a
//! board hopping between them).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// Broker changes within this long...
const FLAP_WINDOW: Duration = Duration::from_secs(60);
/// ...this many times or more, and the board is said to be on both.
const FLAP_CHANGES: usize = 3;

/// One board's broker.
#[derive(Debug, Default, Clone)]
pub(super) struct Placement {
    /// Where it was last heard.
    pub(super) broker: Option<usize>,
    /// The broker before, while it keeps changing.
    pub(super) flapping_with: Option<usize>,
    /// When it changed lately (at most [`FLAP_CHANGES`]).
    changes: VecDeque<Instant>,
}

/// What one status message told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Heard {
    /// The broker it was on, or its first.
    Same,
    /// It moved from broker `from`.
    Moved { from: usize },
    /// It changed brokers [`FLAP_CHANGES`] times within [`FLAP_WINDOW`].
    Flapping { from: usize },
}

impl Placement {
    /// A status message from the board heard on `broker` at `now`.
    pub(super) fn heard(&mut self, broker: usize, now: Instant) -> Heard {
        while self
            .changes
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > FLAP_WINDOW)
        {
            self.changes.pop_front();
        }
        if self.changes.is_empty() {
            self.flapping_with = None;
        }
        let from = match self.broker.replace(broker) {
            Some(f) if f != broker => f,
            _ => return Heard::Same,
        };
        if self.changes.len() >= FLAP_CHANGES {
            self.changes.pop_front();
        }
        self.changes.push_back(now);
        if self.changes.len() >= FLAP_CHANGES {
            self.flapping_with = Some(from);
            Heard::Flapping { from }
        } else {
            Heard::Moved { from }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_board_that_moves_once_has_moved_and_one_heard_on_both_in_turn_is_flapping() {
        let t = Instant::now();
        let mut p = Placement::default();
        assert_eq!(p.heard(0, t), Heard::Same);
        assert_eq!(p.heard(0, t), Heard::Same);
        assert_eq!(p.heard(1, t), Heard::Moved { from: 0 });
        assert_eq!(p.broker, Some(1));
        let s = Duration::from_secs(5);
        assert_eq!(p.heard(0, t + s), Heard::Moved { from: 1 });
        assert_eq!(p.heard(1, t + s * 2), Heard::Flapping { from: 0 });
        assert_eq!(p.flapping_with, Some(0));
        // Quiet on one broker for a while: no longer said to be on both.
        assert_eq!(p.heard(1, t + s * 2 + FLAP_WINDOW * 2), Heard::Same);
        assert_eq!(p.flapping_with, None);
    }
}
