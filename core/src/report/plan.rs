//! Plans and targets (kế hoạch, chỉ tiêu; DOMAIN.md "Plans and targets"): an org unit's plan
//! for a period sets targets on named indicators, as counts or percentages; progress is the
//! indicator counted from the plan's first day to a day inside it, and the result is the same
//! at its last day.
//!
//! Decisions:
//! - A target is "at least" (most targets: people reached, % trained) or "at most" (a relapse
//!   rate to keep under). Counts compare with whole numbers, ratios with their percentage.
//! - During the period a target is `met` once reached (for "at least" counts, which only grow)
//!   or `not_yet`; a percentage or an "at most" target can still change, so it is `on_track` or
//!   `off_track` until the end. At the end it is `met` or `not_met`, with the difference.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::domain::Id;

use super::engine::{FactSet, Value};
use super::{Definitions, Period, ReportError};

/// Most targets in a plan.
pub const MAX_TARGETS: usize = 100;
/// Longest plan title, in characters.
pub const MAX_TITLE: usize = 200;

/// Which way a target points.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Goal {
    /// The value must reach this (a count, or a percentage for a ratio).
    AtLeast(f64),
    /// The value must stay at or under this.
    AtMost(f64),
}

impl Goal {
    fn number(self) -> f64 {
        match self {
            Goal::AtLeast(n) | Goal::AtMost(n) => n,
        }
    }

    fn holds(self, value: f64) -> bool {
        match self {
            Goal::AtLeast(n) => value >= n,
            Goal::AtMost(n) => value <= n,
        }
    }
}

/// One target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The indicator's code.
    pub indicator: String,
    /// The goal.
    pub goal: Goal,
}

/// A plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The org unit it is for.
    pub org: Id,
    /// Its period (usually a year).
    pub period: Period,
    /// Its title ("Kế hoạch 2019 …"): public text, no personal data.
    #[serde(default)]
    pub title: String,
    /// Targets.
    pub targets: Vec<Target>,
}

impl Plan {
    /// Checks the plan against the definitions.
    ///
    /// # Errors
    /// `UnknownIndicator`; `Definitions` for a goal out of range, a repeated indicator, too many
    /// targets or a title too long.
    pub fn validate(&self, defs: &Definitions) -> Result<(), ReportError> {
        let bad = |what: String| Err(ReportError::Definitions(what));
        if self.title.chars().count() > MAX_TITLE || self.title.chars().any(char::is_control) {
            return bad(format!(
                "a plan title has at most {MAX_TITLE} characters on one line"
            ));
        }
        if self.targets.is_empty() || self.targets.len() > MAX_TARGETS {
            return bad(format!("a plan has 1 to {MAX_TARGETS} targets"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for t in &self.targets {
            let ind = defs
                .indicator(&t.indicator)
                .ok_or_else(|| ReportError::UnknownIndicator(t.indicator.clone()))?;
            if !seen.insert(t.indicator.as_str()) {
                return bad(format!("target {} is repeated", t.indicator));
            }
            let n = t.goal.number();
            let ok = n.is_finite()
                && n >= 0.0
                && if ind.is_ratio() {
                    n <= 100.0
                } else {
                    n.fract() == 0.0 && n <= 1e12
                };
            if !ok {
                return bad(format!(
                    "target {}: a percentage from 0 to 100, or a whole count",
                    t.indicator
                ));
            }
        }
        Ok(())
    }
}

/// Where a target stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetStatus {
    /// Reached (for good, or at the end).
    Met,
    /// During the period: an "at least" count not reached yet.
    NotYet,
    /// During the period: a percentage or "at most" target that holds today.
    OnTrack,
    /// During the period: a percentage or "at most" target that does not hold today.
    OffTrack,
    /// At the end: not reached.
    NotMet,
}

/// One target's progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetProgress {
    /// The indicator's code.
    pub indicator: String,
    /// Label in Vietnamese.
    pub label_vi: String,
    /// Label in English.
    pub label_en: String,
    /// The goal.
    pub goal: Goal,
    /// The value from the plan's first day to `as_of`.
    pub value: Value,
    /// Where it stands.
    pub status: TargetStatus,
    /// The value minus the goal (a count, or percentage points); none for a ratio over zero.
    pub difference: Option<f64>,
}

/// A plan's progress on a day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanProgress {
    /// The plan.
    pub plan: Plan,
    /// The day counted to (inside the plan's period).
    pub as_of: NaiveDate,
    /// Whether `as_of` is the plan's last day (the result).
    pub final_result: bool,
    /// Each target, in the plan's order.
    pub targets: Vec<TargetProgress>,
}

impl FactSet {
    /// A plan's progress from its first day to `as_of` (kept inside the plan's period).
    ///
    /// # Errors
    /// As [`Plan::validate`].
    pub fn plan_progress(
        &self,
        defs: &Definitions,
        plan: &Plan,
        as_of: NaiveDate,
    ) -> Result<PlanProgress, ReportError> {
        plan.validate(defs)?;
        let (start, end) = (plan.period.start(), plan.period.end());
        let as_of = as_of.clamp(start, end);
        let final_result = as_of == end;
        let mut targets = Vec::new();
        for t in &plan.targets {
            let ind = defs
                .indicator(&t.indicator)
                .ok_or_else(|| ReportError::UnknownIndicator(t.indicator.clone()))?;
            let value = self.indicator(defs, &t.indicator, start, as_of)?;
            let number = value.number();
            let holds = number.is_some_and(|n| t.goal.holds(n));
            let grows_only = matches!(t.goal, Goal::AtLeast(_)) && !ind.is_ratio();
            let status = match (final_result, holds, grows_only) {
                (_, true, true) | (true, true, false) => TargetStatus::Met,
                (true, false, _) => TargetStatus::NotMet,
                (false, false, true) => TargetStatus::NotYet,
                (false, true, false) => TargetStatus::OnTrack,
                (false, false, false) => TargetStatus::OffTrack,
            };
            targets.push(TargetProgress {
                indicator: t.indicator.clone(),
                label_vi: ind.label_vi.clone(),
                label_en: ind.label_en.clone(),
                goal: t.goal,
                difference: number.map(|n| ((n - t.goal.number()) * 10.0).round() / 10.0),
                value,
                status,
            });
        }
        Ok(PlanProgress {
            plan: plan.clone(),
            as_of,
            final_result,
            targets,
        })
    }
}
