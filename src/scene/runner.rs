//! Plays one scene: enters states, fires timeline cues and takes transitions.
//!
//! Every deadline is an absolute instant from its anchor (state entry for
//! the timeline and `timeout` transitions, scene start for global events),
//! never "sleep N after the previous thing", so nothing drifts and nothing
//! is rounded to a tick. A state entered by a timeout is anchored at that
//! timeout's deadline, not at the moment the task woke up. When the task is
//! late, due work is done in deadline order.

use std::sync::Arc;

use parking_lot::Mutex;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::{Action, END, Goto, SceneEvent, SceneRef, State, Transition, Trigger};
use crate::clock::{after, sleep_until_precise};
use crate::events::{Event, EventBus};
use crate::media::same_media;

/// Executes actions. The daemon's sink publishes over MQTT with feedback
/// tracking and drives the media players; tests record.
pub trait ActionSink: Send + Sync + 'static {
    /// Executes one action now. Must not block.
    fn execute(&self, scene: &str, action: &Action);
    /// Everything off: `ROOM/STOP`, audio fades out, video back to idle.
    fn all_off(&self, scene: Option<&str>);
}

/// Something that happened outside the scene that a transition may wait for.
#[derive(Debug, Clone, PartialEq)]
pub enum SceneInput {
    /// A live MQTT message.
    Mqtt {
        /// Its topic.
        topic: String,
        /// Its payload (UTF-8).
        payload: String,
    },
    /// A sound ended (file as resolved).
    AudioEnd(String),
    /// A clip ended (file as resolved).
    VideoEnd(String),
}

impl std::fmt::Display for SceneInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SceneInput::Mqtt { topic, payload } => {
                let p: String = payload.chars().take(40).collect();
                write!(f, "message {topic} = {p}")
            }
            SceneInput::AudioEnd(file) => write!(f, "end of sound {file}"),
            SceneInput::VideoEnd(file) => write!(f, "end of clip {file}"),
        }
    }
}

/// How a run ended, from the runner's point of view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// Reached the end.
    Completed,
    /// Stopped by its cancellation token.
    Cancelled,
    /// Could not go on; why.
    Error(String),
}

/// Live progress of the running scene.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// The state it is in.
    pub state: String,
    /// When it entered that state (the anchor of its timeline).
    pub entered: Option<Instant>,
    /// What the state waits for, in the order the scene lists it.
    pub waits: Vec<Wait>,
    /// Actions executed so far.
    pub actions_done: usize,
}

/// One thing the current state waits for.
#[derive(Debug, Clone, PartialEq)]
pub struct Wait {
    /// The trigger in words ("message room1/button = PRESSED").
    pub what: String,
    /// Where it leads ("state `finale`", "the end").
    pub goto: String,
    /// When a timeout fires; none for events.
    pub deadline: Option<Instant>,
}

/// What `/api/status` says a state waits for.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Waiting {
    /// The trigger in words.
    pub what: String,
    /// Where it leads.
    pub goto: String,
    /// Seconds until a timeout fires; none for events.
    pub remaining: Option<f64>,
}

impl Wait {
    /// As shown at `now`.
    pub fn view(&self, now: Instant) -> Waiting {
        Waiting {
            what: self.what.clone(),
            goto: self.goto.clone(),
            remaining: self
                .deadline
                .map(|d| d.saturating_duration_since(now).as_secs_f64()),
        }
    }
}

/// Plays one scene; owns what it needs so it can run as its own task.
pub struct Runner {
    /// The scene.
    pub scene: SceneRef,
    /// Where actions go.
    pub sink: Arc<dyn ActionSink>,
    /// Scene events (state, action).
    pub events: EventBus,
    /// Shared with the controller for `/api/status`.
    pub progress: Arc<Mutex<Progress>>,
}

/// Which transition list an index points into.
#[derive(Debug, Clone, Copy)]
enum Which {
    State(usize),
    Global(usize),
}

