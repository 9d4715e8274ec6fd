//! Record and enum mirrors: what crosses the boundary, converted with `From` (STYLE.md point 2).
//!
//! Conventions, the same in every language: ids are strings (UUIDs, parsed on the way in and
//! answered with `InvalidInput` when malformed); days are ISO `YYYY-MM-DD` strings; instants are
//! RFC 3339 strings (`2026-11-20T09:30:00+07:00`, returned in UTC). Strings keep the bindings
//! free of per-language date types and of time-zone surprises; the app parses them for display.

use chrono::{DateTime, NaiveDate, Utc};
use donghanh_core::domain as d;
use donghanh_core::domain::Id;

use crate::error::{DonghanhError, Result};

/// Parses an id argument.
pub(crate) fn parse_id(arg: &str, value: &str) -> Result<Id> {
    value
        .trim()
        .parse()
        .map_err(|_| DonghanhError::invalid(format!("{arg}: not a valid id")))
}

/// Checks a data-directory argument: an empty one would put the store in the process's
/// working directory, a NUL cannot name a file.
pub(crate) fn parse_dir(value: &str) -> Result<std::path::PathBuf> {
    if value.trim().is_empty() || value.contains('\0') {
        return Err(DonghanhError::invalid(
            "dir: expected the path of a directory",
        ));
    }
    Ok(std::path::PathBuf::from(value))
}

/// Parses a day argument: exactly `YYYY-MM-DD` (chrono's `%Y` alone also takes a sign and
/// more digits, so `+99999-01-01` used to be a day 97,000 years ahead).
pub(crate) fn parse_day(arg: &str, value: &str) -> Result<NaiveDate> {
    donghanh_core::input::parse_date(value.trim())
        .map_err(|_| DonghanhError::invalid(format!("{arg}: expected a date YYYY-MM-DD")))
}

/// Parses an instant argument (RFC 3339); `None` is now.
pub(crate) fn parse_instant(arg: &str, value: Option<&str>) -> Result<DateTime<Utc>> {
    match value {
        None => Ok(Utc::now()),
        Some(v) => DateTime::parse_from_rfc3339(v.trim())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                DonghanhError::invalid(format!(
                    "{arg}: expected an RFC 3339 time such as 2026-11-20T09:30:00+07:00"
                ))
            }),
    }
}

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn opt_day(d: Option<NaiveDate>) -> Option<String> {
    d.map(day)
}

fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339()
}

fn opt_id(id: Option<Id>) -> Option<String> {
    id.map(|i| i.to_string())
}

