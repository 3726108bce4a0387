//! The device registry (seed 004 `mqtt_device_registry`): which ESP32s have
//! announced themselves on `devices/<id>/status`, when each was last heard
//! from, and whether it is online, offline or stale (online but silent for
//! longer than `devices.stale_after`).

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

pub use crate::events::{DeviceView, Presence};
use crate::events::{Event, EventBus};
use crate::mqtt::unix_now;

/// More distinct ids than this are ignored: a misbehaving client must not
/// grow the daemon's memory without bound.
pub const MAX_DEVICES: usize = 1024;

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct DeviceCounts {
    pub total: usize,
    pub online: usize,
    pub offline: usize,
    pub stale: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    #[error("device id must be non-empty without '/', '+' or '#' (got {0:?})")]
    BadId(String),
    #[error("unknown status {payload:?} from device {id} (expected online, offline or OK)")]
    UnknownStatus { id: String, payload: String },
    #[error("registry full ({MAX_DEVICES} devices); ignoring new device {0}")]
    Full(String),
}

struct Device {
    online: bool,
    status: String,
    last_seen: Instant,
    last_seen_wall: f64,
    messages: u64,
    /// What was last announced on the event bus.
    reported: Presence,
}

#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    devices: DashMap<String, Device>,
    stale_after: Duration,
    events: EventBus,
}

impl Registry {
    pub fn new(stale_after: Duration, events: EventBus) -> Self {
        Registry {
            inner: Arc::new(Inner {
                devices: DashMap::new(),
                stale_after,
                events,
            }),
        }
    }

    /// Records a `devices/<id>/status` message. `online` and `OK` mean alive.
    pub fn update(&self, id: &str, payload: &str) -> Result<Presence, RegistryError> {
        if !crate::topic::is_plain_level(id) {
            return Err(RegistryError::BadId(id.to_string()));
        }
        let p = payload.trim();
        let online = if p.eq_ignore_ascii_case("online") || p.eq_ignore_ascii_case("ok") {
            true
        } else if p.eq_ignore_ascii_case("offline") {
            false
        } else {
            return Err(RegistryError::UnknownStatus {
                id: id.to_string(),
                payload: payload.chars().take(64).collect(),
            });
        };
        debug!(target: "mqtt_devices", "Device {id} status: {p}");
        if !self.inner.devices.contains_key(id) && self.inner.devices.len() >= MAX_DEVICES {
            return Err(RegistryError::Full(id.to_string()));
        }
        let now = Instant::now();
        let mut entry = self
            .inner
            .devices
            .entry(id.to_string())
            .or_insert_with(|| Device {
                online,
                status: String::new(),
                last_seen: now,
                last_seen_wall: 0.0,
                messages: 0,
                reported: Presence::Offline,
            });
        let d = entry.value_mut();
        let was = if d.messages == 0 {
            None
        } else {
            Some(d.reported)
        };
        d.online = online;
        d.status = p.to_string();
        d.last_seen = now;
        d.last_seen_wall = unix_now();
        d.messages += 1;
        let presence = if online {
            Presence::Online
        } else {
            Presence::Offline
        };
        d.reported = presence;
        let view = self.view(id, d, now);
        drop(entry);
        if was != Some(presence) {
            match presence {
                Presence::Online => info!(target: "mqtt_devices", "Device {id} connected (online)"),
                Presence::Offline => {
                    info!(target: "mqtt_devices", "Device {id} disconnected (offline)")
                }
                Presence::Stale => {}
            }
            self.inner.events.publish(Event::Device(view));
        }
        Ok(presence)
    }

    fn presence(&self, d: &Device, now: Instant) -> Presence {
        if !d.online {
            Presence::Offline
        } else if now.saturating_duration_since(d.last_seen) > self.inner.stale_after {
            Presence::Stale
        } else {
            Presence::Online
        }
    }

    fn view(&self, id: &str, d: &Device, now: Instant) -> DeviceView {
        DeviceView {
            id: id.to_string(),
            presence: self.presence(d, now),
            status: d.status.clone(),
            last_seen: d.last_seen_wall,
            seconds_since_seen: now.saturating_duration_since(d.last_seen).as_secs_f64(),
            messages: d.messages,
        }
    }

    pub fn get(&self, id: &str) -> Option<DeviceView> {
        let now = Instant::now();
        self.inner.devices.get(id).map(|d| self.view(id, &d, now))
    }

