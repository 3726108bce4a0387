//! What the benchmarks share: the real `roomctl run` binary on two real
//! Mosquittos, independent subscribers on both, cue arrivals and their
//! errors, RSS.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use roomctl::broker::Mosquitto;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::common;

/// The `p` quantile (0..1) of `v` (sorted in place).
pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// What the independent subscriber saw: every message with its arrival.
#[derive(Default)]
pub struct Seen {
    pub msgs: Vec<(std::time::Instant, u16, String, String)>,
}

/// An independent MQTT 3.1.1 subscriber (plain rumqttc, none of roomctl's
/// code) on `port`, recording (arrival, port, topic, payload).
pub async fn outside_subscriber(
    port: u16,
    filters: &[&str],
    seen: Arc<Mutex<Seen>>,
    cancel: CancellationToken,
) -> rumqttc::AsyncClient {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let mut opts = MqttOptions::new(format!("outside-{}", common::rand_id()), "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut el) = AsyncClient::new(opts, 100);
    for f in filters {
        client.subscribe(*f, QoS::AtLeastOnce).await.unwrap();
    }
    let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
    let mut subscribed_tx = Some(subscribed_tx);
    let mut subacks = 0;
    let n = filters.len();
    tokio::spawn(async move {
        loop {
            let ev = tokio::select! {
                _ = cancel.cancelled() => return,
                ev = el.poll() => ev,
            };
            match ev {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let at = std::time::Instant::now();
                    seen.lock().msgs.push((
                        at,
                        port,
                        p.topic.clone(),
                        String::from_utf8_lossy(&p.payload).into_owned(),
                    ));
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    subacks += 1;
                    if subacks == n {
                        if let Some(tx) = subscribed_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                }
                Ok(_) => {}
                // The broker was killed: this subscriber's job on it is done.
                Err(_) => return,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(5), subscribed_rx)
        .await
        .expect("outside subscriber: no SUBACK")
        .unwrap();
    client
}

/// `roomctl run` (the real binary) on a site; returns the child and the
/// `roomctl run` for `site` (the benchmarked binary) at `log` level, its
/// output discarded, killed when dropped; adjust before spawning.
pub fn roomctl_run(site: &common::Site, log: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_roomctl"));
    cmd.args(["run", "-c", site.config.to_str().unwrap()])
        .env("RUST_LOG", log)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// When the room's `online` reached `seen`'s subscriber; fails after 10 s.
pub async fn online_at(seen: &Mutex<Seen>) -> std::time::Instant {
    let t = Instant::now();
    loop {
        if let Some(m) = seen
            .lock()
            .msgs
            .iter()
            .find(|m| m.2 == "roomctl/room1/status" && m.3 == "online")
        {
            return m.0;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the daemon was not online within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// time from spawn to systemd's `READY=1` on a notify socket.
pub async fn daemon_until_ready(site: &common::Site) -> (tokio::process::Child, Duration) {
    let sock_path = site.dir.path().join("notify.sock");
    let sock = tokio::net::UnixDatagram::bind(&sock_path).unwrap();
    let spawned = Instant::now();
    let child = roomctl_run(site, "error")
        .env("NOTIFY_SOCKET", &sock_path)
        .spawn()
        .unwrap();
    let mut buf = vec![0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), sock.recv(&mut buf))
            .await
            .expect("no READY=1 within 10 s")
            .unwrap();
        if String::from_utf8_lossy(&buf[..n]).contains("READY=1") {
            return (child, spawned.elapsed());
        }
    }
}

pub fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024.0
}

/// A scene of `n` cues at 10 Hz on `bench/cue`, payload = cue number.
pub fn cue_scene(name: &str, n: usize) -> String {
    let mut s = format!("name: {name}\nactions:\n");
    for i in 0..n {
        s.push_str(&format!(
            "  - {{ at: {:.1}, topic: bench/cue, message: \"{i}\" }}\n",
            i as f64 * 0.1
        ));
    }
    s
}

/// Per cue number: the arrivals (over both brokers).
pub fn arrivals(seen: &Seen) -> std::collections::BTreeMap<usize, Vec<std::time::Instant>> {
    let mut by = std::collections::BTreeMap::<usize, Vec<std::time::Instant>>::new();
    for (at, _, topic, payload) in &seen.msgs {
        if topic == "bench/cue" {
            if let Ok(i) = payload.parse() {
                by.entry(i).or_default().push(*at);
            }
        }
    }
    by
}

/// Each cue's distance from its due time at the subscriber (ms): cue i is
/// due 100 ms × i after cue 0 arrived.
pub fn cue_errors(by: &std::collections::BTreeMap<usize, Vec<std::time::Instant>>) -> Vec<f64> {
    let Some(t0) = by.get(&0).map(|v| v[0]) else {
        return Vec::new();
    };
    by.iter()
        .map(|(i, v)| {
            let due = t0 + Duration::from_millis(*i as u64 * 100);
            let e = if v[0] >= due { v[0] - due } else { due - v[0] };
            e.as_secs_f64() * 1000.0
        })
        .collect()
}

/// The daemon on two brokers, outside subscribers on both, a scene of `n`
/// cues started over MQTT. Returns (daemon, brokers, seen, start time).
pub struct E2e {
    pub daemon: tokio::process::Child,
    pub primary: Mosquitto,
    pub _backup: Mosquitto,
    pub seen: Arc<Mutex<Seen>>,
    pub cancel: CancellationToken,
    pub ready: Duration,
    pub starter: rumqttc::AsyncClient,
    pub site: common::Site,
}

pub async fn e2e_setup(n: usize) -> E2e {
    e2e_setup_with(n, false).await
}

/// [`e2e_setup`], with `mqtt.connect: every_broker` if `every`.
pub async fn e2e_setup_with(n: usize, every: bool) -> E2e {
    let primary = Mosquitto::start().await.unwrap();
    let backup = Mosquitto::start().await.unwrap();
    let cancel = CancellationToken::new();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let filters = ["bench/#", "roomctl/room1/status"];
    let starter =
        outside_subscriber(primary.port(), &filters, seen.clone(), cancel.child_token()).await;
    let _ = outside_subscriber(backup.port(), &filters, seen.clone(), cancel.child_token()).await;
    let site = common::site(
        &[primary.port(), backup.port()],
        &[("show.yaml", &cue_scene("show", n))],
        "",
    );
    if every {
        common::every_broker(&site);
    }
    let (daemon, ready) = daemon_until_ready(&site).await;
    // Connected: its `online` birth message reached the outside.
    online_at(&seen).await;
    E2e {
        daemon,
        primary,
        _backup: backup,
        seen,
        cancel,
        ready,
        starter,
        site,
    }
}

impl E2e {
    pub async fn start_scene(&self) {
        self.starter
            .publish(
                "roomctl/room1/scene/start",
                rumqttc::QoS::AtLeastOnce,
                false,
                "show",
            )
            .await
            .unwrap();
    }

    pub async fn wait_cue(&self, i: usize, within: Duration) {
        let t = Instant::now();
        while !arrivals(&self.seen.lock()).contains_key(&i) {
            if t.elapsed() > within {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// The benchmarks' runtime: two workers, like a Pi's share of a room.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The first line of a benchmark's report: what it is and the build.
pub fn banner(what: &str) {
    println!(
        "roomctl {} {what} (build: {})",
        env!("CARGO_PKG_VERSION"),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
}
