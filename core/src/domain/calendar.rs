//! The working-day calendar of Vietnamese state agencies, as data.
//!
//! Legal deadlines are counted in working days ("within 3 working days"), so the clock needs to
//! know which days the commune People's Committee and police are closed: Saturdays, Sundays,
//! and the public holidays and Tết days of each year. The fixed holidays come from the Labour
//! Code (Art. 112), but the exact days off (Tết days, the day next to National Day, compensatory
//! days when a holiday falls on a weekend, swapped working Saturdays) are set every year by the
//! Prime Minister's notice on holiday leave for civil servants, proposed and announced by the
//! Ministry of Home Affairs. They are therefore **data**: one JSON file per year under
//! `core/data/holidays/`, embedded with `include_str!`.
//!
//! Decisions:
//! - **Unknown years are errors, not holiday-free.** Every query about a date in a year without
//!   a file fails with [`DomainError::NoCalendar`], so a deadline is never computed on missing
//!   data. [`Calendar::covers`] and [`Calendar::years`] let callers check coverage up front.
//! - A file lists the weekdays off (and holidays falling on a weekend, for display) with their
//!   Vietnamese and English names, the legal source and a `verify` note when the date comes from
//!   an announcement. Weekend days made working days (ngày làm bù) are listed separately.
//! - Files are parsed strictly: unknown fields, dates outside the file's year, unsorted or
//!   repeated dates, blank names and swapped working days that are not weekends are refused.
//! - A file loaded at runtime ([`Calendar::add_year_json`]) replaces the embedded data for its
//!   year, so a corrected schedule can be deployed without a new build.
//!
//! Adding next year: see `core/data/holidays/README.md` — copy the last file, fill it in from
//! the official notice, add it to [`EMBEDDED`], run `cargo test -p donghanh-core --lib
//! domain::calendar`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use chrono::{Datelike, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

use super::DomainError;
use super::rules::coded_enum;

/// Name of this data in error messages.
const WHAT: &str = "holiday calendar";

/// The embedded year files, one per year. Add next year's file here.
pub const EMBEDDED: &[&str] = &[include_str!("../../data/holidays/vn-2026.json")];

coded_enum! {
    /// Why a day is listed.
    pub enum DayKind {
        /// A statutory public holiday (Labour Code Art. 112).
        PublicHoliday => "public_holiday",
        /// A day of the Lunar New Year leave.
        Tet => "tet",
        /// A day off compensating a holiday that fell on a weekend.
        Compensatory => "compensatory",
        /// A bridge day off swapped with a working weekend day.
        Bridge => "bridge",
        /// A weekend day made a working day (ngày làm bù).
        WorkingSwap => "working_swap",
    }
}

/// One listed day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarDay {
    /// The date.
    pub date: NaiveDate,
    /// Name in Vietnamese.
    pub name_vi: String,
    /// Name in English.
    pub name_en: String,
    /// Why the day is listed.
    pub kind: DayKind,
    /// Legal source of the day.
    pub source: String,
    /// What to verify, when the date comes from an announced schedule.
    #[serde(default)]
    pub verify: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YearFile {
    format: u32,
    year: i32,
    applies_to: String,
    sources: Vec<String>,
    #[serde(default)]
    #[allow(dead_code)]
    notes: Vec<String>,
    days_off: Vec<CalendarDay>,
    #[serde(default)]
    working_weekend_days: Vec<CalendarDay>,
}

/// The calendar data of one year.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YearCalendar {
    year: i32,
    applies_to: String,
    sources: Vec<String>,
    days_off: BTreeMap<NaiveDate, CalendarDay>,
    working_weekend_days: BTreeMap<NaiveDate, CalendarDay>,
}

impl YearCalendar {
    /// The year.
    #[must_use]
    pub fn year(&self) -> i32 {
        self.year
    }

    /// Whose working days these are.
    #[must_use]
    pub fn applies_to(&self) -> &str {
        &self.applies_to
    }

    /// Citations of the year's schedule.
    #[must_use]
    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    /// The listed days off, in date order.
    pub fn days_off(&self) -> impl Iterator<Item = &CalendarDay> {
        self.days_off.values()
    }

    /// Weekend days made working days, in date order.
    pub fn working_weekend_days(&self) -> impl Iterator<Item = &CalendarDay> {
        self.working_weekend_days.values()
    }
}

fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

fn invalid(field: &'static str, problem: &'static str) -> DomainError {
    DomainError::DataInvalid {
        what: WHAT,
        field,
        problem,
    }
}

fn check_days(
    field: &'static str,
    year: i32,
    days: Vec<CalendarDay>,
) -> Result<BTreeMap<NaiveDate, CalendarDay>, DomainError> {
    let mut map = BTreeMap::new();
    let mut previous: Option<NaiveDate> = None;
    for day in days {
        if day.date.year() != year {
            return Err(invalid(field, "lists a date outside the file's year"));
        }
        if previous.is_some_and(|p| day.date <= p) {
            return Err(DomainError::DataOrder {
                what: WHAT,
                date: day.date,
            });
        }
        previous = Some(day.date);
        if day.name_vi.trim().is_empty() || day.name_en.trim().is_empty() {
            return Err(invalid(
                field,
                "has a day without its Vietnamese and English names",
            ));
        }
        if day.source.trim().is_empty() {
            return Err(invalid(field, "has a day without a source"));
        }
        if day.verify.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(invalid(
                field,
                "has a blank verify note (leave it out instead)",
            ));
        }
        map.insert(day.date, day);
    }
    Ok(map)
}

fn parse_year(json: &str) -> Result<YearCalendar, DomainError> {
    let file: YearFile = serde_json::from_str(json).map_err(|e| DomainError::DataParse {
        what: WHAT,
        detail: e.to_string(),
    })?;
    YearCalendar::from_file(file)
}

impl YearCalendar {
    fn from_file(file: YearFile) -> Result<Self, DomainError> {
        if file.format != 1 {
            return Err(invalid(
                "format",
                "is not a supported format version (expected 1)",
            ));
        }
        if !(1900..=9999).contains(&file.year) {
            return Err(invalid("year", "must be between 1900 and 9999"));
        }
        if file.applies_to.trim().is_empty() {
            return Err(invalid("applies_to", "must not be blank"));
        }
        if file.sources.is_empty() || file.sources.iter().any(|s| s.trim().is_empty()) {
            return Err(invalid(
                "sources",
                "must cite at least one source, none blank",
            ));
        }
        let days_off = check_days("days_off", file.year, file.days_off)?;
        if days_off.values().any(|d| d.kind == DayKind::WorkingSwap) {
            return Err(invalid("days_off.kind", "must not be working_swap"));
        }
        let working = check_days("working_weekend_days", file.year, file.working_weekend_days)?;
        for day in working.values() {
            if day.kind != DayKind::WorkingSwap {
                return Err(invalid("working_weekend_days.kind", "must be working_swap"));
            }
            if !is_weekend(day.date) {
                return Err(invalid(
                    "working_weekend_days",
                    "must list Saturdays or Sundays only",
                ));
            }
            if days_off.contains_key(&day.date) {
                return Err(invalid(
                    "working_weekend_days",
                    "lists a day that is also a day off",
                ));
            }
        }
        Ok(Self {
            year: file.year,
            applies_to: file.applies_to,
            sources: file.sources,
            days_off,
            working_weekend_days: working,
        })
    }
}

/// Working days of state agencies, for the years that have data.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Calendar {
    years: BTreeMap<i32, YearCalendar>,
}

impl Calendar {
    /// A calendar with no years (every query fails with `NoCalendar`).
    #[must_use]
    pub fn empty() -> Self {
        Self::default()
    }

    /// Parses one year file (the format of `core/data/holidays/vn-2026.json`).
    ///
    /// # Errors
    /// `DataParse` for malformed JSON or unknown fields; `DataInvalid` or `DataOrder` for a file
    /// that breaks a rule (see the module documentation).
    pub fn from_json(json: &str) -> Result<Self, DomainError> {
        let mut calendar = Self::empty();
        calendar.add_year_json(json)?;
        Ok(calendar)
    }

    /// Parses one year file and adds it, replacing any data already held for that year.
    /// Nothing changes on error.
    ///
    /// # Errors
    /// As [`Calendar::from_json`].
    pub fn add_year_json(&mut self, json: &str) -> Result<i32, DomainError> {
        let year = parse_year(json)?;
        let number = year.year;
        self.years.insert(number, year);
        Ok(number)
    }

