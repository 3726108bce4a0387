//! The scene studio's API: every scene the room loads opens as a graph
//! and timelines and saves unchanged to the same bytes; saves are checked,
//! conflicts refused, bad input said, and nothing on disk is lost.

use super::*;

const KEY: &str = "studio-key";

pub(super) fn send(method: &str, path: &str, body: Option<Value>) -> Request<Body> {
    let b = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
        .header(header::CONTENT_TYPE, "application/json");
    b.body(body.map_or(Body::empty(), |v| Body::from(v.to_string())))
        .unwrap()
}

/// The studio's view of `file` (its text, version, diagnostics...).
pub(super) async fn open(room: &Room, file: &str) -> Value {
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
pub(super) async fn studio_room() -> (Site, Room) {
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
