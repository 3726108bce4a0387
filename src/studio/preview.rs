//! A scene run in the studio without touching the room: the scene's own
//! runner (the same timing as for real) with a sink that sends nothing.
//! Every command is written down as it would be sent, at its time, and
//! confirmed at once (simulated); a sound or clip "ends" after its
//! measured length (or 3 s), so `audioEnd`/`videoEnd` transitions are
//! taken; a message a state waits for is given by hand. Its sounds may be
//! played on the Pi (the room's speakers, never the boards). What happened
//! is kept in a bounded list the page reads.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::events::{Event, EventBus, SceneEvent};
use crate::scene::runner::{Progress, RunEnd, Runner, Waiting};
use crate::scene::{Action, ActionKind, ActionSink, SceneInput, SceneRef};

/// Lines kept (a preview of a long show drops its oldest).
const MAX_LINES: usize = 500;
/// How long a sound or clip whose length is unknown "plays".
const UNKNOWN_LENGTH: f64 = 3.0;

/// How long the sound or clip of an action plays, in seconds, if known.
pub type MediaLength = Box<dyn Fn(&Action) -> Option<f64> + Send + Sync>;

/// Plays a preview's audio commands (`PLAY:chime.wav`, `STOP`) on the
/// Pi's speakers.
pub type Speakers = Arc<dyn Fn(&str) + Send + Sync>;

/// One thing that happened in a preview.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PreviewLine {
    /// Seconds since the preview started.
    pub t: f64,
    /// `send`, `ok`, `play`, `state`, `input`, `end`.
    pub kind: &'static str,
    /// In words (`room1/light = ON`).
    pub text: String,
    /// The line of the scene file it comes from (0: none).
    pub line: u32,
}

/// What the page shows of a preview.
#[derive(Debug, Clone, Serialize)]
pub struct PreviewView {
    /// The scene.
    pub scene: String,
    /// Still running.
    pub running: bool,
    /// The state it is in.
    pub state: String,
    /// Seconds since it started.
    pub elapsed: f64,
    /// What the state waits for.
    pub waiting_for: Vec<Waiting>,
    /// The messages the state (or a global event) waits for, to give by
    /// hand: `(topic, payload)`, payload none for any.
    pub messages: Vec<(String, Option<String>)>,
    /// What happened, oldest first.
    pub lines: Vec<PreviewLine>,
}

struct Log {
    start: Instant,
    lines: Mutex<VecDeque<PreviewLine>>,
}

impl Log {
    fn push(&self, kind: &'static str, text: String, line: u32) {
        let mut l = self.lines.lock();
        if l.len() >= MAX_LINES {
            l.pop_front();
        }
        l.push_back(PreviewLine {
            t: (self.start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
            kind,
            text,
            line,
        });
    }
}

/// A running (or finished) preview.
pub struct Preview {
    scene: SceneRef,
    log: Arc<Log>,
    progress: Arc<Mutex<Progress>>,
    inputs: mpsc::Sender<SceneInput>,
    cancel: CancellationToken,
    done: Arc<std::sync::atomic::AtomicBool>,
}

struct Sink {
    log: Arc<Log>,
    inputs: mpsc::Sender<SceneInput>,
    length: MediaLength,
    speakers: Option<Speakers>,
    cancel: CancellationToken,
}

impl ActionSink for Sink {
    fn execute(&self, _scene: &str, a: &Action) {
        let line = a.pos.line;
        if a.kind == ActionKind::Mqtt {
            self.log
                .push("send", format!("{} = {}", a.topic, a.message), line);
            if a.feedback {
                self.log
                    .push("ok", format!("{} confirmed (simulated)", a.topic), line);
            }
            return;
        }
        let heard = match (&self.speakers, &a.kind) {
            (Some(play), ActionKind::Audio(_)) => {
                play(&a.message);
                "played on the Pi"
            }
            _ => "not played",
        };
        let Some(file) = a.media_file().map(str::to_string) else {
            self.log
                .push("play", format!("{} ({heard})", a.message), line);
            return;
        };
        let len = (self.length)(a).unwrap_or(UNKNOWN_LENGTH);
        self.log
            .push("play", format!("{} ({len:.1} s, {heard})", a.message), line);
        let input = if matches!(a.kind, ActionKind::Audio(_)) {
            SceneInput::AudioEnd(file)
        } else {
            SceneInput::VideoEnd(file)
        };
        let (tx, cancel) = (self.inputs.clone(), self.cancel.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs_f64(len)) => {
                    let _ = tx.send(input).await;
                }
                () = cancel.cancelled() => {}
            }
        });
    }

    fn all_off(&self, _scene: Option<&str>) {
        self.log
            .push("send", "STOP: everything off (not sent)".into(), 0);
        if let Some(play) = &self.speakers {
            play("STOP");
        }
    }
}

