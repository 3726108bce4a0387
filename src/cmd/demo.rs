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

use super::run::serve_until;
use crate::broker::Mosquitto;
use crate::check;
use crate::config::{BrokerConfig, Config};
use crate::origin::Origin;
use crate::room::{Command, Role, Room};
use crate::simulate::{self, SimOptions};
use crate::systemd::shutdown_signal;

/// The example config and scenes, as shipped in the repository.
pub const EXAMPLE_CONFIG: &str = include_str!("../../config/roomctl.yaml");
/// The example scenes.
pub const EXAMPLE_SCENES: &[(&str, &str)] = &[
    ("intro.yaml", include_str!("../../scenes/intro.yaml")),
    ("showcase.json", include_str!("../../scenes/showcase.json")),
    ("outro.yaml", include_str!("../../scenes/outro.yaml")),
];
/// The example command files (`scenes/commands/`).
pub const EXAMPLE_COMMANDS: &[(&str, &str)] = &[
    (
        "light_off.json",
        include_str!("../../scenes/commands/light_off.json"),
    ),
    (
        "STOPALL.json",
        include_str!("../../scenes/commands/STOPALL.json"),
    ),
];
/// The example sounds.
pub const EXAMPLE_MEDIA: &[(&str, &[u8])] = &[
    ("bg.wav", include_bytes!("../../config/media/bg.wav")),
    ("chime.wav", include_bytes!("../../config/media/chime.wav")),
    (
        "welcome.wav",
        include_bytes!("../../config/media/welcome.wav"),
    ),
];

/// What `roomctl demo` can be asked for.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Dashboard address.
    pub listen: SocketAddr,
    /// Simulated ESP32s.
    pub devices: usize,
    /// Kill the primary broker after this long, to watch the failover.
    pub kill_primary_after: Option<Duration>,
}

/// The example config, for local brokers on `ports`, a dashboard on
/// `listen`, and scenes and media in `dir`: read from the shipped file,
/// then changed as a typed value.
pub fn demo_config(dir: &Path, ports: (u16, u16), listen: SocketAddr) -> anyhow::Result<Config> {
    let mut c = Config::parse(EXAMPLE_CONFIG, &dir.join("roomctl.yaml"), &|_| None)
        .map_err(|e| anyhow::anyhow!("the example config is invalid:\n{e}"))?;
    if c.mqtt.brokers.len() < 2 {
        bail!("the example config needs a primary and a backup broker");
    }
    for (b, port) in c.mqtt.brokers.iter_mut().zip([ports.0, ports.1]) {
        *b = BrokerConfig::new("127.0.0.1", port, b.priority);
    }
    c.mqtt.brokers.truncate(2);
    c.web.listen = listen;
    c.scenes.dir = dir.join("scenes");
    c.media.dir = dir.join("media");
    // A pop-up player window is not what a demo on a laptop wants.
    c.media.video_enabled = false;
    c.state_dir = dir.join("state");
    // Never written to disk: Reload reads the scenes again, keeps this.
    c.in_memory = true;
    // Open now, whatever the time: the showcase every 5 minutes, so the
    // schedule card has something to show (and, while another scene runs,
    // a skipped start to explain).
    if let Some(s) = &mut c.schedule {
        let all_day = crate::schedule::parse_hours("00:00-23:59").map_err(anyhow::Error::msg)?;
        s.hours = [all_day; 7];
        s.closed.clear();
        s.at_opening = None;
        s.at_closing = None;
        s.shows
            .retain(|x| matches!(x.when, crate::schedule::When::Every { .. }));
        for show in &mut s.shows {
            if let crate::schedule::When::Every { every, from, until } = &mut show.when {
                *every = Duration::from_secs(300);
                *from = jiff::civil::Time::midnight();
                *until = jiff::civil::Time::constant(23, 55, 0, 0);
            }
        }
    }
    Ok(c)
}

/// Writes the example scenes and media into `dir`.
pub fn write_demo_files(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join("scenes"))?;
    std::fs::create_dir_all(dir.join("media"))?;
    for (name, text) in EXAMPLE_SCENES {
        std::fs::write(dir.join("scenes").join(name), text)?;
    }
    std::fs::create_dir_all(dir.join("scenes").join("commands"))?;
    for (name, text) in EXAMPLE_COMMANDS {
        std::fs::write(dir.join("scenes").join("commands").join(name), text)?;
    }
    for (name, bytes) in EXAMPLE_MEDIA {
        std::fs::write(dir.join("media").join(name), bytes)?;
    }
    Ok(())
}

