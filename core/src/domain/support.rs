//! Referrals to services and the support given (Decree 116 Art. 79(2)).
//!
//! Decisions:
//! - A referral's status machine is `sent → accepted | declined`, `accepted → completed |
//!   declined`; each change records the day it happened (`status_on`), which may not precede
//!   the day the referral was sent.
//! - Amounts are whole VND in an `i64` (no fractional đồng; `i64` holds any realistic sum).
//!   Negative amounts are refused; loans and cash support need an amount, other support may be
//!   0 (in kind). Amounts above 10 billion VND are refused as typing mistakes.
//! - Where a person was referred (an HIV clinic, an OST clinic) is health information, so
//!   `Debug` redacts the target, the organisation and notes.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::rules::{
    NAME_MAX, REFERENCE_MAX, Redacted, coded_enum, date_not_in_future, in_order,
    optional_date_not_in_future, optional_line, optional_note, redact_opt,
};
use super::{DomainError, Id, Record, RecordKind, Scope, ValidationContext};

coded_enum! {
    /// Where a person is referred.
    pub enum ReferralTarget {
        /// Methadone / OST clinic.
        OstClinic => "ost_clinic",
        /// HIV care.
        HivCare => "hiv_care",
        /// Harm-reduction services.
        HarmReduction => "harm_reduction",
        /// Voluntary rehab facility (including fee-paying).
        RehabFacility => "rehab_facility",
        /// Vocational training centre.
        VocationalCentre => "vocational_centre",
        /// Job centre.
        JobCentre => "job_centre",
        /// Loan (e.g. National Employment Fund).
        Loan => "loan",
        /// School.
        School => "school",
        /// Health facility.
        HealthFacility => "health_facility",
    }
}

coded_enum! {
    /// Where a referral stands.
    pub enum ReferralStatus {
        /// Sent to the service.
        Sent => "sent",
        /// Accepted by the service.
        Accepted => "accepted",
        /// The service was delivered.
        Completed => "completed",
        /// Declined (by the service or the person).
        Declined => "declined",
    }
}

impl ReferralStatus {
    /// Whether the machine allows `self → to`.
    #[must_use]
    pub fn can_become(self, to: ReferralStatus) -> bool {
        matches!(
            (self, to),
            (
                ReferralStatus::Sent,
                ReferralStatus::Accepted | ReferralStatus::Declined
            ) | (
                ReferralStatus::Accepted,
                ReferralStatus::Completed | ReferralStatus::Declined
            )
        )
    }
}

/// A referral of a person to a service.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Referral {
    /// Record id.
    pub id: Id,
    /// The person.
    pub person: Id,
    /// The episode, if any.
    #[serde(default)]
    pub episode: Option<Id>,
    /// Kind of service.
    pub to: ReferralTarget,
    /// The receiving organisation.
    #[serde(default)]
    pub organisation: Option<String>,
    /// Day sent.
    pub sent_on: NaiveDate,
    /// Where it stands.
    pub status: ReferralStatus,
    /// Day of the latest status change.
    #[serde(default)]
    pub status_on: Option<NaiveDate>,
    /// Note.
    #[serde(default)]
    pub note: Option<String>,
}

impl Referral {
    /// A referral sent on `sent_on`.
    #[must_use]
    pub fn new(person: Id, to: ReferralTarget, sent_on: NaiveDate) -> Self {
        Self {
            id: Id::new(),
            person,
            episode: None,
            to,
            organisation: None,
            sent_on,
            status: ReferralStatus::Sent,
            status_on: None,
            note: None,
        }
    }

    /// Moves the status along the machine on `on`. Nothing changes on error.
    ///
    /// # Errors
    /// `InvalidTransition` for a change the machine does not allow; `DateOrder` if `on` is
    /// before the referral was sent.
    pub fn transition(&mut self, to: ReferralStatus, on: NaiveDate) -> Result<(), DomainError> {
        if !self.status.can_become(to) {
            return Err(DomainError::InvalidTransition {
                from: self.status.code(),
                to: to.code(),
            });
        }
        in_order("sent_on", Some(self.sent_on), "status_on", Some(on))?;
        self.status = to;
        self.status_on = Some(on);
        Ok(())
    }
}

