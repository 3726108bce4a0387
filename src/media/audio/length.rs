//! How long a sound is: from its header when it says, otherwise decoded
//! on a thread of its own (a long file must not hold up the audio thread).
//! Headless timing and the end of a sound on a box without a device depend
//! on it.

use super::*;
use std::path::{Path, PathBuf};

use std::time::Duration;

use rodio::{Decoder, Source};
use tracing::{debug, warn};

impl AudioThread {
    /// The length of a file for headless timing: known, read from the
    /// header, or (None) being measured by a thread of its own, which
    /// reports back with [`Request::Measured`]. Decoding a long file here
    /// would hold up every other audio command.
    pub(super) fn length(&mut self, path: &Path) -> Option<Duration> {
        if let Some(l) = self.lengths.get(path) {
            return Some(*l);
        }
        match (self.measure.header)(path) {
            Ok(Some(l)) => {
                self.lengths.insert(path.to_path_buf(), l);
                return Some(l);
            }
            Ok(None) => {}
            Err(e) => {
                warn!(target: "media", "Cannot read length of {}: {e}", path.display());
                return Some(Duration::ZERO);
            }
        }
        let (tx, p, decode) = (self.tx.clone(), path.to_path_buf(), self.measure.decode);
        let spawned = std::thread::Builder::new()
            .name("roomctl-measure".into())
            .spawn(move || {
                let len = decode(&p);
                let _ = tx.send(Request::Measured(p, len));
            });
        if let Err(e) = spawned {
            warn!(target: "media", "Cannot measure {}: {e}", path.display());
            return Some(Duration::ZERO);
        }
        debug!(target: "media", "Measuring the length of {}", path.display());
        None
    }

    /// A measuring thread is done: every sound of that file now has a length.
    pub(super) fn measured(&mut self, path: PathBuf, len: Result<Duration, DecodeError>) {
        let len = len.unwrap_or_else(|e| {
            warn!(target: "media", "Cannot read the length of a sound: {e}");
            Duration::ZERO
        });
        let file = path
            .strip_prefix(&self.dir)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        for t in &mut self.tracks {
            if let Output::Timed(c) = &mut t.output
                && c.len.is_none()
                && t.name == file
            {
                c.len = Some(len);
            }
        }
        self.lengths.insert(path, len);
    }
}

pub(super) fn open(path: &Path) -> Result<Decoder<std::io::BufReader<std::fs::File>>, String> {
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    Decoder::try_from(f).map_err(|e| e.to_string())
}

/// Why a sound's length is unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode {path}: {reason}")]
pub struct DecodeError {
    /// The file.
    pub path: String,
    /// What the decoder said.
    pub reason: String,
}

/// The length the file's header gives, if any (cheap).
pub(super) fn header_length(path: &Path) -> Result<Option<Duration>, String> {
    Ok(open(path)?.total_duration())
}

/// The length of a sound: from the header, else by decoding it (up to an
/// hour of audio; slow, so never on the audio thread).
pub fn decode_length(path: &Path) -> Result<Duration, DecodeError> {
    let d = open(path).map_err(|reason| DecodeError {
        path: path.display().to_string(),
        reason,
    })?;
    if let Some(t) = d.total_duration() {
        return Ok(t);
    }
    let rate = f64::from(d.sample_rate().get());
    let channels = f64::from(d.channels().get());
    let max = (MAX_MEASURE.as_secs_f64() * rate * channels) as usize;
    let n = d.take(max).count() as f64;
    Ok(Duration::from_secs_f64(n / rate / channels))
}

/// A sound's format in words (`44100 Hz, 2 ch`), when it opens.
pub fn sound_format(path: &Path) -> Option<String> {
    let d = open(path).ok()?;
    Some(format!(
        "{} Hz, {} ch",
        d.sample_rate().get(),
        d.channels().get()
    ))
}

/// Whether a new sound plays, and how long it is: it must open as a
/// sound, decode to at least one sample, and, when its header gives a
/// length, decode to about that length (a truncated file or a lying
/// header does not). Decodes the whole file (up to an hour).
pub fn probe_sound(path: &Path) -> Result<Duration, String> {
    let d = open(path).map_err(|e| format!("it does not decode as a sound ({e})"))?;
    let said = d.total_duration();
    let rate = f64::from(d.sample_rate().get());
    let channels = f64::from(d.channels().get());
    let max = (MAX_MEASURE.as_secs_f64() * rate * channels) as usize;
    let n = d.take(max).count() as f64;
    if n == 0.0 {
        return Err("it decodes to no sound at all".into());
    }
    let got = Duration::from_secs_f64(n / rate / channels);
    if let Some(said) = said {
        let (a, b) = (said.as_secs_f64(), got.as_secs_f64());
        if (a - b).abs() > 0.25 + a * 0.02 {
            return Err(format!(
                "its header says {a:.2} s but only {b:.2} s decode (cut short, or a header that lies)"
            ));
        }
    }
    Ok(got)
}
