//! Parsers for values a person types (the `donghanh` CLI's arguments): ids, dates, instants
//! and sex.
//!
//! They live in the core rather than in the CLI binary so that the fuzz targets (`fuzz/`) can
//! drive exactly the code the CLI runs. Each answers bad input with one bilingual line that
//! never repeats what was typed (a name given to the wrong option must not be printed back).

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::{Id, Sex};

/// A record id (a UUID, surrounding whitespace ignored).
pub fn parse_id(s: &str) -> Result<Id, String> {
    s.parse()
        .map_err(|_| "not a valid id / mã không hợp lệ".to_owned())
}

/// A calendar date, exactly `YYYY-MM-DD`: four digits, two, two. chrono's `%Y` alone also
/// takes `+99999-01-01` and `2026-1-1`, which put a case 97,000 years ahead (found by the FFI
/// bad-argument table, issue 6).
pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    let shaped = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    shaped
        .then(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| "expected a date YYYY-MM-DD / cần ngày dạng YYYY-MM-DD".to_owned())
}

/// An instant in RFC 3339 (`2026-11-20T09:30:00+07:00`), as UTC.
pub fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| "expected an RFC 3339 time such as 2026-11-20T09:30:00+07:00".to_owned())
}

/// Sex as on the identity card: `female`, `male`, `nữ`, `nu` or `nam`.
pub fn parse_sex(s: &str) -> Result<Sex, String> {
    s.parse()
        .map_err(|_| "expected female|male (nữ|nam)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_is_exactly_four_two_two_digits() {
        assert_eq!(
            parse_date("2026-11-23"),
            Ok(NaiveDate::from_ymd_opt(2026, 11, 23).unwrap_or_default())
        );
        for bad in [
            "+99999-01-01",
            "2026-1-1",
            "2026-01-1",
            " 2026-01-01",
            "2026-01-01 ",
            "2026/01/01",
            "2026-02-30",
            "٢٠٢٦-٠١-٠١",
            "",
        ] {
            assert!(parse_date(bad).is_err(), "{bad:?}");
        }
    }
}
