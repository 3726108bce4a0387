//! The connection supervisor: the one task that decides which broker to use.
//!
//! For each connection attempt a poller task is spawned that owns the rumqttc
//! `EventLoop` and only polls it, forwarding events here. This task keeps the
//! outbox flowing into the client, maps packet ids to our messages, declares
//! a broker dead when its PUBACK is later than `ack_timeout`, and on any loss
//! moves unacknowledged messages back to the head of the outbox before trying
//! the next broker. rumqttc's own reconnection is never used: every
//! connection is a fresh `EventLoop` with a clean session, so what is resent
//! is decided here and nowhere else.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectionError, Event, LastWill, MqttOptions, Outgoing, Packet, QoS,
    SubscribeFilter, SubscribeReasonCode,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::session::{Discarded, Qos, Queued, Verdict};
use super::{
    ConnectionState, ConnectionStatus, Control, InMessage, MqttSettings, Shared, bump, probe,
    unix_now,
};

/// At most this many of our messages are in rumqttc at once. Below rumqttc's
/// own inflight limit, so its packet ids never collide.
const MAX_INFLIGHT: usize = 64;
const RUMQTTC_INFLIGHT: u16 = 100;
const REQUEST_CAPACITY: usize = 128;
/// Largest incoming packet; bigger ones are a broker/network fault, not ours.
const MAX_INCOMING_PACKET: usize = 256 * 1024;
const MAX_OUTGOING_PACKET: usize = 256 * 1024;

type PollResult = Result<Event, String>;

/// One live connection to one broker.
struct Conn {
    index: usize,
    addr: String,
    client: AsyncClient,
    events: mpsc::Receiver<PollResult>,
    poller_stop: CancellationToken,
    poller: JoinHandle<()>,
}

impl Conn {
    fn shutdown(self) {
        self.poller_stop.cancel();
        self.poller.abort();
    }
}

/// Why the connected phase ended.
enum Exit {
    Lost(String),
    /// A higher-priority broker answered a health-check probe.
    Failback(usize),
    Closed,
}

struct Closing {
    deadline: Instant,
    done: Vec<oneshot::Sender<usize>>,
}

/// A close request (or every handle gone) while not connected: nothing can
/// be flushed, so the deadline is now.
fn close_now(ctl: Option<Control>) -> Option<Closing> {
    ctl.map(|Control::Close { done, .. }| Closing {
        deadline: Instant::now(),
        done: vec![done],
    })
}

struct Supervisor {
    shared: Arc<Shared>,
    s: MqttSettings,
    incoming: mpsc::Sender<InMessage>,
    /// How many of `shared.subscriptions` the current connection has.
    subscribed: usize,
}

