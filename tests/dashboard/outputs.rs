//! The Outputs card in Chromium: a relay sent ON by hand goes pending and
//! then ON when its simulated board confirms, pushed over the event stream
//! with no reload; and unknown, with why, when the board is killed. On a
//! phone, a tablet and a desktop.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_shows_pending_then_on_then_unknown_when_its_board_dies() {
    if !browser_ok() {
        return;
    }
    init_logs();
    let port = roomctl::broker::free_port().unwrap();
    let site = site(&[port], &[("intro.yaml", SHOW)], "");
    site.set_web_token_as("desk-key", "technician");
    let _broker = Mosquitto::start_on(port).await.unwrap();
    let (room, fleet, cancel) = room_with_fleet(&site).await;
    let (stop_web, server) = serve(&room, site.web_port).await;

    let br = dashboard_at(&site, "desk-key", 820, "control").await;
    br.wait_for(
        "the outputs, unknown before any command",
        "document.querySelector('#outputs tr[data-channel=\"room1/light\"][data-state=unknown]') !== null",
        T,
    )
    .await;
    // Every state change the page saw, in order.
    br.js("window.seen = []; const put = setOutput; setOutput = o => { if (o.channel === 'room1/light') seen.push(o.state); put(o); }; return true;")
        .await;
    br.click("#channels tr[data-channel='room1/light'] button.send[data-message=ON]")
        .await;
    br.wait_for(
        "ON, confirmed by the board",
        "document.querySelector('#outputs tr[data-channel=\"room1/light\"][data-state=confirmed]') !== null && document.querySelector('#outputs tr[data-channel=\"room1/light\"]').textContent.includes('ON confirmed')",
        T,
    )
    .await;
    assert_eq!(
        br.js("return seen;").await,
        serde_json::json!(["pending", "confirmed"]),
        "pushed live: pending first"
    );
    for w in [390, 820, 1280] {
        br.resize(w, 1000).await;
        br.wait_for("relayout", "true", T).await;
        br.assert_fits(&format!("the outputs at {w} px")).await;
        br.snapshot(&format!("outputs-{w}")).await;
    }

    // The System card on the Room tab: the version and the disks.
    br.click("#tabs button[data-show=room]").await;
    br.wait_for(
        "the System card",
        "(document.querySelector('#system dd[data-row=version]') || {}).textContent?.startsWith('roomctl ') && document.querySelector('#system dd[data-row=\"state disk\"]').textContent.includes('free of')",
        T,
    )
    .await;
    br.snapshot("system-1280").await;
    br.click("#tabs button[data-show=control]").await;

    fleet.kill();
    br.wait_for(
        "unknown, its board offline",
        "(() => { const r = document.querySelector('#outputs tr[data-channel=\"room1/light\"]'); return r && r.dataset.state === 'unknown' && r.textContent.includes('offline') && r.textContent.includes('ON'); })()",
        Duration::from_secs(15),
    )
    .await;
    br.snapshot("outputs-unknown-1280").await;

    br.quit().await;
    stop_web.cancel();
    let _ = server.await;
    cancel.cancel();
    room.shutdown(Role::Daemon).await;
}
