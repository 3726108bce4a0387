//! Configuration: the typed, validated view of `roomctl.yaml` that everything
//! else reads. Loaded once at start; every problem comes back as a
//! `file:line:col: message` diagnostic, secrets never appear in `Debug` output.
//!
//! Relative paths (`scenes.dir`, `media.dir`, `mqtt.brokers_file`, …) are
//! resolved against the directory of the config file, so `roomctl check -c
//! /etc/roomctl/config.yaml` means the same thing from any working directory.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::diag::{Diagnostic, Diagnostics, Pos};
use crate::topic;
pub use crate::topic::{FeedbackTopic, Topics};

/// The longest client id roomctl accepts.
pub const MAX_CLIENT_ID: usize = 256;

/// Where the daemon looks when `-c` is not given.
pub const SYSTEM_CONFIG: &str = "/etc/roomctl/config.yaml";
/// Where the daemon looks when `-c` is not given and the system file is missing.
pub const LOCAL_CONFIG: &str = "config/roomctl.yaml";

/// `/etc/roomctl/config.yaml` if it exists, else `config/roomctl.yaml`.
pub fn default_config_path() -> PathBuf {
    let system = PathBuf::from(SYSTEM_CONFIG);
    if system.exists() {
        system
    } else {
        PathBuf::from(LOCAL_CONFIG)
    }
}

// ---------------------------------------------------------------------------
// Typed configuration
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
/// The whole configuration, validated.
pub struct Config {
    /// The file this was loaded from (for diagnostics).
    pub file: PathBuf,
    /// The room id (`room1`): prefix of its topics.
    pub room: String,
    /// The MQTT client.
    pub mqtt: MqttConfig,
    /// Feedback tracking.
    pub feedback: FeedbackConfig,
    /// The ESP32 devices.
    pub devices: DevicesConfig,
    /// Where the scenes are.
    pub scenes: ScenesConfig,
    /// Audio and video on the Pi.
    pub media: MediaConfig,
    /// The dashboard.
    pub web: WebConfig,
    /// Messages that start a scene.
    pub triggers: Vec<TriggerConfig>,
    /// Opening hours and scheduled shows (`schedule:`).
    pub schedule: Option<crate::schedule::Schedule>,
    /// Where the daemon keeps what must survive a restart (the schedule's
    /// pause switch, the show log): `state_dir`, else `$STATE_DIRECTORY`
    /// (systemd's `StateDirectory=`), else `state/` beside the config.
    pub state_dir: PathBuf,
    /// What loading noticed that does not stop the room (shown by `check`).
    pub warnings: Diagnostics,
}

#[derive(Debug, Clone)]
/// `mqtt:` (seed 002 names and defaults).
pub struct MqttConfig {
    /// The MQTT client id (default `rpi_room_<room>`).
    pub client_id: String,
    /// Sorted by priority (lowest number first); ties keep file order.
    pub brokers: Vec<BrokerConfig>,
    /// PINGREQ interval; also how often a silent broker is probed.
    pub keep_alive: Duration,
    /// A PUBACK or PINGRESP later than this marks the broker dead.
    pub ack_timeout: Duration,
    /// Failed rounds before the state is FAILED.
    pub max_retries: u32,
    /// The first retry delay.
    pub initial_retry_delay: Duration,
    /// The largest retry delay.
    pub max_retry_delay: Duration,
    /// Each failed round multiplies the delay by this.
    pub backoff_multiplier: f64,
    /// Random variance of a delay (0..1).
    pub jitter_factor: f64,
    /// How long one connection attempt may take.
    pub connection_timeout: Duration,
    /// How often a connection to a backup probes the brokers before it.
    pub health_check_interval: Duration,
    /// Messages the outbox holds (oldest dropped when full).
    pub message_queue_size: usize,
    /// Resends of a message after its first attempt.
    pub message_retry_limit: u32,
    /// A show cue older than this is dropped, never sent late.
    pub message_max_age: Duration,
}

#[derive(Debug, Clone, PartialEq)]
/// One broker (seed 000 format).
pub struct BrokerConfig {
    /// Host name or address.
    pub host: String,
    /// TCP port (1883).
    pub port: u16,
    /// User name, if the broker wants one.
    pub username: Option<String>,
    /// Password (never logged).
    pub password: Option<Secret>,
    /// Lower is tried first.
    pub priority: u32,
    /// MQTT over TLS (`tls:` or `broker: mqtts://...`).
    pub tls: Option<crate::tls::TlsSettings>,
}

