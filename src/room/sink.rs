//! The executor of scene actions in a real room: cues published with
//! their feedback tracked, sounds and clips to the players, and the safe
//! state (ROOM/STOP, each board's own safe commands). A `required` cue
//! that fails after its `retries` asks the room to stop the scene.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Live;
use super::stop_gate::StopGate;
use crate::config::Topics;
use crate::events::{FeedbackRecord, Outcome};
use crate::feedback::{FeedbackTracker, Tracked};
use crate::media::MediaHandle;
use crate::mqtt::{Link, MessageId, PublishError, PublishOptions, unix_now};
use crate::outputs::Outputs;
use crate::registry::Registry;
use crate::scene::{Action, ActionKind, ActionSink};

/// Where a command on `topic` goes and the broker its reply is expected
/// on: with `every_broker`, the broker its board was last heard on (else
/// the active one); with `one_at_a_time`, the one connection, any reply.
pub(super) fn route(mqtt: &Link, registry: &Registry, topic: &str) -> (usize, Option<usize>) {
    if mqtt.connect() == crate::config::Connect::OneAtATime {
        return (0, None);
    }
    let to = mqtt.pick(registry.broker_for(topic));
    (to, mqtt.label(to))
}

/// A command sent with its reply tracked: to its board's broker (see
/// [`route`]), tracked first (a fast reply must find its command) and
/// expected on that broker.
pub(super) struct Tracking<'a> {
    pub(super) mqtt: &'a Link,
    pub(super) registry: &'a Registry,
    pub(super) feedback: &'a FeedbackTracker,
}

impl Tracking<'_> {
    pub(super) fn send(
        &self,
        topic: &str,
        message: &str,
        timeout: Duration,
        scene: Option<&str>,
        opts: PublishOptions,
    ) -> (Tracked, Result<MessageId, PublishError>) {
        let (to, label) = route(self.mqtt, self.registry, topic);
        let t = self
            .feedback
            .track_on(topic, message, timeout, scene, label);
        let sent = self
            .mqtt
            .publish_on(to, topic.to_string(), message.to_string(), opts);
        (t, sent)
    }
}

/// The safe commands the last all-off sent, with their results to come.
pub(super) type SafeRound = Arc<parking_lot::Mutex<Vec<SafeSent>>>;

/// One safe command on its way.
pub(crate) struct SafeSent {
    pub(crate) device: String,
    pub(crate) topic: String,
    pub(crate) message: String,
    pub(crate) result: tokio::sync::oneshot::Receiver<FeedbackRecord>,
}

/// A required cue that failed: the room stops `scene` if the run that
/// sent it is still the one running.
pub(super) struct RequiredFailed {
    pub(super) scene: String,
    /// Unix time the cue was first sent.
    pub(super) sent: f64,
    /// `room1/smoke ON: TIMEOUT after 2 retries`.
    pub(super) cue: String,
}

/// The executor of scene actions in a real room.
pub(super) struct RoomSink {
    pub(super) mqtt: Link,
    /// Which broker each board is on.
    pub(super) registry: Registry,
    pub(super) outputs: Outputs,
    pub(super) stops: Arc<StopGate>,
    pub(super) feedback: FeedbackTracker,
    pub(super) media: MediaHandle,
    pub(super) topics: Topics,
    /// For `feedback.timeout` (a reload may change it).
    pub(super) live: watch::Receiver<Live>,
    pub(super) max_age: Duration,
    /// Each board's own safe commands (`devices.known.<id>.safe`).
    pub(super) safe: Arc<BTreeMap<String, Vec<(String, String)>>>,
    /// The safe commands of the last all-off, for its result.
    pub(super) round: SafeRound,
    /// Where a failed required cue goes (the room stops its scene).
    pub(super) required: mpsc::UnboundedSender<RequiredFailed>,
    /// The watchers of required and retried cues run here, until this.
    pub(super) tasks: TaskTracker,
    pub(super) cancel: CancellationToken,
}

