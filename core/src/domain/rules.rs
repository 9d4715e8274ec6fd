//! Shared validation rules, limits and redaction helpers.
//!
//! Decisions:
//! - Lengths are counted in Unicode scalar values (`chars`), not bytes, so a Vietnamese name
//!   with many diacritics gets the same limit as an ASCII one.
//! - "Blank" means empty after trimming Unicode whitespace. A required field that is blank is
//!   `Required`; an optional field that is present but blank is `Blank`, because an empty string
//!   and an absent value must not both mean "unknown" (reports would count them differently).
//! - Single-line fields (names, references) refuse control characters; notes may hold line
//!   breaks and tabs but no other control characters.
//! - "The future" for a timestamp is `now + CLOCK_SKEW` (phone clocks drift); for a date it is
//!   after today in Vietnam (UTC+7, no daylight saving).
//! - Nothing here panics: date arithmetic is checked and falls back to a safe value.
//! - `Redacted` stands in for personal fields in hand-written `Debug` impls so that `{:?}` of a
//!   record can go to a log without names, numbers, addresses, notes or locations.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};

use super::{DomainError, ValidationContext};

/// Longest accepted name (person, facilitator, organisation), in characters.
pub const NAME_MAX: usize = 200;
/// Longest accepted narrative note, in characters.
pub const NOTE_MAX: usize = 10_000;
/// Longest accepted reference (form number, decision number, approval reference), in characters.
pub const REFERENCE_MAX: usize = 100;
/// Longest accepted address or contact line, in characters.
pub const ADDRESS_MAX: usize = 500;
/// Most entries accepted in a list field (services, facilitators, caseload reviewed…).
pub const LIST_MAX: usize = 100;

/// Vietnam's offset from UTC, in hours (no daylight saving).
const VN_OFFSET_HOURS: i64 = 7;

/// The calendar date of `at` in Vietnam (UTC+7). Never panics: at the edge of chrono's range it
/// falls back to the UTC date.
#[must_use]
pub fn vn_date(at: DateTime<Utc>) -> NaiveDate {
    at.checked_add_signed(chrono::Duration::hours(VN_OFFSET_HOURS))
        .unwrap_or(at)
        .date_naive()
}

/// Today's date in Vietnam for a validation context.
pub(crate) fn today(ctx: &ValidationContext) -> NaiveDate {
    vn_date(ctx.now)
}

fn is_blank(value: &str) -> bool {
    value.trim().is_empty()
}

fn check_length(field: &'static str, value: &str, max: usize) -> Result<(), DomainError> {
    // `chars().nth(max)` stops early on huge inputs instead of counting them whole.
    if value.chars().nth(max).is_some() {
        Err(DomainError::TooLong { field, max })
    } else {
        Ok(())
    }
}

fn check_single_line(field: &'static str, value: &str) -> Result<(), DomainError> {
    if value.chars().any(char::is_control) {
        Err(DomainError::InvalidFormat {
            field,
            expected: "a single line of text",
        })
    } else {
        Ok(())
    }
}

fn check_note_characters(field: &'static str, value: &str) -> Result<(), DomainError> {
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        Err(DomainError::InvalidFormat {
            field,
            expected: "text without control characters other than line breaks and tabs",
        })
    } else {
        Ok(())
    }
}

/// A required single-line text (a name, a topic): non-blank, at most `max` characters, no
/// control characters.
pub(crate) fn required_line(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<(), DomainError> {
    if is_blank(value) {
        return Err(DomainError::Required { field });
    }
    check_length(field, value, max)?;
    check_single_line(field, value)
}

/// An optional single-line text: absent, or a valid required line.
pub(crate) fn optional_line(
    field: &'static str,
    value: Option<&str>,
    max: usize,
) -> Result<(), DomainError> {
    match value {
        None => Ok(()),
        Some(v) if is_blank(v) => Err(DomainError::Blank { field }),
        Some(v) => required_line(field, v, max),
    }
}

/// A required note: non-blank, at most [`NOTE_MAX`] characters.
pub(crate) fn required_note(field: &'static str, value: &str) -> Result<(), DomainError> {
    if is_blank(value) {
        return Err(DomainError::Required { field });
    }
    check_length(field, value, NOTE_MAX)?;
    check_note_characters(field, value)
}

/// A note that may be empty (an empty string means "nothing to say").
pub(crate) fn note(field: &'static str, value: &str) -> Result<(), DomainError> {
    check_length(field, value, NOTE_MAX)?;
    check_note_characters(field, value)
}

/// An optional note: absent, or a valid required note.
pub(crate) fn optional_note(field: &'static str, value: Option<&str>) -> Result<(), DomainError> {
    match value {
        None => Ok(()),
        Some(v) if is_blank(v) => Err(DomainError::Blank { field }),
        Some(v) => required_note(field, v),
    }
}

/// A timestamp that records a fact must not lie beyond `now + CLOCK_SKEW`.
pub(crate) fn not_in_future(
    field: &'static str,
    at: DateTime<Utc>,
    ctx: &ValidationContext,
) -> Result<(), DomainError> {
    let limit = ctx
        .now
        .checked_add_signed(ValidationContext::CLOCK_SKEW)
        .unwrap_or(ctx.now);
    if at > limit {
        Err(DomainError::InFuture { field })
    } else {
        Ok(())
    }
}

/// A date that records a fact must not be after today in Vietnam.
pub(crate) fn date_not_in_future(
    field: &'static str,
    date: NaiveDate,
    ctx: &ValidationContext,
) -> Result<(), DomainError> {
    if date > today(ctx) {
        Err(DomainError::InFuture { field })
    } else {
        Ok(())
    }
}

/// An optional fact date must not be after today.
pub(crate) fn optional_date_not_in_future(
    field: &'static str,
    date: Option<NaiveDate>,
    ctx: &ValidationContext,
) -> Result<(), DomainError> {
    date.map_or(Ok(()), |d| date_not_in_future(field, d, ctx))
}

/// `later` must not be before `earlier` (equal is fine). Absent dates are not compared.
pub(crate) fn in_order(
    earlier_field: &'static str,
    earlier: Option<NaiveDate>,
    later_field: &'static str,
    later: Option<NaiveDate>,
) -> Result<(), DomainError> {
    match (earlier, later) {
        (Some(e), Some(l)) if l < e => Err(DomainError::DateOrder {
            earlier: earlier_field,
            later: later_field,
        }),
        _ => Ok(()),
    }
}

/// A list of at most [`LIST_MAX`] entries, none repeated.
pub(crate) fn distinct_list<T: PartialEq>(
    field: &'static str,
    items: &[T],
) -> Result<(), DomainError> {
    if items.len() > LIST_MAX {
        return Err(DomainError::TooMany {
            field,
            max: LIST_MAX,
        });
    }
    for (i, item) in items.iter().enumerate() {
        if items[..i].contains(item) {
            return Err(DomainError::Duplicate { field });
        }
    }
    Ok(())
}

/// Stands in for a personal field in `Debug` output.
#[derive(Clone, Copy)]
pub(crate) struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `Some(<redacted>)` or `None`, so `Debug` still tells whether a field is filled in.
pub(crate) fn redact_opt<T>(value: &Option<T>) -> Option<Redacted> {
    value.as_ref().map(|_| Redacted)
}

/// Declares a fieldless enum whose variants have stable snake_case codes, used both as the serde
/// representation and as the clear `state` column. Codes are part of the stored format: never
/// rename one once shipped.
macro_rules! coded_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $code:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $code)] $variant ),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable code (also the serde representation).
            #[must_use]
            pub fn code(self) -> &'static str {
                match self {
                    $( $name::$variant => $code ),+
                }
            }

            /// The variant with this code, if any.
            #[must_use]
            pub fn from_code(code: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.code() == code)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}

