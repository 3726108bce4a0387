//! The web side: the dashboard (files from `static/`, embedded in the
//! binary), the JSON API, the Server-Sent Events stream, `/healthz` and
//! `/metrics`. [`app`] builds the router from shared state so tests can
//! drive it with `oneshot`; [`serve`] runs it until the shutdown token fires.
//!
//! The server must never starve the room of file descriptors: at most
//! `web.max_connections` connections are served at once (more are answered
//! `503` and closed at once, so they hold no descriptor), a request head must
//! arrive within `web.header_timeout` (which also closes idle keep-alive
//! connections), and at most `web.max_sse_clients` event streams stay
//! open, the oldest dropped for a new one.

mod api;
pub mod auth;
pub mod health;
mod logs;
mod media;
mod metrics;
mod session;
mod slots;
mod sse;
mod stats;
mod studio;
mod system;
mod users;
pub use auth::{Guard, Need, Rules};
pub use session::routes as session_routes;

/// The rules of logging in and out (for a router of its own, the site's).
pub fn session_rules() -> &'static [(Method, &'static str, Need)] {
    session::RULES
}

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use rust_embed::RustEmbed;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::Service;
use tracing::info;

use crate::access::Role;
use crate::ratelog;
use crate::ratelog::{LogLimit, RateLog};
use crate::room::{Room, RoomError};

#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

/// The front-end libraries, from npm (web/package-lock.json pins them;
/// build.rs installs them): served under `/assets/vendor/`.
#[derive(RustEmbed)]
#[folder = "web/node_modules/"]
#[include = "codemirror/lib/*"]
#[include = "codemirror/mode/yaml/*"]
#[include = "codemirror/mode/javascript/*"]
#[include = "codemirror/addon/lint/lint.*"]
#[include = "codemirror/addon/hint/show-hint.*"]
#[include = "codemirror/LICENSE"]
#[include = "uplot/dist/uPlot.iife.min.js"]
#[include = "uplot/dist/uPlot.min.css"]
#[include = "uplot/LICENSE"]
struct Vendor;

