use super::*;
use crate::showlog::Latency;

fn tz() -> TimeZone {
    TimeZone::get("Europe/Berlin").unwrap()
}

/// Unix time of `day` at `h:m` in Berlin.
fn at(day: &str, h: i8, m: i8) -> f64 {
    let d: Date = day.parse().unwrap();
    let z = d.at(h, m, 0, 0).to_zoned(tz()).unwrap();
    z.timestamp().as_millisecond() as f64 / 1000.0
}

fn rec(t: f64, kind: &str, text: &str, scene: Option<&str>, device: Option<&str>) -> Record {
    let mut r = Record::new(kind, text.into());
    r.t = t;
    r.scene = scene.map(Into::into);
    r.device = device.map(Into::into);
    r
}

fn commands(t: f64, device: &str, latencies_ms: &[f64], timeouts: u64) -> Record {
    let mut ok = Latency::default();
    for l in latencies_ms {
        ok.add(*l);
    }
    let mut r = rec(t, "commands", "", Some("intro"), Some(device));
    r.commands = Some(Commands {
        ok,
        timeouts,
        errors: 0,
    });
    r
}

fn day(d: &str) -> Date {
    d.parse().unwrap()
}

#[test]
fn shows_commands_and_connection_per_museum_day() {
    let recs = vec![
        rec(
            at("2026-11-30", 10, 0),
            "scene_start",
            "",
            Some("intro"),
            None,
        ),
        rec(
            at("2026-11-30", 10, 5),
            "scene_end",
            "Scene intro ended after 300.0 s: completed",
            Some("intro"),
            None,
        ),
        commands(at("2026-11-30", 10, 5), "esp32_01", &[10.0, 12.0, 14.0], 0),
        // 23:30 in Berlin on the 30th is 22:30 UTC: still the 30th.
        rec(
            at("2026-11-30", 23, 30),
            "scene_start",
            "",
            Some("intro"),
            None,
        ),
        rec(
            at("2026-11-30", 23, 31),
            "scene_end",
            "Scene intro ended after 60.0 s: stopped",
            Some("intro"),
            None,
        ),
        // 00:30 on the 1st.
        rec(
            at("2026-12-01", 0, 30),
            "scene_start",
            "",
            Some("outro"),
            None,
        ),
        rec(
            at("2026-12-01", 0, 31),
            "scene_end",
            "Scene outro ended after 1.0 s: error: a loop",
            Some("outro"),
            None,
        ),
        commands(
            at("2026-12-01", 0, 31),
            "esp32_01",
            &[200.0, 220.0, 240.0, 260.0],
            2,
        ),
        // A timeout record beside a commands record is not counted twice.
        rec(
            at("2026-12-01", 0, 31),
            "timeout",
            "",
            Some("intro"),
            Some("esp32_01"),
        ),
        rec(
            at("2026-12-01", 9, 0),
            "connection",
            "MQTT connection lost (reconnecting): reset",
            None,
            None,
        ),
        rec(
            at("2026-12-01", 9, 0),
            "connection",
            "Failover to broker b:1883 (2/2)",
            None,
            None,
        ),
        // Out of the range.
        rec(
            at("2026-12-02", 0, 1),
            "scene_start",
            "",
            Some("intro"),
            None,
        ),
    ];
    let s = compute(
        &recs,
        &tz(),
        day("2026-11-30"),
        day("2026-12-01"),
        at("2026-12-02", 12, 0),
    )
    .unwrap();
    assert_eq!(s.zone, "Europe/Berlin");
    assert_eq!(s.days, ["2026-11-30", "2026-12-01"]);
    let intro = &s.scenes[0];
    assert_eq!(intro.scene, "intro");
    assert_eq!(
        intro.days[0],
        SceneDay {
            started: 2,
            completed: 1,
            stopped: 1,
            failed: 0
        }
    );
    assert_eq!(intro.days[1], SceneDay::default());
    assert_eq!(
        s.scenes[1].days[1],
        SceneDay {
            started: 1,
            completed: 0,
            stopped: 0,
            failed: 1
        }
    );
    let esp = &s.devices[0];
    assert_eq!(esp.device, "esp32_01");
    assert_eq!(
        (
            esp.days[0].commands,
            esp.days[0].confirmed,
            esp.days[0].timeouts
        ),
        (3, 3, 0)
    );
    assert_eq!((esp.days[1].commands, esp.days[1].timeouts), (6, 2));
    let (m0, m1) = (
        esp.days[0].median_ms.unwrap(),
        esp.days[1].median_ms.unwrap(),
    );
    assert!((10.0..=15.0).contains(&m0), "{m0}");
    assert!((200.0..=260.0).contains(&m1), "{m1}");
    assert!(esp.days[1].p95_ms.unwrap() >= m1);
    assert_eq!((esp.total.commands, esp.total.timeouts), (9, 2));
    assert_eq!(
        s.connection[1],
        ConnectionDay {
            failovers: 1,
            losses: 1
        }
    );
    assert_eq!(s.connection[0], ConnectionDay::default());

    let csv = to_csv(&s);
    assert!(csv.starts_with("day,subject,name,measure,value\n"), "{csv}");
    assert!(
        csv.contains("2026-11-30,scene,intro,completed,1\n"),
        "{csv}"
    );
    assert!(
        csv.contains("2026-12-01,device,esp32_01,timeouts,2\n"),
        "{csv}"
    );
    assert!(
        !csv.contains("2026-11-30,device,esp32_01,p95_ms,\n"),
        "{csv}"
    );
    assert!(
        csv.contains("2026-12-01,connection,,failovers,1\n"),
        "{csv}"
    );
}

