//! Who may run a room over MQTT: with `control.key`, control messages count
//! only when signed (forged, replayed and old ones change nothing and are
//! counted), the allow-listed compatibility topic and the config's
//! triggers still work unsigned; and a Mosquitto `acl_file` with a user per
//! client limits who may publish on the control topics at all.

use std::time::Duration;

use roomctl::broker::Mosquitto;
use roomctl::mqtt::{MqttHandle, PublishOptions};
use roomctl::room::{Role, Room};
use roomctl::signing;
use tokio_util::sync::CancellationToken;

use crate::common::*;

const KEY: &str = "the museum's control key 2026";
const SCENE: (&str, &str) = (
    "intro.yaml",
    "name: intro\nactions:\n  - { at: 0, topic: room1/light, message: 'ON' }\n  - { at: 60, topic: room1/light, message: 'OFF' }\n",
);

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Publishes `payload` on `topic` with `props` (none: unsigned).
fn send(c: &MqttHandle, topic: &str, payload: &str, props: Option<Vec<(String, String)>>) {
    c.publish_with(
        topic,
        payload.to_string(),
        PublishOptions::reliable(),
        props.map(Into::into),
    )
    .unwrap();
}

/// Publishes `payload` on `topic` signed with the site's key by `by`,
/// as signed `age` seconds ago.
fn send_signed(c: &MqttHandle, topic: &str, payload: &str, by: &str, age: u64) {
    let props = signing::sign(KEY.as_bytes(), topic, payload.as_bytes(), by, now() - age);
    send(c, topic, payload, Some(props));
}

