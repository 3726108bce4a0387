//! Reading scene files (`scenes/*.yaml`, `*.yml`, `*.json`) into the model.
//!
//! Two forms: the simple `actions:` list (our own) and the state-machine
//! format room controllers of this kind already use (`sceneId`,
//! `initialState`, `states`, `globalEvents`). Existing files must load
//! unchanged, so keys we do not know are warnings, never errors. Every error
//! and warning carries `file:line:col`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

mod build;
mod command_file;
mod keys;
mod raw;
mod spans;

/// Where a scene's name is written (its `name:` or `"sceneId"`), else the
/// file's start (a scene named by its file name).
fn name_pos(text: &str, name: &str) -> crate::diag::Pos {
    for (i, line) in text.lines().enumerate() {
        if (line.contains("name") || line.contains("sceneId"))
            && let Some(c) = line.find(name)
        {
            return crate::diag::Pos {
                line: u32::try_from(i + 1).unwrap_or(u32::MAX),
                col: u32::try_from(line[..c].chars().count() + 1).unwrap_or(u32::MAX),
            };
        }
    }
    crate::diag::Pos { line: 1, col: 1 }
}

#[cfg(test)]
mod tests;

use super::{
    Action, ActionKind, Cue, END, Goto, Scene, SceneForm, SceneRef, State, Transition, Trigger,
};
use crate::config::{Config, Dur, Topics, ranges};
use crate::diag::{Diagnostic, Diagnostics, Pos};
use crate::media::command::{AudioCommand, VideoCommand};
use crate::mqtt::connect::MAX_PACKET_SIZE;
pub(crate) use build::Builder;
use command_file::parse_command_in;
pub use command_file::{
    COMMANDS_DIR, CommandFile, CommandSummary, Step, is_command_text, parse_command,
};
use keys::{Level, unknown_keys};
pub(crate) use keys::{Node, key_tree, unknown_step_keys};
pub(crate) use raw::RawItem;
use raw::{RawScene, RawState, RawTransition};
pub use spans::{StateRefs, state_refs};

/// The most YAML nodes a scene or command file may expand to (aliases
/// included): a real scene has a few hundred; an alias bomb is refused
/// before it costs seconds.
pub const MAX_NODES: usize = 100_000;

/// Parses scene or command text, within [`MAX_NODES`].
pub(crate) fn parse_yaml<'de, T: serde::Deserialize<'de>>(
    text: &'de str,
) -> Result<T, serde_saphyr::Error> {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = MAX_NODES;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    serde_saphyr::from_str_with_options(text, options)
}

/// Name of the single state of a simple-form scene.
pub const SIMPLE_STATE: &str = "main";

/// What scene loading needs from the config.
#[derive(Debug, Clone)]
pub struct SceneContext {
    /// The room id (default topics of local actions).
    pub room: String,
    /// Channels played on the Pi (`audio`, `video`).
    pub local_channels: Vec<String>,
    /// The sounds' and clips' folders, when known: a hint can then say
    /// which of two names that differ is the one on disk.
    pub media: Option<MediaDirs>,
}

/// Where sounds and clips are (`media.audio_dir`, `media.video_dir`).
#[derive(Debug, Clone)]
pub struct MediaDirs {
    /// Sounds.
    pub audio: PathBuf,
    /// Clips.
    pub video: PathBuf,
}

impl SceneContext {
    /// What the config says.
    pub fn from_config(c: &Config) -> Self {
        SceneContext {
            room: c.room.clone(),
            local_channels: c.feedback.local_channels.clone(),
            media: Some(MediaDirs {
                audio: c.media.audio_dir().to_path_buf(),
                video: c.media.video_dir().to_path_buf(),
            }),
        }
    }
}

/// The loaded scenes and command files, by name.
#[derive(Debug, Clone, Default)]
pub struct SceneSet {
    scenes: BTreeMap<String, SceneRef>,
    /// A scene's file name, with and without extension, when it differs
    /// from its name (the existing system names scenes by file).
    aliases: BTreeMap<String, String>,
    /// File names that could mean more than one scene: not used as names.
    ambiguous: Vec<String>,
    commands: BTreeMap<String, Arc<CommandFile>>,
}

