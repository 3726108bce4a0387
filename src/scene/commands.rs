//! Command files: one-shot command sequences staff fire by hand
//! (`light_off.json`, `STOPALL.json`), as the existing room-controller
//! format keeps them in a `commands/` folder beside the scenes. A file is a
//! JSON (or YAML) array of `{"topic", "message", "timestamp"}`, `timestamp`
//! being seconds from the start of the run.
//!
//! This module owns [`CommandRunner`], which fires a file's steps at their
//! offsets through the same [`ActionSink`] as scene cues (so published
//! commands are tracked for feedback), alongside whatever scene runs. A
//! running command is cancelled by *Stop — all off* and at shutdown. The
//! files themselves are read by `scene::load` (`load/command_file.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

pub use super::load::{CommandFile, CommandSummary, Step};
use super::{ActionSink, SceneController};
use crate::clock::after;
use crate::events::{CommandEvent, Event, EventBus};
use crate::origin::Origin;

/// How many command files may run at once.
pub const MAX_RUNNING: usize = 16;

/// Why a command did not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// No command file of that name.
    #[error("no command named `{0}`")]
    NotFound(String),
    /// The same command is still running.
    #[error("command `{0}` is already running")]
    AlreadyRunning(String),
    /// Too many commands are running.
    #[error("{MAX_RUNNING} commands are running already; try again when one has finished")]
    Busy,
}

struct Inner {
    scenes: SceneController,
    sink: Arc<dyn ActionSink>,
    events: EventBus,
    tasks: TaskTracker,
    cancel: CancellationToken,
    running: Mutex<HashMap<String, (u64, CancellationToken)>>,
    next: AtomicU64,
}

/// Fires command files. Cheap to clone.
#[derive(Clone)]
pub struct CommandRunner {
    inner: Arc<Inner>,
}

impl CommandRunner {
    /// A runner for the command files of `scenes`' set (a reload replaces
    /// them), executing through `sink`; runs are tasks on `tasks` and end
    /// when `cancel` fires.
    pub fn new(
        scenes: SceneController,
        sink: Arc<dyn ActionSink>,
        events: EventBus,
        tasks: TaskTracker,
        cancel: CancellationToken,
    ) -> Self {
        CommandRunner {
            inner: Arc::new(Inner {
                scenes,
                sink,
                events,
                tasks,
                cancel,
                running: Mutex::new(HashMap::new()),
                next: AtomicU64::new(1),
            }),
        }
    }

    /// Every command file, by name, with whether it runs.
    pub fn list(&self) -> Vec<CommandSummary> {
        let running = self.running();
        self.inner
            .scenes
            .scenes()
            .commands()
            .map(|c| c.summary(running.contains(&c.name)))
            .collect()
    }

    /// Names of the commands running now.
    pub fn running(&self) -> Vec<String> {
        let mut v: Vec<String> = self.inner.running.lock().keys().cloned().collect();
        v.sort();
        v
    }

    /// Starts command `name`; `origin` says who asked (for the log).
    pub fn run(&self, name: &str, origin: Origin) -> Result<(), RunError> {
        let cmd = self
            .inner
            .scenes
            .scenes()
            .command(name)
            .ok_or_else(|| RunError::NotFound(name.chars().take(64).collect()))?;
        let cancel = self.inner.cancel.child_token();
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        {
            let mut running = self.inner.running.lock();
            if running.contains_key(&cmd.name) {
                return Err(RunError::AlreadyRunning(cmd.name.clone()));
            }
            if running.len() >= MAX_RUNNING {
                return Err(RunError::Busy);
            }
            running.insert(cmd.name.clone(), (id, cancel.clone()));
        }
        info!(target: "scene", "Command {} run from {origin}: {} step(s) over {:.1}s",
            cmd.name, cmd.steps.len(), cmd.duration().as_secs_f64());
        self.inner
            .events
            .publish(Event::Command(CommandEvent::Started {
                name: cmd.name.clone(),
                origin,
                steps: cmd.steps.len(),
            }));
        let me = self.clone();
        self.inner.tasks.spawn(async move {
            let done = Done {
                runner: me.clone(),
                name: cmd.name.clone(),
                id,
            };
            let sent = me.play(&cmd, &cancel).await;
            let finished = sent == cmd.steps.len();
            if finished {
                info!(target: "scene", "Command {} done: {sent} step(s) sent", cmd.name);
            } else {
                info!(target: "scene", "Command {} cancelled after {sent} of {} step(s)", cmd.name, cmd.steps.len());
            }
            me.inner.events.publish(Event::Command(CommandEvent::Ended {
                name: cmd.name.clone(),
                sent,
                cancelled: !finished,
            }));
            drop(done);
        });
        Ok(())
    }

