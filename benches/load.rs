//! Two figures of the performance budget (issue 27), measured on the real
//! `roomctl run` binary and a real Mosquitto:
//!
//! - start-up: from exec to the daemon's retained `online` at an
//!   independent subscriber (its CONNECT, the CONNACK and one publish);
//! - the incoming path: the daemon's CPU time (user + system, from
//!   `/proc/<pid>/stat`) per message while an independent client floods
//!   400,000 device status and feedback messages, and the rate it keeps up.
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
) -> (tokio::process::Child, Duration) {
    seen.lock().msgs.clear();
    let t0 = Instant::now();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_roomctl"))
        .args(["run", "-c", site.config.to_str().unwrap()])
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    loop {
        if let Some(at) = seen
            .lock()
            .msgs
            .iter()
            .find(|m| m.2 == "roomctl/room1/status" && m.3 == "online")
            .map(|m| m.0)
        {
            return (child, at.duration_since(t0));
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the daemon never came online"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
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

        // Start-up, five times.
        let mut startup = Vec::new();
        for _ in 0..5 {
            let (mut d, t) = start_daemon(&site, &seen).await;
            startup.push(t.as_secs_f64() * 1000.0);
            let _ = d.kill().await;
            // Its last will clears the retained online before the next.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let max = startup.iter().cloned().fold(0.0, f64::max);
        println!(
            "exec → online at a subscriber       median {:.1} ms, max {max:.1} ms (goal: exec → CONNACK ≤ 15 ms)",
            percentile(&mut startup, 0.5)
        );

        // The incoming path under a flood.
        let (d, _) = start_daemon(&site, &seen).await;
        let pid = d.id().unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let cpu0 = cpu_seconds(pid);
        let took = flood(broker.port(), FLOOD).await;
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
        println!(
            "CPU per incoming message            {:.2} µs over {received} of {FLOOD} messages received, sent at {:.0} msg/s (goal ≤ 1.5 µs)",
            cpu / received as f64 * 1e6,
            FLOOD as f64 / took.as_secs_f64()
        );
        drop(d);
        cancel.cancel();
    });
}
