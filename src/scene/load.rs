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
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::commands::{COMMANDS_DIR, CommandFile, is_command_text, parse_command};
use super::{
    Action, ActionKind, Cue, END, Goto, Scene, SceneForm, SceneRef, State, Transition, Trigger,
};
use crate::config::{Config, Dur, Topics, ranges};
use crate::diag::{Diagnostic, Diagnostics, Pos};
use crate::media::{AudioCommand, VideoCommand};
use crate::mqtt::connect::MAX_PACKET_SIZE;

/// Name of the single state of a simple-form scene.
pub const SIMPLE_STATE: &str = "main";

/// What scene loading needs from the config.
#[derive(Debug, Clone)]
pub struct SceneContext {
    /// The room id (default topics of local actions).
    pub room: String,
    /// Channels played on the Pi (`audio`, `video`).
    pub local_channels: Vec<String>,
}

impl SceneContext {
    /// What the config says.
    pub fn from_config(c: &Config) -> Self {
        SceneContext {
            room: c.room.clone(),
            local_channels: c.feedback.local_channels.clone(),
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
    let ctx = SceneContext::from_config(config);
    let dir = &config.scenes.dir;
    let mut out = Loaded::default();
    let files = match files_in(dir) {
        Ok(f) => f,
        Err(e) => {
            out.errors.push(Diagnostic::file(
                dir,
                format!("cannot read scenes directory: {e}"),
            ));
            return out;
        }
    };
    let mut command_files: Vec<(PathBuf, String)> = Vec::new();
    let mut scenes: Vec<Scene> = Vec::new();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for f in files {
        let text = match std::fs::read_to_string(&f) {
            Ok(t) => t,
            Err(e) => {
                out.errors
                    .push(Diagnostic::file(&f, format!("cannot read scene: {e}")));
                out.failed.extend(declared_names(&f));
                continue;
            }
        };
        if is_command_text(&text) {
            command_files.push((f, text));
            continue;
        }
        match parse_scene(&text, &f, &ctx) {
            Ok((scene, warnings)) => {
                out.warnings.extend(warnings);
                if let Some(first) = seen.get(&scene.name) {
                    out.errors.push(Diagnostic::file(
                        &f,
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
                out.failed.extend(declared_names(&f));
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
            Ok(files) => {
                for f in files {
                    match std::fs::read_to_string(&f) {
                        Ok(t) => command_files.push((f, t)),
                        Err(e) => out.errors.push(Diagnostic::file(
                            &f,
                            format!("cannot read command file: {e}"),
                        )),
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
    for (f, text) in command_files {
        match parse_command(&text, &f, &ctx) {
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

/// Whether a document's top is a list (a command file) or anything else.
pub(super) enum Shape {
    /// A list.
    Seq,
    /// A mapping or a scalar.
    Other,
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Shape;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Shape, A::Error> {
                while s.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Shape::Seq)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Shape, A::Error> {
                while m.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
                Ok(Shape::Other)
            }
            fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_unit<E>(self) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// Unknown keys of a command file's steps: warnings, or errors when they
/// look like a misspelt known key.
pub(super) fn unknown_step_keys(
    text: &str,
    path: &Path,
    warnings: &mut Diagnostics,
    errors: &mut Diagnostics,
) {
    if let Ok(tree @ Node::Seq(_)) = serde_saphyr::from_str::<Node>(text) {
        unknown_keys(&tree, Level::Step, path, warnings, errors);
    }
}

/// The names a scene file goes by, read as loosely as possible.
fn declared_names(path: &Path) -> Vec<String> {
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
    if let Ok(text) = std::fs::read_to_string(path)
        && let Ok(n) = serde_saphyr::from_str::<Names>(&text)
    {
        out.extend(n.name);
        out.extend(n.scene_id);
    }
    out
}

/// Loads one scene file.
pub fn load_file(
    path: &Path,
    ctx: &SceneContext,
) -> Result<(Scene, Diagnostics), (Diagnostics, Diagnostics)> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        (
            Diagnostics::from(Diagnostic::file(path, format!("cannot read scene: {e}"))),
            Diagnostics::default(),
        )
    })?;
    parse_scene(&text, path, ctx)
}

/// Parses scene text. Ok carries warnings; Err carries errors and warnings.
pub fn parse_scene(
    text: &str,
    path: &Path,
    ctx: &SceneContext,
) -> Result<(Scene, Diagnostics), (Diagnostics, Diagnostics)> {
    let raw: RawScene = serde_saphyr::from_str(text).map_err(|e| {
        (
            Diagnostics::from(Diagnostic::from_yaml(path, &e)),
            Diagnostics::default(),
        )
    })?;
    let mut warnings = Diagnostics::default();
    let mut b = Builder::new(path, ctx);
    if let Ok(tree) = serde_saphyr::from_str::<Node>(text) {
        unknown_keys(&tree, Level::Top, path, &mut warnings, &mut b.errors);
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

// ---------------------------------------------------------------------------
// Raw form
// ---------------------------------------------------------------------------

type S = Spanned<String>;

#[derive(Deserialize)]
struct RawScene {
    name: Option<S>,
    #[serde(rename = "sceneId")]
    scene_id: Option<S>,
    description: Option<String>,
    actions: Option<Spanned<Vec<Spanned<RawItem>>>>,
    duration: Option<Spanned<Dur>>,
    #[serde(alias = "onStop")]
    on_stop: Option<Vec<Spanned<RawItem>>>,
    #[serde(rename = "initialState")]
    initial_state: Option<S>,
    states: Option<Spanned<BTreeMap<String, Spanned<RawState>>>>,
    #[serde(rename = "globalEvents")]
    global_events: Option<Vec<Spanned<RawTransition>>>,
}

#[derive(Deserialize)]
struct RawState {
    description: Option<String>,
    #[serde(rename = "onEnter")]
    on_enter: Option<Vec<Spanned<RawItem>>>,
    #[serde(rename = "onExit")]
    on_exit: Option<Vec<Spanned<RawItem>>>,
    timeline: Option<Vec<Spanned<RawItem>>>,
    transitions: Option<Vec<Spanned<RawTransition>>>,
}

/// An action, a timed action, or a timed group (`actions: [...]`).
#[derive(Deserialize, Default)]
pub(super) struct RawItem {
    pub(super) at: Option<Spanned<Dur>>,
    pub(super) action: Option<S>,
    pub(super) topic: Option<S>,
    pub(super) message: Option<S>,
    pub(super) timeout: Option<Spanned<Dur>>,
    pub(super) retain: Option<Spanned<bool>>,
    pub(super) actions: Option<Vec<Spanned<RawItem>>>,
}

#[derive(Deserialize)]
struct RawTransition {
    #[serde(rename = "type")]
    kind: Option<S>,
    goto: Option<S>,
    delay: Option<Spanned<Dur>>,
    target: Option<S>,
    topic: Option<S>,
    message: Option<S>,
}

// ---------------------------------------------------------------------------
// Building the model
// ---------------------------------------------------------------------------

pub(super) struct Builder<'a> {
    file: &'a Path,
    ctx: &'a SceneContext,
    topics: Topics,
    pub(super) errors: Diagnostics,
    /// What loads but does not act (also kept on the scene).
    pub(super) warnings: Diagnostics,
}

impl<'a> Builder<'a> {
    pub(super) fn new(file: &'a Path, ctx: &'a SceneContext) -> Self {
        Builder {
            file,
            ctx,
            topics: Topics::new(&ctx.room),
            errors: Diagnostics::default(),
            warnings: Diagnostics::default(),
        }
    }

    pub(super) fn err(&mut self, pos: Pos, msg: impl Into<String>) {
        self.errors.push(Diagnostic::new(self.file, pos, msg));
    }

    pub(super) fn warn(&mut self, pos: Pos, msg: impl Into<String>) {
        self.warnings.push(Diagnostic::new(
            self.file,
            pos,
            format!("warning: {}", msg.into()),
        ));
    }

    /// A scene time (`at`, `duration`, `delay`): up to a day.
    pub(super) fn time(&mut self, d: &Spanned<Dur>, what: &str) -> Duration {
        let r = ranges::SCENE_TIME;
        if r.contains(d.value.0) {
            d.value.0
        } else {
            self.err(Pos::of(d), r.message(what, d.value.0));
            r.max
        }
    }

    fn scene(&mut self, raw: RawScene) -> Scene {
        let stem = self
            .file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name_src = raw.scene_id.as_ref().or(raw.name.as_ref());
        let name = name_src.map(|s| s.value.trim().to_string()).unwrap_or(stem);
        if !crate::topic::is_plain_level(&name) {
            self.err(
                name_src.map(Pos::of).unwrap_or_default(),
                format!("scene name `{name}` must be non-empty without '/', '+', '#'"),
            );
        }
        let on_stop = raw
            .on_stop
            .as_ref()
            .map(|items| self.actions(items, "on_stop"))
            .unwrap_or_default();

        let (form, initial_state, states, global_events) = match (&raw.actions, &raw.states) {
            (Some(a), Some(_)) => {
                self.err(
                    Pos::of(a),
                    "a scene has either `actions` (simple form) or `states` (state machine), not both",
                );
                (SceneForm::Simple, String::new(), BTreeMap::new(), vec![])
            }
            (None, None) => {
                self.err(
                    Pos { line: 1, col: 1 },
                    "scene has neither `actions` (simple form) nor `states` (state machine)",
                );
                (SceneForm::Simple, String::new(), BTreeMap::new(), vec![])
            }
            (Some(actions), None) => {
                let state = self.simple_state(actions, raw.duration.as_ref());
                let mut states = BTreeMap::new();
                states.insert(SIMPLE_STATE.to_string(), state);
                (SceneForm::Simple, SIMPLE_STATE.to_string(), states, vec![])
            }
            (None, Some(raw_states)) => {
                if let Some(d) = &raw.duration {
                    self.err(
                        Pos::of(d),
                        "`duration` belongs to the simple form; use a timeout transition",
                    );
                }
                let names: Vec<String> = raw_states.value.keys().cloned().collect();
                let mut states = BTreeMap::new();
                for (n, rs) in &raw_states.value {
                    let st = self.state(n, rs, &names);
                    states.insert(n.clone(), st);
                }
                let initial = match &raw.initial_state {
                    None => {
                        self.err(
                            Pos::of(raw_states),
                            "state machine scene needs `initialState`",
                        );
                        String::new()
                    }
                    Some(i) if !raw_states.value.contains_key(&i.value) => {
                        self.err(
                            Pos::of(i),
                            format!(
                                "initialState `{}` is not one of the states ({})",
                                i.value,
                                names.join(", ")
                            ),
                        );
                        String::new()
                    }
                    Some(i) => i.value.clone(),
                };
                if raw_states.value.is_empty() {
                    self.err(Pos::of(raw_states), "`states` is empty");
                }
                let mut global = Vec::new();
                for t in raw.global_events.iter().flatten() {
                    if let Some(tr) = self.transition(t, &names) {
                        if tr.trigger == Trigger::Always {
                            self.err(
                                Pos::of(t),
                                "`always` cannot be a global event (it would fire in every state)",
                            );
                            continue;
                        }
                        global.push(tr);
                    }
                }
                self.instant_loops(&states);
                (SceneForm::StateMachine, initial, states, global)
            }
        };

        Scene {
            name,
            description: raw.description.unwrap_or_default(),
            file: self.file.to_path_buf(),
            form,
            initial_state,
            states,
            global_events,
            on_stop,
            warnings: Vec::new(),
        }
    }

    /// An `audioEnd` / `videoEnd` target must name a file the scene plays,
    /// or the transition can never fire and the scene hangs there.
    fn media_targets(&mut self, scene: &Scene) {
        let mut audio = Vec::new();
        let mut video = Vec::new();
        for a in scene.all_actions() {
            match &a.kind {
                ActionKind::Audio(c) => audio.extend(c.file()),
                ActionKind::Video(c) => video.extend(c.file()),
                ActionKind::Mqtt => {}
            }
        }
        let transitions = scene
            .states
            .values()
            .flat_map(|s| s.transitions.iter())
            .chain(scene.global_events.iter());
        for t in transitions {
            let (target, played, what) = match &t.trigger {
                Trigger::AudioEnd(Some(target)) => (target, &audio, "audioEnd"),
                Trigger::VideoEnd(Some(target)) => (target, &video, "videoEnd"),
                _ => continue,
            };
            if !played.iter().any(|f| crate::media::same_media(target, f)) {
                let plays = if played.is_empty() {
                    "none".to_string()
                } else {
                    played.join(", ")
                };
                self.err(
                    t.pos,
                    format!("{what} target `{target}` is no file this scene plays (it plays: {plays}); the transition could never fire"),
                );
            }
        }
    }

    /// States that hand over to each other without time passing (`always`
    /// or a zero `timeout`, in a cycle) would run their actions in a tight
    /// loop: an error at load time.
    fn instant_loops(&mut self, states: &BTreeMap<String, State>) {
        // The transition a state takes at once, if any: the first listed
        // with no delay (that is the one the runner takes).
        fn instant(s: &State) -> Option<&Transition> {
            s.transitions.iter().find(|t| {
                matches!(t.trigger, Trigger::Always)
                    || t.trigger == Trigger::Timeout(Duration::ZERO)
            })
        }
        let mut reported = std::collections::BTreeSet::new();
        for start in states.keys() {
            let mut path: Vec<&str> = vec![start];
            let mut cur = start.as_str();
            while let Some(t) = states.get(cur).and_then(instant) {
                let Goto::State(next) = &t.goto else { break };
                if next == END && states.get(END).and_then(instant).is_none() {
                    break;
                }
                if let Some(i) = path.iter().position(|p| p == next) {
                    let cycle: Vec<&str> = path[i..].to_vec();
                    let mut key = cycle.clone();
                    key.sort();
                    if reported.insert(key) {
                        let pos = instant(&states[cycle[0]])
                            .map(|t| t.pos)
                            .unwrap_or_default();
                        let mut names: Vec<String> =
                            cycle.iter().map(|n| format!("`{n}`")).collect();
                        names.push(format!("`{}`", cycle[0]));
                        self.err(
                            pos,
                            format!(
                                "states {} hand over to each other without time passing (always / zero timeout): the scene would loop forever",
                                names.join(" -> ")
                            ),
                        );
                    }
                    break;
                }
                path.push(next);
                cur = next;
            }
        }
    }

    /// `actions:` → one state whose timeline is the list, ending after
    /// `duration` (default: the last `at`).
    fn simple_state(
        &mut self,
        items: &Spanned<Vec<Spanned<RawItem>>>,
        duration: Option<&Spanned<Dur>>,
    ) -> State {
        let timeline = self.timeline(
            &items.value,
            "actions",
            "action needs `at` (seconds from scene start)",
        );
        let last = timeline.last().map(|c| c.at).unwrap_or_default();
        let end = match duration.map(|d| (d, self.time(d, "duration"))) {
            Some((d, end)) if end < last => {
                self.err(
                    Pos::of(d),
                    format!(
                        "duration {:.3}s is before the last action at {:.3}s",
                        end.as_secs_f64(),
                        last.as_secs_f64()
                    ),
                );
                last
            }
            Some((_, end)) => end,
            None => last,
        };
        State {
            name: SIMPLE_STATE.to_string(),
            timeline,
            transitions: vec![Transition {
                trigger: Trigger::Timeout(end),
                goto: Goto::End,
                pos: duration.map(Pos::of).unwrap_or_default(),
            }],
            ..State::default()
        }
    }

    /// Timed items (`at` + one action or a group), sorted by `at`; equal
    /// times keep file order.
    fn timeline(&mut self, items: &[Spanned<RawItem>], what: &str, missing_at: &str) -> Vec<Cue> {
        let mut timeline = Vec::new();
        for item in items {
            let Some(at) = &item.value.at else {
                self.err(Pos::of(item), missing_at);
                continue;
            };
            if let Some(actions) = self.item_actions(item, what) {
                let at = self.time(at, "at");
                timeline.push(Cue { at, actions });
            }
        }
        timeline.sort_by_key(|c| c.at);
        timeline
    }

    fn state(&mut self, name: &str, rs: &Spanned<RawState>, names: &[String]) -> State {
        let r = &rs.value;
        let on_enter = r
            .on_enter
            .as_ref()
            .map(|v| self.actions(v, "onEnter"))
            .unwrap_or_default();
        let on_exit = r
            .on_exit
            .as_ref()
            .map(|v| self.actions(v, "onExit"))
            .unwrap_or_default();
        let timeline = self.timeline(
            r.timeline.as_deref().unwrap_or_default(),
            "timeline",
            "timeline item needs `at` (seconds from entering the state)",
        );
        let mut transitions = Vec::new();
        for t in r.transitions.iter().flatten() {
            if let Some(tr) = self.transition(t, names) {
                transitions.push(tr);
            }
        }
        State {
            name: name.to_string(),
            description: r.description.clone().unwrap_or_default(),
            on_enter,
            on_exit,
            timeline,
            transitions,
        }
    }

    /// A list of plain actions (onEnter, onExit, on_stop).
    fn actions(&mut self, items: &[Spanned<RawItem>], what: &str) -> Vec<Action> {
        let mut out = Vec::new();
        for item in items {
            if let Some(at) = &item.value.at {
                self.err(
                    Pos::of(at),
                    format!("`at` has no meaning in {what}; use a timeline"),
                );
            }
            if let Some(a) = self.item_actions(item, what) {
                out.extend(a);
            }
        }
        out
    }

    /// An item is one action or a group `{actions: [...]}`.
    fn item_actions(&mut self, item: &Spanned<RawItem>, what: &str) -> Option<Vec<Action>> {
        let r = &item.value;
        if let Some(group) = &r.actions {
            if r.topic.is_some() || r.message.is_some() || r.action.is_some() {
                self.err(
                    Pos::of(item),
                    "an item has either `actions: [...]` or one action, not both",
                );
                return None;
            }
            let mut out = Vec::new();
            for a in group {
                if a.value.actions.is_some() {
                    self.err(Pos::of(a), "action groups cannot be nested");
                    continue;
                }
                if let Some(x) = self.action(a, what) {
                    out.push(x);
                }
            }
            return Some(out);
        }
        self.action(item, what).map(|a| vec![a])
    }

    pub(super) fn action(&mut self, item: &Spanned<RawItem>, what: &str) -> Option<Action> {
        let r = &item.value;
        let pos = Pos::of(item);
        let Some(message) = &r.message else {
            self.err(pos, format!("action in {what} needs `message`"));
            return None;
        };
        let msg = message.value.clone();
        if msg.trim().is_empty() {
            self.err(Pos::of(message), "`message` must not be empty");
            return None;
        }
        let topic = r.topic.as_ref().map(|t| t.value.trim().to_string());
        if let Some(t) = &r.topic {
            let v = t.value.trim();
            let problem = match crate::topic::validate_name(v) {
                Err(e) => Some(e.to_string()),
                Ok(()) if v.starts_with('/') || v.ends_with('/') => {
                    Some(format!("topic `{v}` must not start or end with '/'"))
                }
                Ok(()) => None,
            };
            if let Some(p) = problem {
                self.err(Pos::of(t), format!("{p} (a plain topic like room1/light)"));
                return None;
            }
        }
        let channel = topic
            .as_deref()
            .map(|t| crate::topic::channel(t).to_string());
        let kind_name = match &r.action {
            Some(a) => a.value.trim().to_ascii_lowercase(),
            None => match &channel {
                Some(c) if self.ctx.local_channels.iter().any(|l| l == c) => c.clone(),
                Some(_) => "mqtt".into(),
                None => {
                    self.err(pos, "action needs `topic` (or `action: audio|video`)");
                    return None;
                }
            },
        };
        let parse_pos = Pos::of(message);
        let (kind, topic) = match kind_name.as_str() {
            "mqtt" => {
                let Some(topic) = topic else {
                    self.err(pos, "mqtt action needs `topic`");
                    return None;
                };
                (ActionKind::Mqtt, topic)
            }
            "audio" => match AudioCommand::parse(&msg) {
                Ok(c) => (
                    ActionKind::Audio(c),
                    topic.unwrap_or_else(|| format!("{}/audio", self.ctx.room)),
                ),
                Err(e) => {
                    self.err(parse_pos, e.to_string());
                    return None;
                }
            },
            "video" => match VideoCommand::parse(&msg) {
                Ok(c) => (
                    ActionKind::Video(c),
                    topic.unwrap_or_else(|| format!("{}/video", self.ctx.room)),
                ),
                Err(e) => {
                    self.err(parse_pos, e.to_string());
                    return None;
                }
            },
            other => {
                let p = r.action.as_ref().map(Pos::of).unwrap_or(pos);
                self.err(
                    p,
                    format!("unknown action type `{other}` (expected mqtt, audio or video)"),
                );
                return None;
            }
        };
        let range = ranges::FEEDBACK_TIMEOUT;
        if let Some(t) = &r.timeout
            && !range.contains(t.value.0)
        {
            self.err(Pos::of(t), range.message("timeout", t.value.0));
        }
        if topic.len() + msg.len() + 16 > MAX_PACKET_SIZE as usize {
            self.err(
                Pos::of(message),
                format!(
                    "message is {} bytes; an MQTT packet may carry at most {} KiB",
                    msg.len(),
                    MAX_PACKET_SIZE / 1024
                ),
            );
            return None;
        }
        let feedback = kind == ActionKind::Mqtt && topic != self.topics.all_stop();
        let mut retain = r.retain.as_ref().is_some_and(|x| x.value);
        if retain && kind != ActionKind::Mqtt {
            retain = false;
            self.warn(
                r.retain.as_ref().map(Pos::of).unwrap_or(pos),
                "`retain` has no meaning for audio/video played on the Pi (ignored)",
            );
        }
        Some(Action {
            kind,
            topic,
            message: msg,
            timeout: r.timeout.as_ref().map(|t| t.value.0),
            feedback,
            retain,
            pos,
        })
    }

    fn transition(&mut self, t: &Spanned<RawTransition>, names: &[String]) -> Option<Transition> {
        let r = &t.value;
        let pos = Pos::of(t);
        let Some(kind) = &r.kind else {
            // Editors of the existing format leave such stubs behind: the
            // scene loads, the transition can never fire.
            let to = r
                .goto
                .as_ref()
                .map(|g| format!(" (goto `{}`)", g.value.trim()))
                .unwrap_or_default();
            self.warn(
                pos,
                format!("transition without `type`{to} never fires (types: timeout, audioEnd, videoEnd, mqttMessage, always)"),
            );
            return None;
        };
        let goto = match &r.goto {
            None => {
                self.err(pos, "transition needs `goto` (a state name or END)");
                return None;
            }
            Some(g) => {
                let v = g.value.trim();
                if names.iter().any(|n| n == v) {
                    // A state named END runs its onEnter, then the scene ends.
                    Goto::State(v.to_string())
                } else if v.eq_ignore_ascii_case(END) {
                    Goto::End
                } else {
                    self.err(
                        Pos::of(g),
                        format!("goto `{v}` is not a state ({}) or END", names.join(", ")),
                    );
                    return None;
                }
            }
        };
        let trigger = match kind.value.trim() {
            "timeout" => match &r.delay {
                Some(d) => Trigger::Timeout(self.time(d, "delay")),
                None => {
                    self.err(pos, "timeout transition needs `delay` (seconds)");
                    return None;
                }
            },
            "audioEnd" => Trigger::AudioEnd(r.target.as_ref().map(|t| t.value.trim().to_string())),
            "videoEnd" => Trigger::VideoEnd(r.target.as_ref().map(|t| t.value.trim().to_string())),
            "mqttMessage" => match &r.topic {
                None => {
                    self.err(pos, "mqttMessage transition needs `topic`");
                    return None;
                }
                Some(topic) => {
                    if let Err(e) = crate::topic::validate_filter(topic.value.trim()) {
                        self.err(Pos::of(topic), format!("mqttMessage topic: {e}"));
                        return None;
                    }
                    Trigger::MqttMessage {
                        topic: topic.value.trim().to_string(),
                        message: r.message.as_ref().map(|m| m.value.clone()),
                    }
                }
            },
            "always" => Trigger::Always,
            other => {
                self.err(
                    Pos::of(kind),
                    format!("unknown transition type `{other}` (expected timeout, audioEnd, videoEnd, mqttMessage or always)"),
                );
                return None;
            }
        };
        Some(Transition { trigger, goto, pos })
    }
}

// ---------------------------------------------------------------------------
// Unknown keys (warnings)
// ---------------------------------------------------------------------------

/// A YAML/JSON tree that keeps only key positions.
enum Node {
    Map(Vec<(Spanned<String>, Node)>),
    Seq(Vec<Node>),
    Scalar,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Node, A::Error> {
                let mut v = Vec::new();
                while let Some(k) = m.next_key::<Spanned<String>>()? {
                    v.push((k, m.next_value::<Node>()?));
                }
                Ok(Node::Map(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Node, A::Error> {
                let mut v = Vec::new();
                while let Some(n) = s.next_element::<Node>()? {
                    v.push(n);
                }
                Ok(Node::Seq(v))
            }
            fn visit_str<E>(self, _: &str) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_string<E>(self, _: String) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Clone, Copy)]
enum Level {
    Top,
    States,
    State,
    Item,
    Transition,
    /// A step of a command file.
    Step,
}

/// Keys written by scene editors of this format that have no effect here.
const EDITOR_KEYS: [&str; 1] = ["globalPrefix"];

/// Keys scene editors add for themselves (ids, canvas positions, colours,
/// notes): unknown to roomctl, reported as warnings, never errors even when
/// they look like a known key.
const EDITOR_METADATA: [&str; 27] = [
    "id",
    "uid",
    "uuid",
    "position",
    "pos",
    "x",
    "y",
    "ui",
    "meta",
    "metadata",
    "editor",
    "color",
    "colour",
    "notes",
    "note",
    "comment",
    "label",
    "layout",
    "width",
    "height",
    "created",
    "modified",
    "updated",
    "author",
    "tags",
    "icon",
    "collapsed",
];

/// Editor bookkeeping by its shape: `_private`, `x-vendor`, `stateId`,
/// `node_id`, `canvasPosition`.
fn looks_like_metadata(key: &str) -> bool {
    key.starts_with('_')
        || key.starts_with("x-")
        || key.ends_with("Id")
        || key.ends_with("_id")
        || key.ends_with("Position")
        || key.ends_with("_position")
}

/// Edit distance (insertions, deletions, substitutions) between two keys.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// What an unknown key most likely is.
enum Unknown {
    /// Editor metadata or anything else: a warning.
    Ignored,
    /// `{ at: 2,5 }` in flow style makes `5` a key: the cue is wrong.
    Number,
    /// Within two edits of a known key (`on_stopp`): that part of the
    /// scene would silently be missing.
    Misspelt(&'static str),
}

fn classify(key: &str, level: Level) -> Unknown {
    if key.parse::<f64>().is_ok() {
        return Unknown::Number;
    }
    if EDITOR_METADATA.iter().any(|m| m.eq_ignore_ascii_case(key))
        || looks_like_metadata(key)
        || key.chars().count() < 4
    {
        return Unknown::Ignored;
    }
    known(level)
        .iter()
        .map(|k| (distance(key, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map_or(Unknown::Ignored, |(_, k)| Unknown::Misspelt(k))
}

fn known(level: Level) -> &'static [&'static str] {
    match level {
        Level::Top => &[
            "name",
            "sceneId",
            "description",
            "version",
            "actions",
            "duration",
            "on_stop",
            "onStop",
            "initialState",
            "states",
            "globalEvents",
        ],
        Level::States => &[],
        Level::State => &[
            "description",
            "onEnter",
            "onExit",
            "timeline",
            "transitions",
        ],
        Level::Item => &[
            "at", "action", "topic", "message", "timeout", "retain", "actions",
        ],
        Level::Transition => &["type", "goto", "delay", "target", "topic", "message"],
        Level::Step => &[
            "timestamp",
            "at",
            "action",
            "topic",
            "message",
            "timeout",
            "retain",
        ],
    }
}

/// Reports keys roomctl does not know: a warning (editor metadata, other
/// tools' keys), or an error when the key is clearly a mistake that would
/// silently change the show (a decimal comma, a misspelt known key).
fn unknown_keys(
    node: &Node,
    level: Level,
    file: &Path,
    out: &mut Diagnostics,
    errors: &mut Diagnostics,
) {
    let child = |key: &str, level: Level| -> Option<Level> {
        match (level, key) {
            (Level::Top, "actions" | "on_stop" | "onStop") => Some(Level::Item),
            (Level::Top, "states") => Some(Level::States),
            (Level::Top, "globalEvents") => Some(Level::Transition),
            (Level::States, _) => Some(Level::State),
            (Level::State, "onEnter" | "onExit" | "timeline") => Some(Level::Item),
            (Level::State, "transitions") => Some(Level::Transition),
            (Level::Item, "actions") => Some(Level::Item),
            _ => None,
        }
    };
    match node {
        Node::Map(entries) => {
            for (k, v) in entries {
                let is_known =
                    matches!(level, Level::States) || known(level).contains(&k.value.as_str());
                if !is_known {
                    let key = k.value.as_str();
                    match classify(key, level) {
                        _ if EDITOR_KEYS.contains(&key) => {}
                        Unknown::Ignored => out.push(Diagnostic::new(
                            file,
                            Pos::of(k),
                            format!("warning: unknown key `{key}` (ignored)"),
                        )),
                        Unknown::Number => errors.push(Diagnostic::new(
                            file,
                            Pos::of(k),
                            format!(
                                "`{key}` is a number where a key belongs: a decimal comma? In flow style `{{ at: 2,5 }}` the comma ends the value (at 2) and `5` becomes a key; write 2.5"
                            ),
                        )),
                        Unknown::Misspelt(known) => errors.push(Diagnostic::new(
                            file,
                            Pos::of(k),
                            format!("unknown key `{key}`: did you mean `{known}`? (as written it is ignored)"),
                        )),
                    }
                    continue;
                }
                if let Some(l) = child(&k.value, level) {
                    unknown_keys(v, l, file, out, errors);
                }
            }
        }
        Node::Seq(items) => {
            for i in items {
                unknown_keys(i, level, file, out, errors);
            }
        }
        Node::Scalar => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ctx() -> SceneContext {
        SceneContext {
            room: "room1".into(),
            local_channels: vec!["audio".into(), "video".into()],
        }
    }

    fn parse(text: &str) -> Result<Scene, String> {
        parse_scene(text, Path::new("scenes/t.yaml"), &ctx())
            .map(|(s, _)| s)
            .map_err(|(e, _)| e.to_string())
    }

    const INTRO: &str = r#"
name: intro
description: Lights up, music, steam, motor
actions:
  - { at: 0.0,  topic: room1/light, message: "ON" }
  - { at: 2.5,  topic: room1/audio, message: "PLAY:bg.mp3:0.8" }
  - { at: 5.0,  topic: room1/steam, message: "ON" }
  - { at: 10.0, topic: room1/motor, message: START, timeout: 2s }
on_stop:
  - { topic: room1/steam, message: "OFF" }
"#;

    #[test]
    fn simple_form_is_one_state_ending_after_the_last_action() {
        let s = parse(INTRO).unwrap();
        assert_eq!(s.name, "intro");
        assert_eq!(s.form, SceneForm::Simple);
        let st = s.state(SIMPLE_STATE).unwrap();
        assert_eq!(st.timeline.len(), 4);
        assert_eq!(
            st.timeline[1].actions[0].kind,
            ActionKind::Audio(AudioCommand::Play {
                file: "bg.mp3".into(),
                volume: Some(0.8)
            })
        );
        assert!(!st.timeline[1].actions[0].feedback);
        assert!(st.timeline[0].actions[0].feedback);
        assert_eq!(
            st.timeline[3].actions[0].timeout,
            Some(Duration::from_secs(2))
        );
        assert_eq!(s.duration(), Some(Duration::from_secs(10)));
        assert_eq!(s.on_stop.len(), 1);
        assert_eq!(s.summary().action_count, 4);
    }

    #[test]
    fn explicit_duration_and_unsorted_actions() {
        let s = parse("actions:\n  - {at: 3, topic: r/a, message: X}\n  - {at: 1, topic: r/b, message: Y}\nduration: 20\n").unwrap();
        assert_eq!(s.name, "t", "name defaults to the file stem");
        let st = s.state(SIMPLE_STATE).unwrap();
        assert_eq!(st.timeline[0].at, Duration::from_secs(1));
        assert_eq!(s.duration(), Some(Duration::from_secs(20)));
        let e = parse("actions:\n  - {at: 3, topic: r/a, message: X}\nduration: 2\n").unwrap_err();
        assert!(
            e.contains("t.yaml:3:11: duration 2.000s is before the last action"),
            "{e}"
        );
    }

    const EDITOR_JSON: &str = r#"{
  "sceneId": "room1_intro",
  "description": "Úvodná show",
  "version": "2.0",
  "initialState": "start",
  "globalPrefix": "room1",
  "states": {
    "start": {
      "onEnter": [
        {"topic": "room1/light", "message": "OFF"},
        {"topic": "room1/audio", "message": "PLAY:welcome.mp3"}
      ],
      "transitions": [
        {"type": "audioEnd", "goto": "main_show"}
      ]
    },
    "main_show": {
      "timeline": [
        {"at": 2.0, "topic": "room1/motor1", "message": "ON:50:L"}
      ],
      "transitions": [
        {"type": "timeout", "delay": 10.0, "goto": "end"}
      ]
    }
  }
}"#;

    #[test]
    fn editor_state_machine_json_loads_unchanged() {
        let (s, warnings) =
            parse_scene(EDITOR_JSON, Path::new("scenes/room1_intro.json"), &ctx()).unwrap();
        assert!(warnings.is_empty(), "{warnings}");
        assert_eq!(s.name, "room1_intro");
        assert_eq!(s.form, SceneForm::StateMachine);
        assert_eq!(s.initial_state, "start");
        let start = s.state("start").unwrap();
        assert_eq!(start.on_enter.len(), 2);
        assert!(matches!(start.on_enter[1].kind, ActionKind::Audio(_)));
        assert_eq!(start.transitions[0].trigger, Trigger::AudioEnd(None));
        let main = s.state("main_show").unwrap();
        assert_eq!(
            main.transitions[0].goto,
            Goto::End,
            "lowercase `end` with no such state ends the scene"
        );
        assert_eq!(s.duration(), None, "waits for the audio to end");
    }

    #[test]
    fn full_format_with_groups_global_events_and_end_state() {
        let text = r#"{
  "sceneId": "show",
  "initialState": "a",
  "globalEvents": [{"type": "mqttMessage", "topic": "room1/emergency", "message": "PRESSED", "goto": "END"}],
  "states": {
    "a": {
      "timeline": [{"at": 1, "actions": [
          {"action": "mqtt", "topic": "room1/light", "message": "ON"},
          {"action": "video", "message": "PLAY_VIDEO:clip.mp4"}]}],
      "transitions": [{"type": "always", "goto": "b"}]
    },
    "b": {"transitions": [{"type": "timeout", "delay": 4, "goto": "END"}]},
    "END": {"onEnter": [{"action": "audio", "message": "STOP"}]}
  }
}"#;
        let s = parse(text).unwrap();
        let a = s.state("a").unwrap();
        assert_eq!(a.timeline[0].actions.len(), 2);
        assert_eq!(a.timeline[0].actions[1].topic, "room1/video");
        assert_eq!(s.global_events.len(), 1);
        assert_eq!(
            s.state("b").unwrap().transitions[0].goto,
            Goto::State("END".into())
        );
        assert_eq!(s.event_topics(), ["room1/emergency"]);
        assert_eq!(
            s.duration(),
            Some(Duration::from_secs(4)),
            "a -> b at once, b -> END after 4 s"
        );
    }

    #[test]
    fn errors_point_at_the_problem() {
        let e = parse("sceneId: x\ninitialState: nope\nstates:\n  a:\n    transitions:\n      - {type: timeout, delay: 1, goto: b}\n      - {type: teleport, goto: a}\n").unwrap_err();
        assert!(
            e.contains("t.yaml:2:15: initialState `nope` is not one of the states (a)"),
            "{e}"
        );
        assert!(
            e.contains("t.yaml:6:41: goto `b` is not a state (a) or END"),
            "{e}"
        );
        assert!(
            e.contains("t.yaml:7:16: unknown transition type `teleport`"),
            "{e}"
        );

        let e = parse("actions:\n  - {at: 0, topic: room1/audio, message: \"PLAY:x.mp3:7\"}\n  - {at: 1, topic: room1/light}\n  - {topic: room1/light, message: ON}\n").unwrap_err();
        assert!(e.contains("t.yaml:2:42: volume 7 is outside 0..1"), "{e}");
        assert!(
            e.contains("t.yaml:3:5: action in actions needs `message`"),
            "{e}"
        );
        assert!(e.contains("t.yaml:4:5: action needs `at`"), "{e}");

        let e =
            parse("actions:\n  - {at: 0, action: laser, topic: r/x, message: ON}\n").unwrap_err();
        assert!(e.contains(":2:21: unknown action type `laser`"), "{e}");
        let e = parse("actions:\n  - {at: 0, topic: room1/#, message: ON}\n").unwrap_err();
        assert!(e.contains("plain topic"), "{e}");
        let e = parse("description: nothing\n").unwrap_err();
        assert!(e.contains("neither `actions`"), "{e}");
        let e = parse("actions: [\n").unwrap_err();
        assert!(e.starts_with("scenes/t.yaml:"), "{e}");
    }

    #[test]
    fn values_that_break_the_daemon_are_errors_with_positions() {
        // Times beyond a day (1e19 s overflows every deadline).
        let e = parse("actions:\n  - {at: 1e19, topic: r/a, message: X}\n").unwrap_err();
        assert!(
            e.contains("t.yaml:2:10: at 1e19s is outside 0s..24h"),
            "{e}"
        );
        let e =
            parse("actions:\n  - {at: 1, topic: r/a, message: X}\nduration: 1e19\n").unwrap_err();
        assert!(
            e.contains("t.yaml:3:11: duration 1e19s is outside 0s..24h"),
            "{e}"
        );
        let e = parse("sceneId: x\ninitialState: a\nstates:\n  a:\n    transitions: [{type: timeout, delay: 1e19, goto: END}]\n").unwrap_err();
        assert!(
            e.contains("t.yaml:5:42: delay 1e19s is outside 0s..24h"),
            "{e}"
        );
        let e =
            parse("actions:\n  - {at: 0, topic: r/a, message: X, timeout: 1e19}\n").unwrap_err();
        assert!(
            e.contains("t.yaml:2:46: timeout 1e19s is outside 10ms..10m"),
            "{e}"
        );
        // Topics.
        let e = parse("actions:\n  - {at: 0, topic: \"r/\\0x\", message: X}\n").unwrap_err();
        assert!(
            e.contains("t.yaml:2:20: topic must not contain a NUL character"),
            "{e}"
        );
        let long = "a".repeat(65_536);
        let e = parse(&format!(
            "actions:\n  - {{at: 0, topic: {long}, message: X}}\n"
        ))
        .unwrap_err();
        assert!(
            e.contains("t.yaml:2:20: topic is 65536 bytes long; MQTT allows at most 65535"),
            "{e}"
        );
        let e = parse("sceneId: x\ninitialState: a\nstates:\n  a:\n    transitions: [{type: mqttMessage, topic: a/#/b, goto: END}]\n").unwrap_err();
        assert!(
            e.contains(
                ":5:46: mqttMessage topic: filter `a/#/b`: '#' must be the whole last level"
            ),
            "{e}"
        );
        // A message no broker would take.
        let big = "x".repeat(300 * 1024);
        let e = parse(&format!(
            "actions:\n  - {{at: 0, topic: r/a, message: {big}}}\n"
        ))
        .unwrap_err();
        assert!(
            e.contains(":2:34: message is 307200 bytes; an MQTT packet may carry at most 256 KiB"),
            "{e}"
        );
    }

    #[test]
    fn an_always_loop_is_an_error_at_load_time() {
        let e = parse(
            r#"{"sceneId": "x", "initialState": "a", "states": {
  "a": {"onEnter": [{"topic": "r/a", "message": "in"}], "transitions": [{"type": "always", "goto": "b"}]},
  "b": {"transitions": [{"type": "mqttMessage", "topic": "r/x", "goto": "END"}, {"type": "timeout", "delay": 0, "goto": "a"}]}}}"#,
        )
        .unwrap_err();
        assert!(
            e.contains(
                "t.yaml:2:73: states `a` -> `b` -> `a` hand over to each other without time passing"
            ),
            "{e}"
        );
        // Handing over at once is fine when it ends somewhere.
        parse(
            r#"{"sceneId": "x", "initialState": "a", "states": {
  "a": {"transitions": [{"type": "always", "goto": "b"}]},
  "b": {"transitions": [{"type": "timeout", "delay": 1, "goto": "a"}]}}}"#,
        )
        .unwrap();
    }

    #[test]
    fn unknown_keys_are_warnings_unless_clearly_a_mistake() {
        // Keys of other tools and editors: warnings.
        let (_, w) = parse_scene(
            "name: x\ncolour: red\nid: 42\nactions:\n  - {at: 0, topic: r/l, message: ON, position: [3, 4]}\n",
            Path::new("t.yaml"),
            &ctx(),
        )
        .unwrap();
        let text = w.to_string();
        assert!(
            text.contains("t.yaml:2:1: warning: unknown key `colour` (ignored)"),
            "{text}"
        );
        assert!(
            text.contains("t.yaml:3:1: warning: unknown key `id` (ignored)"),
            "{text}"
        );
        assert!(
            text.contains("t.yaml:5:38: warning: unknown key `position` (ignored)"),
            "{text}"
        );
        // A misspelt known key would silently drop what it holds: an error.
        let e =
            parse("actions:\n  - {at: 0, topic: r/l, message: ON, mesage: typo}\n").unwrap_err();
        assert!(
            e.contains("t.yaml:2:38: unknown key `mesage`: did you mean `message`?"),
            "{e}"
        );
        let e = parse("actions:\n  - {at: 0, topic: r/l, message: ON}\non_stopp:\n  - {topic: r/l, message: OFF}\n").unwrap_err();
        assert!(
            e.contains("t.yaml:3:1: unknown key `on_stopp`: did you mean `on_stop`?"),
            "{e}"
        );
        // A decimal comma in flow style.
        let e = parse("actions:\n  - { at: 2,5, topic: r/l, message: ON }\n").unwrap_err();
        assert!(
            e.contains("t.yaml:2:13: `5` is a number where a key belongs: a decimal comma?"),
            "{e}"
        );
    }

    #[test]
    fn a_transition_without_type_loads_with_a_warning_and_never_fires() {
        let text = r#"{"sceneId": "x", "initialState": "a", "states": {
  "a": {"transitions": [
    {"goto": "b"},
    {"type": "timeout", "delay": 2, "goto": "b"}]},
  "b": {"onEnter": [{"topic": "room1/light", "message": "ON"}],
        "transitions": [{"type": "timeout", "delay": 1, "goto": "END"}]}}}"#;
        let (s, w) = parse_scene(text, Path::new("scenes/x.json"), &ctx()).unwrap();
        let w = w.to_string();
        assert!(
            w.contains(
                "scenes/x.json:3:5: warning: transition without `type` (goto `b`) never fires"
            ),
            "{w}"
        );
        assert_eq!(
            s.state("a").unwrap().transitions.len(),
            1,
            "only the typed one"
        );
        assert_eq!(s.duration(), Some(Duration::from_secs(3)));
        assert_eq!(s.warnings.len(), 1);
        assert!(s.warnings[0].starts_with("3:5: warning: transition without `type`"));
        assert_eq!(s.summary().warnings, s.warnings);
    }

    #[test]
    fn an_end_state_may_carry_a_timeline_and_transitions() {
        let s = parse(
            r#"{"sceneId": "x", "initialState": "a", "states": {
  "a": {"transitions": [{"type": "timeout", "delay": 1, "goto": "END"}]},
  "END": {"onEnter": [{"topic": "room1/light", "message": "OFF"}],
          "timeline": [{"at": 2, "topic": "room1/smoke", "message": "OFF"}],
          "transitions": []}}}"#,
        )
        .unwrap();
        let end = s.state(END).unwrap();
        assert_eq!(end.timeline.len(), 1);
        assert_eq!(
            s.duration(),
            Some(Duration::from_secs(3)),
            "1 s + END's 2 s"
        );

        let s = parse(
            r#"{"sceneId": "x", "initialState": "a", "states": {
  "a": {"transitions": [{"type": "always", "goto": "END"}]},
  "END": {"transitions": [{"type": "timeout", "delay": 4, "goto": "a"},
                          {"type": "mqttMessage", "topic": "room1/b", "goto": "a"}]}}}"#,
        )
        .unwrap();
        assert_eq!(s.state(END).unwrap().transitions.len(), 2);
        assert_eq!(s.duration(), None, "END hands back to `a`: it loops");
    }

    #[test]
    fn empty_lists_in_the_end_state_mean_nothing() {
        let s = parse(
            r#"{"sceneId": "x", "initialState": "a", "states": {
  "a": {"transitions": [{"type": "timeout", "delay": 2, "goto": "END"}]},
  "END": {"onEnter": [{"topic": "room1/light", "message": "OFF"}], "timeline": [], "transitions": []}}}"#,
        )
        .unwrap();
        assert_eq!(s.duration(), Some(Duration::from_secs(2)));
        let end = s.state(END).unwrap();
        assert!(end.timeline.is_empty() && end.transitions.is_empty());
        assert_eq!(end.on_enter.len(), 1);
    }

    #[test]
    fn editor_metadata_anywhere_never_stops_a_load() {
        let text = r##"{
  "id": "6f1c", "version": "2.0", "sceneId": "x", "initialState": "a",
  "position": {"x": 10, "y": 20}, "ui": {"zoom": 1.5}, "_rev": 7, "canvasPosition": [1, 2],
  "states": {
    "a": {"id": "n1", "stateId": "s-a", "position": {"x": 1, "y": 2}, "color": "#f00",
          "label": "Intro", "onEnter": [{"id": "a1", "topic": "room1/light", "message": "ON"}],
          "transitions": [{"id": "t1", "label": "later", "type": "timeout", "delay": 1, "goto": "END"}]}}}"##;
        let (s, w) = parse_scene(text, Path::new("x.json"), &ctx()).unwrap();
        assert_eq!(s.name, "x");
        let w = w.to_string();
        for key in [
            "`id`",
            "`position`",
            "`ui`",
            "`_rev`",
            "`canvasPosition`",
            "`stateId`",
            "`color`",
            "`label`",
        ] {
            assert!(
                w.contains(&format!("warning: unknown key {key}")),
                "{key}: {w}"
            );
        }
        assert!(!w.contains("`version`"), "version is known: {w}");
    }

    #[test]
    fn a_media_end_must_wait_for_a_file_the_scene_plays() {
        let e = parse(
            r#"{"sceneId": "x", "initialState": "a", "states": {
  "a": {"onEnter": [{"action": "audio", "message": "PLAY:welcome.wav"}],
        "transitions": [{"type": "audioEnd", "target": "welcom.wav", "goto": "END"}]}}}"#,
        )
        .unwrap_err();
        assert!(
            e.contains("t.yaml:3:25: audioEnd target `welcom.wav` is no file this scene plays (it plays: welcome.wav)"),
            "{e}"
        );
        parse(
            r#"{"sceneId": "x", "initialState": "a", "states": {
  "a": {"onEnter": [{"action": "audio", "message": "PLAY:welcome.wav"}],
        "transitions": [{"type": "audioEnd", "target": "welcome", "goto": "END"}]}}}"#,
        )
        .unwrap();
    }

