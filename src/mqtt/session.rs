//! The delivery state of one MQTT client, as a pure synchronous state
//! machine: no I/O, no clock (every call that needs the time takes `now`),
//! so every rule is unit-tested without a broker.
//!
//! It owns our own outbox (seed 002 queue: `message_queue_size`,
//! drop-oldest on overflow, `message_retry_limit`; plus `message_max_age`:
//! a show cue that is too old is dropped, never sent late) and the
//! messages in flight on the current connection (packet ids, PUBACK
//! deadlines: a PUBACK later than `ack_timeout` is the seed 003 verdict
//! "broker dead"). rumqttc forgets unacknowledged publishes when it
//! connects to a broker without a session, so a message stays here until
//! its PUBACK arrives: on any loss the unacknowledged ones go back to the
//! head of the queue, oldest first, for the next broker. A message that was
//! acknowledged has left the session and can never be sent again; one that
//! was handed over more than `message_retry_limit` + 1 times is given up.
//!
//! The supervisor (`supervisor.rs`) keeps only the I/O and the choice of
//! broker; it feeds this machine what happened and acts on its answers.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::clock::after;

/// Identifies one published message for its whole life.
pub type MessageId = u64;

/// MQTT delivery guarantee of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qos {
    /// Fire and forget (no PUBACK, never resent).
    AtMostOnce,
    /// Acknowledged by PUBACK; resent after a loss.
    AtLeastOnce,
}

/// How one message is published and how long it may wait.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PublishOptions {
    /// Delivery guarantee.
    pub qos: Qos,
    /// The broker keeps it for later subscribers.
    pub retain: bool,
    /// Dropped instead of sent once it has waited this long.
    pub max_age: Option<Duration>,
    /// A newer queued message on the same topic replaces an unsent older one
    /// (for state snapshots where only the latest matters).
    pub coalesce: bool,
    /// MQTT 5 Message Expiry Interval: the broker drops it (also as a
    /// retained message) after this long.
    pub expiry: Option<Duration>,
}

impl PublishOptions {
    /// A show cue: QoS 1, expires after `max_age`.
    pub fn cue(max_age: Duration) -> Self {
        PublishOptions {
            qos: Qos::AtLeastOnce,
            retain: false,
            max_age: Some(max_age),
            coalesce: false,
            expiry: None,
        }
    }
    /// A retained status/state message: only the newest matters, never expires.
    pub fn retained_state() -> Self {
        PublishOptions {
            qos: Qos::AtLeastOnce,
            retain: true,
            max_age: None,
            coalesce: true,
            expiry: None,
        }
    }
    /// QoS 1, never expires.
    pub fn reliable() -> Self {
        PublishOptions {
            qos: Qos::AtLeastOnce,
            retain: false,
            max_age: None,
            coalesce: false,
            expiry: None,
        }
    }
}

/// A message in the session.
#[derive(Debug, Clone)]
pub struct Queued {
    /// Unique within the session.
    pub id: MessageId,
    /// Where it goes.
    pub topic: String,
    /// What it says.
    pub payload: Bytes,
    /// How.
    pub opts: PublishOptions,
    /// When it was published by the application.
    pub created: Instant,
    /// How many times it has been handed to a connection.
    pub attempts: u32,
}

impl Queued {
    /// The MQTT 5 Message Expiry Interval to send it with now, in whole
    /// seconds: its own `expiry`, or what is left of its `max_age` (so the
    /// broker does not deliver a cue late either, e.g. to a board that was
    /// offline a moment), whichever is shorter; at least one second (the
    /// protocol's unit).
    pub fn expiry_at(&self, now: Instant) -> Option<u32> {
        let left = self
            .opts
            .max_age
            .map(|age| age.saturating_sub(now.saturating_duration_since(self.created)));
        let e = match (self.opts.expiry, left) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some(e.as_secs().clamp(1, u64::from(u32::MAX)) as u32)
    }