impl SceneSet {
    /// A set of scenes, by name; each is also known by its file name (with
    /// and without extension) unless that would be ambiguous.
    pub fn new(scenes: impl IntoIterator<Item = Scene>) -> Self {
        let scenes: BTreeMap<String, SceneRef> = scenes
            .into_iter()
            .map(|s| (s.name.clone(), Arc::new(s)))
            .collect();
        let mut wanted: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
        for s in scenes.values() {
            let file_name = s.file.file_name().map(|f| f.to_string_lossy().into_owned());
            let stem = s.file.file_stem().map(|f| f.to_string_lossy().into_owned());
            for alias in file_name.into_iter().chain(stem) {
                if alias != s.name && !alias.is_empty() {
                    wanted.entry(alias).or_default().insert(s.name.clone());
                }
            }
        }
        let mut aliases = BTreeMap::new();
        let mut ambiguous = Vec::new();
        for (alias, names) in wanted {
            let mut all: Vec<String> = names.into_iter().collect();
            if scenes.contains_key(&alias) {
                all.insert(0, alias.clone());
            }
            if all.len() == 1 {
                aliases.insert(alias, all.remove(0));
            } else {
                ambiguous.push(format!(
                    "`{alias}` could mean scene {}: give the files and scenes distinct names",
                    all.iter()
                        .map(|n| {
                            let f = scenes[n].file.file_name().unwrap_or_default();
                            format!("`{n}` ({})", f.to_string_lossy())
                        })
                        .collect::<Vec<_>>()
                        .join(" or ")
                ));
            }
        }
        SceneSet {
            scenes,
            aliases,
            ambiguous,
            commands: BTreeMap::new(),
        }
    }

    /// This set, plus every scene of `old` whose file has errors now (is in
    /// `broken`) and that this set lacks: the last good definition keeps
    /// serving (starts, schedule, triggers) until the file is fixed.
    /// Returns the names kept that way.
    pub fn keeping_last_good(
        self,
        old: &SceneSet,
        broken: &std::collections::BTreeSet<PathBuf>,
    ) -> (SceneSet, Vec<String>) {
        let kept: Vec<&SceneRef> = old
            .scenes
            .values()
            .filter(|s| {
                broken.contains(&crate::diag::normalize(&s.file))
                    && !self.scenes.contains_key(&s.name)
            })
            .collect();
        if kept.is_empty() {
            return (self, Vec::new());
        }
        let names = kept.iter().map(|s| s.name.clone()).collect();
        let all = self.scenes.values().chain(kept).map(|s| Scene::clone(s));
        let mut set = SceneSet::new(all);
        set.commands = self.commands;
        (set, names)
    }

    /// The scene's own name for `name` (its name, or its file name with or
    /// without extension).
    pub fn resolve<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        if self.scenes.contains_key(name) {
            Some(name)
        } else {
            self.aliases.get(name).map(String::as_str)
        }
    }

    /// File names that could mean more than one scene, in words.
    pub fn ambiguities(&self) -> &[String] {
        &self.ambiguous
    }
    /// The same scenes with these command files.
    pub fn with_commands(mut self, commands: impl IntoIterator<Item = CommandFile>) -> Self {
        self.commands = commands
            .into_iter()
            .map(|c| (c.name.clone(), Arc::new(c)))
            .collect();
        self
    }
    /// The command file named `name`.
    pub fn command(&self, name: &str) -> Option<Arc<CommandFile>> {
        self.commands.get(name).cloned()
    }
    /// Every command file, sorted by name.
    pub fn commands(&self) -> impl Iterator<Item = &Arc<CommandFile>> {
        self.commands.values()
    }
    /// Every action of every scene (`on_stop` included) and command file,
    /// with the file it was written in.
    pub fn every_action(&self) -> impl Iterator<Item = (&Path, &Action)> {
        self.scenes
            .values()
            .flat_map(|s| s.all_actions().map(|a| (s.file.as_path(), a)))
            .chain(
                self.commands
                    .values()
                    .flat_map(|c| c.steps.iter().map(|s| (c.file.as_path(), &s.action))),
            )
    }
    /// The scene named `name` (or whose file is named `name`).
    pub fn get(&self, name: &str) -> Option<SceneRef> {
        self.resolve(name).and_then(|n| self.scenes.get(n)).cloned()
    }
    /// Every name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.scenes.keys().map(String::as_str)
    }
    /// Every scene, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &SceneRef> {
        self.scenes.values()
    }
    /// How many.
    pub fn len(&self) -> usize {
        self.scenes.len()
    }
    /// None at all.
    pub fn is_empty(&self) -> bool {
        self.scenes.is_empty()
    }
}

