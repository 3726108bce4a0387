//! The site overview (`roomctl site`): one page for the whole museum, with
//! no per-room config. It listens to the rooms' retained
//! `roomctl/+/status` (`online`, or `offline` as the last will) and
//! `roomctl/+/state` on the brokers, and starts and stops scenes in any
//! room through the room's own control topics (`roomctl/ROOM/scene/start`,
//! `roomctl/ROOM/scene/stop`).
//!
//! It keeps a connection to every broker it is given at once (a room that
//! failed over is on the other one; rooms of two buildings may be on
//! brokers that are not bridged), and merges what it hears per room: the
//! newest state wins, by the `updated` stamp its daemon put in it, and the
//! room is shown with the broker it was heard on. A start or stop goes out
//! on that broker.
//!
//! Everything from the network is bounded: at most [`MAX_ROOMS`] rooms, a
//! state document of at most 64 KiB, names that are plain topic levels.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::mqtt::{self, InMessage, MqttHandle, MqttSettings, PublishOptions, unix_now};
use crate::ratelog::{LogLimit, RateLog};
use crate::room::RoomState;

mod http;
mod rooms;
use crate::{ratelog, topic};
use rooms::{Entry, GONE_KEPT, Rooms, Update, evidence_of, summarised};

/// At most this many rooms are listed.
pub const MAX_ROOMS: usize = 256;
/// The largest state document read.
const MAX_STATE: usize = 64 * 1024;
/// A state older than this (three refresh periods) is not current.
const STATE_FRESH: f64 = 90.0;

/// What changed on the site since a version (see [`Site::changes`]).
#[derive(Debug, Clone, Serialize)]
pub struct Changes {
    /// The version now: ask `since` it next time.
    pub version: u64,
    /// Every room is listed (no `since`, or one too old to answer).
    pub full: bool,
    /// The rooms changed (all of them when `full`).
    pub rooms: Vec<RoomView>,
    /// Rooms dropped since then.
    pub gone: Vec<String>,
}

/// One room as the site page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RoomView {
    /// The room id.
    pub room: String,
    /// `online`, `offline` (its last will, or a clean stop) or `unknown`.
    pub status: String,
    /// Seconds since its status last changed.
    pub status_age: f64,
    /// Its last retained state (`roomctl/ROOM/state`), if any.
    pub state: Option<RoomState>,
    /// Seconds since that state was received; a state older than 90 s is
    /// not current (the daemon refreshes it every 30 s).
    pub state_age: Option<f64>,
    /// The state is current (received within the last 90 s).
    pub current: bool,
    /// The broker its newest state was heard on (`10.0.0.2:1883`).
    pub via: Option<String>,
}

struct Inner {
    /// The rooms and the changes since the page last asked, in one lock,
    /// so a reader never sees a change without its version.
    rooms: Mutex<Rooms>,
    /// One client per broker, each labelled `host:port`.
    clients: Vec<(String, MqttHandle)>,
    /// Rooms always listed and never evicted (`roomctl site --room`).
    expected: Vec<String>,
    /// `control.key`: control messages are signed with it.
    key: Option<crate::config::Secret>,
    log: Mutex<RateLog>,
}

/// The site overview: the rooms it has heard of and the MQTT client.
#[derive(Clone)]
pub struct Site {
    inner: Arc<Inner>,
}

/// Why a start or stop was refused.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    /// Not a room the site has heard of.
    #[error("no room `{0}` on the brokers")]
    NoRoom(String),
    /// Not a scene that room has.
    #[error("room `{room}` has no scene `{scene}`")]
    NoScene {
        /// The room.
        room: String,
        /// The scene asked for.
        scene: String,
    },
    /// The outbox refused it.
    #[error("cannot send: {0}")]
    Send(String),
}

