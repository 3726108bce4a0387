//! The opening-hours schedule (`schedule:` in the config): opening hours per
//! weekday, closed dates, a scene at opening and at closing, shows at a time
//! of day or looped every N minutes, all in the museum's IANA time zone
//! (zone rules from jiff, never hand-written). The plan is pure
//! (`plan.rs`: which scene starts at which instant of a day); this module
//! owns the scheduler task that starts them through the room, and the
//! persisted pause switch.
//!
//! Rules: never two shows at once (a start while a scene runs is skipped
//! and logged; the closing scene stops a running show first, it is the
//! safe state); a start missed while the daemon was down or the clock
//! jumped is never made up late; after a restart the plan continues from
//! the current time.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub mod plan;
mod wall;

pub use plan::*;
pub use wall::Wall;

/// A start this much after its time is a missed one (never made up late).
pub const GRACE: Duration = Duration::from_secs(5);
/// The scheduler looks at the wall clock at least this often, so a clock
/// that jumps (NTP on a Pi without a real-time clock) is noticed.
const RECHECK: Duration = Duration::from_secs(30);

/// What the scheduler did with a planned start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The start.
    pub planned: Planned,
    /// `started`, `skipped` (a scene was running), `missed` (too late),
    /// `paused`, or `failed`.
    pub result: String,
    /// Why, in words.
    pub detail: String,
}

/// What `/api/schedule` shows.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleView {
    /// The IANA zone.
    pub timezone: String,
    /// Paused from the dashboard or over MQTT.
    pub paused: bool,
    /// Open right now.
    pub open_now: bool,
    /// Local time now.
    pub now: String,
    /// Today's opening hours (`10:00-18:00`) or `closed`.
    pub today: String,
    /// The next starts.
    pub next: Vec<Planned>,
    /// The last few outcomes (newest last).
    pub recent: Vec<Outcome>,
}

struct Inner {
    schedule: Schedule,
    wall: Wall,
    paused: AtomicBool,
    state_file: Option<PathBuf>,
    /// Why the pause switch in memory is not on disk, while it is not.
    unsaved: Mutex<Option<SaveError>>,
    changed: Notify,
    recent: Mutex<std::collections::VecDeque<Outcome>>,
}

/// The running schedule: its plan, pause switch and recent outcomes.
#[derive(Clone)]
pub struct ScheduleHandle {
    inner: Arc<Inner>,
}

const RECENT: usize = 20;
/// How often a pause switch that could not be saved is tried again.
const SAVE_RETRY: Duration = Duration::from_secs(10);

/// Why pausing or resuming could not be kept across a restart.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot save the schedule's pause state to {path}: {why}")]
pub struct SaveError {
    path: String,
    why: String,
}