    #[test]
    fn stop_topic_is_never_feedback_tracked() {
        let s = parse("actions:\n  - {at: 0, topic: room1/STOP, message: STOP}\n").unwrap();
        assert!(!s.state(SIMPLE_STATE).unwrap().timeline[0].actions[0].feedback);
    }

    #[test]
    fn load_dir_reports_duplicates_and_keeps_good_scenes() {
        let d = tempfile::tempdir().unwrap();
        let scenes = d.path().join("scenes");
        std::fs::create_dir(&scenes).unwrap();
        std::fs::write(
            scenes.join("a.yaml"),
            "name: same\nactions: [{at: 0, topic: r/x, message: ON}]\n",
        )
        .unwrap();
        std::fs::write(
            scenes.join("b.json"),
            r#"{"name": "same", "actions": [{"at": 0, "topic": "r/x", "message": "ON"}]}"#,
        )
        .unwrap();
        std::fs::write(
            scenes.join("c.yaml"),
            "actions: [{at: 0, topic: r/x, message: ON}]\n",
        )
        .unwrap();
        std::fs::write(scenes.join("notes.txt"), "ignored").unwrap();
        let cfg = Config::parse(
            "room: r\nmqtt: {brokers: [{broker: h}]}\n",
            &d.path().join("c.yaml"),
            &|_| None,
        )
        .unwrap();
        let l = load_scenes(&cfg);
        assert_eq!(l.scenes.names().collect::<Vec<_>>(), ["c", "same"]);
        assert_eq!(l.errors.len(), 1);
        assert!(
            l.errors
                .to_string()
                .contains("b.json: scene name `same` is already used by")
        );
    }

