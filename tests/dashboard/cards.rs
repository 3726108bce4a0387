//! The dashboard with an API token, schedule, show log and manual-control
//! cards in Chromium, on a phone and a tablet.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_says_wrong_token_and_stop_needs_none() {
    if !browser_ok() {
        return;
    }
    init_logs();
    let port = roomctl::broker::free_port().unwrap();
    let site = site(&[port], &[("intro.yaml", SHOW), ("stub.json", STUB)], "");
    site.set_web_token_as("door-key", "technician");
    site.add_command(
        "light_off",
        r#"[{"topic": "room1/light", "message": "OFF", "timestamp": 0}]"#,
    );
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    let mut events = room.events.subscribe();
    let (stop_web, server) = serve(&room, site.web_port).await;

    let br = Browser::start().await;
    br.goto(&format!("http://127.0.0.1:{}/", site.web_port))
        .await;
    br.wait_for(
        "scene list",
        "document.querySelectorAll('#scenes tbody tr').length === 2 && !document.body.classList.contains('link-down')",
        T,
    )
    .await;
    // A transition without `type` is listed beside its scene.
    let warn = br.text("#scenes tr[data-scene=stub] .scene-warnings").await;
    assert!(warn.contains("transition without `type`"), "{warn}");
    // The manual-control panel lists the command files.
    assert!(br.text("#commands").await.contains("light_off"));
    br.js("localStorage.setItem('roomctl-token', 'not-the-key'); location.reload(); return true;")
        .await;
    br.wait_for(
        "refusal",
        "document.getElementById('who').textContent.startsWith('wrong token · not logged in')",
        T,
    )
    .await;
    // The refused token is dropped: the page reads again, as anyone.
    br.wait_for(
        "scene list again",
        "document.querySelectorAll('#scenes tbody tr').length === 2 && !document.body.classList.contains('link-down')",
        T,
    )
    .await;
    // Not allowed to start: no Start button; the panic stop is there.
    let shown = "return [...document.querySelectorAll('#scenes button.start, #stop')].map(b => b.offsetParent !== null);";
    assert_eq!(br.js(shown).await, serde_json::json!([true, false, false]));
    assert!(!room.scenes.is_running());

    // The panic button works whatever the token says.
    start(&room, "intro").await;
    br.click("#stop").await;
    br.wait_for(
        "idle",
        "document.getElementById('current-scene').textContent === 'idle'",
        T,
    )
    .await;
    assert!(!room.scenes.is_running());

    // Reload with the right token reports what it loaded.
    super::use_token(&br, "door-key").await;
    br.click("#reload").await;
    br.wait_for(
        "reload report",
        "!document.getElementById('control-info').hidden",
        T,
    )
    .await;
    assert!(
        br.text("#control-info")
            .await
            .contains("Reloaded: 2 scene(s), 1 command file(s)")
    );

    // Run a command file from the panel.
    br.click("#commands tr[data-command=light_off] button.run")
        .await;
    let started = tokio::time::timeout(T, async {
        loop {
            if let Ok(roomctl::events::Event::Command(e)) = events.recv().await {
                break e;
            }
        }
    })
    .await
    .expect("the command ran");
    assert!(
        matches!(&started, roomctl::events::CommandEvent::Started { name, origin, .. }
            if name == "light_off" && matches!(origin, roomctl::origin::Origin::Dashboard { .. })),
        "{started:?}"
    );

    br.quit().await;
    stop_web.cancel();
    let _ = server.await;
    room.shutdown(Role::Daemon).await;
}

