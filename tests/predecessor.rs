//! The predecessor's protocol as its rooms run today: scenes named by file
//! name, retained actions, firmware that answers on `{topic}/feedback`,
//! separate `audio/` and `videos/` folders. Real Mosquitto, the simulated
//! fleet, the real binary where the CLI matters.

use std::time::Duration;

use crate::common::*;
use roomctl::broker::Mosquitto;
use roomctl::config::FeedbackTopic;
use roomctl::room::{Role, Room};
use roomctl::simulate;
use roomctl::web::{self, AppState};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_roomctl");

const V01: &str = r#"{"sceneId": "room1_intro", "version": "2.0", "initialState": "a",
  "states": {"a": {"onEnter": [{"topic": "room1/light", "message": "ON"},
                               {"topic": "room1/sign", "message": "OPEN", "retain": true}],
                   "transitions": [{"type": "timeout", "delay": 30, "goto": "END"}]}}}"#;
const TEST: &str = r#"{"sceneId": "room1_test", "initialState": "a",
  "states": {"a": {"onEnter": [{"topic": "room1/light", "message": "OFF"}],
                   "transitions": [{"type": "timeout", "delay": 30, "goto": "END"}]}}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenes_answer_to_their_file_names_everywhere() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let site = site(
        &[b.port()],
        &[("SceneV01.json", V01), ("test.json", TEST)],
        "triggers:\n  - { topic: room1/button, payload: pressed, scene: SceneV01 }\n",
    );
    let text = std::fs::read_to_string(&site.config).unwrap();
    std::fs::write(
        &site.config,
        text.replace(
            "scenes: { dir: scenes }",
            "scenes: { dir: scenes, default: test.json }",
        ),
    )
    .unwrap();
    // `check` accepts file names in scenes.default and triggers.
    let o = std::process::Command::new(BIN)
        .args(["check", "-c", site.config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    assert!(room.mqtt.wait_subscribed(Duration::from_secs(5)).await);
    let running = |room: &Room| room.scenes.status().map(|s| s.name);

    // MQTT: `room1/start_scene = SceneV01.json`.
    raw_publish(
        b.port(),
        &[("room1/start_scene", b"SceneV01.json".to_vec(), false)],
    )
    .await;
    eventually(Duration::from_secs(5), "SceneV01.json started", || {
        running(&room).as_deref() == Some("room1_intro")
    })
    .await;
    room.scenes.stop(roomctl::scene::EndReason::Stopped).await;

    // `room1/scene = START` starts `scenes.default: test.json`.
    raw_publish(b.port(), &[("room1/scene", b"START".to_vec(), false)]).await;
    eventually(Duration::from_secs(5), "the default by file name", || {
        running(&room).as_deref() == Some("room1_test")
    })
    .await;
    room.scenes.stop(roomctl::scene::EndReason::Stopped).await;

    // A trigger naming the file without extension.
    raw_publish(b.port(), &[("room1/button", b"pressed".to_vec(), false)]).await;
    eventually(Duration::from_secs(5), "the trigger", || {
        running(&room).as_deref() == Some("room1_intro")
    })
    .await;
    room.scenes.stop(roomctl::scene::EndReason::Stopped).await;

    // HTTP, with the extension.
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop_web = CancellationToken::new();
    let server = tokio::spawn(web::serve(
        listener,
        AppState::new(room.clone(), stop_web.clone()),
    ));
    let r = reqwest::Client::new()
        .post(format!("{base}/api/scenes/test.json/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(running(&room).as_deref(), Some("room1_test"));
    let list: serde_json::Value = reqwest::get(format!("{base}/api/scenes"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "room1_intro" && s["file"] == "SceneV01.json"),
        "{list}"
    );
    stop_web.cancel();
    let _ = server.await;
    room.shutdown(Role::Daemon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retained_action_is_published_retained() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let site = site(&[b.port()], &[("SceneV01.json", V01)], "");
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    assert!(room.mqtt.wait_subscribed(Duration::from_secs(5)).await);
    start(&room, "SceneV01").await;
    eventually(Duration::from_secs(5), "the actions sent", || {
        room.mqtt.stats().counts.messages_published >= 2
    })
    .await;
    room.scenes.stop(roomctl::scene::EndReason::Stopped).await;
    room.shutdown(Role::Daemon).await;
    // A client that connects later still sees the sign, and only the sign.
    let cancel = CancellationToken::new();
    let (_h, mut seen) = observer(b.port(), "room1/#", &cancel).await;
    let got = collect_until(&mut seen, Duration::from_secs(3), |g| !g.is_empty()).await;
    let got: Vec<_> = got.iter().filter(|m| m.topic != "room1/STOP").collect();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].topic, "room1/sign");
    assert_eq!(text(got[0]), "OPEN");
    assert!(got[0].retain);
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firmware_answering_on_topic_feedback_is_named_as_the_likely_cause() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let show = "name: show\nactions:\n  - {at: 0, topic: room1/light, message: 'ON'}\n  - {at: 0.2, topic: room1/steam, message: 'ON'}\nduration: 0.5\n";
    let site = site(&[b.port()], &[("show.yaml", show)], "");
    let (config, scenes) = site.load();
    assert_eq!(config.feedback.topic.template(), "{prefix}/status");
    // The existing firmware: replies on `<command topic>/feedback`.
    let mut firmware = config.clone();
    firmware.feedback.topic = FeedbackTopic::new("{topic}/feedback").unwrap();
    let cancel = CancellationToken::new();
    let fleet = simulate::start(&firmware, &scenes, &fast_fleet(), cancel.child_token());
    fleet_ready(&fleet).await;

    // `roomctl play` says so at the end of its report.
    let mut out = Vec::new();
    let tally = roomctl::cmd::play::play(&site.config, "show", false, &mut out)
        .await
        .unwrap();
    let report = String::from_utf8(out).unwrap();
    assert_eq!((tally.timeout, tally.ok), (2, 0), "{report}");
    assert!(
        report.contains("hint")
            && report.contains("every command of scene show timed out (2)")
            && report.contains("set feedback.topic: \"{topic}/feedback\""),
        "{report}"
    );

    // The daemon says it in healthz (and so on the dashboard).
    let room = Room::start(config, scenes, Role::Daemon);
    assert!(room.mqtt.wait_subscribed(Duration::from_secs(5)).await);
    start(&room, "show").await;
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop_web = CancellationToken::new();
    let server = tokio::spawn(web::serve(
        listener,
        AppState::new(room.clone(), stop_web.clone()),
    ));
    eventually(Duration::from_secs(10), "the hint", || {
        room.feedback_hint().is_some()
    })
    .await;
    let h: serde_json::Value = reqwest::get(format!("{base}/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        h["issues"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i.as_str().unwrap().contains("{topic}/feedback")),
        "{h}"
    );
    assert!(room.feedback.stats().elsewhere >= 2);
    stop_web.cancel();
    let _ = server.await;
    room.shutdown(Role::Daemon).await;
    cancel.cancel();
}
