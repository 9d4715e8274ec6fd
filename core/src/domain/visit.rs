//! Visits and drug tests: what a volunteer records in the field.
//!
//! Decisions:
//! - A visit is a timestamp (`DateTime<Utc>`, because phones record instants) while its clear
//!   `day` is the date in Vietnam, so a visit at 23:30 local time is filed on the right day.
//! - Timestamps may be up to `ValidationContext::CLOCK_SKEW` ahead of the device clock; more is
//!   refused as a future visit.
//! - Observations are required: a visit without a word is not a record of anything. They are
//!   narrative and redacted from `Debug`, as is the GPS position (a home visit's position is the
//!   person's address).
//! - Risk signs and services are closed lists of codes (reports count them); a repeated code is
//!   refused rather than silently deduplicated, because it usually means a UI bug.
//! - A drug test result is health data: `state()` does not expose it in a clear column and
//!   `Debug` redacts it. A positive test is not a relapse (DOMAIN.md).

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::rules::{
    NAME_MAX, Redacted, coded_enum, distinct_list, in_order, not_in_future, optional_line,
    optional_note, redact_opt, required_note, vn_date,
};
use super::{DomainError, Id, Record, RecordKind, Scope, ValidationContext};

coded_enum! {
    /// How a visit took place.
    pub enum VisitMode {
        /// At the person's home.
        Home => "home",
        /// By phone.
        Phone => "phone",
        /// At the community point.
        AtPoint => "at_point",
    }
}

coded_enum! {
    /// Risk and relapse signs noted on a visit.
    pub enum RiskSign {
        /// Signs of drug use.
        SignsOfUse => "signs_of_use",
        /// Withdrawal symptoms.
        WithdrawalSymptoms => "withdrawal_symptoms",
        /// Contact with people who use drugs.
        ContactWithUsers => "contact_with_users",
        /// Conflict in the family.
        FamilyConflict => "family_conflict",
        /// No job or income.
        Unemployment => "unemployment",
        /// Mental distress.
        MentalDistress => "mental_distress",
        /// Physical health problem.
        HealthProblem => "health_problem",
        /// Missed appointments or tests.
        MissedAppointments => "missed_appointments",
        /// Often away from home.
        AwayFromHome => "away_from_home",
    }
}

coded_enum! {
    /// Services given on a visit (Decree 116 Art. 79(2)).
    pub enum Service {
        /// Counselling.
        Counselling => "counselling",
        /// Harm reduction.
        HarmReduction => "harm_reduction",
        /// Treatment support (including OST).
        TreatmentSupport => "treatment_support",
        /// Help with papers (residence, ID card, criminal-record extract).
        PapersHelp => "papers_help",
        /// Vocational or job counselling.
        VocationalCounselling => "vocational_counselling",
        /// Help finding a job.
        JobSearch => "job_search",
        /// Help with a loan.
        LoanSupport => "loan_support",
        /// Help with schooling (12–18 year-olds).
        SchoolingSupport => "schooling_support",
        /// Support to the family.
        FamilySupport => "family_support",
        /// Health education.
        HealthEducation => "health_education",
    }
}

/// A position (WGS 84).
#[derive(Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    /// Latitude in degrees, −90 to 90.
    pub lat: f64,
    /// Longitude in degrees, −180 to 180.
    pub lon: f64,
    /// Accuracy radius in metres.
    #[serde(default)]
    pub accuracy_m: Option<f64>,
}

impl GeoPoint {
    fn check(&self) -> Result<(), DomainError> {
        if !(self.lat.is_finite() && (-90.0..=90.0).contains(&self.lat)) {
            return Err(DomainError::OutOfRange {
                field: "gps.lat",
                expected: "-90 to 90 degrees",
            });
        }
        if !(self.lon.is_finite() && (-180.0..=180.0).contains(&self.lon)) {
            return Err(DomainError::OutOfRange {
                field: "gps.lon",
                expected: "-180 to 180 degrees",
            });
        }
        if let Some(acc) = self.accuracy_m
            && !(acc.is_finite() && (0.0..=100_000.0).contains(&acc))
        {
            return Err(DomainError::OutOfRange {
                field: "gps.accuracy_m",
                expected: "0 to 100000 metres",
            });
        }
        Ok(())
    }
}

