use super::*;
use crate::diag::Pos;
use jiff::Timestamp;
use jiff::civil::Time;

fn t(s: &str) -> Time {
    parse_time(s).unwrap()
}

pub(crate) fn museum() -> Schedule {
    let open = Some(Hours {
        open: t("10:00"),
        close: t("18:00"),
    });
    Schedule {
        timezone: "Europe/Bratislava".into(),
        tz: parse_timezone("Europe/Bratislava").unwrap(),
        hours: [None, open, open, open, open, open, open],
        closed: [parse_date("2026-12-24").unwrap()].into(),
        at_opening: Some(Named {
            scene: "intro".into(),
            pos: Pos::default(),
        }),
        at_closing: Some(Named {
            scene: "outro".into(),
            pos: Pos::default(),
        }),
        shows: vec![
            Show {
                scene: "loop".into(),
                when: When::Every {
                    every: Duration::from_secs(15 * 60),
                    from: t("10:00"),
                    until: t("17:30"),
                },
                days: None,
                pos: Pos::default(),
            },
            Show {
                scene: "noon".into(),
                when: When::At(t("12:05")),
                days: Some([false, false, false, false, false, true, true]),
                pos: Pos::default(),
            },
        ],
    }
}

// --- the scheduler, on paused tokio time driving a fake wall clock ---

use crate::events::EventBus;
use crate::scene::load::{SceneContext, parse_scene};
use crate::scene::{SceneController, SceneSet};
use crate::testkit::RecordingSink;
use tokio_util::task::TaskTracker;

fn scene(name: &str, secs: u32) -> crate::scene::Scene {
    parse_scene(
            &format!(
                "name: {name}\nactions: [{{at: 0, topic: room1/light, message: {name}}}]\nduration: {secs}\n"
            ),
            std::path::Path::new("s.yaml"),
            &SceneContext {
                room: "room1".into(),
                local_channels: vec![],
            media: None,
            },
        )
        .unwrap()
        .0
}

