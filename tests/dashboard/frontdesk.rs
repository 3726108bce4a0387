//! The front desk's bar in Chromium, on every tab at a phone's, a
//! tablet's and a desktop's width: the room in one sentence naming the
//! board and its channel, the panic button always on screen, "Start next
//! show", the E-stop latched and reset, each action's result as a toast,
//! and no identifier broken across lines (measured from the text's boxes).

use super::*;

/// Table cells and the verdict whose text is one word (an identifier:
/// `room1/light`, `esp32_08`, `START`) but laid out on more than one line.
const BROKEN: &str = r#"
return [...document.querySelectorAll('main td, #verdict')].filter(e => e.offsetParent !== null).flatMap(e => {
  const out = [];
  const walk = document.createTreeWalker(e, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    for (const word of n.textContent.split(/\s+/).filter(w => w.length > 1)) {
      const i = n.textContent.indexOf(word);
      const r = document.createRange();
      r.setStart(n, i); r.setEnd(n, i + word.length);
      const tops = new Set([...r.getClientRects()].map(b => Math.round(b.top)));
      if (tops.size > 1) out.push(word);
    }
  }
  return out;
});
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_desk_sees_a_verdict_and_the_panic_button_on_every_tab() {
    if !browser_ok() {
        return;
    }
    init_logs();
    let port = roomctl::broker::free_port().unwrap();
    let show = "name: showcase\ndescription: The showcase of the hall, with light and smoke\nactions:\n  - { at: 0, topic: room1/light, message: 'ON' }\nduration: 90\n";
    let site = site(
        &[port],
        &[("showcase.yaml", show)],
        "devices:\n  known:\n    esp32_08:\n      channels: [room1/smoke]\n      safe: [{ topic: room1/smoke, message: 'OFF' }]\nfeedback: { timeout: 300ms }\n",
    );
    site.edit_config("feedback: { timeout: 1s }\n", "");
    site.set_web_token_as("desk-key", "admin");
    // A command file whose one step nobody answers.
    site.add_command(
        "fog_off",
        r#"[{"topic": "room1/fog", "message": "OFF", "timestamp": 0}]"#,
    );
    let _broker = Mosquitto::start_on(port).await.unwrap();
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    assert!(room.mqtt.wait_subscribed(Duration::from_secs(5)).await);
    let (stop_web, server) = serve(&room, site.web_port).await;

    let br = dashboard_at(&site, "desk-key", 390, "room").await;
    br.wait_for(
        "the verdict naming the board and its channel",
        "document.getElementById('verdict').textContent === 'Needs attention: esp32_08 (room1/smoke) offline'",
        T,
    )
    .await;
    let tabs = [
        "all", "room", "control", "schedule", "log", "studio", "media", "users",
    ];
    for width in [390, 820, 1280] {
        br.resize(width, 900).await;
        for tab in tabs {
            br.click(&format!("#tabs button[data-show={tab}]")).await;
            br.js("window.scrollTo(0, document.body.scrollHeight); return true;")
                .await;
            br.wait_for(
                &format!("{tab} at {width} px: the verdict and the panic button on screen"),
                "(() => { const ok = (id) => { const r = document.getElementById(id).getBoundingClientRect(); return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight; }; return ok('verdict') && ok('stop'); })()",
                T,
            )
            .await;
            let broken = br.js(BROKEN).await;
            assert_eq!(
                broken,
                serde_json::json!([]),
                "{tab} at {width} px: broken across lines"
            );
            br.assert_fits(&format!("{tab} at {width} px")).await;
            br.js("window.scrollTo(0, 0); return true;").await;
            br.snapshot(&format!("frontdesk-{tab}-{width}")).await;
        }
    }

    // Start the next show from the bar; the result is a toast.
    br.resize(390, 900).await;
    br.click("#tabs button[data-show=log]").await;
    assert_eq!(br.text("#start-next").await, "Start next show (showcase)");
    br.click("#start-next").await;
    br.wait_for(
        "the show running, with its time left",
        "/^Needs attention: esp32_08 \\(room1\\/smoke\\) offline$/.test(document.getElementById('verdict').textContent) && document.getElementById('start-next').disabled && document.getElementById('start-next').title.startsWith('showcase is running')",
        T,
    )
    .await;
    assert!(br.text("#toasts").await.contains("Started showcase"));

    // The panic button: the show stops, and each board's result.
    br.click("#stop").await;
    br.wait_for(
        "the panic's result per board",
        "document.getElementById('toasts').textContent.includes('Stopped showcase: 0 of 1 boards confirmed; esp32_08 did not answer')",
        T,
    )
    .await;

    // The E-stop from a hardware button: latched on every tab; the stop's
    // result per board; reset by the technician with a confirmation.
    room.apply(
        roomctl::origin::Origin::trigger("room1/estop"),
        roomctl::room::Command::Estop,
    )
    .await
    .unwrap();
    br.wait_for(
        "E-stop latched, with its reset",
        "document.getElementById('verdict').textContent === 'E-stop latched' && !document.getElementById('estop-reset').hidden && document.getElementById('frontdesk').classList.contains('level-latched')",
        T,
    )
    .await;
    assert!(
        br.text("#verdict-reasons")
            .await
            .contains("E-stop latched at"),
        "the reasons say since when and by what"
    );
    assert!(
        br.js("return document.getElementById('start-next').disabled;")
            .await
            .as_bool()
            .unwrap()
    );
    br.snapshot("frontdesk-latched-390").await;
    br.js("window.confirm = () => true; return true;").await;
    br.click("#estop-reset").await;
    br.wait_for(
        "reset: shows can start again",
        "document.getElementById('toasts').textContent.includes('E-stop reset') && document.getElementById('estop-reset').hidden && !document.getElementById('start-next').disabled",
        T,
    )
    .await;
    assert!(room.estop.get().is_none());

    // A command file's run is summed up where it was started.
    br.click("#tabs button[data-show=control]").await;
    br.click("#commands tr[data-command=fog_off] button.run")
        .await;
    br.wait_for(
        "the command's summary",
        "document.getElementById('toasts').textContent.includes('Command fog_off: 1 of 1 step(s) sent · 0 confirmed · 1 failed: room1/fog TIMEOUT')",
        T,
    )
    .await;
    br.quit().await;
    stop_web.cancel();
    let _ = server.await;
    room.shutdown(Role::Daemon).await;
}
