//! Accounts against the real server (`app(state)` of a running room): every
//! route's rule for every role, table-driven, so a route added without a
//! rule here fails; sessions, their expiry in paused time, the lockout, the
//! cross-site check, and the audit trail of every command kind.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use roomctl::access::Role;
use roomctl::room::{Role as Process, Room};
use roomctl::web::{Need, app};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::common::*;
use crate::web::{call, json as parse, state};

mod audit;

/// Every route and who may use it, written out by hand: the server's own
/// table must say the same.
const EXPECTED: &[(&str, &str, &str)] = &[
    ("GET", "/", "public"),
    ("GET", "/api/commands", "viewer"),
    ("GET", "/api/control/channels", "viewer"),
    ("POST", "/api/control/devices/{id}/test", "technician"),
    ("POST", "/api/control/send", "technician"),
    ("POST", "/api/control/volume", "technician"),
    ("POST", "/api/control/{player}/stop", "technician"),
    ("POST", "/api/commands/{name}/run", "operator"),
    ("GET", "/api/devices", "viewer"),
    ("GET", "/api/outputs", "viewer"),
    ("GET", "/api/media", "technician"),
    ("GET", "/api/logs", "technician"),
    ("GET", "/api/system", "viewer"),
    ("POST", "/api/system/restart", "admin"),
    ("GET", "/api/logs.txt", "technician"),
    ("PUT", "/api/media/{name}", "technician"),
    ("DELETE", "/api/media/{name}", "technician"),
    ("GET", "/api/media/{name}/file", "technician"),
    ("POST", "/api/media/{name}/play", "technician"),
    ("GET", "/api/events", "viewer"),
    ("GET", "/api/feedback", "viewer"),
    ("GET", "/api/log", "viewer"),
    ("GET", "/api/log.csv", "viewer"),
    ("GET", "/api/log/today", "viewer"),
    ("GET", "/api/stats", "viewer"),
    ("GET", "/api/stats.csv", "viewer"),
    ("POST", "/api/login", "public"),
    ("POST", "/api/logout", "public"),
    ("GET", "/api/me", "public"),
    ("POST", "/api/reload", "technician"),
    ("GET", "/api/scenes", "viewer"),
    ("POST", "/api/scenes/stop", "panic"),
    ("POST", "/api/estop", "panic"),
    ("POST", "/api/estop/reset", "technician"),
    ("POST", "/api/scenes/{name}/start", "operator"),
    ("GET", "/api/schedule", "viewer"),
    ("POST", "/api/schedule/{action}", "operator"),
    ("GET", "/api/status", "viewer"),
    ("POST", "/api/tokens", "admin"),
    ("DELETE", "/api/tokens/{name}", "admin"),
    ("GET", "/api/users", "admin"),
    ("POST", "/api/users", "admin"),
    ("DELETE", "/api/users/{name}", "admin"),
    ("POST", "/api/users/{name}/password", "admin"),
    ("POST", "/api/users/{name}/role", "admin"),
    ("GET", "/assets/{*path}", "public"),
    ("GET", "/healthz", "public"),
    ("GET", "/login", "public"),
    ("GET", "/metrics", "viewer"),
    ("GET", "/api/studio", "technician"),
    ("POST", "/api/studio/check", "technician"),
    ("POST", "/api/studio/new", "technician"),
    ("GET", "/api/studio/preview", "technician"),
    ("POST", "/api/studio/preview", "technician"),
    ("POST", "/api/studio/preview/input", "technician"),
    ("POST", "/api/studio/preview/stop", "technician"),
    ("POST", "/api/studio/rename-state", "technician"),
    ("POST", "/api/studio/edit", "technician"),
    ("POST", "/api/studio/scenes/{file}/duplicate", "technician"),
    ("POST", "/api/studio/scenes/{file}/rename", "technician"),
    ("GET", "/api/studio/scenes/{file}", "technician"),
    ("PUT", "/api/studio/scenes/{file}", "technician"),
    ("DELETE", "/api/studio/scenes/{file}", "technician"),
    ("GET", "/api/studio/scenes/{file}/history", "technician"),
    (
        "GET",
        "/api/studio/scenes/{file}/history/{id}",
        "technician",
    ),
    ("GET", "/api/studio/scenes/{file}/diff", "technician"),
    ("POST", "/api/studio/scenes/{file}/revert", "technician"),
];

