//! The audio and video command grammar of DESIGN.md (payloads of
//! `ROOM/audio`, `ROOM/video`, or `action: audio|video`), parsed once when a
//! scene loads so a typo is a `check` error, not a silent no-op on show day.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

/// Tried in this order for an audio file named without extension.
pub const AUDIO_EXTENSIONS: [&str; 3] = ["mp3", "wav", "ogg"];
/// Tried in this order for a clip named without extension.
pub const VIDEO_EXTENSIONS: [&str; 5] = ["mp4", "mkv", "webm", "mov", "avi"];

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "command", rename_all = "snake_case")]
/// A command for the audio player (DESIGN.md §1).
pub enum AudioCommand {
    /// `PLAY:<file>[:<volume>]` or a bare file name.
    Play {
        /// The file, relative to the media folder.
        file: String,
        /// 0..1; full volume when absent.
        volume: Option<f32>,
    },
    /// `STOP` (everything) or `STOP:<file>`.
    Stop {
        /// The file to stop; every sound when absent.
        file: Option<String>,
    },
    /// `PAUSE`: every sound.
    Pause,
    /// `RESUME`.
    Resume,
    /// `VOLUME:<0..1>`: master volume.
    Volume {
        /// 0..1.
        volume: f32,
    },
    /// `FADE_IN:<seconds>`: every sound playing rises from silence to its
    /// volume (written beside a `PLAY`, the new sound fades in).
    FadeIn {
        /// How long the rise takes.
        over: std::time::Duration,
    },
    /// `FADE_OUT:<seconds>`: every sound playing falls to silence and
    /// stops.
    FadeOut {
        /// How long the fall takes.
        over: std::time::Duration,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "command", rename_all = "snake_case")]
/// A command for the video player (DESIGN.md §1).
pub enum VideoCommand {
    /// `PLAY_VIDEO:<file>` or a bare file name.
    Play {
        /// The clip, relative to the media folder.
        file: String,
    },
    /// `STOP_VIDEO`: back to the idle image.
    Stop,
    /// `PAUSE`.
    Pause,
    /// `RESUME`.
    Resume,
    /// `SEEK:<seconds>`.
    Seek {
        /// From the start of the clip.
        seconds: f64,
    },
}

/// Why an audio or video command is not understood.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    /// Nothing to do.
    #[error("empty {0} command")]
    Empty(&'static str),
    /// `VOLUME:loud`.
    #[error("volume `{0}` is not a number between 0 and 1")]
    VolumeNotANumber(String),
    /// `VOLUME:7`.
    #[error("volume {0} is outside 0..1")]
    VolumeOutOfRange(f32),
    /// `PLAY:`.
    #[error("missing file name")]
    NoFile,
    /// `PLAY:../x.mp3`.
    #[error(
        "media file `{0}` must be a name inside the media directory (no absolute path, no `..`)"
    )]
    NotInMediaDir(String),
    /// `SEEK:soon`.
    #[error("SEEK needs a number of seconds, got `{0}`")]
    BadSeek(String),
    /// Not an audio command.
    #[error(
        "unknown audio command `{0}` (expected PLAY:<file>[:<volume>], STOP, STOP:<file>, PAUSE, RESUME, VOLUME:<0..1>, FADE_IN:<s>, FADE_OUT:<s> or a file name)"
    )]
    UnknownAudio(String),
    /// `FADE_IN:x`, `FADE_OUT:99`.
    #[error("{0} needs seconds from 0 to 60, got `{1}`")]
    BadFade(&'static str, String),
    /// Not a video command.
    #[error(
        "unknown video command `{0}` (expected PLAY_VIDEO:<file>, STOP_VIDEO, PAUSE, RESUME, SEEK:<seconds> or a file name)"
    )]
    UnknownVideo(String),
}

fn word<'a>(msg: &'a str, w: &str) -> Option<&'a str> {
    let head = msg.get(..w.len())?;
    if head.eq_ignore_ascii_case(w) {
        Some(&msg[w.len()..])
    } else {
        None
    }
}