impl fmt::Debug for GeoPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GeoPoint(<redacted>)")
    }
}

/// A contact between a worker and a person.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Visit {
    /// Record id.
    pub id: Id,
    /// The person visited.
    pub person: Id,
    /// The episode, if known.
    #[serde(default)]
    pub episode: Option<Id>,
    /// The worker (user).
    #[serde(default)]
    pub worker: Option<Id>,
    /// When.
    pub at: DateTime<Utc>,
    /// How.
    pub mode: VisitMode,
    /// What the worker saw and heard.
    pub observations: String,
    /// Risk and relapse signs noted.
    #[serde(default)]
    pub risk_signs: Vec<RiskSign>,
    /// Whether the worker suspects drug use again (not a relapse determination).
    #[serde(default)]
    pub relapse_suspected: bool,
    /// Services given.
    #[serde(default)]
    pub services: Vec<Service>,
    /// When the next visit is due.
    #[serde(default)]
    pub next_visit_due: Option<NaiveDate>,
    /// Where, if the worker chose to record it.
    #[serde(default)]
    pub gps: Option<GeoPoint>,
}

impl Visit {
    /// A home visit with only its observations.
    #[must_use]
    pub fn new(person: Id, at: DateTime<Utc>, observations: impl Into<String>) -> Self {
        Self {
            id: Id::new(),
            person,
            episode: None,
            worker: None,
            at,
            mode: VisitMode::Home,
            observations: observations.into(),
            risk_signs: Vec::new(),
            relapse_suspected: false,
            services: Vec::new(),
            next_visit_due: None,
            gps: None,
        }
    }
}

impl Record for Visit {
    const KIND: RecordKind = RecordKind::Visit;

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
        Some(vn_date(self.at))
    }

    fn validate(&self, ctx: &ValidationContext) -> Result<(), DomainError> {
        not_in_future("at", self.at, ctx)?;
        required_note("observations", &self.observations)?;
        distinct_list("risk_signs", &self.risk_signs)?;
        distinct_list("services", &self.services)?;
        in_order(
            "at",
            Some(vn_date(self.at)),
            "next_visit_due",
            self.next_visit_due,
        )?;
        if let Some(gps) = &self.gps {
            gps.check()?;
        }
        Ok(())
    }
}

impl fmt::Debug for Visit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Visit")
            .field("id", &self.id)
            .field("person", &self.person)
            .field("episode", &self.episode)
            .field("worker", &self.worker)
            .field("at", &self.at)
            .field("mode", &self.mode)
            .field("observations", &Redacted)
            .field("risk_signs", &self.risk_signs.len())
            .field("relapse_suspected", &Redacted)
            .field("services", &self.services)
            .field("next_visit_due", &self.next_visit_due)
            .field("gps", &redact_opt(&self.gps))
            .finish()
    }
}

coded_enum! {
    /// Why a test was done (Decree 116 Art. 79(2)).
    pub enum TestKind {
        /// Planned, at regular intervals.
        Periodic => "periodic",
        /// Unannounced.
        Surprise => "surprise",
    }
}

coded_enum! {
    /// How the sample was tested.
    pub enum TestMethod {
        /// Rapid urine test.
        UrineRapid => "urine_rapid",
        /// Saliva test.
        Saliva => "saliva",
        /// Laboratory urine test.
        UrineLab => "urine_lab",
        /// Blood test.
        Blood => "blood",
        /// Hair test.
        Hair => "hair",
    }
}

