//! One scene at a time: starts a scene, forwards events to it, stops it, and
//! always finishes with the end-of-scene sequence (the scene's `on_stop`
//! actions, then everything off: `ROOM/STOP`, audio fade-out, video idle).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::runner::{Progress, RunEnd, Runner};
use super::{ActionSink, EndReason, SceneEvent, SceneInput, SceneRef, SceneSet};
use crate::events::{Event, EventBus};
use crate::mqtt::unix_now;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StartError {
    #[error("no scene named `{0}`")]
    NotFound(String),
    #[error("scene `{0}` is running; stop it first")]
    AlreadyRunning(String),
}

/// The running scene, for `/api/status`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SceneStatus {
    pub name: String,
    pub state: String,
    /// Unix time it started.
    pub started: f64,
    pub elapsed: f64,
    /// Seconds; none when the end depends on events.
    pub duration: Option<f64>,
    pub actions_done: usize,
    pub actions_total: usize,
}

struct Running {
    id: u64,
    scene: SceneRef,
    cancel: CancellationToken,
    /// Why it was cancelled (stop vs shutdown).
    reason: Arc<Mutex<Option<EndReason>>>,
    inputs: mpsc::Sender<SceneInput>,
    progress: Arc<Mutex<Progress>>,
    start: Instant,
    started: f64,
    done: watch::Receiver<bool>,
}

struct Inner {
    scenes: SceneSet,
    sink: Arc<dyn ActionSink>,
    events: EventBus,
    current: Mutex<Option<Running>>,
    next_id: AtomicU64,
}

/// Cheap to clone.
#[derive(Clone)]
pub struct SceneController {
    inner: Arc<Inner>,
}

