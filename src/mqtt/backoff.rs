//! Reconnection delays (seed 002): `initial_retry_delay * backoff_multiplier ^
//! attempt`, plus up to `jitter_factor` random variance, never more than
//! `max_retry_delay`; after `max_retries` failed rounds the state is FAILED.

use std::time::Duration;

use crate::config::MqttConfig;

#[derive(Debug, Clone, PartialEq)]
/// The seed 002 reconnection schedule.
pub struct Backoff {
    /// Failed rounds before FAILED.
    pub max_retries: u32,
    /// The first delay.
    pub initial: Duration,
    /// The largest delay.
    pub max: Duration,
    /// Growth per failed round.
    pub multiplier: f64,
    /// Random variance (0..1).
    pub jitter: f64,
}

/// A random number in [-1, 1]: the `unit` that scales [`Backoff::delay`]'s
/// jitter.
pub fn random_unit() -> f64 {
    rand::random_range(-1.0..=1.0)
}

impl Backoff {
    /// The schedule the config asks for.
    pub fn from_config(c: &MqttConfig) -> Self {
        Backoff {
            max_retries: c.max_retries,
            initial: c.initial_retry_delay,
            max: c.max_retry_delay,
            multiplier: c.backoff_multiplier,
            jitter: c.jitter_factor,
        }
    }

    /// The delay before retry number `attempt` (0-based). `unit` is a random
    /// number in [-1, 1] that scales the jitter.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let max = self.max.as_secs_f64();
        let exp = self.multiplier.powi(attempt.min(1024) as i32);
        let base = (self.initial.as_secs_f64() * exp).min(max);
        let jittered = base * (1.0 + self.jitter * unit.clamp(-1.0, 1.0));
        Duration::from_secs_f64(jittered.clamp(0.0, max))
    }

    /// True once `failures` rounds have failed and the state should be FAILED.
    pub fn exhausted(&self, failures: u32) -> bool {
        failures >= self.max_retries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed_defaults() -> Backoff {
        Backoff {
            max_retries: 10,
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
            multiplier: 2.0,
            jitter: 0.1,
        }
    }

    #[test]
    fn doubles_and_caps() {
        let b = seed_defaults();
        let d: Vec<u64> = (0..11).map(|a| b.delay(a, 0.0).as_secs()).collect();
        assert_eq!(d, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    }

    #[test]
    fn jitter_stays_within_factor_and_cap() {
        let b = seed_defaults();
        assert_eq!(b.delay(2, 1.0), Duration::from_secs_f64(4.4));
        assert_eq!(b.delay(2, -1.0), Duration::from_secs_f64(3.6));
        assert_eq!(b.delay(20, 1.0), Duration::from_secs(300));
        for a in 0..12 {
            let d = b.delay(a, random_unit());
            let base = b.delay(a, 0.0).as_secs_f64();
            assert!(
                d.as_secs_f64() >= base * 0.9 - 1e-9
                    && d.as_secs_f64() <= (base * 1.1).min(300.0) + 1e-9
            );
        }
    }

    #[test]
    fn exhausted_after_max_retries() {
        let b = seed_defaults();
        assert!(!b.exhausted(9));
        assert!(b.exhausted(10));
    }
}
