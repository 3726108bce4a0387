//! When each cue of a state happens: per state, the cues on a time axis in
//! lanes by channel (light, motor, audio, video...), sounds and clips with
//! their real length, the state's timeouts as marks. The page draws it;
//! this module only measures. The simple form is one state.

use serde::Serialize;

use crate::scene::{Action, ActionKind, END, Scene, Trigger};

/// One state's cues on a time axis.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StateTimeline {
    /// The state.
    pub state: String,
    /// Seconds the axis spans: the last cue's end or timeout.
    pub span: f64,
    /// One per channel, in the order first used.
    pub lanes: Vec<Lane>,
    /// The state's timeouts (`timeout 20s → show`).
    pub timeouts: Vec<Mark>,
    /// Every way out of the state, as listed.
    pub transitions: Vec<Way>,
}

/// A transition, as the page lists it (to delete it, say).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Way {
    /// What it waits for and where it goes (`timeout 20s → show`).
    pub label: String,
    /// Where it is written.
    pub line: u32,
    /// Its column.
    pub col: u32,
}

/// A scene's global events (checked in every state).
pub fn global_ways(scene: &Scene) -> Vec<Way> {
    scene.global_events.iter().map(way).collect()
}

fn way(t: &crate::scene::Transition) -> Way {
    Way {
        label: format!(
            "{} → {}",
            super::graph::trigger_label(&t.trigger),
            goto(&t.goto)
        ),
        line: t.pos.line,
        col: t.pos.col,
    }
}

/// The cues of one channel.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Lane {
    /// Its topic (`room1/light`).
    pub channel: String,
    /// `mqtt`, `audio` or `video`.
    pub kind: &'static str,
    /// Its cues, by time.
    pub marks: Vec<Mark>,
}

/// One cue or timeout.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Mark {
    /// Seconds after entering the state.
    pub at: f64,
    /// How long it plays, for a sound or clip whose file is measured.
    pub len: Option<f64>,
    /// What (`ON`, `PLAY:bg.wav`, `timeout 20s → show`).
    pub label: String,
    /// `enter`, `timeline`, `exit` or `timeout`.
    pub part: &'static str,
    /// The line it is written on.
    pub line: u32,
    /// Its column there.
    pub col: u32,
}

/// Every state's timeline, the initial state first and END last. `length`
/// gives a sound's or clip's length in seconds (none when not measured).
pub fn timelines(scene: &Scene, length: &dyn Fn(&Action) -> Option<f64>) -> Vec<StateTimeline> {
    order(scene)
        .into_iter()
        .map(|name| {
            let st = &scene.states[name];
            let mut lanes: Vec<Lane> = Vec::new();
            for a in &st.on_enter {
                put(&mut lanes, a, 0.0, "enter", length);
            }
            for c in &st.timeline {
                for a in &c.actions {
                    put(&mut lanes, a, c.at.as_secs_f64(), "timeline", length);
                }
            }
            let timeouts: Vec<Mark> = st
                .transitions
                .iter()
                .filter_map(|t| match t.trigger {
                    Trigger::Timeout(d) => Some(Mark {
                        at: d.as_secs_f64(),
                        len: None,
                        label: way(t).label,
                        part: "timeout",
                        line: t.pos.line,
                        col: t.pos.col,
                    }),
                    _ => None,
                })
                .collect();
            // Exit cues happen when the state is left: at its first timeout
            // if it has one, else after its last cue.
            let last = lanes
                .iter()
                .flat_map(|l| l.marks.iter())
                .map(|m| m.at + m.len.unwrap_or(0.0))
                .fold(0.0_f64, f64::max);
            let leave = timeouts.iter().map(|m| m.at).fold(f64::INFINITY, f64::min);
            let leave = if leave.is_finite() { leave } else { last };
            for a in &st.on_exit {
                put(&mut lanes, a, leave, "exit", length);
            }
            let span = lanes
                .iter()
                .flat_map(|l| l.marks.iter())
                .chain(timeouts.iter())
                .map(|m| m.at + m.len.unwrap_or(0.0))
                .fold(1.0_f64, f64::max);
            StateTimeline {
                state: name.clone(),
                span,
                lanes,
                timeouts,
                transitions: st.transitions.iter().map(way).collect(),
            }
        })
        .collect()
}

