//! `roomctl run`: the daemon systemd starts. Loads and checks everything,
//! starts the room and the dashboard, tells systemd it is ready, and on
//! SIGTERM/Ctrl-C shuts down in order (scene `on_stop` + `ROOM/STOP`,
//! `offline` status, outbox flush) before exiting 0.

use std::future::Future;
use std::path::Path;

use anyhow::Context;
use tokio::net::TcpListener;
use tracing::{error, info, warn};

use crate::app::{Role, Room};
use crate::check;
use crate::systemd;
use crate::web::{self, AppState};

/// Loads the config at `path` and runs until a shutdown signal.
pub async fn run(path: &Path) -> anyhow::Result<()> {
    let mut report = check::check(path);
    let config = report.take_config(path)?;
    for w in report.warnings.iter() {
        warn!("{w}");
    }
    // A broken scene file must not keep the room dark: the others still run.
    for e in report.errors.iter() {
        error!("{e}");
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
    info!(
        "roomctl {} for room {}: {} scene(s), {} broker(s)",
        env!("CARGO_PKG_VERSION"),
        config.room,
        report.scenes.len(),
        config.mqtt.brokers.len()
    );
    let room = Room::start(config, report.scenes, Role::Daemon);
    serve_until(room, problems, listener, systemd::shutdown_signal()).await;
    Ok(())
}

/// Runs the dashboard beside `room` until `signal` resolves, then shuts
/// everything down in order. The dashboard and the watchdog are tasks of
/// the room: they stop with it.
pub async fn serve_until(
    room: Room,
    problems: Vec<String>,
    listener: Option<TcpListener>,
    signal: impl Future<Output = ()>,
) {
    if let Some(l) = listener {
        let state = AppState::new(room.clone(), problems, room.cancel_token());
        room.spawn(async move {
            if let Err(e) = web::serve(l, state).await {
                error!(target: "web", "Dashboard stopped: {e}");
            }
        });
    }
    room.spawn(systemd::watchdog(room.cancel_token()));
    systemd::ready(&format!("room {} running", room.config.room));

    signal.await;
    info!("Shutting down");
    systemd::stopping();
    room.shutdown(Role::Daemon).await;
    info!("Stopped");
}
