//! The message router (seed 004 `mqtt_message_handler`): every incoming MQTT
//! message comes through here and goes to the device registry, the feedback
//! tracker, the running scene (`mqttMessage` transitions) or, for control
//! topics and triggers, becomes a [`Command`] for the room's front door.
//! Which command a message means is a pure function ([`control`]), tested
//! without a broker. Nothing from the network can make it panic: bad input
//! is logged with the reason and dropped.

use std::sync::Arc;

use parking_lot::Mutex;

use futures::FutureExt;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::Live;
use super::command::{Command, Completion, RoomError, ScheduleAction};
use crate::config::{Config, ControlConfig, Topics, TriggerConfig};
use crate::feedback::{FeedbackTracker, Handled};
use crate::mqtt::InMessage;
use crate::mqtt::copies::Copies;
use crate::origin::Origin;
use crate::ratelog;
use crate::ratelog::{LogLimit, RateLog};
use crate::registry::Registry;
use crate::scene::SceneController;
use crate::signing::Verifier;

mod verify;
use crate::topic::{self, device_channels_id, device_id};
pub use verify::ControlRefusals;

/// At most 64 characters of something from the network, for a log line.
fn short(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// Where a message went (for tests and debug logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `devices/<id>/status`: to the registry.
    Device,
    /// A reply on a feedback topic.
    Feedback,
    /// A control topic or a trigger: a command for the room.
    Command,
    /// Only offered to the running scene.
    Scene,
    /// Bad input, and why.
    Rejected(String),
}

/// Which duties the router has: the daemon does all, `roomctl play` only
/// tracks devices and feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterMode {
    /// The room's controller: every duty.
    Daemon,
    /// `roomctl play`: devices and feedback only.
    Observer,
}

/// What starts scenes: part of the room's reloadable snapshot.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// `scenes.default`: started by `ROOM/scene = START`.
    pub default_scene: Option<String>,
    /// `triggers:`.
    pub triggers: Vec<TriggerConfig>,
    /// `control:`: whether control topics need a signature.
    pub control: ControlConfig,
    /// `estop:`: the hardware button's topic and payload.
    pub estop: crate::config::EstopConfig,
}

impl Rules {
    /// The rules `config` asks for.
    pub fn of(config: &Config) -> Self {
        Rules {
            default_scene: config.scenes.default.clone(),
            triggers: config.triggers.clone(),
            control: config.control.clone(),
            estop: config.estop.clone(),
        }
    }
}

/// The command a live (not retained) message on `topic` means, if any:
/// `Err` when it is a control topic with a payload that means nothing.
pub fn control(
    topics: &Topics,
    rules: &Rules,
    topic: &str,
    payload: &str,
) -> Option<Result<(Origin, Command), String>> {
    let p = payload.trim();
    let from = || Origin::mqtt(topic);
    if topic == topics.scene_start() || topic == topics.compat_start_scene() {
        return Some(Ok((from(), Command::StartScene(p.to_string()))));
    }
    if topic == topics.command_run() {
        return Some(Ok((from(), Command::RunCommand(p.to_string()))));
    }
    if topic == topics.schedule_control() {
        return Some(
            p.parse::<ScheduleAction>()
                .map(|a| (from(), Command::Schedule(a)))
                .map_err(|_| format!("expected pause or resume, not {:?}", short(p))),
        );
    }
    if topic == topics.scene_stop() {
        return Some(Ok((from(), Command::Stop)));
    }
    if topic == topics.estop() {
        return Some(Ok((from(), Command::Estop)));
    }
    // A hardware E-stop button: like a trigger, never signed (a stop is
    // always safe to obey).
    if rules.estop.topic.as_deref() == Some(topic)
        && rules
            .estop
            .payload
            .as_ref()
            .is_none_or(|want| want.trim() == p)
    {
        return Some(Ok((Origin::trigger(topic), Command::Estop)));
    }
    if topic == topics.compat_scene() {
        return Some(if p.eq_ignore_ascii_case("START") {
            Ok((from(), Command::StartDefaultScene))
        } else if p.eq_ignore_ascii_case("STOP") {
            Ok((from(), Command::Stop))
        } else {
            Err(format!("expected START or STOP, not {:?}", short(p)))
        });
    }
    rules
        .triggers
        .iter()
        .find(|t| {
            topic::matches(&t.topic, topic)
                && t.payload.as_ref().is_none_or(|want| want.trim() == p)
        })
        .map(|t| Ok((Origin::trigger(topic), Command::StartScene(t.scene.clone()))))
}

