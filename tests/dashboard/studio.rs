//! The scene studio in Chromium: a new state-machine scene made from a
//! template with only the studio, a typo flagged at its line and refused
//! on save, a valid save with its graph and timeline, a preview that sends
//! nothing, run for real against
//! simulated boards with every cue confirmed, and a revert.

use super::*;
use roomctl::events::{Event, Outcome, SceneEvent};

/// The editor's text, changed by `js` (a JavaScript expression on `t`).
async fn edit(br: &Browser, js: &str) {
    br.js(&format!(
        "const t = studio.cm.getValue(); studio.cm.setValue({js}); return true;"
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_scene_is_made_checked_saved_drawn_run_and_reverted_in_the_studio() {
    if !browser_ok() {
        return;
    }
    init_logs();
    let port = roomctl::broker::free_port().unwrap();
    let site = site(&[port], &[("intro.yaml", SHOW)], "");
    site.set_web_token_as("studio-key", "technician");
    let _broker = Mosquitto::start_on(port).await.unwrap();
    let (room, _fleet, cancel) = room_with_fleet(&site).await;
    let (stop_web, server) = serve(&room, site.web_port).await;

    let br = Browser::start().await;
    br.resize(1280, 1000).await;
    br.goto(&format!("http://127.0.0.1:{}/", site.web_port))
        .await;
    use_token(&br, "studio-key").await;
    br.click("#tabs button[data-show=studio]").await;
    br.wait_for(
        "the templates",
        "document.querySelectorAll('#studio-template option').length === 2",
        T,
    )
    .await;

    // A new state machine from the template: nothing written by the test.
    br.js("document.getElementById('studio-new-name').value = 'visit'; return true;")
        .await;
    br.click("#studio-new button[type=submit]").await;
    br.wait_for(
        "the new scene open, drawn and timed",
        "studio.file === 'visit.json' && document.querySelector('#studio-graph [data-state=waiting]') !== null && document.querySelector('#studio-timeline [data-state=intro] .lane.mqtt') !== null",
        T,
    )
    .await;
    // The channels the boards announce and the scenes use are offered,
    // with the messages each is sent.
    assert_eq!(
        br.js("return [studioHintList('{\"topic\": ').includes('room1/light'), studioHintList('{\"topic\": \"room1/light\", \"message\": ')];").await,
        serde_json::json!([true, ["OFF", "ON"]])
    );
    let disk = site.dir.path().join("scenes/visit.json");
    let template = std::fs::read_to_string(&disk).expect("the studio wrote the new scene");
    assert!(template.contains("\"sceneId\": \"visit\""), "{template}");
    assert!(
        room.scenes.scenes().get("visit").is_some(),
        "loaded at once"
    );

    // A typo in a goto: flagged while typing, at its line, with a hint.
    edit(
        &br,
        "t.replace('\"goto\": \"waiting\"', '\"goto\": \"waitng\"')",
    )
    .await;
    br.wait_for(
        "the typo flagged",
        "document.getElementById('studio-diagnostics').textContent.includes('did you mean `waiting`?') && document.querySelector('.CodeMirror-lint-marker-error') !== null",
        T,
    )
    .await;
    let typo_line = template
        .lines()
        .position(|l| l.contains("\"goto\": \"waiting\""))
        .unwrap()
        + 1;
    let shown = br.text("#studio-diagnostics li.error").await;
    assert!(shown.starts_with(&format!("{typo_line}:")), "{shown}");
    br.snapshot("studio-typo-1280").await;
    // Saving it is refused; the text stays in the editor, the disk unchanged.
    br.click("#studio-save").await;
    br.wait_for(
        "the refusal",
        "document.getElementById('studio-status').textContent.startsWith('Not saved')",
        T,
    )
    .await;
    assert_eq!(
        br.js("return studio.cm.getValue().includes('waitng');")
            .await,
        serde_json::json!(true)
    );
    assert_eq!(std::fs::read_to_string(&disk).unwrap(), template);

    // Fixed, and quicker: saved, drawn, timed.
    edit(
        &br,
        "t.replace('waitng', 'waiting').replace('\"delay\": 30', '\"delay\": 1')",
    )
    .await;
    br.wait_for(
        "clean again",
        "document.getElementById('studio-ok').textContent.startsWith('loads')",
        T,
    )
    .await;
    br.click("#studio-save").await;
    br.wait_for(
        "saved",
        "document.getElementById('studio-status').textContent.startsWith('Saved visit.json')",
        T,
    )
    .await;
    assert!(
        std::fs::read_to_string(&disk)
            .unwrap()
            .contains("\"delay\": 1")
    );
    let timeouts = br
        .text("#studio-timeline [data-state=waiting] .timeouts")
        .await;
    assert!(timeouts.contains("timeout 1s → END"), "{timeouts}");

    // A state renamed by clicking it in the picture: its gotos follow, in
    // the text (not saved until Save).
    br.js("window.prompt = () => 'wait_visitor'; return true;")
        .await;
    br.js("const b = document.querySelector('#studio-graph [data-state=waiting]').getBoundingClientRect(); document.getElementById('studio-graph').dispatchEvent(new MouseEvent('click', {clientX: b.left + 5, clientY: b.top + 5, bubbles: true})); return true;").await;
    br.wait_for(
        "the state renamed in the text and the picture",
        "studio.cm.getValue().includes('\"goto\": \"wait_visitor\"') && !studio.cm.getValue().includes('\"waiting\"') && document.querySelector('#studio-graph [data-state=wait_visitor]') !== null",
        T,
    )
    .await;
    edit(&br, "t.split('wait_visitor').join('waiting')").await;
    br.wait_for(
        "back to `waiting`",
        "document.querySelector('#studio-graph [data-state=waiting]') !== null && studio.view.ok",
        T,
    )
    .await;
    br.click("#studio-save").await;
    br.wait_for(
        "saved again",
        "document.getElementById('studio-status').textContent.startsWith('Saved visit.json')",
        T,
    )
    .await;

    // Preview: the scene runs here, nothing goes to the room.
    let mut quiet = room.events.subscribe();
    br.click("#studio-preview").await;
    br.wait_for(
        "the previewed cue, confirmed by simulation",
        "document.getElementById('studio-preview-log').textContent.includes('room1/light = ON') && document.getElementById('studio-preview-log').textContent.includes('confirmed (simulated)')",
        T,
    )
    .await;
    br.wait_for(
        "the graph following the preview into `waiting`",
        "document.querySelector('#studio-graph [data-state=waiting].current') !== null",
        T,
    )
    .await;
    br.click("#studio-preview-inputs button").await;
    br.wait_for(
        "the preview ending on the given button",
        "document.getElementById('studio-preview-log').textContent.includes('room1/visit_button = pressed (given by hand)') && document.getElementById('studio-preview-log').textContent.includes('the scene ends')",
        T,
    )
    .await;
    br.snapshot("studio-preview-1280").await;
    while let Ok(e) = quiet.try_recv() {
        assert!(
            !matches!(e, Event::Feedback(_) | Event::Scene(_)),
            "the preview reached the room: {e:?}"
        );
    }
    assert!(!room.scenes.is_running());

    // For real, against the simulated boards: every cue confirmed.
    let mut events = room.events.subscribe();
    br.wait_for(
        "Run for real enabled",
        "!document.getElementById('studio-run').disabled",
        T,
    )
    .await;
    br.click("#studio-run").await;
    let (mut confirmed, mut sent) = (0, 0);
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match events.recv().await {
                Ok(Event::Scene(SceneEvent::Action { scene, kind, .. }))
                    if scene == "visit" && kind == "mqtt" =>
                {
                    sent += 1
                }
                Ok(Event::Feedback(f)) if f.scene.as_deref() == Some("visit") => {
                    assert_eq!(f.result, Outcome::Ok, "{f:?}");
                    confirmed += 1;
                }
                Ok(Event::Scene(SceneEvent::Ended { scene, .. })) if scene == "visit" => break,
                Ok(_) => {}
                Err(e) => panic!("events: {e}"),
            }
        }
    })
    .await
    .expect("the scene did not end within 20 s");
    eventually(T, "every cue confirmed", || {
        while let Ok(e) = events.try_recv() {
            if let Event::Feedback(f) = e
                && f.scene.as_deref() == Some("visit")
            {
                assert_eq!(f.result, Outcome::Ok, "{f:?}");
                confirmed += 1;
            }
        }
        confirmed >= sent
    })
    .await;
    assert!(sent >= 1, "the scene sent its light cue");

    // Back to the template's version, from the history.
    br.wait_for(
        "two saves in the history",
        "document.querySelectorAll('#studio-history option').length >= 2",
        T,
    )
    .await;
    br.click("#studio-diff").await;
    br.wait_for(
        "the diff",
        "document.getElementById('studio-diff-text').textContent.includes('-        {\"type\": \"timeout\", \"delay\": 30')",
        T,
    )
    .await;
    br.js("window.confirm = () => true; return true;").await;
    br.click("#studio-revert").await;
    br.wait_for(
        "reverted",
        "document.getElementById('studio-status').textContent.startsWith('Reverted visit.json') && studio.cm.getValue().includes('\"delay\": 30')",
        T,
    )
    .await;
    assert_eq!(std::fs::read_to_string(&disk).unwrap(), template);

    for (w, name) in [(820, "studio-820"), (1280, "studio-1280")] {
        br.resize(w, 1100).await;
        br.wait_for("relayout", "true", T).await;
        br.assert_fits(&format!("the studio at {w} px")).await;
        br.snapshot(name).await;
    }
    br.quit().await;
    stop_web.cancel();
    let _ = server.await;
    cancel.cancel();
    room.shutdown(Role::Daemon).await;
}
