//! Topics across the room: a channel no board announces and no other file
//! uses (most likely misspelt), a waited-for message one letter off the
//! ones the room knows, and a config trigger that fires on a message a
//! scene waits for.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::Config;
use crate::diag::{Diagnostic, Diagnostics, Pos};
use crate::scene::{ActionKind, SceneSet, Trigger};
use crate::topic::matches;

/// Warnings about the topics the scenes send to and wait on. `announced`
/// are the command topics the boards said they answer (empty when no
/// board is known, as for `roomctl check` by hand); the config's
/// `devices.known` channels count as announced.
pub(super) fn topics(config: &Config, scenes: &SceneSet, announced: &[String]) -> Diagnostics {
    let mut out = Diagnostics::default();
    let mut boards: Vec<&str> = announced.iter().map(String::as_str).collect();
    boards.extend(config.devices.known.values().flatten().map(String::as_str));
    let stop = config.topics().all_stop();

    // Which files send to each channel.
    let mut senders: BTreeMap<&str, Vec<&Path>> = BTreeMap::new();
    for (file, a) in scenes.every_action() {
        if a.kind == ActionKind::Mqtt && a.topic != stop {
            let files = senders.entry(a.topic.as_str()).or_default();
            if !files.contains(&file) {
                files.push(file);
            }
        }
    }
    unknown_channels(&mut out, scenes, &boards, &senders, &stop);
    let waits = waits(scenes);
    near_misses(&mut out, config, &boards, &senders, &waits);
    trigger_clashes(&mut out, config, &waits);
    out
}

/// A channel no board announces that only one file sends to.
fn unknown_channels(
    out: &mut Diagnostics,
    scenes: &SceneSet,
    boards: &[&str],
    senders: &BTreeMap<&str, Vec<&Path>>,
    stop: &str,
) {
    let mut reported = std::collections::BTreeSet::new();
    for (file, a) in scenes.every_action() {
        if a.kind != ActionKind::Mqtt
            || a.topic == stop
            || boards.contains(&a.topic.as_str())
            || senders[a.topic.as_str()].len() > 1
            || !reported.insert((file, a.topic.as_str()))
        {
            continue;
        }
        let others = boards
            .iter()
            .copied()
            .chain(senders.keys().copied())
            .filter(|t| *t != a.topic);
        let hint = near(&a.topic, others);
        match (hint, boards.is_empty()) {
            (Some(h), _) => out.push(Diagnostic::new(
                file,
                a.pos,
                format!(
                    "warning: no board announces `{}` and no other file sends to it: did you mean `{h}`?",
                    a.topic
                ),
            )),
            (None, false) => out.push(Diagnostic::new(
                file,
                a.pos,
                format!(
                    "warning: no board announces `{}` and no other file sends to it (boards answer: {})",
                    a.topic,
                    shortlist(boards)
                ),
            )),
            (None, true) => {}
        }
    }
}

/// A waited-for topic nothing else in the room uses, one letter off one
/// that is.
fn near_misses(
    out: &mut Diagnostics,
    config: &Config,
    boards: &[&str],
    senders: &BTreeMap<&str, Vec<&Path>>,
    waits: &[Wait<'_>],
) {
    // What the room hears of: triggers, the boards, what it sends.
    let mut heard: Vec<&str> = config.triggers.iter().map(|t| t.topic.as_str()).collect();
    heard.extend(boards.iter().copied());
    heard.extend(senders.keys().copied());
    for w in waits {
        heard.push(w.topic);
    }
    for w in waits {
        let same = heard
            .iter()
            .filter(|h| matches(w.topic, h) || matches(h, w.topic))
            .count();
        // Itself once; anything else means the topic is known.
        if same > 1 {
            continue;
        }
        if let Some(h) = near(w.topic, heard.iter().copied()) {
            out.push(Diagnostic::new(
                w.file,
                w.pos,
                format!(
                    "warning: nothing else in the room uses `{}`: did you mean `{h}`?",
                    w.topic
                ),
            ));
        }
    }
}

/// A config trigger on a message a scene waits for.
fn trigger_clashes(out: &mut Diagnostics, config: &Config, waits: &[Wait<'_>]) {
    // A trigger fires whenever the room is idle: on a scene's own button
    // it also starts its scene when the visitor presses it out of turn.
    for t in &config.triggers {
        for w in waits.iter().filter(|w| w.scene != t.scene) {
            let topic_overlap = matches(&t.topic, w.topic) || matches(w.topic, &t.topic);
            let payload_overlap = match (&t.payload, w.message) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            };
            if topic_overlap && payload_overlap {
                out.push(Diagnostic::new(
                    w.file,
                    w.pos,
                    format!(
                        "warning: the config's trigger `{}`{} ({}:{}) also matches this message, and starts `{}` whenever the room is idle: give this scene its own topic or payload",
                        t.topic,
                        t.payload.as_deref().map(|p| format!(" = `{p}`")).unwrap_or_default(),
                        config.file.display(),
                        t.topic_pos.line,
                        t.scene
                    ),
                ));
            }
        }
    }
}

/// The topic `topic` most likely meant; `room1/relay1` and `room1/relay2`
/// are two channels, not a typo.
fn near<'a>(topic: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let numbered = |a: &str, b: &str| {
        let strip = |s: &str| {
            s.chars()
                .filter(|c| !c.is_ascii_digit())
                .collect::<String>()
        };
        a != b && strip(a) == strip(b)
    };
    crate::diag::suggest(topic, candidates.filter(|c| !numbered(topic, c)))
}

/// One `mqttMessage` transition.
struct Wait<'a> {
    scene: &'a str,
    file: &'a Path,
    topic: &'a str,
    message: Option<&'a str>,
    pos: Pos,
}

fn waits(scenes: &SceneSet) -> Vec<Wait<'_>> {
    let mut out = Vec::new();
    for s in scenes.iter() {
        let all = s
            .states
            .values()
            .flat_map(|st| st.transitions.iter())
            .chain(s.global_events.iter());
        for tr in all {
            if let Trigger::MqttMessage { topic, message } = &tr.trigger {
                out.push(Wait {
                    scene: &s.name,
                    file: &s.file,
                    topic,
                    message: message.as_deref(),
                    pos: tr.pos,
                });
            }
        }
    }
    out
}

/// The first few, then how many more.
fn shortlist(topics: &[&str]) -> String {
    let mut t: Vec<&str> = topics.to_vec();
    t.sort_unstable();
    t.dedup();
    if t.len() <= 6 {
        t.join(", ")
    } else {
        format!("{}, and {} more", t[..6].join(", "), t.len() - 6)
    }
}