/// Hands a command to the room.
pub type Apply = Arc<dyn Fn(Origin, Command) -> Completion + Send + Sync>;

/// Routes incoming messages (see the module docs).
pub struct Router {
    /// Warnings caused by what arrives from the network, rate-limited.
    log: Mutex<RateLog>,
    mode: RouterMode,
    topics: Topics,
    live: watch::Receiver<Live>,
    registry: Registry,
    feedback: FeedbackTracker,
    scenes: SceneController,
    apply: Apply,
    /// Nonces of signed control messages seen lately.
    verifier: Mutex<Verifier>,
    refusals: Arc<ControlRefusals>,
    /// `every_broker`: copies of one message heard on two brokers.
    copies: Option<Mutex<Copies>>,
}

impl Router {
    /// A router for `config` with the given duties, handing commands to
    /// `apply` under the rules in `live`.
    pub fn new(
        config: &Config,
        mode: RouterMode,
        registry: Registry,
        feedback: FeedbackTracker,
        scenes: SceneController,
        live: watch::Receiver<Live>,
        apply: Apply,
    ) -> Self {
        Router {
            log: Mutex::new(RateLog::new(LogLimit::default())),
            mode,
            topics: config.topics(),
            live,
            registry,
            feedback,
            scenes,
            apply,
            verifier: Mutex::new(Verifier::default()),
            refusals: Arc::default(),
            copies: None,
        }
    }

    /// Drops the copy of a message already heard on another broker
    /// (`every_broker` on bridged brokers), except replies, which the
    /// feedback tracker tells apart by the broker their command went to.
    pub fn dropping_copies(mut self) -> Self {
        self.copies = Some(Mutex::new(Copies::new()));
        self
    }

    /// Counts refused control messages into `refusals` (the room's).
    pub fn counting_refusals(mut self, refusals: Arc<ControlRefusals>) -> Self {
        self.refusals = refusals;
        self
    }

