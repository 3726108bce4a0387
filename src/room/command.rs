//! The room's one front door: every way of acting on a room is a
//! [`Command`] with the [`Origin`] that asked, applied by [`Room::apply`].
//! The edges (HTTP, the MQTT router, the schedule, the CLI) build a command
//! and say who they are; what each command does, in which order, and how
//! it is logged is written once, here.

use std::future::Future;

use futures::FutureExt;
use std::pin::Pin;

use super::studio::{SceneChange, SceneChanged};
use super::{ReloadReport, Room};
use crate::access::Role;
use crate::accounts::{AccountChange, AccountReply};
use crate::diag::Diagnostics;
use crate::events::{ActionEvent, Event, FeedbackRecord};
use crate::media::{AudioCommand, VideoCommand};
use crate::origin::Origin;
use crate::ratelog;
use crate::scene::EndReason;
use crate::schedule::{Refused, SaveError, ScheduleView, Shows};

/// Something to do to a room.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Start this scene (never two at once).
    StartScene(String),
    /// Start `scenes.default`, or the only scene there is.
    StartDefaultScene,
    /// Stop — all off: the running scene ends with its end sequence,
    /// running command files are cancelled; with nothing running,
    /// everything is switched off anyway (the panic button).
    Stop,
    /// The emergency stop: latches (saved first), then stops like
    /// [`Command::Stop`]; nothing starts until [`Command::ResetEstop`].
    Estop,
    /// Frees the E-stop latch (a technician, deliberately).
    ResetEstop,
    /// Run this command file.
    RunCommand(String),
    /// Pause or resume the opening-hours schedule (kept across restarts).
    Schedule(ScheduleAction),
    /// Send `message` on `topic` (a channel the scenes use) by hand,
    /// feedback-tracked like a cue.
    Send {
        /// A channel the scenes or command files use.
        topic: String,
        /// What to send.
        message: String,
    },
    /// Resend a device's last command and wait for its reply.
    TestDevice(String),
    /// Set the master volume.
    Volume(Volume),
    /// Stop one media player.
    StopMedia(Player),
    /// Read the config and the scenes again.
    Reload,
    /// Change the accounts (users and API tokens).
    Account(AccountChange),
    /// Save, revert or delete a scene file (the studio).
    Scene(SceneChange),
    /// Stop the daemon for systemd to start it again (refused when not
    /// run by systemd: nobody would).
    Restart,
    /// A video command (`PLAY_VIDEO:clip.mp4`, `STOP_VIDEO`) previewing a
    /// clip on the Pi's screen; refused while a scene runs.
    PreviewClip(String),
    /// Add or remove a sound or clip file (the media library).
    Media(super::MediaChange),
    /// An audio command (`PLAY:chime.wav`, `STOP`) from a studio preview
    /// with its sounds on the Pi; refused while a scene runs.
    PreviewSound(String),
}

impl Command {
    /// The lowest role that may do it (see [`crate::access::Role`]).
    pub fn needs(&self) -> Role {
        match self {
            Command::StartScene(_)
            | Command::StartDefaultScene
            | Command::Stop
            | Command::Estop
            | Command::RunCommand(_)
            | Command::Schedule(_) => Role::Operator,
            Command::Send { .. }
            | Command::TestDevice(_)
            | Command::Volume(_)
            | Command::StopMedia(_)
            | Command::Reload
            | Command::ResetEstop
            | Command::Scene(_)
            | Command::Media(_)
            | Command::PreviewClip(_)
            | Command::PreviewSound(_) => Role::Technician,
            Command::Account(_) | Command::Restart => Role::Admin,
        }
    }
}

