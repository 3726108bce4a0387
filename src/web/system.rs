//! The System card's API: the box the room runs on (any reader), and a
//! restart of the daemon (admin; only under systemd, which starts it
//! again).

use axum::Json;
use axum::extract::State;
use axum::http::Method;
use axum::routing::{MethodRouter, get, post};
use serde_json::{Value, json};

use super::api::origin;
use super::auth::Need;
use super::studio::blocking;
use super::{AppError, AppState};
use crate::room::{Command, Reply};
use crate::system::SystemView;

/// The System card's routes.
pub(super) fn routes(
    read: Need,
    admin: Need,
) -> Vec<(Method, &'static str, Need, MethodRouter<AppState>)> {
    vec![
        (Method::GET, "/api/system", read, get(view)),
        (Method::POST, "/api/system/restart", admin, post(restart)),
    ]
}

/// `GET /api/system`: version, host, uptime, free space of the media and
/// state disks, CPU temperature, whether a restart is possible.
pub async fn view(State(s): State<AppState>) -> Result<Json<SystemView>, AppError> {
    let room = s.room.clone();
    let v = blocking(move || {
        Ok(crate::system::view(
            room.started,
            room.config.media.audio_dir(),
            &room.config.state_dir,
        ))
    })
    .await?;
    Ok(Json(v))
}

/// `POST /api/system/restart`: the daemon stops (its scene's safe state,
/// STOP, offline) and systemd starts it again; 409 when not run by
/// systemd.
pub async fn restart(
    State(s): State<AppState>,
    parts: axum::http::request::Parts,
) -> Result<Json<Value>, AppError> {
    match s.room.apply(origin(&parts), Command::Restart).await? {
        Reply::Restarting => Ok(Json(json!({"restarting": true}))),
        r => Err(super::api::unexpected(r)),
    }
}
