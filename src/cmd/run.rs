//! `roomctl run`: the daemon systemd starts. Loads and checks everything,
//! starts the room and the dashboard, tells systemd it is ready, and on
//! SIGTERM/Ctrl-C shuts down in order (scene `on_stop` + `ROOM/STOP`,
//! `offline` status, outbox flush) before exiting 0.

use std::future::Future;
use std::path::Path;

use anyhow::Context;
use tokio::net::TcpListener;
use tracing::{error, info, warn};

use crate::check;
use crate::origin::Origin;
use crate::room::{Command, Reply, Role, Room};
use crate::systemd;
use crate::web::{self, AppState};

/// Loads the config at `path` and runs until a shutdown signal (`Ok(false)`)
/// or a restart asked from the dashboard (`Ok(true)`).
pub async fn run(path: &Path) -> anyhow::Result<bool> {
    let mut report = check::check(path);
    let mut config = report.take_config(path)?;
    reserve_descriptors(&mut config);
    for w in report.warnings.iter() {
        warn!(target: "daemon", "{w}");
    }
    // A broken scene file must not keep the room dark: the others still run.
    for e in report.errors.iter() {
        error!(target: "daemon", "{e}");
    }
    let problems: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
    let listener = if config.web.enabled {
        Some(
            TcpListener::bind(config.web.listen)
                .await
                .with_context(|| format!("cannot listen on {} (web.listen)", config.web.listen))?,
        )
    } else {
        None
    };
    info!(target: "daemon",
        "roomctl {} for room {}: {} scene(s), {} broker(s)",
        env!("CARGO_PKG_VERSION"),
        config.room,
        report.scenes.len(),
        config.mqtt.brokers.len()
    );
    // Its own thread for the cue path (the scene's timer, the MQTT
    // connections); dropped after the room has shut down.
    use crate::cue_thread::{CueThread, Wanted};
    let cues = match Wanted::from_env().map_err(anyhow::Error::msg)? {
        Wanted::Off => None,
        w => Some(CueThread::start(w == Wanted::Realtime).context("cannot start the cue thread")?),
    };
    let room = Room::start_on(
        config,
        report.scenes,
        Role::Daemon,
        cues.as_ref().map(CueThread::handle),
    );
    room.set_problems(problems);
    let restart = serve_until(room, listener, None, systemd::shutdown_signal()).await;
    drop(cues);
    Ok(restart)
}

/// Descriptors kept for everything but the dashboard: MQTT connections and
/// probes, mpv and its socket, sound files, config and scene reloads,
/// logs.
const RESERVED_FDS: u64 = 128;

/// Raises the soft limit on open files to the hard one, and keeps the
/// dashboard's connections below it with [`RESERVED_FDS`] to spare, so
/// that web clients can never starve the room (the MQTT client could not
/// reconnect).
fn reserve_descriptors(config: &mut crate::config::Config) {
    let (soft, hard) = match raise_nofile() {
        Ok(limits) => limits,
        Err(e) => {
            warn!(
                target: "daemon",
                "Cannot read the open-files limit ({e}); web.max_connections stays {}",
                config.web.max_connections
            );
            return;
        }
    };
    tracing::debug!(target: "daemon", "Open-files limit {soft} (hard {hard})");
    let room = soft.saturating_sub(RESERVED_FDS).max(4) as usize;
    if config.web.max_connections > room {
        warn!(target: "web",
            "web.max_connections {} does not fit the open-files limit {soft} with {RESERVED_FDS} kept for MQTT and media: using {room}",
            config.web.max_connections);
        config.web.max_connections = room;
    }
}

/// Sets the soft RLIMIT_NOFILE to the hard one; returns both after.
fn raise_nofile() -> std::io::Result<(u64, u64)> {
    let nofile = rlimit::Resource::NOFILE;
    let (soft, hard) = nofile.get()?;
    if soft < hard {
        // Kept as it was when the kernel refuses; the caller logs the limit.
        let _ = nofile.set(hard, hard);
    }
    nofile.get()
}

/// Runs the dashboard beside `room` until `signal` resolves or a restart
/// is asked (then it returns true), and shuts everything down in order.
/// SIGHUP reloads scenes and config. The dashboard and the watchdog are
/// tasks of the room: they stop with it.
pub async fn serve_until(
    room: Room,
    listener: Option<TcpListener>,
    site: Option<axum::Router>,
    signal: impl Future<Output = ()>,
) -> bool {
    if let Some(l) = listener {
        let mut state = AppState::new(room.clone(), room.cancel_token());
        if let Some(site) = site {
            state = state.with_site(site);
        }
        room.spawn(async move {
            if let Err(e) = web::serve(l, state).await {
                error!(target: "web", "Dashboard stopped: {e}");
            }
        });
    }
    room.spawn(systemd::watchdog(room.cancel_token()));
    systemd::ready(&format!("room {} running", room.config.room));

    tokio::pin!(signal);
    let mut hup = systemd::hangups();
    let restart = room.restart_token();
    let restarting = loop {
        tokio::select! {
            _ = &mut signal => break false,
            () = restart.cancelled() => break true,
            _ = hup.recv() => {
                systemd::reloading();
                let status = match room.apply(Origin::Signal { name: "SIGHUP" }, Command::Reload).await {
                    Ok(Reply::Reloaded(r)) => format!("room {} running, {} scene(s)", room.config.room, r.scenes.len()),
                    _ => format!("room {} running; the last reload failed (see the log)", room.config.room),
                };
                systemd::ready(&status);
            }
        }
    };
    info!(target: "daemon", "Shutting down{}", if restarting { " for a restart" } else { "" });
    systemd::stopping();
    room.shutdown(Role::Daemon).await;
    info!(target: "daemon", "Stopped");
    restarting
}
