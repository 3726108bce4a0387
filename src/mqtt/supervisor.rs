//! The connection supervisor: the one task that decides which broker to use.
//!
//! For each connection attempt a poller task is spawned that owns the rumqttc
//! `EventLoop` and only polls it, forwarding events here. The supervisor
//! feeds them to the pure delivery [`Session`](super::session::Session),
//! hands it messages to send, and acts on its verdicts: a PUBACK or PINGRESP
//! later than `ack_timeout` means the broker is dead. rumqttc's own
//! reconnection is never used: every connection is a fresh `EventLoop` with
//! a clean MQTT 5 session, so what is resent is decided by our session and
//! nowhere else.
//!
//! Broker choice (seeds 000 and 002) is the pure [`Failover`] policy: the
//! next broker in the priority list is tried at once after a loss, each
//! broker backs off by its own failures, FAILED after `max_retries` on
//! every broker, failback to a higher-priority broker once a health-check
//! probe connection to it stayed up for a whole `health_check_interval`
//! (so a crash-looping primary does not pull the room back at each
//! restart, and the boards had that long to reconnect to it first). The
//! supervisor tells the policy what happened: a refused attempt, a loss
//! with how long the connection lived, and whether the broker still
//! listened after a silent close (the takeover evidence).
//!
//! Closing (`MqttHandle::close`) has one deadline that holds in every state:
//! flushing, reconnecting, a frozen broker, a dead one.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rumqttc::Outgoing;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{
    Filter, Packet, PubAckReason, PublishProperties, RetainForwardRule, SubscribeProperties,
    SubscribeReasonCode,
};
use rumqttc::v5::{AsyncClient, Event};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use super::backoff;
use super::connect::{self, broker_limits};
use super::policy::{self, Failover, Loss, Next};
use super::session::{Discarded, Qos, Queued, Verdict};
use super::{
    ConnectionState, ConnectionStatus, Control, InMessage, MqttSettings, OwnMessage, Shared, bump,
    probe, unix_now,
};
use crate::clock::after;
use crate::config::BrokerConfig;
use crate::ratelog;
use crate::topic;

const REQUEST_CAPACITY: usize = 128;
/// How long a clean DISCONNECT may take to go out.
const DISCONNECT_WAIT: Duration = Duration::from_millis(500);

/// What the poller forwards: an event, or why the connection ended.
type PollResult = Result<Event, PollError>;

#[derive(Debug, Clone)]
struct PollError {
    text: String,
    oversize: bool,
    takeover: bool,
    /// EOF or reset without DISCONNECT (see [`policy::SilentCloses`]).
    silent: bool,
}

/// One live connection to one broker.
struct Conn {
    index: usize,
    addr: String,
    client: AsyncClient,
    events: mpsc::Receiver<PollResult>,
    poller_stop: CancellationToken,
    poller: JoinHandle<()>,
    since: Instant,
    /// The broker's Receive Maximum, capped at [`MAX_INFLIGHT`].
    max_in_flight: usize,
    /// The largest packet the broker accepts.
    max_packet: usize,
    /// The broker supports subscription identifiers (used to drop the
    /// extra copies overlapping subscriptions cause).
    sub_ids: bool,
    /// How many of the wanted filters have been requested.
    requested: usize,
    /// SUBSCRIBE requests (index into the wanted filters) waiting for their
    /// packet id, then for their SUBACK, in request order.
    sub_pending: VecDeque<(Option<u16>, usize)>,
    /// Per wanted filter: requested and not refused.
    usable: Vec<bool>,
}

impl Conn {
    fn shutdown(self) {
        self.poller_stop.cancel();
        self.poller.abort();
    }
}

/// Why the connected phase ended.
enum Exit {
    Lost(PollError),
    /// A higher-priority broker answered a health-check probe.
    Failback(usize),
    Closed,
    Cancelled,
}

struct Closing {
    deadline: Instant,
    done: Vec<oneshot::Sender<usize>>,
}

