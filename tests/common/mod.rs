//! Helpers shared by the integration tests: real Mosquitto brokers, MQTT
//! observers and settings with short timings.
#![allow(dead_code)]

use std::time::Duration;

use roomctl::config::BrokerConfig;
use roomctl::mqtt::{self, Backoff, InMessage, MqttHandle, MqttSettings};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub fn broker(port: u16, priority: u32) -> BrokerConfig {
    BrokerConfig::new("127.0.0.1", port, priority)
}

/// Settings with test-sized timings.
pub fn settings(client_id: &str, ports: &[u16]) -> MqttSettings {
    MqttSettings {
        client_id: client_id.to_string(),
        brokers: ports
            .iter()
            .enumerate()
            .map(|(i, p)| broker(*p, i as u32 + 1))
            .collect(),
        keep_alive: Duration::from_secs(5),
        ack_timeout: Duration::from_millis(500),
        connection_timeout: Duration::from_secs(2),
        health_check_interval: Duration::from_secs(60),
        failback: false,
        backoff: Backoff {
            max_retries: 10,
            initial: Duration::from_millis(100),
            max: Duration::from_millis(500),
            multiplier: 2.0,
            jitter: 0.1,
        },
        queue_size: 1000,
        retry_limit: 3,
        will: None,
        birth: None,
        subscriptions: vec![],
        incoming_capacity: 1024,
    }
}

/// A client subscribed to `filter` on one broker; returns what it receives.
pub async fn observer(
    port: u16,
    filter: &str,
    cancel: &CancellationToken,
) -> (MqttHandle, mpsc::Receiver<InMessage>) {
    let mut s = settings(&format!("observer-{}", rand_id()), &[port]);
    s.subscriptions = vec![filter.to_string()];
    let (h, rx) = mqtt::start(s, cancel.child_token());
    assert!(h.wait_connected(Duration::from_secs(5)).await, "observer could not connect");
    // Let the SUBACK arrive before anything is published.
    tokio::time::sleep(Duration::from_millis(100)).await;
    (h, rx)
}

pub fn rand_id() -> u32 {
    rand::random()
}

/// Collects messages until `pred` holds for the collected list or the time is up.
pub async fn collect_until(
    rx: &mut mpsc::Receiver<InMessage>,
    timeout: Duration,
    mut pred: impl FnMut(&[InMessage]) -> bool,
) -> Vec<InMessage> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while !pred(&got) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(m)) => got.push(m),
            _ => break,
        }
    }
    got
}

pub fn text(m: &InMessage) -> String {
    String::from_utf8_lossy(&m.payload).into_owned()
}

/// Installs a test log subscriber once (RUST_LOG controls it).
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}
