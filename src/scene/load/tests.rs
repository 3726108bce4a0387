use super::*;
use std::time::Duration;

fn ctx() -> SceneContext {
    SceneContext {
        room: "room1".into(),
        local_channels: vec!["audio".into(), "video".into()],
        media: None,
    }
}

fn parse(text: &str) -> Result<Scene, String> {
    parse_scene(text, Path::new("scenes/t.yaml"), &ctx())
        .map(|(s, _)| s)
        .map_err(|(e, _)| e.to_string())
}

const INTRO: &str = r#"
name: intro
description: Lights up, music, steam, motor
actions:
  - { at: 0.0,  topic: room1/light, message: "ON" }
  - { at: 2.5,  topic: room1/audio, message: "PLAY:bg.mp3:0.8" }
  - { at: 5.0,  topic: room1/steam, message: "ON" }
  - { at: 10.0, topic: room1/motor, message: START, timeout: 2s }
on_stop:
  - { topic: room1/steam, message: "OFF" }
"#;

#[test]
fn simple_form_is_one_state_ending_after_the_last_action() {
    let s = parse(INTRO).unwrap();
    assert_eq!(s.name, "intro");
    assert_eq!(s.form, SceneForm::Simple);
    let st = s.state(SIMPLE_STATE).unwrap();
    assert_eq!(st.timeline.len(), 4);
    assert_eq!(
        st.timeline[1].actions[0].kind,
        ActionKind::Audio(AudioCommand::Play {
            file: "bg.mp3".into(),
            volume: Some(0.8)
        })
    );
    assert!(!st.timeline[1].actions[0].feedback);
    assert!(st.timeline[0].actions[0].feedback);
    assert_eq!(
        st.timeline[3].actions[0].timeout,
        Some(Duration::from_secs(2))
    );
    assert_eq!(s.duration(), Some(Duration::from_secs(10)));
    assert_eq!(s.on_stop.len(), 1);
    assert_eq!(s.summary().action_count, 4);
}

#[test]
fn explicit_duration_and_unsorted_actions() {
    let s = parse("actions:\n  - {at: 3, topic: r/a, message: X}\n  - {at: 1, topic: r/b, message: Y}\nduration: 20\n").unwrap();
    assert_eq!(s.name, "t", "name defaults to the file stem");
    let st = s.state(SIMPLE_STATE).unwrap();
    assert_eq!(st.timeline[0].at, Duration::from_secs(1));
    assert_eq!(s.duration(), Some(Duration::from_secs(20)));
    let e = parse("actions:\n  - {at: 3, topic: r/a, message: X}\nduration: 2\n").unwrap_err();
    assert!(
        e.contains("t.yaml:3:11: duration 2.000s is before the last action"),
        "{e}"
    );
}

const EDITOR_JSON: &str = r#"{
  "sceneId": "room1_intro",
  "description": "Úvodná show",
  "version": "2.0",
  "initialState": "start",
  "globalPrefix": "room1",
  "states": {
    "start": {
      "onEnter": [
        {"topic": "room1/light", "message": "OFF"},
        {"topic": "room1/audio", "message": "PLAY:welcome.mp3"}
      ],
      "transitions": [
        {"type": "audioEnd", "goto": "main_show"}
      ]
    },
    "main_show": {
      "timeline": [
        {"at": 2.0, "topic": "room1/motor1", "message": "ON:50:L"}
      ],
      "transitions": [
        {"type": "timeout", "delay": 10.0, "goto": "end"}
      ]
    }
  }
}"#;

#[test]
fn editor_state_machine_json_loads_unchanged() {
    let (s, warnings) =
        parse_scene(EDITOR_JSON, Path::new("scenes/room1_intro.json"), &ctx()).unwrap();
    // It loads unchanged; its lower-case `end` is said, not refused.
    assert_eq!(
        warnings.to_string(),
        "scenes/room1_intro.json:22:52: warning: goto `end` ends the scene: write it `END` (states are named with their case)"
    );
    assert_eq!(s.name, "room1_intro");
    assert_eq!(s.form, SceneForm::StateMachine);
    assert_eq!(s.initial_state, "start");
    let start = s.state("start").unwrap();
    assert_eq!(start.on_enter.len(), 2);
    assert!(matches!(start.on_enter[1].kind, ActionKind::Audio(_)));
    assert_eq!(start.transitions[0].trigger, Trigger::AudioEnd(None));
    let main = s.state("main_show").unwrap();
    assert_eq!(
        main.transitions[0].goto,
        Goto::End,
        "lowercase `end` with no such state ends the scene"
    );
    assert_eq!(s.duration(), None, "waits for the audio to end");
}

