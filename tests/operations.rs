//! What a technician does on site, with the real binary: boot with a
//! broken scene file, reload after editing scenes (SIGHUP, the dashboard's
//! reload), press the panic button without a token.

use std::process::Command;
use std::time::Duration;

use crate::common::*;
use roomctl::broker::Mosquitto;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_roomctl");

const LONG: &str = "name: long\nactions:\n  - { at: 0, topic: room1/light, message: 'ON' }\n  - { at: 60, topic: room1/light, message: 'OFF' }\non_stop:\n  - { topic: room1/steam, message: OLD }\n";

async fn get_json(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn scene_names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_scene_file_never_keeps_the_room_dark() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let site = site(
        &[b.port()],
        &[
            ("long.yaml", LONG),
            (
                "broken.yaml",
                "name: broken\nactions:\n  - { at: soon, topic: room1/x, message: ON }\n",
            ),
        ],
        "",
    );
    let cfg = site.config.to_str().unwrap();
    // What the unit runs before starting: only the config counts.
    let pre = Command::new(BIN)
        .args(["check", "--config-only", "--require-env", "-c", cfg])
        .output()
        .unwrap();
    assert!(
        pre.status.success(),
        "{}",
        String::from_utf8_lossy(&pre.stdout)
    );
    // The full check still reports the broken file.
    let full = Command::new(BIN)
        .args(["check", "-c", cfg])
        .output()
        .unwrap();
    assert_eq!(full.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&full.stdout).contains("broken.yaml:3:11: invalid duration `soon`")
    );

    let cancel = CancellationToken::new();
    let (_o, mut seen) = observer(b.port(), "#", &cancel).await;
    let mut child = daemon(&site, &mut seen).await;
    let base = format!("http://127.0.0.1:{}", site.web_port);
    let (_, scenes) = get_json(&format!("{base}/api/scenes")).await;
    assert_eq!(scene_names(&scenes), ["long"]);
    let (code, health) = get_json(&format!("{base}/healthz")).await;
    assert_eq!(code, 200);
    assert_eq!(health["status"], "degraded");
    assert!(
        health["issues"]
            .to_string()
            .contains("broken.yaml:3:11: invalid duration `soon`"),
        "{health}"
    );
    let (_, status) = get_json(&format!("{base}/api/status")).await;
    assert!(
        status["problems"][0]
            .as_str()
            .unwrap()
            .contains("broken.yaml")
    );
    // And its panic button works.
    let r = reqwest::Client::new()
        .post(format!("{base}/api/scenes/stop"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let _ = child.start_kill();
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_and_the_dashboard_reload_scenes_without_a_restart() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let site = site(&[b.port()], &[("long.yaml", LONG)], "");
    site.set_web_token_as("door-key", "technician");
    let cancel = CancellationToken::new();
    let (_o, mut seen) = observer(b.port(), "room1/#", &cancel).await;
    let (_s, mut status) = observer(b.port(), "roomctl/room1/status", &cancel).await;
    let mut child = daemon(&site, &mut status).await;
    let base = format!("http://127.0.0.1:{}", site.web_port);
    let http = reqwest::Client::new();

    // A show is running when the technician edits the scenes.
    let r = http
        .post(format!("{base}/api/scenes/long/start"))
        .bearer_auth("door-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    collect_until(&mut seen, Duration::from_secs(5), |g| {
        g.iter().any(|m| m.topic == "room1/light")
    })
    .await;
    let scenes = site.dir.path().join("scenes");
    std::fs::write(scenes.join("long.yaml"), LONG.replace("OLD", "NEW")).unwrap();
    std::fs::write(
        scenes.join("extra.yaml"),
        "name: extra\nactions: [{at: 0, topic: room1/extra, message: 'ON'}]\n",
    )
    .unwrap();
    Command::new("kill")
        .args(["-HUP", &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    let mut names = Vec::new();
    for _ in 0..100 {
        names = scene_names(&get_json(&format!("{base}/api/scenes")).await.1);
        if names.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(names, ["extra", "long"]);
    // The running show finishes on the definition it started with.
    let (_, st) = get_json(&format!("{base}/api/status")).await;
    assert_eq!(
        st["scene"]["name"], "long",
        "the reload must not stop the show"
    );
    http.post(format!("{base}/api/scenes/stop"))
        .send()
        .await
        .unwrap();
    let got = collect_until(&mut seen, Duration::from_secs(5), |g| {
        g.iter().any(|m| m.topic == "room1/STOP")
    })
    .await;
    let steam: Vec<String> = got
        .iter()
        .filter(|m| m.topic == "room1/steam")
        .map(text)
        .collect();
    assert_eq!(steam, ["OLD"], "on_stop of the old definition");

    // A config that does not load changes nothing and says why.
    let good = std::fs::read_to_string(&site.config).unwrap();
    std::fs::write(&site.config, format!("{good}\nbogus_key: 1\n")).unwrap();
    let r = http
        .post(format!("{base}/api/reload"))
        .bearer_auth("door-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["errors"]
            .to_string()
            .contains("unknown field `bogus_key`"),
        "{body}"
    );
    let names = scene_names(&get_json(&format!("{base}/api/scenes")).await.1);
    assert_eq!(names, ["extra", "long"], "the old set stays");
    // Once fixed, the dashboard's reload applies it.
    std::fs::write(&site.config, good).unwrap();
    std::fs::remove_file(scenes.join("extra.yaml")).unwrap();
    let r = http
        .post(format!("{base}/api/reload"))
        .bearer_auth("door-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["scenes"], serde_json::json!(["long"]));
    let _ = child.start_kill();
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panic_button_needs_no_token_and_the_rest_does() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let site = site(&[b.port()], &[("long.yaml", LONG)], "");
    site.set_web_token_as("door-key", "technician");
    let cancel = CancellationToken::new();
    let (_o, mut seen) = observer(b.port(), "#", &cancel).await;
    let mut child = daemon(&site, &mut seen).await;
    let base = format!("http://127.0.0.1:{}", site.web_port);
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/api/scenes/long/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("log in first (or send an API token)")
    );
    let r = http
        .post(format!("{base}/api/scenes/long/start"))
        .bearer_auth("guess")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "wrong token");
    let r = http
        .post(format!("{base}/api/scenes/stop"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = collect_until(&mut seen, Duration::from_secs(5), |g| {
        g.iter().any(|m| m.topic == "room1/STOP")
    })
    .await;
    assert!(
        got.iter()
            .any(|m| m.topic == "room1/STOP" && text(m) == "STOP")
    );
    let _ = child.start_kill();
    cancel.cancel();
}

/// A reload while one scene file is broken keeps that scene's last good
/// version: it still starts (by the dashboard and by its schedule slot),
/// the reload says which scenes are stale, health names them; once the
/// file is fixed the new version is loaded and nothing is stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scene_broken_by_an_edit_keeps_its_last_good_version() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let intro =
        "name: intro\nactions: [{at: 0, topic: room1/light, message: OLD}]\nduration: 0.2\n";
    let schedule = "schedule:\n  timezone: Europe/Bratislava\n  hours: { default: \"00:00-23:59\" }\n  shows:\n    - { every: 10m, from: \"00:00\", until: \"23:50\", scene: intro }\n";
    let site = site(&[b.port()], &[("intro.yaml", intro), ONE_CUE], schedule);
    let cancel = CancellationToken::new();
    let (_o, mut seen) = observer(b.port(), "room1/light", &cancel).await;
    let (_s, mut status) = observer(b.port(), "roomctl/room1/status", &cancel).await;
    let mut child = daemon(&site, &mut status).await;
    let base = format!("http://127.0.0.1:{}", site.web_port);
    let http = reqwest::Client::new();

    // The author saves a half-edited file.
    let file = site.dir.path().join("scenes").join("intro.yaml");
    std::fs::write(
        &file,
        "name: intro\nactions: [{at: 0, topic: room1/light, message: NEW\n",
    )
    .unwrap();
    let r = http
        .post(format!("{base}/api/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["stale"], serde_json::json!(["intro"]), "{body}");
    assert!(body["scenes"].to_string().contains("intro"), "{body}");
    let (_, health) = get_json(&format!("{base}/healthz")).await;
    assert!(
        health["issues"]
            .to_string()
            .contains("scene intro is stale"),
        "{health}"
    );
    let (_, sched) = get_json(&format!("{base}/api/schedule")).await;
    assert_eq!(
        sched["next"][0]["scene"], "intro",
        "its schedule slot stays: {sched}"
    );
    let r = http
        .post(format!("{base}/api/scenes/intro/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the last good version still starts");
    let got = collect_until(&mut seen, Duration::from_secs(5), |g| !g.is_empty()).await;
    assert_eq!(got.first().map(text).as_deref(), Some("OLD"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !get_json(&format!("{base}/api/status")).await.1["scene"].is_null() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the scene never ended"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Fixed: the new version, nothing stale.
    std::fs::write(&file, intro.replace("OLD", "NEW")).unwrap();
    let r = http
        .post(format!("{base}/api/reload"))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["stale"], serde_json::json!([]), "{body}");
    let (_, health) = get_json(&format!("{base}/healthz")).await;
    assert!(!health["issues"].to_string().contains("stale"), "{health}");
    let r = http
        .post(format!("{base}/api/scenes/intro/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = collect_until(&mut seen, Duration::from_secs(5), |g| !g.is_empty()).await;
    assert_eq!(got.first().map(text).as_deref(), Some("NEW"));
    let _ = child.start_kill();
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_from_the_dashboard_is_for_systemd_to_start_it_again() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let cancel = CancellationToken::new();
    let site = site(&[b.port()], &[("long.yaml", LONG)], "");
    site.set_web_token_as("admin-key", "admin");
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}", site.web_port);
    let restart = || {
        client
            .post(format!("{base}/api/system/restart"))
            .bearer_auth("admin-key")
            .send()
    };

    // Not under systemd: nobody would start it again, so it keeps running.
    let (_s, mut status) = observer(b.port(), "roomctl/room1/status", &cancel).await;
    let mut alone = daemon(&site, &mut status).await;
    eventually(Duration::from_secs(5), "the dashboard", || {
        std::net::TcpStream::connect(("127.0.0.1", site.web_port)).is_ok()
    })
    .await;
    let (code, v) = get_json(&format!("{base}/api/system")).await;
    assert_eq!(code, 200);
    assert_eq!(v["restart_possible"], false, "{v}");
    assert!(
        v["version"].as_str().unwrap().starts_with("roomctl "),
        "{v}"
    );
    assert!(v["state_disk"]["free"].as_u64().unwrap() > 0, "{v}");
    let r = restart().await.unwrap();
    assert_eq!(r.status().as_u16(), 409);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("not run by systemd"),
        "{body}"
    );
    assert!(alone.try_wait().unwrap().is_none(), "still running");
    alone.kill().await.unwrap();
    let _ = alone.wait().await;

    // Under systemd: it stops in order and exits 75 for Restart=on-failure.
    let mut cmd = roomctl_run(&site);
    cmd.env("INVOCATION_ID", "0123456789abcdef");
    let (_s2, mut status) = observer(b.port(), "roomctl/room1/status", &cancel).await;
    let mut child = daemon_online(cmd, &mut status).await;
    eventually(Duration::from_secs(5), "the dashboard again", || {
        std::net::TcpStream::connect(("127.0.0.1", site.web_port)).is_ok()
    })
    .await;
    let (_, v) = get_json(&format!("{base}/api/system")).await;
    assert_eq!(v["restart_possible"], true, "{v}");
    let r = restart().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let code = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("it did not stop within 15 s")
        .unwrap();
    assert_eq!(code.code(), Some(75), "the exit code systemd restarts on");
    let offline = collect_until(&mut status, Duration::from_secs(5), |g| {
        g.iter().any(|m| text(m) == "offline")
    })
    .await;
    assert!(
        offline.iter().any(|m| text(m) == "offline"),
        "it said offline on the way out"
    );
    cancel.cancel();
}
