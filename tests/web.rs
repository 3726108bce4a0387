//! The HTTP surface: `app(state)` driven with `oneshot`, and the live SSE
//! stream over a real listener.

use std::time::Duration;

use crate::common::*;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use roomctl::broker::Mosquitto;
use roomctl::room::{Role, Room};
use roomctl::simulate;
use roomctl::web::{AppState, app};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

mod control;
mod logs;
mod media;
mod stats;
mod studio;
mod studio_edits;

const INTRO: &str = "name: intro\ndescription: Lights up\nactions:\n  - { at: 0, topic: room1/light, message: 'ON' }\n  - { at: 30, topic: room1/light, message: 'OFF' }\n";
const SHOW: &str = r#"{"sceneId": "show", "initialState": "a", "states": {"a": {"transitions": [{"type": "mqttMessage", "topic": "room1/button", "goto": "END"}]}}}"#;

async fn room(ports: &[u16], token: Option<&str>) -> (Site, Room) {
    room_with(ports, token.map(|t| format!("token: \"{t}\"")).as_deref()).await
}

/// A room whose `web:` has `options` too.
async fn room_with(ports: &[u16], options: Option<&str>) -> (Site, Room) {
    let site = site(ports, &[("intro.yaml", INTRO), ("show.json", SHOW)], "");
    if let Some(o) = options {
        site.web_options(o);
    }
    let (config, scenes) = site.load();
    (site, Room::start(config, scenes, Role::Daemon))
}

pub(crate) fn state(room: &Room) -> AppState {
    AppState::new(room.clone(), CancellationToken::new())
}

pub(crate) async fn call(
    app: axum::Router,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let r = app.oneshot(req).await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let body = r.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, headers, body)
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn post(path: &str, token: Option<&str>) -> Request<Body> {
    let mut b = Request::post(path);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::empty()).unwrap()
}

pub(crate) fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