/// Result of loading a directory: the scenes that loaded, plus problems.
#[derive(Debug, Default)]
pub struct Loaded {
    /// What loaded.
    pub scenes: SceneSet,
    /// Names of the files that did not load (file stem, and the name
    /// written in the file when it could be read): references to them are
    /// not reported again.
    pub failed: Vec<String>,
    /// What did not, and why.
    pub errors: Diagnostics,
    /// Warnings (unknown keys, ...).
    pub warnings: Diagnostics,
}

/// Scene and command files in `dir` (`.yaml`, `.yml`, `.json`), sorted.
fn files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Loads every scene file in `config.scenes.dir` (sorted by file name) and
/// every command file: those in `scenes.dir/commands/`,
/// `scenes.dir/<room>/commands/`, and any file in `scenes.dir` whose top is
/// a list.
pub fn load_scenes(config: &Config) -> Loaded {
    load_scenes_with(config, None)
}

/// Text that stands in for a file of the scenes folder: what an editor
/// holds but has not saved, or a file checked from elsewhere as if it
/// were there.
#[derive(Debug, Clone, Copy)]
pub struct Overlay<'a> {
    /// Where it would be (in `scenes.dir` or one of its commands folders).
    pub path: &'a Path,
    /// Its text.
    pub text: &'a str,
}

impl Overlay<'_> {
    /// The text of `f`: the overlay's for its path, else read from disk.
    fn read(overlay: Option<Overlay<'_>>, f: &Path, what: &str) -> Result<String, Diagnostic> {
        match overlay {
            Some(o) if crate::diag::normalize(o.path) == crate::diag::normalize(f) => {
                Ok(o.text.to_string())
            }
            _ => crate::diag::read_text(f, what),
        }
    }

    /// `files` (of folder `dir`), with the overlay's path when it belongs
    /// there and is not on disk yet.
    fn add_to(overlay: Option<Overlay<'_>>, dir: &Path, files: &mut Vec<PathBuf>) {
        let Some(o) = overlay else { return };
        let norm = crate::diag::normalize(o.path);
        let here = norm
            .parent()
            .is_some_and(|p| p == crate::diag::normalize(dir));
        if here && !files.iter().any(|f| crate::diag::normalize(f) == norm) {
            files.push(o.path.to_path_buf());
            files.sort();
        }
    }
}

