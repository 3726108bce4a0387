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
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
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
use super::session::Qos;
use super::{
    ConnectionState, ConnectionStatus, Control, InMessage, MqttSettings, Shared, bump, unix_now,
};
use crate::clock::after;
use crate::topic;

mod connection;
mod round;
use round::Flow;

const REQUEST_CAPACITY: usize = 128;
/// How long a clean DISCONNECT may take to go out.
const DISCONNECT_WAIT: Duration = Duration::from_millis(500);

/// What the poller forwards: an event, or why the connection ended.
type PollResult = Result<Event, PollError>;

#[derive(Debug, Clone)]
struct PollError {
    /// In words, for the log and the status.
    text: String,
    cause: Cause,
}

/// What about a lost connection the supervisor acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    /// The broker said another client took our client id (0x8E).
    TakenOver,
    /// A packet over the size limit broke the connection.
    Oversize,
    /// EOF or reset without DISCONNECT (see [`policy::SilentCloses`]).
    ClosedByPeer,
    /// Anything else.
    Other,
}

impl Cause {
    fn of(e: &rumqttc::v5::ConnectionError) -> Cause {
        if connect::is_takeover(e) {
            Cause::TakenOver
        } else if connect::is_oversize(e) {
            Cause::Oversize
        } else if connect::is_closed_by_peer(e) {
            Cause::ClosedByPeer
        } else {
            Cause::Other
        }
    }
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

        let round = sup.round(idx, &mut control, &cancel, &mut closing).await;
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

        sup.now_connected(&conn, last_index);
        last_index = Some(conn.index);
        let exit = sup
            .connected(&mut conn, &mut control, &cancel, &mut closing)
            .await;
        if sup.ended(conn, exit, closing.as_ref()).await == Flow::Stop {
            break;
        }
    }
    sup.leave(closing);
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
        let loss = match e.cause {
            Cause::TakenOver => Loss::TakenOver,
            Cause::ClosedByPeer if !closing && connect::still_listening(b).await => {
                Loss::SilentWhileListening
            }
            _ => Loss::Other,
        };
        let v = self
            .policy
            .lost(idx, lived, loss, Instant::now(), backoff::random_unit());
        if v.takeover && e.cause != Cause::TakenOver {
            e.text = policy::SUSPECTED_TAKEOVER.to_string();
        }
        warn!(target: "mqtt", "[FAILOVER] Connection to {addr} lost - {}", e.text);
        if e.cause == Cause::Oversize {
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
                        cause: Cause::of(&e),
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
}

fn lost(text: &str) -> PollError {
    PollError {
        text: text.to_string(),
        cause: Cause::Other,
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