impl Site {
    /// Connects with `settings` (its subscriptions are replaced) and keeps
    /// the room list current until `cancel`.
    pub fn start(
        mut settings: MqttSettings,
        key: Option<crate::config::Secret>,
        expected: Vec<String>,
        cancel: CancellationToken,
        tasks: &TaskTracker,
    ) -> Site {
        // A site's rooms bridged to a central broker under a prefix
        // (`east/roomctl/hall/state`) too: see docs/topologies.md.
        settings.subscriptions = vec![
            "roomctl/+/status".into(),
            "roomctl/+/state".into(),
            "+/roomctl/+/status".into(),
            "+/roomctl/+/state".into(),
        ];
        settings.will = None;
        settings.birth = None;
        // On subscribing, the brokers send every room's retained status and
        // state at once (thousands on a busy or polluted broker): room for
        // them, so no real room's retained message is dropped. Small
        // messages; states are at most MAX_STATE each.
        settings.incoming_capacity = settings.incoming_capacity.max(16 * 1024);
        // Every broker at once, each with a client of its own.
        let many = settings.brokers.len() > 1;
        let mut clients = Vec::new();
        let mut inboxes = Vec::new();
        for (i, b) in settings.brokers.iter().enumerate() {
            let mut s = settings.clone();
            s.brokers = vec![b.clone()];
            if many {
                s.client_id = format!("{}-{}", settings.client_id, i + 1);
            }
            let (mqtt, rx) = mqtt::start(s, cancel.clone(), tasks);
            let label = format!("{}:{}", b.host, b.port);
            clients.push((label.clone(), mqtt));
            inboxes.push((label, rx));
        }
        let site = Site {
            inner: Arc::new(Inner {
                rooms: Mutex::new(Rooms::default()),
                clients,
                expected,
                key,
                log: Mutex::new(RateLog::new(LogLimit::default())),
            }),
        };
        for (label, rx) in inboxes {
            tasks.spawn(site.clone().listen(label, rx, cancel.clone()));
        }
        site
    }

    /// Each broker and its client (status, stats).
    pub fn clients(&self) -> &[(String, MqttHandle)] {
        &self.inner.clients
    }