/// `body` as a file to save: `content_type` (`text/csv; charset=utf-8`)
/// and the name the browser saves it under.
pub(super) fn download(
    content_type: &'static str,
    name: &str,
    body: String,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [
            (hyper::header::CONTENT_TYPE, content_type.to_string()),
            (
                hyper::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The room.
    pub room: Room,
    /// Who may do what (the room's accounts, the routes' rules).
    pub guard: Guard,
    /// Ends open SSE streams at shutdown.
    pub shutdown: CancellationToken,
    /// The open event streams.
    pub(crate) sse: sse::Clients,
    /// How often every event stream gets a `tick` (the page's proof that
    /// its link is alive).
    pub tick: Duration,
    /// Served under `/site` too (the demo's site overview).
    pub site: Option<Router>,
    /// The sounds' lengths the studio's timelines have measured.
    pub(crate) lengths: Arc<crate::studio::Lengths>,
    /// The studio's preview (one at a time: a new one ends the last).
    pub(crate) preview: Arc<parking_lot::Mutex<Option<crate::studio::Preview>>>,
}

impl AppState {
    /// State for `room`; `shutdown` ends SSE streams.
    pub fn new(room: Room, shutdown: CancellationToken) -> Self {
        AppState {
            guard: Guard {
                rules: Arc::new(rules()),
                ..Guard::new(room.accounts.clone(), &room.config.web)
            },
            sse: sse::Clients::new(room.config.web.max_sse_clients),
            room,
            shutdown,
            tick: sse::TICK,
            site: None,
            lengths: Arc::default(),
            preview: Arc::default(),
        }
    }

    /// Also serves `site` (the router of `roomctl site`) under `/site`.
    pub fn with_site(mut self, site: Router) -> Self {
        self.site = Some(site);
        self
    }

    /// Ticks every `every` instead of [`sse::TICK`] (tests).
    #[cfg(any(test, feature = "testkit"))]
    pub fn tick_every(mut self, every: Duration) -> Self {
        self.tick = every.max(Duration::from_millis(100));
        self
    }
}

/// Every route of the dashboard and its API with its rule: the router and
/// the access table are both built from this one list, so no route exists
/// without a rule. (Logging in and out: [`session::routes`].)
fn routes() -> Vec<(Method, &'static str, Need, MethodRouter<AppState>)> {
    use Need::{Panic, Public};
    let read = Need::Role(Role::Viewer);
    let operator = Need::Role(Role::Operator);
    let technician = Need::Role(Role::Technician);
    let admin = Need::Role(Role::Admin);
    let mut all = vec![
        (Method::GET, "/", Public, get(index)),
        (Method::GET, "/login", Public, get(login_page)),
        (Method::GET, "/assets/{*path}", Public, get(asset)),
        (Method::GET, "/healthz", Public, get(health::healthz)),
        (Method::GET, "/metrics", read, get(metrics::metrics)),
        (Method::GET, "/api/status", read, get(api::status)),
        (Method::GET, "/api/devices", read, get(api::devices)),
        (Method::GET, "/api/outputs", read, get(api::outputs)),
        (Method::GET, "/api/scenes", read, get(api::scenes)),
        (Method::GET, "/api/commands", read, get(api::commands)),
        (Method::GET, "/api/schedule", read, get(api::schedule)),
        (
            Method::GET,
            "/api/control/channels",
            read,
            get(api::control_channels),
        ),
        (Method::GET, "/api/log", read, get(api::show_log)),
        (Method::GET, "/api/log.csv", read, get(api::show_log_csv)),
        (
            Method::GET,
            "/api/log/today",
            read,
            get(api::show_log_today),
        ),
        (Method::GET, "/api/feedback", read, get(api::feedback)),
        (Method::GET, "/api/events", read, get(sse::events)),
        // The panic button and the E-stop: open to everyone with
        // web.open_stop.
        (
            Method::POST,
            "/api/scenes/stop",
            Panic,
            post(api::stop_scene),
        ),
        (Method::POST, "/api/estop", Panic, post(api::estop)),
        (
            Method::POST,
            "/api/estop/reset",
            technician,
            post(api::estop_reset),
        ),
        (
            Method::POST,
            "/api/scenes/{name}/start",
            operator,
            post(api::start_scene),
        ),
        (
            Method::POST,
            "/api/commands/{name}/run",
            operator,
            post(api::run_command),
        ),
        (
            Method::POST,
            "/api/schedule/{action}",
            operator,
            post(api::schedule_control),
        ),
        (Method::POST, "/api/reload", technician, post(api::reload)),
        (
            Method::POST,
            "/api/control/send",
            technician,
            post(api::control_send),
        ),
        (
            Method::POST,
            "/api/control/devices/{id}/test",
            technician,
            post(api::control_test),
        ),
        (
            Method::POST,
            "/api/control/volume",
            technician,
            post(api::control_volume),
        ),
        (
            Method::POST,
            "/api/control/{player}/stop",
            technician,
            post(api::control_media_stop),
        ),
        (Method::GET, "/api/users", admin, get(users::list)),
        (Method::POST, "/api/users", admin, post(users::add)),
        (
            Method::POST,
            "/api/users/{name}/password",
            admin,
            post(users::password),
        ),
        (
            Method::POST,
            "/api/users/{name}/role",
            admin,
            post(users::role),
        ),
        (
            Method::DELETE,
            "/api/users/{name}",
            admin,
            delete(users::remove),
        ),
        (Method::POST, "/api/tokens", admin, post(users::add_token)),
        (
            Method::DELETE,
            "/api/tokens/{name}",
            admin,
            delete(users::revoke_token),
        ),
    ];
    all.extend(studio::routes(technician));
    all.extend(media::routes(technician));
    all.extend(logs::routes(technician));
    all.extend(system::routes(read, admin));
    all.extend(stats::routes(read));
    all
}

/// The rule of every route of [`app`].
pub fn rules() -> Rules {
    let mut r = Rules::default();
    for (m, p, n, _) in routes() {
        r.insert(m, p, n);
    }
    for (m, p, n) in session::RULES {
        r.insert(m.clone(), p, *n);
    }
    r
}

/// The whole HTTP surface.
pub fn app(state: AppState) -> Router {
    let mut app = Router::new();
    for (_, path, _, handler) in routes() {
        app = app.route(path, handler);
    }
    let guard = state.guard.clone();
    let app = app
        .fallback(not_found)
        .with_state(state.clone())
        .merge(session::routes(guard.clone()))
        .route_layer(axum::middleware::from_fn_with_state(guard, auth::guard));
    match state.site {
        Some(site) => app.nest("/site", site),
        None => app,
    }
}

/// How long open connections may take to finish at shutdown.
const GRACE: Duration = Duration::from_secs(1);

/// The answer to a connection over `web.max_connections`.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 52\r\n\r\n{\"error\": \"too many connections, try again shortly\"}";

/// Serves until `shutdown` fires: at most `web.max_connections` at once
/// (more get a `503` and are closed at once), each with
/// `web.header_timeout` for every request head (also the idle keep-alive
/// limit). Each connection is a task of the room.
pub async fn serve(listener: TcpListener, state: AppState) -> std::io::Result<()> {
    let web = &state.room.config.web;
    info!(target: "web", "Dashboard on http://{} (at most {} connections)",
        listener.local_addr()?, web.max_connections);
    let limits = Limits {
        max_connections: web.max_connections,
        header_timeout: web.header_timeout,
    };
    let room = state.room.clone();
    serve_router(
        listener,
        app(state.clone()),
        limits,
        state.shutdown.clone(),
        move |f| room.spawn(f),
    )
    .await
}

/// The connection limits of a server (`web.max_connections`,
/// `web.header_timeout`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; more get a `503` and are closed.
    pub max_connections: usize,
    /// For every request head, and the idle keep-alive limit.
    pub header_timeout: Duration,
}

/// Serves `app` on `listener` within `limits` until `shutdown`; `spawn`
/// runs each connection's task (the dashboard's and the site page's
/// server).
pub async fn serve_router(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: CancellationToken,
    spawn: impl Fn(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>),
) -> std::io::Result<()> {
    let slots = slots::Slots::new(limits.max_connections);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Some(limits.header_timeout))
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let log = parking_lot::Mutex::new(RateLog::new(LogLimit::default()));
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors, say: back off instead of spinning.
                    ratelog!(log, warn, "web", "accept", "Dashboard cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Over the cap (or this address's share of it): a short answer and
        // the connection is closed, so the backlog never fills with
        // connections waiting for a slot.
        let slot = match slots.take(peer.ip()) {
            Ok(s) => s,
            Err(full) => {
                let _ = stream.try_write(BUSY);
                match full {
                    slots::Full::All => ratelog!(
                        log,
                        warn,
                        "web",
                        "busy",
                        "Busy ({} connections, web.max_connections): refused {peer}",
                        limits.max_connections
                    ),
                    slots::Full::Address => ratelog!(
                        log,
                        warn,
                        "web",
                        "busy address",
                        "{} connections from {}, its share: refused another",
                        slots.per_address(),
                        peer.ip()
                    ),
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let svc = service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().call(req)
        });
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), svc));
        spawn(Box::pin(async move {
            if let Err(e) = conn.await {
                tracing::debug!(target: "web", "Connection from {peer} ended: {e}");
            }
            drop(slot);
        }));
    }
    if tokio::time::timeout(GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!(target: "web", "Closed connections still busy at shutdown");
    }
    Ok(())
}

