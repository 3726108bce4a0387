//! The studio's edits without typing: the editor's text with a state
//! renamed, or a cue, state or transition added, changed, moved or
//! removed (see [`crate::studio::Edit`]). Nothing is saved: the editor
//! shows the new text, checked as any typing is, and the author saves it.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use serde::Deserialize;
use serde_json::{Value, json};

use super::within_limit;
use crate::studio::Edit;
use crate::web::AppError;

/// The body of `POST /api/studio/rename-state`.
#[derive(Deserialize)]
pub struct RenameState {
    text: String,
    old: String,
    new: String,
}

/// `POST /api/studio/rename-state` `{text, old, new}`: the text with the
/// state renamed where it is named.
pub async fn rename_state(
    body: Result<Json<RenameState>, JsonRejection>,
) -> Result<Json<Value>, AppError> {
    let Json(b) = body?;
    within_limit(&b.text)?;
    let text = crate::studio::rename_state(&b.text, &b.old, &b.new)
        .map_err(|e| AppError::BadRequest(e.0))?;
    Ok(Json(json!({"text": text})))
}

/// The body of `POST /api/studio/edit`.
#[derive(Deserialize)]
pub struct EditBody {
    text: String,
    edit: Edit,
}

/// `POST /api/studio/edit` `{text, edit: {op, ...}}`: the text with the
/// edit made in the author's format (400 saying why it cannot be made).
pub async fn edit(body: Result<Json<EditBody>, JsonRejection>) -> Result<Json<Value>, AppError> {
    let Json(b) = body?;
    within_limit(&b.text)?;
    let text = crate::studio::edit(&b.text, &b.edit).map_err(|e| AppError::BadRequest(e.0))?;
    Ok(Json(json!({"text": text})))
}
