//! The JSON API: status, devices, scenes (list, start, stop), feedback.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};

use axum::response::IntoResponse;
use tracing::{info, warn};

use super::{AppError, AppState};
use crate::feedback::{FeedbackRecord, FeedbackStats};
use crate::media::MediaStatus;
use crate::mqtt::{ConnectionStatus, Stats, unix_now};
use crate::registry::{DeviceCounts, DeviceView};
use crate::scene::{CommandSummary, EndReason, RunError, SceneStatus, SceneSummary, StartError};
use crate::schedule::ScheduleView;
use axum::http::StatusCode;

#[derive(Serialize)]
pub struct Status {
    pub room: String,
    pub version: &'static str,
    pub uptime: f64,
    /// The controller's clock (unix seconds), to age timestamps by.
    pub now: f64,
    pub connection: ConnectionStatus,
    pub scene: Option<SceneStatus>,
    /// Scene files that did not load, and why.
    pub problems: Vec<String>,
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
        now: unix_now(),
        connection: r.mqtt.status(),
        scene: r.scenes.status(),
        problems: r.problems(),
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
    parts: axum::http::request::Parts,
) -> Result<Json<serde_json::Value>, AppError> {
    let from = super::peer(&parts.extensions);
    match s.room.scenes.start(&name) {
        Ok(()) => {
            info!(target: "web", "Scene {name} started from the dashboard ({from})");
            Ok(Json(serde_json::json!({"started": name})))
        }
        Err(e @ StartError::NotFound(_)) => Err(AppError::NotFound(e.to_string())),
        Err(e @ StartError::AlreadyRunning(_)) => {
            info!(target: "web", "Start of {name} from {from} refused: {e}");
            Err(AppError::Conflict(e.to_string()))
        }
    }
}

pub async fn stop_scene(
    State(s): State<AppState>,
    parts: axum::http::request::Parts,
) -> Json<serde_json::Value> {
    info!(target: "web", "Stop — all off from the dashboard ({})", super::peer(&parts.extensions));
    let commands = s.room.commands.cancel_all();
    let stopped = s.room.scenes.stop(EndReason::Stopped).await;
    Json(serde_json::json!({"stopped": stopped, "commands_cancelled": commands}))
}

/// `GET /api/commands`: the command files.
pub async fn commands(State(s): State<AppState>) -> Json<Vec<CommandSummary>> {
    Json(s.room.commands.list())
}

/// `POST /api/commands/{name}/run`.
pub async fn run_command(
    State(s): State<AppState>,
    Path(name): Path<String>,
    parts: axum::http::request::Parts,
) -> Result<(StatusCode, Json<serde_json::Value>), AppError> {
    let from = format!("the dashboard ({})", super::peer(&parts.extensions));
    match s.room.commands.run(&name, &from) {
        Ok(()) => Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"started": name})),
        )),
        Err(e @ RunError::NotFound(_)) => Err(AppError::NotFound(e.to_string())),
        Err(e) => {
            info!(target: "web", "Command {name} from {from} refused: {e}");
            Err(AppError::Conflict(e.to_string()))
        }
    }
}

/// `GET /api/schedule`: the zone, today's hours, open now, paused, the next
/// starts and what the schedule did lately. 404 without a schedule.
pub async fn schedule(State(s): State<AppState>) -> Result<Json<ScheduleView>, AppError> {
    let h = s
        .room
        .schedule
        .as_ref()
        .ok_or_else(|| AppError::NotFound("no schedule is configured".into()))?;
    Ok(Json(h.view(10)))
}

/// `POST /api/schedule/pause` and `/resume` (token): kept across restarts.
pub async fn schedule_control(
    State(s): State<AppState>,
    Path(action): Path<String>,
    parts: axum::http::request::Parts,
) -> Result<Json<ScheduleView>, AppError> {
    let h = s
        .room
        .schedule
        .as_ref()
        .ok_or_else(|| AppError::NotFound("no schedule is configured".into()))?;
    let pause = match action.as_str() {
        "pause" => true,
        "resume" => false,
        _ => {
            return Err(AppError::NotFound(format!(
                "no schedule action `{}` (pause or resume)",
                action.chars().take(32).collect::<String>()
            )));
        }
    };
    info!(target: "web", "Schedule {action} from the dashboard ({})", super::peer(&parts.extensions));
    // Paused or resumed now even when it could not be saved; say so.
    if let Err(e) = h.set_paused(pause) {
        warn!(target: "web", "{e}");
    }
    Ok(Json(h.view(10)))
}

/// `POST /api/reload`: scenes and config again, without a restart. A
/// config that does not load changes nothing (422, with the errors).
pub async fn reload(
    State(s): State<AppState>,
    parts: axum::http::request::Parts,
) -> axum::response::Response {
    info!(target: "web", "Reload requested from the dashboard ({})", super::peer(&parts.extensions));
    match s.room.reload() {
        Ok(report) => Json(report).into_response(),
        Err(errors) => (
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            Json(serde_json::json!({
                "error": "the config does not load; the running config stays",
                "errors": errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })),
        )
            .into_response(),
    }
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