    #[test]
    fn a_scene_is_also_named_by_its_file_name_unless_ambiguous() {
        let mk = |file: &str, name: &str| {
            parse_scene(
                &format!("name: {name}\nactions: [{{at: 0, topic: r/x, message: ON}}]\n"),
                Path::new(file),
                &ctx(),
            )
            .unwrap()
            .0
        };
        let set = SceneSet::new([
            mk("scenes/SceneV01.json", "room1_intro"),
            mk("scenes/test.json", "room1_test"),
            mk("scenes/plain.yaml", "plain"),
        ]);
        assert!(set.ambiguities().is_empty());
        for alias in ["SceneV01.json", "SceneV01", "room1_intro"] {
            assert_eq!(set.get(alias).unwrap().name, "room1_intro", "{alias}");
        }
        assert_eq!(set.resolve("test.json"), Some("room1_test"));
        assert_eq!(set.resolve("plain.yaml"), Some("plain"));
        assert_eq!(set.resolve("scenes/test.json"), None, "names, never paths");
        assert_eq!(
            set.names().collect::<Vec<_>>(),
            ["plain", "room1_intro", "room1_test"]
        );

        // Swapped names: `a` is a scene's name and another scene's file.
        let set = SceneSet::new([mk("a.yaml", "b"), mk("b.yaml", "a")]);
        assert_eq!(set.ambiguities().len(), 2, "{:?}", set.ambiguities());
        assert!(set.ambiguities()[0].contains("`a` could mean scene `a` (b.yaml) or `b` (a.yaml)"));
        assert_eq!(set.get("a").unwrap().name, "a", "a name always wins");
        assert!(set.get("a.yaml").is_some_and(|s| s.name == "b"));
        // Two files with one stem.
        let set = SceneSet::new([mk("x.yaml", "one"), mk("x.json", "two")]);
        assert_eq!(set.resolve("x"), None);
        assert_eq!(set.resolve("x.json"), Some("two"));
        assert_eq!(set.ambiguities().len(), 1);
    }

