//! Legal parameters as data, versioned by effective date.
//!
//! The law sets the numbers the legal clock runs on: how long management lasts, how many working
//! days an authority has for each step, which form is used. They changed in 2025 and change again
//! with Law 120/2025 (in force 2026-07-01), so they are **data**, not constants:
//! `core/data/legal-params.json` is embedded in the binary, and a deployment can load a newer
//! file at runtime with [`LegalParams::from_json`] without a code change.
//!
//! Decisions:
//! - A [`ParamSet`] is the law in force from its `effective_from` until the next set's. Look-ups
//!   pick the newest set with `effective_from <= date` ([`LegalParams::for_date`]).
//! - Which date? The legal clock of an episode uses the set in force on the episode's start
//!   date, unless the episode pins a set by id (`Episode::legal_basis`), e.g. when transitional
//!   provisions keep old files under the old law. A deadline uses the set in force on the day
//!   that starts it (the completion report, the positive test, the move).
//! - Only verified numbers are shipped. The 2022 set (Law 73/2021, Decree 116/2021) carries
//!   `superseded_on: 2026-07-01` because Law 120/2025 replaces it then and its numbers are not
//!   verified here. [`LegalParams::for_date`] still answers with the 2022 set for later dates (so
//!   screens keep working), while [`LegalParams::for_date_verified`] refuses with
//!   [`DomainError::UnverifiedLegalParams`] so reports and deadline screens can warn that the
//!   numbers may be outdated. To add the new set, follow the "HOW TO ADD A SET" note in the data
//!   file: append a set, run `cargo test -p donghanh-core --lib domain::legal`.
//! - Parsing is strict (`deny_unknown_fields`, sets strictly ordered, unique ids, terms 1–120
//!   months, deadlines 1–60 working days, no blank citation) so a typo in an update fails loudly
//!   instead of silently moving every deadline.
//! - Terms exist for drug-user management and post-rehab management only. Voluntary rehab at home
//!   or in the community and OST have no fixed management term in these sets (the individual
//!   decision sets it), so asking for one is [`DomainError::NoTerm`].

use std::sync::OnceLock;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::DomainError;
use super::deadline::DeadlineKind;
use super::episode::{EpisodeKind, PriorRehab};

/// Name of this data in error messages.
const WHAT: &str = "legal parameters";

/// The embedded data file.
const EMBEDDED_JSON: &str = include_str!("../../data/legal-params.json");

/// Management terms in months (Law 73/2021 Art. 23 and 40).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ManagementTerms {
    /// Illegal drug users, from the commune decision.
    pub drug_user_management: u32,
    /// Post-rehab management after voluntary rehab.
    pub post_rehab_after_voluntary: u32,
    /// Post-rehab management after completing opioid substitution therapy.
    pub post_rehab_after_ost_completed: u32,
    /// Post-rehab management of people aged 12–18 after compulsory rehab.
    pub post_rehab_after_compulsory_minor: u32,
    /// Post-rehab management of adults after compulsory rehab.
    pub post_rehab_after_compulsory_adult: u32,
}

/// Deadlines in working days.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DeadlineDays {
    /// Opening the management file after the person reports completion (Decree 116 Art. 77).
    pub file_opening: u32,
    /// The chairman's decision after the file is opened (Decree 116 Art. 78).
    pub chairman_decision: u32,
    /// The commune decision on managing an illegal drug user after a positive test (Law Art. 23).
    pub commune_decision_after_positive_test: u32,
    /// Notifying a move to another commune (Law Art. 43(2)).
    pub transfer_notice: u32,
}

/// Form numbers of the implementing decree, for display and document references.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormNumbers {
    /// Police proposal to open the management file.
    pub police_proposal: String,
    /// Short curriculum vitae of the person.
    pub short_cv: String,
    /// Certificate of completing community rehab.
    pub community_rehab_completion: String,
    /// The chairman's management decision.
    pub management_decision: String,
    /// The list of people under management.
    pub management_list: String,
    /// Notice of a move to another commune.
    pub transfer_notice: String,
    /// Certificate of completing post-rehab management.
    pub completion_certificate: String,
}

