//! Building the model from the raw form: every check, every error with its
//! position.

use super::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_saphyr::Spanned;

mod flow;

/// Longer than this in a scene is most likely milliseconds written as
/// seconds (`delay: 20000`): a warning.
const LONG_TIME: Duration = Duration::from_secs(3600);
/// Resends a cue may ask for.
const MAX_RETRIES: u32 = 10;

// ---------------------------------------------------------------------------
// Building the model
// ---------------------------------------------------------------------------

pub(crate) struct Builder<'a> {
    file: &'a Path,
    ctx: &'a SceneContext,
    topics: Topics,
    pub(crate) errors: Diagnostics,
    /// What loads but does not act (also kept on the scene).
    pub(crate) warnings: Diagnostics,
    /// The scene's `required`: what a cue without its own is.
    required: bool,
}

impl<'a> Builder<'a> {
    pub(crate) fn new(file: &'a Path, ctx: &'a SceneContext) -> Self {
        Builder {
            file,
            ctx,
            topics: Topics::new(&ctx.room),
            errors: Diagnostics::default(),
            warnings: Diagnostics::default(),
            required: false,
        }
    }

    pub(crate) fn err(&mut self, pos: Pos, msg: impl Into<String>) {
        self.errors.push(Diagnostic::new(self.file, pos, msg));
    }

    pub(crate) fn warn(&mut self, pos: Pos, msg: impl Into<String>) {
        self.warnings.push(Diagnostic::new(
            self.file,
            pos,
            format!("warning: {}", msg.into()),
        ));
    }

    /// A scene time (`at`, `duration`, `delay`): up to a day.
    pub(crate) fn time(&mut self, d: &Spanned<Dur>, what: &str) -> Duration {
        let r = ranges::SCENE_TIME;
        if r.contains(d.value.0) {
            if d.value.0 > LONG_TIME {
                self.warn(
                    Pos::of(d),
                    format!(
                        "`{what}` is {} ({} h {} min), over an hour: numbers are seconds (write `20s` or `500ms` to be sure)",
                        crate::config::human(d.value.0),
                        d.value.0.as_secs() / 3600,
                        d.value.0.as_secs() % 3600 / 60,
                    ),
                );
            }
            d.value.0
        } else {
            self.err(Pos::of(d), r.message(what, d.value.0));
            r.max
        }
    }

    pub(crate) fn scene(&mut self, raw: RawScene) -> Scene {
        self.required = raw.required.as_ref().is_some_and(|r| r.value);
        let stem = self
            .file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name_src = raw.scene_id.as_ref().or(raw.name.as_ref());
        let name = name_src.map(|s| s.value.trim().to_string()).unwrap_or(stem);
        if !crate::topic::is_plain_level(&name) {
            self.err(
                name_src.map(Pos::of).unwrap_or_default(),
                format!("scene name `{name}` must be non-empty without '/', '+', '#'"),
            );
        }
        let on_stop = raw
            .on_stop
            .as_ref()
            .map(|items| self.actions(items, "on_stop"))
            .unwrap_or_default();

        let (form, initial_state, states, global_events) = match (&raw.actions, &raw.states) {
            (Some(a), Some(_)) => {
                self.err(
                    Pos::of(a),
                    "a scene has either `actions` (simple form) or `states` (state machine), not both",
                );
                (SceneForm::Simple, String::new(), BTreeMap::new(), vec![])
            }
            (None, None) => {
                self.err(
                    Pos { line: 1, col: 1 },
                    "scene has neither `actions` (simple form) nor `states` (state machine)",
                );
                (SceneForm::Simple, String::new(), BTreeMap::new(), vec![])
            }
            (Some(actions), None) => {
                let state = self.simple_state(actions, raw.duration.as_ref());
                let mut states = BTreeMap::new();
                states.insert(SIMPLE_STATE.to_string(), state);
                (SceneForm::Simple, SIMPLE_STATE.to_string(), states, vec![])
            }
            (None, Some(raw_states)) => {
                if let Some(d) = &raw.duration {
                    self.err(
                        Pos::of(d),
                        "`duration` belongs to the simple form; use a timeout transition",
                    );
                }
                let names: Vec<String> = raw_states.value.keys().cloned().collect();
                let mut states = BTreeMap::new();
                for (n, rs) in &raw_states.value {
                    if n != END && n.eq_ignore_ascii_case(END) {
                        // `goto: end` would mean END, and this state never run.
                        self.err(
                            Pos::of(rs),
                            format!("state `{n}` differs from END only in case: name it otherwise, or call it END"),
                        );
                    }
                    let st = self.state(n, rs, &names);
                    states.insert(n.clone(), st);
                }
                let initial = match &raw.initial_state {
                    None => {
                        self.err(
                            Pos::of(raw_states),
                            "state machine scene needs `initialState`",
                        );
                        String::new()
                    }
                    Some(i) if !raw_states.value.contains_key(&i.value) => {
                        self.err(
                            Pos::of(i),
                            format!(
                                "initialState `{}` is not one of the states ({})",
                                i.value,
                                names.join(", ")
                            ),
                        );
                        String::new()
                    }
                    Some(i) => i.value.clone(),
                };
                if raw_states.value.is_empty() {
                    self.err(Pos::of(raw_states), "`states` is empty");
                }
                let mut global = Vec::new();
                for t in raw.global_events.iter().flatten() {
                    if let Some(tr) = self.transition(t, &names) {
                        if tr.trigger == Trigger::Always {
                            self.err(
                                Pos::of(t),
                                "`always` cannot be a global event (it would fire in every state)",
                            );
                            continue;
                        }
                        global.push(tr);
                    }
                }
                self.instant_loops(&states);
                self.closing_sound(&states);
                (SceneForm::StateMachine, initial, states, global)
            }
        };

        Scene {
            name,
            description: raw.description.unwrap_or_default(),
            file: self.file.to_path_buf(),
            form,
            initial_state,
            states,
            global_events,
            on_stop,
            warnings: Vec::new(),
        }
    }

