//! What [`super::link`] needs of one client to hand its outbox to another:
//! a message meant for this broker only, and taking and adopting the
//! messages a lost connection left behind.

use bytes::Bytes;

use super::session::Queued;
use super::{ConnectionState, MessageId, MqttHandle, PublishError, PublishOptions, bump};

impl MqttHandle {
    /// Connected now.
    pub(super) fn is_connected(&self) -> bool {
        self.shared.status.borrow().state == ConnectionState::Connected
    }

    /// Queues a message for this client's broker only: it is never handed
    /// to another broker's connection (a per-broker copy, e.g. the
    /// retained state).
    pub(super) fn publish_to_stay(
        &self,
        topic: String,
        payload: Bytes,
        opts: PublishOptions,
    ) -> Result<MessageId, PublishError> {
        self.enqueue(topic, payload, opts, None, true)
    }

    /// While not connected: takes every message another broker may deliver
    /// (see [`super::session::Session::take_movable`]). Empty while
    /// connected. The state is read under the outbox's lock, which the
    /// supervisor holds to send: nothing taken is on a live connection.
    pub(super) fn take_movable(&self) -> Vec<Queued> {
        let mut session = self.shared.session.lock();
        if self.is_connected() {
            return Vec::new();
        }
        session.take_movable()
    }

    /// Takes messages another client gave up, ahead of its own queue;
    /// counts them as resent.
    pub(super) fn adopt(&self, msgs: Vec<Queued>) {
        let n = msgs.len();
        let dropped = self.shared.session.lock().adopt(msgs);
        for d in &dropped {
            tracing::warn!(target: "mqtt", "Queue full (message_queue_size): dropped oldest message for {}", d.topic);
        }
        let c = &self.shared.counters;
        bump(&c.messages_dropped, dropped.len());
        bump(&c.messages_resent, n);
        self.shared.wake.notify_one();
    }
}
