//! Rate limiting for log lines caused by the network. A flood of garbage
//! (unknown topics, bad payloads, unknown devices, oversize packets) must
//! not fill a Pi's SD card: per source, the first [`LogLimit::burst`] lines
//! of a minute are logged, the rest are only counted, and one summary line
//! per minute says how many were left out.
//!
//! Pure bookkeeping: the caller passes `now` and logs what it is told to.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// How many lines per source and window.
#[derive(Debug, Clone, Copy)]
pub struct LogLimit {
    /// Lines logged per source per window.
    pub burst: u32,
    /// The window (a minute).
    pub window: Duration,
}

impl Default for LogLimit {
    fn default() -> Self {
        LogLimit {
            burst: 10,
            window: Duration::from_secs(60),
        }
    }
}

#[derive(Debug)]
struct Window {
    start: Instant,
    logged: u32,
    suppressed: u64,
}

/// What to do with one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Log it.
    Log,
    /// Count it, do not log it.
    Suppress,
}

/// A summary owed for one source: `count` lines were left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The source.
    pub source: &'static str,
    /// Lines not logged in the window that ended.
    pub count: u64,
}

/// Per-source counters. Not thread-safe by itself; keep it behind the
/// owner's lock.
#[derive(Debug, Default)]
pub struct RateLog {
    limit: LogLimit,
    sources: HashMap<&'static str, Window>,
}

impl RateLog {
    /// A limiter with `limit`.
    pub fn new(limit: LogLimit) -> Self {
        RateLog {
            limit,
            sources: HashMap::new(),
        }
    }

    /// Decides about one line from `source`. When a window ended with lines
    /// left out, its summary comes back too (log it before the line).
    pub fn check(&mut self, source: &'static str, now: Instant) -> (Verdict, Option<Summary>) {
        let limit = self.limit;
        let w = self.sources.entry(source).or_insert(Window {
            start: now,
            logged: 0,
            suppressed: 0,
        });
        let mut summary = None;
        if now.saturating_duration_since(w.start) >= limit.window {
            if w.suppressed > 0 {
                summary = Some(Summary {
                    source,
                    count: w.suppressed,
                });
            }
            *w = Window {
                start: now,
                logged: 0,
                suppressed: 0,
            };
        }
        if w.logged < limit.burst {
            w.logged += 1;
            (Verdict::Log, summary)
        } else {
            w.suppressed += 1;
            (Verdict::Suppress, summary)
        }
    }

    /// Summaries of windows that have ended (call about once a minute, so a
    /// flood that stopped is still summed up).
    pub fn flush(&mut self, now: Instant) -> Vec<Summary> {
        let window = self.limit.window;
        let mut out = Vec::new();
        for (source, w) in self.sources.iter_mut() {
            if now.saturating_duration_since(w.start) >= window && w.suppressed > 0 {
                out.push(Summary {
                    source,
                    count: w.suppressed,
                });
                w.suppressed = 0;
            }
        }
        self.sources
            .retain(|_, w| now.saturating_duration_since(w.start) < window || w.suppressed > 0);
        out.sort_by_key(|s| s.source);
        out
    }
}

/// Logs through a `RateLog` behind a mutex: `ratelog!(lock, warn,
/// target, source, "format", args...)` (any `tracing` level macro). The
/// summary of what was left out is a warning.
#[macro_export]
macro_rules! ratelog {
    ($log:expr, $level:ident, $target:literal, $source:literal, $($arg:tt)+) => {{
        let (verdict, summary) = $log
            .lock()
            .check($source, ::tokio::time::Instant::now());
        if let Some(s) = summary {
            ::tracing::warn!(target: $target, "{} more `{}` log line(s) in the last minute were not logged", s.count, s.source);
        }
        if verdict == $crate::ratelog::Verdict::Log {
            ::tracing::$level!(target: $target, $($arg)+);
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_lines_then_counts_then_a_summary() {
        let t0 = Instant::now();
        let mut r = RateLog::new(LogLimit {
            burst: 3,
            window: Duration::from_secs(60),
        });
        let verdicts: Vec<_> = (0..10).map(|_| r.check("garbage", t0).0).collect();
        assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Log).count(), 3);
        // Another source has its own budget.
        assert_eq!(r.check("devices", t0).0, Verdict::Log);
        // A minute later the first line of the new window carries the summary.
        let (v, s) = r.check("garbage", t0 + Duration::from_secs(60));
        assert_eq!(v, Verdict::Log);
        assert_eq!(
            s,
            Some(Summary {
                source: "garbage",
                count: 7
            })
        );
    }

    #[test]
    fn flush_sums_up_a_flood_that_stopped() {
        let t0 = Instant::now();
        let mut r = RateLog::new(LogLimit {
            burst: 1,
            window: Duration::from_secs(60),
        });
        for _ in 0..5 {
            r.check("x", t0);
        }
        assert!(r.flush(t0 + Duration::from_secs(30)).is_empty());
        assert_eq!(
            r.flush(t0 + Duration::from_secs(61)),
            [Summary {
                source: "x",
                count: 4
            }]
        );
        assert!(r.flush(t0 + Duration::from_secs(200)).is_empty());
    }
}
