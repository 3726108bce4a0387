//! How long the sounds and clips a scene plays are, for its timeline and
//! its preview: measured from the real files once (a sound decoded, a
//! clip asked of mpv) and remembered by path, size and modification time
//! (a replaced file is measured again).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::SystemTime;

use parking_lot::Mutex;

use crate::config::MediaConfig;
use crate::media::command::{AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, resolve_media};
use crate::media::probe::{clip_length, prober};
use crate::scene::{Action, ActionKind};

/// Files remembered at most (a room has tens).
const MAX: usize = 512;

type Key = (PathBuf, u64, Option<SystemTime>);

/// Remembered sound lengths.
#[derive(Default)]
pub struct Lengths {
    known: Mutex<HashMap<Key, Option<f64>>>,
}

impl Lengths {
    /// The length in seconds of the sound or clip `a` plays from the
    /// media folders, if it plays one that can be measured (blocking).
    pub fn of(&self, media: &MediaConfig, a: &Action) -> Option<f64> {
        let (path, video) = match &a.kind {
            ActionKind::Audio(c) => (
                resolve_media(media.audio_dir(), c.file()?, &AUDIO_EXTENSIONS)?,
                false,
            ),
            ActionKind::Video(c) => (
                resolve_media(media.video_dir(), c.file()?, &VIDEO_EXTENSIONS)?,
                true,
            ),
            ActionKind::Mqtt => return None,
        };
        self.of_path(media, &path, video)
    }

    /// The length in seconds of the file at `path` (a clip when `video`),
    /// if it can be measured (blocking).
    pub fn of_path(&self, media: &MediaConfig, path: &std::path::Path, video: bool) -> Option<f64> {
        let meta = std::fs::metadata(path).ok()?;
        let key = (path.to_path_buf(), meta.len(), meta.modified().ok());
        if let Some(l) = self.known.lock().get(&key) {
            return *l;
        }
        let len = if video {
            clip_length(prober(&media.video_player), path).ok()
        } else {
            crate::media::audio::decode_length(path).ok()
        }
        .map(|d| d.as_secs_f64());
        let mut known = self.known.lock();
        if known.len() >= MAX {
            known.clear();
        }
        known.insert(key, len);
        len
    }
}