/// A uniffi enum mirroring a core enum variant for variant, with `From` both ways.
macro_rules! mirror_enum {
    ($(#[$m:meta])* $name:ident = $core:ty { $($(#[$vm:meta])* $v:ident),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
        pub enum $name { $($(#[$vm])* $v),+ }

        impl From<$name> for $core {
            fn from(v: $name) -> Self {
                type Core = $core;
                match v { $($name::$v => Core::$v),+ }
            }
        }

        impl From<$core> for $name {
            fn from(v: $core) -> Self {
                type Core = $core;
                match v { $(Core::$v => $name::$v),+ }
            }
        }
    };
}

mirror_enum! {
    /// Sex as recorded on the citizen ID.
    Sex = d::Sex { Female, Male }
}
mirror_enum! {
    /// Kind of management episode.
    EpisodeKind = d::EpisodeKind {
        DrugUserManagement, PostRehab, VoluntaryHomeRehab, VoluntaryCommunityRehab, Ost
    }
}
mirror_enum! {
    /// Why an episode ended early (Decree 116/2021 Art. 81). `Relapse` is recorded with
    /// `Device.record_relapse`, which names the determining authority.
    TerminationReason = d::TerminationReason { Prison, Moved, Death, Missing, Relapse, Other }
}
mirror_enum! {
    /// What came before a post-rehab episode.
    PriorRehab = d::PriorRehab { Voluntary, OstCompleted, CompulsoryAdult, CompulsoryMinor }
}
mirror_enum! {
    /// How a visit was made.
    VisitMode = d::VisitMode { Home, Phone, AtPoint }
}
mirror_enum! {
    /// Risk and relapse signs noted on a visit.
    RiskSign = d::RiskSign {
        SignsOfUse, WithdrawalSymptoms, ContactWithUsers, FamilyConflict, Unemployment,
        MentalDistress, HealthProblem, MissedAppointments, AwayFromHome
    }
}
mirror_enum! {
    /// Services given on a visit (Decree 116 Art. 79(2)).
    Service = d::Service {
        Counselling, HarmReduction, TreatmentSupport, PapersHelp, VocationalCounselling,
        JobSearch, LoanSupport, SchoolingSupport, FamilySupport, HealthEducation
    }
}
mirror_enum! {
    /// Kind of session at a community point.
    SessionKind = d::SessionKind { Individual, Group, Club, Training }
}
mirror_enum! {
    /// Where a session stands.
    SessionStatus = d::SessionStatus { Planned, Held, Cancelled }
}
mirror_enum! {
    /// How someone attended.
    AttendanceStatus = d::AttendanceStatus { Present, Late, LeftEarly }
}
mirror_enum! {
    /// Where a task stands.
    TaskStatus = d::TaskStatus { Open, Done, Cancelled }
}
mirror_enum! {
    /// Why a drug test was done.
    TestKind = d::TestKind { Periodic, Surprise }
}
mirror_enum! {
    /// How the sample was tested.
    TestMethod = d::TestMethod { UrineRapid, Saliva, UrineLab, Blood, Hair }
}
mirror_enum! {
    /// A drug test's result (positive is not a relapse determination).
    TestResult = d::TestResult { Negative, Positive, Invalid }
}
mirror_enum! {
    /// Where a person is referred.
    ReferralTarget = d::ReferralTarget {
        OstClinic, HivCare, HarmReduction, RehabFacility, VocationalCentre, JobCentre, Loan,
        School, HealthFacility
    }
}
mirror_enum! {
    /// Where a referral stands.
    ReferralStatus = d::ReferralStatus { Sent, Accepted, Completed, Declined }
}
mirror_enum! {
    /// Kind of support given.
    BenefitKind = d::BenefitKind {
        VocationalTraining, JobReferral, Loan, CashSupport, Schooling, PapersHelp
    }
}
mirror_enum! {
    /// A user's role.
    Role = donghanh_core::protocol::Role { Volunteer, Counsellor, Supervisor, Officer, Admin }
}
mirror_enum! {
    /// Where a sync round is.
    SyncPhase = donghanh_core::sync::client::SyncPhase {
        Pushing, Pulling, Bootstrapping, Purging, Done
    }
}

/// A person to record.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NewPerson {
    /// Full name (họ và tên).
    pub full_name: String,
    /// Date of birth, `YYYY-MM-DD`.
    pub birth_date: String,
    /// Sex.
    pub sex: Sex,
    /// Phone number.
    #[uniffi(default = None)]
    pub phone: Option<String>,
    /// Residence.
    #[uniffi(default = None)]
    pub address: Option<String>,
    /// Citizen ID number (CCCD, 12 digits).
    #[uniffi(default = None)]
    pub id_number: Option<String>,
    /// The commune (org-unit id) whose case this is: a supervisor's new case needs it, so
    /// that the server grants it to the commune.
    #[uniffi(default = None)]
    pub commune: Option<String>,
}

impl NewPerson {
    pub(crate) fn to_core(&self) -> Result<d::Person> {
        let mut p = d::Person::new(
            self.full_name.clone(),
            parse_day("birth_date", &self.birth_date)?,
            self.sex.into(),
        );
        p.phone.clone_from(&self.phone);
        p.address.clone_from(&self.address);
        p.id_number.clone_from(&self.id_number);
        p.commune = self
            .commune
            .as_deref()
            .map(|c| parse_id("commune", c))
            .transpose()?;
        Ok(p)
    }
}

/// A person held on the device.
#[derive(Clone, uniffi::Record)]
pub struct Person {
    /// Id.
    pub id: String,
    /// Full name.
    pub full_name: String,
    /// Date of birth, `YYYY-MM-DD`.
    pub birth_date: String,
    /// Sex.
    pub sex: Sex,
    /// Phone number.
    pub phone: Option<String>,
    /// Residence.
    pub address: Option<String>,
    /// Citizen ID number.
    pub id_number: Option<String>,
}

/// Identifying data stays out of `Debug` (and so out of logs and crash reports).
impl std::fmt::Debug for Person {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Person")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl From<d::Person> for Person {
    fn from(p: d::Person) -> Self {
        Person {
            id: p.id.to_string(),
            full_name: p.full_name,
            birth_date: day(p.birth_date),
            sex: p.sex.into(),
            phone: p.phone,
            address: p.address,
            id_number: p.id_number,
        }
    }
}

/// A management episode (hồ sơ quản lý).
#[derive(Debug, Clone, uniffi::Record)]
pub struct Episode {
    /// Id.
    pub id: String,
    /// The person.
    pub person: String,
    /// Kind.
    pub kind: EpisodeKind,
    /// Start day.
    pub start: String,
    /// Status code: `draft`, `proposed`, `active`, `completed`, `terminated`.
    pub status: String,
    /// Why it was terminated (only when `status` is `terminated`).
    pub termination_reason: Option<TerminationReason>,
    /// Day the file was opened and proposed.
    pub file_opened_on: Option<String>,
    /// Day of the decision that put the person under management.
    pub decision_date: Option<String>,
    /// Day it ended (completed or terminated).
    pub ended_on: Option<String>,
    /// The planned end of management: start plus the legal term, moved later by unreported
    /// absences (none when the term is not known yet, e.g. a draft without its prior rehab).
    pub planned_end: Option<String>,
}

impl Episode {
    /// The mirror of `e` with its planned end computed from the embedded legal parameters
    /// and the person's absences.
    pub(crate) fn with_absences(e: d::Episode, absences: &[d::AbsenceReport]) -> Self {
        let planned_end = e
            .planned_end(d::LegalParams::embedded(), absences)
            .ok()
            .map(day);
        Episode {
            planned_end,
            ..e.into()
        }
    }
}

impl From<d::Episode> for Episode {
    fn from(e: d::Episode) -> Self {
        Episode {
            id: e.id.to_string(),
            person: e.person.to_string(),
            kind: e.kind.into(),
            start: day(e.start),
            status: e.status.code().to_owned(),
            termination_reason: match e.status {
                d::EpisodeStatus::Terminated(reason) => Some(reason.into()),
                _ => None,
            },
            file_opened_on: opt_day(e.file_opened_on),
            decision_date: opt_day(e.decision_date),
            ended_on: opt_day(e.ended_on),
            planned_end: None,
        }
    }
}

/// A visit to record.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NewVisit {
    /// The person visited.
    pub person: String,
    /// What was observed.
    pub notes: String,
    /// When (RFC 3339); none is now.
    #[uniffi(default = None)]
    pub at: Option<String>,
    /// How.
    pub mode: VisitMode,
    /// Risk and relapse signs noted (each at most once).
    #[uniffi(default)]
    pub risk_signs: Vec<RiskSign>,
    /// Whether the worker suspects drug use again (not a relapse determination).
    #[uniffi(default)]
    pub relapse_suspected: bool,
    /// Services given (each at most once).
    #[uniffi(default)]
    pub services: Vec<Service>,
    /// When the next visit is due, `YYYY-MM-DD` (not before the visit's day).
    #[uniffi(default)]
    pub next_visit_due: Option<String>,
}

/// A visit.
#[derive(Clone, uniffi::Record)]
pub struct Visit {
    /// Id.
    pub id: String,
    /// The person.
    pub person: String,
    /// The episode it belongs to, if any.
    pub episode: Option<String>,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// How.
    pub mode: VisitMode,
    /// What was observed.
    pub notes: String,
    /// Risk and relapse signs noted.
    pub risk_signs: Vec<RiskSign>,
    /// Whether the worker suspected drug use again.
    pub relapse_suspected: bool,
    /// Services given.
    pub services: Vec<Service>,
    /// When the next visit is due.
    pub next_visit_due: Option<String>,
}

impl std::fmt::Debug for Visit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Visit")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl From<d::Visit> for Visit {
    fn from(v: d::Visit) -> Self {
        Visit {
            id: v.id.to_string(),
            person: v.person.to_string(),
            episode: opt_id(v.episode),
            at: instant(v.at),
            mode: v.mode.into(),
            notes: v.observations,
            risk_signs: v.risk_signs.into_iter().map(Into::into).collect(),
            relapse_suspected: v.relapse_suspected,
            services: v.services.into_iter().map(Into::into).collect(),
            next_visit_due: opt_day(v.next_visit_due),
        }
    }
}

/// A follow-up task.
#[derive(Clone, uniffi::Record)]
pub struct Task {
    /// Id.
    pub id: String,
    /// The person concerned.
    pub person: String,
    /// Due day.
    pub due: String,
    /// Why.
    pub reason: String,
    /// Who should do it (user id), if anyone in particular.
    pub assignee: Option<String>,
    /// Status.
    pub status: TaskStatus,
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl From<d::FollowUpTask> for Task {
    fn from(t: d::FollowUpTask) -> Self {
        Task {
            id: t.id.to_string(),
            person: t.person.to_string(),
            due: day(t.due),
            reason: t.reason,
            assignee: opt_id(t.assignee),
            status: t.status.into(),
        }
    }
}

/// One line of the caseload.
#[derive(Debug, Clone, uniffi::Record)]
pub struct CaseloadEntry {
    /// The person.
    pub person: Person,
    /// Due day of their earliest open task.
    pub next_due: Option<String>,
    /// Day of their latest visit.
    pub last_visit: Option<String>,
}

impl From<donghanh_core::CaseloadEntry> for CaseloadEntry {
    fn from(e: donghanh_core::CaseloadEntry) -> Self {
        CaseloadEntry {
            person: e.person.into(),
            next_due: opt_day(e.next_due),
            last_visit: opt_day(e.last_visit),
        }
    }
}

/// A session at a community point.
#[derive(Clone, uniffi::Record)]
pub struct Session {
    /// Id.
    pub id: String,
    /// The community point.
    pub point: String,
    /// Kind.
    pub kind: SessionKind,
    /// Topic.
    pub topic: String,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// Status.
    pub status: SessionStatus,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl From<d::Session> for Session {
    fn from(s: d::Session) -> Self {
        Session {
            id: s.id.to_string(),
            point: s.point.to_string(),
            kind: s.kind.into(),
            topic: s.topic,
            at: instant(s.at),
            status: s.status.into(),
        }
    }
}

/// An attendance row: a person, or a count of anonymous walk-ins.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Attendance {
    /// Id.
    pub id: String,
    /// The session.
    pub session: String,
    /// The person who attended (none for walk-ins).
    pub person: Option<String>,
    /// Number of walk-ins (0 for a person).
    pub walk_ins: u32,
    /// How they attended.
    pub status: AttendanceStatus,
}

impl From<d::Attendance> for Attendance {
    fn from(a: d::Attendance) -> Self {
        let (person, walk_ins) = match a.attendee {
            d::Attendee::Person(p) => (Some(p.to_string()), 0),
            d::Attendee::WalkIns(n) => (None, n),
        };
        Attendance {
            id: a.id.to_string(),
            session: a.session.to_string(),
            person,
            walk_ins,
            status: a.status.into(),
        }
    }
}

/// A drug test to record.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NewDrugTest {
    /// The person tested.
    pub person: String,
    /// When (RFC 3339); none is now.
    #[uniffi(default = None)]
    pub at: Option<String>,
    /// Periodic or surprise.
    pub kind: TestKind,
    /// Method.
    pub method: TestMethod,
    /// Result.
    pub result: TestResult,
    /// Note.
    #[uniffi(default = None)]
    pub note: Option<String>,
}

/// A drug test.
#[derive(Clone, uniffi::Record)]
pub struct DrugTest {
    /// Id.
    pub id: String,
    /// The person.
    pub person: String,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// Periodic or surprise.
    pub kind: TestKind,
    /// Method.
    pub method: TestMethod,
    /// Result.
    pub result: TestResult,
    /// Note.
    pub note: Option<String>,
}

impl std::fmt::Debug for DrugTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DrugTest")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl From<d::DrugTest> for DrugTest {
    fn from(t: d::DrugTest) -> Self {
        DrugTest {
            id: t.id.to_string(),
            person: t.person.to_string(),
            at: instant(t.at),
            kind: t.kind.into(),
            method: t.method.into(),
            result: t.result.into(),
            note: t.note,
        }
    }
}

