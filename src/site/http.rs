//! The site page's HTTP side: the page, the login page, `GET /api/rooms`
//! (changes since a version), starts and stops, behind the guard of the
//! room config's accounts.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};

use super::{Changes, Site, SiteError};
use crate::access::Actor;
use crate::mqtt::unix_now;

impl Site {
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
        rules.insert(
            Method::POST,
            "/api/rooms/{room}/stop",
            Need::Role(Role::Operator),
        );
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
    /// The first broker's connection (the page's header before it knew
    /// of several).
    mqtt: crate::events::ConnectionStatus,
    /// Every broker's connection.
    brokers: Vec<crate::events::ConnectionStatus>,
    #[serde(flatten)]
    changes: Changes,
}

/// `?since=<version>`: only what changed after it.
#[derive(Deserialize)]
struct Since {
    since: Option<u64>,
}

/// `GET /api/rooms[?since=V]`: every room, or only the rooms changed
/// after version `V` and those dropped (`full: false`), with the version
/// to ask from next.
async fn rooms(
    State(site): State<Site>,
    axum::extract::Query(q): axum::extract::Query<Since>,
) -> Json<RoomsReply> {
    Json(RoomsReply {
        now: unix_now(),
        mqtt: site
            .inner
            .clients
            .first()
            .map(|(_, h)| h.status())
            .unwrap_or_else(|| crate::events::ConnectionStatus {
                state: crate::mqtt::ConnectionState::Disconnected,
                broker: None,
                broker_priority_index: None,
                broker_count: 0,
                since: unix_now(),
                last_error: Some("no broker is configured".into()),
            }),
        brokers: site.inner.clients.iter().map(|(_, h)| h.status()).collect(),
        changes: site.changes(q.since),
    })
}

#[derive(Deserialize)]
struct StartBody {
    scene: String,
}

/// The answer to a start or stop by nobody in particular: rooms are run
/// from the site page only by someone it knows.
fn anonymous_refused() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "log in first: the site page runs rooms only for a known person or token (roomctl site --users FILE, or -c with a room's accounts)",
    )
}

async fn start(
    State(site): State<Site>,
    Path(room): Path<String>,
    Extension(actor): Extension<Actor>,
    Json(b): Json<StartBody>,
) -> Response {
    let Some(by) = actor.who() else {
        return anonymous_refused();
    };
    match site.start_scene(&room, &b.scene, &by) {
        Ok(()) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"room": room, "started": b.scene})),
        )
            .into_response(),
        Err(e) => site_error(e),
    }
}

async fn stop(
    State(site): State<Site>,
    Path(room): Path<String>,
    Extension(actor): Extension<Actor>,
) -> Response {
    let Some(by) = actor.who() else {
        return anonymous_refused();
    };
    match site.stop_scene(&room, &by) {
        Ok(()) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"room": room, "stopped": true})),
        )
            .into_response(),
        Err(e) => site_error(e),
    }
}
