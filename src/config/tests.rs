use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(text: &str) -> Result<Config, Diagnostics> {
    Config::parse(text, Path::new("/etc/roomctl/config.yaml"), &no_env)
}

#[test]
fn tls_settings_are_read_and_checked_at_load() {
    let d = tempfile::tempdir().unwrap();
    let cfg = |brokers: &str| {
        Config::parse(
            &format!("room: r\nmqtt:\n  brokers:\n{brokers}"),
            &d.path().join("c.yaml"),
            &no_env,
        )
    };
    // A missing CA file is an error at its position, in words.
    let e = cfg("    - { broker: b, tls: { ca_file: ca.pem } }\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("c.yaml:4:36: cannot read tls.ca_file"), "{e}");
    // A file without a certificate.
    std::fs::write(d.path().join("ca.pem"), "not a certificate").unwrap();
    let e = cfg("    - { broker: b, tls: { ca_file: ca.pem } }\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("holds no CERTIFICATE"), "{e}");
    // Half a client identity.
    let e = cfg("    - { broker: b, tls: { client_cert: c.pem } }\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("go together") || e.contains("cannot read"),
        "{e}"
    );
    // An unknown key under tls.
    let e = cfg("    - { broker: b, tls: { cafile: ca.pem } }\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("c.yaml:4"), "{e}");
    // `mqtt://` is plain; `tls: false` is plain.
    let c = cfg("    - { broker: \"mqtt://h\" }\n    - { broker: h2, tls: false }\n").unwrap();
    assert_eq!(c.mqtt.brokers[0].host, "h");
    assert_eq!(c.mqtt.brokers[0].port, 1883);
    assert!(c.mqtt.brokers.iter().all(|b| b.tls.is_none()));
    let e = cfg("    - { broker: \"mqtts://h\", tls: false }\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("`tls: false` with a `mqtts://` broker"), "{e}");
}

#[test]
fn a_bad_schedule_is_refused_with_positions() {
    let e = parse(concat!(
        "room: r\nmqtt: {brokers: [{broker: h}]}\n",
        "schedule:\n",
        "  timezone: Europe/Bratislav\n",
        "  hours: { default: \"10:00-18:00\", mon: closed, sat: \"18:00-10:00\" }\n",
        "  closed: [2026-02-30]\n",
        "  shows:\n",
        "    - { every: 15m, from: \"10:00\", scene: a }\n",
        "    - { at: \"25:00\", scene: b }\n",
        "    - { every: 90s, from: \"10:00\", until: \"11:00\", scene: c }\n",
        "    - { at: \"11:00\", scene: d, days: [fun] }\n",
    ))
    .unwrap_err()
    .to_string();
    for want in [
        "config.yaml:4:13: schedule.timezone: unknown time zone `Europe/Bratislav`",
        "config.yaml:5:54: schedule.hours.sat: `18:00-10:00`: closing time must be after opening time",
        "config.yaml:6:12: schedule.closed: `2026-02-30` is not a date",
        "config.yaml:8:7: schedule.shows: `every` needs `from` and `until`",
        "config.yaml:9:13: schedule.shows.at: `25:00` is not a time of day",
        "config.yaml:10:16: schedule.shows.every: 90s must be whole minutes",
        "config.yaml:11:39: schedule.shows.days: `fun` is not a weekday",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
    let c = parse(concat!(
            "room: r\nmqtt: {brokers: [{broker: h}]}\nstate_dir: st\n",
            "schedule:\n  timezone: Europe/Bratislava\n  hours: { default: \"10:00-18:00\", mon: closed }\n",
            "  at_closing: outro\n  shows: [{ every: 15m, from: \"10:00\", until: \"17:30\", scene: loop }]\n",
        ))
        .unwrap();
    let s = c.schedule.unwrap();
    assert!(s.hours[0].is_none() && s.hours[6].is_some());
    assert_eq!(s.at_closing.unwrap().scene, "outro");
    assert!(c.state_dir.ends_with("st"));
}

#[test]
fn minimal_config_gets_seed_defaults() {
    let c = parse("room: room1\nmqtt:\n  brokers:\n    - { broker: 127.0.0.1 }\n").unwrap();
    assert_eq!(c.mqtt.client_id, "rpi_room_room1");
    assert_eq!(c.mqtt.brokers[0].port, 1883);
    assert_eq!(c.mqtt.max_retries, 10);
    assert_eq!(c.mqtt.initial_retry_delay, Duration::from_secs(1));
    assert_eq!(c.mqtt.max_retry_delay, Duration::from_secs(300));
    assert_eq!(c.mqtt.backoff_multiplier, 2.0);
    assert_eq!(c.mqtt.jitter_factor, 0.1);
    assert_eq!(c.mqtt.connection_timeout, Duration::from_secs(30));
    assert_eq!(c.mqtt.health_check_interval, Duration::from_secs(60));
    assert_eq!(c.mqtt.message_queue_size, 1000);
    assert_eq!(c.mqtt.message_retry_limit, 3);
    assert_eq!(c.mqtt.ack_timeout, Duration::from_millis(500));
    assert_eq!(c.mqtt.message_max_age, Duration::from_secs(5));
    assert_eq!(c.feedback.timeout, Duration::from_secs(1));
    assert_eq!(c.feedback.topic.template(), "{prefix}/status");
    assert_eq!(c.scenes.dir, PathBuf::from("/etc/roomctl/scenes"));
    assert_eq!(c.web.listen.port(), 8080);
    assert!(c.web.token.is_none());
}

#[test]
fn durations_accept_numbers_and_units() {
    assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
    assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
    assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
    assert_eq!(parse_duration(" 3 s ").unwrap(), Duration::from_secs(3));
    assert!(parse_duration("fast").is_err());
    assert!(parse_duration("5x").is_err());
    assert!(parse_duration("-1").is_err());
    let c = parse(
            "room: r\nmqtt:\n  brokers: [{broker: h}]\n  ack_timeout: 250ms\n  initial_retry_delay: 0.5\n",
        )
        .unwrap();
    assert_eq!(c.mqtt.ack_timeout, Duration::from_millis(250));
    assert_eq!(c.mqtt.initial_retry_delay, Duration::from_millis(500));
}

#[test]
fn errors_carry_file_line_col() {
    let err = parse("room: r\nmqtt:\n  brokers: [{broker: h}]\n  ack_timeout: soon\n").unwrap_err();
    let line = err.to_string();
    assert!(
        line.starts_with("/etc/roomctl/config.yaml:4:16: invalid duration `soon`"),
        "{line}"
    );

    let err = parse("room: r\nmqt: {}\n").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/etc/roomctl/config.yaml:2:1: unknown field `mqt`")
    );
}

#[test]
fn semantic_errors_are_all_reported_with_positions() {
    let err = parse(
            "room: r\nmqtt:\n  brokers: [{broker: h}]\n  jitter_factor: 3\n  keep_alive: 500ms\nfeedback:\n  local_channels: [audio, light]\n",
        )
        .unwrap_err();
    let text = err.to_string();
    assert_eq!(err.len(), 3, "{text}");
    assert!(text.contains(":4:18: mqtt.jitter_factor"), "{text}");
    assert!(text.contains(":5:15: mqtt.keep_alive"), "{text}");
    assert!(
        text.contains(":7:27: feedback.local_channels: `light`"),
        "{text}"
    );
}

#[test]
fn env_vars_are_expanded_and_secrets_hidden() {
    let env = |k: &str| (k == "PW").then(|| "hunter2".to_string());
    let c = Config::parse(
            "room: r\nmqtt:\n  brokers:\n    - { broker: h, username: PFC, password: \"${PW}\" }\nweb: { token: \"${TOKEN:-}\" }\n",
            Path::new("c.yaml"),
            &env,
        )
        .unwrap();
    assert_eq!(
        c.mqtt.brokers[0].password.as_ref().unwrap().expose(),
        "hunter2"
    );
    assert!(c.web.token.is_none());
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("hunter2"), "{dbg}");

    let err = Config::parse(
        "room: r\nmqtt:\n  brokers:\n    - { broker: h, password: \"${MISSING}\" }\n",
        Path::new("c.yaml"),
        &env,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("c.yaml:4:30: environment variable `MISSING` is not set"),
        "{err}"
    );
}

#[test]
fn expand_env_forms() {
    let env = |k: &str| (k == "A").then(|| "x".to_string());
    assert_eq!(expand_env("a${A}b", &env).unwrap(), "axb");
    assert_eq!(expand_env("${B:-def}", &env).unwrap(), "def");
    assert_eq!(expand_env("$${A}", &env).unwrap(), "${A}");
    assert_eq!(expand_env("cost $5", &env).unwrap(), "cost $5");
    assert!(expand_env("${A", &env).is_err());
    assert!(expand_env("${B}", &env).is_err());
}

#[test]
fn brokers_are_sorted_by_priority_and_file_is_merged() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
            dir.path().join("room1-broker.json"),
            r#"{"brokers": [{"broker": "10.0.0.9", "port": 1883, "username": "PFC", "password": "wago", "priority": 1}],
               "game_config": {"game_type": "museum"}}"#,
        )
        .unwrap();
    let cfg = dir.path().join("roomctl.yaml");
    let c = Config::parse(
            "room: room1\nmqtt:\n  brokers: [{broker: 10.0.0.10, priority: 2}]\n  brokers_file: room1-broker.json\n",
            &cfg,
            &no_env,
        )
        .unwrap();
    let hosts: Vec<_> = c.mqtt.brokers.iter().map(|b| b.host.as_str()).collect();
    assert_eq!(hosts, ["10.0.0.9", "10.0.0.10"]);
    assert_eq!(
        c.mqtt.brokers[0].password.as_ref().unwrap().expose(),
        "wago"
    );
}

