//! The room's MQTT link: what the room publishes through and hears from.
//!
//! - `mqtt.connect: one_at_a_time` (the default): one client that fails
//!   over along the priority list (seeds 000 and 002).
//! - `every_broker`: one client per broker, every one kept connected at
//!   once and subscribed to the same filters (the primary/backup seed's
//!   subscriber). Every message heard carries its broker
//!   ([`InMessage::broker`]). Ordinary messages go to the *active* broker
//!   (see [`active`]); a board's commands go to the broker it is heard on
//!   ([`Link::pick`]); the room's retained state and STOP go to every
//!   broker. When a connection is lost, what it had not delivered is handed
//!   to the active broker's connection, which is already up: no connect in
//!   the critical path. Whoever tracks confirmations is told first
//!   ([`Link::on_move`]).

mod active;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::{
    BrokerStats, ConnectionState, ConnectionStatus, InMessage, MessageId, MqttHandle, MqttSettings,
    PublishError, PublishOptions, Stats, session::UserProperties, start_into, unix_now,
};
use crate::config::Connect;
use crate::topic::TopicError;
use active::{Up, choose};

/// Told before messages of broker `from` are handed to broker `to`.
type MoveHook = Box<dyn Fn(usize, usize) + Send + Sync>;

struct Inner {
    /// One client (`one_at_a_time`) or one per broker, in priority order.
    clients: Vec<MqttHandle>,
    connect: Connect,
    /// `host:port` of each broker, in priority order.
    addrs: Vec<String>,
    /// `every_broker`: the broker ordinary messages go to.
    active: Mutex<Option<usize>>,
    /// `every_broker`: the room's connection, summed up.
    status: watch::Sender<ConnectionStatus>,
    /// `every_broker`: switches of the active broker.
    failovers: AtomicU64,
    on_move: OnceLock<MoveHook>,
    /// Wakes the coordinator (a connection changed, or a message went to a
    /// broker that is not connected).
    kick: Notify,
}

/// The way to talk to the room's brokers. Cheap to clone.
#[derive(Clone)]
pub struct Link {
    inner: Arc<Inner>,
}

/// Starts the link's clients on `tasks`; what they hear arrives on the
/// receiver, labelled with its broker.
pub fn start(
    settings: MqttSettings,
    connect: Connect,
    cancel: CancellationToken,
    tasks: &TaskTracker,
) -> (Link, mpsc::Receiver<InMessage>) {
    let (in_tx, in_rx) = mpsc::channel(settings.incoming_capacity.max(1));
    let addrs: Vec<String> = settings.brokers.iter().map(|b| b.addr()).collect();
    let n = addrs.len();
    let every = connect == Connect::EveryBroker && n > 1;
    let stable = settings.health_check_interval;
    let clients = if every {
        settings
            .brokers
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let s = MqttSettings {
                    brokers: vec![b.clone()],
                    label: i,
                    failback: false,
                    // Never left for another broker: nothing to clear.
                    farewell: Vec::new(),
                    ..settings.clone()
                };
                start_into(s, in_tx.clone(), cancel.child_token(), tasks)
            })
            .collect()
    } else {
        vec![start_into(settings, in_tx, cancel.clone(), tasks)]
    };
    let (status, _) = watch::channel(ConnectionStatus {
        broker_count: n,
        ..clients[0].status()
    });
    let link = Link {
        inner: Arc::new(Inner {
            clients,
            connect: if every {
                Connect::EveryBroker
            } else {
                Connect::OneAtATime
            },
            addrs,
            active: Mutex::new(None),
            status,
            failovers: AtomicU64::new(0),
            on_move: OnceLock::new(),
            kick: Notify::new(),
        }),
    };
    if every {
        for c in &link.inner.clients {
            let (mut w, inner, cancel) = (c.watch(), link.inner.clone(), cancel.clone());
            tasks.spawn(async move {
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        r = w.changed() => if r.is_err() { return },
                    }
                    inner.kick.notify_one();
                }
            });
        }
        tasks.spawn(coordinate(link.inner.clone(), stable, cancel));
    }
    (link, in_rx)
}

