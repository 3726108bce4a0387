//! Logging in and out, and "who am I": `POST /api/login` `{"user",
//! "password"}` sets the session cookie (HttpOnly, SameSite=Strict, `Secure`
//! behind TLS, `Max-Age` the absolute expiry), `POST /api/logout` ends it,
//! `GET /api/me` says who the caller is and what they may do, for the
//! dashboard to show only that. Shared by the dashboard and the site page.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::AppError;
use super::auth::{COOKIE, Guard, Need, bearer_token, session_id};
use crate::access::{Actor, Role};
use crate::accounts::LoginError;

/// The rules of these routes (all public: they are how one gets in).
pub const RULES: &[(Method, &str, Need)] = &[
    (Method::POST, "/api/login", Need::Public),
    (Method::POST, "/api/logout", Need::Public),
    (Method::GET, "/api/me", Need::Public),
];

/// The routes, with their state.
pub fn routes(guard: Guard) -> Router {
    Router::new()
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/me", get(me))
        .with_state(guard)
}

#[derive(Deserialize)]
struct LoginBody {
    user: String,
    password: String,
}

fn secure(g: &Guard, headers: &HeaderMap) -> bool {
    g.secure_cookie
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn cookie(value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let c = cookie::Cookie::build((COOKIE, value))
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .path("/")
        .max_age(cookie::time::Duration::seconds(max_age as i64))
        .secure(secure)
        .build();
    HeaderValue::from_str(&c.to_string()).expect("a cookie of hex and ASCII is a header value")
}

async fn login(
    State(g): State<Guard>,
    parts: axum::http::request::Parts,
    body: Result<Json<LoginBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, AppError> {
    let Json(b) = body?;
    let (id, actor) = g
        .accounts
        .login(&b.user, &b.password, super::peer_ip(&parts.extensions))
        .await
        .map_err(|e| match e {
            LoginError::Invalid(_) => AppError::BadRequest(e.to_string()),
            LoginError::Wrong => AppError::Unauthorized(e.to_string()),
            LoginError::Locked { wait, .. } => AppError::TooMany(e.to_string(), wait),
        })?;
    let max_age = g.accounts.session_max().as_secs();
    let mut r = Json(serde_json::json!({"user": b.user, "role": actor.role()})).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        cookie(&id, max_age, secure(&g, &parts.headers)),
    );
    Ok(r)
}

async fn logout(State(g): State<Guard>, parts: axum::http::request::Parts) -> Response {
    if let Some(id) = session_id(&parts.headers) {
        g.accounts.logout(&id, &super::peer(&parts.extensions));
    }
    let mut r = Json(serde_json::json!({"logged_out": true})).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        cookie("", 0, secure(&g, &parts.headers)),
    );
    r
}

/// The answer of `GET /api/me`.
#[derive(Serialize)]
pub struct Me {
    /// `user`, `token` or `anonymous`.
    pub kind: &'static str,
    /// The user's or token's name.
    pub name: Option<String>,
    /// What the caller may do (`null`: nothing, log in).
    pub role: Option<Role>,
    /// No account or token exists: everything is open to everyone.
    pub open: bool,
    /// The panic stop needs no login.
    pub open_stop: bool,
    /// The accounts file does not load (nothing opens until it is fixed).
    pub problem: Option<String>,
    /// Why the credentials sent were not taken (`wrong token`, `your
    /// session has ended: log in again`).
    pub refused: Option<String>,
}

async fn me(State(g): State<Guard>, headers: HeaderMap) -> Json<Me> {
    let found = match bearer_token(&headers) {
        Ok(Some(t)) => Some(g.accounts.token(t).map_err(|e| e.to_string())),
        Ok(None) => {
            session_id(&headers).map(|id| g.accounts.session(&id).map_err(|e| e.to_string()))
        }
        Err(_) => Some(Err(
            "the Authorization header is not `Bearer <token>`".to_string()
        )),
    };
    let (actor, refused) = match found {
        Some(Ok(a)) => (Some(a), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    let (kind, name, role) = match actor {
        Some(Actor::User { name, role }) => ("user", Some(name), Some(role)),
        Some(Actor::Token { name, role }) => ("token", Some(name), Some(role)),
        _ => ("anonymous", None, g.accounts.anonymous()),
    };
    Json(Me {
        kind,
        name,
        role,
        open: g.accounts.is_open(),
        open_stop: g.open_stop,
        problem: g.accounts.problem(),
        refused,
    })
}
