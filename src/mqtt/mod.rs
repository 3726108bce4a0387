//! MQTT connection layer: one supervisor task per client that owns the broker
//! connection, fails over along the priority list (seed 000), backs off
//! between rounds (seed 002), keeps its own outbox so no cue is lost when a
//! broker dies (seed 003), and counts everything (seed 002 stats).
//!
//! Everything else talks to it through [`MqttHandle`]: `publish` never blocks
//! and never fails; it queues, and the supervisor delivers, resends, expires
//! or drops with a log line and a counter.

pub mod backoff;
pub mod probe;
pub mod session;
mod supervisor;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::config::{BrokerConfig, MqttConfig};
pub use crate::events::{ConnectionState, ConnectionStatus};
pub use backoff::Backoff;
use session::{Limits, Session};
pub use session::{MessageId, PublishOptions, Qos};

/// A message received from the broker.
#[derive(Debug, Clone)]
pub struct InMessage {
    pub topic: String,
    pub payload: Bytes,
    pub retain: bool,
}

/// A message the supervisor publishes by itself (last will, birth).
#[derive(Debug, Clone)]
pub struct OwnMessage {
    pub topic: String,
    pub payload: Bytes,
    pub retain: bool,
}

impl OwnMessage {
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
    pub client_id: String,
    pub brokers: Vec<BrokerConfig>,
    pub keep_alive: Duration,
    /// A PUBACK later than this marks the broker dead (seed 003: 500 ms).
    pub ack_timeout: Duration,
    pub connection_timeout: Duration,
    pub health_check_interval: Duration,
    /// Switch back to a higher-priority broker once a health check finds it up.
    pub failback: bool,
    pub backoff: Backoff,
    pub queue_size: usize,
    pub retry_limit: u32,
    /// Last will, set on every connection.
    pub will: Option<OwnMessage>,
    /// Published first after every (re)connection.
    pub birth: Option<OwnMessage>,
    pub subscriptions: Vec<String>,
    /// Capacity of the incoming-message channel.
    pub incoming_capacity: usize,
}

impl MqttSettings {
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
            subscriptions: Vec::new(),
            incoming_capacity: 1024,
        }
    }
}

/// Seed 002 / seed 001 statistics, plus what the outbox and failover add.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Stats {
    pub connection_state: ConnectionState,
    pub current_broker: Option<String>,
    pub total_connections: u64,
    pub total_disconnections: u64,
    pub total_reconnections: u64,
    pub active_connections: u64,
    pub failed_connections: u64,
    pub failovers: u64,
    pub messages_published: u64,
    pub messages_queued: u64,
    pub messages_failed: u64,
    pub messages_expired: u64,
    pub messages_dropped: u64,
    pub messages_resent: u64,
    pub messages_received: u64,
    pub incoming_dropped: u64,
    pub ack_timeouts: u64,
    pub consecutive_failures: u32,
    pub queue_size: usize,
    pub inflight: usize,
    pub last_connection_attempt: Option<f64>,
}

#[derive(Default)]
struct Counters {
    total_connections: AtomicU64,
    total_disconnections: AtomicU64,
    total_reconnections: AtomicU64,
    failed_connections: AtomicU64,
    failovers: AtomicU64,
    messages_published: AtomicU64,
    messages_queued: AtomicU64,
    messages_failed: AtomicU64,
    messages_expired: AtomicU64,
    messages_dropped: AtomicU64,
    messages_resent: AtomicU64,
    messages_received: AtomicU64,
    incoming_dropped: AtomicU64,
    ack_timeouts: AtomicU64,
    consecutive_failures: AtomicU32,
    /// f64 bits of a unix time; 0 = never.
    last_connection_attempt: AtomicU64,
}

fn bump(c: &AtomicU64, n: usize) {
    c.fetch_add(n as u64, Ordering::Relaxed);
}

/// State shared between the handle and the supervisor task.
struct Shared {
    /// Our outbox and what is in flight (see [`session`]).
    session: Mutex<Session>,
    /// Wakes the supervisor: new message or subscription.
    wake: Notify,
    subscriptions: Mutex<Vec<String>>,
    status: watch::Sender<ConnectionStatus>,
    counters: Counters,
}

enum Control {
    /// Deliver what is queued (up to the timeout), then disconnect.
    Close {
        flush: Duration,
        done: oneshot::Sender<usize>,
    },
}

/// The way to talk to one MQTT client. Cheap to clone.
#[derive(Clone)]
pub struct MqttHandle {
    shared: Arc<Shared>,
    control: mpsc::UnboundedSender<Control>,
}