impl Runner {
    /// Runs until the scene ends, fails or `cancel` fires.
    pub async fn run(
        self,
        mut inputs: mpsc::Receiver<SceneInput>,
        cancel: CancellationToken,
    ) -> RunEnd {
        let start = Instant::now();
        let mut globals_fired = vec![false; self.scene.global_events.len()];
        let mut state_name = self.scene.initial_state.clone();
        let mut entered = start;
        // States entered at the current instant: entering one again would
        // loop without time passing (the loader rejects such scenes; this
        // is the guard in depth). Nothing of the repeat runs.
        let mut this_instant: Vec<String> = vec![state_name.clone()];
        let mut inputs_open = true;

        'states: loop {
            let Some(state) = self.scene.state(&state_name) else {
                return RunEnd::Error(format!("state `{state_name}` does not exist"));
            };
            self.enter(state, entered, start, &globals_fired);
            // `END` runs like any state, and ends the scene once its
            // timeline has run, unless a timed transition of its own is
            // still due (that one is honoured). Its event transitions count
            // only while it is still running.
            let end_state = state.name == END
                && !state
                    .transitions
                    .iter()
                    .any(|t| matches!(t.trigger, Trigger::Always | Trigger::Timeout(_)));
            let mut next_cue = 0usize;
            loop {
                // Do everything that is due, earliest deadline first; a cue
                // due at the same instant as a transition goes first. What
                // is left says when to wake up.
                let wake = loop {
                    let now = Instant::now();
                    let cue = state.timeline.get(next_cue).map(|c| after(entered, c.at));
                    let tr = self.next_timed(state, entered, start, &globals_fired);
                    match (cue, tr) {
                        (Some(c), t) if c <= now && t.is_none_or(|(td, _)| c <= td) => {
                            for a in &state.timeline[next_cue].actions {
                                self.execute(state, a, start);
                            }
                            next_cue += 1;
                        }
                        (_, Some((td, which))) if td <= now => {
                            if let Which::Global(i) = which {
                                globals_fired[i] = true;
                            }
                            let tr = self.transition(state, which);
                            if td != entered {
                                this_instant.clear();
                            }
                            if let Goto::State(next) = &tr.goto {
                                if this_instant.contains(next) {
                                    return RunEnd::Error(format!(
                                        "transitions loop without time passing (`{}` -> `{next}`)",
                                        state.name
                                    ));
                                }
                                this_instant.push(next.clone());
                            }
                            info!(target: "scene", "{}: {} in state `{}` -> {}", self.scene.name, tr.trigger, state.name, tr.goto);
                            match self.leave(state, &tr.goto, start) {
                                None => return RunEnd::Completed,
                                Some(next) => {
                                    state_name = next;
                                    entered = td;
                                    continue 'states;
                                }
                            }
                        }
                        (None, _) if end_state => return RunEnd::Completed,
                        (cue, tr) => {
                            break match (cue, tr.map(|(t, _)| t)) {
                                (Some(a), Some(b)) => Some(a.min(b)),
                                (a, b) => a.or(b),
                            };
                        }
                    }
                };
                tokio::select! {
                    _ = cancel.cancelled() => return RunEnd::Cancelled,
                    _ = sleep_until_precise(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {}
                    input = inputs.recv(), if inputs_open => match input {
                        None => inputs_open = false,
                        Some(input) => {
                            if let Some(which) = self.match_input(state, &input) {
                                let tr = self.transition(state, which);
                                info!(target: "scene", "{}: {} in state `{}` -> {}", self.scene.name, input, state.name, tr.goto);
                                let now = Instant::now();
                                match self.leave(state, &tr.goto, start) {
                                    None => return RunEnd::Completed,
                                    Some(next) => {
                                        state_name = next;
                                        entered = now;
                                        this_instant = vec![state_name.clone()];
                                        continue 'states;
                                    }
                                }
                            }
                        }
                    },
                }
            }
        }
    }

    fn transition<'s>(&'s self, state: &'s State, which: Which) -> &'s Transition {
        match which {
            Which::State(i) => &state.transitions[i],
            Which::Global(i) => &self.scene.global_events[i],
        }
    }

