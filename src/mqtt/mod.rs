//! MQTT connection layer: one supervisor task per client that owns the broker
//! connection, fails over along the priority list (seed 000), backs off
//! between rounds (seed 002), keeps its own outbox so no cue is lost when a
//! broker dies (seed 003), and counts everything (seed 002 stats).
//!
//! The pieces: [`session`] is the pure delivery state machine (outbox, in
//! flight, ack deadlines), [`connect`] builds MQTT 5 connections, the
//! supervisor does the I/O and [`policy`] picks the broker, [`probe`] is a one-shot
//! CONNECT for `doctor` and failback, [`backoff`] the retry delays.
//!
//! Everything else talks to it through [`MqttHandle`]: `publish` never
//! blocks; it validates, queues, and the supervisor delivers, resends,
//! expires or drops with a log line and a counter.

pub mod backoff;
pub mod connect;
pub mod copies;
mod link;
pub mod policy;
pub mod probe;
pub mod session;
pub use link::{Link, start as start_link};
mod counters;
mod handoff;
mod supervisor;

use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, error, warn};

use crate::config::{BrokerConfig, MqttConfig};
pub use crate::events::{ConnectionState, ConnectionStatus};
use crate::ratelog::{LogLimit, RateLog};
use crate::topic::{self, TopicError};
pub use backoff::Backoff;
pub use counters::Counts;
use counters::{Counters, bump};
pub use policy::stable_after;
use session::{Limits, Session};
pub use session::{MessageId, PublishOptions, Qos};

/// A message received from the broker.
#[derive(Debug, Clone)]
pub struct InMessage {
    /// The topic it was published on.
    pub topic: String,
    /// As received.
    pub payload: Bytes,
    /// A retained message (old news, sent because we subscribed).
    pub retain: bool,
    /// Its MQTT 5 user properties (at most [`MAX_USER_PROPERTIES`], each
    /// at most 256 bytes; more are dropped).
    pub properties: Vec<(String, String)>,
    /// The broker it came from: its index in the configured list.
    pub broker: usize,
}

/// User properties kept of an incoming message.
pub const MAX_USER_PROPERTIES: usize = 8;

/// A message the supervisor publishes by itself (last will, birth).
#[derive(Debug, Clone)]
pub struct OwnMessage {
    /// Where.
    pub topic: String,
    /// What.
    pub payload: Bytes,
    /// Retained or not.
    pub retain: bool,
}

impl OwnMessage {
    /// A retained message.
    pub fn retained(topic: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        OwnMessage {
            topic: topic.into(),
            payload: payload.into(),
            retain: true,
        }
    }
}

/// Everything one client needs.
#[derive(Debug, Clone)]
pub struct MqttSettings {
    /// The MQTT client id (unique per broker).
    pub client_id: String,
    /// Failover list, in priority order.
    pub brokers: Vec<BrokerConfig>,
    /// PINGREQ interval (also the liveness probe).
    pub keep_alive: Duration,
    /// A PUBACK or PINGRESP later than this marks the broker dead (seed 003: 500 ms).
    pub ack_timeout: Duration,
    /// How long one connection attempt may take.
    pub connection_timeout: Duration,
    /// How often a connection to a backup probes the higher-priority brokers.
    pub health_check_interval: Duration,
    /// Switch back to a higher-priority broker once a health check finds it up.
    pub failback: bool,
    /// Delays between failed rounds.
    pub backoff: Backoff,
    /// `message_queue_size`.
    pub queue_size: usize,
    /// `message_retry_limit`.
    pub retry_limit: u32,
    /// Last will, set on every connection.
    pub will: Option<OwnMessage>,
    /// Published first after every (re)connection.
    pub birth: Option<OwnMessage>,
    /// Published on a broker right before leaving it for another one
    /// (failback): e.g. empty retained messages that clear what this
    /// client said there, so nobody on that broker reads a stale truth.
    pub farewell: Vec<OwnMessage>,
    /// Filters subscribed on every connection.
    pub subscriptions: Vec<String>,
    /// Capacity of the incoming-message channel.
    pub incoming_capacity: usize,
    /// Log this client's own publishes at debug, not info (the simulated
    /// devices: their chatter would bury the daemon's lines).
    pub quiet_publishes: bool,
    /// The index of `brokers[0]` in the room's list, for
    /// [`InMessage::broker`] (`every_broker` gives each client one broker).
    pub label: usize,
}

