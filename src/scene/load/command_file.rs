//! Command files: the model and the loader (positions for every error). A
//! file is a JSON (or YAML) array of `{"topic", "message", "timestamp"}`,
//! `timestamp` being seconds from the start of the run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::{Builder, RawItem, SceneContext};
use crate::config::Dur;
use crate::diag::{Diagnostic, Diagnostics, Pos};
use crate::scene::Action;

/// The folder of command files, in `scenes.dir` and in a room folder
/// (`scenes.dir/<room>/commands`).
pub const COMMANDS_DIR: &str = "commands";

/// One step of a command file.
#[derive(Debug, Clone)]
pub struct Step {
    /// Offset from the start of the run (`timestamp`).
    pub at: Duration,
    /// What it does.
    pub action: Action,
}

/// A command file.
#[derive(Debug, Clone)]
pub struct CommandFile {
    /// Its name: the file name without extension.
    pub name: String,
    /// Where it was loaded from.
    pub file: PathBuf,
    /// Sorted by `at` (equal offsets keep file order).
    pub steps: Vec<Step>,
}

/// What `/api/commands` shows.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CommandSummary {
    /// Its name.
    pub name: String,
    /// How many steps.
    pub steps: usize,
    /// Seconds from the first to the last step.
    pub duration: f64,
    /// The topics it sends to, in order, without repeats.
    pub topics: Vec<String>,
    /// It is running now.
    pub running: bool,
}

impl CommandFile {
    /// Seconds from start to the last step.
    pub fn duration(&self) -> Duration {
        self.steps.last().map(|s| s.at).unwrap_or_default()
    }

    /// For `/api/commands`.
    pub fn summary(&self, running: bool) -> CommandSummary {
        let mut topics: Vec<String> = Vec::new();
        for s in &self.steps {
            if !topics.contains(&s.action.topic) {
                topics.push(s.action.topic.clone());
            }
        }
        CommandSummary {
            name: self.name.clone(),
            steps: self.steps.len(),
            duration: self.duration().as_secs_f64(),
            topics,
            running,
        }
    }
}

#[derive(Deserialize)]
struct RawStep {
    #[serde(alias = "at")]
    timestamp: Option<Spanned<Dur>>,
    action: Option<Spanned<String>>,
    topic: Option<Spanned<String>>,
    message: Option<Spanned<String>>,
    timeout: Option<Spanned<Dur>>,
    retain: Option<Spanned<bool>>,
}

/// Whether `text` is an array at its top (a command file rather than a
/// scene).
pub fn is_command_text(text: &str) -> bool {
    super::key_tree(text).is_some_and(|t| t.is_list())
}

/// Parses a command file. Ok carries warnings; Err carries errors and
/// warnings.
pub fn parse_command(
    text: &str,
    path: &Path,
    ctx: &SceneContext,
) -> Result<(CommandFile, Diagnostics), (Diagnostics, Diagnostics)> {
    parse_command_in(text, super::key_tree(text).as_ref(), path, ctx)
}

/// [`parse_command`] with the file's key tree already read.
pub(crate) fn parse_command_in(
    text: &str,
    keys: Option<&super::Node>,
    path: &Path,
    ctx: &SceneContext,
) -> Result<(CommandFile, Diagnostics), (Diagnostics, Diagnostics)> {
    let raw: Spanned<Vec<Spanned<RawStep>>> = super::parse_yaml(text).map_err(|e| {
        (
            Diagnostics::from(Diagnostic::from_yaml(path, &e)),
            Diagnostics::default(),
        )
    })?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut b = Builder::new(path, ctx);
    let mut warnings = Diagnostics::default();
    super::unknown_step_keys(keys, path, &mut warnings, &mut b.errors);
    if !crate::topic::is_plain_level(&name) {
        b.err(
            Pos::UNKNOWN,
            format!("command name `{name}` (the file name) must not contain '/', '+', '#'"),
        );
    }
    if raw.value.is_empty() {
        warnings.push(Diagnostic::new(
            path,
            Pos::of(&raw),
            "warning: the command file is an empty list; running it does nothing",
        ));
    }
    let mut steps = Vec::new();
    for item in raw.value {
        let pos = Pos::of(&item);
        let at = match &item.value.timestamp {
            Some(t) => b.time(t, "timestamp"),
            None => Duration::ZERO,
        };
        let RawStep {
            action,
            topic,
            message,
            timeout,
            retain,
            ..
        } = item.value;
        let as_item = Spanned::new(
            RawItem {
                action,
                topic,
                message,
                timeout,
                retain,
                ..RawItem::default()
            },
            item.referenced,
            item.defined,
        );
        if let Some(action) = b.action(&as_item, "a command file") {
            steps.push(Step { at, action });
        } else {
            debug_assert!(!b.errors.is_empty(), "a refused step at {pos:?} says why");
        }
    }
    steps.sort_by_key(|s| s.at);
    warnings.extend(std::mem::take(&mut b.warnings));
    if b.errors.is_empty() {
        Ok((
            CommandFile {
                name,
                file: path.to_path_buf(),
                steps,
            },
            warnings,
        ))
    } else {
        Err((b.errors, warnings))
    }
}
