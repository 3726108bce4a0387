//! The `roomctl` binary, as a user or systemd runs it.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;
use roomctl::broker::Mosquitto;
use roomctl::simulate::{self, SimOptions};
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_roomctl");

mod users;

fn roomctl(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

async fn roomctl_async(args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn version_and_help() {
    let o = roomctl(&["--version"]);
    assert!(o.status.success());
    assert!(stdout(&o).starts_with("roomctl "));
    let o = roomctl(&["--help"]);
    for cmd in ["run", "check", "play", "simulate", "demo", "doctor"] {
        assert!(stdout(&o).contains(cmd), "help lacks {cmd}");
    }
}

/// A bad duration is a usage error like any other bad argument: clap says
/// which argument and why, and the exit code is 2.
#[test]
fn bad_durations_on_the_command_line_are_usage_errors() {
    for args in [
        &["demo", "--kill-primary-after", "soon"][..],
        &["simulate", "--latency", "250ms..50ms"][..],
    ] {
        let o = roomctl(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(args[1]), "{args:?}: {err}");
    }
}

#[test]
fn check_passes_on_the_shipped_example() {
    let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/config/roomctl.yaml");
    let o = roomctl(&["check", "-c", cfg]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("OK (3 scene(s), 2 command file(s), 3 media file(s))"),
        "{}",
        stdout(&o)
    );
}

/// The Debian package's config, laid out as its postinst lays it out
/// (scenes in /etc/roomctl/scenes, media in /var/lib/roomctl/media), checks
/// OK, and differs from the commented example only in those paths (and the
/// example's `../scenes`, the repository's top-level folder): the two
/// cannot drift apart. (CI installs the real .deb and checks it too.)
#[test]
fn the_packaged_config_checks_and_matches_the_example() {
    let repo = env!("CARGO_MANIFEST_DIR");
    let packaged = std::fs::read_to_string(format!("{repo}/debian/config.yaml")).unwrap();
    let example = std::fs::read_to_string(format!("{repo}/config/roomctl.yaml")).unwrap();
    let settings = |text: &str| -> Vec<String> {
        text.lines()
            .map(|l| l.split(" #").next().unwrap().trim_end().to_string())
            .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
            .map(|l| l.replace("/var/lib/roomctl/media", "media"))
            // The example lives in config/, its scenes at the top level.
            .map(|l| l.replace("dir: ../scenes", "dir: scenes"))
            .collect()
    };
    assert_eq!(settings(&packaged), settings(&example));

    let root = tempfile::tempdir().unwrap();
    let etc = root.path().join("etc/roomctl");
    let media = root.path().join("var/lib/roomctl/media");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(media.parent().unwrap()).unwrap();
    let cp = |args: &[&str]| {
        assert!(Command::new("cp").args(args).status().unwrap().success());
    };
    cp(&["-r", &format!("{repo}/scenes"), etc.to_str().unwrap()]);
    cp(&[
        "-r",
        &format!("{repo}/config/media"),
        media.to_str().unwrap(),
    ]);
    std::fs::write(
        etc.join("config.yaml"),
        packaged.replace("/var/lib/roomctl/media", media.to_str().unwrap()),
    )
    .unwrap();
    let o = roomctl(&["check", "-c", etc.join("config.yaml").to_str().unwrap()]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("OK (3 scene(s), 2 command file(s), 3 media file(s))"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn check_reports_every_error_as_file_line_col_and_exits_1() {
    let site = site(
        &[1883],
        &[
            (
                "bad.yaml",
                "name: bad\nactions:\n  - { at: 0, topic: room1/audio, message: 'PLAY:missing.mp3' }\n  - { at: x, topic: room1/light, message: ON }\n",
            ),
            (
                "sm.json",
                "{\"sceneId\": \"sm\", \"initialState\": \"a\",\n \"states\": {\"a\": {\"transitions\": [{\"type\": \"timeout\", \"delay\": 1, \"goto\": \"nowhere\"}]}}}\n",
            ),
        ],
        "triggers:\n  - { topic: room1/button, scene: ghost }\n",
    );
    let o = roomctl(&["check", "-c", site.config.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("error") || l.contains(": "))
        .collect();
    let has = |needle: &str| lines.iter().any(|l| l.contains(needle));
    assert!(has("bad.yaml:4:11: invalid duration `x`"), "{out}");
    assert!(
        has("sm.json:2:75: goto `nowhere` is not a state (states: a; END ends the scene)"),
        "{out}"
    );
    assert!(
        has("roomctl.yaml:13:35: trigger scene `ghost` does not exist"),
        "{out}"
    );
    assert!(out.trim_end().ends_with("3 error(s)"), "{out}");
}

#[test]
fn check_file_checks_one_scene_against_the_room() {
    let site = site(&[1883], &[], "");
    let draft = site.dir.path().join("draft.json");
    std::fs::write(
        &draft,
        "{\"sceneId\": \"draft\", \"initialState\": \"a\",\n \"states\": {\"a\": {\"transitions\": [{\"type\": \"timeout\", \"delay\": 1, \"goto\": \"b\"}]},\n  \"bb\": {\"transitions\": [{\"type\": \"always\", \"goto\": \"ENd\"}]}}}\n",
    )
    .unwrap();
    let config = site.config.to_str().unwrap();
    let o = roomctl(&["check", draft.to_str().unwrap(), "-c", config]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(
            "draft.json:2:75: goto `b` is not a state (states: a, bb; END ends the scene)"
        ),
        "{out}"
    );
    assert!(
        out.contains("draft.json:3:53: warning: goto `ENd` ends the scene: write it `END`"),
        "{out}"
    );
    assert!(out.trim_end().ends_with("draft.json: 1 error(s)"), "{out}");
    std::fs::write(
        &draft,
        "name: draft\nactions:\n  - { at: 0, topic: room1/light, message: ON }\n",
    )
    .unwrap();
    let o = roomctl(&["check", draft.to_str().unwrap(), "-c", config]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("OK (scene `draft`)"), "{}", stdout(&o));
}

#[test]
fn check_on_unreadable_or_broken_config() {
    let o = roomctl(&["check", "-c", "/nonexistent/roomctl.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("/nonexistent/roomctl.yaml: cannot read config"));
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("c.yaml");
    std::fs::write(
        &p,
        "room: room1\nmqtt:\n  brokers: [{broker: h, port: 99999}]\n",
    )
    .unwrap();
    let o = roomctl(&["check", "-c", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("c.yaml:3:"), "{}", stdout(&o));
}

const PLAY_SCENE: &str = "name: show\nactions:\n  - { at: 0.0, topic: room1/light, message: 'ON' }\n  - { at: 0.2, topic: room1/audio, message: 'PLAY:tone.wav' }\n  - { at: 0.4, topic: room1/steam, message: 'ON' }\non_stop:\n  - { topic: room1/steam, message: 'OFF' }\n";

fn fleet_opts(drop: f64) -> SimOptions {
    SimOptions {
        drop,
        ..fast_fleet()
    }
}

fn write_tone(site: &Site) {
    let wav = roomctl::testkit::sine_wav(0.1, 440.0, 0.5);
    std::fs::write(site.dir.path().join("media/tone.wav"), wav).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn play_reports_each_cue_and_passes_when_all_confirmed() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let site = site(&[b.port()], &[("show.yaml", PLAY_SCENE)], "");
    write_tone(&site);
    let (config, scenes) = site.load();
    let cancel = CancellationToken::new();
    let fleet = simulate::start(&config, &scenes, &fleet_opts(0.0), cancel.child_token());
    fleet_ready(&fleet).await;

    let o = roomctl_async(&["play", "show", "-c", site.config.to_str().unwrap()]).await;
    let out = stdout(&o);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for needle in [
        "sent     room1/light = ON",
        "OK       room1/light (0.",
        "local    room1/audio = PLAY:tone.wav",
        "sent     room1/steam = ON",
        "sent     room1/steam = OFF",
        "sent     room1/STOP = STOP",
        "end      completed",
        "show: 3 expected, 3 OK, 0 TIMEOUT, 0 ERROR -> PASS",
        "OK       room1/steam (0.",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in\n{out}");
    }

    let o = roomctl_async(&[
        "play",
        "show",
        "--json",
        "-c",
        site.config.to_str().unwrap(),
    ])
    .await;
    assert!(o.status.success());
    let events: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    assert_eq!(events.iter().filter(|e| e["event"] == "ok").count(), 3);
    let summary = events.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["success"], true);
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn play_fails_on_timeout_and_on_unknown_scene() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let site = site(&[b.port()], &[("show.yaml", PLAY_SCENE)], "");
    write_tone(&site);
    // No devices at all: every command times out.
    let o = roomctl_async(&["play", "show", "-c", site.config.to_str().unwrap()]).await;
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("TIMEOUT  room1/light (>1.000s)"), "{out}");
    assert!(
        out.contains("3 expected, 0 OK, 3 TIMEOUT, 0 ERROR -> FAIL"),
        "{out}"
    );
    assert_eq!(
        out.matches("TIMEOUT  room1/steam (>1.000s)").count(),
        2,
        "{out}"
    );

    let o = roomctl_async(&["play", "nope", "-c", site.config.to_str().unwrap()]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no scene named `nope` (scenes: show)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn play_without_any_broker_says_so() {
    let port = roomctl::broker::free_port().unwrap();
    let site = site(&[port], &[("show.yaml", PLAY_SCENE)], "");
    write_tone(&site);
    let o = roomctl_async(&["play", "show", "-c", site.config.to_str().unwrap()]).await;
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no MQTT broker reachable"), "{err}");
    assert!(err.contains("Connection refused"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_says_which_brokers_answer() {
    let b = Mosquitto::start().await.unwrap();
    let dead = roomctl::broker::free_port().unwrap();
    let both = site(&[b.port(), dead], &[], "");
    let o = roomctl_async(&["doctor", "-c", both.config.to_str().unwrap()]).await;
    let out = stdout(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains(&format!("1/2  127.0.0.1:{}", b.port())) && out.contains(" OK "),
        "{out}"
    );
    assert!(
        out.contains(&format!("2/2  127.0.0.1:{dead}"))
            && out.contains("FAILED  Connection refused"),
        "{out}"
    );
    let dead_site = site(&[dead], &[], "");
    let o = roomctl_async(&["doctor", "-c", dead_site.config.to_str().unwrap()]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("no broker answers"));
}

/// Starts `roomctl run` and waits until its retained status says online.
async fn start_daemon(
    site: &Site,
    port: u16,
    cancel: &CancellationToken,
) -> (
    tokio::process::Child,
    tokio::sync::mpsc::Receiver<roomctl::mqtt::InMessage>,
) {
    let (_o, mut seen) = observer(port, "#", cancel).await;
    std::mem::forget(_o);
    let child = daemon(site, &mut seen).await;
    (child, seen)
}

const LONG: &str = "name: long\nactions:\n  - { at: 0, topic: room1/light, message: 'ON' }\n  - { at: 60, topic: room1/light, message: 'OFF' }\non_stop:\n  - { topic: room1/steam, message: 'OFF' }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_runs_on_stop_publishes_stop_and_offline_then_exits_0() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let site = site(&[b.port()], &[("long.yaml", LONG)], "");
    let cancel = CancellationToken::new();
    let (mut child, mut seen) = start_daemon(&site, b.port(), &cancel).await;

    // Control over HTTP while we are at it.
    let url = format!("http://127.0.0.1:{}", site.web_port);
    let r = reqwest::Client::new()
        .post(format!("{url}/api/scenes/long/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = collect_until(&mut seen, Duration::from_secs(5), |g| {
        g.iter().any(|m| m.topic == "room1/light")
    })
    .await;
    assert!(
        got.iter()
            .any(|m| m.topic == "room1/light" && text(m) == "ON")
    );

    let pid = child.id().unwrap();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("no exit")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let got = collect_until(&mut seen, Duration::from_secs(3), |g| {
        g.iter()
            .any(|m| m.topic == "roomctl/room1/status" && text(m) == "offline")
    })
    .await;
    let order: Vec<String> = got
        .iter()
        .filter(|m| {
            ["room1/steam", "room1/STOP", "roomctl/room1/status"].contains(&m.topic.as_str())
        })
        .map(|m| format!("{}={}", m.topic, text(m)))
        .collect();
    assert_eq!(
        order,
        [
            "room1/steam=OFF",
            "room1/STOP=STOP",
            "roomctl/room1/status=offline"
        ]
    );
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_daemon_is_reported_offline_by_its_last_will() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let site = site(&[b.port()], &[("long.yaml", LONG)], "");
    let cancel = CancellationToken::new();
    let (mut child, mut seen) = start_daemon(&site, b.port(), &cancel).await;
    child.start_kill().unwrap();
    let _ = child.wait().await;
    let got = collect_until(&mut seen, Duration::from_secs(5), |g| {
        g.iter()
            .any(|m| m.topic == "roomctl/room1/status" && text(m) == "offline")
    })
    .await;
    assert!(
        got.iter()
            .any(|m| m.topic == "roomctl/room1/status" && text(m) == "offline"),
        "no last will"
    );
    cancel.cancel();
}

#[test]
fn run_refuses_an_invalid_config_with_positions() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("c.yaml");
    std::fs::write(
        &p,
        "room: room1\nmqtt:\n  brokers: [{broker: h}]\n  jitter_factor: 7\n",
    )
    .unwrap();
    let o = roomctl(&["run", "-c", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("c.yaml:4:18: mqtt.jitter_factor must be between 0.0 and 1.0"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_notify_ready_watchdog_and_stopping() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let site = site(&[b.port()], &[("long.yaml", LONG)], "");
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = tokio::net::UnixDatagram::bind(&sock_path).unwrap();
    let mut child = tokio::process::Command::new(BIN)
        .args(["run", "-c", site.config.to_str().unwrap()])
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut seen = String::new();
    let mut buf = vec![0u8; 4096];
    let mut recv_until = async |seen: &mut String, want: &str| {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !seen.contains(want) {
            let n = tokio::time::timeout_at(deadline, sock.recv(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("no {want} in {seen:?}"))
                .unwrap();
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            seen.push('\n');
        }
    };
    recv_until(&mut seen, "READY=1").await;
    assert!(seen.contains("STATUS=room room1 running"), "{seen}");
    // Pinged at half the interval: several pings in a second.
    seen.clear();
    recv_until(&mut seen, "WATCHDOG=1").await;
    let pid = child.id().unwrap();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    recv_until(&mut seen, "STOPPING=1").await;
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journald_lines_are_plain_name_their_client_and_alsa_stays_quiet() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let site = site(&[b.port()], &[ONE_CUE], "");
    // Audio on, with a default device that cannot open: ALSA would print
    // its own `ALSA lib ...` lines to stderr.
    site.edit_config("audio: false", "audio: true");
    let asound = site.dir.path().join("asound.conf");
    std::fs::write(
        &asound,
        "pcm.!default { type hw card 97 }\nctl.!default { type hw card 97 }\n",
    )
    .unwrap();
    let cancel = CancellationToken::new();
    let (_o, mut seen) = observer(b.port(), "roomctl/#", &cancel).await;
    let mut child = tokio::process::Command::new(BIN)
        .args(["run", "-c", site.config.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .env("JOURNAL_STREAM", "8:12345")
        .env("ALSA_CONFIG_PATH", &asound)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let got = collect_until(&mut seen, Duration::from_secs(10), |g| {
        g.iter()
            .any(|m| m.topic == "roomctl/room1/status" && text(m) == "online")
    })
    .await;
    assert!(!got.is_empty(), "never online");
    // The audio thread opens the device on its own: wait until it has
    // failed to (healthz says so), or the line may not be written yet.
    let base = format!("http://127.0.0.1:{}", site.web_port);
    wait_health(&base, "the missing audio device in health", |h| {
        // "(unknown)" until the thread has tried.
        let issues = h["issues"].to_string();
        issues.contains("no audio output") && !issues.contains("no audio output (unknown)")
    })
    .await;
    Command::new("kill")
        .args(["-TERM", &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(10), async {
        use tokio::io::AsyncReadExt;
        let mut s = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut s)
            .await
            .unwrap();
        s
    })
    .await
    .unwrap();
    assert!(!out.contains("ALSA lib"), "{out}");
    assert!(out.contains("No audio output device"), "{out}");
    assert!(!out.contains('\u{1b}'), "colours under journald:\n{out}");
    for line in out.lines() {
        assert!(
            !line.starts_with("20"),
            "a timestamp under journald: {line}"
        );
    }
    assert!(
        out.lines()
            .any(|l| l.contains("mqtt{client=rpi_room_room1}")
                && l.contains("Successfully connected")),
        "{out}"
    );
    cancel.cancel();
}
