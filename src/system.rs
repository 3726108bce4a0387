//! The box the room runs on, for the dashboard's System card: the version,
//! how long the daemon has run, the free space on the disks of the media
//! and the state, the CPU temperature where the kernel reports one (a
//! Raspberry Pi does), and whether a restart from the web is possible
//! (only under systemd, which starts the daemon again; the Pi itself is
//! never rebooted from the web).

use std::path::Path;

use serde::Serialize;

/// The exit code of a restart asked from the dashboard (EX_TEMPFAIL):
/// systemd's `Restart=on-failure` starts the daemon again.
pub const RESTART_EXIT_CODE: u8 = 75;

/// One disk.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Disk {
    /// The folder it holds (`/var/lib/roomctl`).
    pub path: String,
    /// Bytes free for the daemon.
    pub free: Option<u64>,
    /// Bytes in all.
    pub total: Option<u64>,
}

/// What the System card shows.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SystemView {
    /// `roomctl 0.x.y`.
    pub version: String,
    /// The host's name.
    pub host: String,
    /// Seconds since the daemon started.
    pub uptime: f64,
    /// The disk of the sounds and clips.
    pub media_disk: Disk,
    /// The disk of the state (show log, history, schedule).
    pub state_disk: Disk,
    /// °C, where the kernel reports it.
    pub cpu_celsius: Option<f64>,
    /// Run by systemd, which starts it again after a restart.
    pub restart_possible: bool,
}

/// Whether systemd runs this process (it sets `INVOCATION_ID`).
pub fn under_systemd() -> bool {
    std::env::var_os("INVOCATION_ID").is_some()
}

/// The view, for a daemon started at unix time `started`.
pub fn view(started: f64, media: &Path, state: &Path) -> SystemView {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    SystemView {
        version: format!("roomctl {}", env!("CARGO_PKG_VERSION")),
        host: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().chars().take(64).collect())
            .unwrap_or_default(),
        uptime: (now - started).max(0.0),
        media_disk: disk(media),
        state_disk: disk(state),
        cpu_celsius: cpu_celsius(Path::new("/sys/class/thermal")),
        restart_possible: under_systemd(),
    }
}

fn disk(path: &Path) -> Disk {
    // A folder not made yet is on the disk of its nearest parent.
    let there = path.ancestors().find(|p| p.exists()).unwrap_or(path);
    let (free, total) = space(there).unzip();
    Disk {
        path: path.display().to_string(),
        free,
        total,
    }
}

/// Free (for an unprivileged writer) and total bytes of the disk of
/// `path`.
pub fn space(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid C string and `s` a valid out-parameter.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    // u64 here, u32 on a 32-bit Pi OS.
    #[allow(clippy::useless_conversion)]
    let (frsize, avail, blocks) = (
        u64::from(s.f_frsize),
        u64::from(s.f_bavail),
        u64::from(s.f_blocks),
    );
    Some((avail.saturating_mul(frsize), blocks.saturating_mul(frsize)))
}

/// The CPU's temperature from `thermal` (`/sys/class/thermal`): the zone
/// whose type names the CPU (`cpu-thermal` on a Pi), else the first.
pub fn cpu_celsius(thermal: &Path) -> Option<f64> {
    let mut zones: Vec<_> = std::fs::read_dir(thermal)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("thermal_zone"))
        })
        .collect();
    zones.sort();
    let kind = |z: &Path| std::fs::read_to_string(z.join("type")).unwrap_or_default();
    let zone = zones
        .iter()
        .find(|z| {
            let k = kind(z).to_lowercase();
            k.contains("cpu") || k.contains("soc")
        })
        .or(zones.first())?;
    let milli: f64 = std::fs::read_to_string(zone.join("temp"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some((milli / 100.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_zone_is_read_in_degrees_and_disks_have_room() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path();
        assert_eq!(cpu_celsius(t), None, "no zones");
        for (zone, kind, milli) in [
            ("thermal_zone0", "acpitz", "30000"),
            ("thermal_zone1", "cpu-thermal", "48312"),
        ] {
            std::fs::create_dir_all(t.join(zone)).unwrap();
            std::fs::write(t.join(zone).join("type"), format!("{kind}\n")).unwrap();
            std::fs::write(t.join(zone).join("temp"), format!("{milli}\n")).unwrap();
        }
        assert_eq!(cpu_celsius(t), Some(48.3));
        let v = view(0.0, t, t);
        assert!(v.version.starts_with("roomctl "));
        assert!(v.media_disk.free.unwrap() > 0);
        assert!(v.media_disk.total.unwrap() >= v.media_disk.free.unwrap());
        assert!(v.uptime > 1.0e9, "since 1970 here");
    }
}