/// The states in the order a visitor meets them: from the initial state
/// along the transitions as listed, then any not reached; END last.
fn order(scene: &Scene) -> Vec<&String> {
    let mut out: Vec<&String> = Vec::new();
    let mut queue: std::collections::VecDeque<&str> = [scene.initial_state.as_str()].into();
    while let Some(n) = queue.pop_front() {
        let Some((name, st)) = scene.states.get_key_value(n) else {
            continue;
        };
        if out.contains(&name) {
            continue;
        }
        out.push(name);
        for t in &st.transitions {
            if let crate::scene::Goto::State(next) = &t.goto {
                queue.push_back(next);
            }
        }
    }
    for name in scene.states.keys() {
        if !out.contains(&name) {
            out.push(name);
        }
    }
    if let Some(i) = out.iter().position(|n| *n == END) {
        let end = out.remove(i);
        out.push(end);
    }
    out
}

/// Adds `a` at `at` to its channel's lane.
fn put(
    lanes: &mut Vec<Lane>,
    a: &Action,
    at: f64,
    part: &'static str,
    length: &dyn Fn(&Action) -> Option<f64>,
) {
    let mark = Mark {
        at,
        len: match a.kind {
            ActionKind::Mqtt => None,
            _ => length(a),
        },
        label: a.message.clone(),
        part,
        line: a.pos.line,
        col: a.pos.col,
    };
    match lanes.iter_mut().find(|l| l.channel == a.topic) {
        Some(l) => l.marks.push(mark),
        None => lanes.push(Lane {
            channel: a.topic.clone(),
            kind: a.kind_name(),
            marks: vec![mark],
        }),
    }
}

fn goto(g: &crate::scene::Goto) -> String {
    match g {
        crate::scene::Goto::State(s) => s.clone(),
        crate::scene::Goto::End => END.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::load::{SceneContext, parse_scene};
    use std::path::Path;

    #[test]
    fn cues_are_in_lanes_by_channel_with_sound_lengths_and_timeouts() {
        let ctx = SceneContext {
            room: "room1".into(),
            local_channels: vec!["audio".into()],
            media: None,
        };
        let s = parse_scene(
            include_str!("../../scenes/showcase.json"),
            Path::new("scenes/showcase.json"),
            &ctx,
        )
        .unwrap()
        .0;
        let t = timelines(&s, &|a| (a.message == "PLAY:bg.wav:0.6").then_some(3.5));
        let order: Vec<&str> = t.iter().map(|t| t.state.as_str()).collect();
        assert_eq!(order, ["welcome", "waiting", "show", "goodbye"], "as met");
        let show = t.iter().find(|t| t.state == "show").unwrap();
        let channels: Vec<&str> = show.lanes.iter().map(|l| l.channel.as_str()).collect();
        assert_eq!(
            channels,
            ["room1/audio", "room1/steam", "room1/light", "room1/motor"]
        );
        assert_eq!(show.lanes[0].marks[0].len, Some(3.5));
        assert_eq!(show.lanes[1].marks.len(), 2, "steam ON at 1 s, OFF at 4 s");
        assert_eq!(show.lanes[3].marks[0].part, "exit");
        assert_eq!(show.lanes[3].marks[0].at, 6.0, "onExit at the timeout");
        assert_eq!(show.timeouts[0].label, "timeout 6s → goodbye");
        assert_eq!(show.span, 6.0);
        let waiting = t.iter().find(|t| t.state == "waiting").unwrap();
        let ways: Vec<&str> = waiting
            .transitions
            .iter()
            .map(|w| w.label.as_str())
            .collect();
        assert_eq!(
            ways,
            [
                "room1/visitor_button = pressed → show",
                "timeout 20s → show"
            ]
        );
        assert_eq!(
            (waiting.transitions[1].line, waiting.transitions[1].col),
            (28, 9)
        );
        assert_eq!(global_ways(&s)[0].label, "room1/emergency = PRESSED → END");
    }
}
