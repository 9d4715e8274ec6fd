//! The contract between the domain model and the encrypted store.
//!
//! A record is sealed whole (as JSON) into one envelope. The store keeps a few clear columns
//! beside it for indexing, and each one comes from a method here so that what stays clear is
//! decided in one place (and documented in ARCHITECTURE.md, "Clear columns"):
//! `id`, `kind`, `scope`, `subject` (a random person id), `day` (a coarse date) and `state`
//! (a coarse status code). Nothing else about a record is readable without its scope's key.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{DomainError, Id, Scope};

/// The kind of a record: a stable code kept in a clear column and bound into the envelope's
/// associated data. Never rename a code once shipped.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum RecordKind {
    Person,
    Episode,
    Assignment,
    Visit,
    DrugTest,
    FollowUpTask,
    Session,
    Attendance,
    SupervisionNote,
    Referral,
    SupportBenefit,
    RelapseEvent,
    AbsenceReport,
    Transfer,
    Consent,
    AccessLog,
}

impl RecordKind {
    /// Every kind, in a stable order.
    pub const ALL: [RecordKind; 16] = [
        RecordKind::Person,
        RecordKind::Episode,
        RecordKind::Assignment,
        RecordKind::Visit,
        RecordKind::DrugTest,
        RecordKind::FollowUpTask,
        RecordKind::Session,
        RecordKind::Attendance,
        RecordKind::SupervisionNote,
        RecordKind::Referral,
        RecordKind::SupportBenefit,
        RecordKind::RelapseEvent,
        RecordKind::AbsenceReport,
        RecordKind::Transfer,
        RecordKind::Consent,
        RecordKind::AccessLog,
    ];

    /// The stable code.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            RecordKind::Person => "person",
            RecordKind::Episode => "episode",
            RecordKind::Assignment => "assignment",
            RecordKind::Visit => "visit",
            RecordKind::DrugTest => "drug_test",
            RecordKind::FollowUpTask => "task",
            RecordKind::Session => "session",
            RecordKind::Attendance => "attendance",
            RecordKind::SupervisionNote => "supervision_note",
            RecordKind::Referral => "referral",
            RecordKind::SupportBenefit => "support_benefit",
            RecordKind::RelapseEvent => "relapse",
            RecordKind::AbsenceReport => "absence",
            RecordKind::Transfer => "transfer",
            RecordKind::Consent => "consent",
            RecordKind::AccessLog => "access_log",
        }
    }

    /// The kind for a stored code.
    #[must_use]
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }
}

impl std::fmt::Display for RecordKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// Serialised as its stable code (access logs name the kind of record accessed).
impl Serialize for RecordKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> serde::Deserialize<'de> for RecordKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        Self::from_code(&code).ok_or_else(|| serde::de::Error::custom("unknown record kind"))
    }
}

/// What validation needs to know about the world: the device's idea of "now".
#[derive(Clone, Copy, Debug)]
pub struct ValidationContext {
    /// The current time (device clock; display data, never a sync tie-breaker).
    pub now: DateTime<Utc>,
}

impl ValidationContext {
    /// How far in the future a timestamp may be before it is refused: phones' clocks drift.
    pub const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);

    /// Context at the current system time.
    #[must_use]
    pub fn now() -> Self {
        Self { now: Utc::now() }
    }

    /// Today's date (UTC+7, Vietnam, which has no daylight saving).
    #[must_use]
    pub fn today(&self) -> NaiveDate {
        super::rules::vn_date(self.now)
    }
}

/// A domain entity the store can seal, index and sync.
pub trait Record: Serialize + DeserializeOwned {
    /// The kind code of this entity.
    const KIND: RecordKind;
    /// The record's own id.
    fn id(&self) -> Id;
    /// The scope the record belongs to (decides its data key and who may receive it).
    fn scope(&self) -> Scope;
    /// The person the record is about, if any (clear column, random id).
    fn subject(&self) -> Option<Id>;
    /// A coarse date for ordering and due-date queries (clear column).
    fn day(&self) -> Option<NaiveDate>;
    /// A coarse status code for queries such as "open tasks" (clear column).
    fn state(&self) -> Option<&'static str> {
        None
    }
    /// Checks the record on its own. Checks that need other records (an attendance against its
    /// session) are separate functions next to the entity.
    fn validate(&self, ctx: &ValidationContext) -> Result<(), DomainError>;
}
