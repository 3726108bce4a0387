//! Checking the raw config and building the typed one: every problem a
//! `file:line:col` diagnostic, every default in one place.

mod mqtt;
mod schedule;

use super::raw::*;
use super::*;

/// Safe-state commands one board may have.
const MAX_SAFE: usize = 32;

pub(super) struct Validator<'a> {
    pub(super) file: &'a Path,
    pub(super) base: &'a Path,
    pub(super) env: &'a dyn Fn(&str) -> Option<String>,
    pub(super) policy: EnvPolicy,
    pub(super) diags: Diagnostics,
    pub(super) warnings: Diagnostics,
    /// Where `mqtt:` is written (1:1 without one), for what it lacks.
    pub(super) mqtt_pos: Pos,
}

impl Validator<'_> {
    pub(super) fn err(&mut self, pos: Pos, msg: impl Into<String>) {
        self.diags.push(Diagnostic::new(self.file, pos, msg));
    }

    pub(super) fn warn(&mut self, pos: Pos, msg: impl Into<String>) {
        self.warnings.push(Diagnostic::new(
            self.file,
            pos,
            format!("warning: {}", msg.into()),
        ));
    }

    /// `${VAR}` / `${VAR:-default}` from the environment.
    pub(super) fn expand(&mut self, s: &S) -> String {
        match expand_env(&s.value, self.env) {
            Ok(v) => v,
            Err(ValueError::Unset(name)) if self.policy == EnvPolicy::Optional => {
                self.warn(
                    Pos::of(s),
                    format!("environment variable `{name}` is not set here; the daemon will not start without it (under systemd it comes from /etc/roomctl/roomctl.env)"),
                );
                // The rest of the value still counts (`${A}` alone: empty).
                let lenient = |k: &str| (self.env)(k).or_else(|| Some(String::new()));
                expand_env(&s.value, &lenient).unwrap_or_default()
            }
            Err(e) => {
                self.err(Pos::of(s), e.to_string());
                String::new()
            }
        }
    }

    pub(super) fn path(&mut self, s: &S) -> PathBuf {
        let p = PathBuf::from(self.expand(s));
        if p.is_absolute() {
            p
        } else {
            self.base.join(p)
        }
    }

    /// A duration setting, checked against its documented range.
    pub(super) fn dur(&mut self, d: &Option<Spanned<Dur>>, r: DurRange) -> Duration {
        match d {
            None => r.default,
            Some(s) if !r.contains(s.value.0) => {
                self.err(Pos::of(s), r.message(r.name, s.value.0));
                r.default
            }
            Some(s) => s.value.0,
        }
    }

    /// A whole-number setting, checked against its range.
    pub(super) fn count<T>(
        &mut self,
        v: &Option<Spanned<T>>,
        name: &str,
        default: T,
        lo: T,
        hi: T,
    ) -> T
    where
        T: Copy + PartialOrd + fmt::Display,
    {
        match v {
            None => default,
            Some(s) if s.value < lo || s.value > hi => {
                self.err(
                    Pos::of(s),
                    format!("{name} {} is outside {lo}..{hi}", s.value),
                );
                default
            }
            Some(s) => s.value,
        }
    }

    pub(super) fn config(mut self, raw: RawConfig) -> Result<Config, Diagnostics> {
        let room = self.expand(&raw.room);
        if !topic::is_plain_level(&room) || room.trim() != room {
            self.err(
                Pos::of(&raw.room),
                format!("room `{room}` must be a non-empty name without '/', '+', '#' or spaces"),
            );
        } else if !room.chars().any(|c| c.is_alphabetic()) {
            self.err(
                Pos::of(&raw.room),
                format!("room `{room}` is a number, not a name: it names the room's topics and client id (write e.g. room{room})"),
            );
        }
        let mqtt = self.mqtt(raw.mqtt, &room);
        let feedback = self.feedback(raw.feedback);
        let devices = self.devices(&raw.devices);
        let scenes = ScenesConfig {
            dir: match &raw.scenes.dir {
                Some(d) => self.path(d),
                None => self.base.join("scenes"),
            },
            default: raw.scenes.default.as_ref().map(|s| self.expand(s)),
            default_pos: raw.scenes.default.as_ref().map(Pos::of).unwrap_or_default(),
            min_start_interval: self
                .dur(&raw.scenes.min_start_interval, ranges::MIN_START_INTERVAL),
        };
        let media = self.media(raw.media);
        let web = self.web(raw.web);
        let mut triggers = Vec::new();
        for t in raw.triggers {
            if let Err(e) = topic::validate_filter(&t.topic.value) {
                self.err(Pos::of(&t.topic), format!("trigger topic: {e}"));
            }
            triggers.push(TriggerConfig {
                topic: t.topic.value.clone(),
                payload: t.payload,
                scene: t.scene.value.clone(),
                pos: Pos::of(&t.scene),
                topic_pos: Pos::of(&t.topic),
                min_interval: self.dur(&t.min_interval, ranges::TRIGGER_MIN_INTERVAL),
            });
        }
        let control = self.control(&raw.control, &room);
        let estop = self.estop(&raw.estop);
        let schedule = raw.schedule.map(|r| self.schedule(r));
        let state_dir = match &raw.state_dir {
            Some(d) => self.path(d),
            None => std::env::var_os("STATE_DIRECTORY")
                .filter(|v| !v.is_empty())
                // systemd may list several, separated by ':'.
                .and_then(|v| std::env::split_paths(&v).next())
                .unwrap_or_else(|| self.base.join("state")),
        };
        let Validator {
            file,
            diags,
            warnings,
            ..
        } = self;
        diags.into_result(Config {
            schedule,
            state_dir,
            file: file.to_path_buf(),
            in_memory: false,
            room,
            mqtt,
            feedback,
            devices,
            scenes,
            media,
            web,
            triggers,
            control,
            estop,
            warnings,
        })
    }

    /// `estop:`: a plain topic (no wildcards), a payload, the panic switch.
    fn estop(&mut self, e: &RawEstop) -> EstopConfig {
        let topic = e.topic.as_ref().map(|t| {
            let v = self.expand(t);
            if let Err(why) = topic::validate_name(&v) {
                self.err(Pos::of(t), format!("estop.topic: {why}"));
            }
            v
        });
        EstopConfig {
            topic,
            payload: e.payload.clone(),
            panic_latches: e.panic_latches.unwrap_or(false),
        }
    }

    /// `control:`: the key (at least 16 characters), the unsigned topics
    /// (each one of the room's control topics).
    fn control(&mut self, c: &RawControl, room: &str) -> ControlConfig {
        let key = c
            .key
            .as_ref()
            .map(|k| (Pos::of(k), self.expand(k)))
            .filter(|(_, k)| !k.is_empty());
        if let Some((pos, k)) = &key
            && k.chars().count() < 16
        {
            self.err(
                *pos,
                "control.key must have at least 16 characters (use e.g. `openssl rand -hex 32`)",
            );
        }
        let t = Topics::new(room);
        let control = [
            t.scene_start(),
            t.scene_stop(),
            t.estop(),
            t.command_run(),
            t.schedule_control(),
            t.compat_scene(),
            t.compat_start_scene(),
        ];
        let mut unsigned = Vec::new();
        for u in &c.unsigned {
            if !control.iter().any(|c| topic::matches(&u.value, c)) {
                self.err(
                    Pos::of(u),
                    format!(
                        "control.unsigned `{}` is none of the room's control topics ({})",
                        u.value,
                        control.join(", ")
                    ),
                );
            }
            unsigned.push(u.value.clone());
        }
        ControlConfig {
            key: key.map(|(_, k)| Secret(k)),
            unsigned,
        }
    }

    pub(super) fn devices(&mut self, d: &RawDevices) -> DevicesConfig {
        let mut known = BTreeMap::new();
        let mut safe = BTreeMap::new();
        let entries: Vec<(&S, &[S], &[RawSafe])> = match d.known.as_ref().map(|k| &k.value) {
            None => Vec::new(),
            Some(RawKnown::List(ids)) => ids.iter().map(|i| (i, &[][..], &[][..])).collect(),
            Some(RawKnown::Map(m)) => m
                .iter()
                .map(|(i, k)| (i, k.channels.as_slice(), k.safe.as_slice()))
                .collect(),
        };
        for (id, topics, safe_list) in entries {
            if !topic::is_plain_level(&id.value) {
                self.err(
                    Pos::of(id),
                    format!(
                        "devices.known: `{}` is not a device id (one topic level, no '/', '+', '#')",
                        id.value
                    ),
                );
                continue;
            }
            let mut channels = Vec::new();
            for t in topics {
                match topic::validate_name(&t.value) {
                    Ok(()) => channels.push(t.value.clone()),
                    Err(e) => self.err(Pos::of(t), format!("devices.known.{}: {e}", id.value)),
                }
            }
            known.insert(id.value.clone(), channels);
            if safe_list.len() > MAX_SAFE {
                self.err(
                    Pos::of(&safe_list[MAX_SAFE].topic),
                    format!(
                        "devices.known.{}.safe: at most {MAX_SAFE} commands",
                        id.value
                    ),
                );
            }
            let mut cmds = Vec::new();
            for s in safe_list.iter().take(MAX_SAFE) {
                if let Err(e) = topic::validate_name(&s.topic.value) {
                    self.err(
                        Pos::of(&s.topic),
                        format!("devices.known.{}.safe: {e}", id.value),
                    );
                } else if s.message.value.is_empty() {
                    self.err(
                        Pos::of(&s.message),
                        format!("devices.known.{}.safe: the message is empty", id.value),
                    );
                } else {
                    cmds.push((s.topic.value.clone(), s.message.value.clone()));
                }
            }
            if !cmds.is_empty() {
                safe.insert(id.value.clone(), cmds);
            }
        }
        let known_only = d.known_only.as_ref().is_some_and(|k| k.value);
        if known_only && known.is_empty() {
            let pos = d.known_only.as_ref().map(Pos::of).unwrap_or_default();
            self.err(
                pos,
                "devices.known_only is true but devices.known lists no device: every device would be ignored",
            );
        }
        DevicesConfig {
            stale_after: self.dur(&d.stale_after, ranges::STALE_AFTER),
            known,
            known_only,
            safe,
        }
    }

    pub(super) fn feedback(&mut self, f: RawFeedback) -> FeedbackConfig {
        let topic = match &f.topic {
            None => FeedbackTopic::default(),
            Some(s) => match FeedbackTopic::new(&s.value) {
                Ok(t) => t,
                Err(e) => {
                    self.err(Pos::of(s), e.to_string());
                    FeedbackTopic::default()
                }
            },
        };
        let local_channels = match &f.local_channels {
            None => vec!["audio".to_string(), "video".to_string()],
            Some(list) => {
                let mut out = Vec::new();
                for c in list {
                    if c.value == "audio" || c.value == "video" {
                        out.push(c.value.clone());
                    } else {
                        self.err(
                            Pos::of(c),
                            format!(
                                "feedback.local_channels: `{}` has no player on the Pi (allowed: audio, video)",
                                c.value
                            ),
                        );
                    }
                }
                out
            }
        };
        FeedbackConfig {
            timeout: self.dur(&f.timeout, ranges::FEEDBACK_TIMEOUT),
            topic,
            local_channels,
            history: self.count(&f.history, "feedback.history", 200, 1, 100_000),
        }
    }

    pub(super) fn media(&mut self, m: RawMedia) -> MediaConfig {
        let video_player = match &m.video_player {
            None => ["mpv", "--fs", "--really-quiet", "{file}"]
                .map(String::from)
                .to_vec(),
            Some(s) if s.value.is_empty() => {
                self.err(Pos::of(s), "media.video_player must name a program");
                Vec::new()
            }
            Some(s) => s.value.clone(),
        };
        MediaConfig {
            dir: match &m.dir {
                Some(d) => self.path(d),
                None => self.base.join("media"),
            },
            audio_dir: m.audio_dir.as_ref().map(|d| self.path(d)),
            video_dir: m.video_dir.as_ref().map(|d| self.path(d)),
            video_player,
            idle_image: m.idle_image.as_ref().map(|p| self.path(p)),
            idle_image_pos: m.idle_image.as_ref().map(Pos::of).unwrap_or_default(),
            audio_fade: self.dur(&m.audio_fade, ranges::AUDIO_FADE),
            audio_enabled: m.audio.unwrap_or(true),
            video_enabled: m.video.unwrap_or(true),
            max_upload: (self.count(&m.max_upload, "media.max_upload", 512, 1, 16_384) as u64)
                << 20,
        }
    }

    pub(super) fn web(&mut self, w: RawWeb) -> WebConfig {
        let listen = match &w.listen {
            None => SocketAddr::from(([0, 0, 0, 0], 8080)),
            Some(s) => {
                let text = self.expand(s);
                match text.parse() {
                    Ok(a) => a,
                    Err(_) => {
                        self.err(
                            Pos::of(s),
                            format!("web.listen `{text}` is not an address like 0.0.0.0:8080"),
                        );
                        SocketAddr::from(([0, 0, 0, 0], 8080))
                    }
                }
            }
        };
        let token = w
            .token
            .as_ref()
            .map(|t| self.expand(t))
            .filter(|t| !t.is_empty())
            .map(Secret);
        let role =
            |v: &mut Self, s: &Option<S>, key: &str, default: Option<Role>| -> Option<Role> {
                let Some(s) = s else { return default };
                if s.value == "none" && key == "web.anonymous" {
                    return None;
                }
                match s.value.parse::<Role>() {
                    Ok(r) => Some(r),
                    Err(e) => {
                        let none = if key == "web.anonymous" {
                            " or none"
                        } else {
                            ""
                        };
                        v.err(Pos::of(s), format!("{key}: {e}{none}"));
                        default
                    }
                }
            };
        let anonymous = role(self, &w.anonymous, "web.anonymous", Some(Role::Viewer));
        let token_role = role(self, &w.token_role, "web.token_role", Some(Role::Operator))
            .unwrap_or(Role::Operator);
        let users = match &w.users {
            Some(s) => self.path(s),
            None => self.base.join("users.yaml"),
        };
        WebConfig {
            users,
            anonymous,
            token_role,
            session_idle: self.dur(&w.session_idle, ranges::SESSION_IDLE),
            session_max: self.dur(&w.session_max, ranges::SESSION_MAX),
            secure_cookie: w.secure_cookie.unwrap_or(false),
            enabled: w.enabled.unwrap_or(true),
            listen,
            token,
            max_connections: self.count(&w.max_connections, "web.max_connections", 256, 4, 65_536),
            max_sse_clients: self.count(&w.max_sse_clients, "web.max_sse_clients", 32, 1, 1024),
            header_timeout: self.dur(&w.header_timeout, ranges::HEADER_TIMEOUT),
            open_stop: w.open_stop.unwrap_or(true),
        }
    }
}
