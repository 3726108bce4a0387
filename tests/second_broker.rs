//! The MQTT paths against a second broker implementation: rumqttd (Rust,
//! from crates.io) beside Mosquitto. Failover, resend and feedback must
//! behave the same on both; each scenario runs once per broker with the
//! same assertions.
//!
//! rumqttd runs in its own process (this test binary re-executed with
//! `ROOMCTL_RUMQTTD_PORT`), so it can be SIGKILLed and SIGSTOPped like
//! Mosquitto.

use std::collections::BTreeSet;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use roomctl::broker::{Mosquitto, free_port};
use roomctl::feedback::Outcome;
use roomctl::mqtt::PublishOptions;
use roomctl::room::{Role, Room};
use roomctl::scene::SceneSet;
use roomctl::simulate;
use tokio_util::sync::CancellationToken;

mod churn;
use churn::{
    a_crash_looping_primary_is_no_takeover, a_second_client_with_the_same_id_is_called_a_takeover,
    alternating_broker_crashes_lose_no_cue_and_no_time,
};

const RUMQTTD_PORT: &str = "ROOMCTL_RUMQTTD_PORT";

/// The body of the rumqttd child process; does nothing in a normal run.
#[test]
#[ignore = "runs a rumqttd broker when re-executed by the tests below"]
fn rumqttd_process() {
    let Some(port) = std::env::var(RUMQTTD_PORT).ok() else {
        return;
    };
    let port: u16 = port.parse().expect("port");
    let connections = ::rumqttd::ConnectionSettings {
        connection_timeout_ms: 5000,
        max_payload_size: 256 * 1024,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = ::rumqttd::ServerSettings {
        name: "v5-1".into(),
        listen: ([127, 0, 0, 1], port).into(),
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    let config = ::rumqttd::Config {
        id: 0,
        router: ::rumqttd::RouterConfig {
            max_connections: 1000,
            max_outgoing_packet_count: 200,
            max_segment_size: 100 * 1024 * 1024,
            max_segment_count: 10,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v5: Some([("1".to_string(), server)].into_iter().collect()),
        ..Default::default()
    };
    let e = ::rumqttd::Broker::new(config).start();
    panic!("rumqttd stopped: {e:?}");
}

/// A rumqttd broker process on a free port.
struct Rumqttd {
    child: Option<Child>,
    port: u16,
}

impl Rumqttd {
    fn start() -> Rumqttd {
        Self::start_on(free_port().unwrap())
    }

    /// On `port` (a killed one coming back).
    fn start_on(port: u16) -> Rumqttd {
        let child = Command::new(std::env::current_exe().unwrap())
            .args([
                "second_broker::rumqttd_process",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(RUMQTTD_PORT, port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("re-executing the test binary as rumqttd");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "rumqttd did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Rumqttd {
            child: Some(child),
            port,
        }
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let ok = Command::new("kill")
                .args([&format!("-{sig}"), &c.id().to_string()])
                .status()
                .unwrap()
                .success();
            assert!(ok, "kill -{sig}");
        }
    }
}

impl Drop for Rumqttd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            self.signal("CONT");
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One broker of either implementation.
enum Broker {
    Mosquitto(Mosquitto),
    Rumqttd(Rumqttd),
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Mosquitto,
    Rumqttd,
}

impl Broker {
    async fn start(kind: Kind) -> Broker {
        match kind {
            Kind::Mosquitto => Broker::Mosquitto(Mosquitto::start().await.unwrap()),
            Kind::Rumqttd => {
                Broker::Rumqttd(tokio::task::spawn_blocking(Rumqttd::start).await.unwrap())
            }
        }
    }

    fn port(&self) -> u16 {
        match self {
            Broker::Mosquitto(m) => m.port(),
            Broker::Rumqttd(r) => r.port,
        }
    }

    fn is_up(&self) -> bool {
        TcpStream::connect(("127.0.0.1", self.port())).is_ok()
    }

    /// SIGKILL.
    fn kill(&mut self) {
        match self {
            Broker::Mosquitto(m) => m.kill(),
            Broker::Rumqttd(r) => {
                if let Some(mut c) = r.child.take() {
                    c.kill().unwrap();
                    c.wait().unwrap();
                }
            }
        }
    }

    /// A new process on the same port after [`Broker::kill`].
    async fn restart(&mut self) {
        let port = self.port();
        *self = match self {
            Broker::Mosquitto(_) => Broker::Mosquitto(Mosquitto::start_on(port).await.unwrap()),
            Broker::Rumqttd(_) => Broker::Rumqttd(
                tokio::task::spawn_blocking(move || Rumqttd::start_on(port))
                    .await
                    .unwrap(),
            ),
        };
    }

    /// SIGSTOP: sockets stay open, nothing is answered.
    fn freeze(&self) {
        match self {
            Broker::Mosquitto(m) => m.freeze(),
            Broker::Rumqttd(r) => r.signal("STOP"),
        }
    }
}

/// A scene of 40 cues at 10 Hz with the primary SIGKILLed while cue C15 is
/// in flight: every cue reaches a subscriber (on one broker or the other),
/// the room is on the backup after exactly one failover, nothing failed or
/// expired, and the simulated boards (which follow to the backup) confirm
/// the late cues.
///
/// The primary is frozen once it has forwarded C14 and killed once C15 has
/// been handed to it, so C15 is in flight and unacknowledged at the kill
/// and must be resent to the backup. Killing it at an arbitrary moment
/// would test the broker instead: a broker that sends the PUBACK and dies
/// before forwarding the message loses it, and no client can tell (QoS 1
/// hands the message over with the PUBACK). rumqttd acknowledges and
/// forwards on different threads, so that window is real there.
async fn failover_mid_scene_loses_no_cue_and_feedback_follows(kind: Kind) {
    init_logs();
    let mut primary = Broker::start(kind).await;
    let backup = Broker::start(kind).await;
    let cancel = CancellationToken::new();
    let (_oa, mut on_a) = observer(primary.port(), "room1/#", &cancel).await;
    let (_ob, mut on_b) = observer(backup.port(), "room1/#", &cancel).await;

    let site = site(
        &[primary.port(), backup.port()],
        &[("long.yaml", &long_scene())],
        "",
    );
    let (room, fleet) = room_with_json_fleet(&site, &cancel).await;
    let seen =
        until_c15_in_flight(&room, &mut on_a, || primary.freeze(), &format!("{kind:?}")).await;
    primary.kill();
    room.scenes.wait_idle().await;
    every_long_cue_arrived(seen, [&mut on_a, &mut on_b], &format!("{kind:?}")).await;

    let st = room.mqtt.stats();
    assert_eq!(
        room.mqtt.status().broker_priority_index,
        Some(2),
        "{kind:?}"
    );
    assert_eq!(st.counts.failovers, 1, "{kind:?}");
    assert_eq!(
        st.counts.messages_failed + st.counts.messages_expired + st.counts.messages_dropped,
        0,
        "{kind:?}: {st:?}"
    );
    eventually(Duration::from_secs(3), "feedback to settle", || {
        room.feedback.pending_count() == 0
    })
    .await;
    let last = room.feedback.history(10);
    assert!(
        last.iter()
            .filter(|f| f.command_topic != "room1/STOP")
            .all(|f| f.result == Outcome::Ok),
        "{kind:?}: late cues not confirmed: {last:?}"
    );
    assert!(
        fleet.received().iter().any(|r| r.payload == "C39"),
        "{kind:?}"
    );
    room.shutdown(Role::Daemon).await;
    cancel.cancel();
}

/// 60 messages at 10 Hz with the primary SIGSTOPped after 30 (a silent
/// partition): the missing PUBACK marks it dead, what it never
/// acknowledged is resent to the backup, and none is lost.
async fn a_frozen_primary_is_left_and_unacked_messages_are_resent(kind: Kind) {
    init_logs();
    let primary = Broker::start(kind).await;
    let backup = Broker::start(kind).await;
    let cancel = CancellationToken::new();
    let (_o1, mut on_primary) = observer(primary.port(), "seq/#", &cancel).await;
    let (_o2, mut on_backup) = observer(backup.port(), "seq/#", &cancel).await;
    let (h, _rx) = mqtt_start(
        settings(
            &format!("resend-{kind:?}"),
            &[primary.port(), backup.port()],
        ),
        cancel.child_token(),
    );
    assert!(h.wait_connected(Duration::from_secs(5)).await);

    for i in 0..60u32 {
        if i == 30 {
            primary.freeze();
        }
        h.publish(
            format!("seq/{i}"),
            i.to_string(),
            PublishOptions::cue(Duration::from_secs(10)),
        )
        .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut all = BTreeSet::new();
    for m in collect_until(&mut on_primary, Duration::from_millis(200), |_| false).await {
        all.insert(text(&m).parse::<u32>().unwrap());
    }
    for m in collect_until(&mut on_backup, Duration::from_secs(5), |g| {
        g.iter().any(|m| text(m) == "59")
    })
    .await
    {
        all.insert(text(&m).parse::<u32>().unwrap());
    }
    let missing: Vec<u32> = (0..60).filter(|i| !all.contains(i)).collect();
    assert!(missing.is_empty(), "{kind:?}: lost: {missing:?}");
    let st = h.stats();
    assert_eq!(h.status().broker_priority_index, Some(2), "{kind:?}");
    assert_eq!(st.counts.failovers, 1, "{kind:?}");
    assert!(
        st.counts.messages_resent >= 1,
        "{kind:?}: nothing resent: {st:?}"
    );
    assert_eq!(
        st.counts.messages_failed + st.counts.messages_expired + st.counts.messages_dropped,
        0,
        "{kind:?}: {st:?}"
    );
    cancel.cancel();
}

/// Feedback on one broker: a confirmed command is OK with a latency and the
/// board that answers it, one nobody answers is a TIMEOUT, an `ERROR`
/// reply is an error.
async fn feedback_ok_timeout_and_error(kind: Kind) {
    init_logs();
    let b = Broker::start(kind).await;
    let cancel = CancellationToken::new();
    let scene = "name: fb\nactions:\n  - { at: 0.0, topic: room1/light, message: 'ON' }\n  - { at: 0.1, topic: attic/ghost, message: 'ON', timeout: 500ms }\n  - { at: 0.2, topic: room1/steam, message: 'ON' }\nduration: 0.3\n";
    let site = site(&[b.port()], &[("fb.yaml", scene)], "");
    let (config, scenes) = site.load();
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
    assert!(room.mqtt.wait_subscribed(Duration::from_secs(5)).await);
    eventually(Duration::from_secs(3), "devices online", || {
        room.registry.counts().online == 2
    })
    .await;

    let mut events = room.events.subscribe();
    start(&room, "fb").await;
    room.scenes.wait_idle().await;
    eventually(Duration::from_secs(3), "feedback", || {
        room.feedback.pending_count() == 0
    })
    .await;
    let h = room.feedback.history(10);
    let by_topic = |t: &str| h.iter().find(|f| f.command_topic == t).unwrap().clone();
    let light = by_topic("room1/light");
    assert_eq!(light.result, Outcome::Ok, "{kind:?}");
    assert!(light.latency.unwrap() < 0.5, "{kind:?}: {light:?}");
    assert!(
        light
            .device
            .as_deref()
            .is_some_and(|d| d.starts_with("esp32_")),
        "{kind:?}: {light:?}"
    );
    assert_eq!(light.scene.as_deref(), Some("fb"), "{kind:?}");
    let ghost = by_topic("attic/ghost");
    assert_eq!(ghost.result, Outcome::Timeout, "{kind:?}");
    assert_eq!(ghost.timeout, 0.5);
    assert_eq!(ghost.feedback_topic, "attic/status");
    assert_eq!(ghost.log_line(), "Feedback TIMEOUT: attic/ghost (>0.500s)");
    assert_eq!(by_topic("room1/steam").result, Outcome::Ok, "{kind:?}");
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
    assert!(on_bus >= 3, "{kind:?}");

    let (probe, _rx) = mqtt_start(
        settings(&format!("err-{kind:?}"), &[b.port()]),
        cancel.child_token(),
    );
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
    assert_eq!(rec.result, Outcome::Error, "{kind:?}");
    room.shutdown(Role::Daemon).await;
    cancel.cancel();
}

/// Overlapping subscriptions (`+/status` for feedback, a trigger on
/// `room1/#`): a broker delivers one copy per matching subscription, and one
/// `OK` must still arrive once, or it would confirm two commands.
async fn overlapping_subscriptions_deliver_each_message_once(kind: Kind) {
    init_logs();
    let b = Broker::start(kind).await;
    let cancel = CancellationToken::new();
    let mut s = settings(&format!("overlap-{kind:?}"), &[b.port()]);
    s.subscriptions = vec!["+/status".into(), "room1/#".into()];
    let (h, mut rx) = mqtt_start(s, cancel.child_token());
    assert!(h.wait_subscribed(Duration::from_secs(5)).await);
    let (device, _drx) = mqtt_start(
        settings(&format!("device-{kind:?}"), &[b.port()]),
        cancel.child_token(),
    );
    assert!(device.wait_connected(Duration::from_secs(5)).await);
    for (t, m) in [
        ("room1/status", "OK"),
        ("room1/light", "ON"),
        ("room1/status", "OK"),
    ] {
        device.publish(t, m, PublishOptions::reliable()).unwrap();
    }
    let got = collect_until(&mut rx, Duration::from_millis(1500), |_| false).await;
    let mut got: Vec<String> = got
        .iter()
        .map(|m| format!("{}={}", m.topic, text(m)))
        .collect();
    // Order is kept per topic; across topics (different subscriptions)
    // rumqttd may reorder.
    got.sort();
    assert_eq!(
        got,
        ["room1/light=ON", "room1/status=OK", "room1/status=OK"],
        "{kind:?}"
    );
    cancel.cancel();
}

macro_rules! on_both {
    ($($scenario:ident),* $(,)?) => {
        mod mosquitto {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::Kind::Mosquitto).await;
                }
            )*
        }
        mod rumqttd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::Kind::Rumqttd).await;
                }
            )*
        }
    };
}

on_both!(
    failover_mid_scene_loses_no_cue_and_feedback_follows,
    a_frozen_primary_is_left_and_unacked_messages_are_resent,
    feedback_ok_timeout_and_error,
    overlapping_subscriptions_deliver_each_message_once,
    alternating_broker_crashes_lose_no_cue_and_no_time,
    a_crash_looping_primary_is_no_takeover,
    a_second_client_with_the_same_id_is_called_a_takeover,
);
