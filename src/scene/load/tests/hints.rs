//! The loader's hints for a new author's mistakes, each with its exact
//! message.

use super::*;

fn warnings(text: &str) -> Vec<String> {
    match parse_scene(text, Path::new("scenes/t.yaml"), &ctx()) {
        Ok((_, w)) => w.iter().map(ToString::to_string).collect(),
        Err((e, _)) => panic!("{e}"),
    }
}

const TWO_STATES: &str = "sceneId: x\ninitialState: intro\nstates:\n  intro:\n    transitions:\n      - {type: timeout, delay: 1, goto: GOTO}\n  wait_button:\n    transitions:\n      - {type: always, goto: END}\n";

#[test]
fn a_misspelt_state_gets_a_suggestion_and_end_is_listed_once() {
    let e = parse(&TWO_STATES.replace("GOTO", "wait_buton")).unwrap_err();
    assert_eq!(
        e.trim(),
        "scenes/t.yaml:6:41: goto `wait_buton` is not a state: did you mean `wait_button`? (states: intro, wait_button; END ends the scene)"
    );
    // A state named END is not listed twice.
    let with_end = format!(
        "{}  END:\n    onEnter: []\n",
        TWO_STATES.replace("GOTO", "nowhere")
    );
    let e = parse(&with_end).unwrap_err();
    assert_eq!(
        e.trim(),
        "scenes/t.yaml:6:41: goto `nowhere` is not a state (states: intro, wait_button; END ends the scene)"
    );
}

#[test]
fn goto_end_in_another_case_is_a_warning() {
    assert_eq!(
        warnings(&TWO_STATES.replace("GOTO", "end")),
        [
            "scenes/t.yaml:6:41: warning: goto `end` ends the scene: write it `END` (states are named with their case)"
        ]
    );
}

#[test]
fn times_over_an_hour_are_a_warning() {
    assert_eq!(
        warnings(
            &TWO_STATES
                .replace("delay: 1", "delay: 20000")
                .replace("GOTO", "END")
        ),
        [
            "scenes/t.yaml:6:32: warning: `delay` is 20000s (5 h 33 min), over an hour: numbers are seconds (write `20s` or `500ms` to be sure)"
        ]
    );
    assert_eq!(
        warnings("actions:\n  - {at: 7200, topic: room1/light, message: ON}\n"),
        [
            "scenes/t.yaml:2:10: warning: `at` is 2h (2 h 0 min), over an hour: numbers are seconds (write `20s` or `500ms` to be sure)"
        ]
    );
    assert!(warnings("actions:\n  - {at: 3600, topic: room1/light, message: ON}\n").is_empty());
}

#[test]
fn a_misspelt_sound_is_said_where_it_is_played() {
    let text = "sceneId: x\ninitialState: a\nstates:\n  a:\n    onEnter:\n      - {action: audio, message: 'PLAY:welcom.wav'}\n    transitions:\n      - {type: audioEnd, target: welcome.wav, goto: END}\n";
    let media = tempfile::tempdir().unwrap();
    std::fs::write(media.path().join("welcome.wav"), b"RIFF").unwrap();
    let with_media = SceneContext {
        media: Some(MediaDirs {
            audio: media.path().to_path_buf(),
            video: media.path().to_path_buf(),
        }),
        ..ctx()
    };
    let err = |text: &str| {
        parse_scene(text, Path::new("scenes/t.yaml"), &with_media)
            .map(|_| ())
            .unwrap_err()
            .0
            .to_string()
    };
    assert_eq!(
        err(text).trim(),
        "scenes/t.yaml:6:9: sound `welcom.wav` is not the `welcome.wav` that the audioEnd transition at line 8 waits for: did you mean `welcome.wav`? (as written that transition could never fire)"
    );
    // The other way round (the sound on disk is played, the target is
    // off): said at the transition.
    let swapped = text
        .replace("target: welcome.wav", "target: TARGET")
        .replace("PLAY:welcom.wav", "PLAY:welcome.wav")
        .replace("TARGET", "welcom.wav");
    assert_eq!(
        err(&swapped).trim(),
        "scenes/t.yaml:8:9: audioEnd target `welcom.wav` is no file this scene plays (it plays: welcome.wav); the transition could never fire: did you mean `welcome.wav`?"
    );
    // Nothing close: said at the transition, with what the scene plays.
    let text = text.replace("welcom.wav", "music.wav");
    assert_eq!(
        err(&text).trim(),
        "scenes/t.yaml:8:9: audioEnd target `welcome.wav` is no file this scene plays (it plays: music.wav); the transition could never fire"
    );
}