    /// Sends the steps at their offsets; how many went out.
    async fn play(&self, cmd: &CommandFile, cancel: &CancellationToken) -> usize {
        let start = Instant::now();
        let label = format!("command {}", cmd.name);
        for (i, step) in cmd.steps.iter().enumerate() {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return i,
                _ = sleep_until(after(start, step.at)) => {}
            }
            self.inner.sink.execute(&label, &step.action);
        }
        cmd.steps.len()
    }

    /// Cancels every running command (steps not yet sent are dropped);
    /// how many there were.
    pub fn cancel_all(&self) -> usize {
        let running = self.inner.running.lock();
        for (_, c) in running.values() {
            c.cancel();
        }
        running.len()
    }
}

/// Frees the command's slot however its task ends.
struct Done {
    runner: CommandRunner,
    name: String,
    id: u64,
}

impl Drop for Done {
    fn drop(&mut self) {
        let mut running = self.runner.inner.running.lock();
        if running
            .get(&self.name)
            .is_some_and(|(id, _)| *id == self.id)
        {
            running.remove(&self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::load::{SceneContext, is_command_text, parse_command};
    use crate::scene::{Action, ActionKind, SceneSet};
    use std::path::Path;
    use std::time::Duration;

    fn ctx() -> SceneContext {
        SceneContext {
            room: "room1".into(),
            local_channels: vec!["audio".into(), "video".into()],
            media: None,
        }
    }

    fn parse(text: &str) -> Result<(CommandFile, String), String> {
        parse_command(text, Path::new("scenes/commands/light_off.json"), &ctx())
            .map(|(c, w)| (c, w.to_string()))
            .map_err(|(e, _)| e.to_string())
    }

    #[test]
    fn a_command_file_is_a_list_of_timed_messages() {
        let (c, w) = parse(
            r#"[
  {"topic": "room1/light", "message": "OFF", "timestamp": 0},
  {"topic": "room1/audio", "message": "STOP", "timestamp": 0},
  {"topic": "room1/steam", "message": "OFF", "timestamp": 1.5},
  {"topic": "room1/motor", "message": "STOP", "timestamp": 0.5}
]"#,
        )
        .unwrap();
        assert!(w.is_empty(), "{w}");
        assert_eq!(c.name, "light_off");
        let order: Vec<(u128, &str)> = c
            .steps
            .iter()
            .map(|s| (s.at.as_millis(), s.action.topic.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                (0, "room1/light"),
                (0, "room1/audio"),
                (500, "room1/motor"),
                (1500, "room1/steam")
            ]
        );
        assert!(c.steps[0].action.feedback, "published steps await feedback");
        assert!(matches!(c.steps[1].action.kind, ActionKind::Audio(_)));
        assert!(!c.steps[1].action.feedback);
        assert_eq!(c.duration(), Duration::from_millis(1500));
        let s = c.summary(false);
        assert_eq!(s.topics.len(), 4);
    }

    #[test]
    fn command_file_errors_have_positions() {
        let e = parse(
            "[\n  {\"topic\": \"room1/light\", \"timestamp\": 0},\n  {\"topic\": \"room1/#\", \"message\": \"OFF\"},\n  {\"topic\": \"room1/x\", \"message\": \"ON\", \"timestamp\": 90000}\n]",
        )
        .unwrap_err();
        assert!(
            e.contains("light_off.json:2:3: action in a command file needs `message`"),
            "{e}"
        );
        assert!(
            e.contains("light_off.json:3:13: `room1/#` contains a wildcard"),
            "{e}"
        );
        assert!(e.contains("light_off.json:4:54: timestamp"), "{e}");
        let e = parse(r#"[{"topic": "room1/x", "message": "ON", "timestamp": -1}]"#).unwrap_err();
        assert!(
            e.contains("light_off.json:1:53: invalid duration -1"),
            "{e}"
        );
        // A misspelt key would drop what it holds; editor keys are fine.
        let e = parse(r#"[{"topic": "room1/light", "mesage": "OFF"}]"#).unwrap_err();
        assert!(e.contains("did you mean `message`?"), "{e}");
        let (_, w) = parse(r#"[{"id": 3, "topic": "room1/light", "message": "OFF"}]"#).unwrap();
        assert!(w.contains("warning: unknown key `id`"), "{w}");
        // Not a list at all.
        let e = parse(r#"{"topic": "room1/light"}"#).unwrap_err();
        assert!(e.contains("light_off.json:1:1"), "{e}");
    }

    #[test]
    fn an_array_is_a_command_file_and_a_mapping_is_a_scene() {
        assert!(is_command_text(
            "[{\"topic\": \"a/b\", \"message\": \"x\"}]"
        ));
        assert!(is_command_text("- {topic: a/b, message: x}\n"));
        assert!(!is_command_text("{\"sceneId\": \"x\"}"));
        assert!(!is_command_text("name: x\n"));
        assert!(!is_command_text("[unclosed"));
    }

    /// Records steps with their offsets (paused time, so exact).
    #[derive(Default)]
    struct Rec {
        log: Mutex<Vec<(u128, String, String)>>,
        t0: Mutex<Option<Instant>>,
    }

    impl ActionSink for Rec {
        fn execute(&self, label: &str, a: &Action) {
            let t0 = *self.t0.lock().get_or_insert_with(Instant::now);
            self.log.lock().push((
                (Instant::now() - t0).as_millis(),
                label.to_string(),
                format!("{}={}", a.topic, a.message),
            ));
        }
        fn all_off(&self, _: Option<&str>) {}
    }

    fn runner(text: &str) -> (CommandRunner, Arc<Rec>, EventBus, TaskTracker) {
        let (cmd, _) = parse(text).unwrap();
        let rec = Arc::new(Rec::default());
        let events = EventBus::new(64);
        let tasks = TaskTracker::new();
        let set = SceneSet::default().with_commands(vec![cmd]);
        let scenes = SceneController::new(set, rec.clone(), events.clone(), tasks.clone());
        let r = CommandRunner::new(
            scenes,
            rec.clone(),
            events.clone(),
            tasks.clone(),
            CancellationToken::new(),
        );
        (r, rec, events, tasks)
    }

    const THREE: &str = r#"[{"topic": "room1/light", "message": "OFF", "timestamp": 0},
        {"topic": "room1/steam", "message": "OFF", "timestamp": 2},
        {"topic": "room1/motor", "message": "STOP", "timestamp": 5}]"#;

    #[tokio::test(start_paused = true)]
    async fn steps_go_out_at_their_offsets_once_at_a_time() {
        let (r, rec, events, tasks) = runner(THREE);
        let mut ev = events.subscribe();
        *rec.t0.lock() = Some(Instant::now());
        r.run("light_off", crate::testkit::cli()).unwrap();
        assert_eq!(
            r.run("light_off", crate::testkit::cli()),
            Err(RunError::AlreadyRunning("light_off".into()))
        );
        assert_eq!(
            r.run("nope", crate::testkit::cli()),
            Err(RunError::NotFound("nope".into()))
        );
        assert_eq!(r.running(), ["light_off"]);
        assert!(r.list()[0].running);
        tokio::time::sleep(Duration::from_secs(6)).await;
        let log = rec.log.lock().clone();
        assert_eq!(
            log,
            [
                (0, "command light_off".into(), "room1/light=OFF".into()),
                (2000, "command light_off".into(), "room1/steam=OFF".into()),
                (5000, "command light_off".into(), "room1/motor=STOP".into()),
            ]
        );
        assert!(r.running().is_empty());
        assert!(matches!(
            ev.try_recv().unwrap(),
            Event::Command(CommandEvent::Started { steps: 3, .. })
        ));
        assert!(matches!(
            ev.try_recv().unwrap(),
            Event::Command(CommandEvent::Ended {
                sent: 3,
                cancelled: false,
                ..
            })
        ));
        // Free again.
        r.run("light_off", crate::testkit::cli()).unwrap();
        tasks.close();
        tokio::time::sleep(Duration::from_secs(6)).await;
        tasks.wait().await;
        assert_eq!(rec.log.lock().len(), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn stop_cancels_the_steps_not_yet_sent() {
        let (r, rec, _events, _tasks) = runner(THREE);
        r.run("light_off", crate::testkit::cli()).unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(r.cancel_all(), 1);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(rec.log.lock().len(), 2);
        assert!(r.running().is_empty());
    }
}
