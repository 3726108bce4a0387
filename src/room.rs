//! One room, wired together: config → event bus, registry, feedback
//! tracker, media players, MQTT client, scene controller, router, and the
//! small tasks between them (media ends → scenes, connection changes → bus,
//! bus → retained `roomctl/ROOM/state`). Used by `run`, `play` and `demo`.
//!
//! Shutdown order matters and lives here: stop the scene (its `on_stop` and
//! `ROOM/STOP` go out), publish `offline`, flush the outbox briefly, and only
//! then stop the tasks.

use std::sync::Arc;

use parking_lot::RwLock;

use std::time::Duration;
use tokio::sync::watch;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::accounts::{Accounts, AccountsConfig};
use crate::config::{Config, Topics};
use crate::events::{ConnectionState, Event, EventBus};
use crate::feedback::FeedbackTracker;
use crate::media::{MediaEnd, MediaHandle};
use crate::mqtt::{self, Link, MqttSettings, OwnMessage, PublishOptions, unix_now};
use crate::outputs::Outputs;
use crate::registry::Registry;
use crate::scene::{CommandRunner, EndReason, SceneController, SceneInput, SceneSet};
use crate::schedule::{ScheduleHandle, Wall};
use crate::showlog::{self, ShowLog};

mod command;
mod control;
mod errors;
mod health;
mod library;
mod reload;
mod router;
mod safety;
mod sink;
use sink::RoomSink;
mod state;
mod verdict;
pub use verdict::{Level, NextShow, Verdict};
mod stop_gate;
mod studio;
pub use command::{Command, Completion, Player, Reply, RoomError, ScheduleAction, Volume};
pub use control::{Channel, ControlError, describe};
pub use health::{Health, HealthStatus};
pub use library::{LibraryEntry, LibraryView, MediaChange, MissingMedia};
use reload::ReloadGate;
pub use reload::ReloadReport;
pub use router::{Apply, ControlRefusals, Route, Router, RouterMode, Rules, control};
pub use state::{MAX_STATE_OUTPUTS, OutputBrief, RoomState};
pub(crate) use stop_gate::StopGate;
pub use studio::{SceneChange, SceneChanged, SceneError};

/// How long shutdown waits for queued messages to reach the broker.
pub const SHUTDOWN_FLUSH: Duration = Duration::from_secs(2);
/// The retained state is republished at least this often.
const STATE_REFRESH: Duration = Duration::from_secs(30);
/// How long shutdown waits for the room's tasks once they are told to stop.
const TASKS_STOP: Duration = Duration::from_secs(2);

/// What this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The room's controller: last will, control topics, triggers, state.
    Daemon,
    /// `roomctl play`: plays one scene beside (or instead of) the daemon,
    /// under its own client id, without claiming the room's status topic.
    Player,
}

