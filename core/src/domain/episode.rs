//! Episodes (management files) and the legal clock.
//!
//! An episode is one period of management of one person under one legal regime: management of an
//! illegal drug user, post-rehab management, voluntary rehab at home or in the community, or
//! opioid substitution therapy. Its length comes from the legal parameters (data, see
//! [`super::legal`]), never from constants here.
//!
//! Decisions:
//! - **Kind and modality.** The post-rehab term depends on the rehab that came before (1 year
//!   after voluntary rehab, after completing OST or for 12–18 year-olds after compulsory rehab;
//!   2 years for adults after compulsory rehab, Law 73/2021 Art. 40). `kind` stays a flat code
//!   and the prior rehab is the separate field `after`, required for post-rehab episodes once
//!   they leave `draft` and refused for other kinds. A draft may be saved before it is known.
//! - **Status machine.** `draft → proposed → active → completed | terminated(reason)`; every other
//!   change is [`DomainError::InvalidTransition`]. Early removal from the list (Decree 116
//!   Art. 81) applies to people on the list, so only an active episode can be terminated.
//!   Termination for relapse needs a [`RelapseEvent`] (relapse is a legal determination, a
//!   positive test is not one), so it goes through [`Episode::terminate_for_relapse`]; the
//!   plain [`Episode::transition`] refuses it with [`DomainError::RelapseWithoutAuthority`].
//! - **Planned end.** `start + term` (calendar months with chrono's `checked_add_months`: a
//!   29 February start on a 12-month term ends on 28 February), then later by every day of an
//!   **unreported** absence of this episode that falls within management (Decree 116 Art.
//!   79(1)(b)). Overlapping absences are merged, days before the start are ignored, and an
//!   absence counts only from a day before the (already extended) end: management is suspended
//!   while the person is away, so an absence that runs past the end keeps pushing it. Reported
//!   absences never move the end. Absences of other episodes, and malformed ones (`to` before
//!   `from`), are ignored here; validation refuses the latter on save.
//! - **Which law.** The parameter set in force on the start date, unless `legal_basis` pins a
//!   set by id (transitional provisions).

use chrono::{Days, Months, NaiveDate};
use serde::{Deserialize, Serialize};

use super::calendar::Calendar;
use super::deadline::{DeadlineCheck, DeadlineKind};
use super::legal::{LegalParams, ParamSet};
use super::management::{AbsenceReport, RelapseEvent};
use super::rules::{
    REFERENCE_MAX, coded_enum, in_order, optional_date_not_in_future, optional_line,
};
use super::{DomainError, Id, Record, RecordKind, Scope, ValidationContext};

coded_enum! {
    /// The legal regime of an episode.
    pub enum EpisodeKind {
        /// Management of an illegal drug user (Law 73/2021 Art. 23).
        DrugUserManagement => "drug_user_management",
        /// Post-rehab management at the place of residence (Law Art. 40).
        PostRehab => "post_rehab",
        /// Voluntary rehab at home.
        VoluntaryHomeRehab => "voluntary_home_rehab",
        /// Voluntary rehab in the community.
        VoluntaryCommunityRehab => "voluntary_community_rehab",
        /// Opioid substitution therapy (methadone).
        Ost => "ost",
    }
}

coded_enum! {
    /// The rehab a post-rehab episode follows; decides its term.
    pub enum PriorRehab {
        /// Voluntary rehab (home, community or facility).
        Voluntary => "voluntary",
        /// Completed opioid substitution therapy.
        OstCompleted => "ost_completed",
        /// Compulsory rehab of an adult.
        CompulsoryAdult => "compulsory_adult",
        /// Compulsory rehab of a person aged 12 to 18.
        CompulsoryMinor => "compulsory_minor",
    }
}

coded_enum! {
    /// Why an episode ended early (Decree 116/2021 Art. 81).
    pub enum TerminationReason {
        /// Sent to prison.
        Prison => "prison",
        /// Moved away (to another commune without continuation here).
        Moved => "moved",
        /// Died.
        Death => "death",
        /// Declared missing.
        Missing => "missing",
        /// Relapse determined (starts a compulsory-rehab file).
        Relapse => "relapse",
        /// Another reason recorded in the file.
        Other => "other",
    }
}

