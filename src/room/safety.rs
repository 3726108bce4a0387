//! Show safety at the front door: the latched E-stop (pressed, refused
//! starts, reset), the minimum time between starts against double
//! presses, and the result of the safe state (each board's own safe
//! commands, confirmed or not).

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::{Command, Room, RoomError};
use crate::config::Config;
use crate::estop::Latch;
use crate::events::Outcome;
use crate::origin::Origin;
use crate::topic;

/// Extra wait past the cue timeout for the safe state's last replies.
const SAFE_GRACE: Duration = Duration::from_millis(300);

/// How each board took its safe state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SafeReport {
    /// Per board with a `safe` list: `OK`, `ERROR`, `TIMEOUT`.
    pub boards: Vec<BoardSafe>,
    /// In words: `Stopped: 5 of 6 boards confirmed; esp32_08 did not
    /// answer`.
    pub summary: String,
}

/// One board's safe state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BoardSafe {
    /// The board.
    pub device: String,
    /// Every safe command confirmed.
    pub confirmed: bool,
    /// What failed (`room1/smoke OFF: TIMEOUT`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
}

/// When scenes started last.
#[derive(Default)]
pub(super) struct Starts {
    last: Option<Instant>,
    by_trigger: std::collections::HashMap<String, Instant>,
}

/// The room's latch: in `state_dir` for a daemon and for `roomctl play`
/// beside it (which only reads it); in memory for a config in memory.
pub(super) fn load_latch(config: &Config) -> Latch {
    let path = (!config.in_memory).then(|| config.state_dir.join("estop.json"));
    let (latch, problem) = Latch::load(path);
    if let Some(p) = problem {
        tracing::error!(target: "daemon", "The E-stop latch file cannot be read ({p}): the room stays latched until a technician resets it");
    }
    if let Some(l) = latch.get() {
        tracing::warn!(target: "daemon", "E-stop latched (by {}): nothing starts until a technician resets it", l.by);
    }
    latch
}

impl Room {
    /// Ends the scene whose required cue failed (after its retries),
    /// through its end sequence and the safe state, if the run that sent
    /// the cue is still the one running.
    pub(super) async fn stop_on_required(
        self,
        mut rx: tokio::sync::mpsc::UnboundedReceiver<super::sink::RequiredFailed>,
    ) {
        loop {
            let f = tokio::select! {
                _ = self.cancel.cancelled() => return,
                f = rx.recv() => match f { Some(f) => f, None => return },
            };
            let running = self.scenes.status();
            if running.is_some_and(|s| s.name == f.scene && s.started <= f.sent + 0.001) {
                tracing::error!(target: "scene", "{}: required cue failed ({}): stopping the show into its safe state", f.scene, f.cue);
                self.scenes
                    .request_stop(crate::scene::EndReason::RequiredCueFailed(f.cue));
            }
        }
    }

    /// Refuses what would start something while the E-stop is latched.
    pub(super) fn refuse_if_latched(&self, c: &Command) -> Result<(), RoomError> {
        let starts = matches!(
            c,
            Command::StartScene(_)
                | Command::StartDefaultScene
                | Command::RunCommand(_)
                | Command::Send { .. }
                | Command::TestDevice(_)
                | Command::PreviewSound(_)
                | Command::PreviewClip(_)
        );
        match self.estop.get() {
            Some(l) if starts => Err(RoomError::Latched(format!(
                "E-stop latched since {} by {}: nothing starts until a technician resets it",
                local_time(&self.zone(), l.since),
                l.by
            ))),
            _ => Ok(()),
        }
    }

    /// Latches the E-stop (saved before anything else), for `origin`.
    pub(super) fn press_estop(&self, origin: &Origin) -> Result<(), RoomError> {
        if self.estop.get().is_some() {
            // Pressed again (a held button, a flood): one latch, one line.
            return Ok(());
        }
        match self.estop.press(origin.to_string()) {
            Ok(l) => {
                tracing::error!(target: "daemon", "E-stop pressed by {origin} (latched since {}): stopping, safe state, nothing starts until reset", local_time(&self.zone(), l.since));
                Ok(())
            }
            // Latched in memory all the same; the stop goes on.
            Err(e) => {
                tracing::error!(target: "daemon", "E-stop pressed by {origin}; {e}: it holds until the daemon restarts");
                Ok(())
            }
        }
    }

    /// Frees the latch.
    pub(super) fn reset_estop(&self, origin: &Origin) -> Result<super::Reply, RoomError> {
        let was = self
            .estop
            .reset()
            .map_err(|e| RoomError::NotSaved(format!("{e}; the room stays latched")))?;
        match &was {
            Some(l) => {
                tracing::warn!(target: "daemon", "E-stop reset by {origin} (pressed by {} at {})", l.by, local_time(&self.zone(), l.since))
            }
            None => {
                tracing::info!(target: "daemon", "E-stop reset by {origin}: it was not latched")
            }
        }
        Ok(super::Reply::EstopReset { was })
    }

