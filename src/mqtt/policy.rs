//! Which broker to try next, and when: the failover policy as a pure state
//! machine (no I/O, no clock of its own; the supervisor feeds it what
//! happened and the time, and asks it what to do).
//!
//! Every broker has its own record: how often it failed since it last held
//! a stable connection, until when it is held off, and the evidence of a
//! client-id takeover on it. Back-off belongs to the broker that
//! misbehaves, never to the list: a broker that refused, crashed, dropped
//! us within [`stable_after`] or took part in a takeover fight is held off
//! by the seed-002 schedule of *its own* failures, and the next broker in
//! the priority list (seed 000: starting after the one that failed) is
//! tried at once. Only when every broker is held does the supervisor wait,
//! until the first hold ends.
//!
//! A takeover is declared only on evidence: an MQTT 5 DISCONNECT with
//! reason 0x8E *Session taken over*; or, for servers that close the older
//! connection without a word (Mosquitto before 2.0.12), the heuristic in
//! [`SilentCloses`]: [`SILENT_CLOSES_FOR_TAKEOVER`] silent closes of an
//! accepted connection by the same broker within [`SILENT_CLOSE_WINDOW`],
//! each while that broker kept listening (a TCP connect right after the
//! close succeeded). A broker that crashed is not listening, so crashes,
//! however often, are never counted as a takeover.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::Backoff;
use crate::clock::after;

/// How long a connection must stay up to count as a success (resetting the
/// broker's failures): `initial_retry_delay`, at least one second.
pub fn stable_after(initial_retry_delay: Duration) -> Duration {
    initial_retry_delay.max(Duration::from_secs(1))
}

/// How many silent closes by one broker that kept listening, within
/// [`SILENT_CLOSE_WINDOW`], make a takeover fight the likely story.
pub const SILENT_CLOSES_FOR_TAKEOVER: usize = 3;

/// See [`SILENT_CLOSES_FOR_TAKEOVER`].
pub const SILENT_CLOSE_WINDOW: Duration = Duration::from_secs(60);

/// What a suspected takeover is called in the status and the log.
pub const SUSPECTED_TAKEOVER: &str = "the broker keeps closing the connection right after accepting it while it keeps accepting new ones: most likely another client connected with the same client id";

/// Remembers when one broker closed accepted connections without a word
/// while it kept listening, to tell a takeover fight (two clients with one
/// id kicking each other off, every few seconds) from the odd dropped
/// connection.
#[derive(Debug, Default)]
pub struct SilentCloses {
    at: VecDeque<Instant>,
}

impl SilentCloses {
    /// Records one silent close at `now`; true when there have been
    /// [`SILENT_CLOSES_FOR_TAKEOVER`] within [`SILENT_CLOSE_WINDOW`].
    pub fn record(&mut self, now: Instant) -> bool {
        while self
            .at
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > SILENT_CLOSE_WINDOW)
        {
            self.at.pop_front();
        }
        self.at.push_back(now);
        if self.at.len() > SILENT_CLOSES_FOR_TAKEOVER {
            self.at.pop_front();
        }
        self.at.len() >= SILENT_CLOSES_FOR_TAKEOVER
    }
}

/// How an accepted connection ended, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// The broker said *Session taken over* (MQTT 5 reason 0x8E).
    TakenOver,
    /// Closed without a word (EOF, reset), and the broker still accepted a
    /// TCP connection right afterwards: it closed us on purpose.
    SilentWhileListening,
    /// Anything else: a crash (the broker no longer listens), an ack
    /// timeout, a DISCONNECT with another reason, a protocol error.
    Other,
}

/// What the policy made of a lost connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossVerdict {
    /// A takeover (declared or suspected on the evidence above).
    pub takeover: bool,
    /// The connection ended before it was stable: it counts as a failed
    /// attempt for that broker.
    pub short: bool,
    /// How long that broker is held off now (zero: it may be tried again
    /// right after the others).
    pub hold: Duration,
}

/// What to do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try this broker (index into the priority list) now.
    Try(usize),
    /// Every broker is held off: wait until then.
    Wait(Instant),
}

#[derive(Debug, Default)]
struct BrokerRecord {
    /// Failed attempts and short-lived connections since its last stable
    /// connection.
    failures: u32,
    /// Not tried before this instant.
    hold_until: Option<Instant>,
    silent: SilentCloses,
}

/// The policy for one client's priority list of brokers.
#[derive(Debug)]
pub struct Failover {
    brokers: Vec<BrokerRecord>,
    /// Where the search for the next broker starts (seed 000: after the
    /// one that failed).
    cursor: usize,
    backoff: Backoff,
    stable: Duration,
}

