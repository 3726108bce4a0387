//! Scene files on disk as the studio edits them. A save names the version
//! the author started from and is refused when the file changed since (a
//! conflict, never an overwrite); it is written atomically (write, fsync,
//! rename) and kept with its time and author among the last saves of that
//! scene; a deleted scene goes to a trash it can be brought back from.
//! What a save contains is checked before, by the caller, through the one
//! scene loader: this module only keeps files.

use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The largest scene file the studio saves (a scene is a few KiB).
pub const MAX_SCENE_BYTES: usize = 256 * 1024;

/// Saves kept per scene (older ones are dropped).
const KEEP: usize = 30;

/// Why the store refused.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Not a plain scene file name.
    #[error("{0}")]
    BadName(String),
    /// No such scene file or saved version.
    #[error("{0}")]
    NotFound(String),
    /// Someone saved in between; nothing was written.
    #[error("{0}")]
    Conflict(String),
    /// Over [`MAX_SCENE_BYTES`].
    #[error("the scene is {0} bytes; a scene may have at most 256 KiB")]
    TooLarge(usize),
    /// The disk refused (full, read-only); what was on disk is unchanged.
    #[error("{0}")]
    Io(String),
}

/// A scene file's text and its version.
#[derive(Debug, Clone, Serialize)]
pub struct SceneSource {
    /// Its file name in the scenes folder (`intro.yaml`).
    pub file: String,
    /// Its text, exactly as on disk.
    pub text: String,
    /// What a save must name to replace it (a hash of the bytes).
    pub version: String,
}

/// One kept save.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HistoryEntry {
    /// Names it for [`SceneStore::version`] and revert.
    pub id: String,
    /// When it was saved (Unix ms).
    pub t_ms: u64,
    /// Who saved it (`file on disk` for the version the studio found).
    pub author: String,
    /// Its version (as [`SceneSource::version`]).
    pub version: String,
    /// Its size.
    pub bytes: usize,
}

/// A starting point for a new scene.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Template {
    /// Its id (`state-machine`).
    pub id: &'static str,
    /// In words.
    pub title: &'static str,
    /// The file's extension.
    pub ext: &'static str,
    /// The text, with `NAME` for the scene's name.
    pub text: &'static str,
}

/// What a new scene can start from.
pub const TEMPLATES: &[Template] = &[
    Template {
        id: "state-machine",
        title: "State machine (JSON, the room controllers' format)",
        ext: "json",
        text: r#"{
  "sceneId": "NAME",
  "description": "Lights up, then wait for the visitor's button (or 30 s)",
  "version": "2.0",
  "initialState": "intro",
  "states": {
    "intro": {
      "onEnter": [
        {"action": "mqtt", "topic": "ROOM/light", "message": "ON"}
      ],
      "transitions": [
        {"type": "timeout", "delay": 2, "goto": "waiting"}
      ]
    },
    "waiting": {
      "transitions": [
        {"type": "mqttMessage", "topic": "ROOM/NAME_button", "message": "pressed", "goto": "END"},
        {"type": "timeout", "delay": 30, "goto": "END"}
      ]
    }
  }
}
"#,
    },
    Template {
        id: "simple",
        title: "Timed list (YAML)",
        ext: "yaml",
        text: "name: NAME\ndescription: Lights on, then off\nactions:\n  - { at: 0, topic: ROOM/light, message: \"ON\" }\n  - { at: 5, topic: ROOM/light, message: \"OFF\" }\non_stop:\n  - { topic: ROOM/light, message: \"OFF\" }\n",
    },
];

impl Template {
    /// The template's text for scene `name` in room `room`.
    pub fn text_for(&self, name: &str, room: &str) -> String {
        self.text.replace("NAME", name).replace("ROOM", room)
    }
}

