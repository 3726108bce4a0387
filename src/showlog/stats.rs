//! Statistics over a range of days, from the show log's records: shows
//! per scene, each device's commands and confirmation latency, timeouts
//! and errors, time offline, failovers and connection losses. Days are
//! the museum's (the schedule's zone), so a day's numbers match what the
//! staff call that day.

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Serialize;

use super::{Commands, Record};

/// The longest range asked for at once.
pub const MAX_DAYS: i64 = 366;

/// Why statistics cannot be made for a range.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StatsError {
    /// From is after to.
    #[error("the range starts ({from}) after it ends ({to})")]
    Backwards {
        /// First day.
        from: Date,
        /// Last day.
        to: Date,
    },
    /// Too long a range.
    #[error("the range is {days} days; at most {MAX_DAYS} at once")]
    TooLong {
        /// Its length.
        days: i64,
    },
    /// A day that has no start in the zone.
    #[error("the day {0} cannot be placed in the time zone")]
    Zone(Date),
}

/// The statistics of a range of days.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// The zone the days are in (`Europe/Berlin`).
    pub zone: String,
    /// The days, first to last (`2026-12-01`); every `days` below has one
    /// entry per day, in this order.
    pub days: Vec<String>,
    /// Per scene, by name.
    pub scenes: Vec<SceneStats>,
    /// Per device (or command topic, when no device answers it), by name.
    pub devices: Vec<DeviceStats>,
    /// The broker connection, per day.
    pub connection: Vec<ConnectionDay>,
}

/// One scene's shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SceneStats {
    /// The scene.
    pub scene: String,
    /// Per day.
    pub days: Vec<SceneDay>,
    /// The whole range.
    pub total: SceneDay,
}

/// Shows of one scene on one day.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SceneDay {
    /// Started.
    pub started: u64,
    /// Ran to their end.
    pub completed: u64,
    /// Stopped by a person, a control message or an E-stop.
    pub stopped: u64,
    /// Ended by an error or by the daemon shutting down.
    pub failed: u64,
}

/// One device's commands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceStats {
    /// The device's id, or the command topic.
    pub device: String,
    /// Per day.
    pub days: Vec<DeviceDay>,
    /// The whole range.
    pub total: DeviceDay,
}

/// One device on one day.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeviceDay {
    /// Commands sent to it.
    pub commands: u64,
    /// Confirmed in time.
    pub confirmed: u64,
    /// Not confirmed in time.
    pub timeouts: u64,
    /// Answered `ERROR`.
    pub errors: u64,
    /// Median confirmation latency, in milliseconds.
    pub median_ms: Option<f64>,
    /// 95th percentile of the confirmation latency, in milliseconds.
    pub p95_ms: Option<f64>,
    /// Seconds offline (or stale: not heard from), of this day.
    pub offline_s: f64,
}

/// The connection on one day.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ConnectionDay {
    /// Switches to another broker.
    pub failovers: u64,
    /// Connections lost.
    pub losses: u64,
}

/// What is summed per device and day before the figures are made.
#[derive(Default)]
struct DeviceAcc {
    commands: Commands,
    /// Whether any `commands` record counted this day; if not, the
    /// day's `timeout` and `error` records are counted (logs written
    /// before there were `commands` records).
    counted: bool,
    timeout_records: u64,
    error_records: u64,
    offline_s: f64,
}

/// The statistics of the days `from..=to` in `tz` from `records` (oldest
/// first), with `now` (unix time) ending what is still going on.
pub fn compute(
    records: &[Record],
    tz: &TimeZone,
    from: Date,
    to: Date,
    now: f64,
) -> Result<Stats, StatsError> {
    if from > to {
        return Err(StatsError::Backwards { from, to });
    }
    let span = (to - from).get_days() as i64 + 1;
    if span > MAX_DAYS {
        return Err(StatsError::TooLong { days: span });
    }
    // Day i is [starts[i], starts[i + 1]).
    let mut starts = Vec::with_capacity(span as usize + 1);
    let mut names = Vec::with_capacity(span as usize);
    let mut day = from;
    for _ in 0..=span {
        let start = day
            .to_zoned(tz.clone())
            .and_then(|z| z.start_of_day())
            .map_err(|_| StatsError::Zone(day))?;
        starts.push(start.timestamp().as_millisecond() as f64 / 1000.0);
        if names.len() < span as usize {
            names.push(day.to_string());
        }
        day = day.tomorrow().map_err(|_| StatsError::Zone(day))?;
    }
    let n = names.len();
    let day_of = |t: f64| -> Option<usize> {
        if t < starts[0] || t >= starts[n] {
            return None;
        }
        Some(starts.partition_point(|s| *s <= t) - 1)
    };

    let mut scenes: BTreeMap<String, Vec<SceneDay>> = BTreeMap::new();
    let mut devices: BTreeMap<String, Vec<DeviceAcc>> = BTreeMap::new();
    let mut connection = vec![ConnectionDay::default(); n];
    let mut offline_since: BTreeMap<String, f64> = BTreeMap::new();
    let new_days = |n: usize| (0..n).map(|_| DeviceAcc::default()).collect::<Vec<_>>();

    for r in records {
        if r.kind == "device" {
            if let Some(id) = &r.device {
                let online = r.text.ends_with(" online");
                match (online, offline_since.get(id).copied()) {
                    (true, Some(since)) => {
                        offline_since.remove(id);
                        let acc = devices.entry(id.clone()).or_insert_with(|| new_days(n));
                        add_offline(acc, &starts, since, r.t);
                    }
                    (false, None) => {
                        offline_since.insert(id.clone(), r.t);
                    }
                    _ => {}
                }
            }
            continue;
        }
        let Some(d) = day_of(r.t) else { continue };
        match r.kind.as_str() {
            "scene_start" | "scene_end" => {
                let Some(scene) = &r.scene else { continue };
                let days = scenes
                    .entry(scene.clone())
                    .or_insert_with(|| vec![SceneDay::default(); n]);
                let day = &mut days[d];
                if r.kind == "scene_start" {
                    day.started += 1;
                } else {
                    match end_reason(&r.text) {
                        "completed" => day.completed += 1,
                        "stopped" | "e-stop" => day.stopped += 1,
                        _ => day.failed += 1,
                    }
                }
            }
            "commands" | "timeout" | "error" => {
                let Some(device) = &r.device else { continue };
                let acc = devices.entry(device.clone()).or_insert_with(|| new_days(n));
                let acc = &mut acc[d];
                match (r.kind.as_str(), &r.commands) {
                    ("commands", Some(c)) => {
                        acc.commands.merge(c);
                        acc.counted = true;
                    }
                    ("timeout", _) => acc.timeout_records += 1,
                    ("error", _) => acc.error_records += 1,
                    _ => {}
                }
            }
            "connection" if r.text.starts_with("Failover") => connection[d].failovers += 1,
            "connection" if r.text.starts_with("MQTT connection lost") => connection[d].losses += 1,
            _ => {}
        }
    }
    // Still offline: until now.
    for (id, since) in offline_since {
        let acc = devices.entry(id).or_insert_with(|| new_days(n));
        add_offline(acc, &starts, since, now);
    }

    Ok(Stats {
        zone: tz.iana_name().unwrap_or("local").to_string(),
        days: names,
        scenes: scenes
            .into_iter()
            .map(|(scene, days)| {
                let mut total = SceneDay::default();
                for d in &days {
                    total.started += d.started;
                    total.completed += d.completed;
                    total.stopped += d.stopped;
                    total.failed += d.failed;
                }
                SceneStats { scene, days, total }
            })
            .collect(),
        devices: devices
            .into_iter()
            .map(|(device, accs)| device_stats(device, accs))
            .collect(),
        connection,
    })
}

