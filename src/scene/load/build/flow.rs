//! The scene's flow: transitions (where `goto` leads, what they wait
//! for) and the checks over the whole machine (media targets, instant
//! loops, a closing sound that would be cut off).

use super::*;

impl Builder<'_> {
    /// An `audioEnd` / `videoEnd` target must name a file the scene plays,
    /// or the transition can never fire and the scene hangs there.
    pub(crate) fn media_targets(&mut self, scene: &Scene) {
        let mut audio: Vec<(&str, Pos)> = Vec::new();
        let mut video: Vec<(&str, Pos)> = Vec::new();
        for a in scene.all_actions() {
            match &a.kind {
                ActionKind::Audio(c) => audio.extend(c.file().map(|f| (f, a.pos))),
                ActionKind::Video(c) => video.extend(c.file().map(|f| (f, a.pos))),
                ActionKind::Mqtt => {}
            }
        }
        let transitions = scene
            .states
            .values()
            .flat_map(|s| s.transitions.iter())
            .chain(scene.global_events.iter());
        for t in transitions {
            let (target, played, what, thing) = match &t.trigger {
                Trigger::AudioEnd(Some(target)) => (target, &audio, "audioEnd", "sound"),
                Trigger::VideoEnd(Some(target)) => (target, &video, "videoEnd", "clip"),
                _ => continue,
            };
            if played
                .iter()
                .any(|(f, _)| crate::media::command::same_media(target, f))
            {
                continue;
            }
            // A name a letter off: the mistake is the one of the two that
            // is not on disk, so say it there.
            if let Some(near) = crate::diag::suggest(target, played.iter().map(|(f, _)| *f))
                && let Some((_, pos)) = played.iter().find(|(f, _)| *f == near)
                && self.on_disk(what, target) == Some(true)
                && self.on_disk(what, near) == Some(false)
            {
                self.err(
                    *pos,
                    format!(
                        "{thing} `{near}` is not the `{target}` that the {what} transition at line {} waits for: did you mean `{target}`? (as written that transition could never fire)",
                        t.pos.line
                    ),
                );
                continue;
            }
            let plays = if played.is_empty() {
                "none".to_string()
            } else {
                played
                    .iter()
                    .map(|(f, _)| *f)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let hint = crate::diag::did_you_mean(target, played.iter().map(|(f, _)| *f));
            self.err(
                t.pos,
                format!("{what} target `{target}` is no file this scene plays (it plays: {plays}); the transition could never fire{hint}"),
            );
        }
    }

    /// Whether the sound (`audioEnd`) or clip named `name` is in its
    /// folder; none when the folders are not known.
    fn on_disk(&self, what: &str, name: &str) -> Option<bool> {
        use crate::media::command::{AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, resolve_media};
        let dirs = self.ctx.media.as_ref()?;
        Some(if what == "audioEnd" {
            resolve_media(&dirs.audio, name, &AUDIO_EXTENSIONS).is_some()
        } else {
            resolve_media(&dirs.video, name, &VIDEO_EXTENSIONS).is_some()
        })
    }

    /// A state named END ends the scene once its onEnter (and timeline)
    /// ran, and the end fades every sound out: a closing chime played in
    /// its onEnter alone is cut off at once.
    pub(super) fn closing_sound(&mut self, states: &BTreeMap<String, State>) {
        let Some(end) = states.get(END) else { return };
        if !end.timeline.is_empty() {
            return;
        }
        for a in &end.on_enter {
            if let Some(f) = a.media_file() {
                self.warn(
                    a.pos,
                    format!("`{f}` in END's onEnter is cut off: the scene ends (and fades it out) as soon as END is entered; play it in the state before and go to END on its audioEnd/videoEnd, or give END a timeline as long as it"),
                );
            }
        }
    }

    /// States that hand over to each other without time passing (`always`
    /// or a zero `timeout`, in a cycle) would run their actions in a tight
    /// loop: an error at load time.
    pub(super) fn instant_loops(&mut self, states: &BTreeMap<String, State>) {
        // The transition a state takes at once, if any: the first listed
        // with no delay (that is the one the runner takes).
        fn instant(s: &State) -> Option<&Transition> {
            s.transitions.iter().find(|t| {
                matches!(t.trigger, Trigger::Always)
                    || t.trigger == Trigger::Timeout(Duration::ZERO)
            })
        }
        let mut reported = std::collections::BTreeSet::new();
        for start in states.keys() {
            let mut path: Vec<&str> = vec![start];
            let mut cur = start.as_str();
            while let Some(t) = states.get(cur).and_then(instant) {
                let Goto::State(next) = &t.goto else { break };
                if next == END && states.get(END).and_then(instant).is_none() {
                    break;
                }
                if let Some(i) = path.iter().position(|p| p == next) {
                    let cycle: Vec<&str> = path[i..].to_vec();
                    let mut key = cycle.clone();
                    key.sort();
                    if reported.insert(key) {
                        let pos = instant(&states[cycle[0]])
                            .map(|t| t.pos)
                            .unwrap_or_default();
                        let mut names: Vec<String> =
                            cycle.iter().map(|n| format!("`{n}`")).collect();
                        names.push(format!("`{}`", cycle[0]));
                        self.err(
                            pos,
                            format!(
                                "states {} hand over to each other without time passing (always / zero timeout): the scene would loop forever",
                                names.join(" -> ")
                            ),
                        );
                    }
                    break;
                }
                path.push(next);
                cur = next;
            }
        }
    }

    /// `actions:` → one state whose timeline is the list, ending after
    /// `duration` (default: the last `at`).
    pub(super) fn transition(
        &mut self,
        t: &Spanned<RawTransition>,
        names: &[String],
    ) -> Option<Transition> {
        let r = &t.value;
        let pos = Pos::of(t);
        let Some(kind) = &r.kind else {
            // Editors of the existing format leave such stubs behind: the
            // scene loads, the transition can never fire.
            let to = r
                .goto
                .as_ref()
                .map(|g| format!(" (goto `{}`)", g.value.trim()))
                .unwrap_or_default();
            self.warn(
                pos,
                format!("transition without `type`{to} never fires (types: timeout, audioEnd, videoEnd, mqttMessage, always)"),
            );
            return None;
        };
        let goto = match &r.goto {
            None => {
                self.err(pos, "transition needs `goto` (a state name or END)");
                return None;
            }
            Some(g) => {
                let v = g.value.trim();
                if names.iter().any(|n| n == v) {
                    // A state named END runs its onEnter, then the scene ends.
                    Goto::State(v.to_string())
                } else if v.eq_ignore_ascii_case(END) {
                    if v != END {
                        self.warn(
                            Pos::of(g),
                            format!("goto `{v}` ends the scene: write it `END` (states are named with their case)"),
                        );
                    }
                    Goto::End
                } else {
                    let hint =
                        crate::diag::did_you_mean(v, names.iter().map(String::as_str).chain([END]));
                    let states: Vec<&str> = names
                        .iter()
                        .map(String::as_str)
                        .filter(|n| *n != END)
                        .collect();
                    self.err(
                        Pos::of(g),
                        format!(
                            "goto `{v}` is not a state{hint} (states: {}; END ends the scene)",
                            states.join(", ")
                        ),
                    );
                    return None;
                }
            }
        };
        let trigger = match kind.value.trim() {
            "timeout" => match &r.delay {
                Some(d) => Trigger::Timeout(self.time(d, "delay")),
                None => {
                    self.err(pos, "timeout transition needs `delay` (seconds)");
                    return None;
                }
            },
            "audioEnd" => Trigger::AudioEnd(r.target.as_ref().map(|t| t.value.trim().to_string())),
            "videoEnd" => Trigger::VideoEnd(r.target.as_ref().map(|t| t.value.trim().to_string())),
            "mqttMessage" => match &r.topic {
                None => {
                    self.err(pos, "mqttMessage transition needs `topic`");
                    return None;
                }
                Some(topic) => {
                    if let Err(e) = crate::topic::validate_filter(topic.value.trim()) {
                        self.err(Pos::of(topic), format!("mqttMessage topic: {e}"));
                        return None;
                    }
                    Trigger::MqttMessage {
                        topic: topic.value.trim().to_string(),
                        message: r.message.as_ref().map(|m| m.value.clone()),
                    }
                }
            },
            "always" => Trigger::Always,
            other => {
                self.err(
                    Pos::of(kind),
                    format!("unknown transition type `{other}` (expected timeout, audioEnd, videoEnd, mqttMessage or always)"),
                );
                return None;
            }
        };
        Some(Transition { trigger, goto, pos })
    }
}