coded_enum! {
    /// The result.
    pub enum TestResult {
        /// No substance found.
        Negative => "negative",
        /// A substance found (not a relapse determination).
        Positive => "positive",
        /// Sample or test unusable.
        Invalid => "invalid",
    }
}

/// A drug test.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrugTest {
    /// Record id.
    pub id: Id,
    /// The person tested.
    pub person: Id,
    /// The episode, if known.
    #[serde(default)]
    pub episode: Option<Id>,
    /// When.
    pub at: DateTime<Utc>,
    /// Periodic or surprise.
    pub kind: TestKind,
    /// Method.
    pub method: TestMethod,
    /// Result.
    pub result: TestResult,
    /// Who performed it, when a user.
    #[serde(default)]
    pub performed_by: Option<Id>,
    /// The health facility or police unit that performed it, when not a user.
    #[serde(default)]
    pub facility: Option<String>,
    /// Note.
    #[serde(default)]
    pub note: Option<String>,
}

impl DrugTest {
    /// A test with its essentials.
    #[must_use]
    pub fn new(
        person: Id,
        at: DateTime<Utc>,
        kind: TestKind,
        method: TestMethod,
        result: TestResult,
    ) -> Self {
        Self {
            id: Id::new(),
            person,
            episode: None,
            at,
            kind,
            method,
            result,
            performed_by: None,
            facility: None,
            note: None,
        }
    }
}

impl Record for DrugTest {
    const KIND: RecordKind = RecordKind::DrugTest;

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
        Some(vn_date(self.at))
    }

    fn validate(&self, ctx: &ValidationContext) -> Result<(), DomainError> {
        not_in_future("at", self.at, ctx)?;
        optional_line("facility", self.facility.as_deref(), NAME_MAX)?;
        optional_note("note", self.note.as_deref())
    }
}

