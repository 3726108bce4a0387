//! The show log: what happened in the room, for staff and the museum's
//! maintenance records. Every scene start (with what started it) and end,
//! every feedback TIMEOUT or ERROR, device online/offline and broker
//! failover is appended to `state_dir/show.log`.
//!
//! On disk: one record per line, `<crc32 hex> <json>\n`. Appending never
//! rewrites what is there, and a record torn by a power loss (or zeros a
//! file system left after a crash) fails its checksum and is skipped on
//! read. Size-capped: when `show.log` passes half of `max_bytes` it becomes
//! `show.log.1` (replacing the older one), so both together stay under
//! `max_bytes`. Writes are rate-limited per kind, so a device flapping or a
//! flood of unknown devices cannot fill the SD card.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::events::{ConnectionState, Event, Outcome, Presence, SceneEvent};
use crate::mqtt::unix_now;
use crate::ratelog::{LogLimit, RateLog, Summary, Verdict};

/// Default size cap of the two files together.
pub const DEFAULT_MAX_BYTES: u64 = 4 * 1024 * 1024;
/// At most this many records of one kind per minute; the rest are counted
/// and summed up in one record.
const PER_MINUTE: u32 = 60;
/// Written data is synced to the card at least this often.
const SYNC_EVERY: Duration = Duration::from_secs(5);
/// Commands outside a scene (or in a long one) are counted into a
/// `commands` record at least this often.
const TALLY_EVERY: Duration = Duration::from_secs(600);

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Unix time.
    pub t: f64,
    /// `scene_start`, `scene_end`, `action`, `timeout`, `error`,
    /// `commands`, `device`, `connection`, `note`.
    pub kind: String,
    /// What happened, in words.
    pub text: String,
    /// The scene concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scene: Option<String>,
    /// The device (or command topic) concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// What started a scene, or asked for an action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// The person or API token behind it, when one is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub who: Option<String>,
    /// A `commands` record's counts: the device's commands since its last
    /// such record, by result, with the confirmations' latencies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands: Option<Commands>,
}

impl Record {
    fn new(kind: &str, text: String) -> Record {
        Record {
            t: unix_now(),
            kind: kind.into(),
            text,
            scene: None,
            device: None,
            origin: None,
            who: None,
            commands: None,
        }
    }
}

/// A day's counts for the dashboard.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DayCounts {
    /// Scenes started.
    pub shows_started: u64,
    /// Scenes that ran to their end.
    pub shows_completed: u64,
    /// Feedback timeouts per device (or command topic when no device is
    /// known), most first.
    pub timeouts: Vec<(String, u64)>,
    /// Feedback errors.
    pub errors: u64,
    /// Broker changes.
    pub failovers: u64,
}

mod files;
mod latency;
pub mod stats;
mod tally;
use files::{Files, read_file};
pub use latency::Latency;
pub use tally::Commands;
use tally::Tally;

/// The show log of one room. Cheap to clone.
#[derive(Clone)]
pub struct ShowLog {
    files: Arc<Mutex<Files>>,
}

impl ShowLog {
    /// The log in `path` (created on first write), capped at `max_bytes`.
    pub fn new(path: PathBuf, max_bytes: u64) -> ShowLog {
        ShowLog {
            files: Arc::new(Mutex::new(Files {
                path,
                max_bytes: max_bytes.max(4096),
                file: None,
                size: 0,
                dirty: false,
                failing: None,
            })),
        }
    }

    /// Appends one record now. A failing card (full, read-only, over a
    /// file-size limit) is logged once per kind of failure and reported by
    /// [`ShowLog::failing`], never fatal; the next record tries again.
    pub fn append(&self, r: &Record) {
        let mut f = self.files.lock();
        match f.append(r) {
            Ok(()) => {
                if f.failing.take().is_some() {
                    tracing::info!(target: "showlog", "The show log {} is written again", f.path.display());
                }
            }
            Err(e) => {
                let why = e.to_string();
                if f.failing.as_ref().is_none_or(|(_, w)| *w != why) {
                    warn!(target: "showlog", "Cannot write the show log {}: {why}", f.path.display());
                }
                if f.failing.is_none() {
                    f.failing = Some((unix_now(), why));
                }
                f.file = None;
            }
        }
    }

    /// Since when (unix time) and why records cannot be written, while
    /// they cannot.
    pub fn failing(&self) -> Option<(f64, String)> {
        self.files.lock().failing.clone()
    }