fn volume(s: &str) -> Result<f32, CommandError> {
    let v: f32 = s
        .trim()
        .parse()
        .map_err(|_| CommandError::VolumeNotANumber(s.to_string()))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(CommandError::VolumeOutOfRange(v))
    }
}

fn file_name(s: &str) -> Result<String, CommandError> {
    let f = s.trim();
    if f.is_empty() {
        return Err(CommandError::NoFile);
    }
    check_relative(f)?;
    Ok(f.to_string())
}

/// Media names are relative to `media.dir`; no absolute paths, no `..`.
pub fn check_relative(name: &str) -> Result<(), CommandError> {
    let p = Path::new(name);
    if p.is_absolute()
        || p.components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(CommandError::NotInMediaDir(name.to_string()));
    }
    Ok(())
}

impl AudioCommand {
    /// Reads an audio payload (`PLAY:bg.mp3:0.8`, `STOP`, a file name, ...).
    pub fn parse(msg: &str) -> Result<AudioCommand, CommandError> {
        let m = msg.trim();
        if m.is_empty() {
            return Err(CommandError::Empty("audio"));
        }
        if let Some(rest) = word(m, "PLAY:") {
            // PLAY:<file>[:<volume>]: the volume is the part after the last
            // ':' if it is a number.
            if let Some((f, v)) = rest.rsplit_once(':')
                && v.trim().parse::<f32>().is_ok()
            {
                return Ok(AudioCommand::Play {
                    file: file_name(f)?,
                    volume: Some(volume(v)?),
                });
            }
            return Ok(AudioCommand::Play {
                file: file_name(rest)?,
                volume: None,
            });
        }
        if m.eq_ignore_ascii_case("STOP") {
            return Ok(AudioCommand::Stop { file: None });
        }
        if let Some(rest) = word(m, "STOP:") {
            return Ok(AudioCommand::Stop {
                file: Some(file_name(rest)?),
            });
        }
        if m.eq_ignore_ascii_case("PAUSE") {
            return Ok(AudioCommand::Pause);
        }
        if m.eq_ignore_ascii_case("RESUME") {
            return Ok(AudioCommand::Resume);
        }
        if let Some(rest) = word(m, "VOLUME:") {
            return Ok(AudioCommand::Volume {
                volume: volume(rest)?,
            });
        }
        for (w, name) in [("FADE_IN:", "FADE_IN"), ("FADE_OUT:", "FADE_OUT")] {
            if let Some(rest) = word(m, w) {
                let over = rest
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|s| (0.0..=60.0).contains(s))
                    .map(std::time::Duration::from_secs_f64)
                    .ok_or_else(|| CommandError::BadFade(name, rest.to_string()))?;
                return Ok(if name == "FADE_IN" {
                    AudioCommand::FadeIn { over }
                } else {
                    AudioCommand::FadeOut { over }
                });
            }
        }
        if m.contains(':') && !m.contains('.') {
            return Err(CommandError::UnknownAudio(m.to_string()));
        }
        Ok(AudioCommand::Play {
            file: file_name(m)?,
            volume: None,
        })
    }

    /// The file this command needs, if any.
    pub fn file(&self) -> Option<&str> {
        match self {
            AudioCommand::Play { file, .. } => Some(file),
            _ => None,
        }
    }
}

