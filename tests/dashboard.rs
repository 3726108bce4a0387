//! The dashboard in a real headless Chromium (via chromedriver): live
//! devices and feedback, start/stop, and recovery from a lost link to the
//! controller and from a lost broker.

use std::time::Duration;

use crate::common::webdriver::{self, Browser};
use crate::common::*;
use roomctl::broker::Mosquitto;
use roomctl::room::{Role, Room};
use roomctl::simulate;
use roomctl::web::{self, AppState};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

mod accounts;
mod brokers;
mod cards;
mod frontdesk;
mod logs;
mod media;
mod media_alsa;
mod outputs;
mod stats;
mod studio;
mod studio_forms;

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

/// Presses `room1/light`'s ON on the Channels table and waits for its
/// confirmation there.
async fn light_on_by_hand(br: &Browser) {
    br.click("#channels tr[data-channel='room1/light'] button[data-message='ON']")
        .await;
    br.wait_for(
        "light confirmed",
        "document.querySelector(\"#channels tr[data-channel='room1/light'] td.last\").textContent.startsWith('ON → OK')",
        T,
    )
    .await;
}

/// Uses an API token in the page, as the login page's "use an API token"
/// keeps it, and waits until the page knows who it is.
/// A browser `width` px wide on `site`'s dashboard, with the API token
/// `token`, on the tab `tab`.
async fn dashboard_at(site: &Site, token: &str, width: u32, tab: &str) -> Browser {
    let br = Browser::start().await;
    br.resize(width, 1000).await;
    br.goto(&format!("http://127.0.0.1:{}/", site.web_port))
        .await;
    use_token(&br, token).await;
    br.click(&format!("#tabs button[data-show={tab}]")).await;
    br
}

async fn use_token(br: &Browser, token: &str) {
    br.js(&format!(
        "localStorage.setItem('roomctl-token', '{token}'); location.reload(); return true;"
    ))
    .await;
    br.wait_for(
        "the page knows the token",
        "document.getElementById('who').textContent.startsWith('token ')",
        T,
    )
    .await;
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
    assert_eq!(
        br.js("return document.querySelector('#scenes tr[data-scene=intro] button').disabled")
            .await,
        true,
        "Start stays disabled while the controller is unreachable"
    );
    assert_ne!(br.text("#connection-state").await, "CONNECTED");
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
async fn dashboard_takes_an_api_token_from_the_login_page() {
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
    // Without the token, Start is not there at all; the panic stop is.
    br.wait_for(
        "not logged in",
        "document.getElementById('who').textContent.includes('not logged in')",
        T,
    )
    .await;
    let shown = "return [...document.querySelectorAll('#scenes button.start, #stop, #login-link')].map(b => b.offsetParent !== null);";
    assert_eq!(br.js(shown).await, serde_json::json!([true, true, false]));
    br.click("#login-link").await;
    br.wait_for("login page", "location.pathname === '/login'", T)
        .await;
    br.js("document.querySelector('details').open = true; document.getElementById('token').value = 'door-key'; return true;")
        .await;
    br.click("#use-token").await;
    br.wait_for(
        "back with the token",
        "location.pathname === '/' && document.getElementById('who').textContent === 'token web.token · operator'",
        T,
    )
    .await;
    br.wait_for(
        "scene list",
        "document.querySelectorAll('#scenes tbody tr').length === 1 && !document.body.classList.contains('link-down')",
        T,
    )
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

/// A scene an editor left a stub transition in.
const STUB: &str = r#"{"sceneId": "stub", "initialState": "a", "states": {
  "a": {"transitions": [{"goto": "a"}, {"type": "timeout", "delay": 5, "goto": "END"}]}}}"#;

