use super::*;
use crate::scene::Scene;
use crate::scene::load::{SceneContext, parse_scene};
use std::path::Path;

const SHOWCASE: &str = include_str!("../../../scenes/showcase.json");
const INTRO: &str = include_str!("../../../scenes/intro.yaml");

fn scene(text: &str, file: &str) -> Scene {
    let ctx = SceneContext {
        room: "room1".into(),
        local_channels: vec!["audio".into(), "video".into()],
        media: None,
    };
    parse_scene(text, Path::new(file), &ctx)
        .map_err(|(e, _)| format!("{e}\n{text}"))
        .unwrap()
        .0
}

/// Where the loader says the cue sending `message` to `topic` is written.
fn cue_pos(text: &str, file: &str, topic: &str, message: &str) -> (u32, u32) {
    let sc = scene(text, file);
    let actions = sc.states.values().flat_map(|st| {
        st.on_enter
            .iter()
            .chain(st.on_exit.iter())
            .chain(st.timeline.iter().flat_map(|c| c.actions.iter()))
    });
    let a = actions
        .chain(sc.on_stop.iter())
        .find(|a| a.message == message && a.topic == topic)
        .unwrap_or_else(|| panic!("no cue {message}"));
    (a.pos.line, a.pos.col)
}

fn mqtt(at: Option<f64>, topic: &str, message: &str) -> Cue {
    Cue {
        at,
        action: Some("mqtt".into()),
        topic: Some(topic.into()),
        message: message.into(),
    }
}

/// The lines of `after` that are not in `before`, and the other way.
fn changed(before: &str, after: &str) -> (Vec<String>, Vec<String>) {
    let diff = similar::TextDiff::from_lines(before, after);
    let mut added = Vec::new();
    let mut gone = Vec::new();
    for c in diff.iter_all_changes() {
        match c.tag() {
            similar::ChangeTag::Insert => added.push(c.value().trim_end().to_string()),
            similar::ChangeTag::Delete => gone.push(c.value().trim_end().to_string()),
            similar::ChangeTag::Equal => {}
        }
    }
    (added, gone)
}

#[test]
fn a_cue_added_to_a_json_state_is_one_new_line_in_the_files_style_and_loads() {
    let edit = Edit::AddCue {
        state: Some("show".into()),
        part: Part::Timeline,
        cue: mqtt(Some(2.5), "room1/smoke", "ON"),
    };
    let out = apply(SHOWCASE, &edit).unwrap();
    let (added, gone) = changed(SHOWCASE, &out);
    assert_eq!(
        added,
        [
            "        {\"at\": 2.5, \"action\": \"mqtt\", \"topic\": \"room1/smoke\", \"message\": \"ON\"},"
        ]
    );
    assert!(gone.is_empty(), "{gone:?}");
    let sc = scene(&out, "showcase.json");
    let times: Vec<f64> = sc.states["show"]
        .timeline
        .iter()
        .map(|c| c.at.as_secs_f64())
        .collect();
    assert_eq!(times, [0.0, 1.0, 2.5, 4.0]);
    serde_json::from_str::<serde_json::Value>(&out).unwrap();
}

#[test]
fn a_first_timeline_in_a_json_state_is_written_one_cue_a_line() {
    let edit = Edit::AddCue {
        state: Some("welcome".into()),
        part: Part::Timeline,
        cue: mqtt(Some(1.0), "room1/light", "OFF"),
    };
    let out = apply(SHOWCASE, &edit).unwrap();
    let (added, _) = changed(SHOWCASE, &out);
    assert_eq!(
        added,
        [
            "      \"timeline\": [",
            "        {\"at\": 1, \"action\": \"mqtt\", \"topic\": \"room1/light\", \"message\": \"OFF\"}",
            "      ],",
        ]
    );
    scene(&out, "showcase.json");
}