    /// Routes messages from `rx` until `cancel` fires or the channel closes.
    pub async fn run(self, mut rx: mpsc::Receiver<InMessage>, cancel: CancellationToken) {
        // Sums up what the rate limit left out, even when the flood stopped.
        let mut summary = tokio::time::interval(LogLimit::default().window);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = summary.tick() => {
                    for s in self.log.lock().flush(tokio::time::Instant::now()) {
                        warn!(target: "mqtt_handler", "{} more `{}` warning(s) in the last minute were not logged", s.count, s.source);
                    }
                }
                m = rx.recv() => match m {
                    Some(m) => { self.handle(&m); }
                    None => return,
                },
            }
        }
    }

    /// Routes one message. Never panics.
    pub fn handle(&self, m: &InMessage) -> Route {
        let Ok(payload) = std::str::from_utf8(&m.payload) else {
            ratelog!(
                self.log,
                warn,
                "mqtt_handler",
                "non-UTF-8 payloads",
                "Ignoring non-UTF-8 payload on {} ({} bytes)",
                short(&m.topic),
                m.payload.len()
            );
            return Route::Rejected("payload is not UTF-8".into());
        };
        let topic = m.topic.as_str();
        if let Some(c) = &self.copies
            && !self.feedback.is_feedback_topic(topic)
            && c.lock()
                .is_copy(m.broker, topic, &m.payload, tokio::time::Instant::now())
        {
            debug!(target: "mqtt_handler", "{topic}: a copy of a message heard on another broker moments ago (a bridge); dropped");
            return Route::Rejected("a copy from another broker".into());
        }

        let device = if let Some(id) = device_channels_id(topic) {
            Some(self.registry.announce_channels(id, payload).map(drop))
        } else if let Some(id) = device_id(topic) {
            debug!(target: "mqtt_handler", "{topic} -> device registry");
            Some(
                self.registry
                    .update_on(id, payload, Some(m.broker))
                    .map(drop),
            )
        } else {
            None
        };
        match device {
            Some(Ok(())) => return Route::Device,
            Some(Err(e)) => {
                ratelog!(
                    self.log,
                    warn,
                    "mqtt_devices",
                    "device status",
                    "Ignoring {}: {e}",
                    short(topic)
                );
                return Route::Rejected(e.to_string());
            }
            None => {}
        }

        // Retained messages are old news: they must not confirm a command,
        // start a scene or move one on when the daemon (re)subscribes.
        if m.retain {
            debug!(target: "mqtt_handler", "Ignoring retained message on {topic}");
            return Route::Rejected("retained".into());
        }

        // Every live message may matter to the running scene's transitions.
        self.scenes.input_mqtt(topic, payload);

        if let Some(route) = self.feedback(topic, payload, m.broker) {
            return route;
        }

        if self.mode == RouterMode::Observer {
            return Route::Scene;
        }
        self.command(topic, payload, &m.properties)
    }

    /// A reply on a feedback topic: to the tracker. None when `topic` is
    /// no feedback topic.
    fn feedback(&self, topic: &str, payload: &str, broker: usize) -> Option<Route> {
        match self.feedback.handle_from(topic, payload, Some(broker)) {
            Handled::NotFeedback => None,
            Handled::Confirmed(_) | Handled::Unmatched => Some(Route::Feedback),
            Handled::Elsewhere {
                command_topic,
                expected,
            } => {
                ratelog!(
                    self.log,
                    warn,
                    "mqtt_feedback",
                    "feedback elsewhere",
                    "Reply to {command_topic} arrived on {topic}, but feedback.topic expects it on {expected}: it confirms nothing"
                );
                Some(Route::Feedback)
            }
            Handled::Invalid(e) => {
                ratelog!(
                    self.log,
                    warn,
                    "mqtt_feedback",
                    "feedback payloads",
                    "Ignoring payload on {topic}: {e}"
                );
                Some(Route::Rejected(e.to_string()))
            }
        }
    }

    /// A control topic or a trigger: the command it means, handed to the
    /// room; anything else is only the running scene's business.
    fn command(&self, topic: &str, payload: &str, props: &[(String, String)]) -> Route {
        let command = control(&self.topics, &self.live.borrow().rules, topic, payload);
        match command {
            Some(Ok((origin, command))) => {
                let origin = match self.signed(origin, topic, payload, props) {
                    Ok(o) => o,
                    Err(r) => {
                        self.refusals.bump(r);
                        ratelog!(
                            self.log,
                            warn,
                            "mqtt_handler",
                            "control refused",
                            "Refused {} = {:?}: {r} (control.key is set)",
                            short(topic),
                            short(payload)
                        );
                        return Route::Rejected(format!("control message refused: {r}"));
                    }
                };
                self.hand_over(origin, command);
                Route::Command
            }
            Some(Err(why)) => {
                ratelog!(
                    self.log,
                    warn,
                    "mqtt_handler",
                    "control",
                    "Ignoring {}: {why}",
                    short(topic)
                );
                Route::Rejected(why)
            }
            None => {
                debug!(target: "mqtt_handler", "No handler for {topic}");
                Route::Scene
            }
        }
    }

    /// Applies a command from the network. What it switches happens now;
    /// of its completion only a refusal matters here (a stop's end
    /// sequence runs on without the router).
    fn hand_over(&self, origin: Origin, command: Command) {
        let refused = match (self.apply)(origin, command).now_or_never() {
            Some(Err(e)) => e,
            _ => return,
        };
        match refused {
            RoomError::Conflict(e) => {
                ratelog!(self.log, info, "mqtt_handler", "control", "Not done: {e}")
            }
            e => ratelog!(
                self.log,
                warn,
                "mqtt_handler",
                "control",
                "Not done: {}",
                short(&e.to_string())
            ),
        }
    }
}

#[cfg(test)]
mod tests;
