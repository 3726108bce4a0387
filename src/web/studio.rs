//! The scene studio's API (technician): the room's scene files with their
//! text and version, the check of an editor's text through the one loader
//! with the picture (graph) and timelines of what it would be, and the
//! changes (save, new from a template, revert, delete), which go through
//! the room's front door as a [`Command::Scene`].

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, post, put};

mod edits;
mod preview;

use super::api::origin;
use super::auth::Need;
use super::{AppError, AppState};
use crate::check::FileCheck;
use crate::diag::Diagnostics;
use crate::room::{Command, Reply, SceneChange, SceneChanged};
use crate::studio::{TEMPLATES, check_name, global_ways, graph_svg, timelines};

/// The studio's routes, all for `technician`s.
pub(super) fn routes(
    technician: Need,
) -> Vec<(Method, &'static str, Need, MethodRouter<AppState>)> {
    vec![
        (Method::GET, "/api/studio", technician, get(list)),
        (Method::POST, "/api/studio/check", technician, post(check)),
        (Method::POST, "/api/studio/new", technician, post(create)),
        (
            Method::POST,
            "/api/studio/edit",
            technician,
            post(edits::edit),
        ),
        (
            Method::GET,
            "/api/studio/preview",
            technician,
            get(preview::view),
        ),
        (
            Method::POST,
            "/api/studio/preview",
            technician,
            post(preview::start),
        ),
        (
            Method::POST,
            "/api/studio/preview/input",
            technician,
            post(preview::input),
        ),
        (
            Method::POST,
            "/api/studio/rename-state",
            technician,
            post(edits::rename_state),
        ),
        (
            Method::POST,
            "/api/studio/scenes/{file}/duplicate",
            technician,
            post(duplicate),
        ),
        (
            Method::POST,
            "/api/studio/scenes/{file}/rename",
            technician,
            post(rename_file),
        ),
        (
            Method::POST,
            "/api/studio/preview/stop",
            technician,
            post(preview::stop),
        ),
        (
            Method::GET,
            "/api/studio/scenes/{file}",
            technician,
            get(open),
        ),
        (
            Method::PUT,
            "/api/studio/scenes/{file}",
            technician,
            put(save),
        ),
        (
            Method::DELETE,
            "/api/studio/scenes/{file}",
            technician,
            delete(remove),
        ),
        (
            Method::GET,
            "/api/studio/scenes/{file}/history",
            technician,
            get(history),
        ),
        (
            Method::GET,
            "/api/studio/scenes/{file}/history/{id}",
            technician,
            get(version),
        ),
        (
            Method::GET,
            "/api/studio/scenes/{file}/diff",
            technician,
            get(diff),
        ),
        (
            Method::POST,
            "/api/studio/scenes/{file}/revert",
            technician,
            post(revert),
        ),
    ]
}

/// Diagnostics for the editor: `[{line, col, message, level}]`, errors
/// first.
pub(super) fn diagnostics(errors: &Diagnostics, warnings: &Diagnostics) -> Value {
    let one = |d: &crate::diag::Diagnostic, level: &str| {
        json!({
            "line": d.line,
            "col": d.col,
            "message": d.message.strip_prefix("warning: ").unwrap_or(&d.message),
            "level": level,
        })
    };
    errors
        .iter()
        .map(|d| one(d, "error"))
        .chain(warnings.iter().map(|d| one(d, "warning")))
        .collect()
}

