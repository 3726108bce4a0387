//! The device registry (seed 004 `mqtt_device_registry`): which ESP32s have
//! announced themselves on `devices/<id>/status`, when each was last heard
//! from, and whether it is online, offline or stale (online but silent for
//! longer than `devices.stale_after`).
//!
//! Devices the config knows (`devices.known`) are listed from the start,
//! never forgotten, and name the device that owns a command topic. Unknown
//! ids are kept up to [`MAX_UNKNOWN_DEVICES`]; past that the least recently
//! seen unknown one is forgotten, so a flood of made-up ids can neither grow
//! memory nor hide a real device that comes online later. With
//! `devices.known_only` unknown ids are ignored altogether. Either way they
//! are counted and logged rate-limited.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::DevicesConfig;
pub use crate::events::{DeviceView, Presence};
use crate::events::{Event, EventBus};
use crate::mqtt::unix_now;
use crate::ratelog::{LogLimit, RateLog, Verdict};

/// Unknown ids kept at most; the least recently seen one is forgotten to
/// make room for a new one.
pub const MAX_UNKNOWN_DEVICES: usize = 1024;

/// Command topics one device may announce.
pub const MAX_CHANNELS: usize = 64;

/// How long ignored unknown ids keep health degraded.
const IGNORED_RECENTLY: Duration = Duration::from_secs(600);

/// Device counts for the API, health, metrics and the state topic.
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct DeviceCounts {
    /// Devices listed (known ones included before they speak).
    pub total: usize,
    /// Online and heard from recently.
    pub online: usize,
    /// Offline, or known and never seen.
    pub offline: usize,
    /// Online but silent for longer than `stale_after`.
    pub stale: usize,
    /// Unknown ids ignored (`known_only`) or forgotten to make room, since
    /// start.
    pub unknown_ignored: u64,
}

/// Why a status message changed nothing.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    /// Not one topic level.
    #[error("device id must be non-empty without '/', '+' or '#' (got {0:?})")]
    BadId(String),
    /// Not `online`, `offline` or `OK`.
    #[error("unknown status {payload:?} from device {id} (expected online, offline or OK)")]
    UnknownStatus {
        /// The device.
        id: String,
        /// What it said (shortened).
        payload: String,
    },
    /// `devices.known_only` and the id is not in `devices.known`.
    #[error("device {0} is not in devices.known (devices.known_only is set)")]
    NotKnown(String),
    /// A channel announcement from a device that never said its status.
    #[error("device {0} announced its channels before its status")]
    NotListed(String),
    /// A channel announcement that is not a list of topics.
    #[error("bad channel list: {0}")]
    BadChannels(String),
}

struct Device {
    online: bool,
    status: String,
    last_seen: Instant,
    last_seen_wall: f64,
    messages: u64,
    known: bool,
    /// Position in the unknown-device LRU order.
    seq: u64,
    /// What was last announced on the event bus.
    reported: Option<Presence>,
    /// Command topics it says it answers.
    channels: Vec<String>,
    /// The broker it is heard on.
    placement: Placement,
}

struct State {
    devices: HashMap<String, Device>,
    /// Unknown devices, least recently seen first (by `seq`).
    unknown: BTreeMap<u64, String>,
    seq: u64,
    ignored: u64,
    last_ignored: Option<Instant>,
    log: RateLog,
}

struct Inner {
    state: Mutex<State>,
    stale_after: Duration,
    known_only: bool,
    /// Command topic → the device that answers it.
    owners: HashMap<String, String>,
    events: EventBus,
    /// `host:port` of each broker, for the views (set once, by the room).
    brokers: std::sync::OnceLock<Vec<String>>,
}

/// The registry handle. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

impl Registry {
    /// An empty registry with no known devices.
    pub fn new(stale_after: Duration, events: EventBus) -> Self {
        Self::from_config(
            &DevicesConfig {
                stale_after,
                ..DevicesConfig::default()
            },
            events,
        )
    }