/// Waits `d` and says whether a scene ran meanwhile.
async fn started_within(room: &Room, d: Duration) -> bool {
    let end = tokio::time::Instant::now() + d;
    while tokio::time::Instant::now() < end {
        if room.scenes.is_running() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

fn refused(room: &Room, reason: &str) -> u64 {
    room.control_refused
        .counts()
        .into_iter()
        .find(|(l, _)| *l == reason)
        .map_or(0, |(_, n)| n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_control_messages_change_nothing_and_are_counted() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    // `room1/scene = START` starts the only scene; the button, the trigger.
    let site = site(
        &[b.port()],
        &[SCENE],
        &format!(
            "control: {{ key: \"{KEY}\", unsigned: [room1/scene] }}\ntriggers:\n  - {{ topic: room1/button, payload: pressed, scene: intro }}\n"
        ),
    );
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    assert!(room.mqtt.wait_subscribed(Duration::from_secs(5)).await);
    let cancel = CancellationToken::new();
    let (c, _rx) = mqtt_start(settings("forger", &[b.port()]), cancel.child_token());
    eventually(Duration::from_secs(5), "the test client connected", || {
        c.status().state == roomctl::events::ConnectionState::Connected
    })
    .await;
    let start = "roomctl/room1/scene/start";

    // No signature, a wrong key, a signature from a minute ago.
    send(&c, start, "intro", None);
    send(
        &c,
        start,
        "intro",
        Some(signing::sign(
            b"not the site's key at all",
            start,
            b"intro",
            "eve",
            now(),
        )),
    );
    send_signed(&c, start, "intro", "eve", 60);
    // A signature for another payload.
    send(
        &c,
        start,
        "intro",
        Some(signing::sign(KEY.as_bytes(), start, b"other", "eve", now())),
    );
    assert!(
        !started_within(&room, Duration::from_secs(1)).await,
        "a forged start ran"
    );
    assert_eq!(refused(&room, "unsigned"), 1);
    assert_eq!(refused(&room, "bad_signature"), 2);
    assert_eq!(refused(&room, "stale"), 1);

    // Signed with the key: it runs, and the room knows who asked.
    let signed = signing::sign(KEY.as_bytes(), start, b"intro", "desk", now());
    send(&c, start, "intro", Some(signed.clone()));
    assert!(
        started_within(&room, Duration::from_secs(3)).await,
        "the signed start did not run"
    );
    assert_eq!(room.scenes.status().unwrap().name, "intro");
    let stop = "roomctl/room1/scene/stop";
    send_signed(&c, stop, "", "desk", 0);
    eventually(Duration::from_secs(3), "stopped", || {
        !room.scenes.is_running()
    })
    .await;

    // The same start again is a replay.
    send(&c, start, "intro", Some(signed));
    assert!(
        !started_within(&room, Duration::from_secs(1)).await,
        "a replay ran"
    );
    assert_eq!(refused(&room, "replayed"), 1);
    // An unsigned stop, flooded: nothing, each counted.
    for _ in 0..20 {
        send(&c, stop, "", None);
    }
    eventually(Duration::from_secs(3), "the unsigned stops counted", || {
        refused(&room, "unsigned") == 21
    })
    .await;

    // What the config lets in unsigned: the predecessor's ROOM/scene and
    // the button trigger.
    send(&c, "room1/scene", "START", None);
    assert!(
        started_within(&room, Duration::from_secs(3)).await,
        "the allow-listed ROOM/scene did not start"
    );
    send(&c, "room1/scene", "STOP", None);
    eventually(Duration::from_secs(3), "stopped", || {
        !room.scenes.is_running()
    })
    .await;
    send(&c, "room1/button", "pressed", None);
    assert!(
        started_within(&room, Duration::from_secs(3)).await,
        "the button trigger did not start"
    );

    // In the audit trail (written by the show log's own task: waited
    // for): the signed one by name; the metrics have the counts.
    let log = room.show_log.as_ref().unwrap();
    let by_desk = || {
        log.read_all()
            .iter()
            .any(|r| r.kind == "scene_start" && r.who.as_deref() == Some("desk"))
    };
    eventually(
        Duration::from_secs(5),
        "the signed start in the show log by name",
        by_desk,
    )
    .await;
    let state = roomctl::web::AppState::new(room.clone(), CancellationToken::new());
    let r = tower::ServiceExt::oneshot(
        roomctl::web::app(state),
        axum::http::Request::get("/metrics")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    let body = http_body_util::BodyExt::collect(r.into_body())
        .await
        .unwrap()
        .to_bytes();
    let metrics = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        metrics.contains("roomctl_control_refused_total{room=\"room1\",reason=\"unsigned\"} 21"),
        "{metrics}"
    );
    room.shutdown(Role::Daemon).await;
    cancel.cancel();
}

/// A password file with these users.
fn passwords(dir: &std::path::Path, users: &[(&str, &str)]) -> std::path::PathBuf {
    let path = dir.join("passwd");
    for (i, (u, p)) in users.iter().enumerate() {
        let mut cmd = std::process::Command::new("mosquitto_passwd");
        if i == 0 {
            cmd.arg("-c");
        }
        let st = cmd
            .args(["-b", path.to_str().unwrap(), u, p])
            .status()
            .unwrap();
        assert!(st.success());
    }
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    path
}

/// The ACL `docs/mqtt.md` recommends: the room's controller, the site
/// page and a board each as its own user.
const ACL: &str = "\
user room1
topic readwrite room1/#
topic readwrite roomctl/room1/#
topic read devices/#

user site
topic read roomctl/+/status
topic read roomctl/+/state
topic write roomctl/+/scene/#
topic write roomctl/+/command/run
topic write roomctl/+/schedule

user board
topic write devices/+/status
topic write devices/+/channels
topic write room1/button
topic read room1/#
";

fn as_user(id: &str, port: u16, user: &str) -> roomctl::mqtt::MqttSettings {
    let mut s = settings(id, &[port]);
    s.brokers[0].username = Some(user.into());
    s.brokers[0].password = Some(roomctl::config::Secret::new(format!("{user} pw")));
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_acl_keeps_boards_off_the_control_topics() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let pw = passwords(
        dir.path(),
        &[
            ("room1", "room1 pw"),
            ("site", "site pw"),
            ("board", "board pw"),
        ],
    );
    let acl = dir.path().join("acl");
    std::fs::write(&acl, ACL).unwrap();
    let b = Mosquitto::start_with(&format!(
        "allow_anonymous false\npassword_file {}\nacl_file {}\n",
        pw.display(),
        acl.display()
    ))
    .await
    .unwrap();
    let site = site(
        &[b.port()],
        &[SCENE],
        &format!("control: {{ key: \"{KEY}\" }}\n"),
    );
    // The daemon logs in as its own user.
    let text = std::fs::read_to_string(&site.config).unwrap().replace(
        "priority: 1 }",
        "priority: 1, username: room1, password: room1 pw }",
    );
    std::fs::write(&site.config, text).unwrap();
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    assert!(
        room.mqtt.wait_subscribed(Duration::from_secs(5)).await,
        "the daemon got in with its user"
    );
    let cancel = CancellationToken::new();
    let connected =
        |c: &MqttHandle| c.status().state == roomctl::events::ConnectionState::Connected;
    let (board, _b) = mqtt_start(as_user("esp32_01", b.port(), "board"), cancel.child_token());
    let (desk, _d) = mqtt_start(
        as_user("roomctl_site_x", b.port(), "site"),
        cancel.child_token(),
    );
    let (nobody, _n) = mqtt_start(
        settings("anonymous_guest", &[b.port()]),
        cancel.child_token(),
    );
    eventually(Duration::from_secs(5), "board and site connected", || {
        connected(&board) && connected(&desk)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!connected(&nobody), "an anonymous client got in");

    // A board holding the key still may not publish there: the broker
    // drops it before the room ever sees it.
    let start = "roomctl/room1/scene/start";
    send_signed(&board, start, "intro", "board", 0);
    assert!(
        !started_within(&room, Duration::from_secs(1)).await,
        "the ACL let a board start a scene"
    );
    assert_eq!(
        refused(&room, "unsigned") + refused(&room, "bad_signature"),
        0,
        "it reached the room"
    );
    // The site user may, signed.
    send_signed(&desk, start, "intro", "desk", 0);
    assert!(
        started_within(&room, Duration::from_secs(3)).await,
        "the site's signed start did not run"
    );
    room.shutdown(Role::Daemon).await;
    cancel.cancel();
}