impl Link {
    /// `mqtt.connect` in effect (`one_at_a_time` with a single broker).
    pub fn connect(&self) -> Connect {
        self.inner.connect
    }

    /// `host:port` of broker `i` (its index in the configured list).
    pub fn broker_addr(&self, i: usize) -> Option<&str> {
        self.inner.addrs.get(i).map(String::as_str)
    }

    /// Where a message for a board heard on broker `hint` goes: there when
    /// that connection is up, else to the active broker. Always 0 with
    /// `one_at_a_time` (its one client).
    pub fn pick(&self, hint: Option<usize>) -> usize {
        if self.inner.connect == Connect::OneAtATime {
            return 0;
        }
        let up = |i: usize| {
            self.inner
                .clients
                .get(i)
                .is_some_and(MqttHandle::is_connected)
        };
        match hint {
            Some(h) if up(h) => h,
            _ => (*self.inner.active.lock()).or(hint).unwrap_or(0),
        }
    }

    /// The broker a reply to a message sent with [`Link::pick`]`= to` is
    /// expected on; `None` (any) with `one_at_a_time`.
    pub fn label(&self, to: usize) -> Option<usize> {
        (self.inner.connect == Connect::EveryBroker).then_some(to)
    }

    /// Queues a message for the active broker. Never blocks (see
    /// [`MqttHandle::publish`]).
    pub fn publish(
        &self,
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
        opts: PublishOptions,
    ) -> Result<MessageId, PublishError> {
        self.publish_with(topic, payload, opts, None)
    }

    /// [`Link::publish`] with MQTT 5 user `properties`.
    pub fn publish_with(
        &self,
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
        opts: PublishOptions,
        properties: Option<UserProperties>,
    ) -> Result<MessageId, PublishError> {
        let to = self.pick(None);
        let r = self.inner.clients[to].publish_with(topic, payload, opts, properties);
        self.after_publish(to);
        r
    }

    /// Queues a message for broker `to` (from [`Link::pick`]).
    pub fn publish_on(
        &self,
        to: usize,
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
        opts: PublishOptions,
    ) -> Result<MessageId, PublishError> {
        let to = to.min(self.inner.clients.len() - 1);
        let r = self.inner.clients[to].publish(topic, payload, opts);
        self.after_publish(to);
        r
    }

    /// Queues one copy for every connected broker (the retained state,
    /// STOP); each copy stays with its broker. A broker that is down gets
    /// none: a STOP delivered when it comes back, minutes later, would stop
    /// whatever runs then. With no broker connected, one copy waits for
    /// whichever connects first.
    pub fn publish_everywhere(
        &self,
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
        opts: PublishOptions,
    ) -> Result<MessageId, PublishError> {
        if self.inner.connect == Connect::OneAtATime {
            return self.inner.clients[0].publish(topic, payload, opts);
        }
        let (topic, payload) = (topic.into(), payload.into());
        let mut first = None;
        for c in self.inner.clients.iter().filter(|c| c.is_connected()) {
            let r = c.publish_to_stay(topic.clone(), payload.clone(), opts);
            first.get_or_insert(r);
        }
        match first {
            Some(r) => r,
            None => self.publish(topic, payload, opts),
        }
    }

    /// A message went to a broker that is down: the coordinator hands it to
    /// the active one.
    fn after_publish(&self, to: usize) {
        if self.inner.connect == Connect::EveryBroker && !self.inner.clients[to].is_connected() {
            self.inner.kick.notify_one();
        }
    }

    /// Adds a subscription on every client.
    pub fn subscribe(&self, filter: impl Into<String>) -> Result<(), TopicError> {
        let filter = filter.into();
        let mut r = Ok(());
        for c in &self.inner.clients {
            r = c.subscribe(filter.clone());
        }
        r
    }

