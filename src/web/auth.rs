//! Who is asking, and may they: every request passes [`guard`], which finds
//! the caller (a bearer token, else the session cookie, else anonymous),
//! refuses cross-site writes, and checks the route's rule in the table the
//! router was built from ([`Rules`]). A route without a rule is refused
//! (fail closed). The caller's [`Actor`] is left in the request for the
//! handlers, which put it into the command's origin; the room checks the
//! command's own rule again ([`crate::room::Command::needs`]).
//!
//! Bearer tokens are read as RFC 7235 and RFC 6750 say: the scheme in any
//! case, one or more spaces, then the token in `b64token` characters.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::warn;

use super::AppError;
use crate::access::{Actor, Role};
use crate::accounts::{Accounts, AuthError};

/// The session cookie's name.
pub const COOKIE: &str = "roomctl_session";

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Anyone, logged in or not: the pages, their assets, `/healthz`,
    /// logging in and out.
    Public,
    /// At least this role (`viewer` for reading).
    Role(Role),
    /// The panic stop: `operator`, or anyone when `web.open_stop` is set.
    Panic,
}

/// The rule of every route, by method and path pattern.
#[derive(Debug, Default)]
pub struct Rules(HashMap<(Method, &'static str), Need>);

impl Rules {
    /// Adds a route's rule.
    pub fn insert(&mut self, method: Method, path: &'static str, need: Need) {
        assert!(
            self.0.insert((method.clone(), path), need).is_none(),
            "two rules for {method} {path}"
        );
    }

    /// The rule of `method` `path`.
    pub fn get(&self, method: &Method, path: &str) -> Option<Need> {
        // HEAD is served by the GET handler.
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        self.0
            .iter()
            .find(|((m, p), _)| m == method && *p == path)
            .map(|(_, n)| *n)
    }

    /// Every rule, sorted by path and method (the access table).
    pub fn all(&self) -> Vec<(Method, &'static str, Need)> {
        let mut v: Vec<_> = self
            .0
            .iter()
            .map(|((m, p), n)| (m.clone(), *p, *n))
            .collect();
        v.sort_by(|a, b| (a.1, a.0.as_str()).cmp(&(b.1, b.0.as_str())));
        v
    }
}

/// What [`guard`] needs.
#[derive(Clone)]
pub struct Guard {
    /// The accounts.
    pub accounts: Accounts,
    /// The routes' rules.
    pub rules: Arc<Rules>,
    /// `web.open_stop`.
    pub open_stop: bool,
    /// `web.secure_cookie`.
    pub secure_cookie: bool,
}

impl Guard {
    /// A guard for `accounts` with `web`'s settings and no rules yet.
    pub fn new(accounts: Accounts, web: &crate::config::WebConfig) -> Guard {
        Guard {
            accounts,
            rules: Arc::default(),
            open_stop: web.open_stop,
            secure_cookie: web.secure_cookie,
        }
    }
}

/// Why presented credentials are refused before any rule is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `Authorization` is there but is not `Bearer <token>`.
    Malformed,
    /// A token that is no token of this room.
    Wrong,
}

/// The token of an `Authorization: Bearer <token>` header; `Ok(None)`
/// without the header.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, Refusal> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v.to_str().map_err(|_| Refusal::Malformed)?;
    let (scheme, rest) = v.split_once(' ').ok_or(Refusal::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Refusal::Malformed);
    }
    let token = rest.trim_start_matches(' ').trim_end_matches([' ', '\t']);
    let b64 = |c: char| c.is_ascii_alphanumeric() || "-._~+/".contains(c);
    let body = token.trim_end_matches('=');
    if body.is_empty() || !body.chars().all(b64) {
        return Err(Refusal::Malformed);
    }
    Ok(Some(token))
}

/// The session id in the request's cookies, if any.
pub(crate) fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_string())
}

/// Who the caller is, as far as the credentials say.
enum Caller {
    Known(Actor),
    /// No credentials (or a session that has ended).
    Anonymous {
        session_ended: bool,
    },
}

fn caller(g: &Guard, headers: &HeaderMap) -> Result<(Caller, bool), Refusal> {
    if let Some(t) = bearer_token(headers)? {
        return match g.accounts.token(t) {
            Ok(a) => Ok((Caller::Known(a), false)),
            Err(_) => Err(Refusal::Wrong),
        };
    }
    match session_id(headers) {
        Some(id) => match g.accounts.session(&id) {
            Ok(a) => Ok((Caller::Known(a), true)),
            Err(AuthError::SessionEnded | AuthError::WrongToken) => Ok((
                Caller::Anonymous {
                    session_ended: true,
                },
                false,
            )),
        },
        None => Ok((
            Caller::Anonymous {
                session_ended: false,
            },
            false,
        )),
    }
}

/// A write from a page of another site (or, with a cookie, from nowhere
/// that says where it is): refused. Browsers send `Origin` with every
/// POST; scripts with a bearer token need not.
fn cross_site(headers: &HeaderMap, by_cookie: bool) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        Some(origin) => {
            let origin_host = origin.split_once("://").map(|(_, h)| h);
            origin_host.is_none() || origin_host != host
        }
        None => {
            by_cookie
                && headers
                    .get("sec-fetch-site")
                    .and_then(|v| v.to_str().ok())
                    .is_none_or(|s| s != "same-origin")
        }
    }
}

