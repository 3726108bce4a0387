//! The statistics API: `GET /api/stats?from=&to=` (the museum's days,
//! `YYYY-MM-DD`, both included; or `?days=N` to today; the last 7 days by
//! default) as JSON, and
//! `GET /api/stats.csv` with the same range, one figure a row.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use jiff::civil::Date;
use serde::Deserialize;

use super::api::log_of;
use super::auth::Need;
use super::studio::blocking;
use super::{AppError, AppState};
use crate::showlog::stats::{self, Stats};

/// Days shown when the range is not given.
const DEFAULT_DAYS: i64 = 7;

/// The statistics' routes.
pub(super) fn routes(read: Need) -> Vec<(Method, &'static str, Need, MethodRouter<AppState>)> {
    vec![
        (Method::GET, "/api/stats", read, get(json)),
        (Method::GET, "/api/stats.csv", read, get(csv)),
    ]
}

/// `?from=2026-11-24&to=2026-11-30`, or `?days=30` (the last 30 days to
/// `to`, today by default).
#[derive(Deserialize)]
pub struct Range {
    from: Option<String>,
    to: Option<String>,
    days: Option<i64>,
}

/// `GET /api/stats`: see [`crate::showlog::stats::Stats`].
pub async fn json(
    State(s): State<AppState>,
    Query(q): Query<Range>,
) -> Result<Json<Stats>, AppError> {
    Ok(Json(compute(&s, &q).await?))
}

/// `GET /api/stats.csv`: `day,subject,name,measure,value`.
pub async fn csv(State(s): State<AppState>, Query(q): Query<Range>) -> Result<Response, AppError> {
    let st = compute(&s, &q).await?;
    let name = format!(
        "roomctl-{}-stats-{}-{}.csv",
        s.room.config.room,
        st.days.first().map_or("", String::as_str),
        st.days.last().map_or("", String::as_str)
    );
    Ok(super::download(
        "text/csv; charset=utf-8",
        &name,
        stats::to_csv(&st),
    ))
}

async fn compute(s: &AppState, q: &Range) -> Result<Stats, AppError> {
    let log = log_of(s)?.clone();
    let tz = s.room.zone();
    let now = jiff::Timestamp::now();
    let today = now.to_zoned(tz.clone()).date();
    let to = day(q.to.as_deref(), "to")?.unwrap_or(today);
    let from = match day(q.from.as_deref(), "from")? {
        Some(d) => d,
        None => {
            let n = q.days.unwrap_or(DEFAULT_DAYS);
            if !(1..=stats::MAX_DAYS).contains(&n) {
                return Err(AppError::BadRequest(format!(
                    "`days` is {n}; from 1 to {} days at once",
                    stats::MAX_DAYS
                )));
            }
            to.checked_sub(jiff::Span::new().days(n - 1))
                .map_err(|e| AppError::BadRequest(format!("no {n} days before {to}: {e}")))?
        }
    };
    let now = now.as_millisecond() as f64 / 1000.0;
    blocking(move || {
        stats::compute(&log.read_all(), &tz, from, to, now)
            .map_err(|e| AppError::BadRequest(e.to_string()))
    })
    .await
}

fn day(v: Option<&str>, name: &str) -> Result<Option<Date>, AppError> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse::<Date>().map(Some).map_err(|_| {
            AppError::BadRequest(format!(
                "`{name}` is `{}`, not a day (YYYY-MM-DD, like 2026-12-01)",
                v.chars().take(40).collect::<String>()
            ))
        }),
    }
}
