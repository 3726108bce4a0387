//! The event bus: one tokio broadcast channel of typed events (device,
//! feedback, scene, connection, media changes). It feeds the dashboard's SSE
//! stream, the retained state topic and `roomctl play`'s report. Publishing
//! never blocks; a slow reader misses events, never the publisher.

use serde::Serialize;
use tokio::sync::broadcast;

use crate::feedback::FeedbackRecord;
use crate::media::MediaEvent;
use crate::mqtt::ConnectionStatus;
use crate::registry::DeviceView;
use crate::scene::SceneEvent;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum Event {
    Device(DeviceView),
    Feedback(FeedbackRecord),
    Scene(SceneEvent),
    Connection(ConnectionStatus),
    Media(MediaEvent),
}

impl Event {
    /// The SSE event name.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Device(_) => "device",
            Event::Feedback(_) => "feedback",
            Event::Scene(_) => "scene",
            Event::Connection(_) => "connection",
            Event::Media(_) => "media",
        }
    }
}

#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
}

impl EventBus {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(16));
        EventBus { tx }
    }

    pub fn publish(&self, e: Event) {
        // No subscribers is fine.
        let _ = self.tx.send(e);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new(1024)
    }
}
