//! One round of the supervisor's loop: an attempt, the new connection
//! counted, and what follows when it ends.

use super::*;
use crate::mqtt::{Control, bump};

/// What the supervisor does after a connection ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Flow {
    /// Connect again (to whichever broker the policy says).
    Continue,
    /// Done: closed or cancelled.
    Stop,
}

impl Supervisor {
    /// One connection attempt to broker `idx`, while control requests and
    /// cancellation are watched (a close request restarts the round with
    /// its deadline).
    pub(super) async fn round(
        &self,
        idx: usize,
        control: &mut mpsc::UnboundedReceiver<Control>,
        cancel: &CancellationToken,
        closing: &mut Option<Closing>,
    ) -> Round {
        let deadline = closing.as_ref().map(|c| c.deadline);
        let attempt = self.attempt(idx, deadline);
        tokio::pin!(attempt);
        loop {
            tokio::select! {
                c = &mut attempt => return match c {
                    Some(c) => Round::Connected(Box::new(c)),
                    None => Round::Failed,
                },
                _ = cancel.cancelled() => return Round::Stop,
                ctl = control.recv() => {
                    let was_closing = closing.is_some();
                    Closing::add(closing, ctl);
                    if !was_closing {
                        return Round::Restart;
                    }
                }
                _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    return Round::Stop;
                }
            }
        }
    }

    /// Counts a new connection (a failover when the broker changed) and
    /// says CONNECTED.
    pub(super) fn now_connected(&mut self, conn: &Conn, last_index: Option<usize>) {
        self.policy.connected(conn.index);
        let c = &self.shared.counters;
        c.consecutive_failures.store(0);
        bump(&c.total_connections, 1);
        if let Some(prev) = last_index {
            bump(&c.total_reconnections, 1);
            if prev != conn.index {
                bump(&c.failovers, 1);
                info!(target: "mqtt", "[FAILOVER] Now using broker {}/{}: {} (was {})",
                    conn.index + 1, self.s.brokers.len(), conn.addr, self.s.brokers[prev].addr());
            }
        }
        self.set_state(ConnectionState::Connected, Some(conn), None);
    }

    /// After the connected phase: a clean close, a cancel (no DISCONNECT,
    /// as a crash: the broker publishes the last will), a failback (a
    /// clean switch) or a loss (unacknowledged messages go back to the
    /// queue, the policy learns how long the connection lived).
    pub(super) async fn ended(
        &mut self,
        conn: Box<Conn>,
        exit: Exit,
        closing: Option<&Closing>,
    ) -> Flow {
        bump(&self.shared.counters.total_disconnections, 1);
        self.set_subscriptions(0, Vec::new());
        let lived = conn.since.elapsed();
        let deadline = closing.map(|c| c.deadline);
        match exit {
            Exit::Closed => {
                self.disconnect(*conn, deadline, &[]).await;
                Flow::Stop
            }
            Exit::Cancelled => {
                conn.shutdown();
                Flow::Stop
            }
            Exit::Failback(idx) => {
                info!(target: "mqtt", "[FAILOVER] Broker {}/{} ({}) is reachable again; switching back from {}",
                    idx + 1, self.s.brokers.len(), self.s.brokers[idx].addr(), conn.addr);
                let addr = conn.addr.clone();
                // What this client left retained there must not outlive it.
                let farewell = self.s.farewell.clone();
                self.disconnect(*conn, deadline, &farewell).await;
                debug!(target: "mqtt", "Left {addr} cleanly");
                self.requeue_sent();
                self.policy.failback(idx);
                Flow::Continue
            }
            Exit::Lost(e) => {
                let index = conn.index;
                conn.shutdown();
                self.requeue_sent();
                // Said at once: what follows may probe the broker first, and
                // whoever watches (every_broker's link) acts on this.
                self.set_state(ConnectionState::Reconnecting, None, Some(e.text.clone()));
                self.lost(index, lived, e, closing.is_some()).await;
                Flow::Continue
            }
        }
    }

    /// Leaving: whatever is still queued will not be delivered; closers
    /// learn how much.
    pub(super) fn leave(&self, closing: Option<Closing>) {
        let left = self.shared.session.lock().drain();
        if !left.is_empty() {
            warn!(target: "mqtt", "Stopping with {} undelivered message(s)", left.len());
        }
        self.set_state(ConnectionState::Disconnected, None, None);
        if let Some(c) = closing {
            for d in c.done {
                let _ = d.send(left.len());
            }
        }
    }
}
