//! The message router (seed 004 `mqtt_message_handler`): every incoming MQTT
//! message comes through here and goes to the device registry, the feedback
//! tracker, the scene controller (control topics, triggers, `mqttMessage`
//! transitions) or nowhere. Nothing from the network can make it panic: bad
//! input is logged with the reason and dropped.

use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use tracing::{debug, warn};

use crate::ratelog;
use crate::ratelog::{LogLimit, RateLog};

use crate::config::{Config, Topics, TriggerConfig};
use crate::feedback::{FeedbackTracker, Handled};
use crate::mqtt::InMessage;
use crate::registry::Registry;
use crate::scene::{CommandRunner, EndReason, SceneController, SceneInput, StartError};
use crate::schedule::ScheduleHandle;
use crate::topic::{self, device_channels_id, device_id};

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
    /// A control topic.
    Control,
    /// A configured trigger started a scene.
    Trigger,
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

/// What starts scenes: replaced as a whole by a reload.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// `scenes.default`: started by `ROOM/scene = START`.
    pub default_scene: Option<String>,
    /// `triggers:`.
    pub triggers: Vec<TriggerConfig>,
}

impl Rules {
    /// The rules `config` asks for.
    pub fn of(config: &Config) -> Self {
        Rules {
            default_scene: config.scenes.default.clone(),
            triggers: config.triggers.clone(),
        }
    }
}

/// Routes incoming messages (see the module docs).
pub struct Router {
    /// Warnings caused by what arrives from the network, rate-limited.
    log: Mutex<RateLog>,
    mode: RouterMode,
    topics: Topics,
    rules: Arc<RwLock<Rules>>,
    registry: Registry,
    feedback: FeedbackTracker,
    scenes: SceneController,
    commands: CommandRunner,
    schedule: Option<ScheduleHandle>,
}

impl Router {
    /// A router for `config` with the given duties and handles.
    pub fn new(
        config: &Config,
        mode: RouterMode,
        registry: Registry,
        feedback: FeedbackTracker,
        scenes: SceneController,
        commands: CommandRunner,
    ) -> Self {
        Router {
            log: Mutex::new(RateLog::new(LogLimit::default())),
            mode,
            topics: config.topics(),
            rules: Arc::new(RwLock::new(Rules::of(config))),
            registry,
            feedback,
            scenes,
            commands,
            schedule: None,
        }
    }

    /// Also obeys `roomctl/ROOM/schedule` = `pause` / `resume`.
    pub fn with_schedule(mut self, schedule: Option<ScheduleHandle>) -> Self {
        self.schedule = schedule;
        self
    }

    /// The rules this router follows, to replace them (a reload).
    pub fn rules(&self) -> Arc<RwLock<Rules>> {
        self.rules.clone()
    }

