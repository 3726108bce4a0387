//! The event bus: one tokio broadcast channel of typed events (device,
//! feedback, scene, connection, media changes). It feeds the dashboard's SSE
//! stream, the retained state topic and `roomctl play`'s report. Publishing
//! never blocks; a slow reader misses events, never the publisher.
//!
//! This module owns the event payload types and imports nothing from the
//! rest of the crate: the modules that produce events depend on it, never
//! the other way round.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::origin::Origin;

/// One thing that changed in the room.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum Event {
    /// A device came online, went offline or stale.
    Device(DeviceView),
    /// A command was confirmed, failed or timed out.
    Feedback(FeedbackRecord),
    /// Scene lifecycle and progress.
    Scene(SceneEvent),
    /// The MQTT connection changed.
    Connection(ConnectionStatus),
    /// A sound or clip started, ended or failed.
    Media(MediaEvent),
    /// A command file started or ended.
    Command(CommandEvent),
    /// Someone acted on the room, or tried to (the audit trail).
    Action(ActionEvent),
    /// What an output (a command channel) is believed to be doing changed.
    Output(OutputView),
}

impl Event {
    /// The SSE event name.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Device(_) => "device",
            Event::Feedback(_) => "feedback",
            Event::Scene(_) => "scene",
            Event::Connection(_) => "connection",
            Event::Media(_) => "media",
            Event::Command(_) => "command",
            Event::Action(_) => "action",
            Event::Output(_) => "output",
        }
    }
}

/// The sending side of the bus. Cheap to clone.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
}

impl EventBus {
    /// A bus that keeps `capacity` events for slow readers (at least 16).
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(16));
        EventBus { tx }
    }

    /// Announces an event; never blocks, fine without readers.
    pub fn publish(&self, e: Event) {
        let _ = self.tx.send(e);
    }

    /// A new reader that sees every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new(1024)
    }
}

// ---------------------------------------------------------------------------
// Connection (seed 002 states)
// ---------------------------------------------------------------------------

/// Seed 002 connection states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConnectionState {
    /// Not connected and not trying (before start, after close).
    Disconnected,
    /// The first connection attempt is under way.
    Connecting,
    /// Connected and operational.
    Connected,
    /// Trying again after a loss.
    Reconnecting,
    /// `max_retries` rounds failed (retrying continues, slowly).
    Failed,
}

impl ConnectionState {
    /// The seed's upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Disconnected => "DISCONNECTED",
            ConnectionState::Connecting => "CONNECTING",
            ConnectionState::Connected => "CONNECTED",
            ConnectionState::Reconnecting => "RECONNECTING",
            ConnectionState::Failed => "FAILED",
        }
    }
}

/// Where the connection is now.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConnectionStatus {
    /// The seed 002 state.
    pub state: ConnectionState,
    /// `host:port` of the broker in use (or being tried).
    pub broker: Option<String>,
    /// 1-based position in the priority list.
    pub broker_priority_index: Option<usize>,
    /// How many brokers are configured.
    pub broker_count: usize,
    /// Unix time (seconds) when this state was entered.
    pub since: f64,
    /// Why the last attempt or connection failed.
    pub last_error: Option<String>,
}

// ---------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------

/// Whether a device is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    /// Said `online` (or `OK`) recently.
    Online,
    /// Said `offline` (or its last will did).
    Offline,
    /// Online, but silent for longer than `devices.stale_after`.
    Stale,
}

impl Presence {
    /// Lower-case name, as in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Online => "online",
            Presence::Offline => "offline",
            Presence::Stale => "stale",
        }
    }
}

/// What the API and dashboard show for one device.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeviceView {
    /// The `<id>` of `devices/<id>/status`.
    pub id: String,
    /// online / offline / stale.
    pub presence: Presence,
    /// The last status payload as received (`online`, `offline`, `OK`).
    pub status: String,
    /// Unix time of the last message.
    pub last_seen: f64,
    /// Seconds since the last message, when this view was made (-1: never).
    pub seconds_since_seen: f64,
    /// Messages received from it.
    pub messages: u64,
    /// Listed in `devices.known`.
    pub known: bool,
    /// The command topics it answers (announced, or from the config).
    pub channels: Vec<String>,
    /// The broker it was last heard on (`host:port`).
    pub broker: Option<String>,
    /// Heard on two brokers in turn, in words.
    pub broker_note: Option<String>,
}

// ---------------------------------------------------------------------------
// Outputs
// ---------------------------------------------------------------------------

/// What the room believes an output is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputState {
    /// Its last command was confirmed: it does `message`.
    Confirmed,
    /// A command went out and waits for its confirmation.
    Pending,
    /// Its last command got ERROR or no reply.
    Failed,
    /// Not known: never commanded since the daemon started, or its board
    /// went offline after the last command.
    Unknown,
    /// `ROOM/STOP` went out after its last command: off. (Boards do not
    /// confirm a STOP.)
    Stopped,
}