impl std::fmt::Display for Command {
    /// The command in words, for log lines (`MQTT roomctl/room1/scene/stop:
    /// stop — all off`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let short = |s: &str| s.chars().take(64).collect::<String>();
        match self {
            Command::StartScene(n) => write!(f, "start scene {:?}", short(n)),
            Command::StartDefaultScene => f.write_str("start the default scene"),
            Command::Stop => f.write_str("stop — all off"),
            Command::Estop => f.write_str("E-stop"),
            Command::ResetEstop => f.write_str("reset the E-stop"),
            Command::RunCommand(n) => write!(f, "run command {:?}", short(n)),
            Command::Schedule(ScheduleAction::Pause) => f.write_str("pause the schedule"),
            Command::Schedule(ScheduleAction::Resume) => f.write_str("resume the schedule"),
            Command::Send { topic, message } => {
                write!(f, "send {} = {:?}", short(topic), short(message))
            }
            Command::TestDevice(id) => write!(f, "test device {:?}", short(id)),
            Command::Volume(v) => write!(f, "volume {:.2}", v.get()),
            Command::StopMedia(Player::Audio) => f.write_str("stop audio"),
            Command::StopMedia(Player::Video) => f.write_str("stop video"),
            Command::Reload => f.write_str("reload"),
            Command::Account(c) => write!(f, "{c}"),
            Command::Scene(c) => write!(f, "{c}"),
            Command::PreviewSound(m) => write!(f, "preview sound {:?}", short(m)),
            Command::Media(c) => write!(f, "{c}"),
            Command::PreviewClip(m) => write!(f, "preview clip {:?}", short(m)),
            Command::Restart => f.write_str("restart roomctl"),
        }
    }
}

/// What [`Command::Schedule`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleAction {
    /// Planned starts are skipped until resumed.
    Pause,
    /// Planned starts happen again.
    Resume,
}

impl std::str::FromStr for ScheduleAction {
    type Err = RoomError;

    /// `pause` or `resume`, in any case (not trimmed: names are exact).
    fn from_str(s: &str) -> Result<Self, RoomError> {
        match s.to_ascii_lowercase().as_str() {
            "pause" => Ok(ScheduleAction::Pause),
            "resume" => Ok(ScheduleAction::Resume),
            _ => Err(RoomError::NotFound(format!(
                "no schedule action `{}` (pause or resume)",
                s.chars().take(32).collect::<String>()
            ))),
        }
    }
}

/// A master volume, 0 (silent) to 1 (full).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Volume(f64);

impl Volume {
    /// `v` if it is between 0 and 1 (`-0` is not).
    pub fn new(v: f64) -> Result<Volume, RoomError> {
        if (0.0..=1.0).contains(&v) && v.is_sign_positive() {
            Ok(Volume(v))
        } else {
            Err(RoomError::BadRequest(format!(
                "volume {v} is not between 0 and 1"
            )))
        }
    }

    /// The value, as it was given.
    pub fn get(self) -> f64 {
        self.0
    }
}

/// One of the room's media players.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Player {
    /// rodio.
    Audio,
    /// mpv.
    Video,
}

impl std::str::FromStr for Player {
    type Err = RoomError;

    fn from_str(s: &str) -> Result<Self, RoomError> {
        match s {
            "audio" => Ok(Player::Audio),
            "video" => Ok(Player::Video),
            _ => Err(RoomError::NotFound("audio or video".into())),
        }
    }
}