pub(super) async fn run(
    shared: Arc<Shared>,
    settings: MqttSettings,
    incoming: mpsc::Sender<InMessage>,
    mut control: mpsc::UnboundedReceiver<Control>,
    cancel: CancellationToken,
) {
    let mut sup = Supervisor {
        shared,
        s: settings,
        incoming,
        subscribed: 0,
    };
    let n = sup.s.brokers.len();
    if n == 0 {
        error!(target: "mqtt", "No brokers configured; MQTT disabled");
        sup.set_state(
            ConnectionState::Failed,
            None,
            Some("no brokers configured".into()),
        );
        return;
    }
    let mut start = 0usize;
    let mut last_index: Option<usize> = None;
    let mut failures: u32 = 0;
    let mut closing: Option<Closing> = None;

    'outer: loop {
        let state = if failures > 0 && sup.s.backoff.exhausted(failures) {
            ConnectionState::Failed
        } else if last_index.is_some() {
            ConnectionState::Reconnecting
        } else {
            ConnectionState::Connecting
        };
        sup.set_state(state, None, sup.status().last_error);

        let conn = tokio::select! {
            c = sup.connect_round(start) => c,
            _ = cancel.cancelled() => break 'outer,
            ctl = control.recv() => {
                closing = close_now(ctl);
                break 'outer;
            }
        };

        let Some(mut conn) = conn else {
            failures += 1;
            sup.shared
                .counters
                .consecutive_failures
                .store(failures, Ordering::Relaxed);
            let delay = sup.s.backoff.random_delay(failures - 1);
            if sup.s.backoff.exhausted(failures) {
                error!(target: "mqtt",
                    "Connection failed after {failures} attempts (max_retries {}); state FAILED, retrying every {:.1}s",
                    sup.s.backoff.max_retries, delay.as_secs_f64());
                sup.set_state(ConnectionState::Failed, None, sup.status().last_error);
            } else {
                warn!(target: "mqtt", "No broker reachable (attempt {failures}/{}); retrying in {:.1}s",
                    sup.s.backoff.max_retries, delay.as_secs_f64());
            }
            tokio::select! {
                _ = sleep(delay) => {}
                _ = cancel.cancelled() => break 'outer,
                ctl = control.recv() => {
                    closing = close_now(ctl);
                    break 'outer;
                }
            }
            start = 0;
            continue;
        };

        // Connected.
        failures = 0;
        let c = &sup.shared.counters;
        c.consecutive_failures.store(0, Ordering::Relaxed);
        bump(&c.total_connections, 1);
        if let Some(prev) = last_index {
            bump(&c.total_reconnections, 1);
            if prev != conn.index {
                bump(&c.failovers, 1);
                info!(target: "mqtt", "[FAILOVER] Now using broker {}/{}: {} (was {})",
                    conn.index + 1, n, conn.addr, sup.s.brokers[prev].addr());
            }
        }
        last_index = Some(conn.index);
        sup.set_state(ConnectionState::Connected, Some(&conn), None);

        let exit = sup
            .connected(&mut conn, &mut control, &cancel, &mut closing)
            .await;
        bump(&sup.shared.counters.total_disconnections, 1);
        match exit {
            Some(Exit::Closed) => {
                sup.disconnect(conn).await;
                break 'outer;
            }
            // Cancelled: drop the socket without DISCONNECT, as a crash
            // would; the broker then publishes the last will.
            None => {
                conn.shutdown();
                break 'outer;
            }
            Some(Exit::Lost(reason)) => {
                warn!(target: "mqtt", "[FAILOVER] Connection to {} lost - {reason}", conn.addr);
                start = (conn.index + 1) % n;
                sup.set_state(ConnectionState::Reconnecting, None, Some(reason));
            }
            Some(Exit::Failback(idx)) => {
                info!(target: "mqtt", "[FAILOVER] Broker {}/{} ({}) is reachable again; switching back from {}",
                    idx + 1, n, sup.s.brokers[idx].addr(), conn.addr);
                start = idx;
            }
        }
        conn.shutdown();
        sup.requeue_sent();
    }

    // Leaving: whatever is still queued will not be delivered.
    let left = sup.shared.session.lock().unwrap().drain();
    if !left.is_empty() {
        warn!(target: "mqtt", "Stopping with {} undelivered message(s)", left.len());
    }
    sup.set_state(ConnectionState::Disconnected, None, None);
    if let Some(c) = closing {
        for d in c.done {
            let _ = d.send(left.len());
        }
    }
}

impl Supervisor {
    fn status(&self) -> ConnectionStatus {
        self.shared.status.borrow().clone()
    }

    fn set_state(&self, state: ConnectionState, conn: Option<&Conn>, last_error: Option<String>) {
        let n = self.s.brokers.len();
        self.shared.status.send_if_modified(|st| {
            let changed = st.state != state
                || st.broker.as_deref() != conn.map(|c| c.addr.as_str())
                || st.last_error != last_error;
            if st.state != state {
                st.since = unix_now();
                debug!(target: "mqtt", "Connection state {} -> {}", st.state.as_str(), state.as_str());
            }
            st.state = state;
            st.broker = conn.map(|c| c.addr.clone());
            st.broker_priority_index = conn.map(|c| c.index + 1);
            st.broker_count = n;
            st.last_error = last_error;
            changed
        });
    }