/// `GET /api/studio`: the scene files (with the scene each holds, or that
/// it does not load) and the templates.
pub async fn list(State(s): State<AppState>) -> Json<Value> {
    let scenes = s.room.scenes.scenes();
    let mut files: Vec<Value> = scenes
        .iter()
        .filter(|sc| sc.file.parent() == Some(s.room.config.scenes.dir.as_path()))
        .map(|sc| {
            json!({
                "file": sc.file.file_name().map(|f| f.to_string_lossy().into_owned()),
                "scene": sc.name,
                "description": sc.description,
                "loads": true,
            })
        })
        .collect();
    // Files that do not load are listed too: the studio is where they are fixed.
    if let Ok(rd) = std::fs::read_dir(&s.room.config.scenes.dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let known = files.iter().any(|f| f["file"] == name.as_str());
            if !known && check_name(&name).is_ok() && e.path().is_file() {
                files.push(json!({"file": name, "scene": null, "loads": false}));
            }
        }
    }
    files.sort_by(|a, b| a["file"].as_str().cmp(&b["file"].as_str()));
    // What the editor offers: the channels the boards announce and the
    // scenes use, with the messages each is sent.
    let mut channels: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> = s
        .room
        .announced()
        .into_iter()
        .map(|t| (t, Default::default()))
        .collect();
    for (_, a) in scenes.every_action() {
        if a.kind == crate::scene::ActionKind::Mqtt {
            let m = channels.entry(a.topic.clone()).or_default();
            if m.len() < 50 {
                m.insert(a.message.clone());
            }
        }
    }
    Json(json!({
        "channels": channels,
        "files": files,
        "templates": TEMPLATES.iter().map(|t| json!({"id": t.id, "title": t.title, "ext": t.ext})).collect::<Vec<_>>(),
    }))
}

/// `f` on a blocking thread: checking reads every scene file and measures
/// sounds, which must not hold up the runtime.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::Failed(format!("the check failed: {e}")))?
}

/// `text` checked as scene file `file` against the room (blocking).
pub(super) fn checked(s: &AppState, file: &str, text: &str) -> Result<FileCheck, AppError> {
    let room = &s.room;
    let path = room.studio.path(file)?;
    Ok(crate::check::check_text(
        &room.config,
        &path,
        text,
        &room.announced(),
    ))
}

/// What the editor's text would be: diagnostics, graph, timelines.
async fn view(s: &AppState, file: String, text: String) -> Result<Value, AppError> {
    let s = s.clone();
    blocking(move || {
        let found = checked(&s, &file, &text)?;
        let (graph, lanes, globals) = match &found.scene {
            Some(scene) => (
                Some(graph_svg(scene)),
                Some(timelines(scene, &|a| s.lengths.of(&s.room.config.media, a))),
                Some(global_ways(scene)),
            ),
            None => (None, None, None),
        };
        let form = found.scene.as_ref().map(|sc| match sc.form {
            crate::scene::SceneForm::Simple => "simple",
            crate::scene::SceneForm::StateMachine => "machine",
        });
        Ok(json!({
            "ok": found.ok(),
            "diagnostics": diagnostics(&found.errors, &found.warnings),
            "scene": found.scene.as_ref().map(|sc| &sc.name),
            "initial": found.scene.as_ref().map(|sc| &sc.initial_state),
            "command": found.command.as_ref().map(|c| &c.name),
            "form": form,
            "graph": graph,
            "timelines": lanes,
            "globals": globals,
        }))
    })
    .await
}

/// `GET /api/studio/scenes/{file}`: its text, version and view.
pub async fn open(
    State(s): State<AppState>,
    Path(file): Path<String>,
) -> Result<Json<Value>, AppError> {
    let src = s.room.studio.read(&file)?;
    let mut v = view(&s, file, src.text.clone()).await?;
    v["file"] = json!(src.file);
    v["text"] = json!(src.text);
    v["version"] = json!(src.version);
    Ok(Json(v))
}

/// Refuses a text over the studio's limit (a scene is a few KiB).
fn within_limit(text: &str) -> Result<(), AppError> {
    if text.len() > crate::studio::MAX_SCENE_BYTES {
        return Err(crate::studio::StoreError::TooLarge(text.len()).into());
    }
    Ok(())
}

/// The body of `POST /api/studio/check`.
#[derive(Deserialize)]
pub struct CheckBody {
    file: String,
    text: String,
}

/// `POST /api/studio/check` `{file, text}`: the view of unsaved text.
pub async fn check(
    State(s): State<AppState>,
    body: Result<Json<CheckBody>, JsonRejection>,
) -> Result<Json<Value>, AppError> {
    let Json(b) = body?;
    within_limit(&b.text)?;
    Ok(Json(view(&s, b.file, b.text).await?))
}

