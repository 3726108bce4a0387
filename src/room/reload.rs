//! Reloading a running room: config and scenes read again, what can change
//! applied at once (a scene whose file broke keeps its last good version),
//! off the async runtime and coalesced.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tracing::{info, warn};

use super::{Live, Room, Rules, subscriptions};
use crate::check;
use crate::config::Config;
use crate::diag::{Diagnostic, Diagnostics};

/// Requests for a reload and the reload that answers them: one reload that
/// starts after a request has read the files as they were then, so every
/// request waiting meanwhile takes its result instead of loading again.
#[derive(Default)]
pub(super) struct ReloadGate {
    requested: AtomicU64,
    /// Reloads actually run.
    runs: AtomicU64,
    /// Requests answered so far (the highest covered), and that answer.
    done: tokio::sync::Mutex<(u64, Option<Result<ReloadReport, Diagnostics>>)>,
}

/// What a reload did.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReloadReport {
    /// The scenes now loaded.
    pub scenes: Vec<String>,
    /// Scenes whose file has errors now that keep their last good
    /// definition until the file is fixed.
    pub stale: Vec<String>,
    /// The command files now loaded.
    pub commands: Vec<String>,
    /// Scene files that did not load, and why.
    pub problems: Vec<String>,
    /// Warnings (unknown keys, ...).
    pub warnings: Vec<String>,
    /// Config sections that changed but need a restart.
    pub needs_restart: Vec<String>,
}

impl Room {
    /// Reads the config file and the scenes again and applies what can
    /// change while running: the scene set (a running scene finishes on its
    /// old definition), triggers, `scenes.default`, `feedback.timeout`, new
    /// subscriptions. Other changes are reported as needing a restart. A
    /// config that does not load changes nothing. A config built in memory
    /// (the demo's) stays; its scenes are read again.
    pub fn reload(&self) -> Result<ReloadReport, Diagnostics> {
        let mut report = if self.config.in_memory {
            check::check_config(Config::clone(&self.config))
        } else {
            check::check(&self.config.file)
        };
        let Some(config) = report.config.take() else {
            warn!(target: "daemon", "Reload refused, the running config stays:\n{}", report.errors);
            return Err(report.errors);
        };
        let mut problems: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
        // A scene whose file broke keeps its last good definition.
        let broken: BTreeSet<PathBuf> = report.errors.iter().map(|d| d.file.clone()).collect();
        let (scenes, stale) =
            std::mem::take(&mut report.scenes).keeping_last_good(&self.scenes.scenes(), &broken);
        report.scenes = scenes;
        for name in &stale {
            problems.push(format!(
                "scene {name} is stale: its file has errors, so its last good version stays loaded until the file is fixed"
            ));
        }
        let old = &self.config;
        let mut needs_restart = Vec::new();
        for (what, changed) in [
            ("room", old.room != config.room),
            ("mqtt", old.mqtt != config.mqtt),
            ("web", old.web != config.web),
            ("media", old.media != config.media),
            ("devices", old.devices != config.devices),
            (
                "feedback.topic",
                old.feedback.topic != config.feedback.topic,
            ),
            (
                "feedback.local_channels",
                old.feedback.local_channels != config.feedback.local_channels,
            ),
            ("scenes.dir", old.scenes.dir != config.scenes.dir),
        ] {
            if changed {
                needs_restart.push(what.to_string());
            }
        }
        for f in subscriptions(&config, &report.scenes, &self.feedback, self.role) {
            let _ = self.mqtt.subscribe(f);
        }
        let names: Vec<String> = report.scenes.names().map(String::from).collect();
        let commands: Vec<String> = report.scenes.commands().map(|c| c.name.clone()).collect();
        // Scenes first: a new rule never names a scene not loaded yet.
        self.scenes.replace_scenes(report.scenes);
        self.know_outputs();
        self.live.send_replace(Live {
            rules: Rules::of(&config),
            cue_timeout: config.feedback.timeout,
            problems: problems.clone(),
        });
        info!(target: "daemon", "Reloaded {}: {} scene(s){}", old.file.display(), names.len(),
            if problems.is_empty() { String::new() } else { format!(", {} file(s) with errors", problems.len()) });
        for p in &problems {
            warn!(target: "daemon", "{p}");
        }
        if !needs_restart.is_empty() {
            warn!(target: "daemon", "Changes to {} take effect at the next restart", needs_restart.join(", "));
        }
        Ok(ReloadReport {
            scenes: names,
            stale,
            commands,
            problems,
            warnings: report.warnings.iter().map(ToString::to_string).collect(),
            needs_restart,
        })
    }

    /// [`Room::reload`] off the async runtime (reading and checking the
    /// files takes milliseconds that a cue must not wait for), coalesced:
    /// requests that arrive while a reload runs share the next one.
    pub async fn reload_coalesced(&self) -> Result<ReloadReport, Diagnostics> {
        let gate = &self.reloads;
        let ticket = gate.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let mut done = gate.done.lock().await;
        if done.0 >= ticket
            && let Some(r) = &done.1
        {
            return r.clone();
        }
        // Every request made before the files are read is answered by it.
        let covers = gate.requested.load(Ordering::SeqCst);
        gate.runs.fetch_add(1, Ordering::Relaxed);
        let room = self.clone();
        let r = tokio::task::spawn_blocking(move || room.reload())
            .await
            .unwrap_or_else(|e| {
                Err(Diagnostics(vec![Diagnostic::file(
                    &self.config.file,
                    format!("the reload failed: {e}"),
                )]))
            });
        *done = (covers, Some(r.clone()));
        r
    }

    /// How many reloads [`Room::reload_coalesced`] has run.
    pub fn reloads_run(&self) -> u64 {
        self.reloads.runs.load(Ordering::Relaxed)
    }
}
