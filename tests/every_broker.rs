//! `mqtt.connect: every_broker` on real Mosquitto processes: a connection
//! to every broker at once, boards reached on the broker they are on,
//! lost brokers (SIGKILL, SIGSTOP) handed over to a standby that is
//! already connected, and brokers that misbehave.

use std::time::{Duration, Instant};

use crate::common::*;
use roomctl::broker::{Mosquitto, free_port};
use roomctl::config::Connect;
use roomctl::events::Outcome;
use roomctl::mqtt::{ConnectionState, PublishOptions};
use roomctl::room::{Role, Room};
use tokio_util::sync::CancellationToken;

const SPLIT_SCENE: &str = "name: show\nactions:\n  - { at: 0, topic: room1/light, message: 'ON' }\n  - { at: 0.2, topic: room1/steam, message: 'ON' }\nduration: 1\n";

/// Boards with one broker address each, on two brokers that know nothing
/// of each other: with `every_broker` both cues reach their boards and are
/// confirmed, each on its board's broker only, and the registry says where
/// each board is. With `one_at_a_time` the room is on the primary only,
/// and the board on the backup is out of reach: its cue times out (why the
/// switch exists).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boards_split_across_two_unbridged_brokers() {
    init_logs();
    let a = Mosquitto::start().await.unwrap();
    let b = Mosquitto::start().await.unwrap();
    let cancel = CancellationToken::new();
    board_on(a.port(), "esp32_01", "room1/light", &cancel).await;
    board_on(b.port(), "esp32_02", "room1/steam", &cancel).await;
    for every in [true, false] {
        let (_oa, mut on_a) = observer(a.port(), "room1/#", &cancel).await;
        let (_ob, mut on_b) = observer(b.port(), "room1/#", &cancel).await;
        let site = site(&[a.port(), b.port()], &[("show.yaml", SPLIT_SCENE)], "");
        if every {
            every_broker(&site);
        }
        let (config, scenes) = site.load();
        let room = Room::start(config, scenes, Role::Daemon);
        assert!(room.mqtt.wait_connected(Duration::from_secs(5)).await);
        if every {
            assert!(room.mqtt.wait_subscribed(Duration::from_secs(5)).await);
        }
        let a_addr = format!("127.0.0.1:{}", a.port());
        let b_addr = format!("127.0.0.1:{}", b.port());
        eventually(Duration::from_secs(5), "the boards listed", || {
            room.registry
                .get("esp32_01")
                .is_some_and(|d| d.broker.is_some())
                && (!every || room.registry.get("esp32_02").is_some())
        })
        .await;
        start(&room, "show").await;
        room.scenes.wait_idle().await;
        eventually(Duration::from_secs(5), "both cues settled", || {
            room.feedback.pending_count() == 0 && room.feedback.history(10).len() >= 2
        })
        .await;
        let mut results: Vec<(String, Outcome)> = room
            .feedback
            .history(10)
            .into_iter()
            .filter(|r| r.command_topic != "room1/STOP")
            .map(|r| (r.command_topic, r.result))
            .collect();
        results.sort_by(|x, y| x.0.cmp(&y.0));
        let cues = |rx: &mut tokio::sync::mpsc::Receiver<roomctl::mqtt::InMessage>| {
            std::iter::from_fn(|| rx.try_recv().ok())
                .filter(|m| m.topic != "room1/STOP" && m.topic != "room1/status")
                .map(|m| format!("{}={}", m.topic, text(&m)))
                .collect::<Vec<_>>()
        };
        if every {
            assert_eq!(
                results,
                [
                    ("room1/light".to_string(), Outcome::Ok),
                    ("room1/steam".to_string(), Outcome::Ok)
                ]
            );
            assert_eq!(
                cues(&mut on_a),
                ["room1/light=ON"],
                "only A's board's cue on A"
            );
            assert_eq!(
                cues(&mut on_b),
                ["room1/steam=ON"],
                "only B's board's cue on B"
            );
            let on = |id: &str| room.registry.get(id).and_then(|d| d.broker);
            assert_eq!(on("esp32_01"), Some(a_addr.clone()));
            assert_eq!(on("esp32_02"), Some(b_addr.clone()));
            let st = room.mqtt.stats();
            assert_eq!(st.connect, "every_broker");
            assert_eq!(st.active_connections, 2, "{st:?}");
            let states: Vec<_> = st
                .brokers
                .iter()
                .map(|b| (b.broker.clone(), b.active))
                .collect();
            assert_eq!(states, [(a_addr, true), (b_addr, false)]);
            // The API says it too.
            let devices = serde_json::to_value(room.registry.all()).unwrap();
            assert!(
                devices.to_string().contains("\"broker\":\"127.0.0.1:"),
                "{devices}"
            );
        } else {
            assert_eq!(
                results,
                [
                    ("room1/light".to_string(), Outcome::Ok),
                    ("room1/steam".to_string(), Outcome::Timeout)
                ]
            );
            assert!(cues(&mut on_b).is_empty(), "one_at_a_time never reaches B");
        }
        room.shutdown(Role::Daemon).await;
    }
    cancel.cancel();
}

