//! The plan, pure: opening hours per weekday, closed dates, a scene at
//! opening and at closing, shows at a time of day or looped every N
//! minutes, all in the museum's IANA time zone (zone rules from jiff, never
//! hand-written), and which scene starts at which instant of a day. A model:
//! it imports nothing but positions.

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};
use serde::Serialize;

use crate::diag::Pos;

/// How far ahead [`Schedule::upcoming`] looks.
const LOOKAHEAD_DAYS: i64 = 14;

/// Opening hours of one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hours {
    /// Opening time.
    pub open: Time,
    /// Closing time (after `open`).
    pub close: Time,
}

/// When a show starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum When {
    /// Once, at this time of day.
    At(Time),
    /// Every `every`, from `from` up to and including `until`.
    Every {
        /// The period (whole minutes).
        every: Duration,
        /// First start.
        from: Time,
        /// No start after this.
        until: Time,
    },
}

/// One `shows:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Show {
    /// The scene it starts.
    pub scene: String,
    /// When.
    pub when: When,
    /// Only on these weekdays (Monday = 0); none: every open day.
    pub days: Option<[bool; 7]>,
    /// Where the scene name was written, for `check`.
    pub pos: Pos,
}

/// A scene named by the schedule, with its position for `check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// The scene.
    pub scene: String,
    /// Where it was written.
    pub pos: Pos,
}

/// `schedule:`, validated.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The IANA name (`Europe/Bratislava`).
    pub timezone: String,
    /// The zone's rules.
    pub tz: TimeZone,
    /// Opening hours, Monday first; none = closed that weekday.
    pub hours: [Option<Hours>; 7],
    /// Closed dates (holidays).
    pub closed: BTreeSet<Date>,
    /// Started at opening time.
    pub at_opening: Option<Named>,
    /// Started at closing time (the safe state; stops a running show).
    pub at_closing: Option<Named>,
    /// The shows.
    pub shows: Vec<Show>,
}

/// Why a start is planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `at_opening`.
    Opening,
    /// A `shows:` entry.
    Show,
    /// `at_closing`.
    Closing,
}

/// One planned start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planned {
    /// The instant, in the museum's zone (`2026-11-23T10:15:00+01:00[Europe/Bratislava]`).
    pub at: String,
    /// Unix time of it.
    pub unix: f64,
    /// The scene.
    pub scene: String,
    /// Opening, show or closing.
    pub kind: Kind,
    #[serde(skip)]
    pub(super) instant: Timestamp,
}

/// Read back (by `roomctl site`): the instant comes from `unix`.
impl<'de> serde::Deserialize<'de> for Planned {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        struct Text {
            at: String,
            unix: f64,
            scene: String,
            kind: Kind,
        }
        let t = Text::deserialize(d)?;
        let instant = Timestamp::from_microsecond((t.unix * 1e6).round() as i64)
            .map_err(serde::de::Error::custom)?;
        Ok(Planned {
            at: t.at,
            unix: t.unix,
            scene: t.scene,
            kind: t.kind,
            instant,
        })
    }
}

impl Planned {
    /// When, as a timestamp.
    pub fn instant(&self) -> Timestamp {
        self.instant
    }
}

/// Monday = 0.
fn day_index(w: Weekday) -> usize {
    w.to_monday_zero_offset() as usize
}

/// The weekday names the config uses, Monday first.
pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// `HH:MM` (or `H:MM`, `HH:MM:SS`).
pub fn parse_time(s: &str) -> Result<Time, String> {
    let bad = || format!("`{s}` is not a time of day (HH:MM, e.g. 10:00 or 17:30)");
    let parts: Vec<&str> = s.trim().split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return Err(bad());
    }
    let num = |p: &str, max: i8| -> Result<i8, String> {
        if p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let n: i8 = p.parse().map_err(|_| bad())?;
        if n > max { Err(bad()) } else { Ok(n) }
    };
    let h = num(parts[0], 23)?;
    let m = num(parts[1], 59)?;
    let sec = if parts.len() == 3 {
        num(parts[2], 59)?
    } else {
        0
    };
    Time::new(h, m, sec, 0).map_err(|_| bad())
}

/// `HH:MM-HH:MM`, or `closed`.
pub fn parse_hours(s: &str) -> Result<Option<Hours>, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("closed") {
        return Ok(None);
    }
    let Some((a, b)) = t.split_once('-') else {
        return Err(format!(
            "`{s}` is not opening hours (HH:MM-HH:MM, e.g. 10:00-18:00, or `closed`)"
        ));
    };
    let (open, close) = (parse_time(a)?, parse_time(b)?);
    if close <= open {
        return Err(format!("`{s}`: closing time must be after opening time"));
    }
    Ok(Some(Hours { open, close }))
}

/// `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Result<Date, String> {
    s.trim()
        .parse::<Date>()
        .map_err(|_| format!("`{s}` is not a date (YYYY-MM-DD, e.g. 2026-12-24)"))
}

/// A weekday name (`mon`..`sun`, or the full English name).
pub fn parse_weekday(s: &str) -> Result<usize, String> {
    const FULL: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let l = s.trim().to_ascii_lowercase();
    (0..7)
        .find(|&i| l == WEEKDAYS[i] || l == FULL[i])
        .ok_or_else(|| format!("`{s}` is not a weekday (mon, tue, wed, thu, fri, sat, sun)"))
}