    /// Called (once, the first hook wins) before broker `from`'s undelivered
    /// messages are handed to broker `to`.
    pub fn on_move(&self, hook: impl Fn(usize, usize) + Send + Sync + 'static) {
        let _ = self.inner.on_move.set(Box::new(hook));
    }

    /// The room's connection now: with `every_broker`, connected while any
    /// broker is, naming the active one.
    pub fn status(&self) -> ConnectionStatus {
        self.watch().borrow().clone()
    }

    /// Follows [`Link::status`].
    pub fn watch(&self) -> watch::Receiver<ConnectionStatus> {
        match self.inner.connect {
            Connect::OneAtATime => self.inner.clients[0].watch(),
            Connect::EveryBroker => self.inner.status.subscribe(),
        }
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

    /// Waits until every client is connected with its filters
    /// acknowledged; false on timeout.
    #[cfg(any(test, feature = "testkit"))]
    pub async fn wait_subscribed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        for c in &self.inner.clients {
            let left = deadline.saturating_duration_since(Instant::now());
            if !c.wait_subscribed(left).await {
                return false;
            }
        }
        // And the coordinator has named its active broker.
        self.wait_connected(deadline.saturating_duration_since(Instant::now()))
            .await
    }

    /// How long delivery has been stuck on the active broker (or, with
    /// none, anywhere), when longer than `ack_timeout`.
    pub fn stuck_for(&self) -> Option<Duration> {
        match *self.inner.active.lock() {
            Some(a) if self.inner.connect == Connect::EveryBroker => {
                self.inner.clients[a].stuck_for()
            }
            _ => self
                .inner
                .clients
                .iter()
                .filter_map(MqttHandle::stuck_for)
                .max(),
        }
    }

    /// Counters and gauges: with `every_broker`, summed, with each broker's
    /// own in [`Stats::brokers`].
    pub fn stats(&self) -> Stats {
        let inner = &self.inner;
        if inner.connect == Connect::OneAtATime {
            return inner.clients[0].stats();
        }
        let active = *inner.active.lock();
        let each: Vec<Stats> = inner.clients.iter().map(MqttHandle::stats).collect();
        let mut total = each[active.unwrap_or(0)].clone();
        total.connection_state = self.status().state;
        total.current_broker = active.map(|a| inner.addrs[a].clone());
        total.counts = Default::default();
        for s in &each {
            total.counts.add(&s.counts);
        }
        total.counts.failovers = inner.failovers.load(Ordering::Relaxed);
        total.active_connections = each.iter().map(|s| s.active_connections).sum();
        total.consecutive_failures = if total.active_connections > 0 {
            0
        } else {
            each.iter()
                .map(|s| s.consecutive_failures)
                .min()
                .unwrap_or(0)
        };
        total.queue_size = each.iter().map(|s| s.queue_size).sum();
        total.inflight = each.iter().map(|s| s.inflight).sum();
        total.last_connection_attempt = each
            .iter()
            .filter_map(|s| s.last_connection_attempt)
            .reduce(f64::max);
        total.connect = Connect::EveryBroker.as_str();
        total.brokers = each
            .into_iter()
            .enumerate()
            .map(|(i, s)| BrokerStats {
                broker: inner.addrs[i].clone(),
                connection_state: s.connection_state,
                active: active == Some(i),
                counts: s.counts,
                queue_size: s.queue_size,
                inflight: s.inflight,
            })
            .collect();
        total
    }

    /// Delivers what is queued (waiting at most `flush`), disconnects every
    /// client cleanly. Returns how many messages were left undelivered.
    pub async fn close(&self, flush: Duration) -> usize {
        let closing = self.inner.clients.iter().map(|c| c.close(flush));
        futures::future::join_all(closing).await.into_iter().sum()
    }
}

