//! Manual control: every channel the scenes and command files use, with
//! the messages they send on it and the last result, and sending one of
//! them (or any text) by hand, feedback-tracked like a cue. The per-device
//! test resends the device's last command (the device is already in that
//! state) and reports the reply latency.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::Room;
use crate::events::{FeedbackRecord, Outcome};
use crate::feedback::Tracked;
use crate::mqtt::PublishOptions;
use crate::scene::ActionKind;

/// At most this many distinct messages are offered per channel.
const MESSAGES_PER_CHANNEL: usize = 24;
/// The longest message sent by hand.
pub const MAX_MESSAGE: usize = 1024;

/// One channel on the manual-control panel.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Channel {
    /// The command topic (`room1/light`).
    pub topic: String,
    /// The messages the scenes and command files send on it.
    pub messages: Vec<String>,
    /// The board that answers it (from `devices/<id>/channels`).
    pub device: Option<String>,
    /// The last tracked command on it and its result.
    pub last: Option<FeedbackRecord>,
}

/// Why a manual command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// Not a channel of this room.
    #[error(
        "`{0}` is not a channel of this room: a topic under the room's prefix (room1/…), without + or #, or one its scenes, command files or boards use"
    )]
    UnknownChannel(String),
    /// Too many new channels tried by hand.
    #[error("{0}")]
    TooMany(String),
    /// No such device, or it answers no channel the scenes use.
    #[error("{0}")]
    NoDevice(String),
    /// Empty or too long.
    #[error("{0}")]
    BadMessage(String),
    /// The outbox refused it.
    #[error("cannot send: {0}")]
    Send(String),
}

impl Room {
    /// The MQTT channels the scenes and command files send on, each with
    /// the messages they send there (sorted by topic).
    fn channel_messages(&self) -> BTreeMap<String, Vec<String>> {
        let scenes = self.scenes.scenes();
        let all_stop = self.config.topics().all_stop();
        let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (_, a) in scenes.every_action() {
            if !matches!(a.kind, ActionKind::Mqtt) || a.topic == all_stop {
                continue;
            }
            let m = by.entry(a.topic.clone()).or_default();
            if m.len() < MESSAGES_PER_CHANNEL && !m.contains(&a.message) {
                m.push(a.message.clone());
            }
        }
        by
    }

    /// Every channel the scenes and command files send on is an output
    /// (listed as unknown until commanded).
    pub(crate) fn know_outputs(&self) {
        let by = self.channel_messages();
        self.outputs.know(by.keys().map(String::as_str));
    }

    /// The channels of the manual-control panel, sorted by topic.
    pub fn channels(&self) -> Vec<Channel> {
        let by = self.channel_messages();
        let history = self.feedback.history(usize::MAX);
        let devices = self.registry.all();
        by.into_iter()
            .map(|(topic, messages)| Channel {
                device: devices
                    .iter()
                    .find(|d| d.channels.contains(&topic))
                    .map(|d| d.id.clone()),
                last: history.iter().find(|f| f.command_topic == topic).cloned(),
                topic,
                messages,
            })
            .collect()
    }

    /// Sends `message` on `topic` (a channel the scenes use) now, tracked
    /// for feedback like a cue.
    pub fn send_manual(&self, topic: &str, message: &str) -> Result<Tracked, ControlError> {
        let known = self.channel_messages().contains_key(topic)
            || self.channels().iter().any(|c| c.topic == topic);
        if !known {
            self.new_channel(topic)?;
        }
        self.send_tracked(topic, message)
    }

    /// A channel no scene uses yet, tried by hand (a new relay): any plain
    /// topic under the room's prefix but its STOP and feedback topics;
    /// its feedback topic is subscribed to. At most [`MAX_NEW_CHANNELS`].
    fn new_channel(&self, topic: &str) -> Result<(), ControlError> {
        let unknown = || ControlError::UnknownChannel(topic.chars().take(128).collect());
        let topics = self.config.topics();
        let prefix = format!("{}/", self.config.room);
        let feedback = self.feedback.register(topic);
        if !topic.starts_with(&prefix)
            || crate::topic::validate_name(topic).is_err()
            || topic == topics.all_stop()
            || topic == feedback
        {
            return Err(unknown());
        }
        let mut tried = self.manual_channels.lock();
        if !tried.contains(topic) {
            if tried.len() >= MAX_NEW_CHANNELS {
                return Err(ControlError::TooMany(format!(
                    "{MAX_NEW_CHANNELS} new channels were tried by hand since the start: put `{}` in a scene or command file first",
                    topic.chars().take(128).collect::<String>()
                )));
            }
            tried.insert(topic.to_string());
            let _ = self.mqtt.subscribe(feedback);
        }
        Ok(())
    }
}

/// New channels a technician may try by hand before a scene uses them.
const MAX_NEW_CHANNELS: usize = 256;

impl Room {
    /// Sends `message` on `topic` (already known to be a channel), tracked.
    fn send_tracked(&self, topic: &str, message: &str) -> Result<Tracked, ControlError> {
        if message.trim().is_empty() {
            return Err(ControlError::BadMessage("the message is empty".into()));
        }
        if message.len() > MAX_MESSAGE {
            return Err(ControlError::BadMessage(format!(
                "the message is longer than {MAX_MESSAGE} bytes"
            )));
        }
        self.stops.output_sent();
        let sender = super::sink::Tracking {
            mqtt: &self.mqtt,
            registry: &self.registry,
            feedback: &self.feedback,
        };
        let (t, sent) = sender.send(
            topic,
            message,
            self.cue_timeout(),
            Some("manual"),
            PublishOptions::reliable(),
        );
        sent.map_err(|e| ControlError::Send(e.to_string()))?;
        Ok(t)
    }

    /// The per-device test: resends the last command on the device's first
    /// channel (or, never sent yet, the first message the scenes use on it)
    /// and waits for the reply. Returns the record (OK with its latency,
    /// TIMEOUT or ERROR).
    pub async fn test_device(&self, id: &str) -> Result<FeedbackRecord, ControlError> {
        let channels = self.channels();
        let Some(ch) = channels.iter().find(|c| c.device.as_deref() == Some(id)) else {
            return Err(ControlError::NoDevice(if self.registry.get(id).is_some() {
                format!(
                    "device `{id}` answers no channel the scenes use (it announces its channels on devices/{id}/channels)"
                )
            } else {
                format!("no device `{}`", id.chars().take(64).collect::<String>())
            }));
        };
        let message = ch
            .last
            .as_ref()
            .map(|l| l.message.clone())
            .or_else(|| ch.messages.first().cloned())
            .ok_or_else(|| ControlError::NoDevice(format!("no message to test `{id}` with")))?;
        let t = self.send_tracked(&ch.topic, &message)?;
        let wait = self.cue_timeout() + Duration::from_secs(1);
        match tokio::time::timeout(wait, t.result).await {
            Ok(Ok(r)) => Ok(r),
            _ => Err(ControlError::Send("no result (shutting down?)".into())),
        }
    }
}

/// `OK` in words for the dashboard.
pub fn describe(r: &FeedbackRecord) -> String {
    match (r.result, r.latency) {
        (Outcome::Ok, Some(l)) => format!("OK in {:.0} ms", l * 1000.0),
        (Outcome::Timeout, _) => format!("TIMEOUT (no reply within {:.1} s)", r.timeout),
        (o, _) => format!("{o:?}").to_uppercase(),
    }
}
