//! Durations and counts as the config writes them (`500ms`, `1.5`, `2m`),
//! the allowed range of each setting, and durations in words.

use super::*;

/// A duration written as seconds (`1.5`) or with a unit (`500ms`, `5s`,
/// `2m`, `1h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

/// Why a duration or a `${VAR}` reference is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not seconds, not a number with a unit.
    #[error(
        "invalid duration `{0}`: expected seconds (e.g. 1.5) or a number with unit ms, s, m or h (e.g. 500ms)"
    )]
    Duration(String),
    /// Negative, infinite or not a number.
    #[error("invalid duration {0}: must be a non-negative number")]
    NegativeDuration(String),
    /// `${` without `}`.
    #[error("unterminated `${{` in `{0}`")]
    Unterminated(String),
    /// `${1-2}`.
    #[error("invalid environment variable name `{0}`")]
    VarName(String),
    /// Not set and no default.
    #[error("environment variable `{0}` is not set (write ${{{0}:-}} to make it optional)")]
    Unset(String),
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Num(f64),
            Text(String),
        }
        let parsed = match Repr::deserialize(d)? {
            Repr::Num(n) => seconds(n),
            Repr::Text(s) => parse_duration(&s),
        };
        parsed.map(Dur).map_err(serde::de::Error::custom)
    }
}

fn seconds(n: f64) -> Result<Duration, ValueError> {
    if !n.is_finite() || n < 0.0 {
        return Err(ValueError::NegativeDuration(n.to_string()));
    }
    Duration::try_from_secs_f64(n).map_err(|_| ValueError::NegativeDuration(n.to_string()))
}

/// Parses `1.5`, `500ms`, `5s`, `2m`, `1h` (also with a space before the unit).
pub fn parse_duration(s: &str) -> Result<Duration, ValueError> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || ValueError::Duration(s.to_string());
    let n: f64 = num.parse().map_err(|_| bad())?;
    let factor = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 0.001,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    seconds(n * factor).map_err(|_| bad())
}

/// The range a duration setting may take: values outside break the daemon
/// (a `1e19` deadline overflows, a `1e-9` interval spins a core), so
/// `check` rejects them. README.md lists them.
#[derive(Debug, Clone, Copy)]
pub struct DurRange {
    /// The key, for messages (`mqtt.ack_timeout`).
    pub name: &'static str,
    /// Used when the key is absent.
    pub default: Duration,
    /// Smallest allowed.
    pub min: Duration,
    /// Largest allowed.
    pub max: Duration,
}

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
const HOUR: u64 = 3600;

/// Every duration setting of the config and the scenes, with its range.
pub mod ranges {
    use super::{DurRange, HOUR, ms, secs};