impl fmt::Debug for DrugTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DrugTest")
            .field("id", &self.id)
            .field("person", &self.person)
            .field("episode", &self.episode)
            .field("at", &self.at)
            .field("kind", &self.kind)
            .field("method", &self.method)
            .field("result", &Redacted)
            .field("performed_by", &self.performed_by)
            .field("facility", &redact_opt(&self.facility))
            .field("note", &redact_opt(&self.note))
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::testutil::{ctx, d, round_trip, t};

    fn visit() -> Visit {
        let mut v = Visit::new(
            Id::new(),
            t("2026-03-09T16:30:00Z"),
            "Gặp mẹ, anh ấy đi làm phụ hồ",
        );
        v.risk_signs = vec![RiskSign::Unemployment];
        v.services = vec![Service::Counselling, Service::VocationalCounselling];
        v.next_visit_due = Some(d(2026, 3, 24));
        v.gps = Some(GeoPoint {
            lat: 21.03,
            lon: 105.85,
            accuracy_m: Some(12.0),
        });
        v
    }

    #[test]
    fn complete_visit_is_valid_and_round_trips() {
        let v = visit();
        assert_eq!(v.validate(&ctx()), Ok(()));
        round_trip(&v);
        // 16:30 UTC on 9 March is 23:30 on 9 March in Vietnam.
        assert_eq!(v.day(), Some(d(2026, 3, 9)));
        assert_eq!(
            Visit::new(v.person, t("2026-03-09T17:30:00Z"), "x").day(),
            Some(d(2026, 3, 10))
        );
        assert_eq!(v.scope(), Scope::Person(v.person));
        assert_eq!(v.state(), None);
        let fresh = Visit::new(v.person, v.at, "x");
        assert_eq!(fresh.mode, VisitMode::Home);
        assert!(fresh.services.is_empty() && fresh.gps.is_none() && !fresh.relapse_suspected);
    }

    #[test]
    fn visit_in_the_future_beyond_clock_skew_is_refused() {
        let mut v = visit();
        v.at = ctx().now + chrono::Duration::minutes(4);
        v.next_visit_due = None;
        assert_eq!(v.validate(&ctx()), Ok(()));
        v.at = ctx().now + chrono::Duration::minutes(6);
        assert_eq!(
            v.validate(&ctx()),
            Err(DomainError::InFuture { field: "at" })
        );
    }

    #[test]
    fn observations_are_required() {
        let mut v = visit();
        v.observations = "\n ".into();
        assert_eq!(
            v.validate(&ctx()),
            Err(DomainError::Required {
                field: "observations"
            })
        );
        v.observations = "x".repeat(super::super::rules::NOTE_MAX + 1);
        assert!(matches!(
            v.validate(&ctx()),
            Err(DomainError::TooLong {
                field: "observations",
                ..
            })
        ));
    }

    #[test]
    fn next_visit_cannot_be_due_before_the_visit() {
        let mut v = visit();
        v.next_visit_due = Some(d(2026, 3, 8));
        assert_eq!(
            v.validate(&ctx()),
            Err(DomainError::DateOrder {
                earlier: "at",
                later: "next_visit_due"
            })
        );
        v.next_visit_due = Some(d(2026, 3, 9));
        assert_eq!(v.validate(&ctx()), Ok(()));
    }

    #[test]
    fn repeated_codes_are_refused() {
        let mut v = visit();
        v.services = vec![Service::Counselling, Service::Counselling];
        assert_eq!(
            v.validate(&ctx()),
            Err(DomainError::Duplicate { field: "services" })
        );
        v.services.clear();
        v.risk_signs = vec![RiskSign::SignsOfUse, RiskSign::SignsOfUse];
        assert_eq!(
            v.validate(&ctx()),
            Err(DomainError::Duplicate {
                field: "risk_signs"
            })
        );
    }

    #[test]
    fn gps_must_be_on_earth() {
        let mut v = visit();
        for (lat, lon, acc, field) in [
            (91.0, 105.0, None, "gps.lat"),
            (f64::NAN, 105.0, None, "gps.lat"),
            (21.0, -180.5, None, "gps.lon"),
            (21.0, f64::INFINITY, None, "gps.lon"),
            (21.0, 105.0, Some(-1.0), "gps.accuracy_m"),
        ] {
            v.gps = Some(GeoPoint {
                lat,
                lon,
                accuracy_m: acc,
            });
            let result = v.validate(&ctx());
            assert!(
                matches!(result, Err(DomainError::OutOfRange { field: f, .. }) if f == field),
                "{field}"
            );
        }
    }

    #[test]
    fn debug_of_a_visit_hides_observations_and_position() {
        let shown = format!("{:?}", visit());
        assert!(!shown.contains("Gặp"), "{shown}");
        assert!(!shown.contains("21.03"), "{shown}");
        assert!(!shown.contains("105.85"), "{shown}");
    }

    #[test]
    fn drug_test_rules() {
        let c = ctx();
        let mut test = DrugTest::new(
            Id::new(),
            t("2026-03-09T02:00:00Z"),
            TestKind::Surprise,
            TestMethod::UrineRapid,
            TestResult::Positive,
        );
        assert_eq!(test.validate(&c), Ok(()));
        round_trip(&test);
        assert_eq!(test.state(), None, "results never go to a clear column");
        assert!(!format!("{test:?}").contains("positive"));
        test.at = t("2026-03-11T02:00:00Z");
        assert_eq!(
            test.validate(&c),
            Err(DomainError::InFuture { field: "at" })
        );
        test.at = t("2026-03-09T02:00:00Z");
        test.facility = Some(String::new());
        assert_eq!(
            test.validate(&c),
            Err(DomainError::Blank { field: "facility" })
        );
        test.facility = None;
        test.note = Some("nul\u{0}".into());
        assert!(matches!(
            test.validate(&c),
            Err(DomainError::InvalidFormat { field: "note", .. })
        ));
        assert_eq!(
            serde_json::to_value(TestKind::Periodic).unwrap(),
            "periodic"
        );
    }
}
