//! Command files: one-shot command sequences staff fire by hand
//! (`light_off.json`, `STOPALL.json`), as the existing room-controller
//! format keeps them in a `commands/` folder beside the scenes. A file is a
//! JSON (or YAML) array of `{"topic", "message", "timestamp"}`, `timestamp`
//! being seconds from the start of the run.
//!
//! This module owns the model, the loader (positions for every error) and
//! [`CommandRunner`], which fires a file's steps at their offsets through the
//! same [`ActionSink`] as scene cues (so published commands are tracked for
//! feedback), alongside whatever scene runs. A running command is cancelled
//! by *Stop — all off* and at shutdown.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

use super::load::{Builder, RawItem, SceneContext};
use super::{Action, ActionSink, SceneController};
use crate::clock::after;
use crate::config::Dur;
use crate::diag::{Diagnostic, Diagnostics, Pos};
use crate::events::{CommandEvent, Event, EventBus};

/// The folder of command files, in `scenes.dir` and in a room folder
/// (`scenes.dir/<room>/commands`).
pub const COMMANDS_DIR: &str = "commands";

/// How many command files may run at once.
pub const MAX_RUNNING: usize = 16;

/// One step of a command file.
#[derive(Debug, Clone)]
pub struct Step {
    /// Offset from the start of the run (`timestamp`).
    pub at: Duration,
    /// What it does.
    pub action: Action,
}

/// A command file.
#[derive(Debug, Clone)]
pub struct CommandFile {
    /// Its name: the file name without extension.
    pub name: String,
    /// Where it was loaded from.
    pub file: PathBuf,
    /// Sorted by `at` (equal offsets keep file order).
    pub steps: Vec<Step>,
}

/// What `/api/commands` shows.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CommandSummary {
    /// Its name.
    pub name: String,
    /// How many steps.
    pub steps: usize,
    /// Seconds from the first to the last step.
    pub duration: f64,
    /// The topics it sends to, in order, without repeats.
    pub topics: Vec<String>,
    /// It is running now.
    pub running: bool,
}

impl CommandFile {
    /// Seconds from start to the last step.
    pub fn duration(&self) -> Duration {
        self.steps.last().map(|s| s.at).unwrap_or_default()
    }

    /// For `/api/commands`.
    pub fn summary(&self, running: bool) -> CommandSummary {
        let mut topics: Vec<String> = Vec::new();
        for s in &self.steps {
            if !topics.contains(&s.action.topic) {
                topics.push(s.action.topic.clone());
            }
        }
        CommandSummary {
            name: self.name.clone(),
            steps: self.steps.len(),
            duration: self.duration().as_secs_f64(),
            topics,
            running,
        }
    }
}

#[derive(Deserialize)]
struct RawStep {
    #[serde(alias = "at")]
    timestamp: Option<Spanned<Dur>>,
    action: Option<Spanned<String>>,
    topic: Option<Spanned<String>>,
    message: Option<Spanned<String>>,
    timeout: Option<Spanned<Dur>>,
    retain: Option<Spanned<bool>>,
}

/// Whether `text` is an array at its top (a command file rather than a
/// scene).
pub fn is_command_text(text: &str) -> bool {
    matches!(
        serde_saphyr::from_str::<super::load::Shape>(text),
        Ok(super::load::Shape::Seq)
    )
}

