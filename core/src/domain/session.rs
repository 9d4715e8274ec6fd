//! Sessions at community points and their attendance.
//!
//! Decisions:
//! - Sessions and attendance live in the community point's scope (`Scope::Point`), so a
//!   counsellor sees the point's sessions and the minimal identity of attendees without the
//!   attendees' whole cases (DESIGN.md §2). An attendance row's `subject` is the person, so it
//!   still joins to the case for people the viewer may see.
//! - One attendance row is one *lượt* (one person at one session), or a count of anonymous
//!   walk-ins (1 to 1,000) for people who come without being registered. The attendee is an enum,
//!   so a row can never be both or neither.
//! - Attendance carries its session's day (`session_day`) so reports and the clear `day` column
//!   need no join; [`Attendance::check_session`] verifies it, the point and the session id
//!   against the session, and refuses cancelled sessions.
//! - `planned → held | cancelled`. A session cannot be held before it starts
//!   ([`DomainError::SessionNotHeld`]); that is checked with the validation context's clock.
//! - The topic may describe a person's problem (individual sessions), so `Debug` redacts it.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::rules::{NAME_MAX, Redacted, coded_enum, distinct_list, required_line, vn_date};
use super::{DomainError, Id, Record, RecordKind, Scope, ValidationContext};

coded_enum! {
    /// What kind of session.
    pub enum SessionKind {
        /// Individual counselling.
        Individual => "individual",
        /// Group counselling.
        Group => "group",
        /// Club meeting (sinh hoạt câu lạc bộ).
        Club => "club",
        /// Training.
        Training => "training",
    }
}

coded_enum! {
    /// Where a session stands.
    pub enum SessionStatus {
        /// Planned.
        Planned => "planned",
        /// Took place.
        Held => "held",
        /// Did not take place.
        Cancelled => "cancelled",
    }
}

impl SessionStatus {
    /// Whether the machine allows `self → to`.
    #[must_use]
    pub fn can_become(self, to: SessionStatus) -> bool {
        matches!(
            (self, to),
            (
                SessionStatus::Planned,
                SessionStatus::Held | SessionStatus::Cancelled
            )
        )
    }
}

/// Longest accepted session, in minutes.
const MAX_DURATION_MINUTES: u32 = 24 * 60;

/// A session at a community point.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Record id.
    pub id: Id,
    /// The community point (scope).
    pub point: Id,
    /// What kind.
    pub kind: SessionKind,
    /// Topic.
    pub topic: String,
    /// Facilitators (users).
    #[serde(default)]
    pub facilitators: Vec<Id>,
    /// Start time.
    pub at: DateTime<Utc>,
    /// Length in minutes.
    #[serde(default)]
    pub duration_minutes: Option<u32>,
    /// Where it stands.
    pub status: SessionStatus,
}

impl Session {
    /// A planned session.
    #[must_use]
    pub fn new(point: Id, kind: SessionKind, topic: impl Into<String>, at: DateTime<Utc>) -> Self {
        Self {
            id: Id::new(),
            point,
            kind,
            topic: topic.into(),
            facilitators: Vec::new(),
            at,
            duration_minutes: None,
            status: SessionStatus::Planned,
        }
    }

    /// Moves the status along the machine (without the clock check of [`Session::hold`]).
    ///
    /// # Errors
    /// `InvalidTransition` unless planned → held or cancelled.
    pub fn transition(&mut self, to: SessionStatus) -> Result<(), DomainError> {
        if !self.status.can_become(to) {
            return Err(DomainError::InvalidTransition {
                from: self.status.code(),
                to: to.code(),
            });
        }
        self.status = to;
        Ok(())
    }

    /// Marks the session held. The status is checked first: a cancelled session in the
    /// future is refused as cancelled, not as not yet started.
    ///
    /// # Errors
    /// `InvalidTransition` unless planned; `SessionNotHeld` if it has not started yet (beyond
    /// clock skew).
    pub fn hold(&mut self, ctx: &ValidationContext) -> Result<(), DomainError> {
        if !self.status.can_become(SessionStatus::Held) {
            return Err(DomainError::InvalidTransition {
                from: self.status.code(),
                to: SessionStatus::Held.code(),
            });
        }
        self.check_started(ctx)?;
        self.transition(SessionStatus::Held)
    }

    /// Cancels the session.
    ///
    /// # Errors
    /// `InvalidTransition` unless planned.
    pub fn cancel(&mut self) -> Result<(), DomainError> {
        self.transition(SessionStatus::Cancelled)
    }

    fn check_started(&self, ctx: &ValidationContext) -> Result<(), DomainError> {
        let limit = ctx
            .now
            .checked_add_signed(ValidationContext::CLOCK_SKEW)
            .unwrap_or(ctx.now);
        if self.at > limit {
            Err(DomainError::SessionNotHeld)
        } else {
            Ok(())
        }
    }
}