/// Where an episode stands.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EpisodeStatus {
    /// Being prepared.
    Draft,
    /// File opened and proposed to the chairman.
    Proposed,
    /// Under management.
    Active,
    /// Term served; certificate issued.
    Completed,
    /// Ended early.
    Terminated(TerminationReason),
}

impl EpisodeStatus {
    /// The coarse status code (`terminated` without its reason).
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            EpisodeStatus::Draft => "draft",
            EpisodeStatus::Proposed => "proposed",
            EpisodeStatus::Active => "active",
            EpisodeStatus::Completed => "completed",
            EpisodeStatus::Terminated(_) => "terminated",
        }
    }

    /// Whether the episode has ended (completed or terminated).
    #[must_use]
    pub fn is_final(self) -> bool {
        matches!(
            self,
            EpisodeStatus::Completed | EpisodeStatus::Terminated(_)
        )
    }

    /// Whether the machine allows `self → to` (ignoring the relapse rule).
    #[must_use]
    pub fn can_become(self, to: EpisodeStatus) -> bool {
        matches!(
            (self, to),
            (EpisodeStatus::Draft, EpisodeStatus::Proposed)
                | (EpisodeStatus::Proposed, EpisodeStatus::Active)
                | (
                    EpisodeStatus::Active,
                    EpisodeStatus::Completed | EpisodeStatus::Terminated(_)
                )
        )
    }
}

impl std::fmt::Display for EpisodeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EpisodeStatus::Terminated(reason) => write!(f, "terminated ({reason})"),
            other => f.write_str(other.code()),
        }
    }
}

/// References (numbers) of the documents in the management file. Which form each one is comes
/// from the legal parameters' `forms` (Decree 116/2021: 50, 30, 26a, 51, 54).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormRefs {
    /// Police proposal to open the file (Form 50).
    #[serde(default)]
    pub police_proposal: Option<String>,
    /// Short CV of the person (Form 30).
    #[serde(default)]
    pub short_cv: Option<String>,
    /// Certificate of completing rehab (Form 26a for community rehab).
    #[serde(default)]
    pub completion_certificate: Option<String>,
    /// The chairman's decision (Form 51).
    #[serde(default)]
    pub decision: Option<String>,
    /// Certificate of completing management (Form 54).
    #[serde(default)]
    pub end_certificate: Option<String>,
}

/// One management file of one person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Episode {
    /// Record id.
    pub id: Id,
    /// The person managed.
    pub person: Id,
    /// The legal regime.
    pub kind: EpisodeKind,
    /// First day of management (the decision's effective day).
    pub start: NaiveDate,
    /// Where the episode stands.
    pub status: EpisodeStatus,
    /// For post-rehab management: the rehab it follows.
    #[serde(default)]
    pub after: Option<PriorRehab>,
    /// Id of the legal parameter set the file is pinned to; `None` = the set in force on `start`.
    #[serde(default)]
    pub legal_basis: Option<String>,
    /// For illegal drug users: day of the positive test that triggers the commune decision.
    #[serde(default)]
    pub positive_test_on: Option<NaiveDate>,
    /// Day the person reported completing rehab (starts the file-opening deadline).
    #[serde(default)]
    pub completion_reported_on: Option<NaiveDate>,
    /// Day the file was opened and proposed (starts the decision deadline).
    #[serde(default)]
    pub file_opened_on: Option<NaiveDate>,
    /// Day of the chairman's (or commune's) decision.
    #[serde(default)]
    pub decision_date: Option<NaiveDate>,
    /// Day the episode ended (completed or terminated).
    #[serde(default)]
    pub ended_on: Option<NaiveDate>,
    /// Document references.
    #[serde(default)]
    pub forms: FormRefs,
}

impl Episode {
    /// A draft episode with a fresh id.
    #[must_use]
    pub fn new(person: Id, kind: EpisodeKind, start: NaiveDate) -> Self {
        Self {
            id: Id::new(),
            person,
            kind,
            start,
            status: EpisodeStatus::Draft,
            after: None,
            legal_basis: None,
            positive_test_on: None,
            completion_reported_on: None,
            file_opened_on: None,
            decision_date: None,
            ended_on: None,
            forms: FormRefs::default(),
        }
    }

    /// Sets the prior rehab (builder style).
    #[must_use]
    pub fn with_after(mut self, after: PriorRehab) -> Self {
        self.after = Some(after);
        self
    }

    /// Whether the person is under management in this episode.
    #[must_use]
    pub fn is_active(&self) -> bool {
        self.status == EpisodeStatus::Active
    }

