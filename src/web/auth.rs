//! Bearer-token check for the control routes (start, reload; stop too when
//! `web.open_stop` is off). Open when no `web.token` is configured. Every
//! refusal is logged with its source address, and says whether the token
//! was missing or wrong.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use tracing::warn;

use super::{AppError, AppState};
use crate::config::Secret;

pub async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let refused = match bearer(req.headers(), state.token.as_ref()) {
        Ok(()) => None,
        Err(Refusal::Missing) => Some("a token is needed (web.token): enter it on the dashboard"),
        Err(Refusal::Wrong) => Some("wrong token"),
    };
    if let Some(why) = refused {
        warn!(target: "web", "Refused {} {} from {}: {why}", req.method(), req.uri().path(), super::peer(req.extensions()));
        return AppError::Unauthorized(why).into_response();
    }
    next.run(req).await
}

/// Why a request's bearer token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No `Authorization: Bearer …`.
    Missing,
    /// A token that is not the one configured.
    Wrong,
}

/// Checks `Authorization: Bearer <token>` against `token`; anything goes
/// when no token is configured. (The dashboard's control routes and the
/// site page.)
pub(crate) fn bearer(headers: &HeaderMap, token: Option<&Secret>) -> Result<(), Refusal> {
    let Some(token) = token else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        None => Err(Refusal::Missing),
        Some(g) if !constant_time_eq(g.as_bytes(), token.expose().as_bytes()) => {
            Err(Refusal::Wrong)
        }
        Some(_) => Ok(()),
    }
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn compares_tokens() {
        assert!(super::constant_time_eq(b"abc", b"abc"));
        assert!(!super::constant_time_eq(b"abc", b"abd"));
        assert!(!super::constant_time_eq(b"abc", b"abcd"));
    }
}
