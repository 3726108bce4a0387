//! A scene's state machine drawn as SVG: states as boxes with their cues,
//! transitions as labelled arrows, the start and the end marked, global
//! events apart. Layout and drawing are the layout-rs crate's; this module
//! only says what is in the picture. Every state's group carries
//! `data-state` and every arrow `data-transition` (`state#index`), so the
//! page can highlight the running state and the transitions taken.

use layout::backends::svg::SVGWriter;
use layout::core::base::Orientation;
use layout::core::color::Color;
use layout::core::geometry::Point;
use layout::core::style::StyleAttr;
use layout::std_shapes::shapes::{Arrow, Element, ShapeKind};
use layout::topo::layout::VisualGraph;

use crate::scene::{Action, ActionKind, END, Goto, Scene, State, Transition, Trigger};

/// Cue lines shown in a state's box before "+N more".
const CUE_LINES: usize = 5;
/// A label's longest line, in characters.
const LINE: usize = 34;

/// The scene as an SVG picture.
pub fn graph_svg(scene: &Scene) -> String {
    let mut g = VisualGraph::new(Orientation::TopToBottom);
    let plain = StyleAttr::new(Color::fast("black"), 2, Some(Color::fast("white")), 6, 14);
    let end_look = StyleAttr::new(Color::fast("black"), 4, Some(Color::fast("#eeeeee")), 6, 14);
    let mark = StyleAttr::new(Color::fast("black"), 2, Some(Color::fast("#dddddd")), 0, 12);

    let start = g.add_node(Element::create_with_properties(
        ShapeKind::new_circle("start"),
        mark.clone(),
        Orientation::LeftToRight,
        Point::new(50., 50.),
        "class=\"start\"",
    ));
    let mut nodes = std::collections::BTreeMap::new();
    for (name, st) in &scene.states {
        let look = if name == END { &end_look } else { &plain };
        let h = g.add_node(Element::create_with_properties(
            ShapeKind::new_box(&state_label(scene, st)),
            look.clone(),
            Orientation::LeftToRight,
            Point::new(180., 50.),
            format!("class=\"state\" data-state=\"{}\"", attr(name)),
        ));
        nodes.insert(name.as_str(), h);
    }
    let ends = scene
        .states
        .values()
        .flat_map(|s| s.transitions.iter())
        .chain(scene.global_events.iter())
        .any(|t| t.goto == Goto::End)
        || scene.form == crate::scene::SceneForm::Simple;
    let end = (ends && !nodes.contains_key(END)).then(|| {
        g.add_node(Element::create_with_properties(
            ShapeKind::new_double_circle("END"),
            mark.clone(),
            Orientation::LeftToRight,
            Point::new(60., 60.),
            "class=\"end\"",
        ))
    });
    if let Some(&first) = nodes.get(scene.initial_state.as_str()) {
        g.add_edge(Arrow::simple(""), start, first);
    }
    let target = |goto: &Goto| match goto {
        Goto::State(s) => nodes.get(s.as_str()).copied(),
        Goto::End => end,
    };
    for (name, st) in &scene.states {
        let from = nodes[name.as_str()];
        for (i, t) in st.transitions.iter().enumerate() {
            if let Some(to) = target(&t.goto) {
                g.add_edge(arrow(t, &format!("{name}#{i}")), from, to);
            }
        }
        // The simple form ends after its last cue.
        if scene.form == crate::scene::SceneForm::Simple
            && let Some(e) = end
        {
            g.add_edge(Arrow::simple("after the last cue"), from, e);
        }
    }
    if !scene.global_events.is_empty() {
        let any = g.add_node(Element::create_with_properties(
            ShapeKind::new_box("in any state (global events)"),
            mark,
            Orientation::LeftToRight,
            Point::new(180., 40.),
            "class=\"global\"",
        ));
        for (i, t) in scene.global_events.iter().enumerate() {
            if let Some(to) = target(&t.goto) {
                g.add_edge(arrow(t, &format!("*#{i}")), any, to);
            }
        }
    }
    let mut svg = SVGWriter::new();
    g.do_it(false, false, false, &mut svg);
    svg.finalize()
}

fn arrow(t: &Transition, id: &str) -> Arrow {
    Arrow::simple_with_properties(
        &short(&trigger_label(&t.trigger)),
        format!("class=\"transition\" data-transition=\"{}\"", attr(id)),
    )
}

