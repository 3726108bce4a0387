//! How long a clip is, asked of mpv (the player that shows it): opened
//! with no video and no audio output, one frame decoded, its `duration`
//! printed. Bounded: a file mpv cannot read, or one it is slow on, is an
//! error after a few seconds, and only a little of what mpv prints is
//! read.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// At most this long for one probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// What mpv prints before the length.
const MARK: &str = "ROOMCTL_LENGTH=";

/// Why a clip's length is unknown.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProbeError {
    /// The player cannot be started.
    #[error("cannot run {0}: {1}")]
    Spawn(String, String),
    /// It did not answer in time.
    #[error("{0} took over {1:?} to open the clip")]
    Slow(String, Duration),
    /// It answered with no length.
    #[error("{0} cannot read the clip")]
    Unreadable(String),
}

/// The program that probes: the configured player when it is mpv, else
/// `mpv` from the path.
pub fn prober(video_player: &[String]) -> &str {
    match video_player.first() {
        Some(p)
            if Path::new(p)
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("mpv")) =>
        {
            p
        }
        _ => "mpv",
    }
}

/// The length of the clip at `path`, asked of `mpv` (blocking).
pub fn clip_length(mpv: &str, path: &Path) -> Result<Duration, ProbeError> {
    let mut child = Command::new(mpv)
        .args([
            "--no-config",
            "--vo=null",
            "--ao=null",
            "--frames=1",
            "--msg-level=all=no,term-msg=info",
            &format!("--term-playing-msg={MARK}${{=duration}}"),
            "--",
        ])
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| ProbeError::Spawn(mpv.into(), e.to_string()))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() > PROBE_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ProbeError::Slow(mpv.into(), PROBE_TIMEOUT));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break,
        }
    }
    let mut out = String::new();
    if let Some(stdout) = child.stdout.take() {
        let _ = stdout.take(4096).read_to_string(&mut out);
    }
    out.lines()
        .find_map(|l| l.trim().strip_prefix(MARK)?.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 86_400.0 * 7.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| ProbeError::Unreadable(mpv.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mpv_here() -> bool {
        Command::new("mpv")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    #[test]
    fn a_clip_is_measured_by_mpv_and_junk_is_said() {
        assert!(mpv_here(), "mpv is installed for the tests (.ci/run)");
        let dir = tempfile::tempdir().unwrap();
        let clip = dir.path().join("clip.wav");
        std::fs::write(&clip, crate::testkit::sine_wav(1.5, 440.0, 0.2)).unwrap();
        let len = clip_length("mpv", &clip).unwrap();
        assert!((len.as_secs_f64() - 1.5).abs() < 0.05, "{len:?}");
        let junk = dir.path().join("junk.mp4");
        std::fs::write(&junk, b"not a clip at all").unwrap();
        assert_eq!(
            clip_length("mpv", &junk),
            Err(ProbeError::Unreadable("mpv".into()))
        );
        assert!(matches!(
            clip_length("/nonexistent/mpv", &clip),
            Err(ProbeError::Spawn(..))
        ));
        assert_eq!(
            prober(&["/usr/bin/mpv".into(), "--fs".into()]),
            "/usr/bin/mpv"
        );
        assert_eq!(prober(&["vlc".into()]), "mpv");
    }
}