    /// Whether it has waited longer than its `max_age`.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.opts
            .max_age
            .is_some_and(|age| now.saturating_duration_since(self.created) > age)
    }
}

/// A message handed to the current connection, waiting for its PUBACK.
#[derive(Debug, Clone)]
pub struct Inflight {
    /// The message.
    pub msg: Queued,
    /// When it was handed over.
    pub sent: Instant,
    /// The packet id, once the client has assigned one.
    pub pkid: Option<u16>,
}

/// A message the broker acknowledged: it has left the session.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// The message.
    pub msg: Queued,
    /// From hand-over to PUBACK (to the wire for QoS 0).
    pub latency: Duration,
}

/// What happened to messages that left the session without being delivered.
#[derive(Debug, Default)]
pub struct Discarded {
    /// Pushed out by a newer message when the queue was full.
    pub overflowed: Vec<Queued>,
    /// Older than their `max_age`.
    pub expired: Vec<Queued>,
    /// Handed over more than `message_retry_limit` + 1 times.
    pub failed: Vec<Queued>,
}

impl Discarded {
    /// Nothing was discarded.
    pub fn is_empty(&self) -> bool {
        self.overflowed.is_empty() && self.expired.is_empty() && self.failed.is_empty()
    }
}

/// The limits a session works with.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `message_queue_size`: messages waiting (in flight ones not counted).
    pub capacity: usize,
    /// `message_retry_limit`: resends after the first attempt.
    pub retry_limit: u32,
    /// A PUBACK or PINGRESP later than this, with the broker silent
    /// meanwhile, marks the broker dead.
    pub ack_timeout: Duration,
    /// An answer later than this marks the broker dead even while it
    /// sends other traffic (it talks but does not answer).
    pub answer_limit: Duration,
}

/// The delivery state machine.
#[derive(Debug)]
pub struct Session {
    queue: VecDeque<Queued>,
    inflight: VecDeque<Inflight>,
    limits: Limits,
    next_id: MessageId,
    /// The last time the broker acknowledged a message.
    last_ack: Option<Instant>,
    /// A PINGREQ on the current connection still waiting for its PINGRESP.
    ping: Option<Instant>,
    /// The last packet of any kind from the broker on this connection.
    heard: Option<Instant>,
}

/// Why the session declares the broker dead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A message's PUBACK is later than `ack_timeout`.
    NoPuback {
        /// The topic of the oldest overdue message.
        topic: String,
    },
    /// A PINGRESP is later than `ack_timeout` (a silent broker on an idle
    /// connection).
    NoPingResp,
}

impl Session {
    /// An empty session.
    pub fn new(limits: Limits) -> Self {
        Session {
            queue: VecDeque::new(),
            inflight: VecDeque::new(),
            limits: Limits {
                capacity: limits.capacity.max(1),
                ..limits
            },
            next_id: 1,
            last_ack: None,
            ping: None,
            heard: None,
        }
    }

