//! Reports for any org subtree and period, from the report facts the store keeps beside the
//! records (`donghanh_core::report`: the same definitions and engine a supervisor's phone runs).
//!
//! Who may see what (DESIGN.md §2): a supervisor the report of their commune (or a unit in it);
//! an officer any unit within their own; nobody else. Reports are aggregates: counts, amounts,
//! percentages, and breakdowns keyed by random org-unit ids and codes.

use std::collections::HashMap;

use chrono::NaiveDate;
use donghanh_core::domain::{Id, OrgTree, OrgUnitKind, Role, User};
use donghanh_core::report::{
    Closed, Definitions, FactSet, Period, Plan, PlanProgress, Report, ReportError,
};

use crate::store::{StoreError, SyncStore};

/// Why a report was not computed.
#[derive(Debug, thiserror::Error)]
pub enum ReportFailure {
    /// The org unit does not exist.
    #[error("no such org unit")]
    UnknownOrg,
    /// The caller may not see this unit's report.
    #[error("not allowed")]
    Forbidden,
    /// The request names a wrong template or period.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether `user` may see the reports of `org`.
#[must_use]
pub fn may_see(user: &User, org: Id, tree: &OrgTree) -> bool {
    match user.role {
        Role::Supervisor => tree
            .commune_of(user.org_unit)
            .is_some_and(|commune| tree.is_within(org, commune)),
        Role::Officer => tree.is_within(org, user.org_unit),
        _ => false,
    }
}

/// The report of `template` for `period` over `org` and everything below it. A closed period
/// answers the report kept when it was closed. An open one is computed now, with the progress
/// of the plans set for `org` whose period includes its last day, and late notes for the
/// closed periods just before it whose numbers have changed since. `viewer`: the user asking
/// (checked with [`may_see`]); `None` for the server's own command line.
///
/// # Errors
/// [`ReportFailure`].
pub async fn compute<S: SyncStore>(
    store: &S,
    viewer: Option<&User>,
    org: Id,
    template: &str,
    period: Period,
) -> Result<Report, ReportFailure> {
    let defs = check_request(template, period)?;
    check_viewer(store, viewer, org).await?;
    if let Some(frozen) = store
        .closed_report(org, template.to_owned(), period)
        .await?
    {
        return Ok(frozen);
    }
    let mut report = fresh(store, &defs, org, template, period).await?;
    // Closed periods right before this one (the run of them): what arrived late.
    let mut before = period.prev();
    for _ in 0..12 {
        let Some(frozen) = store
            .closed_report(org, template.to_owned(), before)
            .await?
        else {
            break;
        };
        let now = fresh(store, &defs, org, template, before).await?;
        report.late.extend(frozen.changes_since(&now));
        before = before.prev();
    }
    Ok(report)
}

/// Closes `period`: its report is computed now and kept, and answers from then on. The period
/// must be over (in Vietnam) and not closed already.
///
/// # Errors
/// [`ReportFailure`]; `Report(InvalidPeriod)` for a period not over; `Store(Exists)` when
/// closed already.
pub async fn close<S: SyncStore>(
    store: &S,
    viewer: Option<&User>,
    org: Id,
    template: &str,
    period: Period,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Report, ReportFailure> {
    check_request(template, period)?;
    check_viewer(store, viewer, org).await?;
    if period.end() >= donghanh_core::domain::vn_date(now) {
        return Err(ReportError::PeriodNotOver(period.to_string()).into());
    }
    let mut report = compute(store, viewer, org, template, period).await?;
    if report.closed.is_some() {
        return Err(StoreError::Exists {
            what: "a closed report for this unit, template and period",
        }
        .into());
    }
    report.closed = Some(Closed {
        at: now,
        by: viewer.map(|v| v.id),
    });
    store.close_report(org, report.clone(), now).await?;
    Ok(report)
}

fn check_request(template: &str, period: Period) -> Result<Definitions, ReportFailure> {
    let defs = Definitions::embedded()?;
    // A wrong template or period answers before anything is read.
    let wanted = defs.template(template)?;
    if wanted.period != period.kind() {
        return Err(ReportError::WrongPeriodKind {
            template: wanted.code.clone(),
            expected: wanted.period,
            given: period.kind(),
        }
        .into());
    }
    Ok(defs)
}

async fn check_viewer<S: SyncStore>(
    store: &S,
    viewer: Option<&User>,
    org: Id,
) -> Result<(), ReportFailure> {
    let tree = OrgTree::new(store.org_units().await?).map_err(StoreError::Invalid)?;
    if !tree.contains(org) {
        return Err(ReportFailure::UnknownOrg);
    }
    if viewer.is_some_and(|v| !may_see(v, org, &tree)) {
        return Err(ReportFailure::Forbidden);
    }
    Ok(())
}

/// The report computed from the records now, with the plans' progress.
async fn fresh<S: SyncStore>(
    store: &S,
    defs: &Definitions,
    org: Id,
    template: &str,
    period: Period,
) -> Result<Report, ReportFailure> {
    let plans: Vec<Plan> = store
        .plans(org)
        .await?
        .into_iter()
        .filter(|p| p.period.contains(period.end()))
        .collect();
    let from = plans
        .iter()
        .map(|p| p.period.start())
        .fold(period.start(), std::cmp::min);
    let set = facts(store, None, org, from, period.end()).await?;
    let mut report = set.report(defs, template, period)?;
    for plan in &plans {
        report
            .plans
            .push(set.plan_progress(defs, plan, period.end())?);
    }
    Ok(report)
}

/// A plan's progress counted to `as_of`.
///
/// # Errors
/// [`ReportFailure`]; `Store(NotFound)` when no plan is set for the unit and period.
pub async fn plan_progress<S: SyncStore>(
    store: &S,
    viewer: Option<&User>,
    org: Id,
    period: Period,
    as_of: NaiveDate,
) -> Result<PlanProgress, ReportFailure> {
    let defs = Definitions::embedded()?;
    let plan = store
        .plans(org)
        .await?
        .into_iter()
        .find(|p| p.period == period)
        .ok_or(StoreError::NotFound)?;
    let set = facts(store, viewer, org, period.start(), period.end()).await?;
    Ok(set.plan_progress(&defs, &plan, as_of)?)
}

/// Sets a plan for `org` (replacing one of the same period).
///
/// # Errors
/// [`ReportFailure`]: an unknown unit, a viewer who may not, an invalid plan.
pub async fn set_plan<S: SyncStore>(
    store: &S,
    viewer: Option<&User>,
    plan: Plan,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), ReportFailure> {
    let defs = Definitions::embedded()?;
    plan.validate(&defs)?;
    let tree = OrgTree::new(store.org_units().await?).map_err(StoreError::Invalid)?;
    if !tree.contains(plan.org) {
        return Err(ReportFailure::UnknownOrg);
    }
    if viewer.is_some_and(|v| !may_see(v, plan.org, &tree)) {
        return Err(ReportFailure::Forbidden);
    }
    let by = viewer.map_or_else(|| Id::from(uuid::Uuid::nil()), |v| v.id);
    store.put_plan(plan, by, now).await?;
    Ok(())
}

/// The facts of `org`'s subtree between two days, with its staff.
async fn facts<S: SyncStore>(
    store: &S,
    viewer: Option<&User>,
    org: Id,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<FactSet, ReportFailure> {
    let tree = OrgTree::new(store.org_units().await?).map_err(StoreError::Invalid)?;
    if !tree.contains(org) {
        return Err(ReportFailure::UnknownOrg);
    }
    if viewer.is_some_and(|v| !may_see(v, org, &tree)) {
        return Err(ReportFailure::Forbidden);
    }
    let (mut communes, mut points) = (Vec::new(), Vec::new());
    for id in tree.subtree(org) {
        match tree.get(id).map(|u| u.kind) {
            Some(OrgUnitKind::Commune) => communes.push(id),
            Some(OrgUnitKind::CommunityPoint) => points.push(id),
            _ => {}
        }
    }
    let point_communes: HashMap<Id, Id> = points
        .iter()
        .filter_map(|p| tree.commune_of(*p).map(|c| (*p, c)))
        .collect();
    let mut facts = store.staff_facts(communes.clone()).await?;
    facts.extend(store.report_facts(communes, points, start, end).await?);
    Ok(FactSet::new(facts, point_communes))
}

/// The records behind one indicator's number for `period` over `org` (for a ratio, its
/// numerator's): ids and kinds, for a supervisor of the commune, who holds these cases. An
/// officer sees aggregates only (names need break-the-glass, not offered yet): `Forbidden`.
///
/// # Errors
/// [`ReportFailure`].
pub async fn records<S: SyncStore>(
    store: &S,
    viewer: &User,
    org: Id,
    indicator: &str,
    period: Period,
) -> Result<Vec<(Id, &'static str)>, ReportFailure> {
    let defs = Definitions::embedded()?;
    if defs.indicator(indicator).is_none() {
        return Err(ReportError::UnknownIndicator(indicator.to_owned()).into());
    }
    if viewer.role != donghanh_core::domain::Role::Supervisor {
        return Err(ReportFailure::Forbidden);
    }
    let set = facts(store, Some(viewer), org, period.start(), period.end()).await?;
    let ids = set.explain(&defs, indicator, period)?;
    let kinds: HashMap<Id, &'static str> = set
        .facts()
        .iter()
        .map(|f| (f.id(), f.type_code()))
        .collect();
    Ok(ids
        .into_iter()
        .map(|id| (id, kinds.get(&id).copied().unwrap_or("record")))
        .collect())
}
