//! The JSON API: status, devices, scenes (list, start, stop), feedback.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};

use tracing::info;

use super::{AppError, AppState};
use crate::access::{Actor, Role};
use crate::feedback::{FeedbackRecord, FeedbackStats};
use crate::media::MediaStatus;
use crate::mqtt::{ConnectionStatus, Stats, unix_now};
use crate::origin::Origin;
use crate::registry::{DeviceCounts, DeviceView};
use crate::room::{Command, Player, ReloadReport, Reply, ScheduleAction, Volume};
use crate::scene::{CommandSummary, SceneStatus, SceneSummary};
use crate::schedule::ScheduleView;
use axum::extract::rejection::JsonRejection;
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
    /// The E-stop latch, while latched.
    pub estop: Option<crate::estop::Latched>,
    /// The room in one sentence (see [`crate::room::Verdict`]).
    pub verdict: crate::room::Verdict,
    /// The museum's time zone, for the times the dashboard shows.
    pub zone: Zone,
}

/// A time zone and its offset now.
#[derive(Serialize)]
pub struct Zone {
    /// IANA name (`Europe/Vienna`), or `UTC`-style offset when unnamed.
    pub name: String,
    /// Seconds east of UTC now.
    pub offset: i32,
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
        estop: r.estop.get(),
        verdict: r.verdict(),
        zone: {
            let tz = r.zone();
            let offset = tz.to_offset(jiff::Timestamp::now()).seconds();
            Zone {
                name: tz
                    .iana_name()
                    .map(String::from)
                    .unwrap_or_else(|| "UTC".into()),
                offset,
            }
        },
    })
}

pub async fn devices(State(s): State<AppState>) -> Json<Vec<DeviceView>> {
    Json(s.room.registry.all())
}

/// `GET /api/outputs`: what each output is believed to be doing, by
/// channel (changes arrive as `output` events on the stream).
pub async fn outputs(State(s): State<AppState>) -> Json<Vec<crate::events::OutputView>> {
    Json(s.room.outputs.all())
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
    let from = origin(&parts);
    match s.room.apply(from.clone(), Command::StartScene(name)).await {
        Ok(Reply::Started { scene }) => Ok(Json(serde_json::json!({"started": scene}))),
        Ok(r) => Err(unexpected(r)),
        Err(e) => {
            info!(target: "web", "Start refused for {from}: {e}");
            Err(e.into())
        }
    }
}

/// `POST /api/stop`: Stop — all off; answers once the end sequence ran.
pub async fn stop_scene(
    State(s): State<AppState>,
    parts: axum::http::request::Parts,
) -> Result<Json<serde_json::Value>, AppError> {
    match s.room.apply(origin(&parts), Command::Stop).await? {
        Reply::Stopped {
            scene,
            commands_cancelled,
            safe,
        } => Ok(Json(
            serde_json::json!({"stopped": scene, "commands_cancelled": commands_cancelled, "safe": safe, "estop": s.room.estop.get()}),
        )),
        r => Err(unexpected(r)),
    }
}

/// `POST /api/estop`: the E-stop: latches, then stops like the panic
/// button; answers with each board's safe state.
pub async fn estop(
    State(s): State<AppState>,
    parts: axum::http::request::Parts,
) -> Result<Json<serde_json::Value>, AppError> {
    match s.room.apply(origin(&parts), Command::Estop).await? {
        Reply::Stopped { scene, safe, .. } => Ok(Json(
            serde_json::json!({"stopped": scene, "safe": safe, "estop": s.room.estop.get()}),
        )),
        r => Err(unexpected(r)),
    }
}

/// `{"confirm": "reset"}`: a reset is never an accident.
#[derive(Deserialize)]
pub struct ResetBody {
    confirm: Option<String>,
}