impl Record for Referral {
    const KIND: RecordKind = RecordKind::Referral;

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
        Some(self.sent_on)
    }

    fn state(&self) -> Option<&'static str> {
        Some(self.status.code())
    }

    fn validate(&self, ctx: &ValidationContext) -> Result<(), DomainError> {
        date_not_in_future("sent_on", self.sent_on, ctx)?;
        if self.status == ReferralStatus::Sent && self.status_on.is_some() {
            return Err(DomainError::NotApplicable { field: "status_on" });
        }
        optional_date_not_in_future("status_on", self.status_on, ctx)?;
        in_order("sent_on", Some(self.sent_on), "status_on", self.status_on)?;
        optional_line("organisation", self.organisation.as_deref(), NAME_MAX)?;
        optional_note("note", self.note.as_deref())
    }
}

impl fmt::Debug for Referral {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Referral")
            .field("id", &self.id)
            .field("person", &self.person)
            .field("episode", &self.episode)
            .field("to", &Redacted)
            .field("organisation", &redact_opt(&self.organisation))
            .field("sent_on", &self.sent_on)
            .field("status", &self.status)
            .field("status_on", &self.status_on)
            .field("note", &redact_opt(&self.note))
            .finish()
    }
}

coded_enum! {
    /// Kind of support given.
    pub enum BenefitKind {
        /// Vocational training.
        VocationalTraining => "vocational_training",
        /// Job referral or placement.
        JobReferral => "job_referral",
        /// Loan.
        Loan => "loan",
        /// Cash support.
        CashSupport => "cash_support",
        /// Schooling.
        Schooling => "schooling",
        /// Help with papers.
        PapersHelp => "papers_help",
    }
}

impl BenefitKind {
    /// Whether this kind of support is money and so needs an amount.
    #[must_use]
    pub fn is_monetary(self) -> bool {
        matches!(self, BenefitKind::Loan | BenefitKind::CashSupport)
    }
}

/// Largest accepted amount, in VND.
pub const MAX_AMOUNT_VND: i64 = 10_000_000_000;

/// Support given to a person.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupportBenefit {
    /// Record id.
    pub id: Id,
    /// The person.
    pub person: Id,
    /// The episode, if any.
    #[serde(default)]
    pub episode: Option<Id>,
    /// Kind of support.
    pub kind: BenefitKind,
    /// Amount in VND (0 for support in kind).
    pub amount_vnd: i64,
    /// Day given.
    pub on: NaiveDate,
    /// Reference of the approval (decision number).
    #[serde(default)]
    pub approval_ref: Option<String>,
    /// Note.
    #[serde(default)]
    pub note: Option<String>,
}

impl SupportBenefit {
    /// Support of `kind` worth `amount_vnd`, given on `on`.
    #[must_use]
    pub fn new(person: Id, kind: BenefitKind, amount_vnd: i64, on: NaiveDate) -> Self {
        Self {
            id: Id::new(),
            person,
            episode: None,
            kind,
            amount_vnd,
            on,
            approval_ref: None,
            note: None,
        }
    }
}

impl Record for SupportBenefit {
    const KIND: RecordKind = RecordKind::SupportBenefit;

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
        Some(self.on)
    }

    fn validate(&self, ctx: &ValidationContext) -> Result<(), DomainError> {
        if self.amount_vnd < 0 {
            return Err(DomainError::NegativeAmount {
                field: "amount_vnd",
            });
        }
        if self.amount_vnd > MAX_AMOUNT_VND {
            return Err(DomainError::OutOfRange {
                field: "amount_vnd",
                expected: "at most 10,000,000,000 VND",
            });
        }
        if self.amount_vnd == 0 && self.kind.is_monetary() {
            return Err(DomainError::Required {
                field: "amount_vnd",
            });
        }
        date_not_in_future("on", self.on, ctx)?;
        optional_line("approval_ref", self.approval_ref.as_deref(), REFERENCE_MAX)?;
        optional_note("note", self.note.as_deref())
    }
}

