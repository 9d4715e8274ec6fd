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
    // Who may ask comes before whether there is a plan: a caller who may not see the unit
    // learns nothing of its plans, not even that none is set.
    check_viewer(store, viewer, org).await?;
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

/// One record behind a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BehindRecord {
    /// The record.
    pub id: Id,
    /// Its kind (`visit`, `benefit`, …).
    pub kind: &'static str,
    /// The person it is about, if any.
    pub person: Option<Id>,
}

/// Who may list the records behind a number, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordsAccess {
    /// A supervisor of the commune, whose phone holds these cases: ids and kinds.
    Supervisor,
    /// An officer under a running break-the-glass grant covering the unit: ids, kinds and who
    /// the people are.
    BreakGlass(Id),
}

/// The records behind one indicator's number for `period` over `org` (for a ratio, its
/// numerator's), with how the viewer may see them: a supervisor of the commune, who holds
/// these cases; an officer (who sees aggregates only) under a running break-the-glass grant
/// for the unit or one above it ([`break_glass`]); nobody else (`Forbidden`).
///
/// # Errors
/// [`ReportFailure`].
pub async fn records<S: SyncStore>(
    store: &S,
    viewer: &User,
    org: Id,
    indicator: &str,
    period: Period,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(Vec<BehindRecord>, RecordsAccess), ReportFailure> {
    let defs = Definitions::embedded()?;
    if defs.indicator(indicator).is_none() {
        return Err(ReportError::UnknownIndicator(indicator.to_owned()).into());
    }
    let access = match viewer.role {
        Role::Supervisor => RecordsAccess::Supervisor,
        Role::Officer => {
            let tree = OrgTree::new(store.org_units().await?).map_err(StoreError::Invalid)?;
            if !tree.contains(org) {
                return Err(ReportFailure::UnknownOrg);
            }
            let grant = store
                .glass_grants(viewer.id, now)
                .await?
                .into_iter()
                .find(|g| tree.is_within(org, g.org))
                .ok_or(ReportFailure::Forbidden)?;
            RecordsAccess::BreakGlass(grant.id)
        }
        _ => return Err(ReportFailure::Forbidden),
    };
    let set = facts(store, Some(viewer), org, period.start(), period.end()).await?;
    let ids = set.explain(&defs, indicator, period)?;
    let by_id: HashMap<Id, (&'static str, Option<Id>)> = set
        .facts()
        .iter()
        .map(|f| (f.id(), (f.type_code(), f.person())))
        .collect();
    let records = ids
        .into_iter()
        .map(|id| {
            let (kind, person) = by_id.get(&id).copied().unwrap_or(("record", None));
            BehindRecord { id, kind, person }
        })
        .collect();
    Ok((records, access))
}

/// Shortest break-the-glass reason, in characters: a sentence, not a word.
pub const GLASS_REASON_MIN: usize = 20;
/// Longest break-the-glass reason, in characters.
pub const GLASS_REASON_MAX: usize = 1000;
/// Longest break-the-glass grant, in minutes.
pub const GLASS_MAX_MINUTES: u32 = 240;

/// Why a break-the-glass request was refused.
#[derive(Debug, thiserror::Error)]
pub enum GlassFailure {
    /// Only officers break the glass (supervisors see their commune's names already).
    #[error("only an officer may break the glass")]
    NotOfficer,
    /// The reason is missing, too short or too long.
    #[error("the reason must be a written sentence of 20 to 1000 characters")]
    Reason,
    /// The duration is out of range.
    #[error("minutes must be from 1 to 240")]
    Minutes,
    /// As for reports.
    #[error(transparent)]
    Report(#[from] ReportFailure),
}

/// Breaks the glass: `viewer` (an officer) may list the named records behind the numbers of
/// `org` (within their unit) for `minutes`, for `reason` (kept sealed), audited in the same
/// transaction. Returns the grant.
///
/// # Errors
/// [`GlassFailure`].
pub async fn break_glass<S: SyncStore>(
    store: &S,
    viewer: &User,
    device: Id,
    org: Id,
    reason: &str,
    minutes: u32,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<crate::store::GlassGrant, GlassFailure> {
    // The request is checked before the caller, as everywhere: bad input is 400 for anyone.
    let reason = reason.trim();
    let chars = reason.chars().count();
    if !(GLASS_REASON_MIN..=GLASS_REASON_MAX).contains(&chars) || reason.contains('\0') {
        return Err(GlassFailure::Reason);
    }
    if !(1..=GLASS_MAX_MINUTES).contains(&minutes) {
        return Err(GlassFailure::Minutes);
    }
    if viewer.role != Role::Officer {
        return Err(GlassFailure::NotOfficer);
    }
    check_viewer(store, Some(viewer), org).await?;
    let grant = crate::store::GlassGrant {
        id: Id::new(),
        user: viewer.id,
        org,
        reason: reason.to_owned(),
        granted_at: now,
        expires_at: now + chrono::Duration::minutes(i64::from(minutes)),
    };
    store
        .put_glass_grant(grant.clone(), device)
        .await
        .map_err(ReportFailure::from)?;
    Ok(grant)
}

/// The names an export prints for `org`: its own, its parent's, and every unit's (the
/// breakdown's buckets). Org-unit names are public.
///
/// # Errors
/// [`ReportFailure::Store`]; [`ReportFailure::UnknownOrg`].
pub async fn labels<S: SyncStore>(
    store: &S,
    org: Id,
) -> Result<donghanh_core::report::export::Labels, ReportFailure> {
    let units = store.org_units().await?;
    let by_id: HashMap<Id, &donghanh_core::domain::OrgUnit> =
        units.iter().map(|u| (u.id, u)).collect();
    let unit = by_id.get(&org).ok_or(ReportFailure::UnknownOrg)?;
    let parent_name = unit
        .parent
        .and_then(|p| by_id.get(&p))
        .map(|p| p.name.clone())
        .unwrap_or_default();
    Ok(donghanh_core::report::export::Labels {
        org_name: unit.name.clone(),
        parent_name,
        units: units
            .iter()
            .map(|u| (u.id.to_string(), u.name.clone()))
            .collect(),
    })
}