/// Everything a running room has. Cheap handles; clone freely.
#[derive(Clone)]
pub struct Room {
    /// The validated config.
    pub config: Arc<Config>,
    /// Every change, for the dashboard and the state topic.
    pub events: EventBus,
    /// The MQTT link (one client, or one per broker: `mqtt.connect`).
    pub mqtt: Link,
    /// The devices.
    pub registry: Registry,
    /// Command confirmations.
    pub feedback: FeedbackTracker,
    /// What each output is believed to be doing.
    pub outputs: Outputs,
    /// Audio and video.
    pub media: MediaHandle,
    /// The scenes (one at a time).
    pub scenes: SceneController,
    /// Command files, fired by hand.
    pub commands: CommandRunner,
    /// The opening-hours schedule (daemon only, when configured).
    pub schedule: Option<ScheduleHandle>,
    /// The persistent show log (daemon only).
    pub show_log: Option<ShowLog>,
    /// Who may use the dashboard and the API.
    pub accounts: Accounts,
    /// The scene files as the studio edits them.
    pub studio: Arc<crate::studio::SceneStore>,
    /// The sound and clip files.
    pub library: Arc<crate::media::library::Library>,
    /// Unix time the room started.
    pub started: f64,
    /// The latched emergency stop.
    pub estop: crate::estop::Latch,
    /// The safe commands of the last all-off.
    round: sink::SafeRound,
    /// When scenes last started (`scenes.min_start_interval`).
    starts: Arc<parking_lot::Mutex<safety::Starts>>,
    /// Channels no scene uses that a technician tried by hand.
    manual_channels: Arc<parking_lot::Mutex<std::collections::HashSet<String>>>,
    /// What a reload replaces, as one snapshot.
    live: Arc<watch::Sender<Live>>,
    /// A likely feedback misconfiguration seen in the last scene.
    feedback_hint: Arc<RwLock<Option<String>>>,
    /// The line each command gets (see [`Room::apply`]), rate-limited.
    command_log: Arc<parking_lot::Mutex<crate::ratelog::RateLog>>,
    /// Reloads in a row become one (see [`Room::reload_coalesced`]).
    reloads: Arc<ReloadGate>,
    /// One STOP per burst of stop requests.
    pub(crate) stops: Arc<StopGate>,
    /// Control messages refused for their signature.
    pub control_refused: Arc<ControlRefusals>,
    role: Role,
    /// The root of the shutdown tree: every task of the room ends with it.
    cancel: CancellationToken,
    /// Cancelled when a restart is asked (see [`Command::Restart`]).
    restart: CancellationToken,
    /// Stops the retained-state publisher first at shutdown, so the final
    /// state is the last one.
    state_stop: CancellationToken,
    /// Every task of the room.
    tasks: TaskTracker,
}

/// What a reload replaces, as one value in a `watch` channel: a reader sees
/// the old snapshot or the new one, never half of each. (The scene set is
/// replaced just before it, so a new rule never names a scene that is not
/// loaded yet.)
#[derive(Debug, Clone)]
pub struct Live {
    /// What starts scenes.
    pub rules: Rules,
    /// `feedback.timeout`.
    pub cue_timeout: Duration,
    /// Scene files that did not load, and why.
    pub problems: Vec<String>,
}

impl Live {
    /// The snapshot `config` asks for, with no load problems.
    pub fn of(config: &Config) -> Self {
        Live {
            rules: Rules::of(config),
            cue_timeout: config.feedback.timeout,
            problems: Vec::new(),
        }
    }
}

impl Room {
    /// Builds and starts everything. Must run inside a tokio runtime.
    pub fn start(config: Config, scenes: SceneSet, role: Role) -> Room {
        Self::start_on(config, scenes, role, None)
    }

