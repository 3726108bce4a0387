//! Broker checks: connect, wait for CONNACK, disconnect ([`probe`], for
//! `roomctl doctor`), or stay connected a while first ([`probe_steady`],
//! the supervisor's failback check: a broker is worth switching back to
//! only once it has stayed up).

use std::time::Duration;

use rumqttc::Outgoing;
use rumqttc::v5::Event;
use rumqttc::v5::mqttbytes::v5::Packet;
use tokio::time::Instant;

use super::connect::{self, ConnectError};
use crate::config::BrokerConfig;

/// Connects to `broker` with its credentials and returns how long the
/// CONNACK took, or why it did not come.
pub async fn probe(
    broker: &BrokerConfig,
    client_id: &str,
    timeout: Duration,
) -> Result<Duration, ConnectError> {
    probe_steady(broker, client_id, timeout, Duration::ZERO).await
}

/// Like [`probe`], but the connection is then held open for `hold`: the
/// broker passes only if it neither closes nor stops answering meanwhile
/// (a crash-looping broker that answers between two crashes does not).
pub async fn probe_steady(
    broker: &BrokerConfig,
    client_id: &str,
    timeout: Duration,
    hold: Duration,
) -> Result<Duration, ConnectError> {
    let opts = connect::options(broker, client_id, Duration::from_secs(5), None);
    let (client, mut eventloop) = connect::client(opts, 4, timeout);
    let start = Instant::now();
    let first = tokio::time::timeout(timeout, eventloop.poll()).await;
    let mut result = match first {
        Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => Ok(start.elapsed()),
        Ok(Ok(other)) => Err(ConnectError::Unexpected(format!("{other:?}"))),
        Ok(Err(e)) => Err(ConnectError::Failed(connect::describe(&e))),
        Err(_) => Err(ConnectError::NoAnswer(timeout.as_secs_f64())),
    };
    if result.is_ok() && !hold.is_zero() {
        // Polling answers the keep-alive; an error is the broker going away.
        let held = tokio::time::timeout(hold, async {
            loop {
                if let Err(e) = eventloop.poll().await {
                    return e;
                }
            }
        })
        .await;
        if let Ok(e) = held {
            result = Err(ConnectError::Failed(format!(
                "{} after {:.1}s",
                connect::describe(&e),
                start.elapsed().as_secs_f64()
            )));
        }
    }
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
