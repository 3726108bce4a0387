//! Figures of the performance budget (issue 27), measured on the real
//! `roomctl run` binary and a real Mosquitto:
//!
//! - start-up: from exec to the daemon's retained `online` at an
//!   independent subscriber (its CONNECT, the CONNACK and one publish);
//! - the incoming path: the daemon's CPU time (user + system, from
//!   `/proc/<pid>/stat`) per message while an independent client floods
//!   400,000 device status and feedback messages, and the rate it keeps up;
//! - an MQTT trigger to the scene's first command at a subscriber;
//! - idle RSS 30 s after start-up, and the binary's size;
//! - log bytes at `info` per hour of a dense show (3 channels at 20 Hz,
//!   answered by `roomctl simulate`).
//!
//! `cargo bench --bench load`.

#[allow(dead_code, unused_imports)]
#[path = "../tests/common/mod.rs"]
mod common;
#[allow(dead_code)]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use roomctl::broker::Mosquitto;
use tokio_util::sync::CancellationToken;

use support::{Seen, outside_subscriber, percentile};

const FLOOD: usize = 400_000;

/// CPU seconds (user + system) the process `pid` used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the daemon runs");
    // After the command's closing parenthesis: state is field 3, utime 14,
    // stime 15.
    let rest = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// Spawns `roomctl run` for `site`; returns it and the time from exec to
/// its `online` at `seen`'s subscriber.
async fn start_daemon(
    site: &common::Site,
    seen: &Arc<Mutex<Seen>>,
    mode: &str,
) -> (tokio::process::Child, Duration) {
    seen.lock().msgs.clear();
    let t0 = std::time::Instant::now();
    let child = support::roomctl_run(site, "error")
        .env("ROOMCTL_CUE_THREAD", mode)
        .spawn()
        .unwrap();
    let at = support::online_at(seen).await;
    (child, at.duration_since(t0))
}

async fn flood(port: u16, n: usize) -> Duration {
    use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, QoS};
    let mut opts = MqttOptions::new(format!("flood-{}", common::rand_id()), "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_inflight(100);
    let (client, mut el) = AsyncClient::new(opts, 1000);
    let sender = tokio::spawn(async move {
        for i in 0..n {
            let (topic, payload) = match i % 2 {
                0 => (format!("devices/esp32_{:02}/status", i % 40), "online"),
                _ => ("room1/status".to_string(), "OK"),
            };
            client
                .publish(topic, QoS::AtMostOnce, false, payload)
                .await
                .unwrap();
        }
        client
    });
    let t0 = Instant::now();
    let mut sent = 0;
    while sent < n {
        if let Ok(Event::Outgoing(Outgoing::Publish(_))) = el.poll().await {
            sent += 1;
        }
    }
    let _client = sender.await.unwrap();
    t0.elapsed()
}

/// The daemon in `mode` flooded with [`FLOOD`] messages: its CPU µs per
/// message it received, how many it received, and the rate they were sent.
async fn flooded(
    site: &common::Site,
    seen: &Arc<Mutex<Seen>>,
    port: u16,
    mode: &str,
) -> (f64, u64, f64) {
    let (mut d, _) = start_daemon(site, seen, mode).await;
    let pid = d.id().unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu0 = cpu_seconds(pid);
    let took = flood(port, FLOOD).await;
    // Let the daemon drain what the broker still forwards.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu = cpu_seconds(pid) - cpu0;
    // What reached the daemon (a broker may drop QoS 0 for a slow
    // reader): the daemon's own count.
    let status: serde_json::Value =
        reqwest::get(format!("http://127.0.0.1:{}/api/status", site.web_port))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let received = status["stats"]["mqtt"]["messages_received"]
        .as_u64()
        .unwrap_or(0)
        .max(1);
    let _ = d.kill().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    (
        cpu / received as f64 * 1e6,
        received,
        FLOOD as f64 / took.as_secs_f64(),
    )
}