/// `POST /api/estop/reset` `{"confirm": "reset"}` (technician): frees the
/// latch; 400 without the confirmation.
pub async fn estop_reset(
    State(s): State<AppState>,
    parts: axum::http::request::Parts,
    body: Option<Json<ResetBody>>,
) -> Result<Json<serde_json::Value>, AppError> {
    if body.and_then(|b| b.0.confirm).as_deref() != Some("reset") {
        return Err(AppError::BadRequest(
            "a reset needs {\"confirm\": \"reset\"}: it lets shows start again".into(),
        ));
    }
    match s.room.apply(origin(&parts), Command::ResetEstop).await? {
        Reply::EstopReset { was } => Ok(Json(serde_json::json!({"reset": true, "was": was}))),
        r => Err(unexpected(r)),
    }
}

/// The dashboard or API client that sent `parts`, and who it was (the
/// guard left the actor in the request).
pub(super) fn origin(parts: &axum::http::request::Parts) -> Origin {
    let actor = parts
        .extensions
        .get::<Actor>()
        .cloned()
        .unwrap_or(Actor::Anonymous { role: Role::Viewer });
    Origin::dashboard(super::peer(&parts.extensions), actor)
}

/// A reply of another kind than the command's: a bug, reported as one.
pub(super) fn unexpected(r: Reply) -> AppError {
    AppError::Conflict(format!("unexpected reply {r:?}"))
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
    let from = origin(&parts);
    match s.room.apply(from.clone(), Command::RunCommand(name)).await {
        Ok(Reply::CommandStarted { name }) => Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"started": name})),
        )),
        Ok(r) => Err(unexpected(r)),
        Err(e) => {
            info!(target: "web", "Command refused for {from}: {e}");
            Err(e.into())
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
    let action: ScheduleAction = action.parse()?;
    match s
        .room
        .apply(origin(&parts), Command::Schedule(action))
        .await?
    {
        Reply::Schedule(view) => Ok(Json(*view)),
        r => Err(unexpected(r)),
    }
}

/// `GET /api/control/channels`: every channel the scenes use, with their
/// messages, the board that answers it and the last result.
pub async fn control_channels(State(s): State<AppState>) -> Json<Vec<crate::room::Channel>> {
    Json(s.room.channels())
}

/// The body of `POST /api/control/send`.
#[derive(Deserialize)]
pub struct SendBody {
    topic: String,
    message: String,
}

/// `POST /api/control/send` `{"topic", "message"}` (token): sent now,
/// tracked for feedback like a cue (the result arrives as a `feedback`
/// event and in `/api/feedback`). 202.
pub async fn control_send(
    State(s): State<AppState>,
    parts: axum::http::request::Parts,
    body: Result<Json<SendBody>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), AppError> {
    let Json(b) = body?;
    let send = Command::Send {
        topic: b.topic,
        message: b.message,
    };
    match s.room.apply(origin(&parts), send).await? {
        Reply::Sent { id, feedback_topic } => Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"id": id, "feedback_topic": feedback_topic})),
        )),
        r => Err(unexpected(r)),
    }
}

/// `POST /api/control/devices/{id}/test` (token): resends the device's last
/// command and answers with the result and the reply latency.
pub async fn control_test(
    State(s): State<AppState>,
    Path(id): Path<String>,
    parts: axum::http::request::Parts,
) -> Result<Json<serde_json::Value>, AppError> {
    let r = match s
        .room
        .apply(origin(&parts), Command::TestDevice(id.clone()))
        .await?
    {
        Reply::Tested(r) => r,
        r => return Err(unexpected(r)),
    };
    Ok(Json(serde_json::json!({
        "device": id,
        "topic": r.command_topic,
        "message": r.message,
        "result": r.result,
        "latency": r.latency,
        "text": crate::room::describe(&r),
    })))
}

/// The body of `POST /api/control/volume`.
#[derive(Deserialize)]
pub struct VolumeBody {
    volume: f64,
}

/// `POST /api/control/volume` `{"volume": 0..1}` (token): master volume.
pub async fn control_volume(
    State(s): State<AppState>,
    parts: axum::http::request::Parts,
    body: Result<Json<VolumeBody>, JsonRejection>,
) -> Result<Json<serde_json::Value>, AppError> {
    let Json(b) = body?;
    let volume = Volume::new(b.volume)?;
    match s
        .room
        .apply(origin(&parts), Command::Volume(volume))
        .await?
    {
        Reply::Volume(v) => Ok(Json(serde_json::json!({"volume": v.get()}))),
        r => Err(unexpected(r)),
    }
}