/// Runs the demo until Ctrl-C or SIGTERM.
pub async fn demo(opts: DemoOptions) -> anyhow::Result<()> {
    let primary = Mosquitto::start()
        .await
        .context("cannot start the demo's primary broker")?;
    let backup = Mosquitto::start()
        .await
        .context("cannot start the demo's backup broker")?;
    let dir = std::env::temp_dir().join(format!("roomctl-demo-{}", std::process::id()));
    write_demo_files(&dir)?;
    let config = demo_config(&dir, (primary.port(), backup.port()), opts.listen)?;
    let mut report = check::check_config(config);
    let config = report.take_config(&dir)?;
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
    // The site overview, as `roomctl site` would serve it, under /site.
    let mut site_mqtt = crate::mqtt::MqttSettings::from_config(&config.mqtt);
    site_mqtt.client_id = "roomctl_site_demo".into();
    let site_stop = CancellationToken::new();
    let site_tasks = tokio_util::task::TaskTracker::new();
    let site = crate::site::Site::start(
        site_mqtt,
        config.control.key.clone(),
        vec![config.room.clone()],
        site_stop.clone(),
        &site_tasks,
    );
    let web = config.web.clone();
    let room = Room::start(config, report.scenes, Role::Daemon);
    println!("roomctl demo");
    println!("  dashboard:  {url}");
    println!("  site:       {url}site (every room on the brokers)");
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
                    let start = r.apply(Origin::Cli { command: "demo" }, Command::StartScene("intro".into()));
                    if let Err(e) = start.await {
                        warn!(target: "daemon", "demo: {e}");
                    }
                }
            } => {}
        }
    });
    // The brokers outlive the room's orderly shutdown (its last messages
    // must still reach them); the signal future only borrows the primary.
    let primary = parking_lot::Mutex::new(primary);
    let kill_after = opts.kill_primary_after;
    let signal = async {
        if let Some(d) = kill_after {
            tokio::select! {
                _ = shutdown_signal() => return,
                _ = tokio::time::sleep(d) => {
                    info!(target: "daemon", "demo: killing the primary broker to show the failover");
                    primary.lock().kill();
                }
            }
        }
        shutdown_signal().await;
    };
    // The site page under /site shares the room's accounts and sessions.
    let site = site.router(crate::web::Guard::new(room.accounts.clone(), &web));
    serve_until(room, Some(listener), Some(site), signal).await;
    fleet_stop.cancel();
    site_stop.cancel();
    drop(primary);
    drop(backup);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_config_passes_check() {
        let d = tempfile::tempdir().unwrap();
        write_demo_files(d.path()).unwrap();
        let c = demo_config(d.path(), (11883, 11884), "127.0.0.1:0".parse().unwrap()).unwrap();
        let r = check::check_config(c);
        assert!(r.ok(), "{}", r.errors);
        assert!(r.warnings.is_empty(), "{}", r.warnings);
        let c = r.config.unwrap();
        assert_eq!(c.mqtt.brokers[0].port, 11883);
        assert_eq!(c.mqtt.brokers[1].port, 11884);
        assert!(c.mqtt.brokers.iter().all(|b| b.username.is_none()));
        assert!(!c.media.video_enabled);
        assert_eq!(r.scenes.len(), EXAMPLE_SCENES.len());
        let s = c.schedule.as_ref().expect("the demo has a schedule");
        let next = s.upcoming(jiff::Timestamp::now(), 3);
        assert_eq!(next.len(), 3);
        assert!(next.iter().all(|p| p.scene == "showcase"), "{next:?}");
        assert!(c.state_dir.starts_with(d.path()));
    }

    #[tokio::test]
    async fn reload_in_the_demo_reads_a_new_scene() {
        let d = tempfile::tempdir().unwrap();
        write_demo_files(d.path()).unwrap();
        let c = demo_config(d.path(), (1, 2), "127.0.0.1:0".parse().unwrap()).unwrap();
        let mut r = check::check_config(c);
        let c = r.take_config(d.path()).unwrap();
        let room = Room::start(c, r.scenes, Role::Daemon);
        std::fs::write(
            d.path().join("scenes/new.yaml"),
            "name: new\nactions:\n  - {at: 0, topic: room1/light, message: 'ON'}\n",
        )
        .unwrap();
        let report = room
            .reload()
            .expect("the demo reloads without a config file");
        assert!(report.scenes.iter().any(|s| s == "new"), "{report:?}");
        assert!(!d.path().join("roomctl.yaml").exists());
        room.shutdown(Role::Daemon).await;
    }
}
