//! Deadline arithmetic that never panics: `Instant + Duration` overflows
//! (and panics) for absurd durations, which can come from a corrupt sound
//! header or a value that slipped past validation. A deadline that far away
//! simply never comes.

use std::time::Duration;

use tokio::time::Instant;

/// About thirty years: later than anything a room waits for.
const FAR: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

/// `t + d`, or a deadline decades away when that would overflow.
pub fn after(t: Instant, d: Duration) -> Instant {
    t.checked_add(d).or_else(|| t.checked_add(FAR)).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_durations_do_not_overflow() {
        let now = Instant::now();
        assert_eq!(
            after(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
        assert!(after(now, Duration::MAX) > now + Duration::from_secs(3600 * 24 * 365));
        assert!(after(now, Duration::from_secs_f64(1e19)) > now);
    }
}