#[test]
fn full_format_with_groups_global_events_and_end_state() {
    let text = r#"{
  "sceneId": "show",
  "initialState": "a",
  "globalEvents": [{"type": "mqttMessage", "topic": "room1/emergency", "message": "PRESSED", "goto": "END"}],
  "states": {
    "a": {
      "timeline": [{"at": 1, "actions": [
          {"action": "mqtt", "topic": "room1/light", "message": "ON"},
          {"action": "video", "message": "PLAY_VIDEO:clip.mp4"}]}],
      "transitions": [{"type": "always", "goto": "b"}]
    },
    "b": {"transitions": [{"type": "timeout", "delay": 4, "goto": "END"}]},
    "END": {"onEnter": [{"action": "audio", "message": "STOP"}]}
  }
}"#;
    let s = parse(text).unwrap();
    let a = s.state("a").unwrap();
    assert_eq!(a.timeline[0].actions.len(), 2);
    assert_eq!(a.timeline[0].actions[1].topic, "room1/video");
    assert_eq!(s.global_events.len(), 1);
    assert_eq!(
        s.state("b").unwrap().transitions[0].goto,
        Goto::State("END".into())
    );
    assert_eq!(s.event_topics(), ["room1/emergency"]);
    assert_eq!(
        s.duration(),
        Some(Duration::from_secs(4)),
        "a -> b at once, b -> END after 4 s"
    );
}

#[test]
fn errors_point_at_the_problem() {
    let e = parse("sceneId: x\ninitialState: nope\nstates:\n  a:\n    transitions:\n      - {type: timeout, delay: 1, goto: b}\n      - {type: teleport, goto: a}\n").unwrap_err();
    assert!(
        e.contains("t.yaml:2:15: initialState `nope` is not one of the states (a)"),
        "{e}"
    );
    assert!(
        e.contains("t.yaml:6:41: goto `b` is not a state (states: a; END ends the scene)"),
        "{e}"
    );
    assert!(
        e.contains("t.yaml:7:16: unknown transition type `teleport`"),
        "{e}"
    );

    let e = parse("actions:\n  - {at: 0, topic: room1/audio, message: \"PLAY:x.mp3:7\"}\n  - {at: 1, topic: room1/light}\n  - {topic: room1/light, message: ON}\n").unwrap_err();
    assert!(e.contains("t.yaml:2:42: volume 7 is outside 0..1"), "{e}");
    assert!(
        e.contains("t.yaml:3:5: action in actions needs `message`"),
        "{e}"
    );
    assert!(e.contains("t.yaml:4:5: action needs `at`"), "{e}");

    let e = parse("actions:\n  - {at: 0, action: laser, topic: r/x, message: ON}\n").unwrap_err();
    assert!(e.contains(":2:21: unknown action type `laser`"), "{e}");
    let e = parse("actions:\n  - {at: 0, topic: room1/#, message: ON}\n").unwrap_err();
    assert!(e.contains("plain topic"), "{e}");
    let e = parse("description: nothing\n").unwrap_err();
    assert!(e.contains("neither `actions`"), "{e}");
    let e = parse("actions: [\n").unwrap_err();
    assert!(e.starts_with("scenes/t.yaml:"), "{e}");
}

