//! `GET /api/events`: Server-Sent Events from the event bus. Each event's
//! name is its kind (`device`, `feedback`, `scene`, `connection`, `media`);
//! the data is JSON. A reader that falls behind gets a `lagged` event and
//! should reload its state.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use futures::StreamExt;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::AppState;

pub async fn events(
    State(s): State<AppState>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let hello = SseEvent::default()
        .event("hello")
        .json_data(s.room.state())
        .unwrap_or_default();
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
    let shutdown = s.shutdown.clone();
    let stream = futures::stream::once(async move { Ok(hello) })
        .chain(live)
        .take_until(async move { shutdown.cancelled().await });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