const INTRO: &str = "name: intro\nactions:\n  - { at: 0, topic: room1/light, message: 'ON' }\n  - { at: 30, topic: room1/light, message: 'OFF' }\n";
const SCHEDULE: &str = "state_dir: state\nschedule:\n  timezone: Europe/Bratislava\n  hours: { default: \"09:00-17:00\" }\n";
const HOST: &str = "pi.local:8080";

fn need_name(n: Need) -> String {
    match n {
        Need::Public => "public".into(),
        Need::Panic => "panic".into(),
        Need::Role(r) => r.to_string(),
    }
}

/// A request as a browser on the dashboard sends it: same-origin, with
/// the session cookie when there is one.
fn request(
    method: &Method,
    path: &str,
    cookie: Option<&str>,
    body: Option<Value>,
) -> Request<Body> {
    let mut b = Request::builder()
        .method(method.clone())
        .uri(path)
        .header(header::HOST, HOST)
        .header(header::ORIGIN, format!("http://{HOST}"));
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, format!("roomctl_session={c}"));
    }
    match body {
        Some(v) => b
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(v.to_string()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    }
}

/// `req` as if from `address` (the server's own socket info).
fn from(mut req: Request<Body>, address: &str) -> Request<Body> {
    let a: std::net::SocketAddr = address.parse().unwrap();
    req.extensions_mut().insert(axum::extract::ConnectInfo(a));
    req
}

/// Logs `user` in; the session cookie's value.
async fn login(room: &Room, user: &str) -> String {
    let body = json!({"user": user, "password": password_of(user)});
    let (s, h, b) = call(
        app(state(room)),
        request(&Method::POST, "/api/login", None, Some(body)),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::OK,
        "login of {user}: {}",
        String::from_utf8_lossy(&b)
    );
    let set = h[header::SET_COOKIE].to_str().unwrap().to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP: {set}");
    set.split(';')
        .next()
        .unwrap()
        .trim_start_matches("roomctl_session=")
        .to_string()
}

/// A path of `pattern` and a body the handler accepts the shape of.
fn example(pattern: &str, n: usize) -> (String, Option<Value>) {
    let path = pattern
        .replace("{*path}", "style.css")
        .replace(
            "{name}",
            if pattern.starts_with("/api/scenes") {
                "intro"
            } else {
                "nobody-here"
            },
        )
        .replace("{id}", "esp32_99")
        .replace("{action}", "pause")
        .replace("{player}", "audio")
        .replace("{file}", "intro.yaml");
    let body = match pattern {
        "/api/control/send" => Some(json!({"topic": "room1/light", "message": "ON"})),
        "/api/control/volume" => Some(json!({"volume": 0.5})),
        "/api/users" => {
            Some(json!({"name": format!("new{n}"), "role": "viewer", "password": "long enough"}))
        }
        "/api/users/{name}/password" => Some(json!({"password": "long enough"})),
        "/api/users/{name}/role" => Some(json!({"role": "viewer"})),
        "/api/tokens" => Some(json!({"name": format!("tok{n}"), "role": "viewer"})),
        "/api/login" => Some(json!({"user": "nobody", "password": "whatever"})),
        "/api/studio/check" => {
            Some(json!({"file": "intro.yaml", "text": "name: x\nactions: []\n"}))
        }
        "/api/studio/new" => Some(json!({"name": format!("new{n}"), "template": "simple"})),
        "/api/studio/preview" => Some(json!({"file": "intro.yaml", "text": INTRO})),
        "/api/studio/rename-state" => Some(
            json!({"text": "sceneId: x\ninitialState: a\nstates: {a: {}}\n", "old": "a", "new": "b"}),
        ),
        "/api/studio/edit" => Some(json!({
            "text": "sceneId: x\ninitialState: a\nstates: {a: {}}\n",
            "edit": {"op": "add_state", "name": "b"},
        })),
        "/api/studio/scenes/{file}/duplicate" => Some(json!({"name": format!("copy{n}")})),
        "/api/studio/scenes/{file}/rename" => {
            Some(json!({"name": format!("moved{n}"), "base": "stale"}))
        }
        "/api/studio/preview/input" => Some(json!({"topic": "room1/button", "payload": "pressed"})),
        "/api/studio/scenes/{file}" => {
            Some(json!({"text": "name: intro\nactions: []\n", "base": null}))
        }
        "/api/studio/scenes/{file}/revert" => Some(json!({"id": "0000000000000-00", "base": "x"})),
        _ => None,
    };
    (path, body)
}

