//! The room's sounds and clips as files: what is in `media.audio_dir` and
//! `media.video_dir` (kind, length, format, size), a new file added (it is
//! staged beside the others, probed, then renamed into place: never a
//! half file, and a replaced file goes to the trash first), and a file
//! removed (to the trash). Which scenes use a file is the caller's to say.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::command::{AUDIO_EXTENSIONS, VIDEO_EXTENSIONS};
use super::probe::{clip_length, prober};
use crate::config::MediaConfig;

/// A file's kind, by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    /// A sound (`.mp3`, `.wav`, `.ogg`), played by rodio.
    Audio,
    /// A clip (`.mp4`, `.mkv`, ...), played by mpv.
    Video,
}

/// One file of the library.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MediaFile {
    /// Its name in its folder (`chime.wav`).
    pub name: String,
    /// Sound or clip.
    pub kind: MediaKind,
    /// Bytes.
    pub size: u64,
    /// Unix time it was last written.
    pub modified: f64,
    /// Seconds, when it could be measured.
    pub duration: Option<f64>,
    /// `44100 Hz, 2 ch` for a sound.
    pub format: Option<String>,
}

/// Why a file cannot be added or removed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LibraryError {
    /// Not a plain file name with a known extension.
    #[error("{0}")]
    Name(String),
    /// There is a file of that name, and replacing was not asked for.
    #[error("there is a file `{0}` already; replace it or choose another name")]
    Exists(String),
    /// No such file.
    #[error("there is no file `{0}` in the media folders")]
    Missing(String),
    /// Scenes or command files use it.
    #[error("`{0}` is used by {1}: change them first")]
    InUse(String, String),
    /// It does not play.
    #[error("`{0}` is refused: {1}")]
    Unplayable(String, String),
    /// Another upload of that name is under way.
    #[error("`{0}` is being uploaded already: wait for that upload to end")]
    Busy(String),
    /// Over the size limit.
    #[error("the file is over the {0} MiB upload limit (media.max_upload)")]
    TooLarge(u64),
    /// Not enough room on the disk.
    #[error("only {0} MiB are free on the media disk: nothing was written")]
    NoSpace(u64),
    /// Reading or writing failed.
    #[error("{0}: nothing was changed")]
    Io(String),
}

/// The media folders and where removed files go.
#[derive(Debug, Clone)]
pub struct Library {
    audio: PathBuf,
    video: PathBuf,
    trash: PathBuf,
    player: String,
    /// Names being uploaded now: a second upload of one is refused.
    busy: std::sync::Arc<parking_lot::Mutex<std::collections::HashSet<String>>>,
}

/// Free bytes kept on the media disk beyond an upload.
const KEEP_FREE: u64 = 64 << 20;

impl Library {
    /// The library of `media`, its trash in `state_dir/media-trash`.
    pub fn new(media: &MediaConfig, state_dir: &Path) -> Library {
        Library {
            audio: media.audio_dir().to_path_buf(),
            video: media.video_dir().to_path_buf(),
            trash: state_dir.join("media-trash"),
            player: prober(&media.video_player).to_string(),
            busy: std::sync::Arc::default(),
        }
    }

    /// The folder files of `kind` live in.
    pub fn dir(&self, kind: MediaKind) -> &Path {
        match kind {
            MediaKind::Audio => &self.audio,
            MediaKind::Video => &self.video,
        }
    }

    /// The kind of a file named `name`, when the name is a plain file name
    /// with a known extension.
    pub fn kind_of(name: &str) -> Result<MediaKind, LibraryError> {
        let plain = !name.is_empty()
            && name.len() <= 128
            && !name.starts_with('.')
            && !name.contains(['/', '\\', '\0'])
            && !name.chars().any(char::is_control)
            && name.trim() == name;
        if !plain {
            return Err(LibraryError::Name(format!(
                "`{}` cannot name a media file: a plain file name, no folders, no leading dot",
                name.chars().take(64).collect::<String>().escape_debug()
            )));
        }
        let ext = Path::new(name)
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if AUDIO_EXTENSIONS.contains(&ext.as_str()) || ext == "flac" {
            Ok(MediaKind::Audio)
        } else if VIDEO_EXTENSIONS.contains(&ext.as_str()) {
            Ok(MediaKind::Video)
        } else {
            Err(LibraryError::Name(format!(
                "`{}` is neither a sound ({}, flac) nor a clip ({})",
                name.escape_debug(),
                AUDIO_EXTENSIONS.join(", "),
                VIDEO_EXTENSIONS.join(", ")
            )))
        }
    }

