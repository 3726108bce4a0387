//! `roomctl simulate`: runs a fleet of simulated ESP32s (see
//! [`crate::simulate`]) against the configured brokers until Ctrl-C or
//! SIGTERM, then pulls the plug so the brokers publish each device's
//! `offline` will.

use std::path::Path;
use std::time::Duration;

use anyhow::bail;
use tokio_util::sync::CancellationToken;

use crate::simulate::{self, ReplyStyle, SimOptions};

/// The fleet for the config at `path`.
pub async fn simulate(
    path: &Path,
    devices: usize,
    latency: (Duration, Duration),
    drop: f64,
    reply: ReplyStyle,
) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&drop) {
        bail!("--drop must be between 0 and 1");
    }
    let config = crate::check::load_config(path)?;
    let loaded = crate::scene::load_scenes(&config);
    for e in loaded.errors.iter() {
        eprintln!("{e}");
    }
    let opts = SimOptions {
        devices,
        latency,
        drop,
        heartbeat: (config.devices.stale_after / 3).max(Duration::from_secs(1)),
        reply,
    };
    let fleet = simulate::start(&config, &loaded.scenes, &opts, CancellationToken::new());
    for (id, topics) in &fleet.devices {
        let what = if topics.is_empty() {
            "(spare)".to_string()
        } else {
            topics.join(", ")
        };
        println!("{id}: {what}");
    }
    crate::systemd::shutdown_signal().await;
    fleet.stopped().await;
    Ok(())
}
