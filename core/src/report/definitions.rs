//! Indicator definitions and report templates, as data (`core/data/reports.json`).
//!
//! A definition names a *source* (which facts it counts), a *measure* (records, distinct people,
//! an amount, attendances) and a *filter* from a fixed vocabulary; or it is a *ratio* of two
//! other indicators. A template lists indicators in the rows and sections of an official form.
//! New forms and changed definitions are data: loading refuses anything the engine would have to
//! guess about (unknown fields or codes, a filter that does not apply to its source, an episode
//! indicator with no date rule, ratios of ratios, reference cycles).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::domain::{
    BenefitKind, DeadlineStatus, EpisodeKind, PriorRehab, ReferralStatus, ReferralTarget, Service,
    SessionKind, SessionStatus, TerminationReason, TestKind, TestResult,
};

use super::{PeriodKind, ReportError};

const EMBEDDED_JSON: &str = include_str!("../../data/reports.json");

/// Which facts an indicator counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Episodes (management files).
    Episode,
    /// Visits.
    Visit,
    /// Drug tests.
    DrugTest,
    /// Support benefits.
    Benefit,
    /// Referrals.
    Referral,
    /// Relapse determinations.
    Relapse,
    /// Sessions at community points.
    Session,
    /// Attendance rows at community points.
    Attendance,
    /// Legal deadlines (derived from episodes and transfers).
    Deadline,
    /// Staff of the communes (server only: a phone holds no staff facts).
    Staff,
}

/// What an indicator adds up over its matching facts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Matching facts (lượt).
    Records,
    /// Distinct people among the matching facts.
    People,
    /// Sum of the amounts in VND (benefits).
    AmountVnd,
    /// Sum of attendances (a named person counts 1, walk-ins their number).
    Attendance,
}

/// Which date of an episode falls in the period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EpisodeDate {
    /// Start of management.
    Start,
    /// End (completion or termination).
    EndedOn,
    /// The person reported completing rehab.
    CompletionReportedOn,
    /// The management file was opened.
    FileOpenedOn,
    /// The chairman decided.
    DecisionDate,
}

/// The filter vocabulary. Every field is optional; a present field must match. Which fields
/// apply to which source is checked when definitions load.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Kind codes: episode kind, benefit kind, referral target, session kind, test kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Vec<String>>,
    /// Status codes: episode status (`terminated` without reason), session or referral status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Vec<String>>,
    /// Termination reasons (episodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Vec<String>>,
    /// Prior rehab (post-rehab episodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Vec<String>>,
    /// Test results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Vec<String>>,
    /// Visits recording at least one of these services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services_any: Option<Vec<String>>,
    /// Deadline status on the last day of the period (`met`, `late`, `pending`, `overdue`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Vec<String>>,
    /// Episodes: this date falls in the period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<EpisodeDate>,
    /// Episodes: these dates are recorded (on any day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_date: Option<Vec<EpisodeDate>>,
    /// Episodes in force on the last day of the period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_at_end: Option<bool>,
    /// Episodes in force on at least one day of the period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_during: Option<bool>,
    /// Relapse outcomes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Vec<String>>,
    /// Staff trained on or before the last day of the period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trained: Option<bool>,
    /// Only people counted by this (people-measured) indicator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub people_of: Option<String>,
}

/// A ratio of two indicators, shown in percent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ratio {
    /// The numerator's code.
    pub numerator: String,
    /// The denominator's code.
    pub denominator: String,
}

/// One indicator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Indicator {
    /// Stable code (frozen reports refer to it).
    pub code: String,
    /// Label in Vietnamese.
    pub label_vi: String,
    /// Label in English.
    pub label_en: String,
    /// Precise definition in Vietnamese.
    pub definition_vi: String,
    /// Precise definition in English.
    pub definition_en: String,
    /// The facts counted (absent for a ratio).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// What is added up (absent for a ratio).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<Measure>,
    /// Which facts match.
    #[serde(default)]
    pub filter: Filter,
    /// A ratio of two indicators instead of a count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<Ratio>,
}