/// The schedule card (the next starts, pause and resume with the token, the
/// paused banner) and the show log card (records, the day's counts, the
/// CSV link); they fit a phone (390 px) and a tablet (screenshots in
/// ROOMCTL_SCREENSHOTS when set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_schedule_and_show_log_work_on_a_phone() {
    if !browser_ok() {
        return;
    }
    init_logs();
    let port = roomctl::broker::free_port().unwrap();
    let schedule = "state_dir: state\nschedule:\n  timezone: Europe/Bratislava\n  hours: { default: \"00:00-23:59\" }\n  shows:\n    - { every: 10m, from: \"00:00\", until: \"23:50\", scene: intro }\n";
    let site = site(&[port], &[("intro.yaml", SHOW)], schedule);
    site.set_web_token("door-key");
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    let (stop_web, server) = serve(&room, site.web_port).await;

    let br = Browser::start().await;
    for (w, h, name) in [(390, 844, "phone"), (820, 1180, "tablet")] {
        br.resize(w, h).await;
        br.goto(&format!("http://127.0.0.1:{}/", site.web_port))
            .await;
        br.wait_for(
            "schedule card",
            "!document.getElementById('schedule-card').hidden && document.querySelectorAll('#schedule-next li[data-planned]').length === 6",
            T,
        )
        .await;
        let first = br.text("#schedule-next li").await;
        assert!(first.contains("intro") && first.contains("show"), "{first}");
        assert!(
            br.text("#schedule-today")
                .await
                .contains("Europe/Bratislava")
        );
        // Nothing sticks out sideways.
        br.assert_fits(name).await;
        br.snapshot(&format!("dashboard-schedule-{name}")).await;
    }

    super::use_token(&br, "door-key").await;
    br.wait_for(
        "schedule card",
        "!document.getElementById('schedule-card').hidden",
        T,
    )
    .await;
    br.click("#schedule-toggle").await;
    br.wait_for(
        "paused banner",
        "!document.getElementById('schedule-paused').hidden && document.getElementById('schedule-toggle').textContent === 'Resume'",
        T,
    )
    .await;
    assert!(room.schedule.as_ref().unwrap().paused());
    br.click("#schedule-toggle").await;
    br.wait_for(
        "resumed",
        "document.getElementById('schedule-paused').hidden && document.getElementById('schedule-toggle').textContent === 'Pause'",
        T,
    )
    .await;
    assert!(!room.schedule.as_ref().unwrap().paused());

    // The show log card: a start and its origin, the day's counts.
    room.apply(
        roomctl::origin::Origin::dashboard(
            "the front desk",
            roomctl::access::Actor::Anonymous {
                role: roomctl::access::Role::Admin,
            },
        ),
        roomctl::room::Command::StartScene("intro".into()),
    )
    .await
    .unwrap();
    br.wait_for(
        "show log record",
        "[...document.querySelectorAll('#log li')].some(li => li.textContent.includes('Scene intro started by dashboard (the front desk)'))",
        Duration::from_secs(15),
    )
    .await;
    assert!(br.text("#log-today").await.contains("1 show(s) started"));
    // The Show log tab shows only the log and its statistics (one thing at
    // a time on a phone; the daemon's log is the technician's).
    br.click("#tabs button[data-show=log]").await;
    let visible = br
        .js("return [...document.querySelectorAll('main .card')].filter(c => c.offsetParent !== null).map(c => c.id);")
        .await;
    assert_eq!(visible, serde_json::json!(["log-card", "stats-card"]));
    br.click("#tabs button[data-show=schedule]").await;
    let visible = br
        .js("return [...document.querySelectorAll('main .card')].filter(c => c.offsetParent !== null).map(c => c.id);")
        .await;
    assert_eq!(visible, serde_json::json!(["schedule-card"]));
    br.click("#tabs button[data-show=all]").await;
    let href = br
        .js("return document.getElementById('log-csv').getAttribute('href');")
        .await;
    assert_eq!(href, "/api/log.csv");
    br.resize(390, 844).await;
    br.assert_fits("log card").await;
    br.js("document.getElementById('log-card').scrollIntoView(); return true;")
        .await;
    br.snapshot("dashboard-log-phone").await;

    br.quit().await;
    stop_web.cancel();
    let _ = server.await;
    room.shutdown(Role::Daemon).await;
}

/// Manual control on a phone: a channel's message button and the free-text
/// field send with the token and show the confirmed result; a device's
/// Test shows the reply time; the volume slider and the media stops work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_manual_control_on_a_phone() {
    if !browser_ok() {
        return;
    }
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let site = site(&[b.port()], &[("intro.yaml", SHOW)], "");
    site.set_web_token_as("door-key", "technician");
    let (room, fleet, cancel) = room_with_fleet(&site).await;
    let (stop_web, server) = serve(&room, site.web_port).await;

    let br = Browser::start().await;
    br.resize(390, 844).await;
    br.goto(&format!("http://127.0.0.1:{}/", site.web_port))
        .await;
    super::use_token(&br, "door-key").await;
    br.wait_for(
        "channels with their boards",
        "document.querySelectorAll('#channels tbody tr').length === 2 && ![...document.querySelectorAll('#channels tbody tr')].some(r => r.textContent.includes('no board announced'))",
        Duration::from_secs(15),
    )
    .await;
    super::light_on_by_hand(&br).await;
    // Free text on the steam channel.
    br.js("document.querySelector(\"#channels tr[data-channel='room1/steam'] input.free\").value = 'PULSE'; return true;")
        .await;
    br.click("#channels tr[data-channel='room1/steam'] button.send-free")
        .await;
    br.wait_for(
        "free text confirmed",
        "document.querySelector(\"#channels tr[data-channel='room1/steam'] td.last\").textContent.startsWith('PULSE → OK')",
        T,
    )
    .await;
    assert!(
        fleet
            .received()
            .iter()
            .any(|r| r.topic == "room1/steam" && r.payload == "PULSE")
    );
    // A device test.
    br.click("#devices li button.test").await;
    br.wait_for(
        "test result",
        "document.getElementById('control-info').textContent.includes('OK in')",
        T,
    )
    .await;
    // Volume and stops.
    br.js("const v = document.getElementById('volume'); v.value = 40; v.dispatchEvent(new Event('change')); return true;")
        .await;
    br.wait_for(
        "volume set",
        "document.getElementById('control-info').textContent === 'Master volume 40 %'",
        T,
    )
    .await;
    br.click("#audio-stop").await;
    br.wait_for(
        "audio stopped",
        "document.getElementById('control-info').textContent === 'audio stopped'",
        T,
    )
    .await;
    for (w, h, name) in [(390, 844, "phone"), (820, 1180, "tablet")] {
        br.resize(w, h).await;
        br.assert_fits(name).await;
        br.js("document.getElementById('commands-card').scrollIntoView(); return true;")
            .await;
        br.snapshot(&format!("dashboard-control-{name}")).await;
    }
    br.quit().await;
    stop_web.cancel();
    let _ = server.await;
    room.shutdown(Role::Daemon).await;
    cancel.cancel();
}
