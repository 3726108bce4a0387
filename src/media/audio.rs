//! The audio player. rodio's output stream lives on one dedicated thread;
//! everything else sends it requests over a channel. Several sounds play at
//! once (one rodio `Player` per sound on the shared mixer). The natural end
//! of each sound is reported (`audioEnd`). With no output device (a headless
//! box) that is a logged warning, not a crash: sounds are still "played" on
//! a timer of their real length so scenes keep their timing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use rodio::source::EmptyCallback;
use rodio::{DeviceSinkBuilder, MixerDeviceSink, Player};
use serde::Serialize;
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use super::command::{AUDIO_EXTENSIONS, AudioCommand, resolve_media, same_media};
use super::{MediaEnd, MediaEvent};
use crate::events::{Event, EventBus};

mod length;
pub use length::{DecodeError, decode_length, probe_sound, sound_format};
use length::{header_length, open};

const FADE_STEP: Duration = Duration::from_millis(20);
/// Headless timing decodes at most this much audio to learn a length.
const MAX_MEASURE: Duration = Duration::from_secs(3600);

enum Request {
    Command(AudioCommand),
    FadeOutAll(Duration),
    /// From the output thread: sound `id` reached its end.
    Ended(u64),
    /// From a measuring thread: how long `path` is.
    Measured(PathBuf, Result<Duration, DecodeError>),
    Shutdown,
}

/// How the audio thread gets its output.
enum Opener {
    /// `media.audio: false`: never open a device.
    Disabled,
    /// The default ALSA device.
    Default,
    /// Tests: something slow or failing.
    #[cfg(test)]
    Custom(Box<dyn FnOnce() -> Result<MixerDeviceSink, String> + Send>),
}

/// Where headless timing learns a file's length: the header (cheap, on
/// the audio thread) or a full decode (slow, on a thread of its own).
#[derive(Clone, Copy)]
struct Lengths {
    header: fn(&Path) -> Result<Option<Duration>, String>,
    decode: fn(&Path) -> Result<Duration, DecodeError>,
}

const REAL_LENGTHS: Lengths = Lengths {
    header: header_length,
    decode: decode_length,
};

/// What the dashboard shows about audio.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct AudioStatus {
    /// An output device is open.
    pub device: bool,
    /// Why there is no device.
    pub device_error: Option<String>,
    /// Files playing now.
    pub playing: Vec<String>,
    /// PAUSE is in effect.
    pub paused: bool,
    /// `VOLUME:` (0..1).
    pub master_volume: f32,
    /// The open output's format.
    pub output: Option<AudioOutput>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
/// The format of the open output device.
pub struct AudioOutput {
    /// Samples per second.
    pub sample_rate: u32,
    /// Channels.
    pub channels: u16,
    /// Sample type (`F32`).
    pub sample_format: String,
    /// Bytes per second the device consumes.
    pub bytes_per_second: u64,
}

/// Handle to the audio thread. Cheap to clone.
#[derive(Clone)]
pub struct AudioPlayer {
    tx: std_mpsc::Sender<Request>,
    status: Arc<Mutex<AudioStatus>>,
}

impl AudioPlayer {
    /// Starts the audio thread. `enabled: false` never opens a device.
    /// Returns at once: the thread opens the device first and then serves
    /// requests in order, so nothing sent meanwhile is lost.
    pub fn start(
        dir: PathBuf,
        enabled: bool,
        events: EventBus,
        ends: mpsc::UnboundedSender<MediaEnd>,
    ) -> AudioPlayer {
        let opener = if enabled {
            Opener::Default
        } else {
            Opener::Disabled
        };
        Self::spawn(dir, opener, REAL_LENGTHS, events, ends)
    }

    fn spawn(
        dir: PathBuf,
        opener: Opener,
        measure: Lengths,
        events: EventBus,
        ends: mpsc::UnboundedSender<MediaEnd>,
    ) -> AudioPlayer {
        let (tx, rx) = std_mpsc::channel();
        let status = Arc::new(Mutex::new(AudioStatus {
            master_volume: 1.0,
            ..Default::default()
        }));
        let thread_tx = tx.clone();
        let thread_status = status.clone();
        let spawned = std::thread::Builder::new()
            .name("roomctl-audio".into())
            .spawn(move || {
                let mut t = AudioThread {
                    dir,
                    sink: None,
                    tracks: Vec::new(),
                    next_id: 1,
                    master: 1.0,
                    paused: false,
                    events,
                    ends,
                    tx: thread_tx,
                    status: thread_status,
                    lengths: HashMap::new(),
                    measure,
                };
                t.open(opener);
                t.run(rx);
            });
        if let Err(e) = spawned {
            error!(target: "media", "Cannot start audio thread: {e}");
        }
        AudioPlayer { tx, status }
    }

