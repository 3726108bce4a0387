//! The show log over HTTP and manual control against real Mosquitto and
//! simulated boards.

use super::*;

/// The show log: scene starts with what started them, ends, feedback
/// timeouts; kept across a restart; `/api/log`, the CSV download and the
/// day's counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_log_records_starts_ends_and_timeouts_and_survives_a_restart() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let quick = "name: quick\nactions:\n  - { at: 0, topic: room1/light, message: 'ON', timeout: 200ms }\nduration: 0.5\n";
    let site = site(
        &[b.port()],
        &[("quick.yaml", quick)],
        "state_dir: state\ntriggers:\n  - { topic: room1/button, payload: pressed, scene: quick }\n",
    );
    let (config, scenes) = site.load();
    let daemon = Room::start(config, scenes, Role::Daemon);
    assert!(daemon.mqtt.wait_subscribed(Duration::from_secs(5)).await);
    let web = app(state(&daemon));

    // From the dashboard; nobody answers room1/light.
    let (st, _, _) = call(web.clone(), post("/api/scenes/quick/start", None)).await;
    assert_eq!(st, StatusCode::OK);
    daemon.scenes.wait_idle().await;
    // By a trigger over MQTT.
    let cancel = CancellationToken::new();
    let (probe, _rx) = mqtt_start(settings("log-probe", &[b.port()]), cancel.child_token());
    assert!(probe.wait_connected(Duration::from_secs(5)).await);
    probe
        .publish(
            "room1/button",
            "pressed",
            roomctl::mqtt::PublishOptions::reliable(),
        )
        .unwrap();
    let log = daemon.show_log.clone().unwrap();
    eventually(
        Duration::from_secs(5),
        "two scene ends and two timeouts",
        || {
            let all = log.read_all();
            all.iter().filter(|r| r.kind == "scene_end").count() == 2
                && all.iter().filter(|r| r.kind == "timeout").count() == 2
        },
    )
    .await;
    daemon.shutdown(Role::Daemon).await;

    // After a restart the records are still there.
    let (config, scenes) = site.load();
    let again = Room::start(config, scenes, Role::Daemon);
    let web = app(state(&again));
    let (st, _, body) = call(web.clone(), get("/api/log?since=0&limit=100")).await;
    assert_eq!(st, StatusCode::OK);
    let recs = json(&body);
    let recs = recs.as_array().unwrap();
    let starts: Vec<&str> = recs
        .iter()
        .filter(|r| r["kind"] == "scene_start")
        .map(|r| r["origin"].as_str().unwrap())
        .collect();
    assert_eq!(starts.len(), 2, "{recs:?}");
    assert!(starts[0].starts_with("dashboard ("), "{starts:?}");
    assert_eq!(starts[1], "trigger room1/button");
    let timeout = recs.iter().find(|r| r["kind"] == "timeout").unwrap();
    assert_eq!(timeout["text"], "Feedback TIMEOUT: room1/light (>0.200s)");
    assert_eq!(timeout["scene"], "quick");
    // `since` and `limit`.
    let t0 = recs[1]["t"].as_f64().unwrap();
    let (_, _, body) = call(web.clone(), get(&format!("/api/log?since={t0}&limit=1"))).await;
    let one = json(&body);
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0], *recs.last().unwrap());

    let (st, headers, body) = call(web.clone(), get("/api/log.csv")).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains("roomctl-room1-show-log.csv")
    );
    let csv = String::from_utf8(body).unwrap();
    assert!(csv.starts_with("time_local,time_utc,unix,kind,scene,device,origin,who,text\n"));
    assert!(
        csv.contains(
            ",scene_start,quick,,trigger room1/button,,Scene quick started by trigger room1/button\n"
        ),
        "{csv}"
    );

    let (_, _, body) = call(web, get("/api/log/today")).await;
    let today = json(&body);
    assert_eq!(today["counts"]["shows_started"], 2);
    assert_eq!(today["counts"]["shows_completed"], 2);
    assert_eq!(
        today["counts"]["timeouts"][0],
        serde_json::json!(["room1/light", 2])
    );
    again.shutdown(Role::Daemon).await;
    cancel.cancel();
}

fn post_json(path: &str, token: Option<&str>, body: serde_json::Value) -> Request<Body> {
    let mut b = Request::post(path).header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::from(body.to_string())).unwrap()
}