/// What a command did.
#[derive(Debug)]
pub enum Reply {
    /// The scene started.
    Started {
        /// Its name.
        scene: String,
    },
    /// Stop — all off is done: the scene's end sequence has run.
    Stopped {
        /// The scene that was stopped, if one ran.
        scene: Option<String>,
        /// How many command files were cancelled.
        commands_cancelled: usize,
        /// How each board took its safe state.
        safe: super::safety::SafeReport,
    },
    /// The E-stop latch is free; what it was.
    EstopReset {
        /// The press it held, if it was latched.
        was: Option<crate::estop::Latched>,
    },
    /// The command file runs.
    CommandStarted {
        /// Its name.
        name: String,
    },
    /// The schedule after the change.
    Schedule(Box<ScheduleView>),
    /// The message is on its way; its result comes as a feedback event.
    Sent {
        /// The feedback record's id.
        id: u64,
        /// Where the reply is expected.
        feedback_topic: String,
    },
    /// The device answered (or did not, within the timeout).
    Tested(Box<FeedbackRecord>),
    /// The master volume is set.
    Volume(Volume),
    /// The player is stopped.
    MediaStopped(Player),
    /// A preview's sound (or clip) command was given to its player.
    SoundPreviewed,
    /// The daemon stops now, for systemd to start it again.
    Restarting,
    /// A media file was added, replaced or removed.
    Media(crate::media::library::MediaFile),
    /// The reload is done.
    Reloaded(Box<ReloadReport>),
    /// The accounts changed.
    Account(AccountReply),
    /// The scene file changed and the scenes were reloaded.
    SceneChanged(Box<SceneChanged>),
}

/// Why a command was refused. Reads as a sentence; the HTTP edge maps
/// each kind to a status once.
#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    /// There is no such scene, command, device, channel or schedule.
    #[error("{0}")]
    NotFound(String),
    /// It cannot be done now (a scene is running, the outbox is full...).
    #[error("{0}")]
    Conflict(String),
    /// The E-stop is latched: nothing starts until it is reset.
    #[error("{0}")]
    Latched(String),
    /// The request itself is wrong.
    #[error("{0}")]
    BadRequest(String),
    /// The schedule changed now but could not be saved.
    #[error("{0}")]
    NotSaved(String),
    /// The config does not load; the running config stays.
    #[error("the config does not load; the running config stays")]
    Reload(Diagnostics),
    /// The origin's role does not allow it.
    #[error("{0}")]
    Forbidden(String),
    /// Saved nowhere: `users.yaml` could not be read or written.
    #[error("{0}")]
    Failed(String),
    /// The text does not load; nothing was written.
    #[error("the scene has {} error(s); nothing was saved", errors.len())]
    Invalid {
        /// Why, with positions.
        errors: Diagnostics,
        /// What else the check found.
        warnings: Diagnostics,
    },
}

/// The rest of a command's work (see [`Room::apply`]).
pub type Completion = Pin<Box<dyn Future<Output = Result<Reply, RoomError>> + Send>>;

fn done(r: Result<Reply, RoomError>) -> Completion {
    Box::pin(std::future::ready(r))
}

impl Room {
    /// Does `command` for `origin`. What switches something (start, stop,
    /// run, schedule, send, volume, media stop) has happened when this
    /// returns, so commands from one edge take effect in the order they
    /// were applied; the returned future finishes the rest (a stopped
    /// scene's end sequence, a device's answer, a reload) and may be
    /// awaited, spawned or dropped.
    ///
    /// A command the origin's role does not allow is refused
    /// ([`RoomError::Forbidden`]); Stop — all off is allowed to everyone
    /// when `web.open_stop` is set. Every command, done or refused, is an
    /// [`ActionEvent`] (the show log's audit trail).
    pub fn apply(&self, origin: Origin, command: Command) -> Completion {
        // One line per command, whoever asked, bounded against a flood.
        ratelog!(
            self.command_log,
            info,
            "daemon",
            "commands",
            "{origin}: {command}"
        );
        let what = command.to_string();
        if let Err(e) = self
            .allowed(&origin, &command)
            .and_then(|()| self.refuse_if_latched(&command))
        {
            self.audit(&origin, what, Some(e.to_string()));
            return done(Err(e));
        }
        let start = matches!(command, Command::StartScene(_) | Command::StartDefaultScene);
        let mut completion = self.act(origin.clone(), command);
        match (&mut completion).now_or_never() {
            // A scene that started is in the show log as its start, with
            // its origin: no second record.
            Some(Ok(r)) if start => done(Ok(r)),
            Some(r) => {
                self.audit(&origin, what, r.as_ref().err().map(ToString::to_string));
                done(r)
            }
            None => {
                self.audit(&origin, what, None);
                completion
            }
        }
    }