/// `POST /api/control/audio/stop`, `/api/control/video/stop` (token).
pub async fn control_media_stop(
    State(s): State<AppState>,
    Path(player): Path<String>,
    parts: axum::http::request::Parts,
) -> Result<Json<serde_json::Value>, AppError> {
    let player: Player = player.parse()?;
    match s
        .room
        .apply(origin(&parts), Command::StopMedia(player))
        .await?
    {
        Reply::MediaStopped(p) => Ok(Json(serde_json::json!({"stopped": p}))),
        r => Err(unexpected(r)),
    }
}

/// `?since=<unix time>&limit=N&who=NAME` for the show log.
#[derive(Deserialize)]
pub struct LogQuery {
    since: Option<f64>,
    limit: Option<usize>,
    /// Only this person's (or `token NAME`'s) records.
    who: Option<String>,
}

pub(super) fn log_of(s: &AppState) -> Result<&crate::showlog::ShowLog, AppError> {
    s.room
        .show_log
        .as_ref()
        .ok_or_else(|| AppError::NotFound("no show log in this process".into()))
}

/// `GET /api/log?since=&limit=`: show log records after `since`, oldest
/// first, at most `limit` (default 200, at most 10000; the newest).
pub async fn show_log(
    State(s): State<AppState>,
    Query(q): Query<LogQuery>,
) -> Result<Json<Vec<crate::showlog::Record>>, AppError> {
    let log = log_of(&s)?.clone();
    let (since, limit) = (q.since.unwrap_or(0.0), q.limit.unwrap_or(200).min(10_000));
    let who = q.who.filter(|w| !w.is_empty());
    let r = tokio::task::spawn_blocking(move || log.query_by(since, limit, who.as_deref()))
        .await
        .unwrap_or_default();
    Ok(Json(r))
}

/// `GET /api/log.csv?since=`: the show log as CSV, for maintenance records.
pub async fn show_log_csv(
    State(s): State<AppState>,
    Query(q): Query<LogQuery>,
) -> Result<axum::response::Response, AppError> {
    let log = log_of(&s)?.clone();
    let since = q.since.unwrap_or(0.0);
    let room = s.room.config.room.clone();
    let tz = s.room.zone();
    let csv = tokio::task::spawn_blocking(move || {
        crate::showlog::to_csv(
            &log.query_by(
                since,
                usize::MAX,
                q.who.as_deref().filter(|w| !w.is_empty()),
            ),
            &tz,
        )
    })
    .await
    .unwrap_or_default();
    Ok(super::download(
        "text/csv; charset=utf-8",
        &format!("roomctl-{room}-show-log.csv"),
        csv,
    ))
}

/// `GET /api/log/today`: today's counts (local day, in the schedule's zone
/// when there is one): shows started and completed, timeouts per device,
/// errors, failovers.
pub async fn show_log_today(
    State(s): State<AppState>,
) -> Result<Json<serde_json::Value>, AppError> {
    let log = log_of(&s)?.clone();
    let now = jiff::Timestamp::now().to_zoned(s.room.zone());
    let start = now
        .start_of_day()
        .map(|z| z.timestamp())
        .unwrap_or(now.timestamp());
    let from = start.as_millisecond() as f64 / 1000.0;
    let counts = tokio::task::spawn_blocking(move || log.counts(from, f64::INFINITY))
        .await
        .unwrap_or_default();
    Ok(Json(serde_json::json!({
        "day": now.strftime("%Y-%m-%d").to_string(),
        "counts": counts,
    })))
}

/// `POST /api/reload`: scenes and config again, without a restart. A
/// config that does not load changes nothing (422, with the errors).
pub async fn reload(
    State(s): State<AppState>,
    parts: axum::http::request::Parts,
) -> Result<Json<ReloadReport>, AppError> {
    match s.room.apply(origin(&parts), Command::Reload).await? {
        Reply::Reloaded(report) => Ok(Json(*report)),
        r => Err(unexpected(r)),
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
