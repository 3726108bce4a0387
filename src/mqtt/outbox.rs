//! The outbox: our own bounded FIFO of messages not yet acknowledged by a
//! broker. rumqttc forgets unacked publishes when it connects to a broker
//! without a session, so every message lives here until its PUBACK arrives
//! (seed 002 queue: `message_queue_size`, drop-oldest on overflow,
//! `message_retry_limit`; plus `message_max_age`: a show cue that is too old
//! is dropped, never sent late).

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use rumqttc::QoS;
use tokio::time::Instant;

/// Identifies one published message for its whole life.
pub type MessageId = u64;

/// How one message is published and how long it may wait.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PublishOptions {
    pub qos: QoS,
    pub retain: bool,
    /// Dropped instead of sent once it has waited this long.
    pub max_age: Option<Duration>,
    /// A newer queued message on the same topic replaces an unsent older one
    /// (for state snapshots where only the latest matters).
    pub coalesce: bool,
}

impl PublishOptions {
    /// A show cue: QoS 1, expires after `max_age`.
    pub fn cue(max_age: Duration) -> Self {
        PublishOptions {
            qos: QoS::AtLeastOnce,
            retain: false,
            max_age: Some(max_age),
            coalesce: false,
        }
    }
    /// A retained status/state message: only the newest matters, never expires.
    pub fn retained_state() -> Self {
        PublishOptions {
            qos: QoS::AtLeastOnce,
            retain: true,
            max_age: None,
            coalesce: true,
        }
    }
    /// QoS 1, never expires.
    pub fn reliable() -> Self {
        PublishOptions {
            qos: QoS::AtLeastOnce,
            retain: false,
            max_age: None,
            coalesce: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Queued {
    pub id: MessageId,
    pub topic: String,
    pub payload: Bytes,
    pub opts: PublishOptions,
    pub created: Instant,
    /// How many times it has been handed to a broker.
    pub attempts: u32,
}

impl Queued {
    pub fn is_expired(&self, now: Instant) -> bool {
        self.opts
            .max_age
            .is_some_and(|age| now.saturating_duration_since(self.created) > age)
    }
}

/// What happened to messages that left the outbox without being delivered.
#[derive(Debug, Default)]
pub struct Discarded {
    /// Pushed out by a newer message when the queue was full.
    pub overflowed: Vec<Queued>,
    /// Older than their `max_age`.
    pub expired: Vec<Queued>,
    /// Sent more than `message_retry_limit` + 1 times.
    pub failed: Vec<Queued>,
}

impl Discarded {
    pub fn is_empty(&self) -> bool {
        self.overflowed.is_empty() && self.expired.is_empty() && self.failed.is_empty()
    }
}

#[derive(Debug)]
pub struct Outbox {
    queue: VecDeque<Queued>,
    capacity: usize,
    retry_limit: u32,
    next_id: MessageId,
}

impl Outbox {
    pub fn new(capacity: usize, retry_limit: u32) -> Self {
        Outbox {
            queue: VecDeque::new(),
            capacity: capacity.max(1),
            retry_limit,
            next_id: 1,
        }
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
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

    /// The next message to send, skipping (and returning) expired ones.
    pub fn pop_ready(&mut self, now: Instant, expired: &mut Vec<Queued>) -> Option<Queued> {
        while let Some(q) = self.queue.pop_front() {
            if q.is_expired(now) {
                expired.push(q);
            } else {
                return Some(q);
            }
        }
        None
    }

    /// Puts back a message that could not be handed over (not counted as an attempt).
    pub fn unpop(&mut self, q: Queued) {
        self.queue.push_front(q);
    }

    /// Puts sent-but-unacknowledged messages back at the head, oldest first,
    /// for resending on the next connection. Messages past the retry limit
    /// are returned as failed; if the queue overflows, the oldest go.
    pub fn requeue_unacked(&mut self, mut sent: Vec<Queued>) -> Discarded {
        sent.sort_by_key(|q| q.id);
        let mut out = Discarded::default();
        for q in sent.into_iter().rev() {
            if q.attempts > self.retry_limit {
                out.failed.push(q);
            } else {
                self.queue.push_front(q);
            }
        }
        out.failed.reverse();
        out.overflowed = self.trim();
        out
    }

    /// Removes everything (shutdown without a broker).
    pub fn drain(&mut self) -> Vec<Queued> {
        self.queue.drain(..).collect()
    }

    fn trim(&mut self) -> Vec<Queued> {
        let mut dropped = Vec::new();
        while self.queue.len() > self.capacity {
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

    fn push(o: &mut Outbox, topic: &str, now: Instant) -> MessageId {
        o.push(
            topic.into(),
            Bytes::from_static(b"ON"),
            PublishOptions::cue(Duration::from_secs(5)),
            now,
        )
        .0
    }

    #[test]
    fn fifo_and_drop_oldest_on_overflow() {
        let now = Instant::now();
        let mut o = Outbox::new(2, 3);
        push(&mut o, "a", now);
        push(&mut o, "b", now);
        let (_, dropped) = o.push("c".into(), Bytes::new(), PublishOptions::reliable(), now);
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].topic, "a");
        let mut exp = Vec::new();
        assert_eq!(o.pop_ready(now, &mut exp).unwrap().topic, "b");
        assert_eq!(o.pop_ready(now, &mut exp).unwrap().topic, "c");
        assert!(o.pop_ready(now, &mut exp).is_none());
    }

    #[test]
    fn stale_cues_are_dropped_not_sent() {
        let t0 = Instant::now();
        let mut o = Outbox::new(10, 3);
        push(&mut o, "old", t0);
        o.push("state".into(), Bytes::new(), PublishOptions::reliable(), t0);
        let later = t0 + Duration::from_secs(6);
        let mut expired = Vec::new();
        let next = o.pop_ready(later, &mut expired).unwrap();
        assert_eq!(next.topic, "state", "messages without max_age never expire");
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].topic, "old");
        // Exactly at max_age it is still sent.
        push(&mut o, "edge", t0);
        assert_eq!(
            o.pop_ready(t0 + Duration::from_secs(5), &mut expired)
                .unwrap()
                .topic,
            "edge"
        );
    }

    #[test]
    fn unacked_go_back_to_the_head_in_order_until_retry_limit() {
        let now = Instant::now();
        let mut o = Outbox::new(10, 1);
        for t in ["a", "b", "c"] {
            push(&mut o, t, now);
        }
        let mut exp = Vec::new();
        let mut a = o.pop_ready(now, &mut exp).unwrap();
        let mut b = o.pop_ready(now, &mut exp).unwrap();
        a.attempts = 1;
        b.attempts = 2; // one more than the limit of 1 retry
        let d = o.requeue_unacked(vec![b, a]);
        assert_eq!(d.failed.len(), 1);
        assert_eq!(d.failed[0].topic, "b");
        let order: Vec<_> = std::iter::from_fn(|| o.pop_ready(now, &mut exp))
            .map(|q| q.topic)
            .collect();
        assert_eq!(order, ["a", "c"]);
    }

    #[test]
    fn coalescing_keeps_only_the_newest_unsent_state() {
        let now = Instant::now();
        let mut o = Outbox::new(10, 3);
        for p in ["1", "2", "3"] {
            o.push(
                "roomctl/r/state".into(),
                Bytes::from(p),
                PublishOptions::retained_state(),
                now,
            );
        }
        push(&mut o, "r/light", now);
        assert_eq!(o.len(), 2);
        let mut exp = Vec::new();
        assert_eq!(&o.pop_ready(now, &mut exp).unwrap().payload[..], b"3");
    }
}
