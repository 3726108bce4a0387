//! A worn SD card, with the real binary: a full file system under
//! `state_dir` (a small tmpfs mounted for the test; CI runs as root), a
//! file-size limit (`prlimit --fsize`, what systemd's `LimitFSIZE=` sets),
//! and a show log damaged while the daemon runs. Nothing is reported saved
//! that is not on disk, the daemon never dies of it, and no record is
//! written onto a damaged line.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;
use roomctl::broker::Mosquitto;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_roomctl");

const SHORT: (&str, &str) = (
    "short.yaml",
    "name: short\nactions: [{at: 0, topic: room1/light, message: 'ON'}]\nduration: 0.2\n",
);

/// A schedule that starts nothing soon (pause and resume work on it).
const SCHEDULE: &str = "schedule:\n  timezone: Europe/Bratislava\n  hours: { default: \"00:00-23:59\" }\n  shows:\n    - { at: \"23:58\", scene: short }\n";

/// A small tmpfs mounted on a fresh directory; unmounted when dropped.
struct SmallFs {
    dir: PathBuf,
}

impl SmallFs {
    fn mount(size: &str) -> SmallFs {
        let dir = std::env::temp_dir().join(format!("roomctl-smallfs-{}", rand_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "cannot mount a tmpfs on {} (this test needs root, as CI has)",
            dir.display()
        );
        SmallFs { dir }
    }

    /// Fills it to the last byte; returns the filler's path.
    fn fill(&self) -> PathBuf {
        let filler = self.dir.join("filler");
        // dd stops with "No space left on device": that is the point.
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=4096"])
            .arg(format!("of={}", filler.display()))
            .stderr(Stdio::null())
            .status();
        // The last partial block.
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&filler)
            .unwrap();
        while f.write(&[0u8; 64]).is_ok_and(|n| n > 0) {}
        filler
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn issues(h: &Value) -> String {
    h["issues"].to_string()
}

fn read_paused(path: &Path) -> Option<bool> {
    let t = std::fs::read_to_string(path).ok()?;
    serde_json::from_str::<Value>(&t).ok()?["paused"].as_bool()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_that_cannot_be_saved_is_an_error_and_a_health_issue() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let fs = SmallFs::mount("64k");
    let state = fs.dir.join("state");
    let site = site(
        &[b.port()],
        &[SHORT],
        &format!("state_dir: {}\n{SCHEDULE}", state.display()),
    );
    let cancel = CancellationToken::new();
    let (_s, mut status) = observer(b.port(), "roomctl/room1/status", &cancel).await;
    let mut child = daemon(&site, &mut status).await;
    let base = format!("http://127.0.0.1:{}", site.web_port);
    let http = reqwest::Client::new();
    let saved = state.join("schedule.json");

    // Saved while there is room.
    let r = http
        .post(format!("{base}/api/schedule/resume"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(read_paused(&saved), Some(false));

    // The card is full: the pause holds, but the caller is told it is not
    // saved, the file keeps what it had, and no half file is left.
    let filler = fs.fill();
    let r = http
        .post(format!("{base}/api/schedule/pause"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 507, "a pause that is not on disk is not a 200");
    let body: Value = r.json().await.unwrap();
    let e = body["error"].as_str().unwrap();
    assert!(
        e.contains("paused now, but not saved") && e.contains("No space left on device"),
        "{e}"
    );
    assert_eq!(read_paused(&saved), Some(false), "the old file is intact");
    assert!(!state.join("schedule.tmp").exists(), "a half file was left");
    let v: Value = reqwest::get(format!("{base}/api/schedule"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["paused"], true, "the pause holds in memory");
    let h = wait_health(&base, "the unsaved pause in health", |h| {
        issues(h).contains("paused but that is not saved")
    })
    .await;
    assert_eq!(h["status"], "degraded", "{h}");
    // The show log cannot be written either: a few shows' records fill
    // what is left of its last page, then the next ones fail.
    let mut failing = false;
    for _ in 0..40 {
        for path in ["/api/scenes/short/start", "/api/scenes/stop"] {
            http.post(format!("{base}{path}")).send().await.unwrap();
        }
        if issues(&health(&base).await).contains("the show log cannot be written") {
            failing = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        failing,
        "the show log failure never reached health: {}",
        health(&base).await
    );

    // Room again: the pause reaches the disk by itself, health clears.
    std::fs::remove_file(filler).unwrap();
    wait_health(&base, "the retried save", |h| {
        !issues(h).contains("not saved")
    })
    .await;
    assert_eq!(read_paused(&saved), Some(true));
    assert!(child.try_wait().unwrap().is_none(), "the daemon died");
    let _ = child.start_kill();
    cancel.cancel();
}

/// A valid show-log line (the on-disk format: CRC-32 of the JSON, space,
/// JSON).
fn record_line(text: &str) -> String {
    let json = serde_json::json!({"t": 1.0, "kind": "note", "text": text}).to_string();
    format!("{:08x} {json}\n", crc32fast::hash(json.as_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_size_limit_is_a_write_error_not_a_death() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let site = site(&[b.port()], &[SHORT], "state_dir: state\n");
    let state = site.dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    // A show log just under the limit: the next records cross it.
    const LIMIT: usize = 16 * 1024;
    let mut text = String::new();
    while text.len() < LIMIT - 200 {
        text.push_str(&record_line("old"));
    }
    std::fs::write(state.join("show.log"), &text).unwrap();
    let cancel = CancellationToken::new();
    let (_s, mut status) = observer(b.port(), "roomctl/room1/status", &cancel).await;
    let (_o, mut seen) = observer(b.port(), "room1/#", &cancel).await;
    // Under a file-size limit, as systemd's LimitFSIZE= would set it.
    let mut cmd = tokio::process::Command::new("prlimit");
    cmd.arg(format!("--fsize={LIMIT}"))
        .arg(BIN)
        .args(["run", "-c", site.config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = daemon_online(cmd, &mut status).await;
    let base = format!("http://127.0.0.1:{}", site.web_port);
    let http = reqwest::Client::new();

    for round in 0..3 {
        let r = http
            .post(format!("{base}/api/scenes/short/start"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "round {round}");
        let got = collect_until(&mut seen, Duration::from_secs(5), |g| {
            g.iter().any(|m| m.topic == "room1/STOP")
        })
        .await;
        assert!(
            got.iter().any(|m| m.topic == "room1/light"),
            "round {round}: the scene sent no cue"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "round {round}: the daemon died: {:?}",
            child.try_wait()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    wait_health(&base, "the show log failure in health", |h| {
        issues(h).contains("the show log cannot be written") && issues(h).contains("too large")
    })
    .await;
    assert!(
        std::fs::metadata(state.join("show.log")).unwrap().len() <= LIMIT as u64,
        "written past the limit"
    );
    let _ = child.start_kill();
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_show_log_damaged_while_running_loses_no_record() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let site = site(&[b.port()], &[SHORT], "state_dir: state\n");
    let log = site.dir.path().join("state").join("show.log");
    let cancel = CancellationToken::new();
    let (_s, mut status) = observer(b.port(), "roomctl/room1/status", &cancel).await;
    let (_o, mut seen) = observer(b.port(), "room1/STOP", &cancel).await;
    let mut child = daemon(&site, &mut status).await;
    let base = format!("http://127.0.0.1:{}", site.web_port);
    let http = reqwest::Client::new();

    type Harm = fn(&Path);
    let damage: [(&str, Harm); 3] = [
        ("nothing yet", |_| {}),
        ("cut mid-record", |p| {
            let len = std::fs::metadata(p).unwrap().len();
            let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
            f.set_len(len - 7).unwrap();
        }),
        ("zeros appended", |p| {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().append(true).open(p).unwrap();
            f.write_all(&[0u8; 300]).unwrap();
        }),
    ];
    for (i, (what, harm)) in damage.iter().enumerate() {
        if i > 0 {
            harm(&log);
        }
        let r = http
            .post(format!("{base}/api/scenes/short/start"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{what}");
        collect_until(&mut seen, Duration::from_secs(5), |g| !g.is_empty()).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let today: Value = reqwest::get(format!("{base}/api/log/today"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if today["counts"]["shows_started"] == i + 1 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "after the show log was damaged ({what}): {today}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(child.try_wait().unwrap().is_none(), "the daemon died");
    let _ = child.start_kill();
    cancel.cancel();
}