    /// Tries every broker once, starting at `start` (seed 000 order).
    async fn connect_round(&mut self, start: usize) -> Option<Conn> {
        let n = self.s.brokers.len();
        for k in 0..n {
            let idx = (start + k) % n;
            let addr = self.s.brokers[idx].addr();
            info!(target: "mqtt", "[FAILOVER] Trying broker {}/{}: {}", idx + 1, n, addr);
            self.shared
                .counters
                .last_connection_attempt
                .store(unix_now().to_bits(), Ordering::Relaxed);
            match self.connect_one(idx).await {
                Ok(conn) => {
                    info!(target: "mqtt", "[FAILOVER] Successfully connected to {addr}");
                    return Some(conn);
                }
                Err(e) => {
                    bump(&self.shared.counters.failed_connections, 1);
                    warn!(target: "mqtt", "[FAILOVER] Failed to connect to {addr} - {e}");
                    self.shared.status.send_modify(|st| st.last_error = Some(e));
                }
            }
        }
        None
    }

    async fn connect_one(&mut self, idx: usize) -> Result<Conn, String> {
        let b = &self.s.brokers[idx];
        let mut opts = MqttOptions::new(self.s.client_id.clone(), b.host.clone(), b.port);
        opts.set_keep_alive(self.s.keep_alive);
        opts.set_clean_session(true);
        opts.set_inflight(RUMQTTC_INFLIGHT);
        opts.set_max_packet_size(MAX_INCOMING_PACKET, MAX_OUTGOING_PACKET);
        if let Some(user) = &b.username {
            let pw = b.password.as_ref().map(|p| p.expose()).unwrap_or("");
            opts.set_credentials(user.clone(), pw);
        }
        if let Some(w) = &self.s.will {
            opts.set_last_will(LastWill::new(
                w.topic.clone(),
                w.payload.to_vec(),
                QoS::AtLeastOnce,
                w.retain,
            ));
        }
        let (client, mut eventloop) = AsyncClient::new(opts, REQUEST_CAPACITY);
        let secs = self.s.connection_timeout.as_secs().max(1);
        let mut net = eventloop.network_options();
        net.set_connection_timeout(secs);
        // Cues are tiny and late ones are useless: no Nagle batching.
        net.set_tcp_nodelay(true);
        eventloop.set_network_options(net);

        let (tx, mut events) = mpsc::channel::<PollResult>(256);
        let stop = CancellationToken::new();
        let poller_stop = stop.clone();
        // The poller owns the EventLoop and only polls it.
        let poller = tokio::spawn(async move {
            loop {
                let r = tokio::select! {
                    _ = stop.cancelled() => break,
                    r = eventloop.poll() => r,
                };
                let failed = r.is_err();
                if tx.send(r.map_err(|e| describe(&e))).await.is_err() || failed {
                    break;
                }
            }
        });

        let first = tokio::time::timeout(self.s.connection_timeout, events.recv()).await;
        let fail = |e: String| {
            poller_stop.cancel();
            Err(e)
        };
        match first {
            Ok(Some(Ok(Event::Incoming(Packet::ConnAck(_))))) => {}
            Ok(Some(Ok(other))) => return fail(format!("unexpected first packet {other:?}")),
            Ok(Some(Err(e))) => return fail(e),
            Ok(None) => return fail("connection closed".into()),
            Err(_) => {
                return fail(format!(
                    "no CONNACK within connection_timeout {:.1}s",
                    self.s.connection_timeout.as_secs_f64()
                ));
            }
        }
        Ok(Conn {
            index: idx,
            addr: b.addr(),
            client,
            events,
            poller_stop,
            poller,
        })
    }

