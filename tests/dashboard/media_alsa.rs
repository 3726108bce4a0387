//! A sound previewed from the Media tab comes out of the Pi's speakers:
//! Chromium presses "Play it on the Pi" and the room's real audio player
//! (rodio, cpal, ALSA) writes the tone into an ALSA file sink, read back
//! here. ALSA reads its config once per process, so this runs in a fresh
//! test process with its own HOME (see `common::alsa`).

use super::*;
use crate::common::alsa;
use std::sync::atomic::Ordering;

#[test]
fn a_preview_from_the_browser_plays_through_the_alsa_file_sink() {
    if !browser_ok() {
        return;
    }
    alsa::in_a_fresh_process("dashboard::media_alsa::preview_in_a_fresh_process");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "runs when re-executed by a_preview_from_the_browser_plays_through_the_alsa_file_sink"]
async fn preview_in_a_fresh_process() {
    if !alsa::is_child() {
        return;
    }
    init_logs();
    let capture = alsa::file_sink();
    let port = roomctl::broker::free_port().unwrap();
    let site = site(&[port], &[("intro.yaml", SHOW)], "");
    // This room has speakers.
    site.edit_config("audio: false", "audio: true");
    site.set_web_token_as("alsa-key", "technician");
    std::fs::write(
        site.dir.path().join("media/tone.wav"),
        roomctl::testkit::sine_wav(1.0, 440.0, 0.5),
    )
    .unwrap();
    let _broker = Mosquitto::start_on(port).await.unwrap();
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    let (stop_web, server) = serve(&room, site.web_port).await;
    eventually(T, "the ALSA device open", || {
        room.media.status().audio.device
    })
    .await;
    let out = room.media.status().audio.output.unwrap();
    capture.rate.store(out.bytes_per_second, Ordering::Relaxed);

    let br = dashboard_at(&site, "alsa-key", 820, "media").await;
    br.wait_for(
        "the sound in the library",
        "document.querySelector('#media-files tr[data-file=\"tone.wav\"]') !== null",
        T,
    )
    .await;
    // Silence before the press.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = capture.len();
    assert!(
        capture.peak_since(before.saturating_sub(4096)) < 1e-4,
        "silent before"
    );
    br.click("#media-files tr[data-file=\"tone.wav\"] button[title^='Play it on the Pi']")
        .await;
    let bps = out.bytes_per_second as usize;
    eventually(T, "half a second of the tone out of the device", || {
        capture.len() >= before + bps / 2 && capture.peak_since(before) > 0.4
    })
    .await;
    let peak = capture.peak_since(before);
    assert!(peak < 0.51, "the tone at its own level, peak {peak}");
    br.snapshot("media-preview-alsa-820").await;
    br.quit().await;
    stop_web.cancel();
    let _ = server.await;
    room.shutdown(Role::Daemon).await;
}
