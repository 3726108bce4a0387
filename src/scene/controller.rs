//! One scene at a time: starts a scene, forwards events to it, stops it, and
//! always finishes with the end-of-scene sequence (the scene's `on_stop`
//! actions, then everything off: `ROOM/STOP`, audio fade-out, video idle).
//!
//! Each scene runs as two tracked tasks: the runner, and a supervising task
//! that awaits it and then runs the end sequence. A runner that panics is
//! seen there as a failed task, so the scene still ends normally; should the
//! supervising task itself be dropped (runtime shutdown), its drop guard
//! frees the controller, so a later start is never refused for a scene that
//! no longer runs.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info};

use super::runner::{Progress, RunEnd, Runner, Waiting};
use super::{ActionSink, EndReason, SceneEvent, SceneInput, SceneRef, SceneSet, Trigger};
use crate::events::{Event, EventBus};
use crate::mqtt::unix_now;
use crate::origin::Origin;
use crate::ratelog::{LogLimit, RateLog};
use crate::{ratelog, topic};

/// How many inputs may wait for the running scene.
const INPUT_CAPACITY: usize = 64;

/// Why a scene did not start.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StartError {
    /// No scene has that name.
    #[error("no scene named `{0}`")]
    NotFound(String),
    /// One scene at a time.
    #[error("scene `{0}` is running; stop it first")]
    AlreadyRunning(String),
}

/// The running scene, for `/api/status`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct SceneStatus {
    /// Scene name.
    pub name: String,
    /// Current state.
    pub state: String,
    /// Unix time it started.
    pub started: f64,
    /// Seconds since it started.
    pub elapsed: f64,
    /// Seconds; none when the end depends on events.
    pub duration: Option<f64>,
    /// Actions executed so far.
    pub actions_done: usize,
    /// Actions in the scene (every state).
    pub actions_total: usize,
    /// Seconds in the current state.
    pub state_elapsed: f64,
    /// What the current state waits for (buttons, sounds, timeouts with
    /// the seconds left); empty for a plain timeline.
    pub waiting_for: Vec<Waiting>,
}

/// What a scene's transitions can react to: only such inputs are passed on.
#[derive(Debug, Default)]
struct Listens {
    mqtt: Vec<String>,
    audio_end: bool,
    video_end: bool,
}

impl Listens {
    fn of(scene: &SceneRef) -> Self {
        let mut l = Listens::default();
        let all = scene
            .states
            .values()
            .flat_map(|s| s.transitions.iter())
            .chain(scene.global_events.iter());
        for t in all {
            match &t.trigger {
                Trigger::MqttMessage { topic, .. } => l.mqtt.push(topic.clone()),
                Trigger::AudioEnd(_) => l.audio_end = true,
                Trigger::VideoEnd(_) => l.video_end = true,
                Trigger::Timeout(_) | Trigger::Always => {}
            }
        }
        l
    }

    /// A transition waits for messages on `topic`.
    fn hears(&self, topic: &str) -> bool {
        self.mqtt.iter().any(|f| topic::matches(f, topic))
    }

    fn wants(&self, input: &SceneInput) -> bool {
        match input {
            SceneInput::Mqtt { topic, .. } => self.hears(topic),
            SceneInput::AudioEnd(_) => self.audio_end,
            SceneInput::VideoEnd(_) => self.video_end,
        }
    }
}

struct Running {
    id: u64,
    scene: SceneRef,
    cancel: CancellationToken,
    /// Why it was cancelled (stop vs shutdown).
    reason: Arc<Mutex<Option<EndReason>>>,
    inputs: mpsc::Sender<SceneInput>,
    listens: Listens,
    progress: Arc<Mutex<Progress>>,
    start: Instant,
    started: f64,
    done: watch::Receiver<bool>,
}

struct Inner {
    /// Replaced by a reload; a running scene keeps its own definition.
    scenes: parking_lot::RwLock<SceneSet>,
    sink: Arc<dyn ActionSink>,
    events: EventBus,
    tasks: TaskTracker,
    /// Where scene runners run (the cue thread), else the caller's runtime.
    cues: Option<tokio::runtime::Handle>,
    current: Mutex<Option<Running>>,
    next_id: AtomicU64,
    log: Mutex<RateLog>,
}

/// Cheap to clone.
#[derive(Clone)]
pub struct SceneController {
    inner: Arc<Inner>,
}

/// Frees the controller and announces the end, whatever happens to the
/// task that holds it.
struct EndGuard {
    ctl: SceneController,
    id: u64,
    scene: SceneRef,
    start: Instant,
    done: Option<watch::Sender<bool>>,
}