    /// The connected phase. `None` means cancelled.
    async fn connected(
        &mut self,
        conn: &mut Conn,
        control: &mut mpsc::UnboundedReceiver<Control>,
        cancel: &CancellationToken,
        closing: &mut Option<Closing>,
    ) -> Option<Exit> {
        self.subscribed = 0;
        self.subscribe_new(conn);
        if let Some(birth) = &self.s.birth {
            // The birth message goes out before anything queued.
            self.shared.session.lock().unwrap().push_front(
                birth.topic.clone(),
                birth.payload.clone(),
                super::PublishOptions {
                    retain: birth.retain,
                    ..super::PublishOptions::reliable()
                },
                Instant::now(),
            );
        }

        let mut health = tokio::time::interval_at(
            Instant::now() + self.s.health_check_interval,
            self.s.health_check_interval,
        );
        let mut probe_task: Option<JoinHandle<Option<usize>>> = None;
        let exit = loop {
            self.pump(conn);
            if let Some(c) = closing.as_ref()
                && self.shared.session.lock().unwrap().is_idle()
            {
                debug!(target: "mqtt", "Outbox flushed before {:?}", c.deadline);
                break Some(Exit::Closed);
            }
            let ack_deadline = self.shared.session.lock().unwrap().deadline();
            let close_deadline = closing.as_ref().map(|c| c.deadline);
            tokio::select! {
                _ = cancel.cancelled() => break None,
                ctl = control.recv() => match ctl {
                    Some(Control::Close { flush, done }) => {
                        let deadline = Instant::now() + flush;
                        match closing {
                            Some(c) => c.done.push(done),
                            None => *closing = Some(Closing { deadline, done: vec![done] }),
                        }
                    }
                    // Every handle is gone: nobody can publish any more.
                    None => {
                        *closing = Some(Closing { deadline: Instant::now() + Duration::from_secs(1), done: vec![] });
                    }
                },
                ev = conn.events.recv() => match ev {
                    Some(Ok(event)) => {
                        if let Some(reason) = self.on_event(event) {
                            break Some(Exit::Lost(reason));
                        }
                    }
                    Some(Err(e)) => break Some(Exit::Lost(e)),
                    None => break Some(Exit::Lost("event loop stopped".into())),
                },
                _ = self.shared.wake.notified() => self.subscribe_new(conn),
                _ = sleep_until(ack_deadline.unwrap_or_else(Instant::now)), if ack_deadline.is_some() => {
                    let verdict = self.shared.session.lock().unwrap().verdict(Instant::now());
                    let ms = self.s.ack_timeout.as_millis();
                    match verdict {
                        // An answer came meanwhile.
                        None => {}
                        Some(Verdict::NoPuback { topic }) => {
                            bump(&self.shared.counters.ack_timeouts, 1);
                            warn!(target: "mqtt",
                                "[FAILOVER] No PUBACK from {} within {ms}ms (message to {topic}); marking broker dead",
                                conn.addr);
                            break Some(Exit::Lost(format!("no PUBACK within {ms}ms")));
                        }
                        Some(Verdict::NoPingResp) => {
                            bump(&self.shared.counters.ack_timeouts, 1);
                            warn!(target: "mqtt",
                                "[FAILOVER] No PINGRESP from {} within {ms}ms; marking broker dead",
                                conn.addr);
                            break Some(Exit::Lost(format!("no PINGRESP within {ms}ms")));
                        }
                    }
                }
                _ = sleep_until(close_deadline.unwrap_or_else(Instant::now)), if close_deadline.is_some() => {
                    break Some(Exit::Closed);
                }
                _ = health.tick() => {
                    self.health_check(conn);
                    if self.s.failback && conn.index > 0 && probe_task.is_none() {
                        probe_task = Some(self.spawn_probe(conn.index));
                    }
                }
                r = async { probe_task.as_mut().expect("guarded").await }, if probe_task.is_some() => {
                    probe_task = None;
                    if let Ok(Some(idx)) = r
                        && closing.is_none()
                    {
                        break Some(Exit::Failback(idx));
                    }
                }
            }
        };
        if let Some(p) = probe_task {
            p.abort();
        }
        exit
    }

