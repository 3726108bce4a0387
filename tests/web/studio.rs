//! The scene studio's API: every scene the room loads opens as a graph
//! and timelines and saves unchanged to the same bytes; saves are checked,
//! conflicts refused, bad input said, and nothing on disk is lost.

use super::*;

const KEY: &str = "studio-key";

fn send(method: &str, path: &str, body: Option<Value>) -> Request<Body> {
    let b = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
        .header(header::CONTENT_TYPE, "application/json");
    b.body(body.map_or(Body::empty(), |v| Body::from(v.to_string())))
        .unwrap()
}

/// The studio's view of `file` (its text, version, diagnostics...).
async fn open(room: &Room, file: &str) -> Value {
    let (status, _, body) = call(
        app_for(room),
        send("GET", &format!("/api/studio/scenes/{file}"), None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{file}");
    json(&body)
}

/// A room with the repository's example scenes and a predecessor file
/// written the way its editor writes them (tabs, CRLF, odd key order).
async fn studio_room() -> (Site, Room) {
    let predecessor = "{\r\n\t\"version\": \"2.0\",\r\n\t\"states\": {\r\n\t\t\"b\": {\"onEnter\": [{\"action\": \"mqtt\", \"topic\": \"room1/light\", \"message\": \"OFF\"}]},\r\n\t\t\"a\": {\"transitions\": [{\"goto\": \"b\", \"type\": \"timeout\", \"delay\": 1.50}, {\"goto\": \"END\"}]}\r\n\t},\r\n\t\"initialState\": \"a\",\r\n\t\"sceneId\": \"Café\"\r\n}\r\n";
    let mut files: Vec<(String, String)> = std::fs::read_dir("scenes")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    files.push(("SceneV01.json".into(), predecessor.into()));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let site = site(&[1], &refs, "");
    site.set_web_token_as(KEY, "technician");
    let media = site.dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    for e in std::fs::read_dir("config/media").unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, media.join(p.file_name().unwrap())).unwrap();
    }
    let (config, scenes) = site.load();
    (site, Room::start(config, scenes, Role::Daemon))
}

