//! Real playback through rodio, cpal and ALSA, with no sound card: a HOME
//! whose `.asoundrc` makes the default device an ALSA `file` plugin writing
//! raw samples into a FIFO. This test reads the FIFO at the device's real
//! byte rate (the `null` slave alone would run ~90x faster than real time)
//! and checks what came out.
//!
//! ALSA reads `~/.asoundrc` once per process, so HOME must be set before
//! anything touches audio: the test re-executes the test binary with its
//! own HOME and runs the playback there, alone.

use crate::common::alsa;
use crate::common::wait_until;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use roomctl::events::{Event, EventBus};
use roomctl::media::{AudioCommand, AudioPlayer, MediaEnd};
use tokio::sync::mpsc::UnboundedReceiver;

fn write_tone(path: &Path, secs: f32, freq: f32, amp: f32) {
    std::fs::write(path, roomctl::testkit::sine_wav(secs, freq, amp)).unwrap();
}

fn next_end(rx: &mut UnboundedReceiver<MediaEnd>, timeout: Duration) -> Option<MediaEnd> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(e) = rx.try_recv() {
            return Some(e);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn events_of(bus: &mut tokio::sync::broadcast::Receiver<Event>, what: &str) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(e) = bus.try_recv() {
        if let Event::Media(m) = e
            && m.event == what
        {
            out.push(m.file.unwrap_or_default());
        }
    }
    out
}

#[test]
fn audio_plays_for_real_through_an_alsa_file_sink() {
    alsa::in_a_fresh_process("audio_alsa::playback_in_a_fresh_process");
}

