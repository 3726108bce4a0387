//! How roomctl opens an MQTT 5 connection to one broker: the CONNECT
//! options every client uses (clean start, keep-alive, credentials, last
//! will, `Maximum Packet Size`) and a short human text for what went wrong.
//! Used by the supervisor and by the one-shot probe (`doctor`, failback).

use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{ConnAck, ConnectReturnCode, DisconnectReasonCode, LastWill};
use rumqttc::v5::{AsyncClient, ConnectionError, EventLoop, MqttOptions, StateError};

use super::OwnMessage;
use crate::config::BrokerConfig;

/// The largest packet roomctl accepts or sends (MQTT 5 `Maximum Packet
/// Size` in CONNECT): the broker discards bigger messages for this client
/// instead of sending them, so one oversize retained message cannot break
/// the connection on every subscribe.
pub const MAX_PACKET_SIZE: u32 = 256 * 1024;

/// At most this many of our messages are in flight at once (less when the
/// broker's Receive Maximum is lower).
pub const MAX_INFLIGHT: usize = 64;

/// Receive Maximum, Maximum Packet Size and subscription identifier support
/// from the CONNACK (MQTT 5 defaults when absent).
pub fn broker_limits(ack: &ConnAck) -> (usize, usize, bool) {
    let p = ack.properties.as_ref();
    let receive_max = p
        .and_then(|p| p.receive_max)
        .map_or(MAX_INFLIGHT, usize::from);
    let max_packet = p
        .and_then(|p| p.max_packet_size)
        .map_or(MAX_PACKET_SIZE, |m| m.min(MAX_PACKET_SIZE)) as usize;
    let sub_ids = p
        .and_then(|p| p.subscription_identifiers_available)
        .is_none_or(|v| v != 0);
    (receive_max.clamp(1, MAX_INFLIGHT), max_packet, sub_ids)
}

/// Why a connection attempt failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConnectError {
    /// The network or the broker said no (text from [`describe`]).
    #[error("{0}")]
    Failed(String),
    /// No CONNACK in time.
    #[error("no answer within {0:.1}s")]
    NoAnswer(f64),
    /// Something other than a CONNACK came first.
    #[error("unexpected first packet: {0}")]
    Unexpected(String),
}

/// Options for one connection attempt to `broker`.
pub fn options(
    broker: &BrokerConfig,
    client_id: &str,
    keep_alive: Duration,
    will: Option<&OwnMessage>,
) -> MqttOptions {
    let mut opts = MqttOptions::new(client_id.to_string(), broker.host.clone(), broker.port);
    // rumqttc panics below 5 s; config validation keeps it there already.
    opts.set_keep_alive(keep_alive.max(Duration::from_secs(5)));
    // Every connection is a clean session: what is resent after a loss is
    // decided by our own session, never by the broker's.
    opts.set_clean_start(true);
    opts.set_max_packet_size(Some(MAX_PACKET_SIZE));
    // Our own outbox never has more than this in flight; without the limit
    // rumqttc preallocates a slot for all 65,535 packet ids (13 MB per
    // client, most of the daemon's memory).
    opts.set_outgoing_inflight_upper_limit(MAX_INFLIGHT as u16);
    if let Some(tls) = &broker.tls {
        opts.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(tls.client_config.clone()),
        ));
    }
    if let Some(user) = &broker.username {
        let pw = broker.password.as_ref().map(|p| p.expose()).unwrap_or("");
        opts.set_credentials(user.clone(), pw);
    }
    if let Some(w) = will {
        opts.set_last_will(LastWill::new(
            w.topic.clone(),
            w.payload.clone(),
            QoS::AtLeastOnce,
            w.retain,
            None,
        ));
    }
    opts
}

/// The client and event loop for `opts`, with TCP_NODELAY (cues are tiny
/// and a late one is useless: no Nagle batching) and a connect timeout.
pub fn client(
    mut opts: MqttOptions,
    request_capacity: usize,
    connect_timeout: Duration,
) -> (AsyncClient, EventLoop) {
    let mut net = opts.network_options();
    net.set_connection_timeout(connect_timeout.as_secs().max(1));
    net.set_tcp_nodelay(true);
    opts.set_network_options(net);
    AsyncClient::new(opts, request_capacity)
}

/// Whether the error is an incoming packet over [`MAX_PACKET_SIZE`] (a
/// broker that ignores `Maximum Packet Size`).
pub fn is_oversize(e: &ConnectionError) -> bool {
    matches!(
        e,
        ConnectionError::MqttState(
            StateError::Deserialization(
                rumqttc::v5::mqttbytes::Error::PayloadSizeLimitExceeded { .. }
            ) | StateError::IncomingPacketTooLarge { .. }
        )
    )
}

/// Whether the broker closed the connection because another client
/// connected with the same client id (MQTT 5 reason `Session taken over`).
pub fn is_takeover(e: &ConnectionError) -> bool {
    matches!(
        e,
        ConnectionError::MqttState(StateError::ServerDisconnect {
            reason_code: DisconnectReasonCode::SessionTakenOver,
            ..
        })
    )
}