async fn index() -> Response {
    asset_response("index.html")
}

async fn login_page() -> Response {
    asset_response("login.html")
}

async fn asset(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches("/assets/");
    asset_response(path)
}

pub(crate) fn asset_response(path: &str) -> Response {
    let file = match path.strip_prefix("vendor/") {
        Some(p) => Vendor::get(p),
        None => Assets::get(path),
    };
    match file {
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

/// Who sent a request, for the log (`unknown` when served without a
/// socket, as in tests).
pub(crate) fn peer(req: &axum::http::Extensions) -> String {
    req.get::<ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.to_string())
}

/// The peer's IP address (0.0.0.0 when served without a socket, as in
/// tests): what per-address limits and the login limiter count by.
pub(crate) fn peer_ip(req: &axum::http::Extensions) -> std::net::IpAddr {
    req.get::<ConnectInfo<std::net::SocketAddr>>()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
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
    #[error("{0}")]
    /// 401: who you are is not known (or not any more): why.
    Unauthorized(String),
    #[error("{0}")]
    /// 403: who you are may not do this: why.
    Forbidden(String),
    #[error("{0}")]
    /// 429: try again later.
    TooMany(String, std::time::Duration),
    #[error("{0}")]
    /// 500: it could not be done, nothing changed.
    Failed(String),
    #[error("{0}")]
    /// 400.
    BadRequest(String),
    #[error("{0}")]
    /// 413: over a size limit, named.
    TooLarge(String),
    #[error("{0}")]
    /// 507: done in memory, but it could not be written to disk.
    NotSaved(String),
    /// The room refused a command (404, 409, 400, 507 or 422 by kind).
    #[error(transparent)]
    Room(#[from] RoomError),
    /// A JSON body that does not parse or has the wrong shape (its own
    /// 4xx), in the same `{"error": ...}` shape as every other error.
    #[error("{}", .0.body_text())]
    Body(#[from] axum::extract::rejection::JsonRejection),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = match &self {
            AppError::NotFound(_) | AppError::Room(RoomError::NotFound(_)) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) | AppError::Room(RoomError::Conflict(_)) => StatusCode::CONFLICT,
            AppError::Room(RoomError::Latched(_)) => StatusCode::LOCKED,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) | AppError::Room(RoomError::Forbidden(_)) => {
                StatusCode::FORBIDDEN
            }
            AppError::TooMany(..) => StatusCode::TOO_MANY_REQUESTS,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Failed(_) | AppError::Room(RoomError::Failed(_)) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            AppError::BadRequest(_) | AppError::Room(RoomError::BadRequest(_)) => {
                StatusCode::BAD_REQUEST
            }
            AppError::NotSaved(_) | AppError::Room(RoomError::NotSaved(_)) => {
                StatusCode::INSUFFICIENT_STORAGE
            }
            AppError::Room(RoomError::Reload(_) | RoomError::Invalid { .. }) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            AppError::Body(r) => r.status(),
        };
        let mut body = json!({"error": self.to_string()});
        if let AppError::Room(RoomError::Reload(errors)) = &self {
            body["errors"] = errors.iter().map(ToString::to_string).collect();
        }
        if let AppError::Room(RoomError::Invalid { errors, warnings }) = &self {
            body["diagnostics"] = studio::diagnostics(errors, warnings);
        }
        let mut r = (status, axum::Json(body)).into_response();
        if matches!(self, AppError::Unauthorized(_)) {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let AppError::TooMany(_, wait) = &self {
            r.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(crate::accounts::whole_seconds(*wait)),
            );
        }
        r
    }
}
