//! The media library's API (technician): the sounds and clips with their
//! length, format, size and who uses them, and what the scenes name that
//! is missing; an upload streamed to a staged file (never more than the
//! limit, never a half file left) and handed to the room, which probes it
//! and puts it in place; a file served to the browser, played on the Pi,
//! or removed (to the trash; refused while a scene uses it).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::api::origin;
use super::auth::Need;
use super::studio::blocking;
use super::{AppError, AppState};
use crate::media::library::{Library, LibraryError, MediaKind, Upload};
use crate::room::{Command, MediaChange, Reply};

/// The library's routes, all for `technician`s.
pub(super) fn routes(
    technician: Need,
) -> Vec<(Method, &'static str, Need, MethodRouter<AppState>)> {
    vec![
        (Method::GET, "/api/media", technician, get(list)),
        (Method::PUT, "/api/media/{name}", technician, put(upload)),
        (
            Method::DELETE,
            "/api/media/{name}",
            technician,
            delete(remove),
        ),
        (Method::GET, "/api/media/{name}/file", technician, get(file)),
        (
            Method::POST,
            "/api/media/{name}/play",
            technician,
            post(play),
        ),
    ]
}

/// `GET /api/media`: every file, who uses it, what is missing.
pub async fn list(State(s): State<AppState>) -> Result<Json<Value>, AppError> {
    let s2 = s.clone();
    let view = blocking(move || {
        let media = &s2.room.config.media;
        Ok(s2
            .room
            .library_view(&|kind, path| s2.lengths.of_path(media, path, kind == MediaKind::Video)))
    })
    .await?;
    Ok(Json(json!(view)))
}

impl From<LibraryError> for AppError {
    fn from(e: LibraryError) -> Self {
        match e {
            LibraryError::TooLarge(_) => AppError::TooLarge(e.to_string()),
            e => AppError::Room(e.into()),
        }
    }
}

/// The query of an upload.
#[derive(Deserialize)]
pub struct UploadQuery {
    /// Replace a file of the same name (it goes to the trash).
    #[serde(default)]
    replace: bool,
}

/// `PUT /api/media/{name}[?replace=true]` with the file as the body: the
/// new file (201), or why not: 409 when the name exists (unless
/// `replace`) or is being uploaded, 413 over `media.max_upload`, 507 when
/// the disk is full, 400 when it does not play (with the reason).
pub async fn upload(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<UploadQuery>,
    parts: axum::http::request::Parts,
    body: Body,
) -> Result<Response, AppError> {
    let limit = s.room.config.media.max_upload;
    let size = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let lib = s.room.library.clone();
    let n = name.clone();
    let mut staged = blocking(move || Ok(lib.stage(&n, size, limit)?)).await?;
    let std_file = staged
        .file()
        .and_then(|f| f.try_clone().ok())
        .ok_or_else(|| AppError::Failed("cannot write the upload".into()))?;
    let mut out = tokio::fs::File::from_std(std_file);
    let mut written: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| AppError::BadRequest(format!("the upload broke off: {e}")))?;
        written += chunk.len() as u64;
        if written > limit {
            return Err(LibraryError::TooLarge(limit >> 20).into());
        }
        out.write_all(&chunk).await.map_err(|e| {
            AppError::NotSaved(format!(
                "the upload could not be written ({e}): nothing was changed"
            ))
        })?;
    }
    out.flush()
        .await
        .map_err(|e| AppError::NotSaved(format!("{e}: nothing was changed")))?;
    drop(out);
    let change = MediaChange::Add {
        upload: Upload::new(staged),
        replace: q.replace,
    };
    match s.room.apply(origin(&parts), Command::Media(change)).await? {
        Reply::Media(f) => Ok((axum::http::StatusCode::CREATED, Json(json!(f))).into_response()),
        r => Err(super::api::unexpected(r)),
    }
}

/// `DELETE /api/media/{name}`: to the trash (409 naming the scenes that
/// use it).
pub async fn remove(
    State(s): State<AppState>,
    Path(name): Path<String>,
    parts: axum::http::request::Parts,
) -> Result<Json<Value>, AppError> {
    match s
        .room
        .apply(origin(&parts), Command::Media(MediaChange::Delete { name }))
        .await?
    {
        Reply::Media(f) => Ok(Json(json!({"deleted": f.name}))),
        r => Err(super::api::unexpected(r)),
    }
}

/// `GET /api/media/{name}/file`: the file, for the browser to play.
pub async fn file(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let path = s.room.library.path_of(&name)?;
    let f = tokio::fs::File::open(&path)
        .await
        .map_err(|e| AppError::NotFound(format!("cannot open {name}: {e}")))?;
    let len = f.metadata().await.map(|m| m.len()).ok();
    let mut r = Body::from_stream(tokio_util::io::ReaderStream::new(f)).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        content_type(&name).parse().expect("a valid type"),
    );
    if let Some(len) = len {
        h.insert(header::CONTENT_LENGTH, len.into());
    }
    h.insert(header::CACHE_CONTROL, "no-store".parse().expect("valid"));
    Ok(r)
}

fn content_type(name: &str) -> &'static str {
    let ext = std::path::Path::new(name)
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "wav" => "audio/wav",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "flac" => "audio/flac",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mkv" => "video/x-matroska",
        "mov" => "video/quicktime",
        "avi" => "video/x-msvideo",
        _ => "application/octet-stream",
    }
}

/// `POST /api/media/{name}/play`: plays it on the Pi's speakers or screen
/// (409 while a scene runs).
pub async fn play(
    State(s): State<AppState>,
    Path(name): Path<String>,
    parts: axum::http::request::Parts,
) -> Result<Json<Value>, AppError> {
    s.room.library.path_of(&name)?;
    let command = match Library::kind_of(&name)? {
        MediaKind::Audio => Command::PreviewSound(format!("PLAY:{name}")),
        MediaKind::Video => Command::PreviewClip(format!("PLAY_VIDEO:{name}")),
    };
    s.room.apply(origin(&parts), command).await?;
    Ok(Json(json!({"playing": name})))
}
