//! Command files of the existing room-controller format, fired by hand over
//! HTTP and over MQTT against real Mosquitto, with feedback from the
//! simulated fleet.

use std::time::Duration;

use crate::common::*;
use roomctl::broker::Mosquitto;
use roomctl::events::Outcome;
use roomctl::room::{Role, Room};
use roomctl::simulate;
use roomctl::web::{self, AppState};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const LIGHT_OFF: &str = r#"[
  {"topic": "room1/light", "message": "OFF", "timestamp": 0},
  {"topic": "room1/steam", "message": "OFF", "timestamp": 0.3}
]"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_files_run_over_http_and_mqtt_with_feedback() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let site = site(&[b.port()], &[ONE_CUE], "");
    site.set_web_token("door-key");
    let scenes = site.dir.path().join("scenes");
    std::fs::create_dir_all(scenes.join("commands")).unwrap();
    std::fs::write(scenes.join("commands").join("light_off.json"), LIGHT_OFF).unwrap();
    // An array straight in the scenes folder is a command file too.
    std::fs::write(
        scenes.join("STOPALL.json"),
        r#"[{"topic": "room1/motor", "message": "STOP", "timestamp": 0}]"#,
    )
    .unwrap();
    let (config, scenes) = site.load();
    assert_eq!(scenes.commands().count(), 2);
    let cancel = CancellationToken::new();
    let fleet = simulate::start(&config, &scenes, &fast_fleet(), cancel.child_token());
    fleet_ready(&fleet).await;
    // A retained request left on the broker is never acted on: it would
    // fire again at every connect.
    raw_publish(
        b.port(),
        &[("roomctl/room1/command/run", b"light_off".to_vec(), true)],
    )
    .await;
    let room = Room::start(config, scenes, Role::Daemon);
    assert!(room.mqtt.wait_subscribed(Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(room.commands.running().is_empty());
    assert!(room.feedback.history(50).is_empty());

    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop_web = CancellationToken::new();
    let server = tokio::spawn(web::serve(
        listener,
        AppState::new(room.clone(), stop_web.clone()),
    ));
    let http = reqwest::Client::new();

    let list: Value = http
        .get(format!("{base}/api/commands"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["name"], "STOPALL");
    assert_eq!(list[1]["name"], "light_off");
    assert_eq!(list[1]["steps"], 2);
    assert_eq!(list[1]["topics"][1], "room1/steam");

    // The token protects it; unknown names are 404.
    let post = |path: &str, token: Option<&str>| {
        let mut r = http.post(format!("{base}{path}"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let r = post("/api/commands/light_off/run", None).await.unwrap();
    assert_eq!(r.status(), 401);
    let r = post("/api/commands/nope/run", Some("door-key"))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Over HTTP: both steps go out at their offsets and are confirmed.
    let r = post("/api/commands/light_off/run", Some("door-key"))
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    eventually(Duration::from_secs(5), "two confirmations", || {
        room.feedback
            .history(50)
            .iter()
            .filter(|f| f.scene.as_deref() == Some("command light_off") && f.result == Outcome::Ok)
            .count()
            == 2
    })
    .await;
    let h = room.feedback.history(50);
    let light = h.iter().find(|f| f.command_topic == "room1/light").unwrap();
    let steam = h.iter().find(|f| f.command_topic == "room1/steam").unwrap();
    let gap = steam.at - light.at;
    assert!(
        gap >= 0.25,
        "the second step waits for its timestamp ({gap:.3}s)"
    );

    // Over MQTT: roomctl/ROOM/command/run = name.
    raw_publish(
        b.port(),
        &[("roomctl/room1/command/run", b"STOPALL".to_vec(), false)],
    )
    .await;
    eventually(Duration::from_secs(5), "STOPALL confirmed", || {
        room.feedback.history(50).iter().any(|f| {
            f.scene.as_deref() == Some("command STOPALL")
                && f.command_topic == "room1/motor"
                && f.result == Outcome::Ok
        })
    })
    .await;

    stop_web.cancel();
    let _ = server.await;
    room.shutdown(Role::Daemon).await;
    cancel.cancel();
}
