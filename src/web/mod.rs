//! The web side: the dashboard (files from `static/`, embedded in the
//! binary), the JSON API, the Server-Sent Events stream, `/healthz` and
//! `/metrics`. [`app`] builds the router from shared state so tests can
//! drive it with `oneshot`; [`serve`] runs it until the shutdown token fires.

mod api;
mod auth;
mod health;
mod metrics;
mod sse;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rust_embed::RustEmbed;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::app::Room;
use crate::config::Secret;

pub use health::{Health, HealthStatus, health};

#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The room.
    pub room: Room,
    /// `web.token`.
    pub token: Option<Secret>,
    /// Problems found at start (scene files that did not load, …).
    pub load_errors: Arc<Vec<String>>,
    /// Ends open SSE streams at shutdown.
    pub shutdown: CancellationToken,
}

impl AppState {
    /// State for `room`; `load_errors` are shown in health; `shutdown` ends SSE streams.
    pub fn new(room: Room, load_errors: Vec<String>, shutdown: CancellationToken) -> Self {
        AppState {
            token: room.config.web.token.clone(),
            room,
            load_errors: Arc::new(load_errors),
            shutdown,
        }
    }
}

/// The whole HTTP surface.
pub fn app(state: AppState) -> Router {
    let control = Router::new()
        .route("/api/scenes/{name}/start", post(api::start_scene))
        .route("/api/scenes/stop", post(api::stop_scene))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/", get(index))
        .route("/assets/{*path}", get(asset))
        .route("/api/status", get(api::status))
        .route("/api/devices", get(api::devices))
        .route("/api/scenes", get(api::scenes))
        .route("/api/feedback", get(api::feedback))
        .route("/api/events", get(sse::events))
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(metrics::metrics))
        .merge(control)
        .fallback(not_found)
        .with_state(state)
}

/// Serves until `shutdown` fires.
pub async fn serve(listener: TcpListener, state: AppState) -> std::io::Result<()> {
    let shutdown = state.shutdown.clone();
    info!(target: "web", "Dashboard on http://{}", listener.local_addr()?);
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

async fn index() -> Response {
    asset_response("index.html")
}

async fn asset(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches("/assets/");
    asset_response(path)
}

fn asset_response(path: &str) -> Response {
    match Assets::get(path) {
        Some(f) => {
            let mime = f.metadata.mimetype();
            (
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_str(mime)
                            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
                    ),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                ],
                f.data,
            )
                .into_response()
        }
        None => AppError::NotFound(format!("no asset {path}")).into_response(),
    }
}

async fn not_found(uri: Uri) -> AppError {
    AppError::NotFound(format!("no route {}", uri.path()))
}

/// Errors as JSON responses: `{"error": "..."}`.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    /// 404.
    NotFound(String),
    #[error("{0}")]
    /// 409 (a scene is running).
    Conflict(String),
    #[error("missing or wrong bearer token")]
    /// 401.
    Unauthorized,
    #[error("{0}")]
    /// 400.
    BadRequest(String),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = match &self {
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
        };
        let mut r = (status, axum::Json(json!({"error": self.to_string()}))).into_response();
        if matches!(self, AppError::Unauthorized) {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}
