//! systemd integration (`Type=notify`): READY once the room is up, WATCHDOG
//! pings while the runtime is alive, STOPPING at shutdown, STATUS lines for
//! `systemctl status`. Every call is a no-op outside systemd.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

/// READY=1 with a status line.
pub fn ready(status: &str) {
    notify(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// STOPPING=1.
pub fn stopping() {
    notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(false, states) {
        debug!(target: "daemon", "sd_notify failed: {e}");
    }
}

/// Pings the watchdog at half its interval until cancelled. A stuck
/// runtime stops pinging and systemd restarts the service.
pub async fn watchdog(cancel: CancellationToken) {
    let Some(interval) = watchdog_interval() else {
        return;
    };
    let every = interval / 2;
    info!(target: "daemon", "systemd watchdog every {every:?}");
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => notify(&[NotifyState::Watchdog]),
        }
    }
}

/// The watchdog interval systemd asked for, with sd_watchdog_enabled(3)'s
/// rule: `WATCHDOG_USEC` set, and `WATCHDOG_PID` either unset or ours.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    let for_us = match std::env::var("WATCHDOG_PID") {
        Ok(pid) => pid.parse::<u32>().ok() == Some(std::process::id()),
        Err(_) => true,
    };
    (for_us && usec > 0).then(|| Duration::from_micros(usec))
}

/// RELOADING=1 (a READY=1 follows when done).
pub fn reloading() {
    notify(&[NotifyState::Reloading, NotifyState::Status("reloading")]);
}

/// A stream of SIGHUPs (never yields where they cannot be caught).
pub fn hangups() -> Hangups {
    #[cfg(unix)]
    let s = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    #[cfg(not(unix))]
    let s = None;
    Hangups(s)
}

/// See [`hangups`].
pub struct Hangups(
    #[cfg(unix)] Option<tokio::signal::unix::Signal>,
    #[cfg(not(unix))] Option<()>,
);

impl Hangups {
    /// The next SIGHUP.
    pub async fn recv(&mut self) {
        match &mut self.0 {
            #[cfg(unix)]
            Some(s) => {
                if s.recv().await.is_none() {
                    std::future::pending::<()>().await;
                }
            }
            _ => std::future::pending::<()>().await,
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    // Registered now, not at the first poll: a SIGTERM that arrives right
    // after READY (systemd may send it at once) must reach the orderly
    // shutdown, not the default action that kills the process.
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async move {
            match term {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => info!(target: "daemon", "Ctrl-C received"),
            _ = term => info!(target: "daemon", "SIGTERM received"),
        }
    }
}