    /// Queues a command for the audio thread.
    pub fn command(&self, cmd: AudioCommand) {
        let _ = self.tx.send(Request::Command(cmd));
    }

    /// Fades every sound out over `d`, then stops it.
    pub fn fade_out_all(&self, d: Duration) {
        let _ = self.tx.send(Request::FadeOutAll(d));
    }

    /// What is playing, the device, the volume.
    pub fn status(&self) -> AudioStatus {
        self.status.lock().clone()
    }

    /// Stops every sound and ends the audio thread.
    pub fn shutdown(&self) {
        let _ = self.tx.send(Request::Shutdown);
    }
}

enum Output {
    Device(Player),
    /// Headless: timed by the sound's length.
    Timed(Clock),
}

/// Play time of a headless sound.
#[derive(Debug, Clone, Copy)]
struct Clock {
    /// None while a measuring thread works it out.
    len: Option<Duration>,
    /// Played before `since`.
    played: Duration,
    /// Playing since (None while paused).
    since: Option<Instant>,
}

impl Clock {
    fn played(&self, now: Instant) -> Duration {
        self.played
            + self
                .since
                .map_or(Duration::ZERO, |s| now.saturating_duration_since(s))
    }
    /// When it ends, if it is playing and its length is known.
    fn ends_at(&self, now: Instant) -> Option<Instant> {
        let len = self.len?;
        self.since?;
        // A corrupt header can claim any length: such a sound never ends
        // by itself rather than overflowing the clock.
        now.checked_add(len.saturating_sub(self.played(now)))
    }
    fn pause(&mut self, now: Instant) {
        self.played = self.played(now);
        self.since = None;
    }
    fn resume(&mut self, now: Instant) {
        self.since.get_or_insert(now);
    }
}

struct Track {
    id: u64,
    /// As requested (`bg`, `bg.mp3`).
    file: String,
    /// As resolved (`bg.mp3`).
    name: String,
    output: Output,
    volume: f32,
    /// Falling to silence (then stopped): since, over.
    fade: Option<(Instant, Duration)>,
    /// Rising from silence: since, over.
    fade_in: Option<(Instant, Duration)>,
}

struct AudioThread {
    dir: PathBuf,
    sink: Option<MixerDeviceSink>,
    tracks: Vec<Track>,
    next_id: u64,
    master: f32,
    paused: bool,
    events: EventBus,
    ends: mpsc::UnboundedSender<MediaEnd>,
    tx: std_mpsc::Sender<Request>,
    status: Arc<Mutex<AudioStatus>>,
    /// Lengths of files measured so far (headless timing).
    lengths: HashMap<PathBuf, Duration>,
    measure: Lengths,
}

impl AudioThread {
    fn open(&mut self, opener: Opener) {
        let opened = match opener {
            Opener::Disabled => {
                info!(target: "media", "Audio output disabled (media.audio: false); sounds are timed, not heard");
                self.status.lock().device_error = Some("disabled in config".into());
                return;
            }
            Opener::Default => {
                super::alsa_quiet::silence();
                DeviceSinkBuilder::open_default_sink().map_err(|e| e.to_string())
            }
            #[cfg(test)]
            Opener::Custom(f) => f(),
        };
        match opened {
            Ok(mut s) => {
                s.log_on_drop(false);
                let c = s.config();
                let fmt = c.sample_format();
                let out = AudioOutput {
                    sample_rate: c.sample_rate().get(),
                    channels: c.channel_count().get(),
                    sample_format: format!("{fmt:?}"),
                    bytes_per_second: u64::from(c.sample_rate().get())
                        * u64::from(c.channel_count().get())
                        * fmt.sample_size() as u64,
                };
                info!(target: "media", "Audio output open: {} Hz, {} channel(s), {}", out.sample_rate, out.channels, out.sample_format);
                self.sink = Some(s);
                let mut st = self.status.lock();
                st.device = true;
                st.output = Some(out);
            }
            Err(e) => {
                warn!(target: "media", "No audio output device ({e}); sounds are timed, not heard");
                self.status.lock().device_error = Some(e.to_string());
            }
        }
    }

