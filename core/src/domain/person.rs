//! The person under management (DOMAIN.md "Person").
//!
//! Decisions:
//! - Identity fields are plain `String`s so the store and the bindings can use them directly;
//!   `Debug` is written by hand and prints none of them (nor the birth date), so a `{:?}` in a
//!   log or a panic message never leaks who the record is about.
//! - The ID number is the 12-digit citizen identity card number (CCCD), exactly 12 ASCII digits.
//!   Old 9-digit identity cards (CMND) stopped being valid at the end of 2024 and are refused.
//! - A phone number is plausible when it is an optional leading `+` followed by 9 to 15 digits;
//!   spaces, dots and hyphens between digits are accepted because that is how people write them
//!   ("0912 345 678"). Nothing stricter: carriers and formats change, and a volunteer offline
//!   must still be able to save a number.
//! - Birth dates before 1900 are refused as typing mistakes; birth dates in the future too.
//! - `Sex` parses English and Vietnamese words (with or without diacritics, any case, any Unicode
//!   normalisation form) because the CLI and imports receive both.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use super::rules::{
    ADDRESS_MAX, NAME_MAX, Redacted, coded_enum, date_not_in_future, optional_line, redact_opt,
    required_line,
};
use super::{DomainError, Id, Record, RecordKind, Scope, ValidationContext};

coded_enum! {
    /// Sex as recorded on the identity card (reports disaggregate by it).
    pub enum Sex {
        /// Nữ.
        Female => "female",
        /// Nam.
        Male => "male",
    }
}

impl FromStr for Sex {
    type Err = DomainError;

    /// Accepts `female`, `male`, `nữ`, `nu` and `nam`, ignoring case, surrounding whitespace and
    /// the Unicode normalisation form of the input.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let word: String = s.trim().nfc().collect::<String>().to_lowercase();
        match word.as_str() {
            "female" | "nữ" | "nu" => Ok(Sex::Female),
            "male" | "nam" => Ok(Sex::Male),
            _ => Err(DomainError::InvalidFormat {
                field: "sex",
                expected: "female, male, nữ or nam",
            }),
        }
    }
}

/// The earliest accepted birth date.
const EARLIEST_BIRTH: NaiveDate = match NaiveDate::from_ymd_opt(1900, 1, 1) {
    Some(date) => date,
    None => NaiveDate::MIN,
};

/// A person with a management file (or being considered for one).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// Record id.
    pub id: Id,
    /// Full name as on the identity card.
    pub full_name: String,
    /// Date of birth.
    pub birth_date: NaiveDate,
    /// Sex.
    pub sex: Sex,
    /// Citizen identity card number (CCCD, 12 digits).
    #[serde(default)]
    pub id_number: Option<String>,
    /// Phone number.
    #[serde(default)]
    pub phone: Option<String>,
    /// Residence (village, street, house number).
    #[serde(default)]
    pub address: Option<String>,
    /// Family contact (name and phone of a relative).
    #[serde(default)]
    pub family_contact: Option<String>,
    /// Commune of residence (org unit id).
    #[serde(default)]
    pub commune: Option<Id>,
}

impl Person {
    /// A person with a fresh id and only the required fields.
    #[must_use]
    pub fn new(full_name: impl Into<String>, birth_date: NaiveDate, sex: Sex) -> Self {
        Self {
            id: Id::new(),
            full_name: full_name.into(),
            birth_date,
            sex,
            id_number: None,
            phone: None,
            address: None,
            family_contact: None,
            commune: None,
        }
    }

    /// Age in whole years on `on` (0 before the first birthday; 0 if `on` precedes the birth).
    #[must_use]
    pub fn age_on(&self, on: NaiveDate) -> u32 {
        on.years_since(self.birth_date).unwrap_or(0)
    }
}

/// Checks a CCCD number: exactly 12 ASCII digits.
pub(crate) fn check_id_number(value: &str) -> Result<(), DomainError> {
    if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(DomainError::InvalidFormat {
            field: "id_number",
            expected: "12 digits (CCCD)",
        })
    }
}

/// Checks a phone number: optional leading `+`, then 9 to 15 digits, with optional single
/// spaces, dots or hyphens between digits.
pub(crate) fn check_phone(field: &'static str, value: &str) -> Result<(), DomainError> {
    let bad = DomainError::InvalidFormat {
        field,
        expected: "9 to 15 digits, optionally after a + and separated by spaces, dots or hyphens",
    };
    let body = value.strip_prefix('+').unwrap_or(value);
    let mut digits = 0usize;
    let mut previous_was_digit = false;
    for c in body.chars() {
        if c.is_ascii_digit() {
            digits += 1;
            previous_was_digit = true;
        } else if matches!(c, ' ' | '.' | '-') && previous_was_digit {
            previous_was_digit = false;
        } else {
            return Err(bad);
        }
    }
    if previous_was_digit && (9..=15).contains(&digits) {
        Ok(())
    } else {
        Err(bad)
    }
}

impl Record for Person {
    const KIND: RecordKind = RecordKind::Person;

    fn id(&self) -> Id {
        self.id
    }

    fn scope(&self) -> Scope {
        Scope::Person(self.id)
    }

    fn subject(&self) -> Option<Id> {
        Some(self.id)
    }

    /// No date of a person goes into a clear column (the birth date is identifying).
    fn day(&self) -> Option<NaiveDate> {
        None
    }