impl SceneController {
    pub fn new(scenes: SceneSet, sink: Arc<dyn ActionSink>, events: EventBus) -> Self {
        SceneController {
            inner: Arc::new(Inner {
                scenes,
                sink,
                events,
                current: Mutex::new(None),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    pub fn scenes(&self) -> &SceneSet {
        &self.inner.scenes
    }

    /// Starts `name` unless another scene is running.
    pub fn start(&self, name: &str) -> Result<(), StartError> {
        let scene = self
            .inner
            .scenes
            .get(name)
            .ok_or_else(|| StartError::NotFound(name.chars().take(64).collect()))?;
        let mut cur = self.inner.current.lock().unwrap();
        if let Some(r) = cur.as_ref() {
            return Err(StartError::AlreadyRunning(r.scene.name.clone()));
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let cancel = CancellationToken::new();
        let reason = Arc::new(Mutex::new(None));
        let (tx, rx) = mpsc::channel(64);
        let progress = Arc::new(Mutex::new(Progress::default()));
        let (done_tx, done_rx) = watch::channel(false);
        *cur = Some(Running {
            id,
            scene: scene.clone(),
            cancel: cancel.clone(),
            reason: reason.clone(),
            inputs: tx,
            progress: progress.clone(),
            start: Instant::now(),
            started: unix_now(),
            done: done_rx,
        });
        drop(cur);

        info!(target: "scene", "Scene {} started", scene.name);
        self.inner.events.publish(Event::Scene(SceneEvent::Started {
            scene: scene.name.clone(),
        }));
        let this = self.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let mut rx = rx;
            let end = Runner {
                scene: &scene,
                sink: &*this.inner.sink,
                events: &this.inner.events,
                progress: &progress,
            }
            .run(&mut rx, &cancel)
            .await;
            let reason = match end {
                RunEnd::Completed => EndReason::Completed,
                RunEnd::Cancelled => reason.lock().unwrap().take().unwrap_or(EndReason::Stopped),
                RunEnd::Error(e) => {
                    error!(target: "scene", "Scene {} failed: {e}", scene.name);
                    EndReason::Error(e)
                }
            };
            this.finish(&scene, reason, start);
            {
                let mut cur = this.inner.current.lock().unwrap();
                if cur.as_ref().is_some_and(|r| r.id == id) {
                    *cur = None;
                }
            }
            let _ = done_tx.send(true);
        });
        Ok(())
    }

    /// The end-of-scene sequence.
    fn finish(&self, scene: &SceneRef, reason: EndReason, start: Instant) {
        for a in &scene.on_stop {
            self.inner.sink.execute(&scene.name, a);
            self.inner.events.publish(Event::Scene(SceneEvent::Action {
                scene: scene.name.clone(),
                state: "on_stop".into(),
                elapsed: start.elapsed().as_secs_f64(),
                kind: a.kind_name().into(),
                topic: a.topic.clone(),
                message: a.message.clone(),
                feedback: a.feedback,
            }));
        }
        self.inner.sink.all_off(Some(&scene.name));
        let elapsed = start.elapsed().as_secs_f64();
        info!(target: "scene", "Scene {} ended ({reason}) after {elapsed:.3}s", scene.name);
        self.inner.events.publish(Event::Scene(SceneEvent::Ended {
            scene: scene.name.clone(),
            reason,
            elapsed,
        }));
    }

    /// Stops the running scene and waits for its end sequence. With no
    /// scene running, a `Stopped` request still switches everything off
    /// (the panic button); `Shutdown` does nothing. Returns the scene stopped.
    pub async fn stop(&self, reason: EndReason) -> Option<String> {
        let running = {
            let cur = self.inner.current.lock().unwrap();
            cur.as_ref().map(|r| {
                *r.reason.lock().unwrap() = Some(reason.clone());
                r.cancel.cancel();
                (r.scene.name.clone(), r.done.clone())
            })
        };
        match running {
            Some((name, mut done)) => {
                let _ = done.wait_for(|d| *d).await;
                Some(name)
            }
            None => {
                if reason == EndReason::Stopped {
                    warn!(target: "scene", "Stop with no scene running: switching everything off");
                    self.inner.sink.all_off(None);
                }
                None
            }
        }
    }

    /// Passes an event to the running scene (dropped when idle or full).
    pub fn input(&self, input: SceneInput) {
        let cur = self.inner.current.lock().unwrap();
        if let Some(r) = cur.as_ref()
            && r.inputs.try_send(input).is_err()
        {
            warn!(target: "scene", "Scene {} is not keeping up with events; one dropped", r.scene.name);
        }
    }

    pub fn is_running(&self) -> bool {
        self.inner.current.lock().unwrap().is_some()
    }

    pub fn status(&self) -> Option<SceneStatus> {
        let cur = self.inner.current.lock().unwrap();
        cur.as_ref().map(|r| {
            let p = r.progress.lock().unwrap().clone();
            SceneStatus {
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
        let done = self
            .inner
            .current
            .lock()
            .unwrap()
            .as_ref()
            .map(|r| r.done.clone());
        if let Some(mut d) = done {
            let _ = d.wait_for(|d| *d).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::load::{SceneContext, parse_scene};
    use std::path::Path;
    use std::time::Duration;

    use crate::scene::testing::RecordingSink as Rec;

    fn controller(rec: Arc<Rec>) -> SceneController {
        let ctx = SceneContext {
            room: "room1".into(),
            local_channels: vec!["audio".into()],
        };
        let s = parse_scene(
            "name: intro\nactions:\n  - {at: 0, topic: room1/light, message: 'ON'}\n  - {at: 10, topic: room1/motor, message: START}\non_stop:\n  - {topic: room1/steam, message: 'OFF'}\n",
            Path::new("intro.yaml"),
            &ctx,
        )
        .unwrap()
        .0;
        SceneController::new(SceneSet::new([s]), rec, EventBus::new(64))
    }

    #[tokio::test(start_paused = true)]
    async fn natural_end_runs_on_stop_then_all_off() {
        let rec = Arc::new(Rec::default());
        let c = controller(rec.clone());
        c.start("intro").unwrap();
        assert_eq!(
            c.start("intro"),
            Err(StartError::AlreadyRunning("intro".into()))
        );
        assert_eq!(c.start("nope"), Err(StartError::NotFound("nope".into())));
        tokio::time::sleep(Duration::from_secs(1)).await;
        let st = c.status().unwrap();
        assert_eq!(
            (
                st.name.as_str(),
                st.state.as_str(),
                st.actions_done,
                st.actions_total
            ),
            ("intro", "main", 1, 2)
        );
        c.wait_idle().await;
        assert_eq!(
            rec.entries(),
            [
                "room1/light=ON",
                "room1/motor=START",
                "room1/steam=OFF",
                "ALL_OFF(intro)"
            ]
        );
        assert!(!c.is_running());
        c.start("intro").unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn stop_mid_scene_and_panic_when_idle() {
        let rec = Arc::new(Rec::default());
        let c = controller(rec.clone());
        let mut events = c.inner.events.subscribe();
        c.start("intro").unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(c.stop(EndReason::Stopped).await, Some("intro".into()));
        assert_eq!(
            rec.entries(),
            ["room1/light=ON", "room1/steam=OFF", "ALL_OFF(intro)"]
        );
        let mut ended = None;
        while let Ok(e) = events.try_recv() {
            if let Event::Scene(SceneEvent::Ended { reason, .. }) = e {
                ended = Some(reason);
            }
        }
        assert_eq!(ended, Some(EndReason::Stopped));
        assert_eq!(c.stop(EndReason::Stopped).await, None);
        assert_eq!(rec.entries().last().unwrap(), "ALL_OFF(-)");
        let n = rec.entries().len();
        assert_eq!(c.stop(EndReason::Shutdown).await, None);
        assert_eq!(rec.entries().len(), n, "shutdown while idle does nothing");
    }
}