impl MqttSettings {
    /// The settings the config asks for (no will, birth or subscriptions yet).
    pub fn from_config(c: &MqttConfig) -> Self {
        MqttSettings {
            client_id: c.client_id.clone(),
            brokers: c.brokers.clone(),
            keep_alive: c.keep_alive,
            ack_timeout: c.ack_timeout,
            connection_timeout: c.connection_timeout,
            health_check_interval: c.health_check_interval,
            failback: true,
            backoff: Backoff::from_config(c),
            queue_size: c.message_queue_size,
            retry_limit: c.message_retry_limit,
            will: None,
            birth: None,
            farewell: Vec::new(),
            subscriptions: Vec::new(),
            incoming_capacity: 1024,
            quiet_publishes: false,
            label: 0,
        }
    }
}

/// One broker's figures, with `mqtt.connect: every_broker`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BrokerStats {
    /// `host:port`.
    pub broker: String,
    /// Its connection.
    pub connection_state: ConnectionState,
    /// Ordinary messages go to it now.
    pub active: bool,
    /// Its counters.
    #[serde(flatten)]
    pub counts: Counts,
    /// Messages waiting in its outbox.
    pub queue_size: usize,
    /// Messages sent to it and not yet acknowledged.
    pub inflight: usize,
}

/// Seed 002 / seed 001 statistics, plus what the outbox and failover add.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Stats {
    /// Seed 002 `connection_state`.
    pub connection_state: ConnectionState,
    /// `host:port` while connected.
    pub current_broker: Option<String>,
    /// The counters (seed 002 names), flattened into this document.
    #[serde(flatten)]
    pub counts: Counts,
    /// 1 while connected (seed 001).
    pub active_connections: u64,
    /// Failed rounds since the last connection (seed 002).
    pub consecutive_failures: u32,
    /// Messages waiting in the outbox.
    pub queue_size: usize,
    /// Messages sent and not yet acknowledged.
    pub inflight: usize,
    /// Filters the broker has accepted on this connection.
    pub subscriptions_active: usize,
    /// Filters wanted.
    pub subscriptions_wanted: usize,
    /// Filters the broker refused on this connection.
    pub subscriptions_refused: Vec<String>,
    /// Unix time of the last connection attempt (seed 002).
    pub last_connection_attempt: Option<f64>,
    /// `mqtt.connect`.
    pub connect: &'static str,
    /// Each broker's own figures (`every_broker`; empty otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub brokers: Vec<BrokerStats>,
}

/// Subscriptions on the current connection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SubscriptionState {
    /// Filters the broker accepted (SUBACK).
    pub active: usize,
    /// Filters it refused.
    pub refused: Vec<String>,
}

/// State shared between the handle and the supervisor task.
struct Shared {
    /// Our outbox and what is in flight (see [`session`]).
    session: Mutex<Session>,
    /// Wakes the supervisor: new message or subscription.
    wake: Notify,
    /// Every filter to subscribe, in order (append-only).
    wanted: Mutex<Vec<String>>,
    subscriptions: watch::Sender<SubscriptionState>,
    status: watch::Sender<ConnectionStatus>,
    counters: Counters,
    /// Network-caused warnings, rate-limited.
    log: Mutex<RateLog>,
    ack_timeout: Duration,
    /// Every line of this client carries its client id (`mqtt{client=..}`):
    /// with several clients in one process (the demo's daemon and
    /// simulated devices) the lines stay apart.
    span: tracing::Span,
    /// See [`MqttSettings::quiet_publishes`].
    quiet_publishes: bool,
}

enum Control {
    /// Deliver what is queued (up to the timeout), then disconnect.
    Close {
        flush: Duration,
        done: oneshot::Sender<usize>,
    },
}

/// Why a message was not queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The topic cannot be published on.
    #[error("cannot publish to `{topic}`: {error}")]
    Topic {
        /// As given (shortened).
        topic: String,
        /// What is wrong with it.
        error: TopicError,
    },
    /// Bigger than the MQTT packet limit roomctl uses.
    #[error("message to `{topic}` is {size} bytes; the limit is {max} bytes")]
    TooLarge {
        /// Where it was going.
        topic: String,
        /// Its size.
        size: usize,
        /// [`connect::MAX_PACKET_SIZE`].
        max: usize,
    },
}

/// The way to talk to one MQTT client. Cheap to clone.
#[derive(Clone)]
pub struct MqttHandle {
    shared: Arc<Shared>,
    control: mpsc::UnboundedSender<Control>,
}

