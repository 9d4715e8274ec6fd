//! Legal deadlines counted in working days, and whether they were met.
//!
//! DOMAIN.md's indicator "legal deadlines met (%)" counts files opened within 3 working days of
//! the completion report, decisions within 2, transfer notices within 5, and (for illegal drug
//! users) the commune decision within 3 of the positive test. Each deadline here is
//! "the `n`th working day strictly after the triggering day", with `n` taken from the legal
//! parameter set in force on the triggering day and working days from the [`Calendar`].
//!
//! Decisions:
//! - A step done on the due day is on time; a step done *before* the triggering day (a data-entry
//!   slip or an early notice) also counts as met, because the law only sets a latest day.
//! - A [`DeadlineCheck`] freezes `met` when it is built, so a report over a closed period is
//!   reproducible; [`DeadlineCheck::status`] adds "pending" and "overdue" for open steps.
//! - The percentage in [`DeadlineSummary::met_percent`] is over decided checks only (met, late
//!   or overdue): a step whose deadline has not passed yet is neither a success nor a failure.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::DomainError;
use super::calendar::Calendar;
use super::legal::LegalParams;
use super::rules::coded_enum;

coded_enum! {
    /// A legal deadline of the post-rehab and drug-user management procedures.
    pub enum DeadlineKind {
        /// Open the management file after the person reports completing rehab.
        FileOpening => "file_opening",
        /// The chairman decides on post-rehab management after the file is opened.
        ChairmanDecision => "chairman_decision",
        /// The commune decides on managing an illegal drug user after a positive test.
        CommuneDecisionAfterPositiveTest => "commune_decision_after_positive_test",
        /// A move to another commune is notified.
        TransferNotice => "transfer_notice",
    }
}

/// The last day to act for a deadline of `kind` triggered on `from`.
///
/// # Errors
/// `NoLegalParams` before the first parameter set; `NoCalendar` when the count reaches a year
/// without holiday data; `DateOutOfRange` at the end of the representable dates.
pub fn deadline(
    kind: DeadlineKind,
    from: NaiveDate,
    calendar: &Calendar,
    params: &LegalParams,
) -> Result<NaiveDate, DomainError> {
    let days = params.for_date(from)?.deadline_days(kind);
    calendar.add_working_days(from, days)
}

/// Last day to open the management file (Decree 116/2021 Art. 77: 3 working days).
///
/// # Errors
/// As [`deadline`].
pub fn file_opening_deadline(
    completion_reported_on: NaiveDate,
    calendar: &Calendar,
    params: &LegalParams,
) -> Result<NaiveDate, DomainError> {
    deadline(
        DeadlineKind::FileOpening,
        completion_reported_on,
        calendar,
        params,
    )
}

/// Last day for the chairman's decision once the file is opened (Art. 78: 2 working days).
///
/// # Errors
/// As [`deadline`].
pub fn decision_deadline(
    file_opened_on: NaiveDate,
    calendar: &Calendar,
    params: &LegalParams,
) -> Result<NaiveDate, DomainError> {
    deadline(
        DeadlineKind::ChairmanDecision,
        file_opened_on,
        calendar,
        params,
    )
}

/// Last day to notify a move to another commune (Law 73/2021 Art. 43(2): 5 working days).
///
/// # Errors
/// As [`deadline`].
pub fn transfer_notice_deadline(
    moved_on: NaiveDate,
    calendar: &Calendar,
    params: &LegalParams,
) -> Result<NaiveDate, DomainError> {
    deadline(DeadlineKind::TransferNotice, moved_on, calendar, params)
}

/// Last day for the commune decision on managing an illegal drug user after a positive test
/// (Law 73/2021 Art. 23: 3 working days).
///
/// # Errors
/// As [`deadline`].
pub fn commune_decision_deadline_after_positive_test(
    tested_on: NaiveDate,
    calendar: &Calendar,
    params: &LegalParams,
) -> Result<NaiveDate, DomainError> {
    deadline(
        DeadlineKind::CommuneDecisionAfterPositiveTest,
        tested_on,
        calendar,
        params,
    )
}

coded_enum! {
    /// Where a deadline stands on a given day.
    pub enum DeadlineStatus {
        /// Done on or before the due day.
        Met => "met",
        /// Done after the due day.
        Late => "late",
        /// Not done, due day not passed.
        Pending => "pending",
        /// Not done, due day passed.
        Overdue => "overdue",
    }
}

/// One legal deadline of one case, for reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineCheck {
    /// Which deadline.
    pub kind: DeadlineKind,
    /// The triggering day.
    pub from: NaiveDate,
    /// The last day to act.
    pub due: NaiveDate,
    /// When the step was done, if it was.
    pub done_on: Option<NaiveDate>,
    /// Done on or before `due`.
    pub met: bool,
}

impl DeadlineCheck {
    /// A check from its parts; `met` is derived.
    #[must_use]
    pub fn new(
        kind: DeadlineKind,
        from: NaiveDate,
        due: NaiveDate,
        done_on: Option<NaiveDate>,
    ) -> Self {
        Self {
            kind,
            from,
            due,
            done_on,
            met: done_on.is_some_and(|d| d <= due),
        }
    }

    /// Computes the due day of a deadline triggered on `from` and checks `done_on` against it.
    ///
    /// # Errors
    /// As [`deadline`].
    pub fn compute(
        kind: DeadlineKind,
        from: NaiveDate,
        done_on: Option<NaiveDate>,
        calendar: &Calendar,
        params: &LegalParams,
    ) -> Result<Self, DomainError> {
        Ok(Self::new(
            kind,
            from,
            deadline(kind, from, calendar, params)?,
            done_on,
        ))
    }

