//! The Media tab in Chromium: a real WAV and a file that does not decode
//! uploaded together with the file picker (the one kept with its length,
//! the other refused with the reason), the scene that named the missing
//! sound sees it on its timeline at its real length, it plays on the Pi,
//! and deleting a file a scene uses is refused with the scene named. On a
//! phone, a tablet and a desktop.

use super::*;

const NEWSHOW: &str =
    "name: newshow\nactions:\n  - { at: 0, topic: room1/audio, message: 'PLAY:fresh.wav' }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sounds_are_uploaded_checked_played_and_kept_while_used() {
    if !browser_ok() {
        return;
    }
    init_logs();
    let port = roomctl::broker::free_port().unwrap();
    let site = site(
        &[port],
        &[
            ("intro.yaml", include_str!("../../scenes/intro.yaml")),
            ("newshow.yaml", NEWSHOW),
        ],
        "",
    );
    site.set_web_token_as("media-key", "technician");
    let media = site.dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    std::fs::copy("config/media/bg.wav", media.join("bg.wav")).unwrap();
    let _broker = Mosquitto::start_on(port).await.unwrap();
    let r = roomctl::check::check(&site.config);
    let room = Room::start(r.config.unwrap(), r.scenes, Role::Daemon);
    let (stop_web, server) = serve(&room, site.web_port).await;

    // The files on the technician's tablet.
    let tablet = tempfile::tempdir().unwrap();
    let wav = tablet.path().join("fresh.wav");
    std::fs::write(&wav, roomctl::testkit::sine_wav(2.0, 440.0, 0.3)).unwrap();
    let junk = tablet.path().join("junk.mp3");
    std::fs::write(&junk, b"MZ\x90\0 this is a program, not a song").unwrap();

    let br = dashboard_at(&site, "media-key", 1280, "media").await;
    br.wait_for(
        "the library, with the missing sound",
        "document.querySelector('#media-files tr[data-file=\"bg.wav\"]') !== null && document.querySelector('#media-missing li[data-missing=\"fresh.wav\"]') !== null",
        T,
    )
    .await;
    assert!(
        br.text("#media-files tr[data-file=\"bg.wav\"]")
            .await
            .contains("intro")
    );

    br.fill(
        "#media-pick",
        &format!("{}\n{}", wav.display(), junk.display()),
    )
    .await;
    br.wait_for(
        "one kept, one refused",
        "document.querySelector('#media-uploads li[data-file=\"fresh.wav\"][data-result=kept]') !== null && document.querySelector('#media-uploads li[data-file=\"junk.mp3\"][data-result=refused]') !== null",
        T,
    )
    .await;
    let refused = br.text("#media-uploads li[data-file=\"junk.mp3\"]").await;
    assert!(refused.contains("does not decode as a sound"), "{refused}");
    br.wait_for(
        "the new sound listed at its length, used by its scene, nothing missing",
        "(() => { const r = document.querySelector('#media-files tr[data-file=\"fresh.wav\"]'); return r && r.textContent.includes('2.0 s') && r.textContent.includes('newshow') && document.getElementById('media-missing').hidden; })()",
        T,
    )
    .await;
    assert!(
        std::fs::read_dir(&media).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("junk"))
    );
    for w in [390, 820, 1280] {
        br.resize(w, 1000).await;
        br.wait_for("relayout", "true", T).await;
        br.assert_fits(&format!("the media library at {w} px"))
            .await;
        br.snapshot(&format!("media-{w}")).await;
    }

    // Played on the Pi (the real audio player).
    let mut events = room.events.subscribe();
    br.click("#media-files tr[data-file=\"fresh.wav\"] button[title^='Play it on the Pi']")
        .await;
    eventually(T, "fresh.wav playing on the Pi", || {
        std::iter::from_fn(|| events.try_recv().ok()).any(|e| {
            matches!(e, roomctl::events::Event::Media(m) if m.event == "started" && m.file.as_deref() == Some("fresh.wav"))
        })
    })
    .await;

    // In use: not deleted, and the scene is named.
    br.js("window.confirm = () => true; return true;").await;
    br.click("#media-files tr[data-file=\"bg.wav\"] button[title^='Used by']")
        .await;
    br.wait_for(
        "the refusal naming the scene",
        "document.getElementById('media-uploads').textContent.includes('bg.wav: not deleted: `bg.wav` is used by intro')",
        T,
    )
    .await;
    assert!(media.join("bg.wav").exists());

    // The scene's timeline draws it at its real length.
    br.click("#tabs button[data-show=studio]").await;
    br.wait_for(
        "the studio's files",
        "document.querySelectorAll('#studio-file option').length > 1",
        T,
    )
    .await;
    br.js("studioOpen('newshow.yaml'); return true;").await;
    br.wait_for(
        "the sound on the timeline, 2 s long",
        "studio.view && studio.view.timelines && studio.view.timelines[0].lanes.some(l => l.kind === 'audio' && l.marks[0].len === 2)",
        T,
    )
    .await;

    br.quit().await;
    stop_web.cancel();
    let _ = server.await;
    room.shutdown(Role::Daemon).await;
}