impl Indicator {
    /// Whether this indicator is a ratio (percent).
    #[must_use]
    pub fn is_ratio(&self) -> bool {
        self.ratio.is_some()
    }
}

/// One row of a template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateRow {
    /// The row number printed on the form ("4.1").
    pub no: String,
    /// The indicator's code.
    pub indicator: String,
}

/// One section of a template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// Title in Vietnamese.
    pub title_vi: String,
    /// Title in English.
    pub title_en: String,
    /// Rows in order.
    pub rows: Vec<TemplateRow>,
}

/// A report form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Stable code ("01-BCN").
    pub code: String,
    /// The period it covers.
    pub period: PeriodKind,
    /// Title in Vietnamese.
    pub title_vi: String,
    /// Title in English.
    pub title_en: String,
    /// The legal form it follows and when it is due.
    pub basis: String,
    /// Sections in order.
    pub sections: Vec<Section>,
}

/// An age band for disaggregation (age in whole years on the last day of the period, from the
/// year of birth).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgeBand {
    /// Stable code.
    pub code: String,
    /// Youngest age in the band (none: no lower bound).
    #[serde(default)]
    pub min: Option<u32>,
    /// Oldest age in the band (none: no upper bound).
    #[serde(default)]
    pub max: Option<u32>,
    /// Label in Vietnamese.
    pub label_vi: String,
    /// Label in English.
    pub label_en: String,
}

/// The whole set of definitions, checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definitions {
    /// Version of the set (frozen reports keep it).
    pub version: String,
    /// How to change the file.
    #[serde(default)]
    pub note: String,
    /// Age bands, in order, covering every age exactly once.
    pub age_bands: Vec<AgeBand>,
    /// Indicators.
    pub indicators: Vec<Indicator>,
    /// Templates.
    pub templates: Vec<Template>,
}

impl Definitions {
    /// The definitions shipped with this build.
    ///
    /// # Errors
    /// Never in a tested build (a test loads them); `Definitions` if the embedded file is wrong.
    pub fn embedded() -> Result<Self, ReportError> {
        Self::from_json(EMBEDDED_JSON)
    }