#[test]
fn values_that_break_the_daemon_are_errors_with_positions() {
    // Times beyond a day (1e19 s overflows every deadline).
    let e = parse("actions:\n  - {at: 1e19, topic: r/a, message: X}\n").unwrap_err();
    assert!(
        e.contains("t.yaml:2:10: at 1e19s is outside 0s..24h"),
        "{e}"
    );
    let e = parse("actions:\n  - {at: 1, topic: r/a, message: X}\nduration: 1e19\n").unwrap_err();
    assert!(
        e.contains("t.yaml:3:11: duration 1e19s is outside 0s..24h"),
        "{e}"
    );
    let e = parse("sceneId: x\ninitialState: a\nstates:\n  a:\n    transitions: [{type: timeout, delay: 1e19, goto: END}]\n").unwrap_err();
    assert!(
        e.contains("t.yaml:5:42: delay 1e19s is outside 0s..24h"),
        "{e}"
    );
    let e = parse("actions:\n  - {at: 0, topic: r/a, message: X, timeout: 1e19}\n").unwrap_err();
    assert!(
        e.contains("t.yaml:2:46: timeout 1e19s is outside 10ms..10m"),
        "{e}"
    );
    // Topics.
    let e = parse("actions:\n  - {at: 0, topic: \"r/\\0x\", message: X}\n").unwrap_err();
    assert!(
        e.contains("t.yaml:2:20: topic must not contain a NUL character"),
        "{e}"
    );
    let long = "a".repeat(65_536);
    let e = parse(&format!(
        "actions:\n  - {{at: 0, topic: {long}, message: X}}\n"
    ))
    .unwrap_err();
    assert!(
        e.contains("t.yaml:2:20: topic is 65536 bytes long; MQTT allows at most 65535"),
        "{e}"
    );
    let e = parse("sceneId: x\ninitialState: a\nstates:\n  a:\n    transitions: [{type: mqttMessage, topic: a/#/b, goto: END}]\n").unwrap_err();
    assert!(
        e.contains(":5:46: mqttMessage topic: filter `a/#/b`: '#' must be the whole last level"),
        "{e}"
    );
    // A message no broker would take.
    let big = "x".repeat(300 * 1024);
    let e = parse(&format!(
        "actions:\n  - {{at: 0, topic: r/a, message: {big}}}\n"
    ))
    .unwrap_err();
    assert!(
        e.contains(":2:34: message is 307200 bytes; an MQTT packet may carry at most 256 KiB"),
        "{e}"
    );
}

#[test]
fn an_always_loop_is_an_error_at_load_time() {
    let e = parse(
            r#"{"sceneId": "x", "initialState": "a", "states": {
  "a": {"onEnter": [{"topic": "r/a", "message": "in"}], "transitions": [{"type": "always", "goto": "b"}]},
  "b": {"transitions": [{"type": "mqttMessage", "topic": "r/x", "goto": "END"}, {"type": "timeout", "delay": 0, "goto": "a"}]}}}"#,
        )
        .unwrap_err();
    assert!(
        e.contains(
            "t.yaml:2:73: states `a` -> `b` -> `a` hand over to each other without time passing"
        ),
        "{e}"
    );
    // Handing over at once is fine when it ends somewhere.
    parse(
        r#"{"sceneId": "x", "initialState": "a", "states": {
  "a": {"transitions": [{"type": "always", "goto": "b"}]},
  "b": {"transitions": [{"type": "timeout", "delay": 1, "goto": "a"}]}}}"#,
    )
    .unwrap();
}

#[test]
fn unknown_keys_are_warnings_unless_clearly_a_mistake() {
    // Keys of other tools and editors: warnings.
    let (_, w) = parse_scene(
            "name: x\ncolour: red\nid: 42\nactions:\n  - {at: 0, topic: r/l, message: ON, position: [3, 4]}\n",
            Path::new("t.yaml"),
            &ctx(),
        )
        .unwrap();
    let text = w.to_string();
    assert!(
        text.contains("t.yaml:2:1: warning: unknown key `colour` (ignored)"),
        "{text}"
    );
    assert!(
        text.contains("t.yaml:3:1: warning: unknown key `id` (ignored)"),
        "{text}"
    );
    assert!(
        text.contains("t.yaml:5:38: warning: unknown key `position` (ignored)"),
        "{text}"
    );
    // A misspelt known key would silently drop what it holds: an error.
    let e = parse("actions:\n  - {at: 0, topic: r/l, message: ON, mesage: typo}\n").unwrap_err();
    assert!(
        e.contains("t.yaml:2:38: unknown key `mesage`: did you mean `message`?"),
        "{e}"
    );
    let e = parse("actions:\n  - {at: 0, topic: r/l, message: ON}\non_stopp:\n  - {topic: r/l, message: OFF}\n").unwrap_err();
    assert!(
        e.contains("t.yaml:3:1: unknown key `on_stopp`: did you mean `on_stop`?"),
        "{e}"
    );
    // A decimal comma in flow style.
    let e = parse("actions:\n  - { at: 2,5, topic: r/l, message: ON }\n").unwrap_err();
    assert!(
        e.contains("t.yaml:2:13: `5` is a number where a key belongs: a decimal comma?"),
        "{e}"
    );
}

