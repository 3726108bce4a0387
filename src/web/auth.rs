//! Bearer-token check for the control routes (start, reload; stop too when
//! `web.open_stop` is off). Open when no `web.token` is configured. Every
//! refusal is logged with its source address, and says whether the token
//! was missing or wrong.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use tracing::warn;

use super::{AppError, AppState};

pub async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(token) = &state.token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let refused = match given {
            None => Some("a token is needed (web.token): enter it on the dashboard"),
            Some(g) if !constant_time_eq(g.as_bytes(), token.expose().as_bytes()) => {
                Some("wrong token")
            }
            Some(_) => None,
        };
        if let Some(why) = refused {
            warn!(target: "web", "Refused {} {} from {}: {why}", req.method(), req.uri().path(), super::peer(req.extensions()));
            return AppError::Unauthorized(why).into_response();
        }
    }
    next.run(req).await
}

/// Compares without an early exit on the first differing byte.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
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
