//! Facts: what a report needs of each record, and nothing else.
//!
//! A fact is a projection of one record onto the fields indicators count: kinds, statuses,
//! dates, amounts, random ids. No name, identity number, phone, address, note or free text is
//! in a fact. The person fact keeps the commune, sex and year of birth (for disaggregation);
//! it is the only quasi-identifying one, and the server keeps it sealed.
//!
//! The device projects the records it holds; the server projects each record as it accepts it
//! and keeps the facts beside the records. Both feed the same [`super::engine`], so the same
//! records give the same numbers in both places.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::domain::{
    AnyRecord, Attendee, BenefitKind, Calendar, DeadlineCheck, DeadlineKind, EpisodeKind,
    EpisodeStatus, Id, LegalParams, PriorRehab, ReferralStatus, ReferralTarget, RelapseOutcome,
    Service, SessionKind, SessionStatus, Sex, TerminationReason, TestKind, TestResult, vn_date,
};

/// One fact.
///
/// Externally tagged (`{"visit": {…}}`): the server decodes millions of these for a province's
/// report, and serde reads an externally tagged enum directly, where an internally tagged one
/// is buffered first (1.5× slower to decode, measured).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Fact {
    /// A person: where they live, sex, year of birth.
    Person {
        /// The person's id.
        id: Id,
        /// Their commune, if recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        commune: Option<Id>,
        /// Sex.
        sex: Sex,
        /// Year of birth.
        birth_year: i32,
    },
    /// An episode (management file).
    Episode {
        /// The episode's id.
        id: Id,
        /// The person.
        person: Id,
        /// Its legal regime.
        kind: EpisodeKind,
        /// Its status.
        status: EpisodeStatus,
        /// The rehab it follows (post-rehab).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<PriorRehab>,
        /// Start of management.
        start: NaiveDate,
        /// End (completed or terminated).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ended_on: Option<NaiveDate>,
        /// Completion of rehab reported.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        completion_reported_on: Option<NaiveDate>,
        /// File opened.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file_opened_on: Option<NaiveDate>,
        /// Chairman's decision.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        decision_date: Option<NaiveDate>,
    },
    /// A visit.
    Visit {
        /// The visit's id.
        id: Id,
        /// The person.
        person: Id,
        /// The episode, if linked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        episode: Option<Id>,
        /// Day (Vietnam time).
        day: NaiveDate,
        /// Services given.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        services: Vec<Service>,
    },
    /// A drug test.
    DrugTest {
        /// The test's id.
        id: Id,
        /// The person.
        person: Id,
        /// The episode, if linked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        episode: Option<Id>,
        /// Day (Vietnam time).
        day: NaiveDate,
        /// Periodic or surprise.
        kind: TestKind,
        /// Result.
        result: TestResult,
    },
    /// A support benefit.
    Benefit {
        /// The benefit's id.
        id: Id,
        /// The person.
        person: Id,
        /// The episode, if linked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        episode: Option<Id>,
        /// Day given.
        day: NaiveDate,
        /// Type.
        kind: BenefitKind,
        /// Amount in VND (0 when not monetary).
        amount_vnd: i64,
    },
    /// A referral.
    Referral {
        /// The referral's id.
        id: Id,
        /// The person.
        person: Id,
        /// The episode, if linked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        episode: Option<Id>,
        /// Day sent.
        day: NaiveDate,
        /// Where to.
        to: ReferralTarget,
        /// Its status.
        status: ReferralStatus,
    },
    /// A relapse determination.
    Relapse {
        /// The event's id.
        id: Id,
        /// The person.
        person: Id,
        /// The episode.
        episode: Id,
        /// Day determined.
        day: NaiveDate,
        /// What followed, if recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outcome: Option<RelapseOutcome>,
    },
    /// A member of staff (volunteer, counsellor, supervisor), from the server's users: the
    /// server adds these when it computes a report; a phone has none.
    Staff {
        /// The user's id.
        id: Id,
        /// Their commune.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        commune: Option<Id>,
        /// When they were last trained for post-rehab work, if ever.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        trained_on: Option<NaiveDate>,
    },
    /// A session at a community point.
    Session {
        /// The session's id.
        id: Id,
        /// The point.
        point: Id,
        /// Day (Vietnam time).
        day: NaiveDate,
        /// Kind.
        kind: SessionKind,
        /// Status.
        status: SessionStatus,
    },
    /// An attendance row.
    Attendance {
        /// The row's id.
        id: Id,
        /// The point.
        point: Id,
        /// The session.
        session: Id,
        /// The session's day.
        day: NaiveDate,
        /// The person, when named.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        person: Option<Id>,
        /// Attendances: 1 for a named person, the number of walk-ins otherwise.
        count: u32,
    },
    /// A legal deadline of an episode or a transfer.
    Deadline {
        /// The episode's or transfer's id (with `kind`, unique).
        id: Id,
        /// The person.
        person: Id,
        /// The episode, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        episode: Option<Id>,
        /// Which deadline, its due day and when it was done.
        check: DeadlineCheck,
    },
}