    fn validate(&self, ctx: &ValidationContext) -> Result<(), DomainError> {
        required_line("full_name", &self.full_name, NAME_MAX)?;
        date_not_in_future("birth_date", self.birth_date, ctx)?;
        if self.birth_date < EARLIEST_BIRTH {
            return Err(DomainError::OutOfRange {
                field: "birth_date",
                expected: "on or after 1900-01-01",
            });
        }
        if let Some(number) = &self.id_number {
            check_id_number(number)?;
        }
        if let Some(phone) = &self.phone {
            check_phone("phone", phone)?;
        }
        optional_line("address", self.address.as_deref(), ADDRESS_MAX)?;
        optional_line(
            "family_contact",
            self.family_contact.as_deref(),
            ADDRESS_MAX,
        )?;
        Ok(())
    }
}

impl fmt::Debug for Person {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Person")
            .field("id", &self.id)
            .field("full_name", &Redacted)
            .field("birth_date", &Redacted)
            .field("sex", &self.sex)
            .field("id_number", &redact_opt(&self.id_number))
            .field("phone", &redact_opt(&self.phone))
            .field("address", &redact_opt(&self.address))
            .field("family_contact", &redact_opt(&self.family_contact))
            .field("commune", &self.commune)
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::testutil::{ctx, d, round_trip};

    fn person() -> Person {
        let mut p = Person::new("Nguyễn Văn An", d(1990, 5, 17), Sex::Male);
        p.id_number = Some("001090012345".into());
        p.phone = Some("0912 345 678".into());
        p.address = Some("Thôn 3".into());
        p.family_contact = Some("Mẹ: 0987654321".into());
        p
    }

    #[test]
    fn complete_person_is_valid_and_round_trips() {
        let p = person();
        assert_eq!(p.validate(&ctx()), Ok(()));
        round_trip(&p);
        assert_eq!(p.scope(), Scope::Person(p.id));
        assert_eq!(p.subject(), Some(p.id));
        assert_eq!(p.day(), None);
    }

    #[test]
    fn sex_parses_english_and_vietnamese_in_any_case_and_form() {
        for (text, sex) in [
            ("female", Sex::Female),
            ("FEMALE", Sex::Female),
            (" Nữ ", Sex::Female),
            ("NỮ", Sex::Female),
            ("nu\u{31b}\u{303}", Sex::Female), // decomposed "nữ"
            ("nu", Sex::Female),
            ("Male", Sex::Male),
            ("Nam", Sex::Male),
        ] {
            assert_eq!(text.parse::<Sex>(), Ok(sex), "{text}");
        }
        assert!(matches!(
            "x".parse::<Sex>(),
            Err(DomainError::InvalidFormat { field: "sex", .. })
        ));
        assert_eq!(Sex::Female.to_string(), "female");
        assert_eq!(serde_json::to_string(&Sex::Male).unwrap(), "\"male\"");
    }

    #[test]
    fn name_is_required_and_limited() {
        let mut p = person();
        p.full_name = "   ".into();
        assert_eq!(
            p.validate(&ctx()),
            Err(DomainError::Required { field: "full_name" })
        );
        p.full_name = "a".repeat(NAME_MAX + 1);
        assert_eq!(
            p.validate(&ctx()),
            Err(DomainError::TooLong {
                field: "full_name",
                max: NAME_MAX
            })
        );
    }

    #[test]
    fn birth_date_in_future_or_before_1900_is_refused() {
        let mut p = person();
        p.birth_date = d(2026, 3, 11);
        assert_eq!(
            p.validate(&ctx()),
            Err(DomainError::InFuture {
                field: "birth_date"
            })
        );
        p.birth_date = d(1899, 12, 31);
        assert!(matches!(
            p.validate(&ctx()),
            Err(DomainError::OutOfRange {
                field: "birth_date",
                ..
            })
        ));
        p.birth_date = d(1900, 1, 1);
        assert_eq!(p.validate(&ctx()), Ok(()));
    }

    #[test]
    fn id_number_must_be_twelve_digits() {
        let mut p = person();
        for bad in [
            "12345678901",
            "1234567890123",
            "12345678901a",
            "123456 789012",
            "０01090012345",
        ] {
            p.id_number = Some(bad.into());
            assert!(
                matches!(
                    p.validate(&ctx()),
                    Err(DomainError::InvalidFormat {
                        field: "id_number",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn phone_must_be_plausible() {
        let mut p = person();
        for good in [
            "0912345678",
            "+84912345678",
            "0912 345 678",
            "091.234.5678",
            "024-3825-1234",
        ] {
            p.phone = Some(good.into());
            assert_eq!(p.validate(&ctx()), Ok(()), "{good}");
        }
        for bad in [
            "12345678",
            "+1234567890123456",
            "09123abc45",
            "",
            "+",
            " 0912345678",
            "0912  345678",
            "0912345678-",
        ] {
            p.phone = Some(bad.into());
            assert!(
                matches!(
                    p.validate(&ctx()),
                    Err(DomainError::InvalidFormat { field: "phone", .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn blank_or_multiline_address_is_refused() {
        let mut p = person();
        p.address = Some(" ".into());
        assert_eq!(
            p.validate(&ctx()),
            Err(DomainError::Blank { field: "address" })
        );
        p.address = None;
        p.family_contact = Some("a\nb".into());
        assert!(matches!(
            p.validate(&ctx()),
            Err(DomainError::InvalidFormat {
                field: "family_contact",
                ..
            })
        ));
    }

    #[test]
    fn debug_prints_no_personal_data() {
        let p = person();
        let shown = format!("{p:?}");
        for secret in ["Nguyễn", "001090012345", "0912", "Thôn", "Mẹ", "1990"] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
        assert!(shown.contains(&p.id.to_string()));
    }

    #[test]
    fn age_is_whole_years() {
        let p = person();
        assert_eq!(p.age_on(d(2026, 5, 16)), 35);
        assert_eq!(p.age_on(d(2026, 5, 17)), 36);
        assert_eq!(p.age_on(d(1980, 1, 1)), 0);
    }
}