#[test]
fn a_transition_without_type_loads_with_a_warning_and_never_fires() {
    let text = r#"{"sceneId": "x", "initialState": "a", "states": {
  "a": {"transitions": [
    {"goto": "b"},
    {"type": "timeout", "delay": 2, "goto": "b"}]},
  "b": {"onEnter": [{"topic": "room1/light", "message": "ON"}],
        "transitions": [{"type": "timeout", "delay": 1, "goto": "END"}]}}}"#;
    let (s, w) = parse_scene(text, Path::new("scenes/x.json"), &ctx()).unwrap();
    let w = w.to_string();
    assert!(
        w.contains("scenes/x.json:3:5: warning: transition without `type` (goto `b`) never fires"),
        "{w}"
    );
    assert_eq!(
        s.state("a").unwrap().transitions.len(),
        1,
        "only the typed one"
    );
    assert_eq!(s.duration(), Some(Duration::from_secs(3)));
    assert_eq!(s.warnings.len(), 1);
    assert!(s.warnings[0].starts_with("3:5: warning: transition without `type`"));
    assert_eq!(s.summary().warnings, s.warnings);
}

#[test]
fn an_end_state_may_carry_a_timeline_and_transitions() {
    let s = parse(
        r#"{"sceneId": "x", "initialState": "a", "states": {
  "a": {"transitions": [{"type": "timeout", "delay": 1, "goto": "END"}]},
  "END": {"onEnter": [{"topic": "room1/light", "message": "OFF"}],
          "timeline": [{"at": 2, "topic": "room1/smoke", "message": "OFF"}],
          "transitions": []}}}"#,
    )
    .unwrap();
    let end = s.state(END).unwrap();
    assert_eq!(end.timeline.len(), 1);
    assert_eq!(
        s.duration(),
        Some(Duration::from_secs(3)),
        "1 s + END's 2 s"
    );

    let s = parse(
        r#"{"sceneId": "x", "initialState": "a", "states": {
  "a": {"transitions": [{"type": "always", "goto": "END"}]},
  "END": {"transitions": [{"type": "timeout", "delay": 4, "goto": "a"},
                          {"type": "mqttMessage", "topic": "room1/b", "goto": "a"}]}}}"#,
    )
    .unwrap();
    assert_eq!(s.state(END).unwrap().transitions.len(), 2);
    assert_eq!(s.duration(), None, "END hands back to `a`: it loops");
}

#[test]
fn empty_lists_in_the_end_state_mean_nothing() {
    let s = parse(
            r#"{"sceneId": "x", "initialState": "a", "states": {
  "a": {"transitions": [{"type": "timeout", "delay": 2, "goto": "END"}]},
  "END": {"onEnter": [{"topic": "room1/light", "message": "OFF"}], "timeline": [], "transitions": []}}}"#,
        )
        .unwrap();
    assert_eq!(s.duration(), Some(Duration::from_secs(2)));
    let end = s.state(END).unwrap();
    assert!(end.timeline.is_empty() && end.transitions.is_empty());
    assert_eq!(end.on_enter.len(), 1);
}

#[test]
fn editor_metadata_anywhere_never_stops_a_load() {
    let text = r##"{
  "id": "6f1c", "version": "2.0", "sceneId": "x", "initialState": "a",
  "position": {"x": 10, "y": 20}, "ui": {"zoom": 1.5}, "_rev": 7, "canvasPosition": [1, 2],
  "states": {
    "a": {"id": "n1", "stateId": "s-a", "position": {"x": 1, "y": 2}, "color": "#f00",
          "label": "Intro", "onEnter": [{"id": "a1", "topic": "room1/light", "message": "ON"}],
          "transitions": [{"id": "t1", "label": "later", "type": "timeout", "delay": 1, "goto": "END"}]}}}"##;
    let (s, w) = parse_scene(text, Path::new("x.json"), &ctx()).unwrap();
    assert_eq!(s.name, "x");
    let w = w.to_string();
    for key in [
        "`id`",
        "`position`",
        "`ui`",
        "`_rev`",
        "`canvasPosition`",
        "`stateId`",
        "`color`",
        "`label`",
    ] {
        assert!(
            w.contains(&format!("warning: unknown key {key}")),
            "{key}: {w}"
        );
    }
    assert!(!w.contains("`version`"), "version is known: {w}");
}

