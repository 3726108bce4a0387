//! `GET /healthz`: the room's health (see `room::Health`). 200 unless
//! unhealthy (503), so a load balancer or watchdog only reacts to real
//! outages.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::room::HealthStatus;

/// `GET /healthz`: 200 healthy or degraded, 503 unhealthy, with the reasons.
pub async fn healthz(State(s): State<AppState>) -> Response {
    let h = s.room.health();
    let code = if h.status == HealthStatus::Unhealthy {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(h)).into_response()
}