/// Parses a command file. Ok carries warnings; Err carries errors and
/// warnings.
pub fn parse_command(
    text: &str,
    path: &Path,
    ctx: &SceneContext,
) -> Result<(CommandFile, Diagnostics), (Diagnostics, Diagnostics)> {
    let raw: Spanned<Vec<Spanned<RawStep>>> = serde_saphyr::from_str(text).map_err(|e| {
        (
            Diagnostics::from(Diagnostic::from_yaml(path, &e)),
            Diagnostics::default(),
        )
    })?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut b = Builder::new(path, ctx);
    let mut warnings = Diagnostics::default();
    super::load::unknown_step_keys(text, path, &mut warnings, &mut b.errors);
    if !crate::topic::is_plain_level(&name) {
        b.err(
            Pos::UNKNOWN,
            format!("command name `{name}` (the file name) must not contain '/', '+', '#'"),
        );
    }
    if raw.value.is_empty() {
        warnings.push(Diagnostic::new(
            path,
            Pos::of(&raw),
            "warning: the command file is an empty list; running it does nothing",
        ));
    }
    let mut steps = Vec::new();
    for item in raw.value {
        let pos = Pos::of(&item);
        let at = match &item.value.timestamp {
            Some(t) => b.time(t, "timestamp"),
            None => Duration::ZERO,
        };
        let RawStep {
            action,
            topic,
            message,
            timeout,
            retain,
            ..
        } = item.value;
        let as_item = Spanned::new(
            RawItem {
                action,
                topic,
                message,
                timeout,
                retain,
                ..RawItem::default()
            },
            item.referenced,
            item.defined,
        );
        if let Some(action) = b.action(&as_item, "a command file") {
            steps.push(Step { at, action });
        } else {
            debug_assert!(!b.errors.is_empty(), "a refused step at {pos:?} says why");
        }
    }
    steps.sort_by_key(|s| s.at);
    warnings.extend(std::mem::take(&mut b.warnings));
    if b.errors.is_empty() {
        Ok((
            CommandFile {
                name,
                file: path.to_path_buf(),
                steps,
            },
            warnings,
        ))
    } else {
        Err((b.errors, warnings))
    }
}

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
        let mut v: Vec<String> = self.inner.running.lock().unwrap().keys().cloned().collect();
        v.sort();
        v
    }

    /// Starts command `name`; `source` says who asked (for the log).
    pub fn run(&self, name: &str, source: &str) -> Result<(), RunError> {
        let name = name.trim();
        let cmd = self
            .inner
            .scenes
            .scenes()
            .command(name)
            .ok_or_else(|| RunError::NotFound(name.chars().take(64).collect()))?;
        let cancel = self.inner.cancel.child_token();
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        {
            let mut running = self.inner.running.lock().unwrap();
            if running.contains_key(&cmd.name) {
                return Err(RunError::AlreadyRunning(cmd.name.clone()));
            }
            if running.len() >= MAX_RUNNING {
                return Err(RunError::Busy);
            }
            running.insert(cmd.name.clone(), (id, cancel.clone()));
        }
        info!(target: "scene", "Command {} run from {source}: {} step(s) over {:.1}s",
            cmd.name, cmd.steps.len(), cmd.duration().as_secs_f64());
        self.inner
            .events
            .publish(Event::Command(CommandEvent::Started {
                name: cmd.name.clone(),
                source: source.to_string(),
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
        let running = self.inner.running.lock().unwrap();
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
        let mut running = self
            .runner
            .inner
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner());
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
    use crate::scene::{ActionKind, SceneSet};

    fn ctx() -> SceneContext {
        SceneContext {
            room: "room1".into(),
            local_channels: vec!["audio".into(), "video".into()],
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
            let t0 = *self.t0.lock().unwrap().get_or_insert_with(Instant::now);
            self.log.lock().unwrap().push((
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
        *rec.t0.lock().unwrap() = Some(Instant::now());
        r.run("light_off", "test").unwrap();
        assert_eq!(
            r.run("light_off", "test"),
            Err(RunError::AlreadyRunning("light_off".into()))
        );
        assert_eq!(
            r.run("nope", "test"),
            Err(RunError::NotFound("nope".into()))
        );
        assert_eq!(r.running(), ["light_off"]);
        assert!(r.list()[0].running);
        tokio::time::sleep(Duration::from_secs(6)).await;
        let log = rec.log.lock().unwrap().clone();
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
        r.run("light_off", "test").unwrap();
        tasks.close();
        tokio::time::sleep(Duration::from_secs(6)).await;
        tasks.wait().await;
        assert_eq!(rec.log.lock().unwrap().len(), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn stop_cancels_the_steps_not_yet_sent() {
        let (r, rec, _events, _tasks) = runner(THREE);
        r.run("light_off", "test").unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(r.cancel_all(), 1);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(rec.log.lock().unwrap().len(), 2);
        assert!(r.running().is_empty());
    }
}