impl BrokerConfig {
    /// A broker without credentials.
    pub fn new(host: impl Into<String>, port: u16, priority: u32) -> Self {
        BrokerConfig {
            host: host.into(),
            port,
            username: None,
            password: None,
            priority,
            tls: None,
        }
    }
    /// `host:port`, with `mqtts://` in front for TLS.
    pub fn addr(&self) -> String {
        if self.tls.is_some() {
            format!("mqtts://{}:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[derive(Debug, Clone)]
/// `feedback:`.
pub struct FeedbackConfig {
    /// How long a command waits for its confirmation (an action may set its own).
    pub timeout: Duration,
    /// Where replies arrive.
    pub topic: FeedbackTopic,
    /// Channels (last topic segment) played on the Pi: subset of audio, video.
    pub local_channels: Vec<String>,
    /// How many results `/api/feedback` keeps.
    pub history: usize,
}

#[derive(Debug, Clone)]
/// `devices:`.
pub struct DevicesConfig {
    /// An online device silent for longer than this is stale.
    pub stale_after: Duration,
    /// Devices the room expects, with the command topics each answers
    /// (may be empty). They are listed before they announce themselves,
    /// never forgotten, and name the device in a feedback TIMEOUT.
    pub known: BTreeMap<String, Vec<String>>,
    /// Ignore `devices/<id>/status` from ids not in `known`.
    pub known_only: bool,
}

impl Default for DevicesConfig {
    fn default() -> Self {
        DevicesConfig {
            stale_after: Duration::from_secs(60),
            known: BTreeMap::new(),
            known_only: false,
        }
    }
}

#[derive(Debug, Clone)]
/// `scenes:`.
pub struct ScenesConfig {
    /// The folder of scene files.
    pub dir: PathBuf,
    /// Started by the compatibility trigger `ROOM/scene = START`.
    pub default: Option<String>,
    /// Where `default` was written.
    pub default_pos: Pos,
}

#[derive(Debug, Clone)]
/// `media:`.
pub struct MediaConfig {
    /// The folder of sounds and clips.
    pub dir: PathBuf,
    /// `media.audio_dir`: sounds, when they have their own folder (an
    /// existing room's `audio/`); `dir` otherwise.
    pub audio_dir: Option<PathBuf>,
    /// `media.video_dir`: clips, when they have their own folder
    /// (`videos/`); `dir` otherwise.
    pub video_dir: Option<PathBuf>,
    /// Player command; `{file}` is replaced by the clip (or idle image).
    pub video_player: Vec<String>,
    /// Shown between clips; none means a black screen.
    pub idle_image: Option<PathBuf>,
    /// Where `idle_image` was written.
    pub idle_image_pos: Pos,
    /// Fade-out length when a scene ends.
    pub audio_fade: Duration,
    /// Play audio at all (off for `play` on a build server, say).
    pub audio_enabled: bool,
    /// Run the video player at all.
    pub video_enabled: bool,
}

impl MediaConfig {
    /// Where sounds are: `media.audio_dir`, else `media.dir`.
    pub fn audio_dir(&self) -> &Path {
        self.audio_dir.as_deref().unwrap_or(&self.dir)
    }

    /// Where clips are: `media.video_dir`, else `media.dir`.
    pub fn video_dir(&self) -> &Path {
        self.video_dir.as_deref().unwrap_or(&self.dir)
    }
}

#[derive(Debug, Clone)]
/// `web:`.
pub struct WebConfig {
    /// Serve the dashboard at all.
    pub enabled: bool,
    /// Address and port of the dashboard.
    pub listen: SocketAddr,
    /// Bearer token for control routes; `None` means open.
    pub token: Option<Secret>,
    /// Concurrent HTTP connections at most (more are answered `503` and
    /// closed at once, holding no descriptor).
    pub max_connections: usize,
    /// Live event streams (dashboards) at most; the oldest is dropped.
    pub max_sse_clients: usize,
    /// A request head must arrive within this time; an idle keep-alive
    /// connection is closed after it.
    pub header_timeout: Duration,
    /// `Stop — all off` needs no token (a panic button is never locked).
    pub open_stop: bool,
}

#[derive(Debug, Clone)]
/// One entry of `triggers:`.
pub struct TriggerConfig {
    /// The topic (filter) to watch.
    pub topic: String,
    /// `None` matches any payload.
    pub payload: Option<String>,
    /// The scene it starts.
    pub scene: String,
    /// Where the scene name was written, for `check`.
    pub pos: Pos,
}

/// What an unset `${VAR}` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvPolicy {
    /// An error: the daemon needs its secrets.
    Required,
    /// A warning, the value empty: `roomctl check` run by hand, without the
    /// service's environment file.
    Optional,
}

/// A value that must never be printed: passwords and tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself (for the one place that needs it).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, Diagnostics> {
        Self::load_with(path, EnvPolicy::Required)
    }

    /// Reads and validates a config file, with `${VAR}` handled per `env`.
    pub fn load_with(path: &Path, env: EnvPolicy) -> Result<Config, Diagnostics> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Diagnostic::file(path, format!("cannot read config: {e}")))?;
        Self::parse_with(&text, path, &|k| std::env::var(k).ok(), env)
    }

    /// Parses config text. `env` looks up `${VAR}` references (injected so
    /// tests do not touch the process environment).
    pub fn parse(
        text: &str,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, Diagnostics> {
        Self::parse_with(text, path, env, EnvPolicy::Required)
    }

    /// [`Config::parse`] with a choice about unset variables.
    pub fn parse_with(
        text: &str,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
        policy: EnvPolicy,
    ) -> Result<Config, Diagnostics> {
        let raw: RawConfig =
            serde_saphyr::from_str(text).map_err(|e| Diagnostic::from_yaml(path, &e))?;
        Validator {
            file: path,
            base: path.parent().unwrap_or(Path::new(".")),
            env,
            policy,
            diags: Diagnostics::default(),
            warnings: Diagnostics::default(),
        }
        .config(raw)
    }

    /// The channels that play on the Pi (`audio`, `video`), never published.
    pub fn is_local_channel(&self, channel: &str) -> bool {
        self.feedback.local_channels.iter().any(|c| c == channel)
    }

    /// Control topics of this room.
    pub fn topics(&self) -> Topics {
        Topics::new(&self.room)
    }
}