    fn allowed(&self, origin: &Origin, command: &Command) -> Result<(), RoomError> {
        let (has, needs) = (origin.role(), command.needs());
        let panic = matches!(command, Command::Stop | Command::Estop);
        if has >= needs || (panic && self.config.web.open_stop) {
            return Ok(());
        }
        let who = origin.who().unwrap_or_else(|| "anonymous".into());
        Err(RoomError::Forbidden(format!(
            "{who} ({has}) may not {command}: that needs the {needs} role"
        )))
    }

    fn audit(&self, origin: &Origin, what: String, refused: Option<String>) {
        self.events.publish(Event::Action(ActionEvent {
            t: crate::mqtt::unix_now(),
            origin: origin.to_string(),
            who: origin.who(),
            what,
            refused,
        }));
    }

    fn act(&self, origin: Origin, command: Command) -> Completion {
        match command {
            Command::StartScene(name) => done(self.start_scene(&name, origin)),
            Command::StartDefaultScene => done(
                self.default_scene()
                    .ok_or_else(|| {
                        RoomError::NotFound(
                            "no scenes.default is configured and there is more than one scene"
                                .into(),
                        )
                    })
                    .and_then(|name| self.start_scene(&name, origin)),
            ),
            Command::Stop | Command::Estop => {
                // The dashboard's panic latches too with estop.panic_latches.
                let latch = command == Command::Estop
                    || (self.config.estop.panic_latches
                        && matches!(origin, Origin::Dashboard { .. }));
                let reason = if latch {
                    let _ = self.press_estop(&origin);
                    EndReason::EStop
                } else {
                    EndReason::Stopped
                };
                let commands_cancelled = self.commands.cancel_all();
                let scene = self.scenes.request_stop(reason);
                let room = self.clone();
                Box::pin(async move {
                    room.scenes.wait_idle().await;
                    let safe = room.safe_report(scene.as_deref()).await;
                    Ok(Reply::Stopped {
                        scene,
                        commands_cancelled,
                        safe,
                    })
                })
            }
            Command::ResetEstop => done(self.reset_estop(&origin)),
            Command::RunCommand(name) => done(
                self.commands
                    .run(&name, origin)
                    .map(|()| Reply::CommandStarted { name: name.clone() })
                    .map_err(RoomError::from),
            ),
            Command::Schedule(action) => done(self.schedule_action(action)),
            Command::Send { topic, message } => done(
                self.send_manual(&topic, &message)
                    .map(|t| Reply::Sent {
                        id: t.id,
                        feedback_topic: t.feedback_topic,
                    })
                    .map_err(RoomError::from),
            ),
            Command::TestDevice(id) => {
                let room = self.clone();
                Box::pin(async move {
                    let r = room.test_device(&id).await?;
                    Ok(Reply::Tested(Box::new(r)))
                })
            }
            Command::Volume(v) => {
                self.media.audio(AudioCommand::Volume {
                    volume: v.get() as f32,
                });
                done(Ok(Reply::Volume(v)))
            }
            Command::StopMedia(p) => {
                match p {
                    Player::Audio => self.media.audio(AudioCommand::Stop { file: None }),
                    Player::Video => self.media.video(VideoCommand::Stop),
                }
                done(Ok(Reply::MediaStopped(p)))
            }
            Command::PreviewSound(message) => done(
                self.preview_media(Player::Audio, &message)
                    .map(|()| Reply::SoundPreviewed),
            ),
            Command::Restart => done(if crate::system::under_systemd() {
                tracing::warn!(target: "daemon", "Restart asked by {origin}: stopping for systemd to start roomctl again");
                self.restart.cancel();
                Ok(Reply::Restarting)
            } else {
                Err(RoomError::Conflict(
                    "roomctl is not run by systemd here: nobody would start it again, so it keeps running".into(),
                ))
            }),
            Command::PreviewClip(message) => done(
                self.preview_media(Player::Video, &message)
                    .map(|()| Reply::SoundPreviewed),
            ),
            Command::Media(change) => {
                let room = self.clone();
                Box::pin(async move {
                    let file = tokio::task::spawn_blocking(move || room.change_media(change))
                        .await
                        .map_err(|e| {
                            RoomError::Failed(format!("the media change failed: {e}"))
                        })??;
                    Ok(Reply::Media(file))
                })
            }
            Command::Account(change) => {
                let accounts = self.accounts.clone();
                Box::pin(async move { Ok(Reply::Account(accounts.change(change).await?)) })
            }
            Command::Scene(change) => {
                let room = self.clone();
                let author = origin.who().unwrap_or_else(|| origin.to_string());
                Box::pin(async move {
                    let done = room.change_scene(change, author).await?;
                    Ok(Reply::SceneChanged(Box::new(done)))
                })
            }
            Command::Reload => {
                let room = self.clone();
                Box::pin(async move {
                    room.reload_coalesced()
                        .await
                        .map(|r| Reply::Reloaded(Box::new(r)))
                        .map_err(RoomError::Reload)
                })
            }
        }
    }