/// The middleware: credentials, cross-site check, the route's rule.
pub async fn guard(State(g): State<Guard>, mut req: Request, next: Next) -> Response {
    let address = super::peer(req.extensions());
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let refuse = |status: StatusCode, why: String| {
        warn!(target: "web", "Refused {method} {} from {address}: {why}", path.chars().take(80).collect::<String>());
        let e = if status == StatusCode::UNAUTHORIZED {
            AppError::Unauthorized(why)
        } else {
            AppError::Forbidden(why)
        };
        e.into_response()
    };
    let Some(pattern) = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
    else {
        // No route: the fallback answers 404.
        return next.run(req).await;
    };
    let Some(need) = g.rules.get(&method, &pattern) else {
        if g.rules.all().iter().any(|(_, p, _)| *p == pattern) {
            // Another method of a known route: 405 from the router.
            return next.run(req).await;
        }
        return refuse(
            StatusCode::FORBIDDEN,
            format!("no access rule for {method} {pattern}"),
        );
    };
    if need == Need::Public {
        // The way in (the login page, `/api/me`) is never blocked by the
        // credentials that are to be replaced.
        return next.run(req).await;
    }
    let (caller, by_cookie) = match caller(&g, req.headers()) {
        Ok(c) => c,
        Err(Refusal::Malformed) => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "the Authorization header is not `Bearer <token>`".into(),
            );
        }
        Err(Refusal::Wrong) => return refuse(StatusCode::UNAUTHORIZED, "wrong token".into()),
    };
    let unsafe_method = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    if unsafe_method && cross_site(req.headers(), by_cookie) {
        return refuse(
            StatusCode::FORBIDDEN,
            "a request from another site (its Origin is not this dashboard) is refused".into(),
        );
    }
    let actor = match caller {
        Caller::Known(a) => a,
        Caller::Anonymous { session_ended } => {
            let role = g.accounts.anonymous();
            let allowed = match need {
                Need::Public => true,
                Need::Panic if g.open_stop => true,
                Need::Panic => role >= Some(Role::Operator),
                Need::Role(r) => role >= Some(r),
            };
            if !allowed {
                let why = if session_ended {
                    "your session has ended: log in again".to_string()
                } else {
                    format!(
                        "log in first (or send an API token): this needs the {} role",
                        needed(need)
                    )
                };
                return refuse(StatusCode::UNAUTHORIZED, why);
            }
            Actor::Anonymous {
                role: role.unwrap_or(Role::Viewer),
            }
        }
    };
    let allowed = match need {
        Need::Public => true,
        Need::Panic => g.open_stop || actor.role() >= Role::Operator,
        Need::Role(r) => actor.role() >= r,
    };
    if !allowed {
        return refuse(
            StatusCode::FORBIDDEN,
            format!(
                "{actor} ({}) may not use {method} {pattern}: that needs the {} role",
                actor.role(),
                needed(need)
            ),
        );
    }
    req.extensions_mut().insert(actor);
    next.run(req).await
}

fn needed(n: Need) -> Role {
    match n {
        Need::Public => Role::Viewer,
        Need::Panic => Role::Operator,
        Need::Role(r) => r,
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
    fn bearer_headers_are_read_as_the_rfcs_say() {
        for ok in [
            "Bearer abc",
            "bearer abc",
            "BEARER abc",
            "Bearer  abc",
            "Bearer abc==",
        ] {
            assert_eq!(
                bearer_token(&with(ok)).map(|t| t.map(|t| t.trim_end_matches('='))),
                Ok(Some("abc")),
                "{ok}"
            );
        }
        for bad in [
            "Bearer",
            "Bearer ",
            "Basic abc",
            "Bearerabc",
            "Bearer a b",
            "Bearer a,b",
            "Token abc",
        ] {
            assert_eq!(bearer_token(&with(bad)), Err(Refusal::Malformed), "{bad}");
        }
        assert_eq!(bearer_token(&HeaderMap::new()), Ok(None));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; roomctl_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(session_id(&h).as_deref(), Some("abc"));
        assert_eq!(session_id(&HeaderMap::new()), None);
    }

    #[test]
    fn writes_from_other_sites_are_refused() {
        let h = |pairs: &[(&str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(
                    axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            h
        };
        let host = ("host", "pi.local:8080");
        assert!(!cross_site(
            &h(&[host, ("origin", "http://pi.local:8080")]),
            true
        ));
        assert!(cross_site(
            &h(&[host, ("origin", "http://evil.example")]),
            true
        ));
        assert!(cross_site(&h(&[host, ("origin", "null")]), false));
        assert!(
            cross_site(&h(&[host]), true),
            "a cookie write that says nothing of its origin"
        );
        assert!(!cross_site(
            &h(&[host, ("sec-fetch-site", "same-origin")]),
            true
        ));
        assert!(!cross_site(&h(&[host]), false), "a script with a token");
    }
}
