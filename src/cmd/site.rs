//! `roomctl site`: the site overview of every room on the brokers, served
//! on its own port. Brokers and the token come from a room's config (`-c`)
//! or from `--broker` (no per-room config needed).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

use crate::config::{Config, EnvPolicy, Secret};
use crate::mqtt::MqttSettings;
use crate::site::Site;

/// The MQTT settings, token and web limits the site uses: a room config's
/// brokers, timings, `web.token` and `web.max_connections` /
/// `web.header_timeout` (under its own client id), or `brokers`
/// (`host[:port]`) with the defaults.
pub fn settings(
    config: Option<&Path>,
    brokers: &[String],
) -> anyhow::Result<(MqttSettings, Option<Secret>, crate::web::Limits)> {
    let c = if brokers.is_empty() {
        let Some(p) = config else {
            bail!("say where the brokers are: -c <a room's config> or --broker host:port");
        };
        Config::load_with(p, EnvPolicy::Optional).map_err(|e| anyhow::anyhow!("{e}"))?
    } else {
        let list: String = brokers
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let b = b.replace(['"', '\\'], "");
                match b.rsplit_once(':') {
                    Some((h, p)) if p.parse::<u32>().is_ok() => {
                        format!(
                            "    - {{ broker: \"{h}\", port: {p}, priority: {} }}\n",
                            i + 1
                        )
                    }
                    _ => format!("    - {{ broker: \"{b}\", priority: {} }}\n", i + 1),
                }
            })
            .collect();
        Config::parse(
            &format!("room: site\nmqtt:\n  brokers:\n{list}"),
            Path::new("--broker"),
            &|_| None,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?
    };
    let mut s = MqttSettings::from_config(&c.mqtt);
    // Its own id: never the room's (the broker would close one of the two).
    s.client_id = format!("roomctl_site_{:08x}", rand::random::<u32>());
    let limits = crate::web::Limits {
        max_connections: c.web.max_connections,
        header_timeout: c.web.header_timeout,
    };
    Ok((s, c.web.token.clone(), limits))
}

/// Serves the site page on `listen` until Ctrl-C or SIGTERM.
pub async fn site(
    config: Option<&Path>,
    brokers: &[String],
    listen: SocketAddr,
) -> anyhow::Result<()> {
    let (settings, token, limits) = settings(config, brokers)?;
    let cancel = CancellationToken::new();
    let tasks = TaskTracker::new();
    let site = Site::start(settings, token, cancel.clone(), &tasks);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    info!(target: "web", "Site overview on http://{} (at most {} connections)", listener.local_addr()?, limits.max_connections);
    // The dashboard's limits: a connection cap and header/idle timeouts.
    let stop = cancel.clone();
    tokio::spawn(async move {
        crate::systemd::shutdown_signal().await;
        stop.cancel();
    });
    let t = tasks.clone();
    crate::web::serve_router(listener, site.router(), limits, cancel.clone(), move |f| {
        t.spawn(f);
    })
    .await?;
    cancel.cancel();
    tasks.close();
    let _ = tokio::time::timeout(Duration::from_secs(2), tasks.wait()).await;
    Ok(())
}
