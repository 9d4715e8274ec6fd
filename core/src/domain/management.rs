//! The records around an episode: who helps the person ([`Assignment`]), absences
//! ([`AbsenceReport`]), moves to another commune ([`Transfer`]) and determined relapses
//! ([`RelapseEvent`]).
//!
//! Decisions:
//! - An assignment names a helper user, an organisation or a responsible family member (the
//!   chairman may assign any of them, Decree 116 Art. 79(3)); at least one is required. It is
//!   what puts a person on a volunteer's phone, so its dates are checked strictly.
//! - An absence is reported or not; only unreported absences move the planned end
//!   ([`super::Episode::planned_end`]). A reported absence may be announced ahead (a planned
//!   trip), an unreported one is a discovered fact and cannot start in the future.
//! - A transfer's legal deadline runs from the move; notifying before the move is allowed and
//!   counts as on time.
//! - A relapse is a legal determination: it needs the determining authority and the day it
//!   determined, not before the day the use was detected. A positive test or a suspicion noted
//!   on a visit is not a relapse.
//! - Free text (family member, reasons, notes, the authority) is redacted from `Debug`.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::calendar::Calendar;
use super::deadline::{DeadlineCheck, DeadlineKind, transfer_notice_deadline};
use super::legal::LegalParams;
use super::rules::{
    ADDRESS_MAX, NAME_MAX, REFERENCE_MAX, Redacted, coded_enum, date_not_in_future, in_order,
    optional_date_not_in_future, optional_line, optional_note, redact_opt, required_line,
};
use super::{DomainError, Id, Record, RecordKind, Scope, ValidationContext};

/// Who is assigned to educate and help a person during an episode (Decree 116 Art. 79(3)).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// Record id.
    pub id: Id,
    /// The person helped.
    pub person: Id,
    /// The episode.
    pub episode: Id,
    /// The helper, when a user of the system (volunteer, officer).
    #[serde(default)]
    pub helper: Option<Id>,
    /// The assigned organisation, when one is (e.g. a mass organisation's branch).
    #[serde(default)]
    pub organisation: Option<String>,
    /// The responsible family member (name and relation).
    #[serde(default)]
    pub family_member: Option<String>,
    /// First day of the assignment.
    pub from: NaiveDate,
    /// Last day of the assignment, when ended.
    #[serde(default)]
    pub to: Option<NaiveDate>,
    /// Who assigned (a user).
    #[serde(default)]
    pub assigned_by: Option<Id>,
    /// Reference of the assignment decision.
    #[serde(default)]
    pub decision_ref: Option<String>,
}

impl Assignment {
    /// An open-ended assignment of a helper user from `from`.
    #[must_use]
    pub fn new(person: Id, episode: Id, helper: Id, from: NaiveDate) -> Self {
        Self {
            id: Id::new(),
            person,
            episode,
            helper: Some(helper),
            organisation: None,
            family_member: None,
            from,
            to: None,
            assigned_by: None,
            decision_ref: None,
        }
    }

    /// Whether the assignment covers `date`.
    #[must_use]
    pub fn is_active_on(&self, date: NaiveDate) -> bool {
        self.from <= date && self.to.is_none_or(|to| date <= to)
    }
}

impl Record for Assignment {
    const KIND: RecordKind = RecordKind::Assignment;

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
        Some(self.from)
    }

    fn validate(&self, _ctx: &ValidationContext) -> Result<(), DomainError> {
        if self.helper.is_none() && self.organisation.is_none() && self.family_member.is_none() {
            return Err(DomainError::Required {
                field: "helper, organisation or family_member",
            });
        }
        optional_line("organisation", self.organisation.as_deref(), NAME_MAX)?;
        optional_line("family_member", self.family_member.as_deref(), ADDRESS_MAX)?;
        optional_line("decision_ref", self.decision_ref.as_deref(), REFERENCE_MAX)?;
        in_order("from", Some(self.from), "to", self.to)
    }
}

impl fmt::Debug for Assignment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Assignment")
            .field("id", &self.id)
            .field("person", &self.person)
            .field("episode", &self.episode)
            .field("helper", &self.helper)
            .field("organisation", &redact_opt(&self.organisation))
            .field("family_member", &redact_opt(&self.family_member))
            .field("from", &self.from)
            .field("to", &self.to)
            .field("assigned_by", &self.assigned_by)
            .field("decision_ref", &self.decision_ref)
            .finish()
    }
}

