//! One live connection: the outbox pumped into it, the broker's events
//! (acknowledgements, subscriptions, incoming messages, losses), health
//! checks with their probe, and the clean disconnect.

use super::*;
use std::time::Duration;

use rumqttc::Outgoing;
use rumqttc::v5::Event;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{
    Filter, Packet, PubAckReason, PublishProperties, RetainForwardRule, SubscribeProperties,
    SubscribeReasonCode,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::config::BrokerConfig;
use crate::mqtt::session::{Discarded, Queued, Verdict};
use crate::mqtt::{Control, InMessage, OwnMessage, bump, probe};
use crate::ratelog;

/// At most this many ready events are handled per turn of the connection's
/// loop (a cue waiting to go out waits for at most one batch).
const READY_BATCH: usize = 64;

impl Supervisor {
    /// The connected phase.
    pub(super) async fn connected(
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
                crate::mqtt::PublishOptions {
                    retain: birth.retain,
                    ..crate::mqtt::PublishOptions::reliable()
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
                        if let Some(e) = self.on_ready_events(conn) {
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
    pub(super) fn subscribe_new(&self, conn: &mut Conn) {
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
    pub(super) fn pump(&mut self, conn: &Conn) {
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
            let sent = match (q.expiry_at(now), &q.properties) {
                (None, None) => conn.client.try_publish(
                    q.topic.clone(),
                    qos(q.opts.qos),
                    q.opts.retain,
                    q.payload.clone(),
                ),
                (e, props) => conn.client.try_publish_with_properties(
                    q.topic.clone(),
                    qos(q.opts.qos),
                    q.opts.retain,
                    q.payload.clone(),
                    PublishProperties {
                        message_expiry_interval: e,
                        user_properties: props.as_deref().map(<[_]>::to_vec).unwrap_or_default(),
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

    /// Handles what else the poller already has ready, up to
    /// [`READY_BATCH`] events: under a flood the loop's own bookkeeping
    /// (the session's deadlines, its timers, the select) is then done once
    /// per batch instead of once per message. `Some` ends the connection.
    fn on_ready_events(&mut self, conn: &mut Conn) -> Option<PollError> {
        for _ in 0..READY_BATCH {
            match conn.events.try_recv() {
                Ok(Ok(event)) => {
                    if let Some(e) = self.on_event(conn, event) {
                        return Some(e);
                    }
                }
                Ok(Err(e)) => return Some(e),
                Err(mpsc::error::TryRecvError::Empty) => return None,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    return Some(lost("event loop stopped"));
                }
            }
        }
        None
    }

    /// Handles one event from the poller; `Some` ends the connection.
    pub(super) fn on_event(&mut self, conn: &mut Conn, event: Event) -> Option<PollError> {
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
                let properties = p
                    .properties
                    .map(|pp| {
                        pp.user_properties
                            .into_iter()
                            .filter(|(k, v)| k.len() + v.len() <= 256)
                            .take(crate::mqtt::MAX_USER_PROPERTIES)
                            .collect()
                    })
                    .unwrap_or_default();
                let msg = InMessage {
                    topic,
                    payload: p.payload,
                    retain: p.retain,
                    properties,
                    broker: self.s.label + conn.index,
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
    pub(super) fn on_wire(&self, pkid: u16, now: Instant) {
        if self.shared.session.lock().packet_id(pkid, now).is_some() {
            bump(&self.shared.counters.messages_published, 1);
        }
    }

    /// Moves unacknowledged messages back to the outbox for the next broker.
    pub(super) fn requeue_sent(&mut self) {
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

    pub(super) fn report_discarded(&self, d: Discarded) {
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

    pub(super) fn health_check(&self, conn: &Conn) {
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
    pub(super) fn spawn_probe(&self, current: usize) -> JoinHandle<Option<usize>> {
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
    pub(super) async fn disconnect(
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
