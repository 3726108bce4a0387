//! Hostile or broken traffic on the broker (issue: "must never knock a room
//! over"), measured from outside with independent clients on real
//! Mosquitto brokers.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::*;
use roomctl::broker::Mosquitto;
use roomctl::room::{Role, Room};
use tokio_util::sync::CancellationToken;

/// `n` cues, 100 ms apart, each with a unique message.
fn cue_scene(name: &str, n: usize) -> String {
    let mut s = format!("name: {name}\nactions:\n");
    for i in 0..n {
        let ch = ["light", "steam", "motor"][i % 3];
        s.push_str(&format!(
            "  - {{ at: {:.1}, topic: room1/{ch}, message: C{i} }}\n",
            i as f64 * 0.1
        ));
    }
    s
}

/// How often each cue (`C<i>`) was seen.
fn cue_counts(msgs: &[roomctl::mqtt::InMessage]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for m in msgs {
        let t = text(m);
        if t.starts_with('C') {
            *out.entry(t).or_default() += 1;
        }
    }
    out
}

fn assert_each_cue_once(counts: &BTreeMap<String, usize>, n: usize) {
    let missing: Vec<String> = (0..n)
        .map(|i| format!("C{i}"))
        .filter(|c| !counts.contains_key(c))
        .collect();
    let doubled: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(missing.is_empty(), "cues lost: {missing:?}");
    assert!(doubled.is_empty(), "cues sent more than once: {doubled:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_oversize_messages_cause_no_reconnect_storm_and_cues_stay_exact() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let cancel = CancellationToken::new();
    // Planted before the daemon starts, on three topics it subscribes to.
    let big = vec![b'z'; 400 * 1024];
    raw_publish(
        b.port(),
        &[
            ("devices/x/status", big.clone(), true),
            ("room7/status", big.clone(), true),
            ("roomctl/room1/scene/start", big, true),
        ],
    )
    .await;
    let (_o, mut seen) = observer(b.port(), "room1/#", &cancel).await;

    let site = site(&[b.port()], &[("cues.yaml", &cue_scene("cues", 20))], "");
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    assert!(room.mqtt.wait_subscribed(Duration::from_secs(5)).await);
    start(&room, "cues").await;
    room.scenes.wait_idle().await;

    let got = collect_until(&mut seen, Duration::from_secs(10), |_| false).await;
    assert_each_cue_once(&cue_counts(&got), 20);
    let st = room.mqtt.stats();
    assert!(
        st.counts.total_connections <= 2,
        "{} connections in 10 s: {st:?}",
        st.counts.total_connections
    );
    assert_eq!(st.counts.total_disconnections, 0, "{st:?}");
    room.shutdown(Role::Daemon).await;
    cancel.cancel();
}

#[tokio::test]
async fn a_connection_that_dies_right_after_connack_backs_off_like_a_failure() {
    init_logs();
    let flapping = FakeBroker::start(Fake::DropAfterConnack).await;
    let cancel = CancellationToken::new();
    let mut s = settings("flap", &[flapping.port]);
    s.backoff.initial = Duration::from_millis(200);
    s.backoff.max = Duration::from_secs(5);
    let (h, _rx) = mqtt_start(s, cancel.child_token());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let n = flapping.connections();
    // 0.2 + 0.4 + 0.8 + 1.6 + 3.2 s of backoff: about six attempts in 5 s.
    assert!(n <= 8, "{n} connections in 5 s: a reconnect storm");
    assert!(n >= 3, "only {n} connections: not retrying at all?");
    assert!(h.stats().consecutive_failures >= 3, "{:?}", h.stats());
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_flood_never_hides_a_real_device() {
    init_logs();
    // The broker keeps every message for the daemon (its default would
    // drop QoS 1 messages beyond 1000 queued).
    let b = Mosquitto::start_with("max_queued_messages 0")
        .await
        .unwrap();
    let site = site(
        &[b.port()],
        &[ONE_CUE],
        "devices:\n  known: {esp32_01: [room1/light]}\n",
    );
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    assert!(room.mqtt.wait_subscribed(Duration::from_secs(5)).await);
    let flood: Vec<(String, Vec<u8>, bool)> = (0..20_000)
        .map(|i| (format!("devices/fake{i}/status"), b"online".to_vec(), false))
        .collect();
    raw_publish(b.port(), &flood).await;
    // Every fake id is either forgotten to make room, or dropped before the
    // router because the flood outran it (bounded, never stalling).
    let expected = 20_000 - roomctl::registry::MAX_UNKNOWN_DEVICES as u64;
    eventually(Duration::from_secs(30), "the flood to be routed", || {
        room.registry.counts().unknown_ignored + room.mqtt.stats().counts.incoming_dropped
            >= expected
    })
    .await;
    let c = room.registry.counts();
    assert_eq!(c.total, roomctl::registry::MAX_UNKNOWN_DEVICES + 1, "{c:?}");
    assert!(room.registry.ignored_recently().is_some());

    // Then two real ESP32s come online: one configured, one not.
    raw_publish(
        b.port(),
        &[
            ("devices/esp32_01/status", b"online".to_vec(), true),
            ("devices/esp32_09/status", b"online".to_vec(), true),
        ],
    )
    .await;
    eventually(Duration::from_secs(5), "the real devices", || {
        room.registry.get("esp32_09").is_some()
            && room
                .registry
                .get("esp32_01")
                .is_some_and(|d| d.messages > 0)
    })
    .await;
    assert!(room.registry.counts().total <= roomctl::registry::MAX_UNKNOWN_DEVICES + 1);
    room.shutdown(Role::Daemon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_volume_stays_bounded_under_a_garbage_flood() {
    init_logs();
    let b = Mosquitto::start_with("max_queued_messages 0")
        .await
        .unwrap();
    let site = site(&[b.port()], &[ONE_CUE], "");
    let log_path = site.dir.path().join("stderr.log");
    let (_o, mut status) =
        observer(b.port(), "roomctl/room1/status", &CancellationToken::new()).await;
    let mut daemon = daemon_logging_to(&site, &log_path, Some("info"), &mut status).await;

    const N: usize = 100_000;
    let topics: Vec<String> = (0..N)
        .map(|i| match i % 5 {
            0 => format!("devices/flood{i}/status"),
            1 => "room1/status".to_string(),
            2 => "roomctl/room1/scene/start".to_string(),
            3 => format!("devices/bin{i}/status"),
            _ => "room1/scene".to_string(),
        })
        .collect();
    let flood: Vec<(&str, Vec<u8>, bool)> = topics
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let p = match i % 5 {
                0 => b"online".to_vec(),
                1 => format!("garbage {i}").into_bytes(),
                2 => format!("no such scene {i}").into_bytes(),
                3 => vec![0xff, 0xfe, (i % 251) as u8],
                _ => b"DANCE".to_vec(),
            };
            (t.as_str(), p, false)
        })
        .collect();
    let before = std::fs::metadata(&log_path).unwrap().len();
    raw_publish(b.port(), &flood).await;
    // Until the daemon itself says it has received the whole flood.
    let metrics = format!("http://127.0.0.1:{}/metrics", site.web_port);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let text = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
        let received = metric(&text, "roomctl_mqtt_messages_received_total");
        if received >= N as f64 {
            // A flood delays answers on our side; it is no reason to think
            // the broker dead and reconnect (which would lose its queue).
            assert_eq!(
                metric(&text, "roomctl_mqtt_connections_total"),
                1.0,
                "{text}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {received} of {N} received; log:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // (At most the router's queue, 1024 messages, may still be unrouted:
    // nothing that changes a bound of this size.)
    let grown = std::fs::metadata(&log_path).unwrap().len() - before;
    let _ = daemon.start_kill();
    let _ = daemon.wait().await;
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    eprintln!("{grown} bytes of log for {N} garbage messages:\n{log}");
    assert!(
        grown < 1_000_000,
        "{grown} bytes of log for {N} garbage messages; the last lines:\n{}",
        log.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
    assert!(
        log.contains("Ignoring"),
        "garbage must still be logged (first lines)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failback_mid_scene_sends_every_cue_exactly_once() {
    init_logs();
    let primary = Mosquitto::start().await.unwrap();
    let backup = Mosquitto::start().await.unwrap();
    let cancel = CancellationToken::new();
    // The primary is reachable only through a proxy that is not there yet.
    let gate = roomctl::broker::free_port().unwrap();
    let (_oa, mut on_primary) = observer(primary.port(), "room1/#", &cancel).await;
    let (_ob, mut on_backup) = observer(backup.port(), "room1/#", &cancel).await;

    let site = site(
        &[gate, backup.port()],
        &[("cues.yaml", &cue_scene("cues", 40))],
        "",
    );
    let (mut config, scenes) = site.load();
    config.mqtt.health_check_interval = Duration::from_millis(300);
    let room = Room::start(config, scenes, Role::Daemon);
    assert!(room.mqtt.wait_subscribed(Duration::from_secs(5)).await);
    assert_eq!(room.mqtt.status().broker_priority_index, Some(2));

    start(&room, "cues").await;
    eventually(Duration::from_secs(5), "15 cues sent", || {
        room.scenes.status().is_some_and(|s| s.actions_done >= 15)
    })
    .await;
    let _proxy = Proxy::start(gate, primary.port()).await;
    room.scenes.wait_idle().await;
    let mut w = room.mqtt.watch();
    tokio::time::timeout(
        Duration::from_secs(5),
        w.wait_for(|s| s.broker_priority_index == Some(1)),
    )
    .await
    .expect("no failback")
    .unwrap();

    let mut all = collect_until(&mut on_primary, Duration::from_secs(1), |_| false).await;
    all.extend(collect_until(&mut on_backup, Duration::from_secs(1), |_| false).await);
    let counts = cue_counts(&all);
    assert_each_cue_once(&counts, 40);
    let st = room.mqtt.stats();
    assert_eq!(st.counts.failovers, 1, "{st:?}");
    assert_eq!(
        st.counts.messages_resent, 0,
        "a clean switch resends nothing: {st:?}"
    );
    room.shutdown(Role::Daemon).await;
    cancel.cancel();
}

/// Junk on the stop control topic from any client on the broker: one
/// `ROOM/STOP` for the burst (the rest dropped and counted), a handful of
/// log lines, and a stop after a new show still goes out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_on_the_stop_topic_sends_one_stop() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let site = site(&[b.port()], &[ONE_CUE], "");
    let log_path = site.dir.path().join("stderr.log");
    let cancel = CancellationToken::new();
    let (_s, mut status) = observer(b.port(), "roomctl/room1/status", &cancel).await;
    let (_o, mut stops) = observer(b.port(), "room1/#", &cancel).await;
    let mut daemon = daemon_logging_to(&site, &log_path, Some("info"), &mut status).await;

    let flood: Vec<(String, Vec<u8>, bool)> = (0..500)
        .map(|i| {
            (
                "roomctl/room1/scene/stop".to_string(),
                format!("junk {i}").into_bytes(),
                false,
            )
        })
        .collect();
    raw_publish(b.port(), &flood).await;
    let metrics = format!("http://127.0.0.1:{}/metrics", site.web_port);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let t = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
        if metric(&t, "roomctl_stops_coalesced_total") >= 499.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the flood was not coalesced:\n{t}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = collect_until(&mut stops, Duration::from_millis(500), |_| false).await;
    let n = got.iter().filter(|m| m.topic == "room1/STOP").count();
    assert_eq!(n, 1, "STOPs published for a flood of 500 stop requests");

    // A new show turns something on: the next stop is sent at once.
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}", site.web_port);
    assert_eq!(
        http.post(format!("{base}/api/scenes/a/start"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    collect_until(&mut stops, Duration::from_secs(5), |g| {
        g.iter().any(|m| m.topic == "room1/light")
    })
    .await;
    let got = collect_until(&mut stops, Duration::from_secs(5), |g| {
        g.iter().any(|m| m.topic == "room1/STOP")
    })
    .await;
    assert!(
        got.iter().any(|m| m.topic == "room1/STOP"),
        "the scene's end STOP was dropped"
    );

    let _ = daemon.start_kill();
    let _ = daemon.wait().await;
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let lines = log
        .lines()
        .filter(|l| l.contains("stop") || l.contains("Stop"))
        .count();
    assert!(
        lines < 40,
        "{lines} log lines about stops for 500 requests:\n{log}"
    );
    cancel.cancel();
}

/// A dense show (3 channels at 20 Hz for 3 s, 180 cues, none confirmed:
/// no boards) at the default log level writes a few lines, not one or two
/// per cue: per-cue lines are debug, timeouts a few a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dense_show_logs_per_scene_not_per_cue() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let mut scene = String::from("name: dense\nactions:\n");
    for i in 0..180 {
        let ch = ["light", "steam", "motor"][i % 3];
        scene.push_str(&format!(
            "  - {{ at: {:.3}, topic: room1/{ch}, message: C{i} }}\n",
            (i / 3) as f64 / 20.0
        ));
    }
    let site = site(&[b.port()], &[("dense.yaml", &scene)], "");
    let log_path = site.dir.path().join("stderr.log");
    let cancel = CancellationToken::new();
    let (_s, mut status) = observer(b.port(), "roomctl/room1/status", &cancel).await;
    let (_o, mut seen) = observer(b.port(), "room1/STOP", &cancel).await;
    let mut daemon = daemon_logging_to(&site, &log_path, None, &mut status).await;
    let before = std::fs::metadata(&log_path).unwrap().len();
    let base = format!("http://127.0.0.1:{}", site.web_port);
    let r = reqwest::Client::new()
        .post(format!("{base}/api/scenes/dense/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let end = collect_until(&mut seen, Duration::from_secs(10), |g| !g.is_empty()).await;
    assert!(!end.is_empty(), "the scene never ended");
    // The last timeouts come a second after the last cue.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let log = std::fs::read_to_string(&log_path).unwrap();
    let _ = daemon.start_kill();
    let grown = log.len() as u64 - before;
    let lines = log[before as usize..].lines().count();
    assert!(
        lines <= 40 && grown < 8_000,
        "{lines} lines, {grown} bytes of log for 180 cues:\n{}",
        &log[before as usize..]
    );
    assert!(
        log.contains("Feedback TIMEOUT"),
        "timeouts must still be logged:\n{log}"
    );
    cancel.cancel();
}

/// A primary that drops every connection right after its CONNACK and a
/// working backup: the backup is tried at once after each drop (the
/// primary alone is held off), so the client settles on the backup within
/// a moment instead of waiting out a back-off between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_dying_right_after_connack_sends_us_to_the_backup_at_once() {
    init_logs();
    let flapping = FakeBroker::start(Fake::DropAfterConnack).await;
    let backup = Mosquitto::start().await.unwrap();
    let cancel = CancellationToken::new();
    let mut s = settings("flap-backup", &[flapping.port, backup.port()]);
    // The seed's schedule: a wait would be a whole second.
    s.backoff.initial = Duration::from_secs(1);
    s.backoff.max = Duration::from_secs(300);
    let t0 = tokio::time::Instant::now();
    let (h, _rx) = mqtt_start(s, cancel.child_token());
    let mut w = h.watch();
    tokio::time::timeout(
        Duration::from_secs(5),
        w.wait_for(|st| st.broker_priority_index == Some(2)),
    )
    .await
    .expect("never reached the backup")
    .unwrap();
    let took = t0.elapsed();
    assert!(
        took < Duration::from_millis(500),
        "the backup was reached after {took:?}"
    );
    assert_eq!(flapping.connections(), 1, "the primary was not held off");
    cancel.cancel();
}

/// `roomctl run` on `site` with its log in `log_path` (`RUST_LOG` as
/// given, or unset for the default level), once it is online on the
/// broker `status` watches.
async fn daemon_logging_to(
    site: &Site,
    log_path: &std::path::Path,
    rust_log: Option<&str>,
    status: &mut tokio::sync::mpsc::Receiver<roomctl::mqtt::InMessage>,
) -> tokio::process::Child {
    let mut cmd = roomctl_run(site);
    match rust_log {
        Some(l) => cmd.env("RUST_LOG", l),
        None => cmd.env_remove("RUST_LOG"),
    };
    cmd.stderr(std::fs::File::create(log_path).unwrap());
    daemon_online(cmd, status).await
}

/// The value of the first sample of `name` in a `/metrics` text (0 when
/// absent).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Text from the network cannot forge a log line or put NUL bytes in the
/// journal, and names are taken exactly as sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_stays_one_log_line_and_names_are_exact() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let site = site(&[b.port()], &[ONE_CUE], "");
    site.add_command(
        "off",
        r#"[{"topic": "room1/light", "message": "OFF", "timestamp": 0}]"#,
    );
    let log_path = site.dir.path().join("stderr.log");
    let cancel = CancellationToken::new();
    let (_s, mut status) = observer(b.port(), "roomctl/room1/status", &cancel).await;
    let mut daemon = daemon_logging_to(&site, &log_path, Some("info"), &mut status).await;

    let forged = "nope\n2099-01-01T00:00:00.000000Z  INFO web: FORGED line";
    raw_publish(
        b.port(),
        &[
            (
                "roomctl/room1/command/run",
                forged.as_bytes().to_vec(),
                false,
            ),
            (
                "roomctl/room1/scene/start",
                forged.as_bytes().to_vec(),
                false,
            ),
        ],
    )
    .await;
    let base = format!("http://127.0.0.1:{}", site.web_port);
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/api/control/send"))
        .json(&serde_json::json!({"topic": "room1/light", "message": "A\u{0}B\nFORGED"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    // Names are exact: a space is part of the name; the volume is as sent.
    for path in [
        "/api/commands/%20off/run",
        "/api/scenes/%20a/start",
        "/api/schedule/%20pause",
    ] {
        let r = http.post(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    let r = http
        .post(format!("{base}/api/control/volume"))
        .json(&serde_json::json!({"volume": 0.3}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), r#"{"volume":0.3}"#);
    let r = http
        .post(format!("{base}/api/control/volume"))
        .json(&serde_json::json!({"volume": -0.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let log = || std::fs::read(&log_path).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !String::from_utf8_lossy(&log()).contains("FORGED") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hostile text was never logged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = daemon.start_kill();
    let bytes = log();
    assert!(!bytes.contains(&0), "a NUL byte in the log");
    let text = String::from_utf8(bytes).unwrap();
    for line in text.lines() {
        assert!(
            line.starts_with(|c: char| c.is_ascii_digit()),
            "a line that is not a record of its own: {line:?}"
        );
        assert!(!line.starts_with("2099"), "a forged line: {line:?}");
    }
    assert!(text.contains("nope\\n2099-01-01"), "{text}");
    cancel.cancel();
}
