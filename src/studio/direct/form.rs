//! What the studio's forms give for a direct edit, checked, and how a new
//! cue or transition is written (its keys in the room controllers' order).

use serde::Deserialize;

use super::super::edit::EditError;
use super::super::splice::Val;
/// One direct edit (`{"op": "add_cue", ...}`). A cue or transition is
/// named by the 1-based `line` and `col` the loader gives it.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
#[allow(missing_docs)]
pub enum Edit {
    /// A new cue in a state's `part` (no state for a timed list).
    AddCue {
        state: Option<String>,
        part: Part,
        cue: Cue,
    },
    /// The cue at `line:col` changed where `change` says.
    SetCue {
        line: u32,
        col: u32,
        change: CueChange,
    },
    /// The cue at `line:col` moved to a state's `part`, changed where
    /// `change` says (its time in a timed part).
    MoveCue {
        line: u32,
        col: u32,
        state: Option<String>,
        part: Part,
        #[serde(default)]
        change: CueChange,
    },
    /// The cue at `line:col` removed.
    DeleteCue { line: u32, col: u32 },
    /// A new state `name`, with no cues and no transitions yet.
    AddState { name: String },
    /// A new transition of a state (no state: a global event).
    AddTransition {
        state: Option<String>,
        transition: Transition,
    },
    /// The transition at `line:col` removed.
    DeleteTransition { line: u32, col: u32 },
}

/// Where in a state a cue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// `onEnter`: when the state is entered.
    Enter,
    /// `timeline`: at its time after entering.
    Timeline,
    /// `onExit`: when the state is left.
    Exit,
    /// A timed list's `actions`.
    Actions,
    /// A timed list's `on_stop`.
    Stop,
}

impl Part {
    /// The keys that hold it, the one written for a new list first.
    pub(super) fn keys(self, json: bool) -> &'static [&'static str] {
        match self {
            Part::Enter => &["onEnter"],
            Part::Timeline => &["timeline"],
            Part::Exit => &["onExit"],
            Part::Actions => &["actions"],
            Part::Stop if json => &["onStop", "on_stop"],
            Part::Stop => &["on_stop", "onStop"],
        }
    }

    pub(super) fn timed(self) -> bool {
        matches!(self, Part::Timeline | Part::Actions)
    }
}

/// A cue as the form gives it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Cue {
    /// Seconds after entering the state (timed parts only).
    pub at: Option<f64>,
    /// `mqtt`, `audio` or `video` (the room's default when none).
    pub action: Option<String>,
    /// The channel (`room1/light`); none for a sound or clip on the Pi.
    pub topic: Option<String>,
    /// What is sent (`ON`, `PLAY:bg.wav`).
    pub message: String,
}

/// What the form changed of a cue: each field given is set (an empty
/// `action` or `topic` is taken away), each one missing stays as written.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CueChange {
    /// Its time (a cue of a timed part).
    pub at: Option<f64>,
    /// `mqtt`, `audio` or `video`.
    pub action: Option<String>,
    /// Its channel.
    pub topic: Option<String>,
    /// What it sends.
    pub message: Option<String>,
}

impl CueChange {
    pub(super) fn check(&self) -> Result<(), EditError> {
        check_cue(&Cue {
            at: self.at,
            action: self.action.clone(),
            topic: None,
            message: self.message.clone().unwrap_or_else(|| "unchanged".into()),
        })
    }

    /// The text fields changed: `Some(value)`, or `None` to take away.
    pub(super) fn texts(&self) -> Vec<(&'static str, Option<Val>)> {
        [
            ("action", &self.action),
            ("topic", &self.topic),
            ("message", &self.message),
        ]
        .into_iter()
        .filter_map(|(k, v)| {
            let v = v.as_ref()?;
            Some((k, (!v.is_empty()).then(|| Val::Str(v.clone()))))
        })
        .collect()
    }
}

/// A transition as the form gives it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    /// `timeout`, `mqttMessage`, `audioEnd`, `videoEnd` or `always`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The state it goes to (or END).
    pub goto: String,
    /// Seconds, for a timeout.
    pub delay: Option<f64>,
    /// The file, for the end of a sound or clip.
    pub target: Option<String>,
    /// The topic, for a message.
    pub topic: Option<String>,
    /// The payload, for a message.
    pub message: Option<String>,
}

/// A time from the form: seconds, not negative, at most a day.
pub(super) fn time(at: f64) -> Result<f64, EditError> {
    if at.is_finite() && (0.0..=86_400.0).contains(&at) {
        Ok((at * 1000.0).round() / 1000.0)
    } else {
        Err(EditError(format!(
            "{at} s is not a time: seconds from 0 to 86400"
        )))
    }
}

fn check_cue(cue: &Cue) -> Result<(), EditError> {
    if cue.message.trim().is_empty() {
        return Err(EditError(
            "a cue needs its message (`ON`, `PLAY:bg.wav`)".into(),
        ));
    }
    if let Some(a) = cue.action.as_deref().filter(|a| !a.is_empty())
        && !matches!(a, "mqtt" | "audio" | "video")
    {
        return Err(EditError(format!(
            "`{}` is not an action: mqtt, audio or video",
            a.escape_debug()
        )));
    }
    Ok(())
}

/// A new cue as it is written, its keys in the room controllers' order.
pub(super) fn cue_val(cue: &Cue, part: Part) -> Result<Val, EditError> {
    check_cue(cue)?;
    let mut e = Vec::new();
    if part.timed() {
        e.push(("at", Val::Num(time(cue.at.unwrap_or(0.0))?)));
    }
    for (k, v) in [("action", &cue.action), ("topic", &cue.topic)] {
        if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
            e.push((k, Val::Str(v.clone())));
        }
    }
    e.push(("message", Val::Str(cue.message.clone())));
    Ok(Val::map(e))
}

/// A new transition as it is written: its type, what it waits for, goto.
pub(super) fn transition_val(t: &Transition) -> Result<Val, EditError> {
    let given = |v: &Option<String>, what: &str| {
        v.as_ref()
            .filter(|v| !v.trim().is_empty())
            .map(|v| Val::Str(v.clone()))
            .ok_or_else(|| EditError(format!("a {} transition needs its {what}", t.kind)))
    };
    if t.goto.trim().is_empty() {
        return Err(EditError("a transition needs the state it goes to".into()));
    }
    let mut e = vec![("type", Val::Str(t.kind.clone()))];
    match t.kind.as_str() {
        "timeout" => match t.delay {
            Some(d) if d > 0.0 => e.push(("delay", Val::Num(time(d)?))),
            _ => {
                return Err(EditError(
                    "a timeout transition needs its delay in seconds".into(),
                ));
            }
        },
        "audioEnd" | "videoEnd" => e.push(("target", given(&t.target, "file")?)),
        "mqttMessage" => {
            e.push(("topic", given(&t.topic, "topic")?));
            e.push(("message", given(&t.message, "message")?));
        }
        "always" => {}
        other => {
            return Err(EditError(format!(
                "`{}` is not a transition: timeout, mqttMessage, audioEnd, videoEnd or always",
                other.escape_debug()
            )));
        }
    }
    e.push(("goto", Val::Str(t.goto.clone())));
    Ok(Val::map(e))
}