    #[test]
    fn an_action_may_ask_to_be_retained() {
        let s = parse("actions:\n  - {at: 0, topic: room1/sign, message: OPEN, retain: true}\n  - {at: 1, topic: room1/light, message: 'ON'}\n").unwrap();
        let st = s.state(SIMPLE_STATE).unwrap();
        assert!(st.timeline[0].actions[0].retain);
        assert!(!st.timeline[1].actions[0].retain);
        let (_, w) = parse_scene(
            "actions:\n  - {at: 0, action: audio, message: 'PLAY:a.wav', retain: true}\n",
            Path::new("t.yaml"),
            &ctx(),
        )
        .unwrap();
        assert!(
            w.to_string()
                .contains("`retain` has no meaning for audio/video"),
            "{w}"
        );
    }

    #[test]
    fn command_files_load_from_every_place_the_format_keeps_them() {
        let d = tempfile::tempdir().unwrap();
        let scenes = d.path().join("scenes");
        std::fs::create_dir_all(scenes.join("commands")).unwrap();
        std::fs::create_dir_all(scenes.join("r").join("commands")).unwrap();
        let one = |t: &str| format!(r#"[{{"topic": "{t}", "message": "OFF", "timestamp": 0}}]"#);
        std::fs::write(
            scenes.join("show.json"),
            r#"{"sceneId": "show", "initialState": "a", "states": {"a": {"transitions": [{"type": "timeout", "delay": 1, "goto": "END"}]}}}"#,
        )
        .unwrap();
        // An array in scenes.dir itself is a command file, not a broken scene.
        std::fs::write(scenes.join("STOPALL.json"), one("r/all")).unwrap();
        std::fs::write(
            scenes.join("commands").join("light_off.json"),
            one("r/light"),
        )
        .unwrap();
        std::fs::write(
            scenes.join("r").join("commands").join("smoke_off.json"),
            one("r/smoke"),
        )
        .unwrap();
        // The same name twice: the second is an error, the first stays.
        std::fs::write(
            scenes.join("r").join("commands").join("light_off.json"),
            one("r/light2"),
        )
        .unwrap();
        std::fs::write(
            scenes.join("commands").join("broken.json"),
            r#"[{"topic": "r/x"}]"#,
        )
        .unwrap();
        let cfg = Config::parse(
            "room: r\nmqtt: {brokers: [{broker: h}]}\n",
            &d.path().join("c.yaml"),
            &|_| None,
        )
        .unwrap();
        let l = load_scenes(&cfg);
        assert_eq!(l.scenes.names().collect::<Vec<_>>(), ["show"]);
        let names: Vec<&str> = l.scenes.commands().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["STOPALL", "light_off", "smoke_off"]);
        assert_eq!(
            l.scenes.command("light_off").unwrap().steps[0].action.topic,
            "r/light"
        );
        let e = l.errors.to_string();
        assert_eq!(l.errors.len(), 2, "{e}");
        assert!(
            e.contains("broken.json:1:2: action in a command file needs `message`"),
            "{e}"
        );
        assert!(
            e.contains("r/commands/light_off.json: command name `light_off` is already used by"),
            "{e}"
        );
        assert!(!e.contains("expected"), "{e}");
        // Command steps count as actions (feedback topics, media checks).
        assert_eq!(l.scenes.every_action().count(), 3);
    }
}
