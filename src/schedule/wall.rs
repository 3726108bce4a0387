//! The wall clock the scheduler reads.

use std::sync::Arc;

use jiff::Timestamp;
use parking_lot::Mutex;

/// The wall clock the scheduler reads. The real one, or (tests) one that
/// starts at a given instant and follows tokio's clock, so paused tokio
/// time drives a whole simulated day; its `jump` moves it like NTP would.
#[derive(Clone)]
pub struct Wall {
    fake: Option<Arc<Mutex<(Timestamp, tokio::time::Instant)>>>,
}

impl Wall {
    /// The system clock.
    pub fn system() -> Wall {
        Wall { fake: None }
    }

    /// A clock at `start` now, advancing with tokio's clock.
    #[cfg(any(test, feature = "testkit"))]
    pub fn starting_at(start: Timestamp) -> Wall {
        Wall {
            fake: Some(Arc::new(Mutex::new((start, tokio::time::Instant::now())))),
        }
    }

    /// Now.
    pub fn now(&self) -> Timestamp {
        match &self.fake {
            None => Timestamp::now(),
            Some(f) => {
                let (t, i) = *f.lock();
                let d = tokio::time::Instant::now() - i;
                t.checked_add(d).unwrap_or(t)
            }
        }
    }

    /// Moves a test clock by `by` seconds (negative: back).
    #[cfg(any(test, feature = "testkit"))]
    pub fn jump(&self, by: i64) {
        if let Some(f) = &self.fake {
            let mut g = f.lock();
            g.0 = g.0.checked_add(jiff::ToSpan::seconds(by)).unwrap_or(g.0);
        }
    }
}