/// Support given to a person.
#[derive(Clone, uniffi::Record)]
pub struct SupportBenefit {
    /// Id.
    pub id: String,
    /// The person.
    pub person: String,
    /// Kind.
    pub kind: BenefitKind,
    /// Amount in VND (0 for support in kind).
    pub amount_vnd: i64,
    /// Day given.
    pub on: String,
    /// Note.
    pub note: Option<String>,
}

impl std::fmt::Debug for SupportBenefit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupportBenefit")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl From<d::SupportBenefit> for SupportBenefit {
    fn from(b: d::SupportBenefit) -> Self {
        SupportBenefit {
            id: b.id.to_string(),
            person: b.person.to_string(),
            kind: b.kind.into(),
            amount_vnd: b.amount_vnd,
            on: day(b.on),
            note: b.note,
        }
    }
}

/// A referral of a person to a service.
#[derive(Clone, uniffi::Record)]
pub struct Referral {
    /// Id.
    pub id: String,
    /// The person.
    pub person: String,
    /// Kind of service.
    pub to: ReferralTarget,
    /// Day sent.
    pub sent_on: String,
    /// Where it stands.
    pub status: ReferralStatus,
    /// Day of the latest status change (none while only sent).
    pub status_on: Option<String>,
    /// Note.
    pub note: Option<String>,
}