fn controller() -> SceneController {
    SceneController::new(
        SceneSet::new(vec![
            scene("intro", 60),
            scene("loop", 600),
            scene("noon", 60),
            scene("outro", 10),
        ]),
        Arc::new(RecordingSink::default()),
        EventBus::new(256),
        TaskTracker::new(),
    )
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// The scheduler acting on a bare scene controller.
impl Shows for SceneController {
    fn running(&self) -> Option<String> {
        self.status().map(|s| s.name)
    }
    async fn stop(&self, _what: &'static str) {
        SceneController::stop(self, crate::scene::EndReason::Stopped).await;
    }
    fn start(&self, scene: &str, what: &'static str) -> Result<(), Refused> {
        self.start_from(scene, crate::origin::Origin::Schedule { what })
            .map_err(|e| match e {
                crate::scene::StartError::AlreadyRunning(r) => Refused::Busy(r),
                e => Refused::Failed(e.to_string()),
            })
    }
}

/// Runs the scheduler from `from` for `hours` (paused time).
async fn run_for(h: &ScheduleHandle, c: &SceneController, secs: u64) {
    let cancel = CancellationToken::new();
    let task = tokio::spawn(h.clone().run(c.clone(), cancel.clone()));
    tokio::time::sleep(Duration::from_secs(secs)).await;
    cancel.cancel();
    task.await.unwrap();
}

fn outcomes(h: &ScheduleHandle) -> Vec<String> {
    h.recent()
        .iter()
        .map(|o| {
            let t = o.planned.instant.to_zoned(h.schedule().tz.clone());
            format!(
                "{} {} {}",
                t.strftime("%a %H:%M"),
                o.planned.scene,
                o.result
            )
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_saturday_with_loops_never_runs_two_shows_at_once() {
    let wall = Wall::starting_at(at("2026-11-28T09:59:00+01:00"));
    let h = ScheduleHandle::new(museum(), wall, None);
    let c = controller();
    run_for(&h, &c, 2 * 3600 + 10 * 60).await; // to 12:09
    let o = outcomes(&h);
    assert_eq!(
        o,
        [
            "Sat 10:00 intro started",
            "Sat 10:15 loop started",
            "Sat 10:30 loop started",
            "Sat 10:45 loop started",
            "Sat 11:00 loop started",
            "Sat 11:15 loop started",
            "Sat 11:30 loop started",
            "Sat 11:45 loop started",
            "Sat 12:00 loop started",
            // The 12:00 loop runs 10 minutes: the noon show is skipped.
            "Sat 12:05 noon skipped",
        ]
    );
    assert!(h.recent()[9].detail.contains("scene `loop` is running"));
}

#[tokio::test(start_paused = true)]
async fn closing_stops_the_show_and_starts_the_safe_state() {
    let mut plan = museum();
    plan.shows = vec![Show {
        scene: "long".into(),
        when: When::At(t("17:45")),
        days: None,
        pos: Pos::default(),
    }];
    let wall = Wall::starting_at(at("2026-11-24T17:44:00+01:00"));
    let h = ScheduleHandle::new(plan, wall, None);
    let c = SceneController::new(
        SceneSet::new(vec![scene("long", 3600), scene("outro", 10)]),
        Arc::new(RecordingSink::default()),
        EventBus::new(256),
        TaskTracker::new(),
    );
    run_for(&h, &c, 15 * 60 + 30).await; // 17:59:30: `long` runs
    assert_eq!(c.status().unwrap().name, "long");
    run_for(&h, &c, 35).await; // 18:00:05: outro runs (10 s)
    assert_eq!(
        outcomes(&h),
        ["Tue 17:45 long started", "Tue 18:00 outro started"]
    );
    assert_eq!(c.status().unwrap().name, "outro");
}

#[tokio::test(start_paused = true)]
async fn a_closed_day_and_a_holiday_start_nothing() {
    // Monday (closed weekday), all day.
    let h = ScheduleHandle::new(
        museum(),
        Wall::starting_at(at("2026-11-23T00:00:00+01:00")),
        None,
    );
    run_for(&h, &controller(), 24 * 3600 - 60).await;
    assert!(h.recent().is_empty(), "{:?}", outcomes(&h));
    // Thursday 24 December (a closed date).
    let h = ScheduleHandle::new(
        museum(),
        Wall::starting_at(at("2026-12-24T00:00:00+01:00")),
        None,
    );
    run_for(&h, &controller(), 24 * 3600 - 60).await;
    assert!(h.recent().is_empty(), "{:?}", outcomes(&h));
    assert_eq!(
        h.upcoming(1)[0].at,
        "2026-12-25T10:00:00+01:00[Europe/Bratislava]"
    );
}

#[tokio::test(start_paused = true)]
async fn across_the_dst_change_in_bratislava_opening_stays_at_ten_local() {
    // Saturday 28 March 2026 before closing; the clocks go forward in
    // the night (02:00 CET -> 03:00 CEST).
    let wall = Wall::starting_at(at("2026-03-28T17:59:00+01:00"));
    let h = ScheduleHandle::new(museum(), wall.clone(), None);
    let c = controller();
    // 17:59 CET to 10:16 CEST is 15 h 17 min of real time.
    run_for(&h, &c, 15 * 3600 + 17 * 60).await;
    let at_: Vec<String> = h.recent().iter().map(|o| o.planned.at.clone()).collect();
    assert_eq!(
        at_,
        [
            "2026-03-28T18:00:00+01:00[Europe/Bratislava]",
            "2026-03-29T10:00:00+02:00[Europe/Bratislava]",
            "2026-03-29T10:15:00+02:00[Europe/Bratislava]",
        ]
    );
    assert!(
        h.recent().iter().all(|o| o.result == "started"),
        "{:?}",
        h.recent()
    );
    assert_eq!(
        wall.now()
            .to_zoned(h.schedule().tz.clone())
            .strftime("%H:%M %Z")
            .to_string(),
        "10:16 CEST"
    );
}

#[tokio::test(start_paused = true)]
async fn a_restart_mid_day_continues_from_now_and_keeps_the_pause() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("schedule.json");
    let wall = Wall::starting_at(at("2026-11-24T09:59:00+01:00"));
    let h = ScheduleHandle::new(museum(), wall.clone(), Some(state.clone()));
    let c = controller();
    run_for(&h, &c, 17 * 60).await; // 10:16
    assert_eq!(
        outcomes(&h),
        ["Tue 10:00 intro started", "Tue 10:15 loop started"]
    );
    h.set_paused(true).unwrap();
    // Power loss at 10:16; back at 13:31.
    c.request_stop(crate::scene::EndReason::Shutdown);
    wall.jump(3 * 3600 + 15 * 60);
    let h2 = ScheduleHandle::new(museum(), wall.clone(), Some(state.clone()));
    assert!(h2.paused(), "the pause survives the restart");
    run_for(&h2, &c, 15 * 60).await; // 13:46
    assert_eq!(outcomes(&h2), ["Tue 13:45 loop paused"]);
    h2.set_paused(false).unwrap();
    run_for(&h2, &c, 15 * 60).await; // 14:01
    // Nothing between 10:30 and 13:30 was made up.
    assert_eq!(
        outcomes(&h2),
        ["Tue 13:45 loop paused", "Tue 14:00 loop started"]
    );
    let h3 = ScheduleHandle::new(museum(), wall.clone(), Some(state));
    assert!(!h3.paused());
}

#[tokio::test(start_paused = true)]
async fn a_clock_that_jumps_forward_misses_starts_instead_of_making_them_up() {
    let wall = Wall::starting_at(at("2026-11-24T10:01:00+01:00"));
    let h = ScheduleHandle::new(museum(), wall.clone(), None);
    let c = controller();
    let cancel = CancellationToken::new();
    let task = tokio::spawn(h.clone().run(c.clone(), cancel.clone()));
    tokio::time::sleep(Duration::from_secs(60)).await;
    // NTP corrects the clock by an hour (10:02 -> 11:02).
    wall.jump(3600);
    tokio::time::sleep(Duration::from_secs(60)).await;
    cancel.cancel();
    task.await.unwrap();
    let o = outcomes(&h);
    assert_eq!(
        o,
        [
            "Tue 10:15 loop missed",
            "Tue 10:30 loop missed",
            "Tue 10:45 loop missed",
            "Tue 11:00 loop missed",
        ]
    );
    assert!(c.status().is_none(), "nothing was started late");
}

fn local(s: &Schedule, p: &Planned) -> String {
    p.instant
        .to_zoned(s.tz.clone())
        .strftime("%H:%M %Z")
        .to_string()
}

#[test]
fn times_hours_dates_weekdays_and_zones_are_parsed_or_refused_in_words() {
    assert_eq!(parse_time("9:05").unwrap(), Time::new(9, 5, 0, 0).unwrap());
    assert!(
        parse_time("24:00")
            .unwrap_err()
            .contains("not a time of day")
    );
    assert!(parse_time("10.00").is_err());
    assert!(parse_hours("closed").unwrap().is_none());
    assert!(
        parse_hours("18:00-10:00")
            .unwrap_err()
            .contains("after opening")
    );
    assert!(parse_hours("10-18").is_err());
    assert!(parse_date("2026-02-30").unwrap_err().contains("not a date"));
    assert_eq!(parse_weekday("Saturday").unwrap(), 5);
    assert!(parse_weekday("sunday-ish").is_err());
    assert!(
        parse_timezone("Europe/Bratislav")
            .unwrap_err()
            .contains("IANA")
    );
}

#[test]
fn a_day_with_loops_opening_and_closing() {
    let s = museum();
    // Tuesday 2026-11-24 (CET).
    let d = s.day(parse_date("2026-11-24").unwrap());
    let first: Vec<String> = d
        .iter()
        .take(3)
        .map(|p| format!("{} {}", local(&s, p), p.scene))
        .collect();
    assert_eq!(
        first,
        ["10:00 CET intro", "10:15 CET loop", "10:30 CET loop"]
    );
    // The 10:00 loop start gives way to the opening scene.
    assert_eq!(d.iter().filter(|p| p.scene == "loop").count(), 30);
    let last = d.last().unwrap();
    assert_eq!(
        (local(&s, last).as_str(), last.kind),
        ("18:00 CET", Kind::Closing)
    );
    assert!(d.iter().all(|p| p.scene != "noon"), "weekend only");
    // Saturday has the noon show.
    let sat = s.day(parse_date("2026-11-28").unwrap());
    assert!(
        sat.iter()
            .any(|p| p.scene == "noon" && local(&s, p) == "12:05 CET")
    );
}

#[test]
fn closed_weekday_and_holiday_have_nothing() {
    let s = museum();
    assert!(
        s.day(parse_date("2026-11-23").unwrap()).is_empty(),
        "Monday"
    );
    assert!(
        s.day(parse_date("2026-12-24").unwrap()).is_empty(),
        "holiday"
    );
    // After a closed day the next start is the next opening.
    let sunday_night = "2026-11-22T20:00:00+01:00".parse::<Timestamp>().unwrap();
    let n = s.upcoming(sunday_night, 1);
    assert_eq!(n[0].at, "2026-11-24T10:00:00+01:00[Europe/Bratislava]");
}

#[test]
fn dst_days_in_bratislava_keep_wall_times_and_never_double_a_start() {
    let mut s = museum();
    // A loop across the night, to hit the changes themselves.
    s.hours = [Some(Hours {
        open: t("00:00"),
        close: t("23:59"),
    }); 7];
    s.at_opening = None;
    s.at_closing = None;
    s.shows = vec![Show {
        scene: "night".into(),
        when: When::Every {
            every: Duration::from_secs(30 * 60),
            from: t("01:00"),
            until: t("04:00"),
        },
        days: None,
        pos: Pos::default(),
    }];
    // 2026-03-29: 02:00 CET -> 03:00 CEST. 02:00 and 02:30 do not
    // exist; 02:00 maps onto 03:00, 02:30 onto 03:30: one start each.
    let spring: Vec<String> = s
        .day(parse_date("2026-03-29").unwrap())
        .iter()
        .map(|p| local(&s, p))
        .collect();
    assert_eq!(
        spring,
        [
            "01:00 CET",
            "01:30 CET",
            "03:00 CEST",
            "03:30 CEST",
            "04:00 CEST"
        ]
    );
    // 2026-10-25: 03:00 CEST -> 02:00 CET; 02:00 and 02:30 happen twice,
    // the show runs once, at the first.
    let autumn: Vec<String> = s
        .day(parse_date("2026-10-25").unwrap())
        .iter()
        .map(|p| local(&s, p))
        .collect();
    assert_eq!(
        autumn,
        [
            "01:00 CEST",
            "01:30 CEST",
            "02:00 CEST",
            "02:30 CEST",
            "03:00 CET",
            "03:30 CET",
            "04:00 CET"
        ]
    );
    // The museum's 10:00 opening stays 10:00 local on both days.
    let m = museum();
    for d in ["2026-03-29", "2026-10-25"] {
        let p = &m.day(parse_date(d).unwrap())[0];
        assert!(local(&m, p).starts_with("10:00"), "{d}: {}", p.at);
    }
}