impl Failover {
    /// A policy for `n` brokers with the seed-002 `backoff` schedule.
    pub fn new(n: usize, backoff: Backoff) -> Self {
        Failover {
            brokers: (0..n).map(|_| BrokerRecord::default()).collect(),
            cursor: 0,
            stable: stable_after(backoff.initial),
            backoff,
        }
    }

    /// How long a connection must last to count as stable.
    pub fn stable(&self) -> Duration {
        self.stable
    }

    /// The next broker to try: the first one from the cursor in priority
    /// order that is not held off; with `ignore_holds` (the last messages
    /// before a close), simply the one at the cursor.
    pub fn next(&self, now: Instant, ignore_holds: bool) -> Next {
        let n = self.brokers.len();
        if ignore_holds {
            return Next::Try(self.cursor % n);
        }
        let mut earliest: Option<Instant> = None;
        for k in 0..n {
            let idx = (self.cursor + k) % n;
            match self.brokers[idx].hold_until {
                Some(t) if t > now => earliest = Some(earliest.map_or(t, |e| e.min(t))),
                _ => return Next::Try(idx),
            }
        }
        Next::Wait(earliest.expect("some broker is held"))
    }

    /// A connection attempt to `idx` failed (refused, timed out, TLS...).
    /// `unit` in [-1, 1] scales the jitter. Returns the broker's hold.
    pub fn attempt_failed(&mut self, idx: usize, now: Instant, unit: f64) -> Duration {
        self.cursor = idx + 1;
        self.hold(idx, now, unit)
    }

    /// `idx` accepted a connection.
    pub fn connected(&mut self, idx: usize) {
        self.cursor = idx;
    }

    /// The accepted connection to `idx` ended after `lived`, as `loss`
    /// says. The next broker in the list comes next, at once.
    pub fn lost(
        &mut self,
        idx: usize,
        lived: Duration,
        loss: Loss,
        now: Instant,
        unit: f64,
    ) -> LossVerdict {
        self.cursor = idx + 1;
        let takeover = match loss {
            Loss::TakenOver => true,
            Loss::SilentWhileListening => self.brokers[idx].silent.record(now),
            Loss::Other => false,
        };
        let short = lived < self.stable;
        if takeover || short {
            let hold = self.hold(idx, now, unit);
            return LossVerdict {
                takeover,
                short,
                hold,
            };
        }
        let b = &mut self.brokers[idx];
        b.failures = 0;
        b.hold_until = None;
        LossVerdict {
            takeover,
            short,
            hold: Duration::ZERO,
        }
    }

    /// Switching back to the higher-priority `idx` (it answered a probe).
    pub fn failback(&mut self, idx: usize) {
        self.cursor = idx;
        let b = &mut self.brokers[idx];
        b.failures = 0;
        b.hold_until = None;
    }

    /// `idx` is held off now (a failback probe skips it).
    pub fn is_held(&self, idx: usize, now: Instant) -> bool {
        self.brokers[idx].hold_until.is_some_and(|t| t > now)
    }

    /// Failed rounds over the whole list: the fewest failures of any broker
    /// (every broker has failed at least this often since it last worked).
    pub fn failed_rounds(&self) -> u32 {
        self.brokers.iter().map(|b| b.failures).min().unwrap_or(0)
    }

    /// Every broker failed `max_retries` times: the state is FAILED.
    pub fn exhausted(&self) -> bool {
        let r = self.failed_rounds();
        r > 0 && self.backoff.exhausted(r)
    }

