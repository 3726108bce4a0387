//! `roomctl simulate`: a fleet of pretend ESP32 boards. Each has its own MQTT
//! connection (same failover as the daemon), announces `online` retained on
//! `devices/<id>/status` with `offline` as its last will, and answers each
//! command on its channels with `OK` on the feedback topic after a random
//! latency, dropping a fraction of them.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use anyhow::bail;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info};

use crate::config::{Config, Topics, parse_duration};
use crate::mqtt::{self, MqttHandle, MqttSettings, OwnMessage, PublishOptions};
use crate::scene::SceneSet;

#[derive(Debug, Clone)]
/// How the simulated fleet behaves.
pub struct SimOptions {
    /// How many boards.
    pub devices: usize,
    /// Reply latency, between these two.
    pub latency: (Duration, Duration),
    /// Fraction of commands left unanswered (0..1).
    pub drop: f64,
    /// How often each device repeats `online` (keeps it from going stale).
    pub heartbeat: Duration,
    /// Plain `OK` or the JSON form.
    pub reply: ReplyStyle,
}

/// How a simulated device confirms a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyStyle {
    /// `OK`, as firmware of this kind sends.
    Plain,
    /// `{"status":"OK","topic":"room1/light"}`: names the command it confirms.
    Json,
}

/// `--reply` was neither `plain` nor `json`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown reply style `{0}` (plain or json)")]
pub struct ReplyStyleError(String);

impl std::str::FromStr for ReplyStyle {
    type Err = ReplyStyleError;
    fn from_str(s: &str) -> Result<Self, ReplyStyleError> {
        match s {
            "plain" => Ok(ReplyStyle::Plain),
            "json" => Ok(ReplyStyle::Json),
            other => Err(ReplyStyleError(other.to_string())),
        }
    }
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            devices: 3,
            latency: (Duration::from_millis(50), Duration::from_millis(250)),
            drop: 0.0,
            heartbeat: Duration::from_secs(20),
            reply: ReplyStyle::Plain,
        }
    }
}

/// `50ms..250ms` or a single `100ms`.
pub fn parse_latency(s: &str) -> anyhow::Result<(Duration, Duration)> {
    let (a, b) = s.split_once("..").unwrap_or((s, s));
    let lo = parse_duration(a).map_err(anyhow::Error::msg)?;
    let hi = parse_duration(b).map_err(anyhow::Error::msg)?;
    if hi < lo {
        bail!("latency range {s}: the upper bound is below the lower");
    }
    Ok((lo, hi))
}

/// How many received commands a fleet remembers (for tests and `play`).
pub const KEPT_RECEIVED: usize = 10_000;

fn keep(log: &Mutex<VecDeque<Received>>, r: Received) {
    let mut log = log.lock();
    if log.len() >= KEPT_RECEIVED {
        log.pop_front();
    }
    log.push_back(r);
}

/// A command a simulated device received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Which device.
    pub device: String,
    /// On which topic.
    pub topic: String,
    /// What it said.
    pub payload: String,
    /// Whether it replied.
    pub answered: bool,
}

/// The running fleet.
pub struct Fleet {
    /// Each device and the command topics it answers.
    pub devices: Vec<(String, Vec<String>)>,
    handles: Vec<MqttHandle>,
    received: Arc<Mutex<VecDeque<Received>>>,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl Fleet {
    /// What was received, oldest first: the newest [`KEPT_RECEIVED`]
    /// (a simulator left running for days keeps constant memory).
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().iter().cloned().collect()
    }

    /// Stops without DISCONNECT (like pulling the plug): brokers publish each
    /// device's `offline` will.
    pub fn kill(&self) {
        self.cancel.cancel();
    }

