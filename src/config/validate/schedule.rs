//! Validating `schedule:`: opening hours, closed days, shows.

use super::super::raw::*;
use super::Validator;
use super::*;

impl Validator<'_> {
    pub(super) fn schedule(
        &mut self,
        raw: Spanned<RawSchedule>,
    ) -> crate::schedule::plan::Schedule {
        use crate::schedule::plan::{self as sch, Named};
        let r = raw.value;
        let tz = match sch::parse_timezone(&r.timezone.value) {
            Ok(tz) => tz,
            Err(e) => {
                self.err(Pos::of(&r.timezone), format!("schedule.timezone: {e}"));
                jiff::tz::TimeZone::UTC
            }
        };
        let hours = self.weekly_hours(&r.hours);
        let any_open = hours.iter().any(Option::is_some);
        if !any_open {
            self.warn(
                Pos::of(&r.timezone),
                "schedule: no opening hours (schedule.hours), so nothing is ever started",
            );
        }
        let mut closed = std::collections::BTreeSet::new();
        for c in &r.closed {
            match sch::parse_date(&c.value) {
                Ok(d) => {
                    closed.insert(d);
                }
                Err(e) => self.err(Pos::of(c), format!("schedule.closed: {e}")),
            }
        }
        let named = |n: &Option<S>| {
            n.as_ref().map(|s| Named {
                scene: s.value.trim().to_string(),
                pos: Pos::of(s),
            })
        };
        let shows = r
            .shows
            .iter()
            .filter_map(|rs| self.show(rs, &hours))
            .collect();
        sch::Schedule {
            timezone: r.timezone.value.trim().to_string(),
            tz,
            hours,
            closed,
            at_opening: named(&r.at_opening),
            at_closing: named(&r.at_closing),
            shows,
        }
    }

    /// The opening hours of each weekday (`default` for the days not
    /// listed); none where closed or wrong (reported).
    fn weekly_hours(&mut self, h: &RawHours) -> [Option<crate::schedule::plan::Hours>; 7] {
        use crate::schedule::plan as sch;
        let mut hours = [None; 7];
        let days = [&h.mon, &h.tue, &h.wed, &h.thu, &h.fri, &h.sat, &h.sun];
        for (i, d) in days.iter().enumerate() {
            let Some(v) = d.as_ref().or(h.default.as_ref()) else {
                continue;
            };
            match sch::parse_hours(&v.value) {
                Ok(x) => hours[i] = x,
                Err(e) => self.err(
                    Pos::of(v),
                    format!("schedule.hours.{}: {e}", sch::WEEKDAYS[i]),
                ),
            }
        }
        hours
    }

    /// One entry of `schedule.shows`, or none when it is wrong (reported);
    /// a show that never falls inside the opening hours is a warning.
    fn show(
        &mut self,
        rs: &Spanned<RawShow>,
        hours: &[Option<crate::schedule::plan::Hours>; 7],
    ) -> Option<crate::schedule::plan::Show> {
        use crate::schedule::plan::{self as sch, Show, When};
        let s = &rs.value;
        let at_pos = Pos::of(rs);
        let time = |v: &mut Self, t: &Option<S>, key: &str| -> Option<jiff::civil::Time> {
            let t = t.as_ref()?;
            match sch::parse_time(&t.value) {
                Ok(x) => Some(x),
                Err(e) => {
                    v.err(Pos::of(t), format!("schedule.shows.{key}: {e}"));
                    None
                }
            }
        };
        let at = time(self, &s.at, "at");
        let from = time(self, &s.from, "from");
        let until = time(self, &s.until, "until");
        let when = self.show_when(s, at_pos, at, from, until);
        let mut day_set = None;
        if let Some(ds) = &s.days {
            let mut set = [false; 7];
            for d in ds {
                match sch::parse_weekday(&d.value) {
                    Ok(i) => set[i] = true,
                    Err(e) => self.err(Pos::of(d), format!("schedule.shows.days: {e}")),
                }
            }
            day_set = Some(set);
        }
        if let Some(when) = when {
            // A show that can never run while open is a mistake.
            let times: Vec<jiff::civil::Time> = match &when {
                When::At(t) => vec![*t],
                When::Every { from, until, .. } => vec![*from, *until],
            };
            let runs = (0..7).any(|i| {
                day_set.is_none_or(|d| d[i])
                    && hours[i].is_some_and(|h| match &when {
                        When::At(_) => times[0] >= h.open && times[0] < h.close,
                        When::Every { .. } => times[0] < h.close && times[1] >= h.open,
                    })
            });
            if hours.iter().any(Option::is_some) && !runs {
                self.warn(
                    Pos::of(&s.scene),
                    format!("schedule: the show `{}` falls outside the opening hours of its days, so it never runs", s.scene.value),
                );
            }
            return Some(Show {
                scene: s.scene.value.trim().to_string(),
                when,
                days: day_set,
                pos: Pos::of(&s.scene),
            });
        }
        None
    }

    /// When a show runs: `at` a time, or `every` N minutes `from` … `until`.
    fn show_when(
        &mut self,
        s: &RawShow,
        at_pos: Pos,
        at: Option<jiff::civil::Time>,
        from: Option<jiff::civil::Time>,
        until: Option<jiff::civil::Time>,
    ) -> Option<crate::schedule::plan::When> {
        use crate::schedule::plan::When;
        match (&s.at, &s.every) {
            (Some(_), None) => {
                if s.from.is_some() || s.until.is_some() {
                    self.err(
                        at_pos,
                        "schedule.shows: `from`/`until` go with `every`, not with `at`",
                    );
                }
                at.map(When::At)
            }
            (None, Some(every)) => {
                let d = every.value.0;
                if d < Duration::from_secs(60)
                    || d > Duration::from_secs(24 * 3600)
                    || d.as_secs() % 60 != 0
                    || d.subsec_nanos() != 0
                {
                    self.err(
                        Pos::of(every),
                        format!(
                            "schedule.shows.every: {} must be whole minutes between 1m and 24h",
                            human(d)
                        ),
                    );
                    None
                } else if s.from.is_none() || s.until.is_none() {
                    self.err(at_pos, "schedule.shows: `every` needs `from` and `until` (e.g. every: 15m, from: \"10:00\", until: \"17:30\")");
                    None
                } else {
                    match (from, until) {
                        (Some(f), Some(u)) if u < f => {
                            self.err(
                                Pos::of(s.until.as_ref().unwrap()),
                                "schedule.shows.until: before `from`",
                            );
                            None
                        }
                        (Some(f), Some(u)) => Some(When::Every {
                            every: d,
                            from: f,
                            until: u,
                        }),
                        _ => None,
                    }
                }
            }
            (Some(_), Some(every)) => {
                self.err(
                    Pos::of(every),
                    "schedule.shows: either `at` or `every`, not both",
                );
                None
            }
            (None, None) => {
                self.err(
                    at_pos,
                    "schedule.shows: needs `at: \"HH:MM\"` or `every` with `from` and `until`",
                );
                None
            }
        }
    }
}