impl std::fmt::Debug for Referral {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Referral")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl From<d::Referral> for Referral {
    fn from(r: d::Referral) -> Self {
        Referral {
            id: r.id.to_string(),
            person: r.person.to_string(),
            to: r.to.into(),
            sent_on: day(r.sent_on),
            status: r.status.into(),
            status_on: opt_day(r.status_on),
            note: r.note,
        }
    }
}

/// A colleague from the staff directory the last sync brought.
#[derive(Clone, uniffi::Record)]
pub struct Colleague {
    /// User id.
    pub id: String,
    /// Login name.
    pub username: String,
    /// The name colleagues know them by.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Their org unit.
    pub org_unit: String,
    /// Their community point (counsellors).
    pub point: Option<String>,
}

impl std::fmt::Debug for Colleague {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Colleague")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl From<donghanh_core::protocol::DirectoryEntry> for Colleague {
    fn from(e: donghanh_core::protocol::DirectoryEntry) -> Self {
        Colleague {
            id: e.id.to_string(),
            username: e.username,
            display_name: e.display_name,
            role: e.role.into(),
            org_unit: e.org_unit.to_string(),
            point: e.point.map(|p| p.to_string()),
        }
    }
}

/// A local change the server refused (kept until dismissed).
#[derive(Debug, Clone, uniffi::Record)]
pub struct RejectedChange {
    /// The change's sequence number (dismiss by it).
    pub client_seq: u64,
    /// The record kind code.
    pub kind: String,
    /// The record's id.
    pub record_id: String,
    /// The server's stable reason code.
    pub code: String,
    /// The server's message (value-free by protocol).
    pub message: String,
}