impl Fact {
    /// The facts of one record. Records that no indicator counts give none; deadlines that
    /// cannot be computed (a year with no holiday data, a date before the first legal set) are
    /// left out rather than guessed.
    #[must_use]
    pub fn of(record: &AnyRecord, calendar: &Calendar, params: &LegalParams) -> Vec<Fact> {
        match record {
            AnyRecord::Person(p) => vec![Fact::Person {
                id: p.id,
                commune: p.commune,
                sex: p.sex,
                birth_year: p.birth_date.year(),
            }],
            AnyRecord::Episode(e) => {
                let mut facts = vec![Fact::Episode {
                    id: e.id,
                    person: e.person,
                    kind: e.kind,
                    status: e.status,
                    after: e.after,
                    start: e.start,
                    ended_on: e.ended_on,
                    completion_reported_on: e.completion_reported_on,
                    file_opened_on: e.file_opened_on,
                    decision_date: e.decision_date,
                }];
                if let Ok(checks) = e.deadline_checks(calendar, params) {
                    facts.extend(checks.into_iter().map(|check| Fact::Deadline {
                        id: e.id,
                        person: e.person,
                        episode: Some(e.id),
                        check,
                    }));
                }
                facts
            }
            AnyRecord::Visit(v) => vec![Fact::Visit {
                id: v.id,
                person: v.person,
                episode: v.episode,
                day: vn_date(v.at),
                services: v.services.clone(),
            }],
            AnyRecord::DrugTest(t) => vec![Fact::DrugTest {
                id: t.id,
                person: t.person,
                episode: t.episode,
                day: vn_date(t.at),
                kind: t.kind,
                result: t.result,
            }],
            AnyRecord::SupportBenefit(b) => vec![Fact::Benefit {
                id: b.id,
                person: b.person,
                episode: b.episode,
                day: b.on,
                kind: b.kind,
                amount_vnd: b.amount_vnd,
            }],
            AnyRecord::Referral(r) => vec![Fact::Referral {
                id: r.id,
                person: r.person,
                episode: r.episode,
                day: r.sent_on,
                to: r.to,
                status: r.status,
            }],
            AnyRecord::RelapseEvent(r) => vec![Fact::Relapse {
                id: r.id,
                person: r.person,
                episode: r.episode,
                day: r.determined_on,
                outcome: r.outcome,
            }],
            AnyRecord::Session(s) => vec![Fact::Session {
                id: s.id,
                point: s.point,
                day: vn_date(s.at),
                kind: s.kind,
                status: s.status,
            }],
            AnyRecord::Attendance(a) => vec![Fact::Attendance {
                id: a.id,
                point: a.point,
                session: a.session,
                day: a.session_day,
                person: match a.attendee {
                    Attendee::Person(p) => Some(p),
                    Attendee::WalkIns(_) => None,
                },
                count: match a.attendee {
                    Attendee::Person(_) => 1,
                    Attendee::WalkIns(n) => n,
                },
            }],
            AnyRecord::Transfer(t) => DeadlineCheck::compute(
                DeadlineKind::TransferNotice,
                t.moved_on,
                t.notified_on,
                calendar,
                params,
            )
            .map(|check| Fact::Deadline {
                id: t.id,
                person: t.person,
                episode: t.episode,
                check,
            })
            .into_iter()
            .collect(),
            AnyRecord::Assignment(_)
            | AnyRecord::FollowUpTask(_)
            | AnyRecord::SupervisionNote(_)
            | AnyRecord::AbsenceReport(_)
            | AnyRecord::Consent(_)
            | AnyRecord::AccessLog(_) => Vec::new(),
        }
    }

