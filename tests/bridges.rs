//! Bridged brokers (real Mosquitto bridges, the settings docs/topologies.md
//! names): a room whose two brokers are bridged to each other, with its
//! boards split across them. Every cue reaches its board, every reply is
//! counted once, and an independent subscriber sees each message exactly
//! once on each broker (the bridge does not echo it back).

use std::time::Duration;

use crate::common::*;
use roomctl::broker::Mosquitto;
use roomctl::mqtt::PublishOptions;
use roomctl::origin::Origin;
use roomctl::room::{Command, Role, Room};
use tokio_util::sync::CancellationToken;

/// The bridge section for a broker that bridges everything to `port`.
pub fn bridge_to(port: u16, name: &str) -> String {
    format!(
        "connection {name}\naddress 127.0.0.1:{port}\ntopic # both 1\ntry_private true\ncleansession true\nnotifications false\nbridge_protocol_version mqttv50\nstart_type automatic\nrestart_timeout 1\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_on_a_bridged_pair_with_boards_split_across_them() {
    bridged_pair(false).await;
}

/// The same with `mqtt.connect: every_broker`: each cue goes to the broker
/// its board is on, and still arrives exactly once on each broker; each
/// reply arrives on both (the bridge) and counts once, on the broker its
/// command went to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_broker_on_a_bridged_pair_counts_each_reply_once() {
    bridged_pair(true).await;
}

async fn bridged_pair(every: bool) {
    init_logs();
    let a = Mosquitto::start().await.unwrap();
    let b = Mosquitto::start_with(&bridge_to(a.port(), "b-to-a"))
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    // The bridge is up when a message on B reaches A.
    let (_pa, mut on_a) = observer(a.port(), "#", &cancel).await;
    let (_pb, mut on_b) = observer(b.port(), "#", &cancel).await;
    let (probe, _) = mqtt_start(settings("bridge-probe", &[b.port()]), cancel.child_token());
    assert!(probe.wait_connected(Duration::from_secs(5)).await);
    eventually(
        Duration::from_secs(10),
        "the bridge carries B's messages to A",
        || {
            let _ = probe.publish("probe/ping", "1", PublishOptions::reliable());
            std::iter::from_fn(|| on_a.try_recv().ok()).any(|m| m.topic == "probe/ping")
        },
    )
    .await;

    // esp32_01 on A answers the light; esp32_02 on B answers the steam.
    let scene = "name: show\nactions:\n  - { at: 0, topic: room1/light, message: 'ON' }\n  - { at: 0.2, topic: room1/steam, message: 'ON' }\nduration: 1\n";
    let site = site(&[a.port(), b.port()], &[("show.yaml", scene)], "");
    if every {
        every_broker(&site);
    }
    let (config, scenes) = site.load();
    for (port, id, channel) in [
        (a.port(), "esp32_01", "room1/light"),
        (b.port(), "esp32_02", "room1/steam"),
    ] {
        board_on(port, id, channel, &cancel).await;
    }
    let room = Room::start(config, scenes, Role::Daemon);
    assert!(room.mqtt.wait_subscribed(Duration::from_secs(5)).await);
    assert_eq!(
        room.mqtt.status().broker.as_deref(),
        Some(format!("127.0.0.1:{}", a.port()).as_str())
    );
    // Drain what the observers saw so far.
    while on_a.try_recv().is_ok() {}
    while on_b.try_recv().is_ok() {}

    room.apply(
        Origin::Cli { command: "test" },
        Command::StartScene("show".into()),
    )
    .await
    .unwrap();
    room.scenes.wait_idle().await;
    eventually(Duration::from_secs(5), "both cues confirmed", || {
        let h = room.feedback.history(10);
        h.len() == 2 && h.iter().all(|r| r.result == roomctl::events::Outcome::Ok)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        room.feedback.history(10).len(),
        2,
        "each reply counted once"
    );
    if every {
        // Each reply's copy from the other broker confirmed nothing.
        let fs = room.feedback.stats();
        assert_eq!((fs.ok, fs.unmatched + fs.other_broker), (2, 2), "{fs:?}");
        assert_eq!(room.mqtt.stats().brokers.len(), 2);
    }
    for (name, rx) in [("A", &mut on_a), ("B", &mut on_b)] {
        let got: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|m| format!("{}={}", m.topic, String::from_utf8_lossy(&m.payload)))
            .collect();
        let count = |t: &str| got.iter().filter(|g| *g == t).count();
        assert_eq!(count("room1/light=ON"), 1, "broker {name}: {got:?}");
        assert_eq!(count("room1/steam=ON"), 1, "broker {name}: {got:?}");
        assert_eq!(count("room1/status=OK"), 2, "broker {name}: {got:?}");
    }
    room.shutdown(Role::Daemon).await;
    cancel.cancel();
}

