//! What the room says about itself: the retained `roomctl/ROOM/state`
//! document (also what `roomctl site` reads back), kept current by one
//! task, and the feedback doctor that explains a scene whose every command
//! timed out.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::warn;

use super::{HealthStatus, Room, STATE_REFRESH};
use crate::events::Event;
use crate::mqtt::{PublishOptions, unix_now};
use crate::registry::DeviceCounts;
use crate::scene::SceneStatus;

/// The retained `roomctl/ROOM/state` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomState {
    /// Room id.
    pub room: String,
    /// Connection state (seed 002 name).
    pub connection: String,
    /// `host:port` of the broker in use.
    pub broker: Option<String>,
    /// The running scene.
    pub scene: Option<SceneStatus>,
    /// Device counts.
    pub devices: DeviceCounts,
    /// `healthy`, `degraded` or `unhealthy`, as `/healthz` says.
    pub health: HealthStatus,
    /// Why, worst first (at most five).
    #[serde(default)]
    pub issues: Vec<String>,
    /// The scenes it can start (for the site overview's Start buttons).
    #[serde(default)]
    pub scenes: Vec<String>,
    /// The next scheduled start, when there is a schedule.
    pub next_show: Option<crate::schedule::Planned>,
    /// The schedule is paused (none: no schedule).
    pub schedule_paused: Option<bool>,
    /// What its outputs are believed to be doing (at most
    /// [`MAX_STATE_OUTPUTS`]).
    #[serde(default)]
    pub outputs: Vec<OutputBrief>,
    /// The E-stop latch, while latched: nothing starts.
    #[serde(default)]
    pub estop: Option<crate::estop::Latched>,
    /// The room in one sentence, for the front desk and the site page.
    #[serde(default)]
    pub verdict: Option<super::Verdict>,
    /// Unix time of this snapshot.
    pub updated: f64,
}

/// Outputs carried in the retained state at most.
pub const MAX_STATE_OUTPUTS: usize = 64;

/// One output as the retained state carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputBrief {
    /// The channel (`room1/light`).
    pub channel: String,
    /// `confirmed`, `pending`, `failed`, `unknown` or `stopped`.
    pub state: String,
    /// Its last command.
    pub message: Option<String>,
}

impl Room {
    /// A snapshot for the state topic and the dashboard.
    pub fn state(&self) -> RoomState {
        let st = self.mqtt.status();
        let h = self.health();
        RoomState {
            room: self.config.room.clone(),
            connection: st.state.as_str().to_string(),
            broker: st.broker,
            scene: self.scenes.status(),
            devices: self.registry.counts(),
            health: h.status,
            issues: h.issues.into_iter().take(5).collect(),
            scenes: self.scenes.scenes().names().map(String::from).collect(),
            next_show: self.schedule.as_ref().and_then(|s| s.upcoming(1).pop()),
            schedule_paused: self.schedule.as_ref().map(|s| s.paused()),
            outputs: self
                .outputs
                .all()
                .into_iter()
                .take(MAX_STATE_OUTPUTS)
                .map(|o| OutputBrief {
                    channel: o.channel,
                    state: serde_json::to_value(o.state)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default(),
                    message: o.message,
                })
                .collect(),
            estop: self.estop.get(),
            verdict: Some(self.verdict()),
            updated: unix_now(),
        }
    }

