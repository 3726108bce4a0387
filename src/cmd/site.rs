//! `roomctl site`: the site overview of every room on the brokers, served
//! on its own port. Brokers and accounts come from a room's config (`-c`:
//! its brokers, its `users.yaml` and `web.token`), or from `--broker` and
//! `--users` (no per-room config needed).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

use crate::accounts::{Accounts, AccountsConfig};
use crate::config::{Config, EnvPolicy, Secret, WebConfig};
use crate::events::EventBus;
use crate::mqtt::MqttSettings;
use crate::site::Site;

/// The MQTT settings and web settings the site uses: a room config's
/// brokers, timings and `web:` section (accounts, limits), under its own
/// client id; or `brokers` (`host[:port]`) with the defaults.
pub fn settings(
    config: Option<&Path>,
    brokers: &[String],
) -> anyhow::Result<(MqttSettings, WebConfig, Option<Secret>)> {
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
    // The site's key: the room config's `control.key`, else (with
    // --broker) $ROOMCTL_CONTROL_KEY.
    let key = c.control.key.clone().or_else(|| {
        std::env::var("ROOMCTL_CONTROL_KEY")
            .ok()
            .filter(|k| !k.is_empty())
            .map(Secret::new)
    });
    Ok((s, c.web, key))
}

/// Serves the site page on `listen` until Ctrl-C or SIGTERM.
pub async fn site(
    config: Option<&Path>,
    brokers: &[String],
    users: Option<&Path>,
    expected: &[String],
    listen: SocketAddr,
) -> anyhow::Result<()> {
    let (settings, mut web, key) = settings(config, brokers)?;
    if let Some(u) = users {
        web.users = u.to_path_buf();
    } else if config.is_none() {
        // No room config: no accounts file unless one is named.
        web.users = Path::new("/nonexistent/roomctl-site-users.yaml").to_path_buf();
    }
    let limits = crate::web::Limits {
        max_connections: web.max_connections,
        header_timeout: web.header_timeout,
    };
    let accounts = Accounts::new(AccountsConfig::from_web(&web), EventBus::default());
    let cancel = CancellationToken::new();
    let tasks = TaskTracker::new();
    if key.is_none() {
        tracing::warn!(target: "web", "No control.key (or ROOMCTL_CONTROL_KEY): starts and stops go out unsigned, and rooms with a key refuse them");
    }
    let site = Site::start(settings, key, expected.to_vec(), cancel.clone(), &tasks);
    let guard = crate::web::Guard::new(accounts, &web);
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
    crate::web::serve_router(
        listener,
        site.router(guard),
        limits,
        cancel.clone(),
        move |f| {
            t.spawn(f);
        },
    )
    .await?;
    cancel.cancel();
    tasks.close();
    let _ = tokio::time::timeout(Duration::from_secs(2), tasks.wait()).await;
    Ok(())
}
