//! The media library's API: the files with length, format and who uses
//! them; uploads probed before they are put in place (a junk file, an
//! empty one, a bad name, one too large, a name taken are each refused
//! with the reason and leave nothing behind); a replaced file and a
//! deleted one go to the trash; a file a scene uses is not deleted.

use super::*;

const KEY: &str = "media-key";

fn send(method: &str, path: &str, body: Vec<u8>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
        .header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(body))
        .unwrap()
}

const NEWSHOW: &str =
    "name: newshow\nactions:\n  - { at: 0, topic: room1/audio, message: 'PLAY:fresh.wav' }\n";

async fn media_room() -> (Site, Room) {
    let site = site(
        &[1],
        &[
            ("intro.yaml", include_str!("../../scenes/intro.yaml")),
            ("newshow.yaml", NEWSHOW),
        ],
        "",
    );
    site.set_web_token_as(KEY, "technician");
    // Uploads of at most 1 MiB here.
    let text = std::fs::read_to_string(&site.config).unwrap();
    std::fs::write(
        &site.config,
        text.replace("video: false }", "video: false, max_upload: 1 }"),
    )
    .unwrap();
    let media = site.dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    for f in ["bg.wav", "chime.wav"] {
        std::fs::copy(format!("config/media/{f}"), media.join(f)).unwrap();
    }
    // newshow's sound is missing: the check says so.
    let r = roomctl::check::check(&site.config);
    assert!(r.errors.to_string().contains("fresh.wav"), "{}", r.errors);
    (site, Room::start(r.config.unwrap(), r.scenes, Role::Daemon))
}

fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test]
async fn uploads_are_probed_refusals_leave_nothing_and_used_files_stay() {
    let (site, room) = media_room().await;
    let router = app(state(&room));
    let media = site.dir.path().join("media");
    let api = |m: &str, p: &str, b: Vec<u8>| call(router.clone(), send(m, p, b));

    let (status, _, body) = api("GET", "/api/media", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    let v = json(&body);
    let bg = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "bg.wav")
        .unwrap();
    assert_eq!(bg["kind"], "audio");
    assert_eq!(bg["used_by"], serde_json::json!(["intro"]));
    assert!(bg["duration"].as_f64().unwrap() > 0.5, "{bg}");
    assert!(bg["format"].as_str().unwrap().ends_with(" ch"), "{bg}");
    assert_eq!(v["missing"][0]["name"], "fresh.wav", "{v}");
    assert_eq!(v["missing"][0]["used_by"], serde_json::json!(["newshow"]));

    // A real sound: probed, put in place, and the scene that named it loads.
    let wav = roomctl::testkit::sine_wav(2.0, 440.0, 0.3);
    let (status, _, body) = api("PUT", "/api/media/fresh.wav", wav.clone()).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let f = json(&body);
    assert!((f["duration"].as_f64().unwrap() - 2.0).abs() < 0.01, "{f}");
    assert_eq!(std::fs::read(media.join("fresh.wav")).unwrap(), wav);
    assert!(
        roomctl::check::check(&site.config).errors.is_empty(),
        "the check is clean now"
    );
    let (_, _, body) = api("GET", "/api/media", vec![]).await;
    let v = json(&body);
    assert_eq!(v["missing"], serde_json::json!([]), "{v}");
    let fresh = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "fresh.wav")
        .unwrap();
    assert_eq!(fresh["used_by"], serde_json::json!(["newshow"]));

    // Refusals, each with its reason; nothing half-written is left.
    let mut cut = wav.clone();
    cut.truncate(wav.len() / 4);
    let elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0>\0".to_vec();
    for (path, bytes, status, says) in [
        (
            "/api/media/tool.mp3",
            elf,
            StatusCode::BAD_REQUEST,
            "does not decode as a sound",
        ),
        (
            "/api/media/empty.wav",
            vec![],
            StatusCode::BAD_REQUEST,
            "the file is empty",
        ),
        (
            "/api/media/cut.wav",
            cut,
            StatusCode::BAD_REQUEST,
            "its header says 2.00 s",
        ),
        (
            "/api/media/..%2Fescape.wav",
            wav.clone(),
            StatusCode::BAD_REQUEST,
            "cannot name a media file",
        ),
        (
            "/api/media/a%00b.wav",
            wav.clone(),
            StatusCode::BAD_REQUEST,
            "cannot name a media file",
        ),
        (
            "/api/media/big.wav",
            vec![0; 2 << 20],
            StatusCode::PAYLOAD_TOO_LARGE,
            "over the 1 MiB upload limit",
        ),
        (
            "/api/media/fresh.wav",
            wav.clone(),
            StatusCode::CONFLICT,
            "there is a file `fresh.wav` already",
        ),
    ] {
        let (got, _, body) = api("PUT", path, bytes).await;
        let error = json(&body)["error"].as_str().unwrap_or("").to_string();
        assert_eq!(got, status, "{path}: {error}");
        assert!(error.contains(says), "{path}: {error}");
    }
    assert_eq!(
        names_in(&media),
        ["bg.wav", "chime.wav", "fresh.wav"],
        "no half file"
    );
    assert!(!site.dir.path().join("escape.wav").exists());

    // Replaced when asked: the old one goes to the trash.
    let longer = roomctl::testkit::sine_wav(3.0, 440.0, 0.3);
    let (status, _, _) = api("PUT", "/api/media/fresh.wav?replace=true", longer.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(std::fs::read(media.join("fresh.wav")).unwrap(), longer);
    let trash = site.dir.path().join("state/media-trash");
    let kept = names_in(&trash);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read(trash.join(&kept[0])).unwrap(), wav);

    // The browser gets the file; a used one is not deleted, an unused one
    // goes to the trash.
    let (status, h, body) = api("GET", "/api/media/chime.wav/file", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h[header::CONTENT_TYPE], "audio/wav");
    assert_eq!(body, std::fs::read(media.join("chime.wav")).unwrap());
    let (status, _, body) = api("DELETE", "/api/media/bg.wav", vec![]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        json(&body)["error"],
        "`bg.wav` is used by intro: change them first"
    );
    let (status, _, _) = api("DELETE", "/api/media/chime.wav", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names_in(&media), ["bg.wav", "fresh.wav"]);
    assert_eq!(names_in(&trash).len(), 2);
    let (status, _, _) = api("DELETE", "/api/media/chime.wav", vec![]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Played on the Pi, and each change is in the show log with who.
    let mut events = room.events.subscribe();
    let (status, _, _) = api("POST", "/api/media/fresh.wav/play", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    eventually(Duration::from_secs(3), "fresh.wav playing on the Pi", || {
        std::iter::from_fn(|| events.try_recv().ok()).any(|e| {
            matches!(e, roomctl::events::Event::Media(m) if m.event == "started" && m.file.as_deref() == Some("fresh.wav"))
        })
    })
    .await;
    // The show log writes from the event bus on its own task: wait for it.
    let show_log = room.show_log.as_ref().unwrap();
    let actions = || -> Vec<String> {
        show_log
            .read_all()
            .into_iter()
            .filter(|r| r.kind == "action")
            .map(|r| r.text)
            .collect()
    };
    let says = [
        "add media file \"fresh.wav\"",
        "replace media file \"fresh.wav\"",
        "delete media file \"chime.wav\"",
    ];
    let all_there = |log: &[String]| says.iter().all(|s| log.iter().any(|t| t.contains(s)));
    let waited = tokio::time::timeout(Duration::from_secs(5), async {
        while !all_there(&actions()) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "within 5 s the show log did not hold {says:?}: {:?}",
        actions()
    );
    room.shutdown(Role::Daemon).await;
}
