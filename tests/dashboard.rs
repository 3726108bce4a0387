//! The dashboard in a real headless Chromium (via chromedriver): live
//! devices and feedback, start/stop, and recovery from a lost link to the
//! controller and from a lost broker.

mod common;

use std::time::Duration;

use common::webdriver::{self, Browser};
use common::*;
use roomctl::app::{Role, Room};
use roomctl::broker::Mosquitto;
use roomctl::simulate;
use roomctl::web::{self, AppState};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const SHOW: &str = "name: intro\ndescription: Lights up, steam\nactions:\n  - { at: 0.0, topic: room1/light, message: 'ON' }\n  - { at: 0.5, topic: room1/steam, message: 'ON' }\nduration: 60\non_stop:\n  - { topic: room1/light, message: 'OFF' }\n";
const T: Duration = Duration::from_secs(10);

fn browser_ok() -> bool {
    if std::env::var_os("ROOMCTL_SKIP_BROWSER").is_some() {
        eprintln!("ROOMCTL_SKIP_BROWSER set: skipping the browser test");
        return false;
    }
    if let Err(e) = webdriver::available() {
        panic!("{e}; set ROOMCTL_SKIP_BROWSER=1 to skip browser tests deliberately");
    }
    true
}

/// Serves the dashboard on `port` until the returned token is cancelled.
async fn serve(
    room: &Room,
    port: u16,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let stop = CancellationToken::new();
    let st = AppState::new(room.clone(), stop.clone());
    (stop, tokio::spawn(web::serve(listener, st)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_the_room_controls_it_and_recovers_alone() {
    if !browser_ok() {
        return;
    }
    init_logs();
    let mut b = Mosquitto::start().await.unwrap();
    let broker_port = b.port();
    let site = site(&[broker_port], &[("intro.yaml", SHOW)], "");
    let (config, scenes) = site.load();
    let cancel = CancellationToken::new();
    let opts = fast_fleet();
    let _fleet = simulate::start(&config, &scenes, &opts, cancel.child_token());
    let room = Room::start(config, scenes, Role::Daemon);
    assert!(room.mqtt.wait_connected(Duration::from_secs(5)).await);
    let (stop_web, server) = serve(&room, site.web_port).await;
    let url = format!("http://127.0.0.1:{}/", site.web_port);

    let br = Browser::start().await;
    br.goto(&url).await;
    br.wait_for(
        "connection badge",
        "document.getElementById('connection-state').textContent === 'CONNECTED'",
        T,
    )
    .await;
    assert_eq!(br.text("#room-name").await, "room1");
    br.wait_for(
        "two devices online",
        "document.querySelectorAll('#devices li[data-presence=online]').length === 2",
        T,
    )
    .await;
    assert!(br.text("#devices").await.contains("esp32_01"));

    // Start from the dashboard; the live feedback log fills.
    br.click("#scenes tr[data-scene=intro] button.start").await;
    br.wait_for(
        "scene shown as running",
        "document.getElementById('current-scene').textContent.startsWith('intro')",
        T,
    )
    .await;
    br.wait_for(
        "two confirmations",
        "document.querySelectorAll('#feedback-log li[data-result=OK]').length >= 2",
        T,
    )
    .await;
    let log = br.text("#feedback-log").await;
    assert!(
        log.contains("room1/light = ON") && log.contains("room1/steam = ON"),
        "{log}"
    );
    assert!(room.scenes.is_running());
    // Start is disabled while a scene runs.
    assert_eq!(
        br.js("return document.querySelector('#scenes tr[data-scene=intro] button').disabled")
            .await,
        true
    );

    br.click("#stop").await;
    br.wait_for(
        "idle after stop",
        "document.getElementById('current-scene').textContent === 'idle'",
        T,
    )
    .await;
    assert!(!room.scenes.is_running());

    // The controller's web side goes away: the page says so...
    stop_web.cancel();
    server.await.unwrap().unwrap();
    br.wait_for(
        "link-lost banner",
        "!document.getElementById('link-banner').hidden",
        T,
    )
    .await;
    // ...and recovers alone when it is back.
    let (stop_web, server) = serve(&room, site.web_port).await;
    br.wait_for(
        "banner gone",
        "document.getElementById('link-banner').hidden",
        Duration::from_secs(20),
    )
    .await;

    // The broker dies: the connection panel shows it; it comes back alone.
    b.kill();
    br.wait_for(
        "connection loss shown",
        "document.getElementById('connection-state').textContent !== 'CONNECTED'",
        T,
    )
    .await;
    let shown = br.text("#connection-state").await;
    assert!(
        ["RECONNECTING", "FAILED", "CONNECTING"].contains(&shown.as_str()),
        "{shown}"
    );
    b = Mosquitto::start_on(broker_port).await.unwrap();
    br.wait_for(
        "reconnected",
        "document.getElementById('connection-state').textContent === 'CONNECTED'",
        Duration::from_secs(20),
    )
    .await;
    br.wait_for(
        "devices back",
        "document.querySelectorAll('#devices li[data-presence=online]').length === 2",
        Duration::from_secs(20),
    )
    .await;

    if let Some(dir) = std::env::var_os("ROOMCTL_SCREENSHOT_DIR") {
        br.screenshot(&std::path::Path::new(&dir).join("dashboard.png"))
            .await;
    }
    br.quit().await;
    stop_web.cancel();
    let _ = server.await;
    room.shutdown(Role::Daemon).await;
    drop(b);
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_asks_for_the_token_and_uses_it() {
    if !browser_ok() {
        return;
    }
    init_logs();
    let port = roomctl::broker::free_port().unwrap();
    let site = site(&[port], &[("intro.yaml", SHOW)], "");
    site.set_web_token("door-key");
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    let (stop_web, server) = serve(&room, site.web_port).await;

    let br = Browser::start().await;
    br.goto(&format!("http://127.0.0.1:{}/", site.web_port))
        .await;
    br.wait_for(
        "scene list",
        "document.querySelectorAll('#scenes tbody tr').length === 1",
        T,
    )
    .await;
    br.click("#scenes tr[data-scene=intro] button.start").await;
    br.wait_for(
        "token request",
        "!document.getElementById('control-error').hidden",
        T,
    )
    .await;
    assert!(br.text("#control-error").await.contains("token is needed"));
    assert!(!room.scenes.is_running());

    br.js("document.getElementById('token').value = 'door-key'; return true;")
        .await;
    br.click("#scenes tr[data-scene=intro] button.start").await;
    br.wait_for(
        "running",
        "document.getElementById('current-scene').textContent.startsWith('intro')",
        T,
    )
    .await;
    assert!(room.scenes.is_running());
    br.click("#stop").await;
    br.wait_for(
        "idle",
        "document.getElementById('current-scene').textContent === 'idle'",
        T,
    )
    .await;

    br.quit().await;
    stop_web.cancel();
    let _ = server.await;
    room.shutdown(Role::Daemon).await;
}
