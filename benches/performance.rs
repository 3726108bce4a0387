//! Performance measurements against roomctl's targets. Run with
//! `cargo bench` (all) or `cargo bench -- cue failover` (a selection).
//! Each line reports the measurement and whether it meets its target;
//! `ROOMCTL_BENCH_STRICT=1` makes a missed target a non-zero exit.
//!
//! Real time, real brokers: these numbers depend on the machine (run them on
//! the Pi for deployment figures).

// The benchmarks use a few of the integration tests' helpers.
#[allow(dead_code, unused_imports)]
#[path = "../tests/common/mod.rs"]
mod common;
#[allow(dead_code)]
mod support;
use support::*;

use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use bytes::Bytes;
use common::mqtt_start;
use roomctl::broker::Mosquitto;
use roomctl::config::{Config, FeedbackTopic};
use roomctl::events::EventBus;
use roomctl::feedback::FeedbackTracker;
use roomctl::mqtt::{InMessage, PublishOptions};
use roomctl::registry::Registry;
use roomctl::room::{Apply, Live, RoomError, Router, RouterMode};
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

/// Records when each action really ran.
struct Stamp {
    t: Mutex<Vec<Instant>>,
}

impl ActionSink for Stamp {
    fn execute(&self, _s: &str, _a: &Action) {
        self.t.lock().push(Instant::now());
    }
    fn all_off(&self, _s: Option<&str>) {}
}

