//! Consent and the access log: the personal-data-protection records (DOMAIN.md "Personal
//! data"; Decree 13/2023, Law on Personal Data Protection in force 2026-01-01).
//!
//! Decisions:
//! - Every processing has a purpose and a legal basis. A basis of `consent` can be withdrawn;
//!   a basis of `legal_duty` (the management the law imposes) cannot, so withdrawing it is
//!   [`DomainError::NotApplicable`]. Consent is in force from the day given until (excluding)
//!   the day withdrawn.
//! - An access-log entry belongs to the acting user's scope (`Scope::User`), records *what*
//!   was accessed as a scope and optionally a record, and has the person as `subject` when the
//!   scope is a person's, so a data-subject access request can list who saw their file.
//! - Exports and disclosures need a purpose, and a disclosure needs its recipient (disclose
//!   only to competent persons, Decree 116 Art. 4(2)). Purposes and recipients are redacted from
//!   `Debug`: a break-the-glass reason may describe the case.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::rules::{
    NAME_MAX, REFERENCE_MAX, coded_enum, date_not_in_future, in_order, not_in_future,
    optional_date_not_in_future, optional_line, optional_note, redact_opt, required_line, vn_date,
};
use super::{DomainError, Id, Record, RecordKind, Scope, ValidationContext};

coded_enum! {
    /// The legal basis of a processing.
    pub enum ConsentBasis {
        /// The person's consent.
        Consent => "consent",
        /// A duty imposed by law.
        LegalDuty => "legal_duty",
    }
}

/// A purpose of processing and its legal basis, for one person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    /// Record id.
    pub id: Id,
    /// The person.
    pub person: Id,
    /// The purpose (e.g. "share with the job centre").
    pub purpose: String,
    /// The legal basis.
    pub basis: ConsentBasis,
    /// Day given (or the duty started).
    pub given_on: NaiveDate,
    /// Day withdrawn.
    #[serde(default)]
    pub withdrawn_on: Option<NaiveDate>,
    /// Reference of the signed form or legal text.
    #[serde(default)]
    pub evidence_ref: Option<String>,
}

impl ConsentRecord {
    /// A consent or legal duty in force from `given_on`.
    #[must_use]
    pub fn new(
        person: Id,
        purpose: impl Into<String>,
        basis: ConsentBasis,
        given_on: NaiveDate,
    ) -> Self {
        Self {
            id: Id::new(),
            person,
            purpose: purpose.into(),
            basis,
            given_on,
            withdrawn_on: None,
            evidence_ref: None,
        }
    }

    /// Withdraws consent on `on`. Nothing changes on error.
    ///
    /// # Errors
    /// `NotApplicable` for a legal duty; `InvalidTransition` if already withdrawn; `DateOrder`
    /// if `on` is before the consent was given.
    pub fn withdraw(&mut self, on: NaiveDate) -> Result<(), DomainError> {
        if self.basis == ConsentBasis::LegalDuty {
            return Err(DomainError::NotApplicable {
                field: "withdrawn_on",
            });
        }
        if self.withdrawn_on.is_some() {
            return Err(DomainError::InvalidTransition {
                from: "withdrawn",
                to: "withdrawn",
            });
        }
        in_order("given_on", Some(self.given_on), "withdrawn_on", Some(on))?;
        self.withdrawn_on = Some(on);
        Ok(())
    }

    /// Whether the basis holds on `date`.
    #[must_use]
    pub fn is_in_force_on(&self, date: NaiveDate) -> bool {
        self.given_on <= date && self.withdrawn_on.is_none_or(|w| date < w)
    }
}

impl Record for ConsentRecord {
    const KIND: RecordKind = RecordKind::Consent;

    fn id(&self) -> Id {
        self.id
    }

    fn scope(&self) -> Scope {
        Scope::Person(self.person)
    }

    fn subject(&self) -> Option<Id> {
        Some(self.person)
    }

    fn day(&self) -> Option<NaiveDate> {
        Some(self.given_on)
    }