/// A period the person was away from their residence (Decree 116 Art. 79(1)(b)).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbsenceReport {
    /// Record id.
    pub id: Id,
    /// The person.
    pub person: Id,
    /// The episode whose clock the absence may move.
    pub episode: Id,
    /// First day away.
    pub from: NaiveDate,
    /// Last day away (inclusive).
    pub to: NaiveDate,
    /// Reason given or found.
    #[serde(default)]
    pub reason: Option<String>,
    /// Whether the person reported the absence as required.
    pub reported: bool,
    /// When it was reported.
    #[serde(default)]
    pub reported_on: Option<NaiveDate>,
}

impl AbsenceReport {
    /// An absence from `from` to `to` inclusive.
    #[must_use]
    pub fn new(person: Id, episode: Id, from: NaiveDate, to: NaiveDate, reported: bool) -> Self {
        Self {
            id: Id::new(),
            person,
            episode,
            from,
            to,
            reason: None,
            reported,
            reported_on: None,
        }
    }

    /// Number of days away (inclusive); 0 for a malformed period.
    #[must_use]
    pub fn days(&self) -> u64 {
        u64::try_from((self.to - self.from).num_days() + 1).unwrap_or(0)
    }
}

impl Record for AbsenceReport {
    const KIND: RecordKind = RecordKind::AbsenceReport;

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
        Some(self.from)
    }

    fn validate(&self, ctx: &ValidationContext) -> Result<(), DomainError> {
        in_order("from", Some(self.from), "to", Some(self.to))?;
        if !self.reported {
            if self.reported_on.is_some() {
                return Err(DomainError::NotApplicable {
                    field: "reported_on",
                });
            }
            date_not_in_future("from", self.from, ctx)?;
        }
        optional_date_not_in_future("reported_on", self.reported_on, ctx)?;
        optional_note("reason", self.reason.as_deref())
    }
}

impl fmt::Debug for AbsenceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbsenceReport")
            .field("id", &self.id)
            .field("person", &self.person)
            .field("episode", &self.episode)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("reason", &redact_opt(&self.reason))
            .field("reported", &self.reported)
            .field("reported_on", &self.reported_on)
            .finish()
    }
}

/// A move of the person to another commune (Law 73/2021 Art. 43(2), Form 53).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// Record id.
    pub id: Id,
    /// The person.
    pub person: Id,
    /// The episode continued in the new commune.
    #[serde(default)]
    pub episode: Option<Id>,
    /// The commune left (org unit).
    #[serde(default)]
    pub from_commune: Option<Id>,
    /// The commune moved to (org unit).
    pub to_commune: Id,
    /// Day of the move (starts the notice deadline).
    pub moved_on: NaiveDate,
    /// Day the move was notified.
    #[serde(default)]
    pub notified_on: Option<NaiveDate>,
    /// Reference of the notice (Form 53).
    #[serde(default)]
    pub notice_ref: Option<String>,
    /// Note.
    #[serde(default)]
    pub note: Option<String>,
}

impl Transfer {
    /// A move to `to_commune` on `moved_on`, not yet notified.
    #[must_use]
    pub fn new(person: Id, to_commune: Id, moved_on: NaiveDate) -> Self {
        Self {
            id: Id::new(),
            person,
            episode: None,
            from_commune: None,
            to_commune,
            moved_on,
            notified_on: None,
            notice_ref: None,
            note: None,
        }
    }

    /// The last day to notify the move.
    ///
    /// # Errors
    /// As [`crate::domain::deadline()`].
    pub fn notice_deadline(
        &self,
        calendar: &Calendar,
        params: &LegalParams,
    ) -> Result<NaiveDate, DomainError> {
        transfer_notice_deadline(self.moved_on, calendar, params)
    }

    /// Whether the move was (or still can be) notified in time.
    ///
    /// # Errors
    /// As [`crate::domain::deadline()`].
    pub fn deadline_check(
        &self,
        calendar: &Calendar,
        params: &LegalParams,
    ) -> Result<DeadlineCheck, DomainError> {
        DeadlineCheck::compute(
            DeadlineKind::TransferNotice,
            self.moved_on,
            self.notified_on,
            calendar,
            params,
        )
    }
}

impl Record for Transfer {
    const KIND: RecordKind = RecordKind::Transfer;

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
        Some(self.moved_on)
    }

    fn validate(&self, ctx: &ValidationContext) -> Result<(), DomainError> {
        if self.from_commune == Some(self.to_commune) {
            return Err(DomainError::Unchanged {
                field: "to_commune",
            });
        }
        optional_date_not_in_future("notified_on", self.notified_on, ctx)?;
        optional_line("notice_ref", self.notice_ref.as_deref(), REFERENCE_MAX)?;
        optional_note("note", self.note.as_deref())
    }
}

