use super::*;
use crate::scene::Scene;
use crate::scene::load::{SceneContext, parse_scene};
use std::path::Path;
use std::time::Duration;

/// Records what was executed and when (paused time, so exact).
#[derive(Default)]
struct Recorder {
    log: Mutex<Vec<(Duration, String)>>,
    t0: Mutex<Option<Instant>>,
}

impl Recorder {
    fn at(&self) -> Duration {
        let mut t0 = self.t0.lock();
        let t0 = *t0.get_or_insert_with(Instant::now);
        Instant::now() - t0
    }
    fn entries(&self) -> Vec<(u64, String)> {
        self.log
            .lock()
            .iter()
            .map(|(d, s)| (d.as_millis() as u64, s.clone()))
            .collect()
    }
}

impl ActionSink for Recorder {
    fn execute(&self, _scene: &str, a: &Action) {
        let at = self.at();
        self.log
            .lock()
            .push((at, format!("{}={}", a.topic, a.message)));
    }
    fn all_off(&self, _scene: Option<&str>) {
        let at = self.at();
        self.log.lock().push((at, "ALL_OFF".into()));
    }
}

fn scene(text: &str) -> Scene {
    let ctx = SceneContext {
        room: "room1".into(),
        local_channels: vec!["audio".into(), "video".into()],
        media: None,
    };
    parse_scene(text, Path::new("s.yaml"), &ctx)
        .map_err(|(e, _)| e.to_string())
        .unwrap()
        .0
}

struct Run {
    rec: Arc<Recorder>,
    tx: mpsc::Sender<SceneInput>,
    cancel: CancellationToken,
    handle: tokio::task::JoinHandle<RunEnd>,
    progress: Arc<Mutex<Progress>>,
}

fn start(s: Scene) -> Run {
    let rec = Arc::new(Recorder::default());
    rec.at(); // t0 = now
    let (tx, rx) = mpsc::channel(16);
    let cancel = CancellationToken::new();
    let (r2, c2) = (rec.clone(), cancel.clone());
    let progress: Arc<Mutex<Progress>> = Arc::default();
    let handle = tokio::spawn(
        Runner {
            scene: Arc::new(s),
            sink: r2,
            events: EventBus::new(64),
            progress: progress.clone(),
        }
        .run(rx, c2),
    );
    Run {
        rec,
        tx,
        cancel,
        handle,
        progress,
    }
}

#[tokio::test(start_paused = true)]
async fn simple_scene_fires_at_exact_times() {
    let r = start(scene(
        "actions:\n  - {at: 0, topic: room1/light, message: 'ON'}\n  - {at: 2.5, topic: room1/audio, message: 'PLAY:bg.mp3:0.8'}\n  - {at: 5, topic: room1/steam, message: 'ON'}\n  - {at: 10, topic: room1/motor, message: START}\n",
    ));
    assert_eq!(r.handle.await.unwrap(), RunEnd::Completed);
    assert_eq!(
        r.rec.entries(),
        [
            (0, "room1/light=ON".into()),
            (2500, "room1/audio=PLAY:bg.mp3:0.8".into()),
            (5000, "room1/steam=ON".into()),
            (10000, "room1/motor=START".into()),
        ]
    );
    assert_eq!(
        r.rec.at(),
        Duration::from_secs(10),
        "ends right after the last cue"
    );
}