#[test]
fn a_cue_changed_from_the_form_changes_only_its_values() {
    let (line, col) = cue_pos(SHOWCASE, "showcase.json", "room1/motor", "ON:50:L");
    let edit = Edit::SetCue {
        line,
        col,
        change: CueChange {
            topic: Some("room1/motor2".into()),
            message: Some("ON:80:R".into()),
            ..CueChange::default()
        },
    };
    let out = apply(SHOWCASE, &edit).unwrap();
    let (added, gone) = changed(SHOWCASE, &out);
    assert_eq!(
        added,
        ["        {\"action\": \"mqtt\", \"topic\": \"room1/motor2\", \"message\": \"ON:80:R\"}"]
    );
    assert_eq!(
        gone,
        ["        {\"action\": \"mqtt\", \"topic\": \"room1/motor\", \"message\": \"ON:50:L\"}"]
    );

    // A sound gets no topic: the key goes, with its comma.
    let (line, col) = cue_pos(SHOWCASE, "showcase.json", "room1/light", "ON");
    let sound = CueChange {
        action: Some("audio".into()),
        topic: Some(String::new()),
        message: Some("PLAY:hello.wav".into()),
        ..CueChange::default()
    };
    let out = apply(
        SHOWCASE,
        &Edit::SetCue {
            line,
            col,
            change: sound,
        },
    )
    .unwrap();
    let (added, _) = changed(SHOWCASE, &out);
    assert_eq!(
        added,
        ["        {\"action\": \"audio\", \"message\": \"PLAY:hello.wav\"},"]
    );
    scene(&out, "showcase.json");
}