    fn run(&mut self, rx: std_mpsc::Receiver<Request>) {
        loop {
            let req = match self.next_wake() {
                None => rx
                    .recv()
                    .map_err(|_| std_mpsc::RecvTimeoutError::Disconnected),
                Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
            };
            match req {
                Ok(Request::Shutdown) | Err(std_mpsc::RecvTimeoutError::Disconnected) => break,
                Ok(Request::Command(c)) => self.command(c),
                Ok(Request::FadeOutAll(d)) => self.fade_all(d),
                Ok(Request::Ended(id)) => self.ended(id),
                Ok(Request::Measured(path, len)) => self.measured(path, len),
                Err(std_mpsc::RecvTimeoutError::Timeout) => {}
            }
            self.tick();
        }
        for t in self.tracks.drain(..) {
            if let Output::Device(p) = &t.output {
                p.stop();
            }
        }
        debug!(target: "media", "Audio thread stopped");
    }

    /// When the loop must wake without a request: fades and timed ends.
    fn next_wake(&self) -> Option<Instant> {
        let now = Instant::now();
        self.tracks
            .iter()
            .filter_map(|t| {
                if t.fade.is_some() || t.fade_in.is_some() {
                    return Some(now + FADE_STEP);
                }
                match &t.output {
                    Output::Timed(c) => c.ends_at(now),
                    Output::Device(_) => None,
                }
            })
            .min()
    }

    fn publish(&self, event: &str, file: Option<&str>, detail: Option<String>) {
        self.events.publish(Event::Media(MediaEvent {
            kind: "audio".into(),
            event: event.into(),
            file: file.map(String::from),
            detail,
        }));
    }

    fn update_status(&self) {
        let mut s = self.status.lock();
        s.playing = self.tracks.iter().map(|t| t.name.clone()).collect();
        s.paused = self.paused;
        s.master_volume = self.master;
    }

    fn command(&mut self, c: AudioCommand) {
        match c {
            AudioCommand::Play { file, volume } => self.play(&file, volume.unwrap_or(1.0)),
            AudioCommand::Stop { file } => {
                let stop: Vec<u64> = self
                    .tracks
                    .iter()
                    .filter(|t| {
                        file.as_ref()
                            .is_none_or(|f| same_media(f, &t.name) || *f == t.file)
                    })
                    .map(|t| t.id)
                    .collect();
                if stop.is_empty() {
                    debug!(target: "media", "Audio STOP: nothing playing{}", file.map(|f| format!(" as {f}")).unwrap_or_default());
                }
                for id in stop {
                    self.stop(id, "stopped");
                }
            }
            AudioCommand::Pause => self.set_paused(true),
            AudioCommand::Resume => self.set_paused(false),
            AudioCommand::Volume { volume } => {
                self.master = volume;
                for t in &self.tracks {
                    if let Output::Device(p) = &t.output {
                        p.set_volume(t.volume * volume);
                    }
                }
                info!(target: "media", "Audio master volume {volume:.2}");
            }
            AudioCommand::FadeOut { over } => self.fade_all(over),
            AudioCommand::FadeIn { over } => {
                let now = Instant::now();
                for t in &mut self.tracks {
                    if over.is_zero() || t.fade.is_some() {
                        continue;
                    }
                    t.fade_in = Some((now, over));
                    if let Output::Device(p) = &t.output {
                        p.set_volume(0.0);
                    }
                }
                info!(target: "media", "Audio fading in over {:.1} s", over.as_secs_f32());
            }
        }
        self.update_status();
    }

