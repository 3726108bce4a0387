//! Show safety against real Mosquitto and simulated boards: the latched
//! E-stop (every start path refused, across a restart, until a technician
//! resets it), the minimum time between starts, required cues that stop
//! the show into its safe state, and each board's own safe commands with
//! the panic's result per board.

use std::time::Duration;

use crate::common::*;
use roomctl::access::{Actor, Role as Access};
use roomctl::broker::Mosquitto;
use roomctl::mqtt::PublishOptions;
use roomctl::origin::Origin;
use roomctl::room::{Command, Reply, Role, Room, RoomError};
use roomctl::simulate;
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_roomctl");
const SHOW: &str =
    "name: show\nactions:\n  - { at: 0, topic: room1/light, message: 'ON' }\nduration: 30\n";

fn desk(role: Access) -> Origin {
    Origin::dashboard("10.0.0.5", Actor::Anonymous { role })
}

async fn start(room: &Room, origin: Origin, scene: &str) -> Result<Reply, RoomError> {
    room.apply(origin, Command::StartScene(scene.into())).await
}

/// A hardware button latches the E-stop: the scene stops, and no start
/// path starts anything, not after a restart either, until a technician
/// resets it (an operator may not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_estop_latches_across_a_restart_and_refuses_every_start() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let site = site(
        &[b.port()],
        &[("show.yaml", SHOW)],
        "state_dir: state\nestop: { topic: room1/estop, payload: PRESSED }\ntriggers:\n  - { topic: room1/button, payload: pressed, scene: show }\n",
    );
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    assert!(room.mqtt.wait_subscribed(Duration::from_secs(5)).await);
    start(&room, desk(Access::Operator), "show").await.unwrap();
    let cancel = CancellationToken::new();
    let (probe, _rx) = mqtt_start(settings("estop-probe", &[b.port()]), cancel.child_token());
    assert!(probe.wait_connected(Duration::from_secs(5)).await);
    // Not the configured payload: nothing.
    probe
        .publish("room1/estop", "released", PublishOptions::reliable())
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(room.estop.get().is_none());
    probe
        .publish("room1/estop", "PRESSED", PublishOptions::reliable())
        .unwrap();
    eventually(Duration::from_secs(5), "latched and stopped", || {
        room.estop.get().is_some() && room.scenes.status().is_none()
    })
    .await;
    assert_eq!(room.estop.get().unwrap().by, "trigger room1/estop");
    assert!(room.state().estop.is_some(), "in the retained state");

    let refused = |r: Result<Reply, RoomError>, what: &str| match r {
        Err(RoomError::Latched(m)) => assert!(m.contains("E-stop latched since"), "{what}: {m}"),
        other => panic!("{what}: not refused as latched: {other:?}"),
    };
    refused(start(&room, desk(Access::Admin), "show").await, "dashboard");
    refused(
        start(&room, Origin::Schedule { what: "show" }, "show").await,
        "schedule",
    );
    refused(
        room.apply(
            Origin::mqtt("roomctl/room1/scene/start"),
            Command::StartDefaultScene,
        )
        .await,
        "control topic",
    );
    refused(
        room.apply(
            desk(Access::Technician),
            Command::Send {
                topic: "room1/light".into(),
                message: "ON".into(),
            },
        )
        .await,
        "manual command",
    );
    // A trigger over MQTT: nothing starts.
    probe
        .publish("room1/button", "pressed", PublishOptions::reliable())
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        room.scenes.status().is_none(),
        "a trigger started a show while latched"
    );
    // `roomctl play` beside the daemon says so.
    let out = tokio::process::Command::new(BIN)
        .args(["play", "show", "-c", site.config.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "play ran while latched: {text}");
    assert!(text.contains("E-stop latched"), "{text}");

    // A restart keeps it.
    room.shutdown(Role::Daemon).await;
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    assert!(room.mqtt.wait_subscribed(Duration::from_secs(5)).await);
    assert!(room.estop.get().is_some(), "latched after a restart");
    refused(
        start(&room, desk(Access::Operator), "show").await,
        "after a restart",
    );
    // An operator may not reset; a technician may.
    assert!(matches!(
        room.apply(desk(Access::Operator), Command::ResetEstop)
            .await,
        Err(RoomError::Forbidden(_))
    ));
    match room
        .apply(desk(Access::Technician), Command::ResetEstop)
        .await
    {
        Ok(Reply::EstopReset { was: Some(l) }) => assert_eq!(l.by, "trigger room1/estop"),
        other => panic!("reset: {other:?}"),
    }
    start(&room, desk(Access::Operator), "show").await.unwrap();
    let log = room.show_log.clone().unwrap();
    eventually(
        Duration::from_secs(5),
        "the press and the reset in the show log",
        || {
            let all = log.read_all();
            all.iter()
                .any(|r| r.kind == "scene_end" && r.text.ends_with(": e-stop"))
                && all
                    .iter()
                    .any(|r| r.kind == "action" && r.text.contains("reset the E-stop"))
        },
    )
    .await;
    room.shutdown(Role::Daemon).await;
    cancel.cancel();
}