/// Whether the guard refused (as opposed to the handler answering).
async fn refused(app: axum::Router, req: Request<Body>) -> (bool, StatusCode, String) {
    let r = app.oneshot(req).await.unwrap();
    let status = r.status();
    if r.headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|c| c == "text/event-stream")
    {
        return (false, status, String::new());
    }
    let body = http_body_util::BodyExt::collect(r.into_body())
        .await
        .unwrap()
        .to_bytes();
    let text = String::from_utf8_lossy(&body).to_string();
    let by_rule = (status == StatusCode::FORBIDDEN && text.contains("may not"))
        || (status == StatusCode::UNAUTHORIZED && text.contains("log in first"));
    (by_rule, status, text)
}

#[tokio::test]
async fn every_route_has_a_rule_and_every_role_gets_exactly_its_rights() {
    let broker = roomctl::broker::Mosquitto::start().await.unwrap();
    let port = broker.port();
    let site = site(&[port], &[("intro.yaml", INTRO)], "");
    site.web_options("open_stop: false");
    let people = [
        ("vera", Role::Viewer),
        ("otto", Role::Operator),
        ("tess", Role::Technician),
        ("ada", Role::Admin),
    ];
    for (name, role) in people {
        site.add_user(name, role);
    }
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Process::Daemon);

    // The server's table is the hand-written one, route for route.
    let table: Vec<(String, &str, String)> = roomctl::web::rules()
        .all()
        .into_iter()
        .map(|(m, p, n)| (m.to_string(), p, need_name(n)))
        .collect();
    for (m, p, n) in &table {
        assert!(
            EXPECTED
                .iter()
                .any(|(em, ep, en)| em == m && ep == p && en == n),
            "route {m} {p} ({n}) is not in this test's table: add it with its rule"
        );
    }
    assert_eq!(
        table.len(),
        EXPECTED.len(),
        "a route of this test's table is gone"
    );
    // No GET changes anything: none needs more than reading, but the
    // admin's user list and the technician's studio (the scene files as
    // written, their history), media library (the files themselves) and
    // the daemon's log.
    for (m, p, n) in &table {
        if m == "GET"
            && *p != "/api/users"
            && !p.starts_with("/api/studio")
            && !p.starts_with("/api/media")
            && !p.starts_with("/api/logs")
        {
            assert!(n == "public" || n == "viewer", "GET {p} needs {n}");
        }
    }

    let mut callers: Vec<(String, Option<String>, Role)> =
        vec![("anonymous".into(), None, Role::Viewer)];
    for (name, role) in people {
        callers.push((name.into(), Some(login(&room, name).await), role));
    }
    let mut n = 0;
    for (method, pattern, need) in roomctl::web::rules().all() {
        for (who, cookie, role) in &callers {
            if pattern == "/api/logout" && cookie.is_some() {
                continue; // would end the session the next routes use
            }
            n += 1;
            let (path, body) = example(pattern, n);
            let may = match need {
                Need::Public => true,
                Need::Panic => *role >= Role::Operator,
                Need::Role(r) => *role >= r,
            };
            let req = request(&method, &path, cookie.as_deref(), body);
            let (by_rule, status, text) = refused(app(state(&room)), req).await;
            assert_eq!(
                by_rule, !may,
                "{who} ({role}) on {method} {path}: {status} {text}"
            );
            if !may {
                let want = if cookie.is_some() {
                    StatusCode::FORBIDDEN
                } else {
                    StatusCode::UNAUTHORIZED
                };
                assert_eq!(status, want, "{who} on {method} {path}: {text}");
            }
        }
    }
    room.shutdown(Process::Daemon).await;
}