#[test]
fn offline_time_is_split_across_days_and_runs_until_now() {
    let recs = vec![
        rec(
            at("2026-11-30", 23, 0),
            "device",
            "Device esp32_01 offline",
            None,
            Some("esp32_01"),
        ),
        rec(
            at("2026-12-01", 1, 0),
            "device",
            "Device esp32_01 online",
            None,
            Some("esp32_01"),
        ),
        rec(
            at("2026-12-01", 11, 0),
            "device",
            "Device esp32_02 stale",
            None,
            Some("esp32_02"),
        ),
        // Offline again: not counted twice.
        rec(
            at("2026-12-01", 11, 30),
            "device",
            "Device esp32_02 offline",
            None,
            Some("esp32_02"),
        ),
    ];
    let now = at("2026-12-01", 12, 0);
    let s = compute(&recs, &tz(), day("2026-11-30"), day("2026-12-01"), now).unwrap();
    let one = &s.devices[0];
    assert_eq!(
        (one.days[0].offline_s, one.days[1].offline_s),
        (3600.0, 3600.0)
    );
    assert_eq!(s.devices[1].days[1].offline_s, 3600.0);
    assert_eq!(s.devices[1].total.commands, 0);
}

#[test]
fn old_logs_count_timeout_records_and_bad_ranges_are_refused() {
    let recs = vec![
        rec(
            at("2026-12-01", 9, 0),
            "timeout",
            "",
            None,
            Some("attic/ghost"),
        ),
        rec(
            at("2026-12-01", 9, 1),
            "error",
            "",
            None,
            Some("attic/ghost"),
        ),
    ];
    let s = compute(&recs, &tz(), day("2026-12-01"), day("2026-12-01"), 0.0).unwrap();
    let d = &s.devices[0].days[0];
    assert_eq!(
        (d.commands, d.timeouts, d.errors, d.median_ms),
        (2, 1, 1, None)
    );
    assert_eq!(
        compute(&recs, &tz(), day("2026-12-02"), day("2026-12-01"), 0.0)
            .unwrap_err()
            .to_string(),
        "the range starts (2026-12-02) after it ends (2026-12-01)"
    );
    assert!(matches!(
        compute(&recs, &tz(), day("2020-01-01"), day("2026-12-01"), 0.0),
        Err(StatsError::TooLong { .. })
    ));
}

#[test]
fn a_day_of_a_clock_change_has_its_real_length() {
    // Berlin leaves summer time on 2026-10-25: that day has 25 hours.
    let s = compute(&[], &tz(), day("2026-10-25"), day("2026-10-25"), 0.0).unwrap();
    assert_eq!(s.days, ["2026-10-25"]);
    let recs = vec![rec(
        at("2026-10-25", 0, 0),
        "device",
        "Device x offline",
        None,
        Some("x"),
    )];
    let s = compute(
        &recs,
        &tz(),
        day("2026-10-25"),
        day("2026-10-25"),
        f64::INFINITY,
    )
    .unwrap();
    assert_eq!(s.devices[0].days[0].offline_s, 25.0 * 3600.0);
}