impl Preview {
    /// Starts `scene` with nothing sent; `length` says how long a sound or
    /// clip action plays; `speakers`, when given, plays its sounds (and
    /// stops them when it ends). Ends when the scene does or at
    /// [`Preview::stop`].
    pub fn start(scene: SceneRef, length: MediaLength, speakers: Option<Speakers>) -> Preview {
        let log = Arc::new(Log {
            start: Instant::now(),
            lines: Mutex::new(VecDeque::new()),
        });
        let (tx, rx) = mpsc::channel(64);
        let cancel = CancellationToken::new();
        let events = EventBus::new(256);
        let progress = Arc::new(Mutex::new(Progress::default()));
        let sink = Arc::new(Sink {
            log: log.clone(),
            inputs: tx.clone(),
            length,
            speakers: speakers.clone(),
            cancel: cancel.clone(),
        });
        let runner = Runner {
            scene: scene.clone(),
            sink,
            events: events.clone(),
            progress: progress.clone(),
        };
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // The states it enters, in words, from its own event bus.
        let mut rx_events = events.subscribe();
        let (log2, cancel2) = (log.clone(), cancel.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    e = rx_events.recv() => match e {
                        Ok(Event::Scene(SceneEvent::State { state, .. })) => log2.push("state", format!("enters `{state}`"), 0),
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(_) => break,
                    },
                    () = cancel2.cancelled() => break,
                }
            }
        });
        let (log3, done2, cancel3) = (log.clone(), done.clone(), cancel.clone());
        tokio::spawn(async move {
            let end = runner.run(rx, cancel3.clone()).await;
            let text = match end {
                RunEnd::Completed => "the scene ends".to_string(),
                RunEnd::Cancelled => "stopped".to_string(),
                RunEnd::Error(e) => format!("failed: {e}"),
            };
            log3.push("end", text, 0);
            if let Some(play) = &speakers {
                play("STOP");
            }
            done2.store(true, std::sync::atomic::Ordering::SeqCst);
            cancel3.cancel();
        });
        log.push(
            "state",
            format!("preview of `{}`: nothing is sent to the boards", scene.name),
            0,
        );
        Preview {
            scene,
            log,
            progress,
            inputs: tx,
            cancel,
            done,
        }
    }

    /// Gives the scene a message, as if a board had sent it.
    pub fn input(&self, topic: &str, payload: &str) -> bool {
        let input = SceneInput::Mqtt {
            topic: topic.to_string(),
            payload: payload.to_string(),
        };
        self.log
            .push("input", format!("{topic} = {payload} (given by hand)"), 0);
        self.inputs.try_send(input).is_ok()
    }

    /// Ends it.
    pub fn stop(&self) {
        self.cancel.cancel();
    }

    /// What it did so far.
    pub fn view(&self) -> PreviewView {
        let p = self.progress.lock().clone();
        let now = Instant::now();
        PreviewView {
            scene: self.scene.name.clone(),
            running: !self.done.load(std::sync::atomic::Ordering::SeqCst),
            state: p.state.clone(),
            elapsed: self.log.start.elapsed().as_secs_f64(),
            waiting_for: p.waits.iter().map(|w| w.view(now)).collect(),
            messages: self.messages(&p.state),
            lines: self.log.lines.lock().iter().cloned().collect(),
        }
    }
}

impl Preview {
    fn messages(&self, state: &str) -> Vec<(String, Option<String>)> {
        let own = self.scene.state(state).map(|s| s.transitions.iter());
        own.into_iter()
            .flatten()
            .chain(self.scene.global_events.iter())
            .filter_map(|t| match &t.trigger {
                crate::scene::Trigger::MqttMessage { topic, message } => {
                    Some((topic.clone(), message.clone()))
                }
                _ => None,
            })
            .collect()
    }
}

impl Drop for Preview {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::load::{SceneContext, parse_scene};
    use std::path::Path;

    #[tokio::test(start_paused = true)]
    async fn sounds_end_after_their_length_and_nothing_is_sent() {
        let ctx = SceneContext {
            room: "room1".into(),
            local_channels: vec!["audio".into()],
            media: None,
        };
        let text = r#"{"sceneId": "p", "initialState": "a", "states": {
  "a": {"onEnter": [{"action": "mqtt", "topic": "room1/light", "message": "ON"},
                    {"action": "audio", "message": "PLAY:hello.wav"}],
        "transitions": [{"type": "audioEnd", "target": "hello.wav", "goto": "b"}]},
  "b": {"transitions": [{"type": "mqttMessage", "topic": "room1/button", "message": "pressed", "goto": "END"}]}}}"#;
        let scene = Arc::new(parse_scene(text, Path::new("p.json"), &ctx).unwrap().0);
        let heard = Arc::new(Mutex::new(Vec::<String>::new()));
        let h = heard.clone();
        let speakers: Speakers = Arc::new(move |m: &str| h.lock().push(m.to_string()));
        let p = Preview::start(scene, Box::new(|_| Some(2.5)), Some(speakers));
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(p.view().state, "a", "the sound still plays");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let v = p.view();
        assert_eq!(v.state, "b");
        assert_eq!(
            v.messages,
            [("room1/button".to_string(), Some("pressed".to_string()))]
        );
        assert!(p.input("room1/button", "pressed"));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let v = p.view();
        assert!(!v.running);
        let kinds: Vec<&str> = v.lines.iter().map(|l| l.kind).collect();
        assert!(
            kinds.starts_with(&["state", "send", "ok", "play"]),
            "{kinds:?}"
        );
        assert_eq!(v.lines.last().unwrap().text, "the scene ends");
        assert!(
            v.lines
                .iter()
                .any(|l| l.text == "PLAY:hello.wav (2.5 s, played on the Pi)")
        );
        assert_eq!(
            heard.lock().first().map(String::as_str),
            Some("PLAY:hello.wav")
        );
        assert_eq!(
            heard.lock().last().map(String::as_str),
            Some("STOP"),
            "stopped at the end"
        );
        assert!(
            v.lines
                .iter()
                .any(|l| l.text == "room1/light = ON" && l.line == 2)
        );
    }
}
