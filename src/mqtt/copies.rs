//! Copies of one message heard on two brokers (`every_broker` on bridged
//! brokers: a bridge forwards every message, so it arrives once on each).
//!
//! A message with the same topic and payload as one heard on *another*
//! broker within [`COPY_WINDOW`] is a copy; the first one heard is the
//! original, and its broker is where it was published. Repeats on one
//! broker are no copies (a board may say `online` twice), unless the
//! message is being bridged: once its copy came from another broker, every
//! arrival within the window is a copy, on either broker, and renews the
//! window. So a bridge loop that echoes a message back and forth keeps it
//! a copy for as long as the echoes come (and, on bridged brokers, the same
//! message twice within the window counts once). Memory is bounded: at most
//! [`MAX_RECENT`] messages are remembered.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::time::Duration;

use tokio::time::Instant;

/// How long after a message its copy from another broker is recognised.
/// A bridge forwards in milliseconds; a second board saying the same thing
/// on another broker a second later is a message of its own.
pub const COPY_WINDOW: Duration = Duration::from_millis(500);

/// Messages remembered at most (oldest forgotten first).
pub const MAX_RECENT: usize = 4096;

/// Recently heard messages, by topic and payload.
#[derive(Debug, Default)]
pub struct Copies {
    /// Hash of topic and payload → (first broker, when last heard, heard
    /// on another broker too).
    recent: HashMap<u64, (usize, Instant, bool)>,
    /// In the order heard, for forgetting.
    order: VecDeque<(Instant, u64)>,
}

impl Copies {
    /// Nothing heard yet.
    pub fn new() -> Self {
        Copies::default()
    }

    /// Whether `topic`/`payload` heard on `broker` now is a copy of a
    /// message heard on another broker moments ago. Remembers it if not.
    pub fn is_copy(&mut self, broker: usize, topic: &str, payload: &[u8], now: Instant) -> bool {
        while let Some(&(t, h)) = self.order.front() {
            if now.saturating_duration_since(t) <= COPY_WINDOW && self.order.len() < MAX_RECENT {
                break;
            }
            self.order.pop_front();
            if self.recent.get(&h).is_some_and(|(_, seen, _)| *seen == t) {
                self.recent.remove(&h);
            }
        }
        let mut hasher = DefaultHasher::new();
        topic.hash(&mut hasher);
        payload.hash(&mut hasher);
        let h = hasher.finish();
        if let Some((b, t, bridged)) = self.recent.get_mut(&h)
            && now.saturating_duration_since(*t) <= COPY_WINDOW
            && (*b != broker || *bridged)
        {
            *t = now;
            *bridged = true;
            self.order.push_back((now, h));
            return true;
        }
        self.recent.insert(h, (broker, now, false));
        self.order.push_back((now, h));
        false
    }

    /// Messages remembered now.
    pub fn len(&self) -> usize {
        self.recent.len()
    }

    /// Nothing remembered.
    pub fn is_empty(&self) -> bool {
        self.recent.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_from_another_broker_within_the_window_is_a_copy() {
        let t = Instant::now();
        let mut c = Copies::new();
        assert!(!c.is_copy(0, "room1/button", b"pressed", t));
        assert!(c.is_copy(1, "room1/button", b"pressed", t + Duration::from_millis(3)));
        // A third copy (a bridge loop) is one too.
        assert!(c.is_copy(1, "room1/button", b"pressed", t + Duration::from_millis(6)));
        // Another payload or topic is another message.
        assert!(!c.is_copy(1, "room1/button", b"released", t));
        assert!(!c.is_copy(1, "room1/other", b"pressed", t));
        // Past the window it is news.
        assert!(!c.is_copy(1, "room1/button", b"pressed", t + Duration::from_secs(2)));
    }

    #[test]
    fn a_bridge_loop_echoing_a_message_keeps_it_a_copy() {
        let t = Instant::now();
        let mut c = Copies::new();
        assert!(!c.is_copy(0, "room1/button", b"pressed", t));
        // Echoed back and forth every 100 ms for 5 s: never news again.
        for i in 1..50u64 {
            let at = t + Duration::from_millis(100 * i);
            assert!(
                c.is_copy((i % 2) as usize, "room1/button", b"pressed", at),
                "echo {i} taken as news"
            );
        }
        // Quiet for longer than the window: the next press is news.
        assert!(!c.is_copy(0, "room1/button", b"pressed", t + Duration::from_secs(7)));
    }

    #[test]
    fn repeats_on_one_broker_are_never_copies() {
        let t = Instant::now();
        let mut c = Copies::new();
        assert!(!c.is_copy(0, "devices/esp32_01/status", b"online", t));
        assert!(!c.is_copy(0, "devices/esp32_01/status", b"online", t));
        // The latest one counts: its copy from broker 1 is recognised.
        assert!(c.is_copy(1, "devices/esp32_01/status", b"online", t));
    }

    #[test]
    fn memory_is_bounded_under_a_flood() {
        let t = Instant::now();
        let mut c = Copies::new();
        for i in 0..MAX_RECENT * 3 {
            c.is_copy(0, &format!("flood/{i}"), b"x", t);
        }
        assert!(c.len() <= MAX_RECENT);
        // Old ones are forgotten once the window has passed.
        c.is_copy(0, "late", b"x", t + Duration::from_secs(5));
        assert_eq!(c.len(), 1);
    }
}