async fn change(
    s: &AppState,
    parts: &axum::http::request::Parts,
    change: SceneChange,
) -> Result<Box<SceneChanged>, AppError> {
    match s.room.apply(origin(parts), Command::Scene(change)).await? {
        Reply::SceneChanged(r) => Ok(r),
        r => Err(super::api::unexpected(r)),
    }
}

/// The body of `PUT /api/studio/scenes/{file}`.
#[derive(Deserialize)]
pub struct SaveBody {
    text: String,
    /// The version the text was started from; none for a new file.
    base: Option<String>,
}

/// `PUT /api/studio/scenes/{file}` `{text, base}`: saved (200), refused
/// with diagnostics (422) or a conflict (409).
pub async fn save(
    State(s): State<AppState>,
    Path(file): Path<String>,
    parts: axum::http::request::Parts,
    body: Result<Json<SaveBody>, JsonRejection>,
) -> Result<Json<Box<SceneChanged>>, AppError> {
    let Json(b) = body?;
    let r = change(
        &s,
        &parts,
        SceneChange::Save {
            file,
            text: b.text,
            base: b.base,
        },
    )
    .await?;
    Ok(Json(r))
}

/// The body of `POST /api/studio/new`.
#[derive(Deserialize)]
pub struct NewBody {
    /// The scene's name; the file is `<name>.<template's extension>`.
    name: String,
    template: String,
}

