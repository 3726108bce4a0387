//! `roomctl check`: the config, every scene and every media file a scene
//! plays, reported as `file:line:col: message`. The daemon runs the same
//! checks at start.

use std::path::Path;

use crate::config::Config;
use crate::diag::{Diagnostic, Diagnostics, Pos};
use crate::media::command::{AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, resolve_media};
use crate::scene::load::{Loaded, load_scenes};
use crate::scene::{ActionKind, SceneSet};

/// Everything `check` found.
pub struct Report {
    /// The config, unless it failed to load.
    pub config: Option<Config>,
    /// The scenes that loaded.
    pub scenes: SceneSet,
    /// Problems that break something.
    pub errors: Diagnostics,
    /// Problems worth knowing (unknown keys, a missing player).
    pub warnings: Diagnostics,
    /// How many distinct media files the scenes play.
    pub media_files: usize,
}

impl Report {
    /// A config and no errors.
    pub fn ok(&self) -> bool {
        self.config.is_some() && self.errors.is_empty()
    }

    /// Takes the config out for a command that needs one, or says why
    /// there is none. Scene problems stay in the report.
    pub fn take_config(&mut self, path: &Path) -> anyhow::Result<Config> {
        self.config
            .take()
            .ok_or_else(|| invalid_config(path, &self.errors))
    }
}

/// Just the config, for commands that need no scenes.
pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    Config::load(path).map_err(|e| invalid_config(path, &e))
}

fn invalid_config(path: &Path, errors: &Diagnostics) -> anyhow::Error {
    anyhow::anyhow!(
        "configuration {} is invalid:
{errors}",
        path.display()
    )
}

/// Runs every check for the config at `path`.
pub fn check(path: &Path) -> Report {
    match Config::load(path) {
        Ok(c) => check_config(c),
        Err(errors) => Report {
            config: None,
            scenes: SceneSet::default(),
            errors,
            warnings: Diagnostics::default(),
            media_files: 0,
        },
    }
}

/// Runs the scene and media checks for a config already loaded (or built).
pub fn check_config(config: Config) -> Report {
    let Loaded {
        scenes,
        mut errors,
        warnings: scene_warnings,
    } = load_scenes(&config);
    let mut warnings = config.warnings.clone();
    warnings.extend(scene_warnings);
    errors.extend(references(&config, &scenes));
    let (media_errors, media_warnings, media_files) = media(&config, &scenes);
    errors.extend(media_errors);
    warnings.extend(media_warnings);
    Report {
        config: Some(config),
        scenes,
        errors,
        warnings,
        media_files,
    }
}

/// Scene names used by the config must exist.
pub fn references(config: &Config, scenes: &SceneSet) -> Diagnostics {
    let mut out = Diagnostics::default();
    let known = || scenes.names().collect::<Vec<_>>().join(", ");
    for t in &config.triggers {
        if scenes.get(&t.scene).is_none() {
            out.push(Diagnostic::new(
                &config.file,
                t.pos,
                format!(
                    "trigger scene `{}` does not exist (scenes: {})",
                    t.scene,
                    known()
                ),
            ));
        }
    }
    if let Some(d) = &config.scenes.default
        && scenes.get(d).is_none()
    {
        out.push(Diagnostic::new(
            &config.file,
            config.scenes.default_pos,
            format!("scenes.default `{d}` does not exist (scenes: {})", known()),
        ));
    }
    out
}

/// Every file a scene plays must be in `media.dir`.
fn media(config: &Config, scenes: &SceneSet) -> (Diagnostics, Diagnostics, usize) {
    let mut errors = Diagnostics::default();
    let mut warnings = Diagnostics::default();
    let dir = &config.media.dir;
    let mut found = std::collections::BTreeSet::new();
    let mut any_video = false;
    for s in scenes.iter() {
        for a in s.all_actions() {
            let (file, exts, what) = match &a.kind {
                ActionKind::Audio(c) => (c.file(), &AUDIO_EXTENSIONS[..], "audio"),
                ActionKind::Video(c) => {
                    any_video = true;
                    (c.file(), &VIDEO_EXTENSIONS[..], "video")
                }
                ActionKind::Mqtt => (None, &[][..], ""),
            };
            let Some(file) = file else { continue };
            match resolve_media(dir, file, exts) {
                Some(p) => {
                    found.insert(p);
                }
                None => errors.push(Diagnostic::new(
                    &s.file,
                    a.pos,
                    format!("{what} file `{file}` not found in {}", dir.display()),
                )),
            }
        }
    }
    if let Some(img) = &config.media.idle_image
        && !img.is_file()
    {
        errors.push(Diagnostic::new(
            &config.file,
            config.media.idle_image_pos,
            format!("media.idle_image {} does not exist", img.display()),
        ));
    }
    if any_video && config.media.video_enabled {
        let program = config
            .media
            .video_player
            .first()
            .map(String::as_str)
            .unwrap_or("");
        if !program.is_empty() && which(program).is_none() {
            warnings.push(Diagnostic::new(
                &config.file,
                Pos::UNKNOWN,
                format!("warning: video player `{program}` is not installed; clips will be reported as ended at once"),
            ));
        }
    }
    (errors, warnings, found.len())
}

/// Finds a program in PATH (or checks a path).
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    let p = Path::new(program);
    if p.components().count() > 1 {
        return p.is_file().then(|| p.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|c| c.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn reports_missing_media_unknown_scenes_with_positions() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "roomctl.yaml",
            "room: room1\nmqtt: {brokers: [{broker: h}]}\ntriggers:\n  - {topic: room1/button, scene: missing}\n",
        );
        write(
            d.path(),
            "scenes/intro.yaml",
            "name: intro\nactions:\n  - {at: 0, topic: room1/audio, message: 'PLAY:bg:0.5'}\n  - {at: 1, topic: room1/audio, message: 'PLAY:nope.mp3'}\n",
        );
        write(d.path(), "media/bg.ogg", "x");
        let r = check(&d.path().join("roomctl.yaml"));
        assert!(!r.ok());
        let text = r.errors.to_string();
        assert_eq!(r.errors.len(), 2, "{text}");
        assert!(
            text.contains(
                "roomctl.yaml:4:34: trigger scene `missing` does not exist (scenes: intro)"
            ),
            "{text}"
        );
        assert!(
            text.contains("intro.yaml:4:5: audio file `nope.mp3` not found"),
            "{text}"
        );
        assert_eq!(r.media_files, 1, "bg resolves to bg.ogg");
    }

    #[test]
    fn clean_setup_passes() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "c.yaml",
            "room: room1\nmqtt: {brokers: [{broker: h}]}\n",
        );
        write(
            d.path(),
            "scenes/a.yaml",
            "actions: [{at: 0, topic: room1/light, message: 'ON'}]\n",
        );
        let r = check(&d.path().join("c.yaml"));
        assert!(r.ok(), "{}", r.errors);
    }
}