    /// `mqtt.keep_alive`: PINGREQ interval and silent-broker probe (the
    /// MQTT client library needs at least 5 s).
    pub const KEEP_ALIVE: DurRange = DurRange {
        name: "mqtt.keep_alive",
        default: secs(5),
        min: secs(5),
        max: secs(600),
    };
    /// `mqtt.ack_timeout`.
    pub const ACK_TIMEOUT: DurRange = DurRange {
        name: "mqtt.ack_timeout",
        default: ms(500),
        min: ms(50),
        max: secs(60),
    };
    /// `mqtt.initial_retry_delay`.
    pub const INITIAL_RETRY_DELAY: DurRange = DurRange {
        name: "mqtt.initial_retry_delay",
        default: secs(1),
        min: ms(10),
        max: secs(HOUR),
    };
    /// `mqtt.max_retry_delay`.
    pub const MAX_RETRY_DELAY: DurRange = DurRange {
        name: "mqtt.max_retry_delay",
        default: secs(300),
        min: ms(10),
        max: secs(24 * HOUR),
    };
    /// `mqtt.connection_timeout`.
    pub const CONNECTION_TIMEOUT: DurRange = DurRange {
        name: "mqtt.connection_timeout",
        default: secs(30),
        min: ms(100),
        max: secs(300),
    };
    /// `mqtt.health_check_interval`.
    pub const HEALTH_CHECK_INTERVAL: DurRange = DurRange {
        name: "mqtt.health_check_interval",
        default: secs(60),
        min: secs(1),
        max: secs(24 * HOUR),
    };
    /// `mqtt.message_max_age`.
    pub const MESSAGE_MAX_AGE: DurRange = DurRange {
        name: "mqtt.message_max_age",
        default: secs(5),
        min: ms(100),
        max: secs(24 * HOUR),
    };
    /// `feedback.timeout` (and an action's `timeout`).
    pub const FEEDBACK_TIMEOUT: DurRange = DurRange {
        name: "feedback.timeout",
        default: secs(1),
        min: ms(10),
        max: secs(600),
    };
    /// `devices.stale_after`.
    pub const STALE_AFTER: DurRange = DurRange {
        name: "devices.stale_after",
        default: secs(60),
        min: secs(1),
        max: secs(24 * HOUR),
    };
    /// `media.audio_fade`.
    pub const AUDIO_FADE: DurRange = DurRange {
        name: "media.audio_fade",
        default: secs(1),
        min: ms(0),
        max: secs(60),
    };
    /// `web.header_timeout`.
    pub const HEADER_TIMEOUT: DurRange = DurRange {
        name: "web.header_timeout",
        default: secs(10),
        min: ms(100),
        max: secs(300),
    };
    /// `web.session_idle`.
    pub const SESSION_IDLE: DurRange = DurRange {
        name: "web.session_idle",
        default: secs(4 * HOUR),
        min: secs(60),
        max: secs(7 * 24 * HOUR),
    };
    /// `web.session_max`.
    pub const SESSION_MAX: DurRange = DurRange {
        name: "web.session_max",
        default: secs(12 * HOUR),
        min: secs(60),
        max: secs(30 * 24 * HOUR),
    };
    /// `scenes.min_start_interval`: a second start within it is ignored.
    pub const MIN_START_INTERVAL: DurRange = DurRange {
        name: "scenes.min_start_interval",
        default: ms(0),
        min: ms(0),
        max: secs(HOUR),
    };
    /// A trigger's `min_interval`.
    pub const TRIGGER_MIN_INTERVAL: DurRange = DurRange {
        name: "min_interval",
        default: ms(0),
        min: ms(0),
        max: secs(HOUR),
    };
    /// A scene's `at`, `duration`, a transition's `delay`: up to a day.
    pub const SCENE_TIME: DurRange = DurRange {
        name: "scene time",
        default: ms(0),
        min: ms(0),
        max: secs(24 * HOUR),
    };
}

impl DurRange {
    /// Whether `d` is allowed.
    pub fn contains(&self, d: Duration) -> bool {
        d >= self.min && d <= self.max
    }

    /// `mqtt.ack_timeout 90s is outside 50ms..60s`.
    pub fn message(&self, what: &str, d: Duration) -> String {
        format!(
            "{what} {} is outside {}..{}",
            human(d),
            human(self.min),
            human(self.max)
        )
    }
}

/// `500ms`, `1.5s`, `2m`, `24h`; huge values in seconds.
pub fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if d.is_zero() {
        "0s".into()
    } else if s < 0.001 {
        format!("{s:e}s")
    } else if s < 1.0 {
        format!("{}ms", d.as_millis())
    } else if s >= 3600.0 && s % 3600.0 == 0.0 && s < 1e9 {
        format!("{}h", s / 3600.0)
    } else if s >= 120.0 && s % 60.0 == 0.0 && s < 1e9 {
        format!("{}m", s / 60.0)
    } else if s < 1e9 {
        format!("{}s", (s * 1000.0).round() / 1000.0)
    } else {
        format!("{s:e}s")
    }
}

/// Formats like `0.234s`, as in the seed log lines.
pub fn secs3(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}