/// A second press within `scenes.min_start_interval` is ignored (and
/// said so), not a restart; after the interval a start works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_press_within_the_interval_starts_once() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let short =
        "name: show\nactions:\n  - { at: 0, topic: room1/light, message: 'ON' }\nduration: 0.1\n";
    let site = site(
        &[b.port()],
        &[("show.yaml", short)],
        "scenes: { dir: scenes, min_start_interval: 1s }\n",
    );
    // The test config's own `scenes:` line goes; this one stays.
    site.edit_config("scenes: { dir: scenes }\n", "");
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    start(&room, desk(Access::Operator), "show").await.unwrap();
    room.scenes.wait_idle().await;
    match start(&room, desk(Access::Operator), "show").await {
        Err(RoomError::Conflict(m)) => assert!(m.starts_with("ignored: a start 0."), "{m}"),
        other => panic!("a double press started: {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // A start that was refused is no start to wait after.
    assert!(matches!(
        start(&room, desk(Access::Operator), "nope").await,
        Err(RoomError::NotFound(_))
    ));
    start(&room, desk(Access::Operator), "show").await.unwrap();
    room.shutdown(Role::Daemon).await;
}

/// A required cue nobody answers (after one retry) ends the scene with
/// the reason through the safe state; every board's own safe commands
/// are sent, and the panic's result names the board that did not answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_cue_stops_the_show_and_the_safe_state_is_reported_per_board() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    // The fleet (esp32_01) answers room1/smoke only.
    let board = "name: show\nactions:\n  - { at: 0, topic: room1/smoke, message: 'ON' }\n";
    let show = "name: show\nrequired: true\nactions:\n  - { at: 0, topic: room1/smoke, message: 'ON' }\n  - { at: 0.2, topic: attic/fog, message: 'ON', timeout: 300ms, retries: 1 }\n  - { at: 0.3, topic: attic/light, message: 'ON', required: false, timeout: 200ms }\nduration: 30\n";
    let devices = "devices:\n  known:\n    esp32_01:\n      channels: [room1/smoke]\n      safe: [{ topic: room1/smoke, message: 'OFF' }]\n    esp32_08:\n      safe: [{ topic: attic/fog, message: 'OFF' }]\nfeedback: { timeout: 400ms }\n";
    let site = site(
        &[b.port()],
        &[("show.yaml", board)],
        &format!("state_dir: state\n{devices}"),
    );
    site.edit_config("feedback: { timeout: 1s }\n", "");
    let (config, scenes) = site.load();
    let cancel = CancellationToken::new();
    let mut opts = fast_fleet();
    opts.devices = 1;
    let fleet = simulate::start(&config, &scenes, &opts, cancel.child_token());
    std::fs::write(site.dir.path().join("scenes/show.yaml"), show).unwrap();
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    assert!(room.mqtt.wait_subscribed(Duration::from_secs(5)).await);
    fleet_ready(&fleet).await;
    let (_obs, mut seen) = observer(b.port(), "#", &cancel).await;
    let mut events = room.events.subscribe();
    start(&room, desk(Access::Operator), "show").await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(roomctl::events::Event::Scene(roomctl::events::SceneEvent::Ended {
                reason,
                ..
            })) = events.recv().await
            {
                return reason;
            }
        }
    })
    .await
    .expect("the scene did not end on its required cue");
    assert_eq!(
        end.to_string(),
        "required cue failed: attic/fog ON: TIMEOUT after 1 retry"
    );
    // Sent twice (one retry), then the safe state: ROOM/STOP and each
    // board's own safe commands.
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Ok(Some(m)) = tokio::time::timeout_at(deadline, seen.recv()).await {
        got.push(format!(
            "{}={}",
            m.topic,
            String::from_utf8_lossy(&m.payload)
        ));
        if got.iter().any(|g| g == "attic/fog=OFF") && got.iter().any(|g| g == "room1/smoke=OFF") {
            break;
        }
    }
    assert_eq!(
        got.iter().filter(|g| *g == "attic/fog=ON").count(),
        2,
        "{got:?}"
    );
    for want in ["room1/STOP=STOP", "room1/smoke=OFF", "attic/fog=OFF"] {
        assert!(got.iter().any(|g| g == want), "{want} not sent: {got:?}");
    }
    let log = room.show_log.clone().unwrap();
    eventually(
        Duration::from_secs(5),
        "the show log says which cue",
        || {
            log.read_all().iter().any(|r| {
                r.kind == "scene_end"
                    && r.text
                        .ends_with(": required cue failed: attic/fog ON: TIMEOUT after 1 retry")
            })
        },
    )
    .await;

    // The panic button: each board's result.
    match room.apply(desk(Access::Operator), Command::Stop).await {
        Ok(Reply::Stopped { safe, .. }) => {
            assert_eq!(
                safe.summary,
                "Stopped: 1 of 2 boards confirmed; esp32_08 did not answer"
            );
            assert!(
                safe.boards
                    .iter()
                    .any(|b| b.device == "esp32_01" && b.confirmed)
            );
            let silent = safe.boards.iter().find(|b| b.device == "esp32_08").unwrap();
            assert_eq!(silent.failed, ["attic/fog OFF: TIMEOUT"]);
        }
        other => panic!("stop: {other:?}"),
    }
    room.shutdown(Role::Daemon).await;
    cancel.cancel();
}