    /// Every file of both folders, by name (a folder read once when both
    /// are the same). `length` measures a file (remembered by the caller).
    pub fn list(&self, length: &dyn Fn(MediaKind, &Path) -> Option<f64>) -> Vec<MediaFile> {
        let mut out: Vec<MediaFile> = Vec::new();
        let mut dirs = vec![&self.audio];
        if self.video != self.audio {
            dirs.push(&self.video);
        }
        for dir in dirs {
            let Ok(rd) = std::fs::read_dir(dir) else {
                continue;
            };
            for e in rd.flatten().take(10_000) {
                let name = e.file_name().to_string_lossy().into_owned();
                let Ok(kind) = Self::kind_of(&name) else {
                    continue;
                };
                if self.dir(kind) != dir.as_path() {
                    continue;
                }
                let Ok(meta) = e.metadata() else { continue };
                if !meta.is_file() {
                    continue;
                }
                let path = e.path();
                out.push(MediaFile {
                    duration: length(kind, &path),
                    format: (kind == MediaKind::Audio)
                        .then(|| super::audio::sound_format(&path))
                        .flatten(),
                    name,
                    kind,
                    size: meta.len(),
                    modified: unix(meta.modified().ok()),
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The one file named `name`.
    pub fn path_of(&self, name: &str) -> Result<PathBuf, LibraryError> {
        let kind = Self::kind_of(name)?;
        let p = self.dir(kind).join(name);
        if p.is_file() {
            Ok(p)
        } else {
            Err(LibraryError::Missing(name.to_string()))
        }
    }

    /// A new file to write an upload named `name` into, beside where it
    /// goes (so it can be renamed into place), after checking the name,
    /// its size against `max_bytes` and the free space.
    pub fn stage(
        &self,
        name: &str,
        size: Option<u64>,
        max_bytes: u64,
    ) -> Result<Staged, LibraryError> {
        let kind = Self::kind_of(name)?;
        if size.is_some_and(|s| s > max_bytes) {
            return Err(LibraryError::TooLarge(max_bytes >> 20));
        }
        if !self.busy.lock().insert(name.to_string()) {
            return Err(LibraryError::Busy(name.to_string()));
        }
        let claim = Claim(self.busy.clone(), name.to_string());
        let dir = self.dir(kind);
        std::fs::create_dir_all(dir).map_err(|e| LibraryError::Io(e.to_string()))?;
        if let (Some(size), Some(free)) = (size, free_bytes(dir)) {
            if size.saturating_add(KEEP_FREE) > free {
                return Err(LibraryError::NoSpace(free >> 20));
            }
        }
        let path = dir.join(format!(".upload-{:016x}.part", rand::random::<u64>()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| LibraryError::Io(format!("cannot write in {}: {e}", dir.display())))?;
        Ok(Staged {
            path,
            file: Some(file),
            name: name.to_string(),
            kind,
            placed: false,
            _claim: claim,
        })
    }

    /// `staged` (written and closed) probed and put in place as its name;
    /// a file of that name goes to the trash first when `replace`.
    pub fn add(&self, mut staged: Staged, replace: bool) -> Result<MediaFile, LibraryError> {
        if let Some(f) = staged.file.take() {
            f.sync_all().map_err(|e| LibraryError::Io(e.to_string()))?;
        }
        let name = staged.name.clone();
        let meta = std::fs::metadata(&staged.path).map_err(|e| LibraryError::Io(e.to_string()))?;
        if meta.len() == 0 {
            return Err(LibraryError::Unplayable(name, "the file is empty".into()));
        }
        let (duration, format) = match staged.kind {
            MediaKind::Audio => {
                let d = super::audio::probe_sound(&staged.path)
                    .map_err(|reason| LibraryError::Unplayable(name.clone(), reason))?;
                (d, super::audio::sound_format(&staged.path))
            }
            MediaKind::Video => {
                let d = clip_length(&self.player, &staged.path).map_err(|e| {
                    LibraryError::Unplayable(
                        name.clone(),
                        format!("it does not play as a clip ({e})"),
                    )
                })?;
                (d, None)
            }
        };
        let dir = self.dir(staged.kind).to_path_buf();
        let target = dir.join(&name);
        if target.exists() {
            if !replace {
                return Err(LibraryError::Exists(name));
            }
            self.to_trash(&target, &name)?;
        }
        std::fs::rename(&staged.path, &target).map_err(|e| LibraryError::Io(e.to_string()))?;
        staged.placed = true;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(MediaFile {
            name,
            kind: staged.kind,
            size: meta.len(),
            modified: unix(std::fs::metadata(&target).and_then(|m| m.modified()).ok()),
            duration: Some(duration.as_secs_f64()),
            format,
        })
    }

    /// `name` moved to the trash; `used_by` names what uses it (then it
    /// stays). Returns the file as it was.
    pub fn delete(&self, name: &str, used_by: &[String]) -> Result<MediaFile, LibraryError> {
        let path = self.path_of(name)?;
        if !used_by.is_empty() {
            return Err(LibraryError::InUse(name.to_string(), used_by.join(", ")));
        }
        let meta = std::fs::metadata(&path).ok();
        self.to_trash(&path, name)?;
        Ok(MediaFile {
            name: name.to_string(),
            kind: Self::kind_of(name)?,
            size: meta.as_ref().map_or(0, |m| m.len()),
            modified: unix(meta.and_then(|m| m.modified().ok())),
            duration: None,
            format: None,
        })
    }

    /// `path` kept in the trash under a new stamped name (never on top of
    /// an earlier one), then removed from where it was.
    fn to_trash(&self, path: &Path, name: &str) -> Result<(), LibraryError> {
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis();
        crate::durable::keep_in(path, &self.trash, &format!("{stamp:013}"), name)
            .map(|_| ())
            .map_err(|e| LibraryError::Io(e.to_string()))
    }
}

/// An upload being written; removed unless it was put in place.
#[derive(Debug)]
pub struct Staged {
    path: PathBuf,
    file: Option<std::fs::File>,
    name: String,
    kind: MediaKind,
    placed: bool,
    _claim: Claim,
}

/// A name being uploaded; free again when dropped.
#[derive(Debug)]
struct Claim(
    std::sync::Arc<parking_lot::Mutex<std::collections::HashSet<String>>>,
    String,
);

impl Drop for Claim {
    fn drop(&mut self) {
        self.0.lock().remove(&self.1);
    }
}

impl Staged {
    /// Where the bytes go.
    pub fn file(&mut self) -> Option<&mut std::fs::File> {
        self.file.as_mut()
    }

    /// The file's name once in place.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.placed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A staged upload, handed to the room as part of a command (shared, so
/// the command can be cloned; whoever adds it takes it).
#[derive(Clone)]
pub struct Upload(std::sync::Arc<parking_lot::Mutex<Option<Staged>>>);

impl Upload {
    /// `staged`, to hand over.
    pub fn new(staged: Staged) -> Upload {
        Upload(std::sync::Arc::new(parking_lot::Mutex::new(Some(staged))))
    }

    /// The staged file, once.
    pub fn take(&self) -> Option<Staged> {
        self.0.lock().take()
    }

    /// Its file name once in place.
    pub fn name(&self) -> String {
        self.0
            .lock()
            .as_ref()
            .map(|s| s.name.clone())
            .unwrap_or_default()
    }
}

impl PartialEq for Upload {
    fn eq(&self, other: &Upload) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Upload({:?})", self.name())
    }
}

fn unix(t: Option<SystemTime>) -> f64 {
    t.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Free bytes on the disk of `dir`, for an unprivileged writer.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    crate::system::space(dir).map(|(free, _)| free)
}

#[cfg(test)]
#[path = "library/tests.rs"]
mod tests;