    fn simple_state(
        &mut self,
        items: &Spanned<Vec<Spanned<RawItem>>>,
        duration: Option<&Spanned<Dur>>,
    ) -> State {
        let timeline = self.timeline(
            &items.value,
            "actions",
            "action needs `at` (seconds from scene start)",
        );
        let last = timeline.last().map(|c| c.at).unwrap_or_default();
        let end = match duration.map(|d| (d, self.time(d, "duration"))) {
            Some((d, end)) if end < last => {
                self.err(
                    Pos::of(d),
                    format!(
                        "duration {:.3}s is before the last action at {:.3}s",
                        end.as_secs_f64(),
                        last.as_secs_f64()
                    ),
                );
                last
            }
            Some((_, end)) => end,
            None => last,
        };
        State {
            name: SIMPLE_STATE.to_string(),
            timeline,
            transitions: vec![Transition {
                trigger: Trigger::Timeout(end),
                goto: Goto::End,
                pos: duration.map(Pos::of).unwrap_or_default(),
            }],
            ..State::default()
        }
    }

    /// Timed items (`at` + one action or a group), sorted by `at`; equal
    /// times keep file order.
    fn timeline(&mut self, items: &[Spanned<RawItem>], what: &str, missing_at: &str) -> Vec<Cue> {
        let mut timeline = Vec::new();
        for item in items {
            let Some(at) = &item.value.at else {
                self.err(Pos::of(item), missing_at);
                continue;
            };
            if let Some(actions) = self.item_actions(item, what) {
                let at = self.time(at, "at");
                timeline.push(Cue { at, actions });
            }
        }
        timeline.sort_by_key(|c| c.at);
        timeline
    }

    fn state(&mut self, name: &str, rs: &Spanned<RawState>, names: &[String]) -> State {
        let r = &rs.value;
        let on_enter = r
            .on_enter
            .as_ref()
            .map(|v| self.actions(v, "onEnter"))
            .unwrap_or_default();
        let on_exit = r
            .on_exit
            .as_ref()
            .map(|v| self.actions(v, "onExit"))
            .unwrap_or_default();
        let timeline = self.timeline(
            r.timeline.as_deref().unwrap_or_default(),
            "timeline",
            "timeline item needs `at` (seconds from entering the state)",
        );
        let mut transitions = Vec::new();
        for t in r.transitions.iter().flatten() {
            if let Some(tr) = self.transition(t, names) {
                transitions.push(tr);
            }
        }
        State {
            name: name.to_string(),
            description: r.description.clone().unwrap_or_default(),
            on_enter,
            on_exit,
            timeline,
            transitions,
        }
    }

    /// A list of plain actions (onEnter, onExit, on_stop).
    fn actions(&mut self, items: &[Spanned<RawItem>], what: &str) -> Vec<Action> {
        let mut out = Vec::new();
        for item in items {
            if let Some(at) = &item.value.at {
                self.err(
                    Pos::of(at),
                    format!("`at` has no meaning in {what}; use a timeline"),
                );
            }
            if let Some(a) = self.item_actions(item, what) {
                out.extend(a);
            }
        }
        out
    }

    /// An item is one action or a group `{actions: [...]}`.
    fn item_actions(&mut self, item: &Spanned<RawItem>, what: &str) -> Option<Vec<Action>> {
        let r = &item.value;
        if let Some(group) = &r.actions {
            if r.topic.is_some() || r.message.is_some() || r.action.is_some() {
                self.err(
                    Pos::of(item),
                    "an item has either `actions: [...]` or one action, not both",
                );
                return None;
            }
            let mut out = Vec::new();
            for a in group {
                if a.value.actions.is_some() {
                    self.err(Pos::of(a), "action groups cannot be nested");
                    continue;
                }
                if let Some(x) = self.action(a, what) {
                    out.push(x);
                }
            }
            return Some(out);
        }
        self.action(item, what).map(|a| vec![a])
    }