#[test]
fn a_new_time_for_one_of_a_groups_actions_takes_it_out_of_the_group() {
    let (line, col) = cue_pos(SHOWCASE, "showcase.json", "room1/light", "OFF");
    let at = |at| CueChange {
        at: Some(at),
        ..CueChange::default()
    };
    let same = Edit::SetCue {
        line,
        col,
        change: at(1.0),
    };
    assert_eq!(apply(SHOWCASE, &same).unwrap(), SHOWCASE, "nothing changed");
    let later = Edit::SetCue {
        line,
        col,
        change: at(3.0),
    };
    let out = apply(SHOWCASE, &later).unwrap();
    let sc = scene(&out, "showcase.json");
    let show: Vec<(f64, Vec<&str>)> = sc.states["show"]
        .timeline
        .iter()
        .map(|c| {
            (
                c.at.as_secs_f64(),
                c.actions.iter().map(|a| a.message.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        show,
        [
            (0.0, vec!["PLAY:bg.wav:0.6"]),
            (1.0, vec!["ON"]),
            (3.0, vec!["OFF"]),
            (4.0, vec!["OFF"]),
        ]
    );
}

#[test]
fn a_cue_moved_to_another_state_and_a_cue_deleted() {
    let (line, col) = cue_pos(SHOWCASE, "showcase.json", "room1/motor", "ON:50:L");
    let moved = Edit::MoveCue {
        line,
        col,
        state: Some("show".into()),
        part: Part::Timeline,
        change: CueChange {
            at: Some(0.5),
            ..CueChange::default()
        },
    };
    let out = apply(SHOWCASE, &moved).unwrap();
    let sc = scene(&out, "showcase.json");
    assert!(sc.states["waiting"].on_enter.is_empty());
    assert!(out.contains("\"waiting\": {\n      \"description\": \"Motor turns slowly until a visitor presses the button at the model\",\n      \"onEnter\": [],\n"), "{out}");
    let c = &sc.states["show"].timeline[1];
    assert_eq!(
        (c.at.as_secs_f64(), c.actions[0].message.as_str()),
        (0.5, "ON:50:L")
    );

    let (line, col) = cue_pos(SHOWCASE, "showcase.json", "room1/light", "ON");
    let out = apply(SHOWCASE, &Edit::DeleteCue { line, col }).unwrap();
    let (added, gone) = changed(SHOWCASE, &out);
    assert!(added.is_empty(), "{added:?}");
    assert_eq!(
        gone,
        ["        {\"action\": \"mqtt\", \"topic\": \"room1/light\", \"message\": \"ON\"},"]
    );
    scene(&out, "showcase.json");
}

#[test]
fn a_yaml_timed_list_keeps_its_look() {
    let add = Edit::AddCue {
        state: None,
        part: Part::Actions,
        cue: Cue {
            at: Some(7.0),
            action: None,
            topic: Some("room1/smoke".into()),
            message: "ON".into(),
        },
    };
    let out = apply(INTRO, &add).unwrap();
    let (added, gone) = changed(INTRO, &out);
    assert_eq!(
        added,
        ["  - { at: 7, topic: room1/smoke, message: \"ON\" }"]
    );
    assert!(gone.is_empty());
    assert!(out.contains("message: START, timeout: 2s }\n  - { at: 15.0"));
    let lines: Vec<&str> = out.lines().collect();
    let at7 = lines.iter().position(|l| l.contains("at: 7")).unwrap();
    assert!(lines[at7 - 1].contains("at: 5.0"), "in time order");

    let (line, col) = cue_pos(INTRO, "intro.yaml", "room1/motor", "START");
    let set = Edit::SetCue {
        line,
        col,
        change: CueChange {
            at: Some(12.0),
            message: Some("ON:50:L".into()),
            ..CueChange::default()
        },
    };
    let out = apply(INTRO, &set).unwrap();
    let (added, _) = changed(INTRO, &out);
    assert_eq!(
        added,
        ["  - { at: 12.0, topic: room1/motor, message: \"ON:50:L\", timeout: 2s }"]
    );
    scene(&out, "intro.yaml");

    let (line, col) = cue_pos(INTRO, "intro.yaml", "room1/steam", "OFF");
    let out = apply(INTRO, &Edit::DeleteCue { line, col }).unwrap();
    let (_, gone) = changed(INTRO, &out);
    assert_eq!(
        gone,
        ["  - { at: 15.0, topic: room1/steam, message: \"OFF\" }"]
    );
}

#[test]
fn a_state_and_transitions_are_added_and_a_transition_deleted() {
    let out = apply(
        SHOWCASE,
        &Edit::AddState {
            name: "finale".into(),
        },
    )
    .unwrap();
    assert!(
        out.ends_with("    },\n    \"finale\": {\n      \"onEnter\": [],\n      \"transitions\": []\n    }\n  }\n}\n"),
        "{out}"
    );
    let to = Edit::AddTransition {
        state: Some("goodbye".into()),
        transition: Transition {
            kind: "timeout".into(),
            goto: "finale".into(),
            delay: Some(30.0),
            ..Transition::default()
        },
    };
    let out = apply(&out, &to).unwrap();
    let from = Edit::AddTransition {
        state: Some("finale".into()),
        transition: Transition {
            kind: "mqttMessage".into(),
            goto: "END".into(),
            topic: Some("room1/visitor_button".into()),
            message: Some("pressed".into()),
            ..Transition::default()
        },
    };
    let out = apply(&out, &from).unwrap();
    assert!(
        out.contains("\"finale\": {\n      \"onEnter\": [],\n      \"transitions\": [\n        {\"type\": \"mqttMessage\", \"topic\": \"room1/visitor_button\", \"message\": \"pressed\", \"goto\": \"END\"}\n      ]\n    }"),
        "{out}"
    );
    let sc = scene(&out, "showcase.json");
    assert_eq!(sc.states["goodbye"].transitions.len(), 2);
    let t = &sc.states["goodbye"].transitions[1];
    let out = apply(
        &out,
        &Edit::DeleteTransition {
            line: t.pos.line,
            col: t.pos.col,
        },
    )
    .unwrap();
    assert_eq!(
        scene(&out, "showcase.json").states["goodbye"]
            .transitions
            .len(),
        1
    );

    let yaml = "sceneId: x\ninitialState: a\nstates:\n  a:\n    onEnter:\n      - { action: mqtt, topic: r/l, message: \"ON\" }\n";
    let out = apply(
        yaml,
        &Edit::AddTransition {
            state: Some("a".into()),
            transition: Transition {
                kind: "always".into(),
                goto: "END".into(),
                ..Transition::default()
            },
        },
    )
    .unwrap();
    assert_eq!(
        out,
        format!("{yaml}    transitions:\n      - {{ type: always, goto: END }}\n")
    );
    let out = apply(&out, &Edit::AddState { name: "b c".into() }).unwrap();
    assert!(
        out.ends_with("  \"b c\":\n    onEnter: []\n    transitions: []\n"),
        "{out}"
    );
    scene(&out, "x.yaml");
}

#[test]
fn what_cannot_be_done_is_said() {
    let e = |text: &str, edit: Edit| apply(text, &edit).unwrap_err().0;
    assert_eq!(
        e(
            SHOWCASE,
            Edit::AddState {
                name: "show".into()
            }
        ),
        "there is a state `show` already"
    );
    assert!(e(INTRO, Edit::AddState { name: "b".into() }).contains("start a state machine"));
    assert_eq!(
        e(SHOWCASE, Edit::DeleteCue { line: 1, col: 1 }),
        "nothing is written at 1:1: check the text again"
    );
    assert_eq!(
        e(SHOWCASE, Edit::DeleteCue { line: 999, col: 1 }),
        "nothing is written at 999:1: check the text again"
    );
    let missing = Edit::AddCue {
        state: Some("nope".into()),
        part: Part::Enter,
        cue: mqtt(None, "a/b", "ON"),
    };
    assert_eq!(e(SHOWCASE, missing), "there is no state `nope`");
    let blank = Edit::AddCue {
        state: Some("show".into()),
        part: Part::Enter,
        cue: mqtt(None, "a/b", " "),
    };
    assert!(e(SHOWCASE, blank).contains("needs its message"));
    let wrong = Edit::AddCue {
        state: None,
        part: Part::Enter,
        cue: mqtt(None, "a/b", "ON"),
    };
    assert!(e(INTRO, wrong).contains("go in actions or on_stop"));
    let late = Edit::AddCue {
        state: None,
        part: Part::Actions,
        cue: mqtt(Some(f64::NAN), "a/b", "ON"),
    };
    assert!(e(INTRO, late).contains("is not a time"));
    let t = Edit::AddTransition {
        state: Some("show".into()),
        transition: Transition {
            kind: "timeout".into(),
            goto: "END".into(),
            ..Transition::default()
        },
    };
    assert!(e(SHOWCASE, t).contains("needs its delay"));
    let (line, col) = cue_pos(SHOWCASE, "showcase.json", "room1/motor", "ON:50:L");
    assert!(e(SHOWCASE, Edit::DeleteTransition { line, col }).contains("no transition"));
    assert!(e("a: [1", Edit::AddState { name: "x".into() }).contains("does not read"));
}

/// Every edit at every place of odd texts either works or says why; none
/// panics, and what works still parses.
#[test]
fn no_edit_anywhere_in_odd_texts_panics() {
    let texts = [
        SHOWCASE.to_string(),
        INTRO.to_string(),
        "sceneId: x\ninitialState: a\nstates:\n  a:\n    onEnter:\n    timeline:\n    transitions:\n      - type: always\n        goto:\n  b: {}\n".into(),
        "{\r\n\t\"sceneId\": \"Café\",\r\n\t\"states\": {\r\n\t\t\"a\": {\"onEnter\": [{\"action\": \"mqtt\", \"topic\": \"r/l\", \"message\": \"ON\"}], \"transitions\": [{\"goto\": \"END\"}]}\r\n\t},\r\n\t\"initialState\": \"a\"\r\n}\r\n".into(),
        r#"{"sceneId":"x","initialState":"a","states":{"a":{}}}"#.into(),
        "name: é # ü\nactions: [ {at: 1, topic: a/b, message: x} ]  # flow\n# between\non_stop:\n- {topic: a/b, message: \"OFF\"}\n- topic: a/c\n  message: 'it''s'\n".into(),
        "actions:\n  - at: 1\n    topic: a/b\n    message: x\n    actions:\n      - {topic: a/c, message: y}\n".into(),
    ];
    let change = CueChange {
        at: Some(3.0),
        topic: Some(String::new()),
        message: Some("Z".into()),
        ..CueChange::default()
    };
    for text in &texts {
        let lines = text.split('\n').count() as u32;
        let mut edits = vec![
            Edit::AddState { name: "new".into() },
            Edit::AddCue {
                state: None,
                part: Part::Actions,
                cue: mqtt(Some(1.0), "a/b", "ON"),
            },
            Edit::AddCue {
                state: None,
                part: Part::Stop,
                cue: mqtt(None, "a/b", "OFF"),
            },
            Edit::AddTransition {
                state: None,
                transition: Transition {
                    kind: "always".into(),
                    goto: "END".into(),
                    ..Transition::default()
                },
            },
        ];
        for state in ["a", "b", "welcome", "show"] {
            for part in [Part::Enter, Part::Timeline, Part::Exit] {
                edits.push(Edit::AddCue {
                    state: Some(state.into()),
                    part,
                    cue: mqtt(Some(2.0), "a/b", "ON"),
                });
            }
            edits.push(Edit::AddTransition {
                state: Some(state.into()),
                transition: Transition {
                    kind: "timeout".into(),
                    goto: "END".into(),
                    delay: Some(1.0),
                    ..Transition::default()
                },
            });
        }
        for line in 1..=lines + 1 {
            let width = text
                .split('\n')
                .nth(line as usize - 1)
                .map_or(0, |l| l.chars().count()) as u32;
            for col in 1..=width + 2 {
                edits.push(Edit::SetCue {
                    line,
                    col,
                    change: change.clone(),
                });
                edits.push(Edit::DeleteCue { line, col });
                edits.push(Edit::DeleteTransition { line, col });
                edits.push(Edit::MoveCue {
                    line,
                    col,
                    state: Some("a".into()),
                    part: Part::Timeline,
                    change: CueChange::default(),
                });
                edits.push(Edit::MoveCue {
                    line,
                    col,
                    state: None,
                    part: Part::Stop,
                    change: CueChange::default(),
                });
            }
        }
        for edit in &edits {
            if let Ok(out) = apply(text, edit) {
                assert!(
                    crate::studio::tree::parse(&out).is_ok(),
                    "{edit:?} on\n{text}\ngave text that does not parse:\n{out}"
                );
            }
        }
    }
}