    /// Pulls the plug (see [`Fleet::kill`]) and waits until every device's
    /// tasks have ended.
    pub async fn stopped(&self) {
        self.kill();
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Each device's MQTT client.
    pub fn handles(&self) -> &[MqttHandle] {
        &self.handles
    }
}

/// The command topics the fleet answers: every published, feedback-tracked
/// topic in the scenes.
pub fn command_topics(scenes: &SceneSet) -> Vec<String> {
    let set: BTreeSet<String> = scenes
        .every_action()
        .filter(|(_, a)| a.feedback)
        .map(|(_, a)| a.topic.clone())
        .collect();
    set.into_iter().collect()
}

/// Starts `opts.devices` devices sharing the scenes' command topics round-robin.
pub fn start(
    config: &Config,
    scenes: &SceneSet,
    opts: &SimOptions,
    cancel: CancellationToken,
) -> Fleet {
    let topics = command_topics(scenes);
    let n = opts.devices.max(1);
    let received = Arc::new(Mutex::new(VecDeque::new()));
    let tasks = TaskTracker::new();
    let mut devices = Vec::new();
    let mut handles = Vec::new();
    for i in 0..n {
        let id = format!("esp32_{:02}", i + 1);
        let mine: Vec<String> = topics
            .iter()
            .enumerate()
            .filter(|(j, _)| j % n == i)
            .map(|(_, t)| t.clone())
            .collect();
        let status_topic = format!("devices/{id}/status");
        let mut s = MqttSettings::from_config(&config.mqtt);
        s.client_id = format!("sim_{id}_{}", std::process::id());
        s.will = Some(OwnMessage::retained(status_topic.clone(), "offline"));
        s.birth = Some(OwnMessage::retained(status_topic.clone(), "online"));
        s.subscriptions = mine.clone();
        s.subscriptions.push(Topics::new(&config.room).all_stop());
        s.backoff.max = s.backoff.max.min(Duration::from_secs(5));
        s.quiet_publishes = true;
        let (h, mut rx) = mqtt::start(s, cancel.child_token(), &tasks);
        // What this board answers, for the daemon's TIMEOUT lines.
        let _ = h.publish(
            format!("devices/{id}/channels"),
            mine.join(","),
            PublishOptions::retained_state(),
        );
        info!(target: "simulate", "{id}: answers {}", if mine.is_empty() { "nothing (spare)".to_string() } else { mine.join(", ") });

        let (h2, c2, rec) = (h.clone(), cancel.clone(), received.clone());
        let feedback = config.feedback.topic.clone();
        let room = config.room.clone();
        let (latency, drop, heartbeat, style) =
            (opts.latency, opts.drop, opts.heartbeat, opts.reply);
        let dev = id.clone();
        let t2 = tasks.clone();
        tasks.spawn(async move {
            let mut beat = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
            loop {
                tokio::select! {
                    _ = c2.cancelled() => return,
                    _ = beat.tick() => {
                        let _ = h2.publish(status_topic.clone(), "online", PublishOptions::retained_state());
                    }
                    m = rx.recv() => {
                        let Some(m) = m else { return };
                        if m.retain {
                            continue;
                        }
                        let payload = String::from_utf8_lossy(&m.payload).into_owned();
                        if m.topic.ends_with("/STOP") {
                            info!(target: "simulate", "{dev}: {} = {payload}: everything off", m.topic);
                            keep(&rec, Received { device: dev.clone(), topic: m.topic, payload, answered: false });
                            continue;
                        }
                        let answered = rand::random::<f64>() >= drop;
                        keep(&rec, Received { device: dev.clone(), topic: m.topic.clone(), payload: payload.clone(), answered });
                        if !answered {
                            info!(target: "simulate", "{dev}: {} = {payload} (dropped, no reply)", m.topic);
                            continue;
                        }
                        let delay = random_between(latency.0, latency.1);
                        let reply_to = feedback.for_command(&m.topic, &room);
                        let reply = match style {
                            ReplyStyle::Plain => "OK".to_string(),
                            ReplyStyle::Json => serde_json::json!({"status": "OK", "topic": m.topic, "message": payload}).to_string(),
                        };
                        info!(target: "simulate", "{dev}: {} = {payload} -> OK in {}ms", m.topic, delay.as_millis());
                        let h3 = h2.clone();
                        let c3 = c2.clone();
                        t2.spawn(async move {
                            tokio::select! {
                                _ = c3.cancelled() => {}
                                _ = tokio::time::sleep(delay) => {
                                    debug!(target: "simulate", "replying {reply_to} = {reply}");
                                    let _ = h3.publish(reply_to, reply, PublishOptions::reliable());
                                }
                            }
                        });
                    }
                }
            }
        });
        devices.push((id, mine));
        handles.push(h);
    }
    Fleet {
        devices,
        handles,
        received,
        cancel,
        tasks,
    }
}

fn random_between(lo: Duration, hi: Duration) -> Duration {
    if hi <= lo {
        return lo;
    }
    let span = (hi - lo).as_secs_f64();
    lo + Duration::from_secs_f64(rand::random::<f64>() * span)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fleet_remembers_a_bounded_number_of_commands() {
        let log = Mutex::new(VecDeque::new());
        for i in 0..KEPT_RECEIVED + 5 {
            keep(
                &log,
                Received {
                    device: "esp".into(),
                    topic: "room1/light".into(),
                    payload: format!("C{i}"),
                    answered: true,
                },
            );
        }
        let log = log.into_inner();
        assert_eq!(log.len(), KEPT_RECEIVED);
        assert_eq!(log.front().unwrap().payload, "C5", "the oldest go first");
    }

    #[test]
    fn latency_ranges() {
        assert_eq!(
            parse_latency("50ms..250ms").unwrap(),
            (Duration::from_millis(50), Duration::from_millis(250))
        );
        assert_eq!(
            parse_latency("100ms").unwrap(),
            (Duration::from_millis(100), Duration::from_millis(100))
        );
        assert!(parse_latency("250ms..50ms").is_err());
        assert!(parse_latency("soon").is_err());
        for _ in 0..100 {
            let d = random_between(Duration::from_millis(50), Duration::from_millis(250));
            assert!(d >= Duration::from_millis(50) && d <= Duration::from_millis(250));
        }
    }
}