    /// A registry listing the config's known devices.
    pub fn from_config(cfg: &DevicesConfig, events: EventBus) -> Self {
        let now = Instant::now();
        let devices = cfg
            .known
            .keys()
            .map(|id| {
                (
                    id.clone(),
                    Device {
                        online: false,
                        status: String::new(),
                        last_seen: now,
                        last_seen_wall: 0.0,
                        messages: 0,
                        known: true,
                        seq: 0,
                        reported: None,
                        channels: Vec::new(),
                        placement: Placement::default(),
                    },
                )
            })
            .collect();
        let owners = cfg
            .known
            .iter()
            .flat_map(|(id, topics)| topics.iter().map(move |t| (t.clone(), id.clone())))
            .collect();
        Registry {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    devices,
                    unknown: BTreeMap::new(),
                    seq: 0,
                    ignored: 0,
                    last_ignored: None,
                    log: RateLog::new(LogLimit::default()),
                }),
                stale_after: cfg.stale_after,
                known_only: cfg.known_only,
                owners,
                events,
                brokers: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Names the brokers (`host:port`, in the configured order) that
    /// [`Registry::update_on`] numbers.
    pub fn set_broker_names(&self, names: Vec<String>) {
        let _ = self.inner.brokers.set(names);
    }

    fn broker_name(&self, i: usize) -> String {
        self.inner
            .brokers
            .get()
            .and_then(|b| b.get(i).cloned())
            .unwrap_or_else(|| format!("broker {}", i + 1))
    }

    /// The broker the device that answers `command_topic` was last heard
    /// on.
    pub fn broker_for(&self, command_topic: &str) -> Option<usize> {
        let st = self.inner.state.lock();
        let device = match self.inner.owners.get(command_topic) {
            Some(id) => st.devices.get(id),
            None => st
                .devices
                .values()
                .find(|d| d.channels.iter().any(|c| c == command_topic)),
        };
        device?.placement.broker
    }

    /// Records a `devices/<id>/status` message. `online` and `OK` mean alive.
    pub fn update(&self, id: &str, payload: &str) -> Result<Presence, RegistryError> {
        self.update_on(id, payload, None)
    }