    /// Routes messages from `rx` until `cancel` fires or the channel closes.
    pub async fn run(self, mut rx: mpsc::Receiver<InMessage>, cancel: CancellationToken) {
        // Sums up what the rate limit left out, even when the flood stopped.
        let mut summary = tokio::time::interval(LogLimit::default().window);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = summary.tick() => {
                    for s in self.log.lock().unwrap().flush(tokio::time::Instant::now()) {
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

        if let Some(id) = device_channels_id(topic) {
            return match self.registry.announce_channels(id, payload) {
                Ok(_) => Route::Device,
                Err(e) => {
                    ratelog!(
                        self.log,
                        warn,
                        "mqtt_devices",
                        "device status",
                        "Ignoring {}: {e}",
                        short(topic)
                    );
                    Route::Rejected(e.to_string())
                }
            };
        }
        if let Some(id) = device_id(topic) {
            debug!(target: "mqtt_handler", "{topic} -> device registry");
            return match self.registry.update(id, payload) {
                Ok(_) => Route::Device,
                Err(e) => {
                    ratelog!(
                        self.log,
                        warn,
                        "mqtt_devices",
                        "device status",
                        "Ignoring {}: {e}",
                        short(topic)
                    );
                    Route::Rejected(e.to_string())
                }
            };
        }

        // Retained messages are old news: they must not confirm a command,
        // start a scene or move one on when the daemon (re)subscribes.
        if m.retain {
            debug!(target: "mqtt_handler", "Ignoring retained message on {topic}");
            return Route::Rejected("retained".into());
        }

        // Every live message may matter to the running scene's transitions.
        self.scenes.input(SceneInput::Mqtt {
            topic: topic.to_string(),
            payload: payload.to_string(),
        });

        match self.feedback.handle(topic, payload) {
            Handled::NotFeedback => {}
            Handled::Confirmed(_) | Handled::Unmatched => return Route::Feedback,
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
                return Route::Feedback;
            }
            Handled::Invalid(e) => {
                ratelog!(
                    self.log,
                    warn,
                    "mqtt_feedback",
                    "feedback payloads",
                    "Ignoring payload on {topic}: {e}"
                );
                return Route::Rejected(e.to_string());
            }
        }

        if self.mode == RouterMode::Observer {
            return Route::Scene;
        }
        if let Some(r) = self.control(topic, payload) {
            return r;
        }
        let fired = self
            .rules
            .read()
            .unwrap()
            .triggers
            .iter()
            .find(|t| {
                topic::matches(&t.topic, topic)
                    && t.payload
                        .as_ref()
                        .is_none_or(|p| p.trim() == payload.trim())
            })
            .cloned();
        if let Some(t) = fired {
            ratelog!(
                self.log,
                info,
                "mqtt_handler",
                "control",
                "Trigger {topic} = {} -> scene {}",
                short(payload.trim()),
                t.scene
            );
            self.start(&t.scene, &format!("trigger {topic}"));
            return Route::Trigger;
        }
        debug!(target: "mqtt_handler", "No handler for {topic}");
        Route::Scene
    }

    fn control(&self, topic: &str, payload: &str) -> Option<Route> {
        let p = payload.trim();
        if topic == self.topics.scene_start() || topic == self.topics.compat_start_scene() {
            ratelog!(
                self.log,
                info,
                "mqtt_handler",
                "control",
                "Control: start scene {:?} ({topic})",
                short(p)
            );
            self.start(p, &format!("MQTT {topic}"));
            return Some(Route::Control);
        }
        if topic == self.topics.command_run() {
            ratelog!(
                self.log,
                info,
                "mqtt_handler",
                "control",
                "Control: run command {:?} ({topic})",
                short(p)
            );
            if let Err(e) = self.commands.run(p, "MQTT") {
                ratelog!(
                    self.log,
                    warn,
                    "mqtt_handler",
                    "control",
                    "Not running command {:?}: {e}",
                    short(p)
                );
                return Some(Route::Rejected(e.to_string()));
            }
            return Some(Route::Control);
        }
        if topic == self.topics.schedule_control() {
            let pause = match p.to_ascii_lowercase().as_str() {
                "pause" => true,
                "resume" => false,
                _ => {
                    ratelog!(
                        self.log,
                        warn,
                        "mqtt_handler",
                        "control",
                        "Ignoring {topic} = {:?}: expected pause or resume",
                        short(p)
                    );
                    return Some(Route::Rejected("expected pause or resume".into()));
                }
            };
            let Some(s) = &self.schedule else {
                ratelog!(
                    self.log,
                    warn,
                    "mqtt_handler",
                    "control",
                    "Ignoring {topic}: no schedule is configured"
                );
                return Some(Route::Rejected("no schedule".into()));
            };
            // Holds in memory even when it cannot be saved; the schedule
            // logs that and health reports it.
            let _ = s.set_paused(pause);
            return Some(Route::Control);
        }
        if topic == self.topics.scene_stop() {
            ratelog!(
                self.log,
                info,
                "mqtt_handler",
                "control",
                "Control: stop ({topic})"
            );
            self.stop();
            return Some(Route::Control);
        }
        if topic == self.topics.compat_scene() {
            if p.eq_ignore_ascii_case("START") {
                let default = self.rules.read().unwrap().default_scene.clone();
                match default {
                    Some(s) => self.start(&s, &format!("MQTT {topic}")),
                    None => match self.only_scene() {
                        Some(s) => self.start(&s, &format!("MQTT {topic}")),
                        None => {
                            ratelog!(
                                self.log,
                                warn,
                                "mqtt_handler",
                                "control",
                                "{topic} = START but no scenes.default is configured"
                            )
                        }
                    },
                }
            } else if p.eq_ignore_ascii_case("STOP") {
                self.stop();
            } else {
                ratelog!(
                    self.log,
                    warn,
                    "mqtt_handler",
                    "control",
                    "Ignoring {topic} = {:?} (expected START or STOP)",
                    short(p)
                );
                return Some(Route::Rejected(format!("unexpected payload {p:?}")));
            }
            return Some(Route::Control);
        }
        None
    }

    /// With exactly one scene, that is the default.
    fn only_scene(&self) -> Option<String> {
        let scenes = self.scenes.scenes();
        let mut names = scenes.names();
        match (names.next(), names.next()) {
            (Some(n), None) => Some(n.to_string()),
            _ => None,
        }
    }

    fn start(&self, name: &str, origin: &str) {
        // Names are looked up in the loaded scene list, never used as paths.
        match self.scenes.start_from(name, origin) {
            Ok(()) => {}
            Err(e @ StartError::AlreadyRunning(_)) => {
                ratelog!(
                    self.log,
                    info,
                    "mqtt_handler",
                    "control",
                    "Not starting {name:?}: {e}"
                )
            }
            Err(e) => {
                ratelog!(
                    self.log,
                    warn,
                    "mqtt_handler",
                    "control",
                    "Not starting {:?}: {e}",
                    short(name)
                )
            }
        }
    }

    fn stop(&self) {
        // The end sequence runs in the scene's own task.
        self.scenes.request_stop(EndReason::Stopped);
        self.commands.cancel_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FeedbackTopic;
    use crate::events::EventBus;
    use crate::scene::SceneSet;
    use crate::scene::load::{SceneContext, parse_scene};
    use bytes::Bytes;
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use crate::testkit::RecordingSink as Rec;

    fn router() -> (Router, Arc<Rec>, Registry, FeedbackTracker) {
        let cfg = Config::parse(
            "room: room1\nmqtt: {brokers: [{broker: h}]}\nscenes: {default: intro}\ntriggers:\n  - {topic: room1/button, payload: pressed, scene: outro}\n",
            Path::new("c.yaml"),
            &|_| None,
        )
        .unwrap();
        let ctx = SceneContext::from_config(&cfg);
        let mk = |name: &str| {
            parse_scene(
                &format!("name: {name}\nactions: [{{at: 0, topic: room1/light, message: '{name}'}}, {{at: 30, topic: room1/light, message: 'OFF'}}]\n"),
                Path::new("x.yaml"),
                &ctx,
            )
            .unwrap()
            .0
        };
        let bus = EventBus::new(64);
        let rec = Arc::new(Rec::default());
        let scenes = SceneController::new(
            SceneSet::new([mk("intro"), mk("outro")]),
            rec.clone(),
            bus.clone(),
            tokio_util::task::TaskTracker::new(),
        );
        let commands = CommandRunner::new(
            scenes.clone(),
            rec.clone(),
            bus.clone(),
            tokio_util::task::TaskTracker::new(),
            tokio_util::sync::CancellationToken::new(),
        );
        let registry = Registry::new(Duration::from_secs(60), bus.clone());
        let feedback = FeedbackTracker::new(
            FeedbackTopic::new("{prefix}/status").unwrap(),
            "room1",
            10,
            bus,
        );
        (
            Router::new(
                &cfg,
                RouterMode::Daemon,
                registry.clone(),
                feedback.clone(),
                scenes,
                commands,
            ),
            rec,
            registry,
            feedback,
        )
    }

    fn msg(topic: &str, payload: &[u8]) -> InMessage {
        InMessage {
            topic: topic.into(),
            payload: Bytes::copy_from_slice(payload),
            retain: false,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn routes_devices_feedback_control_and_triggers() {
        let (r, rec, registry, feedback) = router();
        assert_eq!(
            r.handle(&msg("devices/esp32_01/status", b"online")),
            Route::Device
        );
        assert_eq!(registry.connected().len(), 1);

        let _t = feedback.track("room1/light", "ON", Duration::from_secs(1), None);
        assert_eq!(r.handle(&msg("room1/status", b"OK")), Route::Feedback);
        assert_eq!(feedback.stats().ok, 1);

        assert_eq!(r.handle(&msg("room1/button", b"pressed")), Route::Trigger);
        tokio::task::yield_now().await;
        assert_eq!(rec.entries()[0], "room1/light=outro");
        assert_eq!(
            r.handle(&msg("roomctl/room1/scene/stop", b"")),
            Route::Control
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!r.scenes.is_running());

        assert_eq!(r.handle(&msg("room1/scene", b"START")), Route::Control);
        tokio::task::yield_now().await;
        assert_eq!(r.scenes.status().unwrap().name, "intro");
        r.scenes.stop(EndReason::Stopped).await;
        assert_eq!(
            r.handle(&msg("room1/start_scene", b"outro")),
            Route::Control
        );
        assert_eq!(r.scenes.status().unwrap().name, "outro");
    }

    #[tokio::test(start_paused = true)]
    async fn garbage_never_panics_or_changes_state() {
        let (r, rec, registry, _f) = router();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("devices/esp32_01/status", vec![0xff, 0xfe, 0x00]),
            ("devices/esp32_01/status", b"{\"json\": true}".to_vec()),
            ("devices//status", b"online".to_vec()),
            ("devices/a/b/status", b"online".to_vec()),
            ("room1/status", b"\x00\x01garbage".to_vec()),
            ("room1/status", b"{not json".to_vec()),
            ("room1/status", vec![b'A'; 100_000]),
            ("roomctl/room1/scene/start", b"../../etc/passwd".to_vec()),
            ("roomctl/room1/scene/start", b"".to_vec()),
            ("room1/start_scene", "ñ\u{202e}💥".as_bytes().to_vec()),
            ("room1/scene", b"DANCE".to_vec()),
            ("room1/button", b"not-pressed".to_vec()),
            ("", b"".to_vec()),
        ];
        for (t, p) in &cases {
            let _ = r.handle(&msg(t, p));
        }
        assert!(registry.all().is_empty());
        assert!(!r.scenes.is_running());
        assert!(rec.entries().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn retained_control_messages_are_ignored() {
        let (r, _rec, registry, _f) = router();
        let mut m = msg("roomctl/room1/scene/start", b"intro");
        m.retain = true;
        assert!(matches!(r.handle(&m), Route::Rejected(_)));
        assert!(!r.scenes.is_running());
        let mut d = msg("devices/esp32_02/status", b"online");
        d.retain = true;
        assert_eq!(
            r.handle(&d),
            Route::Device,
            "retained device status is how ESP32s announce"
        );
        assert_eq!(registry.all().len(), 1);
    }
}