impl VideoCommand {
    /// Reads a video payload (`PLAY_VIDEO:clip.mp4`, `STOP_VIDEO`, a file name, ...).
    pub fn parse(msg: &str) -> Result<VideoCommand, CommandError> {
        let m = msg.trim();
        if m.is_empty() {
            return Err(CommandError::Empty("video"));
        }
        if let Some(rest) = word(m, "PLAY_VIDEO:") {
            return Ok(VideoCommand::Play {
                file: file_name(rest)?,
            });
        }
        if m.eq_ignore_ascii_case("STOP_VIDEO") || m.eq_ignore_ascii_case("STOP") {
            return Ok(VideoCommand::Stop);
        }
        if m.eq_ignore_ascii_case("PAUSE") {
            return Ok(VideoCommand::Pause);
        }
        if m.eq_ignore_ascii_case("RESUME") {
            return Ok(VideoCommand::Resume);
        }
        if let Some(rest) = word(m, "SEEK:") {
            let seconds: f64 = rest
                .trim()
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                .ok_or_else(|| CommandError::BadSeek(rest.to_string()))?;
            return Ok(VideoCommand::Seek { seconds });
        }
        if m.contains(':') && !m.contains('.') {
            return Err(CommandError::UnknownVideo(m.to_string()));
        }
        Ok(VideoCommand::Play {
            file: file_name(m)?,
        })
    }

    /// The clip this command needs, if any.
    pub fn file(&self) -> Option<&str> {
        match self {
            VideoCommand::Play { file } => Some(file),
            _ => None,
        }
    }
}

impl fmt::Display for AudioCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AudioCommand::Play { file, volume: None } => write!(f, "PLAY:{file}"),
            AudioCommand::Play {
                file,
                volume: Some(v),
            } => write!(f, "PLAY:{file}:{v}"),
            AudioCommand::Stop { file: None } => write!(f, "STOP"),
            AudioCommand::Stop { file: Some(x) } => write!(f, "STOP:{x}"),
            AudioCommand::Pause => write!(f, "PAUSE"),
            AudioCommand::Resume => write!(f, "RESUME"),
            AudioCommand::Volume { volume } => write!(f, "VOLUME:{volume}"),
            AudioCommand::FadeIn { over } => write!(f, "FADE_IN:{}", over.as_secs_f64()),
            AudioCommand::FadeOut { over } => write!(f, "FADE_OUT:{}", over.as_secs_f64()),
        }
    }
}

impl fmt::Display for VideoCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VideoCommand::Play { file } => write!(f, "PLAY_VIDEO:{file}"),
            VideoCommand::Stop => write!(f, "STOP_VIDEO"),
            VideoCommand::Pause => write!(f, "PAUSE"),
            VideoCommand::Resume => write!(f, "RESUME"),
            VideoCommand::Seek { seconds } => write!(f, "SEEK:{seconds}"),
        }
    }
}

/// Finds `name` in `dir`; a name without extension is tried with each of
/// `extensions` in order.
pub fn resolve_media(dir: &Path, name: &str, extensions: &[&str]) -> Option<PathBuf> {
    check_relative(name).ok()?;
    let direct = dir.join(name);
    if Path::new(name).extension().is_some() {
        return direct.is_file().then_some(direct);
    }
    if direct.is_file() {
        return Some(direct);
    }
    extensions
        .iter()
        .map(|e| dir.join(format!("{name}.{e}")))
        .find(|p| p.is_file())
}

