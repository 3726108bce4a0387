//! The JSON API: status, devices, scenes (list, start, stop), feedback.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};

use super::{AppError, AppState};
use crate::feedback::{FeedbackRecord, FeedbackStats};
use crate::media::MediaStatus;
use crate::mqtt::{ConnectionStatus, Stats, unix_now};
use crate::registry::{DeviceCounts, DeviceView};
use crate::scene::{EndReason, SceneStatus, SceneSummary, StartError};

#[derive(Serialize)]
pub struct Status {
    pub room: String,
    pub version: &'static str,
    pub uptime: f64,
    pub connection: ConnectionStatus,
    pub scene: Option<SceneStatus>,
    pub stats: StatusStats,
    pub media: MediaStatus,
}

#[derive(Serialize)]
pub struct StatusStats {
    pub mqtt: Stats,
    pub feedback: FeedbackStats,
    pub devices: DeviceCounts,
}

pub async fn status(State(s): State<AppState>) -> Json<Status> {
    let r = &s.room;
    Json(Status {
        room: r.config.room.clone(),
        version: env!("CARGO_PKG_VERSION"),
        uptime: unix_now() - r.started,
        connection: r.mqtt.status(),
        scene: r.scenes.status(),
        stats: StatusStats {
            mqtt: r.mqtt.stats(),
            feedback: r.feedback.stats(),
            devices: r.registry.counts(),
        },
        media: r.media.status(),
    })
}

pub async fn devices(State(s): State<AppState>) -> Json<Vec<DeviceView>> {
    Json(s.room.registry.all())
}

#[derive(Serialize)]
pub struct SceneEntry {
    #[serde(flatten)]
    pub summary: SceneSummary,
    pub running: bool,
}

pub async fn scenes(State(s): State<AppState>) -> Json<Vec<SceneEntry>> {
    let running = s.room.scenes.status().map(|st| st.name);
    Json(
        s.room
            .scenes
            .scenes()
            .iter()
            .map(|sc| SceneEntry {
                running: running.as_deref() == Some(sc.name.as_str()),
                summary: sc.summary(),
            })
            .collect(),
    )
}

pub async fn start_scene(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, AppError> {
    match s.room.scenes.start(&name) {
        Ok(()) => Ok(Json(serde_json::json!({"started": name}))),
        Err(e @ StartError::NotFound(_)) => Err(AppError::NotFound(e.to_string())),
        Err(e @ StartError::AlreadyRunning(_)) => Err(AppError::Conflict(e.to_string())),
    }
}

pub async fn stop_scene(State(s): State<AppState>) -> Json<serde_json::Value> {
    let stopped = s.room.scenes.stop(EndReason::Stopped).await;
    Json(serde_json::json!({"stopped": stopped}))
}

#[derive(Deserialize)]
pub struct Limit {
    limit: Option<usize>,
}

pub async fn feedback(
    State(s): State<AppState>,
    Query(q): Query<Limit>,
) -> Json<Vec<FeedbackRecord>> {
    Json(s.room.feedback.history(q.limit.unwrap_or(100).min(1000)))
}