#[test]
fn broken_brokers_file_points_at_that_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.json"), "{\"brokers\": [{\"port\": 1}]}").unwrap();
    let err = Config::parse(
        "room: r\nmqtt:\n  brokers_file: b.json\n",
        &dir.path().join("c.yaml"),
        &no_env,
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("b.json:1:"), "{text}");
    assert!(text.contains("broker"), "{text}");
}

/// The error text for a config with `extra` lines after one broker.
fn error_of(extra: &str) -> String {
    parse(&format!(
        "room: r\nmqtt:\n  brokers: [{{broker: h}}]\n{extra}"
    ))
    .unwrap_err()
    .to_string()
}

#[test]
fn values_that_break_the_daemon_are_errors_with_positions() {
    for (yaml, want) in [
        (
            "  ack_timeout: 1e19\n",
            ":4:16: mqtt.ack_timeout 1e19s is outside 50ms..60s",
        ),
        (
            "  ack_timeout: 10ms\n",
            ":4:16: mqtt.ack_timeout 10ms is outside 50ms..60s",
        ),
        (
            "  health_check_interval: 1e19\n",
            ":4:26: mqtt.health_check_interval 1e19s is outside 1s..24h",
        ),
        (
            "  health_check_interval: 1e-9\n",
            ":4:26: mqtt.health_check_interval 1e-9s is outside 1s..24h",
        ),
        (
            "  keep_alive: 0\n",
            ":4:15: mqtt.keep_alive 0s is outside 5s..10m",
        ),
        (
            "  keep_alive: 2s\n",
            ":4:15: mqtt.keep_alive 2s is outside 5s..10m",
        ),
        (
            "  connection_timeout: 1e19\n",
            ":4:23: mqtt.connection_timeout",
        ),
        (
            "  initial_retry_delay: 0\n",
            ":4:24: mqtt.initial_retry_delay 0s is outside 10ms..1h",
        ),
        ("  message_max_age: 1e19\n", ":4:20: mqtt.message_max_age"),
        (
            "  message_queue_size: 0\n",
            ":4:23: mqtt.message_queue_size 0 is outside 1..100000",
        ),
        (
            "  message_retry_limit: 1000\n",
            ":4:24: mqtt.message_retry_limit 1000 is outside 0..100",
        ),
        (
            "  client_id: \"\"\n",
            ":4:14: mqtt.client_id must be 1..256 characters",
        ),
        (
            "feedback: {timeout: 1e19}\n",
            ":4:21: feedback.timeout 1e19s is outside 10ms..10m",
        ),
        (
            "feedback: {topic: \"\"}\n",
            ":4:19: feedback topic ``: topic must not be empty",
        ),
        (
            "feedback: {topic: \"{prefix}/\\0\"}\n",
            ":4:19: feedback topic `{prefix}/\0`: topic must not contain a NUL",
        ),
        (
            "devices: {stale_after: 1e19}\n",
            ":4:24: devices.stale_after",
        ),
        ("media: {audio_fade: 1e19}\n", ":4:21: media.audio_fade"),
        (
            "triggers:\n  - {topic: a/#/b, scene: x}\n",
            ":5:13: trigger topic: filter `a/#/b`: '#' must be the whole last level",
        ),
    ] {
        let e = error_of(yaml);
        assert!(e.contains(want), "{yaml:?}: {e}");
    }
    let long = "c".repeat(MAX_CLIENT_ID + 1);
    let e = error_of(&format!("  client_id: {long}\n"));
    assert!(
        e.contains("mqtt.client_id must be 1..256 characters without NUL (it has 257)"),
        "{e}"
    );
    let c = parse("room: r\nmqtt:\n  brokers: [{broker: h}]\n  client_id: a-rather-long-client-id-of-40-characters\n").unwrap();
    assert!(
        c.warnings
            .to_string()
            .contains(":4:14: warning: mqtt.client_id is 40 characters long"),
        "{}",
        c.warnings
    );
}