    /// [`Registry::update`] for a message heard on `broker` (its index in
    /// the configured list): the device is on that broker now.
    pub fn update_on(
        &self,
        id: &str,
        payload: &str,
        broker: Option<usize>,
    ) -> Result<Presence, RegistryError> {
        if !crate::topic::is_plain_level(id) {
            return Err(RegistryError::BadId(id.chars().take(64).collect()));
        }
        let p = payload.trim();
        let online = if p.eq_ignore_ascii_case("online") || p.eq_ignore_ascii_case("ok") {
            true
        } else if p.eq_ignore_ascii_case("offline") {
            false
        } else {
            return Err(RegistryError::UnknownStatus {
                id: id.chars().take(64).collect(),
                payload: payload.chars().take(64).collect(),
            });
        };
        let now = Instant::now();
        let mut guard = self.inner.state.lock();
        let st = &mut *guard;
        let known = st.devices.get(id).is_some_and(|d| d.known);
        if !known && self.inner.known_only {
            st.ignored += 1;
            st.last_ignored = Some(now);
            return Err(RegistryError::NotKnown(id.chars().take(64).collect()));
        }
        st.seq += 1;
        let seq = st.seq;
        if !st.devices.contains_key(id) {
            if st.unknown.len() >= MAX_UNKNOWN_DEVICES
                && let Some((_, oldest)) = st.unknown.pop_first()
            {
                st.devices.remove(&oldest);
                st.ignored += 1;
                st.last_ignored = Some(now);
                if st.log.check("forgotten devices", now).0 == Verdict::Log {
                    warn!(target: "mqtt_devices",
                        "More than {MAX_UNKNOWN_DEVICES} unknown device ids: forgot {oldest} (least recently seen) for {id}");
                }
            }
            st.devices.insert(
                id.to_string(),
                Device {
                    online,
                    status: String::new(),
                    last_seen: now,
                    last_seen_wall: 0.0,
                    messages: 0,
                    known: false,
                    seq,
                    reported: None,
                    channels: Vec::new(),
                    placement: Placement::default(),
                },
            );
        }
        let d = st.devices.get_mut(id).expect("present or inserted");
        if !d.known {
            st.unknown.remove(&d.seq);
            st.unknown.insert(seq, id.to_string());
            d.seq = seq;
        }
        let was = d.reported;
        d.online = online;
        d.status = p.to_string();
        d.last_seen = now;
        d.last_seen_wall = unix_now();
        d.messages += 1;
        let heard = broker.map(|b| (b, d.placement.heard(b, now)));
        let presence = if online {
            Presence::Online
        } else {
            Presence::Offline
        };
        d.reported = Some(presence);
        debug!(target: "mqtt_devices", "Device {id} status: {p}");
        let moved = match heard {
            Some((b, Heard::Moved { from })) => {
                info!(target: "mqtt_devices", "Device {id} is on broker {} now (was {})", self.broker_name(b), self.broker_name(from));
                true
            }
            Some((b, Heard::Flapping { from })) => {
                if st.log.check("devices on two brokers", now).0 == Verdict::Log {
                    warn!(target: "mqtt_devices", "Device {id} is heard on {} and on {} in turn: two boards with one id, or a board switching brokers; its commands go where it was heard last", self.broker_name(b), self.broker_name(from));
                }
                true
            }
            _ => false,
        };
        if was == Some(presence) && !moved {
            return Ok(presence);
        }
        let view = self.view(id, d, now);
        let quiet = was == Some(presence)
            || (!d.known && st.log.check("unknown devices", now).0 == Verdict::Suppress);
        if !quiet {
            match presence {
                Presence::Online => info!(target: "mqtt_devices", "Device {id} connected (online)"),
                _ => info!(target: "mqtt_devices", "Device {id} disconnected (offline)"),
            }
        }
        drop(guard);
        self.inner.events.publish(Event::Device(view));
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
            seconds_since_seen: if d.messages == 0 {
                -1.0
            } else {
                now.saturating_duration_since(d.last_seen).as_secs_f64()
            },
            messages: d.messages,
            known: d.known,
            channels: self.channels_of(id, d),
            broker: d.placement.broker.map(|b| self.broker_name(b)),
            broker_note: d.placement.flapping_with.map(|f| {
                format!(
                    "also heard on {}: two boards with one id?",
                    self.broker_name(f)
                )
            }),
        }
    }

    /// The topics a device answers: its announcement, else the config.
    fn channels_of(&self, id: &str, d: &Device) -> Vec<String> {
        if !d.channels.is_empty() {
            return d.channels.clone();
        }
        let mut from_config: Vec<String> = self
            .inner
            .owners
            .iter()
            .filter(|(_, o)| *o == id)
            .map(|(t, _)| t.clone())
            .collect();
        from_config.sort();
        from_config
    }

    /// One device.
    pub fn get(&self, id: &str) -> Option<DeviceView> {
        let now = Instant::now();
        let st = self.inner.state.lock();
        st.devices.get(id).map(|d| self.view(id, d, now))
    }

    /// Every listed device, sorted by id.
    pub fn all(&self) -> Vec<DeviceView> {
        let now = Instant::now();
        let st = self.inner.state.lock();
        let mut v: Vec<_> = st
            .devices
            .iter()
            .map(|(id, d)| self.view(id, d, now))
            .collect();
        drop(st);
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

    /// How many devices are in which state.
    pub fn counts(&self) -> DeviceCounts {
        let now = Instant::now();
        let st = self.inner.state.lock();
        let mut c = DeviceCounts {
            unknown_ignored: st.ignored,
            ..DeviceCounts::default()
        };
        for d in st.devices.values() {
            c.total += 1;
            match self.presence(d, now) {
                Presence::Online => c.online += 1,
                Presence::Offline => c.offline += 1,
                Presence::Stale => c.stale += 1,
            }
        }
        c
    }

    /// Unknown ids ignored or forgotten, when the last one was recent.
    pub fn ignored_recently(&self) -> Option<u64> {
        let st = self.inner.state.lock();
        st.last_ignored
            .filter(|t| t.elapsed() < IGNORED_RECENTLY)
            .map(|_| st.ignored)
    }

    /// The device that answers `command_topic`: from `devices.known`, else
    /// from the device's own `devices/<id>/channels` announcement.
    pub fn owner_of(&self, command_topic: &str) -> Option<String> {
        if let Some(o) = self.inner.owners.get(command_topic) {
            return Some(o.clone());
        }
        let st = self.inner.state.lock();
        st.devices
            .iter()
            .find(|(_, d)| d.channels.iter().any(|c| c == command_topic))
            .map(|(id, _)| id.clone())
    }

    /// A device says which command topics it answers (`devices/<id>/channels`:
    /// a JSON list, or topics separated by commas or spaces). Only devices
    /// already listed are taken, at most [`MAX_CHANNELS`] topics each.
    pub fn announce_channels(&self, id: &str, payload: &str) -> Result<usize, RegistryError> {
        let p = payload.trim();
        let topics: Vec<String> = if p.starts_with('[') {
            serde_json::from_str(p).map_err(|e| RegistryError::BadChannels(e.to_string()))?
        } else {
            p.split([',', ' ', '\n'])
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect()
        };
        if topics.len() > MAX_CHANNELS {
            return Err(RegistryError::BadChannels(format!(
                "{} topics (at most {MAX_CHANNELS})",
                topics.len()
            )));
        }
        if let Some(bad) = topics
            .iter()
            .find(|t| crate::topic::validate_name(t).is_err())
        {
            return Err(RegistryError::BadChannels(format!(
                "`{}` is not a topic",
                bad.chars().take(64).collect::<String>()
            )));
        }
        let mut st = self.inner.state.lock();
        let Some(d) = st.devices.get_mut(id) else {
            return Err(RegistryError::NotListed(id.chars().take(64).collect()));
        };
        d.channels = topics;
        debug!(target: "mqtt_devices", "Device {id} answers {}", d.channels.join(", "));
        Ok(d.channels.len())
    }

    /// Forgets every unknown device and marks known ones unseen (seed 004
    /// `clear_devices`).
    pub fn clear(&self) {
        let mut st = self.inner.state.lock();
        st.devices.retain(|_, d| d.known);
        st.unknown.clear();
        for d in st.devices.values_mut() {
            d.online = false;
            d.messages = 0;
            d.status.clear();
            d.reported = None;
        }
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

    /// One stale check over all devices, plus the summary of log lines
    /// left out.
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut changed = Vec::new();
        let mut guard = self.inner.state.lock();
        let st = &mut *guard;
        for (id, d) in st.devices.iter_mut() {
            if d.reported.is_none() {
                continue;
            }
            let p = self.presence(d, now);
            if Some(p) != d.reported {
                d.reported = Some(p);
                if p == Presence::Stale
                    && (d.known || st.log.check("stale devices", now).0 == Verdict::Log)
                {
                    warn!(target: "mqtt_devices", "Device {id} is stale (nothing heard for {:.0}s)",
                        now.saturating_duration_since(d.last_seen).as_secs_f64());
                }
                changed.push(self.view(id, d, now));
            }
        }
        for s in st.log.flush(now) {
            warn!(target: "mqtt_devices", "{} more `{}` log line(s) in the last minute were not logged", s.count, s.source);
        }
        drop(guard);
        for v in changed {
            self.inner.events.publish(Event::Device(v));
        }
    }
}

mod placement;
use placement::{Heard, Placement};

#[cfg(test)]
mod tests;
