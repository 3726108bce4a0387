//! The opening-hours schedule (`schedule:` in the config): opening hours per
//! weekday, closed dates, a scene at opening and at closing, shows at a time
//! of day or looped every N minutes, all in the museum's IANA time zone
//! (zone rules from jiff, never hand-written). It owns the plan (pure: which
//! scene starts at which instant of a day), the scheduler task that starts
//! them, and the persisted pause switch.
//!
//! Rules: never two shows at once (a start while a scene runs is skipped
//! and logged; the closing scene stops a running show first, it is the
//! safe state); a start missed while the daemon was down or the clock
//! jumped is never made up late; after a restart the plan continues from
//! the current time.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use std::time::Duration;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};
use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::diag::Pos;

/// A start this much after its time is a missed one (never made up late).
pub const GRACE: Duration = Duration::from_secs(5);
/// The scheduler looks at the wall clock at least this often, so a clock
/// that jumps (NTP on a Pi without a real-time clock) is noticed.
const RECHECK: Duration = Duration::from_secs(30);
/// How far ahead [`Schedule::upcoming`] looks.
const LOOKAHEAD_DAYS: i64 = 14;

/// Opening hours of one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hours {
    /// Opening time.
    pub open: Time,
    /// Closing time (after `open`).
    pub close: Time,
}

/// When a show starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum When {
    /// Once, at this time of day.
    At(Time),
    /// Every `every`, from `from` up to and including `until`.
    Every {
        /// The period (whole minutes).
        every: Duration,
        /// First start.
        from: Time,
        /// No start after this.
        until: Time,
    },
}

/// One `shows:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Show {
    /// The scene it starts.
    pub scene: String,
    /// When.
    pub when: When,
    /// Only on these weekdays (Monday = 0); none: every open day.
    pub days: Option<[bool; 7]>,
    /// Where the scene name was written, for `check`.
    pub pos: Pos,
}

/// A scene named by the schedule, with its position for `check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// The scene.
    pub scene: String,
    /// Where it was written.
    pub pos: Pos,
}

/// `schedule:`, validated.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The IANA name (`Europe/Bratislava`).
    pub timezone: String,
    /// The zone's rules.
    pub tz: TimeZone,
    /// Opening hours, Monday first; none = closed that weekday.
    pub hours: [Option<Hours>; 7],
    /// Closed dates (holidays).
    pub closed: BTreeSet<Date>,
    /// Started at opening time.
    pub at_opening: Option<Named>,
    /// Started at closing time (the safe state; stops a running show).
    pub at_closing: Option<Named>,
    /// The shows.
    pub shows: Vec<Show>,
}

/// Why a start is planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `at_opening`.
    Opening,
    /// A `shows:` entry.
    Show,
    /// `at_closing`.
    Closing,
}

/// One planned start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planned {
    /// The instant, in the museum's zone (`2026-11-23T10:15:00+01:00[Europe/Bratislava]`).
    pub at: String,
    /// Unix time of it.
    pub unix: f64,
    /// The scene.
    pub scene: String,
    /// Opening, show or closing.
    pub kind: Kind,
    #[serde(skip)]
    instant: Timestamp,
}

impl Planned {
    /// When, as a timestamp.
    pub fn instant(&self) -> Timestamp {
        self.instant
    }
}

/// Monday = 0.
fn day_index(w: Weekday) -> usize {
    w.to_monday_zero_offset() as usize
}

/// The weekday names the config uses, Monday first.
pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// `HH:MM` (or `H:MM`, `HH:MM:SS`).
pub fn parse_time(s: &str) -> Result<Time, String> {
    let bad = || format!("`{s}` is not a time of day (HH:MM, e.g. 10:00 or 17:30)");
    let parts: Vec<&str> = s.trim().split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return Err(bad());
    }
    let num = |p: &str, max: i8| -> Result<i8, String> {
        if p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let n: i8 = p.parse().map_err(|_| bad())?;
        if n > max { Err(bad()) } else { Ok(n) }
    };
    let h = num(parts[0], 23)?;
    let m = num(parts[1], 59)?;
    let sec = if parts.len() == 3 {
        num(parts[2], 59)?
    } else {
        0
    };
    Time::new(h, m, sec, 0).map_err(|_| bad())
}