#[test]
fn known_devices_as_list_or_map() {
    let c =
        parse("room: r\nmqtt: {brokers: [{broker: h}]}\ndevices: {known: [esp32_01, esp32_02]}\n")
            .unwrap();
    assert_eq!(
        c.devices.known.keys().collect::<Vec<_>>(),
        ["esp32_01", "esp32_02"]
    );
    let c = parse(
            "room: r\nmqtt: {brokers: [{broker: h}]}\ndevices:\n  known_only: true\n  known:\n    esp32_01: [r/light, r/steam]\n    esp32_02: []\n",
        )
        .unwrap();
    assert!(c.devices.known_only);
    assert_eq!(c.devices.known["esp32_01"], ["r/light", "r/steam"]);
    let e = parse(
        "room: r\nmqtt: {brokers: [{broker: h}]}\ndevices: {known: [a/b], known_only: true}\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains(":3:19: devices.known: `a/b` is not a device id"),
        "{e}"
    );
    let e = parse("room: r\nmqtt: {brokers: [{broker: h}]}\ndevices: {known_only: true}\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("every device would be ignored"), "{e}");
}

#[test]
fn json_config_is_accepted() {
    let c = parse(r#"{"room": "room2", "mqtt": {"brokers": [{"broker": "h", "port": 1884}]}, "feedback": {"timeout": "2s", "topic": "{topic}/feedback"}}"#).unwrap();
    assert_eq!(c.room, "room2");
    assert_eq!(c.feedback.timeout, Duration::from_secs(2));
    assert_eq!(
        c.feedback.topic.for_command("room2/light", "room2"),
        "room2/light/feedback"
    );
}

#[test]
fn boards_safe_state_estop_and_start_intervals() {
    let c = parse(
        "room: r\nmqtt: {brokers: [{broker: h}]}\nscenes: {min_start_interval: 2s}\nestop: {topic: r/estop, payload: PRESSED, panic_latches: true}\ntriggers:\n  - {topic: r/button, scene: s, min_interval: 5s}\ndevices:\n  known:\n    esp32_01: [r/light]\n    esp32_08:\n      channels: [r/smoke]\n      safe: [{topic: r/smoke, message: 'OFF'}, {topic: r/fan, message: STOP}]\n",
    )
    .unwrap();
    assert_eq!(c.scenes.min_start_interval, Duration::from_secs(2));
    assert_eq!(c.triggers[0].min_interval, Duration::from_secs(5));
    assert_eq!(c.estop.topic.as_deref(), Some("r/estop"));
    assert!(c.estop.panic_latches);
    assert_eq!(c.devices.known["esp32_08"], ["r/smoke"]);
    assert_eq!(
        c.devices.safe["esp32_08"],
        [
            ("r/smoke".to_string(), "OFF".to_string()),
            ("r/fan".to_string(), "STOP".to_string())
        ]
    );
    assert!(!c.devices.safe.contains_key("esp32_01"));
    for (bad, want) in [
        (
            "scenes: {min_start_interval: -1}\n",
            "3:30: invalid duration -1",
        ),
        (
            "scenes: {min_start_interval: 1e9}\n",
            "scenes.min_start_interval",
        ),
        ("estop: {topic: 'r/#'}\n", "estop.topic"),
        (
            "devices: {known: {b1: {safe: [{topic: 'r/+', message: 'OFF'}]}}}\n",
            "devices.known.b1.safe",
        ),
        (
            "devices: {known: {b1: {safe: [{topic: r/x, message: ''}]}}}\n",
            "the message is empty",
        ),
        ("devices: {known: {b1: {chanels: [r/x]}}}\n", "chanels"),
    ] {
        let e = parse(&format!(
            "room: r\nmqtt: {{brokers: [{{broker: h}}]}}\n{bad}"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains(want), "{bad}: {e}");
    }
}

#[test]
fn mqtt_connect_is_one_at_a_time_unless_every_broker_is_asked() {
    let base = "room: r\nmqtt:\n  brokers: [{broker: a}, {broker: b}]\n";
    assert_eq!(parse(base).unwrap().mqtt.connect, Connect::OneAtATime);
    let c = parse(&format!("{base}  connect: every_broker\n")).unwrap();
    assert_eq!(c.mqtt.connect, Connect::EveryBroker);
    let e = parse(&format!("{base}  connect: both\n"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(
            "config.yaml:4:12: mqtt.connect must be one_at_a_time or every_broker, not `both`"
        ),
        "{e}"
    );
}
