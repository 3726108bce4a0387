//! The studio's preview: the editor's text run with nothing sent to the
//! boards (see [`crate::studio::Preview`]), one at a time; its sounds on
//! the Pi when asked, through the room's front door
//! ([`Command::PreviewSound`]), in order.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{blocking, checked, within_limit};
use crate::room::{Command, Player};
use crate::studio::Speakers;
use crate::web::api::origin;
use crate::web::{AppError, AppState};

/// At most this many sound commands wait to be played.
const SOUND_QUEUE: usize = 64;

/// The body of `POST /api/studio/preview`.
#[derive(Deserialize)]
pub struct PreviewBody {
    file: String,
    text: String,
    /// Play its sounds on the Pi.
    #[serde(default)]
    sounds: bool,
}

/// `POST /api/studio/preview` `{file, text, sounds}`: runs the text's
/// scene with nothing sent to the boards (422 with diagnostics when it
/// does not load); `sounds` plays its sounds on the Pi (409 while a scene
/// runs).
pub async fn start(
    State(s): State<AppState>,
    parts: axum::http::request::Parts,
    body: Result<Json<PreviewBody>, JsonRejection>,
) -> Result<Json<Value>, AppError> {
    let Json(b) = body?;
    within_limit(&b.text)?;
    let s2 = s.clone();
    let found = blocking(move || {
        let found = checked(&s2, &b.file, &b.text)?;
        // Every sound and clip measured here, off the runtime: the preview
        // then finds their lengths remembered.
        for a in found.scene.iter().flat_map(|sc| sc.all_actions()) {
            s2.lengths.of(&s2.room.config.media, a);
        }
        Ok(found)
    })
    .await?;
    let Some(scene) = found.scene.filter(|_| found.errors.is_empty()) else {
        return Err(AppError::Room(crate::room::RoomError::Invalid {
            errors: found.errors,
            warnings: found.warnings,
        }));
    };
    let (lengths, media) = (s.lengths.clone(), s.room.config.media.clone());
    let speakers = if b.sounds {
        s.room.preview_refusal(Player::Audio)?;
        Some(speakers(&s, &parts))
    } else {
        None
    };
    let preview =
        crate::studio::Preview::start(scene, Box::new(move |a| lengths.of(&media, a)), speakers);
    let view = preview.view();
    *s.preview.lock() = Some(preview);
    Ok(Json(json!(view)))
}

/// `GET /api/studio/preview`: what the preview did so far (404: none).
pub async fn view(State(s): State<AppState>) -> Result<Json<Value>, AppError> {
    let p = s.preview.lock();
    let p = p
        .as_ref()
        .ok_or_else(|| AppError::NotFound("no preview has run".into()))?;
    Ok(Json(json!(p.view())))
}

/// The body of `POST /api/studio/preview/input`.
#[derive(Deserialize)]
pub struct InputBody {
    topic: String,
    payload: String,
}

/// `POST /api/studio/preview/input` `{topic, payload}`: a message for the
/// preview, as if a board had sent it.
pub async fn input(
    State(s): State<AppState>,
    body: Result<Json<InputBody>, JsonRejection>,
) -> Result<Json<Value>, AppError> {
    let Json(b) = body?;
    if b.topic.len() > 256 || b.payload.len() > 1024 {
        return Err(AppError::BadRequest("topic or payload too long".into()));
    }
    let p = s.preview.lock();
    let p = p
        .as_ref()
        .ok_or_else(|| AppError::NotFound("no preview is running".into()))?;
    if !p.input(&b.topic, &b.payload) {
        return Err(AppError::Conflict(
            "the preview is not taking messages now".into(),
        ));
    }
    Ok(Json(json!(p.view())))
}

/// `POST /api/studio/preview/stop`: ends the preview.
pub async fn stop(State(s): State<AppState>) -> Result<Json<Value>, AppError> {
    let p = s.preview.lock();
    let p = p
        .as_ref()
        .ok_or_else(|| AppError::NotFound("no preview is running".into()))?;
    p.stop();
    Ok(Json(json!({"stopped": p.view().scene})))
}

/// The preview's sounds, given to the room one after the other as the
/// person who started it.
fn speakers(s: &AppState, parts: &axum::http::request::Parts) -> Speakers {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(SOUND_QUEUE);
    let (room, who) = (s.room.clone(), origin(parts));
    tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if let Err(e) = room.apply(who.clone(), Command::PreviewSound(m)).await {
                tracing::info!(target: "media", "a preview's sound is not played: {e}");
            }
        }
    });
    std::sync::Arc::new(move |m: &str| {
        if tx.try_send(m.to_string()).is_err() {
            tracing::warn!(target: "media", "a preview's sounds come too fast; one is not played");
        }
    })
}
