//! Performance measurements against roomctl's targets. Run with
//! `cargo bench` (all) or `cargo bench -- cue failover` (a selection).
//! Each line reports the measurement and whether it meets its target;
//! `ROOMCTL_BENCH_STRICT=1` makes a missed target a non-zero exit.
//!
//! Real time, real brokers: these numbers depend on the machine (run them on
//! the Pi for deployment figures).

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::mqtt_start;
use roomctl::broker::Mosquitto;
use roomctl::config::{Config, FeedbackTopic};
use roomctl::events::EventBus;
use roomctl::feedback::FeedbackTracker;
use roomctl::mqtt::{InMessage, PublishOptions};
use roomctl::registry::Registry;
use roomctl::router::{Router, RouterMode};
use roomctl::scene::load::{SceneContext, parse_scene};
use roomctl::scene::runner::{Progress, Runner};
use roomctl::scene::{Action, ActionSink, SceneController, SceneSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

struct Report {
    failed: Vec<String>,
}

impl Report {
    fn line(&mut self, name: &str, value: String, ok: bool, target: &str) {
        println!(
            "{:<34} {:>28}   target {:<14} {}",
            name,
            value,
            target,
            if ok { "ok" } else { "MISSED" }
        );
        if !ok {
            self.failed.push(name.to_string());
        }
    }
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Records when each action really ran.
struct Stamp {
    t: Mutex<Vec<Instant>>,
}

impl ActionSink for Stamp {
    fn execute(&self, _s: &str, _a: &Action) {
        self.t.lock().unwrap().push(Instant::now());
    }
    fn all_off(&self, _s: Option<&str>) {}
}

fn ctx() -> SceneContext {
    SceneContext {
        room: "room1".into(),
        local_channels: vec!["audio".into(), "video".into()],
    }
}

/// Cue timing error: 200 cues, 25 ms apart, spread over 4 states chained by
/// timeouts (absolute deadlines must not drift across states).
async fn cue_timing(r: &mut Report) {
    let mut states = String::new();
    for s in 0..4 {
        let next = if s == 3 {
            "END".to_string()
        } else {
            format!("s{}", s + 1)
        };
        let cues: Vec<String> = (0..50)
            .map(|i| {
                format!(
                    "{{\"at\": {:.3}, \"topic\": \"room1/x\", \"message\": \"{i}\"}}",
                    i as f64 * 0.025
                )
            })
            .collect();
        states.push_str(&format!(
            "\"s{s}\": {{\"timeline\": [{}], \"transitions\": [{{\"type\": \"timeout\", \"delay\": 1.25, \"goto\": \"{next}\"}}]}},",
            cues.join(",")
        ));
    }
    let text = format!(
        "{{\"sceneId\": \"b\", \"initialState\": \"s0\", \"states\": {{{}}}}}",
        states.trim_end_matches(',')
    );
    let scene = parse_scene(&text, std::path::Path::new("b.json"), &ctx())
        .unwrap()
        .0;
    let sink = Arc::new(Stamp {
        t: Mutex::new(Vec::new()),
    });
    let (_tx, rx) = tokio::sync::mpsc::channel(1);
    let start = Instant::now();
    Runner {
        scene: Arc::new(scene),
        sink: sink.clone(),
        events: EventBus::new(16),
        progress: Arc::new(Mutex::new(Progress::default())),
    }
    .run(rx, CancellationToken::new())
    .await;
    let t = sink.t.lock().unwrap();
    let mut errs: Vec<f64> = t
        .iter()
        .enumerate()
        .map(|(i, at)| {
            let state = (i / 50) as f64 * 1.25;
            let due = start + Duration::from_secs_f64(state + (i % 50) as f64 * 0.025);
            at.saturating_duration_since(due).as_secs_f64() * 1000.0
        })
        .collect();
    // Drift: does the error grow from the first state to the last?
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let drift = mean(&errs[150..]) - mean(&errs[..50]);
    let p50 = percentile(&mut errs, 0.5);
    let p99 = percentile(&mut errs, 0.99);
    let max = errs.iter().cloned().fold(0.0, f64::max);
    r.line(
        "cue timing error p50/p99/max",
        format!("{p50:.2}/{p99:.2}/{max:.2} ms"),
        p99 < 5.0,
        "p99 < 5 ms",
    );
    r.line(
        "cue drift, state 1 → state 4 (5 s)",
        format!("{drift:+.2} ms"),
        drift.abs() < 1.0,
        "|drift| < 1 ms",
    );
}

/// Feedback timeout accuracy: 200 commands, 200 ms timeouts, never answered.
async fn feedback_timeouts(r: &mut Report) {
    let bus = EventBus::new(4096);
    let t = FeedbackTracker::new(
        FeedbackTopic::new("{prefix}/status").unwrap(),
        "room1",
        1000,
        bus,
    );
    let cancel = CancellationToken::new();
    tokio::spawn(t.clone().run(cancel.clone()));
    let mut waits = Vec::new();
    for i in 0..200 {
        let sent = Instant::now();
        let tr = t.track(
            &format!("room1/d{i}"),
            "ON",
            Duration::from_millis(200),
            None,
        );
        waits.push(tokio::spawn(async move {
            tr.result.await.unwrap();
            (Instant::now() - sent).as_secs_f64() * 1000.0 - 200.0
        }));
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let mut errs = Vec::new();
    for w in waits {
        errs.push(w.await.unwrap());
    }
    cancel.cancel();
    let early = errs.iter().filter(|e| **e < 0.0).count();
    let p99 = percentile(&mut errs, 0.99);
    r.line(
        "feedback TIMEOUT lateness p99",
        format!("{p99:.2} ms ({early} early)"),
        p99 < 5.0 && early == 0,
        "p99 < 5 ms, 0 early",
    );
}

/// Failover time: a publisher at 100 Hz on the primary; the primary is
/// killed; time until the first message arrives through the backup.
async fn failover(r: &mut Report) {
    let mut times = Vec::new();
    for round in 0..5 {
        let mut a = Mosquitto::start().await.unwrap();
        let b = Mosquitto::start().await.unwrap();
        let cancel = CancellationToken::new();
        let mut obs = common::settings(&format!("obs{round}"), &[b.port()]);
        obs.subscriptions = vec!["seq/#".into()];
        let (oh, mut seen) = mqtt_start(obs, cancel.child_token());
        assert!(oh.wait_connected(Duration::from_secs(5)).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (h, _rx) = mqtt_start(
            common::settings(&format!("pub{round}"), &[a.port(), b.port()]),
            cancel.child_token(),
        );
        assert!(h.wait_connected(Duration::from_secs(5)).await);
        let p = h.clone();
        let c = cancel.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            let mut i = 0u64;
            loop {
                tokio::select! { _ = c.cancelled() => return, _ = tick.tick() => {} }
                p.publish(
                    format!("seq/{i}"),
                    i.to_string(),
                    PublishOptions::cue(Duration::from_secs(5)),
                )
                .unwrap();
                i += 1;
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let killed = Instant::now();
        a.kill();
        let _: Option<InMessage> = seen.recv().await;
        times.push((Instant::now() - killed).as_secs_f64() * 1000.0);
        cancel.cancel();
    }
    let p50 = percentile(&mut times, 0.5);
    let max = times.iter().cloned().fold(0.0, f64::max);
    r.line(
        "failover: kill → first msg via backup",
        format!("p50 {p50:.1} ms, max {max:.1} ms"),
        max < 1000.0,
        "< 1 s",
    );
}

/// Router throughput: device status, feedback, control-free chatter.
async fn router(r: &mut Report) {
    let cfg = Config::parse(
        "room: room1\nmqtt: {brokers: [{broker: h}]}\ntriggers:\n  - {topic: room1/button, payload: pressed, scene: a}\n",
        std::path::Path::new("c.yaml"),
        &|_| None,
    )
    .unwrap();
    let bus = EventBus::new(1 << 16);
    let registry = Registry::new(Duration::from_secs(60), bus.clone());
    let feedback = FeedbackTracker::new(cfg.feedback.topic.clone(), "room1", 100, bus.clone());
    feedback.register("room1/light");
    let scene = parse_scene(
        "name: a\nactions: [{at: 0, topic: room1/light, message: 'ON'}]\n",
        std::path::Path::new("a.yaml"),
        &ctx(),
    )
    .unwrap()
    .0;
    let sink = Arc::new(Stamp {
        t: Mutex::new(vec![]),
    });
    let scenes = SceneController::new(
        SceneSet::new([scene]),
        sink.clone(),
        bus.clone(),
        tokio_util::task::TaskTracker::new(),
    );
    let commands = roomctl::scene::CommandRunner::new(
        scenes.clone(),
        sink,
        bus,
        tokio_util::task::TaskTracker::new(),
        tokio_util::sync::CancellationToken::new(),
    );
    let router = Router::new(
        &cfg,
        RouterMode::Daemon,
        registry,
        feedback,
        scenes,
        commands,
    );
    let msgs: Vec<InMessage> = (0..1000)
        .map(|i| match i % 4 {
            0 => InMessage {
                topic: format!("devices/esp32_{:02}/status", i % 50),
                payload: Bytes::from_static(b"online"),
                retain: false,
            },
            1 => InMessage {
                topic: "room1/status".into(),
                payload: Bytes::from_static(b"OK"),
                retain: false,
            },
            2 => InMessage {
                topic: "room1/sensor".into(),
                payload: Bytes::from_static(b"23.5"),
                retain: false,
            },
            _ => InMessage {
                topic: "devices/esp32_01/status".into(),
                payload: Bytes::from_static(b"\xff\xfe"),
                retain: false,
            },
        })
        .collect();
    let n = 200_000;
    let t0 = std::time::Instant::now();
    for i in 0..n {
        router.handle(&msgs[i % msgs.len()]);
    }
    let rate = n as f64 / t0.elapsed().as_secs_f64();
    r.line(
        "router throughput",
        format!("{:.0} msg/s", rate),
        rate > 50_000.0,
        "> 50k msg/s",
    );
}

/// Idle RSS of `roomctl run` with the example scenes, connected to a broker.
async fn idle_rss(r: &mut Report) {
    let b = Mosquitto::start().await.unwrap();
    let scenes = roomctl::cmd::demo::EXAMPLE_SCENES;
    let site = common::site(&[b.port()], scenes, "");
    roomctl::cmd::demo::write_demo_files(site.dir.path()).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_roomctl"))
        .args(["run", "-c", site.config.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id().unwrap())).unwrap();
    let rss_kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    let _ = child.kill().await;
    let mb = rss_kb / 1024.0;
    r.line(
        "idle RSS (roomctl run)",
        format!("{mb:.1} MB"),
        mb < 40.0,
        "< 40 MB",
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let want = |name: &str| args.is_empty() || args.iter().any(|a| name.contains(a.as_str()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut r = Report { failed: vec![] };
    println!(
        "roomctl {} performance (target build: {})",
        env!("CARGO_PKG_VERSION"),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    rt.block_on(async {
        if want("cue") {
            cue_timing(&mut r).await;
        }
        if want("feedback") {
            feedback_timeouts(&mut r).await;
        }
        if want("failover") {
            failover(&mut r).await;
        }
        if want("router") {
            router(&mut r).await;
        }
        if want("rss") {
            idle_rss(&mut r).await;
        }
    });
    if !r.failed.is_empty() {
        println!("missed: {}", r.failed.join(", "));
        if std::env::var_os("ROOMCTL_BENCH_STRICT").is_some() {
            std::process::exit(1);
        }
    }
}