impl EndGuard {
    /// The end-of-scene sequence; a sink that panics does not stop it.
    fn finish(&mut self, reason: EndReason) {
        let inner = &self.ctl.inner;
        let name = &self.scene.name;
        for a in &self.scene.on_stop {
            let run = catch_unwind(AssertUnwindSafe(|| inner.sink.execute(name, a)));
            if run.is_err() {
                error!(target: "scene", "Scene {name}: an on_stop action failed: {} = {}", a.topic, a.message);
                continue;
            }
            inner.events.publish(Event::Scene(SceneEvent::Action {
                scene: name.clone(),
                state: "on_stop".into(),
                elapsed: self.start.elapsed().as_secs_f64(),
                kind: a.kind_name().into(),
                topic: a.topic.clone(),
                message: a.message.clone(),
                feedback: a.feedback,
            }));
        }
        if catch_unwind(AssertUnwindSafe(|| inner.sink.all_off(Some(name)))).is_err() {
            error!(target: "scene", "Scene {name}: switching everything off failed");
        }
        self.release(reason);
    }

    /// Frees the controller, announces the end, wakes waiters.
    fn release(&mut self, reason: EndReason) {
        let Some(done) = self.done.take() else {
            return;
        };
        {
            let mut cur = self.ctl.inner.current.lock();
            if cur.as_ref().is_some_and(|r| r.id == self.id) {
                *cur = None;
            }
        }
        let elapsed = self.start.elapsed().as_secs_f64();
        info!(target: "scene", "Scene {} ended ({reason}) after {elapsed:.3}s", self.scene.name);
        self.ctl
            .inner
            .events
            .publish(Event::Scene(SceneEvent::Ended {
                scene: self.scene.name.clone(),
                reason,
                elapsed,
            }));
        let _ = done.send(true);
    }
}

impl Drop for EndGuard {
    fn drop(&mut self) {
        if self.done.is_none() {
            return;
        }
        if std::thread::panicking() {
            self.release(EndReason::Error("the scene task failed".into()));
        } else {
            self.finish(EndReason::Shutdown);
        }
    }
}

impl SceneController {
    /// A controller for `scenes` whose scene tasks run on `tasks`.
    pub fn new(
        scenes: SceneSet,
        sink: Arc<dyn ActionSink>,
        events: EventBus,
        tasks: TaskTracker,
    ) -> Self {
        Self::new_on(scenes, sink, events, tasks, None)
    }

    /// [`SceneController::new`], with each scene's runner (its timer and
    /// the sends of its cues) on the runtime of `cues` (the cue thread,
    /// crate::cue_thread) when given.
    pub fn new_on(
        scenes: SceneSet,
        sink: Arc<dyn ActionSink>,
        events: EventBus,
        tasks: TaskTracker,
        cues: Option<tokio::runtime::Handle>,
    ) -> Self {
        SceneController {
            inner: Arc::new(Inner {
                scenes: parking_lot::RwLock::new(scenes),
                sink,
                events,
                tasks,
                cues,
                current: Mutex::new(None),
                next_id: AtomicU64::new(1),
                log: Mutex::new(RateLog::new(LogLimit::default())),
            }),
        }
    }

    /// The loaded scenes (a snapshot).
    pub fn scenes(&self) -> SceneSet {
        self.inner.scenes.read().clone()
    }

    /// Replaces the scene set (a reload). A running scene finishes on the
    /// definition it started with.
    pub fn replace_scenes(&self, scenes: SceneSet) {
        *self.inner.scenes.write() = scenes;
    }

