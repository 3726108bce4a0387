//! The show log's unit tests: records on disk, rotation, CSV, events
//! into records.

use super::*;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

fn rec(i: usize) -> Record {
    let mut r = Record::new("note", format!("record {i}, with \"quotes\""));
    r.t = 1000.0 + i as f64;
    r
}

#[test]
fn records_survive_a_restart_and_a_torn_last_record_is_skipped() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("show.log");
    let log = ShowLog::new(path.clone(), DEFAULT_MAX_BYTES);
    for i in 0..3 {
        log.append(&rec(i));
    }
    // Power loss mid-write: half a record, then zeros.
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(b"1234abcd {\"t\":1003.0,\"kind\":\"no")
        .unwrap();
    f.write_all(&[0u8; 64]).unwrap();
    drop(f);
    // A record whose checksum does not match is skipped too.
    let again = ShowLog::new(path.clone(), DEFAULT_MAX_BYTES);
    assert_eq!(again.read_all(), (0..3).map(rec).collect::<Vec<_>>());
    // Appending after the torn part still works and is read back.
    again.append(&rec(4));
    let all = again.read_all();
    assert_eq!(all.len(), 4);
    assert_eq!(all[3], rec(4));
    assert_eq!(again.query(1001.0, 10).len(), 2);
    assert_eq!(again.query(0.0, 2), vec![rec(2), rec(4)]);
}

#[test]
fn the_log_stays_under_its_cap_and_keeps_the_newest() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("show.log");
    let log = ShowLog::new(path.clone(), 8192);
    for i in 0..2000 {
        log.append(&rec(i));
    }
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let total = size(&path) + size(&d.path().join("show.log.1"));
    assert!(total <= 8192, "{total} bytes");
    let all = log.read_all();
    assert_eq!(all.last().unwrap(), &rec(1999));
    assert!(all.windows(2).all(|w| w[0].t < w[1].t), "in order");
    assert!(all.len() > 40);
}

#[test]
fn a_junk_log_over_the_cap_is_cut_to_its_newest_part_at_rotation() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("show.log");
    // 64 KiB of junk lines ending in valid records, under a 16 KiB cap.
    let mut junk = "x".repeat(99).repeat(640);
    junk = junk
        .as_bytes()
        .chunks(99)
        .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
        .collect();
    std::fs::write(&path, junk).unwrap();
    let log = ShowLog::new(path.clone(), 16 * 1024);
    log.append(&rec(1));
    let old = d.path().join("show.log.1");
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    assert!(size(&old) <= 8 * 1024, "rotated {} bytes", size(&old));
    assert!(size(&old) + size(&path) <= 16 * 1024);
    assert_eq!(log.read_all(), vec![rec(1)]);
    assert!(log.failing().is_none());
}

#[test]
fn csv_quotes_what_needs_quoting() {
    let tz = jiff::tz::TimeZone::get("Europe/Vienna").unwrap();
    let csv = to_csv(&[rec(1)], &tz);
    assert_eq!(
        csv,
        "time_local,time_utc,unix,kind,scene,device,origin,who,text\n1970-01-01 01:16:41+01:00,1970-01-01 00:16:41,1001.000,note,,,,,\"record 1, with \"\"quotes\"\"\"\n"
    );
}

#[tokio::test]
async fn events_become_records_rate_limited_per_kind() {
    use crate::events::{DeviceView, EventBus};
    let d = tempfile::tempdir().unwrap();
    let log = ShowLog::new(d.path().join("show.log"), DEFAULT_MAX_BYTES);
    let bus = EventBus::new(4096);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(log.clone().run(bus.subscribe(), cancel.clone()));
    bus.publish(Event::Scene(SceneEvent::Started {
        scene: "intro".into(),
        origin: crate::origin::Origin::Schedule { what: "show" },
    }));
    // A flood of device changes: at most PER_MINUTE are written.
    for i in 0..500 {
        bus.publish(Event::Device(DeviceView {
            id: format!("x{i}"),
            presence: Presence::Online,
            status: "online".into(),
            last_seen: 0.0,
            seconds_since_seen: 0.0,
            messages: 1,
            known: false,
            channels: vec![],
            broker: None,
            broker_note: None,
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    cancel.cancel();
    task.await.unwrap();
    let all = log.read_all();
    assert_eq!(all[0].kind, "scene_start");
    assert_eq!(all[0].origin.as_deref(), Some("schedule (show)"));
    assert_eq!(all[0].text, "Scene intro started by schedule (show)");
    let devices = all.iter().filter(|r| r.kind == "device").count();
    assert_eq!(devices, PER_MINUTE as usize);
}

#[tokio::test]
async fn a_scenes_commands_are_counted_before_its_end() {
    use crate::events::{EndReason, EventBus, FeedbackRecord};
    let d = tempfile::tempdir().unwrap();
    let log = ShowLog::new(d.path().join("show.log"), DEFAULT_MAX_BYTES);
    let bus = EventBus::new(4096);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(log.clone().run(bus.subscribe(), cancel.clone()));
    let fb = |result, device: &str| {
        Event::Feedback(FeedbackRecord {
            id: 1,
            command_topic: "room1/light".into(),
            message: "ON".into(),
            feedback_topic: "room1/status".into(),
            result,
            latency: (result == Outcome::Ok).then_some(0.012),
            timeout: 1.0,
            reply: None,
            scene: Some("intro".into()),
            device: Some(device.into()),
            at: 0.0,
        })
    };
    for _ in 0..3 {
        bus.publish(fb(Outcome::Ok, "esp32_01"));
    }
    bus.publish(fb(Outcome::Timeout, "esp32_01"));
    bus.publish(Event::Scene(SceneEvent::Ended {
        scene: "intro".into(),
        reason: EndReason::Completed,
        elapsed: 3.0,
    }));
    // After the scene: counted at shutdown.
    bus.publish(fb(Outcome::Error, "esp32_02"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    cancel.cancel();
    task.await.unwrap();
    let kinds: Vec<_> = log
        .read_all()
        .into_iter()
        .map(|r| (r.kind, r.device))
        .collect();
    let dev = |s: &str| Some(s.to_string());
    assert_eq!(
        kinds,
        [
            ("timeout".into(), dev("esp32_01")),
            ("commands".into(), dev("esp32_01")),
            ("scene_end".into(), None),
            ("error".into(), dev("esp32_02")),
            ("commands".into(), dev("esp32_02")),
        ]
    );
    let c = log.read_all()[1].commands.clone().unwrap();
    assert_eq!((c.ok.n, c.timeouts, c.errors), (3, 1, 0));
    assert_eq!(c.ok.max_ms, 12.0);
}