#[tokio::test(start_paused = true)]
async fn states_chain_on_absolute_deadlines_without_drift() {
    // 1000 hops of 10 ms: any per-hop rounding or "now + delay" drift
    // would accumulate; absolute anchors end at exactly 10 s.
    let mut states = String::new();
    for i in 0..1000 {
        let next = if i == 999 {
            "END".to_string()
        } else {
            format!("s{}", i + 1)
        };
        states.push_str(&format!(
                "  s{i}:\n    timeline: [{{at: 0.005, topic: room1/t, message: '{i}'}}]\n    transitions: [{{type: timeout, delay: 0.01, goto: {next}}}]\n"
            ));
    }
    let r = start(scene(&format!(
        "sceneId: chain\ninitialState: s0\nstates:\n{states}"
    )));
    assert_eq!(r.handle.await.unwrap(), RunEnd::Completed);
    let e = r.rec.entries();
    assert_eq!(e.len(), 1000);
    assert_eq!(e[0].0, 5);
    assert_eq!(e[999], (9995, "room1/t=999".into()));
    assert_eq!(r.rec.at(), Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn timeline_cue_at_transition_instant_fires_first_and_later_cues_never() {
    let r = start(scene(
        "sceneId: x\ninitialState: a\nstates:\n  a:\n    timeline:\n      - {at: 1, topic: r/x, message: due}\n      - {at: 3, topic: r/x, message: never}\n    transitions: [{type: timeout, delay: 1, goto: END}]\n",
    ));
    r.handle.await.unwrap();
    assert_eq!(r.rec.entries(), [(1000, "r/x=due".into())]);
}

#[tokio::test(start_paused = true)]
async fn on_enter_on_exit_always_and_end_state() {
    let r = start(scene(
        r#"{"sceneId": "x", "initialState": "a", "states": {
                "a": {"onEnter": [{"topic": "r/a", "message": "in"}], "onExit": [{"topic": "r/a", "message": "out"}],
                      "timeline": [{"at": 0, "topic": "r/a", "message": "t0"}],
                      "transitions": [{"type": "always", "goto": "b"}]},
                "b": {"transitions": [{"type": "timeout", "delay": 2, "goto": "END"}]},
                "END": {"onEnter": [{"topic": "r/end", "message": "bye"}]}}}"#,
    ));
    assert_eq!(r.handle.await.unwrap(), RunEnd::Completed);
    assert_eq!(
        r.rec.entries(),
        [
            (0, "r/a=in".into()),
            (0, "r/a=t0".into()),
            (0, "r/a=out".into()),
            (2000, "r/end=bye".into()),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn mqtt_and_media_end_events_drive_transitions() {
    let r = start(scene(
        r#"{"sceneId": "x", "initialState": "wait", "states": {
                "wait": {"transitions": [{"type": "mqttMessage", "topic": "room1/button", "message": "pressed", "goto": "play"}]},
                "play": {"onEnter": [{"action": "audio", "message": "PLAY:intro.mp3"}],
                         "transitions": [{"type": "audioEnd", "target": "intro.mp3", "goto": "film"}]},
                "film": {"onEnter": [{"action": "video", "message": "PLAY_VIDEO:clip"}],
                         "transitions": [{"type": "videoEnd", "goto": "END"}]}}}"#,
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    r.tx.send(SceneInput::Mqtt {
        topic: "room1/button".into(),
        payload: "other".into(),
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    r.tx.send(SceneInput::Mqtt {
        topic: "room1/button".into(),
        payload: "pressed".into(),
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    r.tx.send(SceneInput::AudioEnd("other.mp3".into()))
        .await
        .unwrap();
    r.tx.send(SceneInput::AudioEnd("intro.mp3".into()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    r.tx.send(SceneInput::VideoEnd("clip.mp4".into()))
        .await
        .unwrap();
    assert_eq!(r.handle.await.unwrap(), RunEnd::Completed);
    assert_eq!(
        r.rec.entries(),
        [
            (2000, "room1/audio=PLAY:intro.mp3".into()),
            (3000, "room1/video=PLAY_VIDEO:clip".into())
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn progress_says_what_the_state_waits_for_and_how_long_is_left() {
    let r = start(scene(
        r#"{"sceneId": "x", "initialState": "wait",
                "globalEvents": [{"type": "timeout", "delay": 600, "goto": "END"}],
                "states": {
                  "wait": {"transitions": [
                    {"type": "mqttMessage", "topic": "room1/button", "message": "pressed", "goto": "show"},
                    {"type": "timeout", "delay": 30, "goto": "END"}]},
                  "show": {"transitions": [{"type": "timeout", "delay": 5, "goto": "END"}]}}}"#,
    ));
    tokio::time::sleep(Duration::from_secs(10)).await;
    let now = Instant::now();
    let view = |p: &Progress| -> Vec<(String, String, Option<u64>)> {
        p.waits
            .iter()
            .map(|w| {
                let v = w.view(now);
                (v.what, v.goto, v.remaining.map(|s| s.round() as u64))
            })
            .collect()
    };
    {
        let p = r.progress.lock();
        assert_eq!(p.state, "wait");
        assert_eq!(
            view(&p),
            [
                (
                    "message room1/button = pressed".into(),
                    "state `show`".into(),
                    None
                ),
                ("timeout 30s".into(), "the end".into(), Some(20)),
                ("timeout 10m".into(), "the end".into(), Some(590)),
            ]
        );
    }
    r.tx.send(SceneInput::Mqtt {
        topic: "room1/button".into(),
        payload: "pressed".into(),
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let now = Instant::now();
    {
        let p = r.progress.lock();
        assert_eq!(p.state, "show");
        let left: Vec<_> = p
            .waits
            .iter()
            .map(|w| w.view(now).remaining.unwrap().round() as u64)
            .collect();
        assert_eq!(left, [4, 589]);
    }
    assert_eq!(r.handle.await.unwrap(), RunEnd::Completed);
}

#[tokio::test(start_paused = true)]
async fn an_end_state_runs_its_timeline_then_the_scene_ends() {
    let r = start(scene(
        r#"{"sceneId": "x", "initialState": "a",
                "globalEvents": [{"type": "timeout", "delay": 600, "goto": "END"}],
                "states": {
                  "a": {"transitions": [{"type": "timeout", "delay": 1, "goto": "END"}]},
                  "END": {"onEnter": [{"topic": "r/light", "message": "OFF"}],
                          "timeline": [{"at": 0.5, "topic": "r/smoke", "message": "OFF"},
                                       {"at": 2, "topic": "r/door", "message": "OPEN"}],
                          "transitions": [{"type": "mqttMessage", "topic": "r/button", "goto": "a"}]}}}"#,
    ));
    assert_eq!(r.handle.await.unwrap(), RunEnd::Completed);
    assert_eq!(
        r.rec.entries(),
        [
            (1000, "r/light=OFF".into()),
            (1500, "r/smoke=OFF".into()),
            (3000, "r/door=OPEN".into())
        ]
    );
    // Ends when END's timeline has run, not at the global timeout.
    assert_eq!(r.rec.at(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_transition_out_of_end_is_honoured() {
    let r = start(scene(
        r#"{"sceneId": "x", "initialState": "a",
                "states": {
                  "a": {"onEnter": [{"topic": "r/a", "message": "IN"}],
                        "transitions": [{"type": "mqttMessage", "topic": "r/go", "goto": "END"}]},
                  "END": {"timeline": [{"at": 1, "topic": "r/end", "message": "1"}],
                          "transitions": [{"type": "mqttMessage", "topic": "r/again", "goto": "a"},
                                          {"type": "timeout", "delay": 5, "goto": "b"}]},
                  "b": {"onEnter": [{"topic": "r/b", "message": "IN"}],
                        "transitions": [{"type": "timeout", "delay": 1, "goto": "END"}]}}}"#,
    ));
    let send = |t: &str| SceneInput::Mqtt {
        topic: t.into(),
        payload: "x".into(),
    };
    r.tx.send(send("r/go")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Still in END (its timeout is due at 5 s): an event takes it back.
    r.tx.send(send("r/again")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    r.tx.send(send("r/go")).await.unwrap();
    // This time END's timeout fires and leads to `b`, which ends there.
    tokio::time::sleep(Duration::from_secs(30)).await;
    r.cancel.cancel();
    let end = r.handle.await.unwrap();
    assert_eq!(
        r.rec.entries(),
        [
            (0, "r/a=IN".into()),
            (1000, "r/end=1".into()),
            (2000, "r/a=IN".into()),
            (4000, "r/end=1".into()),
            (8000, "r/b=IN".into()),
            (10000, "r/end=1".into()),
            (14000, "r/b=IN".into()),
            (16000, "r/end=1".into()),
            (20000, "r/b=IN".into()),
            (22000, "r/end=1".into()),
            (26000, "r/b=IN".into()),
            (28000, "r/end=1".into()),
            (32000, "r/b=IN".into()),
        ]
    );
    assert_eq!(end, RunEnd::Cancelled);
}

#[tokio::test(start_paused = true)]
async fn a_transition_without_type_never_fires() {
    let r = start(scene(
        r#"{"sceneId": "x", "initialState": "a", "states": {
                "a": {"transitions": [{"goto": "b"}, {"type": "timeout", "delay": 3, "goto": "END"}]},
                "b": {"onEnter": [{"topic": "r/b", "message": "IN"}]}}}"#,
    ));
    assert_eq!(r.handle.await.unwrap(), RunEnd::Completed);
    assert!(r.rec.entries().is_empty());
    assert_eq!(r.rec.at(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn global_events_win_over_the_states_own_when_both_match_at_once() {
    // The same message matches a global event and the state's own
    // transition: the existing format checks globalEvents first.
    let r = start(scene(
        r#"{"sceneId": "x", "initialState": "a",
                "globalEvents": [{"type": "mqttMessage", "topic": "r/emergency", "goto": "safe"}],
                "states": {
                  "a": {"transitions": [{"type": "mqttMessage", "topic": "r/+", "goto": "next"}]},
                  "next": {"onEnter": [{"topic": "r/next", "message": "IN"}]},
                  "safe": {"onEnter": [{"topic": "r/safe", "message": "IN"}],
                           "transitions": [{"type": "timeout", "delay": 1, "goto": "END"}]}}}"#,
    ));
    r.tx.send(SceneInput::Mqtt {
        topic: "r/emergency".into(),
        payload: "1".into(),
    })
    .await
    .unwrap();
    assert_eq!(r.handle.await.unwrap(), RunEnd::Completed);
    assert_eq!(r.rec.entries(), [(0, "r/safe=IN".into())]);

    // A global timeout and the state's timeout due at the same instant.
    let r = start(scene(
        r#"{"sceneId": "x", "initialState": "a",
                "globalEvents": [{"type": "timeout", "delay": 3, "goto": "safe"}],
                "states": {
                  "a": {"transitions": [{"type": "timeout", "delay": 3, "goto": "next"}]},
                  "next": {"onEnter": [{"topic": "r/next", "message": "IN"}]},
                  "safe": {"onEnter": [{"topic": "r/safe", "message": "IN"}]}}}"#,
    ));
    tokio::time::sleep(Duration::from_secs(4)).await;
    r.cancel.cancel();
    r.handle.await.unwrap();
    assert_eq!(r.rec.entries(), [(3000, "r/safe=IN".into())]);
}

#[tokio::test(start_paused = true)]
async fn global_events_apply_in_every_state_and_time_from_scene_start() {
    let r = start(scene(
        r#"{"sceneId": "x", "initialState": "a",
                "globalEvents": [{"type": "timeout", "delay": 5, "goto": "END"}],
                "states": {
                  "a": {"transitions": [{"type": "timeout", "delay": 3, "goto": "b"}]},
                  "b": {"timeline": [{"at": 1, "topic": "r/b", "message": "1"}, {"at": 3, "topic": "r/b", "message": "3"}]}}}"#,
    ));
    assert_eq!(r.handle.await.unwrap(), RunEnd::Completed);
    assert_eq!(r.rec.entries(), [(4000, "r/b=1".into())]);
    assert_eq!(r.rec.at(), Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn cancel_stops_promptly() {
    let r = start(scene(
        "actions:\n  - {at: 0, topic: r/a, message: go}\n  - {at: 60, topic: r/a, message: late}\n",
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;
    r.cancel.cancel();
    assert_eq!(r.handle.await.unwrap(), RunEnd::Cancelled);
    assert_eq!(r.rec.entries(), [(0, "r/a=go".into())]);
}

#[tokio::test(start_paused = true)]
async fn a_loop_without_time_passing_stops_before_repeating_anything() {
    // The loader refuses such a scene; build one past it.
    let mut sc = scene(
        r#"{"sceneId": "x", "initialState": "a", "states": {
                "a": {"onEnter": [{"topic": "r/a", "message": "in"}], "transitions": [{"type": "always", "goto": "b"}]},
                "b": {"onEnter": [{"topic": "r/b", "message": "in"}], "transitions": [{"type": "timeout", "delay": 1, "goto": "END"}]}}}"#,
    );
    let b = sc.states.get_mut("b").unwrap();
    b.transitions[0].trigger = Trigger::Always;
    b.transitions[0].goto = Goto::State("a".into());
    let r = start(sc);
    assert!(matches!(r.handle.await.unwrap(), RunEnd::Error(e) if e.contains("loop")));
    assert_eq!(
        r.rec.entries(),
        [(0, "r/a=in".into()), (0, "r/b=in".into())],
        "nothing ran twice"
    );
}