/// Manual control against real Mosquitto and simulated boards: the
/// channels the scenes use with their messages and boards, a message sent
/// by hand and confirmed, a device test with its latency, volume and
/// stops; every control route needs the token; bad input is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_control_channels_send_test_volume_and_stop() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let scene = "name: s\nactions:\n  - { at: 0, topic: room1/light, message: 'ON' }\n  - { at: 1, topic: room1/light, message: 'OFF' }\n  - { at: 2, topic: room1/motor, message: START }\n  - { at: 3, topic: audio, message: 'PLAY:x.wav' }\n";
    let site = site(&[b.port()], &[("s.yaml", scene)], "");
    site.set_web_token_as("k", "technician");
    std::fs::write(
        site.dir.path().join("media/x.wav"),
        roomctl::testkit::sine_wav(0.1, 440.0, 0.1),
    )
    .unwrap();
    let (config, scenes) = site.load();
    let cancel = CancellationToken::new();
    let fleet = simulate::start(&config, &scenes, &fast_fleet(), cancel.child_token());
    let daemon = Room::start(config, scenes, Role::Daemon);
    assert!(daemon.mqtt.wait_subscribed(Duration::from_secs(5)).await);
    fleet_ready(&fleet).await;
    let web = app(state(&daemon));
    // The boards announce their channels (retained).
    eventually(Duration::from_secs(5), "boards announced", || {
        daemon.channels().iter().all(|c| c.device.is_some())
    })
    .await;

    let (st, _, body) = call(web.clone(), get("/api/control/channels")).await;
    assert_eq!(st, StatusCode::OK);
    let ch = json(&body);
    let topics: Vec<&str> = ch
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["topic"].as_str().unwrap())
        .collect();
    assert_eq!(
        topics,
        ["room1/light", "room1/motor"],
        "local channels are not listed"
    );
    assert_eq!(ch[0]["messages"], serde_json::json!(["ON", "OFF"]));
    assert!(ch[0]["device"].as_str().unwrap().starts_with("esp32_"));
    assert!(ch[0]["last"].is_null());

    // The token is needed.
    let send = serde_json::json!({"topic": "room1/light", "message": "ON"});
    let (st, _, _) = call(
        web.clone(),
        post_json("/api/control/send", None, send.clone()),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _, body) = call(web.clone(), post_json("/api/control/send", Some("k"), send)).await;
    assert_eq!(
        st,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    eventually(Duration::from_secs(3), "confirmed", || {
        daemon.channels()[0]
            .last
            .as_ref()
            .is_some_and(|l| l.result == roomctl::feedback::Outcome::Ok)
    })
    .await;
    assert!(
        fleet
            .received()
            .iter()
            .any(|r| r.topic == "room1/light" && r.payload == "ON")
    );

    // Free text on a known channel; an unknown channel; an empty message.
    let (st, _, _) = call(
        web.clone(),
        post_json(
            "/api/control/send",
            Some("k"),
            serde_json::json!({"topic": "room1/motor", "message": "SPEED:3"}),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (st, _, body) = call(
        web.clone(),
        post_json(
            "/api/control/send",
            Some("k"),
            serde_json::json!({"topic": "vault/door", "message": "OPEN"}),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(
        json(&body)["error"]
            .as_str()
            .unwrap()
            .contains("is not a channel of this room: a topic under the room's prefix")
    );
    // A new relay no scene uses yet: any plain topic under the room's
    // prefix, tracked like a cue; never a wildcard, the room's STOP or its
    // feedback topic.
    let (st, _, body) = call(
        web.clone(),
        post_json(
            "/api/control/send",
            Some("k"),
            serde_json::json!({"topic": "room1/relay9", "message": "ON"}),
        ),
    )
    .await;
    assert_eq!(
        st,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(json(&body)["feedback_topic"], "room1/status");
    // Nobody answers it: its TIMEOUT, before the next command shares the
    // status topic (plain OKs are matched oldest first).
    eventually(Duration::from_secs(3), "room1/relay9 timed out", || {
        daemon
            .feedback
            .history(50)
            .iter()
            .any(|r| r.command_topic == "room1/relay9")
    })
    .await;
    for topic in [
        "room1/+",
        "room1/#",
        "room1/STOP",
        "room1/status",
        "room10/light",
    ] {
        let (st, _, _) = call(
            web.clone(),
            post_json(
                "/api/control/send",
                Some("k"),
                serde_json::json!({"topic": topic, "message": "ON"}),
            ),
        )
        .await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{topic}");
    }
    let (st, _, _) = call(
        web.clone(),
        post_json(
            "/api/control/send",
            Some("k"),
            serde_json::json!({"topic": "room1/light", "message": " "}),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _, _) = call(
        web.clone(),
        post_json(
            "/api/control/send",
            Some("k"),
            serde_json::json!({"topic": 5}),
        ),
    )
    .await;
    assert!(st.is_client_error());

    // The device test: the last command again, with its latency.
    let dev = daemon.channels()[0].device.clone().unwrap();
    let (st, _, body) = call(
        web.clone(),
        post(&format!("/api/control/devices/{dev}/test"), Some("k")),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let r = json(&body);
    assert_eq!(
        (
            r["topic"].as_str(),
            r["message"].as_str(),
            r["result"].as_str()
        ),
        (Some("room1/light"), Some("ON"), Some("OK"))
    );
    assert!(r["latency"].as_f64().unwrap() < 1.0);
    assert!(r["text"].as_str().unwrap().starts_with("OK in "));
    let (st, _, _) = call(
        web.clone(),
        post("/api/control/devices/nobody/test", Some("k")),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Volume and stops.
    let (st, _, _) = call(
        web.clone(),
        post_json(
            "/api/control/volume",
            Some("k"),
            serde_json::json!({"volume": 0.4}),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _, _) = call(
        web.clone(),
        post_json(
            "/api/control/volume",
            Some("k"),
            serde_json::json!({"volume": 2}),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    for p in ["audio", "video"] {
        let (st, _, _) = call(
            web.clone(),
            post(&format!("/api/control/{p}/stop"), Some("k")),
        )
        .await;
        assert_eq!(st, StatusCode::OK);
    }
    let (st, _, _) = call(web.clone(), post("/api/control/lights/stop", Some("k"))).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    daemon.shutdown(Role::Daemon).await;
    cancel.cancel();
}