/// Whether the broker closed an accepted connection without a word (EOF or
/// reset, no DISCONNECT). Mosquitto before 2.0.12 ends the older of two
/// connections with the same client id this way instead of sending
/// `Session taken over`.
pub fn is_closed_by_peer(e: &ConnectionError) -> bool {
    matches!(e, ConnectionError::MqttState(StateError::ConnectionAborted))
        || matches!(
            e,
            ConnectionError::MqttState(
                StateError::Io(io)
                | StateError::Deserialization(rumqttc::v5::mqttbytes::Error::Io(io))
            ) | ConnectionError::Io(io) if matches!(
                io.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
            )
        )
}

/// Whether `broker` accepts a TCP connection within [`LISTEN_CONNECT`] and
/// keeps it open for [`LISTEN_HOLD`]: after a silent close, a broker that
/// still listens closed us on purpose (a takeover, an admin's kick), one
/// that does not has crashed or is out of reach. The hold matters: a
/// process being killed may close its connections before its listening
/// socket, and the kernel completes a handshake in that moment, then resets
/// it. A live broker waits silently for a CONNECT. Nothing is sent.
pub async fn still_listening(broker: &BrokerConfig) -> bool {
    use tokio::io::AsyncReadExt;
    let connect = tokio::net::TcpStream::connect((broker.host.as_str(), broker.port));
    let Ok(Ok(mut s)) = tokio::time::timeout(LISTEN_CONNECT, connect).await else {
        return false;
    };
    let mut b = [0u8; 1];
    // Still open (no EOF, no reset) when the hold ends.
    tokio::time::timeout(LISTEN_HOLD, s.read(&mut b))
        .await
        .is_err()
}

/// How long [`still_listening`] waits for the handshake (a live broker on
/// the LAN accepts in milliseconds).
pub const LISTEN_CONNECT: Duration = Duration::from_millis(150);

/// How long [`still_listening`] holds the connection open.
pub const LISTEN_HOLD: Duration = Duration::from_millis(100);

/// A short, human reason for a connection error (seed 000: "Connection
/// refused").
pub fn describe(e: &ConnectionError) -> String {
    // After a TLS 1.3 handshake, the broker's refusal of a client
    // certificate arrives as an I/O error while reading MQTT.
    let io = match e {
        ConnectionError::Io(io)
        | ConnectionError::MqttState(
            StateError::Io(io) | StateError::Deserialization(rumqttc::v5::mqttbytes::Error::Io(io)),
        ) => Some(io),
        _ => None,
    };
    if let Some(tls) = io.and_then(|io| crate::tls::find_in(io)) {
        return tls;
    }
    match e {
        ConnectionError::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "Connection refused".into(),
            std::io::ErrorKind::ConnectionReset => "Connection reset by broker".into(),
            std::io::ErrorKind::UnexpectedEof => "Connection closed by broker".into(),
            _ => io.to_string(),
        },
        ConnectionError::ConnectionRefused(code) => refused(*code),
        ConnectionError::MqttState(StateError::ConnFail { reason }) => refused(*reason),
        ConnectionError::Timeout(_) => "Network timeout".into(),
        ConnectionError::Tls(t) => crate::tls::describe(t),
        e if is_takeover(e) => {
            "another client connected with the same client id (session taken over)".into()
        }
        e if is_oversize(e) => format!(
            "the broker sent a packet over the {} KiB limit despite Maximum Packet Size",
            MAX_PACKET_SIZE / 1024
        ),
        ConnectionError::MqttState(StateError::ServerDisconnect {
            reason_code,
            reason_string,
        }) => format!(
            "broker sent DISCONNECT ({reason_code:?}{})",
            reason_string
                .as_ref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ),
        ConnectionError::MqttState(state) => state.to_string(),
        other => other.to_string(),
    }
}

fn refused(code: ConnectReturnCode) -> String {
    let why = match code {
        ConnectReturnCode::BadUserNamePassword => "bad user name or password",
        // Mosquitto answers a wrong password with this one.
        ConnectReturnCode::NotAuthorized => {
            "not authorized (check the broker's username and password)"
        }
        ConnectReturnCode::ClientIdentifierNotValid => "client id not accepted",
        ConnectReturnCode::ServerUnavailable | ConnectReturnCode::ServerBusy => {
            "broker unavailable"
        }
        ConnectReturnCode::Banned => "client banned",
        ConnectReturnCode::UnsupportedProtocolVersion => "broker does not speak MQTT 5",
        _ => "",
    };
    if why.is_empty() {
        format!("Broker refused connection: {code:?}")
    } else {
        format!("Broker refused connection: {why}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_eof_is_a_silent_close_and_a_refusal_is_not() {
        let eof = ConnectionError::Io(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
        let refused =
            ConnectionError::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(is_closed_by_peer(&eof));
        assert!(is_closed_by_peer(&ConnectionError::MqttState(
            StateError::ConnectionAborted
        )));
        assert!(!is_closed_by_peer(&refused));
        // A reset while reading a packet (seen with rumqttd).
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(is_closed_by_peer(&ConnectionError::MqttState(
            StateError::Deserialization(rumqttc::v5::mqttbytes::Error::Io(reset))
        )));
        assert!(!is_takeover(&eof));
    }
}