    /// Every record on disk, oldest first.
    pub fn read_all(&self) -> Vec<Record> {
        let f = self.files.lock();
        let mut out = Vec::new();
        read_file(&f.old(), &mut out);
        read_file(&f.path, &mut out);
        out
    }

    /// Records after `since` (unix time), oldest first, at most `limit`
    /// (the newest ones when there are more).
    pub fn query(&self, since: f64, limit: usize) -> Vec<Record> {
        self.query_by(since, limit, None)
    }

    /// [`ShowLog::query`], only the records of `who` (a user, or
    /// `token NAME`) when given.
    pub fn query_by(&self, since: f64, limit: usize, who: Option<&str>) -> Vec<Record> {
        let mut all: Vec<Record> = self
            .read_all()
            .into_iter()
            .filter(|r| r.t > since && who.is_none_or(|w| r.who.as_deref() == Some(w)))
            .collect();
        if all.len() > limit {
            all.drain(..all.len() - limit);
        }
        all
    }

    /// Counts of the records in `[from, to)` (unix times).
    pub fn counts(&self, from: f64, to: f64) -> DayCounts {
        let mut c = DayCounts::default();
        let mut timeouts: HashMap<String, u64> = HashMap::new();
        for r in self.read_all() {
            if r.t < from || r.t >= to {
                continue;
            }
            match r.kind.as_str() {
                "scene_start" => c.shows_started += 1,
                "scene_end" if r.text.ends_with("completed") => c.shows_completed += 1,
                "timeout" => {
                    *timeouts
                        .entry(r.device.clone().unwrap_or_else(|| "?".into()))
                        .or_default() += 1
                }
                "error" => c.errors += 1,
                "connection" if r.text.starts_with("Failover") => c.failovers += 1,
                _ => {}
            }
        }
        let mut t: Vec<(String, u64)> = timeouts.into_iter().collect();
        t.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        c.timeouts = t;
        c
    }