pub(crate) use coded_enum;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ctx() -> ValidationContext {
        ValidationContext {
            now: "2026-03-10T03:00:00Z".parse().unwrap_or_default(),
        }
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        let name: String = "ễ".repeat(NAME_MAX);
        assert_eq!(required_line("full_name", &name, NAME_MAX), Ok(()));
        let longer = format!("{name}a");
        assert_eq!(
            required_line("full_name", &longer, NAME_MAX),
            Err(DomainError::TooLong {
                field: "full_name",
                max: NAME_MAX
            })
        );
    }

    #[test]
    fn blank_required_and_blank_optional_are_told_apart() {
        assert_eq!(
            required_line("full_name", " \t", NAME_MAX),
            Err(DomainError::Required { field: "full_name" })
        );
        assert_eq!(
            optional_line("address", Some("  "), NAME_MAX),
            Err(DomainError::Blank { field: "address" })
        );
        assert_eq!(optional_line("address", None, NAME_MAX), Ok(()));
        assert_eq!(
            optional_note("note", Some("")),
            Err(DomainError::Blank { field: "note" })
        );
    }

    #[test]
    fn lines_refuse_control_characters_and_notes_keep_line_breaks() {
        assert!(matches!(
            required_line("topic", "a\nb", NAME_MAX),
            Err(DomainError::InvalidFormat { field: "topic", .. })
        ));
        assert_eq!(
            required_note("observations", "line one\nline two\ttab"),
            Ok(())
        );
        assert!(matches!(
            required_note("observations", "bell\u{7}"),
            Err(DomainError::InvalidFormat {
                field: "observations",
                ..
            })
        ));
    }

    #[test]
    fn future_allows_clock_skew_but_not_more() {
        let c = ctx();
        let inside = c.now + chrono::Duration::minutes(4);
        let outside = c.now + chrono::Duration::minutes(6);
        assert_eq!(not_in_future("at", inside, &c), Ok(()));
        assert_eq!(
            not_in_future("at", outside, &c),
            Err(DomainError::InFuture { field: "at" })
        );
    }

    #[test]
    fn vietnam_date_is_utc_plus_seven() {
        let late_utc: DateTime<Utc> = "2026-03-09T18:30:00Z".parse().unwrap_or_default();
        assert_eq!(
            vn_date(late_utc),
            NaiveDate::from_ymd_opt(2026, 3, 10).unwrap_or_default()
        );
        assert_eq!(
            vn_date(DateTime::<Utc>::MAX_UTC),
            DateTime::<Utc>::MAX_UTC.date_naive()
        );
    }

    #[test]
    fn lists_refuse_duplicates_and_overlong() {
        assert_eq!(
            distinct_list("services", &[1, 2, 1]),
            Err(DomainError::Duplicate { field: "services" })
        );
        let many: Vec<u32> = (0..=u32::try_from(LIST_MAX).unwrap_or(100)).collect();
        assert_eq!(
            distinct_list("services", &many),
            Err(DomainError::TooMany {
                field: "services",
                max: LIST_MAX
            })
        );
    }

    #[test]
    fn redacted_debug_hides_the_value() {
        assert_eq!(
            format!("{:?}", redact_opt(&Some("secret"))),
            "Some(<redacted>)"
        );
        assert_eq!(format!("{:?}", redact_opt::<String>(&None)), "None");
    }
}
