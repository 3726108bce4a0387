//! The room in one sentence for the front desk: "Ready", "Show running:
//! intro, 1:20 left", "Needs attention: esp32_08 (room1/light) offline",
//! "E-stop latched", with the reasons naming the board and its channels,
//! and the next show to start. Served in `/api/status` and carried in the
//! retained state, for the dashboard and the site page.

use serde::{Deserialize, Serialize};

use super::Room;
use crate::events::Presence;
use crate::mqtt::ConnectionState;

/// Reasons carried at most.
const MAX_REASONS: usize = 8;

/// How the room is, for a person who is not an engineer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Nothing running, nothing wrong: a show can start.
    Ready,
    /// A show is running, nothing wrong.
    Running,
    /// Something needs a person (a board offline, no broker).
    Attention,
    /// The E-stop is latched: nothing starts until it is reset.
    Latched,
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Which of the four.
    pub level: Level,
    /// The sentence.
    pub text: String,
    /// What needs attention, each naming its board or file.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// Worth knowing, not wrong (`Schedule paused`).
    #[serde(default)]
    pub notes: Vec<String>,
    /// The show "Start next show" starts.
    pub next: Option<NextShow>,
}

/// The next show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NextShow {
    /// The scene.
    pub scene: String,
    /// When the schedule plans it, in the museum's zone (`13:30`).
    pub at: Option<String>,
    /// Unix time of that.
    pub unix: Option<f64>,
}

impl Room {
    /// The room in one sentence, now.
    pub fn verdict(&self) -> Verdict {
        let mut reasons = Vec::new();
        let tz = self.zone();
        let hm = |unix: f64| crate::clock::local(unix, &tz, "%H:%M");
        let latched = self.estop.get();
        if let Some(l) = &latched {
            reasons.push(format!(
                "E-stop latched at {} by {}: a technician resets it",
                hm(l.since),
                l.by
            ));
        }
        let conn = self.mqtt.status();
        if conn.state != ConnectionState::Connected {
            reasons.push("No connection to the broker: cues cannot reach the boards".into());
        }
        let room_channels = self.channels();
        for d in self.registry.all() {
            if d.presence == Presence::Online {
                continue;
            }
            // What it answers: its own announcement, the room's channels
            // it was seen to answer, or what devices.known says.
            let mut channels = d.channels.clone();
            if channels.is_empty() {
                channels = room_channels
                    .iter()
                    .filter(|c| c.device.as_deref() == Some(d.id.as_str()))
                    .map(|c| c.topic.clone())
                    .collect();
            }
            if channels.is_empty() {
                channels = self
                    .config
                    .devices
                    .known
                    .get(&d.id)
                    .cloned()
                    .unwrap_or_default();
            }
            let what = match channels.len() {
                0 => String::new(),
                1..=3 => format!(" ({})", channels.join(", ")),
                n => format!(" ({}, … {n} channels)", channels[..2].join(", ")),
            };
            let how = if d.presence == Presence::Stale {
                "not heard from"
            } else {
                "offline"
            };
            reasons.push(format!("{}{what} {how}", d.id));
        }
        let problems = self.problems();
        if !problems.is_empty() {
            reasons.push(format!(
                "{} scene file(s) do not load: ask a technician",
                problems.len()
            ));
        }
        reasons.truncate(MAX_REASONS);
        let mut notes = Vec::new();
        if self.schedule.as_ref().is_some_and(|s| s.paused()) {
            notes.push("Schedule paused: planned shows do not start".into());
        }
        let next = match self.schedule.as_ref().and_then(|s| s.upcoming(1).pop()) {
            Some(p) => Some(NextShow {
                at: Some(hm(p.unix)),
                unix: Some(p.unix),
                scene: p.scene,
            }),
            None => self.default_scene().map(|scene| NextShow {
                scene,
                at: None,
                unix: None,
            }),
        };
        let running = self.scenes.status();
        let (level, text) = if latched.is_some() {
            (Level::Latched, "E-stop latched".to_string())
        } else if !reasons.is_empty() {
            let more = match reasons.len() {
                1 => String::new(),
                n => format!(" and {} more", n - 1),
            };
            (
                Level::Attention,
                format!("Needs attention: {}{more}", reasons[0]),
            )
        } else if let Some(s) = &running {
            let left = s
                .duration
                .map(|d| format!(", {} left", clock_text((d - s.elapsed).max(0.0))))
                .unwrap_or_default();
            (Level::Running, format!("Show running: {}{left}", s.name))
        } else {
            (Level::Ready, "Ready".to_string())
        };
        Verdict {
            level,
            text,
            reasons,
            notes,
            next,
        }
    }
}

/// `1:20`, `1:02:03`.
fn clock_text(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..3600 => format!("{}:{:02}", s / 60, s % 60),
        _ => format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn time_left_reads_like_a_clock() {
        assert_eq!(super::clock_text(80.4), "1:20");
        assert_eq!(super::clock_text(5.0), "0:05");
        assert_eq!(super::clock_text(3723.0), "1:02:03");
    }
}
