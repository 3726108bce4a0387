//! One file checked against the room: the hints a new author needs, each
//! with its exact message.

use super::*;

/// A room: config, the other scenes, media; returns the folder and config.
fn room(triggers: &str) -> (tempfile::TempDir, Config) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::create_dir_all(p.join("scenes")).unwrap();
    std::fs::create_dir_all(p.join("media")).unwrap();
    std::fs::write(p.join("media/welcome.wav"), b"RIFF").unwrap();
    std::fs::write(
        p.join("scenes/intro.yaml"),
        "name: intro\nactions:\n  - {at: 0, topic: room1/light, message: 'ON'}\n",
    )
    .unwrap();
    std::fs::write(
        p.join("roomctl.yaml"),
        format!("room: room1\nmqtt: {{brokers: [{{broker: h}}]}}\n{triggers}"),
    )
    .unwrap();
    let c = Config::load(&p.join("roomctl.yaml")).unwrap();
    (d, c)
}

fn lines(d: &Diagnostics) -> Vec<String> {
    d.iter()
        .map(|d| {
            let s = d.to_string();
            s[s.find("new.yaml").unwrap()..].to_string()
        })
        .collect()
}

#[test]
fn a_missing_sound_names_the_folder_and_the_nearest_file() {
    let (d, c) = room("");
    let text = "name: new\nactions:\n  - {at: 0, topic: room1/audio, message: 'PLAY:welcom.wav'}\n";
    let r = check_text(&c, &c.scenes.dir.join("new.yaml"), text, &[]);
    let folder = crate::diag::normalize(&d.path().join("media"));
    assert_eq!(
        lines(&r.errors),
        [format!(
            "new.yaml:3:5: audio file `welcom.wav` not found in {}: did you mean `welcome.wav`?",
            folder.display()
        )]
    );
    assert!(r.scene.is_some(), "the scene itself loads");
}

#[test]
fn a_channel_one_letter_off_is_said() {
    let (_d, c) = room("");
    let text = "name: new\nactions:\n  - {at: 0, topic: room1/ligth, message: 'ON'}\n";
    let r = check_text(&c, &c.scenes.dir.join("new.yaml"), text, &[]);
    assert!(r.ok(), "{}", r.errors);
    assert_eq!(
        lines(&r.warnings),
        [
            "new.yaml:3:5: warning: no board announces `room1/ligth` and no other file sends to it: did you mean `room1/light`?"
        ]
    );
    // With the boards known, a channel none of them answers is said too.
    let text = "name: new\nactions:\n  - {at: 0, topic: room1/fog, message: 'ON'}\n";
    let boards = ["room1/light".to_string(), "room1/motor".to_string()];
    let r = check_text(&c, &c.scenes.dir.join("new.yaml"), text, &boards);
    assert_eq!(
        lines(&r.warnings),
        [
            "new.yaml:3:5: warning: no board announces `room1/fog` and no other file sends to it (boards answer: room1/light, room1/motor)"
        ]
    );
    // Numbered channels are channels, not typos.
    let text = "name: new\nactions:\n  - {at: 0, topic: room1/light2, message: 'ON'}\n";
    let r = check_text(&c, &c.scenes.dir.join("new.yaml"), text, &[]);
    assert!(r.warnings.is_empty(), "{}", r.warnings);
}

const WAITS: &str = "sceneId: new\ninitialState: a\nstates:\n  a:\n    transitions:\n      - {type: mqttMessage, topic: TOPIC, message: pressed, goto: END}\n";

#[test]
fn a_misspelt_button_and_a_clashing_trigger_are_said() {
    let (_d, c) = room("triggers:\n  - {topic: room1/button, payload: pressed, scene: intro}\n");
    let path = c.scenes.dir.join("new.yaml");
    let r = check_text(&c, &path, &WAITS.replace("TOPIC", "room1/buton"), &[]);
    assert_eq!(
        lines(&r.warnings),
        [
            "new.yaml:6:9: warning: nothing else in the room uses `room1/buton`: did you mean `room1/button`?"
        ]
    );
    let r = check_text(&c, &path, &WAITS.replace("TOPIC", "room1/button"), &[]);
    let config = crate::diag::normalize(&c.file);
    assert_eq!(
        lines(&r.warnings),
        [format!(
            "new.yaml:6:9: warning: the config's trigger `room1/button` = `pressed` ({}:4) also matches this message, and starts `intro` whenever the room is idle: give this scene its own topic or payload",
            config.display()
        )]
    );
    // Another payload on the same button does not clash.
    let other = WAITS
        .replace("TOPIC", "room1/button")
        .replace("pressed", "held");
    assert!(check_text(&c, &path, &other, &[]).warnings.is_empty());
}

#[test]
fn a_file_from_elsewhere_is_checked_as_if_it_were_in_the_scenes_folder() {
    let (d, c) = room("");
    let outside = d.path().join("draft/intro.yaml");
    std::fs::create_dir_all(outside.parent().unwrap()).unwrap();
    std::fs::write(
        &outside,
        "name: intro\nactions:\n  - {at: 0, topic: room1/light, message: 'OFF'}\n",
    )
    .unwrap();
    // Named like a file of the folder: it stands in for it, no clash.
    let r = check_file(&c, &outside);
    assert!(r.ok(), "{}", r.errors);
    assert_eq!(r.scene.unwrap().name, "intro");
    // Under another name, the same scene name would clash, as it would
    // if copied there.
    let other = d.path().join("draft/new.yaml");
    std::fs::copy(&outside, &other).unwrap();
    assert!(
        check_file(&c, &other)
            .errors
            .to_string()
            .contains("scene name `intro` is already used by"),
    );
    // Its errors name the file given.
    std::fs::write(
        &outside,
        "name: x\nactions:\n  - {at: 0, topic: room1/light}\n",
    )
    .unwrap();
    let r = check_file(&c, &outside);
    assert_eq!(
        r.errors.to_string().trim(),
        format!(
            "{}:3:5: action in actions needs `message`",
            crate::diag::normalize(&outside).display()
        )
    );
}
