//! The whole room (daemon role) against real Mosquitto brokers and the
//! simulated ESP32 fleet.

use std::time::Duration;

use crate::common::*;
use roomctl::broker::Mosquitto;
use roomctl::mqtt::PublishOptions;
use roomctl::origin::Origin;
use roomctl::registry::Presence;
use roomctl::room::{Command, Reply, Role, Room};
use roomctl::simulate;
use tokio_util::sync::CancellationToken;

// A broker killed mid-scene and feedback OK / TIMEOUT / ERROR from real
// devices are in tests/second_broker.rs: the same scenarios run there on
// Mosquitto and on rumqttd.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_last_will_marks_it_offline() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let cancel = CancellationToken::new();
    let site = site(&[b.port()], &[ONE_CUE], "");
    let (config, scenes) = site.load();
    let room = Room::start(config.clone(), scenes.clone(), Role::Daemon);
    assert!(room.mqtt.wait_connected(Duration::from_secs(5)).await);
    let fleet_stop = CancellationToken::new();
    let _fleet = simulate::start(&config, &scenes, &fast_fleet(), fleet_stop.clone());
    eventually(Duration::from_secs(5), "devices online", || {
        room.registry.counts().online == 2
    })
    .await;
    // Pull the plug: no DISCONNECT, so the broker publishes each will.
    fleet_stop.cancel();
    eventually(Duration::from_secs(5), "devices offline", || {
        room.registry.counts().offline == 2
    })
    .await;
    assert!(
        room.registry
            .all()
            .iter()
            .all(|d| d.presence == Presence::Offline && d.status == "offline")
    );
    room.shutdown(Role::Daemon).await;
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_payloads_leave_the_daemon_up() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let cancel = CancellationToken::new();
    let site = site(
        &[b.port()],
        &[(
            "intro.yaml",
            "name: intro\nactions: [{at: 0, topic: room1/light, message: 'ON'}]\nduration: 0.2\n",
        )],
        "triggers:\n  - { topic: room1/button, payload: pressed, scene: intro }\n",
    );
    let (config, scenes) = site.load();
    let _fleet = simulate::start(&config, &scenes, &fast_fleet(), cancel.child_token());
    let room = Room::start(config, scenes, Role::Daemon);
    assert!(room.mqtt.wait_subscribed(Duration::from_secs(5)).await);

    let huge = vec![b'x'; 200 * 1024];
    let too_big = vec![b'y'; 400 * 1024];
    let garbage: Vec<(&str, Vec<u8>, bool)> = vec![
        ("devices/esp32_99/status", vec![0xff, 0x00, 0xfe], false),
        (
            "devices/esp32_99/status",
            b"{\"online\": [1,2".to_vec(),
            false,
        ),
        ("devices//status", b"online".to_vec(), false),
        ("room1/status", b"\x00\x01\x02".to_vec(), false),
        (
            "room1/status",
            b"{\"status\": {\"nested\": true}}".to_vec(),
            false,
        ),
        ("room1/status", huge.clone(), false),
        (
            "roomctl/room1/scene/start",
            b"../../../etc/passwd".to_vec(),
            false,
        ),
        ("roomctl/room1/scene/start", huge.clone(), false),
        (
            "room1/start_scene",
            "\u{202e}💥\u{0}".as_bytes().to_vec(),
            false,
        ),
        ("room1/scene", b"EXPLODE".to_vec(), false),
        ("room1/button", vec![0xc3, 0x28], false),
        ("roomctl/room1/scene/stop", huge, false),
        // Larger than the daemon's Maximum Packet Size: the broker must
        // discard it for the daemon instead of breaking its connection.
        ("room1/status", too_big, false),
        // Sent last: once the daemon knows this device, it has routed
        // everything above (one publisher, in order).
        ("devices/sentinel/status", b"online".to_vec(), false),
    ];
    raw_publish(b.port(), &garbage).await;
    eventually(Duration::from_secs(5), "the sentinel to be routed", || {
        room.registry.get("sentinel").is_some()
    })
    .await;
    let st = room.mqtt.stats();
    assert_eq!(
        (st.counts.total_connections, st.counts.total_disconnections),
        (1, 0),
        "the oversize message must not cost a reconnect: {st:?}"
    );
    assert!(!room.scenes.is_running());
    assert!(room.registry.get("esp32_99").is_none());

    // Still fully working: a trigger plays a scene with confirmed feedback.
    raw_publish(b.port(), &[("room1/button", b"pressed".to_vec(), false)]).await;
    eventually(Duration::from_secs(3), "feedback", || {
        room.feedback.stats().ok >= 1
    })
    .await;
    room.scenes.wait_idle().await;
    room.shutdown(Role::Daemon).await;
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_topics_and_retained_room_state() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let cancel = CancellationToken::new();
    let site = site(
        &[b.port()],
        &[(
            "intro.yaml",
            "name: intro\nactions: [{at: 0, topic: room1/light, message: 'ON'}, {at: 30, topic: room1/light, message: 'OFF'}]\non_stop: [{topic: room1/steam, message: 'OFF'}]\n",
        )],
        "",
    );
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    assert!(room.mqtt.wait_connected(Duration::from_secs(5)).await);
    let (_o, mut seen) = observer(b.port(), "#", &cancel).await;
    let (ctl, _rx) = mqtt_start(settings("ctl", &[b.port()]), cancel.child_token());
    assert!(ctl.wait_connected(Duration::from_secs(5)).await);

    ctl.publish(
        "roomctl/room1/scene/start",
        "intro",
        PublishOptions::reliable(),
    )
    .unwrap();
    eventually(Duration::from_secs(3), "scene start", || {
        room.scenes.is_running()
    })
    .await;
    ctl.publish("roomctl/room1/scene/stop", "", PublishOptions::reliable())
        .unwrap();
    eventually(Duration::from_secs(3), "scene stop", || {
        !room.scenes.is_running()
    })
    .await;

    let got = collect_until(&mut seen, Duration::from_secs(3), |g| {
        g.iter().any(|m| m.topic == "room1/STOP")
    })
    .await;
    let order: Vec<String> = got
        .iter()
        .filter(|m| m.topic.starts_with("room1/") && m.topic != "room1/status")
        .map(|m| format!("{}={}", m.topic, text(m)))
        .collect();
    assert_eq!(
        order,
        ["room1/light=ON", "room1/steam=OFF", "room1/STOP=STOP"],
        "on_stop, then STOP"
    );

    // The retained state and status topics describe the room: a newcomer
    // gets both at once, and the state converges to the current truth
    // (updates are rate-limited to one per 250 ms).
    let (_o2, mut late) = observer(b.port(), "roomctl/room1/+", &cancel).await;
    let is_state = |m: &roomctl::mqtt::InMessage| m.topic == "roomctl/room1/state";
    let json = |m: &roomctl::mqtt::InMessage| {
        serde_json::from_slice::<serde_json::Value>(&m.payload).unwrap()
    };
    let got = collect_until(&mut late, Duration::from_secs(3), |g| {
        g.iter()
            .any(|m| m.retain && m.topic == "roomctl/room1/status")
            && g.iter().any(|m| m.retain && is_state(m))
            && g.iter()
                .any(|m| is_state(m) && json(m)["connection"] == "CONNECTED")
    })
    .await;
    let status = got
        .iter()
        .find(|m| m.retain && m.topic == "roomctl/room1/status")
        .expect("retained status");
    assert_eq!(text(status), "online");
    assert!(
        got.iter().any(|m| m.retain && is_state(m)),
        "no retained state"
    );
    let v = got.iter().rev().find(|m| is_state(m)).map(json).unwrap();
    assert_eq!(v["room"], "room1");
    assert_eq!(v["connection"], "CONNECTED", "state: {v}");
    assert!(v["devices"]["total"].is_number());
    room.shutdown(Role::Daemon).await;
    cancel.cancel();
}

