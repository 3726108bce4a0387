//! Durable file replacement for the state the daemon keeps on the SD card
//! (the schedule's pause switch, the show log's rotated file): the new
//! content goes to a temporary file beside the target, is synced, then
//! renamed over it. A power loss leaves the old or the new file, never
//! half of one; a failed write (a full or read-only card) leaves the old
//! file as it was and no temporary file behind. [`keep_in`] moves a file
//! into a folder of kept files (a trash) without ever writing over one.

use std::io::Write;
use std::path::Path;

/// Moves `path` into `dir` as `<stamp>-<name>` (`<stamp>-<n>-<name>` when
/// that is taken): never on top of a file already kept. Another disk: the
/// file is copied, synced, then removed. Returns where it went.
pub fn keep_in(
    path: &Path,
    dir: &Path,
    stamp: &str,
    name: &str,
) -> std::io::Result<std::path::PathBuf> {
    use std::io::ErrorKind::AlreadyExists;
    std::fs::create_dir_all(dir)?;
    for i in 0..1000 {
        let kept = dir.join(match i {
            0 => format!("{stamp}-{name}"),
            i => format!("{stamp}-{i}-{name}"),
        });
        match std::fs::hard_link(path, &kept) {
            Ok(()) => {}
            Err(e) if e.kind() == AlreadyExists => continue,
            Err(_) => {
                let mut out = match std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&kept)
                {
                    Err(e) if e.kind() == AlreadyExists => continue,
                    r => r?,
                };
                let copied = std::fs::File::open(path)
                    .and_then(|mut f| std::io::copy(&mut f, &mut out))
                    .and_then(|_| out.sync_all());
                if let Err(e) = copied {
                    let _ = std::fs::remove_file(&kept);
                    return Err(e);
                }
            }
        }
        std::fs::remove_file(path)?;
        return Ok(kept);
    }
    Err(std::io::Error::other(format!(
        "{} has no room for another {name}",
        dir.display()
    )))
}

/// Replaces `path` with `bytes`, through `tmp` (beside `path`, on the same
/// file system, so the rename is atomic).
pub fn replace(path: &Path, tmp: &Path, bytes: &[u8]) -> std::io::Result<()> {
    replace_mode(path, tmp, bytes, 0o644)
}

/// [`replace`] for secrets: the new file is readable by its owner only
/// (mode 600) from its first byte.
/// A file that existed keeps its owner (root editing the service's file
/// must not lock the service out of it).
pub fn replace_private(path: &Path, tmp: &Path, bytes: &[u8]) -> std::io::Result<()> {
    replace_mode(path, tmp, bytes, 0o600)
}

fn replace_mode(path: &Path, tmp: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
    let owner = std::fs::metadata(path).ok().map(|m| (m.uid(), m.gid()));
    let written = (|| {
        let _ = std::fs::remove_file(tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(tmp)?;
        // Exactly `mode`, whatever the umask.
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        if let Some((uid, gid)) = owner {
            // Only root can give a file away; for anyone else it is theirs.
            let _ = std::os::unix::fs::fchown(&f, Some(uid), Some(gid));
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_file_never_lands_on_an_earlier_one() {
        let dir = tempfile::tempdir().unwrap();
        let trash = dir.path().join("trash");
        for text in ["one", "two", "three"] {
            let f = dir.path().join("a.wav");
            std::fs::write(&f, text).unwrap();
            keep_in(&f, &trash, "0000000000001", "a.wav").unwrap();
            assert!(!f.exists());
        }
        let mut kept: Vec<(String, String)> = std::fs::read_dir(&trash)
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read_to_string(&p).unwrap(),
                )
            })
            .collect();
        kept.sort();
        assert_eq!(
            kept,
            [
                ("0000000000001-1-a.wav".to_string(), "two".to_string()),
                ("0000000000001-2-a.wav".into(), "three".into()),
                ("0000000000001-a.wav".into(), "one".into()),
            ]
        );
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let (path, tmp) = (d.path().join("state.json"), d.path().join("state.tmp"));
        std::fs::write(&path, "old").unwrap();
        replace(&path, &tmp, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert!(!tmp.exists());
    }

    #[test]
    fn a_private_file_is_mode_600() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let (path, tmp) = (d.path().join("users.yaml"), d.path().join("users.tmp"));
        std::fs::write(&path, "old").unwrap();
        replace_private(&path, &tmp, b"secret").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "secret");
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("state.json");
        std::fs::write(&path, "old").unwrap();
        // The rename fails: the target is a non-empty directory's place.
        let dir_target = d.path().join("a-dir");
        std::fs::create_dir(&dir_target).unwrap();
        std::fs::write(dir_target.join("x"), "x").unwrap();
        let tmp = d.path().join("state.tmp");
        assert!(replace(&dir_target, &tmp, b"new").is_err());
        assert!(!tmp.exists(), "a temporary file was left");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
    }
}
