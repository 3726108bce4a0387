//! Scenes: small state machines of timed actions. This module owns the
//! model; `load` reads both file forms (the simple `actions:` list and the
//! "version 2.0" state-machine JSON), `runner` plays one scene with absolute
//! deadlines, `controller` keeps it to one scene at a time and runs the
//! end-of-scene sequence.

pub mod commands;
pub mod controller;
pub mod load;
pub mod runner;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::diag::Pos;
use crate::media::command::{AudioCommand, VideoCommand};

pub use crate::events::{EndReason, SceneEvent};
pub use commands::{CommandFile, CommandRunner, CommandSummary, RunError};
pub use controller::{SceneController, SceneStatus, StartError};
pub use load::{SceneSet, load_scenes};
pub use runner::{ActionSink, SceneInput, Waiting};

/// The name `goto` uses to end a scene.
pub const END: &str = "END";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
/// How a scene was written.
pub enum SceneForm {
    /// `actions:` list, sugar for one state.
    Simple,
    /// `states:` map (the "version 2.0" format).
    StateMachine,
}

#[derive(Debug, Clone)]
/// A scene: a small state machine of timed actions.
pub struct Scene {
    /// Its name (`name`, `sceneId`, or the file stem).
    pub name: String,
    /// What it is, for people.
    pub description: String,
    /// Where it was loaded from.
    pub file: PathBuf,
    /// Simple list or state machine.
    pub form: SceneForm,
    /// Where it starts.
    pub initial_state: String,
    /// Every state by name.
    pub states: BTreeMap<String, State>,
    /// Checked in every state; timeouts count from scene start.
    pub global_events: Vec<Transition>,
    /// Safe state, run when the scene ends for any reason.
    pub on_stop: Vec<Action>,
    /// What loads but does not do what it seems to (`line:col: text`),
    /// e.g. a transition without `type` that never fires; shown beside the
    /// scene on the dashboard.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Default)]
/// One state of a scene.
pub struct State {
    /// Its name.
    pub name: String,
    /// What it is, for people.
    pub description: String,
    /// Run when it is entered.
    pub on_enter: Vec<Action>,
    /// Run when it is left.
    pub on_exit: Vec<Action>,
    /// Sorted by `at` (stable: equal times keep file order).
    pub timeline: Vec<Cue>,
    /// Checked in order; the first that fires wins.
    pub transitions: Vec<Transition>,
}

/// Actions due `at` after entering the state.
#[derive(Debug, Clone)]
pub struct Cue {
    /// Seconds after entering the state.
    pub at: Duration,
    /// What happens then.
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, PartialEq)]
/// What an action does.
pub enum ActionKind {
    /// Published to an ESP32.
    Mqtt,
    /// Played on the Pi.
    Audio(AudioCommand),
    /// Played on the Pi.
    Video(VideoCommand),
}

#[derive(Debug, Clone, PartialEq)]
/// One thing a scene does.
pub struct Action {
    /// MQTT, audio or video.
    pub kind: ActionKind,
    /// Where (`room1/light`; `room1/audio` for local actions).
    pub topic: String,
    /// What (`ON`, `PLAY:bg.mp3`).
    pub message: String,
    /// Overrides `feedback.timeout`.
    pub timeout: Option<Duration>,
    /// Whether a confirmation is expected (published, not `ROOM/STOP`).
    pub feedback: bool,
    /// Published retained (`retain: true`, as the existing format allows).
    pub retain: bool,
    /// `required: true` (or the scene's `required`): a TIMEOUT or ERROR
    /// after its retries ends the scene through the safe state.
    pub required: bool,
    /// Sent again this many times after a TIMEOUT or ERROR (`retries: N`).
    pub retries: u32,
    /// Where it was written.
    pub pos: Pos,
}

