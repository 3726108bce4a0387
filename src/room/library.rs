//! The media library through the room: a staged upload probed and put in
//! place, a file removed (refused while a scene or command file uses it,
//! which are named), and the library's view with what uses each file and
//! what the scenes name that is not there.

use serde::Serialize;

use super::{Room, RoomError};
use crate::media::library::{LibraryError, MediaFile, MediaKind, Upload};
use crate::media::same_media;

/// A change to the media folders.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaChange {
    /// A staged upload, put in place (replacing a file of its name only
    /// when `replace`).
    Add {
        /// The staged file.
        upload: Upload,
        /// Replace a file of the same name (it goes to the trash).
        replace: bool,
    },
    /// A file moved to the trash.
    Delete {
        /// Its name.
        name: String,
    },
}

impl std::fmt::Display for MediaChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let short = |s: &str| s.chars().take(64).collect::<String>();
        match self {
            MediaChange::Add { upload, replace } => write!(
                f,
                "{} media file {:?}",
                if *replace { "replace" } else { "add" },
                short(&upload.name())
            ),
            MediaChange::Delete { name } => write!(f, "delete media file {:?}", short(name)),
        }
    }
}

/// One file of the library and what uses it.
#[derive(Debug, Clone, Serialize)]
pub struct LibraryEntry {
    /// The file.
    #[serde(flatten)]
    pub file: MediaFile,
    /// Scenes and command files that play it.
    pub used_by: Vec<String>,
}

/// A file the scenes name that is not in the media folders.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MissingMedia {
    /// As written (`welcom.wav`).
    pub name: String,
    /// Sound or clip.
    pub kind: MediaKind,
    /// Who names it.
    pub used_by: Vec<String>,
}

/// The library as the page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct LibraryView {
    /// Every file, by name.
    pub files: Vec<LibraryEntry>,
    /// What the scenes name and is not there.
    pub missing: Vec<MissingMedia>,
    /// Free bytes on the disk of the sounds.
    pub free_bytes: Option<u64>,
    /// `media.max_upload` in bytes.
    pub max_upload: u64,
}

impl From<LibraryError> for RoomError {
    fn from(e: LibraryError) -> Self {
        match e {
            LibraryError::Exists(_) | LibraryError::InUse(..) => RoomError::Conflict(e.to_string()),
            LibraryError::Missing(_) => RoomError::NotFound(e.to_string()),
            LibraryError::Io(_) => RoomError::NotSaved(e.to_string()),
            _ => RoomError::BadRequest(e.to_string()),
        }
    }
}

impl Room {
    /// Every sound and clip the scenes and command files name: `(file as
    /// written, kind, who)`.
    fn media_names(&self) -> Vec<(String, MediaKind, String)> {
        let set = self.scenes.scenes();
        let mut out = Vec::new();
        let mut note = |who: &str, a: &crate::scene::Action| {
            let kind = match a.kind {
                crate::scene::ActionKind::Audio(_) => MediaKind::Audio,
                crate::scene::ActionKind::Video(_) => MediaKind::Video,
                crate::scene::ActionKind::Mqtt => return,
            };
            if let Some(f) = a.media_file() {
                out.push((f.to_string(), kind, who.to_string()));
            }
        };
        for s in set.iter() {
            s.all_actions().for_each(|a| note(&s.name, a));
        }
        for c in set.commands() {
            c.steps.iter().for_each(|st| note(&c.name, &st.action));
        }
        out
    }

    /// Who plays the file `name`.
    pub fn media_users(&self, name: &str) -> Vec<String> {
        let mut who: Vec<String> = self
            .media_names()
            .into_iter()
            .filter(|(f, _, _)| same_media(f, name))
            .map(|(_, _, w)| w)
            .collect();
        who.sort();
        who.dedup();
        who
    }

    /// The library, with what uses each file and what is missing
    /// (blocking: it measures new files).
    pub fn library_view(
        &self,
        length: &dyn Fn(MediaKind, &std::path::Path) -> Option<f64>,
    ) -> LibraryView {
        let files = self.library.list(length);
        let names = self.media_names();
        let entries = files
            .into_iter()
            .map(|file| {
                let mut used_by: Vec<String> = names
                    .iter()
                    .filter(|(f, k, _)| *k == file.kind && same_media(f, &file.name))
                    .map(|(_, _, w)| w.clone())
                    .collect();
                used_by.sort();
                used_by.dedup();
                LibraryEntry { file, used_by }
            })
            .collect::<Vec<_>>();
        let mut missing: Vec<MissingMedia> = Vec::new();
        for (f, kind, who) in names {
            let there = entries
                .iter()
                .any(|e| e.file.kind == kind && same_media(&f, &e.file.name));
            if there {
                continue;
            }
            match missing.iter_mut().find(|m| m.name == f) {
                Some(m) if !m.used_by.contains(&who) => m.used_by.push(who),
                Some(_) => {}
                None => missing.push(MissingMedia {
                    name: f,
                    kind,
                    used_by: vec![who],
                }),
            }
        }
        LibraryView {
            files: entries,
            missing,
            free_bytes: crate::media::library::free_bytes(self.library.dir(MediaKind::Audio)),
            max_upload: self.config.media.max_upload,
        }
    }

    /// Makes `change` (blocking: a new file is decoded to the end).
    pub(super) fn change_media(&self, change: MediaChange) -> Result<MediaFile, RoomError> {
        match change {
            MediaChange::Add { upload, replace } => {
                let staged = upload.take().ok_or_else(|| {
                    RoomError::BadRequest("that upload was handed in already".into())
                })?;
                let file = self.library.add(staged, replace)?;
                // A scene refused over this missing file loads now, and
                // every check sees the new file.
                let _ = self.reload();
                Ok(file)
            }
            MediaChange::Delete { name } => {
                Ok(self.library.delete(&name, &self.media_users(&name))?)
            }
        }
    }
}