/// One output (a command channel, `room1/light`) and its state.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OutputView {
    /// The channel.
    pub channel: String,
    /// What the room believes.
    pub state: OutputState,
    /// The last command (`ON`, `ON:50:L`, `STOP`), if any.
    pub message: Option<String>,
    /// Unix time of the change.
    pub since: f64,
    /// Why, in words (`TIMEOUT`, `board esp32_01 offline`).
    pub why: Option<String>,
    /// The board that answers it, when known.
    pub device: Option<String>,
}

// ---------------------------------------------------------------------------
// Feedback
// ---------------------------------------------------------------------------

/// The result of one tracked command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Outcome {
    /// Confirmed (`OK`, `ACTIVE`, `INACTIVE`).
    Ok,
    /// The device answered `ERROR`.
    Error,
    /// No reply within the timeout.
    Timeout,
}

/// One confirmed, failed or timed-out command.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FeedbackRecord {
    /// Unique per tracker.
    pub id: u64,
    /// Where the command was published (`room1/light`).
    pub command_topic: String,
    /// The command (`ON`).
    pub message: String,
    /// Where the reply was expected (`room1/status`).
    pub feedback_topic: String,
    /// OK, ERROR or TIMEOUT.
    pub result: Outcome,
    /// Seconds from publish to reply; none for a timeout.
    pub latency: Option<f64>,
    /// The timeout it had, in seconds.
    pub timeout: f64,
    /// The reply payload as received.
    pub reply: Option<String>,
    /// The scene that sent it, if any.
    pub scene: Option<String>,
    /// The device that answers this command topic, when known
    /// (`devices.known`, or its own `devices/<id>/channels` announcement).
    pub device: Option<String>,
    /// Unix time of the result.
    pub at: f64,
}

// ---------------------------------------------------------------------------
// Scenes
// ---------------------------------------------------------------------------

/// Why a scene ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum EndReason {
    /// Reached END.
    Completed,
    /// Stopped by a person or a control message.
    Stopped,
    /// The daemon is shutting down.
    Shutdown,
    /// The emergency stop was pressed (and latched).
    EStop,
    /// A cue marked `required` failed (TIMEOUT or ERROR after its
    /// retries): the show stopped into its safe state. Says which cue.
    RequiredCueFailed(String),
    /// The scene could not go on (a loop, a panic); the text says why.
    Error(String),
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndReason::Completed => f.write_str("completed"),
            EndReason::Stopped => f.write_str("stopped"),
            EndReason::Shutdown => f.write_str("shutdown"),
            EndReason::EStop => f.write_str("e-stop"),
            EndReason::RequiredCueFailed(c) => write!(f, "required cue failed: {c}"),
            EndReason::Error(e) => write!(f, "error: {e}"),
        }
    }
}

/// Scene progress and lifecycle, for the event bus.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SceneEvent {
    /// A scene started.
    Started {
        /// Its name.
        scene: String,
        /// What started it.
        origin: Origin,
    },
    /// The scene entered a state.
    State {
        /// Scene name.
        scene: String,
        /// State name.
        state: String,
    },
    /// The scene executed an action.
    Action {
        /// Scene name.
        scene: String,
        /// The state it was in (`on_stop` for the end sequence).
        state: String,
        /// Seconds since the scene started.
        elapsed: f64,
        /// `mqtt`, `audio` or `video`.
        kind: String,
        /// Topic of the action.
        topic: String,
        /// Message of the action.
        message: String,
        /// Whether a confirmation is expected.
        feedback: bool,
    },
    /// The scene ended (after its end sequence ran).
    Ended {
        /// Scene name.
        scene: String,
        /// Why.
        reason: EndReason,
        /// Seconds it ran.
        elapsed: f64,
    },
}

// ---------------------------------------------------------------------------
// Media
// ---------------------------------------------------------------------------

/// Media lifecycle, for the event bus.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MediaEvent {
    /// `audio` or `video`.
    pub kind: String,
    /// `started`, `ended`, `stopped`, `error`.
    pub event: String,
    /// The file concerned, if any.
    pub file: Option<String>,
    /// Why, for errors.
    pub detail: Option<String>,
}

// ---------------------------------------------------------------------------
// Command files
// ---------------------------------------------------------------------------

/// A command file run (see `scene::commands`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum CommandEvent {
    /// It started.
    Started {
        /// The command's name.
        name: String,
        /// Who asked.
        origin: Origin,
        /// How many steps it has.
        steps: usize,
    },
    /// It ended: all steps sent, or cancelled by Stop / shutdown.
    Ended {
        /// The command's name.
        name: String,
        /// Steps sent.
        sent: usize,
        /// Stopped before the last step.
        cancelled: bool,
    },
}

/// One entry of the audit trail: a command applied to the room (by a
/// person, a token, the schedule, a trigger...), a login, a logout or a
/// failed login, and whether it was refused.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ActionEvent {
    /// Unix time.
    pub t: f64,
    /// Where it came from, in words (`alice (dashboard 10.0.0.7)`).
    pub origin: String,
    /// The person or token, when one is known.
    pub who: Option<String>,
    /// What was asked, in words (`stop — all off`).
    pub what: String,
    /// Why it was refused, if it was.
    pub refused: Option<String>,
}
