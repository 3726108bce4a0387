//! The daemon's own log lines, kept in memory for the dashboard: a
//! `tracing` layer beside the one that writes to journald, so the lines
//! are the same records (level, target, message and fields), each on one
//! line with control characters escaped. The ring holds the newest
//! [`CAPACITY`] lines of at most [`MAX_LINE`] characters, so its memory is
//! bounded whatever is logged; a reader that asks for more than it can
//! show gets the newest lines and the count of the others (a flood is
//! summarised, not sent one by one).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::OnceLock;

use parking_lot::Mutex;
use serde::Serialize;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Lines kept.
pub const CAPACITY: usize = 5000;
/// Characters kept of one line.
pub const MAX_LINE: usize = 2000;

/// One log line.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LogLine {
    /// Its number: one more than the line before.
    pub seq: u64,
    /// Unix time.
    pub t: f64,
    /// `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`.
    pub level: &'static str,
    /// Where it comes from (`mqtt_feedback`, `scene`).
    pub target: String,
    /// The message and its fields.
    pub text: String,
}

/// Which lines a reader wants.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// Only lines after this number.
    pub after: u64,
    /// This level or worse.
    pub level: Option<Level>,
    /// Targets that start with this.
    pub target: Option<String>,
    /// Lines that contain this (any case).
    pub search: Option<String>,
}

impl LogFilter {
    fn keeps(&self, l: &LogLine, needle: Option<&str>) -> bool {
        l.seq > self.after
            && self
                .level
                .is_none_or(|min| level_of(l.level).is_some_and(|lv| lv <= min))
            && self
                .target
                .as_deref()
                .is_none_or(|t| l.target.starts_with(t))
            && needle.is_none_or(|n| {
                l.text.to_lowercase().contains(n) || l.target.to_lowercase().contains(n)
            })
    }
}

/// What a reader gets.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LogPage {
    /// The newest matching lines, oldest first.
    pub lines: Vec<LogLine>,
    /// Matching lines left out to stay within the limit (a flood).
    pub skipped: u64,
    /// Lines gone from the ring since `after` (it only keeps the newest).
    pub lost: u64,
    /// The number to ask after next time.
    pub next: u64,
}

/// The ring.
#[derive(Debug, Default)]
pub struct LogRing {
    lines: Mutex<VecDeque<LogLine>>,
    next: Mutex<u64>,
}

impl LogRing {
    /// Adds a line.
    pub fn push(&self, level: &'static str, target: &str, text: String) {
        let mut next = self.next.lock();
        *next += 1;
        let line = LogLine {
            seq: *next,
            t: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            level,
            target: target.chars().take(64).collect(),
            text,
        };
        let mut lines = self.lines.lock();
        if lines.len() >= CAPACITY {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// The newest `limit` lines `f` keeps.
    pub fn page(&self, f: &LogFilter, limit: usize) -> LogPage {
        let needle = f.search.as_ref().map(|s| s.to_lowercase());
        let lines = self.lines.lock();
        let next = lines.back().map_or(f.after, |l| l.seq.max(f.after));
        let oldest = lines.front().map_or(0, |l| l.seq);
        let lost = oldest.saturating_sub(f.after + 1);
        let kept: Vec<&LogLine> = lines
            .iter()
            .filter(|l| f.keeps(l, needle.as_deref()))
            .collect();
        let skipped = kept.len().saturating_sub(limit);
        LogPage {
            lines: kept[skipped..].iter().map(|l| (*l).clone()).collect(),
            skipped: skipped as u64,
            lost,
            next,
        }
    }
}

fn level_of(s: &str) -> Option<Level> {
    s.parse().ok()
}

/// The process's ring (lines arrive once [`layer`] is installed).
pub fn ring() -> &'static LogRing {
    static RING: OnceLock<LogRing> = OnceLock::new();
    RING.get_or_init(LogRing::default)
}

/// The layer that feeds [`ring`]; install it beside the output layer,
/// behind the same filter.
pub fn layer() -> RingLayer {
    RingLayer
}

/// See [`layer`].
#[derive(Debug, Clone, Copy)]
pub struct RingLayer;

impl<S: Subscriber> Layer<S> for RingLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut v = Text::default();
        event.record(&mut v);
        let m = event.metadata();
        ring().push(level_name(*m.level()), m.target(), v.finish());
    }
}

fn level_name(l: Level) -> &'static str {
    match l {
        Level::ERROR => "ERROR",
        Level::WARN => "WARN",
        Level::INFO => "INFO",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "TRACE",
    }
}

/// A record's message, then its other fields as `name=value`, on one line.
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Text {
    fn finish(self) -> String {
        let mut s = self.message;
        if !self.fields.is_empty() {
            s.push_str(&self.fields);
        }
        let mut out = String::with_capacity(s.len().min(MAX_LINE));
        for c in s.chars().take(MAX_LINE) {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() && c != '\t' => {
                    let _ = write!(out, "\\x{:02x}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        out
    }
}

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if self.message.len() + self.fields.len() > MAX_LINE {
            return;
        }
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_kept_newest_last_filtered_and_a_flood_is_counted_not_sent() {
        let r = LogRing::default();
        r.push("INFO", "scene", "Scene intro started".into());
        r.push("WARN", "mqtt_feedback", "TIMEOUT: room1/light = ON".into());
        r.push("DEBUG", "mqtt_feedback", "Sent: room1/light".into());
        let all = r.page(&LogFilter::default(), 100);
        assert_eq!(all.lines.len(), 3);
        assert_eq!((all.skipped, all.lost, all.next), (0, 0, 3));
        let warn = LogFilter {
            level: Some(Level::WARN),
            ..LogFilter::default()
        };
        assert_eq!(
            r.page(&warn, 100).lines[0].text,
            "TIMEOUT: room1/light = ON"
        );
        let target = LogFilter {
            target: Some("mqtt".into()),
            search: Some("sent".into()),
            ..LogFilter::default()
        };
        assert_eq!(r.page(&target, 100).lines[0].level, "DEBUG");
        let after = LogFilter {
            after: 2,
            ..LogFilter::default()
        };
        assert_eq!(r.page(&after, 100).lines.len(), 1);

        for i in 0..CAPACITY + 500 {
            r.push("INFO", "flood", format!("line {i}"));
        }
        let p = r.page(&after, 200);
        assert_eq!(p.lines.len(), 200);
        assert_eq!(p.skipped, CAPACITY as u64 - 200);
        assert_eq!(p.lost, 501, "lines 3 to 503 are gone from the ring");
        assert_eq!(
            p.lines.last().unwrap().text,
            format!("line {}", CAPACITY + 499)
        );
        assert_eq!(r.lines.lock().len(), CAPACITY);
    }

    #[test]
    fn a_record_is_one_line_with_its_fields_and_bounded() {
        let t = Text {
            message: "forged\nline\x00".into(),
            fields: " topic=\"a\"".into(),
        };
        assert_eq!(t.finish(), "forged\\nline\\x00 topic=\"a\"");
        let long = Text {
            message: "x".repeat(10 * MAX_LINE),
            fields: String::new(),
        };
        assert_eq!(long.finish().len(), MAX_LINE);
    }
}
