//! `roomctl run`: the daemon systemd starts. Loads and checks everything,
//! starts the room and the dashboard, tells systemd it is ready, and on
//! SIGTERM/Ctrl-C shuts down in order (scene `on_stop` + `ROOM/STOP`,
//! `offline` status, outbox flush) before exiting 0.

use std::future::Future;
use std::path::Path;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
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
/// everything down in order.
pub async fn serve_until(
    room: Room,
    problems: Vec<String>,
    listener: Option<TcpListener>,
    signal: impl Future<Output = ()>,
) {
    let web_stop = CancellationToken::new();
    let web = listener.map(|l| {
        let state = AppState::new(room.clone(), problems, web_stop.clone());
        tokio::spawn(async move {
            if let Err(e) = web::serve(l, state).await {
                error!(target: "web", "Dashboard stopped: {e}");
            }
        })
    });
    let watchdog_stop = CancellationToken::new();
    tokio::spawn(systemd::watchdog(watchdog_stop.clone()));
    systemd::ready(&format!("room {} running", room.config.room));

    signal.await;
    info!("Shutting down");
    systemd::stopping();
    room.shutdown(Role::Daemon).await;
    web_stop.cancel();
    if let Some(w) = web {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), w).await;
    }
    watchdog_stop.cancel();
    info!("Stopped");
}
