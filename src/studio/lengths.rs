//! How long the sounds a scene plays are, for its timeline: measured from
//! the real files once and remembered by path, size and modification time
//! (a replaced file is measured again). Clips are not measured (mpv would
//! have to open them); their marks have no length.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use parking_lot::Mutex;

use crate::media::command::{AUDIO_EXTENSIONS, resolve_media};
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
    /// The length in seconds of the sound `a` plays from `audio_dir`, if
    /// it plays one that decodes.
    pub fn of(&self, audio_dir: &Path, a: &Action) -> Option<f64> {
        let ActionKind::Audio(c) = &a.kind else {
            return None;
        };
        let path = resolve_media(audio_dir, c.file()?, &AUDIO_EXTENSIONS)?;
        let meta = std::fs::metadata(&path).ok()?;
        let key = (path.clone(), meta.len(), meta.modified().ok());
        if let Some(l) = self.known.lock().get(&key) {
            return *l;
        }
        let len = crate::media::audio::decode_length(&path)
            .ok()
            .map(|d| d.as_secs_f64());
        let mut known = self.known.lock();
        if known.len() >= MAX {
            known.clear();
        }
        known.insert(key, len);
        len
    }
}