// ---------------------------------------------------------------------------
// Durations
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Raw (as written) configuration
// ---------------------------------------------------------------------------

type S = Spanned<String>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    room: S,
    #[serde(default)]
    mqtt: RawMqtt,
    #[serde(default)]
    feedback: RawFeedback,
    #[serde(default)]
    devices: RawDevices,
    #[serde(default)]
    scenes: RawScenes,
    #[serde(default)]
    media: RawMedia,
    #[serde(default)]
    web: RawWeb,
    #[serde(default)]
    triggers: Vec<RawTrigger>,
    schedule: Option<Spanned<RawSchedule>>,
    state_dir: Option<S>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    timezone: S,
    #[serde(default)]
    hours: RawHours,
    #[serde(default)]
    closed: Vec<S>,
    at_opening: Option<S>,
    at_closing: Option<S>,
    #[serde(default)]
    shows: Vec<Spanned<RawShow>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHours {
    default: Option<S>,
    mon: Option<S>,
    tue: Option<S>,
    wed: Option<S>,
    thu: Option<S>,
    fri: Option<S>,
    sat: Option<S>,
    sun: Option<S>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShow {
    scene: S,
    at: Option<S>,
    every: Option<Spanned<Dur>>,
    from: Option<S>,
    until: Option<S>,
    days: Option<Vec<S>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMqtt {
    client_id: Option<S>,
    #[serde(default)]
    brokers: Vec<Spanned<RawBroker>>,
    brokers_file: Option<S>,
    keep_alive: Option<Spanned<Dur>>,
    ack_timeout: Option<Spanned<Dur>>,
    max_retries: Option<Spanned<u32>>,
    initial_retry_delay: Option<Spanned<Dur>>,
    max_retry_delay: Option<Spanned<Dur>>,
    backoff_multiplier: Option<Spanned<f64>>,
    jitter_factor: Option<Spanned<f64>>,
    connection_timeout: Option<Spanned<Dur>>,
    health_check_interval: Option<Spanned<Dur>>,
    message_queue_size: Option<Spanned<usize>>,
    message_retry_limit: Option<Spanned<u32>>,
    message_max_age: Option<Spanned<Dur>>,
}

/// One broker in seed-000 format.
#[derive(Deserialize)]
struct RawBroker {
    broker: S,
    #[serde(default)]
    port: Option<Spanned<i64>>,
    username: Option<S>,
    password: Option<S>,
    priority: Option<u32>,
    tls: Option<Spanned<RawTls>>,
}

/// `tls: true` (the system's CA certificates) or the files (read by hand:
/// an untagged enum would lose the source positions).
enum RawTls {
    On(bool),
    Files(Box<RawTlsFiles>),
}

#[derive(Default)]
struct RawTlsFiles {
    ca_file: Option<S>,
    client_cert: Option<S>,
    client_key: Option<S>,
}

impl<'de> Deserialize<'de> for RawTls {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = RawTls;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("true, false, or { ca_file, client_cert, client_key }")
            }
            fn visit_bool<E>(self, v: bool) -> Result<RawTls, E> {
                Ok(RawTls::On(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<RawTls, A::Error> {
                const FIELDS: &[&str] = &["ca_file", "client_cert", "client_key"];
                let mut f = RawTlsFiles::default();
                while let Some(k) = m.next_key::<String>()? {
                    let slot = match k.as_str() {
                        "ca_file" => &mut f.ca_file,
                        "client_cert" => &mut f.client_cert,
                        "client_key" => &mut f.client_key,
                        other => return Err(serde::de::Error::unknown_field(other, FIELDS)),
                    };
                    *slot = Some(m.next_value::<S>()?);
                }
                Ok(RawTls::Files(Box::new(f)))
            }
        }
        d.deserialize_any(Visit)
    }
}

/// A seed-000 broker file: `{"brokers": [...], "game_config": {...}}`.
#[derive(Deserialize)]
struct RawBrokerFile {
    brokers: Vec<Spanned<RawBroker>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFeedback {
    timeout: Option<Spanned<Dur>>,
    topic: Option<S>,
    local_channels: Option<Vec<S>>,
    history: Option<Spanned<usize>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDevices {
    stale_after: Option<Spanned<Dur>>,
    known: Option<Spanned<RawKnown>>,
    known_only: Option<Spanned<bool>>,
}

/// `known: [esp32_01, esp32_02]` or `known: {esp32_01: [room1/light], ...}`
/// (read by hand: an untagged enum would lose the source positions).
enum RawKnown {
    List(Vec<S>),
    Map(Vec<(S, Vec<S>)>),
}

impl<'de> Deserialize<'de> for RawKnown {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = RawKnown;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of device ids, or a mapping of device id to its command topics")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<RawKnown, A::Error> {
                let mut v = Vec::new();
                while let Some(e) = a.next_element()? {
                    v.push(e);
                }
                Ok(RawKnown::List(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<RawKnown, A::Error> {
                let mut v = Vec::new();
                while let Some(e) = m.next_entry()? {
                    v.push(e);
                }
                Ok(RawKnown::Map(v))
            }
        }
        d.deserialize_any(Visit)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawScenes {
    dir: Option<S>,
    default: Option<S>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMedia {
    dir: Option<S>,
    audio_dir: Option<S>,
    video_dir: Option<S>,
    video_player: Option<Spanned<Vec<String>>>,
    idle_image: Option<S>,
    audio_fade: Option<Spanned<Dur>>,
    audio: Option<bool>,
    video: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWeb {
    enabled: Option<bool>,
    listen: Option<S>,
    token: Option<S>,
    max_connections: Option<Spanned<usize>>,
    max_sse_clients: Option<Spanned<usize>>,
    header_timeout: Option<Spanned<Dur>>,
    open_stop: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrigger {
    topic: S,
    payload: Option<String>,
    scene: S,
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

struct Validator<'a> {
    file: &'a Path,
    base: &'a Path,
    env: &'a dyn Fn(&str) -> Option<String>,
    policy: EnvPolicy,
    diags: Diagnostics,
    warnings: Diagnostics,
}

impl Validator<'_> {
    fn err(&mut self, pos: Pos, msg: impl Into<String>) {
        self.diags.push(Diagnostic::new(self.file, pos, msg));
    }

    fn warn(&mut self, pos: Pos, msg: impl Into<String>) {
        self.warnings.push(Diagnostic::new(
            self.file,
            pos,
            format!("warning: {}", msg.into()),
        ));
    }

    /// `${VAR}` / `${VAR:-default}` from the environment.
    fn expand(&mut self, s: &S) -> String {
        match expand_env(&s.value, self.env) {
            Ok(v) => v,
            Err(ValueError::Unset(name)) if self.policy == EnvPolicy::Optional => {
                self.warn(
                    Pos::of(s),
                    format!("environment variable `{name}` is not set here; the daemon will not start without it (under systemd it comes from /etc/roomctl/roomctl.env)"),
                );
                // The rest of the value still counts (`${A}` alone: empty).
                let lenient = |k: &str| (self.env)(k).or_else(|| Some(String::new()));
                expand_env(&s.value, &lenient).unwrap_or_default()
            }
            Err(e) => {
                self.err(Pos::of(s), e.to_string());
                String::new()
            }
        }
    }

    fn path(&mut self, s: &S) -> PathBuf {
        let p = PathBuf::from(self.expand(s));
        if p.is_absolute() {
            p
        } else {
            self.base.join(p)
        }
    }

    /// A duration setting, checked against its documented range.
    fn dur(&mut self, d: &Option<Spanned<Dur>>, r: DurRange) -> Duration {
        match d {
            None => r.default,
            Some(s) if !r.contains(s.value.0) => {
                self.err(Pos::of(s), r.message(r.name, s.value.0));
                r.default
            }
            Some(s) => s.value.0,
        }
    }

    /// A whole-number setting, checked against its range.
    fn count<T>(&mut self, v: &Option<Spanned<T>>, name: &str, default: T, lo: T, hi: T) -> T
    where
        T: Copy + PartialOrd + fmt::Display,
    {
        match v {
            None => default,
            Some(s) if s.value < lo || s.value > hi => {
                self.err(
                    Pos::of(s),
                    format!("{name} {} is outside {lo}..{hi}", s.value),
                );
                default
            }
            Some(s) => s.value,
        }
    }

    fn config(mut self, raw: RawConfig) -> Result<Config, Diagnostics> {
        let room = self.expand(&raw.room);
        if !topic::is_plain_level(&room) || room.trim() != room {
            self.err(
                Pos::of(&raw.room),
                format!("room `{room}` must be a non-empty name without '/', '+', '#' or spaces"),
            );
        }
        let mqtt = self.mqtt(raw.mqtt, &room);
        let feedback = self.feedback(raw.feedback);
        let devices = self.devices(&raw.devices);
        let scenes = ScenesConfig {
            dir: match &raw.scenes.dir {
                Some(d) => self.path(d),
                None => self.base.join("scenes"),
            },
            default: raw.scenes.default.as_ref().map(|s| self.expand(s)),
            default_pos: raw.scenes.default.as_ref().map(Pos::of).unwrap_or_default(),
        };
        let media = self.media(raw.media);
        let web = self.web(raw.web);
        let mut triggers = Vec::new();
        for t in raw.triggers {
            if let Err(e) = topic::validate_filter(&t.topic.value) {
                self.err(Pos::of(&t.topic), format!("trigger topic: {e}"));
            }
            triggers.push(TriggerConfig {
                topic: t.topic.value.clone(),
                payload: t.payload,
                scene: t.scene.value.clone(),
                pos: Pos::of(&t.scene),
            });
        }
        let schedule = raw.schedule.map(|r| self.schedule(r));
        let state_dir = match &raw.state_dir {
            Some(d) => self.path(d),
            None => std::env::var_os("STATE_DIRECTORY")
                .filter(|v| !v.is_empty())
                // systemd may list several, separated by ':'.
                .and_then(|v| std::env::split_paths(&v).next())
                .unwrap_or_else(|| self.base.join("state")),
        };
        let Validator {
            file,
            diags,
            warnings,
            ..
        } = self;
        diags.into_result(Config {
            schedule,
            state_dir,
            file: file.to_path_buf(),
            room,
            mqtt,
            feedback,
            devices,
            scenes,
            media,
            web,
            triggers,
            warnings,
        })
    }

    fn schedule(&mut self, raw: Spanned<RawSchedule>) -> crate::schedule::Schedule {
        use crate::schedule::{self as sch, Hours, Named, Show, When};
        let r = raw.value;
        let tz = match sch::parse_timezone(&r.timezone.value) {
            Ok(tz) => tz,
            Err(e) => {
                self.err(Pos::of(&r.timezone), format!("schedule.timezone: {e}"));
                jiff::tz::TimeZone::UTC
            }
        };
        let h = &r.hours;
        let mut hours: [Option<Hours>; 7] = [None; 7];
        let mut any_open = false;
        let days = [&h.mon, &h.tue, &h.wed, &h.thu, &h.fri, &h.sat, &h.sun];
        for (i, d) in days.iter().enumerate() {
            let Some(v) = d.as_ref().or(h.default.as_ref()) else {
                continue;
            };
            match sch::parse_hours(&v.value) {
                Ok(x) => {
                    any_open |= x.is_some();
                    hours[i] = x;
                }
                Err(e) => self.err(
                    Pos::of(v),
                    format!("schedule.hours.{}: {e}", sch::WEEKDAYS[i]),
                ),
            }
        }
        if !any_open {
            self.warn(
                Pos::of(&r.timezone),
                "schedule: no opening hours (schedule.hours), so nothing is ever started",
            );
        }
        let mut closed = std::collections::BTreeSet::new();
        for c in &r.closed {
            match sch::parse_date(&c.value) {
                Ok(d) => {
                    closed.insert(d);
                }
                Err(e) => self.err(Pos::of(c), format!("schedule.closed: {e}")),
            }
        }
        let named = |n: &Option<S>| {
            n.as_ref().map(|s| Named {
                scene: s.value.trim().to_string(),
                pos: Pos::of(s),
            })
        };
        let mut shows = Vec::new();
        for rs in &r.shows {
            let s = &rs.value;
            let at_pos = Pos::of(rs);
            let time = |v: &mut Self, t: &Option<S>, key: &str| -> Option<jiff::civil::Time> {
                let t = t.as_ref()?;
                match sch::parse_time(&t.value) {
                    Ok(x) => Some(x),
                    Err(e) => {
                        v.err(Pos::of(t), format!("schedule.shows.{key}: {e}"));
                        None
                    }
                }
            };
            let at = time(self, &s.at, "at");
            let from = time(self, &s.from, "from");
            let until = time(self, &s.until, "until");
            let when = match (&s.at, &s.every) {
                (Some(_), None) => {
                    if s.from.is_some() || s.until.is_some() {
                        self.err(
                            at_pos,
                            "schedule.shows: `from`/`until` go with `every`, not with `at`",
                        );
                    }
                    at.map(When::At)
                }
                (None, Some(every)) => {
                    let d = every.value.0;
                    if d < Duration::from_secs(60)
                        || d > Duration::from_secs(24 * 3600)
                        || d.as_secs() % 60 != 0
                        || d.subsec_nanos() != 0
                    {
                        self.err(
                            Pos::of(every),
                            format!(
                                "schedule.shows.every: {} must be whole minutes between 1m and 24h",
                                human(d)
                            ),
                        );
                        None
                    } else if s.from.is_none() || s.until.is_none() {
                        self.err(at_pos, "schedule.shows: `every` needs `from` and `until` (e.g. every: 15m, from: \"10:00\", until: \"17:30\")");
                        None
                    } else {
                        match (from, until) {
                            (Some(f), Some(u)) if u < f => {
                                self.err(
                                    Pos::of(s.until.as_ref().unwrap()),
                                    "schedule.shows.until: before `from`",
                                );
                                None
                            }
                            (Some(f), Some(u)) => Some(When::Every {
                                every: d,
                                from: f,
                                until: u,
                            }),
                            _ => None,
                        }
                    }
                }
                (Some(_), Some(every)) => {
                    self.err(
                        Pos::of(every),
                        "schedule.shows: either `at` or `every`, not both",
                    );
                    None
                }
                (None, None) => {
                    self.err(
                        at_pos,
                        "schedule.shows: needs `at: \"HH:MM\"` or `every` with `from` and `until`",
                    );
                    None
                }
            };
            let mut day_set = None;
            if let Some(ds) = &s.days {
                let mut set = [false; 7];
                for d in ds {
                    match sch::parse_weekday(&d.value) {
                        Ok(i) => set[i] = true,
                        Err(e) => self.err(Pos::of(d), format!("schedule.shows.days: {e}")),
                    }
                }
                day_set = Some(set);
            }
            if let Some(when) = when {
                // A show that can never run while open is a mistake.
                let times: Vec<jiff::civil::Time> = match &when {
                    When::At(t) => vec![*t],
                    When::Every { from, until, .. } => vec![*from, *until],
                };
                let runs = (0..7).any(|i| {
                    day_set.is_none_or(|d| d[i])
                        && hours[i].is_some_and(|h| match &when {
                            When::At(_) => times[0] >= h.open && times[0] < h.close,
                            When::Every { .. } => times[0] < h.close && times[1] >= h.open,
                        })
                });
                if any_open && !runs {
                    self.warn(
                        Pos::of(&s.scene),
                        format!("schedule: the show `{}` falls outside the opening hours of its days, so it never runs", s.scene.value),
                    );
                }
                shows.push(Show {
                    scene: s.scene.value.trim().to_string(),
                    when,
                    days: day_set,
                    pos: Pos::of(&s.scene),
                });
            }
        }
        sch::Schedule {
            timezone: r.timezone.value.trim().to_string(),
            tz,
            hours,
            closed,
            at_opening: named(&r.at_opening),
            at_closing: named(&r.at_closing),
            shows,
        }
    }

    fn devices(&mut self, d: &RawDevices) -> DevicesConfig {
        let mut known = BTreeMap::new();
        let entries: Vec<(&S, &[S])> = match d.known.as_ref().map(|k| &k.value) {
            None => Vec::new(),
            Some(RawKnown::List(ids)) => ids.iter().map(|i| (i, &[][..])).collect(),
            Some(RawKnown::Map(m)) => m.iter().map(|(i, t)| (i, t.as_slice())).collect(),
        };
        for (id, topics) in entries {
            if !topic::is_plain_level(&id.value) {
                self.err(
                    Pos::of(id),
                    format!(
                        "devices.known: `{}` is not a device id (one topic level, no '/', '+', '#')",
                        id.value
                    ),
                );
                continue;
            }
            let mut channels = Vec::new();
            for t in topics {
                match topic::validate_name(&t.value) {
                    Ok(()) => channels.push(t.value.clone()),
                    Err(e) => self.err(Pos::of(t), format!("devices.known.{}: {e}", id.value)),
                }
            }
            known.insert(id.value.clone(), channels);
        }
        let known_only = d.known_only.as_ref().is_some_and(|k| k.value);
        if known_only && known.is_empty() {
            let pos = d.known_only.as_ref().map(Pos::of).unwrap_or_default();
            self.err(
                pos,
                "devices.known_only is true but devices.known lists no device: every device would be ignored",
            );
        }
        DevicesConfig {
            stale_after: self.dur(&d.stale_after, ranges::STALE_AFTER),
            known,
            known_only,
        }
    }

    fn mqtt(&mut self, m: RawMqtt, room: &str) -> MqttConfig {
        let client_id = match &m.client_id {
            Some(c) => {
                let id = self.expand(c);
                let n = id.chars().count();
                if n == 0 || n > MAX_CLIENT_ID || id.contains('\0') {
                    self.err(
                        Pos::of(c),
                        format!("mqtt.client_id must be 1..{MAX_CLIENT_ID} characters without NUL (it has {n})"),
                    );
                } else if n > 23 {
                    self.warn(
                        Pos::of(c),
                        format!("mqtt.client_id is {n} characters long: brokers need only accept 23 (Mosquitto accepts more)"),
                    );
                }
                id
            }
            None => format!("rpi_room_{room}"),
        };
        let mut brokers = Vec::new();
        for (i, b) in m.brokers.iter().enumerate() {
            brokers.push(self.broker(b, i));
        }
        if let Some(f) = &m.brokers_file {
            let path = self.path(f);
            match std::fs::read_to_string(&path) {
                Err(e) => self.err(
                    Pos::of(f),
                    format!("cannot read brokers_file {}: {e}", path.display()),
                ),
                Ok(text) => match serde_saphyr::from_str::<RawBrokerFile>(&text) {
                    Err(e) => self.diags.push(Diagnostic::from_yaml(&path, &e)),
                    Ok(file) => {
                        // Diagnostics inside the brokers file point at that file.
                        let mut inner = Validator {
                            file: &path,
                            base: self.base,
                            env: self.env,
                            policy: self.policy,
                            diags: Diagnostics::default(),
                            warnings: Diagnostics::default(),
                        };
                        let start = brokers.len();
                        for (i, b) in file.brokers.iter().enumerate() {
                            brokers.push(inner.broker(b, start + i));
                        }
                        self.diags.extend(inner.diags);
                        self.warnings.extend(inner.warnings);
                    }
                },
            }
        }
        if brokers.is_empty() {
            self.err(
                Pos::UNKNOWN,
                "mqtt: no brokers configured (add mqtt.brokers or mqtt.brokers_file)",
            );
        }
        brokers.sort_by_key(|b| b.priority);

        // Whole seconds (the MQTT field); never off: the PINGREQs it sets
        // are how a silent broker is found.
        let keep_alive = Duration::from_secs(self.dur(&m.keep_alive, ranges::KEEP_ALIVE).as_secs());
        let initial_retry_delay = self.dur(&m.initial_retry_delay, ranges::INITIAL_RETRY_DELAY);
        let max_retry_delay = self.dur(&m.max_retry_delay, ranges::MAX_RETRY_DELAY);
        if max_retry_delay < initial_retry_delay
            && let Some(s) = &m.max_retry_delay
        {
            self.err(
                Pos::of(s),
                "mqtt.max_retry_delay must not be smaller than mqtt.initial_retry_delay",
            );
        }
        let backoff_multiplier = match &m.backoff_multiplier {
            None => 2.0,
            Some(s) if !(1.0..=100.0).contains(&s.value) => {
                self.err(
                    Pos::of(s),
                    "mqtt.backoff_multiplier must be between 1 and 100",
                );
                2.0
            }
            Some(s) => s.value,
        };
        let jitter_factor = match &m.jitter_factor {
            None => 0.1,
            Some(s) if !(0.0..=1.0).contains(&s.value) => {
                self.err(Pos::of(s), "mqtt.jitter_factor must be between 0.0 and 1.0");
                0.1
            }
            Some(s) => s.value,
        };
        let message_queue_size = self.count(
            &m.message_queue_size,
            "mqtt.message_queue_size",
            1000,
            1,
            100_000,
        );
        MqttConfig {
            client_id,
            brokers,
            keep_alive,
            ack_timeout: self.dur(&m.ack_timeout, ranges::ACK_TIMEOUT),
            max_retries: self.count(&m.max_retries, "mqtt.max_retries", 10, 1, 1_000_000),
            initial_retry_delay,
            max_retry_delay,
            backoff_multiplier,
            jitter_factor,
            connection_timeout: self.dur(&m.connection_timeout, ranges::CONNECTION_TIMEOUT),
            health_check_interval: self
                .dur(&m.health_check_interval, ranges::HEALTH_CHECK_INTERVAL),
            message_queue_size,
            message_retry_limit: self.count(
                &m.message_retry_limit,
                "mqtt.message_retry_limit",
                3,
                0,
                100,
            ),
            message_max_age: self.dur(&m.message_max_age, ranges::MESSAGE_MAX_AGE),
        }
    }

    fn broker(&mut self, b: &Spanned<RawBroker>, index: usize) -> BrokerConfig {
        let written = self.expand(&b.value.broker);
        let host_pos = Pos::of(&b.value.broker);
        // `mqtts://host` (the URL style): TLS, port 8883 unless given.
        let (host, url_tls) = match written.strip_prefix("mqtts://") {
            Some(h) => (h.trim_end_matches('/').to_string(), true),
            None => match written.strip_prefix("mqtt://") {
                Some(h) => (h.trim_end_matches('/').to_string(), false),
                None => (written, false),
            },
        };
        if host.is_empty() {
            self.err(host_pos, "broker host must not be empty");
        } else if let Some((h, p)) = host.rsplit_once(':')
            && !h.contains(':')
            && p.chars().all(|c| c.is_ascii_digit())
        {
            // One colon and digits after it: host:port, not an IPv6 address.
            self.err(
                host_pos,
                format!("broker `{host}` has the port in it: write `broker: {h}` and `port: {p}`"),
            );
        }
        let tls = self.tls(b.value.tls.as_ref(), url_tls);
        let port = match &b.value.port {
            None if tls.is_some() => 8883,
            None => 1883,
            Some(p) if (1..=65535).contains(&p.value) => p.value as u16,
            Some(p) => {
                self.err(
                    Pos::of(p),
                    format!("broker port {} is outside 1..65535", p.value),
                );
                1883
            }
        };
        let username = b
            .value
            .username
            .as_ref()
            .map(|u| self.expand(u))
            .filter(|u| !u.is_empty());
        let password = b
            .value
            .password
            .as_ref()
            .map(|p| self.expand(p))
            .filter(|p| !p.is_empty())
            .map(Secret);
        BrokerConfig {
            host,
            port,
            username,
            password,
            priority: b.value.priority.unwrap_or(index as u32 + 1),
            tls,
        }
    }

    /// A broker's `tls:` (or `mqtts://`), with its files read and checked.
    fn tls(
        &mut self,
        raw: Option<&Spanned<RawTls>>,
        url_tls: bool,
    ) -> Option<crate::tls::TlsSettings> {
        let (pos, files) = match raw {
            None if url_tls => (Pos::UNKNOWN, None),
            None => return None,
            Some(t) => match &t.value {
                RawTls::On(false) if url_tls => {
                    self.err(Pos::of(t), "`tls: false` with a `mqtts://` broker");
                    return None;
                }
                RawTls::On(false) => return None,
                RawTls::On(true) => (Pos::of(t), None),
                RawTls::Files(f) => (Pos::of(t), Some(f)),
            },
        };
        let path = |s: &Option<S>, me: &mut Self| s.as_ref().map(|p| me.path(p));
        let (ca, cert, key) = match files {
            None => (None, None, None),
            Some(f) => (
                path(&f.ca_file, self),
                path(&f.client_cert, self),
                path(&f.client_key, self),
            ),
        };
        match crate::tls::TlsSettings::load(ca.as_deref(), cert.as_deref(), key.as_deref()) {
            Ok(t) => Some(t),
            Err(e) => {
                let at = files
                    .and_then(|f| match &e {
                        crate::tls::TlsError::Read { what, .. }
                        | crate::tls::TlsError::Empty { what, .. }
                        | crate::tls::TlsError::Invalid { what, .. } => match *what {
                            "tls.ca_file" => f.ca_file.as_ref().map(Pos::of),
                            "tls.client_cert" => f.client_cert.as_ref().map(Pos::of),
                            "tls.client_key" => f.client_key.as_ref().map(Pos::of),
                            _ => None,
                        },
                        _ => None,
                    })
                    // (inside `tls: {...}` positions can be lost; then the
                    // `tls:` value's own)
                    .filter(|p| p.line > 0)
                    .unwrap_or(pos);
                self.err(at, e.to_string());
                None
            }
        }
    }

    fn feedback(&mut self, f: RawFeedback) -> FeedbackConfig {
        let topic = match &f.topic {
            None => FeedbackTopic::default(),
            Some(s) => match FeedbackTopic::new(&s.value) {
                Ok(t) => t,
                Err(e) => {
                    self.err(Pos::of(s), e.to_string());
                    FeedbackTopic::default()
                }
            },
        };
        let local_channels = match &f.local_channels {
            None => vec!["audio".to_string(), "video".to_string()],
            Some(list) => {
                let mut out = Vec::new();
                for c in list {
                    if c.value == "audio" || c.value == "video" {
                        out.push(c.value.clone());
                    } else {
                        self.err(
                            Pos::of(c),
                            format!(
                                "feedback.local_channels: `{}` has no player on the Pi (allowed: audio, video)",
                                c.value
                            ),
                        );
                    }
                }
                out
            }
        };
        FeedbackConfig {
            timeout: self.dur(&f.timeout, ranges::FEEDBACK_TIMEOUT),
            topic,
            local_channels,
            history: self.count(&f.history, "feedback.history", 200, 1, 100_000),
        }
    }

    fn media(&mut self, m: RawMedia) -> MediaConfig {
        let video_player = match &m.video_player {
            None => ["mpv", "--fs", "--really-quiet", "{file}"]
                .map(String::from)
                .to_vec(),
            Some(s) if s.value.is_empty() => {
                self.err(Pos::of(s), "media.video_player must name a program");
                Vec::new()
            }
            Some(s) => s.value.clone(),
        };
        MediaConfig {
            dir: match &m.dir {
                Some(d) => self.path(d),
                None => self.base.join("media"),
            },
            audio_dir: m.audio_dir.as_ref().map(|d| self.path(d)),
            video_dir: m.video_dir.as_ref().map(|d| self.path(d)),
            video_player,
            idle_image: m.idle_image.as_ref().map(|p| self.path(p)),
            idle_image_pos: m.idle_image.as_ref().map(Pos::of).unwrap_or_default(),
            audio_fade: self.dur(&m.audio_fade, ranges::AUDIO_FADE),
            audio_enabled: m.audio.unwrap_or(true),
            video_enabled: m.video.unwrap_or(true),
        }
    }

    fn web(&mut self, w: RawWeb) -> WebConfig {
        let listen = match &w.listen {
            None => SocketAddr::from(([0, 0, 0, 0], 8080)),
            Some(s) => {
                let text = self.expand(s);
                match text.parse() {
                    Ok(a) => a,
                    Err(_) => {
                        self.err(
                            Pos::of(s),
                            format!("web.listen `{text}` is not an address like 0.0.0.0:8080"),
                        );
                        SocketAddr::from(([0, 0, 0, 0], 8080))
                    }
                }
            }
        };
        let token = w
            .token
            .as_ref()
            .map(|t| self.expand(t))
            .filter(|t| !t.is_empty())
            .map(Secret);
        WebConfig {
            enabled: w.enabled.unwrap_or(true),
            listen,
            token,
            max_connections: self.count(&w.max_connections, "web.max_connections", 256, 4, 65_536),
            max_sse_clients: self.count(&w.max_sse_clients, "web.max_sse_clients", 32, 1, 1024),
            header_timeout: self.dur(&w.header_timeout, ranges::HEADER_TIMEOUT),
            open_stop: w.open_stop.unwrap_or(true),
        }
    }
}

/// Replaces `${VAR}` and `${VAR:-default}`; `$${` is a literal `${`.
pub fn expand_env(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, ValueError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(lit) = after.strip_prefix("${") {
            out.push_str("${");
            rest = lit;
            continue;
        }
        let Some(body) = after.strip_prefix('{') else {
            out.push('$');
            rest = after;
            continue;
        };
        let Some(end) = body.find('}') else {
            return Err(ValueError::Unterminated(s.to_string()));
        };
        let inner = &body[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ValueError::VarName(name.to_string()));
        }
        match (env(name), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => return Err(ValueError::Unset(name.to_string())),
        }
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Collects unique strings in first-seen order.
pub(crate) fn unique<I: IntoIterator<Item = String>>(items: I) -> Vec<String> {
    let mut seen = HashSet::new();
    items
        .into_iter()
        .filter(|s| seen.insert(s.clone()))
        .collect()
}

#[cfg(test)]
mod tests;