#[test]
#[ignore = "runs when re-executed by audio_plays_for_real_through_an_alsa_file_sink"]
fn playback_in_a_fresh_process() {
    if !alsa::is_child() {
        return;
    }
    let capture = alsa::file_sink();
    let home = alsa::home();

    let media = home.join("media");
    std::fs::create_dir(&media).unwrap();
    write_tone(&media.join("long.wav"), 0.6, 440.0, 0.5);
    write_tone(&media.join("short.wav"), 0.3, 660.0, 0.5);
    write_tone(&media.join("bed.wav"), 30.0, 220.0, 0.5);

    let bus = EventBus::new(256);
    let mut events = bus.subscribe();
    let (tx, mut ends) = tokio::sync::mpsc::unbounded_channel();
    let audio = AudioPlayer::start(media, true, bus, tx);
    // The player starts at once; the device opens on its own thread.
    let t0 = std::time::Instant::now();
    let st = loop {
        let st = audio.status();
        if st.device || st.device_error.is_some() || t0.elapsed() > Duration::from_secs(5) {
            break st;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(st.device, "no ALSA device: {:?}", st.device_error);
    let out = st.output.clone().unwrap();
    assert_eq!(
        out.sample_format, "F32",
        "the capture reads f32 samples: {out:?}"
    );
    capture.rate.store(out.bytes_per_second, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(100));

    // Two sounds at once (a file name without extension is tried as .wav).
    let before = capture.len();
    audio.command(AudioCommand::parse("PLAY:long:1.0").unwrap());
    audio.command(AudioCommand::parse("short.wav").unwrap());
    wait_until(Duration::from_secs(2), "both sounds playing", || {
        audio.status().playing == ["long.wav", "short.wav"]
    });
    assert_eq!(
        next_end(&mut ends, Duration::from_secs(5)),
        Some(MediaEnd::Audio("short.wav".into()))
    );
    assert_eq!(
        next_end(&mut ends, Duration::from_secs(5)),
        Some(MediaEnd::Audio("long.wav".into()))
    );
    let peak = capture.peak_since(before);
    assert!(
        peak > 0.4 && peak < 1.01,
        "expected the tones in the output, peak {peak}"
    );
    assert_eq!(events_of(&mut events, "ended").len(), 2);
    assert!(
        capture.len() - before >= (out.bytes_per_second as f64 * 0.55) as usize,
        "not a real-time-length stream"
    );

    // VOLUME:0 makes the next sound silent.
    audio.command(AudioCommand::parse("VOLUME:0").unwrap());
    // What is still in the ALSA and FIFO buffers comes out first; after
    // that the output is silence.
    wait_until(
        Duration::from_secs(5),
        "silence with nothing playing",
        || {
            let last_200ms = capture.len() - (out.bytes_per_second as usize) / 5;
            capture.peak_since(last_200ms) < 1e-4
        },
    );
    let before = capture.len();
    audio.command(AudioCommand::parse("PLAY:short.wav").unwrap());
    assert!(next_end(&mut ends, Duration::from_secs(5)).is_some());
    assert!(capture.peak_since(before) < 1e-4, "VOLUME:0 is not silent");
    audio.command(AudioCommand::parse("VOLUME:1").unwrap());

    // PAUSE holds a sound past its length; RESUME lets it finish.
    audio.command(AudioCommand::parse("PLAY:short.wav").unwrap());
    audio.command(AudioCommand::Pause);
    assert_eq!(
        next_end(&mut ends, Duration::from_millis(800)),
        None,
        "a paused sound ended"
    );
    assert!(audio.status().paused);
    audio.command(AudioCommand::Resume);
    assert_eq!(
        next_end(&mut ends, Duration::from_secs(5)),
        Some(MediaEnd::Audio("short.wav".into()))
    );

    // STOP:<file> and the end-of-scene fade stop sounds without an end event.
    audio.command(AudioCommand::parse("PLAY:bed.wav").unwrap());
    audio.command(AudioCommand::parse("PLAY:long.wav").unwrap());
    wait_until(Duration::from_secs(2), "both sounds playing", || {
        audio.status().playing.len() == 2
    });
    audio.command(AudioCommand::parse("STOP:bed").unwrap());
    wait_until(Duration::from_secs(2), "only long.wav left", || {
        audio.status().playing == ["long.wav"]
    });
    assert_eq!(
        next_end(&mut ends, Duration::from_secs(5)),
        Some(MediaEnd::Audio("long.wav".into()))
    );
    audio.command(AudioCommand::parse("PLAY:bed.wav").unwrap());
    wait_until(Duration::from_secs(2), "the bed playing", || {
        audio.status().playing == ["bed.wav"]
    });
    audio.fade_out_all(Duration::from_millis(200));
    wait_until(Duration::from_secs(2), "the fade to stop the sound", || {
        audio.status().playing.is_empty()
    });
    assert_eq!(next_end(&mut ends, Duration::from_millis(200)), None);
    let stopped = events_of(&mut events, "stopped");
    assert_eq!(stopped, ["bed.wav", "bed.wav"], "{stopped:?}");

    // FADE_IN rises from silence to full volume; FADE_OUT falls to
    // silence and stops the sound (the predecessor's cues).
    wait_until(Duration::from_secs(5), "silence again", || {
        let last_200ms = capture.len() - (out.bytes_per_second as usize) / 5;
        capture.peak_since(last_200ms) < 1e-4
    });
    let bps = out.bytes_per_second as usize;
    let before = capture.len();
    audio.command(AudioCommand::parse("PLAY:bed.wav").unwrap());
    audio.command(AudioCommand::parse("FADE_IN:1").unwrap());
    wait_until(Duration::from_secs(5), "1.5 s of the fade-in out", || {
        capture.len() >= before + bps * 3 / 2
    });
    // Where the tone starts (after what was buffered): quiet at first.
    let first = {
        let d = capture.data();
        let mut i = before - before % 4;
        while i + 4 <= d.len()
            && f32::from_le_bytes([d[i], d[i + 1], d[i + 2], d[i + 3]]).abs() < 1e-4
        {
            i += 4;
        }
        i
    };
    let early = capture.peak_between(first, first + bps / 10);
    let late = capture.peak_between(first + bps * 11 / 10, first + bps * 13 / 10);
    assert!(
        early < 0.12,
        "the first 100 ms of a 1 s fade-in peak at {early}"
    );
    assert!(late > 0.4, "after the fade-in the tone peaks at {late}");
    audio.command(AudioCommand::parse("FADE_OUT:0.3").unwrap());
    wait_until(
        Duration::from_secs(2),
        "the fade-out to stop the sound",
        || audio.status().playing.is_empty(),
    );

    // A missing file is an error event and an immediate end (no hang).
    audio.command(AudioCommand::parse("PLAY:nope.wav").unwrap());
    assert_eq!(
        next_end(&mut ends, Duration::from_secs(2)),
        Some(MediaEnd::Audio("nope.wav".into()))
    );
    assert_eq!(events_of(&mut events, "error"), ["nope.wav"]);
    audio.shutdown();
}