/// An IANA time zone name.
pub fn parse_timezone(s: &str) -> Result<TimeZone, String> {
    TimeZone::get(s.trim())
        .map_err(|_| format!("unknown time zone `{s}` (an IANA name such as Europe/Bratislava)"))
}

impl Schedule {
    /// Opening hours on `date`: none when closed (weekday or holiday).
    pub fn hours_on(&self, date: Date) -> Option<Hours> {
        if self.closed.contains(&date) {
            return None;
        }
        self.hours[day_index(date.weekday())]
    }

    /// Open at `t`.
    pub fn is_open(&self, t: Timestamp) -> bool {
        let z = t.to_zoned(self.tz.clone());
        self.hours_on(z.date())
            .is_some_and(|h| z.time() >= h.open && z.time() < h.close)
    }

    /// The instant of `time` on `date` in the museum's zone. In a DST gap
    /// (a time that does not exist that day) it is the instant just after
    /// the gap; in a fold (a time that happens twice) the first one.
    fn instant(&self, date: Date, time: Time) -> Option<Zoned> {
        date.to_datetime(time).to_zoned(self.tz.clone()).ok()
    }

    /// Everything planned on `date` (local), in time order; one start per
    /// instant (a DST gap can map two wall times onto one instant). Shows
    /// run only while the museum is open.
    pub fn day(&self, date: Date) -> Vec<Planned> {
        let Some(h) = self.hours_on(date) else {
            return Vec::new();
        };
        let mut out: Vec<(Zoned, &str, Kind)> = Vec::new();
        if let Some(o) = &self.at_opening
            && let Some(z) = self.instant(date, h.open)
        {
            out.push((z, &o.scene, Kind::Opening));
        }
        let weekday = day_index(date.weekday());
        for s in &self.shows {
            if s.days.is_some_and(|d| !d[weekday]) {
                continue;
            }
            let mut times = Vec::new();
            match &s.when {
                When::At(t) => times.push(*t),
                When::Every { every, from, until } => {
                    let step = every.as_secs().max(60) as i64;
                    let mut t = *from;
                    loop {
                        times.push(t);
                        match t.checked_add((step).seconds()) {
                            // Wrapping past midnight ends the day's loop.
                            Ok(n) if n > t && n <= *until => t = n,
                            _ => break,
                        }
                    }
                }
            }
            for t in times {
                // The opening scene has the opening instant; a show at the
                // closing time would be cut at once.
                if t < h.open || t >= h.close {
                    continue;
                }
                if let Some(z) = self.instant(date, t) {
                    out.push((z, &s.scene, Kind::Show));
                }
            }
        }
        if let Some(c) = &self.at_closing
            && let Some(z) = self.instant(date, h.close)
        {
            out.push((z, &c.scene, Kind::Closing));
        }
        // Time order; at one instant opening first, closing wins over a
        // show (it is the safe state), then the first listed.
        out.sort_by(|a, b| {
            a.0.timestamp().cmp(&b.0.timestamp()).then_with(|| {
                let rank = |k: Kind| match k {
                    Kind::Opening => 0,
                    Kind::Closing => 1,
                    Kind::Show => 2,
                };
                rank(a.2).cmp(&rank(b.2))
            })
        });
        out.dedup_by(|b, a| a.0.timestamp() == b.0.timestamp());
        out.into_iter()
            .map(|(z, scene, kind)| Planned {
                at: z.to_string(),
                unix: z.timestamp().as_millisecond() as f64 / 1000.0,
                scene: scene.to_string(),
                kind,
                instant: z.timestamp(),
            })
            .collect()
    }

    /// The next `n` starts strictly after `after`.
    pub fn upcoming(&self, after: Timestamp, n: usize) -> Vec<Planned> {
        let mut out = Vec::new();
        let today = after.to_zoned(self.tz.clone()).date();
        for d in 0..LOOKAHEAD_DAYS {
            let Ok(date) = today.checked_add(d.days()) else {
                break;
            };
            for p in self.day(date) {
                if p.instant > after {
                    out.push(p);
                    if out.len() == n {
                        return out;
                    }
                }
            }
        }
        out
    }

    /// Starts in `(from, to]`.
    pub fn between(&self, from: Timestamp, to: Timestamp) -> Vec<Planned> {
        if to <= from {
            return Vec::new();
        }
        let first = from.to_zoned(self.tz.clone()).date();
        let last = to.to_zoned(self.tz.clone()).date();
        let mut out = Vec::new();
        let mut date = first;
        // A clock that jumped years: only the last days matter (all of
        // those starts are missed anyway); keep the work bounded.
        if let Ok(d) = last.checked_sub(LOOKAHEAD_DAYS.days())
            && d > date
        {
            date = d;
        }
        while date <= last {
            out.extend(
                self.day(date)
                    .into_iter()
                    .filter(|p| p.instant > from && p.instant <= to),
            );
            match date.tomorrow() {
                Ok(d) => date = d,
                Err(_) => break,
            }
        }
        out
    }

    /// Every scene name the schedule uses, with its position.
    pub fn scene_refs(&self) -> Vec<(&str, Pos)> {
        let mut v: Vec<(&str, Pos)> = self
            .shows
            .iter()
            .map(|s| (s.scene.as_str(), s.pos))
            .collect();
        for n in [&self.at_opening, &self.at_closing].into_iter().flatten() {
            v.push((&n.scene, n.pos));
        }
        v
    }
}