    /// Whether the episode has ended.
    #[must_use]
    pub fn is_final(&self) -> bool {
        self.status.is_final()
    }

    /// Moves the status along the machine. Nothing changes on error.
    ///
    /// # Errors
    /// `InvalidTransition` for a change the machine does not allow; `RelapseWithoutAuthority`
    /// for termination by relapse (use [`Episode::terminate_for_relapse`]).
    pub fn transition(&mut self, to: EpisodeStatus) -> Result<(), DomainError> {
        if !self.status.can_become(to) {
            return Err(DomainError::InvalidTransition {
                from: self.status.code(),
                to: to.code(),
            });
        }
        if to == EpisodeStatus::Terminated(TerminationReason::Relapse) {
            return Err(DomainError::RelapseWithoutAuthority);
        }
        self.status = to;
        Ok(())
    }

    fn end(&mut self, to: EpisodeStatus, on: NaiveDate) -> Result<(), DomainError> {
        in_order("start", Some(self.start), "ended_on", Some(on))?;
        self.transition(to)?;
        self.ended_on = Some(on);
        Ok(())
    }

    /// Completes an active episode on `on`.
    ///
    /// # Errors
    /// `InvalidTransition` unless active; `DateOrder` if `on` is before the start.
    pub fn complete(&mut self, on: NaiveDate) -> Result<(), DomainError> {
        self.end(EpisodeStatus::Completed, on)
    }

    /// Ends an active episode early on `on` for a reason other than relapse.
    ///
    /// # Errors
    /// As [`Episode::complete`]; `RelapseWithoutAuthority` for [`TerminationReason::Relapse`].
    pub fn terminate(
        &mut self,
        reason: TerminationReason,
        on: NaiveDate,
    ) -> Result<(), DomainError> {
        self.end(EpisodeStatus::Terminated(reason), on)
    }

    /// Ends an active episode because a relapse was determined, on the determination day.
    ///
    /// # Errors
    /// `MismatchedReference` if the relapse is about another episode or person;
    /// `RelapseWithoutAuthority` if it names no authority; as [`Episode::complete`] otherwise.
    pub fn terminate_for_relapse(&mut self, relapse: &RelapseEvent) -> Result<(), DomainError> {
        if relapse.episode != self.id {
            return Err(DomainError::MismatchedReference { field: "episode" });
        }
        if relapse.person != self.person {
            return Err(DomainError::MismatchedReference { field: "person" });
        }
        relapse.check_authority()?;
        let to = EpisodeStatus::Terminated(TerminationReason::Relapse);
        if !self.status.can_become(to) {
            return Err(DomainError::InvalidTransition {
                from: self.status.code(),
                to: to.code(),
            });
        }
        in_order(
            "start",
            Some(self.start),
            "ended_on",
            Some(relapse.determined_on),
        )?;
        self.status = to;
        self.ended_on = Some(relapse.determined_on);
        Ok(())
    }