/// This device's enrolment.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Enrollment {
    /// The device's id (what an admin revokes).
    pub device_id: String,
    /// The enrolled user's id.
    pub user_id: String,
    /// The enrolled user's role (which screens the app shows); none if the stored role is
    /// one this build does not know.
    pub role: Option<Role>,
    /// End of the key lease (RFC 3339, UTC): past it without a successful sync, opening the
    /// device wipes it. Renewed by every successful sync.
    pub key_lease_until: Option<String>,
}

/// What one sync round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, uniffi::Record)]
pub struct SyncReport {
    /// Changes the server acknowledged.
    pub pushed: u64,
    /// Changes the server refused (see `rejected()`).
    pub rejected: u64,
    /// Records received.
    pub pulled: u64,
    /// Scopes removed from this device (a case reassigned away, for example).
    pub purged: u64,
}

impl From<&donghanh_core::sync::client::SyncReport> for SyncReport {
    fn from(r: &donghanh_core::sync::client::SyncReport) -> Self {
        let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        SyncReport {
            pushed: n(r.pushed),
            rejected: n(r.rejected),
            pulled: n(r.pulled),
            purged: n(r.purged),
        }
    }
}

/// A field changed on two sides, as a supervisor sees it: the server kept the later value and
/// keeps the losing one until the supervisor keeps or restores it (`Device.resolve_conflict`).
/// The values may identify a person: show them, never log them.
#[derive(Clone, uniffi::Record)]
pub struct Conflict {
    /// The conflict's id.
    pub id: String,
    /// The record whose field conflicted.
    pub record_id: String,
    /// The record's kind code (`person`, `episode`…).
    pub kind: String,
    /// The person the record is about, when it is in a person's case.
    pub person: Option<String>,
    /// The field's name (`phone`, `address`…).
    pub field: String,
    /// The value the record has now, as text (none when empty).
    pub kept: Option<String>,
    /// The value that lost, as text (none when empty).
    pub lost: Option<String>,
    /// The value the record has now, as JSON.
    pub kept_json: String,
    /// The value that lost, as JSON.
    pub lost_json: String,
    /// The device whose value lost.
    pub lost_by_device: String,
    /// The server's log position at which it arose (later conflicts have larger numbers).
    pub op_id: u64,
}