/// The `every_broker` coordinator: follows the connections, keeps the
/// active broker (see [`active`]) and hands what a lost connection left to
/// it. Runs until `cancel`.
async fn coordinate(inner: Arc<Inner>, stable: Duration, cancel: CancellationToken) {
    let n = inner.clients.len();
    let mut up = vec![Up::default(); n];
    loop {
        let now = Instant::now();
        for (i, c) in inner.clients.iter().enumerate() {
            match (c.is_connected(), up[i].since.is_some()) {
                (true, false) => up[i].since = Some(now),
                (false, true) => {
                    up[i].since = None;
                    up[i].lost_before = true;
                }
                _ => {}
            }
        }
        let current = *inner.active.lock();
        let choice = choose(current, &up, stable, now);
        if choice.active != current {
            // The primary's first connection taking over from a backup that
            // connected a moment sooner (start-up) is no failover.
            let settling = choice.active.is_some_and(|t| !up[t].lost_before)
                && current.is_some_and(|c| up[c].since.is_some());
            switched(&inner, current, choice.active, !settling);
            *inner.active.lock() = choice.active;
        }
        if let Some(to) = choice.active {
            for from in (0..n).filter(|&i| i != to) {
                hand_over(&inner, from, to);
            }
        }
        publish_status(&inner, choice.active);
        let recheck = choice.recheck;
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = inner.kick.notified() => {}
            _ = tokio::time::sleep_until(recheck.unwrap_or(now)), if recheck.is_some() => {}
        }
    }
}

fn switched(inner: &Inner, from: Option<usize>, to: Option<usize>, count: bool) {
    let name = |i: usize| format!("{}/{} ({})", i + 1, inner.addrs.len(), inner.addrs[i]);
    match (from, to) {
        (None, Some(t)) => info!(target: "mqtt", "[FAILOVER] Active broker: {}", name(t)),
        (Some(f), Some(t)) => {
            if count {
                inner.failovers.fetch_add(1, Ordering::Relaxed);
            }
            if t < f {
                info!(target: "mqtt", "[FAILOVER] Broker {} stayed up for the health_check_interval; switching back to it from {} (both connected, nothing to reconnect)", name(t), name(f));
            } else {
                info!(target: "mqtt", "[FAILOVER] Now using broker {} (was {}), already connected", name(t), name(f));
            }
        }
        (Some(f), None) => {
            warn!(target: "mqtt", "[FAILOVER] No broker connected (last active: {}); messages wait in the outbox", name(f));
        }
        (None, None) => {}
    }
}

/// Hands what broker `from`'s lost connection left to broker `to`.
fn hand_over(inner: &Inner, from: usize, to: usize) {
    let msgs = inner.clients[from].take_movable();
    if msgs.is_empty() {
        return;
    }
    if let Some(hook) = inner.on_move.get() {
        hook(from, to);
    }
    info!(target: "mqtt", "[FAILOVER] {} message(s) not delivered by {} go out on {} (already connected)",
        msgs.len(), inner.addrs[from], inner.addrs[to]);
    inner.clients[to].adopt(msgs);
}

fn publish_status(inner: &Inner, active: Option<usize>) {
    let each: Vec<ConnectionStatus> = inner.clients.iter().map(MqttHandle::status).collect();
    let state = match active {
        Some(_) => ConnectionState::Connected,
        None if each.iter().all(|s| s.state == ConnectionState::Failed) => ConnectionState::Failed,
        None if each
            .iter()
            .any(|s| s.state == ConnectionState::Reconnecting) =>
        {
            ConnectionState::Reconnecting
        }
        None => ConnectionState::Connecting,
    };
    // While one broker carries the room, the others' errors are in their
    // own figures (`Stats::brokers`), not the room's connection.
    let last_error = match active {
        Some(_) => None,
        None => each.iter().find_map(|s| s.last_error.clone()),
    };
    inner.status.send_if_modified(|st| {
        let broker = active.map(|a| inner.addrs[a].clone());
        let changed = st.state != state || st.broker != broker || st.last_error != last_error;
        if st.state != state {
            st.since = unix_now();
        }
        st.state = state;
        st.broker = broker;
        st.broker_priority_index = active.map(|a| a + 1);
        st.broker_count = inner.addrs.len();
        st.last_error = last_error;
        changed
    });
}
