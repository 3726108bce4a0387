//! Faults injected from outside, as a site administrator whose broker
//! misbehaves sees them: shutdown that always ends, health that tells the
//! truth, a backoff that forgets old outages, retained messages that are
//! true on every broker.

use std::process::Stdio;
use std::time::Duration;

use crate::common::*;
use roomctl::broker::{Mosquitto, free_port};
use roomctl::room::HealthStatus;
use roomctl::room::{Role, Room};
use roomctl::web::AppState;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_roomctl");

const LONG: &str = "name: long\nactions:\n  - { at: 0, topic: room1/light, message: 'ON' }\n  - { at: 60, topic: room1/light, message: 'OFF' }\non_stop:\n  - { topic: room1/steam, message: 'OFF' }\n";

/// SIGTERM, then how long the process took to exit 0.
async fn terminate(child: &mut tokio::process::Child) -> Duration {
    let t0 = Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("shutdown never ended")
        .unwrap();
    assert_eq!(status.code(), Some(0), "exit status");
    t0.elapsed()
}

/// The README's bound: the 2 s flush, and a second to spare.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_a_frozen_primary_ends_in_time_and_the_backup_gets_the_last_words() {
    init_logs();
    let primary = Mosquitto::start().await.unwrap();
    let backup = Mosquitto::start().await.unwrap();
    let cancel = CancellationToken::new();
    let (_op, mut on_primary) = observer(primary.port(), "#", &cancel).await;
    let (_ob, mut on_backup) = observer(backup.port(), "#", &cancel).await;
    let site = site(&[primary.port(), backup.port()], &[("long.yaml", LONG)], "");
    let mut child = daemon(&site, &mut on_primary).await;
    raw_publish(
        primary.port(),
        &[("roomctl/room1/scene/start", b"long".to_vec(), false)],
    )
    .await;
    collect_until(&mut on_primary, Duration::from_secs(5), |g| {
        g.iter().any(|m| m.topic == "room1/light")
    })
    .await;

    // Silently frozen: sockets open, no answers.
    primary.freeze();
    let took = terminate(&mut child).await;
    assert!(took < SHUTDOWN_BOUND, "shutdown took {took:?}");
    let got = collect_until(&mut on_backup, Duration::from_secs(2), |g| {
        g.iter()
            .any(|m| m.topic == "roomctl/room1/status" && text(m) == "offline")
    })
    .await;
    let order: Vec<String> = got
        .iter()
        .filter(|m| {
            ["room1/steam", "room1/STOP", "roomctl/room1/status"].contains(&m.topic.as_str())
        })
        .map(|m| format!("{}={}", m.topic, text(m)))
        .collect();
    assert_eq!(
        order,
        [
            // Birth on the backup comes first on any connection.
            "roomctl/room1/status=online",
            "room1/steam=OFF",
            "room1/STOP=STOP",
            "roomctl/room1/status=offline"
        ],
        "the on_stop actions, STOP and offline went to the backup"
    );
    primary.thaw();
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_in_time_whatever_the_broker_does() {
    init_logs();
    let cancel = CancellationToken::new();

    // The only broker frozen, with a scene running.
    let b = Mosquitto::start().await.unwrap();
    let (_o, mut seen) = observer(b.port(), "#", &cancel).await;
    let site1 = site(&[b.port()], &[("long.yaml", LONG)], "");
    let mut child = daemon(&site1, &mut seen).await;
    raw_publish(
        b.port(),
        &[("roomctl/room1/scene/start", b"long".to_vec(), false)],
    )
    .await;
    collect_until(&mut seen, Duration::from_secs(5), |g| {
        g.iter().any(|m| m.topic == "room1/light")
    })
    .await;
    b.freeze();
    let took = terminate(&mut child).await;
    assert!(
        took < SHUTDOWN_BOUND,
        "frozen broker: shutdown took {took:?}"
    );
    b.thaw();

    // Reconnecting: the broker died, the daemon is backing off.
    let mut b2 = Mosquitto::start().await.unwrap();
    let (_o2, mut seen2) = observer(b2.port(), "#", &cancel).await;
    let site2 = site(&[b2.port()], &[("long.yaml", LONG)], "");
    let mut child = daemon(&site2, &mut seen2).await;
    b2.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let took = terminate(&mut child).await;
    assert!(
        took < SHUTDOWN_BOUND,
        "reconnecting: shutdown took {took:?}"
    );

    // No broker ever: nothing can be delivered, nothing holds it up.
    let dead = free_port().unwrap();
    let site3 = site(&[dead], &[("long.yaml", LONG)], "");
    let mut child = tokio::process::Command::new(BIN)
        .args(["run", "-c", site3.config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{}/healthz", site3.web_port);
    eventually(Duration::from_secs(10), "the dashboard", || {
        std::net::TcpStream::connect(("127.0.0.1", site3.web_port)).is_ok()
    })
    .await;
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 503);
    let took = terminate(&mut child).await;
    assert!(took < SHUTDOWN_BOUND, "no broker: shutdown took {took:?}");
    cancel.cancel();
}

fn app_state(room: &Room) -> AppState {
    AppState::new(room.clone(), room.cancel_token())
}

/// Until healthz says unhealthy; returns how long that took and why.
async fn until_unhealthy(s: &AppState, limit: Duration) -> (Duration, Vec<String>) {
    let t0 = Instant::now();
    loop {
        let h = s.room.health();
        if h.status == HealthStatus::Unhealthy {
            return (t0.elapsed(), h.issues);
        }
        assert!(t0.elapsed() < limit, "still {:?}: {:?}", h.status, h.issues);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_broker_makes_health_unhealthy_within_keep_alive() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let site = site(&[b.port()], &[ONE_CUE], "");
    let (mut config, scenes) = site.load();
    config.mqtt.keep_alive = Duration::from_secs(5);
    let room = Room::start(config, scenes, Role::Daemon);
    assert!(room.mqtt.wait_subscribed(Duration::from_secs(5)).await);
    let s = app_state(&room);
    eventually(Duration::from_secs(3), "healthy", || {
        s.room.health().status == HealthStatus::Healthy
    })
    .await;
    // An idle connection to a broker that silently stops answering.
    b.freeze();
    // The PINGREQ every keep_alive must be answered within ack_timeout:
    // at most 5.5 s (waiting for the client library's own keep-alive
    // error would take 10 s).
    let (took, issues) = until_unhealthy(&s, Duration::from_secs(15)).await;
    assert!(
        took <= Duration::from_millis(5500 + 500),
        "found after {took:?} (keep_alive 5 s + ack_timeout 0.5 s): {issues:?}"
    );
    b.thaw();
    room.shutdown(Role::Daemon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_delivery_makes_health_unhealthy() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let gate = free_port().unwrap();
    let proxy = Proxy::start(gate, b.port()).await;
    let site = site(&[gate], &[ONE_CUE], "");
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    assert!(room.mqtt.wait_subscribed(Duration::from_secs(5)).await);
    let s = app_state(&room);
    // What the room sends no longer reaches the broker, while the broker
    // keeps talking (a device heartbeat every 100 ms): the connection
    // looks alive, delivery is stuck.
    proxy.pause_upstream();
    let beat = tokio::spawn(async move {
        loop {
            raw_publish(
                b.port(),
                &[("devices/esp32_01/status", b"online".to_vec(), false)],
            )
            .await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    start(&room, "a").await;
    let (took, issues) = until_unhealthy(&s, Duration::from_secs(5)).await;
    assert!(
        issues.iter().any(|i| i.contains("delivery stuck")),
        "{issues:?}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    beat.abort();
    room.shutdown(Role::Daemon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_accepted_subscription_makes_health_unhealthy() {
    init_logs();
    // A broker that refuses every subscription (Mosquitto grants them and
    // applies its ACL only when delivering).
    let b = FakeBroker::start(Fake::RefuseSubscriptions).await;
    let site = site(&[b.port], &[ONE_CUE], "");
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    assert!(room.mqtt.wait_subscribed(Duration::from_secs(5)).await);
    let st = room.mqtt.stats();
    assert_eq!(st.subscriptions_active, 0, "{st:?}");
    assert!(!st.subscriptions_refused.is_empty());
    let s = app_state(&room);
    let (_, issues) = until_unhealthy(&s, Duration::from_secs(3)).await;
    assert!(
        issues.iter().any(|i| i.contains("subscribed to nothing")),
        "{issues:?}"
    );
    room.shutdown(Role::Daemon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backoff_starts_afresh_after_a_connection_that_stayed_up() {
    init_logs();
    let port = free_port().unwrap();
    let cancel = CancellationToken::new();
    let mut s = settings("outages", &[port]);
    s.backoff.initial = Duration::from_millis(100);
    s.backoff.multiplier = 2.0;
    s.backoff.jitter = 0.0;
    s.backoff.max = Duration::from_secs(60);
    let (h, _rx) = mqtt_start(s, cancel.child_token());
    // Three outages of 1.6 s, each followed by 1.5 s up (longer than the
    // 1 s a connection must last to count). Within one outage the
    // attempts come at 0.1, 0.3, 0.7, 1.5, 3.1 s: the broker returns just
    // after the fourth, so reconnecting takes up to 1.5 s. Were the backoff
    // carried over from one outage to the next, the delays would grow
    // (3.2 s, 6.4 s, ...) and the room would stay offline longer each time.
    let mut b = Mosquitto::start_on(port).await.unwrap();
    assert!(h.wait_connected(Duration::from_secs(5)).await);
    for outage in 0..3 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        b.kill();
        tokio::time::sleep(Duration::from_millis(1600)).await;
        b = Mosquitto::start_on(port).await.unwrap();
        let back = Instant::now();
        assert!(h.wait_connected(Duration::from_secs(10)).await);
        let took = back.elapsed();
        assert!(
            took < Duration::from_millis(1800),
            "outage {outage}: back after {took:?}"
        );
    }
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_failback_no_broker_keeps_a_stale_truth() {
    init_logs();
    let mut primary = Mosquitto::start().await.unwrap();
    let port = primary.port();
    let backup = Mosquitto::start().await.unwrap();
    let site = site(&[port, backup.port()], &[ONE_CUE], "");
    let (mut config, scenes) = site.load();
    config.mqtt.health_check_interval = Duration::from_secs(1);
    let room = Room::start(config, scenes, Role::Daemon);
    assert!(room.mqtt.wait_subscribed(Duration::from_secs(5)).await);

    primary.kill();
    let mut w = room.mqtt.watch();
    tokio::time::timeout(
        Duration::from_secs(10),
        w.wait_for(|s| s.broker_priority_index == Some(2)),
    )
    .await
    .expect("no failover")
    .unwrap();
    // The backup learns the room is online, on it.
    let cancel = CancellationToken::new();
    let (_o, mut b_seen) = observer(backup.port(), "roomctl/room1/+", &cancel).await;
    collect_until(&mut b_seen, Duration::from_secs(3), |g| {
        g.iter().any(|m| m.topic == "roomctl/room1/state")
    })
    .await;

    let _primary = Mosquitto::start_on(port).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        w.wait_for(|s| s.broker_priority_index == Some(1)),
    )
    .await
    .expect("no failback")
    .unwrap();

    // A newcomer on the backup reads nothing stale there...
    let (_o2, mut fresh) = observer(backup.port(), "roomctl/room1/+", &cancel).await;
    let stale: Vec<_> = collect_until(&mut fresh, Duration::from_millis(1500), |_| false)
        .await
        .into_iter()
        .filter(|m| !m.payload.is_empty())
        .map(|m| format!("{}={}", m.topic, text(&m)))
        .collect();
    assert!(stale.is_empty(), "stale retained on the backup: {stale:?}");
    // ...and the truth on the primary.
    let (_o3, mut p_seen) = observer(port, "roomctl/room1/+", &cancel).await;
    let got = collect_until(&mut p_seen, Duration::from_secs(3), |g| {
        g.iter().any(|m| m.topic == "roomctl/room1/status")
            && g.iter().any(|m| m.topic == "roomctl/room1/state")
    })
    .await;
    assert!(
        got.iter()
            .any(|m| m.topic == "roomctl/room1/status" && text(m) == "online")
    );

    // Shutdown leaves a state that is not CONNECTED.
    room.shutdown(Role::Daemon).await;
    let got = collect_until(&mut p_seen, Duration::from_secs(3), |g| {
        g.iter().any(|m| text(m) == "offline")
    })
    .await;
    let last_state = got
        .iter()
        .rev()
        .find(|m| m.topic == "roomctl/room1/state")
        .map(|m| serde_json::from_slice::<serde_json::Value>(&m.payload).unwrap())
        .expect("a final state");
    assert_eq!(last_state["connection"], "DISCONNECTED");
    cancel.cancel();
}
