//! The feedback tracker (seed 004 `mqtt_feedback_tracker`): every published
//! command that expects confirmation waits here, FIFO per feedback topic,
//! until a reply confirms it or its deadline passes. Results are logged
//! (`Feedback OK: room1/light (0.234s)`, `Feedback TIMEOUT: room1/light
//! (>1.000s)`), counted, kept in a bounded history and announced on the bus.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::config::FeedbackTopic;
use crate::events::{Event, EventBus};
pub use crate::events::{FeedbackRecord, Outcome};
use crate::mqtt::unix_now;

mod outcome;
mod reply;
pub use outcome::{FeedbackStats, Handled, Tracked};
pub use reply::{Reply, ReplyError, ReplyStatus};

/// At most this many commands wait per feedback topic; older ones time out
/// anyway, this only bounds memory if something publishes in a loop.
const MAX_PENDING_PER_TOPIC: usize = 1000;

struct Pending {
    id: u64,
    command_topic: String,
    message: String,
    feedback_topic: String,
    sent: Instant,
    deadline: Instant,
    timeout: Duration,
    scene: Option<String>,
    done: Option<oneshot::Sender<FeedbackRecord>>,
    /// The brokers a reply may come from, one bit each; 0: any.
    brokers: u64,
}

/// The bit of broker `b` in [`Pending::brokers`] (brokers past 63 share
/// the last one).
fn bit(b: usize) -> u64 {
    1 << b.min(63)
}

#[derive(Default)]
struct State {
    /// Keyed by feedback topic; oldest first.
    pending: HashMap<String, VecDeque<Pending>>,
    known: HashSet<String>,
    /// The other feedback topic form of each command topic → the command
    /// topic.
    elsewhere: HashMap<String, String>,
    /// Recent replies there (unix time, topic), oldest first.
    misdirected: VecDeque<(f64, String)>,
    history: VecDeque<FeedbackRecord>,
    next_id: u64,
    stats: FeedbackStats,
    latency_sum: f64,
    latency_n: u64,
    /// Settled (out of `pending`, in the history) but not announced yet:
    /// still counted as waiting, so nobody sees a result in neither place.
    announcing: usize,
}

impl State {
    fn pending_len(&self) -> usize {
        self.pending.values().map(VecDeque::len).sum()
    }
}

/// A command that left `pending` and is in the history, not yet announced.
struct Settled {
    rec: FeedbackRecord,
    done: Option<oneshot::Sender<FeedbackRecord>>,
}

/// Names the device that answers a command topic.
pub type OwnerLookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

struct Inner {
    state: Mutex<State>,
    /// Rate limit of the TIMEOUT/ERROR lines (an outage times out every
    /// cue: a few lines, then a count per minute).
    log: Mutex<crate::ratelog::RateLog>,
    wake: Notify,
    events: EventBus,
    topic: FeedbackTopic,
    room: String,
    history_cap: usize,
    owners: std::sync::OnceLock<OwnerLookup>,
    /// Told of every command sent and settled (set once, by the room).
    outputs: std::sync::OnceLock<crate::outputs::Outputs>,
}

/// Handle to the tracker. Cheap to clone.
#[derive(Clone)]
pub struct FeedbackTracker {
    inner: Arc<Inner>,
}

