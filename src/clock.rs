//! Deadline arithmetic that never panics: `Instant + Duration` overflows
//! (and panics) for absurd durations, which can come from a corrupt sound
//! header or a value that slipped past validation. A deadline that far away
//! simply never comes. Also: a sleep precise to well under tokio's 1 ms
//! timer granularity, for show cues; and the wall clock as unix seconds.

use std::time::Duration;

use tokio::time::Instant;

/// About thirty years: later than anything a room waits for.
const FAR: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

/// Now as unix seconds (0 before 1970: a clock that wrong is not
/// worth a panic).
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Unix time `unix` written in `tz` with `format` (strftime), or empty
/// for a time no calendar holds.
pub fn local(unix: f64, tz: &jiff::tz::TimeZone, format: &str) -> String {
    jiff::Timestamp::from_millisecond((unix * 1000.0) as i64)
        .map(|t| t.to_zoned(tz.clone()).strftime(format).to_string())
        .unwrap_or_default()
}

/// `t + d`, or a deadline decades away when that would overflow.
pub fn after(t: Instant, d: Duration) -> Instant {
    t.checked_add(d).or_else(|| t.checked_add(FAR)).unwrap_or(t)
}

/// The last stretch before a deadline that [`sleep_until_precise`] sleeps
/// with the OS timer instead of tokio's.
const SLACK: Duration = Duration::from_micros(1500);

/// Sleeps until `deadline`, to within about 0.1 ms: tokio's timer has a
/// 1 ms granularity and fires up to a millisecond late, which a cue at the
/// far end of the network would show. The last [`SLACK`] is slept with the
/// OS timer (`nanosleep`): on the cue thread itself (crate::cue_thread),
/// elsewhere on the blocking pool, so no worker thread blocks.
///
/// Under a paused test clock (`tokio::time::pause`) this is plain
/// `sleep_until`: the paused clock jumps ahead of real time, and the
/// deadline is then reached by tokio's auto-advance.
pub async fn sleep_until_precise(deadline: Instant) {
    let (t0, real0) = (Instant::now(), std::time::Instant::now());
    if let Some(early) = deadline.checked_sub(SLACK).filter(|e| *e > t0) {
        tokio::time::sleep_until(early).await;
    }
    let now = Instant::now();
    let rest = deadline.saturating_duration_since(now);
    if rest.is_zero() {
        return;
    }
    let paused_clock = now - t0 > real0.elapsed() + Duration::from_millis(1);
    if !paused_clock && rest <= SLACK {
        if crate::cue_thread::on_cue_thread() {
            // The cue thread's own (real-time) wake-up: a pool thread at
            // normal priority would wake late on a busy machine.
            std::thread::sleep(rest);
        } else {
            let _ = tokio::task::spawn_blocking(move || std::thread::sleep(rest)).await;
        }
    }
    if Instant::now() < deadline {
        tokio::time::sleep_until(deadline).await;
    }
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

    /// Never early (how late it is, is a benchmark's business:
    /// `cargo bench -- cue`).
    #[tokio::test]
    async fn precise_sleep_is_never_early() {
        for i in 0..20u64 {
            let deadline = Instant::now() + Duration::from_micros(i * 237);
            sleep_until_precise(deadline).await;
            let now = Instant::now();
            assert!(now >= deadline, "woke {:?} early", deadline - now);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn precise_sleep_follows_a_paused_clock() {
        let t0 = Instant::now();
        sleep_until_precise(t0 + Duration::from_secs(3600)).await;
        assert_eq!(Instant::now() - t0, Duration::from_secs(3600));
        // A deadline inside the slack, too.
        let t1 = Instant::now();
        sleep_until_precise(t1 + Duration::from_micros(700)).await;
        assert!(Instant::now() >= t1 + Duration::from_micros(700));
    }
}