impl std::fmt::Debug for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conflict")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("field", &self.field)
            .finish_non_exhaustive()
    }
}

impl From<donghanh_core::sync::client::Conflict> for Conflict {
    fn from(c: donghanh_core::sync::client::Conflict) -> Self {
        let (kept, lost) = (c.kept_text(), c.lost_text());
        Conflict {
            id: c.id.to_string(),
            record_id: c.record_id.to_string(),
            kind: c.kind,
            person: opt_id(c.person),
            field: c.field,
            kept,
            lost,
            kept_json: c.kept.to_string(),
            lost_json: c.lost.to_string(),
            lost_by_device: c.lost_by_device.to_string(),
            op_id: c.op_id,
        }
    }
}

/// One value of a report row.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ReportValue {
    /// `count`, `amount_vnd` or `percent`.
    pub kind: String,
    /// The count or amount; for a percentage, its numerator.
    pub whole: i64,
    /// For a percentage: its denominator.
    pub denominator: Option<i64>,
    /// For a percentage: the percent rounded to one decimal (none over a zero denominator).
    pub percent: Option<f64>,
    /// As shown to a user (`30.000.000 đ`, `66,7 % (2/3)`).
    pub text: String,
}

impl From<&donghanh_core::report::Value> for ReportValue {
    fn from(v: &donghanh_core::report::Value) -> Self {
        use donghanh_core::report::Value;
        let (kind, denominator, percent) = match v {
            Value::Count { .. } => ("count", None, None),
            Value::AmountVnd { .. } => ("amount_vnd", None, None),
            Value::Percent {
                denominator,
                percent,
                ..
            } => ("percent", Some(*denominator), *percent),
        };
        Self {
            kind: kind.into(),
            whole: v.whole(),
            denominator,
            percent,
            text: v.to_text(),
        }
    }
}

/// One row of a report.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ReportRow {
    /// Row number on the form.
    pub no: String,
    /// Indicator code.
    pub code: String,
    /// Label in Vietnamese.
    pub label_vi: String,
    /// Label in English.
    pub label_en: String,
    /// The value.
    pub value: ReportValue,
    /// Dimension (`commune`, `sex`, `age_band`, `episode_kind`) → bucket → value.
    pub breakdown: std::collections::HashMap<String, std::collections::HashMap<String, i64>>,
}

/// One section of a report.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ReportSection {
    /// Title in Vietnamese.
    pub title_vi: String,
    /// Title in English.
    pub title_en: String,
    /// Rows.
    pub rows: Vec<ReportRow>,
}

/// A report computed on the device (aggregates only: no names).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Report {
    /// Template code (`01-BCN`).
    pub template: String,
    /// Title in Vietnamese.
    pub title_vi: String,
    /// Title in English.
    pub title_en: String,
    /// The form it follows.
    pub basis: String,
    /// The period (`2026-10`).
    pub period: String,
    /// First day, `YYYY-MM-DD`.
    pub start: String,
    /// Last day, `YYYY-MM-DD`.
    pub end: String,
    /// The indicator definitions' version.
    pub definitions_version: String,
    /// Sections.
    pub sections: Vec<ReportSection>,
    /// The whole report as text (Vietnamese, then English).
    pub text: String,
}

impl From<&donghanh_core::report::Report> for Report {
    fn from(r: &donghanh_core::report::Report) -> Self {
        Self {
            template: r.template.clone(),
            title_vi: r.title_vi.clone(),
            title_en: r.title_en.clone(),
            basis: r.basis.clone(),
            period: r.period.to_string(),
            start: r.start.to_string(),
            end: r.end.to_string(),
            definitions_version: r.definitions_version.clone(),
            sections: r
                .sections
                .iter()
                .map(|s| ReportSection {
                    title_vi: s.title_vi.clone(),
                    title_en: s.title_en.clone(),
                    rows: s
                        .rows
                        .iter()
                        .map(|row| ReportRow {
                            no: row.no.clone(),
                            code: row.code.clone(),
                            label_vi: row.label_vi.clone(),
                            label_en: row.label_en.clone(),
                            value: (&row.value).into(),
                            breakdown: row
                                .breakdown
                                .iter()
                                .map(|(k, v)| {
                                    (k.clone(), v.iter().map(|(b, n)| (b.clone(), *n)).collect())
                                })
                                .collect(),
                        })
                        .collect(),
                })
                .collect(),
            text: r.to_text(),
        }
    }
}
