//! The daemon's cue thread, seen from outside the process: `roomctl run`
//! has a thread named `roomctl-cues`, scheduled `SCHED_FIFO` when it may
//! (these tests run as root) and normally with `ROOMCTL_CUE_THREAD=normal`;
//! with `off` there is none. In every mode a scene's cues reach the broker.

use std::time::Duration;

use roomctl::broker::Mosquitto;
use tokio_util::sync::CancellationToken;

use crate::common::*;

/// The scheduling policy (0 normal, 1 FIFO) of each of `pid`'s threads
/// named `name`, from `/proc/<pid>/task/<tid>/stat` (field 41).
fn policies(pid: u32, name: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = t.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap();
        // After the command's closing parenthesis, field 3 is the first.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        out.push(f[41 - 3].parse().unwrap());
    }
    out
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cue_path_runs_on_its_own_thread_at_the_priority_asked_for() {
    let b = Mosquitto::start().await.unwrap();
    let cancel = CancellationToken::new();
    let (_s, mut status) = observer(b.port(), "roomctl/room1/status", &cancel).await;
    let (_o, mut cues) = observer(b.port(), "room1/light", &cancel).await;
    let site = site(&[b.port()], &[ONE_CUE], "");
    let fifo = if is_root() { 1 } else { 0 };
    for (mode, want) in [
        ("realtime", vec![fifo]),
        ("normal", vec![0]),
        ("off", vec![]),
    ] {
        let mut cmd = roomctl_run(&site);
        cmd.env("ROOMCTL_CUE_THREAD", mode);
        let mut d = daemon_online(cmd, &mut status).await;
        let pid = d.id().unwrap();
        assert_eq!(
            policies(pid, "roomctl-cues"),
            want,
            "ROOMCTL_CUE_THREAD={mode}: the cue thread's scheduling policy"
        );
        raw_publish(
            b.port(),
            &[("roomctl/room1/scene/start", b"a".to_vec(), false)],
        )
        .await;
        let got = collect_until(&mut cues, Duration::from_secs(5), |g| {
            g.iter().any(|m| text(m) == "ON")
        })
        .await;
        assert!(
            got.iter().any(|m| text(m) == "ON"),
            "ROOMCTL_CUE_THREAD={mode}: the scene's cue did not reach the broker within 5 s"
        );
        let _ = d.kill().await;
        // Its will clears the retained online before the next start.
        tokio::time::sleep(Duration::from_millis(300)).await;
        while status.try_recv().is_ok() {}
    }
    cancel.cancel();
}

#[tokio::test]
async fn a_switch_value_that_means_nothing_stops_the_daemon_with_the_three_it_takes() {
    let b = Mosquitto::start().await.unwrap();
    let site = site(&[b.port()], &[ONE_CUE], "");
    let out = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_roomctl"))
            .args(["run", "-c", site.config.to_str().unwrap()])
            .env("ROOMCTL_CUE_THREAD", "fast")
            .output(),
    )
    .await
    .expect("roomctl run with a bad ROOMCTL_CUE_THREAD did not exit within 10 s")
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ROOMCTL_CUE_THREAD must be realtime, normal or off, not `fast`"),
        "{err}"
    );
}