    /// Where the deadline stands on `today`.
    #[must_use]
    pub fn status(&self, today: NaiveDate) -> DeadlineStatus {
        match self.done_on {
            Some(done) if done <= self.due => DeadlineStatus::Met,
            Some(_) => DeadlineStatus::Late,
            None if today <= self.due => DeadlineStatus::Pending,
            None => DeadlineStatus::Overdue,
        }
    }
}

/// Counts of deadline checks by status, for the "legal deadlines met (%)" indicator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineSummary {
    /// Done on time.
    pub met: usize,
    /// Done late.
    pub late: usize,
    /// Not done, still in time.
    pub pending: usize,
    /// Not done, past due.
    pub overdue: usize,
}

impl DeadlineSummary {
    /// Tallies `checks` as they stand on `today`.
    #[must_use]
    pub fn of<'a>(checks: impl IntoIterator<Item = &'a DeadlineCheck>, today: NaiveDate) -> Self {
        let mut summary = Self::default();
        for check in checks {
            match check.status(today) {
                DeadlineStatus::Met => summary.met += 1,
                DeadlineStatus::Late => summary.late += 1,
                DeadlineStatus::Pending => summary.pending += 1,
                DeadlineStatus::Overdue => summary.overdue += 1,
            }
        }
        summary
    }

    /// Share of decided checks (met, late, overdue) that were met, in percent; `None` when no
    /// check is decided yet.
    #[must_use]
    pub fn met_percent(&self) -> Option<f64> {
        let decided = self.met + self.late + self.overdue;
        if decided == 0 {
            return None;
        }
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        Some(self.met as f64 * 100.0 / decided as f64)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::testutil::d;

    fn setup() -> (&'static Calendar, &'static LegalParams) {
        (Calendar::embedded(), LegalParams::embedded())
    }

    #[test]
    fn each_deadline_uses_its_number_of_working_days() {
        let (c, p) = setup();
        // Monday 9 March 2026, no holidays nearby.
        let monday = d(2026, 3, 9);
        assert_eq!(file_opening_deadline(monday, c, p), Ok(d(2026, 3, 12)));
        assert_eq!(decision_deadline(monday, c, p), Ok(d(2026, 3, 11)));
        assert_eq!(
            commune_decision_deadline_after_positive_test(monday, c, p),
            Ok(d(2026, 3, 12))
        );
        assert_eq!(transfer_notice_deadline(monday, c, p), Ok(d(2026, 3, 16)));
    }

    #[test]
    fn deadline_before_any_legal_parameters_is_refused() {
        let (c, p) = setup();
        assert_eq!(
            file_opening_deadline(d(2021, 6, 1), c, p),
            Err(DomainError::NoLegalParams {
                date: d(2021, 6, 1)
            })
        );
    }

    #[test]
    fn step_on_the_due_day_is_met_and_a_day_later_is_late() {
        let (c, p) = setup();
        let on_time = DeadlineCheck::compute(
            DeadlineKind::FileOpening,
            d(2026, 3, 9),
            Some(d(2026, 3, 12)),
            c,
            p,
        )
        .unwrap();
        assert!(on_time.met);
        assert_eq!(on_time.status(d(2026, 12, 1)), DeadlineStatus::Met);
        let late = DeadlineCheck::new(
            DeadlineKind::FileOpening,
            d(2026, 3, 9),
            d(2026, 3, 12),
            Some(d(2026, 3, 13)),
        );
        assert!(!late.met);
        assert_eq!(late.status(d(2026, 3, 13)), DeadlineStatus::Late);
        let open = DeadlineCheck::new(
            DeadlineKind::TransferNotice,
            d(2026, 3, 9),
            d(2026, 3, 16),
            None,
        );
        assert_eq!(open.status(d(2026, 3, 16)), DeadlineStatus::Pending);
        assert_eq!(open.status(d(2026, 3, 17)), DeadlineStatus::Overdue);
    }

    #[test]
    fn summary_percent_counts_decided_checks_only() {
        let k = DeadlineKind::ChairmanDecision;
        let checks = [
            DeadlineCheck::new(k, d(2026, 3, 2), d(2026, 3, 4), Some(d(2026, 3, 3))),
            DeadlineCheck::new(k, d(2026, 3, 2), d(2026, 3, 4), Some(d(2026, 3, 4))),
            DeadlineCheck::new(k, d(2026, 3, 2), d(2026, 3, 4), Some(d(2026, 3, 5))),
            DeadlineCheck::new(k, d(2026, 3, 2), d(2026, 3, 4), None),
            DeadlineCheck::new(k, d(2026, 3, 9), d(2026, 3, 11), None),
        ];
        let summary = DeadlineSummary::of(&checks, d(2026, 3, 10));
        assert_eq!(
            summary,
            DeadlineSummary {
                met: 2,
                late: 1,
                pending: 1,
                overdue: 1
            }
        );
        assert_eq!(summary.met_percent(), Some(50.0));
        assert_eq!(DeadlineSummary::default().met_percent(), None);
    }

    #[test]
    fn deadline_check_round_trips() {
        let check = DeadlineCheck::new(
            DeadlineKind::TransferNotice,
            d(2026, 3, 9),
            d(2026, 3, 16),
            None,
        );
        crate::domain::testutil::round_trip(&check);
        assert_eq!(
            DeadlineKind::from_code("transfer_notice"),
            Some(DeadlineKind::TransferNotice)
        );
    }
}