impl RoomSink {
    fn tracking(&self) -> Tracking<'_> {
        Tracking {
            mqtt: &self.mqtt,
            registry: &self.registry,
            feedback: &self.feedback,
        }
    }

    fn publish_cue(&self, to: usize, a: &Action) {
        self.stops.output_sent();
        let _ = self.mqtt.publish_on(
            to,
            a.topic.clone(),
            a.message.clone(),
            PublishOptions {
                retain: a.retain,
                ..PublishOptions::cue(self.max_age)
            },
        );
    }

    /// Waits for a required or retried cue's result: sends it again on a
    /// failure while retries are left, then reports a required one.
    fn watch(&self, scene: &str, a: &Action, first: Tracked, timeout: Duration) {
        let (feedback, mqtt, registry, stops, tx, cancel) = (
            self.feedback.clone(),
            self.mqtt.clone(),
            self.registry.clone(),
            self.stops.clone(),
            self.required.clone(),
            self.cancel.clone(),
        );
        let (scene, a, sent) = (scene.to_string(), a.clone(), unix_now());
        let opts = PublishOptions {
            retain: a.retain,
            ..PublishOptions::cue(self.max_age)
        };
        self.tasks.spawn(async move {
            let mut tracked = first;
            let mut tries = 0;
            loop {
                let rec = tokio::select! {
                    _ = cancel.cancelled() => return,
                    r = tracked.result => match r { Ok(r) => r, Err(_) => return },
                };
                if rec.result == Outcome::Ok {
                    return;
                }
                let word = if rec.result == Outcome::Error { "ERROR" } else { "TIMEOUT" };
                if tries < a.retries {
                    tries += 1;
                    tracing::warn!(target: "scene", "{scene}: {} {} got {word}: sending it again ({tries} of {})", a.topic, a.message, a.retries);
                    // Its board may be on another broker by now.
                    stops.output_sent();
                    let sender = Tracking { mqtt: &mqtt, registry: &registry, feedback: &feedback };
                    tracked = sender.send(&a.topic, &a.message, timeout, Some(&scene), opts).0;
                    continue;
                }
                if a.required {
                    let after = match tries {
                        0 => String::new(),
                        n => format!(" after {n} retr{}", if n == 1 { "y" } else { "ies" }),
                    };
                    let cue = format!("{} {}: {word}{after}", a.topic, a.message);
                    let _ = tx.send(RequiredFailed { scene, sent, cue });
                }
                return;
            }
        });
    }
}

impl ActionSink for RoomSink {
    fn execute(&self, scene: &str, a: &Action) {
        match &a.kind {
            ActionKind::Mqtt => {
                let (to, label) = route(&self.mqtt, &self.registry, &a.topic);
                // Track before publishing: a fast reply must find its command.
                if a.feedback {
                    let timeout = a.timeout.unwrap_or(self.live.borrow().cue_timeout);
                    let t =
                        self.feedback
                            .track_on(&a.topic, &a.message, timeout, Some(scene), label);
                    if a.required || a.retries > 0 {
                        self.watch(scene, a, t, timeout);
                    }
                }
                self.publish_cue(to, a);
            }
            ActionKind::Audio(c) => self.media.audio(c.clone()),
            ActionKind::Video(c) => self.media.video(c.clone()),
        }
    }

    fn all_off(&self, scene: Option<&str>) {
        if !self.stops.admit(tokio::time::Instant::now()) {
            tracing::debug!(target: "scene", "STOP repeated with nothing sent since the last one: not sent again");
            return;
        }
        // Never feedback-tracked, never expires: "everything off" is safety.
        // On every broker: boards may be on any of them.
        let _ = self.mqtt.publish_everywhere(
            self.topics.all_stop(),
            "STOP",
            PublishOptions::reliable(),
        );
        self.outputs.stopped();
        self.media.all_off();
        // Boards whose firmware does not know ROOM/STOP: their own safe
        // state, feedback-tracked, reliable (never expires in the outbox).
        let timeout = self.live.borrow().cue_timeout;
        let mut sent = Vec::new();
        for (device, cmds) in self.safe.iter() {
            for (topic, message) in cmds {
                let (t, _) = self.tracking().send(
                    topic,
                    message,
                    timeout,
                    scene,
                    PublishOptions::reliable(),
                );
                sent.push(SafeSent {
                    device: device.clone(),
                    topic: topic.clone(),
                    message: message.clone(),
                    result: t.result,
                });
            }
        }
        *self.round.lock() = sent;
    }
}
