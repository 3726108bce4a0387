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
//! At most `web.max_sse_clients` streams are open at once: a new one ends
//! the oldest (a kiosk tablet that reconnects in a loop must not hold
//! connections and descriptors forever).

use std::collections::VecDeque;
use std::convert::Infallible;
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
    next: u64,
    open: VecDeque<(u64, CancellationToken)>,
}

impl Clients {
    pub(crate) fn new(cap: usize) -> Self {
        Clients {
            inner: Arc::new(Mutex::new(ClientList {
                cap: cap.max(1),
                next: 0,
                open: VecDeque::new(),
            })),
        }
    }

    /// Registers a new stream, ending the oldest when full. The stream ends
    /// when the token fires; the guard unregisters it.
    fn join(&self) -> (CancellationToken, Leave) {
        let mut l = self.inner.lock();
        while l.open.len() >= l.cap {
            if let Some((id, old)) = l.open.pop_front() {
                info!(target: "web", "Too many event streams (web.max_sse_clients {}): closing the oldest (#{id})", l.cap);
                old.cancel();
            }
        }
        l.next += 1;
        let id = l.next;
        let token = CancellationToken::new();
        l.open.push_back((id, token.clone()));
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
        l.open.retain(|(id, _)| *id != self.id);
    }
}

/// How often a stream gets a `tick`.
pub const TICK: Duration = Duration::from_secs(5);

pub async fn events(
    State(s): State<AppState>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let hello = SseEvent::default()
        .event("hello")
        .json_data(s.room.state())
        .unwrap_or_default();
    let (evicted, leave) = s.sse.join();
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
