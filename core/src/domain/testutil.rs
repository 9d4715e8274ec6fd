//! Helpers shared by the domain's unit and property tests.

use chrono::{DateTime, NaiveDate, Utc};

use super::ValidationContext;

/// A calendar date; panics on an impossible one (tests only).
#[allow(clippy::unwrap_used)]
pub(crate) fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

/// A UTC timestamp from RFC 3339 text (tests only).
#[allow(clippy::unwrap_used)]
pub(crate) fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// A fixed "now": 2026-03-10 10:00 in Vietnam.
pub(crate) fn ctx() -> ValidationContext {
    ValidationContext {
        now: t("2026-03-10T03:00:00Z"),
    }
}

/// Serialises and parses back, asserting equality.
#[allow(clippy::unwrap_used)]
pub(crate) fn round_trip<T>(value: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let json = serde_json::to_string(value).unwrap();
    let back: T = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, value);
}
