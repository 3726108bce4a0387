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
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
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
        let t = jiff::Timestamp::from_millisecond((r.t * 1000.0) as i64).ok();
        let when = t
            .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        let local = t
            .map(|t| {
                t.to_zoned(tz.clone())
                    .strftime("%Y-%m-%d %H:%M:%S%:z")
                    .to_string()
            })
            .unwrap_or_default();
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
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;
    use std::io::Write;
    use std::path::Path;

    fn rec(i: usize) -> Record {
        let mut r = Record::new("note", format!("record {i}, with \"quotes\""));
        r.t = 1000.0 + i as f64;
        r
    }

    #[test]
    fn records_survive_a_restart_and_a_torn_last_record_is_skipped() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("show.log");
        let log = ShowLog::new(path.clone(), DEFAULT_MAX_BYTES);
        for i in 0..3 {
            log.append(&rec(i));
        }
        // Power loss mid-write: half a record, then zeros.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"1234abcd {\"t\":1003.0,\"kind\":\"no")
            .unwrap();
        f.write_all(&[0u8; 64]).unwrap();
        drop(f);
        // A record whose checksum does not match is skipped too.
        let again = ShowLog::new(path.clone(), DEFAULT_MAX_BYTES);
        assert_eq!(again.read_all(), (0..3).map(rec).collect::<Vec<_>>());
        // Appending after the torn part still works and is read back.
        again.append(&rec(4));
        let all = again.read_all();
        assert_eq!(all.len(), 4);
        assert_eq!(all[3], rec(4));
        assert_eq!(again.query(1001.0, 10).len(), 2);
        assert_eq!(again.query(0.0, 2), vec![rec(2), rec(4)]);
    }

    #[test]
    fn the_log_stays_under_its_cap_and_keeps_the_newest() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("show.log");
        let log = ShowLog::new(path.clone(), 8192);
        for i in 0..2000 {
            log.append(&rec(i));
        }
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let total = size(&path) + size(&d.path().join("show.log.1"));
        assert!(total <= 8192, "{total} bytes");
        let all = log.read_all();
        assert_eq!(all.last().unwrap(), &rec(1999));
        assert!(all.windows(2).all(|w| w[0].t < w[1].t), "in order");
        assert!(all.len() > 40);
    }

    #[test]
    fn a_junk_log_over_the_cap_is_cut_to_its_newest_part_at_rotation() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("show.log");
        // 64 KiB of junk lines ending in valid records, under a 16 KiB cap.
        let mut junk = "x".repeat(99).repeat(640);
        junk = junk
            .as_bytes()
            .chunks(99)
            .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
            .collect();
        std::fs::write(&path, junk).unwrap();
        let log = ShowLog::new(path.clone(), 16 * 1024);
        log.append(&rec(1));
        let old = d.path().join("show.log.1");
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        assert!(size(&old) <= 8 * 1024, "rotated {} bytes", size(&old));
        assert!(size(&old) + size(&path) <= 16 * 1024);
        assert_eq!(log.read_all(), vec![rec(1)]);
        assert!(log.failing().is_none());
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let tz = jiff::tz::TimeZone::get("Europe/Vienna").unwrap();
        let csv = to_csv(&[rec(1)], &tz);
        assert_eq!(
            csv,
            "time_local,time_utc,unix,kind,scene,device,origin,who,text\n1970-01-01 01:16:41+01:00,1970-01-01 00:16:41,1001.000,note,,,,,\"record 1, with \"\"quotes\"\"\"\n"
        );
    }

    #[tokio::test]
    async fn events_become_records_rate_limited_per_kind() {
        use crate::events::{DeviceView, EventBus};
        let d = tempfile::tempdir().unwrap();
        let log = ShowLog::new(d.path().join("show.log"), DEFAULT_MAX_BYTES);
        let bus = EventBus::new(4096);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(log.clone().run(bus.subscribe(), cancel.clone()));
        bus.publish(Event::Scene(SceneEvent::Started {
            scene: "intro".into(),
            origin: crate::origin::Origin::Schedule { what: "show" },
        }));
        // A flood of device changes: at most PER_MINUTE are written.
        for i in 0..500 {
            bus.publish(Event::Device(DeviceView {
                id: format!("x{i}"),
                presence: Presence::Online,
                status: "online".into(),
                last_seen: 0.0,
                seconds_since_seen: 0.0,
                messages: 1,
                known: false,
                channels: vec![],
            }));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        cancel.cancel();
        task.await.unwrap();
        let all = log.read_all();
        assert_eq!(all[0].kind, "scene_start");
        assert_eq!(all[0].origin.as_deref(), Some("schedule (show)"));
        assert_eq!(all[0].text, "Scene intro started by schedule (show)");
        let devices = all.iter().filter(|r| r.kind == "device").count();
        assert_eq!(devices, PER_MINUTE as usize);
    }

    #[tokio::test]
    async fn a_scenes_commands_are_counted_before_its_end() {
        use crate::events::{EndReason, EventBus, FeedbackRecord};
        let d = tempfile::tempdir().unwrap();
        let log = ShowLog::new(d.path().join("show.log"), DEFAULT_MAX_BYTES);
        let bus = EventBus::new(4096);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(log.clone().run(bus.subscribe(), cancel.clone()));
        let fb = |result, device: &str| {
            Event::Feedback(FeedbackRecord {
                id: 1,
                command_topic: "room1/light".into(),
                message: "ON".into(),
                feedback_topic: "room1/status".into(),
                result,
                latency: (result == Outcome::Ok).then_some(0.012),
                timeout: 1.0,
                reply: None,
                scene: Some("intro".into()),
                device: Some(device.into()),
                at: 0.0,
            })
        };
        for _ in 0..3 {
            bus.publish(fb(Outcome::Ok, "esp32_01"));
        }
        bus.publish(fb(Outcome::Timeout, "esp32_01"));
        bus.publish(Event::Scene(SceneEvent::Ended {
            scene: "intro".into(),
            reason: EndReason::Completed,
            elapsed: 3.0,
        }));
        // After the scene: counted at shutdown.
        bus.publish(fb(Outcome::Error, "esp32_02"));
        tokio::time::sleep(Duration::from_millis(200)).await;
        cancel.cancel();
        task.await.unwrap();
        let kinds: Vec<_> = log
            .read_all()
            .into_iter()
            .map(|r| (r.kind, r.device))
            .collect();
        let dev = |s: &str| Some(s.to_string());
        assert_eq!(
            kinds,
            [
                ("timeout".into(), dev("esp32_01")),
                ("commands".into(), dev("esp32_01")),
                ("scene_end".into(), None),
                ("error".into(), dev("esp32_02")),
                ("commands".into(), dev("esp32_02")),
            ]
        );
        let c = log.read_all()[1].commands.clone().unwrap();
        assert_eq!((c.ok.n, c.timeouts, c.errors), (3, 1, 0));
        assert_eq!(c.ok.max_ms, 12.0);
    }
}
