//! The scene studio's forms in Chromium: a show shaped without typing a
//! line of it. A cue changed, added, moved to another state, retimed and
//! deleted; a state added; a transition deleted and two added. Each edit
//! lands in the text as one change (one undo takes it back), the file
//! stays JSON written one cue a line, and the saved scene is what the
//! forms said.

use super::*;
use roomctl::scene::Goto;

/// Waits until the editor's text passes `test` (a JavaScript expression
/// on `t`).
async fn text_is(br: &Browser, what: &str, test: &str) {
    br.wait_for(
        what,
        &format!("(() => {{ const t = studio.cm.getValue(); return {test}; }})()"),
        T,
    )
    .await;
}

/// Waits until the timeline is drawn for the editor's text (it cannot be
/// clicked before).
async fn fresh(br: &Browser) {
    br.wait_for(
        "the timeline drawn for the text",
        "studio.viewText === studio.cm.getValue() && !studioEl('studio-timeline').classList.contains('stale')",
        T,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_show_is_shaped_with_the_forms_alone_and_saved_as_they_said() {
    if !browser_ok() {
        return;
    }
    init_logs();
    let port = roomctl::broker::free_port().unwrap();
    let site = site(&[port], &[("intro.yaml", SHOW)], "");
    site.set_web_token_as("forms-key", "technician");
    let _broker = Mosquitto::start_on(port).await.unwrap();
    let (room, _fleet, cancel) = room_with_fleet(&site).await;
    let (stop_web, server) = serve(&room, site.web_port).await;

    let br = dashboard_at(&site, "forms-key", 1280, "studio").await;
    br.wait_for(
        "the templates",
        "document.querySelectorAll('#studio-template option').length === 2",
        T,
    )
    .await;
    br.fill("#studio-new-name", "shaped").await;
    br.click("#studio-new button[type=submit]").await;
    br.wait_for(
        "the new scene's timeline",
        "studio.file === 'shaped.json' && document.querySelector('#studio-timeline [data-state=intro] .lane.mqtt .cue') !== null",
        T,
    )
    .await;

    // A cue clicked on the timeline: its form, filled; another channel.
    fresh(&br).await;
    br.click("#studio-timeline [data-state=intro] .lane.mqtt .cue")
        .await;
    assert_eq!(
        br.js("return [studioEl('studio-cue-topic').value, studioEl('studio-cue-message').value, studioEl('studio-cue-part').value, studioEl('studio-cue-at').disabled];").await,
        serde_json::json!(["room1/light", "ON", "enter", true])
    );
    let before = br.js("return studio.cm.getValue();").await;
    br.fill("#studio-cue-topic", "room1/steam").await;
    br.click("#studio-cue-apply").await;
    text_is(
        &br,
        "the cue on the steam channel",
        r#"t.includes('{"action": "mqtt", "topic": "room1/steam", "message": "ON"}')"#,
    )
    .await;
    assert_eq!(
        br.js(
            "studio.cm.undo(); const back = studio.cm.getValue(); studio.cm.redo(); return back;"
        )
        .await,
        before,
        "one undo takes the edit back"
    );

    // A new state, and a cue in it at 1.5 s.
    br.js("window.prompt = () => 'finale'; window.confirm = () => true; return true;")
        .await;
    br.click("#studio-add-state").await;
    br.wait_for(
        "the new state on the timeline",
        "document.querySelector('#studio-timeline [data-state=finale] .add-cue') !== null",
        T,
    )
    .await;
    fresh(&br).await;
    br.click("#studio-timeline [data-state=finale] .add-cue")
        .await;
    br.fill("#studio-cue-at", "1.5").await;
    br.fill("#studio-cue-topic", "room1/light").await;
    br.fill("#studio-cue-message", "OFF").await;
    br.click("#studio-cue-apply").await;
    br.wait_for(
        "the new cue in the new state",
        "document.querySelector('#studio-timeline [data-state=finale] .lane.mqtt .cue') !== null",
        T,
    )
    .await;

    // The long wait goes; waiting leads to the finale after 1 s, and the
    // finale ends the scene after 3 s.
    fresh(&br).await;
    br.click("#studio-timeline [data-state=waiting] .way-delete[title='Delete timeout 30s → END']")
        .await;
    text_is(&br, "the 30 s timeout gone", "!t.includes('\"delay\": 30')").await;
    for (from, delay, goto) in [("waiting", "1", "finale"), ("finale", "3", "END")] {
        br.wait_for(
            "the view of the last edit",
            "studio.view.timelines.some(s => s.state === 'finale') && !studio.view.timelines.some(s => s.state === 'waiting' && s.transitions.some(w => w.label === 'timeout 30s → END')) && getComputedStyle(studioEl('studio-way-form')).display === 'none'",
            T,
        )
        .await;
        br.click("#studio-add-way").await;
        assert_eq!(
            br.js("return [...studioEl('studio-way-form').querySelectorAll('label')].filter(l => getComputedStyle(l).display !== 'none').map(l => l.firstChild.textContent.trim());").await,
            serde_json::json!(["from", "on", "after (s)", "go to"]),
            "a timeout asks for its delay, not a file or a topic"
        );
        br.click(&format!("#studio-way-from option[value='{from}']"))
            .await;
        br.click("#studio-way-type option[value=timeout]").await;
        br.fill("#studio-way-delay", delay).await;
        br.click(&format!("#studio-way-goto option[value='{goto}']"))
            .await;
        br.click("#studio-way-apply").await;
        text_is(
            &br,
            "the new transition",
            &format!(r#"t.includes('{{"type": "timeout", "delay": {delay}, "goto": "{goto}"}}')"#),
        )
        .await;
    }

    // The steam cue moves from the intro's entry to the finale at 0.5 s.
    br.wait_for(
        "the view of the transitions",
        "studio.view.timelines.some(s => s.state === 'finale' && s.transitions.length === 1)",
        T,
    )
    .await;
    fresh(&br).await;
    br.click("#studio-timeline [data-state=intro] .lane.mqtt .cue")
        .await;
    br.click("#studio-cue-state option[value=finale]").await;
    br.click("#studio-cue-part option[value=timeline]").await;
    br.fill("#studio-cue-at", "0.5").await;
    br.click("#studio-cue-apply").await;
    br.wait_for(
        "the steam cue in the finale, the intro without cues",
        "document.querySelector('#studio-timeline [data-state=finale] .lane .cue[title^=\"0.5s ON\"]') !== null && document.querySelector('#studio-timeline [data-state=intro] .cue') === null",
        T,
    )
    .await;
    br.snapshot("studio-forms-1280").await;

    // The light cue later, at 2 s; the steam cue deleted.
    fresh(&br).await;
    br.click("#studio-timeline [data-state=finale] .cue[title^='1.5s OFF']")
        .await;
    br.fill("#studio-cue-at", "2").await;
    br.click("#studio-cue-apply").await;
    br.wait_for(
        "the light cue at 2 s",
        "document.querySelector('#studio-timeline [data-state=finale] .cue[title^=\"2s OFF\"]') !== null",
        T,
    )
    .await;
    fresh(&br).await;
    br.click("#studio-timeline [data-state=finale] .cue[title^='0.5s ON']")
        .await;
    br.click("#studio-cue-delete").await;
    text_is(&br, "the steam cue gone", "!t.includes('room1/steam')").await;

    for w in [820, 1280] {
        br.resize(w, 1100).await;
        fresh(&br).await;
        br.click("#studio-timeline [data-state=finale] .cue").await;
        br.wait_for("the form", "!studioEl('studio-cue-form').hidden", T)
            .await;
        br.assert_fits(&format!("the studio's forms at {w} px"))
            .await;
        br.snapshot(&format!("studio-forms-{w}")).await;
        br.click("#studio-cue-cancel").await;
        assert_eq!(
            br.js("return getComputedStyle(studioEl('studio-cue-form')).display;")
                .await,
            "none",
            "the form closes"
        );
    }

    // Saved: the scene is what the forms said.
    br.wait_for(
        "it loads",
        "document.getElementById('studio-ok').textContent.startsWith('loads')",
        T,
    )
    .await;
    br.click("#studio-save").await;
    br.wait_for(
        "saved",
        "document.getElementById('studio-status').textContent.startsWith('Saved shaped.json')",
        T,
    )
    .await;
    let disk = std::fs::read_to_string(site.dir.path().join("scenes/shaped.json")).unwrap();
    serde_json::from_str::<serde_json::Value>(&disk).expect("still JSON");
    assert!(
        disk.contains("      \"timeline\": [\n        {\"at\": 2.0, \"action\": \"mqtt\", \"topic\": \"room1/light\", \"message\": \"OFF\"}\n      ],\n"),
        "one cue a line, like the rest of the file:\n{disk}"
    );
    let scenes = room.scenes.scenes();
    let scene = scenes.get("shaped").expect("loaded");
    assert!(scene.states["intro"].on_enter.is_empty());
    let finale = &scene.states["finale"];
    let cues: Vec<(f64, &str, &str)> = finale
        .timeline
        .iter()
        .flat_map(|c| {
            c.actions
                .iter()
                .map(move |a| (c.at.as_secs_f64(), a.topic.as_str(), a.message.as_str()))
        })
        .collect();
    assert_eq!(cues, [(2.0, "room1/light", "OFF")]);
    let gotos = |state: &str| -> Vec<String> {
        scene.states[state]
            .transitions
            .iter()
            .map(|t| match &t.goto {
                Goto::State(s) => s.clone(),
                Goto::End => "END".into(),
            })
            .collect()
    };
    assert_eq!(gotos("waiting"), ["END", "finale"]);
    assert_eq!(gotos("finale"), ["END"]);

    br.quit().await;
    stop_web.cancel();
    let _ = server.await;
    cancel.cancel();
    room.shutdown(Role::Daemon).await;
}