#[tokio::test]
async fn every_scene_opens_as_a_graph_and_timelines_and_saves_unchanged_to_the_same_bytes() {
    let (site, room) = studio_room().await;
    let (status, _, body) = call(app_for(&room), send("GET", "/api/studio", None)).await;
    assert_eq!(status, StatusCode::OK);
    let files = json(&body)["files"].as_array().unwrap().clone();
    assert_eq!(files.len(), 4, "{files:?}");
    for f in files {
        let file = f["file"].as_str().unwrap();
        assert_eq!(f["loads"], true, "{file}");
        let v = open(&room, file).await;
        assert_eq!(v["ok"], true, "{file}: {}", v["diagnostics"]);
        assert!(v["graph"].as_str().unwrap().starts_with("<?xml"), "{file}");
        assert!(!v["timelines"].as_array().unwrap().is_empty(), "{file}");
        let path = site.dir.path().join("scenes").join(file);
        let before = std::fs::read(&path).unwrap();
        let (status, _, body) = call(
            app_for(&room),
            send(
                "PUT",
                &format!("/api/studio/scenes/{file}"),
                Some(serde_json::json!({"text": v["text"], "base": v["version"]})),
            ),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{file}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(std::fs::read(&path).unwrap(), before, "{file}: same bytes");
        assert_eq!(json(&body)["version"], v["version"], "{file}");
    }
    room.shutdown(Role::Daemon).await;
}

#[tokio::test]
async fn a_save_is_checked_first_and_a_conflict_is_not_an_overwrite() {
    let (site, room) = studio_room().await;
    let path = site.dir.path().join("scenes/intro.yaml");
    let before = std::fs::read_to_string(&path).unwrap();
    let open = open(&room, "intro.yaml").await;
    let base = open["version"].clone();
    // Does not load: 422 with the diagnostics at their line, nothing written.
    let broken = before.replace("at: 5.0", "at: x");
    let (status, _, body) = call(
        app_for(&room),
        send(
            "PUT",
            "/api/studio/scenes/intro.yaml",
            Some(serde_json::json!({"text": broken, "base": base})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let d = &json(&body)["diagnostics"][0];
    assert_eq!(d["level"], "error");
    assert_eq!(d["line"], 7, "{d}");
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .contains("invalid duration `x`"),
        "{d}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    // Two saves from the same version at once: one wins, one is told.
    let save = |text: String| {
        let app = app_for(&room);
        let base = base.clone();
        async move {
            call(
                app,
                send(
                    "PUT",
                    "/api/studio/scenes/intro.yaml",
                    Some(serde_json::json!({"text": text, "base": base})),
                ),
            )
            .await
        }
    };
    let (a, b) = tokio::join!(
        save(before.replace("at: 15.0", "at: 14.0")),
        save(before.replace("at: 15.0", "at: 13.0"))
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT]);
    let lost = if a.0 == StatusCode::CONFLICT {
        &a.2
    } else {
        &b.2
    };
    assert!(
        json(lost)["error"]
            .as_str()
            .unwrap()
            .contains("was changed since you opened it"),
        "{}",
        String::from_utf8_lossy(lost)
    );
    let now = std::fs::read_to_string(&path).unwrap();
    assert!(now.contains("at: 14.0") ^ now.contains("at: 13.0"), "{now}");
    room.shutdown(Role::Daemon).await;
}

#[tokio::test]
async fn bad_names_sizes_bombs_and_a_failing_disk_are_said_and_lose_nothing() {
    let (site, room) = studio_room().await;
    for name in [
        "..%2Fconfig.yaml",
        "a%2Fb.yaml",
        ".hidden.yaml",
        "x.txt",
        "..yaml",
    ] {
        let (status, _, body) = call(
            app_for(&room),
            send("GET", &format!("/api/studio/scenes/{name}"), None),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}");
        assert!(
            json(&body)["error"]
                .as_str()
                .unwrap()
                .contains("is not a scene file name"),
            "{name}"
        );
    }
    // Over the limit: said, with the limit.
    let big = "#".repeat(300 * 1024);
    let (status, _, body) = call(
        app_for(&room),
        send(
            "POST",
            "/api/studio/check",
            Some(serde_json::json!({"file": "big.yaml", "text": big})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        json(&body)["error"]
            .as_str()
            .unwrap()
            .contains("at most 256 KiB")
    );
    // Aliases that would expand without end, and deep nesting: an error.
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
    for (i, prev) in ('b'..='k').zip('a'..) {
        bomb.push_str(&format!("{i}: &{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
    }
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    for text in [bomb, deep] {
        let (status, _, body) = call(
            app_for(&room),
            send(
                "POST",
                "/api/studio/check",
                Some(serde_json::json!({"file": "bomb.yaml", "text": text})),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let v = json(&body);
        assert_eq!(v["ok"], false, "{v}");
        assert_eq!(v["diagnostics"][0]["level"], "error");
        let said = v["diagnostics"][0]["message"].as_str().unwrap();
        assert!(
            said.contains("expands to more than 100000 YAML nodes")
                || said.starts_with("nested too deep"),
            "{said}"
        );
    }
    // The disk refuses the write: said, and the file is as it was.
    let path = site.dir.path().join("scenes/outro.yaml");
    let before = std::fs::read_to_string(&path).unwrap();
    std::fs::create_dir(site.dir.path().join("scenes/.outro.yaml.tmp/")).unwrap();
    std::fs::write(site.dir.path().join("scenes/.outro.yaml.tmp/x"), "").unwrap();
    let open = open(&room, "outro.yaml").await;
    let (status, _, body) = call(
        app_for(&room),
        send(
            "PUT",
            "/api/studio/scenes/outro.yaml",
            Some(serde_json::json!({"text": format!("# changed\n{before}"), "base": open["version"]})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        json(&body)["error"]
            .as_str()
            .unwrap()
            .contains("nothing on disk was changed"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    // A viewer may not see the studio.
    let (status, _, _) = call(app_for(&room), get("/api/studio")).await;
    assert!(
        status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN,
        "{status}"
    );
    room.shutdown(Role::Daemon).await;
}

#[tokio::test]
async fn a_deleted_scene_is_unloaded_and_comes_back_from_its_history() {
    let (site, room) = studio_room().await;
    let open = open(&room, "outro.yaml").await;
    let (status, _, body) = call(
        app_for(&room),
        send(
            "DELETE",
            &format!(
                "/api/studio/scenes/outro.yaml?base={}",
                open["version"].as_str().unwrap()
            ),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert!(!site.dir.path().join("scenes/outro.yaml").exists());
    assert!(room.scenes.scenes().get("outro").is_none());
    let h = json(
        &call(
            app_for(&room),
            send("GET", "/api/studio/scenes/outro.yaml/history", None),
        )
        .await
        .2,
    );
    let id = h["history"][0]["id"].as_str().unwrap().to_string();
    let text = json(
        &call(
            app_for(&room),
            send(
                "GET",
                &format!("/api/studio/scenes/outro.yaml/history/{id}"),
                None,
            ),
        )
        .await
        .2,
    )["text"]
        .clone();
    assert_eq!(text, open["text"]);
    let (status, _, _) = call(
        app_for(&room),
        send(
            "PUT",
            "/api/studio/scenes/outro.yaml",
            Some(serde_json::json!({"text": text, "base": null})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(room.scenes.scenes().get("outro").is_some());
    room.shutdown(Role::Daemon).await;
}

#[tokio::test]
async fn a_scene_is_duplicated_and_renamed_with_its_own_name() {
    let (site, room) = studio_room().await;
    let (status, _, body) = call(
        app_for(&room),
        send(
            "POST",
            "/api/studio/scenes/showcase.json/duplicate",
            Some(serde_json::json!({"name": "show2"})),
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(json(&body)["file"], "show2.json");
    let copy = std::fs::read_to_string(site.dir.path().join("scenes/show2.json")).unwrap();
    assert!(copy.contains("\"sceneId\": \"show2\""), "{copy}");
    assert!(room.scenes.scenes().get("show2").is_some());
    assert!(
        room.scenes.scenes().get("showcase").is_some(),
        "the original stays"
    );
    let v = open(&room, "show2.json").await["version"].clone();
    let (status, _, body) = call(
        app_for(&room),
        send(
            "POST",
            "/api/studio/scenes/show2.json/rename",
            Some(serde_json::json!({"name": "show3", "base": v})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert!(!site.dir.path().join("scenes/show2.json").exists());
    assert!(room.scenes.scenes().get("show3").is_some());
    assert!(room.scenes.scenes().get("show2").is_none());
    // A copy under a name that exists is refused, nothing overwritten.
    let (status, _, _) = call(
        app_for(&room),
        send(
            "POST",
            "/api/studio/scenes/intro.yaml/duplicate",
            Some(serde_json::json!({"name": "outro"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    room.shutdown(Role::Daemon).await;
}

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