/// Starts the supervisor for one client on `tasks`. It runs until
/// [`MqttHandle::close`] is called, `cancel` fires, or every handle is
/// dropped.
pub fn start(
    settings: MqttSettings,
    cancel: CancellationToken,
    tasks: &TaskTracker,
) -> (MqttHandle, mpsc::Receiver<InMessage>) {
    let (in_tx, in_rx) = mpsc::channel(settings.incoming_capacity.max(1));
    (start_into(settings, in_tx, cancel, tasks), in_rx)
}

/// [`start`], delivering what arrives into `in_tx` (shared by the clients
/// of a [`Link`]).
fn start_into(
    settings: MqttSettings,
    in_tx: mpsc::Sender<InMessage>,
    cancel: CancellationToken,
    tasks: &TaskTracker,
) -> MqttHandle {
    let (status, _) = watch::channel(ConnectionStatus {
        state: ConnectionState::Disconnected,
        broker: None,
        broker_priority_index: None,
        broker_count: settings.brokers.len(),
        since: unix_now(),
        last_error: None,
    });
    let (subscriptions, _) = watch::channel(SubscriptionState::default());
    let shared = Arc::new(Shared {
        session: Mutex::new(Session::new(Limits {
            capacity: settings.queue_size,
            retry_limit: settings.retry_limit,
            ack_timeout: settings.ack_timeout,
            answer_limit: answer_limit(&settings),
        })),
        wake: Notify::new(),
        wanted: Mutex::new(Vec::new()),
        subscriptions,
        status,
        counters: Counters::default(),
        log: Mutex::new(RateLog::new(LogLimit::default())),
        ack_timeout: settings.ack_timeout,
        span: tracing::info_span!(target: "mqtt", "mqtt", client = %settings.client_id),
        quiet_publishes: settings.quiet_publishes,
    });
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    let handle = MqttHandle {
        shared: shared.clone(),
        control: control_tx,
    };
    for f in &settings.subscriptions {
        // An invalid one is logged and left out; the rest still work.
        let _ = handle.subscribe(f.clone());
    }
    let span = shared.span.clone();
    tasks.spawn(
        supervisor::run(shared, settings, in_tx, control_rx, cancel, tasks.clone())
            .instrument(span),
    );
    handle
}

impl MqttHandle {
    /// Queues a message for delivery. Never blocks; see [`PublishOptions`].
    /// A topic that cannot be published on, or a message over the packet
    /// limit, is refused here (logged and counted as failed).
    pub fn publish(
        &self,
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
        opts: PublishOptions,
    ) -> Result<MessageId, PublishError> {
        self.publish_with(topic, payload, opts, None)
    }

    /// [`MqttHandle::publish`] with MQTT 5 user `properties` (a signed
    /// control message: see `crate::signing`).
    pub fn publish_with(
        &self,
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
        opts: PublishOptions,
        properties: Option<session::UserProperties>,
    ) -> Result<MessageId, PublishError> {
        self.enqueue(topic.into(), payload.into(), opts, properties, false)
    }

    fn enqueue(
        &self,
        topic: String,
        payload: Bytes,
        opts: PublishOptions,
        properties: Option<session::UserProperties>,
        stays: bool,
    ) -> Result<MessageId, PublishError> {
        let _in = self.shared.span.enter();
        let c = &self.shared.counters;
        let checked = match topic::validate_name(&topic) {
            Err(error) => Err(PublishError::Topic {
                topic: topic.chars().take(80).collect(),
                error,
            }),
            Ok(()) if topic.len() + payload.len() + 16 > connect::MAX_PACKET_SIZE as usize => {
                Err(PublishError::TooLarge {
                    topic: topic.clone(),
                    size: payload.len(),
                    max: connect::MAX_PACKET_SIZE as usize,
                })
            }
            Ok(()) => Ok(()),
        };
        if let Err(e) = checked {
            error!(target: "mqtt", "{e}");
            bump(&c.messages_failed, 1);
            if matches!(e, PublishError::TooLarge { .. }) {
                bump(&c.oversize_packets, 1);
            }
            return Err(e);
        }
        let connected = self.shared.status.borrow().state == ConnectionState::Connected;
        let text = String::from_utf8_lossy(&payload);
        // Per message at debug: a dense show would write megabytes an
        // hour to the SD card at info. While disconnected, a few lines and
        // then a count per minute.
        if connected || opts.retain || self.shared.quiet_publishes {
            tracing::debug!(target: "mqtt", "Publishing to {topic}: {text}");
        } else {
            crate::ratelog!(
                self.shared.log,
                warn,
                "mqtt",
                "queued while disconnected",
                "Queued (not connected) {topic}: {text}"
            );
        }
        if !connected {
            bump(&c.messages_queued, 1);
        }
        let now = tokio::time::Instant::now();
        let (id, dropped) = if stays {
            self.shared
                .session
                .lock()
                .push_to_stay(topic, payload, opts, now)
        } else {
            self.shared
                .session
                .lock()
                .push_with(topic, payload, opts, properties, now)
        };
        for d in &dropped {
            warn!(target: "mqtt", "Queue full (message_queue_size): dropped oldest message for {}", d.topic);
        }
        bump(&c.messages_dropped, dropped.len());
        self.shared.wake.notify_one();
        Ok(id)
    }