/// One version of the legal parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ParamSet {
    /// Stable id (episodes may pin it as their legal basis). Never reuse an id.
    pub id: String,
    /// First day this set is the law.
    pub effective_from: NaiveDate,
    /// Day from which this set is known to be replaced, when the replacement is not loaded yet.
    pub superseded_on: Option<NaiveDate>,
    /// Citation of the articles the numbers come from.
    pub source: String,
    /// Management terms in months.
    pub management_months: ManagementTerms,
    /// Deadlines in working days.
    pub deadline_working_days: DeadlineDays,
    /// Form numbers.
    pub forms: FormNumbers,
}

impl ParamSet {
    /// The management term in months for an episode of `kind` (and, for post-rehab management,
    /// the rehab it follows).
    ///
    /// # Errors
    /// `Required { field: "after" }` for post-rehab management without its prior rehab;
    /// `NoTerm` for kinds without a fixed legal term.
    pub fn term_months(
        &self,
        kind: EpisodeKind,
        after: Option<PriorRehab>,
    ) -> Result<u32, DomainError> {
        let t = &self.management_months;
        match (kind, after) {
            (EpisodeKind::DrugUserManagement, _) => Ok(t.drug_user_management),
            (EpisodeKind::PostRehab, Some(PriorRehab::Voluntary)) => {
                Ok(t.post_rehab_after_voluntary)
            }
            (EpisodeKind::PostRehab, Some(PriorRehab::OstCompleted)) => {
                Ok(t.post_rehab_after_ost_completed)
            }
            (EpisodeKind::PostRehab, Some(PriorRehab::CompulsoryMinor)) => {
                Ok(t.post_rehab_after_compulsory_minor)
            }
            (EpisodeKind::PostRehab, Some(PriorRehab::CompulsoryAdult)) => {
                Ok(t.post_rehab_after_compulsory_adult)
            }
            (EpisodeKind::PostRehab, None) => Err(DomainError::Required { field: "after" }),
            (
                EpisodeKind::VoluntaryHomeRehab
                | EpisodeKind::VoluntaryCommunityRehab
                | EpisodeKind::Ost,
                _,
            ) => Err(DomainError::NoTerm { kind: kind.code() }),
        }
    }

    /// The number of working days allowed for a deadline.
    #[must_use]
    pub fn deadline_days(&self, kind: DeadlineKind) -> u32 {
        let d = &self.deadline_working_days;
        match kind {
            DeadlineKind::FileOpening => d.file_opening,
            DeadlineKind::ChairmanDecision => d.chairman_decision,
            DeadlineKind::CommuneDecisionAfterPositiveTest => {
                d.commune_decision_after_positive_test
            }
            DeadlineKind::TransferNotice => d.transfer_notice,
        }
    }

    /// Whether this set is known to be replaced on `date` (see the module documentation).
    #[must_use]
    pub fn is_superseded_on(&self, date: NaiveDate) -> bool {
        self.superseded_on.is_some_and(|s| date >= s)
    }

    fn check(&self) -> Result<(), DomainError> {
        let invalid = |field, problem| {
            Err(DomainError::DataInvalid {
                what: WHAT,
                field,
                problem,
            })
        };
        if self.id.trim().is_empty() {
            return invalid("id", "must not be blank");
        }
        if self.source.trim().is_empty() {
            return invalid("source", "must cite the law (must not be blank)");
        }
        if self.superseded_on.is_some_and(|s| s <= self.effective_from) {
            return invalid("superseded_on", "must be after effective_from");
        }
        let f = &self.forms;
        for (field, value) in [
            ("forms.police_proposal", &f.police_proposal),
            ("forms.short_cv", &f.short_cv),
            (
                "forms.community_rehab_completion",
                &f.community_rehab_completion,
            ),
            ("forms.management_decision", &f.management_decision),
            ("forms.management_list", &f.management_list),
            ("forms.transfer_notice", &f.transfer_notice),
            ("forms.completion_certificate", &f.completion_certificate),
        ] {
            if value.trim().is_empty() {
                return invalid(field, "must not be blank");
            }
        }
        let t = &self.management_months;
        for (field, months) in [
            (
                "management_months.drug_user_management",
                t.drug_user_management,
            ),
            (
                "management_months.post_rehab_after_voluntary",
                t.post_rehab_after_voluntary,
            ),
            (
                "management_months.post_rehab_after_ost_completed",
                t.post_rehab_after_ost_completed,
            ),
            (
                "management_months.post_rehab_after_compulsory_minor",
                t.post_rehab_after_compulsory_minor,
            ),
            (
                "management_months.post_rehab_after_compulsory_adult",
                t.post_rehab_after_compulsory_adult,
            ),
        ] {
            if !(1..=MAX_TERM_MONTHS).contains(&months) {
                return invalid(field, "must be between 1 and 120 months");
            }
        }
        let d = &self.deadline_working_days;
        for (field, days) in [
            ("deadline_working_days.file_opening", d.file_opening),
            (
                "deadline_working_days.chairman_decision",
                d.chairman_decision,
            ),
            (
                "deadline_working_days.commune_decision_after_positive_test",
                d.commune_decision_after_positive_test,
            ),
            ("deadline_working_days.transfer_notice", d.transfer_notice),
        ] {
            if !(1..=MAX_DEADLINE_DAYS).contains(&days) {
                return invalid(field, "must be between 1 and 60 working days");
            }
        }
        Ok(())
    }
}