fn main() {
    let rt = support::runtime();
    support::banner("load");
    rt.block_on(async {
        let broker = Mosquitto::start().await.unwrap();
        let cancel = CancellationToken::new();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let _sub = outside_subscriber(
            broker.port(),
            &["roomctl/room1/status"],
            seen.clone(),
            cancel.child_token(),
        )
        .await;
        let site = common::site(&[broker.port()], &[common::ONE_CUE], "");

        // Each figure with and without the cue thread (ROOMCTL_CUE_THREAD),
        // the modes interleaved so that the machine's drift hits all alike.
        let modes = ["off", "normal", "realtime"];
        let mut startup: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
        for _ in 0..5 {
            for (m, mode) in modes.iter().enumerate() {
                let (mut d, t) = start_daemon(&site, &seen, mode).await;
                startup[m].push(t.as_secs_f64() * 1000.0);
                let _ = d.kill().await;
                // Its last will clears the retained online before the next.
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        let mut cpu: Vec<Vec<(f64, u64, f64)>> = vec![Vec::new(); modes.len()];
        for _ in 0..2 {
            for (m, mode) in modes.iter().enumerate() {
                cpu[m].push(flooded(&site, &seen, broker.port(), mode).await);
            }
        }
        println!("exec → online at a subscriber, 5 starts (goal: exec → CONNACK ≤ 15 ms)");
        for (m, mode) in modes.iter().enumerate() {
            let max = startup[m].iter().cloned().fold(0.0, f64::max);
            let med = percentile(&mut startup[m], 0.5);
            println!("  ROOMCTL_CUE_THREAD={mode:<9} median {med:.1} ms, max {max:.1} ms");
        }
        println!("CPU per incoming message, {FLOOD} flooded, 2 runs (goal ≤ 1.5 µs)");
        for (m, mode) in modes.iter().enumerate() {
            let runs: Vec<String> = cpu[m]
                .iter()
                .map(|(us, got, rate)| {
                    format!("{us:.2} µs ({got} received, sent at {rate:.0} msg/s)")
                })
                .collect();
            println!("  ROOMCTL_CUE_THREAD={mode:<9} {}", runs.join("; "));
        }
        other_figures(&broker, &seen).await;
        cancel.cancel();
    });
}

/// Trigger latency, idle RSS at 30 s, the binary, log bytes per hour.
async fn other_figures(broker: &Mosquitto, seen: &Arc<Mutex<Seen>>) {
    // MQTT trigger -> the scene's first command at an outside subscriber.
    let site = common::site(
        &[broker.port()],
        &[common::ONE_CUE],
        "triggers:\n  - {topic: room1/button, payload: pressed, scene: a}\n",
    );
    let (mut d, _) = start_daemon(&site, seen, "realtime").await;
    let cues = Arc::new(Mutex::new(Seen::default()));
    let cancel = CancellationToken::new();
    let _sub = outside_subscriber(
        broker.port(),
        &["room1/light"],
        cues.clone(),
        cancel.child_token(),
    )
    .await;
    let pressed = {
        use rumqttc::{AsyncClient, MqttOptions};
        let mut o = MqttOptions::new(
            format!("press-{}", common::rand_id()),
            "127.0.0.1",
            broker.port(),
        );
        o.set_keep_alive(Duration::from_secs(30));
        let (c, mut el) = AsyncClient::new(o, 10);
        tokio::spawn(async move { while el.poll().await.is_ok() {} });
        c
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut lat = Vec::new();
    for _ in 0..20 {
        cues.lock().msgs.clear();
        let t0 = std::time::Instant::now();
        pressed
            .publish("room1/button", rumqttc::QoS::AtMostOnce, false, "pressed")
            .await
            .unwrap();
        let t = Instant::now();
        let at = loop {
            if let Some(m) = cues.lock().msgs.first() {
                break m.0;
            }
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "the trigger started nothing within 5 s"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        lat.push(at.duration_since(t0).as_secs_f64() * 1000.0);
        // The one-cue scene is over; the next press starts it again.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "MQTT trigger → first command at a subscriber   median {:.2} ms, max {:.2} ms of 20 (two broker hops included; hold 1.1 ms)",
        percentile(&mut lat.clone(), 0.5),
        lat.iter().cloned().fold(0.0, f64::max)
    );
    tokio::time::sleep(Duration::from_secs(28)).await;
    println!(
        "idle RSS 30 s after start-up            {:.1} MiB (the tests' site config, no players; the budget's, with the example config: .ci/budget)",
        support::rss_mb(d.id().unwrap())
    );
    let _ = d.kill().await;
    let bin = std::fs::metadata(env!("CARGO_BIN_EXE_roomctl")).map_or(0, |m| m.len());
    println!(
        "binary (this bench build)               {:.2} MB (the shipped builds: .ci/budget; goal for aarch64 ≤ 10 MB)",
        bin as f64 / 1e6
    );

    // Log bytes of a dense show: 3 channels at 20 Hz for 15 s, at info.
    let mut dense = String::from("name: dense\nactions:\n");
    for i in 0..300 {
        for ch in ["light", "smoke", "fog"] {
            dense.push_str(&format!(
                "  - {{ at: {:.2}, topic: room1/{ch}, message: \"C{i}\" }}\n",
                i as f64 * 0.05
            ));
        }
    }
    let site = common::site(&[broker.port()], &[("dense.yaml", &dense)], "");
    let log = site.dir.path().join("daemon.log");
    let mut sim = tokio::process::Command::new(env!("CARGO_BIN_EXE_roomctl"))
        .args([
            "simulate",
            "-c",
            site.config.to_str().unwrap(),
            "--latency",
            "5ms..20ms",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    seen.lock().msgs.clear();
    let mut d = support::roomctl_run(&site, "info")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    support::online_at(seen).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = std::fs::metadata(&log).map_or(0, |m| m.len());
    common::raw_publish(
        broker.port(),
        &[("roomctl/room1/scene/start", b"dense".to_vec(), false)],
    )
    .await;
    tokio::time::sleep(Duration::from_secs(17)).await;
    let bytes = std::fs::metadata(&log).map_or(0, |m| m.len()) - before;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let ended = text.contains("Scene dense ended (completed)");
    println!(
        "log at info, dense show (3 channels at 20 Hz)   {bytes} bytes for 900 cues in 15 s = {:.0} KB/h{} (goal ≤ 1 MB/h)",
        bytes as f64 * 240.0 / 1000.0,
        if ended {
            ""
        } else {
            " (the scene did not end: see the figure with care)"
        }
    );
    let _ = d.kill().await;
    let _ = sim.kill().await;
    cancel.cancel();
}