#[test]
fn a_media_end_must_wait_for_a_file_the_scene_plays() {
    let e = parse(
        r#"{"sceneId": "x", "initialState": "a", "states": {
  "a": {"onEnter": [{"action": "audio", "message": "PLAY:welcome.wav"}],
        "transitions": [{"type": "audioEnd", "target": "welcom.wav", "goto": "END"}]}}}"#,
    )
    .unwrap_err();
    assert!(
            e.contains("t.yaml:3:25: audioEnd target `welcom.wav` is no file this scene plays (it plays: welcome.wav)"),
            "{e}"
        );
    parse(
        r#"{"sceneId": "x", "initialState": "a", "states": {
  "a": {"onEnter": [{"action": "audio", "message": "PLAY:welcome.wav"}],
        "transitions": [{"type": "audioEnd", "target": "welcome", "goto": "END"}]}}}"#,
    )
    .unwrap();
}

#[test]
fn stop_topic_is_never_feedback_tracked() {
    let s = parse("actions:\n  - {at: 0, topic: room1/STOP, message: STOP}\n").unwrap();
    assert!(!s.state(SIMPLE_STATE).unwrap().timeline[0].actions[0].feedback);
}

#[test]
fn load_dir_reports_duplicates_and_keeps_good_scenes() {
    let d = tempfile::tempdir().unwrap();
    let scenes = d.path().join("scenes");
    std::fs::create_dir(&scenes).unwrap();
    std::fs::write(
        scenes.join("a.yaml"),
        "name: same\nactions: [{at: 0, topic: r/x, message: ON}]\n",
    )
    .unwrap();
    std::fs::write(
        scenes.join("b.json"),
        r#"{"name": "same", "actions": [{"at": 0, "topic": "r/x", "message": "ON"}]}"#,
    )
    .unwrap();
    std::fs::write(
        scenes.join("c.yaml"),
        "actions: [{at: 0, topic: r/x, message: ON}]\n",
    )
    .unwrap();
    std::fs::write(scenes.join("notes.txt"), "ignored").unwrap();
    let cfg = Config::parse(
        "room: r\nmqtt: {brokers: [{broker: h}]}\n",
        &d.path().join("c.yaml"),
        &|_| None,
    )
    .unwrap();
    let l = load_scenes(&cfg);
    assert_eq!(l.scenes.names().collect::<Vec<_>>(), ["c", "same"]);
    assert_eq!(l.errors.len(), 1);
    assert!(
        l.errors
            .to_string()
            .contains("b.json:1:11: scene name `same` is already used by")
    );
}

#[test]
fn a_scene_is_also_named_by_its_file_name_unless_ambiguous() {
    let mk = |file: &str, name: &str| {
        parse_scene(
            &format!("name: {name}\nactions: [{{at: 0, topic: r/x, message: ON}}]\n"),
            Path::new(file),
            &ctx(),
        )
        .unwrap()
        .0
    };
    let set = SceneSet::new([
        mk("scenes/SceneV01.json", "room1_intro"),
        mk("scenes/test.json", "room1_test"),
        mk("scenes/plain.yaml", "plain"),
    ]);
    assert!(set.ambiguities().is_empty());
    for alias in ["SceneV01.json", "SceneV01", "room1_intro"] {
        assert_eq!(set.get(alias).unwrap().name, "room1_intro", "{alias}");
    }
    assert_eq!(set.resolve("test.json"), Some("room1_test"));
    assert_eq!(set.resolve("plain.yaml"), Some("plain"));
    assert_eq!(set.resolve("scenes/test.json"), None, "names, never paths");
    assert_eq!(
        set.names().collect::<Vec<_>>(),
        ["plain", "room1_intro", "room1_test"]
    );

    // Swapped names: `a` is a scene's name and another scene's file.
    let set = SceneSet::new([mk("a.yaml", "b"), mk("b.yaml", "a")]);
    assert_eq!(set.ambiguities().len(), 2, "{:?}", set.ambiguities());
    assert!(set.ambiguities()[0].contains("`a` could mean scene `a` (b.yaml) or `b` (a.yaml)"));
    assert_eq!(set.get("a").unwrap().name, "a", "a name always wins");
    assert!(set.get("a.yaml").is_some_and(|s| s.name == "b"));
    // Two files with one stem.
    let set = SceneSet::new([mk("x.yaml", "one"), mk("x.json", "two")]);
    assert_eq!(set.resolve("x"), None);
    assert_eq!(set.resolve("x.json"), Some("two"));
    assert_eq!(set.ambiguities().len(), 1);
}

