//! The domain model of post-rehab aftercare (DOMAIN.md): entities, their validation, and the
//! legal clock. Plain Rust, no storage or I/O: the store seals these records, the sync client
//! ships them, and the server validates them with the same code.
//!
//! Layout:
//! - `ids`, `record`: identifiers, scopes ([`Id`], [`Scope`]) and the [`Record`] contract with
//!   the store;
//! - `error`: [`DomainError`], whose messages name fields, never values;
//! - entities, one module per group: [`person`], [`episode`] (and the legal clock),
//!   [`management`] (assignments, absences, transfers, relapses), [`visit`] (visits, drug
//!   tests), [`task`] (follow-up tasks, supervision notes), [`session`] (sessions, attendance),
//!   [`support`] (referrals, support benefits), [`privacy`] (consent, access log), [`org`]
//!   (org units and their tree, users, roles, devices: server-side, not `Record`s);
//! - reference data, versioned and embedded from `core/data/`: [`legal`] (legal parameters by
//!   effective date) and [`calendar`] (working days and public holidays);
//!   [`deadline`](mod@deadline) counts legal deadlines on them.
//!
//! Conventions shared by every entity: serde with snake_case codes; constructors give a fresh
//! random id and the minimal valid content; `validate` never panics on any input; `Debug`
//! never prints names, identity numbers, phones, addresses, notes or positions.

pub mod any;
pub mod calendar;
pub mod deadline;
pub mod episode;
mod error;
mod ids;
pub mod legal;
pub mod management;
pub mod merge;
pub mod org;
pub mod person;
pub mod privacy;
mod record;
mod rules;
pub mod session;
pub mod support;
pub mod task;
pub mod visit;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod testutil;

pub use any::AnyRecord;
pub use calendar::{Calendar, CalendarDay, DayKind, YearCalendar};
pub use deadline::{
    DeadlineCheck, DeadlineKind, DeadlineStatus, DeadlineSummary,
    commune_decision_deadline_after_positive_test, deadline, decision_deadline,
    file_opening_deadline, transfer_notice_deadline,
};
pub use episode::{Episode, EpisodeKind, EpisodeStatus, FormRefs, PriorRehab, TerminationReason};
pub use error::{DomainError, field_label_vi};
pub use ids::{Id, InvalidId, InvalidScope, Scope};
pub use legal::{DeadlineDays, FormNumbers, LegalParams, ManagementTerms, ParamSet};
pub use management::{AbsenceReport, Assignment, RelapseEvent, RelapseOutcome, Transfer};
pub use org::{Device, OrgTree, OrgUnit, OrgUnitKind, Role, USERNAME_MAX, USERNAME_MIN, User};
pub use person::{Person, Sex};
pub use privacy::{AccessAction, AccessLog, ConsentBasis, ConsentRecord};
pub use record::{Record, RecordKind, ValidationContext};
pub use rules::{ADDRESS_MAX, LIST_MAX, NAME_MAX, NOTE_MAX, REFERENCE_MAX, vn_date};
pub use session::{
    Attendance, AttendanceStatus, Attendee, MAX_WALK_INS, Session, SessionKind, SessionStatus,
};
pub use support::{
    BenefitKind, MAX_AMOUNT_VND, Referral, ReferralStatus, ReferralTarget, SupportBenefit,
};
pub use task::{FollowUpTask, SupervisionNote, TaskStatus};
pub use visit::{
    DrugTest, GeoPoint, RiskSign, Service, TestKind, TestMethod, TestResult, Visit, VisitMode,
};