/// A state's box: its name, then its cues (`2.5s light ON`).
fn state_label(scene: &Scene, st: &State) -> String {
    let mut lines = vec![if scene.form == crate::scene::SceneForm::Simple {
        scene.name.clone()
    } else {
        st.name.clone()
    }];
    let cues: Vec<String> = st
        .on_enter
        .iter()
        .map(|a| format!("enter: {}", action_label(a)))
        .chain(st.timeline.iter().flat_map(|c| {
            c.actions
                .iter()
                .map(move |a| format!("{}: {}", crate::config::human(c.at), action_label(a)))
        }))
        .chain(
            st.on_exit
                .iter()
                .map(|a| format!("exit: {}", action_label(a))),
        )
        .collect();
    let more = cues.len().saturating_sub(CUE_LINES);
    lines.extend(cues.into_iter().take(CUE_LINES));
    if more > 0 {
        lines.push(format!("+{more} more"));
    }
    lines
        .iter()
        .map(|l| short(l))
        .collect::<Vec<_>>()
        .join("\n")
}

fn action_label(a: &Action) -> String {
    match a.kind {
        ActionKind::Mqtt => format!("{} {}", crate::topic::channel(&a.topic), a.message),
        ActionKind::Audio(_) | ActionKind::Video(_) => a.message.clone(),
    }
}

/// What a transition waits for, as the author wrote it.
pub(super) fn trigger_label(t: &Trigger) -> String {
    match t {
        Trigger::Timeout(d) => format!("timeout {}", crate::config::human(*d)),
        Trigger::AudioEnd(None) => "audioEnd".into(),
        Trigger::AudioEnd(Some(f)) => format!("audioEnd {f}"),
        Trigger::VideoEnd(None) => "videoEnd".into(),
        Trigger::VideoEnd(Some(f)) => format!("videoEnd {f}"),
        Trigger::MqttMessage {
            topic,
            message: Some(m),
        } => format!("{topic} = {m}"),
        Trigger::MqttMessage {
            topic,
            message: None,
        } => format!("any message on {topic}"),
        Trigger::Always => "always".into(),
    }
}

/// At most [`LINE`] characters, control characters dropped.
fn short(s: &str) -> String {
    let clean: String = s.chars().filter(|c| !c.is_control()).collect();
    if clean.chars().count() <= LINE {
        clean
    } else {
        let cut: String = clean.chars().take(LINE - 1).collect();
        format!("{cut}…")
    }
}

/// Text safe inside a double-quoted XML attribute.
fn attr(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&#39;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::load::{SceneContext, parse_scene};
    use std::path::Path;

    fn scene(text: &str) -> Scene {
        let ctx = SceneContext {
            room: "room1".into(),
            local_channels: vec!["audio".into()],
            media: None,
        };
        parse_scene(text, Path::new("scenes/x.json"), &ctx)
            .map_err(|(e, _)| e.to_string())
            .unwrap()
            .0
    }

    #[test]
    fn states_transitions_start_end_and_globals_are_drawn() {
        let s = scene(include_str!("../../scenes/showcase.json"));
        let svg = graph_svg(&s);
        for name in ["welcome", "waiting", "show", "goodbye"] {
            assert!(svg.contains(&format!("data-state=\"{name}\"")), "{name}");
        }
        assert!(svg.contains("data-transition=\"waiting#0\""));
        assert!(svg.contains("data-transition=\"*#0\""), "the global event");
        assert!(svg.contains("timeout 20s"));
        assert!(svg.contains("room1/visitor_button = pressed"));
        assert!(svg.contains("audioEnd welcome.wav"));
        assert!(svg.contains("in any state (global events)"));
        assert!(svg.contains("class=\"end\""));
        assert!(svg.contains("enter: light ON"));
    }

    #[test]
    fn names_cannot_break_out_of_the_picture() {
        let s = scene(
            r#"{"sceneId": "x", "initialState": "a\"><script>", "states": {"a\"><script>": {"onEnter": [{"action": "mqtt", "topic": "room1/l", "message": "<b>&"}], "transitions": [{"type": "timeout", "delay": 1, "goto": "END"}]}}}"#,
        );
        let svg = graph_svg(&s);
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(!svg.contains("<b>"), "{svg}");
        assert!(svg.contains("data-state=\"a&quot;&gt;&lt;script&gt;\""));
    }
}