impl fmt::Debug for Transfer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transfer")
            .field("id", &self.id)
            .field("person", &self.person)
            .field("episode", &self.episode)
            .field("from_commune", &self.from_commune)
            .field("to_commune", &self.to_commune)
            .field("moved_on", &self.moved_on)
            .field("notified_on", &self.notified_on)
            .field("notice_ref", &self.notice_ref)
            .field("note", &redact_opt(&self.note))
            .finish()
    }
}

coded_enum! {
    /// What followed a determined relapse.
    pub enum RelapseOutcome {
        /// A compulsory-rehab file was started.
        CompulsoryRehabFile => "compulsory_rehab_file",
        /// The person entered voluntary rehab.
        VoluntaryRehab => "voluntary_rehab",
        /// The person started opioid substitution therapy.
        Ost => "ost",
        /// Something else (see the note).
        Other => "other",
    }
}

/// A relapse determined by a competent authority during an episode.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelapseEvent {
    /// Record id.
    pub id: Id,
    /// The person.
    pub person: Id,
    /// The episode during which it happened.
    pub episode: Id,
    /// Day the drug use was detected.
    pub detected_on: NaiveDate,
    /// The authority (health facility) that determined addiction.
    pub determined_by: String,
    /// Day of the determination.
    pub determined_on: NaiveDate,
    /// What followed.
    #[serde(default)]
    pub outcome: Option<RelapseOutcome>,
    /// Note.
    #[serde(default)]
    pub note: Option<String>,
}

impl RelapseEvent {
    /// A relapse detected on `detected_on` and determined by `determined_by` on
    /// `determined_on`.
    #[must_use]
    pub fn new(
        person: Id,
        episode: Id,
        detected_on: NaiveDate,
        determined_by: impl Into<String>,
        determined_on: NaiveDate,
    ) -> Self {
        Self {
            id: Id::new(),
            person,
            episode,
            detected_on,
            determined_by: determined_by.into(),
            determined_on,
            outcome: None,
            note: None,
        }
    }

    /// The determining authority is named.
    pub(crate) fn check_authority(&self) -> Result<(), DomainError> {
        if self.determined_by.trim().is_empty() {
            Err(DomainError::RelapseWithoutAuthority)
        } else {
            Ok(())
        }
    }
}

impl Record for RelapseEvent {
    const KIND: RecordKind = RecordKind::RelapseEvent;

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
        Some(self.determined_on)
    }

    fn validate(&self, ctx: &ValidationContext) -> Result<(), DomainError> {
        self.check_authority()?;
        required_line("determined_by", &self.determined_by, NAME_MAX)?;
        date_not_in_future("detected_on", self.detected_on, ctx)?;
        date_not_in_future("determined_on", self.determined_on, ctx)?;
        in_order(
            "detected_on",
            Some(self.detected_on),
            "determined_on",
            Some(self.determined_on),
        )?;
        optional_note("note", self.note.as_deref())
    }
}