    /// Parses every embedded year file.
    ///
    /// # Errors
    /// As [`Calendar::from_json`], or `DataInvalid` if two embedded files hold the same year. A
    /// test guarantees the shipped files parse.
    pub fn parse_embedded() -> Result<Self, DomainError> {
        let mut calendar = Self::empty();
        for json in EMBEDDED {
            let year = parse_year(json)?;
            if calendar.years.insert(year.year, year).is_some() {
                return Err(invalid("year", "is embedded twice"));
            }
        }
        Ok(calendar)
    }

    /// The embedded calendar, parsed once. Should an embedded file ever fail to parse (a test
    /// prevents it), this calendar has no years and every query fails with `NoCalendar`:
    /// deadlines are refused rather than counted without holidays.
    #[must_use]
    pub fn embedded() -> &'static Calendar {
        static EMBEDDED_CALENDAR: OnceLock<Calendar> = OnceLock::new();
        EMBEDDED_CALENDAR.get_or_init(|| Self::parse_embedded().unwrap_or_default())
    }

    /// Whether the calendar has data for `year`.
    #[must_use]
    pub fn covers(&self, year: i32) -> bool {
        self.years.contains_key(&year)
    }

    /// The years with data, in order.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.keys().copied()
    }

    /// The data of one year.
    #[must_use]
    pub fn year(&self, year: i32) -> Option<&YearCalendar> {
        self.years.get(&year)
    }

    fn year_of(&self, date: NaiveDate) -> Result<&YearCalendar, DomainError> {
        self.years
            .get(&date.year())
            .ok_or(DomainError::NoCalendar { year: date.year() })
    }

    /// The listed day off on `date`, if any (a holiday, Tết day or compensatory day).
    ///
    /// # Errors
    /// `NoCalendar` when the year has no data.
    pub fn day_off(&self, date: NaiveDate) -> Result<Option<&CalendarDay>, DomainError> {
        Ok(self.year_of(date)?.days_off.get(&date))
    }

    /// Whether state agencies work on `date`.
    ///
    /// # Errors
    /// `NoCalendar` when the year has no data.
    pub fn is_working_day(&self, date: NaiveDate) -> Result<bool, DomainError> {
        let year = self.year_of(date)?;
        if year.working_weekend_days.contains_key(&date) {
            return Ok(true);
        }
        Ok(!is_weekend(date) && !year.days_off.contains_key(&date))
    }

    /// The `n`th working day strictly after `date` (`date` itself when `n` is 0). This is the
    /// last day of a deadline "within `n` working days" of `date`.
    ///
    /// # Errors
    /// `NoCalendar` when the count reaches a year without data; `DateOutOfRange` at the end of
    /// the representable dates.
    pub fn add_working_days(&self, date: NaiveDate, n: u32) -> Result<NaiveDate, DomainError> {
        let mut day = date;
        let mut left = n;
        while left > 0 {
            day = day
                .succ_opt()
                .ok_or(DomainError::DateOutOfRange { field: "deadline" })?;
            if self.is_working_day(day)? {
                left -= 1;
            }
        }
        Ok(day)
    }

    /// The number of working days in `(a, b]`, negative when `b` is before `a` (then minus the
    /// number in `(b, a]`). `working_days_between(d, add_working_days(d, n)) == n`.
    ///
    /// # Errors
    /// `NoCalendar` when a day in between lies in a year without data.
    pub fn working_days_between(&self, a: NaiveDate, b: NaiveDate) -> Result<i64, DomainError> {
        let (from, to, sign) = if b >= a { (a, b, 1) } else { (b, a, -1) };
        let mut count: i64 = 0;
        let mut day = from;
        while day < to {
            day = day
                .succ_opt()
                .ok_or(DomainError::DateOutOfRange { field: "deadline" })?;
            if self.is_working_day(day)? {
                count += 1;
            }
        }
        Ok(sign * count)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::testutil::d;

    fn cal() -> Calendar {
        Calendar::parse_embedded().unwrap()
    }

    #[test]
    fn embedded_calendar_parses_and_covers_2026_only() {
        let c = cal();
        assert_eq!(&c, Calendar::embedded());
        assert_eq!(c.years().collect::<Vec<_>>(), vec![2026]);
        assert!(c.covers(2026));
        assert!(!c.covers(2027));
        let year = c.year(2026).unwrap();
        assert_eq!(year.year(), 2026);
        assert!(!year.sources().is_empty());
        assert!(year.applies_to().contains("State agencies"));
        assert_eq!(year.working_weekend_days().count(), 0);
    }

    #[test]
    fn every_2026_weekday_off_is_a_holiday() {
        let c = cal();
        let expected_weekdays_off = [
            d(2026, 1, 1),
            d(2026, 2, 16),
            d(2026, 2, 17),
            d(2026, 2, 18),
            d(2026, 2, 19),
            d(2026, 2, 20),
            d(2026, 4, 27),
            d(2026, 4, 30),
            d(2026, 5, 1),
            d(2026, 9, 1),
            d(2026, 9, 2),
        ];
        for date in expected_weekdays_off {
            assert!(!is_weekend(date), "{date} is listed as a weekday off");
            assert_eq!(c.is_working_day(date), Ok(false), "{date}");
        }
        let listed_weekdays: Vec<NaiveDate> = c
            .year(2026)
            .unwrap()
            .days_off()
            .map(|day| day.date)
            .filter(|date| !is_weekend(*date))
            .collect();
        assert_eq!(listed_weekdays, expected_weekdays_off);
        // 2026 has 261 weekdays; 11 are days off.
        assert_eq!(
            c.working_days_between(d(2025, 12, 31), d(2026, 12, 31)),
            Ok(250)
        );
    }

    #[test]
    fn names_are_bilingual_and_announced_days_carry_a_verify_note() {
        let c = cal();
        let tet = c.day_off(d(2026, 2, 17)).unwrap().unwrap();
        assert_eq!(tet.kind, DayKind::Tet);
        assert!(tet.name_vi.contains("Tết"));
        assert!(tet.name_en.contains("Lunar New Year"));
        assert!(tet.verify.is_some());
        let hung_kings = c.day_off(d(2026, 4, 26)).unwrap().unwrap();
        assert!(is_weekend(hung_kings.date));
        assert_eq!(
            c.day_off(d(2026, 4, 27)).unwrap().unwrap().kind,
            DayKind::Compensatory
        );
        assert_eq!(c.day_off(d(2026, 3, 10)), Ok(None));
    }

    #[test]
    fn weekends_do_not_work_and_ordinary_weekdays_do() {
        let c = cal();
        assert_eq!(c.is_working_day(d(2026, 3, 14)), Ok(false)); // Saturday
        assert_eq!(c.is_working_day(d(2026, 3, 15)), Ok(false)); // Sunday
        assert_eq!(c.is_working_day(d(2026, 3, 16)), Ok(true));
    }

    #[test]
    fn years_without_data_are_refused() {
        let c = cal();
        assert_eq!(
            c.is_working_day(d(2027, 1, 4)),
            Err(DomainError::NoCalendar { year: 2027 })
        );
        assert_eq!(
            c.add_working_days(d(2026, 12, 30), 3),
            Err(DomainError::NoCalendar { year: 2027 })
        );
        assert_eq!(
            Calendar::empty().is_working_day(d(2026, 1, 5)),
            Err(DomainError::NoCalendar { year: 2026 })
        );
    }

    #[test]
    fn deadline_over_tet_skips_the_whole_holiday_block() {
        let c = cal();
        // Completion reported Thursday 12 Feb: Fri 13 is day 1, then Tết until Sunday 22.
        assert_eq!(c.add_working_days(d(2026, 2, 12), 3), Ok(d(2026, 2, 24)));
        assert_eq!(
            c.working_days_between(d(2026, 2, 12), d(2026, 2, 24)),
            Ok(3)
        );
        assert_eq!(
            c.working_days_between(d(2026, 2, 24), d(2026, 2, 12)),
            Ok(-3)
        );
        // Reported on a Friday before the 30 April / 1 May holidays.
        assert_eq!(c.add_working_days(d(2026, 4, 24), 5), Ok(d(2026, 5, 6)));
        // Zero days is the day itself; a year-end start may finish in the covered year.
        assert_eq!(c.add_working_days(d(2026, 2, 14), 0), Ok(d(2026, 2, 14)));
        assert_eq!(c.add_working_days(d(2025, 12, 31), 1), Ok(d(2026, 1, 2)));
    }

    #[test]
    fn date_arithmetic_at_the_end_of_time_is_an_error() {
        assert_eq!(
            Calendar::empty().add_working_days(NaiveDate::MAX, 1),
            Err(DomainError::DateOutOfRange { field: "deadline" })
        );
    }

    fn edited(from: &str, to: &str) -> Result<Calendar, DomainError> {
        let json = EMBEDDED[0].replacen(from, to, 1);
        assert_ne!(
            json, EMBEDDED[0],
            "fixture replacement {from} did not apply"
        );
        Calendar::from_json(&json)
    }

    #[test]
    fn malformed_calendar_files_are_refused() {
        assert!(matches!(
            Calendar::from_json("[]"),
            Err(DomainError::DataParse { .. })
        ));
        assert!(matches!(
            edited(
                "\"date\": \"2026-01-01\"",
                "\"date\": \"2026-01-01\", \"extra\": 1"
            ),
            Err(DomainError::DataParse { .. })
        ));
        assert!(matches!(
            edited("\"date\": \"2026-01-01\"", "\"date\": \"2025-12-31\""),
            Err(DomainError::DataInvalid {
                field: "days_off",
                ..
            })
        ));
        assert_eq!(
            edited("\"date\": \"2026-02-17\"", "\"date\": \"2026-02-16\""),
            Err(DomainError::DataOrder {
                what: WHAT,
                date: d(2026, 2, 16)
            })
        );
        assert_eq!(
            edited("\"date\": \"2026-09-01\"", "\"date\": \"2026-05-01\""),
            Err(DomainError::DataOrder {
                what: WHAT,
                date: d(2026, 5, 1)
            })
        );
        assert!(matches!(
            edited("\"name_en\": \"New Year's Day\"", "\"name_en\": \" \""),
            Err(DomainError::DataInvalid {
                field: "days_off",
                ..
            })
        ));
        assert!(matches!(
            edited("\"kind\": \"tet\"", "\"kind\": \"working_swap\""),
            Err(DomainError::DataInvalid {
                field: "days_off.kind",
                ..
            })
        ));
        assert!(matches!(
            edited("\"year\": 2026", "\"year\": 1800"),
            Err(DomainError::DataInvalid { field: "year", .. })
        ));
        assert!(matches!(
            edited("\"format\": 1", "\"format\": 7"),
            Err(DomainError::DataInvalid {
                field: "format",
                ..
            })
        ));
    }

    fn swap_day(date: &str, kind: &str) -> String {
        format!(
            r#""working_weekend_days": [{{"date": "{date}", "name_vi": "Làm bù",
                "name_en": "Make-up working day", "kind": "{kind}", "source": "test fixture"}}]"#
        )
    }

    #[test]
    fn swapped_working_saturday_counts_as_a_working_day() {
        let c = edited(
            "\"working_weekend_days\": []",
            &swap_day("2026-03-14", "working_swap"),
        )
        .unwrap();
        assert_eq!(c.is_working_day(d(2026, 3, 14)), Ok(true));
        assert_eq!(c.add_working_days(d(2026, 3, 13), 1), Ok(d(2026, 3, 14)));
        assert!(matches!(
            edited(
                "\"working_weekend_days\": []",
                &swap_day("2026-03-16", "working_swap")
            ),
            Err(DomainError::DataInvalid {
                field: "working_weekend_days",
                ..
            })
        ));
        assert!(matches!(
            edited(
                "\"working_weekend_days\": []",
                &swap_day("2026-03-14", "tet")
            ),
            Err(DomainError::DataInvalid {
                field: "working_weekend_days.kind",
                ..
            })
        ));
        assert!(matches!(
            edited(
                "\"working_weekend_days\": []",
                &swap_day("2026-04-26", "working_swap")
            ),
            Err(DomainError::DataInvalid {
                field: "working_weekend_days",
                ..
            })
        ));
    }

    #[test]
    fn a_loaded_year_replaces_the_embedded_one() {
        let mut c = cal();
        let json = EMBEDDED[0].replacen(
            "\"working_weekend_days\": []",
            &swap_day("2026-03-14", "working_swap"),
            1,
        );
        assert_eq!(c.add_year_json(&json), Ok(2026));
        assert_eq!(c.is_working_day(d(2026, 3, 14)), Ok(true));
        let before = c.clone();
        assert!(c.add_year_json("{}").is_err());
        assert_eq!(c, before, "a failed load changes nothing");
    }
}
