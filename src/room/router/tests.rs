use super::*;
use crate::config::FeedbackTopic;
use crate::events::EventBus;
use crate::scene::SceneSet;
use bytes::Bytes;
use std::path::Path;
use std::time::Duration;

use crate::testkit::RecordingSink as Rec;

fn config() -> Config {
    Config::parse(
        "room: room1\nmqtt: {brokers: [{broker: h}]}\nscenes: {default: intro}\ntriggers:\n  - {topic: room1/button, payload: pressed, scene: outro}\n  - {topic: room1/any/+, scene: any}\n",
        Path::new("c.yaml"),
        &|_| None,
    )
    .unwrap()
}

type Applied = Arc<Mutex<Vec<(Origin, Command)>>>;

fn router() -> (Router, Applied, Registry, FeedbackTracker) {
    let cfg = config();
    let bus = EventBus::new(64);
    let scenes = SceneController::new(
        SceneSet::new([]),
        Arc::new(Rec::default()),
        bus.clone(),
        tokio_util::task::TaskTracker::new(),
    );
    let registry = Registry::new(Duration::from_secs(60), bus.clone());
    let feedback = FeedbackTracker::new(
        FeedbackTopic::new("{prefix}/status").unwrap(),
        "room1",
        10,
        bus,
    );
    let applied = Applied::default();
    let log = applied.clone();
    let apply: Apply = Arc::new(move |o, c| {
        log.lock().push((o, c));
        Box::pin(std::future::ready(Err(RoomError::Conflict("busy".into()))))
    });
    let (_tx, live) = watch::channel(Live::of(&cfg));
    let r = Router::new(
        &cfg,
        RouterMode::Daemon,
        registry.clone(),
        feedback.clone(),
        scenes,
        live,
        apply,
    );
    (r, applied, registry, feedback)
}

fn msg(topic: &str, payload: &[u8]) -> InMessage {
    InMessage {
        topic: topic.into(),
        payload: Bytes::copy_from_slice(payload),
        retain: false,
        properties: Vec::new(),
        broker: 0,
    }
}

#[test]
fn control_topics_and_triggers_become_commands() {
    let cfg = config();
    let (topics, rules) = (cfg.topics(), Rules::of(&cfg));
    let c = |t: &str, p: &str| control(&topics, &rules, t, p);
    let mqtt = |t: &str| Origin::mqtt(t);
    let start = |n: &str| Command::StartScene(n.into());
    let t = "roomctl/room1/scene/start";
    assert_eq!(c(t, " intro\n"), Some(Ok((mqtt(t), start("intro")))));
    let t = "room1/start_scene";
    assert_eq!(c(t, "outro"), Some(Ok((mqtt(t), start("outro")))));
    let t = "roomctl/room1/scene/stop";
    assert_eq!(c(t, ""), Some(Ok((mqtt(t), Command::Stop))));
    let t = "room1/scene";
    assert_eq!(
        c(t, "start"),
        Some(Ok((mqtt(t), Command::StartDefaultScene)))
    );
    assert_eq!(c(t, "STOP"), Some(Ok((mqtt(t), Command::Stop))));
    assert!(matches!(c(t, "DANCE"), Some(Err(e)) if e.contains("START or STOP")));
    let t = "roomctl/room1/command/run";
    assert_eq!(
        c(t, "reset"),
        Some(Ok((mqtt(t), Command::RunCommand("reset".into()))))
    );
    let t = "roomctl/room1/schedule";
    assert_eq!(
        c(t, "Pause"),
        Some(Ok((mqtt(t), Command::Schedule(ScheduleAction::Pause))))
    );
    assert!(matches!(c(t, "later"), Some(Err(e)) if e.contains("pause or resume")));
    assert_eq!(
        c("room1/button", "pressed"),
        Some(Ok((Origin::trigger("room1/button"), start("outro"))))
    );
    assert_eq!(c("room1/button", "released"), None);
    assert_eq!(
        c("room1/any/x", "whatever"),
        Some(Ok((Origin::trigger("room1/any/x"), start("any"))))
    );
    assert_eq!(c("room1/sensor", "23.5"), None);
    let t = "roomctl/room1/estop";
    assert_eq!(c(t, "anything"), Some(Ok((mqtt(t), Command::Estop))));
    // A hardware button: its payload only, never signed.
    let mut rules = rules.clone();
    rules.estop.topic = Some("room1/estop".into());
    rules.estop.payload = Some("PRESSED".into());
    let c = |t: &str, p: &str| control(&topics, &rules, t, p);
    assert_eq!(
        c("room1/estop", "PRESSED\n"),
        Some(Ok((Origin::trigger("room1/estop"), Command::Estop)))
    );
    assert_eq!(c("room1/estop", "released"), None);
}

#[tokio::test(start_paused = true)]
async fn routes_devices_feedback_and_commands() {
    let (r, applied, registry, feedback) = router();
    assert_eq!(
        r.handle(&msg("devices/esp32_01/status", b"online")),
        Route::Device
    );
    assert_eq!(registry.connected().len(), 1);

    let _t = feedback.track("room1/light", "ON", Duration::from_secs(1), None);
    assert_eq!(r.handle(&msg("room1/status", b"OK")), Route::Feedback);
    assert_eq!(feedback.stats().ok, 1);

    assert_eq!(r.handle(&msg("room1/button", b"pressed")), Route::Command);
    assert_eq!(
        r.handle(&msg("roomctl/room1/scene/stop", b"")),
        Route::Command
    );
    assert_eq!(r.handle(&msg("room1/sensor", b"1")), Route::Scene);
    let applied = applied.lock();
    assert_eq!(applied.len(), 2, "{applied:?}");
    assert_eq!(applied[0].1, Command::StartScene("outro".into()));
    assert_eq!(applied[1].1, Command::Stop);
}

#[tokio::test(start_paused = true)]
async fn garbage_never_panics_or_changes_state() {
    let (r, applied, registry, _f) = router();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("devices/esp32_01/status", vec![0xff, 0xfe, 0x00]),
        ("devices/esp32_01/status", b"{\"json\": true}".to_vec()),
        ("devices//status", b"online".to_vec()),
        ("devices/a/b/status", b"online".to_vec()),
        ("room1/status", b"\x00\x01garbage".to_vec()),
        ("room1/status", b"{not json".to_vec()),
        ("room1/status", vec![b'A'; 100_000]),
        ("room1/scene", b"DANCE".to_vec()),
        ("room1/button", b"not-pressed".to_vec()),
        ("roomctl/room1/schedule", vec![0xc3, 0x28]),
        ("", b"".to_vec()),
    ];
    for (t, p) in &cases {
        let _ = r.handle(&msg(t, p));
    }
    assert!(registry.all().is_empty());
    assert!(applied.lock().is_empty());
}

#[tokio::test(start_paused = true)]
async fn retained_control_messages_are_ignored() {
    let (r, applied, registry, _f) = router();
    let mut m = msg("roomctl/room1/scene/start", b"intro");
    m.retain = true;
    assert!(matches!(r.handle(&m), Route::Rejected(_)));
    assert!(applied.lock().is_empty());
    let mut d = msg("devices/esp32_02/status", b"online");
    d.retain = true;
    assert_eq!(
        r.handle(&d),
        Route::Device,
        "retained device status is how ESP32s announce"
    );
    assert_eq!(registry.all().len(), 1);
}