/// The bridge section for a site broker that carries its rooms' topics to
/// a central broker at `port` under `prefix/` (and control messages back).
fn site_to_centre(port: u16, prefix: &str) -> String {
    format!(
        "connection {prefix}-to-centre\naddress 127.0.0.1:{port}\ntopic roomctl/# both 1 \"\" {prefix}/\ntry_private true\ncleansession true\nnotifications false\nbridge_protocol_version mqttv50\nstart_type automatic\nrestart_timeout 1\n"
    )
}

/// Two sites, each with its own broker, bridged to a central broker with a
/// prefix per site: one `roomctl site` page on the centre shows the rooms
/// of both (in Chromium), and a start from it reaches the right room,
/// signed for the topic the room sees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sites_bridged_to_a_centre_on_one_site_page() {
    if std::env::var_os("ROOMCTL_SKIP_BROWSER").is_some() {
        return;
    }
    init_logs();
    let centre = Mosquitto::start().await.unwrap();
    let east = Mosquitto::start_with(&site_to_centre(centre.port(), "east"))
        .await
        .unwrap();
    let west = Mosquitto::start_with(&site_to_centre(centre.port(), "west"))
        .await
        .unwrap();
    let key = "a-site-key-of-at-least-16";
    let scene =
        "name: tour\nactions:\n  - { at: 0, topic: hall/light, message: 'ON' }\nduration: 30\n";
    let mut rooms = Vec::new();
    let mut sites = Vec::new();
    for (port, name) in [(east.port(), "hall"), (west.port(), "vault")] {
        let s = site(
            &[port],
            &[("tour.yaml", scene)],
            &format!("control: {{ key: \"{key}\" }}\n"),
        );
        s.edit_config("room: room1", &format!("room: {name}"));
        let (config, scenes) = s.load();
        let r = Room::start(config, scenes, Role::Daemon);
        assert!(r.mqtt.wait_subscribed(Duration::from_secs(5)).await);
        rooms.push(r);
        sites.push(s);
    }
    let brokers = [format!("127.0.0.1:{}", centre.port())];
    let (settings, mut web, _) = roomctl::cmd::site::settings(None, &brokers).unwrap();
    let users = tempfile::tempdir().unwrap();
    web.users = users.path().join("no-users.yaml");
    let cancel = CancellationToken::new();
    let tasks = tokio_util::task::TaskTracker::new();
    let site = roomctl::site::Site::start(
        settings,
        Some(roomctl::config::Secret::new(key)),
        vec![],
        cancel.clone(),
        &tasks,
    );
    eventually(
        Duration::from_secs(15),
        "both sites' rooms on the centre",
        || {
            let names: Vec<String> = site
                .rooms()
                .into_iter()
                .filter(|r| r.status == "online" && r.current)
                .map(|r| r.room)
                .collect();
            names == ["east:hall", "west:vault"]
        },
    )
    .await;
    site.start_scene("west:vault", "tour", "central desk")
        .unwrap();
    eventually(Duration::from_secs(5), "the west's vault running", || {
        rooms[1].scenes.status().is_some()
    })
    .await;
    assert!(
        rooms[0].scenes.status().is_none(),
        "the east's hall left alone"
    );

    // The page on the centre, in Chromium.
    let port = roomctl::broker::free_port().unwrap();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let accounts = roomctl::accounts::Accounts::new(
        roomctl::accounts::AccountsConfig::from_web(&web),
        roomctl::events::EventBus::default(),
    );
    let app = site.router(roomctl::web::Guard::new(accounts, &web));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let br = crate::common::webdriver::Browser::start().await;
    br.resize(820, 900).await;
    br.goto(&format!("http://127.0.0.1:{port}/")).await;
    br.wait_for(
        "both rooms on the page, the vault running",
        "document.querySelectorAll('.room').length === 2 && !!document.querySelector('.room[data-room=\"east:hall\"]') && document.querySelector('.room[data-room=\"west:vault\"]').textContent.includes('tour')",
        Duration::from_secs(10),
    )
    .await;
    br.snapshot("site-two-sites-820").await;
    br.quit().await;
    server.abort();
    for r in rooms {
        r.shutdown(Role::Daemon).await;
    }
    cancel.cancel();
}
