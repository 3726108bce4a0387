//! MQTT over TLS and with passwords, against Mosquitto with a generated CA:
//! client certificates required, password auth, failover between a TLS
//! primary and a plain backup, and clear errors for a wrong CA or password.

use std::time::Duration;

use crate::common::*;
use roomctl::broker::Mosquitto;
use roomctl::mqtt::ConnectionState;
use roomctl::room::{Role, Room};
use tokio_util::sync::CancellationToken;

const SHOW: (&str, &str) = (
    "show.yaml",
    "name: show\nactions:\n  - {at: 0, topic: room1/light, message: 'ON'}\n  - {at: 0.2, topic: room1/steam, message: 'ON'}\n",
);

/// Adds `options` to broker entry `port` of the site's config.
fn broker_options(site: &Site, port: u16, options: &str) {
    let text = std::fs::read_to_string(&site.config).unwrap();
    let needle = format!("port: {port}, ");
    assert!(text.contains(&needle), "{text}");
    std::fs::write(
        &site.config,
        text.replace(&needle, &format!("port: {port}, {options}, ")),
    )
    .unwrap();
}

/// An observer that connects with TLS, a client certificate and a password.
async fn tls_observer(
    pki: &Pki,
    port: u16,
    cancel: &CancellationToken,
) -> tokio::sync::mpsc::Receiver<roomctl::mqtt::InMessage> {
    let mut s = settings(&format!("observer-{}", rand_id()), &[port]);
    s.brokers[0].tls = Some(pki.settings());
    s.brokers[0].username = Some("staff".into());
    s.brokers[0].password = Some(roomctl::config::Secret::new("door-key"));
    s.subscriptions = vec!["room1/#".into()];
    let (h, rx) = mqtt_start(s, cancel.child_token());
    assert!(
        h.wait_subscribed(Duration::from_secs(5)).await,
        "the TLS observer could not subscribe: {:?}",
        h.status()
    );
    std::mem::forget(h);
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_client_certificate_and_a_password() {
    init_logs();
    let pki = Pki::new();
    let passwd = password_file(pki.dir.path(), "staff", "door-key");
    let b = Mosquitto::start_with(&format!(
        "{}allow_anonymous false\npassword_file {}\n",
        pki.listener(),
        passwd.display()
    ))
    .await
    .unwrap();
    let site = site(&[b.port()], &[SHOW], "");
    broker_options(
        &site,
        b.port(),
        &format!(
            "tls: {}, username: staff, password: \"${{ROOMCTL_TEST_MQTT_PW:-door-key}}\"",
            pki.broker_tls("ca.pem")
        ),
    );
    let (config, scenes) = site.load();
    assert!(config.mqtt.brokers[0].addr().starts_with("mqtts://"));
    let cancel = CancellationToken::new();
    let mut seen = tls_observer(&pki, b.port(), &cancel).await;
    let room = Room::start(config, scenes, Role::Daemon);
    assert!(
        room.mqtt.wait_subscribed(Duration::from_secs(5)).await,
        "{:?}",
        room.mqtt.status()
    );
    start(&room, "show").await;
    let got = collect_until(&mut seen, Duration::from_secs(5), |g| {
        g.iter().any(|m| m.topic == "room1/steam")
    })
    .await;
    assert!(
        got.iter()
            .any(|m| m.topic == "room1/light" && text(m) == "ON"),
        "{got:?}"
    );
    room.shutdown(Role::Daemon).await;

    // The wrong password is refused in words, and no plain client gets in.
    let site2 = crate::common::site(&[b.port()], &[SHOW], "");
    broker_options(
        &site2,
        b.port(),
        &format!(
            "tls: {}, username: staff, password: wrong",
            pki.broker_tls("ca.pem")
        ),
    );
    let (config, scenes) = site2.load();
    let room = Room::start(config, scenes, Role::Daemon);
    eventually(Duration::from_secs(5), "the refusal", || {
        room.mqtt.status().last_error.is_some()
    })
    .await;
    let e = room.mqtt.status().last_error.unwrap();
    assert!(
        e.contains(&format!("mqtts://127.0.0.1:{}", b.port()))
            && e.to_lowercase().contains("password"),
        "{e}"
    );
    room.shutdown(Role::Daemon).await;
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_is_a_clear_error_naming_the_broker_not_a_hang() {
    init_logs();
    let pki = Pki::new();
    let b = Mosquitto::start_with(&pki.listener()).await.unwrap();
    let site = site(&[b.port()], &[SHOW], "");
    broker_options(
        &site,
        b.port(),
        &format!("tls: {}", pki.broker_tls("wrong-ca.pem")),
    );
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    // connection_timeout is 2 s: the answer must come well before.
    let t0 = std::time::Instant::now();
    eventually(Duration::from_secs(2), "the TLS error", || {
        room.mqtt.status().last_error.is_some()
    })
    .await;
    let e = room.mqtt.status().last_error.unwrap();
    assert!(
        e.starts_with(&format!("mqtts://127.0.0.1:{}: TLS: ", b.port()))
            && e.contains("not signed by the CA in tls.ca_file"),
        "{e}"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t0.elapsed()
    );
    assert_ne!(room.mqtt.status().state, ConnectionState::Connected);
    room.shutdown(Role::Daemon).await;

    // Without a client certificate the broker refuses the handshake.
    let site = crate::common::site(&[b.port()], &[SHOW], "");
    broker_options(
        &site,
        b.port(),
        &format!("tls: {{ ca_file: {} }}", pki.path("ca.pem")),
    );
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    eventually(Duration::from_secs(2), "the refusal", || {
        room.mqtt.status().last_error.is_some()
    })
    .await;
    let e = room.mqtt.status().last_error.unwrap();
    assert!(e.contains("TLS:"), "{e}");
    room.shutdown(Role::Daemon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_from_a_tls_primary_to_a_plain_backup_and_back() {
    init_logs();
    let pki = Pki::new();
    let mut primary = Mosquitto::start_with(&pki.listener()).await.unwrap();
    let primary_port = primary.port();
    let backup = Mosquitto::start().await.unwrap();
    let site = site(&[primary_port, backup.port()], &[SHOW], "");
    // Faster failback for the test.
    let text = std::fs::read_to_string(&site.config).unwrap();
    std::fs::write(
        &site.config,
        text.replace(
            "  max_retry_delay: 0.5\n",
            "  max_retry_delay: 0.5\n  health_check_interval: 1\n",
        ),
    )
    .unwrap();
    broker_options(
        &site,
        primary_port,
        &format!("tls: {}", pki.broker_tls("ca.pem")),
    );
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    assert!(room.mqtt.wait_connected(Duration::from_secs(5)).await);
    assert_eq!(
        room.mqtt.status().broker.as_deref(),
        Some(format!("mqtts://127.0.0.1:{primary_port}").as_str())
    );
    let cancel = CancellationToken::new();
    let (_o, mut on_backup) = observer(backup.port(), "room1/#", &cancel).await;

    primary.kill();
    eventually(
        Duration::from_secs(5),
        "failover to the plain backup",
        || {
            room.mqtt.status().broker.as_deref()
                == Some(format!("127.0.0.1:{}", backup.port()).as_str())
        },
    )
    .await;
    start(&room, "show").await;
    let got = collect_until(&mut on_backup, Duration::from_secs(5), |g| {
        g.iter().any(|m| m.topic == "room1/steam")
    })
    .await;
    assert!(got.iter().any(|m| m.topic == "room1/light"), "{got:?}");

    // The TLS primary comes back on its port: the room goes back to it.
    let _primary = Mosquitto::start_with_on(primary_port, &pki.listener())
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "failback to TLS", || {
        room.mqtt.status().broker.as_deref()
            == Some(format!("mqtts://127.0.0.1:{primary_port}").as_str())
    })
    .await;
    room.shutdown(Role::Daemon).await;
    cancel.cancel();
}