    /// The record the fact comes from.
    #[must_use]
    pub fn id(&self) -> Id {
        match self {
            Fact::Person { id, .. }
            | Fact::Episode { id, .. }
            | Fact::Visit { id, .. }
            | Fact::DrugTest { id, .. }
            | Fact::Benefit { id, .. }
            | Fact::Referral { id, .. }
            | Fact::Relapse { id, .. }
            | Fact::Staff { id, .. }
            | Fact::Session { id, .. }
            | Fact::Attendance { id, .. }
            | Fact::Deadline { id, .. } => *id,
        }
    }

    /// The person it is about, if any.
    #[must_use]
    pub fn person(&self) -> Option<Id> {
        match self {
            Fact::Person { id, .. } => Some(*id),
            Fact::Episode { person, .. }
            | Fact::Visit { person, .. }
            | Fact::DrugTest { person, .. }
            | Fact::Benefit { person, .. }
            | Fact::Referral { person, .. }
            | Fact::Relapse { person, .. }
            | Fact::Deadline { person, .. } => Some(*person),
            Fact::Attendance { person, .. } => *person,
            Fact::Session { .. } | Fact::Staff { .. } => None,
        }
    }

    /// The episode it belongs to, if known.
    #[must_use]
    pub fn episode(&self) -> Option<Id> {
        match self {
            Fact::Episode { id, .. } => Some(*id),
            Fact::Visit { episode, .. }
            | Fact::DrugTest { episode, .. }
            | Fact::Benefit { episode, .. }
            | Fact::Referral { episode, .. }
            | Fact::Deadline { episode, .. } => *episode,
            Fact::Relapse { episode, .. } => Some(*episode),
            Fact::Person { .. }
            | Fact::Session { .. }
            | Fact::Attendance { .. }
            | Fact::Staff { .. } => None,
        }
    }

    /// The community point, for sessions and attendance.
    #[must_use]
    pub fn point(&self) -> Option<Id> {
        match self {
            Fact::Session { point, .. } | Fact::Attendance { point, .. } => Some(*point),
            _ => None,
        }
    }

    /// The day the server indexes the fact by (the event's day; an episode's start; a
    /// deadline's due day; none for a person).
    #[must_use]
    pub fn day(&self) -> Option<NaiveDate> {
        match self {
            Fact::Person { .. } | Fact::Staff { .. } => None,
            Fact::Episode { start, .. } => Some(*start),
            Fact::Visit { day, .. }
            | Fact::DrugTest { day, .. }
            | Fact::Benefit { day, .. }
            | Fact::Referral { day, .. }
            | Fact::Relapse { day, .. }
            | Fact::Session { day, .. }
            | Fact::Attendance { day, .. } => Some(*day),
            Fact::Deadline { check, .. } => Some(check.due),
        }
    }

    /// A short code of the fact's type (also its serde tag).
    #[must_use]
    pub fn type_code(&self) -> &'static str {
        match self {
            Fact::Person { .. } => "person",
            Fact::Episode { .. } => "episode",
            Fact::Visit { .. } => "visit",
            Fact::DrugTest { .. } => "drug_test",
            Fact::Benefit { .. } => "benefit",
            Fact::Referral { .. } => "referral",
            Fact::Relapse { .. } => "relapse",
            Fact::Staff { .. } => "staff",
            Fact::Session { .. } => "session",
            Fact::Attendance { .. } => "attendance",
            Fact::Deadline { .. } => "deadline",
        }
    }

    /// Whether a fact is about a person's identity (kept sealed by the server).
    #[must_use]
    pub fn is_personal(&self) -> bool {
        matches!(self, Fact::Person { .. })
    }
}

/// The episode status code without a reason, and the reason if terminated.
pub(crate) fn status_parts(status: EpisodeStatus) -> (&'static str, Option<TerminationReason>) {
    match status {
        EpisodeStatus::Terminated(r) => ("terminated", Some(r)),
        other => (other.code(), None),
    }
}