/// A state machine: waits for the visitor's button (or gives up after 30 s).
const QUIZ: &str = r#"{"sceneId": "quiz", "initialState": "wait",
  "states": {
    "wait": {"onEnter": [{"topic": "room1/light", "message": "ON"}],
             "transitions": [
               {"type": "mqttMessage", "topic": "room1/button", "message": "pressed", "goto": "END"},
               {"type": "timeout", "delay": 30, "goto": "END"}]}}}"#;

/// Counts the cards whose "last known" tag is visible.
const STALE_TAGS: &str = "return [...document.querySelectorAll('main .card')].filter(c => { const t = c.querySelector('.stale-tag'); return t && t.offsetParent !== null; }).length";
const CARDS: &str = "return [...document.querySelectorAll('main .card')].filter(c => c.offsetParent !== null).length";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_never_shows_stale_truth_and_fits_a_phone() {
    if !browser_ok() {
        return;
    }
    init_logs();
    let primary = Mosquitto::start().await.unwrap();
    let backup = Mosquitto::start().await.unwrap();
    let site = site(
        &[primary.port(), backup.port()],
        &[
            ("intro.yaml", SHOW),
            ("quiz.json", QUIZ),
            (
                "broken.yaml",
                "name: broken\nactions: [{at: 1, topic: room1/x}]\n",
            ),
        ],
        "",
    );
    let text = std::fs::read_to_string(&site.config).unwrap();
    let r = roomctl::check::check(&site.config);
    let config = r.config.expect("the config loads");
    assert!(r.errors.to_string().contains("broken.yaml"), "{}", r.errors);
    assert!(text.contains("priority: 2"));
    let cancel = CancellationToken::new();
    let _fleet = simulate::start(&config, &r.scenes, &fast_fleet(), cancel.child_token());
    let room = Room::start(config, r.scenes, Role::Daemon);
    room.set_problems(r.errors.iter().map(ToString::to_string).collect());
    assert!(room.mqtt.wait_connected(Duration::from_secs(5)).await);

    // The tablet reaches the controller over a link the test can cut.
    let web_port = site.web_port;
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let inner_port = listener.local_addr().unwrap().port();
    let stop_web = CancellationToken::new();
    let st = AppState::new(room.clone(), stop_web.clone()).tick_every(Duration::from_millis(500));
    let server = tokio::spawn(web::serve(listener, st));
    let link = Proxy::start(web_port, inner_port).await;

    let br = Browser::start().await;
    br.resize(390, 844).await;
    br.goto(&format!("http://127.0.0.1:{web_port}/")).await;
    br.wait_for(
        "connected",
        "document.getElementById('connection-state').textContent === 'CONNECTED'",
        T,
    )
    .await;
    br.wait_for(
        "two devices online",
        "document.querySelectorAll('#devices li[data-presence=online]').length === 2",
        T,
    )
    .await;
    assert_eq!(br.js(STALE_TAGS).await, 0);
    let width = br.js("return window.innerWidth").await.as_u64().unwrap();
    assert!(width <= 400, "the window is {width} px wide");

    // Phone width: nothing sticks out, every Start button is whole.
    br.assert_fits("the page").await;
    let cut = br
        .js("return [...document.querySelectorAll('button.start')].filter(b => { const r = b.getBoundingClientRect(); return r.width === 0 || r.left < 0 || r.right > window.innerWidth; }).length")
        .await;
    assert_eq!(cut, 0, "Start buttons cut off at 390 px");
    assert_eq!(
        br.js("return document.querySelectorAll('button.start').length")
            .await,
        2
    );

    // Health reasons and the broken scene are spelt out, not in a tooltip.
    br.wait_for(
        "health issues listed",
        "!document.getElementById('health-issues').hidden && document.getElementById('health-issues').textContent.includes('broken.yaml')",
        T,
    )
    .await;
    assert!(br.text("#problems").await.contains("broken.yaml"));

    // A state machine shows its state and what it waits for, with the
    // time left, not a full progress bar.
    br.click("#scenes tr[data-scene=quiz] button.start").await;
    br.wait_for(
        "the quiz waits for the button",
        "document.getElementById('scene-waits').textContent.includes('room1/button')",
        T,
    )
    .await;
    let waits = br.text("#scene-waits").await;
    assert!(
        waits.contains("timeout 30s") && waits.contains("in "),
        "{waits}"
    );
    assert!(br.text("#current-scene").await.contains("state wait"));
    assert_eq!(
        br.js("return document.getElementById('progress').hidden")
            .await,
        true
    );
    let left = |w: &str| -> f64 {
        let s = w.rsplit("in ").next().unwrap();
        s.split(' ').next().unwrap().parse().unwrap()
    };
    let first = left(&waits);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let later = left(&br.text("#scene-waits").await);
    assert!(later < first, "the countdown moves: {first} then {later}");

    // The link to the controller goes silent (the socket stays open): the
    // page notices from the missing ticks and shows only "last known".
    link.pause();
    br.wait_for(
        "stale marking",
        "document.body.classList.contains('link-down')",
        T,
    )
    .await;
    assert_eq!(br.js(STALE_TAGS).await, br.js(CARDS).await);
    assert!(
        !br.js("return document.getElementById('link-banner').hidden")
            .await
            .as_bool()
            .unwrap()
    );
    assert_ne!(br.text("#connection-state").await, "CONNECTED");
    assert!(
        br.text("#connection-broker")
            .await
            .starts_with("last known: CONNECTED")
    );
    assert_eq!(
        br.js("return document.querySelectorAll('[data-presence=online]').length")
            .await,
        0,
        "a device shown online while nothing is known"
    );
    assert!(br.text("#devices").await.contains("last known online"));
    assert!(
        br.text("#current-scene")
            .await
            .starts_with("last known: quiz")
    );
    assert_eq!(
        br.js("return [...document.querySelectorAll('button.start')].every(b => b.disabled)")
            .await,
        true,
        "Start must be disabled without a link"
    );
    assert_ne!(br.text("#health").await, "healthy");
    br.assert_fits("stale devices at 390 px").await;
    if let Some(dir) = std::env::var_os("ROOMCTL_SCREENSHOT_DIR") {
        br.screenshot(&std::path::Path::new(&dir).join("dashboard-stale-390.png"))
            .await;
    }

    // The link comes back: current again, by itself.
    link.resume();
    br.wait_for(
        "link back",
        "!document.body.classList.contains('link-down')",
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(br.js(STALE_TAGS).await, 0);
    assert_eq!(br.text("#connection-state").await, "CONNECTED");

    // The visitor presses the button: the scene ends.
    raw_publish(
        primary.port(),
        &[("room1/button", b"pressed".to_vec(), false)],
    )
    .await;
    br.wait_for(
        "idle",
        "document.getElementById('current-scene').textContent === 'idle'",
        T,
    )
    .await;

    // The primary broker dies: a failover is a visible change.
    assert!(
        br.js("return document.getElementById('failover-banner').hidden")
            .await
            .as_bool()
            .unwrap()
    );
    drop(primary);
    br.wait_for(
        "failover banner",
        "!document.getElementById('failover-banner').hidden",
        Duration::from_secs(20),
    )
    .await;
    let banner = br.text("#failover-banner").await;
    assert!(
        banner.contains("backup broker") && banner.contains(&backup.port().to_string()),
        "{banner}"
    );
    assert_eq!(
        br.js("return document.getElementById('connection-state').className")
            .await,
        "badge warn"
    );
    if let Some(dir) = std::env::var_os("ROOMCTL_SCREENSHOT_DIR") {
        br.screenshot(&std::path::Path::new(&dir).join("dashboard-failover-390.png"))
            .await;
    }

    br.quit().await;
    drop(link);
    stop_web.cancel();
    let _ = server.await;
    room.shutdown(Role::Daemon).await;
    cancel.cancel();
}