impl ScheduleHandle {
    /// A handle for `schedule`; the pause switch is read from `state_file`
    /// (`{"paused": true}`) when there is one.
    pub fn new(schedule: Schedule, wall: Wall, state_file: Option<PathBuf>) -> ScheduleHandle {
        let paused = state_file
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.get("paused").and_then(|p| p.as_bool()))
            .unwrap_or(false);
        ScheduleHandle {
            inner: Arc::new(Inner {
                schedule,
                wall,
                paused: AtomicBool::new(paused),
                state_file,
                unsaved: Mutex::new(None),
                changed: Notify::new(),
                recent: Mutex::new(Default::default()),
            }),
        }
    }

    /// The plan.
    pub fn schedule(&self) -> &Schedule {
        &self.inner.schedule
    }

    /// Paused.
    pub fn paused(&self) -> bool {
        self.inner.paused.load(Ordering::SeqCst)
    }

    /// Pauses or resumes at once; kept across restarts (written, synced,
    /// then renamed, so a power loss leaves the old or the new file, never
    /// half of one). When the file cannot be written (a full or read-only
    /// card), the switch still holds in memory, the error is returned and
    /// reported by [`ScheduleHandle::unsaved`], and the save is retried
    /// every 10 s while the schedule runs.
    pub fn set_paused(&self, paused: bool) -> Result<(), SaveError> {
        // Written first and switched after, under the save lock: whoever
        // sees the new switch finds it on disk too (or the failure in
        // `unsaved`), and no retry writes the old value in between.
        let mut unsaved = self.inner.unsaved.lock();
        let r = self.save(paused);
        let was = self.inner.paused.swap(paused, Ordering::SeqCst);
        if was != paused {
            info!(target: "schedule", "Schedule {}", if paused { "paused" } else { "resumed" });
        }
        Self::note_save(&mut unsaved, &r);
        drop(unsaved);
        self.inner.changed.notify_one();
        r
    }

    /// Why the pause switch is not on disk, while it is not.
    pub fn unsaved(&self) -> Option<SaveError> {
        self.inner.unsaved.lock().clone()
    }

    /// Writes the switch as it is now; remembers a failure (logged when it
    /// is new) and clears it on success.
    fn save_now(&self) -> Result<(), SaveError> {
        // One save at a time, under the lock that records its result, so
        // an older value never overwrites a newer one.
        let mut unsaved = self.inner.unsaved.lock();
        let r = self.save(self.paused());
        Self::note_save(&mut unsaved, &r);
        r
    }

    /// Remembers a failed save (logged when it is new), forgets it on success.
    fn note_save(unsaved: &mut Option<SaveError>, r: &Result<(), SaveError>) {
        match r {
            Ok(()) => {
                if unsaved.take().is_some() {
                    info!(target: "schedule", "The schedule's pause state is saved again");
                }
            }
            Err(e) => {
                if unsaved.as_ref().is_none_or(|u| u.why != e.why) {
                    warn!(target: "schedule", "{e}; it holds until a restart and is retried every {}s", SAVE_RETRY.as_secs());
                }
                *unsaved = Some(e.clone());
            }
        }
    }

    fn save(&self, paused: bool) -> Result<(), SaveError> {
        let Some(path) = &self.inner.state_file else {
            return Ok(());
        };
        let err = |e: std::io::Error| SaveError {
            path: path.display().to_string(),
            why: e.to_string(),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let tmp = path.with_extension("tmp");
        let body = serde_json::json!({ "paused": paused }).to_string();
        crate::durable::replace(path, &tmp, body.as_bytes()).map_err(err)
    }

    /// The next `n` starts from now.
    pub fn upcoming(&self, n: usize) -> Vec<Planned> {
        self.inner.schedule.upcoming(self.inner.wall.now(), n)
    }

    /// For `/api/schedule` and the dashboard.
    pub fn view(&self, n: usize) -> ScheduleView {
        let s = &self.inner.schedule;
        let now = self.inner.wall.now();
        let z = now.to_zoned(s.tz.clone());
        let today = match s.hours_on(z.date()) {
            Some(h) => format!("{}-{}", h.open.strftime("%H:%M"), h.close.strftime("%H:%M")),
            None => "closed".into(),
        };
        ScheduleView {
            timezone: s.timezone.clone(),
            paused: self.paused(),
            open_now: s.is_open(now),
            now: z.strftime("%Y-%m-%d %H:%M:%S %Z").to_string(),
            today,
            next: s.upcoming(now, n),
            recent: self.inner.recent.lock().iter().cloned().collect(),
        }
    }

    /// The outcomes so far (newest last, at most 20).
    pub fn recent(&self) -> Vec<Outcome> {
        self.inner.recent.lock().iter().cloned().collect()
    }

    fn record(&self, planned: Planned, result: &str, detail: String) {
        let mut r = self.inner.recent.lock();
        if r.len() == RECENT {
            r.pop_front();
        }
        r.push_back(Outcome {
            planned,
            result: result.into(),
            detail,
        });
    }

    /// Starts what is due through `shows` until `cancel`. Only starts
    /// planned after this call are made: what was due while the daemon was
    /// down stays missed.
    pub async fn run(self, shows: impl Shows, cancel: CancellationToken) {
        let wall = self.inner.wall.clone();
        let s = &self.inner.schedule;
        let mut last = wall.now();
        if let Some(n) = s.upcoming(last, 1).first() {
            info!(target: "schedule", "Schedule ({}): next {} `{}` at {}", s.timezone, kind_word(n.kind), n.scene, n.at);
        }
        loop {
            let now = wall.now();
            for p in s.between(last, now) {
                self.fire(&shows, p, now).await;
            }
            // A clock set back does not replay what already ran.
            if now > last {
                last = now;
            }
            let wait = s
                .upcoming(last, 1)
                .first()
                .map(|p| p.instant.duration_since(now).unsigned_abs())
                .unwrap_or(RECHECK)
                .min(RECHECK);
            let retry_save = self.unsaved().is_some();
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = crate::clock::sleep_until_precise(tokio::time::Instant::now() + wait) => {}
                _ = self.inner.changed.notified() => {}
                _ = tokio::time::sleep(SAVE_RETRY), if retry_save => {
                    let _ = self.save_now();
                }
            }
        }
    }

    async fn fire(&self, shows: &impl Shows, p: Planned, now: Timestamp) {
        let late = now.duration_since(p.instant).unsigned_abs();
        let what = format!("{} `{}` at {}", kind_word(p.kind), p.scene, p.at);
        if late > GRACE {
            let detail = format!(
                "{:.0} s late (daemon down or clock jumped): not started late",
                late.as_secs_f64()
            );
            warn!(target: "schedule", "Schedule: missed {what}: {detail}");
            self.record(p, "missed", detail);
            return;
        }
        if self.paused() {
            info!(target: "schedule", "Schedule paused: not starting {what}");
            self.record(p, "paused", "the schedule is paused".into());
            return;
        }
        if p.kind == Kind::Closing
            && let Some(running) = shows.running()
        {
            info!(target: "schedule", "Schedule: closing time: stopping `{running}`");
            let _ =
                tokio::time::timeout(Duration::from_secs(30), shows.stop(kind_word(p.kind))).await;
        }
        match shows.start(&p.scene, kind_word(p.kind)) {
            Ok(()) => {
                info!(target: "schedule", "Schedule: started {what}");
                self.record(p, "started", String::new());
            }
            Err(Refused::Busy(r)) => {
                let detail = format!("scene `{r}` is running (never two shows at once)");
                warn!(target: "schedule", "Schedule: skipped {what}: {detail}");
                self.record(p, "skipped", detail);
            }
            Err(Refused::Failed(e)) => {
                warn!(target: "schedule", "Schedule: cannot start {what}: {e}");
                self.record(p, "failed", e);
            }
        }
    }
}

/// What the schedule asks of the room. The room answers through its front
/// door (`room::Command`); the schedule never touches the scenes itself.
pub trait Shows: Send + Sync {
    /// The running scene, if one runs.
    fn running(&self) -> Option<String>;
    /// Stops the running scene (closing time, `what` is due); resolves
    /// once its end sequence has run.
    fn stop(&self, what: &'static str) -> impl std::future::Future<Output = ()> + Send;
    /// Starts `scene` because `what` (`show`, `opening scene`...) is due.
    fn start(&self, scene: &str, what: &'static str) -> Result<(), Refused>;
}

/// Why a planned start did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// This scene is running (never two shows at once).
    Busy(String),
    /// Anything else, in words.
    Failed(String),
}

fn kind_word(k: Kind) -> &'static str {
    match k {
        Kind::Opening => "opening scene",
        Kind::Show => "show",
        Kind::Closing => "closing scene",
    }
}

#[cfg(test)]
mod tests;