#[tokio::test]
async fn logins_lock_out_cross_site_writes_are_refused_and_logout_ends_the_session() {
    let port = roomctl::broker::free_port().unwrap();
    let site = site(&[port], &[("intro.yaml", INTRO)], "");
    site.add_user("otto", Role::Operator);
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Process::Daemon);
    let a = || app(state(&room));

    // Wrong passwords: 401 five times, then 429 with the wait, even with
    // the right password.
    let guesser = "10.0.0.66:50000";
    for _ in 0..5 {
        let body = json!({"user": "otto", "password": "not it at all"});
        let req = from(
            request(&Method::POST, "/api/login", None, Some(body)),
            guesser,
        );
        let (s, _, b) = call(a(), req).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(parse(&b)["error"], "wrong user name or password");
    }
    let body = json!({"user": "otto", "password": password_of("otto")});
    let req = from(
        request(&Method::POST, "/api/login", None, Some(body)),
        "10.0.0.7:50000",
    );
    let (s, h, b) = call(a(), req).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h[header::RETRY_AFTER], "30");
    assert_eq!(
        parse(&b)["error"],
        "too many failed logins for otto: try again in 30 s"
    );
    let body = json!({"user": "tess", "password": "whatever"});
    let req = from(
        request(&Method::POST, "/api/login", None, Some(body)),
        guesser,
    );
    let (_, _, b) = call(a(), req).await;
    assert_eq!(
        parse(&b)["error"],
        "too many failed logins from 10.0.0.66: try again in 30 s"
    );
    // Bad input: clear answers, no hashing of a megabyte.
    for (body, want) in [
        (json!({"user": "", "password": "x"}), "enter a user name"),
        (
            json!({"user": "x", "password": "y".repeat(1 << 20)}),
            "a password is at most 1024 bytes",
        ),
    ] {
        let (s, _, b) = call(a(), request(&Method::POST, "/api/login", None, Some(body))).await;
        assert_eq!(
            (s, parse(&b)["error"].as_str().unwrap()),
            (StatusCode::BAD_REQUEST, want)
        );
    }

    // Another user from another address is not locked out.
    site.add_user("tess", Role::Technician);
    let tess = login(&room, "tess").await;
    let start = |cookie: &str, origin: Option<&str>| {
        let mut r = request(&Method::POST, "/api/scenes/intro/start", Some(cookie), None);
        match origin {
            Some(o) => {
                r.headers_mut().insert(header::ORIGIN, o.parse().unwrap());
            }
            None => {
                r.headers_mut().remove(header::ORIGIN);
            }
        }
        r
    };
    for origin in [Some("http://evil.example"), Some("null"), None] {
        let (s, _, b) = call(a(), start(&tess, origin)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{origin:?}");
        assert!(
            parse(&b)["error"]
                .as_str()
                .unwrap()
                .contains("another site"),
            "{origin:?}"
        );
    }
    assert!(!room.scenes.is_running());
    let (s, _, _) = call(a(), start(&tess, Some("http://pi.local:8080"))).await;
    assert_eq!(s, StatusCode::OK);

    // Logging out ends the session: the cookie, stolen or kept, is dead.
    let (s, h, _) = call(
        a(),
        request(&Method::POST, "/api/logout", Some(&tess), None),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        h[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let (s, _, b) = call(
        a(),
        request(&Method::POST, "/api/scenes/stop", Some(&tess), None),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "the panic stop stays open");
    let _ = b;
    let (s, _, b) = call(
        a(),
        request(&Method::POST, "/api/reload", Some(&tess), None),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(parse(&b)["error"], "your session has ended: log in again");

    // A password changed elsewhere (`roomctl user passwd`) ends sessions too.
    let otto_site = site.dir.path().join("users.yaml");
    let tess = login(&room, "tess").await;
    roomctl::accounts::change_file(
        &otto_site,
        &roomctl::accounts::AccountChange::SetPassword {
            name: "tess".into(),
            password: roomctl::config::Secret::new("a brand new one"),
        },
    )
    .unwrap();
    let (s, _, _) = call(
        a(),
        request(&Method::POST, "/api/reload", Some(&tess), None),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    room.shutdown(Process::Daemon).await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn sessions_end_after_the_idle_time_in_paused_time() {
    let port = roomctl::broker::free_port().unwrap();
    let site = site(&[port], &[("intro.yaml", INTRO)], "");
    site.web_options("session_idle: 10m, session_max: 1h");
    site.add_user("tess", Role::Technician);
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Process::Daemon);
    let tess = login(&room, "tess").await;
    let me = |c: &str| request(&Method::GET, "/api/me", Some(c), None);
    let (_, _, b) = call(app(state(&room)), me(&tess)).await;
    assert_eq!(parse(&b)["name"], "tess");
    tokio::time::advance(Duration::from_secs(9 * 60)).await;
    let (_, _, b) = call(app(state(&room)), me(&tess)).await;
    assert_eq!(parse(&b)["name"], "tess", "used 9 minutes later");
    tokio::time::advance(Duration::from_secs(10 * 60 + 1)).await;
    let (_, _, b) = call(app(state(&room)), me(&tess)).await;
    assert_eq!(parse(&b)["kind"], "anonymous");
    assert_eq!(parse(&b)["refused"], "your session has ended: log in again");

    // Kept busy, a session still ends an hour after the login.
    let tess = login(&room, "tess").await;
    for _ in 0..6 {
        tokio::time::advance(Duration::from_secs(9 * 60)).await;
        let (_, _, b) = call(app(state(&room)), me(&tess)).await;
        assert_eq!(parse(&b)["name"], "tess");
    }
    tokio::time::advance(Duration::from_secs(7 * 60)).await;
    let (_, _, b) = call(app(state(&room)), me(&tess)).await;
    assert_eq!(parse(&b)["kind"], "anonymous", "61 minutes after login");
    room.shutdown(Process::Daemon).await;
}

#[tokio::test]
async fn bearer_tokens_are_read_as_the_rfcs_say_and_web_token_is_an_operator() {
    let port = roomctl::broker::free_port().unwrap();
    let site = site(&[port], &[("intro.yaml", INTRO)], "");
    site.set_web_token("legacy");
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Process::Daemon);
    let with = |auth: &str, path: &str| {
        Request::post(path)
            .header(header::AUTHORIZATION, auth)
            .body(Body::empty())
            .unwrap()
    };
    for ok in ["Bearer legacy", "bearer legacy", "BEARER  legacy"] {
        let (s, _, b) = call(app(state(&room)), with(ok, "/api/scenes/stop")).await;
        assert_eq!(s, StatusCode::OK, "{ok}: {}", String::from_utf8_lossy(&b));
    }
    for (bad, want) in [
        ("Bearer legacz", "wrong token"),
        ("Bearer legac", "wrong token"),
        (
            "Basic bGVnYWN5",
            "the Authorization header is not `Bearer <token>`",
        ),
        (
            "Bearer leg acy",
            "the Authorization header is not `Bearer <token>`",
        ),
    ] {
        let (s, h, b) = call(app(state(&room)), with(bad, "/api/scenes/intro/start")).await;
        assert_eq!(
            (s, parse(&b)["error"].as_str().unwrap()),
            (StatusCode::UNAUTHORIZED, want),
            "{bad}"
        );
        assert_eq!(h[header::WWW_AUTHENTICATE], "Bearer");
    }
    // An operator's token: shows yes, manual control no.
    let (s, _, _) = call(
        app(state(&room)),
        with("Bearer legacy", "/api/scenes/intro/start"),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, b) = call(app(state(&room)), with("Bearer legacy", "/api/reload")).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(
        parse(&b)["error"],
        "token web.token (operator) may not use POST /api/reload: that needs the technician role"
    );
    room.shutdown(Process::Daemon).await;
}