    /// The legal parameter set this episode runs on.
    ///
    /// # Errors
    /// `UnknownLegalBasis` for a pinned id that is not loaded; `NoLegalParams` for a start
    /// before every set.
    pub fn legal_params<'a>(&self, params: &'a LegalParams) -> Result<&'a ParamSet, DomainError> {
        match &self.legal_basis {
            Some(id) => params.by_id(id).ok_or(DomainError::UnknownLegalBasis),
            None => params.for_date(self.start),
        }
    }

    /// The management term in months.
    ///
    /// # Errors
    /// As [`Episode::legal_params`] and [`ParamSet::term_months`].
    pub fn term_months(&self, params: &LegalParams) -> Result<u32, DomainError> {
        self.legal_params(params)?
            .term_months(self.kind, self.after)
    }

    /// `start + term`, before any absence.
    ///
    /// # Errors
    /// As [`Episode::term_months`]; `DateOutOfRange` past the last representable date.
    pub fn base_end(&self, params: &LegalParams) -> Result<NaiveDate, DomainError> {
        let months = self.term_months(params)?;
        self.start
            .checked_add_months(Months::new(months))
            .ok_or(DomainError::DateOutOfRange {
                field: "planned_end",
            })
    }

    /// The planned end: `start + term`, moved later by the days of unreported absences (see the
    /// module documentation for the exact rule).
    ///
    /// # Errors
    /// As [`Episode::base_end`].
    pub fn planned_end(
        &self,
        params: &LegalParams,
        absences: &[AbsenceReport],
    ) -> Result<NaiveDate, DomainError> {
        let base = self.base_end(params)?;
        extend_for_unreported(self.id, self.start, base, absences)
    }

    /// The legal deadlines this episode's dates allow checking: file opening after the
    /// completion report and the chairman's decision after the file opening (post-rehab), the
    /// commune decision after the positive test (illegal drug users).
    ///
    /// # Errors
    /// As [`crate::domain::deadline()`].
    pub fn deadline_checks(
        &self,
        calendar: &Calendar,
        params: &LegalParams,
    ) -> Result<Vec<DeadlineCheck>, DomainError> {
        let mut checks = Vec::new();
        match self.kind {
            EpisodeKind::PostRehab => {
                if let Some(reported) = self.completion_reported_on {
                    checks.push(DeadlineCheck::compute(
                        DeadlineKind::FileOpening,
                        reported,
                        self.file_opened_on,
                        calendar,
                        params,
                    )?);
                }
                if let Some(opened) = self.file_opened_on {
                    checks.push(DeadlineCheck::compute(
                        DeadlineKind::ChairmanDecision,
                        opened,
                        self.decision_date,
                        calendar,
                        params,
                    )?);
                }
            }
            EpisodeKind::DrugUserManagement => {
                if let Some(tested) = self.positive_test_on {
                    checks.push(DeadlineCheck::compute(
                        DeadlineKind::CommuneDecisionAfterPositiveTest,
                        tested,
                        self.decision_date,
                        calendar,
                        params,
                    )?);
                }
            }
            EpisodeKind::VoluntaryHomeRehab
            | EpisodeKind::VoluntaryCommunityRehab
            | EpisodeKind::Ost => {}
        }
        Ok(checks)
    }
}

/// Moves `base_end` later by the unreported absence days of `episode` that fall in management.
fn extend_for_unreported(
    episode: Id,
    start: NaiveDate,
    base_end: NaiveDate,
    absences: &[AbsenceReport],
) -> Result<NaiveDate, DomainError> {
    let overflow = DomainError::DateOutOfRange {
        field: "planned_end",
    };
    let mut spans: Vec<(NaiveDate, NaiveDate)> = absences
        .iter()
        .filter(|a| a.episode == episode && !a.reported && a.from <= a.to)
        .map(|a| (a.from.max(start), a.to))
        .filter(|(from, to)| from <= to)
        .collect();
    spans.sort_unstable();
    let mut end = base_end;
    let mut counted_until: Option<NaiveDate> = None;
    for (from, to) in spans {
        // Skip the days an earlier (overlapping) absence already counted.
        let from = match counted_until {
            Some(last) if from <= last => match last.succ_opt() {
                Some(next) => next,
                None => break,
            },
            _ => from,
        };
        if from > to {
            continue;
        }
        // Spans are sorted by start, so no later one can begin before the end either.
        if from >= end {
            break;
        }
        let days = u64::try_from((to - from).num_days() + 1).map_err(|_| overflow.clone())?;
        end = end
            .checked_add_days(Days::new(days))
            .ok_or_else(|| overflow.clone())?;
        counted_until = Some(to);
    }
    Ok(end)
}