    /// [`Room::start`], with the cue path (the MQTT connections and each
    /// scene's runner) on the runtime of `cues`, the daemon's cue thread
    /// (crate::cue_thread); without it everything shares the caller's.
    pub fn start_on(
        config: Config,
        scenes: SceneSet,
        role: Role,
        cues: Option<tokio::runtime::Handle>,
    ) -> Room {
        let config = Arc::new(config);
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        let events = EventBus::new(1024);
        let events_rx = events.subscribe();
        let topics = config.topics();

        let registry = Registry::from_config(&config.devices, events.clone());
        let owners = registry.clone();
        let feedback = FeedbackTracker::new(
            config.feedback.topic.clone(),
            &config.room,
            config.feedback.history,
            events.clone(),
        );
        feedback.set_owner_lookup(Box::new(move |t| owners.owner_of(t)));
        let outputs = Outputs::new(events.clone());
        feedback.set_outputs(outputs.clone());
        tasks.spawn(outputs.clone().run(events.subscribe(), cancel.clone()));
        let (media, media_ends) =
            MediaHandle::start(&config.media, events.clone(), cancel.child_token(), &tasks);

        let settings = mqtt_settings(&config, &scenes, &feedback, role);
        let (mqtt, incoming) = {
            // What the link spawns (its connections) runs on the cue thread.
            let _on = cues.as_ref().map(|h| h.enter());
            mqtt::start_link(settings, config.mqtt.connect, cancel.child_token(), &tasks)
        };
        // A lost broker's undelivered commands go out on another one: their
        // replies are expected there too.
        let moved = feedback.clone();
        mqtt.on_move(move |from, to| moved.moved(from, to));

        let (live, live_rx) = watch::channel(Live::of(&config));
        let live = Arc::new(live);
        let stops = Arc::new(StopGate::default());
        let round = sink::SafeRound::default();
        let (required_tx, required_rx) = tokio::sync::mpsc::unbounded_channel();
        registry.set_broker_names(config.mqtt.brokers.iter().map(|b| b.addr()).collect());
        let sink = Arc::new(RoomSink {
            mqtt: mqtt.clone(),
            registry: registry.clone(),
            outputs: outputs.clone(),
            stops: stops.clone(),
            feedback: feedback.clone(),
            media: media.clone(),
            topics: topics.clone(),
            live: live_rx.clone(),
            max_age: config.mqtt.message_max_age,
            safe: Arc::new(config.devices.safe.clone()),
            round: round.clone(),
            required: required_tx,
            tasks: tasks.clone(),
            cancel: cancel.clone(),
        });
        let scenes = SceneController::new_on(
            scenes,
            sink.clone(),
            events.clone(),
            tasks.clone(),
            cues.clone(),
        );
        let commands = CommandRunner::new(
            scenes.clone(),
            sink,
            events.clone(),
            tasks.clone(),
            cancel.child_token(),
        );
        let schedule = match (&config.schedule, role) {
            (Some(plan), Role::Daemon) => Some(ScheduleHandle::new(
                plan.clone(),
                Wall::system(),
                Some(config.state_dir.join("schedule.json")),
            )),
            _ => None,
        };
        // Subscribed before any scene can start, so no start is missed.
        let show_log = (role == Role::Daemon).then(|| {
            let log = ShowLog::new(
                config.state_dir.join("show.log"),
                showlog::DEFAULT_MAX_BYTES,
            );
            tasks.spawn(log.clone().run(events.subscribe(), cancel.clone()));
            log
        });

        let accounts = Accounts::new(AccountsConfig::from_web(&config.web), events.clone());
        let studio = Arc::new(crate::studio::SceneStore::new(
            &config.scenes.dir,
            &config.state_dir,
        ));

        tasks.spawn(feedback.clone().run(cancel.clone()));
        tasks.spawn(registry.clone().watch_stale(cancel.clone()));

        tasks.spawn(media_ends_to_scenes(
            media_ends,
            scenes.clone(),
            cancel.clone(),
        ));
        tasks.spawn(connection_to_bus(
            mqtt.clone(),
            events.clone(),
            cancel.clone(),
        ));

        let estop = safety::load_latch(&config);
        let library = Arc::new(crate::media::library::Library::new(
            &config.media,
            &config.state_dir,
        ));
        let room = Room {
            config,
            events,
            mqtt,
            registry,
            feedback,
            outputs,
            media,
            scenes,
            commands,
            schedule,
            show_log,
            accounts,
            studio,
            library,
            started: unix_now(),
            estop,
            round,
            starts: Arc::default(),
            manual_channels: Arc::default(),
            live,
            feedback_hint: Arc::default(),
            command_log: Arc::new(parking_lot::Mutex::new(crate::ratelog::RateLog::new(
                crate::ratelog::LogLimit::default(),
            ))),
            reloads: Arc::default(),
            control_refused: Arc::default(),
            stops,
            role,
            state_stop: cancel.child_token(),
            restart: CancellationToken::new(),
            cancel,
            tasks,
        };
        room.spawn(room.clone().stop_on_required(required_rx));
        room.spawn_edges(events_rx, incoming, live_rx, cues.as_ref());
        room.know_outputs();
        room
    }