/// Starts the supervisor for one client. It runs until [`MqttHandle::close`]
/// is called, `cancel` fires, or every handle is dropped.
pub fn start(
    settings: MqttSettings,
    cancel: CancellationToken,
) -> (MqttHandle, mpsc::Receiver<InMessage>) {
    let (status, _) = watch::channel(ConnectionStatus {
        state: ConnectionState::Disconnected,
        broker: None,
        broker_priority_index: None,
        broker_count: settings.brokers.len(),
        since: unix_now(),
        last_error: None,
    });
    let shared = Arc::new(Shared {
        session: Mutex::new(Session::new(Limits {
            capacity: settings.queue_size,
            retry_limit: settings.retry_limit,
            ack_timeout: settings.ack_timeout,
        })),
        wake: Notify::new(),
        subscriptions: Mutex::new(crate::config::unique(settings.subscriptions.clone())),
        status,
        counters: Counters::default(),
    });
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    let (in_tx, in_rx) = mpsc::channel(settings.incoming_capacity.max(1));
    tokio::spawn(supervisor::run(
        shared.clone(),
        settings,
        in_tx,
        control_rx,
        cancel,
    ));
    (
        MqttHandle {
            shared,
            control: control_tx,
        },
        in_rx,
    )
}

impl MqttHandle {
    /// Queues a message for delivery. Never blocks; see [`PublishOptions`].
    pub fn publish(
        &self,
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
        opts: PublishOptions,
    ) -> MessageId {
        let topic = topic.into();
        let payload = payload.into();
        let connected = self.shared.status.borrow().state == ConnectionState::Connected;
        if opts.retain {
            tracing::debug!(target: "mqtt", "Publishing to {topic}: {}", String::from_utf8_lossy(&payload));
        } else if connected {
            tracing::info!(target: "mqtt", "Publishing to {topic}: {}", String::from_utf8_lossy(&payload));
        } else {
            tracing::warn!(target: "mqtt", "Queued (not connected) {topic}: {}", String::from_utf8_lossy(&payload));
        }
        let c = &self.shared.counters;
        if !connected {
            bump(&c.messages_queued, 1);
        }
        let (id, dropped) = self.shared.session.lock().unwrap().push(
            topic,
            payload,
            opts,
            tokio::time::Instant::now(),
        );
        for d in &dropped {
            tracing::warn!(target: "mqtt", "Queue full (message_queue_size): dropped oldest message for {}", d.topic);
        }
        bump(&c.messages_dropped, dropped.len());
        self.shared.wake.notify_one();
        id
    }

    /// Adds a subscription (kept across reconnections and failovers).
    pub fn subscribe(&self, filter: impl Into<String>) {
        let filter = filter.into();
        let mut subs = self.shared.subscriptions.lock().unwrap();
        if !subs.contains(&filter) {
            subs.push(filter);
            drop(subs);
            self.shared.wake.notify_one();
        }
    }

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

    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        let st = self.status();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let last = get(&c.last_connection_attempt);
        let session = self.shared.session.lock().unwrap();
        Stats {
            connection_state: st.state,
            current_broker: st.broker.filter(|_| st.state == ConnectionState::Connected),
            total_connections: get(&c.total_connections),
            total_disconnections: get(&c.total_disconnections),
            total_reconnections: get(&c.total_reconnections),
            active_connections: u64::from(st.state == ConnectionState::Connected),
            failed_connections: get(&c.failed_connections),
            failovers: get(&c.failovers),
            messages_published: get(&c.messages_published),
            messages_queued: get(&c.messages_queued),
            messages_failed: get(&c.messages_failed),
            messages_expired: get(&c.messages_expired),
            messages_dropped: get(&c.messages_dropped),
            messages_resent: get(&c.messages_resent),
            messages_received: get(&c.messages_received),
            incoming_dropped: get(&c.incoming_dropped),
            ack_timeouts: get(&c.ack_timeouts),
            consecutive_failures: c.consecutive_failures.load(Ordering::Relaxed),
            queue_size: session.queued(),
            inflight: session.in_flight(),
            last_connection_attempt: (last != 0).then(|| f64::from_bits(last)),
        }
    }

    /// Delivers what is queued (waiting at most `flush`), disconnects cleanly
    /// and stops the supervisor. Returns how many messages were left undelivered.
    pub async fn close(&self, flush: Duration) -> usize {
        let (tx, rx) = oneshot::channel();
        if self
            .control
            .send(Control::Close { flush, done: tx })
            .is_err()
        {
            let s = self.shared.session.lock().unwrap();
            return s.queued() + s.in_flight();
        }
        rx.await.unwrap_or(0)
    }
}

pub(crate) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