#[test]
fn a_closing_sound_in_end_alone_is_cut_off() {
    let text = "sceneId: x\ninitialState: a\nstates:\n  a:\n    transitions:\n      - {type: always, goto: END}\n  END:\n    onEnter:\n      - {action: audio, message: 'PLAY:chime.wav'}\n";
    assert_eq!(
        warnings(text),
        [
            "scenes/t.yaml:9:9: warning: `chime.wav` in END's onEnter is cut off: the scene ends (and fades it out) as soon as END is entered; play it in the state before and go to END on its audioEnd/videoEnd, or give END a timeline as long as it"
        ]
    );
    // With a timeline as long as the sound, END waits for it.
    let timed =
        format!("{text}    timeline:\n      - {{at: 3, topic: room1/light, message: 'OFF'}}\n");
    assert!(warnings(&timed).is_empty());
}

#[test]
fn alias_bombs_and_deep_nesting_are_refused_in_words() {
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (i, prev) in ('b'..='h').zip('a'..) {
        let refs = vec![format!("*{prev}"); 10].join(", ");
        bomb.push_str(&format!("{i}: &{i} [{refs}]\n"));
    }
    let e = parse(&bomb).unwrap_err();
    assert!(
        e.contains(": the file expands to more than 100000 YAML nodes (aliases repeated inside aliases?): far more than any scene; it is not read"),
        "{e}"
    );
    let deep = format!("{}1{}", "[".repeat(2000), "]".repeat(2000));
    let e = parse(&deep).unwrap_err();
    assert!(
        e.contains(": nested too deep (lists or maps inside each other): a scene needs a few levels; it is not read"),
        "{e}"
    );
}

#[test]
fn a_predecessor_files_fades_load_and_its_bass_boost_is_a_warning() {
    let text = r#"{"sceneId": "old", "initialState": "a", "states": {"a": {
  "onEnter": [
    {"action": "audio", "message": "PLAY:bg.mp3"},
    {"action": "audio", "message": "FADE_IN:2"},
    {"action": "audio", "message": "BASS_BOOST:ON"}
  ],
  "onExit": [{"action": "audio", "message": "FADE_OUT:1.5"}],
  "transitions": [{"type": "timeout", "delay": 5, "goto": "END"}]}}}"#;
    let (scene, w) = parse_scene(text, Path::new("scenes/old.json"), &ctx()).unwrap();
    let warned: Vec<String> = w.iter().map(ToString::to_string).collect();
    assert_eq!(
        warned,
        [
            "scenes/old.json:5:36: warning: audio command `BASS_BOOST:ON` has no meaning here: it is skipped, as the room controllers skipped it"
        ]
    );
    let a = &scene.states["a"];
    let cues: Vec<String> = a
        .on_enter
        .iter()
        .chain(&a.on_exit)
        .map(|a| a.message.clone())
        .collect();
    assert_eq!(cues, ["PLAY:bg.mp3", "FADE_IN:2", "FADE_OUT:1.5"]);
    let bad = text.replace("FADE_IN:2", "FADE_IN:soon");
    let e = parse_scene(&bad, Path::new("scenes/old.json"), &ctx())
        .unwrap_err()
        .0;
    assert_eq!(
        e.to_string().trim(),
        "scenes/old.json:4:36: FADE_IN needs seconds from 0 to 60, got `soon`"
    );
}