impl FeedbackTracker {
    /// A tracker for replies on `topic` (a template) in room `room`, keeping `history_cap` results.
    pub fn new(topic: FeedbackTopic, room: &str, history_cap: usize, events: EventBus) -> Self {
        FeedbackTracker {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                log: Mutex::new(crate::ratelog::RateLog::new(crate::ratelog::LogLimit {
                    burst: 20,
                    window: Duration::from_secs(60),
                })),
                wake: Notify::new(),
                events,
                topic,
                room: room.to_string(),
                history_cap: history_cap.max(1),
                owners: std::sync::OnceLock::new(),
                outputs: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Results name the device that owns the command topic, as `owners`
    /// tells (set once, by the room).
    pub fn set_owner_lookup(&self, owners: OwnerLookup) {
        let _ = self.inner.owners.set(owners);
    }

    /// Every command sent and settled changes `outputs` (set once, by the
    /// room).
    pub fn set_outputs(&self, outputs: crate::outputs::Outputs) {
        let _ = self.inner.outputs.set(outputs);
    }

    /// Where replies to `command_topic` arrive.
    pub fn feedback_topic_for(&self, command_topic: &str) -> String {
        self.inner
            .topic
            .for_command(command_topic, &self.inner.room)
    }

    /// Marks the feedback topic of `command_topic` as one to listen on; returns it.
    pub fn register(&self, command_topic: &str) -> String {
        let t = self.feedback_topic_for(command_topic);
        self.inner.state.lock().known.insert(t.clone());
        t
    }

    /// The standard feedback topic forms (`{prefix}/status`,
    /// `{topic}/feedback`) that `feedback.topic` does not use for
    /// `command_topic`: replies there are counted, to tell a firmware that
    /// answers on the other form. Returns them (to subscribe to).
    pub fn register_elsewhere(&self, command_topic: &str) -> Vec<String> {
        let mine = self.feedback_topic_for(command_topic);
        let mut out = Vec::new();
        let mut st = self.inner.state.lock();
        for form in [FeedbackTopic::DEFAULT, FeedbackTopic::PER_TOPIC] {
            let t = FeedbackTopic::new(form)
                .expect("standard forms are valid")
                .for_command(command_topic, &self.inner.room);
            if t != mine && !st.known.contains(&t) {
                st.elsewhere.insert(t.clone(), command_topic.to_string());
                out.push(t);
            }
        }
        out
    }

    /// When every command of `scene` since `since` (unix time) timed out
    /// while replies arrived on the other feedback topic form, what to
    /// change, in words.
    pub fn diagnose(&self, scene: &str, since: f64) -> Option<String> {
        let st = self.inner.state.lock();
        let ran: Vec<&FeedbackRecord> = st
            .history
            .iter()
            .filter(|r| r.scene.as_deref() == Some(scene) && r.at >= since)
            .collect();
        if ran.is_empty() || ran.iter().any(|r| r.result != Outcome::Timeout) {
            return None;
        }
        let mut topics: Vec<&str> = st
            .misdirected
            .iter()
            .filter(|(at, _)| *at >= since)
            .map(|(_, t)| t.as_str())
            .collect();
        if topics.is_empty() {
            return None;
        }
        let replies = topics.len();
        topics.sort_unstable();
        topics.dedup();
        let form = if topics.iter().all(|t| t.ends_with("/feedback")) {
            FeedbackTopic::PER_TOPIC
        } else {
            FeedbackTopic::DEFAULT
        };
        let shown: Vec<&str> = topics.iter().take(3).copied().collect();
        Some(format!(
            "every command of scene {scene} timed out ({n}), but {replies} repl{ies} arrived on {where_}{more}: the devices answer on another feedback topic; set feedback.topic: \"{form}\" (it is \"{now}\")",
            n = ran.len(),
            ies = if replies == 1 { "y" } else { "ies" },
            where_ = shown.join(", "),
            more = if topics.len() > 3 { ", ..." } else { "" },
            now = self.inner.topic.template(),
        ))
    }

    /// Replies may arrive on `topic`.
    pub fn is_feedback_topic(&self, topic: &str) -> bool {
        self.inner.state.lock().known.contains(topic)
    }

    /// Starts waiting for confirmation of a command published just now.
    pub fn track(
        &self,
        command_topic: &str,
        message: &str,
        timeout: Duration,
        scene: Option<&str>,
    ) -> Tracked {
        self.track_on(command_topic, message, timeout, scene, None)
    }

    /// [`FeedbackTracker::track`] for a command published on `broker`:
    /// only a reply heard on that broker confirms it (`None`: any).
    pub fn track_on(
        &self,
        command_topic: &str,
        message: &str,
        timeout: Duration,
        scene: Option<&str>,
        broker: Option<usize>,
    ) -> Tracked {
        let feedback_topic = self.feedback_topic_for(command_topic);
        let (tx, rx) = oneshot::channel();
        let now = Instant::now();
        let mut overflow = None;
        let id = {
            let mut guard = self.inner.state.lock();
            let st = &mut *guard;
            st.known.insert(feedback_topic.clone());
            st.next_id += 1;
            let id = st.next_id;
            let q = st.pending.entry(feedback_topic.clone()).or_default();
            let dropped = (q.len() >= MAX_PENDING_PER_TOPIC)
                .then(|| q.pop_front())
                .flatten();
            q.push_back(Pending {
                id,
                command_topic: command_topic.to_string(),
                message: message.to_string(),
                feedback_topic: feedback_topic.clone(),
                sent: now,
                deadline: crate::clock::after(now, timeout),
                timeout,
                scene: scene.map(String::from),
                done: Some(tx),
                brokers: broker.map_or(0, bit),
            });
            if let Some(p) = dropped {
                overflow = Some(self.settle(st, p, Outcome::Timeout, None, now));
            }
            id
        };
        if let Some(o) = self.inner.outputs.get() {
            o.sent(command_topic, message);
        }
        if let Some(settled) = overflow {
            self.announce(settled);
        }
        debug!(target: "mqtt_feedback", "Sent: {command_topic} -> expecting feedback on: {feedback_topic}");
        self.inner.wake.notify_one();
        Tracked {
            id,
            feedback_topic,
            result: rx,
        }
    }

    /// Broker `from`'s undelivered commands were handed to broker `to`:
    /// a reply to one of them may now come from either.
    pub fn moved(&self, from: usize, to: usize) {
        let mut st = self.inner.state.lock();
        for p in st.pending.values_mut().flatten() {
            if p.brokers & bit(from) != 0 {
                p.brokers |= bit(to);
            }
        }
    }

    /// Processes a message on `topic`; confirms the oldest matching pending command.
    pub fn handle(&self, topic: &str, payload: &str) -> Handled {
        self.handle_from(topic, payload, None)
    }

    /// [`FeedbackTracker::handle`] for a message heard on `broker`: it
    /// confirms only a command sent there.
    pub fn handle_from(&self, topic: &str, payload: &str, broker: Option<usize>) -> Handled {
        if !self.is_feedback_topic(topic) {
            return self.elsewhere(topic, payload);
        }
        let reply = match Reply::parse(payload) {
            Ok(r) => r,
            Err(e) => {
                self.inner.state.lock().stats.invalid += 1;
                return Handled::Invalid(e);
            }
        };
        let now = Instant::now();
        let outcome = match reply.status {
            ReplyStatus::Error => Outcome::Error,
            _ => Outcome::Ok,
        };
        let settled = {
            let mut guard = self.inner.state.lock();
            let st = &mut *guard;
            let from =
                |p: &Pending| p.brokers == 0 || broker.is_none_or(|b| p.brokers & bit(b) != 0);
            let accepts = |p: &Pending| reply.accepts(&p.command_topic, &p.message);
            let mut copy = false;
            let taken = st.pending.get_mut(topic).and_then(|q| {
                let pos = q.iter().position(|p| accepts(p) && from(p));
                // It answers a command sent to another broker only.
                copy = pos.is_none() && q.iter().any(accepts);
                q.remove(pos?)
            });
            match taken {
                Some(p) => self.settle(st, p, outcome, Some(payload.trim().to_string()), now),
                None if copy => {
                    st.stats.other_broker += 1;
                    drop(guard);
                    debug!(target: "mqtt_feedback", "Feedback on {topic} heard on another broker than its command went to (a bridge's copy): {}", payload.trim());
                    return Handled::Unmatched;
                }
                None => {
                    st.stats.unmatched += 1;
                    drop(guard);
                    debug!(target: "mqtt_feedback", "Feedback on {topic} with nothing pending: {}", payload.trim());
                    return Handled::Unmatched;
                }
            }
        };
        Handled::Confirmed(self.announce(settled))
    }

    /// A message on a topic that is not a feedback topic: a reply on the
    /// other form is counted.
    fn elsewhere(&self, topic: &str, payload: &str) -> Handled {
        let mut st = self.inner.state.lock();
        let Some(command_topic) = st.elsewhere.get(topic).cloned() else {
            return Handled::NotFeedback;
        };
        if Reply::parse(payload).is_err() {
            return Handled::NotFeedback;
        }
        st.stats.elsewhere += 1;
        if st.misdirected.len() >= 64 {
            st.misdirected.pop_front();
        }
        st.misdirected
            .push_back((crate::mqtt::unix_now(), topic.to_string()));
        drop(st);
        Handled::Elsewhere {
            expected: self.feedback_topic_for(&command_topic),
            command_topic,
        }
    }

    /// Settles `p` inside the caller's critical section: counts it and puts
    /// its record in the history while the state is still locked, so a
    /// reader sees the command either pending or in the history, never in
    /// neither. What may wait (the log line, the waiter, the bus) is left
    /// to [`FeedbackTracker::announce`], after the lock is released.
    fn settle(
        &self,
        st: &mut State,
        mut p: Pending,
        outcome: Outcome,
        reply: Option<String>,
        now: Instant,
    ) -> Settled {
        let latency = (outcome != Outcome::Timeout)
            .then(|| now.saturating_duration_since(p.sent).as_secs_f64());
        let device = self.inner.owners.get().and_then(|f| f(&p.command_topic));
        let rec = FeedbackRecord {
            id: p.id,
            command_topic: p.command_topic,
            message: p.message,
            feedback_topic: p.feedback_topic,
            result: outcome,
            latency,
            timeout: p.timeout.as_secs_f64(),
            reply,
            scene: p.scene.take(),
            device,
            at: unix_now(),
        };
        match outcome {
            Outcome::Ok => st.stats.ok += 1,
            Outcome::Error => st.stats.error += 1,
            Outcome::Timeout => st.stats.timeout += 1,
        }
        if let Some(l) = latency {
            st.latency_sum += l;
            st.latency_n += 1;
            st.stats.max_latency = Some(st.stats.max_latency.map_or(l, |m| m.max(l)));
        }
        if st.history.len() >= self.inner.history_cap {
            st.history.pop_front();
        }
        st.history.push_back(rec.clone());
        st.announcing += 1;
        Settled { rec, done: p.done }
    }

    /// Times out every command whose deadline has passed; returns how many.
    pub fn expire(&self, now: Instant) -> usize {
        // Taken out of `pending` and put into the history in one critical
        // section: a reader never sees a timed-out command in neither.
        let settled: Vec<Settled> = {
            let mut guard = self.inner.state.lock();
            let st = &mut *guard;
            let mut expired = Vec::new();
            for q in st.pending.values_mut() {
                // Not necessarily sorted by deadline (per-action timeouts).
                let mut i = 0;
                while i < q.len() {
                    if q[i].deadline <= now {
                        expired.extend(q.remove(i));
                    } else {
                        i += 1;
                    }
                }
            }
            st.pending.retain(|_, q| !q.is_empty());
            expired.sort_by_key(|p| (p.deadline, p.id));
            expired
                .into_iter()
                .map(|p| self.settle(st, p, Outcome::Timeout, None, now))
                .collect()
        };
        let n = settled.len();
        for s in settled {
            self.announce(s);
        }
        n
    }

    /// Logs a settled command, wakes its waiter and puts it on the bus
    /// (outside the state lock).
    fn announce(&self, settled: Settled) -> FeedbackRecord {
        let Settled { rec, done } = settled;
        let device = rec
            .device
            .as_ref()
            .map(|d| format!(" from device {d}"))
            .unwrap_or_default();
        // A confirmation per cue is debug; failures are warnings, a few a
        // minute and then a count.
        match rec.result {
            Outcome::Ok => debug!(target: "mqtt_feedback", "{}", rec.log_line()),
            _ => crate::ratelog!(
                self.inner.log,
                warn,
                "mqtt_feedback",
                "feedback failures",
                "{}{device}",
                rec.log_line()
            ),
        }
        if let Some(o) = self.inner.outputs.get() {
            o.settled(&rec);
        }
        if let Some(tx) = done {
            let _ = tx.send(rec.clone());
        }
        self.inner.events.publish(Event::Feedback(rec.clone()));
        let mut st = self.inner.state.lock();
        st.announcing = st.announcing.saturating_sub(1);
        rec
    }

    fn next_deadline(&self) -> Option<Instant> {
        let st = self.inner.state.lock();
        st.pending
            .values()
            .flat_map(|q| q.iter().map(|p| p.deadline))
            .min()
    }

    /// The timeout loop; runs until cancelled.
    pub async fn run(self, cancel: CancellationToken) {
        loop {
            let next = self.next_deadline();
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {
                    self.expire(Instant::now());
                }
            }
        }
    }

    /// Commands waiting for a reply.
    pub fn pending_count(&self) -> usize {
        let st = self.inner.state.lock();
        st.pending_len() + st.announcing
    }

    /// The newest `limit` results, newest first.
    pub fn history(&self, limit: usize) -> Vec<FeedbackRecord> {
        let st = self.inner.state.lock();
        st.history.iter().rev().take(limit).cloned().collect()
    }

    /// Counters and latencies.
    pub fn stats(&self) -> FeedbackStats {
        let st = self.inner.state.lock();
        let mut s = st.stats.clone();
        s.pending = st.pending_len();
        s.avg_latency = (st.latency_n > 0).then(|| st.latency_sum / st.latency_n as f64);
        s
    }
}

#[cfg(test)]
mod tests;
