//! The daemon's live log for the dashboard (technician): the newest lines
//! of [`crate::logring`], filtered by level, target and text, read on from
//! the last line a page has; and the whole ring as a text file.

use axum::Json;
use axum::extract::Query;
use axum::http::Method;
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, get};
use serde::Deserialize;

use super::auth::Need;
use super::{AppError, AppState};
use crate::logring::{LogFilter, LogPage, ring};

/// At most this many lines per answer: more is a flood, counted.
const MAX_LINES: usize = 500;

/// The live log's routes, for `technician`s.
pub(super) fn routes(
    technician: Need,
) -> Vec<(Method, &'static str, Need, MethodRouter<AppState>)> {
    vec![
        (Method::GET, "/api/logs", technician, get(lines)),
        (Method::GET, "/api/logs.txt", technician, get(text)),
    ]
}

/// The query of both routes.
#[derive(Deserialize, Default)]
pub struct LogQuery {
    /// Lines after this number.
    #[serde(default)]
    after: u64,
    /// `error`, `warn`, `info`, `debug` or `trace`: that or worse.
    level: Option<String>,
    /// Targets that start with this (`mqtt`).
    target: Option<String>,
    /// Lines that contain this.
    q: Option<String>,
    /// At most this many lines (up to 500).
    limit: Option<usize>,
}

impl LogQuery {
    fn filter(&self) -> Result<LogFilter, AppError> {
        let level = match self.level.as_deref().filter(|l| !l.is_empty()) {
            None => None,
            Some(l) => Some(l.parse().map_err(|_| {
                AppError::BadRequest(format!(
                    "`{}` is not a level: error, warn, info, debug or trace",
                    l.chars().take(16).collect::<String>().escape_debug()
                ))
            })?),
        };
        let short = |s: &Option<String>| {
            s.as_ref()
                .filter(|s| !s.is_empty())
                .map(|s| s.chars().take(200).collect())
        };
        Ok(LogFilter {
            after: self.after,
            level,
            target: short(&self.target),
            search: short(&self.q),
        })
    }
}

/// `GET /api/logs?after=&level=&target=&q=&limit=`: `lines` (`seq`, `t`,
/// `level`, `target`, `text`), `skipped` (left out, a flood), `lost` (gone
/// from the ring), `next` (ask after this).
pub async fn lines(Query(q): Query<LogQuery>) -> Result<Json<LogPage>, AppError> {
    let limit = q.limit.unwrap_or(200).clamp(1, MAX_LINES);
    Ok(Json(ring().page(&q.filter()?, limit)))
}

/// `GET /api/logs.txt` (same filters): every line the ring holds, one per
/// line, to download.
pub async fn text(Query(q): Query<LogQuery>) -> Result<impl IntoResponse, AppError> {
    let page = ring().page(&q.filter()?, crate::logring::CAPACITY);
    let mut out = String::new();
    for l in page.lines {
        let t = jiff::Timestamp::from_millisecond((l.t * 1000.0) as i64)
            .map(|t| t.to_string())
            .unwrap_or_default();
        out.push_str(&format!("{t} {:>5} {}: {}\n", l.level, l.target, l.text));
    }
    Ok(super::download(
        "text/plain; charset=utf-8",
        "roomctl.log",
        out,
    ))
}
