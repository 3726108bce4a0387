//! `roomctl demo`: the whole system on one machine with no set-up. Two local
//! Mosquitto brokers (primary and backup), a fleet of simulated ESP32s, the
//! daemon and its dashboard, using the example config and scenes built into
//! the binary.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::app::{Role, Room};
use crate::broker::Mosquitto;
use crate::check;
use crate::daemon::serve_until;
use crate::simulate::{self, SimOptions};
use crate::systemd::shutdown_signal;

/// The example config and scenes, as shipped in the repository.
pub const EXAMPLE_CONFIG: &str = include_str!("../config/roomctl.yaml");
pub const EXAMPLE_SCENES: &[(&str, &str)] = &[
    ("intro.yaml", include_str!("../scenes/intro.yaml")),
    ("showcase.json", include_str!("../scenes/showcase.json")),
    ("outro.yaml", include_str!("../scenes/outro.yaml")),
];
pub const EXAMPLE_MEDIA: &[(&str, &[u8])] = &[
    ("bg.wav", include_bytes!("../media/bg.wav")),
    ("chime.wav", include_bytes!("../media/chime.wav")),
    ("welcome.wav", include_bytes!("../media/welcome.wav")),
];

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub listen: SocketAddr,
    pub devices: usize,
    /// Kill the primary broker after this long, to watch the failover.
    pub kill_primary_after: Option<Duration>,
}

/// The example config rewritten for local brokers on `ports`, a dashboard
/// on `listen`, and scenes/media next to it.
pub fn demo_config(ports: (u16, u16), listen: SocketAddr) -> anyhow::Result<String> {
    let mut text = EXAMPLE_CONFIG.to_string();
    for (from, to) in [
        ("port: 1883", format!("port: {}", ports.0)),
        ("port: 1884", format!("port: {}", ports.1)),
        ("listen: 0.0.0.0:8080", format!("listen: {listen}")),
        ("dir: ../scenes", "dir: scenes".to_string()),
        ("dir: ../media", "dir: media".to_string()),
    ] {
        if !text.contains(from) {
            bail!("example config has no `{from}`");
        }
        text = text.replace(from, &to);
    }
    // A pop-up player window is not what a demo on a laptop wants.
    text = text.replace("media:\n", "media:\n  video: false\n");
    Ok(text)
}

/// Writes config, scenes and media into `dir`; returns the config path.
pub fn write_demo_files(
    dir: &Path,
    ports: (u16, u16),
    listen: SocketAddr,
) -> anyhow::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir.join("scenes"))?;
    std::fs::create_dir_all(dir.join("media"))?;
    for (name, text) in EXAMPLE_SCENES {
        std::fs::write(dir.join("scenes").join(name), text)?;
    }
    for (name, bytes) in EXAMPLE_MEDIA {
        std::fs::write(dir.join("media").join(name), bytes)?;
    }
    let path = dir.join("roomctl.yaml");
    std::fs::write(&path, demo_config(ports, listen)?)?;
    Ok(path)
}

pub async fn demo(opts: DemoOptions) -> anyhow::Result<()> {
    let primary = Mosquitto::start()
        .await
        .context("cannot start the demo's primary broker")?;
    let backup = Mosquitto::start()
        .await
        .context("cannot start the demo's backup broker")?;
    let dir = std::env::temp_dir().join(format!("roomctl-demo-{}", std::process::id()));
    let path = write_demo_files(&dir, (primary.port(), backup.port()), opts.listen)?;
    let mut report = check::check(&path);
    let config = report.take_config(&path)?;
    if !report.errors.is_empty() {
        bail!("demo scenes are invalid:\n{}", report.errors);
    }
    let listener = TcpListener::bind(config.web.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (try --listen 127.0.0.1:0)",
                config.web.listen
            )
        })?;
    let url = format!("http://{}/", listener.local_addr()?);

    let fleet_stop = CancellationToken::new();
    let fleet = simulate::start(
        &config,
        &report.scenes,
        &SimOptions {
            devices: opts.devices,
            ..SimOptions::default()
        },
        fleet_stop.clone(),
    );
    let room = Room::start(config, report.scenes, Role::Daemon);
    println!("roomctl demo");
    println!("  dashboard:  {url}");
    println!(
        "  brokers:    127.0.0.1:{} (primary), 127.0.0.1:{} (backup)",
        primary.port(),
        backup.port()
    );
    println!("  devices:    {} simulated ESP32s", fleet.devices.len());
    println!("  files:      {}", dir.display());
    println!(
        "  try:        mosquitto_pub -p {} -t roomctl/room1/scene/start -m showcase",
        primary.port()
    );
    println!("  Ctrl-C stops everything.");

    // Something to watch straight away.
    let (r, stop) = (room.clone(), room.cancel_token());
    room.spawn(async move {
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = async {
                if r.mqtt.wait_connected(Duration::from_secs(10)).await {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    if let Err(e) = r.scenes.start("intro") {
                        warn!("demo: {e}");
                    }
                }
            } => {}
        }
    });
    // The brokers outlive the room's orderly shutdown (its last messages
    // must still reach them); the signal future only borrows the primary.
    let primary = std::sync::Mutex::new(primary);
    let kill_after = opts.kill_primary_after;
    let signal = async {
        if let Some(d) = kill_after {
            tokio::select! {
                _ = shutdown_signal() => return,
                _ = tokio::time::sleep(d) => {
                    info!("demo: killing the primary broker to show the failover");
                    primary.lock().unwrap().kill();
                }
            }
        }
        shutdown_signal().await;
    };
    serve_until(room, Vec::new(), Some(listener), signal).await;
    fleet_stop.cancel();
    drop(primary);
    drop(backup);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_files_pass_check() {
        let d = tempfile::tempdir().unwrap();
        let path =
            write_demo_files(d.path(), (11883, 11884), "127.0.0.1:0".parse().unwrap()).unwrap();
        let r = check::check(&path);
        assert!(r.ok(), "{}", r.errors);
        assert!(r.warnings.is_empty(), "{}", r.warnings);
        let c = r.config.unwrap();
        assert_eq!(c.mqtt.brokers[0].port, 11883);
        assert_eq!(c.mqtt.brokers[1].port, 11884);
        assert!(!c.media.video_enabled);
        assert_eq!(r.scenes.len(), EXAMPLE_SCENES.len());
    }
}
