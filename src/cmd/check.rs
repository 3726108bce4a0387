//! `roomctl check`: prints what [`crate::check`] finds (warnings, then
//! errors, as `file:line:col: message`) and a summary; exit 1 on any error.
//! Synchronous: no runtime, no threads (it also runs under user-mode
//! emulation of the Pi, which cannot always create threads).
//!
//! By hand, an unset `${VAR}` is a warning (the service's environment file
//! is not loaded in a shell); `--require-env` makes it an error.
//! `--config-only` checks only what stops the daemon from starting: the
//! config. A broken scene never does (the room starts with the others), so
//! the unit's `ExecStartPre` uses it.

use std::path::Path;
use std::process::ExitCode;

use crate::config::{Config, EnvPolicy};

/// Runs the checks for `path` and prints the report.
pub fn check(path: &Path, config_only: bool, require_env: bool) -> ExitCode {
    let env = if require_env {
        EnvPolicy::Required
    } else {
        EnvPolicy::Optional
    };
    if config_only {
        return match Config::load_with(path, env) {
            Ok(c) => {
                for w in c.warnings.iter() {
                    println!("{w}");
                }
                println!("{}: config OK", path.display());
                ExitCode::SUCCESS
            }
            Err(errors) => {
                println!("{errors}");
                println!(
                    "{}: {} error(s) in the config",
                    path.display(),
                    errors.len()
                );
                ExitCode::FAILURE
            }
        };
    }
    let r = crate::check::check_with(path, env);
    for w in r.warnings.iter() {
        println!("{w}");
    }
    for e in r.errors.iter() {
        println!("{e}");
    }
    if r.ok() {
        println!(
            "{}: OK ({} scene(s), {} command file(s), {} media file(s))",
            path.display(),
            r.scenes.len(),
            r.scenes.commands().count(),
            r.media_files
        );
        ExitCode::SUCCESS
    } else {
        println!("{}: {} error(s)", path.display(), r.errors.len());
        ExitCode::FAILURE
    }
}

/// `roomctl check FILE`: one scene or command file against the config.
pub fn check_one(config: &Path, file: &Path, require_env: bool) -> ExitCode {
    let env = if require_env {
        EnvPolicy::Required
    } else {
        EnvPolicy::Optional
    };
    let c = match Config::load_with(config, env) {
        Ok(c) => c,
        Err(errors) => {
            println!("{errors}");
            println!(
                "{}: {} error(s) in the config",
                config.display(),
                errors.len()
            );
            return ExitCode::FAILURE;
        }
    };
    let r = crate::check::check_file(&c, file);
    for w in r.warnings.iter() {
        println!("{w}");
    }
    for e in r.errors.iter() {
        println!("{e}");
    }
    let what = match (&r.scene, &r.command) {
        (Some(s), _) => format!("scene `{}`", s.name),
        (_, Some(c)) => format!("command file `{}`", c.name),
        _ => "nothing loaded".into(),
    };
    if r.ok() {
        println!("{}: OK ({what})", file.display());
        ExitCode::SUCCESS
    } else {
        println!("{}: {} error(s)", file.display(), r.errors.len());
        ExitCode::FAILURE
    }
}
