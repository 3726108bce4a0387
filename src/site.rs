//! The site overview (`roomctl site`): one page for the whole museum, with
//! no per-room config. It listens to the rooms' retained
//! `roomctl/+/status` (`online`, or `offline` as the last will) and
//! `roomctl/+/state` on the brokers, and starts and stops scenes in any
//! room through the room's own control topics (`roomctl/ROOM/scene/start`,
//! `roomctl/ROOM/scene/stop`).
//!
//! Everything from the network is bounded: at most [`MAX_ROOMS`] rooms, a
//! state document of at most 64 KiB, names that are plain topic levels.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::mqtt::{self, InMessage, MqttHandle, MqttSettings, PublishOptions, unix_now};
use crate::ratelog::{LogLimit, RateLog};
use crate::room::RoomState;
use crate::{ratelog, topic};

/// At most this many rooms are listed.
pub const MAX_ROOMS: usize = 256;
/// The largest state document read.
const MAX_STATE: usize = 64 * 1024;
/// A state older than this (three refresh periods) is not current.
const STATE_FRESH: f64 = 90.0;

#[derive(Default)]
struct Entry {
    status: Option<String>,
    status_at: f64,
    state: Option<RoomState>,
    state_at: f64,
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
}

struct Inner {
    rooms: Mutex<BTreeMap<String, Entry>>,
    mqtt: MqttHandle,
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
        cancel: CancellationToken,
        tasks: &TaskTracker,
    ) -> Site {
        settings.subscriptions = vec!["roomctl/+/status".into(), "roomctl/+/state".into()];
        settings.will = None;
        settings.birth = None;
        let (mqtt, rx) = mqtt::start(settings, cancel.clone(), tasks);
        let site = Site {
            inner: Arc::new(Inner {
                rooms: Mutex::new(BTreeMap::new()),
                mqtt,
                log: Mutex::new(RateLog::new(LogLimit::default())),
            }),
        };
        tasks.spawn(site.clone().listen(rx, cancel));
        site
    }

    /// The MQTT client (status, stats).
    pub fn mqtt(&self) -> &MqttHandle {
        &self.inner.mqtt
    }

    async fn listen(self, mut rx: mpsc::Receiver<InMessage>, cancel: CancellationToken) {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                m = rx.recv() => match m {
                    Some(m) => self.handle(&m),
                    None => return,
                },
            }
        }
    }

    /// Takes one message from `roomctl/+/status` or `roomctl/+/state`.
    pub fn handle(&self, m: &InMessage) {
        let mut parts = m.topic.split('/');
        let (Some("roomctl"), Some(room), Some(kind), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return;
        };
        if !topic::is_plain_level(room) || room.len() > 64 {
            return;
        }
        let now = unix_now();
        let mut rooms = self.inner.rooms.lock();
        if !rooms.contains_key(room) && rooms.len() >= MAX_ROOMS {
            ratelog!(
                self.inner.log,
                warn,
                "site",
                "rooms",
                "More than {MAX_ROOMS} rooms: ignoring {room}"
            );
            return;
        }
        match kind {
            "status" => {
                let text = String::from_utf8_lossy(&m.payload)
                    .trim()
                    .to_ascii_lowercase();
                let e = rooms.entry(room.to_string()).or_default();
                e.status = match text.as_str() {
                    "online" | "offline" => Some(text),
                    // Cleared (empty retained message) or garbage.
                    _ => None,
                };
                e.status_at = now;
            }
            "state" => {
                if m.payload.is_empty() {
                    if let Some(e) = rooms.get_mut(room) {
                        e.state = None;
                    }
                    return;
                }
                if m.payload.len() > MAX_STATE {
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
                match serde_json::from_slice::<RoomState>(&m.payload) {
                    Ok(v) => {
                        let e = rooms.entry(room.to_string()).or_default();
                        e.state = Some(v);
                        e.state_at = now;
                    }
                    Err(err) => {
                        ratelog!(
                            self.inner.log,
                            warn,
                            "site",
                            "state",
                            "Ignoring a state from {room} that is not a room state: {err}"
                        );
                    }
                }
            }
            _ => {}
        }
    }

    /// Every room heard of, by name.
    pub fn rooms(&self) -> Vec<RoomView> {
        let now = unix_now();
        self.inner
            .rooms
            .lock()
            .iter()
            .map(|(room, e)| RoomView {
                room: room.clone(),
                status: e.status.clone().unwrap_or_else(|| "unknown".into()),
                status_age: now - e.status_at,
                state: e.state.clone(),
                state_age: e.state.as_ref().map(|_| now - e.state_at),
                current: e.state.is_some() && now - e.state_at < STATE_FRESH,
            })
            .collect()
    }

    fn scenes_of(&self, room: &str) -> Result<Vec<String>, SiteError> {
        let rooms = self.inner.rooms.lock();
        let e = rooms
            .get(room)
            .ok_or_else(|| SiteError::NoRoom(room.chars().take(64).collect()))?;
        Ok(e.state
            .as_ref()
            .map(|s| s.scenes.clone())
            .unwrap_or_default())
    }

    /// Starts `scene` in `room` (`roomctl/ROOM/scene/start`).
    pub fn start_scene(&self, room: &str, scene: &str) -> Result<(), SiteError> {
        if !self.scenes_of(room)?.iter().any(|s| s == scene) {
            return Err(SiteError::NoScene {
                room: room.into(),
                scene: scene.chars().take(64).collect(),
            });
        }
        self.inner
            .mqtt
            .publish(
                format!("roomctl/{room}/scene/start"),
                scene.to_string(),
                PublishOptions::reliable(),
            )
            .map(|_| ())
            .map_err(|e| SiteError::Send(e.to_string()))
    }

    /// Stops the scene in `room` (`roomctl/ROOM/scene/stop`).
    pub fn stop_scene(&self, room: &str) -> Result<(), SiteError> {
        self.scenes_of(room)?;
        self.inner
            .mqtt
            .publish(
                format!("roomctl/{room}/scene/stop"),
                "",
                PublishOptions::reliable(),
            )
            .map(|_| ())
            .map_err(|e| SiteError::Send(e.to_string()))
    }

    /// The site page and its API: `GET /`, `GET /api/rooms`,
    /// `POST /api/rooms/{room}/start` `{"scene"}`, `POST /api/rooms/{room}/stop`,
    /// with logging in and out; who may do what is `guard`'s (the accounts
    /// of the room config the site was started with).
    pub fn router(&self, mut guard: crate::web::Guard) -> Router {
        use crate::access::Role;
        use crate::web::Need;
        use axum::http::Method;
        let mut rules = crate::web::Rules::default();
        rules.insert(Method::GET, "/", Need::Public);
        rules.insert(Method::GET, "/login", Need::Public);
        rules.insert(Method::GET, "/api/rooms", Need::Role(Role::Viewer));
        rules.insert(
            Method::POST,
            "/api/rooms/{room}/start",
            Need::Role(Role::Operator),
        );
        rules.insert(Method::POST, "/api/rooms/{room}/stop", Need::Panic);
        for (m, p, n) in crate::web::session_rules() {
            rules.insert(m.clone(), p, *n);
        }
        guard.rules = Arc::new(rules);
        Router::new()
            .route("/", get(page))
            .route("/login", get(login_page))
            .route("/api/rooms", get(rooms))
            .route("/api/rooms/{room}/start", post(start))
            .route("/api/rooms/{room}/stop", post(stop))
            .with_state(self.clone())
            .merge(crate::web::session_routes(guard.clone()))
            .route_layer(axum::middleware::from_fn_with_state(
                guard,
                crate::web::auth::guard,
            ))
    }
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({"error": msg.into()}))).into_response()
}

