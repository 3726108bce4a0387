//! Bearer-token check for the control routes (start, reload; stop too when
//! `web.open_stop` is off). Open when no `web.token` is configured. Every
//! refusal is logged with its source address, and says whether the token
//! was missing or wrong.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use subtle::ConstantTimeEq;
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
        Some(g) if !bool::from(g.as_bytes().ct_eq(token.expose().as_bytes())) => {
            Err(Refusal::Wrong)
        }
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, auth.parse().unwrap());
        h
    }

    #[test]
    fn compares_tokens_whole() {
        let token = Some(crate::config::Secret::new("abc"));
        assert!(bearer(&with("Bearer abc"), token.as_ref()).is_ok());
        for wrong in ["Bearer abd", "Bearer abcd", "Bearer ab", "Bearer "] {
            assert!(
                matches!(bearer(&with(wrong), token.as_ref()), Err(Refusal::Wrong)),
                "{wrong}"
            );
        }
        assert!(matches!(
            bearer(&HeaderMap::new(), token.as_ref()),
            Err(Refusal::Missing)
        ));
    }
}