/// `HH:MM-HH:MM`, or `closed`.
pub fn parse_hours(s: &str) -> Result<Option<Hours>, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("closed") {
        return Ok(None);
    }
    let Some((a, b)) = t.split_once('-') else {
        return Err(format!(
            "`{s}` is not opening hours (HH:MM-HH:MM, e.g. 10:00-18:00, or `closed`)"
        ));
    };
    let (open, close) = (parse_time(a)?, parse_time(b)?);
    if close <= open {
        return Err(format!("`{s}`: closing time must be after opening time"));
    }
    Ok(Some(Hours { open, close }))
}

/// `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Result<Date, String> {
    s.trim()
        .parse::<Date>()
        .map_err(|_| format!("`{s}` is not a date (YYYY-MM-DD, e.g. 2026-12-24)"))
}

/// A weekday name (`mon`..`sun`, or the full English name).
pub fn parse_weekday(s: &str) -> Result<usize, String> {
    const FULL: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let l = s.trim().to_ascii_lowercase();
    (0..7)
        .find(|&i| l == WEEKDAYS[i] || l == FULL[i])
        .ok_or_else(|| format!("`{s}` is not a weekday (mon, tue, wed, thu, fri, sat, sun)"))
}

/// An IANA time zone name.
pub fn parse_timezone(s: &str) -> Result<TimeZone, String> {
    TimeZone::get(s.trim())
        .map_err(|_| format!("unknown time zone `{s}` (an IANA name such as Europe/Bratislava)"))
}

impl Schedule {
    /// Opening hours on `date`: none when closed (weekday or holiday).
    pub fn hours_on(&self, date: Date) -> Option<Hours> {
        if self.closed.contains(&date) {
            return None;
        }
        self.hours[day_index(date.weekday())]
    }

    /// Open at `t`.
    pub fn is_open(&self, t: Timestamp) -> bool {
        let z = t.to_zoned(self.tz.clone());
        self.hours_on(z.date())
            .is_some_and(|h| z.time() >= h.open && z.time() < h.close)
    }

    /// The instant of `time` on `date` in the museum's zone. In a DST gap
    /// (a time that does not exist that day) it is the instant just after
    /// the gap; in a fold (a time that happens twice) the first one.
    fn instant(&self, date: Date, time: Time) -> Option<Zoned> {
        date.to_datetime(time).to_zoned(self.tz.clone()).ok()
    }

    /// Everything planned on `date` (local), in time order; one start per
    /// instant (a DST gap can map two wall times onto one instant). Shows
    /// run only while the museum is open.
    pub fn day(&self, date: Date) -> Vec<Planned> {
        let Some(h) = self.hours_on(date) else {
            return Vec::new();
        };
        let mut out: Vec<(Zoned, &str, Kind)> = Vec::new();
        if let Some(o) = &self.at_opening
            && let Some(z) = self.instant(date, h.open)
        {
            out.push((z, &o.scene, Kind::Opening));
        }
        let weekday = day_index(date.weekday());
        for s in &self.shows {
            if s.days.is_some_and(|d| !d[weekday]) {
                continue;
            }
            let mut times = Vec::new();
            match &s.when {
                When::At(t) => times.push(*t),
                When::Every { every, from, until } => {
                    let step = every.as_secs().max(60) as i64;
                    let mut t = *from;
                    loop {
                        times.push(t);
                        match t.checked_add((step).seconds()) {
                            // Wrapping past midnight ends the day's loop.
                            Ok(n) if n > t && n <= *until => t = n,
                            _ => break,
                        }
                    }
                }
            }
            for t in times {
                // The opening scene has the opening instant; a show at the
                // closing time would be cut at once.
                if t < h.open || t >= h.close {
                    continue;
                }
                if let Some(z) = self.instant(date, t) {
                    out.push((z, &s.scene, Kind::Show));
                }
            }
        }
        if let Some(c) = &self.at_closing
            && let Some(z) = self.instant(date, h.close)
        {
            out.push((z, &c.scene, Kind::Closing));
        }
        // Time order; at one instant opening first, closing wins over a
        // show (it is the safe state), then the first listed.
        out.sort_by(|a, b| {
            a.0.timestamp().cmp(&b.0.timestamp()).then_with(|| {
                let rank = |k: Kind| match k {
                    Kind::Opening => 0,
                    Kind::Closing => 1,
                    Kind::Show => 2,
                };
                rank(a.2).cmp(&rank(b.2))
            })
        });
        out.dedup_by(|b, a| a.0.timestamp() == b.0.timestamp());
        out.into_iter()
            .map(|(z, scene, kind)| Planned {
                at: z.to_string(),
                unix: z.timestamp().as_millisecond() as f64 / 1000.0,
                scene: scene.to_string(),
                kind,
                instant: z.timestamp(),
            })
            .collect()
    }