fn site_error(e: SiteError) -> Response {
    let status = match e {
        SiteError::NoRoom(_) | SiteError::NoScene { .. } => StatusCode::NOT_FOUND,
        SiteError::Send(_) => StatusCode::CONFLICT,
    };
    error(status, e.to_string())
}

async fn page() -> Response {
    crate::web::asset_response("site.html")
}

async fn login_page() -> Response {
    crate::web::asset_response("login.html")
}

#[derive(Serialize)]
struct RoomsReply {
    now: f64,
    mqtt: crate::events::ConnectionStatus,
    rooms: Vec<RoomView>,
}

async fn rooms(State(site): State<Site>) -> Json<RoomsReply> {
    Json(RoomsReply {
        now: unix_now(),
        mqtt: site.inner.mqtt.status(),
        rooms: site.rooms(),
    })
}

#[derive(Deserialize)]
struct StartBody {
    scene: String,
}

async fn start(
    State(site): State<Site>,
    Path(room): Path<String>,
    Json(b): Json<StartBody>,
) -> Response {
    match site.start_scene(&room, &b.scene) {
        Ok(()) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"room": room, "started": b.scene})),
        )
            .into_response(),
        Err(e) => site_error(e),
    }
}

async fn stop(State(site): State<Site>, Path(room): Path<String>) -> Response {
    match site.stop_scene(&room) {
        Ok(()) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"room": room, "stopped": true})),
        )
            .into_response(),
        Err(e) => site_error(e),
    }
}
