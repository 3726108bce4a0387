//! `GET /api/events`: Server-Sent Events from the event bus. Each event's
//! name is its kind (`device`, `feedback`, `scene`, `connection`, `media`);
//! the data is JSON. A reader that falls behind gets a `lagged` event and
//! should reload its state.
//!
//! Every stream also gets a `tick` at once and then every [`TICK`]
//! (`{"now": unix time, "every": seconds}`): a page that hears nothing for
//! a few ticks knows its link is dead even when the TCP connection still
//! looks open (Wi-Fi gone, controller powered off), and marks what it shows
//! as stale.
//!
//! At most `web.max_sse_clients` streams are open at once, and at most a
//! quarter of them (at least 2) from one address: a new stream from an
//! address at its share ends that address's oldest; a new one when all
//! are taken ends the oldest of the address with the most. A kiosk tablet
//! that reconnects in a loop, or a flood from one machine, never closes
//! another address's dashboard.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use futures::StreamExt;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::AppState;

/// The open streams, oldest first.
#[derive(Clone)]
pub(crate) struct Clients {
    inner: Arc<Mutex<ClientList>>,
}

struct ClientList {
    cap: usize,
    per_address: usize,
    next: u64,
    open: VecDeque<(u64, IpAddr, CancellationToken)>,
}

impl ClientList {
    /// Ends the oldest stream of `address`.
    fn end_oldest_of(&mut self, address: IpAddr, why: &str) {
        if let Some(i) = self.open.iter().position(|(_, a, _)| *a == address)
            && let Some((id, _, t)) = self.open.remove(i)
        {
            info!(target: "web", "{why}: closing the oldest event stream of {address} (#{id})");
            t.cancel();
        }
    }

    /// The address with the most streams.
    fn heaviest(&self) -> Option<IpAddr> {
        let mut n: std::collections::HashMap<IpAddr, usize> = std::collections::HashMap::new();
        for (_, a, _) in &self.open {
            *n.entry(*a).or_default() += 1;
        }
        // Among equals, the one whose oldest stream is oldest.
        self.open.iter().map(|(_, a, _)| *a).max_by_key(|a| {
            (
                n[a],
                std::cmp::Reverse(self.open.iter().position(|(_, b, _)| b == a)),
            )
        })
    }
}

impl Clients {
    pub(crate) fn new(cap: usize) -> Self {
        Clients {
            inner: Arc::new(Mutex::new(ClientList {
                cap: cap.max(1),
                per_address: (cap / 4).max(2).min(cap.max(1)),
                next: 0,
                open: VecDeque::new(),
            })),
        }
    }

    /// Registers a new stream, ending the oldest when full. The stream ends
    /// when the token fires; the guard unregisters it.
    fn join(&self, address: IpAddr) -> (CancellationToken, Leave) {
        let mut l = self.inner.lock();
        if l.open.iter().filter(|(_, a, _)| *a == address).count() >= l.per_address {
            let why = format!("{} event streams from one address", l.per_address);
            l.end_oldest_of(address, &why);
        }
        while l.open.len() >= l.cap {
            let Some(heavy) = l.heaviest() else { break };
            let why = format!("Too many event streams (web.max_sse_clients {})", l.cap);
            l.end_oldest_of(heavy, &why);
        }
        l.next += 1;
        let id = l.next;
        let token = CancellationToken::new();
        l.open.push_back((id, address, token.clone()));
        (
            token,
            Leave {
                clients: self.clone(),
                id,
            },
        )
    }

    /// How many streams are open.
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().open.len()
    }
}

/// Unregisters a stream when it is dropped (client gone or ended).
struct Leave {
    clients: Clients,
    id: u64,
}

impl Drop for Leave {
    fn drop(&mut self) {
        let mut l = self.clients.inner.lock();
        l.open.retain(|(id, _, _)| *id != self.id);
    }
}

/// How often a stream gets a `tick`.
pub const TICK: Duration = Duration::from_secs(5);

pub async fn events(
    State(s): State<AppState>,
    parts: axum::http::request::Parts,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let address = super::peer_ip(&parts.extensions);
    let hello = SseEvent::default()
        .event("hello")
        .json_data(s.room.state())
        .unwrap_or_default();
    let (evicted, leave) = s.sse.join(address);
    let live = BroadcastStream::new(s.room.events.subscribe()).map(|e| {
        Ok(match e {
            Ok(ev) => SseEvent::default()
                .event(ev.kind())
                .json_data(&ev)
                .unwrap_or_else(|_| SseEvent::default().event("error")),
            Err(BroadcastStreamRecvError::Lagged(n)) => {
                SseEvent::default().event("lagged").data(n.to_string())
            }
        })
    });
    let every = s.tick;
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ticks = tokio_stream::wrappers::IntervalStream::new(interval).map(move |_| {
        Ok(SseEvent::default()
            .event("tick")
            .json_data(serde_json::json!({
                "now": crate::mqtt::unix_now(),
                "every": every.as_secs_f64(),
            }))
            .unwrap_or_default())
    });
    let live = futures::stream::select(live, ticks);
    let shutdown = s.shutdown.clone();
    let stop = async move {
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = evicted.cancelled() => {}
        }
    };
    let stream = futures::stream::once(async move { Ok(hello) })
        .chain(live)
        .take_until(stop)
        .map(move |e| {
            // Lives as long as the stream.
            let _ = &leave;
            e
        });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(every * 3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn a_flood_from_one_address_closes_only_its_own_streams() {
        let c = Clients::new(32);
        let (desk, _d) = c.join(ip(1));
        let (tablet, _t) = c.join(ip(2));
        let flood: Vec<_> = (0..200).map(|_| c.join(ip(66))).collect();
        assert!(
            !desk.is_cancelled() && !tablet.is_cancelled(),
            "a staff dashboard was closed"
        );
        let open = flood.iter().filter(|(t, _)| !t.is_cancelled()).count();
        assert_eq!(open, 8, "one address keeps its share");
        // Full from many addresses: the heaviest gives way, not the desk.
        let many: Vec<_> = (100..124).map(|i| c.join(ip(i))).collect();
        assert!(!desk.is_cancelled() && !tablet.is_cancelled());
        assert_eq!(flood.iter().filter(|(t, _)| !t.is_cancelled()).count(), 6);
        assert_eq!(c.len(), 32);
        drop(many);
    }
}
