//! Which broker ordinary messages go to with `mqtt.connect: every_broker`:
//! a pure rule over which connections are up and since when.
//!
//! - The active broker stays while its connection is up.
//! - When it is lost, the highest-priority broker that is up takes over at
//!   once: its connection is already there, so the switch is a resend.
//! - A higher-priority broker whose connection came back after a loss takes
//!   over again once it has stayed up for `stable` (the failback of
//!   `one_at_a_time`: a crash-looping primary does not pull the room back at
//!   each restart). Its first connection is no recovery and takes over at
//!   once.

use std::time::Duration;

use tokio::time::Instant;

/// What is known of one broker's connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Up {
    /// Connected since then; `None` while not connected.
    pub(super) since: Option<Instant>,
    /// It was lost at least once.
    pub(super) lost_before: bool,
}

/// The choice: the active broker, and when to look again (a higher-priority
/// broker becomes stable then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Choice {
    pub(super) active: Option<usize>,
    pub(super) recheck: Option<Instant>,
}

/// Picks the active broker; `brokers` is in priority order.
pub(super) fn choose(
    current: Option<usize>,
    brokers: &[Up],
    stable: Duration,
    now: Instant,
) -> Choice {
    let ready = |b: &Up| b.since.map(|s| if b.lost_before { s + stable } else { s });
    let current = current.filter(|&c| brokers.get(c).is_some_and(|b| b.since.is_some()));
    let Some(c) = current else {
        // Nothing active: the highest-priority broker that is up, whether
        // or not it is stable (anything beats no broker).
        let first = brokers.iter().position(|b| b.since.is_some());
        let recheck = first.and_then(|f| next_ready(&brokers[..f], ready, now));
        return Choice {
            active: first,
            recheck,
        };
    };
    let better = brokers[..c]
        .iter()
        .position(|b| ready(b).is_some_and(|r| r <= now));
    match better {
        Some(b) => Choice {
            active: Some(b),
            recheck: next_ready(&brokers[..b], ready, now),
        },
        None => Choice {
            active: Some(c),
            recheck: next_ready(&brokers[..c], ready, now),
        },
    }
}

/// The earliest time one of `brokers` becomes ready, if later than now.
fn next_ready(
    brokers: &[Up],
    ready: impl Fn(&Up) -> Option<Instant>,
    now: Instant,
) -> Option<Instant> {
    brokers.iter().filter_map(ready).filter(|r| *r > now).min()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STABLE: Duration = Duration::from_secs(60);

    fn up(since: Instant, lost_before: bool) -> Up {
        Up {
            since: Some(since),
            lost_before,
        }
    }

    const DOWN: Up = Up {
        since: None,
        lost_before: true,
    };

    #[test]
    fn the_first_broker_up_is_active_and_a_first_connection_takes_over_at_once() {
        let t = Instant::now();
        let c = choose(None, &[Up::default(), up(t, false)], STABLE, t);
        assert_eq!(c.active, Some(1));
        // The primary's first connection: no recovery, no wait.
        let c = choose(Some(1), &[up(t, false), up(t, false)], STABLE, t);
        assert_eq!(c.active, Some(0));
    }

    #[test]
    fn a_lost_active_broker_is_replaced_at_once_by_the_best_one_up() {
        let t = Instant::now();
        let c = choose(Some(0), &[DOWN, up(t, true), up(t, false)], STABLE, t);
        assert_eq!(c.active, Some(1), "even one that was lost before");
        let c = choose(Some(0), &[DOWN, DOWN, DOWN], STABLE, t);
        assert_eq!(c.active, None);
    }

    #[test]
    fn a_recovered_primary_takes_over_only_once_stable() {
        let t = Instant::now();
        let brokers = [up(t, true), up(t, false)];
        let c = choose(Some(1), &brokers, STABLE, t + Duration::from_secs(10));
        assert_eq!(c.active, Some(1));
        assert_eq!(c.recheck, Some(t + STABLE));
        let c = choose(Some(1), &brokers, STABLE, t + STABLE);
        assert_eq!(c.active, Some(0));
        assert_eq!(c.recheck, None);
        // Lost again before it was stable: the backup stays.
        let c = choose(Some(1), &[DOWN, up(t, false)], STABLE, t + STABLE);
        assert_eq!(c.active, Some(1));
        assert_eq!(c.recheck, None);
    }

    #[test]
    fn an_active_backup_stays_while_nothing_better_is_stable() {
        let t = Instant::now();
        let c = choose(Some(2), &[DOWN, up(t, true), up(t, false)], STABLE, t);
        assert_eq!(c.active, Some(2));
        assert_eq!(c.recheck, Some(t + STABLE));
    }
}