    /// The tasks that need the whole room: the retained-state publisher
    /// (`events_rx` was subscribed before any task ran, so no change is
    /// missed), the feedback doctor, and the edges inside the process, the
    /// MQTT router and the scheduler, which act through the front door.
    /// The router runs beside the connections it reads from (the cue
    /// thread when there is one): a message then reaches it without waking
    /// another thread, which cost more than routing it.
    fn spawn_edges(
        &self,
        events_rx: tokio::sync::broadcast::Receiver<Event>,
        incoming: tokio::sync::mpsc::Receiver<mqtt::InMessage>,
        live: watch::Receiver<Live>,
        cues: Option<&tokio::runtime::Handle>,
    ) {
        if self.role == Role::Daemon {
            self.tasks.spawn(self.clone().publish_state_loop(events_rx));
        }
        let rx = self.events.subscribe();
        self.tasks.spawn(self.clone().feedback_doctor(rx));
        let front = self.clone();
        let apply: Apply = Arc::new(move |origin, command| front.apply(origin, command));
        let mode = match self.role {
            Role::Daemon => RouterMode::Daemon,
            Role::Player => RouterMode::Observer,
        };
        let router = Router::new(
            &self.config,
            mode,
            self.registry.clone(),
            self.feedback.clone(),
            self.scenes.clone(),
            live,
            apply,
        )
        .counting_refusals(self.control_refused.clone());
        let router = match self.mqtt.connect() {
            crate::config::Connect::EveryBroker => router.dropping_copies(),
            crate::config::Connect::OneAtATime => router,
        };
        let routing = router.run(incoming, self.cancel.clone());
        match cues {
            Some(cues) => drop(self.tasks.spawn_on(routing, cues)),
            None => drop(self.tasks.spawn(routing)),
        }
        if let Some(s) = &self.schedule {
            let shows = command::ScheduledShows(self.clone());
            self.tasks.spawn(s.clone().run(shows, self.cancel.clone()));
        }
    }

    /// Graceful stop: scene end sequence, `offline`, flush, tasks.
    pub async fn shutdown(&self, role: Role) {
        // No command step goes out after the farewell.
        self.commands.cancel_all();
        if let Some(name) = self.scenes.stop(EndReason::Shutdown).await {
            info!(target: "daemon", "Stopped scene {name} for shutdown");
        }
        if role == Role::Daemon {
            let topics = self.config.topics();
            self.state_stop.cancel();
            // The last word on the state topic: not a stale CONNECTED.
            self.publish_state(&RoomState {
                connection: ConnectionState::Disconnected.as_str().to_string(),
                broker: None,
                scene: None,
                ..self.state()
            });
            let _ = self.mqtt.publish_everywhere(
                topics.daemon_status(),
                "offline",
                PublishOptions::retained_state(),
            );
        }
        let left = self.mqtt.close(SHUTDOWN_FLUSH).await;
        if left > 0 {
            warn!(target: "mqtt", "{left} message(s) could not be delivered before shutdown");
        }
        self.cancel.cancel();
        self.tasks.close();
        if tokio::time::timeout(TASKS_STOP, self.tasks.wait())
            .await
            .is_err()
        {
            warn!(
                target: "daemon",
                "{} task(s) did not stop within {TASKS_STOP:?}",
                self.tasks.len()
            );
        }
    }

    /// Scene files that did not load, and why (for healthz and the
    /// dashboard).
    pub fn problems(&self) -> Vec<String> {
        self.live.borrow().problems.clone()
    }

    /// Replaces the list of load problems (those found at start).
    pub fn set_problems(&self, problems: Vec<String>) {
        self.live.send_modify(|l| l.problems = problems);
    }

    /// `feedback.timeout` as it is now (a reload may change it).
    pub(crate) fn cue_timeout(&self) -> Duration {
        self.live.borrow().cue_timeout
    }