impl Record for Episode {
    const KIND: RecordKind = RecordKind::Episode;

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
        Some(self.start)
    }

    fn state(&self) -> Option<&'static str> {
        Some(self.status.code())
    }

    fn validate(&self, ctx: &ValidationContext) -> Result<(), DomainError> {
        match (self.kind, self.after) {
            (EpisodeKind::PostRehab, None) if self.status != EpisodeStatus::Draft => {
                return Err(DomainError::Required { field: "after" });
            }
            (kind, Some(_)) if kind != EpisodeKind::PostRehab => {
                return Err(DomainError::NotApplicable { field: "after" });
            }
            _ => {}
        }
        if self.positive_test_on.is_some() && self.kind != EpisodeKind::DrugUserManagement {
            return Err(DomainError::NotApplicable {
                field: "positive_test_on",
            });
        }
        if self.ended_on.is_some() && !self.status.is_final() {
            return Err(DomainError::NotApplicable { field: "ended_on" });
        }
        optional_line("legal_basis", self.legal_basis.as_deref(), REFERENCE_MAX)?;
        for (field, date) in [
            ("positive_test_on", self.positive_test_on),
            ("completion_reported_on", self.completion_reported_on),
            ("file_opened_on", self.file_opened_on),
            ("decision_date", self.decision_date),
            ("ended_on", self.ended_on),
        ] {
            optional_date_not_in_future(field, date, ctx)?;
        }
        in_order(
            "completion_reported_on",
            self.completion_reported_on,
            "file_opened_on",
            self.file_opened_on,
        )?;
        in_order(
            "file_opened_on",
            self.file_opened_on,
            "decision_date",
            self.decision_date,
        )?;
        in_order(
            "positive_test_on",
            self.positive_test_on,
            "decision_date",
            self.decision_date,
        )?;
        in_order("start", Some(self.start), "ended_on", self.ended_on)?;
        let f = &self.forms;
        for (field, value) in [
            ("forms.police_proposal", &f.police_proposal),
            ("forms.short_cv", &f.short_cv),
            ("forms.completion_certificate", &f.completion_certificate),
            ("forms.decision", &f.decision),
            ("forms.end_certificate", &f.end_certificate),
        ] {
            optional_line(field, value.as_deref(), REFERENCE_MAX)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::testutil::{ctx, d, round_trip};

    fn params() -> &'static LegalParams {
        LegalParams::embedded()
    }

    fn post_rehab(after: PriorRehab, start: NaiveDate) -> Episode {
        Episode::new(Id::new(), EpisodeKind::PostRehab, start).with_after(after)
    }

    fn absence(episode: &Episode, from: NaiveDate, to: NaiveDate, reported: bool) -> AbsenceReport {
        AbsenceReport::new(episode.person, episode.id, from, to, reported)
    }

    #[test]
    fn new_episode_is_a_valid_draft_and_round_trips() {
        let e = Episode::new(Id::new(), EpisodeKind::PostRehab, d(2025, 1, 10));
        assert_eq!(e.status, EpisodeStatus::Draft);
        assert_eq!(e.validate(&ctx()), Ok(()));
        assert_eq!(e.state(), Some("draft"));
        assert_eq!(e.day(), Some(d(2025, 1, 10)));
        assert_eq!(e.scope(), Scope::Person(e.person));
        round_trip(&e);
        let mut ended = post_rehab(PriorRehab::Voluntary, d(2024, 1, 1));
        ended.status = EpisodeStatus::Terminated(TerminationReason::Missing);
        ended.ended_on = Some(d(2024, 6, 1));
        round_trip(&ended);
        assert_eq!(
            serde_json::to_value(ended.status).unwrap(),
            serde_json::json!({"terminated": "missing"})
        );
        assert_eq!(ended.status.to_string(), "terminated (missing)");
    }

    #[test]
    fn status_machine_allows_only_the_documented_path() {
        let mut e = post_rehab(PriorRehab::Voluntary, d(2025, 1, 10));
        assert_eq!(
            e.transition(EpisodeStatus::Active),
            Err(DomainError::InvalidTransition {
                from: "draft",
                to: "active"
            })
        );
        e.transition(EpisodeStatus::Proposed).unwrap();
        e.transition(EpisodeStatus::Active).unwrap();
        assert!(e.is_active());
        assert_eq!(
            e.transition(EpisodeStatus::Proposed),
            Err(DomainError::InvalidTransition {
                from: "active",
                to: "proposed"
            })
        );
        e.complete(d(2026, 1, 10)).unwrap();
        assert_eq!(e.status, EpisodeStatus::Completed);
        assert_eq!(e.ended_on, Some(d(2026, 1, 10)));
        assert_eq!(
            e.terminate(TerminationReason::Death, d(2026, 2, 1)),
            Err(DomainError::InvalidTransition {
                from: "completed",
                to: "terminated"
            })
        );
        assert_eq!(e.ended_on, Some(d(2026, 1, 10)), "nothing changes on error");
    }

    #[test]
    fn termination_needs_an_active_episode_and_an_end_after_start() {
        let mut e = post_rehab(PriorRehab::Voluntary, d(2025, 1, 10));
        assert!(matches!(
            e.terminate(TerminationReason::Prison, d(2025, 3, 1)),
            Err(DomainError::InvalidTransition { .. })
        ));
        e.status = EpisodeStatus::Active;
        assert_eq!(
            e.terminate(TerminationReason::Prison, d(2025, 1, 9)),
            Err(DomainError::DateOrder {
                earlier: "start",
                later: "ended_on"
            })
        );
        e.terminate(TerminationReason::Prison, d(2025, 3, 1))
            .unwrap();
        assert_eq!(
            e.status,
            EpisodeStatus::Terminated(TerminationReason::Prison)
        );
        assert_eq!(e.state(), Some("terminated"));
    }

    #[test]
    fn relapse_termination_needs_a_determined_relapse() {
        let mut e = post_rehab(PriorRehab::Voluntary, d(2025, 1, 10));
        e.status = EpisodeStatus::Active;
        assert_eq!(
            e.transition(EpisodeStatus::Terminated(TerminationReason::Relapse)),
            Err(DomainError::RelapseWithoutAuthority)
        );
        assert_eq!(
            e.terminate(TerminationReason::Relapse, d(2025, 5, 1)),
            Err(DomainError::RelapseWithoutAuthority)
        );
        let other = RelapseEvent::new(
            e.person,
            Id::new(),
            d(2025, 4, 1),
            "Trạm Y tế xã",
            d(2025, 4, 3),
        );
        assert_eq!(
            e.terminate_for_relapse(&other),
            Err(DomainError::MismatchedReference { field: "episode" })
        );
        let stranger = RelapseEvent::new(
            Id::new(),
            e.id,
            d(2025, 4, 1),
            "Trạm Y tế xã",
            d(2025, 4, 3),
        );
        assert_eq!(
            e.terminate_for_relapse(&stranger),
            Err(DomainError::MismatchedReference { field: "person" })
        );
        let unsigned = RelapseEvent::new(e.person, e.id, d(2025, 4, 1), " ", d(2025, 4, 3));
        assert_eq!(
            e.terminate_for_relapse(&unsigned),
            Err(DomainError::RelapseWithoutAuthority)
        );
        let relapse =
            RelapseEvent::new(e.person, e.id, d(2025, 4, 1), "Trạm Y tế xã", d(2025, 4, 3));
        e.terminate_for_relapse(&relapse).unwrap();
        assert_eq!(
            e.status,
            EpisodeStatus::Terminated(TerminationReason::Relapse)
        );
        assert_eq!(e.ended_on, Some(d(2025, 4, 3)));
        assert!(matches!(
            e.terminate_for_relapse(&relapse),
            Err(DomainError::InvalidTransition { .. })
        ));
    }

    #[test]
    fn validation_checks_kind_specific_fields_and_date_order() {
        let c = ctx();
        let mut e = Episode::new(Id::new(), EpisodeKind::PostRehab, d(2025, 1, 10));
        e.status = EpisodeStatus::Proposed;
        assert_eq!(
            e.validate(&c),
            Err(DomainError::Required { field: "after" })
        );
        let mut e = Episode::new(Id::new(), EpisodeKind::Ost, d(2025, 1, 10))
            .with_after(PriorRehab::Voluntary);
        assert_eq!(
            e.validate(&c),
            Err(DomainError::NotApplicable { field: "after" })
        );
        e.after = None;
        e.positive_test_on = Some(d(2025, 1, 1));
        assert_eq!(
            e.validate(&c),
            Err(DomainError::NotApplicable {
                field: "positive_test_on"
            })
        );
        e.positive_test_on = None;
        e.ended_on = Some(d(2025, 3, 1));
        assert_eq!(
            e.validate(&c),
            Err(DomainError::NotApplicable { field: "ended_on" })
        );

        let mut e = post_rehab(PriorRehab::CompulsoryAdult, d(2025, 1, 10));
        e.completion_reported_on = Some(d(2025, 1, 6));
        e.file_opened_on = Some(d(2025, 1, 5));
        assert_eq!(
            e.validate(&c),
            Err(DomainError::DateOrder {
                earlier: "completion_reported_on",
                later: "file_opened_on"
            })
        );
        e.file_opened_on = Some(d(2025, 1, 7));
        e.decision_date = Some(d(2025, 1, 6));
        assert_eq!(
            e.validate(&c),
            Err(DomainError::DateOrder {
                earlier: "file_opened_on",
                later: "decision_date"
            })
        );
        e.decision_date = Some(d(2027, 1, 6));
        assert_eq!(
            e.validate(&c),
            Err(DomainError::InFuture {
                field: "decision_date"
            })
        );
        e.decision_date = Some(d(2025, 1, 8));
        e.status = EpisodeStatus::Completed;
        e.ended_on = Some(d(2025, 1, 9));
        assert_eq!(
            e.validate(&c),
            Err(DomainError::DateOrder {
                earlier: "start",
                later: "ended_on"
            })
        );
        e.ended_on = Some(d(2026, 1, 10));
        e.forms.decision = Some("12/QĐ-UBND".into());
        assert_eq!(e.validate(&c), Ok(()));
        e.forms.police_proposal = Some("x".repeat(REFERENCE_MAX + 1));
        assert!(matches!(
            e.validate(&c),
            Err(DomainError::TooLong {
                field: "forms.police_proposal",
                ..
            })
        ));
        e.forms.police_proposal = None;
        e.legal_basis = Some(String::new());
        assert_eq!(
            e.validate(&c),
            Err(DomainError::Blank {
                field: "legal_basis"
            })
        );

        let mut dum = Episode::new(Id::new(), EpisodeKind::DrugUserManagement, d(2025, 1, 10));
        dum.positive_test_on = Some(d(2025, 1, 8));
        dum.decision_date = Some(d(2025, 1, 7));
        assert_eq!(
            dum.validate(&c),
            Err(DomainError::DateOrder {
                earlier: "positive_test_on",
                later: "decision_date"
            })
        );
    }

    #[test]
    fn planned_end_is_one_or_two_years_by_prior_rehab() {
        let start = d(2024, 3, 15);
        for (after, end) in [
            (PriorRehab::Voluntary, d(2025, 3, 15)),
            (PriorRehab::OstCompleted, d(2025, 3, 15)),
            (PriorRehab::CompulsoryMinor, d(2025, 3, 15)),
            (PriorRehab::CompulsoryAdult, d(2026, 3, 15)),
        ] {
            assert_eq!(
                post_rehab(after, start).planned_end(params(), &[]),
                Ok(end),
                "{after}"
            );
        }
        let dum = Episode::new(Id::new(), EpisodeKind::DrugUserManagement, start);
        assert_eq!(dum.planned_end(params(), &[]), Ok(d(2025, 3, 15)));
    }

    #[test]
    fn leap_day_start_ends_on_the_last_day_of_february() {
        let e = post_rehab(PriorRehab::Voluntary, d(2024, 2, 29));
        assert_eq!(e.planned_end(params(), &[]), Ok(d(2025, 2, 28)));
        let e = post_rehab(PriorRehab::CompulsoryAdult, d(2024, 2, 29));
        assert_eq!(e.planned_end(params(), &[]), Ok(d(2026, 2, 28)));
    }

    #[test]
    fn planned_end_needs_a_term() {
        let draft = Episode::new(Id::new(), EpisodeKind::PostRehab, d(2024, 1, 1));
        assert_eq!(
            draft.planned_end(params(), &[]),
            Err(DomainError::Required { field: "after" })
        );
        let home = Episode::new(Id::new(), EpisodeKind::VoluntaryHomeRehab, d(2024, 1, 1));
        assert_eq!(
            home.planned_end(params(), &[]),
            Err(DomainError::NoTerm {
                kind: "voluntary_home_rehab"
            })
        );
        let early = post_rehab(PriorRehab::Voluntary, d(2021, 1, 1));
        assert_eq!(
            early.planned_end(params(), &[]),
            Err(DomainError::NoLegalParams {
                date: d(2021, 1, 1)
            })
        );
        let mut pinned = post_rehab(PriorRehab::Voluntary, d(2024, 1, 1));
        pinned.legal_basis = Some("law-99-2099".into());
        assert_eq!(
            pinned.planned_end(params(), &[]),
            Err(DomainError::UnknownLegalBasis)
        );
        pinned.legal_basis = Some("law-73-2021".into());
        assert_eq!(pinned.planned_end(params(), &[]), Ok(d(2025, 1, 1)));
        let last = post_rehab(PriorRehab::Voluntary, NaiveDate::MAX);
        assert_eq!(
            last.planned_end(params(), &[]),
            Err(DomainError::DateOutOfRange {
                field: "planned_end"
            })
        );
    }

    #[test]
    fn unreported_absence_moves_planned_end() {
        let e = post_rehab(PriorRehab::Voluntary, d(2024, 3, 1));
        let away = absence(&e, d(2024, 6, 1), d(2024, 6, 10), false);
        assert_eq!(e.planned_end(params(), &[away]), Ok(d(2025, 3, 11)));
    }

    #[test]
    fn reported_absence_does_not_move_planned_end() {
        let e = post_rehab(PriorRehab::Voluntary, d(2024, 3, 1));
        let away = absence(&e, d(2024, 6, 1), d(2024, 6, 10), true);
        assert_eq!(e.planned_end(params(), &[away]), Ok(d(2025, 3, 1)));
    }

    #[test]
    fn overlapping_absences_are_counted_once() {
        let e = post_rehab(PriorRehab::Voluntary, d(2024, 3, 1));
        let a = absence(&e, d(2024, 6, 1), d(2024, 6, 10), false);
        let b = absence(&e, d(2024, 6, 5), d(2024, 6, 14), false);
        let inner = absence(&e, d(2024, 6, 2), d(2024, 6, 3), false);
        assert_eq!(e.planned_end(params(), &[a, b, inner]), Ok(d(2025, 3, 15)));
    }

    #[test]
    fn absences_outside_management_or_of_other_episodes_are_ignored() {
        let e = post_rehab(PriorRehab::Voluntary, d(2024, 3, 1));
        let before = absence(&e, d(2024, 2, 1), d(2024, 2, 29), false);
        let straddling_start = absence(&e, d(2024, 2, 25), d(2024, 3, 2), false);
        let after = absence(&e, d(2025, 4, 1), d(2025, 4, 30), false);
        let mut elsewhere = absence(&e, d(2024, 6, 1), d(2024, 6, 30), false);
        elsewhere.episode = Id::new();
        let backwards = absence(&e, d(2024, 7, 10), d(2024, 7, 1), false);
        assert_eq!(
            e.planned_end(
                params(),
                &[before, straddling_start, after, elsewhere, backwards]
            ),
            Ok(d(2025, 3, 3))
        );
    }

    #[test]
    fn absence_running_past_the_end_keeps_pushing_it() {
        let e = post_rehab(PriorRehab::Voluntary, d(2024, 3, 1));
        // Away from 20 February 2025 (9 days before the end) for 30 days: all 30 count.
        let away = absence(&e, d(2025, 2, 20), d(2025, 3, 21), false);
        assert_eq!(
            e.planned_end(params(), std::slice::from_ref(&away)),
            Ok(d(2025, 3, 31))
        );
        // A second absence starting after the original end but before the extended one counts.
        let later = absence(&e, d(2025, 3, 25), d(2025, 3, 26), false);
        assert_eq!(
            e.planned_end(params(), &[later.clone(), away]),
            Ok(d(2025, 4, 2))
        );
        assert_eq!(e.planned_end(params(), &[later]), Ok(d(2025, 3, 1)));
    }

    #[test]
    fn deadline_checks_follow_the_file_dates() {
        let cal = Calendar::embedded();
        let mut e = post_rehab(PriorRehab::Voluntary, d(2026, 3, 13));
        assert_eq!(e.deadline_checks(cal, params()), Ok(Vec::new()));
        e.completion_reported_on = Some(d(2026, 3, 9));
        e.file_opened_on = Some(d(2026, 3, 13));
        e.decision_date = Some(d(2026, 3, 17));
        let checks = e.deadline_checks(cal, params()).unwrap();
        assert_eq!(checks.len(), 2);
        assert_eq!(checks[0].kind, DeadlineKind::FileOpening);
        assert_eq!(checks[0].due, d(2026, 3, 12));
        assert!(!checks[0].met);
        assert_eq!(checks[1].kind, DeadlineKind::ChairmanDecision);
        assert_eq!(checks[1].due, d(2026, 3, 17));
        assert!(checks[1].met);

        let mut dum = Episode::new(Id::new(), EpisodeKind::DrugUserManagement, d(2026, 3, 12));
        dum.positive_test_on = Some(d(2026, 3, 9));
        dum.decision_date = Some(d(2026, 3, 12));
        let checks = dum.deadline_checks(cal, params()).unwrap();
        assert_eq!(checks.len(), 1);
        assert!(checks[0].met);
        let ost = Episode::new(Id::new(), EpisodeKind::Ost, d(2026, 3, 12));
        assert_eq!(ost.deadline_checks(cal, params()), Ok(Vec::new()));
    }
}
