//! People in the dashboard: the front desk logs in on a phone and runs a
//! show without seeing manual control; a technician logs in on a tablet and
//! works a channel by hand; an admin adds a user; the show log names them.

use super::*;
use roomctl::access::Role as Access;

/// Logs `user` in through the login page and waits for the dashboard.
async fn log_in(br: &Browser, port: u16, user: &str) {
    br.goto(&format!("http://127.0.0.1:{port}/login")).await;
    br.js(&format!(
        "document.getElementById('user').value = '{user}'; document.getElementById('password').value = '{}'; return true;",
        password_of(user)
    ))
    .await;
    br.click("#submit").await;
    br.wait_for(
        &format!("{user} logged in"),
        &format!(
            "location.pathname === '/' && document.getElementById('who').textContent.startsWith('{user} · ') && !document.body.classList.contains('link-down')"
        ),
        T,
    )
    .await;
}

/// Whether each element of `css` is shown (not hidden by the role).
const SHOWN: &str =
    "return [...document.querySelectorAll(arguments[0])].map(e => e.offsetParent !== null);";

async fn shown(br: &Browser, css: &str) -> serde_json::Value {
    br.js(&SHOWN.replace("arguments[0]", &format!("{css:?}")))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_desk_runs_shows_and_the_technician_works_by_hand() {
    if !browser_ok() {
        return;
    }
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let site = site(&[b.port()], &[("intro.yaml", SHOW)], "");
    site.add_user("desk", Access::Operator);
    site.add_user("tech", Access::Technician);
    site.add_user("boss", Access::Admin);
    let (room, _fleet, cancel) = room_with_fleet(&site).await;
    let (stop_web, server) = serve(&room, site.web_port).await;
    let br = Browser::start().await;

    // The front desk, on a phone: shows yes, manual control and users no.
    br.resize(390, 844).await;
    log_in(&br, site.web_port, "desk").await;
    assert_eq!(br.text("#who").await, "desk · operator");
    for (css, visible) in [
        ("#scenes button.start", true),
        ("#stop", true),
        ("#logout", true),
        ("#channels-part", false),
        ("#reload", false),
        ("#tabs button[data-show=users]", false),
    ] {
        assert_eq!(shown(&br, css).await, serde_json::json!([visible]), "{css}");
    }
    br.click("#scenes tr[data-scene=intro] button.start").await;
    br.wait_for(
        "running",
        "document.getElementById('current-scene').textContent.startsWith('intro')",
        T,
    )
    .await;
    br.click("#stop").await;
    br.wait_for(
        "idle",
        "document.getElementById('current-scene').textContent === 'idle'",
        T,
    )
    .await;
    br.assert_fits("the front desk's dashboard").await;
    br.snapshot("accounts-operator-390").await;
    br.click("#logout").await;
    br.wait_for(
        "logged out",
        "document.getElementById('who').textContent.startsWith('not logged in')",
        T,
    )
    .await;

    // The technician, on a tablet: a channel by hand, confirmed.
    br.resize(820, 1180).await;
    log_in(&br, site.web_port, "tech").await;
    br.click("#tabs button[data-show=control]").await;
    br.wait_for(
        "channels",
        "document.querySelector(\"#channels tr[data-channel='room1/light'] button[data-message='ON']\")?.offsetParent != null",
        T,
    )
    .await;
    super::light_on_by_hand(&br).await;
    assert_eq!(
        shown(&br, "#tabs button[data-show=users]").await,
        serde_json::json!([false])
    );
    br.assert_fits("the technician's control tab").await;
    br.snapshot("accounts-technician-820").await;

    // The show log names both, and filters by person.
    br.click("#tabs button[data-show=log]").await;
    br.wait_for(
        "both in the show log",
        "(() => { const t = document.getElementById('log').textContent; return t.includes('Scene intro started by desk (dashboard') && t.includes('desk (dashboard') && t.includes('tech (dashboard'); })()",
        Duration::from_secs(15),
    )
    .await;
    br.js("const w = document.getElementById('log-who'); w.value = 'tech'; w.dispatchEvent(new Event('change')); return true;")
        .await;
    br.wait_for(
        "only tech's records",
        "(() => { const li = [...document.querySelectorAll('#log li')]; return li.length > 0 && li.every(l => l.dataset.who === 'tech'); })()",
        T,
    )
    .await;

    // The admin adds a user from the Users tab, on a desktop.
    br.click("#logout").await;
    br.resize(1280, 900).await;
    log_in(&br, site.web_port, "boss").await;
    br.click("#tabs button[data-show=users]").await;
    br.wait_for(
        "the users",
        "document.querySelectorAll('#users tbody tr').length === 3",
        T,
    )
    .await;
    br.js("const f = document.getElementById('add-user'); f.name.value = 'guide'; f.role.value = 'viewer'; f.password.value = 'a guide password'; return true;")
        .await;
    br.click("#add-user button[type=submit]").await;
    br.wait_for(
        "the new user listed",
        "document.querySelector('#users tr[data-user=guide]') !== null",
        T,
    )
    .await;
    assert!(
        br.text("#users-result")
            .await
            .contains("guide added as viewer")
    );
    br.assert_fits("the users tab").await;
    br.snapshot("accounts-admin-1280").await;
    assert!(
        room.accounts
            .users()
            .iter()
            .any(|u| u.name == "guide" && u.role == Access::Viewer)
    );

    br.quit().await;
    stop_web.cancel();
    let _ = server.await;
    room.shutdown(Role::Daemon).await;
    cancel.cancel();
}