    fn start_scene(&self, name: &str, origin: Origin) -> Result<Reply, RoomError> {
        // Names are looked up in the loaded scene list, never used as
        // paths, and exact (` intro` is not `intro`).
        let trigger = self.start_gate(name, &origin)?;
        self.scenes.start_from(name, origin)?;
        self.started(trigger);
        Ok(Reply::Started {
            scene: name.to_string(),
        })
    }

    /// `scenes.default`, or with exactly one scene, that one.
    pub(super) fn default_scene(&self) -> Option<String> {
        if let Some(d) = self.live().rules.default_scene.clone() {
            return Some(d);
        }
        let scenes = self.scenes.scenes();
        let mut names = scenes.names();
        match (names.next(), names.next()) {
            (Some(n), None) => Some(n.to_string()),
            _ => None,
        }
    }

    fn schedule_action(&self, action: ScheduleAction) -> Result<Reply, RoomError> {
        let s = self
            .schedule
            .as_ref()
            .ok_or_else(|| RoomError::NotFound("no schedule is configured".into()))?;
        let (pause, word) = match action {
            ScheduleAction::Pause => (true, "paused"),
            ScheduleAction::Resume => (false, "resumed"),
        };
        // Holds in memory even when it cannot be saved: the caller is told
        // it will not survive a restart (the schedule logs it and retries).
        s.set_paused(pause).map_err(|e: SaveError| {
            RoomError::NotSaved(format!(
                "{word} now, but not saved: {e}. It holds until the daemon restarts; saving is retried every 10 s"
            ))
        })?;
        Ok(Reply::Schedule(Box::new(s.view(10))))
    }
}

/// The schedule's view of the room: its starts and its closing-time stop
/// go through [`Room::apply`] like every other edge's.
pub(super) struct ScheduledShows(pub(super) Room);

impl Shows for ScheduledShows {
    fn running(&self) -> Option<String> {
        self.0.scenes.status().map(|s| s.name)
    }

    async fn stop(&self, what: &'static str) {
        let _ = self.0.apply(Origin::Schedule { what }, Command::Stop).await;
    }

    fn start(&self, scene: &str, what: &'static str) -> Result<(), Refused> {
        let start = self.0.apply(
            Origin::Schedule { what },
            Command::StartScene(scene.to_string()),
        );
        // A start is decided when apply returns: its completion is ready.
        match start.now_or_never() {
            Some(Ok(_)) => Ok(()),
            Some(Err(RoomError::Conflict(_))) => Err(Refused::Busy(
                self.running().unwrap_or_else(|| "another".into()),
            )),
            Some(Err(e)) => Err(Refused::Failed(e.to_string())),
            None => Err(Refused::Failed("the start did not finish at once".into())),
        }
    }
}