    /// Subscribes filters the current connection does not have yet.
    fn subscribe_new(&mut self, conn: &Conn) {
        // Called on every wake-up (each publish): copy nothing unless new.
        let added: Vec<String> = {
            let subs = self.shared.subscriptions.lock().unwrap();
            match subs.get(self.subscribed..) {
                Some(new) if !new.is_empty() => new.to_vec(),
                _ => return,
            }
        };
        debug!(target: "mqtt", "Subscribing to {added:?}");
        let count = added.len();
        let filters = added
            .into_iter()
            .map(|f| SubscribeFilter::new(f, QoS::AtLeastOnce));
        match conn.client.try_subscribe_many(filters) {
            Ok(()) => self.subscribed += count,
            Err(e) => warn!(target: "mqtt", "Subscribe request not accepted yet: {e}"),
        }
    }

    /// Hands queued messages to rumqttc while there is room.
    fn pump(&mut self, conn: &Conn) {
        let mut expired = Vec::new();
        loop {
            let now = Instant::now();
            let mut session = self.shared.session.lock().unwrap();
            let Some(q) = session.next_to_send(now, MAX_INFLIGHT, &mut expired) else {
                break;
            };
            match conn.client.try_publish(
                q.topic.clone(),
                qos(q.opts.qos),
                q.opts.retain,
                q.payload.clone(),
            ) {
                Ok(()) => {
                    if q.attempts > 0 {
                        debug!(target: "mqtt", "Resending {} (attempt {})", q.topic, q.attempts + 1);
                    }
                    session.sent(q, now);
                }
                Err(e) => {
                    debug!(target: "mqtt", "Client busy ({e}); will retry");
                    session.not_sent(q);
                    break;
                }
            }
        }
        self.report_discarded(Discarded {
            expired,
            ..Default::default()
        });
    }