    fn state(&self) -> Option<&'static str> {
        Some(if self.withdrawn_on.is_some() {
            "withdrawn"
        } else {
            "given"
        })
    }

    fn validate(&self, ctx: &ValidationContext) -> Result<(), DomainError> {
        required_line("purpose", &self.purpose, NAME_MAX)?;
        date_not_in_future("given_on", self.given_on, ctx)?;
        if self.basis == ConsentBasis::LegalDuty && self.withdrawn_on.is_some() {
            return Err(DomainError::NotApplicable {
                field: "withdrawn_on",
            });
        }
        optional_date_not_in_future("withdrawn_on", self.withdrawn_on, ctx)?;
        in_order(
            "given_on",
            Some(self.given_on),
            "withdrawn_on",
            self.withdrawn_on,
        )?;
        optional_line("evidence_ref", self.evidence_ref.as_deref(), REFERENCE_MAX)
    }
}

coded_enum! {
    /// What a user did with personal data.
    pub enum AccessAction {
        /// Looked at it.
        View => "view",
        /// Changed it.
        Edit => "edit",
        /// Exported it (file, print).
        Export => "export",
        /// Received it on a device by sync.
        SyncDown => "sync_down",
        /// Disclosed it to someone outside the system.
        Disclose => "disclose",
    }
}

/// One access to personal data.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessLog {
    /// Record id.
    pub id: Id,
    /// Who (user; also the record's scope).
    pub user: Id,
    /// What was accessed.
    pub target: Scope,
    /// The record, when one record was accessed.
    #[serde(default)]
    pub record: Option<Id>,
    /// The record's kind.
    #[serde(default)]
    pub record_kind: Option<RecordKind>,
    /// What was done.
    pub action: AccessAction,
    /// When.
    pub at: DateTime<Utc>,
    /// On which device.
    #[serde(default)]
    pub device: Option<Id>,
    /// Why.
    #[serde(default)]
    pub purpose: Option<String>,
    /// To whom, for a disclosure.
    #[serde(default)]
    pub disclosed_to: Option<String>,
}

impl AccessLog {
    /// An access by `user` to `target`.
    #[must_use]
    pub fn new(user: Id, target: Scope, action: AccessAction, at: DateTime<Utc>) -> Self {
        Self {
            id: Id::new(),
            user,
            target,
            record: None,
            record_kind: None,
            action,
            at,
            device: None,
            purpose: None,
            disclosed_to: None,
        }
    }
}

impl Record for AccessLog {
    const KIND: RecordKind = RecordKind::AccessLog;

    fn id(&self) -> Id {
        self.id
    }

    fn scope(&self) -> Scope {
        Scope::User(self.user)
    }

    fn subject(&self) -> Option<Id> {
        match self.target {
            Scope::Person(person) => Some(person),
            Scope::Point(_) | Scope::Team(_) | Scope::User(_) => None,
        }
    }

    fn day(&self) -> Option<NaiveDate> {
        Some(vn_date(self.at))
    }