    /// Pauses or resumes every sound (timed ones keep what is left).
    fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
        let now = Instant::now();
        for t in &mut self.tracks {
            match &mut t.output {
                Output::Device(p) if paused => p.pause(),
                Output::Device(p) => p.play(),
                Output::Timed(c) if paused => c.pause(now),
                Output::Timed(c) => c.resume(now),
            }
        }
        info!(target: "media", "Audio {}", if paused { "paused" } else { "resumed" });
    }

    fn play(&mut self, file: &str, volume: f32) {
        let Some(path) = resolve_media(&self.dir, file, &AUDIO_EXTENSIONS) else {
            let msg = format!("audio file `{file}` not found in {}", self.dir.display());
            error!(target: "media", "{msg}");
            self.publish("error", Some(file), Some(msg));
            // The show must not hang on a missing sound: report its end.
            let _ = self.ends.send(MediaEnd::Audio(file.to_string()));
            return;
        };
        let name = path
            .strip_prefix(&self.dir)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        let id = self.next_id;
        self.next_id += 1;
        let output = match &self.sink {
            Some(sink) => match open(&path) {
                Ok(decoder) => {
                    let player = Player::connect_new(sink.mixer());
                    player.set_volume(volume * self.master);
                    player.append(decoder);
                    let tx = self.tx.clone();
                    player.append(EmptyCallback::new(Box::new(move || {
                        let _ = tx.send(Request::Ended(id));
                    })));
                    if self.paused {
                        player.pause();
                    }
                    Output::Device(player)
                }
                Err(e) => {
                    let msg = format!("cannot play {}: {e}", path.display());
                    error!(target: "media", "{msg}");
                    self.publish("error", Some(&name), Some(msg));
                    let _ = self.ends.send(MediaEnd::Audio(name));
                    return;
                }
            },
            None => {
                let now = Instant::now();
                Output::Timed(Clock {
                    len: self.length(&path),
                    played: Duration::ZERO,
                    since: (!self.paused).then_some(now),
                })
            }
        };
        info!(target: "media", "Audio: playing {name} (volume {volume:.2})");
        self.publish("started", Some(&name), None);
        self.tracks.push(Track {
            id,
            file: file.to_string(),
            name,
            output,
            volume,
            fade: None,
            fade_in: None,
        });
        self.update_status();
    }

    /// A sound reached its natural end.
    fn ended(&mut self, id: u64) {
        let Some(pos) = self.tracks.iter().position(|t| t.id == id) else {
            return;
        };
        let t = self.tracks.remove(pos);
        info!(target: "media", "Audio ended: {}", t.name);
        self.publish("ended", Some(&t.name), None);
        let _ = self.ends.send(MediaEnd::Audio(t.name));
        self.update_status();
    }

    fn stop(&mut self, id: u64, why: &str) {
        let Some(pos) = self.tracks.iter().position(|t| t.id == id) else {
            return;
        };
        let t = self.tracks.remove(pos);
        if let Output::Device(p) = &t.output {
            p.stop();
        }
        info!(target: "media", "Audio {why}: {}", t.name);
        self.publish("stopped", Some(&t.name), None);
        self.update_status();
    }

    fn fade_all(&mut self, d: Duration) {
        if d.is_zero() {
            let ids: Vec<u64> = self.tracks.iter().map(|t| t.id).collect();
            for id in ids {
                self.stop(id, "stopped");
            }
            return;
        }
        let now = Instant::now();
        for t in &mut self.tracks {
            if t.fade.is_none() {
                t.fade = Some((now, d));
            }
        }
    }

    /// Advances fades and timed (headless) sounds.
    fn tick(&mut self) {
        let now = Instant::now();
        let mut done_fades = Vec::new();
        let mut done_timed = Vec::new();
        let master = self.master;
        for t in &mut self.tracks {
            if let Some((start, d)) = t.fade_in {
                let f = now.saturating_duration_since(start).as_secs_f32() / d.as_secs_f32();
                if f >= 1.0 {
                    t.fade_in = None;
                }
                if let Output::Device(p) = &t.output
                    && t.fade.is_none()
                {
                    p.set_volume(t.volume * master * f.min(1.0));
                }
            }
        }
        for t in &self.tracks {
            if let Some((start, d)) = t.fade {
                let f = now.saturating_duration_since(start).as_secs_f32() / d.as_secs_f32();
                if f >= 1.0 {
                    done_fades.push(t.id);
                } else if let Output::Device(p) = &t.output {
                    p.set_volume(t.volume * self.master * (1.0 - f));
                }
            }
            if let Output::Timed(c) = &t.output
                && c.ends_at(now).is_some_and(|e| e <= now)
                && t.fade.is_none()
            {
                done_timed.push(t.id);
            }
        }
        for id in done_fades {
            self.stop(id, "faded out");
        }
        for id in done_timed {
            self.ended(id);
        }
    }
}

#[cfg(test)]
mod tests;
