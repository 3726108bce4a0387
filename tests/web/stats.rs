//! Statistics from the show log: a real scene against real Mosquitto and
//! simulated boards, counted in `commands` records, read back per day from
//! `/api/stats` and its CSV.

use super::*;

/// One show with confirmed and unanswered commands: today's figures per
/// scene and per device, with latencies in the simulated boards' range;
/// the CSV; ranges that cannot be answered are refused with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_a_shows_commands_and_latencies_per_device() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let scene = "name: s\nactions:\n  - { at: 0, topic: room1/light, message: 'ON' }\n  - { at: 0.1, topic: room1/light, message: 'OFF' }\n  - { at: 0.2, topic: room1/light, message: 'ON' }\n  - { at: 0.3, topic: attic/ghost, message: 'ON', timeout: 200ms }\nduration: 0.8\n";
    let site = site(&[b.port()], &[], "state_dir: state\n");
    // The boards answer room1/light only: the fleet is started from a
    // scene without the ghost's cue.
    let board_only = "name: s\nactions:\n  - { at: 0, topic: room1/light, message: 'ON' }\n";
    std::fs::write(site.dir.path().join("scenes/s.yaml"), board_only).unwrap();
    let (config, scenes) = site.load();
    let cancel = CancellationToken::new();
    let mut opts = fast_fleet();
    opts.devices = 1;
    let fleet = simulate::start(&config, &scenes, &opts, cancel.child_token());
    std::fs::write(site.dir.path().join("scenes/s.yaml"), scene).unwrap();
    let (config, scenes) = site.load();
    let daemon = Room::start(config, scenes, Role::Daemon);
    assert!(daemon.mqtt.wait_subscribed(Duration::from_secs(5)).await);
    fleet_ready(&fleet).await;
    eventually(Duration::from_secs(5), "boards announced", || {
        daemon.channels().iter().any(|c| c.device.is_some())
    })
    .await;
    let web = app(state(&daemon));
    let (st, _, _) = call(web.clone(), post("/api/scenes/s/start", None)).await;
    assert_eq!(st, StatusCode::OK);
    daemon.scenes.wait_idle().await;
    let log = daemon.show_log.clone().unwrap();
    eventually(
        Duration::from_secs(5),
        "the show's commands counted",
        || log.read_all().iter().any(|r| r.kind == "commands"),
    )
    .await;

    let (st, _, body) = call(web.clone(), get("/api/stats")).await;
    assert_eq!(st, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let s = json(&body);
    let days = s["days"].as_array().unwrap();
    assert_eq!(days.len(), 7, "the last 7 days by default");
    let today = days.len() - 1;
    let scene = &s["scenes"][0];
    assert_eq!(scene["scene"], "s");
    assert_eq!(scene["days"][today]["started"], 1);
    assert_eq!(scene["days"][today]["completed"], 1);
    let device = |name: &str| {
        s["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["device"] == name)
            .unwrap_or_else(|| panic!("no {name} in {}", s["devices"]))
            .clone()
    };
    let board = device("esp32_01");
    let d = &board["days"][today];
    assert_eq!(
        (d["commands"].as_u64(), d["confirmed"].as_u64()),
        (Some(3), Some(3))
    );
    // The boards answer after 10..40 ms; a bucket's width on either side.
    let median = d["median_ms"].as_f64().unwrap();
    assert!((8.0..=60.0).contains(&median), "median {median} ms");
    assert!(d["p95_ms"].as_f64().unwrap() >= median);
    let ghost = device("attic/ghost");
    assert_eq!(ghost["days"][today]["timeouts"], 1);
    assert!(ghost["days"][today]["median_ms"].is_null());
    assert_eq!(board["days"][0]["commands"], 0, "nothing a week ago");

    let day = days[today].as_str().unwrap();
    let (st, headers, body) = call(
        web.clone(),
        get(&format!("/api/stats.csv?from={day}&to={day}")),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let disposition = headers[header::CONTENT_DISPOSITION].to_str().unwrap();
    assert!(
        disposition.contains(&format!("roomctl-room1-stats-{day}-{day}.csv")),
        "{disposition}"
    );
    let csv = String::from_utf8(body).unwrap();
    assert!(csv.starts_with("day,subject,name,measure,value\n"), "{csv}");
    assert!(csv.contains(&format!("{day},scene,s,started,1\n")), "{csv}");
    assert!(
        csv.contains(&format!("{day},device,esp32_01,confirmed,3\n")),
        "{csv}"
    );
    assert!(
        csv.contains(&format!("{day},device,attic/ghost,timeouts,1\n")),
        "{csv}"
    );

    for (query, why) in [
        (
            "from=2026-13-01",
            "`from` is `2026-13-01`, not a day (YYYY-MM-DD",
        ),
        (
            "from=2026-12-02&to=2026-12-01",
            "the range starts (2026-12-02) after it ends (2026-12-01)",
        ),
        ("from=2000-01-01&to=2026-12-01", "at most 366 at once"),
        ("days=0", "`days` is 0; from 1 to 366 days at once"),
    ] {
        let (st, _, body) = call(web.clone(), get(&format!("/api/stats?{query}"))).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{query}");
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains(why), "{query}: {body}");
    }
    daemon.shutdown(Role::Daemon).await;
    cancel.cancel();
}