    /// Refuses a start within `scenes.min_start_interval` (or the
    /// trigger's `min_interval`) of the last one: a double press. Passed,
    /// it gives the trigger to count in [`Room::started`] once the scene
    /// did start (a refused start is no start to wait after).
    pub(super) fn start_gate(
        &self,
        scene: &str,
        origin: &Origin,
    ) -> Result<Option<String>, RoomError> {
        let now = Instant::now();
        let global = self.config.scenes.min_start_interval;
        let trigger = match origin {
            Origin::Trigger { topic: t } => self
                .config
                .triggers
                .iter()
                .filter(|c| c.scene == scene && topic::matches(&c.topic, t))
                .map(|c| c.min_interval)
                .max()
                .map(|i| (t.clone(), i)),
            _ => None,
        };
        let st = self.starts.lock();
        let ago = |t: Option<&Instant>| t.map(|t| now.saturating_duration_since(*t));
        if let Some(a) = ago(st.last.as_ref())
            && a < global
        {
            return Err(double(a, global, "scenes.min_start_interval", origin));
        }
        if let Some((t, min)) = &trigger
            && let Some(a) = ago(st.by_trigger.get(t))
            && a < *min
        {
            return Err(double(a, *min, "the trigger's min_interval", origin));
        }
        Ok(trigger.map(|(t, _)| t))
    }

    /// A scene started now (by `trigger`, if one), for [`Room::start_gate`].
    pub(super) fn started(&self, trigger: Option<String>) {
        let now = Instant::now();
        let mut st = self.starts.lock();
        st.last = Some(now);
        if let Some(t) = trigger
            && (st.by_trigger.len() < 1024 || st.by_trigger.contains_key(&t))
        {
            st.by_trigger.insert(t, now);
        }
    }

    /// Waits for the safe commands of the last all-off (at most their
    /// timeout) and says how each board took them.
    pub(super) async fn safe_report(&self, scene: Option<&str>) -> SafeReport {
        let sent = std::mem::take(&mut *self.round.lock());
        // One deadline for all: they were sent together.
        let deadline = crate::clock::after(Instant::now(), self.live().cue_timeout + SAFE_GRACE);
        let mut boards: Vec<BoardSafe> = Vec::new();
        for s in sent {
            let outcome = match tokio::time::timeout_at(deadline, s.result).await {
                Ok(Ok(r)) => r.result,
                _ => Outcome::Timeout,
            };
            let i = match boards.iter().position(|b| b.device == s.device) {
                Some(i) => i,
                None => {
                    boards.push(BoardSafe {
                        device: s.device.clone(),
                        confirmed: true,
                        failed: vec![],
                    });
                    boards.len() - 1
                }
            };
            if outcome != Outcome::Ok {
                boards[i].confirmed = false;
                let word = if outcome == Outcome::Error {
                    "ERROR"
                } else {
                    "TIMEOUT"
                };
                boards[i]
                    .failed
                    .push(format!("{} {}: {word}", s.topic, s.message));
            }
        }
        let what = match scene {
            Some(s) => format!("Stopped {s}"),
            None => "Stopped".to_string(),
        };
        let ok = boards.iter().filter(|b| b.confirmed).count();
        let silent: Vec<&str> = boards
            .iter()
            .filter(|b| !b.confirmed)
            .map(|b| b.device.as_str())
            .collect();
        let summary = if boards.is_empty() && !self.config.devices.safe.is_empty() {
            // The stop gate sent nothing: nothing went out since the last.
            format!("{what}: already all off (nothing was sent since the last stop)")
        } else if boards.is_empty() {
            format!("{what}: ROOM/STOP sent")
        } else if silent.is_empty() {
            format!("{what}: all {ok} boards confirmed their safe state")
        } else {
            format!(
                "{what}: {ok} of {} boards confirmed; {} did not answer",
                boards.len(),
                silent.join(", ")
            )
        };
        SafeReport { boards, summary }
    }
}

fn double(ago: Duration, min: Duration, name: &str, origin: &Origin) -> RoomError {
    tracing::warn!(target: "scene", "Start by {origin} ignored: {:.1} s after the last start ({name} {:.1} s)", ago.as_secs_f64(), min.as_secs_f64());
    RoomError::Conflict(format!(
        "ignored: a start {:.1} s after the last one ({name} is {:.1} s; a double press?)",
        ago.as_secs_f64(),
        min.as_secs_f64()
    ))
}

/// `2026-12-02 14:03:12` in the museum's zone.
fn local_time(tz: &jiff::tz::TimeZone, unix: f64) -> String {
    crate::clock::local(unix, tz, "%Y-%m-%d %H:%M:%S")
}