    /// Keeps `roomctl/ROOM/state` current: at start, at once on every
    /// connection, scene or device change (then at most every 250 ms, so a
    /// burst becomes one update), and every 30 s.
    pub(super) async fn publish_state_loop(self, mut rx: tokio::sync::broadcast::Receiver<Event>) {
        const MIN_INTERVAL: Duration = Duration::from_millis(250);
        let mut refresh = tokio::time::interval(STATE_REFRESH);
        let mut last: Option<tokio::time::Instant> = None;
        let mut dirty = true;
        loop {
            let due =
                dirty.then(|| last.map_or_else(tokio::time::Instant::now, |l| l + MIN_INTERVAL));
            tokio::select! {
                _ = self.state_stop.cancelled() => return,
                _ = refresh.tick() => dirty = true,
                e = rx.recv() => match e {
                    Ok(Event::Feedback(_) | Event::Media(_)) => {}
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => dirty = true,
                    Err(_) => return,
                },
                _ = tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)), if due.is_some() => {
                    self.publish_state(&self.state());
                    last = Some(tokio::time::Instant::now());
                    dirty = false;
                }
            }
        }
    }

    /// After each scene (once its last commands had time to be answered):
    /// when every command timed out while replies arrived on the other
    /// feedback topic form, says which `feedback.topic` to use (log,
    /// healthz, dashboard); a scene with a confirmed command clears it.
    pub(super) async fn feedback_doctor(self, mut rx: tokio::sync::broadcast::Receiver<Event>) {
        use crate::scene::SceneEvent;
        let mut started: std::collections::HashMap<String, f64> = Default::default();
        let mut due: Option<(tokio::time::Instant, String, f64)> = None;
        loop {
            let at = due.as_ref().map(|d| d.0);
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                e = rx.recv() => match e {
                    Ok(Event::Scene(SceneEvent::Started { scene, .. })) => {
                        started.insert(scene, unix_now());
                    }
                    Ok(Event::Scene(SceneEvent::Ended { scene, .. })) => {
                        let since = started.remove(&scene).unwrap_or(self.started);
                        let wait = self
                            .scenes
                            .scenes()
                            .get(&scene)
                            .into_iter()
                            .flat_map(|s| s.all_actions().filter_map(|a| a.timeout).collect::<Vec<_>>())
                            .chain([self.live.borrow().cue_timeout])
                            .max()
                            .unwrap_or_default();
                        let when = crate::clock::after(tokio::time::Instant::now(), wait + Duration::from_millis(250));
                        due = Some((when, scene, since));
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return,
                },
                _ = tokio::time::sleep_until(at.unwrap_or_else(tokio::time::Instant::now)), if at.is_some() => {
                    let Some((_, scene, since)) = due.take() else { continue };
                    let hint = self.feedback.diagnose(&scene, since);
                    if let Some(h) = &hint {
                        warn!(target: "mqtt_feedback", "{h}");
                    }
                    let confirmed = self
                        .feedback
                        .history(self.config.feedback.history)
                        .iter()
                        .any(|r| r.scene.as_deref() == Some(scene.as_str()) && r.at >= since && r.result != crate::events::Outcome::Timeout);
                    let mut cur = self.feedback_hint.write();
                    if hint.is_some() || confirmed {
                        *cur = hint;
                    }
                }
            }
        }
    }

    /// A likely feedback misconfiguration seen in the last scene (for
    /// healthz and `play`).
    pub fn feedback_hint(&self) -> Option<String> {
        self.feedback_hint.read().clone()
    }

    /// Publishes the retained state. It expires (MQTT 5) three refresh
    /// periods after it was sent: if the room dies without a word, the
    /// broker drops the stale snapshot instead of showing it forever.
    pub(super) fn publish_state(&self, state: &RoomState) {
        let topic = self.config.topics().daemon_state();
        match serde_json::to_string(state) {
            Ok(json) => {
                let opts = PublishOptions {
                    expiry: Some(STATE_REFRESH * 3),
                    ..PublishOptions::retained_state()
                };
                // One copy per broker: a site watching either one reads it.
                let _ = self.mqtt.publish_everywhere(topic, json, opts);
            }
            Err(e) => warn!(target: "mqtt", "Cannot encode room state: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `roomctl site` reads back exactly what a room publishes, and a room
    /// of an older version (fewer fields) still reads.
    #[test]
    fn the_state_document_reads_back_as_it_was_written() {
        let schedule: crate::schedule::plan::Schedule = crate::config::Config::parse(
            "room: r\nmqtt: {brokers: [{broker: h}]}\nschedule:\n  timezone: Europe/Bratislava\n  hours: {mon: '10:00-18:00'}\n  shows: [{scene: tour, at: '11:00'}]\n",
            std::path::Path::new("c.yaml"),
            &|_| None,
        )
        .unwrap()
        .schedule
        .unwrap();
        let next = schedule
            .upcoming("2026-11-30T09:00:00+01:00".parse().unwrap(), 1)
            .pop();
        assert!(next.is_some());
        let state = RoomState {
            room: "r".into(),
            connection: "CONNECTED".into(),
            broker: Some("127.0.0.1:1883".into()),
            scene: None,
            devices: DeviceCounts {
                total: 3,
                online: 2,
                offline: 1,
                stale: 0,
                unknown_ignored: 0,
            },
            health: HealthStatus::Degraded,
            issues: vec!["1 device(s) offline".into()],
            scenes: vec!["tour".into()],
            next_show: next,
            schedule_paused: Some(false),
            outputs: vec![OutputBrief {
                channel: "r/light".into(),
                state: "confirmed".into(),
                message: Some("ON".into()),
            }],
            estop: Some(crate::estop::Latched {
                since: 1_796_000_000.0,
                by: "MQTT room1/estop".into(),
            }),
            verdict: None,
            updated: 1_796_000_000.5,
        };
        let text = serde_json::to_string(&state).unwrap();
        let back: RoomState = serde_json::from_str(&text).unwrap();
        assert_eq!(back, state);
        assert_eq!(
            back.next_show.unwrap().instant(),
            state.next_show.unwrap().instant()
        );
        let old: RoomState = serde_json::from_str(
            r#"{"room":"r","connection":"CONNECTED","scene":null,"devices":{"total":1},"health":"healthy","updated":1.0}"#,
        )
        .unwrap();
        assert!(old.scenes.is_empty() && old.next_show.is_none());
    }
}
