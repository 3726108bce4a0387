//! The command line (clap): parses arguments, sets up logging and runs one
//! subcommand, each in its own module (`run`, `check`, `play`, `simulate`,
//! `demo`, `doctor`). Exit codes: 0 success, 1 failure, 2 usage error.

pub mod check;
pub mod demo;
pub mod doctor;
pub mod logline;
pub mod play;
pub mod run;
pub mod simulate;
pub mod site;
pub mod user;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::{default_config_path, parse_duration};

#[derive(Parser, Debug)]
#[command(
    name = "roomctl",
    version,
    about = "Museum room controller: scenes over MQTT, local audio/video, feedback, failover, dashboard"
)]
/// The `roomctl` command line.
pub struct Cli {
    #[command(subcommand)]
    /// What to do.
    pub command: Command,
}

#[derive(Subcommand, Debug)]
/// The subcommands of DESIGN.md §1.
pub enum Command {
    /// Run the daemon (what systemd starts).
    Run {
        #[arg(short, long, value_name = "FILE")]
        /// The config file (default: /etc/roomctl/config.yaml, else config/roomctl.yaml).
        config: Option<PathBuf>,
    },
    /// Validate config, scenes and media files; exit 1 on any error.
    Check {
        /// Check only this scene or command file, against the config (as
        /// if it were in the scenes folder).
        file: Option<PathBuf>,
        #[arg(short, long, value_name = "FILE")]
        /// The config file (default: /etc/roomctl/config.yaml, else config/roomctl.yaml).
        config: Option<PathBuf>,
        /// Only the config file: what stops the daemon from starting
        /// (a broken scene never does). For the unit's ExecStartPre.
        #[arg(long)]
        config_only: bool,
        /// Unset `${VAR}` are errors (by hand they are warnings).
        #[arg(long)]
        require_env: bool,
    },
    /// Play one scene with feedback tracking and report every action.
    Play {
        /// The scene to play (its name).
        scene: String,
        #[arg(short, long, value_name = "FILE")]
        /// The config file (default: /etc/roomctl/config.yaml, else config/roomctl.yaml).
        config: Option<PathBuf>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Simulate a fleet of ESP32 boards that answer commands.
    Simulate {
        #[arg(short, long, value_name = "FILE")]
        /// The config file (default: /etc/roomctl/config.yaml, else config/roomctl.yaml).
        config: Option<PathBuf>,
        #[arg(long, default_value_t = 3)]
        /// How many boards.
        devices: usize,
        /// Reply latency, a range like 50ms..250ms.
        #[arg(long, default_value = "50ms..250ms", value_parser = latency_arg)]
        latency: (Duration, Duration),
        /// Fraction of commands left unanswered (0..1).
        #[arg(long, default_value_t = 0.0)]
        drop: f64,
        /// `plain` (OK) or `json` ({"status":"OK","topic":...}).
        #[arg(long, default_value = "plain")]
        reply: crate::simulate::ReplyStyle,
    },
    /// Everything on one machine: brokers, simulated ESP32s, daemon, dashboard.
    Demo {
        /// Dashboard address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[arg(long, default_value_t = 4)]
        /// How many simulated boards.
        devices: usize,
        /// Kill the primary broker after this long (e.g. 30s) to show failover.
        #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
        kill_primary_after: Option<Duration>,
    },
    /// The site overview: every room on the brokers on one page, with
    /// scene start and stop.
    Site {
        #[arg(short, long, value_name = "FILE")]
        /// A room's config, for its brokers and web.token (default:
        /// /etc/roomctl/config.yaml, else config/roomctl.yaml, unless
        /// --broker is given).
        config: Option<PathBuf>,
        /// A broker, `host[:port]` (repeat for the failover list).
        #[arg(long = "broker", value_name = "HOST:PORT")]
        brokers: Vec<String>,
        /// Where to serve the page (this machine only, unless told
        /// otherwise: e.g. 0.0.0.0:8090).
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: SocketAddr,
        /// The accounts file (default: the room config's web.users).
        #[arg(long, value_name = "FILE")]
        users: Option<PathBuf>,
        /// A room that is always listed, heard of or not, and never pushed
        /// out by others (repeat for each).
        #[arg(long = "room", value_name = "ROOM")]
        rooms: Vec<String>,
    },
    /// Manage the dashboard's users (users.yaml beside the config).
    User {
        #[arg(short, long, value_name = "FILE", global = true)]
        /// The config file (default: /etc/roomctl/config.yaml, else config/roomctl.yaml).
        config: Option<PathBuf>,
        #[command(subcommand)]
        /// What to do.
        action: user::UserAction,
    },
    /// Manage API tokens for scripts, the site page and Home Assistant.
    Token {
        #[arg(short, long, value_name = "FILE", global = true)]
        /// The config file (default: /etc/roomctl/config.yaml, else config/roomctl.yaml).
        config: Option<PathBuf>,
        #[command(subcommand)]
        /// What to do.
        action: user::TokenAction,
    },
    /// Try every configured broker and report which answer, how fast.
    Doctor {
        #[arg(short, long, value_name = "FILE")]
        /// The config file (default: /etc/roomctl/config.yaml, else config/roomctl.yaml).
        config: Option<PathBuf>,
    },
}

/// Logs go to stderr, and to the in-memory ring the dashboard shows;
/// `RUST_LOG` sets levels. Under systemd (journald adds its own) there are
/// no timestamps or colours.
pub fn init_logging(default: &str) {
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    // `Targets` (`info,mqtt_feedback=debug`) rather than `EnvFilter`:
    // the same syntax for levels per target without a regex engine in the
    // binary (about 250 KB of the Pi's binary, docs/performance.md).
    let (filter, bad) = log_filter(std::env::var("RUST_LOG").ok().as_deref(), default);
    // Colours only on a terminal (and journald adds its own timestamps).
    let ansi = !journald && std::io::IsTerminal::is_terminal(&std::io::stderr());
    use tracing_subscriber::prelude::*;
    let out = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(logline::OneLineStderr { ansi });
    let out = if journald {
        out.without_time().boxed()
    } else {
        out.boxed()
    };
    // The same records, behind the same filter, for the dashboard's live
    // log (crate::logring).
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(out)
        .with(crate::logring::layer())
        .try_init();
    if let Some(e) = bad {
        tracing::warn!("RUST_LOG is not a list of levels ({e}); logging at {default}");
    }
}

/// The level filter from `RUST_LOG` (`level` or `target=level`, comma
/// separated), else `default`; the error when `RUST_LOG` did not parse.
fn log_filter(
    env: Option<&str>,
    default: &str,
) -> (tracing_subscriber::filter::Targets, Option<String>) {
    use tracing_subscriber::filter::Targets;
    let fallback = || default.parse::<Targets>().unwrap_or_default();
    match env.map(str::trim).filter(|v| !v.is_empty()) {
        None => (fallback(), None),
        Some(v) => match v.parse::<Targets>() {
            Ok(t) => (t, None),
            Err(e) => (fallback(), Some(e.to_string())),
        },
    }
}

fn path(p: Option<PathBuf>) -> PathBuf {
    p.unwrap_or_else(default_config_path)
}

/// A write past the file-size limit (`RLIMIT_FSIZE`, set by systemd's
/// `LimitFSIZE=` or a shell's `ulimit -f`) would kill the process with
/// SIGXFSZ; ignored, the write fails with EFBIG instead, which the show log
/// and the state files report as an error and a health issue.
fn ignore_file_size_signal() {
    // SAFETY: setting a signal's disposition to SIG_IGN installs no
    // handler code; it is done before any other thread exists.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = matches!(
        cli.command,
        Command::Check { .. }
            | Command::Doctor { .. }
            | Command::Play { .. }
            | Command::User { .. }
            | Command::Token { .. }
    );
    init_logging(if quiet { "warn" } else { "info" });
    ignore_file_size_signal();
    // `check` is synchronous: no runtime, no threads (it also runs under
    // user-mode emulation of the Pi, which cannot always create threads).
    if let Command::Check {
        file,
        config,
        config_only,
        require_env,
    } = cli.command
    {
        return match file {
            Some(f) => check::check_one(&path(config), &f, require_env),
            None => check::check(&path(config), config_only, require_env),
        };
    }
    // So are the accounts: no runtime needed.
    match cli.command {
        Command::User { config, action } => {
            return accounts(config, |p, out| user::user(p, action, out));
        }
        Command::Token { config, action } => {
            return accounts(config, |p, out| user::token(p, action, out));
        }
        _ => {}
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cmd: Command) -> anyhow::Result<ExitCode> {
    let ok = |yes: bool| {
        if yes {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    };
    match cmd {
        Command::Run { config } => Ok(if run::run(&path(config)).await? {
            // Asked from the dashboard: systemd starts it again.
            ExitCode::from(crate::system::RESTART_EXIT_CODE)
        } else {
            ExitCode::SUCCESS
        }),
        // `main` runs it before there is a runtime.
        Command::Check { .. } => unreachable!("check runs without a runtime"),
        Command::Play {
            scene,
            config,
            json,
        } => {
            let mut out = std::io::stdout();
            let tally = play::play(&path(config), &scene, json, &mut out).await?;
            Ok(ok(tally.success()))
        }
        Command::Simulate {
            config,
            devices,
            latency,
            drop,
            reply,
        } => {
            simulate::simulate(&path(config), devices, latency, drop, reply).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo {
            listen,
            devices,
            kill_primary_after,
        } => {
            demo::demo(demo::DemoOptions {
                listen,
                devices,
                kill_primary_after,
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Site {
            config,
            brokers,
            listen,
            users,
            rooms,
        } => {
            let config = brokers.is_empty().then(|| path(config));
            site::site(
                config.as_deref(),
                &brokers,
                users.as_deref(),
                &rooms,
                listen,
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::User { .. } | Command::Token { .. } => unreachable!("run without a runtime"),
        Command::Doctor { config } => {
            let mut out = std::io::stdout();
            let answered = doctor::doctor(&path(config), &mut out).await?;
            Ok(ok(answered > 0))
        }
    }
}

/// Runs a `user` or `token` action on the config's accounts file.
fn accounts(
    config: Option<PathBuf>,
    act: impl FnOnce(&std::path::Path, &mut std::io::Stdout) -> anyhow::Result<()>,
) -> ExitCode {
    let run = || -> anyhow::Result<()> {
        let file = user::users_file(&path(config))?;
        act(&file, &mut std::io::stdout())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A duration on the command line (`30s`, `500ms`, `2m`), checked by clap:
/// a bad one is a usage error (exit 2) like any other bad argument.
fn duration_arg(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

/// A latency range on the command line (`50ms..250ms` or `100ms`).
fn latency_arg(s: &str) -> Result<(Duration, Duration), String> {
    crate::simulate::parse_latency(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::log_filter;
    use tracing::Level;

    #[test]
    fn rust_log_sets_levels_per_target_and_a_bad_one_falls_back() {
        let (f, bad) = log_filter(Some("warn,mqtt_feedback=debug"), "info");
        assert!(bad.is_none());
        assert!(f.would_enable("mqtt_feedback", &Level::DEBUG));
        assert!(!f.would_enable("roomctl::room", &Level::INFO));
        assert!(f.would_enable("roomctl::room", &Level::WARN));

        let (f, bad) = log_filter(None, "info");
        assert!(bad.is_none());
        assert!(f.would_enable("roomctl", &Level::INFO));
        assert!(!f.would_enable("roomctl", &Level::DEBUG));

        let (f, bad) = log_filter(Some("mqtt_feedback=loud"), "info");
        assert!(bad.is_some(), "a level that is not one is reported");
        assert!(f.would_enable("roomctl", &Level::INFO));
    }
}
