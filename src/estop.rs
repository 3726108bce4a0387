//! The latched emergency stop: once pressed, nothing starts (no scene,
//! schedule show, trigger, command file or manual command) until a person
//! resets it. The latch is kept in `state_dir/estop.json`, written before
//! the press is acknowledged, so it survives a restart or a power cut; a
//! latch file that cannot be read counts as latched (the safe reading).

use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// Why and since when the room is latched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latched {
    /// Unix time of the press.
    pub since: f64,
    /// What pressed it (`dashboard (10.0.0.5, anna)`, `MQTT room1/estop`).
    pub by: String,
}

/// The latch. Cheap to clone.
#[derive(Clone)]
pub struct Latch {
    path: Option<PathBuf>,
    /// Held while the file is written, so two presses or a press and a
    /// reset write in the order they happened.
    write: Arc<Mutex<()>>,
    state: watch::Sender<Option<Latched>>,
}

/// The latch could not be saved: it holds in memory, not after a restart.
#[derive(Debug, thiserror::Error)]
#[error("the E-stop latch could not be saved in {path}: {why}")]
pub struct NotSaved {
    /// The file.
    pub path: String,
    /// The error.
    pub why: String,
}

impl Latch {
    /// The latch kept in `path` (none: in memory only, for `roomctl play`
    /// and tests). Also says why a file that exists could not be read.
    pub fn load(path: Option<PathBuf>) -> (Latch, Option<String>) {
        let mut problem = None;
        let state = match &path {
            None => None,
            Some(p) => match std::fs::read(p) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => {
                    problem = Some(format!("{}: {e}", p.display()));
                    Some(unreadable(p))
                }
                Ok(bytes) => match serde_json::from_slice::<Option<Latched>>(&bytes) {
                    Ok(l) => l,
                    Err(e) => {
                        problem = Some(format!("{}: {e}", p.display()));
                        Some(unreadable(p))
                    }
                },
            },
        };
        let latch = Latch {
            path,
            write: Arc::new(Mutex::new(())),
            state: watch::Sender::new(state),
        };
        (latch, problem)
    }

    /// Latched now, and by what; none when free.
    pub fn get(&self) -> Option<Latched> {
        self.state.borrow().clone()
    }

    /// Changes of the latch (for the retained state and the dashboard).
    pub fn subscribe(&self) -> watch::Receiver<Option<Latched>> {
        self.state.subscribe()
    }

    /// Latches (a latch already set keeps its first press). In memory at
    /// once; the error says it was not saved.
    pub fn press(&self, by: String) -> Result<Latched, NotSaved> {
        let _w = self.write.lock();
        let mut newly = None;
        self.state.send_if_modified(|s| match s {
            Some(_) => false,
            None => {
                let l = Latched {
                    since: crate::clock::unix_now(),
                    by,
                };
                newly = Some(l.clone());
                *s = Some(l);
                true
            }
        });
        let now = self.get().expect("just latched");
        if newly.is_some() {
            self.save(Some(&now))?;
        }
        Ok(now)
    }

    /// Frees the latch; returns what it was. Saved before it is freed, so
    /// a reset that cannot be saved leaves the room latched.
    pub fn reset(&self) -> Result<Option<Latched>, NotSaved> {
        let _w = self.write.lock();
        let was = self.get();
        if was.is_some() {
            self.save(None)?;
            self.state.send_replace(None);
        }
        Ok(was)
    }

    fn save(&self, l: Option<&Latched>) -> Result<(), NotSaved> {
        let Some(p) = &self.path else { return Ok(()) };
        let bytes = serde_json::to_vec(&l).unwrap_or_default();
        let tmp = p.with_extension("json.tmp");
        if let Some(d) = p.parent() {
            let _ = std::fs::create_dir_all(d);
        }
        crate::durable::replace(p, &tmp, &bytes).map_err(|e| NotSaved {
            path: p.display().to_string(),
            why: e.to_string(),
        })
    }
}

fn unreadable(p: &std::path::Path) -> Latched {
    Latched {
        since: crate::clock::unix_now(),
        by: format!(
            "an unreadable latch file ({}): latched to be safe",
            p.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_press_survives_a_restart_until_reset() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("estop.json");
        let (latch, problem) = Latch::load(Some(path.clone()));
        assert!(problem.is_none() && latch.get().is_none());
        let first = latch.press("MQTT room1/estop".into()).unwrap();
        // A second press keeps the first.
        assert_eq!(latch.press("dashboard".into()).unwrap(), first);
        let (again, _) = Latch::load(Some(path.clone()));
        let kept = again.get().unwrap();
        assert_eq!(kept.by, first.by);
        assert!((kept.since - first.since).abs() < 1e-3);
        assert_eq!(again.reset().unwrap(), Some(kept));
        assert_eq!(again.reset().unwrap(), None);
        let (third, _) = Latch::load(Some(path));
        assert!(third.get().is_none());
    }

    #[test]
    fn an_unreadable_latch_file_is_latched_and_an_unsavable_reset_stays_latched() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("estop.json");
        std::fs::write(&path, b"{\"since\": tru").unwrap();
        let (latch, problem) = Latch::load(Some(path.clone()));
        assert!(problem.unwrap().contains("estop.json"));
        assert!(latch.get().unwrap().by.contains("latched to be safe"));
        // The state directory cannot be written: the reset is refused.
        let (blocked, _) = Latch::load(Some(d.path().join("file/estop.json")));
        std::fs::write(d.path().join("file"), b"not a directory").unwrap();
        let l = blocked.press("test".into());
        assert!(l.is_err(), "not saved");
        assert!(blocked.get().is_some(), "latched in memory all the same");
        assert!(blocked.reset().is_err());
        assert!(blocked.get().is_some(), "still latched");
    }
}
