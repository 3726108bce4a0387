//! The video player: a real mpv (with null video/audio outputs, so no
//! display is needed) driven over its IPC socket.

use std::path::Path;
use std::time::Duration;

use roomctl::events::{Event, EventBus};
use roomctl::media::{MediaEnd, VideoCommand, VideoPlayer, VideoSettings};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

fn mpv_available() -> bool {
    if std::env::var_os("ROOMCTL_SKIP_VIDEO").is_some() {
        eprintln!("ROOMCTL_SKIP_VIDEO set: skipping");
        return false;
    }
    assert!(
        roomctl::check::which("mpv").is_some(),
        "mpv is missing (apt-get install -y mpv); set ROOMCTL_SKIP_VIDEO=1 to skip deliberately"
    );
    true
}

/// A clip mpv can play without a display: audio-only media work the same
/// way through its playlist and end-file events.
fn clip(dir: &Path, name: &str, secs: f32) {
    std::fs::write(dir.join(name), roomctl::testkit::sine_wav(secs, 330.0, 0.3)).unwrap();
}

/// A 2x2 PPM image as the idle picture.
fn idle_image(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("idle.ppm");
    let mut img = b"P6\n2 2\n255\n".to_vec();
    img.extend_from_slice(&[0u8; 12]);
    std::fs::write(&p, img).unwrap();
    p
}

fn settings(dir: &Path) -> VideoSettings {
    VideoSettings {
        dir: dir.to_path_buf(),
        command: ["mpv", "--vo=null", "--ao=null", "--really-quiet", "{file}"]
            .map(String::from)
            .to_vec(),
        idle_image: Some(idle_image(dir)),
        enabled: true,
        restart_delay: Duration::ZERO,
    }
}

async fn next_end(rx: &mut UnboundedReceiver<MediaEnd>, t: Duration) -> Option<MediaEnd> {
    tokio::time::timeout(t, rx.recv()).await.ok().flatten()
}

fn media_events(rx: &mut tokio::sync::broadcast::Receiver<Event>) -> Vec<(String, String)> {
    let mut v = Vec::new();
    while let Ok(e) = rx.try_recv() {
        if let Event::Media(m) = e {
            v.push((m.event, m.file.unwrap_or_default()));
        }
    }
    v
}