/// Whether an end event for `played` (as resolved) satisfies a transition
/// target written as `target` (`intro`, `intro.mp3`, `sub/intro.mp3`).
pub fn same_media(target: &str, played: &str) -> bool {
    if target == played {
        return true;
    }
    let stem = |s: &str| {
        let p = Path::new(s);
        p.with_extension("").to_string_lossy().into_owned()
    };
    // `intro` matches `intro.mp3`; `intro.mp3` matches a played `intro`.
    (Path::new(target).extension().is_none() && stem(played) == target)
        || (Path::new(played).extension().is_none() && stem(target) == played)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_commands() {
        use AudioCommand::*;
        assert_eq!(
            AudioCommand::parse("PLAY:bg.mp3:0.8").unwrap(),
            Play {
                file: "bg.mp3".into(),
                volume: Some(0.8)
            }
        );
        assert_eq!(
            AudioCommand::parse("PLAY:bg.mp3").unwrap(),
            Play {
                file: "bg.mp3".into(),
                volume: None
            }
        );
        assert_eq!(
            AudioCommand::parse("sound1.mp3").unwrap(),
            Play {
                file: "sound1.mp3".into(),
                volume: None
            }
        );
        assert_eq!(AudioCommand::parse("stop").unwrap(), Stop { file: None });
        assert_eq!(
            AudioCommand::parse("STOP:sfx_boom.wav").unwrap(),
            Stop {
                file: Some("sfx_boom.wav".into())
            }
        );
        assert_eq!(AudioCommand::parse("PAUSE").unwrap(), Pause);
        assert_eq!(
            AudioCommand::parse("FADE_IN:2.5").unwrap(),
            FadeIn {
                over: std::time::Duration::from_millis(2500)
            }
        );
        assert_eq!(
            AudioCommand::parse("fade_out:0").unwrap(),
            FadeOut {
                over: std::time::Duration::ZERO
            }
        );
        assert_eq!(
            AudioCommand::parse("FADE_OUT:99").unwrap_err().to_string(),
            "FADE_OUT needs seconds from 0 to 60, got `99`"
        );
        assert_eq!(AudioCommand::parse("RESUME").unwrap(), Resume);
        assert_eq!(
            AudioCommand::parse("VOLUME:0.25").unwrap(),
            Volume { volume: 0.25 }
        );
        assert!(AudioCommand::parse("VOLUME:2").is_err());
        assert!(AudioCommand::parse("PLAY:bg.mp3:1.5").is_err());
        assert!(AudioCommand::parse("PLAY:").is_err());
        assert!(AudioCommand::parse("PLAY:../etc/passwd").is_err());
        assert!(AudioCommand::parse("FADE:3").is_err());
        assert!(AudioCommand::parse("").is_err());
    }

    #[test]
    fn video_commands() {
        use VideoCommand::*;
        assert_eq!(
            VideoCommand::parse("PLAY_VIDEO:a.mp4").unwrap(),
            Play {
                file: "a.mp4".into()
            }
        );
        assert_eq!(
            VideoCommand::parse("video1.mp4").unwrap(),
            Play {
                file: "video1.mp4".into()
            }
        );
        assert_eq!(VideoCommand::parse("STOP_VIDEO").unwrap(), Stop);
        assert_eq!(
            VideoCommand::parse("SEEK:12.5").unwrap(),
            Seek { seconds: 12.5 }
        );
        assert!(VideoCommand::parse("SEEK:x").is_err());
        assert!(VideoCommand::parse("/abs/file.mp4").is_err());
    }

    #[test]
    fn display_round_trips() {
        for m in [
            "PLAY:bg.mp3:0.8",
            "STOP",
            "STOP:x.wav",
            "PAUSE",
            "VOLUME:0.5",
        ] {
            assert_eq!(AudioCommand::parse(m).unwrap().to_string(), m);
        }
        for m in ["PLAY_VIDEO:a.mp4", "STOP_VIDEO", "SEEK:3"] {
            assert_eq!(VideoCommand::parse(m).unwrap().to_string(), m);
        }
    }

    #[test]
    fn resolves_with_extension_fallback() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("bg.wav"), b"x").unwrap();
        assert_eq!(
            resolve_media(d.path(), "bg", &AUDIO_EXTENSIONS),
            Some(d.path().join("bg.wav"))
        );
        assert_eq!(
            resolve_media(d.path(), "bg.wav", &AUDIO_EXTENSIONS),
            Some(d.path().join("bg.wav"))
        );
        assert_eq!(resolve_media(d.path(), "bg.mp3", &AUDIO_EXTENSIONS), None);
        assert_eq!(
            resolve_media(d.path(), "../bg.wav", &AUDIO_EXTENSIONS),
            None
        );
    }

    #[test]
    fn media_names_match_with_or_without_extension() {
        assert!(same_media("intro.mp3", "intro.mp3"));
        assert!(same_media("intro", "intro.mp3"));
        assert!(same_media("intro.mp3", "intro"));
        assert!(!same_media("intro.mp3", "outro.mp3"));
        assert!(!same_media("intro.wav", "intro.mp3"));
    }
}