/// `Scene intro ended after 12.0 s: completed` → `completed`.
fn end_reason(text: &str) -> &str {
    let reason = text.split_once(" s: ").map_or("", |(_, r)| r);
    reason.split(':').next().unwrap_or("")
}

/// Adds the seconds of `[from, to)` to the days they fall on.
fn add_offline(days: &mut [DeviceAcc], starts: &[f64], from: f64, to: f64) {
    for (i, acc) in days.iter_mut().enumerate() {
        let (lo, hi) = (from.max(starts[i]), to.min(starts[i + 1]));
        if hi > lo {
            acc.offline_s += hi - lo;
        }
    }
}

fn device_stats(device: String, accs: Vec<DeviceAcc>) -> DeviceStats {
    // The range's total: every day's `commands` counts, plus the
    // `timeout`/`error` records of the days that had none (so `counted`
    // stays false for it).
    let mut all = DeviceAcc::default();
    let days = accs
        .into_iter()
        .map(|a| {
            all.commands.merge(&a.commands);
            if !a.counted {
                all.timeout_records += a.timeout_records;
                all.error_records += a.error_records;
            }
            all.offline_s += a.offline_s;
            figures(&a)
        })
        .collect();
    DeviceStats {
        device,
        days,
        total: figures(&all),
    }
}

fn figures(a: &DeviceAcc) -> DeviceDay {
    let (timeouts, errors) = if a.counted {
        (a.commands.timeouts, a.commands.errors)
    } else {
        (
            a.commands.timeouts + a.timeout_records,
            a.commands.errors + a.error_records,
        )
    };
    DeviceDay {
        commands: a.commands.ok.n + timeouts + errors,
        confirmed: a.commands.ok.n,
        timeouts,
        errors,
        median_ms: a.commands.ok.quantile(0.5),
        p95_ms: a.commands.ok.quantile(0.95),
        offline_s: (a.offline_s * 10.0).round() / 10.0,
    }
}

/// The statistics as CSV, one figure a row:
/// `day,subject,name,measure,value` (`2026-12-01,device,esp32_01,p95_ms,31.5`).
pub fn to_csv(s: &Stats) -> String {
    let mut w = super::csv_writer();
    let _ = w.write_record(["day", "subject", "name", "measure", "value"]);
    let mut row = |day: &str, subject: &str, name: &str, measure: &str, value: String| {
        let _ = w.write_record([day, subject, name, measure, value.as_str()]);
    };
    for (i, day) in s.days.iter().enumerate() {
        for sc in &s.scenes {
            let d = &sc.days[i];
            for (m, v) in [
                ("started", d.started),
                ("completed", d.completed),
                ("stopped", d.stopped),
                ("failed", d.failed),
            ] {
                row(day, "scene", &sc.scene, m, v.to_string());
            }
        }
        for dev in &s.devices {
            let d = &dev.days[i];
            for (m, v) in [
                ("commands", d.commands),
                ("confirmed", d.confirmed),
                ("timeouts", d.timeouts),
                ("errors", d.errors),
            ] {
                row(day, "device", &dev.device, m, v.to_string());
            }
            for (m, v) in [("median_ms", d.median_ms), ("p95_ms", d.p95_ms)] {
                row(
                    day,
                    "device",
                    &dev.device,
                    m,
                    v.map(|v| v.to_string()).unwrap_or_default(),
                );
            }
            row(
                day,
                "device",
                &dev.device,
                "offline_s",
                d.offline_s.to_string(),
            );
        }
        let c = &s.connection[i];
        row(day, "connection", "", "failovers", c.failovers.to_string());
        row(day, "connection", "", "losses", c.losses.to_string());
    }
    super::csv_text(w)
}

#[cfg(test)]
mod tests;