    /// Parses and checks a definitions file.
    ///
    /// # Errors
    /// `Definitions` naming what is wrong (codes, never data).
    pub fn from_json(json: &str) -> Result<Self, ReportError> {
        let defs: Definitions = serde_json::from_str(json).map_err(|e| {
            ReportError::Definitions(format!(
                "not a valid definitions file (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        defs.check()?;
        Ok(defs)
    }

    /// The indicator with this code.
    #[must_use]
    pub fn indicator(&self, code: &str) -> Option<&Indicator> {
        self.indicators.iter().find(|i| i.code == code)
    }

    /// The template with this code.
    ///
    /// # Errors
    /// `UnknownTemplate`.
    pub fn template(&self, code: &str) -> Result<&Template, ReportError> {
        self.templates
            .iter()
            .find(|t| t.code == code)
            .ok_or_else(|| ReportError::UnknownTemplate(code.to_owned()))
    }

    /// The age band of `age`.
    #[must_use]
    pub fn age_band(&self, age: u32) -> Option<&AgeBand> {
        self.age_bands
            .iter()
            .find(|b| b.min.is_none_or(|m| age >= m) && b.max.is_none_or(|m| age <= m))
    }

    fn check(&self) -> Result<(), ReportError> {
        let bad = |what: String| Err(ReportError::Definitions(what));
        if self.version.trim().is_empty() {
            return bad("the version is empty".into());
        }
        // Age bands: ordered, contiguous from 0 (or no lower bound) to no upper bound.
        let mut next = 0u32;
        for (i, band) in self.age_bands.iter().enumerate() {
            if band.min.unwrap_or(0) != next {
                return bad(format!(
                    "age band {} does not start where the last ended",
                    band.code
                ));
            }
            match band.max {
                Some(max) if max >= band.min.unwrap_or(0) => next = max + 1,
                None if i + 1 == self.age_bands.len() => next = u32::MAX,
                _ => return bad(format!("age band {} has a wrong upper bound", band.code)),
            }
        }
        if self.age_bands.is_empty() || next != u32::MAX {
            return bad("the age bands must end with an open band".into());
        }
        let mut codes = BTreeSet::new();
        for ind in &self.indicators {
            if ind.code.trim().is_empty() || !codes.insert(ind.code.as_str()) {
                return bad(format!(
                    "indicator code {:?} is empty or repeated",
                    ind.code
                ));
            }
            for text in [
                &ind.label_vi,
                &ind.label_en,
                &ind.definition_vi,
                &ind.definition_en,
            ] {
                if text.trim().is_empty() {
                    return bad(format!(
                        "indicator {} has an empty label or definition",
                        ind.code
                    ));
                }
            }
        }
        for ind in &self.indicators {
            self.check_indicator(ind)?;
        }
        // people_of chains must end (a counted indicator may restrict to another's people).
        for ind in &self.indicators {
            let mut seen = BTreeSet::new();
            let mut at = ind;
            while let Some(next) = &at.filter.people_of {
                if !seen.insert(at.code.as_str()) {
                    return bad(format!(
                        "indicator {} refers to itself through people_of",
                        ind.code
                    ));
                }
                at = self.indicator(next).ok_or_else(|| {
                    ReportError::Definitions(format!("{} refers to unknown {next}", at.code))
                })?;
            }
        }
        let mut templates = BTreeSet::new();
        for t in &self.templates {
            if !templates.insert(t.code.as_str()) {
                return bad(format!("template {} is repeated", t.code));
            }
            let mut rows = BTreeMap::new();
            for s in &t.sections {
                for r in &s.rows {
                    if self.indicator(&r.indicator).is_none() {
                        return bad(format!(
                            "template {} row {} names unknown indicator {}",
                            t.code, r.no, r.indicator
                        ));
                    }
                    if rows.insert(r.no.as_str(), ()).is_some() {
                        return bad(format!("template {} repeats row {}", t.code, r.no));
                    }
                }
            }
        }
        Ok(())
    }

    fn check_indicator(&self, ind: &Indicator) -> Result<(), ReportError> {
        let bad = |what: &str| {
            Err(ReportError::Definitions(format!(
                "indicator {}: {what}",
                ind.code
            )))
        };
        if let Some(ratio) = &ind.ratio {
            if ind.source.is_some() || ind.measure.is_some() || ind.filter != Filter::default() {
                return bad("a ratio has no source, measure or filter of its own");
            }
            for part in [&ratio.numerator, &ratio.denominator] {
                match self.indicator(part) {
                    None => return bad("its ratio names an unknown indicator"),
                    Some(p) if p.is_ratio() => return bad("a ratio of ratios is not allowed"),
                    Some(_) => {}
                }
            }
            return Ok(());
        }
        let (Some(source), Some(measure)) = (ind.source, ind.measure) else {
            return bad("needs a source and a measure, or a ratio");
        };
        let f = &ind.filter;
        let allowed: &[&str] = match source {
            Source::Episode => &[
                "kind",
                "status",
                "reason",
                "after",
                "date",
                "has_date",
                "active_at_end",
                "active_during",
                "people_of",
            ],
            Source::Visit => &["services_any", "people_of"],
            Source::DrugTest => &["kind", "result", "people_of"],
            Source::Benefit | Source::Referral => &["kind", "status", "people_of"],
            Source::Relapse => &["outcome", "people_of"],
            Source::Staff => &["trained"],
            Source::Session => &["kind", "status"],
            Source::Attendance => &[],
            Source::Deadline => &["kind", "deadline", "people_of"],
        };
        for (name, present) in [
            ("kind", f.kind.is_some()),
            ("status", f.status.is_some()),
            ("reason", f.reason.is_some()),
            ("after", f.after.is_some()),
            ("result", f.result.is_some()),
            ("services_any", f.services_any.is_some()),
            ("deadline", f.deadline.is_some()),
            ("date", f.date.is_some()),
            ("has_date", f.has_date.is_some()),
            ("active_at_end", f.active_at_end.is_some()),
            ("active_during", f.active_during.is_some()),
            ("people_of", f.people_of.is_some()),
            ("outcome", f.outcome.is_some()),
            ("trained", f.trained.is_some()),
        ] {
            if present && !allowed.contains(&name) {
                return bad(&format!("filter {name} does not apply to this source"));
            }
        }
        if source == Source::Episode {
            let rules = usize::from(f.date.is_some())
                + usize::from(f.active_at_end == Some(true))
                + usize::from(f.active_during == Some(true));
            if rules != 1 {
                return bad(
                    "an episode indicator needs exactly one of date, active_at_end, active_during",
                );
            }
        }
        if source == Source::Benefit && source_status_used(f) {
            return bad("benefits have no status");
        }
        match (measure, source) {
            (Measure::AmountVnd, Source::Benefit)
            | (Measure::Attendance, Source::Attendance)
            | (Measure::Records, _) => {}
            (Measure::People, s)
                if !matches!(s, Source::Session | Source::Attendance | Source::Staff) => {}
            _ => return bad("this measure does not apply to this source"),
        }
        if let Some(of) = &f.people_of {
            match self.indicator(of) {
                Some(p) if p.measure == Some(Measure::People) => {}
                _ => return bad("people_of must name an indicator that counts people"),
            }
        }
        check_codes(ind, "kind", f.kind.as_deref(), |c| match source {
            Source::Episode => EpisodeKind::from_code(c).is_some(),
            Source::Benefit => BenefitKind::from_code(c).is_some(),
            Source::Referral => ReferralTarget::from_code(c).is_some(),
            Source::Session => SessionKind::from_code(c).is_some(),
            Source::DrugTest => TestKind::from_code(c).is_some(),
            Source::Deadline => crate::domain::DeadlineKind::from_code(c).is_some(),
            _ => false,
        })?;
        check_codes(ind, "status", f.status.as_deref(), |c| match source {
            Source::Episode => {
                ["draft", "proposed", "active", "completed", "terminated"].contains(&c)
            }
            Source::Session => SessionStatus::from_code(c).is_some(),
            Source::Referral => ReferralStatus::from_code(c).is_some(),
            _ => false,
        })?;
        check_codes(ind, "reason", f.reason.as_deref(), |c| {
            TerminationReason::from_code(c).is_some()
        })?;
        check_codes(ind, "after", f.after.as_deref(), |c| {
            PriorRehab::from_code(c).is_some()
        })?;
        check_codes(ind, "outcome", f.outcome.as_deref(), |c| {
            crate::domain::RelapseOutcome::from_code(c).is_some()
        })?;
        check_codes(ind, "result", f.result.as_deref(), |c| {
            TestResult::from_code(c).is_some()
        })?;
        check_codes(ind, "services_any", f.services_any.as_deref(), |c| {
            Service::from_code(c).is_some()
        })?;
        check_codes(ind, "deadline", f.deadline.as_deref(), |c| {
            DeadlineStatus::from_code(c).is_some()
        })?;
        Ok(())
    }
}

fn source_status_used(f: &Filter) -> bool {
    f.status.is_some()
}

fn check_codes(
    ind: &Indicator,
    field: &str,
    codes: Option<&[String]>,
    valid: impl Fn(&str) -> bool,
) -> Result<(), ReportError> {
    let Some(codes) = codes else { return Ok(()) };
    if codes.is_empty() {
        return Err(ReportError::Definitions(format!(
            "indicator {}: filter {field} is empty (it would match nothing)",
            ind.code
        )));
    }
    match codes.iter().find(|c| !valid(c)) {
        Some(c) => Err(ReportError::Definitions(format!(
            "indicator {}: {c:?} is not a valid {field} code here",
            ind.code
        ))),
        None => Ok(()),
    }
}