    /// Every known device, sorted by id.
    pub fn all(&self) -> Vec<DeviceView> {
        let now = Instant::now();
        let mut v: Vec<_> = self
            .inner
            .devices
            .iter()
            .map(|e| self.view(e.key(), e.value(), now))
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Devices that are online and not stale (seed 004 `get_connected_devices`).
    pub fn connected(&self) -> Vec<DeviceView> {
        self.all()
            .into_iter()
            .filter(|d| d.presence == Presence::Online)
            .collect()
    }

    pub fn counts(&self) -> DeviceCounts {
        let now = Instant::now();
        let mut c = DeviceCounts::default();
        for e in self.inner.devices.iter() {
            c.total += 1;
            match self.presence(e.value(), now) {
                Presence::Online => c.online += 1,
                Presence::Offline => c.offline += 1,
                Presence::Stale => c.stale += 1,
            }
        }
        c
    }

    /// Forgets every device (seed 004 `clear_devices`).
    pub fn clear(&self) {
        self.inner.devices.clear();
    }

    /// Announces devices that went stale; runs until cancelled.
    pub async fn watch_stale(self, cancel: CancellationToken) {
        let period =
            (self.inner.stale_after / 4).clamp(Duration::from_millis(250), Duration::from_secs(5));
        let mut tick = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => self.sweep(),
            }
        }
    }

    /// One stale check over all devices.
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut changed = Vec::new();
        for mut e in self.inner.devices.iter_mut() {
            let p = self.presence(e.value(), now);
            if p != e.value().reported {
                e.value_mut().reported = p;
                if p == Presence::Stale {
                    warn!(target: "mqtt_devices", "Device {} is stale (nothing heard for {:.0}s)",
                        e.key(), now.saturating_duration_since(e.value().last_seen).as_secs_f64());
                }
                changed.push(self.view(e.key(), e.value(), now));
            }
        }
        for v in changed {
            self.inner.events.publish(Event::Device(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn online_offline_and_stale() {
        let bus = EventBus::new(64);
        let mut rx = bus.subscribe();
        let r = Registry::new(Duration::from_secs(60), bus);
        assert_eq!(r.update("esp32_01", "online"), Ok(Presence::Online));
        assert_eq!(r.update("esp32_02", "online"), Ok(Presence::Online));
        assert_eq!(r.update("esp32_02", "offline"), Ok(Presence::Offline));
        let c = r.counts();
        assert_eq!((c.total, c.online, c.offline, c.stale), (2, 1, 1, 0));
        assert_eq!(r.connected().len(), 1);
        // Three changes announced: 01 online, 02 online, 02 offline.
        for _ in 0..3 {
            assert!(matches!(rx.try_recv().unwrap(), Event::Device(_)));
        }
        assert!(rx.try_recv().is_err(), "a repeated status is not a change");

        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(r.get("esp32_01").unwrap().presence, Presence::Stale);
        r.sweep();
        match rx.try_recv().unwrap() {
            Event::Device(d) => {
                assert_eq!((d.id.as_str(), d.presence), ("esp32_01", Presence::Stale))
            }
            other => panic!("{other:?}"),
        }
        // OK counts as alive and brings it back.
        assert_eq!(r.update("esp32_01", "OK"), Ok(Presence::Online));
        assert_eq!(r.get("esp32_01").unwrap().presence, Presence::Online);
        assert!(
            matches!(rx.try_recv().unwrap(), Event::Device(d) if d.presence == Presence::Online)
        );
    }

    #[test]
    fn bad_input_is_rejected_without_state_change() {
        let r = Registry::new(Duration::from_secs(60), EventBus::new(16));
        assert!(matches!(
            r.update("esp32_01", "\u{0}garbage"),
            Err(RegistryError::UnknownStatus { .. })
        ));
        assert!(matches!(
            r.update("", "online"),
            Err(RegistryError::BadId(_))
        ));
        assert_eq!(r.all().len(), 0);
    }

    #[test]
    fn registry_is_bounded() {
        let r = Registry::new(Duration::from_secs(60), EventBus::new(16));
        for i in 0..MAX_DEVICES {
            r.update(&format!("d{i}"), "online").unwrap();
        }
        assert!(matches!(
            r.update("one-more", "online"),
            Err(RegistryError::Full(_))
        ));
        assert_eq!(r.update("d1", "offline"), Ok(Presence::Offline));
    }
}
