//! Every command's result, counted per device and scene between two
//! `commands` records of the show log: the confirmations as a latency
//! histogram, the timeouts and errors as counts. The show log writes one
//! record per device at the end of each scene and every few minutes, so
//! the statistics see every command without a line per command.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::Record;
use super::latency::Latency;
use crate::events::{FeedbackRecord, Outcome};

/// Devices (or command topics) counted apart; past this many, the rest
/// share one count, so a flood of topics cannot grow memory or the log.
const MAX_KEYS: usize = 256;
/// The name the rest share.
pub const OTHERS: &str = "(other devices)";

/// What one device's commands did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Commands {
    /// The confirmed ones, by latency.
    pub ok: Latency,
    /// Those with no reply in time.
    #[serde(default)]
    pub timeouts: u64,
    /// Those the device answered `ERROR`.
    #[serde(default)]
    pub errors: u64,
}

impl Commands {
    /// Commands counted.
    pub fn total(&self) -> u64 {
        self.ok.n + self.timeouts + self.errors
    }

    /// Adds what `other` counted.
    pub fn merge(&mut self, other: &Commands) {
        self.ok.merge(&other.ok);
        self.timeouts = self.timeouts.saturating_add(other.timeouts);
        self.errors = self.errors.saturating_add(other.errors);
    }
}

/// The counts since the last flush, per (scene, device).
#[derive(Default)]
pub(super) struct Tally {
    counts: HashMap<(Option<String>, String), Commands>,
}

impl Tally {
    pub(super) fn add(&mut self, f: &FeedbackRecord) {
        let mut device = f.device.as_deref().unwrap_or(&f.command_topic);
        let key_known = self
            .counts
            .keys()
            .any(|(s, d)| d == device && *s == f.scene);
        if !key_known && self.counts.len() >= MAX_KEYS {
            device = OTHERS;
        }
        let c = self
            .counts
            .entry((f.scene.clone(), device.to_string()))
            .or_default();
        match f.result {
            Outcome::Ok => c.ok.add(f.latency.unwrap_or(0.0) * 1000.0),
            Outcome::Timeout => c.timeouts += 1,
            Outcome::Error => c.errors += 1,
        }
    }

    /// One `commands` record per device and scene counted, and a fresh
    /// start.
    pub(super) fn take(&mut self) -> Vec<Record> {
        let mut out: Vec<Record> = self
            .counts
            .drain()
            .map(|((scene, device), c)| {
                let mut r = Record::new("commands", describe(&device, &c));
                r.scene = scene;
                r.device = Some(device);
                r.commands = Some(c);
                r
            })
            .collect();
        out.sort_by(|a, b| (&a.scene, &a.device).cmp(&(&b.scene, &b.device)));
        out
    }
}

fn describe(device: &str, c: &Commands) -> String {
    let mut s = format!("{device}: {} command(s), {} confirmed", c.total(), c.ok.n);
    if let (Some(m), Some(p)) = (c.ok.quantile(0.5), c.ok.quantile(0.95)) {
        s.push_str(&format!(" (median {m} ms, p95 {p} ms)"));
    }
    if c.timeouts > 0 {
        s.push_str(&format!(", {} timeout(s)", c.timeouts));
    }
    if c.errors > 0 {
        s.push_str(&format!(", {} error(s)", c.errors));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fb(device: &str, result: Outcome, latency: f64) -> FeedbackRecord {
        FeedbackRecord {
            id: 0,
            command_topic: format!("{device}/cmd"),
            message: "ON".into(),
            feedback_topic: "room1/status".into(),
            result,
            latency: (result == Outcome::Ok).then_some(latency),
            timeout: 1.0,
            reply: None,
            scene: Some("intro".into()),
            device: Some(device.into()),
            at: 0.0,
        }
    }

    #[test]
    fn one_record_per_device_with_every_result_counted() {
        let mut t = Tally::default();
        for ms in [0.010, 0.020, 0.030] {
            t.add(&fb("esp32_01", Outcome::Ok, ms));
        }
        t.add(&fb("esp32_01", Outcome::Timeout, 0.0));
        t.add(&fb("esp32_02", Outcome::Error, 0.0));
        let recs = t.take();
        assert_eq!(recs.len(), 2);
        let one = recs[0].commands.as_ref().unwrap();
        assert_eq!((one.total(), one.ok.n, one.timeouts), (4, 3, 1));
        assert_eq!(recs[0].scene.as_deref(), Some("intro"));
        assert!(
            recs[0]
                .text
                .starts_with("esp32_01: 4 command(s), 3 confirmed (median "),
            "{}",
            recs[0].text
        );
        assert!(recs[0].text.ends_with(", 1 timeout(s)"), "{}", recs[0].text);
        assert_eq!(
            recs[1].text,
            "esp32_02: 1 command(s), 0 confirmed, 1 error(s)"
        );
        assert!(t.take().is_empty(), "taken once");
    }

    #[test]
    fn a_flood_of_topics_shares_one_count() {
        let mut t = Tally::default();
        for i in 0..10_000 {
            t.add(&fb(&format!("x{i}"), Outcome::Ok, 0.01));
        }
        let recs = t.take();
        assert_eq!(recs.len(), MAX_KEYS + 1);
        let others = recs
            .iter()
            .find(|r| r.device.as_deref() == Some(OTHERS))
            .unwrap();
        assert_eq!(
            others.commands.as_ref().unwrap().ok.n,
            10_000 - MAX_KEYS as u64
        );
    }
}