impl Record for Session {
    const KIND: RecordKind = RecordKind::Session;

    fn id(&self) -> Id {
        self.id
    }

    fn scope(&self) -> Scope {
        Scope::Point(self.point)
    }

    fn subject(&self) -> Option<Id> {
        None
    }

    fn day(&self) -> Option<NaiveDate> {
        Some(vn_date(self.at))
    }

    fn state(&self) -> Option<&'static str> {
        Some(self.status.code())
    }

    fn validate(&self, ctx: &ValidationContext) -> Result<(), DomainError> {
        required_line("topic", &self.topic, NAME_MAX)?;
        distinct_list("facilitators", &self.facilitators)?;
        if let Some(minutes) = self.duration_minutes
            && !(1..=MAX_DURATION_MINUTES).contains(&minutes)
        {
            return Err(DomainError::OutOfRange {
                field: "duration_minutes",
                expected: "1 to 1440 minutes",
            });
        }
        if self.status == SessionStatus::Held {
            self.check_started(ctx)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("point", &self.point)
            .field("kind", &self.kind)
            .field("topic", &Redacted)
            .field("facilitators", &self.facilitators)
            .field("at", &self.at)
            .field("duration_minutes", &self.duration_minutes)
            .field("status", &self.status)
            .finish()
    }
}

coded_enum! {
    /// How a person attended.
    pub enum AttendanceStatus {
        /// Present for the whole session.
        Present => "present",
        /// Came late.
        Late => "late",
        /// Left early.
        LeftEarly => "left_early",
    }
}

/// Who attended: a registered person, or a count of anonymous walk-ins.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attendee {
    /// A person with a record.
    Person(Id),
    /// Anonymous walk-ins (1 to 1,000).
    WalkIns(u32),
}

/// Most walk-ins one row may count.
pub const MAX_WALK_INS: u32 = 1000;

/// Attendance at a session: one row per person (one lượt), or one row counting walk-ins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attendance {
    /// Record id.
    pub id: Id,
    /// The community point (scope), the session's.
    pub point: Id,
    /// The session.
    pub session: Id,
    /// The session's day in Vietnam.
    pub session_day: NaiveDate,
    /// Who.
    pub attendee: Attendee,
    /// How.
    pub status: AttendanceStatus,
}

impl Attendance {
    /// A registered person's attendance at `session`.
    #[must_use]
    pub fn for_person(session: &Session, person: Id, status: AttendanceStatus) -> Self {
        Self::new(session, Attendee::Person(person), status)
    }

    /// A count of anonymous walk-ins at `session`.
    #[must_use]
    pub fn walk_ins(session: &Session, count: u32) -> Self {
        Self::new(session, Attendee::WalkIns(count), AttendanceStatus::Present)
    }

    fn new(session: &Session, attendee: Attendee, status: AttendanceStatus) -> Self {
        Self {
            id: Id::new(),
            point: session.point,
            session: session.id,
            session_day: vn_date(session.at),
            attendee,
            status,
        }
    }

    /// The number of attendances (lượt) this row counts.
    #[must_use]
    pub fn count(&self) -> u32 {
        match self.attendee {
            Attendee::Person(_) => 1,
            Attendee::WalkIns(n) => n,
        }
    }

    /// Checks the row against its session.
    ///
    /// # Errors
    /// `MismatchedReference` for another session id or day, `MismatchedScope` for another point,
    /// `SessionCancelled` for a cancelled session.
    pub fn check_session(&self, session: &Session) -> Result<(), DomainError> {
        if self.session != session.id {
            return Err(DomainError::MismatchedReference { field: "session" });
        }
        if self.point != session.point {
            return Err(DomainError::MismatchedScope);
        }
        if self.session_day != vn_date(session.at) {
            return Err(DomainError::MismatchedReference {
                field: "session_day",
            });
        }
        if session.status == SessionStatus::Cancelled {
            return Err(DomainError::SessionCancelled);
        }
        Ok(())
    }
}

impl Record for Attendance {
    const KIND: RecordKind = RecordKind::Attendance;

    fn id(&self) -> Id {
        self.id
    }

    fn scope(&self) -> Scope {
        Scope::Point(self.point)
    }

    fn subject(&self) -> Option<Id> {
        match self.attendee {
            Attendee::Person(person) => Some(person),
            Attendee::WalkIns(_) => None,
        }
    }

    fn day(&self) -> Option<NaiveDate> {
        Some(self.session_day)
    }