const MAX_TERM_MONTHS: u32 = 120;
const MAX_DEADLINE_DAYS: u32 = 60;

/// Every loaded version of the legal parameters, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LegalParams {
    sets: Vec<ParamSet>,
}

impl LegalParams {
    /// Builds the parameters from sets listed oldest first.
    ///
    /// # Errors
    /// `DataInvalid` for an empty list, a repeated id or a set that breaks a rule; `DataOrder`
    /// when effective dates are not strictly increasing.
    pub fn new(sets: Vec<ParamSet>) -> Result<Self, DomainError> {
        if sets.is_empty() {
            return Err(DomainError::DataInvalid {
                what: WHAT,
                field: "sets",
                problem: "must list at least one set",
            });
        }
        for (i, set) in sets.iter().enumerate() {
            set.check()?;
            if let Some(previous) = i.checked_sub(1).and_then(|p| sets.get(p))
                && set.effective_from <= previous.effective_from
            {
                return Err(DomainError::DataOrder {
                    what: WHAT,
                    date: set.effective_from,
                });
            }
            if sets[..i].iter().any(|other| other.id == set.id) {
                return Err(DomainError::DataInvalid {
                    what: WHAT,
                    field: "id",
                    problem: "is used by more than one set",
                });
            }
        }
        Ok(Self { sets })
    }

    /// Parses a legal-parameters file (the format of `core/data/legal-params.json`).
    ///
    /// # Errors
    /// `DataParse` for malformed JSON or unknown fields, `DataInvalid` for negative or
    /// out-of-range numbers and blank text, `DataOrder` for unsorted or duplicate dates.
    pub fn from_json(json: &str) -> Result<Self, DomainError> {
        let raw: RawFile = serde_json::from_str(json).map_err(|e| DomainError::DataParse {
            what: WHAT,
            detail: e.to_string(),
        })?;
        if raw.format != 1 {
            return Err(DomainError::DataInvalid {
                what: WHAT,
                field: "format",
                problem: "is not a supported format version (expected 1)",
            });
        }
        let sets = raw
            .sets
            .into_iter()
            .map(RawSet::into_set)
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(sets)
    }

    /// Parses the embedded file.
    ///
    /// # Errors
    /// As [`LegalParams::from_json`]; a test guarantees the shipped file parses.
    pub fn parse_embedded() -> Result<Self, DomainError> {
        Self::from_json(EMBEDDED_JSON)
    }