impl fmt::Debug for RelapseEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelapseEvent")
            .field("id", &self.id)
            .field("person", &self.person)
            .field("episode", &self.episode)
            .field("detected_on", &self.detected_on)
            .field("determined_by", &Redacted)
            .field("determined_on", &self.determined_on)
            .field("outcome", &self.outcome)
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
    fn assignment_needs_someone_and_ordered_dates() {
        let c = ctx();
        let mut a = Assignment::new(Id::new(), Id::new(), Id::new(), d(2026, 1, 5));
        assert_eq!(a.validate(&c), Ok(()));
        round_trip(&a);
        assert!(a.is_active_on(d(2026, 1, 5)));
        assert!(!a.is_active_on(d(2026, 1, 4)));
        a.helper = None;
        assert_eq!(
            a.validate(&c),
            Err(DomainError::Required {
                field: "helper, organisation or family_member"
            })
        );
        a.family_member = Some("Mẹ — Trần Thị B".into());
        assert_eq!(a.validate(&c), Ok(()));
        a.to = Some(d(2026, 1, 4));
        assert_eq!(
            a.validate(&c),
            Err(DomainError::DateOrder {
                earlier: "from",
                later: "to"
            })
        );
        a.to = Some(d(2026, 2, 1));
        assert!(!a.is_active_on(d(2026, 2, 2)));
        a.organisation = Some("\t".into());
        assert_eq!(
            a.validate(&c),
            Err(DomainError::Blank {
                field: "organisation"
            })
        );
        assert!(!format!("{a:?}").contains("Trần"));
        assert_eq!(a.scope(), Scope::Person(a.person));
        assert_eq!(a.day(), Some(d(2026, 1, 5)));
    }

    #[test]
    fn absence_dates_and_report_rules() {
        let c = ctx();
        let mut a = AbsenceReport::new(Id::new(), Id::new(), d(2026, 2, 1), d(2026, 2, 10), false);
        assert_eq!(a.days(), 10);
        assert_eq!(a.validate(&c), Ok(()));
        round_trip(&a);
        a.to = d(2026, 1, 31);
        assert_eq!(
            a.validate(&c),
            Err(DomainError::DateOrder {
                earlier: "from",
                later: "to"
            })
        );
        assert_eq!(a.days(), 0);
        a.to = d(2026, 2, 10);
        a.reported_on = Some(d(2026, 2, 1));
        assert_eq!(
            a.validate(&c),
            Err(DomainError::NotApplicable {
                field: "reported_on"
            })
        );
        a.reported_on = None;
        a.from = d(2026, 3, 20);
        a.to = d(2026, 3, 25);
        assert_eq!(a.validate(&c), Err(DomainError::InFuture { field: "from" }));
        a.reported = true;
        a.reported_on = Some(d(2026, 3, 9));
        assert_eq!(
            a.validate(&c),
            Ok(()),
            "a reported absence may be announced ahead"
        );
        a.reported_on = Some(d(2026, 3, 11));
        assert_eq!(
            a.validate(&c),
            Err(DomainError::InFuture {
                field: "reported_on"
            })
        );
        a.reported_on = None;
        a.reason = Some("Đi làm ăn xa".into());
        assert_eq!(a.validate(&c), Ok(()));
        assert!(!format!("{a:?}").contains("làm"));
    }

    #[test]
    fn transfer_notice_deadline_is_five_working_days() {
        let c = ctx();
        let mut t = Transfer::new(Id::new(), Id::new(), d(2026, 3, 9));
        assert_eq!(t.validate(&c), Ok(()));
        round_trip(&t);
        let (cal, params) = (Calendar::embedded(), LegalParams::embedded());
        assert_eq!(t.notice_deadline(cal, params), Ok(d(2026, 3, 16)));
        t.notified_on = Some(d(2026, 3, 16));
        assert!(t.deadline_check(cal, params).unwrap().met);
        t.notified_on = Some(d(2026, 3, 17));
        assert!(!t.deadline_check(cal, params).unwrap().met);
        t.from_commune = Some(t.to_commune);
        assert_eq!(
            t.validate(&c),
            Err(DomainError::Unchanged {
                field: "to_commune"
            })
        );
        t.from_commune = None;
        t.notified_on = Some(d(2026, 4, 1));
        assert_eq!(
            t.validate(&c),
            Err(DomainError::InFuture {
                field: "notified_on"
            })
        );
        t.notified_on = None;
        t.note = Some("Chuyển về nhà vợ".into());
        assert!(!format!("{t:?}").contains("Chuyển"));
    }

    #[test]
    fn relapse_needs_authority_and_determination_after_detection() {
        let c = ctx();
        let mut r = RelapseEvent::new(
            Id::new(),
            Id::new(),
            d(2026, 2, 1),
            "Trung tâm Y tế",
            d(2026, 2, 3),
        );
        assert_eq!(r.validate(&c), Ok(()));
        round_trip(&r);
        assert_eq!(r.day(), Some(d(2026, 2, 3)));
        r.determined_by = "  ".into();
        assert_eq!(r.validate(&c), Err(DomainError::RelapseWithoutAuthority));
        r.determined_by = "Trung tâm Y tế".into();
        r.determined_on = d(2026, 1, 31);
        assert_eq!(
            r.validate(&c),
            Err(DomainError::DateOrder {
                earlier: "detected_on",
                later: "determined_on"
            })
        );
        r.determined_on = d(2026, 4, 1);
        assert_eq!(
            r.validate(&c),
            Err(DomainError::InFuture {
                field: "determined_on"
            })
        );
        r.detected_on = d(2026, 4, 1);
        assert_eq!(
            r.validate(&c),
            Err(DomainError::InFuture {
                field: "detected_on"
            })
        );
        r.detected_on = d(2026, 2, 1);
        r.determined_on = d(2026, 2, 3);
        r.determined_by = "x".repeat(NAME_MAX + 1);
        assert!(matches!(
            r.validate(&c),
            Err(DomainError::TooLong {
                field: "determined_by",
                ..
            })
        ));
        r.determined_by = "Trung tâm Y tế".into();
        r.outcome = Some(RelapseOutcome::CompulsoryRehabFile);
        round_trip(&r);
        assert!(!format!("{r:?}").contains("Trung"));
    }
}