/// `file` if it is a plain scene file name: letters, digits, `_`, `-`,
/// `.`, ending `.yaml`, `.yml` or `.json`, not hidden, no path.
pub fn check_name(file: &str) -> Result<&str, StoreError> {
    let ok_chars = file
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    let ext_ok = [".yaml", ".yml", ".json"]
        .iter()
        .any(|e| file.len() > e.len() && file.ends_with(e));
    if file.len() > 100 || !ok_chars || file.starts_with('.') || file.contains("..") || !ext_ok {
        let shown: String = file.chars().take(40).collect();
        return Err(StoreError::BadName(format!(
            "`{}` is not a scene file name: letters, digits, `_`, `-` and `.`, ending .yaml, .yml or .json (no folders)",
            shown.escape_debug()
        )));
    }
    Ok(file)
}

/// The version of `bytes`: the first 16 hex digits of their SHA-256.
fn version_of(bytes: &[u8]) -> String {
    let h = Sha256::digest(bytes);
    h[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn io(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Io(format!(
        "cannot {what} {}: {e}; nothing on disk was changed",
        path.display()
    ))
}

/// The scenes folder and the studio's kept saves and trash.
pub struct SceneStore {
    dir: PathBuf,
    history: PathBuf,
    trash: PathBuf,
    /// One change at a time: the version check and the write are one step.
    lock: Mutex<()>,
}

impl SceneStore {
    /// Scenes in `dir`; saves and trash under `state_dir`.
    pub fn new(dir: &Path, state_dir: &Path) -> Self {
        SceneStore {
            dir: dir.to_path_buf(),
            history: state_dir.join("scene-history"),
            trash: state_dir.join("scene-trash"),
            lock: Mutex::new(()),
        }
    }

    /// Where scene `file` is.
    pub fn path(&self, file: &str) -> Result<PathBuf, StoreError> {
        Ok(self.dir.join(check_name(file)?))
    }

    /// The text and version of scene file `file`.
    pub fn read(&self, file: &str) -> Result<SceneSource, StoreError> {
        let path = self.path(file)?;
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(format!(
                    "there is no scene file {file}"
                )));
            }
            Err(e) => return Err(io("read", &path, e)),
        };
        let version = version_of(&bytes);
        let text = String::from_utf8(bytes).map_err(|e| {
            StoreError::Io(format!(
                "{file} is not UTF-8 text (from byte {}); fix it on disk",
                e.utf8_error().valid_up_to()
            ))
        })?;
        Ok(SceneSource {
            file: file.to_string(),
            text,
            version,
        })
    }

    /// Writes `text` as scene file `file`, if it is still at version
    /// `base` (`None`: the file must not exist yet). Keeps the version it
    /// replaces (the first time, as `file on disk`) and this one, by
    /// `author`. Returns the new version.
    pub fn save(
        &self,
        file: &str,
        text: &str,
        base: Option<&str>,
        author: &str,
    ) -> Result<String, StoreError> {
        if text.len() > MAX_SCENE_BYTES {
            return Err(StoreError::TooLarge(text.len()));
        }
        let path = self.path(file)?;
        let _one = self.lock.lock();
        let current = match self.read(file) {
            Ok(c) => Some(c),
            Err(StoreError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        match (&current, base) {
            (None, None) => {}
            (Some(_), None) => {
                return Err(StoreError::Conflict(format!(
                    "a scene file {file} exists already: open it, or choose another name"
                )));
            }
            (None, Some(_)) => {
                return Err(StoreError::Conflict(format!(
                    "{file} was deleted since you opened it; save it under a name to keep your text"
                )));
            }
            (Some(c), Some(b)) if c.version != b => {
                return Err(StoreError::Conflict(format!(
                    "{file} was changed since you opened it (by another save or on disk); your text is not saved: reload it to see the other change, then apply yours again"
                )));
            }
            (Some(_), Some(_)) => {}
        }
        // Nothing changed: nothing to write, nothing to keep.
        if let Some(c) = &current
            && c.text == text
        {
            return Ok(c.version.clone());
        }
        let now = now_ms();
        if let Some(c) = &current
            && self.entries(file)?.is_empty()
        {
            let t = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(now.saturating_sub(1), |d| d.as_millis() as u64);
            self.keep(file, t.min(now.saturating_sub(1)), "file on disk", &c.text)?;
        }
        let tmp = self.dir.join(format!(".{file}.tmp"));
        crate::durable::replace(&path, &tmp, text.as_bytes()).map_err(|e| io("write", &path, e))?;
        // Kept after the file is written: a failed keep loses no work.
        if let Err(e) = self.keep(file, now, author, text) {
            tracing::warn!(target: "web", "Scene {file} saved, but its history was not: {e}");
        }
        Ok(version_of(text.as_bytes()))
    }

    /// Moves scene file `file` (at version `base`) to the trash.
    pub fn delete(&self, file: &str, base: &str, author: &str) -> Result<(), StoreError> {
        let path = self.path(file)?;
        let _one = self.lock.lock();
        let current = self.read(file)?;
        if current.version != base {
            return Err(StoreError::Conflict(format!(
                "{file} was changed since you opened it; not deleted"
            )));
        }
        let now = now_ms();
        crate::durable::keep_in(&path, &self.trash, &format!("{now:013}"), file)
            .map_err(|e| io("move to the trash", &path, e))?;
        if let Err(e) = self.keep(file, now, &format!("{author} (deleted)"), &current.text) {
            tracing::warn!(target: "web", "Scene {file} deleted, but its history was not kept: {e}");
        }
        Ok(())
    }

    /// The kept saves of `file`, newest first.
    pub fn history(&self, file: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        check_name(file)?;
        let mut out = Vec::new();
        for (id, path) in self.entries(file)? {
            let Some((t, author)) = parse_id(&id) else {
                continue;
            };
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            out.push(HistoryEntry {
                id,
                t_ms: t,
                author,
                version: version_of(&bytes),
                bytes: bytes.len(),
            });
        }
        out.reverse();
        Ok(out)
    }

    /// The text of kept save `id` of `file`.
    pub fn version(&self, file: &str, id: &str) -> Result<String, StoreError> {
        check_name(file)?;
        let missing = || StoreError::NotFound(format!("{file} has no saved version {id}"));
        if parse_id(id).is_none() {
            return Err(missing());
        }
        let path = self.history.join(file).join(id);
        std::fs::read_to_string(&path).map_err(|_| missing())
    }

    /// The kept saves' files of `file`, oldest first.
    fn entries(&self, file: &str) -> Result<Vec<(String, PathBuf)>, StoreError> {
        let dir = self.history.join(file);
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("read", &dir, e)),
        };
        let mut out: Vec<(String, PathBuf)> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
            .filter(|(n, _)| parse_id(n).is_some())
            .collect();
        out.sort();
        Ok(out)
    }

    /// Keeps `text` as the save of `file` at `t` by `author`, dropping the
    /// oldest beyond [`KEEP`].
    fn keep(&self, file: &str, t: u64, author: &str, text: &str) -> Result<(), StoreError> {
        let dir = self.history.join(file);
        std::fs::create_dir_all(&dir).map_err(|e| io("create", &dir, e))?;
        // Ids sort in save order, even for two saves in one millisecond.
        let last = self.entries(file)?.last().and_then(|(id, _)| parse_id(id));
        let t = last.map_or(t, |(l, _)| t.max(l + 1));
        let author: String = author.chars().take(64).collect();
        let hex: String = author.bytes().map(|b| format!("{b:02x}")).collect();
        let id = format!("{t:013}-{hex}");
        let tmp = dir.join(format!(".{id}.tmp"));
        crate::durable::replace(&dir.join(&id), &tmp, text.as_bytes())
            .map_err(|e| io("write", &dir, e))?;
        let all = self.entries(file)?;
        for (_, old) in all.iter().take(all.len().saturating_sub(KEEP)) {
            let _ = std::fs::remove_file(old);
        }
        Ok(())
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `(time, author)` of a kept save's id (`<ms>-<author as hex>`).
fn parse_id(id: &str) -> Option<(u64, String)> {
    let (t, hex) = id.split_once('-')?;
    if t.len() != 13 || hex.len() % 2 != 0 {
        return None;
    }
    let t = t.parse().ok()?;
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    Some((t, String::from_utf8(bytes?).ok()?))
}

#[cfg(test)]
mod tests;
