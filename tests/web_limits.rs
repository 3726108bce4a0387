//! The web side must not be able to starve the room of file descriptors:
//! tried from outside, with more idle connections than the daemon has
//! descriptors, as a slowloris client or a kiosk tablet reconnecting in a
//! loop would open.

use std::process::Stdio;
use std::time::Duration;

use crate::common::*;
use futures::StreamExt;
use roomctl::broker::Mosquitto;
use roomctl::room::{Role, Room};
use roomctl::web::{AppState, serve};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_roomctl");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_cannot_starve_the_room_of_descriptors() {
    init_logs();
    // A starved daemon makes steps wait instead of fail: bound the whole.
    tokio::time::timeout(Duration::from_secs(60), starve_attempt())
        .await
        .expect("the room was starved: a step never completed");
}

async fn starve_attempt() {
    let b = Mosquitto::start().await.unwrap();
    let port = b.port();
    let site = site(&[port], &[ONE_CUE], "");
    site.web_options("max_connections: 32, header_timeout: 1s");
    let cancel = CancellationToken::new();
    let (_o, mut seen) = observer(port, "roomctl/room1/status", &cancel).await;
    // 256 descriptors in all, as a small ulimit would give.
    let mut daemon = tokio::process::Command::new("prlimit")
        .args(["--nofile=256:256", BIN, "run", "-c"])
        .arg(&site.config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("prlimit (util-linux)");
    let got = collect_until(&mut seen, Duration::from_secs(10), |g| {
        g.iter().any(|m| text(m) == "online")
    })
    .await;
    assert!(!got.is_empty(), "daemon never came online");

    // More idle connections than the daemon has descriptors.
    let mut idle = Vec::new();
    for _ in 0..400 {
        let c = tokio::net::TcpStream::connect(("127.0.0.1", site.web_port));
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_millis(200), c).await {
            idle.push(s);
        }
    }
    assert!(idle.len() >= 300, "only {} connections opened", idle.len());

    // The broker restarts meanwhile: the daemon needs a descriptor to
    // reconnect.
    drop(b);
    let b = Mosquitto::start_on(port).await.unwrap();
    let (_o2, mut again) = observer(b.port(), "roomctl/room1/status", &cancel).await;
    let got = collect_until(&mut again, Duration::from_secs(10), |g| {
        g.iter().any(|m| text(m) == "online")
    })
    .await;
    assert!(
        !got.is_empty(),
        "the daemon could not reconnect to the broker"
    );

    // And the dashboard answers (at the latest once the idle connections
    // time out after web.header_timeout).
    let url = format!("http://127.0.0.1:{}/api/status", site.web_port);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Ok(r) = client.get(&url).send().await
            && r.status() == 200
        {
            break r.json::<serde_json::Value>().await.unwrap();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "/api/status never answered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status["connection"]["state"], "CONNECTED");
    drop(idle);
    let _ = daemon.start_kill();
    let _ = daemon.wait().await;
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oldest_event_stream_is_dropped_past_the_cap() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let site = site(&[b.port()], &[ONE_CUE], "");
    site.web_options("max_sse_clients: 3");
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::new(room.clone(), room.cancel_token());
    tokio::spawn(serve(listener, state));

    // Opens an event stream and reads its `hello`.
    let open = || async {
        let r = reqwest::get(format!("{base}/api/events")).await.unwrap();
        assert_eq!(r.status(), 200);
        let mut body = r.bytes_stream();
        let first = body.next().await.unwrap().unwrap();
        assert!(String::from_utf8_lossy(&first).contains("event: hello"));
        body
    };
    let mut first = open().await;
    let _second = open().await;
    let _third = open().await;
    let metric = || async {
        let m = reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        m.lines()
            .find(|l| l.starts_with("roomctl_web_sse_clients"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap()
    };
    assert_eq!(metric().await, 3.0);
    // A fourth: the first is closed.
    let _fourth = open().await;
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = first.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the oldest stream was not closed");
    assert_eq!(metric().await, 3.0);
    room.shutdown(Role::Daemon).await;
}