    async fn listen(
        self,
        via: String,
        mut rx: mpsc::Receiver<InMessage>,
        cancel: CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                m = rx.recv() => match m {
                    Some(m) => self.handle_from(&via, &m),
                    None => return,
                },
            }
        }
    }

    /// [`Site::handle_from`] the first broker (tests).
    pub fn handle(&self, m: &InMessage) {
        let via = self
            .inner
            .clients
            .first()
            .map(|c| c.0.clone())
            .unwrap_or_default();
        self.handle_from(&via, m);
    }

    /// Takes one message from `roomctl/+/status` or `roomctl/+/state`
    /// heard on the broker `via`. With [`MAX_ROOMS`] known, a new room gets
    /// in only with more evidence of being real than the weakest one kept,
    /// which makes room (see [`evidence`]); expected rooms are never
    /// evicted. A state older than the one kept from another broker is
    /// ignored (the same state over a bridge, or a broker the room left).
    pub fn handle_from(&self, via: &str, m: &InMessage) {
        let Some((key, kind)) = room_of(&m.topic) else {
            return;
        };
        let room = key.as_str();
        let now = unix_now();
        // What the message is, before any lock: a status, a state, or
        // nothing worth keeping.
        let update = match kind {
            "status" => {
                let text = String::from_utf8_lossy(&m.payload)
                    .trim()
                    .to_ascii_lowercase();
                Update::Status(matches!(text.as_str(), "online" | "offline").then_some(text))
            }
            "state" if m.payload.is_empty() => Update::State(None),
            "state" if m.payload.len() > MAX_STATE => {
                ratelog!(
                    self.inner.log,
                    warn,
                    "site",
                    "state",
                    "Ignoring a {} byte state from {room}",
                    m.payload.len()
                );
                return;
            }
            "state" => match serde_json::from_slice::<RoomState>(&m.payload) {
                Ok(v) => Update::State(Some(Box::new(summarised(v)))),
                Err(err) => {
                    ratelog!(
                        self.inner.log,
                        warn,
                        "site",
                        "state",
                        "Ignoring a state from {room} that is not a room state: {err}"
                    );
                    return;
                }
            },
            _ => return,
        };
        let mut guard = self.inner.rooms.lock();
        let all = &mut *guard;
        all.version += 1;
        let version = all.version;
        let rooms = &mut all.map;
        if !rooms.contains_key(room) {
            let offered = match &update {
                Update::State(Some(st)) => evidence_of(None, Some(&**st), now),
                Update::Status(Some(_)) => 1,
                _ => 0,
            };
            if rooms.len() >= MAX_ROOMS
                && !self.make_room(rooms, &mut all.gone, version, offered, now)
            {
                ratelog!(
                    self.inner.log,
                    warn,
                    "site",
                    "rooms",
                    "{MAX_ROOMS} rooms with at least as much evidence of being real: ignoring {room}"
                );
                return;
            }
        }
        let e = rooms.entry(room.to_string()).or_default();
        if e.merge(via, update, now) {
            e.changed = version;
        }
    }

    /// Evicts the room with the least evidence (the one heard of longest
    /// ago among equals) if it has less than `offered`.
    fn make_room(
        &self,
        rooms: &mut BTreeMap<String, Entry>,
        gone: &mut std::collections::VecDeque<(u64, String)>,
        version: u64,
        offered: u8,
        now: f64,
    ) -> bool {
        let expected = &self.inner.expected;
        let weakest = rooms
            .iter()
            .filter(|(name, _)| !expected.contains(*name))
            .map(|(name, e)| {
                (
                    evidence_of(e.status.as_deref(), e.state.as_ref(), now),
                    e.heard(),
                    name,
                )
            })
            .min_by(|a, b| {
                (a.0, a.1)
                    .partial_cmp(&(b.0, b.1))
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .map(|(ev, _, name)| (ev, name.clone()));
        match weakest {
            Some((ev, name)) if ev < offered => {
                rooms.remove(&name);
                if gone.len() >= GONE_KEPT {
                    gone.pop_front();
                }
                gone.push_back((version, name));
                true
            }
            _ => false,
        }
    }

    /// Every room heard of, and every expected one, by name.
    pub fn rooms(&self) -> Vec<RoomView> {
        self.changes(None).rooms
    }

    /// What changed after version `since` (every room when `since` is
    /// `None`, or too old to answer with changes only).
    pub fn changes(&self, since: Option<u64>) -> Changes {
        let now = unix_now();
        let all = self.inner.rooms.lock();
        let oldest_known = all.gone.front().map_or(0, |(v, _)| v.saturating_sub(1));
        let since = since
            .filter(|s| *s <= all.version && (all.gone.len() < GONE_KEPT || *s >= oldest_known));
        let view = |room: &String, e: &Entry| RoomView {
            room: room.clone(),
            // A state its daemon stamped lately is proof of life when
            // the retained status was lost (a broker drops retained
            // messages past its queue limit when thousands arrive at
            // once); the last will still says offline.
            status: e.status.clone().unwrap_or_else(|| {
                let alive = evidence_of(None, e.state.as_ref(), now) == 3;
                if alive { "online" } else { "unknown" }.into()
            }),
            status_age: now - e.status_at,
            state: e.state.clone(),
            state_age: e.state.as_ref().map(|_| now - e.state_at),
            current: e.state.is_some() && now - e.state_at < STATE_FRESH,
            via: e.via.clone(),
        };
        let mut rooms: Vec<RoomView> = all
            .map
            .iter()
            .filter(|(_, e)| since.is_none_or(|s| e.changed > s))
            .map(|(room, e)| view(room, e))
            .collect();
        if since.is_none() {
            for room in &self.inner.expected {
                if !all.map.contains_key(room) {
                    rooms.push(RoomView {
                        room: room.clone(),
                        status: "unknown".into(),
                        status_age: 0.0,
                        state: None,
                        state_age: None,
                        current: false,
                        via: None,
                    });
                }
            }
            rooms.sort_by(|a, b| a.room.cmp(&b.room));
        }
        let gone = match since {
            Some(s) => all
                .gone
                .iter()
                .filter(|(v, name)| *v > s && !all.map.contains_key(name))
                .map(|(_, n)| n.clone())
                .collect(),
            None => Vec::new(),
        };
        Changes {
            version: all.version,
            full: since.is_none(),
            rooms,
            gone,
        }
    }

    fn scenes_of(&self, room: &str) -> Result<Vec<String>, SiteError> {
        let rooms = self.inner.rooms.lock();
        let e = rooms
            .map
            .get(room)
            .ok_or_else(|| SiteError::NoRoom(room.chars().take(64).collect()))?;
        Ok(e.state
            .as_ref()
            .map(|s| s.scenes.clone())
            .unwrap_or_default())
    }

    /// Starts `scene` in `room` (`roomctl/ROOM/scene/start`).
    pub fn start_scene(&self, room: &str, scene: &str, by: &str) -> Result<(), SiteError> {
        if !self.scenes_of(room)?.iter().any(|s| s == scene) {
            return Err(SiteError::NoScene {
                room: room.into(),
                scene: scene.chars().take(64).collect(),
            });
        }
        self.send(room, "scene/start", scene, by)
    }

    /// Publishes the control message `roomctl/ROOM/<action>` for the room
    /// listed as `room`, signed with the site's key when it has one (see
    /// `crate::signing`), as sent by `by`. A room behind a prefix
    /// (`east:hall`) gets it as `east/roomctl/hall/<action>`, signed for
    /// the topic it arrives on after its bridge (`roomctl/hall/<action>`).
    fn send(&self, room: &str, action: &str, payload: &str, by: &str) -> Result<(), SiteError> {
        let (local, topic) = match room.split_once(':') {
            Some((site, name)) => (
                format!("roomctl/{name}/{action}"),
                format!("{site}/roomctl/{name}/{action}"),
            ),
            None => {
                let t = format!("roomctl/{room}/{action}");
                (t.clone(), t)
            }
        };
        let topic = topic.as_str();
        let props = self.inner.key.as_ref().map(|k| {
            let now = unix_now().max(0.0) as u64;
            crate::signing::sign(k.expose().as_bytes(), &local, payload.as_bytes(), by, now).into()
        });
        // On the broker the room was last heard on, else one connected.
        let via = self
            .inner
            .rooms
            .lock()
            .map
            .get(room)
            .and_then(|e| e.via.clone());
        let clients = &self.inner.clients;
        let client = clients
            .iter()
            .find(|(b, _)| Some(b) == via.as_ref())
            .or_else(|| {
                clients
                    .iter()
                    .find(|(_, h)| h.status().state == mqtt::ConnectionState::Connected)
            })
            .or(clients.first())
            .map(|(_, h)| h)
            .ok_or_else(|| SiteError::Send("no broker is configured".into()))?;
        client
            .publish_with(
                topic,
                payload.to_string(),
                PublishOptions::reliable(),
                props,
            )
            .map(|_| ())
            .map_err(|e| SiteError::Send(e.to_string()))
    }

    /// Stops the scene in `room` (`roomctl/ROOM/scene/stop`).
    pub fn stop_scene(&self, room: &str, by: &str) -> Result<(), SiteError> {
        self.scenes_of(room)?;
        self.send(room, "scene/stop", "", by)
    }
}

/// The room a status or state topic is about, and which of the two it is:
/// `roomctl/hall/state` is `hall`; `east/roomctl/hall/state` (a site
/// bridged to a central broker under a prefix) is `east:hall`. Names are
/// plain topic levels of at most 64 bytes (the prefix: 32).
fn room_of(topic: &str) -> Option<(String, &str)> {
    let parts: Vec<&str> = topic.splitn(5, '/').collect();
    let (prefix, room, kind) = match parts.as_slice() {
        ["roomctl", room, kind] => (None, *room, *kind),
        [site, "roomctl", room, kind] => (Some(*site), *room, *kind),
        _ => return None,
    };
    let plain = |s: &str, max: usize| {
        topic::is_plain_level(s) && s.len() <= max && !s.contains([':', ' ', '\t'])
    };
    if !plain(room, 64) || prefix.is_some_and(|p| !plain(p, 32)) {
        return None;
    }
    Some((
        prefix.map_or_else(|| room.to_string(), |p| format!("{p}:{room}")),
        kind,
    ))
}

#[cfg(test)]
mod topic_tests {
    #[test]
    fn rooms_with_and_without_a_site_prefix() {
        use super::room_of;
        assert_eq!(
            room_of("roomctl/hall/state"),
            Some(("hall".into(), "state"))
        );
        assert_eq!(
            room_of("east/roomctl/hall/status"),
            Some(("east:hall".into(), "status"))
        );
        for bad in [
            "roomctl/hall",
            "x/y/roomctl/hall/state",
            "roomctl/a:b/state",
            "roomctl//state",
            "a b/roomctl/hall/state",
        ] {
            assert_eq!(room_of(bad), None, "{bad}");
        }
    }
}