    /// Adds a subscription (kept across reconnections and failovers). An
    /// invalid filter is refused with an error and never reaches the
    /// broker, so it cannot take the other subscriptions down with it.
    pub fn subscribe(&self, filter: impl Into<String>) -> Result<(), TopicError> {
        let _in = self.shared.span.enter();
        let filter = filter.into();
        if let Err(e) = topic::validate_filter(&filter) {
            error!(target: "mqtt", "Not subscribing to `{}`: {e}", filter.chars().take(80).collect::<String>());
            return Err(e);
        }
        let mut subs = self.shared.wanted.lock();
        if !subs.contains(&filter) {
            subs.push(filter);
            drop(subs);
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// The connection now.
    pub fn status(&self) -> ConnectionStatus {
        self.shared.status.borrow().clone()
    }

    /// Follows connection changes.
    pub fn watch(&self) -> watch::Receiver<ConnectionStatus> {
        self.shared.status.subscribe()
    }

    /// Waits until connected; false on timeout.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut rx = self.watch();
        tokio::time::timeout(
            timeout,
            rx.wait_for(|s| s.state == ConnectionState::Connected),
        )
        .await
        .is_ok_and(|r| r.is_ok())
    }

    /// Waits until connected with every wanted filter acknowledged by the
    /// broker (SUBACK); false on timeout.
    #[cfg(any(test, feature = "testkit"))]
    pub async fn wait_subscribed(&self, timeout: Duration) -> bool {
        let wanted = self.shared.wanted.lock().len();
        let mut rx = self.shared.subscriptions.subscribe();
        tokio::time::timeout(
            timeout,
            rx.wait_for(|s| s.active + s.refused.len() >= wanted),
        )
        .await
        .is_ok_and(|r| r.is_ok())
    }

    /// How long delivery has been stuck (messages waiting, none
    /// acknowledged), when longer than `ack_timeout`.
    pub fn stuck_for(&self) -> Option<Duration> {
        self.shared
            .session
            .lock()
            .stuck_for(tokio::time::Instant::now())
            .filter(|d| *d > self.shared.ack_timeout)
    }

    /// Counters and gauges.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        let st = self.status();
        let subs = self.shared.subscriptions.borrow().clone();
        let wanted = self.shared.wanted.lock().len();
        let session = self.shared.session.lock();
        Stats {
            connection_state: st.state,
            current_broker: st.broker.filter(|_| st.state == ConnectionState::Connected),
            counts: c.counts(),
            active_connections: u64::from(st.state == ConnectionState::Connected),
            consecutive_failures: c.consecutive_failures.get(),
            queue_size: session.queued(),
            inflight: session.in_flight(),
            subscriptions_active: subs.active,
            subscriptions_wanted: wanted,
            subscriptions_refused: subs.refused,
            last_connection_attempt: c.last_connection_attempt.get(),
            connect: crate::config::Connect::OneAtATime.as_str(),
            brokers: Vec::new(),
        }
    }

    /// Delivers what is queued (waiting at most `flush`, whatever the
    /// brokers do), disconnects cleanly and stops the supervisor. Returns
    /// how many messages were left undelivered.
    pub async fn close(&self, flush: Duration) -> usize {
        let (tx, rx) = oneshot::channel();
        let left = || {
            let s = self.shared.session.lock();
            s.queued() + s.in_flight()
        };
        if self
            .control
            .send(Control::Close { flush, done: tx })
            .is_err()
        {
            return left();
        }
        // The supervisor answers by the deadline; the margin only guards
        // against a supervisor that is gone.
        match tokio::time::timeout(flush + Duration::from_secs(1), rx).await {
            Ok(Ok(n)) => n,
            _ => left(),
        }
    }
}

/// How long an answer may take while the broker keeps sending other
/// traffic: two keep-alive periods, at least ten `ack_timeout`s.
fn answer_limit(s: &MqttSettings) -> Duration {
    (s.keep_alive * 2).max(s.ack_timeout * 10)
}

pub(crate) use crate::clock::unix_now;