/// `POST /api/studio/new` `{name, template}`: 201 with the new file.
pub async fn create(
    State(s): State<AppState>,
    parts: axum::http::request::Parts,
    body: Result<Json<NewBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Box<SceneChanged>>), AppError> {
    let Json(b) = body?;
    let t = TEMPLATES
        .iter()
        .find(|t| t.id == b.template)
        .ok_or_else(|| {
            AppError::NotFound(format!(
                "no template `{}` (templates: {})",
                b.template.chars().take(40).collect::<String>(),
                TEMPLATES
                    .iter()
                    .map(|t| t.id)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    if !crate::topic::is_plain_level(&b.name) || b.name.contains('.') {
        return Err(AppError::BadRequest(
            "a scene name is letters, digits, `_` and `-`".into(),
        ));
    }
    let file = format!("{}.{}", b.name, t.ext);
    check_name(&file)?;
    let text = t.text_for(&b.name, &s.room.config.room);
    let r = change(
        &s,
        &parts,
        SceneChange::Save {
            file,
            text,
            base: None,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(r)))
}

/// The query of `DELETE /api/studio/scenes/{file}`.
#[derive(Deserialize)]
pub struct Base {
    base: String,
}

/// `DELETE /api/studio/scenes/{file}?base=V`: to the trash.
pub async fn remove(
    State(s): State<AppState>,
    Path(file): Path<String>,
    Query(q): Query<Base>,
    parts: axum::http::request::Parts,
) -> Result<Json<Box<SceneChanged>>, AppError> {
    Ok(Json(
        change(&s, &parts, SceneChange::Delete { file, base: q.base }).await?,
    ))
}

/// `GET /api/studio/scenes/{file}/history`: the kept saves, newest first.
pub async fn history(
    State(s): State<AppState>,
    Path(file): Path<String>,
) -> Result<Json<Value>, AppError> {
    Ok(Json(
        json!({"file": file, "history": s.room.studio.history(&file)?}),
    ))
}

/// `GET /api/studio/scenes/{file}/history/{id}`: one kept save's text.
pub async fn version(
    State(s): State<AppState>,
    Path((file, id)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    Ok(Json(
        json!({"file": file, "id": id, "text": s.room.studio.version(&file, &id)?}),
    ))
}

/// The query of `GET /api/studio/scenes/{file}/diff`.
#[derive(Deserialize)]
pub struct DiffQuery {
    /// A kept save.
    from: String,
    /// A kept save, or the file as it is now when absent.
    to: Option<String>,
}

/// `GET /api/studio/scenes/{file}/diff?from=ID[&to=ID]`: a unified diff.
pub async fn diff(
    State(s): State<AppState>,
    Path(file): Path<String>,
    Query(q): Query<DiffQuery>,
) -> Result<Json<Value>, AppError> {
    let store = &s.room.studio;
    let old = store.version(&file, &q.from)?;
    let new = match &q.to {
        Some(id) => store.version(&file, id)?,
        None => store.read(&file)?.text,
    };
    let text = crate::studio::unified_diff(&old, &new, &q.from, q.to.as_deref().unwrap_or("now"));
    Ok(Json(json!({"file": file, "diff": text})))
}

/// The body of `POST /api/studio/scenes/{file}/revert`.
#[derive(Deserialize)]
pub struct RevertBody {
    id: String,
    base: String,
}

/// `POST /api/studio/scenes/{file}/revert` `{id, base}`: that save again.
pub async fn revert(
    State(s): State<AppState>,
    Path(file): Path<String>,
    parts: axum::http::request::Parts,
    body: Result<Json<RevertBody>, JsonRejection>,
) -> Result<Json<Box<SceneChanged>>, AppError> {
    let Json(b) = body?;
    let r = change(
        &s,
        &parts,
        SceneChange::Revert {
            file,
            id: b.id,
            base: b.base,
        },
    )
    .await?;
    Ok(Json(r))
}

/// The body of `…/duplicate` and `…/rename`.
#[derive(Deserialize)]
pub struct NewName {
    /// The new scene's name; its file keeps the extension.
    name: String,
    /// For a rename: the version of the file renamed.
    base: Option<String>,
}

/// The copy of `file` as scene `name`: its file name and text.
fn copy_of(s: &AppState, file: &str, name: &str) -> Result<(String, String), AppError> {
    if !crate::topic::is_plain_level(name) || name.contains('.') || name.contains(' ') {
        return Err(AppError::BadRequest(
            "a scene name is letters, digits, `_` and `-`".into(),
        ));
    }
    let src = s.room.studio.read(file)?;
    let ext = std::path::Path::new(file)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("yaml");
    let to = format!("{name}.{ext}");
    check_name(&to)?;
    let text = crate::studio::rename_scene(&src.text, name)
        .map_err(|e| AppError::BadRequest(e.0))?
        .unwrap_or(src.text);
    Ok((to, text))
}

/// `POST /api/studio/scenes/{file}/duplicate` `{name}`: a copy as scene
/// `name` (201; 409 when that file exists).
pub async fn duplicate(
    State(s): State<AppState>,
    Path(file): Path<String>,
    parts: axum::http::request::Parts,
    body: Result<Json<NewName>, JsonRejection>,
) -> Result<(StatusCode, Json<Box<SceneChanged>>), AppError> {
    let Json(b) = body?;
    let (to, text) = copy_of(&s, &file, &b.name)?;
    let r = change(
        &s,
        &parts,
        SceneChange::Save {
            file: to,
            text,
            base: None,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(r)))
}

/// `POST /api/studio/scenes/{file}/rename` `{name, base}`: the copy, then
/// the old file to the trash (its history stays under its old name).
pub async fn rename_file(
    State(s): State<AppState>,
    Path(file): Path<String>,
    parts: axum::http::request::Parts,
    body: Result<Json<NewName>, JsonRejection>,
) -> Result<Json<Box<SceneChanged>>, AppError> {
    let Json(b) = body?;
    let base = b.base.ok_or_else(|| {
        AppError::BadRequest("a rename names the version renamed (`base`)".into())
    })?;
    if s.room.studio.read(&file)?.version != base {
        return Err(AppError::Conflict(format!(
            "{file} was changed since you opened it; not renamed"
        )));
    }
    let (to, text) = copy_of(&s, &file, &b.name)?;
    let made = change(
        &s,
        &parts,
        SceneChange::Save {
            file: to,
            text,
            base: None,
        },
    )
    .await?;
    change(&s, &parts, SceneChange::Delete { file, base }).await?;
    Ok(Json(made))
}

impl From<crate::studio::StoreError> for AppError {
    fn from(e: crate::studio::StoreError) -> Self {
        AppError::Room(e.into())
    }
}