    /// The reloadable snapshot as it is now.
    pub(crate) fn live(&self) -> watch::Ref<'_, Live> {
        self.live.borrow()
    }

    /// Repeated `ROOM/STOP`s dropped (a stop flood).
    pub fn stops_coalesced(&self) -> u64 {
        self.stops.dropped()
    }

    /// Cancelled when a restart was asked: the daemon's loop then stops the
    /// room and exits with [`crate::system::RESTART_EXIT_CODE`].
    pub fn restart_token(&self) -> CancellationToken {
        self.restart.clone()
    }

    /// The museum's time zone: the schedule's when there is one, else the
    /// Pi's. Days in the show log's counts and statistics are its days.
    pub fn zone(&self) -> jiff::tz::TimeZone {
        self.schedule
            .as_ref()
            .map(|h| h.schedule().tz.clone())
            .unwrap_or_else(jiff::tz::TimeZone::system)
    }

    /// A token that is cancelled when the room shuts down.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Runs `task` as part of the room: it is waited for at shutdown and
    /// must end when [`Room::cancel_token`] fires.
    pub fn spawn<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(task);
    }
}

/// The MQTT client's settings for a room in `role`: its subscriptions, and
/// for the daemon the retained `online` / `offline` status (birth and last
/// will) and what it clears when it leaves a broker for another.
fn mqtt_settings(
    config: &Config,
    scenes: &SceneSet,
    feedback: &FeedbackTracker,
    role: Role,
) -> MqttSettings {
    let topics = config.topics();
    let mut settings = MqttSettings::from_config(&config.mqtt);
    settings.subscriptions = subscriptions(config, scenes, feedback, role);
    if role == Role::Daemon {
        settings.will = Some(OwnMessage::retained(topics.daemon_status(), "offline"));
        settings.birth = Some(OwnMessage::retained(topics.daemon_status(), "online"));
        settings.farewell = vec![
            OwnMessage::retained(topics.daemon_status(), ""),
            OwnMessage::retained(topics.daemon_state(), ""),
        ];
    } else {
        settings.client_id = format!("{}-play-{}", settings.client_id, std::process::id());
    }
    settings
}

/// Media ends drive `audioEnd` / `videoEnd` transitions.
async fn media_ends_to_scenes(
    mut ends: tokio::sync::mpsc::UnboundedReceiver<MediaEnd>,
    scenes: SceneController,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            e = ends.recv() => match e {
                Some(MediaEnd::Audio(f)) => scenes.input(SceneInput::AudioEnd(f)),
                Some(MediaEnd::Video(f)) => scenes.input(SceneInput::VideoEnd(f)),
                None => return,
            },
        }
    }
}

/// Connection changes onto the bus.
async fn connection_to_bus(mqtt: Link, events: EventBus, cancel: CancellationToken) {
    let mut w = mqtt.watch();
    events.publish(Event::Connection(w.borrow_and_update().clone()));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            r = w.changed() => {
                if r.is_err() { return; }
                let st = w.borrow_and_update().clone();
                events.publish(Event::Connection(st));
            }
        }
    }
}

/// Every filter a room subscribes to.
pub fn subscriptions(
    config: &Config,
    scenes: &SceneSet,
    feedback: &FeedbackTracker,
    role: Role,
) -> Vec<String> {
    let topics = config.topics();
    let mut subs = vec![
        Topics::DEVICE_STATUS_FILTER.to_string(),
        Topics::DEVICE_CHANNELS_FILTER.to_string(),
        Topics::STATUS_FILTER.to_string(),
    ];
    for (_, a) in scenes.every_action() {
        if a.feedback {
            subs.push(feedback.register(&a.topic));
            subs.extend(feedback.register_elsewhere(&a.topic));
        }
    }
    for s in scenes.iter() {
        subs.extend(s.event_topics());
    }
    if role == Role::Daemon {
        subs.push(topics.scene_start());
        subs.push(topics.scene_stop());
        subs.push(topics.estop());
        subs.extend(config.estop.topic.clone());
        subs.push(topics.compat_scene());
        subs.push(topics.compat_start_scene());
        subs.push(topics.command_run());
        subs.push(topics.schedule_control());
        subs.extend(config.triggers.iter().map(|t| t.topic.clone()));
    }
    crate::topic::without_overlaps(subs)
}