impl Action {
    /// `mqtt`, `audio` or `video`.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            ActionKind::Mqtt => "mqtt",
            ActionKind::Audio(_) => "audio",
            ActionKind::Video(_) => "video",
        }
    }

    /// The sound or clip it plays, if it plays one.
    pub fn media_file(&self) -> Option<&str> {
        match &self.kind {
            ActionKind::Audio(c) => c.file(),
            ActionKind::Video(c) => c.file(),
            ActionKind::Mqtt => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
/// What a transition waits for.
pub enum Trigger {
    /// This long after entering the state (global: after the scene started).
    Timeout(Duration),
    /// Any sound ends, or the named one.
    AudioEnd(Option<String>),
    /// Any clip ends, or the named one.
    VideoEnd(Option<String>),
    /// A message on `topic` (with `message`, or any payload).
    MqttMessage {
        /// The topic (filter).
        topic: String,
        /// The payload, or any.
        message: Option<String>,
    },
    /// At once, after the state's `at: 0` cues.
    Always,
}

#[derive(Debug, Clone, PartialEq, Eq)]
/// Where a transition leads.
pub enum Goto {
    /// Another state (a state named END runs its onEnter, then the scene ends).
    State(String),
    /// The end of the scene.
    End,
}

#[derive(Debug, Clone, PartialEq)]
/// A way out of a state.
pub struct Transition {
    /// When.
    pub trigger: Trigger,
    /// Where to.
    pub goto: Goto,
    /// Where it was written.
    pub pos: Pos,
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trigger::Timeout(d) => write!(f, "timeout {}", crate::config::human(*d)),
            Trigger::AudioEnd(None) => f.write_str("end of a sound"),
            Trigger::AudioEnd(Some(t)) => write!(f, "end of sound {t}"),
            Trigger::VideoEnd(None) => f.write_str("end of a clip"),
            Trigger::VideoEnd(Some(t)) => write!(f, "end of clip {t}"),
            Trigger::MqttMessage {
                topic,
                message: Some(m),
            } => write!(f, "message {topic} = {m}"),
            Trigger::MqttMessage {
                topic,
                message: None,
            } => write!(f, "any message on {topic}"),
            Trigger::Always => f.write_str("at once"),
        }
    }
}

impl std::fmt::Display for Goto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Goto::State(s) => write!(f, "state `{s}`"),
            Goto::End => f.write_str("the end"),
        }
    }
}

/// What `/api/scenes` shows.
#[derive(Debug, Clone, Serialize)]
pub struct SceneSummary {
    /// Scene name.
    pub name: String,
    /// What it is.
    pub description: String,
    /// Simple or state machine.
    pub form: SceneForm,
    /// Seconds; none when the end depends on events.
    pub duration: Option<f64>,
    /// Actions in every state.
    pub action_count: usize,
    /// How many states.
    pub states: usize,
    /// Parts of the file that load but never act (see [`Scene::warnings`]).
    pub warnings: Vec<String>,
    /// Its file name (also accepted wherever a scene is named).
    pub file: String,
}

impl Scene {
    /// The state named `name`.
    pub fn state(&self, name: &str) -> Option<&State> {
        self.states.get(name)
    }

    /// Every action except `on_stop`.
    pub fn actions(&self) -> impl Iterator<Item = &Action> {
        self.states.values().flat_map(|s| {
            s.on_enter
                .iter()
                .chain(s.timeline.iter().flat_map(|c| c.actions.iter()))
                .chain(s.on_exit.iter())
        })
    }

    /// Every action including `on_stop`.
    pub fn all_actions(&self) -> impl Iterator<Item = &Action> {
        self.actions().chain(self.on_stop.iter())
    }

    /// How long the scene runs if nothing external happens: follows
    /// `always`/`timeout` transitions from the initial state. `None` when a
    /// state waits for an event or the path loops.
    pub fn duration(&self) -> Option<Duration> {
        let mut t = Duration::ZERO;
        let mut seen = HashSet::new();
        let mut cur = self.initial_state.as_str();
        loop {
            if !seen.insert(cur) {
                return None;
            }
            let st = self.states.get(cur)?;
            // The earliest `always`/`timeout` wins; ties go to the first listed.
            let timed = st
                .transitions
                .iter()
                .filter_map(|tr| match tr.trigger {
                    Trigger::Always => Some((Duration::ZERO, &tr.goto)),
                    Trigger::Timeout(d) => Some((d, &tr.goto)),
                    _ => None,
                })
                .min_by_key(|(d, _)| *d);
            let (d, goto) = match timed {
                // A state named END ends the scene after its timeline.
                None if cur == END => {
                    return Some(t + st.timeline.last().map(|c| c.at).unwrap_or_default());
                }
                None => return None,
                Some(x) => x,
            };
            t += d;
            match goto {
                Goto::End => return Some(t),
                Goto::State(s) => cur = s,
            }
        }
    }

    /// What the API lists.
    pub fn summary(&self) -> SceneSummary {
        SceneSummary {
            name: self.name.clone(),
            description: self.description.clone(),
            form: self.form,
            duration: self.duration().map(|d| d.as_secs_f64()),
            action_count: self.actions().count(),
            states: self.states.len(),
            warnings: self.warnings.clone(),
            file: self
                .file
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }

    /// Topics whose messages drive `mqttMessage` transitions.
    pub fn event_topics(&self) -> Vec<String> {
        let mut out = Vec::new();
        for tr in self
            .states
            .values()
            .flat_map(|s| s.transitions.iter())
            .chain(self.global_events.iter())
        {
            if let Trigger::MqttMessage { topic, .. } = &tr.trigger {
                out.push(topic.clone());
            }
        }
        crate::config::unique(out)
    }
}

/// Shared read-only scene.
pub type SceneRef = Arc<Scene>;