    fn validate(&self, ctx: &ValidationContext) -> Result<(), DomainError> {
        not_in_future("at", self.at, ctx)?;
        optional_note("purpose", self.purpose.as_deref())?;
        optional_line("disclosed_to", self.disclosed_to.as_deref(), NAME_MAX)?;
        if matches!(self.action, AccessAction::Export | AccessAction::Disclose)
            && self.purpose.is_none()
        {
            return Err(DomainError::Required { field: "purpose" });
        }
        match (self.action, &self.disclosed_to) {
            (AccessAction::Disclose, None) => Err(DomainError::Required {
                field: "disclosed_to",
            }),
            (action, Some(_)) if action != AccessAction::Disclose => {
                Err(DomainError::NotApplicable {
                    field: "disclosed_to",
                })
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessLog")
            .field("id", &self.id)
            .field("user", &self.user)
            .field("target", &self.target)
            .field("record", &self.record)
            .field("record_kind", &self.record_kind)
            .field("action", &self.action)
            .field("at", &self.at)
            .field("device", &self.device)
            .field("purpose", &redact_opt(&self.purpose))
            .field("disclosed_to", &redact_opt(&self.disclosed_to))
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::testutil::{ctx, d, round_trip, t};

    #[test]
    fn consent_can_be_withdrawn_once_and_legal_duty_never() {
        let c = ctx();
        let mut consent = ConsentRecord::new(
            Id::new(),
            "Chia sẻ với trung tâm việc làm",
            ConsentBasis::Consent,
            d(2026, 1, 5),
        );
        assert_eq!(consent.validate(&c), Ok(()));
        assert_eq!(consent.state(), Some("given"));
        assert!(consent.is_in_force_on(d(2026, 2, 1)));
        assert_eq!(
            consent.withdraw(d(2026, 1, 4)),
            Err(DomainError::DateOrder {
                earlier: "given_on",
                later: "withdrawn_on"
            })
        );
        consent.withdraw(d(2026, 2, 1)).unwrap();
        assert!(!consent.is_in_force_on(d(2026, 2, 1)));
        assert!(consent.is_in_force_on(d(2026, 1, 31)));
        assert_eq!(consent.state(), Some("withdrawn"));
        assert!(matches!(
            consent.withdraw(d(2026, 2, 2)),
            Err(DomainError::InvalidTransition { .. })
        ));
        round_trip(&consent);

        let mut duty = ConsentRecord::new(
            Id::new(),
            "Quản lý sau cai",
            ConsentBasis::LegalDuty,
            d(2026, 1, 5),
        );
        assert_eq!(
            duty.withdraw(d(2026, 2, 1)),
            Err(DomainError::NotApplicable {
                field: "withdrawn_on"
            })
        );
        duty.withdrawn_on = Some(d(2026, 2, 1));
        assert_eq!(
            duty.validate(&c),
            Err(DomainError::NotApplicable {
                field: "withdrawn_on"
            })
        );
    }

    #[test]
    fn consent_fields_are_checked() {
        let c = ctx();
        let mut consent = ConsentRecord::new(Id::new(), "", ConsentBasis::Consent, d(2026, 1, 5));
        assert_eq!(
            consent.validate(&c),
            Err(DomainError::Required { field: "purpose" })
        );
        consent.purpose = "p".into();
        consent.given_on = d(2026, 3, 11);
        assert_eq!(
            consent.validate(&c),
            Err(DomainError::InFuture { field: "given_on" })
        );
        consent.given_on = d(2026, 1, 5);
        consent.withdrawn_on = Some(d(2026, 1, 1));
        assert_eq!(
            consent.validate(&c),
            Err(DomainError::DateOrder {
                earlier: "given_on",
                later: "withdrawn_on"
            })
        );
    }

    #[test]
    fn disclosure_needs_purpose_and_recipient() {
        let c = ctx();
        let person = Id::new();
        let mut log = AccessLog::new(
            Id::new(),
            Scope::Person(person),
            AccessAction::View,
            t("2026-03-10T02:00:00Z"),
        );
        assert_eq!(log.validate(&c), Ok(()));
        assert_eq!(log.scope(), Scope::User(log.user));
        assert_eq!(log.subject(), Some(person));
        log.record_kind = Some(RecordKind::Visit);
        round_trip(&log);
        log.action = AccessAction::Disclose;
        assert_eq!(
            log.validate(&c),
            Err(DomainError::Required { field: "purpose" })
        );
        log.purpose = Some("Theo yêu cầu của Công an xã".into());
        assert_eq!(
            log.validate(&c),
            Err(DomainError::Required {
                field: "disclosed_to"
            })
        );
        log.disclosed_to = Some("Công an xã".into());
        assert_eq!(log.validate(&c), Ok(()));
        assert!(!format!("{log:?}").contains("Công an"));
        log.action = AccessAction::View;
        assert_eq!(
            log.validate(&c),
            Err(DomainError::NotApplicable {
                field: "disclosed_to"
            })
        );
        log.disclosed_to = None;
        log.at = t("2026-03-10T04:00:00Z");
        assert_eq!(log.validate(&c), Err(DomainError::InFuture { field: "at" }));
        let team_log = AccessLog::new(
            Id::new(),
            Scope::Team(Id::new()),
            AccessAction::SyncDown,
            c.now,
        );
        assert_eq!(team_log.subject(), None);
    }
}