#[test]
fn an_action_may_ask_to_be_retained() {
    let s = parse("actions:\n  - {at: 0, topic: room1/sign, message: OPEN, retain: true}\n  - {at: 1, topic: room1/light, message: 'ON'}\n").unwrap();
    let st = s.state(SIMPLE_STATE).unwrap();
    assert!(st.timeline[0].actions[0].retain);
    assert!(!st.timeline[1].actions[0].retain);
    let (_, w) = parse_scene(
        "actions:\n  - {at: 0, action: audio, message: 'PLAY:a.wav', retain: true}\n",
        Path::new("t.yaml"),
        &ctx(),
    )
    .unwrap();
    assert!(
        w.to_string()
            .contains("`retain` has no meaning for audio/video"),
        "{w}"
    );
}

#[test]
fn command_files_load_from_every_place_the_format_keeps_them() {
    let d = tempfile::tempdir().unwrap();
    let scenes = d.path().join("scenes");
    std::fs::create_dir_all(scenes.join("commands")).unwrap();
    std::fs::create_dir_all(scenes.join("r").join("commands")).unwrap();
    let one = |t: &str| format!(r#"[{{"topic": "{t}", "message": "OFF", "timestamp": 0}}]"#);
    std::fs::write(
            scenes.join("show.json"),
            r#"{"sceneId": "show", "initialState": "a", "states": {"a": {"transitions": [{"type": "timeout", "delay": 1, "goto": "END"}]}}}"#,
        )
        .unwrap();
    // An array in scenes.dir itself is a command file, not a broken scene.
    std::fs::write(scenes.join("STOPALL.json"), one("r/all")).unwrap();
    std::fs::write(
        scenes.join("commands").join("light_off.json"),
        one("r/light"),
    )
    .unwrap();
    std::fs::write(
        scenes.join("r").join("commands").join("smoke_off.json"),
        one("r/smoke"),
    )
    .unwrap();
    // The same name twice: the second is an error, the first stays.
    std::fs::write(
        scenes.join("r").join("commands").join("light_off.json"),
        one("r/light2"),
    )
    .unwrap();
    std::fs::write(
        scenes.join("commands").join("broken.json"),
        r#"[{"topic": "r/x"}]"#,
    )
    .unwrap();
    let cfg = Config::parse(
        "room: r\nmqtt: {brokers: [{broker: h}]}\n",
        &d.path().join("c.yaml"),
        &|_| None,
    )
    .unwrap();
    let l = load_scenes(&cfg);
    assert_eq!(l.scenes.names().collect::<Vec<_>>(), ["show"]);
    let names: Vec<&str> = l.scenes.commands().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["STOPALL", "light_off", "smoke_off"]);
    assert_eq!(
        l.scenes.command("light_off").unwrap().steps[0].action.topic,
        "r/light"
    );
    let e = l.errors.to_string();
    assert_eq!(l.errors.len(), 2, "{e}");
    assert!(
        e.contains("broken.json:1:2: action in a command file needs `message`"),
        "{e}"
    );
    assert!(
        e.contains("r/commands/light_off.json: command name `light_off` is already used by"),
        "{e}"
    );
    assert!(!e.contains("expected"), "{e}");
    // Command steps count as actions (feedback topics, media checks).
    assert_eq!(l.scenes.every_action().count(), 3);
}

mod hints;

mod required;