    /// Writes what the room does (from its event bus) until `cancel`.
    pub async fn run(self, mut rx: broadcast::Receiver<Event>, cancel: CancellationToken) {
        let mut limits = RateLog::new(LogLimit {
            burst: PER_MINUTE,
            window: Duration::from_secs(60),
        });
        let mut presence: HashMap<String, Presence> = HashMap::new();
        let mut last_broker: Option<String> = None;
        let mut was_connected = false;
        let mut sync = tokio::time::interval(SYNC_EVERY);
        let mut tally = Tally::default();
        let mut tally_every = tokio::time::interval(TALLY_EVERY);
        tally_every.tick().await;
        loop {
            let event = tokio::select! {
                // What is already on the bus first: a scene's end at
                // shutdown still reaches the log.
                biased;
                e = rx.recv() => match e {
                    Ok(e) => e,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        self.append(&Record::new("note", format!("{n} events were not logged (the log could not keep up)")));
                        continue;
                    }
                    Err(_) => break,
                },
                _ = cancel.cancelled() => break,
                _ = sync.tick() => {
                    self.flush_limits(&mut limits);
                    self.files.lock().sync();
                    continue;
                }
                _ = tally_every.tick() => {
                    self.append_all(tally.take());
                    continue;
                }
            };
            match &event {
                Event::Feedback(f) => tally.add(f),
                // A scene's counts go before its end.
                Event::Scene(SceneEvent::Ended { .. }) => self.append_all(tally.take()),
                _ => {}
            }
            let Some((class, rec)) =
                self.record_of(event, &mut presence, &mut last_broker, &mut was_connected)
            else {
                continue;
            };
            let (verdict, ended) = limits.check(class, tokio::time::Instant::now());
            if let Some(s) = ended {
                self.summary(&s);
            }
            if verdict == Verdict::Log {
                self.append(&rec);
            }
        }
        self.append_all(tally.take());
        self.flush_limits(&mut limits);
        self.files.lock().sync();
    }

    fn append_all(&self, records: Vec<Record>) {
        for r in &records {
            self.append(r);
        }
    }

    fn flush_limits(&self, limits: &mut RateLog) {
        for s in limits.flush(tokio::time::Instant::now()) {
            self.summary(&s);
        }
    }

    fn summary(&self, s: &Summary) {
        self.append(&Record::new(
            "note",
            format!(
                "{} more {} records in the last minute were not logged (limit {PER_MINUTE} a minute)",
                s.count, s.source
            ),
        ));
    }

    fn record_of(
        &self,
        e: Event,
        presence: &mut HashMap<String, Presence>,
        last_broker: &mut Option<String>,
        was_connected: &mut bool,
    ) -> Option<(&'static str, Record)> {
        match e {
            Event::Scene(SceneEvent::Started { scene, origin }) => {
                let mut r =
                    Record::new("scene_start", format!("Scene {scene} started by {origin}"));
                r.scene = Some(scene);
                r.who = origin.who();
                r.origin = Some(origin.to_string());
                Some(("scene", r))
            }
            Event::Scene(SceneEvent::Ended {
                scene,
                reason,
                elapsed,
            }) => {
                let mut r = Record::new(
                    "scene_end",
                    format!("Scene {scene} ended after {elapsed:.1} s: {reason}"),
                );
                r.scene = Some(scene);
                Some(("scene", r))
            }
            Event::Feedback(f) if f.result != Outcome::Ok => {
                let (kind, text) = match f.result {
                    Outcome::Timeout => ("timeout", f.log_line()),
                    _ => ("error", f.log_line()),
                };
                let mut r = Record::new(kind, text);
                r.scene = f.scene.clone();
                r.device = Some(f.device.clone().unwrap_or_else(|| f.command_topic.clone()));
                Some(("feedback", r))
            }
            Event::Device(d) => {
                // Only changes between online and offline/stale.
                let online = d.presence == Presence::Online;
                let before = presence.get(&d.id).map(|p| *p == Presence::Online);
                // Bounded memory: past 4096 ids, only those already seen.
                if before == Some(online) || (before.is_none() && presence.len() >= 4096) {
                    return None;
                }
                presence.insert(d.id.clone(), d.presence);
                let mut r =
                    Record::new("device", format!("Device {} {}", d.id, d.presence.as_str()));
                r.device = Some(d.id);
                Some(("device", r))
            }
            Event::Connection(c) => {
                let connected = c.state == ConnectionState::Connected;
                let rec = if connected {
                    let broker = c.broker.clone().unwrap_or_default();
                    let changed = last_broker.as_ref().is_some_and(|b| *b != broker);
                    *last_broker = Some(broker.clone());
                    let index = c
                        .broker_priority_index
                        .map(|i| format!(" ({i}/{})", c.broker_count))
                        .unwrap_or_default();
                    changed.then(|| {
                        Record::new("connection", format!("Failover to broker {broker}{index}"))
                    })
                } else if *was_connected {
                    Some(Record::new(
                        "connection",
                        format!(
                            "MQTT connection lost ({}){}",
                            c.state.as_str(),
                            c.last_error.map(|e| format!(": {e}")).unwrap_or_default()
                        ),
                    ))
                } else {
                    None
                };
                *was_connected = connected;
                rec.map(|r| ("connection", r))
            }
            Event::Action(a) => {
                let text = match &a.refused {
                    None => format!("{}: {}", a.origin, a.what),
                    Some(why) => format!("{}: {} (refused: {why})", a.origin, a.what),
                };
                let mut r = Record::new("action", text);
                r.t = a.t;
                r.origin = Some(a.origin);
                r.who = a.who;
                Some(("action", r))
            }
            _ => None,
        }
    }
}

/// The records as CSV
/// (`time_local,time_utc,unix,kind,scene,device,origin,who,text`), the
/// local time in `tz` (the museum's) with its offset.
pub fn to_csv(records: &[Record], tz: &jiff::tz::TimeZone) -> String {
    let mut w = csv_writer();
    let header = [
        "time_local",
        "time_utc",
        "unix",
        "kind",
        "scene",
        "device",
        "origin",
        "who",
        "text",
    ];
    // Writing into a Vec cannot fail.
    let _ = w.write_record(header);
    for r in records {
        let when = crate::clock::local(r.t, &jiff::tz::TimeZone::UTC, "%Y-%m-%d %H:%M:%S");
        let local = crate::clock::local(r.t, tz, "%Y-%m-%d %H:%M:%S%:z");
        let _ = w.write_record([
            local.as_str(),
            when.as_str(),
            &format!("{:.3}", r.t),
            &r.kind,
            r.scene.as_deref().unwrap_or(""),
            r.device.as_deref().unwrap_or(""),
            r.origin.as_deref().unwrap_or(""),
            r.who.as_deref().unwrap_or(""),
            &r.text,
        ]);
    }
    csv_text(w)
}

/// A CSV writer into memory, one `\n` a row.
fn csv_writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new())
}

/// What `w` wrote (writing into a Vec cannot fail).
fn csv_text(w: csv::Writer<Vec<u8>>) -> String {
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests;