    /// The earliest timed transition (timeout, always, global timeout);
    /// equal deadlines go to `globalEvents` first (the existing format's
    /// order), then to the one listed first.
    fn next_timed(
        &self,
        state: &State,
        entered: Instant,
        start: Instant,
        globals_fired: &[bool],
    ) -> Option<(Instant, Which)> {
        let local = state
            .transitions
            .iter()
            .enumerate()
            .filter_map(|(i, t)| match t.trigger {
                Trigger::Always => Some((entered, Which::State(i))),
                Trigger::Timeout(d) => Some((after(entered, d), Which::State(i))),
                _ => None,
            });
        let global = self
            .scene
            .global_events
            .iter()
            .enumerate()
            .filter(|(i, _)| !globals_fired[*i])
            .filter_map(|(i, t)| match t.trigger {
                Trigger::Timeout(d) => Some((after(start, d), Which::Global(i))),
                _ => None,
            });
        // `min_by_key` keeps the first of equal keys: globals go first.
        global.chain(local).min_by_key(|(t, _)| *t)
    }

    /// The first transition an input fires: `globalEvents` first, then the
    /// state's own (the existing format's order).
    fn match_input(&self, state: &State, input: &SceneInput) -> Option<Which> {
        let hit = |t: &Transition| match (&t.trigger, input) {
            (
                Trigger::MqttMessage { topic, message },
                SceneInput::Mqtt {
                    topic: got,
                    payload,
                },
            ) => {
                crate::topic::matches(topic, got)
                    && message.as_ref().is_none_or(|m| m.trim() == payload.trim())
            }
            (Trigger::AudioEnd(target), SceneInput::AudioEnd(f))
            | (Trigger::VideoEnd(target), SceneInput::VideoEnd(f)) => {
                target.as_ref().is_none_or(|t| same_media(t, f))
            }
            _ => false,
        };
        self.scene
            .global_events
            .iter()
            .position(hit)
            .map(Which::Global)
            .or_else(|| state.transitions.iter().position(hit).map(Which::State))
    }

    fn enter(&self, state: &State, entered: Instant, start: Instant, globals_fired: &[bool]) {
        info!(target: "scene", "{}: entering state `{}`", self.scene.name, state.name);
        let wait = |t: &Transition, anchor: Instant| Wait {
            what: t.trigger.to_string(),
            goto: t.goto.to_string(),
            deadline: match t.trigger {
                Trigger::Timeout(d) => Some(after(anchor, d)),
                _ => None,
            },
        };
        let waits = state
            .transitions
            .iter()
            .filter(|t| t.trigger != Trigger::Always)
            .map(|t| wait(t, entered))
            .chain(
                self.scene
                    .global_events
                    .iter()
                    .zip(globals_fired)
                    .filter(|(_, fired)| !**fired)
                    .map(|(t, _)| wait(t, start)),
            )
            .collect();
        {
            let mut p = self.progress.lock();
            p.state = state.name.clone();
            p.entered = Some(entered);
            p.waits = waits;
        }
        self.events.publish(Event::Scene(SceneEvent::State {
            scene: self.scene.name.clone(),
            state: state.name.clone(),
        }));
        for a in &state.on_enter {
            self.execute(state, a, start);
        }
    }

    /// Runs `onExit`; returns the next state, or None when the scene ends.
    fn leave(&self, state: &State, goto: &Goto, start: Instant) -> Option<String> {
        for a in &state.on_exit {
            self.execute(state, a, start);
        }
        match goto {
            Goto::End => None,
            Goto::State(s) => Some(s.clone()),
        }
    }

    fn execute(&self, state: &State, a: &Action, start: Instant) {
        let elapsed = start.elapsed().as_secs_f64();
        self.sink.execute(&self.scene.name, a);
        self.progress.lock().actions_done += 1;
        self.events.publish(Event::Scene(SceneEvent::Action {
            scene: self.scene.name.clone(),
            state: state.name.clone(),
            elapsed,
            kind: a.kind_name().to_string(),
            topic: a.topic.clone(),
            message: a.message.clone(),
            feedback: a.feedback,
        }));
    }
}

#[cfg(test)]
mod tests;