    /// Handles one event from the poller; `Some(reason)` ends the connection.
    fn on_event(&mut self, event: Event) -> Option<String> {
        let c = &self.shared.counters;
        match event {
            Event::Incoming(Packet::Publish(p)) => {
                bump(&c.messages_received, 1);
                let msg = InMessage {
                    topic: p.topic,
                    payload: p.payload,
                    retain: p.retain,
                };
                if let Err(e) = self.incoming.try_send(msg) {
                    bump(&c.incoming_dropped, 1);
                    if let mpsc::error::TrySendError::Full(m) = e {
                        warn!(target: "mqtt", "Incoming queue full; dropped message on {}", m.topic);
                    }
                }
            }
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                // rumqttc reports publishes in the order they were requested.
                let mut session = self.shared.session.lock().unwrap();
                if session.packet_id(pkid, Instant::now()).is_some() {
                    bump(&c.messages_published, 1);
                }
            }
            Event::Incoming(Packet::PubAck(ack)) => {
                let done = self
                    .shared
                    .session
                    .lock()
                    .unwrap()
                    .acknowledged(ack.pkid, Instant::now());
                if let Some(d) = done {
                    bump(&c.messages_published, 1);
                    debug!(target: "mqtt", "PUBACK {} for {} after {:?}", ack.pkid, d.msg.topic, d.latency);
                }
            }
            Event::Outgoing(Outgoing::PingReq) => {
                self.shared
                    .session
                    .lock()
                    .unwrap()
                    .ping_sent(Instant::now());
            }
            Event::Incoming(Packet::PingResp) => {
                self.shared.session.lock().unwrap().ping_answered();
            }
            Event::Incoming(Packet::SubAck(s)) => {
                for code in s.return_codes {
                    if matches!(code, SubscribeReasonCode::Failure) {
                        warn!(target: "mqtt", "Broker refused a subscription (pkid {})", s.pkid);
                    }
                }
            }
            Event::Incoming(Packet::Disconnect) => {
                return Some("broker sent DISCONNECT".into());
            }
            _ => {}
        }
        None
    }

    /// Moves unacknowledged messages back to the outbox for the next broker.
    fn requeue_sent(&mut self) {
        let (n, discarded) = {
            let mut session = self.shared.session.lock().unwrap();
            let n = session.in_flight();
            (n, session.connection_lost())
        };
        let resent = n - discarded.failed.len();
        if resent > 0 {
            info!(target: "mqtt", "{resent} unacknowledged message(s) will be resent");
        }
        bump(&self.shared.counters.messages_resent, resent);
        self.report_discarded(discarded);
    }

    fn report_discarded(&self, d: Discarded) {
        if d.is_empty() {
            return;
        }
        let c = &self.shared.counters;
        let max_age = |q: &Queued| q.opts.max_age.unwrap_or_default().as_secs_f64();
        for q in &d.expired {
            warn!(target: "mqtt", "Dropping stale message for {} (waited {:.1}s > message_max_age {:.1}s)",
                q.topic, q.created.elapsed().as_secs_f64(), max_age(q));
        }
        for q in &d.failed {
            error!(target: "mqtt", "Giving up on message for {} after {} attempts (message_retry_limit {})",
                q.topic, q.attempts, self.s.retry_limit);
        }
        for q in &d.overflowed {
            warn!(target: "mqtt", "Queue full (message_queue_size): dropped oldest message for {}", q.topic);
        }
        bump(&c.messages_expired, d.expired.len());
        bump(&c.messages_failed, d.failed.len());
        bump(&c.messages_dropped, d.overflowed.len());
    }

    fn health_check(&self, conn: &Conn) {
        let (queued, in_flight) = {
            let s = self.shared.session.lock().unwrap();
            (s.queued(), s.in_flight())
        };
        let poller_alive = !conn.poller.is_finished();
        if poller_alive {
            debug!(target: "mqtt", "Health check: connected to {}, {queued} queued, {in_flight} in flight",
                conn.addr);
        } else {
            warn!(target: "mqtt", "Health check: poller for {} has stopped", conn.addr);
        }
    }

    /// Probes brokers with higher priority than `current` in the background.
    fn spawn_probe(&self, current: usize) -> JoinHandle<Option<usize>> {
        let brokers = self.s.brokers[..current].to_vec();
        let id = format!("{}-probe", self.s.client_id);
        let timeout = self.s.connection_timeout.min(Duration::from_secs(5));
        tokio::spawn(async move {
            for (i, b) in brokers.iter().enumerate() {
                if probe::probe(b, &id, timeout).await.is_ok() {
                    return Some(i);
                }
            }
            None
        })
    }

    /// Clean DISCONNECT (the broker then does not publish the last will).
    async fn disconnect(&mut self, mut conn: Conn) {
        if conn.client.try_disconnect().is_ok() {
            let wait = async {
                while let Some(ev) = conn.events.recv().await {
                    match ev {
                        Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                        Ok(other) => {
                            let _ = self.on_event(other);
                        }
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_millis(500), wait).await;
        }
        conn.shutdown();
    }
}

fn qos(q: Qos) -> QoS {
    match q {
        Qos::AtMostOnce => QoS::AtMostOnce,
        Qos::AtLeastOnce => QoS::AtLeastOnce,
    }
}

/// A short, human reason for a connection error (seed 000: "Connection refused").
pub(super) fn describe(e: &ConnectionError) -> String {
    match e {
        ConnectionError::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "Connection refused".into(),
            std::io::ErrorKind::ConnectionReset => "Connection reset by broker".into(),
            std::io::ErrorKind::UnexpectedEof => "Connection closed by broker".into(),
            _ => io.to_string(),
        },
        ConnectionError::ConnectionRefused(code) => format!("Broker refused connection: {code:?}"),
        ConnectionError::NetworkTimeout => "Network timeout".into(),
        ConnectionError::MqttState(state) => state.to_string(),
        other => other.to_string(),
    }
}
