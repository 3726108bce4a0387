use super::*;
use crate::scene::load::{SceneContext, parse_scene};
use crate::scene::{Action, Scene};
use std::path::Path;
use std::time::Duration;

use crate::testkit::RecordingSink as Rec;

fn ctx() -> SceneContext {
    SceneContext {
        room: "room1".into(),
        local_channels: vec!["audio".into()],
        media: None,
    }
}

fn intro() -> Scene {
    parse_scene(
            "name: intro\nactions:\n  - {at: 0, topic: room1/light, message: 'ON'}\n  - {at: 10, topic: room1/motor, message: START}\non_stop:\n  - {topic: room1/steam, message: 'OFF'}\n",
            Path::new("intro.yaml"),
            &ctx(),
        )
        .unwrap()
        .0
}

fn controller(rec: Arc<dyn ActionSink>, scenes: Vec<Scene>) -> SceneController {
    SceneController::new(
        SceneSet::new(scenes),
        rec,
        EventBus::new(256),
        TaskTracker::new(),
    )
}

#[tokio::test(start_paused = true)]
async fn natural_end_runs_on_stop_then_all_off() {
    let rec = Arc::new(Rec::default());
    let c = controller(rec.clone(), vec![intro()]);
    c.start_from("intro", crate::testkit::cli()).unwrap();
    assert_eq!(
        c.start_from("intro", crate::testkit::cli()),
        Err(StartError::AlreadyRunning("intro".into()))
    );
    assert_eq!(
        c.start_from("nope", crate::testkit::cli()),
        Err(StartError::NotFound("nope".into()))
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let st = c.status().unwrap();
    assert_eq!(
        (
            st.name.as_str(),
            st.state.as_str(),
            st.actions_done,
            st.actions_total
        ),
        ("intro", "main", 1, 2)
    );
    c.wait_idle().await;
    assert_eq!(
        rec.entries(),
        [
            "room1/light=ON",
            "room1/motor=START",
            "room1/steam=OFF",
            "ALL_OFF(intro)"
        ]
    );
    assert!(!c.is_running());
    c.start_from("intro", crate::testkit::cli()).unwrap();
}

#[tokio::test(start_paused = true)]
async fn stop_mid_scene_and_panic_when_idle() {
    let rec = Arc::new(Rec::default());
    let c = controller(rec.clone(), vec![intro()]);
    let mut events = c.inner.events.subscribe();
    c.start_from("intro", crate::testkit::cli()).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(c.stop(EndReason::Stopped).await, Some("intro".into()));
    assert_eq!(
        rec.entries(),
        ["room1/light=ON", "room1/steam=OFF", "ALL_OFF(intro)"]
    );
    let mut ended = None;
    while let Ok(e) = events.try_recv() {
        if let Event::Scene(SceneEvent::Ended { reason, .. }) = e {
            ended = Some(reason);
        }
    }
    assert_eq!(ended, Some(EndReason::Stopped));
    assert_eq!(c.stop(EndReason::Stopped).await, None);
    assert_eq!(rec.entries().last().unwrap(), "ALL_OFF(-)");
    let n = rec.entries().len();
    assert_eq!(c.stop(EndReason::Shutdown).await, None);
    assert_eq!(rec.entries().len(), n, "shutdown while idle does nothing");
}

/// A sink that panics on one message (a bug somewhere below the runner).
struct Exploding(Rec);

impl ActionSink for Exploding {
    fn execute(&self, scene: &str, a: &Action) {
        if a.message == "BOOM" {
            panic!("sink exploded on {}", a.topic);
        }
        self.0.execute(scene, a);
    }
    fn all_off(&self, scene: Option<&str>) {
        self.0.all_off(scene);
    }
}

#[tokio::test(start_paused = true)]
async fn a_runner_that_panics_ends_the_scene_normally() {
    let sink = Arc::new(Exploding(Rec::default()));
    let bomb = parse_scene(
            "name: bomb\nactions:\n  - {at: 0, topic: room1/light, message: 'ON'}\n  - {at: 1, topic: room1/fx, message: BOOM}\n  - {at: 2, topic: room1/light, message: never}\non_stop:\n  - {topic: room1/light, message: 'OFF'}\n",
            Path::new("bomb.yaml"),
            &ctx(),
        )
        .unwrap()
        .0;
    let c = controller(sink.clone(), vec![bomb, intro()]);
    let mut events = c.inner.events.subscribe();
    c.start_from("bomb", crate::testkit::cli()).unwrap();
    tokio::time::timeout(Duration::from_secs(60), c.wait_idle())
        .await
        .expect("the crashed scene never ended");
    assert!(!c.is_running());
    assert_eq!(
        sink.0.entries(),
        ["room1/light=ON", "room1/light=OFF", "ALL_OFF(bomb)"],
        "on_stop and everything off ran after the crash"
    );
    let mut ended = None;
    while let Ok(e) = events.try_recv() {
        if let Event::Scene(SceneEvent::Ended { reason, .. }) = e {
            ended = Some(reason);
        }
    }
    assert!(
        matches!(&ended, Some(EndReason::Error(e)) if e.contains("crashed") && e.contains("room1/fx")),
        "{ended:?}"
    );
    // The next start works.
    c.start_from("intro", crate::testkit::cli()).unwrap();
    assert_eq!(c.stop(EndReason::Stopped).await, Some("intro".into()));
}

/// A sink that panics while it holds its own lock: with poisoning locks
/// every later call would fail too.
#[derive(Default)]
struct Jammed(Mutex<Vec<String>>);

impl ActionSink for Jammed {
    fn execute(&self, _scene: &str, a: &Action) {
        let mut sent = self.0.lock();
        if a.message == "BOOM" {
            panic!("sink exploded on {} while holding its lock", a.topic);
        }
        sent.push(format!("{}={}", a.topic, a.message));
    }
    fn all_off(&self, scene: Option<&str>) {
        self.0
            .lock()
            .push(format!("ALL_OFF({})", scene.unwrap_or("-")));
    }
}

#[tokio::test(start_paused = true)]
async fn a_panic_under_a_lock_never_takes_the_next_scene_down() {
    let sink = Arc::new(Jammed::default());
    let bomb = parse_scene(
            "name: bomb\nactions:\n  - {at: 0, topic: room1/fx, message: BOOM}\non_stop:\n  - {topic: room1/light, message: 'OFF'}\n",
            Path::new("bomb.yaml"),
            &ctx(),
        )
        .unwrap()
        .0;
    let c = controller(sink.clone(), vec![bomb, intro()]);
    c.start_from("bomb", crate::testkit::cli()).unwrap();
    tokio::time::timeout(Duration::from_secs(60), c.wait_idle())
        .await
        .expect("the crashed scene never ended");
    c.start_from("intro", crate::testkit::cli()).unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(c.status().map(|s| s.name).as_deref(), Some("intro"));
    assert_eq!(c.stop(EndReason::Stopped).await, Some("intro".into()));
    let sent = sink.0.lock().clone();
    assert_eq!(sent[..2], ["room1/light=OFF", "ALL_OFF(bomb)"], "{sent:?}");
    assert!(sent.contains(&"room1/light=ON".to_string()), "{sent:?}");
    assert!(sent.contains(&"ALL_OFF(intro)".to_string()), "{sent:?}");
}

#[tokio::test(start_paused = true)]
async fn only_inputs_a_transition_can_match_reach_the_scene() {
    let waiting = parse_scene(
            r#"{"sceneId": "w", "initialState": "wait", "states": {
                "wait": {"transitions": [{"type": "mqttMessage", "topic": "room1/button", "message": "pressed", "goto": "go"}]},
                "go": {"onEnter": [{"topic": "room1/light", "message": "ON"}], "transitions": [{"type": "timeout", "delay": 1, "goto": "END"}]}}}"#,
            Path::new("w.json"),
            &ctx(),
        )
        .unwrap()
        .0;
    let rec = Arc::new(Rec::default());
    let c = controller(rec.clone(), vec![waiting]);
    c.start_from("w", crate::testkit::cli()).unwrap();
    // A burst of other rooms' replies and media ends the scene cannot
    // use, far more than its input queue holds, without yielding.
    for i in 0..10 * INPUT_CAPACITY {
        c.input(SceneInput::Mqtt {
            topic: format!("room{i}/status"),
            payload: "OK".into(),
        });
        c.input(SceneInput::AudioEnd("x.wav".into()));
    }
    c.input(SceneInput::Mqtt {
        topic: "room1/button".into(),
        payload: "pressed".into(),
    });
    tokio::time::timeout(Duration::from_secs(60), c.wait_idle())
        .await
        .expect("the button press never reached the scene");
    assert_eq!(rec.entries(), ["room1/light=ON", "ALL_OFF(w)"]);
}