/// Reloads asked for at once (four dashboards, a SIGHUP) become at most
/// two: the one running and one after it that answers all who waited.
/// Each caller gets the report of a reload that read the files after it
/// asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reloads_coalesce() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let mut big = String::from("name: big\nactions:\n");
    for i in 0..600 {
        big.push_str(&format!(
            "  - {{ at: {}, topic: room1/light, message: C{i} }}\n",
            i as f64 * 0.1
        ));
    }
    let site = site(&[b.port()], &[("big.yaml", &big)], "");
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    let before = room.reloads_run();
    let extra = site.dir.path().join("scenes").join("extra.yaml");
    std::fs::write(
        &extra,
        "name: extra\nactions: [{at: 0, topic: room1/x, message: 'ON'}]\n",
    )
    .unwrap();
    let reload = || room.apply(Origin::Signal { name: "SIGHUP" }, Command::Reload);
    let all = futures::future::join_all((0..8).map(|_| reload())).await;
    for r in all {
        let Ok(Reply::Reloaded(r)) = r else {
            panic!("a good config reloads: {r:?}")
        };
        assert!(r.scenes.contains(&"extra".to_string()), "{r:?}");
    }
    let ran = room.reloads_run() - before;
    assert!((1..=2).contains(&ran), "{ran} reloads for 8 requests");
    room.shutdown(Role::Daemon).await;
}