/// 40 cues at 10 Hz; the primary is frozen once it forwarded C14 and, if
/// `kill`, SIGKILLed once C15 was handed to it (so C15 is in flight). Every
/// cue reaches a subscriber on one broker or the other, the backup's
/// connection is the one it had from the start (no connect in the critical
/// path). After a kill the boards follow to the backup and confirm the late
/// cues; a frozen broker keeps the boards' connections open, so they hear
/// nothing until their own keep-alive gives up (their late cues time out,
/// truthfully).
async fn active_broker_lost_mid_scene(kill: bool) {
    init_logs();
    let mut primary = Mosquitto::start().await.unwrap();
    let backup = Mosquitto::start().await.unwrap();
    let cancel = CancellationToken::new();
    let (_oa, mut on_a) = observer(primary.port(), "room1/#", &cancel).await;
    let (_ob, mut on_b) = observer(backup.port(), "room1/#", &cancel).await;
    let site = site(
        &[primary.port(), backup.port()],
        &[("long.yaml", &long_scene())],
        "",
    );
    every_broker(&site);
    let (room, _fleet) = room_with_json_fleet(&site, &cancel).await;
    let seen = until_c15_in_flight(&room, &mut on_a, || primary.freeze(), "every_broker").await;
    if kill {
        primary.kill();
    }
    room.scenes.wait_idle().await;
    every_long_cue_arrived(seen, [&mut on_a, &mut on_b], "every_broker").await;

    let st = room.mqtt.stats();
    assert_eq!(room.mqtt.status().broker_priority_index, Some(2), "{st:?}");
    assert_eq!(st.counts.failovers, 1, "{st:?}");
    assert_eq!(
        st.brokers[1].counts.total_connections, 1,
        "the backup's standby connection carried on: {st:?}"
    );
    assert!(st.brokers[1].counts.messages_resent >= 1, "{st:?}");
    assert_eq!(
        st.counts.messages_failed + st.counts.messages_expired + st.counts.messages_dropped,
        0,
        "{st:?}"
    );
    eventually(Duration::from_secs(3), "feedback to settle", || {
        room.feedback.pending_count() == 0
    })
    .await;
    if !kill {
        primary.thaw();
        room.shutdown(Role::Daemon).await;
        cancel.cancel();
        return;
    }
    let late: Vec<_> = room
        .feedback
        .history(10)
        .into_iter()
        .filter(|f| f.command_topic != "room1/STOP" && f.result != Outcome::Ok)
        .collect();
    assert!(late.is_empty(), "late cues not confirmed: {late:?}");
    room.shutdown(Role::Daemon).await;
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_active_broker_killed_mid_scene_loses_no_cue() {
    active_broker_lost_mid_scene(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_active_broker_frozen_mid_scene_loses_no_cue() {
    active_broker_lost_mid_scene(false).await;
}

/// An idle room whose active broker silently stops answering: the missing
/// PINGRESP is noticed within keep_alive + ack_timeout and the standby,
/// already connected, carries the room from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_frozen_broker_is_left_within_keep_alive_and_ack_timeout() {
    init_logs();
    let primary = Mosquitto::start().await.unwrap();
    let backup = Mosquitto::start().await.unwrap();
    let cancel = CancellationToken::new();
    // keep_alive 5 s (the smallest MQTT keep-alive roomctl accepts).
    let s = settings("idle-every", &[primary.port(), backup.port()]);
    let (link, _rx) = roomctl::mqtt::start_link(
        s,
        Connect::EveryBroker,
        cancel.child_token(),
        &tokio_util::task::TaskTracker::new(),
    );
    assert!(link.wait_subscribed(Duration::from_secs(5)).await);
    let mut w = link.watch();
    // The backup may answer first; the primary's first connection takes
    // over at once.
    tokio::time::timeout(
        Duration::from_secs(5),
        w.wait_for(|s| s.broker_priority_index == Some(1)),
    )
    .await
    .expect("the primary never became active")
    .unwrap();
    // Idle for a moment, then the primary hangs.
    tokio::time::sleep(Duration::from_millis(300)).await;
    primary.freeze();
    let t0 = Instant::now();
    tokio::time::timeout(
        Duration::from_secs(10),
        w.wait_for(|s| s.broker_priority_index == Some(2)),
    )
    .await
    .expect("never switched to the standby within 10 s")
    .unwrap();
    let took = t0.elapsed();
    assert!(
        took <= Duration::from_millis(5000 + 500 + 500),
        "noticed after {took:?} (keep_alive 5 s + ack_timeout 0.5 s)"
    );
    assert_eq!(link.status().state, ConnectionState::Connected);
    let st = link.stats();
    assert_eq!(st.brokers[1].counts.total_connections, 1, "{st:?}");
    // A cue now goes out at once on the standby.
    let (_ob, mut on_b) = observer(backup.port(), "cue/#", &cancel).await;
    link.publish("cue/1", "GO", PublishOptions::cue(Duration::from_secs(2)))
        .unwrap();
    let got = collect_until(&mut on_b, Duration::from_secs(2), |g| !g.is_empty()).await;
    assert_eq!(got.len(), 1, "the cue after the switch");
    primary.thaw();
    cancel.cancel();
}

/// Brokers that misbehave beside a good one: one accepts the connection and
/// never answers, one drops every connection right after its CONNACK. The
/// room stays on the good one throughout, its cues are confirmed, and the
/// bad ones are retried at the backoff's pace, not in a storm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mute_broker_and_a_dropping_one_cost_the_room_nothing() {
    init_logs();
    let good = Mosquitto::start().await.unwrap();
    let mute_port = free_port().unwrap();
    let mute = tokio::net::TcpListener::bind(("127.0.0.1", mute_port))
        .await
        .unwrap();
    let held = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = mute.accept().await {
            keep.lock().push(sock);
        }
    });
    let dropping = FakeBroker::start(Fake::DropAfterConnack).await;
    let cancel = CancellationToken::new();
    board_on(good.port(), "esp32_01", "room1/light", &cancel).await;
    let scene =
        "name: show\nactions:\n  - { at: 0, topic: room1/light, message: 'ON' }\nduration: 0.5\n";
    let site = site(
        &[good.port(), mute_port, dropping.port],
        &[("show.yaml", scene)],
        "",
    );
    every_broker(&site);
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    // The dropping broker may answer first for a moment; the good one's
    // first connection takes over at once.
    let mut w = room.mqtt.watch();
    tokio::time::timeout(
        Duration::from_secs(5),
        w.wait_for(|s| s.broker_priority_index == Some(1)),
    )
    .await
    .expect("the good broker never became active")
    .unwrap();
    let t0 = Instant::now();
    let w = room.mqtt.watch();
    for _ in 0..3 {
        start(&room, "show").await;
        room.scenes.wait_idle().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        !w.has_changed().unwrap(),
        "the room's connection changed: {:?}",
        room.mqtt.status()
    );
    let oks = room
        .feedback
        .history(20)
        .iter()
        .filter(|r| r.command_topic == "room1/light" && r.result == Outcome::Ok)
        .count();
    assert_eq!(oks, 3);
    let secs = t0.elapsed().as_secs_f64() + 1.0;
    let drops = dropping.connections();
    assert!(
        (drops as f64) <= secs * 3.0,
        "{drops} connections to the dropping broker in {secs:.1} s: a storm"
    );
    let st = room.mqtt.stats();
    assert_eq!(st.brokers[0].connection_state, ConnectionState::Connected);
    assert_ne!(st.brokers[1].connection_state, ConnectionState::Connected);
    // Said in words: health names the brokers that are down.
    let h = room.health();
    let mute = format!("broker 127.0.0.1:{mute_port} ");
    assert!(
        h.issues
            .iter()
            .any(|i| i.starts_with(&mute) && i.contains("out of reach")),
        "{:?}",
        h.issues
    );
    room.shutdown(Role::Daemon).await;
    cancel.cancel();
}

/// One board id heard on two unbridged brokers in turn (two boards given
/// the same id): the registry says so in words, and its commands go where
/// it was heard last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_board_id_on_two_brokers_is_said_in_words() {
    init_logs();
    let a = Mosquitto::start().await.unwrap();
    let b = Mosquitto::start().await.unwrap();
    let site = site(&[a.port(), b.port()], &[ONE_CUE], "");
    every_broker(&site);
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    assert!(room.mqtt.wait_subscribed(Duration::from_secs(5)).await);
    for port in [a.port(), b.port(), a.port(), b.port()] {
        raw_publish(
            port,
            &[("devices/esp32_07/status", b"online".to_vec(), false)],
        )
        .await;
        // Apart by more than a bridge's copy would be.
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let d = room.registry.get("esp32_07").expect("listed");
    assert_eq!(d.broker, Some(format!("127.0.0.1:{}", b.port())));
    let note = d.broker_note.expect("a note on the two brokers");
    assert!(note.contains(&format!("127.0.0.1:{}", a.port())), "{note}");
    room.shutdown(Role::Daemon).await;
}
