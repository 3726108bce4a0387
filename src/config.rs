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

use crate::access::Role;
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
    /// Built in memory, not read from `file` (the demo): a reload reads
    /// the scenes again and keeps this config.
    pub in_memory: bool,
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
    /// Who may run the room over MQTT (`control:`).
    pub control: ControlConfig,
    /// `estop:`.
    pub estop: EstopConfig,
    /// Opening hours and scheduled shows (`schedule:`).
    pub schedule: Option<crate::schedule::plan::Schedule>,
    /// Where the daemon keeps what must survive a restart (the schedule's
    /// pause switch, the show log): `state_dir`, else `$STATE_DIRECTORY`
    /// (systemd's `StateDirectory=`), else `state/` beside the config.
    pub state_dir: PathBuf,
    /// What loading noticed that does not stop the room (shown by `check`).
    pub warnings: Diagnostics,
}

#[derive(Debug, Clone, PartialEq)]
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
    /// One broker at a time, or every broker at once (`mqtt.connect`).
    pub connect: Connect,
}

/// How the room connects to its brokers (`mqtt.connect`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Connect {
    /// `one_at_a_time`: one connection, failing over along the priority
    /// list (seed 000).
    #[default]
    OneAtATime,
    /// `every_broker`: a connection to every broker, kept up at once; a
    /// board is reached on the broker it is heard on.
    EveryBroker,
}

impl Connect {
    /// As written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Connect::OneAtATime => "one_at_a_time",
            Connect::EveryBroker => "every_broker",
        }
    }
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

#[derive(Debug, Clone, PartialEq)]
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
    /// Each known board's own safe state (`known.<id>.safe`): sent at stop,
    /// panic, E-stop and shutdown besides `ROOM/STOP`, for firmware that
    /// does not understand `ROOM/STOP`.
    pub safe: BTreeMap<String, Vec<(String, String)>>,
}

impl Default for DevicesConfig {
    fn default() -> Self {
        DevicesConfig {
            stale_after: Duration::from_secs(60),
            known: BTreeMap::new(),
            known_only: false,
            safe: BTreeMap::new(),
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
    /// A start within this long of the last start is ignored (a double
    /// press), and logged; zero: off.
    pub min_start_interval: Duration,
}

#[derive(Debug, Clone, Default, PartialEq)]
/// `estop:`: the latched emergency stop (`src/estop.rs`).
pub struct EstopConfig {
    /// A hardware button's topic (`room1/estop`); the room's own
    /// `roomctl/ROOM/estop` control topic works without it.
    pub topic: Option<String>,
    /// The payload that presses it on `topic` (none: any).
    pub payload: Option<String>,
    /// The dashboard's "Stop — all off" latches too.
    pub panic_latches: bool,
}

#[derive(Debug, Clone, PartialEq)]
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
    /// `media.max_upload` (MiB, default 512): the largest file the media
    /// library takes, in bytes.
    pub max_upload: u64,
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

#[derive(Debug, Clone, PartialEq)]
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
    /// The accounts file (`users.yaml` beside the config by default).
    pub users: PathBuf,
    /// What a request without credentials may do once any account or
    /// token exists (`None`: nothing, not even read).
    pub anonymous: Option<Role>,
    /// The role of `web.token`.
    pub token_role: Role,
    /// A session ends after this long without a request.
    pub session_idle: Duration,
    /// A session ends this long after the login, used or not.
    pub session_max: Duration,
    /// The session cookie is `Secure` (served through a TLS proxy).
    /// Without it, the cookie is `Secure` when the request came as
    /// `X-Forwarded-Proto: https`.
    pub secure_cookie: bool,
}

/// `control:`: signed control messages (see `crate::signing`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ControlConfig {
    /// The site's key: with it, commands on the control topics count only
    /// when signed with it. Without it, they count unsigned (as before).
    pub key: Option<Secret>,
    /// Control topics (filters) that count unsigned even with a key: the
    /// predecessor's `ROOM/scene`, a button board that cannot sign.
    pub unsigned: Vec<String>,
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
    /// Where the topic was written.
    pub topic_pos: Pos,
    /// A second start by this trigger within this long is ignored.
    pub min_interval: Duration,
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

/// Where the top-level `key:` is written in `text` (1:1 when it is not).
fn top_level_key(text: &str, key: &str) -> Pos {
    text.lines()
        .position(|l| l.strip_prefix(key).is_some_and(|r| r.starts_with(':')))
        .map_or(Pos { line: 1, col: 1 }, |i| Pos {
            line: u32::try_from(i + 1).unwrap_or(u32::MAX),
            col: 1,
        })
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, Diagnostics> {
        Self::load_with(path, EnvPolicy::Required)
    }

    /// Reads and validates a config file, with `${VAR}` handled per `env`.
    pub fn load_with(path: &Path, env: EnvPolicy) -> Result<Config, Diagnostics> {
        let text = crate::diag::read_text(path, "config")?;
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
            mqtt_pos: top_level_key(text, "mqtt"),
        }
        .config(raw)
    }

    /// Control topics of this room.
    pub fn topics(&self) -> Topics {
        Topics::new(&self.room)
    }
}

mod env;
mod raw;
mod units;
mod validate;

pub use env::expand_env;
use raw::RawConfig;
pub use units::{Dur, DurRange, ValueError, human, parse_duration, ranges, secs3};
use validate::Validator;

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
