//! Checking one scene or command file against the room: `roomctl check
//! FILE`, and the scene studio's check of the text in its editor. The
//! room's scenes are loaded with that text in place of the file (the one
//! loader, as if it were saved), every check runs, and what concerns that
//! file is kept.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::diag::{Diagnostic, Diagnostics, absolute, normalize};
use crate::scene::load::{COMMANDS_DIR, Loaded, Overlay, load_scenes_with};
use crate::scene::{CommandFile, SceneRef};

/// What checking one file found.
#[derive(Debug, Default)]
pub struct FileCheck {
    /// What stops it from loading, or breaks it when played.
    pub errors: Diagnostics,
    /// What loads but is most likely not meant.
    pub warnings: Diagnostics,
    /// The scene, when it is one and loaded.
    pub scene: Option<SceneRef>,
    /// The command file, when it is one and loaded.
    pub command: Option<std::sync::Arc<CommandFile>>,
}

impl FileCheck {
    /// No errors.
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Checks `text` as the file at `path` in the room's scenes folder (or
/// one of its commands folders), with the rest of the room as it is on
/// disk. `announced` are the command topics the boards answer.
pub fn check_text(config: &Config, path: &Path, text: &str, announced: &[String]) -> FileCheck {
    let overlay = Overlay { path, text };
    let Loaded {
        scenes,
        mut errors,
        warnings: mut all_warnings,
        ..
    } = load_scenes_with(config, Some(overlay));
    let me = normalize(path);
    let (media_errors, media_warnings, _) = super::media(config, &scenes, Some(&me));
    errors.extend(media_errors);
    all_warnings.extend(media_warnings);
    all_warnings.extend(super::flow::topics(config, &scenes, announced));
    let mine = |d: Diagnostics| Diagnostics(d.0.into_iter().filter(|d| d.file == me).collect());
    let scene = scenes.iter().find(|s| normalize(&s.file) == me).cloned();
    let command = scenes
        .commands()
        .find(|c| normalize(&c.file) == me)
        .cloned();
    FileCheck {
        errors: mine(errors),
        warnings: mine(all_warnings),
        scene,
        command,
    }
}

/// `roomctl check FILE`: the file at `file` (anywhere) checked as if it
/// were in the room's scenes folder: where it is when it is already in
/// that folder or a commands folder, else under its own name in the
/// scenes folder. Diagnostics name `file`.
pub fn check_file(config: &Config, file: &Path) -> FileCheck {
    let text = match crate::diag::read_text(file, "scene") {
        Ok(t) => t,
        Err(e) => return e.into(),
    };
    let place = place(config, file);
    let mut found = check_text(config, &place, &text, &[]);
    let to = normalize(file);
    for d in found.errors.0.iter_mut().chain(found.warnings.0.iter_mut()) {
        d.file = to.clone();
    }
    found
}

/// Where `file` is checked, written as the loader writes it: in the
/// scenes folder or the commands folder it is in, else the scenes folder
/// under its name.
fn place(config: &Config, file: &Path) -> PathBuf {
    let dir = &config.scenes.dir;
    let name = file.file_name().unwrap_or_default();
    let parent = file.parent().map(absolute);
    let homes = [
        dir.join(COMMANDS_DIR),
        dir.join(&config.room).join(COMMANDS_DIR),
    ];
    homes
        .into_iter()
        .find(|h| parent.as_ref() == Some(&absolute(h)))
        .unwrap_or_else(|| dir.clone())
        .join(name)
}

impl From<Diagnostic> for FileCheck {
    fn from(d: Diagnostic) -> Self {
        FileCheck {
            errors: d.into(),
            ..FileCheck::default()
        }
    }
}

#[cfg(test)]
mod tests;
