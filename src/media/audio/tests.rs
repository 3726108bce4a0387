use super::*;
use crate::testkit::sine_wav;

#[test]
fn measures_wav_length() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("t.wav");
    std::fs::write(&p, sine_wav(0.5, 440.0, 0.5)).unwrap();
    let len = decode_length(&p).unwrap();
    assert!((len.as_secs_f64() - 0.5).abs() < 0.01, "{len:?}");
    std::fs::write(&p, b"not audio").unwrap();
    assert!(decode_length(&p).is_err());
}

fn wait_end(rx: &mut mpsc::UnboundedReceiver<MediaEnd>, limit: Duration) -> MediaEnd {
    let t0 = Instant::now();
    loop {
        if let Ok(e) = rx.try_recv() {
            return e;
        }
        assert!(t0.elapsed() < limit, "no end within {limit:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Opening the device can take seconds (a busy card); starting the
/// player must not wait for it, and what is sent meanwhile is played.
#[test]
fn starting_never_waits_for_the_device() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("t.wav"), sine_wav(0.2, 440.0, 0.5)).unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let slow = Opener::Custom(Box::new(|| {
        std::thread::sleep(Duration::from_secs(2));
        Err("no sound card".into())
    }));
    let t0 = Instant::now();
    let a = AudioPlayer::spawn(
        d.path().to_path_buf(),
        slow,
        REAL_LENGTHS,
        EventBus::new(16),
        tx,
    );
    assert!(
        t0.elapsed() < Duration::from_millis(200),
        "start waited {:?}",
        t0.elapsed()
    );
    a.command(AudioCommand::parse("PLAY:t").unwrap());
    assert_eq!(
        wait_end(&mut rx, Duration::from_secs(5)),
        MediaEnd::Audio("t.wav".into())
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(2200),
        "played before the device was known"
    );
    assert_eq!(a.status().device_error.as_deref(), Some("no sound card"));
    a.shutdown();
}

/// Without a header length, a file is measured by decoding it, which
/// can take long: other audio commands must not wait for that.
#[test]
fn measuring_a_file_never_holds_up_other_commands() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("long.wav"), sine_wav(0.1, 440.0, 0.5)).unwrap();
    let slow = Lengths {
        header: |_| Ok(None),
        decode: |_| {
            std::thread::sleep(Duration::from_secs(1));
            Ok(Duration::from_millis(300))
        },
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let a = AudioPlayer::spawn(
        d.path().to_path_buf(),
        Opener::Disabled,
        slow,
        EventBus::new(16),
        tx,
    );
    let t0 = Instant::now();
    a.command(AudioCommand::parse("PLAY:long").unwrap());
    a.command(AudioCommand::parse("VOLUME:0.5").unwrap());
    while a.status().master_volume != 0.5 {
        assert!(
            t0.elapsed() < Duration::from_millis(300),
            "VOLUME waited for the measurement"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        wait_end(&mut rx, Duration::from_secs(5)),
        MediaEnd::Audio("long.wav".into())
    );
    assert!(
        t0.elapsed() >= Duration::from_secs(1),
        "ended before its length was known"
    );
    // The length is remembered: a second play needs no measuring.
    let t1 = Instant::now();
    a.command(AudioCommand::parse("PLAY:long").unwrap());
    wait_end(&mut rx, Duration::from_secs(5));
    assert!(
        t1.elapsed() < Duration::from_millis(800),
        "{:?}",
        t1.elapsed()
    );
    a.shutdown();
}

/// With no output device, sounds end after their real length, and a
/// paused sound does not end.
#[test]
fn headless_sounds_keep_their_timing() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("t.wav"), sine_wav(0.3, 440.0, 0.5)).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let a = AudioPlayer::start(d.path().to_path_buf(), false, EventBus::new(16), tx);
    assert!(!a.status().device);
    let t0 = Instant::now();
    a.command(AudioCommand::parse("PLAY:t").unwrap());
    let end = loop {
        if let Ok(e) = rx.try_recv() {
            break e;
        }
        assert!(t0.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(end, MediaEnd::Audio("t.wav".into()));
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "ended before its length"
    );

    a.command(AudioCommand::parse("PLAY:t").unwrap());
    a.command(AudioCommand::Pause);
    std::thread::sleep(Duration::from_millis(500));
    assert!(rx.try_recv().is_err(), "a paused sound ended");
    a.command(AudioCommand::Resume);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(rx.try_recv().unwrap(), MediaEnd::Audio("t.wav".into()));
    a.shutdown();
}