    /// The next `n` starts strictly after `after`.
    pub fn upcoming(&self, after: Timestamp, n: usize) -> Vec<Planned> {
        let mut out = Vec::new();
        let today = after.to_zoned(self.tz.clone()).date();
        for d in 0..LOOKAHEAD_DAYS {
            let Ok(date) = today.checked_add(d.days()) else {
                break;
            };
            for p in self.day(date) {
                if p.instant > after {
                    out.push(p);
                    if out.len() == n {
                        return out;
                    }
                }
            }
        }
        out
    }

    /// Starts in `(from, to]`.
    pub fn between(&self, from: Timestamp, to: Timestamp) -> Vec<Planned> {
        if to <= from {
            return Vec::new();
        }
        let first = from.to_zoned(self.tz.clone()).date();
        let last = to.to_zoned(self.tz.clone()).date();
        let mut out = Vec::new();
        let mut date = first;
        // A clock that jumped years: only the last days matter (all of
        // those starts are missed anyway); keep the work bounded.
        if let Ok(d) = last.checked_sub(LOOKAHEAD_DAYS.days())
            && d > date
        {
            date = d;
        }
        while date <= last {
            out.extend(
                self.day(date)
                    .into_iter()
                    .filter(|p| p.instant > from && p.instant <= to),
            );
            match date.tomorrow() {
                Ok(d) => date = d,
                Err(_) => break,
            }
        }
        out
    }

    /// Every scene name the schedule uses, with its position.
    pub fn scene_refs(&self) -> Vec<(&str, Pos)> {
        let mut v: Vec<(&str, Pos)> = self
            .shows
            .iter()
            .map(|s| (s.scene.as_str(), s.pos))
            .collect();
        for n in [&self.at_opening, &self.at_closing].into_iter().flatten() {
            v.push((&n.scene, n.pos));
        }
        v
    }
}

/// The wall clock the scheduler reads. The real one, or (tests) one that
/// starts at a given instant and follows tokio's clock, so paused tokio
/// time drives a whole simulated day; its `jump` moves it like NTP would.
#[derive(Clone)]
pub struct Wall {
    fake: Option<Arc<Mutex<(Timestamp, tokio::time::Instant)>>>,
}

impl Wall {
    /// The system clock.
    pub fn system() -> Wall {
        Wall { fake: None }
    }

    /// A clock at `start` now, advancing with tokio's clock.
    pub fn starting_at(start: Timestamp) -> Wall {
        Wall {
            fake: Some(Arc::new(Mutex::new((start, tokio::time::Instant::now())))),
        }
    }

    /// Now.
    pub fn now(&self) -> Timestamp {
        match &self.fake {
            None => Timestamp::now(),
            Some(f) => {
                let (t, i) = *f.lock();
                let d = tokio::time::Instant::now() - i;
                t.checked_add(d).unwrap_or(t)
            }
        }
    }

    /// Moves a test clock by `by` seconds (negative: back).
    pub fn jump(&self, by: i64) {
        if let Some(f) = &self.fake {
            let mut g = f.lock();
            g.0 = g.0.checked_add(by.seconds()).unwrap_or(g.0);
        }
    }
}

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
