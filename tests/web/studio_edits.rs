//! The studio's edits and measurements through the API: every cue of
//! every scene changed from the form on its own line, states and
//! transitions added and bad edits said, a clip's length asked of mpv, and
//! a preview's sounds on the Pi when asked, never over a show.

use super::studio::{open, send, studio_room};
use super::*;

/// `edit` made on `text` through the API: the new text.
async fn edited(room: &Room, text: &str, edit: Value) -> Result<String, (StatusCode, String)> {
    let (status, _, body) = call(
        app_for(room),
        send(
            "POST",
            "/api/studio/edit",
            Some(serde_json::json!({"text": text, "edit": edit})),
        ),
    )
    .await;
    if status == StatusCode::OK {
        Ok(json(&body)["text"].as_str().unwrap().to_string())
    } else {
        Err((
            status,
            json(&body)["error"].as_str().unwrap_or("").to_string(),
        ))
    }
}

/// The check of unsaved `text` as `file`.
async fn check(room: &Room, file: &str, text: &str) -> Value {
    let (status, _, body) = call(
        app_for(room),
        send(
            "POST",
            "/api/studio/check",
            Some(serde_json::json!({"file": file, "text": text})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{file}");
    json(&body)
}

#[tokio::test]
async fn every_cue_of_every_scene_is_changed_from_the_form_on_its_own_line_and_still_loads() {
    let (_site, room) = studio_room().await;
    let mut cues = 0;
    for file in ["intro.yaml", "outro.yaml", "showcase.json", "SceneV01.json"] {
        let v = open(&room, file).await;
        let text = v["text"].as_str().unwrap().to_string();
        for st in v["timelines"].as_array().unwrap() {
            for lane in st["lanes"].as_array().unwrap() {
                let new = match lane["kind"].as_str().unwrap() {
                    "mqtt" => "CHANGED",
                    "audio" => "PLAY:chime.wav",
                    kind => panic!("no {kind} cue in the examples"),
                };
                for m in lane["marks"].as_array().unwrap() {
                    let new = if m["label"] == new {
                        "PLAY:welcome.wav"
                    } else {
                        new
                    };
                    let edit = serde_json::json!({"op": "set_cue", "line": m["line"], "col": m["col"],
                        "change": {"message": new}});
                    let out = edited(&room, &text, edit).await.unwrap();
                    let changed: Vec<(&str, &str)> = text
                        .split('\n')
                        .zip(out.split('\n'))
                        .filter(|(a, b)| a != b)
                        .collect();
                    assert_eq!(changed.len(), 1, "{file} {m}: {changed:?}");
                    assert!(changed[0].1.contains(new), "{file}: {changed:?}");
                    assert_eq!(text.split('\n').count(), out.split('\n').count());
                    let after = check(&room, file, &out).await;
                    // A changed sound is no longer the one an audioEnd waits
                    // for; anything else loads as before.
                    let fine = after["ok"] == true
                        || after["diagnostics"].to_string().contains("audioEnd target");
                    assert!(fine, "{file}: {}\n{out}", after["diagnostics"]);
                    cues += 1;
                }
            }
            if v["form"] == "machine" {
                let state = st["state"].as_str().unwrap();
                let add = serde_json::json!({"op": "add_cue", "state": state, "part": "timeline",
                    "cue": {"at": 1.5, "action": "mqtt", "topic": "room1/light", "message": "ON"}});
                let out = edited(&room, &text, add).await.unwrap();
                assert_eq!(
                    check(&room, file, &out).await["ok"],
                    true,
                    "{file} {state}:\n{out}"
                );
                assert!(
                    out.contains("\r\n") == text.contains("\r\n"),
                    "line ends kept"
                );
            }
        }
    }
    assert_eq!(cues, 18, "every cue of the four files");
    room.shutdown(Role::Daemon).await;
}

#[tokio::test]
async fn a_state_and_its_transitions_are_added_and_bad_edits_are_said() {
    let (_site, room) = studio_room().await;
    let text = open(&room, "showcase.json").await["text"]
        .as_str()
        .unwrap()
        .to_string();
    let out = edited(
        &room,
        &text,
        serde_json::json!({"op": "add_state", "name": "finale"}),
    )
    .await
    .unwrap();
    let out = edited(
        &room,
        &out,
        serde_json::json!({"op": "add_transition", "state": "finale",
            "transition": {"type": "timeout", "delay": 3, "goto": "END"}}),
    )
    .await
    .unwrap();
    let out = edited(
        &room,
        &out,
        serde_json::json!({"op": "add_transition", "state": "goodbye",
            "transition": {"type": "mqttMessage", "topic": "room1/visitor_button", "message": "pressed", "goto": "finale"}}),
    )
    .await
    .unwrap();
    let v = check(&room, "showcase.json", &out).await;
    assert_eq!(v["ok"], true, "{}\n{out}", v["diagnostics"]);
    let finale = v["timelines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["state"] == "finale")
        .expect("the new state is met");
    assert_eq!(finale["transitions"][0]["label"], "timeout 3s → END");
    let way = &finale["transitions"][0];
    let out = edited(
        &room,
        &out,
        serde_json::json!({"op": "delete_transition", "line": way["line"], "col": way["col"]}),
    )
    .await
    .unwrap();
    assert!(!out.contains("\"delay\": 3"), "{out}");

    for (edit, status, says) in [
        (
            serde_json::json!({"op": "explode"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "op",
        ),
        (
            serde_json::json!({"op": "delete_cue", "line": 2, "col": 3}),
            StatusCode::BAD_REQUEST,
            "nothing is written at 2:3",
        ),
        (
            serde_json::json!({"op": "add_state", "name": "../x"}),
            StatusCode::BAD_REQUEST,
            "cannot name a state",
        ),
        (
            serde_json::json!({"op": "add_cue", "state": "show", "part": "timeline",
                "cue": {"at": -1, "message": "ON"}}),
            StatusCode::BAD_REQUEST,
            "is not a time",
        ),
    ] {
        let (got, error) = edited(&room, &text, edit.clone()).await.unwrap_err();
        assert_eq!(got, status, "{edit}: {error}");
        assert!(error.contains(says), "{edit}: {error}");
    }
    let big = "#".repeat(300 * 1024);
    let (got, error) = edited(
        &room,
        &big,
        serde_json::json!({"op": "add_state", "name": "x"}),
    )
    .await
    .unwrap_err();
    assert_eq!(got, StatusCode::BAD_REQUEST, "{error}");
    assert!(error.contains("256 KiB"), "{error}");
    room.shutdown(Role::Daemon).await;
}

#[tokio::test]
async fn a_clips_length_is_asked_of_mpv_and_drawn_on_the_timeline() {
    let (site, room) = studio_room().await;
    let clip = roomctl::testkit::sine_wav(2.0, 330.0, 0.2);
    std::fs::write(site.dir.path().join("media/clip.mp4"), clip).unwrap();
    let film = r#"{"sceneId": "film", "initialState": "a", "states": {"a": {
        "onEnter": [{"action": "video", "message": "PLAY_VIDEO:clip.mp4"}],
        "transitions": [{"type": "videoEnd", "target": "clip.mp4", "goto": "END"}]}}}"#;
    let v = check(&room, "film.json", film).await;
    assert_eq!(v["ok"], true, "{}", v["diagnostics"]);
    let lanes = v["timelines"][0]["lanes"].as_array().unwrap().clone();
    let video = lanes
        .iter()
        .find(|l| l["kind"] == "video")
        .unwrap_or_else(|| panic!("no video lane: {lanes:?}"));
    let len = video["marks"][0]["len"].as_f64().expect("measured by mpv");
    assert!((len - 2.0).abs() < 0.05, "{len}");
    room.shutdown(Role::Daemon).await;
}

#[tokio::test]
async fn a_previews_sounds_play_on_the_pi_when_asked_and_never_over_a_show() {
    let (_site, room) = studio_room().await;
    // One app for the whole test: the preview lives in its state.
    let router = app(state(&room));
    let bye = r#"{"sceneId": "bye", "initialState": "a", "states": {"a": {
        "onEnter": [{"action": "audio", "message": "PLAY:chime.wav"}],
        "transitions": [{"type": "audioEnd", "target": "chime.wav", "goto": "END"}]}}}"#;
    let preview = |sounds: bool| {
        send(
            "POST",
            "/api/studio/preview",
            Some(serde_json::json!({"file": "bye.json", "text": bye, "sounds": sounds})),
        )
    };
    let started = |events: &mut tokio::sync::broadcast::Receiver<roomctl::events::Event>| {
        let mut files = Vec::new();
        while let Ok(e) = events.try_recv() {
            if let roomctl::events::Event::Media(m) = e
                && m.event == "started"
            {
                files.push(m.file.unwrap_or_default());
            }
        }
        files
    };

    // Asked: the chime plays on the Pi, and stops with the preview.
    let mut events = room.events.subscribe();
    let (status, _, body) = call(router.clone(), preview(true)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let mut heard = Vec::new();
    eventually(Duration::from_secs(3), "the chime played on the Pi", || {
        heard.extend(started(&mut events));
        heard.iter().any(|f| f == "chime.wav")
    })
    .await;
    let (_, _, body) = call(router.clone(), send("GET", "/api/studio/preview", None)).await;
    assert!(
        String::from_utf8_lossy(&body).contains("PLAY:chime.wav (1.0 s, played on the Pi)"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    eventually(
        Duration::from_secs(5),
        "the preview over, nothing playing",
        || room.media.status().audio.playing.is_empty(),
    )
    .await;
    // Each sound is an action in the show log, with who played it.
    let log = room.show_log.as_ref().unwrap();
    eventually(
        Duration::from_secs(3),
        "the preview's sounds in the show log",
        || {
            let texts: Vec<String> = log
                .read_all()
                .into_iter()
                .filter(|r| r.kind == "action")
                .map(|r| r.text)
                .collect();
            texts
                .iter()
                .any(|t| t.ends_with("preview sound \"PLAY:chime.wav\""))
                && texts.iter().any(|t| t.ends_with("preview sound \"STOP\""))
        },
    )
    .await;

    // Not asked: nothing on the speakers.
    let (status, _, _) = call(router.clone(), preview(false)).await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(started(&mut events), Vec::<String>::new());

    // A show running: the preview's sounds would play over it.
    let (status, _, _) = call(
        router.clone(),
        send("POST", "/api/scenes/intro/start", None),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = call(router.clone(), preview(true)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        String::from_utf8_lossy(&body).contains("a preview's sounds would play over it"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    room.shutdown(Role::Daemon).await;
}
