//! The whole room (daemon role) against real Mosquitto brokers and the
//! simulated ESP32 fleet.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use roomctl::app::{Role, Room};
use roomctl::broker::Mosquitto;
use roomctl::feedback::Outcome;
use roomctl::mqtt::PublishOptions;
use roomctl::registry::Presence;
use roomctl::scene::SceneSet;
use roomctl::simulate::{self, ReplyStyle, SimOptions};
use tokio_util::sync::CancellationToken;

/// 40 cues, 100 ms apart, each with a unique message.
fn long_scene() -> String {
    let mut s = String::from("name: long\nactions:\n");
    for i in 0..40 {
        let ch = ["light", "steam", "motor"][i % 3];
        s.push_str(&format!(
            "  - {{ at: {:.1}, topic: room1/{ch}, message: C{i} }}\n",
            i as f64 * 0.1
        ));
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_killed_mid_scene_loses_no_cue() {
    init_logs();
    let mut primary = Mosquitto::start().await.unwrap();
    let backup = Mosquitto::start().await.unwrap();
    let cancel = CancellationToken::new();
    // Like seed 003's subscriber: one observer on each broker.
    let (_oa, mut on_a) = observer(primary.port(), "room1/#", &cancel).await;
    let (_ob, mut on_b) = observer(backup.port(), "room1/#", &cancel).await;

    let site = site(
        &[primary.port(), backup.port()],
        &[("long.yaml", &long_scene())],
        "",
    );
    let (config, scenes) = site.load();
    // JSON replies name the command they confirm, so a reply lost with the
    // dying broker cannot shift every later confirmation by one (FIFO).
    let fleet_opts = SimOptions {
        reply: ReplyStyle::Json,
        ..fast_fleet()
    };
    let fleet = simulate::start(&config, &scenes, &fleet_opts, cancel.child_token());
    let room = Room::start(config, scenes, Role::Daemon);
    assert!(room.mqtt.wait_subscribed(Duration::from_secs(5)).await);
    fleet_ready(&fleet).await;

    room.scenes.start("long").unwrap();
    eventually(Duration::from_secs(5), "15 cues sent", || {
        room.scenes.status().is_some_and(|s| s.actions_done >= 15)
    })
    .await;
    primary.kill();
    room.scenes.wait_idle().await;

    let mut seen = BTreeSet::new();
    for rx in [&mut on_a, &mut on_b] {
        for m in collect_until(rx, Duration::from_millis(1500), |_| false).await {
            seen.insert(text(&m));
        }
    }
    let missing: Vec<String> = (0..40)
        .map(|i| format!("C{i}"))
        .filter(|c| !seen.contains(c))
        .collect();
    assert!(missing.is_empty(), "cues lost in the failover: {missing:?}");
    assert!(seen.contains("STOP"), "end of scene STOP not delivered");

    let st = room.mqtt.stats();
    assert_eq!(room.mqtt.status().broker_priority_index, Some(2));
    assert_eq!(st.failovers, 1);
    assert_eq!(
        st.messages_failed + st.messages_expired + st.messages_dropped,
        0
    );

    // The fleet followed; cues well after the failover are confirmed.
    eventually(Duration::from_secs(3), "feedback to settle", || {
        room.feedback.pending_count() == 0
    })
    .await;
    let last: Vec<_> = room.feedback.history(10);
    assert!(
        last.iter()
            .filter(|f| f.command_topic != "room1/STOP")
            .all(|f| f.result == Outcome::Ok),
        "late cues not confirmed: {last:?}"
    );
    assert!(fleet.received().iter().any(|r| r.payload == "C39"));
    room.shutdown(Role::Daemon).await;
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_ok_timeout_and_error_from_real_devices() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let cancel = CancellationToken::new();
    // `attic/ghost` is confirmed on `attic/status`; nobody answers there.
    // (On a shared feedback topic an unanswered older command would take
    // the next reply: replies confirm the oldest pending command, FIFO.)
    let scene = "name: fb\nactions:\n  - { at: 0.0, topic: room1/light, message: 'ON' }\n  - { at: 0.1, topic: attic/ghost, message: 'ON', timeout: 500ms }\n  - { at: 0.2, topic: room1/steam, message: 'ON' }\nduration: 0.3\n";
    let site = site(&[b.port()], &[("fb.yaml", scene)], "");
    let (config, scenes) = site.load();
    // The fleet knows light and steam only: nobody answers attic/ghost.
    let known = SceneSet::new(
        scenes
            .iter()
            .map(|s| {
                let mut s = (**s).clone();
                for st in s.states.values_mut() {
                    for c in &mut st.timeline {
                        c.actions.retain(|a| a.topic != "attic/ghost");
                    }
                }
                s
            })
            .collect::<Vec<_>>(),
    );
    let _fleet = simulate::start(&config, &known, &fast_fleet(), cancel.child_token());
    let room = Room::start(config, scenes, Role::Daemon);
    assert!(room.mqtt.wait_connected(Duration::from_secs(5)).await);
    eventually(Duration::from_secs(3), "devices online", || {
        room.registry.counts().online == 2
    })
    .await;

    let mut events = room.events.subscribe();
    room.scenes.start("fb").unwrap();
    room.scenes.wait_idle().await;
    eventually(Duration::from_secs(3), "feedback", || {
        room.feedback.pending_count() == 0
    })
    .await;

    let h = room.feedback.history(10);
    let by_topic = |t: &str| h.iter().find(|f| f.command_topic == t).unwrap().clone();
    let light = by_topic("room1/light");
    assert_eq!(light.result, Outcome::Ok);
    assert!(light.latency.unwrap() < 0.5, "{light:?}");
    assert_eq!(light.scene.as_deref(), Some("fb"));
    assert!(
        light
            .device
            .as_deref()
            .is_some_and(|d| d.starts_with("esp32_")),
        "the simulated board announced that it answers room1/light: {light:?}"
    );
    let ghost = by_topic("attic/ghost");
    assert_eq!(ghost.result, Outcome::Timeout);
    assert_eq!(ghost.timeout, 0.5);
    assert_eq!(ghost.feedback_topic, "attic/status");
    assert_eq!(ghost.log_line(), "Feedback TIMEOUT: attic/ghost (>0.500s)");
    assert_eq!(by_topic("room1/steam").result, Outcome::Ok);
    assert!(
        h.iter().all(|f| f.command_topic != "room1/STOP"),
        "STOP is never tracked"
    );
    // Every result reached the bus (and so the dashboard).
    let mut on_bus = 0;
    while let Ok(e) = events.try_recv() {
        if matches!(e, roomctl::events::Event::Feedback(_)) {
            on_bus += 1;
        }
    }
    assert!(on_bus >= 3);

    // An ERROR reply from a device, confirming the exact command by JSON.
    let (probe, _rx) = mqtt_start(settings("err-sender", &[b.port()]), cancel.child_token());
    assert!(probe.wait_connected(Duration::from_secs(5)).await);
    let t = room
        .feedback
        .track("room1/door", "OPEN", Duration::from_secs(2), None);
    probe
        .publish(
            "room1/status",
            r#"{"status":"ERROR","topic":"room1/door"}"#,
            PublishOptions::reliable(),
        )
        .unwrap();
    let rec = tokio::time::timeout(Duration::from_secs(3), t.result)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.result, Outcome::Error);
    room.shutdown(Role::Daemon).await;
    cancel.cancel();
}

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
        (st.total_connections, st.total_disconnections),
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
