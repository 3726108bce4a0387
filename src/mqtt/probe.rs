//! One-shot broker check: connect, wait for CONNACK, disconnect. Used by
//! `roomctl doctor` and by the supervisor's failback health check.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet};
use tokio::time::Instant;

use crate::config::BrokerConfig;

/// Connects to `broker` with its credentials and returns how long the
/// CONNACK took, or why it did not come.
pub async fn probe(
    broker: &BrokerConfig,
    client_id: &str,
    timeout: Duration,
) -> Result<Duration, String> {
    let mut opts = MqttOptions::new(client_id.to_string(), broker.host.clone(), broker.port);
    opts.set_clean_session(true);
    opts.set_keep_alive(Duration::from_secs(5));
    if let Some(user) = &broker.username {
        let pw = broker.password.as_ref().map(|p| p.expose()).unwrap_or("");
        opts.set_credentials(user.clone(), pw);
    }
    let (client, mut eventloop) = AsyncClient::new(opts, 4);
    let mut net = eventloop.network_options();
    net.set_tcp_nodelay(true);
    eventloop.set_network_options(net);
    let start = Instant::now();
    let first = tokio::time::timeout(timeout, eventloop.poll()).await;
    let result = match first {
        Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => Ok(start.elapsed()),
        Ok(Ok(other)) => Err(format!("unexpected first packet {other:?}")),
        Ok(Err(e)) => Err(super::supervisor::describe(&e)),
        Err(_) => Err(format!("no answer within {:.1}s", timeout.as_secs_f64())),
    };
    if result.is_ok() && client.try_disconnect().is_ok() {
        // Let the DISCONNECT go out so the broker does not log a dropped client.
        let _ = tokio::time::timeout(Duration::from_millis(200), async {
            while let Ok(ev) = eventloop.poll().await {
                if matches!(ev, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                    break;
                }
            }
        })
        .await;
    }
    result
}
