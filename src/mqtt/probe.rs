//! One-shot broker check: connect, wait for CONNACK, disconnect. Used by
//! `roomctl doctor` and by the supervisor's failback health check.

use std::time::Duration;

use rumqttc::Outgoing;
use rumqttc::v5::Event;
use rumqttc::v5::mqttbytes::v5::Packet;
use tokio::time::Instant;

use super::connect;
use crate::config::BrokerConfig;

/// Connects to `broker` with its credentials and returns how long the
/// CONNACK took, or why it did not come.
pub async fn probe(
    broker: &BrokerConfig,
    client_id: &str,
    timeout: Duration,
) -> Result<Duration, String> {
    let opts = connect::options(broker, client_id, Duration::from_secs(5), None);
    let (client, mut eventloop) = connect::client(opts, 4, timeout);
    let start = Instant::now();
    let first = tokio::time::timeout(timeout, eventloop.poll()).await;
    let result = match first {
        Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => Ok(start.elapsed()),
        Ok(Ok(other)) => Err(format!("unexpected first packet {other:?}")),
        Ok(Err(e)) => Err(connect::describe(&e)),
        Err(_) => Err(format!("no answer within {:.1}s", timeout.as_secs_f64())),
    };
    if result.is_ok() && client.try_disconnect().is_ok() {
        // Let the DISCONNECT go out so the broker does not log a dropped client.
        let _ = tokio::time::timeout(Duration::from_millis(200), async {
            while let Ok(ev) = eventloop.poll().await {
                if matches!(ev, Event::Outgoing(Outgoing::Disconnect)) {
                    break;
                }
            }
        })
        .await;
    }
    result
}