    /// The embedded parameters, parsed once. Should the embedded file ever fail to parse (a
    /// test prevents it), this is an empty set list on which every look-up fails with
    /// `NoLegalParams`: the clock then refuses to compute rather than guessing.
    #[must_use]
    pub fn embedded() -> &'static LegalParams {
        static EMBEDDED: OnceLock<LegalParams> = OnceLock::new();
        EMBEDDED.get_or_init(|| Self::parse_embedded().unwrap_or(Self { sets: Vec::new() }))
    }

    /// All sets, oldest first.
    #[must_use]
    pub fn sets(&self) -> &[ParamSet] {
        &self.sets
    }

    /// The set in force on `date`: the newest with `effective_from <= date`.
    ///
    /// # Errors
    /// `NoLegalParams` when `date` is before every set.
    pub fn for_date(&self, date: NaiveDate) -> Result<&ParamSet, DomainError> {
        self.sets
            .iter()
            .rev()
            .find(|s| s.effective_from <= date)
            .ok_or(DomainError::NoLegalParams { date })
    }

    /// Like [`LegalParams::for_date`], but refuses a set known to be superseded on `date`.
    ///
    /// # Errors
    /// `NoLegalParams` as above; `UnverifiedLegalParams` when the newest set is superseded.
    pub fn for_date_verified(&self, date: NaiveDate) -> Result<&ParamSet, DomainError> {
        let set = self.for_date(date)?;
        match set.superseded_on {
            Some(superseded_on) if date >= superseded_on => {
                Err(DomainError::UnverifiedLegalParams {
                    date,
                    superseded_on,
                })
            }
            _ => Ok(set),
        }
    }

    /// The set with this id.
    #[must_use]
    pub fn by_id(&self, id: &str) -> Option<&ParamSet> {
        self.sets.iter().find(|s| s.id == id)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    format: u32,
    #[serde(default)]
    #[allow(dead_code)]
    notes: Vec<String>,
    sets: Vec<RawSet>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSet {
    id: String,
    effective_from: NaiveDate,
    #[serde(default)]
    superseded_on: Option<NaiveDate>,
    source: String,
    management_months: RawTerms,
    deadline_working_days: RawDeadlines,
    forms: FormNumbers,
}

/// Numbers are read as signed so that a negative value gets a specific error, not a parse error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTerms {
    drug_user_management: i64,
    post_rehab_after_voluntary: i64,
    post_rehab_after_ost_completed: i64,
    post_rehab_after_compulsory_minor: i64,
    post_rehab_after_compulsory_adult: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeadlines {
    file_opening: i64,
    chairman_decision: i64,
    commune_decision_after_positive_test: i64,
    transfer_notice: i64,
}

fn non_negative(field: &'static str, value: i64) -> Result<u32, DomainError> {
    if value < 0 {
        return Err(DomainError::DataInvalid {
            what: WHAT,
            field,
            problem: "must not be negative",
        });
    }
    u32::try_from(value).map_err(|_| DomainError::DataInvalid {
        what: WHAT,
        field,
        problem: "is too large",
    })
}

impl RawSet {
    fn into_set(self) -> Result<ParamSet, DomainError> {
        let t = self.management_months;
        let d = self.deadline_working_days;
        Ok(ParamSet {
            id: self.id,
            effective_from: self.effective_from,
            superseded_on: self.superseded_on,
            source: self.source,
            management_months: ManagementTerms {
                drug_user_management: non_negative(
                    "management_months.drug_user_management",
                    t.drug_user_management,
                )?,
                post_rehab_after_voluntary: non_negative(
                    "management_months.post_rehab_after_voluntary",
                    t.post_rehab_after_voluntary,
                )?,
                post_rehab_after_ost_completed: non_negative(
                    "management_months.post_rehab_after_ost_completed",
                    t.post_rehab_after_ost_completed,
                )?,
                post_rehab_after_compulsory_minor: non_negative(
                    "management_months.post_rehab_after_compulsory_minor",
                    t.post_rehab_after_compulsory_minor,
                )?,
                post_rehab_after_compulsory_adult: non_negative(
                    "management_months.post_rehab_after_compulsory_adult",
                    t.post_rehab_after_compulsory_adult,
                )?,
            },
            deadline_working_days: DeadlineDays {
                file_opening: non_negative("deadline_working_days.file_opening", d.file_opening)?,
                chairman_decision: non_negative(
                    "deadline_working_days.chairman_decision",
                    d.chairman_decision,
                )?,
                commune_decision_after_positive_test: non_negative(
                    "deadline_working_days.commune_decision_after_positive_test",
                    d.commune_decision_after_positive_test,
                )?,
                transfer_notice: non_negative(
                    "deadline_working_days.transfer_notice",
                    d.transfer_notice,
                )?,
            },
            forms: self.forms,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::testutil::d;

    fn shipped() -> LegalParams {
        LegalParams::parse_embedded().unwrap()
    }

    /// A made-up later set, for selection tests only (its numbers are not law).
    fn later_set() -> ParamSet {
        let mut set = shipped().sets()[0].clone();
        set.id = "test-later".into();
        set.effective_from = d(2026, 7, 1);
        set.superseded_on = None;
        set.source = "test fixture, not law".into();
        set.deadline_working_days.transfer_notice = 1;
        set.management_months.post_rehab_after_voluntary = 18;
        set
    }

    #[test]
    fn embedded_parameters_parse_and_carry_the_2022_law() {
        let params = shipped();
        assert_eq!(&params, LegalParams::embedded());
        let set = params.for_date(d(2022, 1, 1)).unwrap();
        assert_eq!(set.id, "law-73-2021");
        assert!(set.source.contains("73/2021"));
        assert_eq!(
            set.term_months(EpisodeKind::DrugUserManagement, None),
            Ok(12)
        );
        assert_eq!(
            set.term_months(EpisodeKind::PostRehab, Some(PriorRehab::Voluntary)),
            Ok(12)
        );
        assert_eq!(
            set.term_months(EpisodeKind::PostRehab, Some(PriorRehab::OstCompleted)),
            Ok(12)
        );
        assert_eq!(
            set.term_months(EpisodeKind::PostRehab, Some(PriorRehab::CompulsoryMinor)),
            Ok(12)
        );
        assert_eq!(
            set.term_months(EpisodeKind::PostRehab, Some(PriorRehab::CompulsoryAdult)),
            Ok(24)
        );
        assert_eq!(set.deadline_days(DeadlineKind::FileOpening), 3);
        assert_eq!(set.deadline_days(DeadlineKind::ChairmanDecision), 2);
        assert_eq!(
            set.deadline_days(DeadlineKind::CommuneDecisionAfterPositiveTest),
            3
        );
        assert_eq!(set.deadline_days(DeadlineKind::TransferNotice), 5);
        assert_eq!(set.forms.police_proposal, "50");
        assert_eq!(set.forms.community_rehab_completion, "26a");
        assert_eq!(set.forms.completion_certificate, "54");
    }

    #[test]
    fn post_rehab_term_needs_the_prior_rehab_and_voluntary_rehab_has_none() {
        let params = shipped();
        let set = params.for_date(d(2024, 1, 1)).unwrap();
        assert_eq!(
            set.term_months(EpisodeKind::PostRehab, None),
            Err(DomainError::Required { field: "after" })
        );
        assert_eq!(
            set.term_months(EpisodeKind::Ost, None),
            Err(DomainError::NoTerm { kind: "ost" })
        );
    }

    #[test]
    fn no_parameters_before_the_first_set() {
        assert_eq!(
            shipped().for_date(d(2021, 12, 31)),
            Err(DomainError::NoLegalParams {
                date: d(2021, 12, 31)
            })
        );
    }

    #[test]
    fn superseded_set_still_answers_but_verified_lookup_refuses() {
        let params = shipped();
        assert_eq!(params.for_date(d(2026, 7, 1)).unwrap().id, "law-73-2021");
        assert!(params.for_date_verified(d(2026, 6, 30)).is_ok());
        assert_eq!(
            params.for_date_verified(d(2026, 7, 1)),
            Err(DomainError::UnverifiedLegalParams {
                date: d(2026, 7, 1),
                superseded_on: d(2026, 7, 1)
            })
        );
        assert!(params.sets()[0].is_superseded_on(d(2026, 7, 1)));
        assert!(!params.sets()[0].is_superseded_on(d(2026, 6, 30)));
    }

    #[test]
    fn newest_set_in_force_is_selected_by_effective_date() {
        let params = LegalParams::new(vec![shipped().sets()[0].clone(), later_set()]).unwrap();
        assert_eq!(params.for_date(d(2026, 6, 30)).unwrap().id, "law-73-2021");
        assert_eq!(params.for_date(d(2026, 7, 1)).unwrap().id, "test-later");
        assert_eq!(params.for_date(d(2030, 1, 1)).unwrap().id, "test-later");
        assert_eq!(
            params.for_date_verified(d(2026, 7, 1)).unwrap().id,
            "test-later"
        );
        assert_eq!(
            params.by_id("law-73-2021").map(|s| s.effective_from),
            Some(d(2022, 1, 1))
        );
        assert!(params.by_id("nope").is_none());
    }

    #[test]
    fn sets_must_be_strictly_ordered_with_unique_ids() {
        let first = shipped().sets()[0].clone();
        let mut later = later_set();
        assert_eq!(
            LegalParams::new(vec![later.clone(), first.clone()]),
            Err(DomainError::DataOrder {
                what: WHAT,
                date: d(2022, 1, 1)
            })
        );
        later.effective_from = first.effective_from;
        assert_eq!(
            LegalParams::new(vec![first.clone(), later.clone()]),
            Err(DomainError::DataOrder {
                what: WHAT,
                date: d(2022, 1, 1)
            })
        );
        later.effective_from = d(2027, 1, 1);
        later.id = first.id.clone();
        assert!(matches!(
            LegalParams::new(vec![first, later]),
            Err(DomainError::DataInvalid { field: "id", .. })
        ));
        assert!(matches!(
            LegalParams::new(Vec::new()),
            Err(DomainError::DataInvalid { field: "sets", .. })
        ));
    }

    fn with_replaced(from: &str, to: &str) -> Result<LegalParams, DomainError> {
        let json = EMBEDDED_JSON.replacen(from, to, 1);
        assert_ne!(
            json, EMBEDDED_JSON,
            "fixture replacement {from} did not apply"
        );
        LegalParams::from_json(&json)
    }

    #[test]
    fn malformed_files_get_specific_errors() {
        assert!(matches!(
            LegalParams::from_json("{"),
            Err(DomainError::DataParse { what: WHAT, .. })
        ));
        assert!(matches!(
            with_replaced("\"file_opening\": 3", "\"file_opening\": 3, \"typo\": 1"),
            Err(DomainError::DataParse { .. })
        ));
        assert_eq!(
            with_replaced(
                "\"post_rehab_after_compulsory_adult\": 24",
                "\"post_rehab_after_compulsory_adult\": -24"
            ),
            Err(DomainError::DataInvalid {
                what: WHAT,
                field: "management_months.post_rehab_after_compulsory_adult",
                problem: "must not be negative"
            })
        );
        assert!(matches!(
            with_replaced(
                "\"drug_user_management\": 12",
                "\"drug_user_management\": 0"
            ),
            Err(DomainError::DataInvalid {
                field: "management_months.drug_user_management",
                ..
            })
        ));
        assert!(matches!(
            with_replaced("\"transfer_notice\": 5", "\"transfer_notice\": 61"),
            Err(DomainError::DataInvalid {
                field: "deadline_working_days.transfer_notice",
                ..
            })
        ));
        assert!(matches!(
            with_replaced("\"transfer_notice\": 5", "\"transfer_notice\": 99999999999"),
            Err(DomainError::DataInvalid {
                problem: "is too large",
                ..
            })
        ));
        assert!(matches!(
            with_replaced("\"format\": 1", "\"format\": 2"),
            Err(DomainError::DataInvalid {
                field: "format",
                ..
            })
        ));
        assert!(matches!(
            with_replaced(
                "\"superseded_on\": \"2026-07-01\"",
                "\"superseded_on\": \"2021-07-01\""
            ),
            Err(DomainError::DataInvalid {
                field: "superseded_on",
                ..
            })
        ));
        assert!(matches!(
            with_replaced("\"police_proposal\": \"50\"", "\"police_proposal\": \" \""),
            Err(DomainError::DataInvalid {
                field: "forms.police_proposal",
                ..
            })
        ));
        assert!(matches!(
            with_replaced("\"source\": \"Law", "\"source\": \" \", \"x\": \"Law"),
            Err(DomainError::DataParse { .. })
        ));
    }

    #[test]
    fn blank_citation_is_refused() {
        let mut set = later_set();
        set.source = "  ".into();
        assert!(matches!(
            LegalParams::new(vec![set]),
            Err(DomainError::DataInvalid {
                field: "source",
                ..
            })
        ));
        let mut set = later_set();
        set.id = String::new();
        assert!(matches!(
            LegalParams::new(vec![set]),
            Err(DomainError::DataInvalid { field: "id", .. })
        ));
    }

    #[test]
    fn a_second_set_loads_from_json_without_code_change() {
        let added = EMBEDDED_JSON.replacen(
            "  ]\n}",
            r#"  ,{
      "id": "test-only",
      "effective_from": "2026-07-01",
      "source": "test fixture, not law",
      "management_months": {"drug_user_management": 12, "post_rehab_after_voluntary": 12,
        "post_rehab_after_ost_completed": 12, "post_rehab_after_compulsory_minor": 12,
        "post_rehab_after_compulsory_adult": 24},
      "deadline_working_days": {"file_opening": 3, "chairman_decision": 2,
        "commune_decision_after_positive_test": 3, "transfer_notice": 1},
      "forms": {"police_proposal": "50", "short_cv": "30", "community_rehab_completion": "26a",
        "management_decision": "51", "management_list": "52", "transfer_notice": "53",
        "completion_certificate": "54"}
    }
  ]
}"#,
            1,
        );
        let params = LegalParams::from_json(&added).unwrap();
        assert_eq!(params.sets().len(), 2);
        let set = params.for_date_verified(d(2026, 11, 22)).unwrap();
        assert_eq!(set.deadline_days(DeadlineKind::TransferNotice), 1);
    }
}
