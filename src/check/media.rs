//! The media files the scenes play: each must be in its folder; a missing
//! one is said with the folder searched and the nearest name there.

use std::path::Path;

use crate::config::Config;
use crate::diag::{Diagnostic, Diagnostics, Pos};
use crate::media::command::{AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, resolve_media};
use crate::scene::{ActionKind, SceneSet};

use super::which;

/// Every file a scene plays must be in its folder (`media.audio_dir` /
/// `media.video_dir`, both defaulting to `media.dir`). With `only`, just
/// the files that scene or command file plays (the studio's check while
/// typing need not look at every other scene's media each time).
pub(super) fn media(
    config: &Config,
    scenes: &SceneSet,
    only: Option<&Path>,
) -> (Diagnostics, Diagnostics, usize) {
    let mut errors = Diagnostics::default();
    let mut warnings = Diagnostics::default();
    for (what, dir) in [
        ("media.audio_dir", config.media.audio_dir.as_deref()),
        ("media.video_dir", config.media.video_dir.as_deref()),
    ] {
        if let Some(d) = dir
            && !d.is_dir()
        {
            errors.push(Diagnostic::file(
                &config.file,
                format!("{what} {} is not a directory", d.display()),
            ));
        }
    }
    let mut found = std::collections::BTreeSet::new();
    let mut any_video = false;
    let actions = scenes
        .every_action()
        .filter(|(source, _)| only.is_none_or(|o| crate::diag::normalize(source) == o));
    for (source, a) in actions {
        let (file, exts, what, dir) = match &a.kind {
            ActionKind::Audio(c) => (
                c.file(),
                &AUDIO_EXTENSIONS[..],
                "audio",
                config.media.audio_dir(),
            ),
            ActionKind::Video(c) => {
                any_video = true;
                (
                    c.file(),
                    &VIDEO_EXTENSIONS[..],
                    "video",
                    config.media.video_dir(),
                )
            }
            ActionKind::Mqtt => continue,
        };
        let Some(file) = file else { continue };
        match resolve_media(dir, file, exts) {
            Some(p) => {
                found.insert(p);
            }
            None => errors.push(Diagnostic::new(
                source,
                a.pos,
                format!(
                    "{what} file `{file}` not found in {}{}",
                    crate::diag::absolute(dir).display(),
                    nearest(dir, file, exts)
                ),
            )),
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

/// ": did you mean `x`?" for the file in `dir` nearest to `file` (by name,
/// or by stem when `file` has no extension), else nothing.
fn nearest(dir: &Path, file: &str, exts: &[&str]) -> String {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return String::new();
    };
    let names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| {
            Path::new(n)
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| exts.iter().any(|x| x.eq_ignore_ascii_case(e)))
        })
        .collect();
    let bare = Path::new(file).extension().is_none();
    let candidates: Vec<&str> = if bare {
        names
            .iter()
            .filter_map(|n| Path::new(n).file_stem().and_then(|s| s.to_str()))
            .collect()
    } else {
        names.iter().map(String::as_str).collect()
    };
    crate::diag::did_you_mean(file, candidates)
}
