//! Changing a scene file from the studio: checked through the one loader
//! against the room first (a save that does not load is refused with its
//! diagnostics and nothing is written), kept by the scene store (atomic,
//! with its history), then the scenes are reloaded. A running scene
//! finishes on the definition it started with. A preview's sounds may be
//! played on the Pi, never over a running scene.

use super::{Player, ReloadReport, Room, RoomError};
use crate::diag::Diagnostics;
use crate::media::{AudioCommand, VideoCommand};
use crate::studio::StoreError;

/// Why a scene change was refused.
#[derive(Debug, thiserror::Error)]
pub enum SceneError {
    /// The store refused (name, size, conflict, disk).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The text does not load; nothing was written.
    #[error("the scene has {} error(s); nothing was saved", errors.len())]
    Invalid {
        /// Why, with positions.
        errors: Diagnostics,
        /// What else the check found.
        warnings: Diagnostics,
    },
    /// Saved, but the reload that follows refused the config.
    #[error("saved, but the config does not load; the running config stays")]
    Reload(Diagnostics),
    /// The blocking task failed.
    #[error("the save failed: {0}")]
    Failed(String),
}

/// A change to a scene file.
#[derive(Debug, Clone, PartialEq)]
pub enum SceneChange {
    /// Write `text` as `file`, replacing version `base` (`None`: a new
    /// file, which must not exist).
    Save {
        /// The file name in the scenes folder.
        file: String,
        /// Its new text.
        text: String,
        /// The version the author started from.
        base: Option<String>,
    },
    /// Bring back kept save `id` of `file` (a new save, on top of `base`).
    Revert {
        /// The file name.
        file: String,
        /// The kept save.
        id: String,
        /// The version it replaces.
        base: String,
    },
    /// Move `file` (at version `base`) to the trash.
    Delete {
        /// The file name.
        file: String,
        /// The version deleted.
        base: String,
    },
}

impl SceneChange {
    /// The file it changes.
    pub fn file(&self) -> &str {
        match self {
            SceneChange::Save { file, .. }
            | SceneChange::Revert { file, .. }
            | SceneChange::Delete { file, .. } => file,
        }
    }
}

impl std::fmt::Display for SceneChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let short = |s: &str| s.chars().take(64).collect::<String>();
        match self {
            SceneChange::Save {
                file, base: None, ..
            } => write!(f, "create scene file {:?}", short(file)),
            SceneChange::Save { file, .. } => write!(f, "save scene file {:?}", short(file)),
            SceneChange::Revert { file, id, .. } => {
                write!(f, "revert scene file {:?} to {:?}", short(file), short(id))
            }
            SceneChange::Delete { file, .. } => write!(f, "delete scene file {:?}", short(file)),
        }
    }
}

/// What a scene change did.
#[derive(Debug, serde::Serialize)]
pub struct SceneChanged {
    /// The file.
    pub file: String,
    /// Its version now (none once deleted).
    pub version: Option<String>,
    /// What loads but is most likely not meant, in that file.
    pub warnings: Vec<String>,
    /// The reload that followed.
    pub reload: ReloadReport,
}

impl Room {
    /// Refuses a preview on the Pi's speakers or screen while a scene runs
    /// (it would play over the show).
    pub fn preview_refusal(&self, player: Player) -> Result<(), RoomError> {
        if !self.scenes.is_running() {
            return Ok(());
        }
        Err(RoomError::Conflict(
            match player {
                Player::Audio => "a scene is running: a preview's sounds would play over it",
                Player::Video => "a scene is running: a preview would take its screen",
            }
            .into(),
        ))
    }

    /// A preview's audio command (`PLAY:chime.wav`, `STOP`) on the Pi's
    /// speakers, or its video command on its screen; refused while a scene
    /// runs.
    pub(super) fn preview_media(&self, player: Player, message: &str) -> Result<(), RoomError> {
        self.preview_refusal(player)?;
        let bad = |what: &str, e: crate::media::CommandError| {
            RoomError::BadRequest(format!(
                "`{}` is not {what} command: {e}",
                message.chars().take(64).collect::<String>().escape_debug()
            ))
        };
        match player {
            Player::Audio => self
                .media
                .audio(AudioCommand::parse(message).map_err(|e| bad("an audio", e))?),
            Player::Video => self
                .media
                .video(VideoCommand::parse(message).map_err(|e| bad("a video", e))?),
        }
        Ok(())
    }

    /// Does `change` for `author` (see the module doc).
    pub(super) async fn change_scene(
        &self,
        change: SceneChange,
        author: String,
    ) -> Result<SceneChanged, SceneError> {
        let room = self.clone();
        let file = change.file().to_string();
        let (version, warnings) =
            tokio::task::spawn_blocking(move || room.write_scene(change, &author))
                .await
                .map_err(|e| SceneError::Failed(e.to_string()))??;
        let reload = self.reload_coalesced().await.map_err(SceneError::Reload)?;
        Ok(SceneChanged {
            file,
            version,
            warnings: warnings.iter().map(ToString::to_string).collect(),
            reload,
        })
    }

    fn write_scene(
        &self,
        change: SceneChange,
        author: &str,
    ) -> Result<(Option<String>, Diagnostics), SceneError> {
        let store = &self.studio;
        let (file, text, base) = match change {
            SceneChange::Delete { file, base } => {
                store.delete(&file, &base, author)?;
                return Ok((None, Diagnostics::default()));
            }
            SceneChange::Save { file, text, base } => (file, text, base),
            SceneChange::Revert { file, id, base } => {
                let text = store.version(&file, &id)?;
                (file, text, Some(base))
            }
        };
        let path = store.path(&file)?;
        let found = crate::check::check_text(&self.config, &path, &text, &self.announced());
        if !found.ok() {
            return Err(SceneError::Invalid {
                errors: found.errors,
                warnings: found.warnings,
            });
        }
        let version = store.save(&file, &text, base.as_deref(), author)?;
        Ok((Some(version), found.warnings))
    }

    /// The command topics the boards announced (for the studio's hints).
    pub fn announced(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .registry
            .all()
            .into_iter()
            .flat_map(|d| d.channels)
            .collect();
        out.sort();
        out.dedup();
        out
    }
}
