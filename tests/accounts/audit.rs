//! The audit trail: every command kind, a login failure and a refusal by
//! role are show-log records naming the person and the address; the show
//! log filters by person and its CSV has the column.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use roomctl::access::Role;
use roomctl::room::{Role as Process, Room};
use roomctl::web::app;
use serde_json::{Value, json};

use super::{INTRO, SCHEDULE, login, request};
use crate::common::*;
use crate::web::{call, json as parse, state};

/// The show-log records of kind `action` (and scene starts), as text.
fn audit(room: &Room) -> Vec<(String, Option<String>, String)> {
    room.show_log
        .as_ref()
        .unwrap()
        .read_all()
        .into_iter()
        .filter(|r| r.kind == "action" || r.kind == "scene_start")
        .map(|r| (r.kind, r.who, r.text))
        .collect()
}

#[tokio::test]
async fn every_command_kind_is_in_the_audit_trail_with_its_person_and_address() {
    let broker = roomctl::broker::Mosquitto::start().await.unwrap();
    let port = broker.port();
    let site = site(&[port], &[("intro.yaml", INTRO)], SCHEDULE);
    site.add_command(
        "off",
        r#"[{"topic": "room1/light", "message": "OFF", "timestamp": 0}]"#,
    );
    site.add_user("ada", Role::Admin);
    site.add_user("otto", Role::Operator);
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Process::Daemon);
    assert!(room.mqtt.wait_subscribed(Duration::from_secs(5)).await);
    let ada = login(&room, "ada").await;
    let otto = login(&room, "otto").await;
    let steps: &[(&str, &str, Option<Value>, &str)] = &[
        (
            "otto",
            "/api/scenes/intro/start",
            None,
            "Scene intro started by otto (dashboard unknown)",
        ),
        (
            "otto",
            "/api/scenes/stop",
            None,
            "otto (dashboard unknown): stop — all off",
        ),
        (
            "otto",
            "/api/commands/off/run",
            None,
            "otto (dashboard unknown): run command \"off\"",
        ),
        (
            "otto",
            "/api/schedule/pause",
            None,
            "otto (dashboard unknown): pause the schedule",
        ),
        (
            "otto",
            "/api/schedule/resume",
            None,
            "otto (dashboard unknown): resume the schedule",
        ),
        (
            "ada",
            "/api/control/send",
            Some(json!({"topic": "room1/light", "message": "ON"})),
            "ada (dashboard unknown): send room1/light = \"ON\"",
        ),
        (
            "ada",
            "/api/control/devices/esp32_99/test",
            None,
            "ada (dashboard unknown): test device \"esp32_99\" (refused: no device `esp32_99`",
        ),
        (
            "ada",
            "/api/control/volume",
            Some(json!({"volume": 0.25})),
            "ada (dashboard unknown): volume 0.25",
        ),
        (
            "ada",
            "/api/control/audio/stop",
            None,
            "ada (dashboard unknown): stop audio",
        ),
        (
            "ada",
            "/api/reload",
            None,
            "ada (dashboard unknown): reload",
        ),
        (
            "ada",
            "/api/users",
            Some(json!({"name": "vera", "role": "viewer", "password": "long enough"})),
            "ada (dashboard unknown): add user vera (viewer)",
        ),
        (
            "ada",
            "/api/tokens",
            Some(json!({"name": "site", "role": "operator"})),
            "ada (dashboard unknown): add API token site (operator)",
        ),
    ];
    for (who, path, body, _) in steps {
        let cookie = if *who == "ada" { &ada } else { &otto };
        let (s, _, b) = call(
            app(state(&room)),
            request(&Method::POST, path, Some(cookie), body.clone()),
        )
        .await;
        assert!(
            s.is_success() || s == StatusCode::NOT_FOUND,
            "{path}: {s} {}",
            String::from_utf8_lossy(&b)
        );
    }
    // A refused login and a role refusal are there too.
    let body = json!({"user": "otto", "password": "not the password"});
    call(
        app(state(&room)),
        request(&Method::POST, "/api/login", None, Some(body)),
    )
    .await;
    // The room refuses what the role does not allow whatever the edge.
    let r = room
        .apply(
            roomctl::origin::Origin::dashboard(
                "10.0.0.9",
                roomctl::access::Actor::User {
                    name: "otto".into(),
                    role: Role::Operator,
                },
            ),
            roomctl::room::Command::Reload,
        )
        .await;
    assert_eq!(
        r.unwrap_err().to_string(),
        "otto (operator) may not reload: that needs the technician role"
    );
    eventually(Duration::from_secs(5), "the audit records on disk", || {
        audit(&room)
            .iter()
            .any(|(_, _, t)| t.contains("may not reload"))
    })
    .await;
    let trail = audit(&room);
    for (who, _, _, text) in steps {
        assert!(
            trail
                .iter()
                .any(|(_, w, t)| t.starts_with(text) && w.as_deref() == Some(*who)),
            "no record `{text}` by {who} in {trail:#?}"
        );
    }
    for text in [
        "otto (dashboard 0.0.0.0): log in (refused: wrong user name or password)",
        "otto (dashboard 10.0.0.9): reload (refused: otto (operator) may not reload: that needs the technician role)",
    ] {
        assert!(
            trail.iter().any(|(_, _, t)| t == text),
            "no `{text}` in {trail:#?}"
        );
    }
    assert!(
        !format!("{trail:?}").contains("not the password"),
        "a password in the log"
    );

    // The show log filters by person, and the CSV has the column.
    let (_, _, b) = call(
        app(state(&room)),
        request(
            &Method::GET,
            "/api/log?who=otto&limit=100",
            Some(&ada),
            None,
        ),
    )
    .await;
    let recs = parse(&b);
    assert!(recs.as_array().unwrap().len() >= 5);
    assert!(
        recs.as_array().unwrap().iter().all(|r| r["who"] == "otto"),
        "{recs}"
    );
    let (_, _, b) = call(
        app(state(&room)),
        request(&Method::GET, "/api/log.csv?who=ada", Some(&ada), None),
    )
    .await;
    let csv = String::from_utf8(b).unwrap();
    assert!(
        csv.starts_with("time_local,time_utc,unix,kind,scene,device,origin,who,text\n"),
        "{csv}"
    );
    assert!(csv.lines().skip(1).all(|l| l.contains(",ada,")), "{csv}");
    room.shutdown(Process::Daemon).await;
}
