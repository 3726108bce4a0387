//! Durable file replacement for the state the daemon keeps on the SD card
//! (the schedule's pause switch, the show log's rotated file): the new
//! content goes to a temporary file beside the target, is synced, then
//! renamed over it. A power loss leaves the old or the new file, never
//! half of one; a failed write (a full or read-only card) leaves the old
//! file as it was and no temporary file behind.

use std::io::Write;
use std::path::Path;

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