/// Five thousand E-stop messages at once: one latch, one log line, the
/// audit trail rate-limited, and the room still answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_estop_flood_latches_once_and_the_room_keeps_answering() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let site = site(&[b.port()], &[("show.yaml", SHOW)], "state_dir: state\n");
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    assert!(room.mqtt.wait_subscribed(Duration::from_secs(5)).await);
    let flood: Vec<(&str, Vec<u8>, bool)> = (0..5000)
        .map(|i| {
            (
                "roomctl/room1/estop",
                format!("press {i}").into_bytes(),
                false,
            )
        })
        .collect();
    raw_publish(b.port(), &flood).await;
    eventually(Duration::from_secs(5), "latched", || {
        room.estop.get().is_some()
    })
    .await;
    let first = room.estop.get().unwrap();
    assert_eq!(first.by, "MQTT roomctl/room1/estop");
    // Still answering: a stop goes through, a start is refused as latched.
    let stop = tokio::time::timeout(
        Duration::from_secs(5),
        room.apply(desk(Access::Operator), Command::Stop),
    )
    .await
    .expect("the room stopped answering under the flood");
    assert!(stop.is_ok());
    assert!(matches!(
        start(&room, desk(Access::Operator), "show").await,
        Err(RoomError::Latched(_))
    ));
    assert_eq!(room.estop.get().unwrap().since, first.since, "one latch");
    room.shutdown(Role::Daemon).await;
    let log = roomctl::showlog::ShowLog::new(
        site.dir.path().join("state/show.log"),
        roomctl::showlog::DEFAULT_MAX_BYTES,
    );
    let actions = log.read_all().iter().filter(|r| r.kind == "action").count();
    assert!(
        actions <= 70,
        "{actions} action records: the audit trail is rate-limited"
    );
}

/// The room in one sentence: ready, a show running with its time left,
/// a board offline named with its channel, the E-stop latched first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verdict_says_what_the_front_desk_needs() {
    use roomctl::room::Level;
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let site = site(&[b.port()], &[("show.yaml", SHOW)], "");
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    assert!(room.mqtt.wait_subscribed(Duration::from_secs(5)).await);
    let v = room.verdict();
    assert_eq!((v.level, v.text.as_str()), (Level::Ready, "Ready"));
    assert_eq!(
        v.next.unwrap().scene,
        "show",
        "the only scene is the next show"
    );
    start(&room, desk(Access::Operator), "show").await.unwrap();
    let v = room.verdict();
    assert_eq!(v.level, Level::Running);
    assert!(v.text.starts_with("Show running: show, 0:"), "{}", v.text);
    // A board goes offline (its last will): named, with its channel.
    raw_publish(
        b.port(),
        &[
            ("devices/esp32_03/status", b"online".to_vec(), true),
            ("devices/esp32_03/channels", b"room1/light".to_vec(), true),
        ],
    )
    .await;
    eventually(Duration::from_secs(5), "the board online", || {
        room.registry.all().iter().any(|d| d.id == "esp32_03")
    })
    .await;
    raw_publish(
        b.port(),
        &[("devices/esp32_03/status", b"offline".to_vec(), true)],
    )
    .await;
    eventually(Duration::from_secs(5), "named in the verdict", || {
        room.verdict().text == "Needs attention: esp32_03 (room1/light) offline"
    })
    .await;
    room.apply(desk(Access::Operator), Command::Estop)
        .await
        .unwrap();
    let v = room.verdict();
    assert_eq!(
        (v.level, v.text.as_str()),
        (Level::Latched, "E-stop latched")
    );
    assert!(
        v.reasons[0].starts_with("E-stop latched at "),
        "{:?}",
        v.reasons
    );
    room.shutdown(Role::Daemon).await;
}