#[tokio::test]
async fn dashboard_is_embedded() {
    let (_site, room) = room(&[roomctl::broker::free_port().unwrap()], None).await;
    let (s, h, body) = call(app(state(&room)), get("/")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        h[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = String::from_utf8(body).unwrap();
    assert!(html.contains("<script src=\"/assets/app.js\">"));
    for (path, mime) in [
        ("/assets/app.js", "javascript"),
        ("/assets/style.css", "text/css"),
    ] {
        let (s, h, body) = call(app(state(&room)), get(path)).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        assert!(
            h[header::CONTENT_TYPE].to_str().unwrap().contains(mime),
            "{path}"
        );
        assert!(!body.is_empty());
    }
    let (s, _, body) = call(app(state(&room)), get("/assets/../Cargo.toml")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(json(&body)["error"].is_string());
    let (s, _, _) = call(app(state(&room)), get("/nope")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn control_routes_need_the_bearer_token() {
    let (_site, room) = room(&[roomctl::broker::free_port().unwrap()], Some("s3cret")).await;
    let a = || app(state(&room));
    let (s, h, body) = call(a(), post("/api/scenes/intro/start", None)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(h[header::WWW_AUTHENTICATE], "Bearer");
    assert_eq!(
        json(&body)["error"],
        "log in first (or send an API token): this needs the operator role"
    );
    let (s, _, body) = call(a(), post("/api/scenes/intro/start", Some("wrong"))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(json(&body)["error"], "wrong token");
    let (s, _, _) = call(a(), post("/api/reload", None)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(!room.scenes.is_running());
    // Stop — all off is a panic button: never locked by default.
    let (s, _, body) = call(a(), post("/api/scenes/stop", None)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(json(&body)["stopped"], Value::Null);

    let (s, _, body) = call(a(), post("/api/scenes/intro/start", Some("s3cret"))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(json(&body)["started"], "intro");
    let (s, _, body) = call(a(), post("/api/scenes/show/start", Some("s3cret"))).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(
        json(&body)["error"],
        "scene `intro` is running; stop it first"
    );
    let (s, _, _) = call(a(), post("/api/scenes/nope/start", Some("s3cret"))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Reads stay open.
    let (s, _, body) = call(a(), get("/api/scenes")).await;
    assert_eq!(s, StatusCode::OK);
    let scenes = json(&body);
    let intro = scenes
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "intro")
        .unwrap();
    assert_eq!(intro["running"], true);
    assert_eq!(intro["duration"], 30.0);
    assert_eq!(intro["action_count"], 2);
    assert_eq!(intro["description"], "Lights up");
    let show = scenes
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "show")
        .unwrap();
    assert_eq!(show["duration"], Value::Null);

    let (s, _, body) = call(a(), post("/api/scenes/stop", Some("s3cret"))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(json(&body)["stopped"], "intro");
    assert!(!room.scenes.is_running());
}

#[tokio::test]
async fn stop_can_be_locked_too() {
    let (_site, room) = room_with(
        &[roomctl::broker::free_port().unwrap()],
        Some("token: \"s3cret\", open_stop: false"),
    )
    .await;
    let (s, _, _) = call(app(state(&room)), post("/api/scenes/stop", None)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = call(app(state(&room)), post("/api/scenes/stop", Some("s3cret"))).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_devices_feedback_health_and_metrics_with_a_real_broker() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let (_site, room) = room(&[b.port()], None).await;
    let cancel = CancellationToken::new();
    let (config, scenes) = _site.load();
    let opts = fast_fleet();
    let fleet_stop = CancellationToken::new();
    let _fleet = simulate::start(&config, &scenes, &opts, fleet_stop.clone());
    assert!(room.mqtt.wait_connected(Duration::from_secs(5)).await);
    eventually(Duration::from_secs(5), "devices", || {
        room.registry.counts().online == 2
    })
    .await;
    let a = || app(state(&room));

    let (s, _, body) = call(a(), get("/healthz")).await;
    assert_eq!(s, StatusCode::OK);
    let h = json(&body);
    // Media is disabled in the test site, devices are online: all good.
    assert_eq!(h["status"], "healthy", "{h}");
    assert_eq!(h["issues"], serde_json::json!([]));

    start(&room, "intro").await;
    eventually(Duration::from_secs(3), "feedback", || {
        room.feedback.stats().ok == 1
    })
    .await;
    let (s, _, body) = call(a(), get("/api/status")).await;
    assert_eq!(s, StatusCode::OK);
    let st = json(&body);
    assert_eq!(st["room"], "room1");
    assert_eq!(st["connection"]["state"], "CONNECTED");
    assert_eq!(
        st["connection"]["broker"],
        format!("127.0.0.1:{}", b.port())
    );
    assert_eq!(st["scene"]["name"], "intro");
    assert_eq!(st["scene"]["state"], "main");
    assert_eq!(st["scene"]["duration"], 30.0);
    assert_eq!(st["stats"]["feedback"]["ok"], 1);
    assert_eq!(st["stats"]["devices"]["online"], 2);
    for k in [
        "total_connections",
        "messages_published",
        "messages_queued",
        "messages_failed",
        "consecutive_failures",
        "queue_size",
        "last_connection_attempt",
    ] {
        assert!(!st["stats"]["mqtt"][k].is_null(), "stats.mqtt.{k} missing");
    }

    let (_, _, body) = call(a(), get("/api/feedback?limit=5")).await;
    let fb = json(&body);
    assert_eq!(fb[0]["command_topic"], "room1/light");
    assert_eq!(fb[0]["result"], "OK");
    assert!(fb[0]["latency"].as_f64().unwrap() > 0.0);

    let (_, _, body) = call(a(), get("/api/devices")).await;
    let devs = json(&body);
    assert_eq!(devs.as_array().unwrap().len(), 2);
    assert_eq!(devs[0]["id"], "esp32_01");
    assert_eq!(devs[0]["presence"], "online");

    let (s, h, body) = call(a(), get("/metrics")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        h[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let m = String::from_utf8(body).unwrap();
    for line in [
        "roomctl_mqtt_connection_state{room=\"room1\",state=\"CONNECTED\"} 1",
        "roomctl_mqtt_connection_state{room=\"room1\",state=\"FAILED\"} 0",
        "roomctl_feedback_total{room=\"room1\",result=\"ok\"} 1",
        "roomctl_devices{room=\"room1\",presence=\"online\"} 2",
        "roomctl_scene_running{room=\"room1\"} 1",
        "# TYPE roomctl_mqtt_messages_published_total counter",
    ] {
        assert!(m.lines().any(|l| l == line), "missing {line:?} in\n{m}");
    }
    // Every sample line is `name{labels} number`.
    for l in m.lines().filter(|l| !l.starts_with('#')) {
        let (_, v) = l.rsplit_once(' ').unwrap();
        assert!(v.parse::<f64>().is_ok(), "bad sample {l}");
    }

    // Devices gone: still 200, degraded with the reason.
    fleet_stop.cancel();
    eventually(Duration::from_secs(5), "devices offline", || {
        room.registry.counts().offline == 2
    })
    .await;
    let (s, _, body) = call(a(), get("/healthz")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        json(&body)["issues"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i == "2 device(s) offline")
    );

    // Broker gone: unhealthy, 503.
    drop(b);
    eventually(Duration::from_secs(5), "disconnect", || {
        room.mqtt.status().state != roomctl::mqtt::ConnectionState::Connected
    })
    .await;
    let (s, _, body) = call(a(), get("/healthz")).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    let h = json(&body);
    assert_eq!(h["status"], "unhealthy");
    assert!(h["issues"][0].as_str().unwrap().starts_with("MQTT "), "{h}");
    room.shutdown(Role::Daemon).await;
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_sent_events_stream_scene_and_feedback() {
    init_logs();
    let (_site, room) = room(&[roomctl::broker::free_port().unwrap()], None).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let st = AppState::new(room.clone(), stop.clone());
    let server = tokio::spawn(roomctl::web::serve(listener, st));

    let resp = reqwest::get(format!("http://{addr}/api/events"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut stream = resp.bytes_stream();
    let mut text = String::new();
    let mut next = async |text: &mut String, want: &str| {
        use futures::StreamExt;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !text.contains(want) {
            let chunk = tokio::time::timeout_at(deadline, stream.next())
                .await
                .expect("timed out")
                .unwrap()
                .unwrap();
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    next(&mut text, "event: hello").await;
    start(&room, "intro").await;
    next(&mut text, "\"event\":\"started\"").await;
    assert!(text.contains("event: scene\ndata: {\"type\":\"scene\",\"data\":{\"event\":\"started\",\"scene\":\"intro\",\"origin\":\"CLI (roomctl play)\"}}"), "{text}");
    room.feedback.track(
        "room1/light",
        "ON",
        Duration::from_millis(50),
        Some("intro"),
    );
    next(&mut text, "event: feedback").await;
    next(&mut text, "\"result\":\"TIMEOUT\"").await;

    // Shutdown ends the stream instead of hanging the server.
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(3), server)
        .await
        .expect("server did not stop")
        .unwrap()
        .unwrap();
    room.shutdown(Role::Daemon).await;
}

/// `/api/schedule` shows the plan; pause and resume need the token, work
/// from the dashboard and over MQTT, and are kept in the state directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_view_pause_and_resume_over_http_and_mqtt() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let schedule = "state_dir: state\nschedule:\n  timezone: Europe/Bratislava\n  hours: { default: \"00:00-23:59\" }\n  shows:\n    - { every: 30m, from: \"00:00\", until: \"23:30\", scene: intro }\n";
    let site = site(&[b.port()], &[("intro.yaml", INTRO)], schedule);
    site.set_web_token("s3cret");
    let (config, scenes) = site.load();
    let daemon = Room::start(config, scenes, Role::Daemon);
    assert!(daemon.mqtt.wait_subscribed(Duration::from_secs(5)).await);
    let app = app(state(&daemon));

    let (st, _, body) = call(app.clone(), get("/api/schedule")).await;
    assert_eq!(st, StatusCode::OK);
    let v = json(&body);
    assert_eq!(v["timezone"], "Europe/Bratislava");
    assert_eq!(v["paused"], false);
    let next = v["next"].as_array().unwrap();
    assert_eq!(next.len(), 10);
    assert!(
        next.iter()
            .all(|p| p["scene"] == "intro" && p["kind"] == "show")
    );
    let gap = next[1]["unix"].as_f64().unwrap() - next[0]["unix"].as_f64().unwrap();
    assert!(
        (gap - 1800.0).abs() < 1.0 || (gap - 1860.0).abs() < 1.0,
        "{gap}"
    );

    let (st, _, _) = call(app.clone(), post("/api/schedule/pause", None)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _, body) = call(app.clone(), post("/api/schedule/pause", Some("s3cret"))).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(json(&body)["paused"], true);
    let saved = std::fs::read_to_string(site.dir.path().join("state/schedule.json")).unwrap();
    assert_eq!(saved, r#"{"paused":true}"#);
    let (st, _, _) = call(app.clone(), post("/api/schedule/later", Some("s3cret"))).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Over MQTT.
    let cancel = CancellationToken::new();
    let (probe, _rx) = mqtt_start(settings("sched-probe", &[b.port()]), cancel.child_token());
    assert!(probe.wait_connected(Duration::from_secs(5)).await);
    probe
        .publish(
            "roomctl/room1/schedule",
            "resume",
            roomctl::mqtt::PublishOptions::reliable(),
        )
        .unwrap();
    let h = daemon.schedule.clone().unwrap();
    eventually(Duration::from_secs(3), "resumed over MQTT", || !h.paused()).await;
    let saved = std::fs::read_to_string(site.dir.path().join("state/schedule.json")).unwrap();
    assert_eq!(saved, r#"{"paused":false}"#);

    // A room without a schedule says so.
    let (_s2, plain) = room(&[b.port()], None).await;
    let (st, _, _) = call(app_for(&plain), get("/api/schedule")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    plain.shutdown(Role::Daemon).await;
    daemon.shutdown(Role::Daemon).await;
    cancel.cancel();
}

fn app_for(room: &Room) -> axum::Router {
    app(state(room))
}
