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

/// A client whose connections come from `ip` (127.0.0.x: the loopback
/// answers them all, so one machine can play several addresses).
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(ip))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// Opens an event stream at `base` from `client` and reads its `hello`.
async fn open_stream(
    client: &reqwest::Client,
    base: &str,
) -> impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin {
    let r = client
        .get(format!("{base}/api/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: hello"));
    body
}

/// Whether a stream was closed by the server within `d`.
async fn closed_within(
    s: &mut (impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    d: Duration,
) -> bool {
    tokio::time::timeout(d, async { while let Some(Ok(_)) = s.next().await {} })
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_an_addresses_share_its_own_oldest_stream_is_dropped() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let site = site(&[b.port()], &[ONE_CUE], "");
    site.web_options("max_sse_clients: 8");
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::new(room.clone(), room.cancel_token());
    tokio::spawn(serve(listener, state));

    // Two from one address (its share of 8 is 2), one from another.
    let (a, other) = (client_from([127, 0, 0, 1]), client_from([127, 0, 0, 2]));
    let mut first = open_stream(&a, &base).await;
    let _second = open_stream(&a, &base).await;
    let mut desk = open_stream(&other, &base).await;
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
    // A third from the first address closes its own oldest, not the desk's.
    let _third = open_stream(&a, &base).await;
    assert!(
        closed_within(&mut first, Duration::from_secs(5)).await,
        "the oldest stream was not closed"
    );
    assert!(
        !closed_within(&mut desk, Duration::from_millis(500)).await,
        "another address's stream was closed"
    );
    assert_eq!(metric().await, 3.0);
    room.shutdown(Role::Daemon).await;
}

/// 200 event streams and 500 slow connections from one address leave a
/// second address's dashboard and Stop working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_address_leaves_the_others_their_dashboard_and_stop() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let site = site(&[b.port()], &[ONE_CUE], "");
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let state = AppState::new(room.clone(), room.cancel_token());
    tokio::spawn(serve(listener, state));

    let desk = client_from([127, 0, 0, 2]);
    let mut desk_stream = open_stream(&desk, &base).await;
    // The flood, from 127.0.0.1: event streams, then slow request heads.
    let flooder = client_from([127, 0, 0, 1]);
    let mut streams = Vec::new();
    for _ in 0..200 {
        if let Ok(r) = flooder.get(format!("{base}/api/events")).send().await {
            streams.push(r);
        }
    }
    let mut slow = Vec::new();
    for _ in 0..500 {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        if let Ok(mut c) = sock.connect(addr).await {
            let _ = tokio::io::AsyncWriteExt::write_all(&mut c, b"GET /api/status HTTP/1.1\r\nHo")
                .await;
            slow.push(c);
        }
    }
    assert!(slow.len() >= 400, "only {} slow connections", slow.len());
    // The desk's stream is still open, its status and Stop answer at once.
    assert!(
        !closed_within(&mut desk_stream, Duration::from_millis(500)).await,
        "the flood closed the desk's dashboard"
    );
    let r = desk.get(format!("{base}/api/status")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = desk
        .post(format!("{base}/api/scenes/stop"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "Stop — all off did not answer during the flood"
    );
    drop((streams, slow));
    room.shutdown(Role::Daemon).await;
}
