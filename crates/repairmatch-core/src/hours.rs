//! Whether a center is open at an instant, in its own time zone.
//!
//! Weekly periods may run past midnight; dated exceptions replace a whole
//! local date's periods (a holiday closure, shorter hours), including the part
//! of an overnight period that spills into the next morning.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};

use crate::model::{OpeningHours, WeeklyPeriod};

/// What the hours say about an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenState {
    /// Open.
    Open,
    /// Closed.
    Closed,
    /// No hours published.
    Unknown,
}

const MINUTES_PER_DAY: u16 = 24 * 60;

/// Whether a center with these hours is open at `instant`.
pub fn open_state(hours: Option<&OpeningHours>, instant: DateTime<Utc>) -> OpenState {
    let Some(hours) = hours.filter(|h| !h.periods.is_empty() || !h.exceptions.is_empty()) else {
        return OpenState::Unknown;
    };
    let local = instant.with_timezone(&hours.time_zone);
    let date = local.date_naive();
    let minute = u16::try_from(local.hour() * 60 + local.minute()).expect("a day has 1,440 minutes");
    let open_today = periods_on(hours, date).any(|p| {
        let overnight = p.close_minute_of_day <= p.open_minute_of_day;
        minute >= p.open_minute_of_day && (overnight || minute < p.close_minute_of_day)
    });
    let spill_from_yesterday = date.pred_opt().is_some_and(|yesterday| {
        periods_on(hours, yesterday).any(|p| {
            let overnight = p.close_minute_of_day <= p.open_minute_of_day;
            overnight && p.close_minute_of_day < MINUTES_PER_DAY && minute < p.close_minute_of_day
        })
    });
    if open_today || spill_from_yesterday { OpenState::Open } else { OpenState::Closed }
}

/// The periods that open on `date`: its dated exception's, else the week's.
/// An exception's periods carry the date's weekday, so one filter serves both.
fn periods_on(hours: &OpeningHours, date: NaiveDate) -> impl Iterator<Item = &WeeklyPeriod> {
    let periods = match hours.exceptions.binary_search_by_key(&date, |e| e.date) {
        Ok(index) => &*hours.exceptions[index].periods,
        Err(_) => &*hours.periods,
    };
    let weekday = date.weekday();
    periods.iter().filter(move |p| p.day == weekday)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Weekday};
    use chrono_tz::Tz;

    use super::*;
    use crate::model::DatedException;

    fn period(day: Weekday, open: u16, close: u16) -> WeeklyPeriod {
        WeeklyPeriod { day, open_minute_of_day: open, close_minute_of_day: close }
    }

    fn at(tz: Tz, y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        tz.with_ymd_and_hms(y, m, d, h, min, 0).single().unwrap().with_timezone(&Utc)
    }

    #[test]
    fn open_in_local_time_not_utc() {
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        let hours = OpeningHours {
            time_zone: tz,
            periods: Box::new([period(Weekday::Wed, 9 * 60, 18 * 60)]),
            exceptions: Box::default(),
        };
        // 2026-11-25 is a Wednesday.
        assert_eq!(open_state(Some(&hours), at(tz, 2026, 11, 25, 9, 0)), OpenState::Open);
        assert_eq!(open_state(Some(&hours), at(tz, 2026, 11, 25, 17, 59)), OpenState::Open);
        assert_eq!(open_state(Some(&hours), at(tz, 2026, 11, 25, 18, 0)), OpenState::Closed);
        assert_eq!(open_state(Some(&hours), at(tz, 2026, 11, 25, 8, 59)), OpenState::Closed);
        assert_eq!(open_state(Some(&hours), at(tz, 2026, 11, 26, 10, 0)), OpenState::Closed);
    }

    #[test]
    fn overnight_periods_spill_into_the_next_day() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let hours = OpeningHours {
            time_zone: tz,
            periods: Box::new([period(Weekday::Fri, 22 * 60, 2 * 60)]),
            exceptions: Box::default(),
        };
        // 2026-11-27 is a Friday.
        assert_eq!(open_state(Some(&hours), at(tz, 2026, 11, 27, 23, 0)), OpenState::Open);
        assert_eq!(open_state(Some(&hours), at(tz, 2026, 11, 28, 1, 59)), OpenState::Open);
        assert_eq!(open_state(Some(&hours), at(tz, 2026, 11, 28, 2, 0)), OpenState::Closed);
    }

    #[test]
    fn around_the_clock_and_dated_exceptions() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let all_week = Weekday::Mon.num_days_from_monday()..7;
        let periods = all_week.map(|d| period(weekday(d), 0, MINUTES_PER_DAY)).collect();
        let christmas = NaiveDate::from_ymd_opt(2026, 12, 25).unwrap();
        let hours = OpeningHours {
            time_zone: tz,
            periods,
            exceptions: Box::new([DatedException { date: christmas, periods: Box::default() }]),
        };
        assert_eq!(open_state(Some(&hours), at(tz, 2026, 12, 24, 23, 59)), OpenState::Open);
        assert_eq!(open_state(Some(&hours), at(tz, 2026, 12, 25, 12, 0)), OpenState::Closed);
        assert_eq!(open_state(Some(&hours), at(tz, 2026, 12, 26, 0, 0)), OpenState::Open);
    }

    #[test]
    fn no_published_hours_is_unknown() {
        assert_eq!(open_state(None, Utc::now()), OpenState::Unknown);
        let empty = OpeningHours { time_zone: chrono_tz::UTC, periods: Box::default(), exceptions: Box::default() };
        assert_eq!(open_state(Some(&empty), Utc::now()), OpenState::Unknown);
    }

    fn weekday(days_from_monday: u32) -> Weekday {
        Weekday::try_from(u8::try_from(days_from_monday).unwrap()).unwrap()
    }
}