/// [`load_scenes`], with `overlay`'s text in place of its file (or added
/// to the folder): what the scenes would be if it were saved.
pub fn load_scenes_with(config: &Config, overlay: Option<Overlay<'_>>) -> Loaded {
    let ctx = SceneContext::from_config(config);
    let dir = &config.scenes.dir;
    let mut out = Loaded::default();
    let files = match files_in(dir) {
        Ok(mut f) => {
            Overlay::add_to(overlay, dir, &mut f);
            f
        }
        Err(e) => {
            out.errors.push(Diagnostic::file(
                dir,
                format!("cannot read scenes directory: {e}"),
            ));
            return out;
        }
    };
    let mut command_files: Vec<(PathBuf, String, Option<Node>)> = Vec::new();
    let mut scenes: Vec<Scene> = Vec::new();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for f in files {
        let text = match Overlay::read(overlay, &f, "scene") {
            Ok(t) => t,
            Err(e) => {
                out.errors.push(e);
                out.failed.extend(declared_names(&f, None));
                continue;
            }
        };
        // Read once, parsed into the key tree once and the typed form once.
        let keys = key_tree(&text);
        if keys.as_ref().is_some_and(Node::is_list) {
            command_files.push((f, text, keys));
            continue;
        }
        match parse_scene_in(&text, keys.as_ref(), &f, &ctx) {
            Ok((scene, warnings)) => {
                out.warnings.extend(warnings);
                if let Some(first) = seen.get(&scene.name) {
                    out.errors.push(Diagnostic::new(
                        &f,
                        name_pos(&text, &scene.name),
                        format!(
                            "scene name `{}` is already used by {}",
                            scene.name,
                            first.display()
                        ),
                    ));
                    continue;
                }
                seen.insert(scene.name.clone(), f.clone());
                scenes.push(scene);
            }
            Err((errors, warnings)) => {
                out.errors.extend(errors);
                out.warnings.extend(warnings);
                out.failed.extend(declared_names(&f, Some(&text)));
            }
        }
    }
    for sub in [
        dir.join(COMMANDS_DIR),
        dir.join(&config.room).join(COMMANDS_DIR),
    ] {
        if !sub.is_dir() {
            continue;
        }
        match files_in(&sub) {
            Ok(mut files) => {
                Overlay::add_to(overlay, &sub, &mut files);
                for f in files {
                    match Overlay::read(overlay, &f, "command file") {
                        Ok(t) => {
                            let keys = key_tree(&t);
                            command_files.push((f, t, keys));
                        }
                        Err(e) => out.errors.push(e),
                    }
                }
            }
            Err(e) => out.errors.push(Diagnostic::file(
                &sub,
                format!("cannot read commands directory: {e}"),
            )),
        }
    }
    let mut commands: Vec<CommandFile> = Vec::new();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for (f, text, keys) in command_files {
        match parse_command_in(&text, keys.as_ref(), &f, &ctx) {
            Ok((cmd, warnings)) => {
                out.warnings.extend(warnings);
                if let Some(first) = seen.get(&cmd.name) {
                    out.errors.push(Diagnostic::file(
                        &f,
                        format!(
                            "command name `{}` is already used by {}",
                            cmd.name,
                            crate::diag::normalize(first).display()
                        ),
                    ));
                    continue;
                }
                seen.insert(cmd.name.clone(), f.clone());
                commands.push(cmd);
            }
            Err((errors, warnings)) => {
                out.errors.extend(errors);
                out.warnings.extend(warnings);
            }
        }
    }
    out.scenes = SceneSet::new(scenes).with_commands(commands);
    for a in out.scenes.ambiguities() {
        out.errors.push(Diagnostic::file(dir, a.clone()));
    }
    out
}

/// The names a scene file that did not load goes by (its file name, and
/// `name` / `sceneId` when its `text` says), read as loosely as possible.
fn declared_names(path: &Path, text: Option<&str>) -> Vec<String> {
    #[derive(Deserialize)]
    struct Names {
        name: Option<String>,
        #[serde(rename = "sceneId")]
        scene_id: Option<String>,
    }
    let mut out: Vec<String> = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .into_iter()
        .collect();
    if let Some(text) = text
        && let Ok(n) = parse_yaml::<Names>(text)
    {
        out.extend(n.name);
        out.extend(n.scene_id);
    }
    out
}

/// Parses scene text. Ok carries warnings; Err carries errors and warnings.
pub fn parse_scene(
    text: &str,
    path: &Path,
    ctx: &SceneContext,
) -> Result<(Scene, Diagnostics), (Diagnostics, Diagnostics)> {
    parse_scene_in(text, key_tree(text).as_ref(), path, ctx)
}

/// [`parse_scene`] with the file's key tree already read.
fn parse_scene_in(
    text: &str,
    keys: Option<&Node>,
    path: &Path,
    ctx: &SceneContext,
) -> Result<(Scene, Diagnostics), (Diagnostics, Diagnostics)> {
    let raw: RawScene = parse_yaml(text).map_err(|e| {
        (
            Diagnostics::from(Diagnostic::from_yaml(path, &e)),
            Diagnostics::default(),
        )
    })?;
    let mut warnings = Diagnostics::default();
    let mut b = Builder::new(path, ctx);
    if let Some(tree) = keys {
        unknown_keys(tree, Level::Top, path, &mut warnings, &mut b.errors);
    }
    let mut scene = b.scene(raw);
    b.media_targets(&scene);
    scene.warnings = b
        .warnings
        .iter()
        .map(|d| format!("{}:{}: {}", d.line, d.col, d.message))
        .collect();
    warnings.extend(std::mem::take(&mut b.warnings));
    if b.errors.is_empty() {
        Ok((scene, warnings))
    } else {
        Err((b.errors, warnings))
    }
}