    /// Messages waiting to be handed over.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Messages handed over and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.inflight.len()
    }

    /// Nothing waiting and nothing in flight.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.inflight.is_empty()
    }

    /// Appends a message; returns its id and whatever the full queue dropped.
    pub fn push(
        &mut self,
        topic: String,
        payload: Bytes,
        opts: PublishOptions,
        now: Instant,
    ) -> (MessageId, Vec<Queued>) {
        let q = self.admit(topic, payload, opts, now);
        let id = q.id;
        self.queue.push_back(q);
        (id, self.trim())
    }

    /// Puts a message at the head of the queue (goes out first).
    pub fn push_front(
        &mut self,
        topic: String,
        payload: Bytes,
        opts: PublishOptions,
        now: Instant,
    ) -> MessageId {
        let q = self.admit(topic, payload, opts, now);
        let id = q.id;
        self.queue.push_front(q);
        id
    }

    /// Numbers a new message and removes what it supersedes.
    fn admit(
        &mut self,
        topic: String,
        payload: Bytes,
        opts: PublishOptions,
        now: Instant,
    ) -> Queued {
        let id = self.next_id;
        self.next_id += 1;
        if opts.coalesce {
            self.queue
                .retain(|q| !(q.opts.coalesce && q.topic == topic && q.attempts == 0));
        }
        Queued {
            id,
            topic,
            payload,
            opts,
            created: now,
            attempts: 0,
        }
    }

    /// The next message to hand over, if fewer than `max_in_flight` are in
    /// flight; expired ones on the way are moved to `expired`.
    pub fn next_to_send(
        &mut self,
        now: Instant,
        max_in_flight: usize,
        expired: &mut Vec<Queued>,
    ) -> Option<Queued> {
        if self.inflight.len() >= max_in_flight {
            return None;
        }
        while let Some(q) = self.queue.pop_front() {
            if q.is_expired(now) {
                expired.push(q);
            } else {
                return Some(q);
            }
        }
        None
    }

    /// Puts back a message the client could not take (not an attempt).
    pub fn not_sent(&mut self, q: Queued) {
        self.queue.push_front(q);
    }

    /// The message was handed to the connection at `now`.
    pub fn sent(&mut self, mut q: Queued, now: Instant) {
        q.attempts += 1;
        self.inflight.push_back(Inflight {
            msg: q,
            sent: now,
            pkid: None,
        });
    }

    /// The client put the oldest handed-over message without a packet id
    /// on the wire as `pkid` (clients report publishes in request order). A
    /// QoS 0 message is done at that point and is returned.
    pub fn packet_id(&mut self, pkid: u16, now: Instant) -> Option<Delivered> {
        let pos = self.inflight.iter().position(|f| f.pkid.is_none())?;
        if self.inflight[pos].msg.opts.qos == Qos::AtMostOnce {
            let f = self.inflight.remove(pos).expect("index from position");
            return Some(Delivered {
                latency: now.saturating_duration_since(f.sent),
                msg: f.msg,
            });
        }
        self.inflight[pos].pkid = Some(pkid);
        None
    }

    /// A PUBACK for `pkid`, in any order. `None` when nothing in flight has
    /// that packet id (a stray or repeated PUBACK changes nothing).
    pub fn acknowledged(&mut self, pkid: u16, now: Instant) -> Option<Delivered> {
        let pos = self.inflight.iter().position(|f| f.pkid == Some(pkid))?;
        let f = self.inflight.remove(pos).expect("index from position");
        self.last_ack = Some(now);
        Some(Delivered {
            latency: now.saturating_duration_since(f.sent),
            msg: f.msg,
        })
    }

    /// The client sent a PINGREQ (every `keep_alive`).
    pub fn ping_sent(&mut self, now: Instant) {
        self.ping.get_or_insert(now);
    }

    /// The broker answered the PINGREQ.
    pub fn ping_answered(&mut self) {
        self.ping = None;
    }

    /// A packet of any kind arrived from the broker: it is alive, even if
    /// the answers we wait for are still queued behind what it sends.
    pub fn heard(&mut self, now: Instant) {
        self.heard = Some(now);
    }

    /// The oldest answer still outstanding: when it was asked for, and
    /// what it is.
    fn oldest_question(&self) -> Option<(Instant, Verdict)> {
        let msg = self.inflight.iter().min_by_key(|f| f.sent).map(|f| {
            (
                f.sent,
                Verdict::NoPuback {
                    topic: f.msg.topic.clone(),
                },
            )
        });
        let ping = self.ping.map(|p| (p, Verdict::NoPingResp));
        match (msg, ping) {
            (Some(m), Some(p)) => Some(if p.0 < m.0 { p } else { m }),
            (m, p) => m.or(p),
        }
    }

    /// When the broker is dead unless something arrives first: the oldest
    /// outstanding PUBACK or PINGRESP plus `ack_timeout`, counted from the
    /// last packet the broker sent (a flood of incoming messages can delay
    /// an answer on our side, which is no sign of a dead broker), and at
    /// the latest `answer_limit` after asking.
    pub fn deadline(&self) -> Option<Instant> {
        let asked = self.oldest_question()?.0;
        let silent_since = self.heard.map_or(asked, |h| h.max(asked));
        Some(
            after(silent_since, self.limits.ack_timeout)
                .min(after(asked, self.limits.answer_limit)),
        )
    }

    /// The seed 003 rule, applied to messages and pings alike: an answer
    /// later than `ack_timeout` while the broker is silent means the broker
    /// is dead (see [`Session::deadline`]).
    pub fn verdict(&self, now: Instant) -> Option<Verdict> {
        let deadline = self.deadline()?;
        (now >= deadline).then(|| self.oldest_question().expect("a deadline has a question").1)
    }

    /// The connection is gone: unacknowledged messages go back to the head
    /// of the queue, oldest first, for the next connection. Messages past
    /// the retry limit are given up; if the queue overflows, the oldest go.
    pub fn connection_lost(&mut self) -> Discarded {
        self.ping = None;
        self.heard = None;
        let mut back: Vec<Queued> = self.inflight.drain(..).map(|f| f.msg).collect();
        back.sort_by_key(|q| q.id);
        let mut out = Discarded::default();
        for q in back.into_iter().rev() {
            if q.attempts > self.limits.retry_limit {
                out.failed.push(q);
            } else {
                self.queue.push_front(q);
            }
        }
        out.failed.reverse();
        out.overflowed = self.trim();
        out
    }

    /// How long delivery has been stuck: something is waiting or in flight
    /// and nothing was acknowledged since the oldest of it was published.
    /// `None` when idle or moving.
    pub fn stuck_for(&self, now: Instant) -> Option<Duration> {
        let oldest = self
            .queue
            .iter()
            .chain(self.inflight.iter().map(|f| &f.msg))
            .map(|q| q.created)
            .min()?;
        let since = self.last_ack.map_or(oldest, |a| a.max(oldest));
        Some(now.saturating_duration_since(since))
    }

    /// Removes everything (the client stops).
    pub fn drain(&mut self) -> Vec<Queued> {
        let mut all: Vec<Queued> = self.inflight.drain(..).map(|f| f.msg).collect();
        all.extend(self.queue.drain(..));
        all
    }

    fn trim(&mut self) -> Vec<Queued> {
        let mut dropped = Vec::new();
        while self.queue.len() > self.limits.capacity {
            if let Some(q) = self.queue.pop_front() {
                dropped.push(q);
            }
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACK: Duration = Duration::from_millis(500);
    const LIMIT: Duration = Duration::from_secs(10);

    fn session(capacity: usize, retry_limit: u32) -> Session {
        Session::new(Limits {
            capacity,
            retry_limit,
            ack_timeout: ACK,
            answer_limit: LIMIT,
        })
    }

    fn cue(s: &mut Session, topic: &str, now: Instant) -> MessageId {
        s.push(
            topic.into(),
            Bytes::from_static(b"ON"),
            PublishOptions::cue(Duration::from_secs(5)),
            now,
        )
        .0
    }

    /// Hands over everything ready, assigning packet ids from `first_pkid`.
    fn send_all(s: &mut Session, now: Instant, first_pkid: u16) -> Vec<String> {
        let mut out = Vec::new();
        let mut exp = Vec::new();
        let mut pkid = first_pkid;
        while let Some(q) = s.next_to_send(now, 64, &mut exp) {
            out.push(q.topic.clone());
            s.sent(q, now);
            assert!(s.packet_id(pkid, now).is_none());
            pkid += 1;
        }
        out
    }

    #[test]
    fn fifo_and_drop_oldest_on_overflow() {
        let now = Instant::now();
        let mut s = session(2, 3);
        cue(&mut s, "a", now);
        cue(&mut s, "b", now);
        let (_, dropped) = s.push("c".into(), Bytes::new(), PublishOptions::reliable(), now);
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].topic, "a");
        assert_eq!(send_all(&mut s, now, 1), ["b", "c"]);
    }

    #[test]
    fn a_cue_carries_what_is_left_of_its_max_age_as_its_expiry() {
        let t0 = Instant::now();
        let q = |opts| Queued {
            id: 1,
            topic: "room1/light".into(),
            payload: Bytes::from_static(b"ON"),
            opts,
            created: t0,
            attempts: 0,
        };
        let cue = q(PublishOptions::cue(Duration::from_secs(5)));
        assert_eq!(cue.expiry_at(t0), Some(5));
        assert_eq!(cue.expiry_at(t0 + Duration::from_millis(1300)), Some(3));
        assert_eq!(
            cue.expiry_at(t0 + Duration::from_millis(4900)),
            Some(1),
            "at least 1 s"
        );
        assert_eq!(q(PublishOptions::reliable()).expiry_at(t0), None);
        let state = q(PublishOptions {
            expiry: Some(Duration::from_secs(90)),
            ..PublishOptions::retained_state()
        });
        assert_eq!(state.expiry_at(t0 + Duration::from_secs(30)), Some(90));
        let both = q(PublishOptions {
            expiry: Some(Duration::from_secs(2)),
            ..PublishOptions::cue(Duration::from_secs(5))
        });
        assert_eq!(both.expiry_at(t0), Some(2));
    }

    #[test]
    fn stale_cues_are_dropped_at_their_max_age_not_sent() {
        let t0 = Instant::now();
        let mut s = session(10, 3);
        cue(&mut s, "old", t0);
        s.push("state".into(), Bytes::new(), PublishOptions::reliable(), t0);
        let mut expired = Vec::new();
        let next = s
            .next_to_send(t0 + Duration::from_secs(6), 64, &mut expired)
            .unwrap();
        assert_eq!(next.topic, "state", "messages without max_age never expire");
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].topic, "old");
        // Exactly at max_age it is still sent.
        cue(&mut s, "edge", t0);
        let mut none = Vec::new();
        let q = s
            .next_to_send(t0 + Duration::from_secs(5), 64, &mut none)
            .unwrap();
        assert_eq!(q.topic, "edge");
        assert!(none.is_empty());
    }

    #[test]
    fn the_ack_timeout_verdict_comes_at_the_deadline_of_the_oldest() {
        let t0 = Instant::now();
        let mut s = session(10, 3);
        cue(&mut s, "a", t0);
        send_all(&mut s, t0, 1);
        let t1 = t0 + Duration::from_millis(200);
        cue(&mut s, "b", t1);
        send_all(&mut s, t1, 2);
        assert_eq!(s.deadline(), Some(t0 + ACK));
        assert_eq!(s.verdict(t0 + ACK - Duration::from_millis(1)), None);
        assert_eq!(
            s.verdict(t0 + ACK),
            Some(Verdict::NoPuback { topic: "a".into() })
        );
        // Once `a` is acknowledged, `b` sets the deadline.
        let d = s.acknowledged(1, t0 + Duration::from_millis(300)).unwrap();
        assert_eq!(d.msg.topic, "a");
        assert_eq!(d.latency, Duration::from_millis(300));
        assert_eq!(s.deadline(), Some(t1 + ACK));
        assert_eq!(s.verdict(t0 + ACK), None);
        s.acknowledged(2, t1).unwrap();
        assert_eq!(s.deadline(), None);
        assert!(s.is_idle());
    }

    #[test]
    fn out_of_order_and_stray_pubacks() {
        let t0 = Instant::now();
        let mut s = session(10, 3);
        for t in ["a", "b", "c"] {
            cue(&mut s, t, t0);
        }
        send_all(&mut s, t0, 7);
        assert_eq!(s.acknowledged(9, t0).unwrap().msg.topic, "c");
        assert_eq!(s.acknowledged(7, t0).unwrap().msg.topic, "a");
        assert!(s.acknowledged(9, t0).is_none(), "a repeated PUBACK");
        assert!(s.acknowledged(42, t0).is_none(), "a stray PUBACK");
        assert_eq!(s.in_flight(), 1);
        assert_eq!(
            s.verdict(t0 + ACK),
            Some(Verdict::NoPuback { topic: "b".into() })
        );
    }

    #[test]
    fn requeue_keeps_order_and_never_resends_what_was_acknowledged() {
        let t0 = Instant::now();
        let mut s = session(10, 3);
        for t in ["a", "b", "c", "d"] {
            cue(&mut s, t, t0);
        }
        // a, b, c go out; d is still queued; b is acknowledged.
        let mut exp = Vec::new();
        for pkid in 1..=3 {
            let q = s.next_to_send(t0, 64, &mut exp).unwrap();
            s.sent(q, t0);
            s.packet_id(pkid, t0);
        }
        s.acknowledged(2, t0).unwrap();
        let d = s.connection_lost();
        assert!(d.is_empty());
        assert_eq!(s.in_flight(), 0);
        assert_eq!(send_all(&mut s, t0, 1), ["a", "c", "d"]);
    }

    #[test]
    fn resends_are_bounded_by_the_retry_limit() {
        let t0 = Instant::now();
        let mut s = session(10, 2);
        cue(&mut s, "a", t0);
        let mut sends = 0;
        loop {
            if send_all(&mut s, t0, 1).is_empty() {
                break;
            }
            sends += 1;
            let d = s.connection_lost();
            if !d.failed.is_empty() {
                assert_eq!(d.failed[0].topic, "a");
                assert_eq!(d.failed[0].attempts, 3);
                break;
            }
        }
        assert_eq!(
            sends, 3,
            "the first attempt and message_retry_limit resends"
        );
        assert!(s.is_idle());
    }

    #[test]
    fn messages_not_taken_by_the_client_are_not_attempts() {
        let t0 = Instant::now();
        let mut s = session(10, 0);
        cue(&mut s, "a", t0);
        let mut exp = Vec::new();
        let q = s.next_to_send(t0, 64, &mut exp).unwrap();
        s.not_sent(q);
        let q = s.next_to_send(t0, 64, &mut exp).unwrap();
        assert_eq!(q.attempts, 0);
        s.sent(q, t0);
        // With no retries allowed, the one real attempt is all it gets.
        let d = s.connection_lost();
        assert_eq!(d.failed.len(), 1);
        assert_eq!(d.failed[0].attempts, 1);
    }

    #[test]
    fn in_flight_is_limited() {
        let t0 = Instant::now();
        let mut s = session(10, 3);
        for t in ["a", "b", "c"] {
            cue(&mut s, t, t0);
        }
        let mut exp = Vec::new();
        let q = s.next_to_send(t0, 2, &mut exp).unwrap();
        s.sent(q, t0);
        let q = s.next_to_send(t0, 2, &mut exp).unwrap();
        s.sent(q, t0);
        assert!(s.next_to_send(t0, 2, &mut exp).is_none());
        assert_eq!(s.queued(), 1);
    }

    #[test]
    fn qos0_is_done_when_it_has_a_packet_id() {
        let t0 = Instant::now();
        let mut s = session(10, 3);
        let opts = PublishOptions {
            qos: Qos::AtMostOnce,
            ..PublishOptions::reliable()
        };
        s.push("fire".into(), Bytes::new(), opts, t0);
        let mut exp = Vec::new();
        let q = s.next_to_send(t0, 64, &mut exp).unwrap();
        s.sent(q, t0);
        assert_eq!(s.packet_id(0, t0).unwrap().msg.topic, "fire");
        assert!(s.is_idle());
    }

    #[test]
    fn requeued_messages_past_the_queue_size_drop_the_oldest() {
        let t0 = Instant::now();
        let mut s = session(2, 3);
        cue(&mut s, "a", t0);
        cue(&mut s, "b", t0);
        send_all(&mut s, t0, 1);
        cue(&mut s, "c", t0);
        cue(&mut s, "d", t0);
        let d = s.connection_lost();
        let topics: Vec<_> = d.overflowed.iter().map(|q| q.topic.as_str()).collect();
        assert_eq!(topics, ["a", "b"]);
        assert_eq!(send_all(&mut s, t0, 1), ["c", "d"]);
    }

    #[test]
    fn coalescing_keeps_only_the_newest_unsent_state() {
        let now = Instant::now();
        let mut s = session(10, 3);
        for p in ["1", "2", "3"] {
            s.push(
                "roomctl/r/state".into(),
                Bytes::from(p),
                PublishOptions::retained_state(),
                now,
            );
        }
        cue(&mut s, "r/light", now);
        assert_eq!(s.queued(), 2);
        let mut exp = Vec::new();
        assert_eq!(
            &s.next_to_send(now, 64, &mut exp).unwrap().payload[..],
            b"3"
        );
    }

    #[test]
    fn stuck_means_waiting_without_any_acknowledgement() {
        let t0 = Instant::now();
        let mut s = session(10, 3);
        assert_eq!(s.stuck_for(t0), None, "idle is not stuck");
        cue(&mut s, "a", t0);
        assert_eq!(
            s.stuck_for(t0 + Duration::from_secs(2)),
            Some(Duration::from_secs(2))
        );
        send_all(&mut s, t0, 1);
        cue(&mut s, "b", t0);
        s.acknowledged(1, t0 + Duration::from_secs(1));
        assert_eq!(
            s.stuck_for(t0 + Duration::from_secs(3)),
            Some(Duration::from_secs(2)),
            "counted from the last acknowledgement"
        );
    }

    #[test]
    fn a_broker_that_keeps_talking_is_not_dead_until_the_answer_limit() {
        let t0 = Instant::now();
        let mut s = session(10, 3);
        cue(&mut s, "a", t0);
        send_all(&mut s, t0, 1);
        // An incoming flood: packets keep arriving, the PUBACK is queued
        // behind them.
        let mut t = t0;
        while t < t0 + Duration::from_secs(3) {
            t += Duration::from_millis(100);
            s.heard(t);
            assert_eq!(s.verdict(t), None, "alive at {:?}", t - t0);
        }
        // Then silence: dead ack_timeout after the last packet.
        assert_eq!(s.deadline(), Some(t + ACK));
        assert_eq!(s.verdict(t + ACK - Duration::from_millis(1)), None);
        assert!(matches!(s.verdict(t + ACK), Some(Verdict::NoPuback { .. })));
        // A broker that talks forever but never answers is dead at the limit.
        let mut s = session(10, 3);
        cue(&mut s, "a", t0);
        send_all(&mut s, t0, 1);
        s.heard(t0 + LIMIT);
        assert_eq!(s.deadline(), Some(t0 + LIMIT));
        assert!(s.verdict(t0 + LIMIT).is_some());
    }

    #[test]
    fn an_unanswered_ping_on_an_idle_connection_is_a_verdict() {
        let t0 = Instant::now();
        let mut s = session(10, 3);
        s.ping_sent(t0);
        s.ping_sent(t0 + Duration::from_millis(100)); // still the first one
        assert_eq!(s.deadline(), Some(t0 + ACK));
        assert_eq!(s.verdict(t0 + ACK - Duration::from_millis(1)), None);
        assert_eq!(s.verdict(t0 + ACK), Some(Verdict::NoPingResp));
        s.ping_answered();
        assert_eq!(s.verdict(t0 + ACK), None);
        assert_eq!(s.deadline(), None);
        // A new connection starts without an outstanding ping.
        s.ping_sent(t0);
        s.connection_lost();
        assert_eq!(s.deadline(), None);
    }
}
