//! One `ROOM/STOP` per burst of stop requests (see [`StopGate`]).

use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// How long a repeated "everything off" is redundant when nothing was sent
/// since the last one.
const STOP_REPEAT_WINDOW: Duration = Duration::from_secs(2);

/// One `ROOM/STOP` per burst: a flood of stop requests (junk on the control
/// topic, a stuck button) sends one STOP, and repeats within
/// [`STOP_REPEAT_WINDOW`] with no output sent in between are dropped and
/// counted. Any cue or manual send reopens the gate, so a stop after a new
/// show always goes out.
#[derive(Default)]
pub(crate) struct StopGate {
    /// When the last STOP went out, and whether anything was sent since.
    last: Mutex<Option<(Instant, bool)>>,
    dropped: AtomicU64,
}

impl StopGate {
    /// An output command went out: the next STOP is needed.
    pub(crate) fn output_sent(&self) {
        if let Some((_, sent)) = self.last.lock().as_mut() {
            *sent = true;
        }
    }

    /// Whether a STOP should go out now (and remember it did).
    pub(crate) fn admit(&self, now: Instant) -> bool {
        let mut last = self.last.lock();
        let redundant = last.is_some_and(|(at, sent)| {
            !sent && now.saturating_duration_since(at) < STOP_REPEAT_WINDOW
        });
        if redundant {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        *last = Some((now, false));
        true
    }

    /// Repeated STOPs dropped so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_stop_per_burst_and_again_after_output() {
        let g = StopGate::default();
        let t0 = Instant::now();
        assert!(g.admit(t0), "the first STOP goes out");
        assert!(!g.admit(t0 + Duration::from_millis(10)));
        assert!(!g.admit(t0 + Duration::from_millis(1900)));
        assert_eq!(g.dropped(), 2);
        // A cue went out since: the next STOP is needed at once.
        g.output_sent();
        assert!(g.admit(t0 + Duration::from_millis(1950)));
        // Past the window a repeat goes out again (a board that missed it).
        assert!(g.admit(t0 + Duration::from_millis(1950) + STOP_REPEAT_WINDOW));
        assert_eq!(g.dropped(), 2);
    }
}