    fn validate(&self, _ctx: &ValidationContext) -> Result<(), DomainError> {
        match self.attendee {
            Attendee::WalkIns(n) if !(1..=MAX_WALK_INS).contains(&n) => {
                Err(DomainError::OutOfRange {
                    field: "walk_ins",
                    expected: "1 to 1000",
                })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::testutil::{ctx, d, round_trip, t};

    fn session() -> Session {
        Session::new(
            Id::new(),
            SessionKind::Group,
            "Phòng chống tái nghiện",
            t("2026-03-09T01:00:00Z"),
        )
    }

    #[test]
    fn session_is_valid_round_trips_and_lives_in_the_point_scope() {
        let s = session();
        assert_eq!(s.validate(&ctx()), Ok(()));
        round_trip(&s);
        assert_eq!(s.scope(), Scope::Point(s.point));
        assert_eq!(s.state(), Some("planned"));
        assert_eq!(s.day(), Some(d(2026, 3, 9)));
        assert!(!format!("{s:?}").contains("tái"));
    }

    #[test]
    fn session_machine_and_holding_rules() {
        let c = ctx();
        let mut s = session();
        s.hold(&c).unwrap();
        assert_eq!(s.state(), Some("held"));
        assert_eq!(
            s.cancel(),
            Err(DomainError::InvalidTransition {
                from: "held",
                to: "cancelled"
            })
        );
        let mut future = session();
        future.at = c.now + chrono::Duration::hours(2);
        assert_eq!(future.hold(&c), Err(DomainError::SessionNotHeld));
        assert_eq!(future.status, SessionStatus::Planned);
        future.transition(SessionStatus::Held).unwrap();
        assert_eq!(future.validate(&c), Err(DomainError::SessionNotHeld));
        let mut cancelled = session();
        cancelled.cancel().unwrap();
        assert!(cancelled.hold(&c).is_err());
        // A cancelled session in the future is refused for its status, not its time.
        let mut later = session();
        later.at = c.now + chrono::Duration::days(2);
        later.cancel().unwrap();
        assert_eq!(
            later.hold(&c),
            Err(DomainError::InvalidTransition {
                from: "cancelled",
                to: "held"
            })
        );
    }

    #[test]
    fn session_fields_are_checked() {
        let c = ctx();
        let mut s = session();
        s.topic = String::new();
        assert_eq!(
            s.validate(&c),
            Err(DomainError::Required { field: "topic" })
        );
        s.topic = "t".into();
        let f = Id::new();
        s.facilitators = vec![f, f];
        assert_eq!(
            s.validate(&c),
            Err(DomainError::Duplicate {
                field: "facilitators"
            })
        );
        s.facilitators = vec![f];
        s.duration_minutes = Some(0);
        assert!(matches!(
            s.validate(&c),
            Err(DomainError::OutOfRange {
                field: "duration_minutes",
                ..
            })
        ));
        s.duration_minutes = Some(90);
        assert_eq!(s.validate(&c), Ok(()));
    }

    #[test]
    fn attendance_counts_people_or_walk_ins() {
        let c = ctx();
        let s = session();
        let person = Id::new();
        let a = Attendance::for_person(&s, person, AttendanceStatus::Late);
        assert_eq!(a.validate(&c), Ok(()));
        assert_eq!(a.check_session(&s), Ok(()));
        assert_eq!(a.count(), 1);
        assert_eq!(a.subject(), Some(person));
        assert_eq!(a.scope(), Scope::Point(s.point));
        assert_eq!(a.day(), Some(d(2026, 3, 9)));
        round_trip(&a);
        let w = Attendance::walk_ins(&s, 7);
        assert_eq!(w.count(), 7);
        assert_eq!(w.subject(), None);
        assert_eq!(
            serde_json::to_value(w.attendee).unwrap(),
            serde_json::json!({"walk_ins": 7})
        );
        round_trip(&w);
        for bad in [0, MAX_WALK_INS + 1] {
            assert!(matches!(
                Attendance::walk_ins(&s, bad).validate(&c),
                Err(DomainError::OutOfRange {
                    field: "walk_ins",
                    ..
                })
            ));
        }
        assert_eq!(Attendance::walk_ins(&s, MAX_WALK_INS).validate(&c), Ok(()));
    }

    #[test]
    fn attendance_is_refused_for_cancelled_or_other_sessions() {
        let mut s = session();
        let a = Attendance::for_person(&s, Id::new(), AttendanceStatus::Present);
        let other = session();
        assert_eq!(
            a.check_session(&other),
            Err(DomainError::MismatchedReference { field: "session" })
        );
        let mut moved = s.clone();
        moved.point = Id::new();
        assert_eq!(a.check_session(&moved), Err(DomainError::MismatchedScope));
        let mut rescheduled = s.clone();
        rescheduled.at = t("2026-03-10T01:00:00Z");
        assert_eq!(
            a.check_session(&rescheduled),
            Err(DomainError::MismatchedReference {
                field: "session_day"
            })
        );
        s.cancel().unwrap();
        assert_eq!(a.check_session(&s), Err(DomainError::SessionCancelled));
    }
}