impl fmt::Debug for SupportBenefit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupportBenefit")
            .field("id", &self.id)
            .field("person", &self.person)
            .field("episode", &self.episode)
            .field("kind", &self.kind)
            .field("amount_vnd", &self.amount_vnd)
            .field("on", &self.on)
            .field("approval_ref", &self.approval_ref)
            .field("note", &redact_opt(&self.note))
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::testutil::{ctx, d, round_trip};

    #[test]
    fn referral_follows_its_machine_with_dates() {
        let c = ctx();
        let mut r = Referral::new(Id::new(), ReferralTarget::OstClinic, d(2026, 3, 2));
        assert_eq!(r.validate(&c), Ok(()));
        assert_eq!(r.state(), Some("sent"));
        assert_eq!(
            r.transition(ReferralStatus::Completed, d(2026, 3, 5)),
            Err(DomainError::InvalidTransition {
                from: "sent",
                to: "completed"
            })
        );
        assert_eq!(
            r.transition(ReferralStatus::Accepted, d(2026, 3, 1)),
            Err(DomainError::DateOrder {
                earlier: "sent_on",
                later: "status_on"
            })
        );
        assert_eq!(r.status, ReferralStatus::Sent);
        r.transition(ReferralStatus::Accepted, d(2026, 3, 3))
            .unwrap();
        r.transition(ReferralStatus::Completed, d(2026, 3, 9))
            .unwrap();
        assert_eq!(r.validate(&c), Ok(()));
        round_trip(&r);
        assert!(
            r.transition(ReferralStatus::Declined, d(2026, 3, 9))
                .is_err()
        );
        r.organisation = Some("Cơ sở điều trị Methadone".into());
        assert!(!format!("{r:?}").contains("Methadone"));
        assert!(!format!("{r:?}").contains("Ost"));
    }

    #[test]
    fn referral_dates_are_checked() {
        let c = ctx();
        let mut r = Referral::new(Id::new(), ReferralTarget::JobCentre, d(2026, 3, 12));
        assert_eq!(
            r.validate(&c),
            Err(DomainError::InFuture { field: "sent_on" })
        );
        r.sent_on = d(2026, 3, 2);
        r.status_on = Some(d(2026, 3, 3));
        assert_eq!(
            r.validate(&c),
            Err(DomainError::NotApplicable { field: "status_on" })
        );
        r.status = ReferralStatus::Declined;
        r.status_on = Some(d(2026, 3, 1));
        assert_eq!(
            r.validate(&c),
            Err(DomainError::DateOrder {
                earlier: "sent_on",
                later: "status_on"
            })
        );
        r.status_on = Some(d(2026, 3, 11));
        assert_eq!(
            r.validate(&c),
            Err(DomainError::InFuture { field: "status_on" })
        );
    }

    #[test]
    fn negative_amounts_are_refused() {
        let c = ctx();
        let mut b = SupportBenefit::new(
            Id::new(),
            BenefitKind::CashSupport,
            1_000_000,
            d(2026, 3, 2),
        );
        assert_eq!(b.validate(&c), Ok(()));
        round_trip(&b);
        b.amount_vnd = -1;
        assert_eq!(
            b.validate(&c),
            Err(DomainError::NegativeAmount {
                field: "amount_vnd"
            })
        );
        b.amount_vnd = i64::MIN;
        assert_eq!(
            b.validate(&c),
            Err(DomainError::NegativeAmount {
                field: "amount_vnd"
            })
        );
        b.amount_vnd = MAX_AMOUNT_VND + 1;
        assert!(matches!(
            b.validate(&c),
            Err(DomainError::OutOfRange {
                field: "amount_vnd",
                ..
            })
        ));
    }

    #[test]
    fn money_support_needs_an_amount_and_in_kind_support_does_not() {
        let c = ctx();
        let loan = SupportBenefit::new(Id::new(), BenefitKind::Loan, 0, d(2026, 3, 2));
        assert_eq!(
            loan.validate(&c),
            Err(DomainError::Required {
                field: "amount_vnd"
            })
        );
        let papers = SupportBenefit::new(Id::new(), BenefitKind::PapersHelp, 0, d(2026, 3, 2));
        assert_eq!(papers.validate(&c), Ok(()));
        let mut future = papers.clone();
        future.on = d(2026, 3, 11);
        assert_eq!(
            future.validate(&c),
            Err(DomainError::InFuture { field: "on" })
        );
        let mut noted = papers;
        noted.note = Some("Làm lại CCCD".into());
        assert!(!format!("{noted:?}").contains("CCCD"));
    }
}