impl Closing {
    fn add(closing: &mut Option<Closing>, ctl: Option<Control>) {
        let (deadline, done) = match ctl {
            Some(Control::Close { flush, done }) => (after(Instant::now(), flush), Some(done)),
            // Every handle is gone: nobody can publish any more.
            None => (Instant::now() + Duration::from_secs(1), None),
        };
        let c = closing.get_or_insert(Closing {
            deadline,
            done: Vec::new(),
        });
        c.done.extend(done);
    }
}

/// How a connection round ended.
enum Round {
    Connected(Box<Conn>),
    Failed,
    /// A close request arrived: try again under the close deadline.
    Restart,
    Stop,
}

struct Supervisor {
    shared: Arc<Shared>,
    policy: Failover,
    s: MqttSettings,
    incoming: mpsc::Sender<InMessage>,
    tasks: TaskTracker,
}

pub(super) async fn run(
    shared: Arc<Shared>,
    settings: MqttSettings,
    incoming: mpsc::Sender<InMessage>,
    mut control: mpsc::UnboundedReceiver<Control>,
    cancel: CancellationToken,
    tasks: TaskTracker,
) {
    let n = settings.brokers.len();
    let mut sup = Supervisor {
        shared,
        policy: Failover::new(n.max(1), settings.backoff.clone()),
        s: settings,
        incoming,
        tasks,
    };
    if n == 0 {
        error!(target: "mqtt", "No brokers configured; MQTT disabled");
        sup.set_state(
            ConnectionState::Failed,
            None,
            Some("no brokers configured".into()),
        );
        return;
    }
    let mut last_index: Option<usize> = None;
    let mut closing: Option<Closing> = None;

    'outer: loop {
        if let Some(c) = &closing
            && (Instant::now() >= c.deadline || sup.shared.session.lock().is_idle())
        {
            break;
        }
        let state = if sup.policy.exhausted() {
            ConnectionState::Failed
        } else if last_index.is_some() {
            ConnectionState::Reconnecting
        } else {
            ConnectionState::Connecting
        };
        sup.set_state(state, None, sup.status().last_error);
        sup.shared
            .counters
            .consecutive_failures
            .store(sup.policy.failed_rounds());

        let idx = match sup.policy.next(Instant::now(), closing.is_some()) {
            Next::Try(idx) => idx,
            Next::Wait(until) => {
                if !sup
                    .back_off(until, &mut control, &cancel, &mut closing)
                    .await
                {
                    break;
                }
                continue;
            }
        };

        let deadline = closing.as_ref().map(|c| c.deadline);
        let round = {
            let attempt = sup.attempt(idx, deadline);
            tokio::pin!(attempt);
            loop {
                tokio::select! {
                    c = &mut attempt => break match c {
                        Some(c) => Round::Connected(Box::new(c)),
                        None => Round::Failed,
                    },
                    _ = cancel.cancelled() => break Round::Stop,
                    ctl = control.recv() => {
                        let was_closing = closing.is_some();
                        Closing::add(&mut closing, ctl);
                        if !was_closing {
                            break Round::Restart;
                        }
                    }
                    _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                        break Round::Stop;
                    }
                }
            }
        };

        let mut conn = match round {
            Round::Stop => break,
            Round::Restart => continue,
            Round::Connected(c) => c,
            Round::Failed => {
                sup.policy
                    .attempt_failed(idx, Instant::now(), backoff::random_unit());
                if closing.is_some() && idx + 1 == n {
                    // Keep going round the list until the close deadline,
                    // without backoff.
                    tokio::select! {
                        _ = sleep(Duration::from_millis(100)) => {}
                        _ = cancel.cancelled() => break 'outer,
                    }
                }
                continue;
            }
        };

        // Connected.
        sup.policy.connected(conn.index);
        let c = &sup.shared.counters;
        c.consecutive_failures.store(0);
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
        sup.set_subscriptions(0, Vec::new());
        let lived = conn.since.elapsed();
        match exit {
            Exit::Closed => {
                let deadline = closing.as_ref().map(|c| c.deadline);
                sup.disconnect(*conn, deadline, &[]).await;
                break 'outer;
            }
            // Cancelled: drop the socket without DISCONNECT, as a crash
            // would; the broker then publishes the last will.
            Exit::Cancelled => {
                conn.shutdown();
                break 'outer;
            }
            Exit::Failback(idx) => {
                info!(target: "mqtt", "[FAILOVER] Broker {}/{} ({}) is reachable again; switching back from {}",
                    idx + 1, n, sup.s.brokers[idx].addr(), conn.addr);
                let deadline = closing.as_ref().map(|c| c.deadline);
                let addr = conn.addr.clone();
                // What this client left retained there must not outlive it.
                let farewell = sup.s.farewell.clone();
                sup.disconnect(*conn, deadline, &farewell).await;
                debug!(target: "mqtt", "Left {addr} cleanly");
                sup.requeue_sent();
                sup.policy.failback(idx);
                continue;
            }
            Exit::Lost(e) => {
                let index = conn.index;
                conn.shutdown();
                sup.requeue_sent();
                sup.lost(index, lived, e, closing.is_some()).await;
            }
        }
    }

    // Leaving: whatever is still queued will not be delivered.
    let left = sup.shared.session.lock().drain();
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

    fn set_subscriptions(&self, active: usize, refused: Vec<String>) {
        self.shared.subscriptions.send_modify(|s| {
            s.active = active;
            s.refused = refused;
        });
    }

    /// Every broker is held off: waits until the first hold ends; false
    /// when told to stop meanwhile.
    async fn back_off(
        &self,
        until: Instant,
        control: &mut mpsc::UnboundedReceiver<Control>,
        cancel: &CancellationToken,
        closing: &mut Option<Closing>,
    ) -> bool {
        let delay = until.saturating_duration_since(Instant::now());
        let rounds = self.policy.failed_rounds();
        if self.policy.exhausted() {
            error!(target: "mqtt",
                "Connection failed after {rounds} attempts (max_retries {}); state FAILED, retrying in {:.1}s",
                self.s.backoff.max_retries, delay.as_secs_f64());
            self.set_state(ConnectionState::Failed, None, self.status().last_error);
        } else {
            warn!(target: "mqtt", "No broker reachable (attempt {}/{}); retrying in {:.1}s",
                rounds.max(1), self.s.backoff.max_retries, delay.as_secs_f64());
        }
        tokio::select! {
            _ = sleep_until(until) => true,
            _ = cancel.cancelled() => false,
            // A close request ends the wait: try once more to deliver the
            // last messages within its deadline.
            ctl = control.recv() => {
                Closing::add(closing, ctl);
                true
            }
        }
    }

    /// One connection attempt to broker `idx`. With a close deadline, the
    /// time left is shared among the brokers.
    async fn attempt(&self, idx: usize, deadline: Option<Instant>) -> Option<Conn> {
        let n = self.s.brokers.len();
        let addr = self.s.brokers[idx].addr();
        let mut timeout = self.s.connection_timeout;
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            timeout = timeout.min(left / n as u32);
        }
        info!(target: "mqtt", "[FAILOVER] Trying broker {}/{}: {}", idx + 1, n, addr);
        self.shared
            .counters
            .last_connection_attempt
            .store(unix_now().to_bits());
        match self.connect_one(idx, timeout).await {
            Ok(conn) => {
                info!(target: "mqtt", "[FAILOVER] Successfully connected to {addr}");
                Some(conn)
            }
            Err(e) => {
                bump(&self.shared.counters.failed_connections, 1);
                warn!(target: "mqtt", "[FAILOVER] Failed to connect to {addr} - {e}");
                self.shared
                    .status
                    .send_modify(|st| st.last_error = Some(format!("{addr}: {e}")));
                None
            }
        }
    }

    /// The accepted connection to broker `idx` ended after `lived`: what
    /// it was (a crash, a drop, a takeover on the evidence the policy
    /// names), logged and counted. The next broker is tried at once.
    async fn lost(&mut self, idx: usize, lived: Duration, mut e: PollError, closing: bool) {
        let b = &self.s.brokers[idx];
        let addr = b.addr();
        let loss = if e.takeover {
            Loss::TakenOver
        } else if e.silent && !closing && connect::still_listening(b).await {
            Loss::SilentWhileListening
        } else {
            Loss::Other
        };
        let v = self
            .policy
            .lost(idx, lived, loss, Instant::now(), backoff::random_unit());
        if v.takeover && !e.takeover {
            e.text = policy::SUSPECTED_TAKEOVER.to_string();
        }
        warn!(target: "mqtt", "[FAILOVER] Connection to {addr} lost - {}", e.text);
        if e.oversize {
            bump(&self.shared.counters.oversize_packets, 1);
        }
        if v.takeover {
            bump(&self.shared.counters.takeovers, 1);
            error!(target: "mqtt",
                "Client id `{}` was taken over on {addr}: another client connected with the same id. Give every client its own mqtt.client_id; not trying {addr} again for {:.1}s",
                self.s.client_id, v.hold.as_secs_f64());
        } else if v.short {
            warn!(target: "mqtt",
                "Connection to {addr} lasted only {:.1}s (less than {:.1}s); not trying it again for {:.1}s",
                lived.as_secs_f64(), self.policy.stable().as_secs_f64(), v.hold.as_secs_f64());
        }
        self.set_state(ConnectionState::Reconnecting, None, Some(e.text));
    }

    async fn connect_one(&self, idx: usize, timeout: Duration) -> Result<Conn, String> {
        let b = &self.s.brokers[idx];
        let opts = connect::options(
            b,
            &self.s.client_id,
            self.s.keep_alive,
            self.s.will.as_ref(),
        );
        let (client, mut eventloop) = connect::client(opts, REQUEST_CAPACITY, timeout);

        let (tx, mut events) = mpsc::channel::<PollResult>(256);
        let stop = CancellationToken::new();
        let poller_stop = stop.clone();
        // The poller owns the EventLoop and only polls it.
        let poller = self
            .tasks
            .spawn(tracing::Instrument::in_current_span(async move {
                loop {
                    let r = tokio::select! {
                        _ = stop.cancelled() => break,
                        r = eventloop.poll() => r,
                    };
                    let r = r.map_err(|e| PollError {
                        text: connect::describe(&e),
                        oversize: connect::is_oversize(&e),
                        takeover: connect::is_takeover(&e),
                        silent: connect::is_closed_by_peer(&e),
                    });
                    let failed = r.is_err();
                    if tx.send(r).await.is_err() || failed {
                        break;
                    }
                }
            }));

        // Should this attempt be abandoned (a close deadline, shutdown), its
        // poller stops with it instead of waiting out its own timeout.
        let abandon = poller_stop.clone().drop_guard();
        let first = tokio::time::timeout(timeout, events.recv()).await;
        let fail = |e: String| {
            poller_stop.cancel();
            Err(e)
        };
        let ack = match first {
            Ok(Some(Ok(Event::Incoming(Packet::ConnAck(ack))))) => ack,
            Ok(Some(Ok(other))) => return fail(format!("unexpected first packet {other:?}")),
            Ok(Some(Err(e))) => return fail(e.text),
            Ok(None) => return fail("connection closed".into()),
            Err(_) => {
                return fail(format!(
                    "no CONNACK within {:.1}s (connection_timeout)",
                    timeout.as_secs_f64()
                ));
            }
        };
        abandon.disarm();
        let (max_in_flight, max_packet, sub_ids) = broker_limits(&ack);
        Ok(Conn {
            index: idx,
            addr: b.addr(),
            client,
            events,
            poller_stop,
            poller,
            since: Instant::now(),
            max_in_flight,
            max_packet,
            sub_ids,
            requested: 0,
            sub_pending: VecDeque::new(),
            usable: Vec::new(),
        })
    }

    /// The connected phase.
    async fn connected(
        &mut self,
        conn: &mut Conn,
        control: &mut mpsc::UnboundedReceiver<Control>,
        cancel: &CancellationToken,
        closing: &mut Option<Closing>,
    ) -> Exit {
        self.subscribe_new(conn);
        if let Some(birth) = &self.s.birth {
            // The birth message goes out before anything queued.
            self.shared.session.lock().push_front(
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
        // Switching back to this broker once nothing is in flight.
        let mut draining: Option<usize> = None;
        let exit = loop {
            if draining.is_none() {
                self.pump(conn);
            }
            let idle = self.shared.session.lock().is_idle();
            if closing.is_some() && idle {
                debug!(target: "mqtt", "Outbox flushed");
                break Exit::Closed;
            }
            let in_flight = self.shared.session.lock().in_flight();
            if let Some(idx) = draining
                && in_flight == 0
            {
                break Exit::Failback(idx);
            }
            let answer_deadline = self.shared.session.lock().deadline();
            let close_deadline = closing.as_ref().map(|c| c.deadline);
            tokio::select! {
                _ = cancel.cancelled() => break Exit::Cancelled,
                ctl = control.recv() => Closing::add(closing, ctl),
                ev = conn.events.recv() => match ev {
                    Some(Ok(event)) => {
                        if let Some(e) = self.on_event(conn, event) {
                            break Exit::Lost(e);
                        }
                    }
                    Some(Err(e)) => break Exit::Lost(e),
                    None => break Exit::Lost(lost("event loop stopped")),
                },
                _ = self.shared.wake.notified() => self.subscribe_new(conn),
                _ = sleep_until(answer_deadline.unwrap_or_else(Instant::now)), if answer_deadline.is_some() => {
                    let verdict = self.shared.session.lock().verdict(Instant::now());
                    let ms = self.s.ack_timeout.as_millis();
                    let what = match verdict {
                        // An answer came meanwhile.
                        None => continue,
                        Some(Verdict::NoPuback { topic }) => format!("PUBACK (message to {topic})"),
                        Some(Verdict::NoPingResp) => "PINGRESP".to_string(),
                    };
                    bump(&self.shared.counters.ack_timeouts, 1);
                    warn!(target: "mqtt",
                        "[FAILOVER] No {what} from {} within {ms}ms; marking broker dead", conn.addr);
                    break Exit::Lost(lost(&format!("no answer within {ms}ms (ack_timeout)")));
                }
                _ = sleep_until(close_deadline.unwrap_or_else(Instant::now)), if close_deadline.is_some() => {
                    break Exit::Closed;
                }
                _ = health.tick() => {
                    self.health_check(conn);
                    if self.s.failback && conn.index > 0 && probe_task.is_none() && draining.is_none() {
                        probe_task = Some(self.spawn_probe(conn.index));
                    }
                }
                r = async { probe_task.as_mut().expect("guarded").await }, if probe_task.is_some() => {
                    probe_task = None;
                    if let Ok(Some(idx)) = r
                        && closing.is_none()
                    {
                        debug!(target: "mqtt", "Failback to broker {}: waiting for {in_flight} message(s) in flight", idx + 1);
                        draining = Some(idx);
                    }
                }
            }
        };
        if let Some(p) = probe_task {
            p.abort();
        }
        // Acknowledgements that arrived before we stopped listening still
        // count: a message the broker acknowledged is never sent again.
        if !matches!(exit, Exit::Lost(_)) {
            while let Ok(Ok(ev)) = conn.events.try_recv() {
                let _ = self.on_event(conn, ev);
            }
        }
        exit
    }

    /// Subscribes filters the current connection does not have yet, one
    /// SUBSCRIBE each, numbered with a subscription identifier when the
    /// broker supports them.
    fn subscribe_new(&self, conn: &mut Conn) {
        // Called on every wake-up (each publish): copy nothing unless new.
        let added: Vec<String> = {
            let subs = self.shared.wanted.lock();
            match subs.get(conn.requested..) {
                Some(new) if !new.is_empty() => new.to_vec(),
                _ => return,
            }
        };
        for f in added {
            let index = conn.requested;
            let filter = Filter {
                // Retained messages only for a new subscription; ours are
                // all new on a clean session.
                retain_forward_rule: RetainForwardRule::OnNewSubscribe,
                ..Filter::new(f.clone(), QoS::AtLeastOnce)
            };
            let props = conn.sub_ids.then(|| SubscribeProperties {
                id: Some(index + 1),
                user_properties: Vec::new(),
            });
            let r = match props {
                Some(p) => conn.client.try_subscribe_many_with_properties([filter], p),
                None => conn.client.try_subscribe_many([filter]),
            };
            if let Err(e) = r {
                debug!(target: "mqtt", "Subscribe request not accepted yet ({e}); will retry");
                return;
            }
            debug!(target: "mqtt", "Subscribing to {f}");
            conn.requested += 1;
            conn.usable.push(true);
            conn.sub_pending.push_back((None, index));
        }
    }

    /// Hands queued messages to rumqttc while there is room.
    fn pump(&mut self, conn: &Conn) {
        let mut d = Discarded::default();
        let mut too_big = Vec::new();
        loop {
            let now = Instant::now();
            let mut session = self.shared.session.lock();
            let Some(q) = session.next_to_send(now, conn.max_in_flight, &mut d.expired) else {
                break;
            };
            if packet_size(&q.topic, &q.payload) > conn.max_packet {
                too_big.push(q);
                continue;
            }
            let sent = match q.expiry_at(now) {
                None => conn.client.try_publish(
                    q.topic.clone(),
                    qos(q.opts.qos),
                    q.opts.retain,
                    q.payload.clone(),
                ),
                Some(e) => conn.client.try_publish_with_properties(
                    q.topic.clone(),
                    qos(q.opts.qos),
                    q.opts.retain,
                    q.payload.clone(),
                    PublishProperties {
                        message_expiry_interval: Some(e),
                        ..PublishProperties::default()
                    },
                ),
            };
            match sent {
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
        for q in &too_big {
            error!(target: "mqtt", "Not sending {} bytes to {}: over the broker's limit of {} bytes",
                q.payload.len(), q.topic, conn.max_packet);
        }
        bump(&self.shared.counters.oversize_packets, too_big.len());
        d.failed = too_big;
        self.report_discarded(d);
    }

    /// Handles one event from the poller; `Some` ends the connection.
    fn on_event(&mut self, conn: &mut Conn, event: Event) -> Option<PollError> {
        let c = &self.shared.counters;
        let now = Instant::now();
        if matches!(event, Event::Incoming(_)) {
            self.shared.session.lock().heard(now);
        }
        match event {
            Event::Incoming(Packet::Publish(p)) => {
                bump(&c.messages_received, 1);
                let Ok(topic) = String::from_utf8(p.topic.to_vec()) else {
                    ratelog!(
                        self.shared.log,
                        warn,
                        "mqtt",
                        "bad topic",
                        "Ignoring a message whose topic is not UTF-8"
                    );
                    return None;
                };
                let ids = p
                    .properties
                    .as_ref()
                    .map(|pp| pp.subscription_identifiers.as_slice())
                    .unwrap_or_default();
                if conn.sub_ids
                    && !first_copy(&self.shared.wanted.lock(), &conn.usable, &topic, ids)
                {
                    // Another copy of the same message for an overlapping
                    // subscription: one OK must not confirm two commands.
                    bump(&c.duplicates_dropped, 1);
                    return None;
                }
                let msg = InMessage {
                    topic,
                    payload: p.payload,
                    retain: p.retain,
                };
                if let Err(e) = self.incoming.try_send(msg) {
                    bump(&c.incoming_dropped, 1);
                    if let mpsc::error::TrySendError::Full(m) = e {
                        ratelog!(
                            self.shared.log,
                            warn,
                            "mqtt",
                            "incoming full",
                            "Incoming queue full; dropped message on {}",
                            m.topic
                        );
                    }
                }
            }
            Event::Outgoing(Outgoing::Publish(pkid)) => self.on_wire(pkid, now),
            Event::Incoming(Packet::PubAck(ack)) => {
                let done = self.shared.session.lock().acknowledged(ack.pkid, now);
                if let Some(d) = done {
                    if matches!(
                        ack.reason,
                        PubAckReason::Success | PubAckReason::NoMatchingSubscribers
                    ) {
                        bump(&c.messages_published, 1);
                        debug!(target: "mqtt", "PUBACK {} for {} after {:?}", ack.pkid, d.msg.topic, d.latency);
                    } else {
                        // The broker took it and refused it (ACL, size, ...).
                        error!(target: "mqtt", "Broker {} refused the message to {}: {:?}", conn.addr, d.msg.topic, ack.reason);
                        bump(&c.messages_failed, 1);
                    }
                }
            }
            Event::Outgoing(Outgoing::PingReq) => {
                self.shared.session.lock().ping_sent(now);
            }
            Event::Incoming(Packet::PingResp(_)) => {
                self.shared.session.lock().ping_answered();
            }
            Event::Outgoing(Outgoing::Subscribe(pkid)) => {
                if let Some(p) = conn.sub_pending.iter_mut().find(|p| p.0.is_none()) {
                    p.0 = Some(pkid);
                }
            }
            Event::Incoming(Packet::SubAck(s)) => {
                if let Some(pos) = conn.sub_pending.iter().position(|p| p.0 == Some(s.pkid)) {
                    let (_, index) = conn.sub_pending.remove(pos).expect("index from position");
                    let ok = matches!(
                        s.return_codes.first(),
                        Some(SubscribeReasonCode::Success(_))
                    );
                    let wanted = self.shared.wanted.lock();
                    let filter = wanted.get(index).cloned().unwrap_or_default();
                    drop(wanted);
                    if !ok {
                        conn.usable[index] = false;
                        error!(target: "mqtt", "Broker {} refused the subscription to {filter}: {:?}",
                            conn.addr, s.return_codes.first());
                    }
                    self.shared.subscriptions.send_modify(|st| {
                        if ok {
                            st.active += 1;
                        } else {
                            st.refused.push(filter);
                        }
                    });
                }
            }
            Event::Incoming(Packet::Disconnect(d)) => {
                return Some(lost(&format!(
                    "broker sent DISCONNECT ({:?})",
                    d.reason_code
                )));
            }
            _ => {}
        }
        None
    }

    /// rumqttc put a publish on the wire as `pkid` (it reports publishes in
    /// the order they were requested); a QoS 0 message is done now.
    fn on_wire(&self, pkid: u16, now: Instant) {
        if self.shared.session.lock().packet_id(pkid, now).is_some() {
            bump(&self.shared.counters.messages_published, 1);
        }
    }

    /// Moves unacknowledged messages back to the outbox for the next broker.
    fn requeue_sent(&mut self) {
        let (n, discarded) = {
            let mut session = self.shared.session.lock();
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
            ratelog!(
                self.shared.log,
                warn,
                "mqtt",
                "stale messages",
                "Dropping stale message for {} (waited {:.1}s > message_max_age {:.1}s)",
                q.topic,
                q.created.elapsed().as_secs_f64(),
                max_age(q)
            );
        }
        for q in d.failed.iter().filter(|q| q.attempts > 0) {
            ratelog!(
                self.shared.log,
                error,
                "mqtt",
                "messages given up",
                "Giving up on message for {} after {} attempts (message_retry_limit {})",
                q.topic,
                q.attempts,
                self.s.retry_limit
            );
        }
        for q in &d.overflowed {
            ratelog!(
                self.shared.log,
                warn,
                "mqtt",
                "queue full",
                "Queue full (message_queue_size): dropped oldest message for {}",
                q.topic
            );
        }
        bump(&c.messages_expired, d.expired.len());
        bump(&c.messages_failed, d.failed.len());
        bump(&c.messages_dropped, d.overflowed.len());
    }

    fn health_check(&self, conn: &Conn) {
        let (queued, in_flight) = {
            let s = self.shared.session.lock();
            (s.queued(), s.in_flight())
        };
        if conn.poller.is_finished() {
            warn!(target: "mqtt", "Health check: poller for {} has stopped", conn.addr);
        } else {
            debug!(target: "mqtt", "Health check: connected to {}, {queued} queued, {in_flight} in flight",
                conn.addr);
        }
        for s in self.shared.log.lock().flush(Instant::now()) {
            warn!(target: "mqtt", "{} more `{}` warning(s) in the last minute were not logged", s.count, s.source);
        }
    }

    /// Probes brokers with higher priority than `current` in the background
    /// (not those held off: a broker in a takeover fight is left alone).
    fn spawn_probe(&self, current: usize) -> JoinHandle<Option<usize>> {
        let now = Instant::now();
        let brokers: Vec<(usize, BrokerConfig)> = (0..current)
            .filter(|i| !self.policy.is_held(*i, now))
            .map(|i| (i, self.s.brokers[i].clone()))
            .collect();
        let id = format!("{}-probe", self.s.client_id);
        let timeout = self.s.connection_timeout.min(Duration::from_secs(5));
        let hold = self.s.health_check_interval;
        self.tasks
            .spawn(tracing::Instrument::in_current_span(async move {
                for (i, b) in &brokers {
                    if probe::probe_steady(b, &id, timeout, hold).await.is_ok() {
                        return Some(*i);
                    }
                }
                None
            }))
    }

    /// Clean DISCONNECT (the broker then does not publish the last will),
    /// after `farewell` (published and acknowledged first), waiting at most
    /// until `deadline`.
    async fn disconnect(
        &mut self,
        mut conn: Conn,
        deadline: Option<Instant>,
        farewell: &[OwnMessage],
    ) {
        let mut wait = DISCONNECT_WAIT;
        if let Some(d) = deadline {
            wait = wait.min(d.saturating_duration_since(Instant::now()));
        }
        let sent = farewell
            .iter()
            .filter(|m| {
                conn.client
                    .try_publish(
                        m.topic.clone(),
                        QoS::AtLeastOnce,
                        m.retain,
                        m.payload.clone(),
                    )
                    .is_ok()
            })
            .count();
        if sent > 0 {
            // Nothing else is in flight now: these are the PUBACKs to wait for.
            let mut acked = 0;
            let _ = tokio::time::timeout(self.s.ack_timeout.min(wait), async {
                while acked < sent {
                    match conn.events.recv().await {
                        Some(Ok(Event::Incoming(Packet::PubAck(_)))) => acked += 1,
                        Some(Ok(_)) => {}
                        _ => break,
                    }
                }
            })
            .await;
        }
        if conn.client.try_disconnect().is_ok() {
            let _ = tokio::time::timeout(wait, async {
                while let Some(ev) = conn.events.recv().await {
                    match ev {
                        Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                        Ok(other) => {
                            let _ = self.on_event(&mut conn, other);
                        }
                    }
                }
            })
            .await;
        }
        conn.shutdown();
    }
}

fn lost(text: &str) -> PollError {
    PollError {
        text: text.to_string(),
        oversize: false,
        takeover: false,
        silent: false,
    }
}

/// A PUBLISH packet's size on the wire, generously estimated (fixed header,
/// topic, packet id, properties).
fn packet_size(topic: &str, payload: &Bytes) -> usize {
    16 + topic.len() + payload.len()
}

/// With overlapping subscriptions a broker may deliver one copy of a message
/// per matching subscription. Each copy carries the identifiers of the
/// subscriptions it is for; only the copy for the first usable matching
/// filter is taken. A message without identifiers is always taken.
pub(super) fn first_copy(wanted: &[String], usable: &[bool], topic: &str, ids: &[usize]) -> bool {
    if ids.is_empty() {
        return true;
    }
    let first = wanted
        .iter()
        .zip(usable)
        .position(|(f, ok)| *ok && topic::matches(f, topic));
    match first {
        Some(i) => ids.contains(&(i + 1)),
        None => true,
    }
}

fn qos(q: Qos) -> QoS {
    match q {
        Qos::AtMostOnce => QoS::AtMostOnce,
        Qos::AtLeastOnce => QoS::AtLeastOnce,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_copy_for_the_first_matching_filter_is_taken() {
        let wanted: Vec<String> = ["devices/+/status", "+/status", "room1/#"]
            .map(String::from)
            .to_vec();
        let all = [true, true, true];
        // room1/status matches +/status (id 2) and room1/# (id 3).
        assert!(first_copy(&wanted, &all, "room1/status", &[2]));
        assert!(!first_copy(&wanted, &all, "room1/status", &[3]));
        // One copy carrying both ids.
        assert!(first_copy(&wanted, &all, "room1/status", &[3, 2]));
        // Only room1/# matches.
        assert!(first_copy(&wanted, &all, "room1/light", &[3]));
        // A refused filter delivers nothing: the next one counts.
        assert!(first_copy(
            &wanted,
            &[true, false, true],
            "room1/status",
            &[3]
        ));
        // No identifiers: nothing to compare.
        assert!(first_copy(&wanted, &all, "room1/status", &[]));
    }
}