    pub(crate) fn action(&mut self, item: &Spanned<RawItem>, what: &str) -> Option<Action> {
        let r = &item.value;
        let pos = Pos::of(item);
        let Some(message) = &r.message else {
            self.err(pos, format!("action in {what} needs `message`"));
            return None;
        };
        let msg = message.value.clone();
        if msg.trim().is_empty() {
            self.err(Pos::of(message), "`message` must not be empty");
            return None;
        }
        let topic = r.topic.as_ref().map(|t| t.value.trim().to_string());
        if let Some(t) = &r.topic {
            let v = t.value.trim();
            let problem = match crate::topic::validate_name(v) {
                Err(e) => Some(e.to_string()),
                Ok(()) if v.starts_with('/') || v.ends_with('/') => {
                    Some(format!("topic `{v}` must not start or end with '/'"))
                }
                Ok(()) => None,
            };
            if let Some(p) = problem {
                self.err(Pos::of(t), format!("{p} (a plain topic like room1/light)"));
                return None;
            }
        }
        let channel = topic
            .as_deref()
            .map(|t| crate::topic::channel(t).to_string());
        let kind_name = match &r.action {
            Some(a) => a.value.trim().to_ascii_lowercase(),
            None => match &channel {
                Some(c) if self.ctx.local_channels.iter().any(|l| l == c) => c.clone(),
                Some(_) => "mqtt".into(),
                None => {
                    self.err(pos, "action needs `topic` (or `action: audio|video`)");
                    return None;
                }
            },
        };
        let parse_pos = Pos::of(message);
        let (kind, topic) = match kind_name.as_str() {
            "mqtt" => {
                let Some(topic) = topic else {
                    self.err(pos, "mqtt action needs `topic`");
                    return None;
                };
                (ActionKind::Mqtt, topic)
            }
            "audio" => match AudioCommand::parse(&msg) {
                Ok(c) => (
                    ActionKind::Audio(c),
                    topic.unwrap_or_else(|| format!("{}/audio", self.ctx.room)),
                ),
                Err(crate::media::command::CommandError::UnknownAudio(m)) => {
                    // `BASS_BOOST:ON`: the room controllers logged such
                    // cues and went on; so does this, with a warning.
                    self.warn(
                        parse_pos,
                        format!(
                            "audio command `{}` has no meaning here: it is skipped, as the room controllers skipped it",
                            m.chars().take(64).collect::<String>()
                        ),
                    );
                    return None;
                }
                Err(e) => {
                    self.err(parse_pos, e.to_string());
                    return None;
                }
            },
            "video" => match VideoCommand::parse(&msg) {
                Ok(c) => (
                    ActionKind::Video(c),
                    topic.unwrap_or_else(|| format!("{}/video", self.ctx.room)),
                ),
                Err(e) => {
                    self.err(parse_pos, e.to_string());
                    return None;
                }
            },
            other => {
                let p = r.action.as_ref().map(Pos::of).unwrap_or(pos);
                self.err(
                    p,
                    format!("unknown action type `{other}` (expected mqtt, audio or video)"),
                );
                return None;
            }
        };
        let range = ranges::FEEDBACK_TIMEOUT;
        if let Some(t) = &r.timeout
            && !range.contains(t.value.0)
        {
            self.err(Pos::of(t), range.message("timeout", t.value.0));
        }
        if topic.len() + msg.len() + 16 > MAX_PACKET_SIZE as usize {
            self.err(
                Pos::of(message),
                format!(
                    "message is {} bytes; an MQTT packet may carry at most {} KiB",
                    msg.len(),
                    MAX_PACKET_SIZE / 1024
                ),
            );
            return None;
        }
        let feedback = kind == ActionKind::Mqtt && topic != self.topics.all_stop();
        let mut retain = r.retain.as_ref().is_some_and(|x| x.value);
        if retain && kind != ActionKind::Mqtt {
            retain = false;
            self.warn(
                r.retain.as_ref().map(Pos::of).unwrap_or(pos),
                "`retain` has no meaning for audio/video played on the Pi (ignored)",
            );
        }
        let required = r.required.as_ref().map_or(self.required, |x| x.value);
        let retries = match &r.retries {
            Some(n) if n.value > MAX_RETRIES => {
                self.err(
                    Pos::of(n),
                    format!(
                        "retries {} is more than {MAX_RETRIES}: a cue that needs more is broken",
                        n.value
                    ),
                );
                0
            }
            Some(n) => n.value,
            None => 0,
        };
        if (required || retries > 0) && !feedback {
            let p = r
                .required
                .as_ref()
                .map(Pos::of)
                .or(r.retries.as_ref().map(Pos::of));
            if let Some(p) = p {
                self.warn(
                    p,
                    "`required` and `retries` need a confirmation: this cue has none (ignored)",
                );
            }
        }
        Some(Action {
            kind,
            topic,
            message: msg,
            timeout: r.timeout.as_ref().map(|t| t.value.0),
            feedback,
            retain,
            required: required && feedback,
            retries: if feedback { retries } else { 0 },
            pos,
        })
    }
}