    fn hold(&mut self, idx: usize, now: Instant, unit: f64) -> Duration {
        let b = &mut self.brokers[idx];
        b.failures = b.failures.saturating_add(1);
        let d = self.backoff.delay(b.failures - 1, unit);
        b.hold_until = Some(after(now, d));
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> Backoff {
        Backoff {
            max_retries: 3,
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
            multiplier: 2.0,
            jitter: 0.0,
        }
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn stable_connections_last_at_least_a_second() {
        assert_eq!(stable_after(Duration::from_millis(100)), S(1));
        assert_eq!(stable_after(S(5)), S(5));
    }

    #[test]
    fn a_refused_broker_is_held_and_the_next_is_tried_at_once() {
        let t0 = Instant::now();
        let mut f = Failover::new(2, seed());
        assert_eq!(f.next(t0, false), Next::Try(0));
        assert_eq!(f.attempt_failed(0, t0, 0.0), S(1));
        assert_eq!(f.next(t0, false), Next::Try(1));
        f.attempt_failed(1, t0, 0.0);
        assert_eq!(f.next(t0, false), Next::Wait(t0 + S(1)));
        // Each broker's own schedule grows with its own failures.
        assert_eq!(f.next(t0 + S(1), false), Next::Try(0));
        assert_eq!(f.attempt_failed(0, t0 + S(1), 0.0), S(2));
        assert_eq!(f.next(t0 + S(1), false), Next::Try(1));
        assert_eq!(f.failed_rounds(), 1);
    }

    #[test]
    fn a_connection_lost_after_it_was_stable_costs_no_wait() {
        let t0 = Instant::now();
        let mut f = Failover::new(2, seed());
        f.connected(0);
        let v = f.lost(0, S(30), Loss::Other, t0, 0.0);
        assert_eq!(
            (v.takeover, v.short, v.hold),
            (false, false, Duration::ZERO)
        );
        assert_eq!(f.next(t0, false), Next::Try(1), "the next broker first");
        // The backup is down too: the primary is tried again at once.
        f.attempt_failed(1, t0, 0.0);
        assert_eq!(f.next(t0, false), Next::Try(0));
    }

    #[test]
    fn a_primary_dying_right_after_connecting_sends_us_to_the_backup_at_once() {
        let t0 = Instant::now();
        let mut f = Failover::new(2, seed());
        f.connected(0);
        let v = f.lost(0, Duration::from_millis(500), Loss::Other, t0, 0.0);
        assert!(v.short && !v.takeover);
        assert_eq!(v.hold, S(1), "the primary waits");
        assert_eq!(f.next(t0, false), Next::Try(1), "the backup does not");
    }

    #[test]
    fn crashes_are_never_a_takeover_however_often() {
        let t0 = Instant::now();
        let mut f = Failover::new(2, seed());
        for i in 0..40u64 {
            let idx = (i % 2) as usize;
            f.connected(idx);
            let v = f.lost(idx, S(4), Loss::Other, t0 + S(4 * i), 0.0);
            assert!(!v.takeover && !v.short, "crash {i}");
            assert_eq!(f.next(t0 + S(4 * i), false), Next::Try(1 - idx));
        }
        assert!(!f.exhausted());
    }

    #[test]
    fn silent_closes_while_listening_make_a_takeover_on_that_broker_only() {
        let t0 = Instant::now();
        let mut f = Failover::new(2, seed());
        let mut verdicts = Vec::new();
        for i in 0..3u64 {
            f.connected(0);
            verdicts.push(f.lost(0, S(3), Loss::SilentWhileListening, t0 + S(3 * i), 0.0));
        }
        assert_eq!(
            verdicts.iter().map(|v| v.takeover).collect::<Vec<_>>(),
            [false, false, true]
        );
        let now = t0 + S(6);
        assert!(f.is_held(0, now), "the fighting broker is held off");
        assert_eq!(
            f.next(now, false),
            Next::Try(1),
            "the other is tried at once"
        );
        // Silent closes by the other broker start their own count.
        f.connected(1);
        assert!(
            !f.lost(1, S(3), Loss::SilentWhileListening, now, 0.0)
                .takeover
        );
    }

    #[test]
    fn an_mqtt5_takeover_is_declared_at_once_and_backs_off() {
        let t0 = Instant::now();
        let mut f = Failover::new(1, seed());
        f.connected(0);
        let v = f.lost(0, S(60), Loss::TakenOver, t0, 0.0);
        assert!(v.takeover);
        assert_eq!(v.hold, S(1));
        assert_eq!(f.next(t0, false), Next::Wait(t0 + S(1)));
        f.connected(0);
        assert_eq!(f.lost(0, S(60), Loss::TakenOver, t0 + S(1), 0.0).hold, S(2));
    }

    #[test]
    fn silent_closes_spread_over_hours_are_just_bad_luck() {
        let mut s = SilentCloses::default();
        let t0 = Instant::now();
        for i in 0..10 {
            assert!(!s.record(t0 + S(45 * i)), "close {i}");
        }
    }

    #[test]
    fn failed_when_every_broker_failed_max_retries_times() {
        let t0 = Instant::now();
        let mut f = Failover::new(2, seed());
        for _ in 0..3 {
            f.attempt_failed(0, t0, 0.0);
            assert!(!f.exhausted());
            f.attempt_failed(1, t0, 0.0);
        }
        assert!(f.exhausted());
        f.failback(0);
        assert!(!f.exhausted());
    }

    #[test]
    fn closing_ignores_holds() {
        let t0 = Instant::now();
        let mut f = Failover::new(2, seed());
        f.attempt_failed(0, t0, 0.0);
        f.attempt_failed(1, t0, 0.0);
        assert_eq!(f.next(t0, true), Next::Try(0));
    }
}