    /// Starts `name` unless another scene is running; `origin` is what
    /// asked (for the show log, the logs and the event stream).
    pub fn start_from(&self, name: &str, origin: Origin) -> Result<(), StartError> {
        let scene = self
            .inner
            .scenes
            .read()
            .get(name)
            .ok_or_else(|| StartError::NotFound(name.chars().take(64).collect()))?;
        let mut cur = self.inner.current.lock();
        if let Some(r) = cur.as_ref() {
            return Err(StartError::AlreadyRunning(r.scene.name.clone()));
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let cancel = CancellationToken::new();
        let reason = Arc::new(Mutex::new(None));
        let (tx, rx) = mpsc::channel(INPUT_CAPACITY);
        let progress = Arc::new(Mutex::new(Progress::default()));
        let (done_tx, done_rx) = watch::channel(false);
        let start = Instant::now();
        *cur = Some(Running {
            id,
            scene: scene.clone(),
            cancel: cancel.clone(),
            reason: reason.clone(),
            inputs: tx,
            listens: Listens::of(&scene),
            progress: progress.clone(),
            start,
            started: unix_now(),
            done: done_rx,
        });
        drop(cur);

        info!(target: "scene", "Scene {} started ({origin})", scene.name);
        self.inner.events.publish(Event::Scene(SceneEvent::Started {
            scene: scene.name.clone(),
            origin,
        }));
        let run = Runner {
            scene: scene.clone(),
            sink: self.inner.sink.clone(),
            events: self.inner.events.clone(),
            progress,
        }
        .run(rx, cancel);
        let runner = match &self.inner.cues {
            Some(cues) => self.inner.tasks.spawn_on(run, cues),
            None => self.inner.tasks.spawn(run),
        };
        let mut guard = EndGuard {
            ctl: self.clone(),
            id,
            scene,
            start,
            done: Some(done_tx),
        };
        self.inner.tasks.spawn(async move {
            let name = guard.scene.name.clone();
            let end = match runner.await {
                Ok(RunEnd::Completed) => EndReason::Completed,
                Ok(RunEnd::Cancelled) => reason.lock().take().unwrap_or(EndReason::Stopped),
                Ok(RunEnd::Error(e)) => {
                    error!(target: "scene", "Scene {name} failed: {e}");
                    EndReason::Error(e)
                }
                Err(e) if e.is_panic() => {
                    let why = panic_text(e.into_panic());
                    error!(target: "scene", "Scene {name} crashed: {why}");
                    EndReason::Error(format!("the scene crashed: {why}"))
                }
                Err(_) => EndReason::Shutdown,
            };
            guard.finish(end);
        });
        Ok(())
    }

    /// Asks the running scene to stop; its end sequence runs in its own
    /// task. With no scene running, a `Stopped` request still switches
    /// everything off (the panic button); `Shutdown` does nothing. Returns
    /// the scene asked to stop.
    pub fn request_stop(&self, reason: EndReason) -> Option<String> {
        let running = {
            let cur = self.inner.current.lock();
            cur.as_ref().map(|r| {
                *r.reason.lock() = Some(reason.clone());
                r.cancel.cancel();
                r.scene.name.clone()
            })
        };
        if running.is_none() && matches!(reason, EndReason::Stopped | EndReason::EStop) {
            ratelog!(
                self.inner.log,
                warn,
                "scene",
                "idle stop",
                "Stop with no scene running: switching everything off"
            );
            self.inner.sink.all_off(None);
        }
        running
    }

    /// Stops the running scene and waits for its end sequence (see
    /// [`SceneController::request_stop`]).
    pub async fn stop(&self, reason: EndReason) -> Option<String> {
        let name = self.request_stop(reason)?;
        self.wait_idle().await;
        Some(name)
    }

    /// Passes an event to the running scene when one of its transitions
    /// can react to it. Never blocks: when the scene falls behind, the
    /// event is dropped (and logged, rate-limited).
    pub fn input(&self, input: SceneInput) {
        let cur = self.inner.current.lock();
        if let Some(r) = cur.as_ref()
            && r.listens.wants(&input)
        {
            self.offer(r, input);
        }
    }

    /// [`SceneController::input`] for a message on `topic`, copied only
    /// when the running scene listens to it (most messages are heartbeats
    /// and replies no transition waits for).
    pub fn input_mqtt(&self, topic: &str, payload: &str) {
        let cur = self.inner.current.lock();
        if let Some(r) = cur.as_ref()
            && r.listens.hears(topic)
        {
            let input = SceneInput::Mqtt {
                topic: topic.to_string(),
                payload: payload.to_string(),
            };
            self.offer(r, input);
        }
    }

    /// Hands `input` to the running scene `r`, or drops it (logged) when
    /// the scene falls behind.
    fn offer(&self, r: &Running, input: SceneInput) {
        if r.inputs.try_send(input).is_err() {
            ratelog!(
                self.inner.log,
                warn,
                "scene",
                "scene inputs",
                "Scene {} is not keeping up with events; one dropped",
                r.scene.name
            );
        }
    }

    /// A scene is running.
    pub fn is_running(&self) -> bool {
        self.inner.current.lock().is_some()
    }

    /// The running scene, if any.
    pub fn status(&self) -> Option<SceneStatus> {
        let cur = self.inner.current.lock();
        cur.as_ref().map(|r| {
            let p = r.progress.lock().clone();
            let now = Instant::now();
            SceneStatus {
                state_elapsed: p
                    .entered
                    .map_or(0.0, |e| now.saturating_duration_since(e).as_secs_f64()),
                waiting_for: p.waits.iter().map(|w| w.view(now)).collect(),
                name: r.scene.name.clone(),
                state: p.state,
                started: r.started,
                elapsed: r.start.elapsed().as_secs_f64(),
                duration: r.scene.duration().map(|d| d.as_secs_f64()),
                actions_done: p.actions_done,
                actions_total: r.scene.actions().count(),
            }
        })
    }

    /// Waits until no scene is running.
    pub async fn wait_idle(&self) {
        let done = self.inner.current.lock().as_ref().map(|r| r.done.clone());
        if let Some(mut d) = done {
            let _ = d.wait_for(|d| *d).await;
        }
    }
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

#[cfg(test)]
mod tests;
