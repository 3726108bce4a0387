//! The Users tab's API (admin): users and API tokens, listed without any
//! hash; every change goes through the room's front door as a
//! [`Command::Account`], so it is checked and in the audit trail.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::api::origin;
use super::{AppError, AppState};
use crate::access::Role;
use crate::accounts::{AccountChange, AccountReply};
use crate::config::Secret;
use crate::room::{Command, Reply};

/// `GET /api/users`: `{"users": [...], "tokens": [...], "file": path}`.
pub async fn list(State(s): State<AppState>) -> Json<serde_json::Value> {
    let a = &s.room.accounts;
    Json(serde_json::json!({
        "users": a.users(),
        "tokens": a.tokens(),
        "file": a.path(),
    }))
}

async fn change(
    s: &AppState,
    parts: &axum::http::request::Parts,
    change: AccountChange,
) -> Result<AccountReply, AppError> {
    match s
        .room
        .apply(origin(parts), Command::Account(change))
        .await?
    {
        Reply::Account(r) => Ok(r),
        r => Err(super::api::unexpected(r)),
    }
}

fn role_named(text: &str) -> Result<Role, AppError> {
    text.parse()
        .map_err(|e: crate::access::NotARole| AppError::BadRequest(e.to_string()))
}

/// The body of `POST /api/users`.
#[derive(Deserialize)]
pub struct NewUser {
    name: String,
    role: String,
    password: String,
}

/// `POST /api/users` `{"name", "role", "password"}`: 201.
pub async fn add(
    State(s): State<AppState>,
    parts: axum::http::request::Parts,
    body: Result<Json<NewUser>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), AppError> {
    let Json(b) = body?;
    let add = AccountChange::AddUser {
        role: role_named(&b.role)?,
        name: b.name.clone(),
        password: Secret::new(b.password),
    };
    change(&s, &parts, add).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"added": b.name})),
    ))
}

/// The body of `POST /api/users/{name}/password`.
#[derive(Deserialize)]
pub struct NewPassword {
    password: String,
}

/// `POST /api/users/{name}/password` `{"password"}`: the user's sessions end.
pub async fn password(
    State(s): State<AppState>,
    Path(name): Path<String>,
    parts: axum::http::request::Parts,
    body: Result<Json<NewPassword>, JsonRejection>,
) -> Result<Json<serde_json::Value>, AppError> {
    let Json(b) = body?;
    let set = AccountChange::SetPassword {
        name: name.clone(),
        password: Secret::new(b.password),
    };
    change(&s, &parts, set).await?;
    Ok(Json(serde_json::json!({"changed": name})))
}

/// The body of `POST /api/users/{name}/role`.
#[derive(Deserialize)]
pub struct NewRole {
    role: String,
}

/// `POST /api/users/{name}/role` `{"role"}`: the user's sessions end.
pub async fn role(
    State(s): State<AppState>,
    Path(name): Path<String>,
    parts: axum::http::request::Parts,
    body: Result<Json<NewRole>, JsonRejection>,
) -> Result<Json<serde_json::Value>, AppError> {
    let Json(b) = body?;
    let r = role_named(&b.role)?;
    change(
        &s,
        &parts,
        AccountChange::SetRole {
            name: name.clone(),
            role: r,
        },
    )
    .await?;
    Ok(Json(serde_json::json!({"changed": name, "role": r})))
}

/// `DELETE /api/users/{name}`: removed and logged out.
pub async fn remove(
    State(s): State<AppState>,
    Path(name): Path<String>,
    parts: axum::http::request::Parts,
) -> Result<Json<serde_json::Value>, AppError> {
    change(&s, &parts, AccountChange::RemoveUser { name: name.clone() }).await?;
    Ok(Json(serde_json::json!({"removed": name})))
}

/// The body of `POST /api/tokens`.
#[derive(Deserialize)]
pub struct NewToken {
    name: String,
    role: String,
}

/// `POST /api/tokens` `{"name", "role"}`: 201 with the token, shown this
/// once.
pub async fn add_token(
    State(s): State<AppState>,
    parts: axum::http::request::Parts,
    body: Result<Json<NewToken>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), AppError> {
    let Json(b) = body?;
    let add = AccountChange::AddToken {
        role: role_named(&b.role)?,
        name: b.name,
    };
    match change(&s, &parts, add).await? {
        AccountReply::TokenCreated { name, token } => Ok((
            StatusCode::CREATED,
            Json(serde_json::json!({"name": name, "token": token.expose()})),
        )),
        AccountReply::Done => Err(AppError::Failed("no token was made".into())),
    }
}

/// `DELETE /api/tokens/{name}`.
pub async fn revoke_token(
    State(s): State<AppState>,
    Path(name): Path<String>,
    parts: axum::http::request::Parts,
) -> Result<Json<serde_json::Value>, AppError> {
    change(
        &s,
        &parts,
        AccountChange::RevokeToken { name: name.clone() },
    )
    .await?;
    Ok(Json(serde_json::json!({"revoked": name})))
}