/// Until mpv has loaded the clip it was asked to play.
async fn loaded(v: &VideoPlayer) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !v.status().loaded {
        assert!(
            tokio::time::Instant::now() < deadline,
            "mpv did not load the clip: {:?}",
            v.status()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mpv_plays_clips_reports_ends_and_is_killed_on_stop() {
    if !mpv_available() {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
    let d = tempfile::tempdir().unwrap();
    clip(d.path(), "clip.wav", 0.4);
    clip(d.path(), "mid.wav", 2.0);
    clip(d.path(), "long.wav", 3.0);
    let bus = EventBus::new(256);
    let mut events = bus.subscribe();
    let (tx, mut ends) = tokio::sync::mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let v = VideoPlayer::start(
        settings(d.path()),
        bus,
        tx,
        cancel.clone(),
        &TaskTracker::new(),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !v.status().running {
        assert!(
            tokio::time::Instant::now() < deadline,
            "mpv did not start: {:?}",
            v.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = v.status().pid.unwrap();

    // A clip plays to its end: videoEnd.
    v.command(VideoCommand::parse("PLAY_VIDEO:clip.wav").unwrap());
    assert_eq!(
        next_end(&mut ends, Duration::from_secs(5)).await,
        Some(MediaEnd::Video("clip.wav".into()))
    );
    assert_eq!(v.status().playing, None, "back to idle");
    let ev = media_events(&mut events);
    assert!(
        ev.contains(&("started".into(), "clip.wav".into()))
            && ev.contains(&("ended".into(), "clip.wav".into())),
        "{ev:?}"
    );

    // A newer clip replaces an older one without a spurious end for it.
    v.command(VideoCommand::parse("long.wav").unwrap());
    v.command(VideoCommand::parse("PLAY_VIDEO:clip.wav").unwrap());
    assert_eq!(
        next_end(&mut ends, Duration::from_secs(5)).await,
        Some(MediaEnd::Video("clip.wav".into()))
    );

    // STOP_VIDEO: back to the idle image, no videoEnd.
    v.command(VideoCommand::parse("PLAY_VIDEO:long.wav").unwrap());
    loaded(&v).await;
    assert_eq!(v.status().playing.as_deref(), Some("long.wav"));
    v.command(VideoCommand::Stop);
    assert_eq!(next_end(&mut ends, Duration::from_millis(800)).await, None);
    assert!(media_events(&mut events).contains(&("stopped".into(), "long.wav".into())));

    // PAUSE holds a clip past its length; RESUME lets it end. (mpv's null
    // audio output buffers ~0.4 s, so the clip must be longer than that.)
    v.command(VideoCommand::parse("PLAY_VIDEO:mid.wav").unwrap());
    loaded(&v).await;
    v.command(VideoCommand::Pause);
    assert_eq!(
        next_end(&mut ends, Duration::from_millis(2500)).await,
        None,
        "a paused clip ended"
    );
    assert!(v.status().paused);
    v.command(VideoCommand::Resume);
    assert_eq!(
        next_end(&mut ends, Duration::from_secs(5)).await,
        Some(MediaEnd::Video("mid.wav".into()))
    );

    // SEEK near the end of a 3 s clip: it ends long before 3 s.
    v.command(VideoCommand::parse("PLAY_VIDEO:long.wav").unwrap());
    loaded(&v).await;
    let t0 = tokio::time::Instant::now();
    v.command(VideoCommand::parse("SEEK:2.7").unwrap());
    assert_eq!(
        next_end(&mut ends, Duration::from_secs(5)).await,
        Some(MediaEnd::Video("long.wav".into()))
    );
    assert!(
        t0.elapsed() < Duration::from_millis(2500),
        "SEEK had no effect"
    );

    // mpv dies: the clip on screen is reported over; the next command restarts it.
    v.command(VideoCommand::parse("PLAY_VIDEO:long.wav").unwrap());
    loaded(&v).await;
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert_eq!(
        next_end(&mut ends, Duration::from_secs(5)).await,
        Some(MediaEnd::Video("long.wav".into()))
    );
    assert!(!v.status().running);
    v.command(VideoCommand::parse("PLAY_VIDEO:clip.wav").unwrap());
    assert_eq!(
        next_end(&mut ends, Duration::from_secs(10)).await,
        Some(MediaEnd::Video("clip.wav".into()))
    );
    let pid2 = v.status().pid.expect("restarted");
    assert_ne!(pid, pid2);

    // A missing clip is an error and an immediate end, never a hang.
    v.command(VideoCommand::parse("PLAY_VIDEO:nope.mp4").unwrap());
    assert_eq!(
        next_end(&mut ends, Duration::from_secs(2)).await,
        Some(MediaEnd::Video("nope.mp4".into()))
    );

    // Stopping the daemon kills the player.
    cancel.cancel();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while alive(pid2) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "mpv {pid2} still running after stop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn without_a_player_clips_end_at_once() {
    let d = tempfile::tempdir().unwrap();
    clip(d.path(), "clip.wav", 5.0);
    let mut s = settings(d.path());
    s.command = vec!["/nonexistent/mpv".into()];
    let (tx, mut ends) = tokio::sync::mpsc::unbounded_channel();
    let v = VideoPlayer::start(
        s,
        EventBus::new(16),
        tx,
        CancellationToken::new(),
        &TaskTracker::new(),
    );
    v.command(VideoCommand::parse("PLAY_VIDEO:clip.wav").unwrap());
    assert_eq!(
        next_end(&mut ends, Duration::from_secs(2)).await,
        Some(MediaEnd::Video("clip.wav".into()))
    );
    let st = v.status();
    assert!(!st.running);
    assert!(
        st.error
            .unwrap()
            .contains("cannot start `/nonexistent/mpv`")
    );
}

/// mpv that cannot start once (display not ready at boot, say) is tried
/// again with a later command instead of never.
#[tokio::test]
async fn a_player_that_failed_to_start_is_tried_again() {
    if !mpv_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    clip(d.path(), "clip.wav", 0.5);
    let ready = d.path().join("display-ready");
    let wrapper = d.path().join("player.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n[ -e {} ] || exit 1\nexec mpv \"$@\"\n",
            ready.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut s = settings(d.path());
    s.command[0] = wrapper.to_string_lossy().into_owned();
    let (tx, mut ends) = tokio::sync::mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let bus = EventBus::new(64);
    let mut events = bus.subscribe();
    let v = VideoPlayer::start(s, bus, tx, cancel.clone(), &TaskTracker::new());
    // The first start fails: a clip ends at once, unplayed.
    v.command(VideoCommand::parse("PLAY_VIDEO:clip.wav").unwrap());
    assert_eq!(
        next_end(&mut ends, Duration::from_secs(5)).await,
        Some(MediaEnd::Video("clip.wav".into()))
    );
    assert!(!v.status().running);
    assert!(!media_events(&mut events).contains(&("started".into(), "clip.wav".into())));

    std::fs::write(&ready, b"").unwrap();
    v.command(VideoCommand::parse("PLAY_VIDEO:clip.wav").unwrap());
    assert_eq!(
        next_end(&mut ends, Duration::from_secs(10)).await,
        Some(MediaEnd::Video("clip.wav".into()))
    );
    let seen = media_events(&mut events);
    assert!(
        seen.contains(&("started".into(), "clip.wav".into()))
            && seen.contains(&("ended".into(), "clip.wav".into())),
        "the player was not tried again: {seen:?}"
    );
    assert!(v.status().running);
    cancel.cancel();
}