fn ctx() -> SceneContext {
    SceneContext {
        room: "room1".into(),
        local_channels: vec!["audio".into(), "video".into()],
        media: None,
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
    let t = sink.t.lock();
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
        // Past the first second: a connection that dies sooner counts as a
        // failed attempt and backs off (storm protection), not a failover.
        tokio::time::sleep(Duration::from_millis(1500)).await;
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
    // No message here is a command; one that were would be refused.
    let apply: Apply = Arc::new(|_, _| {
        Box::pin(std::future::ready(Err(RoomError::Conflict(
            "not in this benchmark".into(),
        ))))
    });
    let (_live, live_rx) = tokio::sync::watch::channel(Live::of(&cfg));
    let router = Router::new(
        &cfg,
        RouterMode::Daemon,
        registry,
        feedback,
        scenes,
        live_rx,
        apply,
    );
    let msgs: Vec<InMessage> = (0..1000)
        .map(|i| match i % 4 {
            0 => InMessage {
                topic: format!("devices/esp32_{:02}/status", i % 50),
                payload: Bytes::from_static(b"online"),
                retain: false,
                properties: Vec::new(),
                broker: 0,
            },
            1 => InMessage {
                topic: "room1/status".into(),
                payload: Bytes::from_static(b"OK"),
                retain: false,
                properties: Vec::new(),
                broker: 0,
            },
            2 => InMessage {
                topic: "room1/sensor".into(),
                payload: Bytes::from_static(b"23.5"),
                retain: false,
                properties: Vec::new(),
                broker: 0,
            },
            _ => InMessage {
                topic: "devices/esp32_01/status".into(),
                payload: Bytes::from_static(b"\xff\xfe"),
                retain: false,
                properties: Vec::new(),
                broker: 0,
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

/// End to end, from outside the process: the real `roomctl run` binary,
/// two real Mosquittos, an independent subscriber on both.
async fn e2e(r: &mut Report) {
    // 1. Cue timing over 600 cues at 10 Hz, no fault; idle RSS before.
    let n = 600;
    let mut run = e2e_setup(n).await;
    let mut ready = vec![run.ready.as_secs_f64() * 1000.0];
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = rss_mb(run.daemon.id().unwrap());
    run.start_scene().await;
    run.wait_cue(n - 1, Duration::from_secs(n as u64 / 10 + 10))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let by = arrivals(&run.seen.lock());
    let lost = (0..n).filter(|i| !by.contains_key(i)).count();
    let dup: usize = by.values().map(|v| v.len() - 1).sum();
    let mut err = cue_errors(&by);
    if err.is_empty() {
        r.line(
            "e2e: cue error at subscriber",
            "no cue arrived".into(),
            false,
            "p99 <= 2 ms",
        );
        return;
    }
    let p50 = percentile(&mut err, 0.5);
    let p99 = percentile(&mut err, 0.99);
    let max = err.iter().cloned().fold(0.0, f64::max);
    r.line(
        "e2e: cue error at subscriber",
        format!("p50 {p50:.2} p99 {p99:.2} max {max:.2} ms"),
        p99 <= 2.0,
        "p99 <= 2 ms",
    );
    r.line(
        &format!("e2e: lost / duplicated of {n}"),
        format!("{lost} / {dup}"),
        lost == 0 && dup == 0,
        "0 / 0",
    );
    r.line(
        "e2e: idle RSS (roomctl run)",
        format!("{rss:.1} MB"),
        rss <= 15.0,
        "<= 15 MB",
    );
    run.cancel.cancel();
    let _ = run.daemon.kill().await;

    // 1b. Cue timing while the dashboard reloads 10 times a second (the
    // loading runs off the async runtime; reloads in a row coalesce).
    let n = 200;
    let mut run = e2e_setup(n).await;
    let reload = format!("http://127.0.0.1:{}/api/reload", run.site.web_port);
    let stop = CancellationToken::new();
    let reloader = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut done = 0u32;
            while !stop.is_cancelled() {
                if http
                    .post(&reload)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
                {
                    done += 1;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            done
        })
    };
    run.start_scene().await;
    run.wait_cue(n - 1, Duration::from_secs(n as u64 / 10 + 10))
        .await;
    stop.cancel();
    let reloads = reloader.await.unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut err = cue_errors(&arrivals(&run.seen.lock()));
    let p99 = if err.is_empty() {
        f64::INFINITY
    } else {
        percentile(&mut err, 0.99)
    };
    r.line(
        &format!("e2e: cue error during {reloads} HTTP reloads"),
        format!("p99 {p99:.2} ms over {} of {n} cues", err.len()),
        p99 <= 2.0 && err.len() == n && reloads > 0,
        "p99 <= 2 ms, none lost",
    );
    run.cancel.cancel();
    let _ = run.daemon.kill().await;

    // 2. and 3. A show at 10 Hz with the primary SIGKILLed, then one with
    // it SIGSTOPped (a silent partition), at cue 30 of 100.
    for stop in [false, true] {
        let n = 100;
        let mut run = e2e_setup(n).await;
        ready.push(run.ready.as_secs_f64() * 1000.0);
        run.start_scene().await;
        run.wait_cue(30, Duration::from_secs(10)).await;
        let fault = std::time::Instant::now();
        if stop {
            run.primary.freeze();
        } else {
            run.primary.kill();
        }
        run.wait_cue(n - 1, Duration::from_secs(20)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (backup_online, by) = {
            let seen = run.seen.lock();
            let backup_online = seen
                .msgs
                .iter()
                .find(|m| {
                    m.0 > fault
                        && m.1 != run.primary.port()
                        && m.2 == "roomctl/room1/status"
                        && m.3 == "online"
                })
                .map(|m| (m.0 - fault).as_secs_f64() * 1000.0);
            (backup_online, arrivals(&seen))
        };
        let lost = (0..n).filter(|i| !by.contains_key(i)).count();
        let dup: usize = by.values().map(|v| v.len() - 1).sum();
        // The gap: how late the latest cue was against the schedule.
        let mut late = 0.0f64;
        if let Some(t0) = by.get(&0).map(|v| v[0]) {
            for (i, v) in &by {
                let due = t0 + Duration::from_millis(*i as u64 * 100);
                late = late.max(v[0].saturating_duration_since(due).as_secs_f64() * 1000.0);
            }
        }
        let gap = backup_online.unwrap_or(f64::INFINITY);
        if stop {
            r.line(
                "e2e: SIGSTOP → on backup",
                format!("{gap:.0} ms (cue late {late:.0} ms)"),
                gap <= 1500.0,
                "<= 1.5 s",
            );
        } else {
            r.line(
                "e2e: SIGKILL → on backup",
                format!("{gap:.0} ms (cue late {late:.0} ms)"),
                gap <= 300.0,
                "<= 300 ms",
            );
        }
        r.line(
            &format!(
                "e2e: {} lost / dup of {n}",
                if stop { "SIGSTOP" } else { "SIGKILL" }
            ),
            format!("{lost} / {dup}"),
            lost == 0,
            "0 lost",
        );
        if stop {
            run.primary.thaw();
        }
        run.cancel.cancel();
        let _ = run.daemon.kill().await;
    }
    let max_ready = ready.iter().cloned().fold(0.0, f64::max);
    r.line(
        "e2e: startup to READY",
        format!("max {max_ready:.0} ms of {}", ready.len()),
        max_ready <= 1000.0,
        "<= 1 s",
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let want = |name: &str| args.is_empty() || args.iter().any(|a| name.contains(a.as_str()));
    let rt = runtime();
    let mut r = Report { failed: vec![] };
    banner("performance");
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
        // The real binary from outside: cue timing, loss, failover gaps,
        // idle RSS, startup (`cargo bench -- e2e`, or `rss`).
        if want("e2e") || want("rss") {
            e2e(&mut r).await;
        }
    });
    if !r.failed.is_empty() {
        println!("missed: {}", r.failed.join(", "));
        if std::env::var_os("ROOMCTL_BENCH_STRICT").is_some() {
            std::process::exit(1);
        }
    }
}
