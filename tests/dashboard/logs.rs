//! The daemon's live log in Chromium: a cue no board answers is a TIMEOUT
//! line, found with the target and text filters; a flood of lines arrives
//! as a count, not line by line; pause holds the view.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_line_is_found_with_its_filter_and_a_flood_is_counted() {
    if !browser_ok() {
        return;
    }
    init_logs();
    let port = roomctl::broker::free_port().unwrap();
    // The attic's light has no board: its cue times out.
    let show =
        "name: attic\nactions:\n  - { at: 0, topic: attic/light, message: 'ON' }\nduration: 30\n";
    let site = site(&[port], &[("attic.yaml", show)], "");
    site.set_web_token_as("log-key", "technician");
    let _broker = Mosquitto::start_on(port).await.unwrap();
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    assert!(room.mqtt.wait_subscribed(Duration::from_secs(5)).await);
    let (stop_web, server) = serve(&room, site.web_port).await;

    let br = dashboard_at(&site, "log-key", 820, "log").await;
    br.fill("#dlog-target", "mqtt_feedback").await;
    br.fill("#dlog-q", "attic/light").await;
    br.js("document.getElementById('dlog-q').dispatchEvent(new Event('change')); return true;")
        .await;
    start(&room, "attic").await;
    br.wait_for(
        "the TIMEOUT line of the attic's light",
        "[...document.querySelectorAll('#dlog li.lv-WARN')].some(l => l.textContent.includes('TIMEOUT') && l.textContent.includes('attic/light'))",
        T,
    )
    .await;
    let shown = br.text("#dlog").await;
    assert!(
        !shown.contains("room1"),
        "only what the filter asks for: {shown}"
    );
    br.snapshot("daemon-log-820").await;

    // A flood: a count, not three thousand lines.
    br.fill("#dlog-target", "").await;
    br.fill("#dlog-q", "flood-marker").await;
    br.js("document.getElementById('dlog-q').dispatchEvent(new Event('change')); return true;")
        .await;
    br.wait_for(
        "the list cleared",
        "document.querySelectorAll('#dlog li').length === 0",
        T,
    )
    .await;
    br.click("#dlog-pause").await;
    br.wait_for("no read under way", "dlog.paused && !dlog.busy", T)
        .await;
    for i in 0..3000 {
        tracing::warn!(target: "flood", "flood-marker {i}");
    }
    br.click("#dlog-pause").await;
    br.wait_for(
        "the flood summarised",
        "(() => { const s = document.querySelector('#dlog li.skipped'); const m = s && s.textContent.match(/… (\\d+) more lines/); return !!m && Number(m[1]) >= 2800; })()",
        T,
    )
    .await;
    let rows: usize = br
        .js("return document.querySelectorAll('#dlog li').length;")
        .await
        .as_u64()
        .unwrap() as usize;
    assert_eq!(rows, 201, "the summary and the newest 200 lines");
    assert!(br.text("#dlog").await.contains("flood-marker 2999"));
    br.quit().await;
    stop_web.cancel();
    let _ = server.await;
    room.shutdown(Role::Daemon).await;
}
