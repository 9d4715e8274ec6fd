//! The sync endpoints: `POST /v1/push` and `GET /v1/pull` (DESIGN.md §3).
//!
//! The mutations of a push are handled in order, each as if in its own transaction, so a
//! rejected one never blocks those behind it; the response has one receipt per mutation. The
//! SQLite store writes a whole request in one transaction ([`SyncStore::push_many`]): one
//! commit instead of one per mutation, which was most of a push's cost (BENCHMARKS.md, "Sync"). A pull answers a page of
//! the log for the scopes the caller holds, bounded by a count and a byte budget that the server
//! caps whatever the client asks.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use chrono::Utc;
use donghanh_core::domain::{Id, Role, Scope};
use donghanh_protocol::{
    ConflictList, Directory, PullPage, PullQuery, PushRequest, PushResponse, ResolveConflict,
    ScopeAck, ScopeAcks, SnapshotPage, SnapshotQuery,
};
use serde_json::Value;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::store::{PushCaller, RawJson, SyncStore};
use crate::{ApiJson, ApiPath, AppState};

/// Most mutations in one push.
pub const MAX_MUTATIONS: usize = 500;
/// Most acknowledgements in one `POST /v1/scopes/acks` (a page's worth of events at most).
pub const MAX_ACKS: usize = MAX_PAGE_ITEMS as usize;
/// Most items in one pull page.
pub const MAX_PAGE_ITEMS: u32 = 4_000;
/// Most record bytes in one pull page (uncompressed): the bound that usually ends a page,
/// about 3,000 visits. A device applies a page in one transaction, and with random record ids
/// every transaction rewrites most leaf pages of its indexes once the store is large, so
/// pages much smaller than this made a 100,000-visit pull twice as slow (BENCHMARKS.md,
/// "Sync"); it is also what a phone holds in memory per page, twice while it applies one
/// page and receives the next.
pub const MAX_PAGE_BYTES: u32 = 2 * 1024 * 1024;
/// Most records in one snapshot page (snapshots have no byte budget).
pub const MAX_SNAPSHOT_ITEMS: u32 = 1_000;
/// Largest `client_seq`, `base_version` and pull cursor accepted: the server keeps its counters
/// in SQLite integers (63 bits). A larger one refuses the whole request before anything applies;
/// it used to fail deep in the store as an internal error, after the mutations before it in the
/// same push had been applied.
pub const MAX_COUNTER: u64 = i64::MAX.unsigned_abs();

/// `POST /v1/push`.
pub async fn push<S: SyncStore>(
    State(state): State<AppState<S>>,
    caller: Caller,
    ApiJson(req): ApiJson<PushRequest<Value>>,
) -> Result<Json<PushResponse>, ApiError> {
    if req.mutations.len() > MAX_MUTATIONS {
        return Err(ApiError::Invalid(format!(
            "at most {MAX_MUTATIONS} mutations per push"
        )));
    }
    if req
        .mutations
        .iter()
        .any(|m| m.client_seq > MAX_COUNTER || m.base_version > MAX_COUNTER)
    {
        return Err(ApiError::Invalid(
            "client_seq and base_version must be below 2^63".into(),
        ));
    }
    let user = state
        .store
        .user(caller.user)
        .await?
        .ok_or(ApiError::Unauthorised)?;
    let who = PushCaller {
        user: caller.user,
        role: user.user.role,
        device: caller.device,
    };
    let receipts = state
        .store
        .push_many(who, req.mutations, Utc::now())
        .await?;
    let metrics = &state.metrics;
    crate::metrics::Metrics::add(&metrics.mutations, receipts.len() as u64);
    for r in &receipts {
        match r.outcome {
            donghanh_protocol::Outcome::Rejected => {
                crate::metrics::Metrics::add(&metrics.mutations_rejected, 1)
            }
            donghanh_protocol::Outcome::Conflict => {
                crate::metrics::Metrics::add(&metrics.mutations_conflicted, 1)
            }
            _ => {}
        }
    }
    tracing::info!(device = %caller.device, mutations = receipts.len(), "push");
    Ok(Json(PushResponse {
        receipts,
        key_lease_seconds: state.config.key_lease_seconds,
    }))
}

/// `GET /v1/pull?cursor=&limit=&max_bytes=`.
pub async fn pull<S: SyncStore>(
    State(state): State<AppState<S>>,
    caller: Caller,
    query: Result<Query<PullQuery>, QueryRejection>,
) -> Result<Json<PullPage<RawJson>>, ApiError> {
    let Query(q) = query
        .ok()
        .filter(|Query(q)| q.cursor <= MAX_COUNTER)
        .ok_or_else(|| {
            ApiError::Invalid(
                "expected cursor (a whole number below 2^63) and optional limit, max_bytes".into(),
            )
        })?;
    let (items, bytes) = state.config.pull_page;
    let limit = q.limit.unwrap_or(items).clamp(1, items);
    let max_bytes = q.max_bytes.unwrap_or(bytes).clamp(1, bytes);
    let page = state
        .store
        .pull(caller.user, caller.device, q.cursor, limit, max_bytes)
        .await?;
    crate::metrics::Metrics::add(&state.metrics.pull_pages, 1);
    crate::metrics::Metrics::add(&state.metrics.changes_served, page.changes.len() as u64);
    tracing::info!(
        device = %caller.device,
        changes = page.changes.len(),
        events = page.scope_events.len(),
        "pull"
    );
    Ok(Json(page))
}

/// `GET /v1/scopes/{scope}/snapshot?after=&limit=`: a scope's live records, in id order, for a
/// device bootstrapping a scope it was just granted.
pub async fn snapshot<S: SyncStore>(
    State(state): State<AppState<S>>,
    caller: Caller,
    ApiPath(scope): ApiPath<String>,
    query: Result<Query<SnapshotQuery>, QueryRejection>,
) -> Result<Json<SnapshotPage<RawJson>>, ApiError> {
    let Query(q) = query.map_err(|_| {
        ApiError::Invalid("expected optional after (a record id) and limit (a whole number)".into())
    })?;
    let scope: Scope = scope
        .parse()
        .map_err(|_| ApiError::Invalid("not a valid scope".into()))?;
    let limit = q
        .limit
        .unwrap_or(MAX_SNAPSHOT_ITEMS)
        .clamp(1, MAX_SNAPSHOT_ITEMS);
    let page = state
        .store
        .snapshot(
            caller.user,
            caller.device,
            scope.to_string(),
            q.after.map(Id::from),
            limit,
        )
        .await?;
    tracing::info!(device = %caller.device, records = page.records.len(), "snapshot");
    Ok(Json(page))
}

/// The caller as a supervisor, or `forbidden`.
async fn supervisor<S: SyncStore>(
    state: &AppState<S>,
    caller: Caller,
) -> Result<PushCaller, ApiError> {
    let user = state
        .store
        .user(caller.user)
        .await?
        .ok_or(ApiError::Unauthorised)?;
    if user.user.role != Role::Supervisor {
        return Err(ApiError::Forbidden);
    }
    Ok(PushCaller {
        user: caller.user,
        role: user.user.role,
        device: caller.device,
    })
}

/// `GET /v1/conflicts`: open conflicts in the supervisor's cases.
pub async fn conflicts<S: SyncStore>(
    State(state): State<AppState<S>>,
    caller: Caller,
) -> Result<Json<ConflictList<Value>>, ApiError> {
    let who = supervisor(&state, caller).await?;
    Ok(Json(ConflictList {
        conflicts: state.store.conflicts(who.user).await?,
    }))
}

/// `POST /v1/conflicts/{id}/resolve`: keep the current value, or restore the one that lost.
pub async fn resolve<S: SyncStore>(
    State(state): State<AppState<S>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<ResolveConflict>,
) -> Result<axum::http::StatusCode, ApiError> {
    let who = supervisor(&state, caller).await?;
    let id: Id = id
        .parse()
        .map_err(|_| ApiError::Invalid("not a conflict id".into()))?;
    state
        .store
        .resolve_conflict(who, id, req.restore, Utc::now())
        .await?;
    tracing::info!(conflict = %id, restore = req.restore, by = %who.user, "conflict resolved");
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// `POST /v1/scopes/acks`: several acknowledgements, as [`ack_scope`] would take each, in one
/// transaction; events that are not the caller's are skipped. A bad scope refuses the whole
/// request before anything is recorded.
pub async fn ack_scopes<S: SyncStore>(
    State(state): State<AppState<S>>,
    caller: Caller,
    ApiJson(req): ApiJson<ScopeAcks>,
) -> Result<axum::http::StatusCode, ApiError> {
    if req.acks.len() > MAX_ACKS {
        return Err(ApiError::Invalid(format!(
            "at most {MAX_ACKS} acknowledgements per request"
        )));
    }
    let mut acks = Vec::with_capacity(req.acks.len());
    for ack in req.acks {
        let scope: Scope = ack
            .scope
            .parse()
            .map_err(|_| ApiError::Invalid("not a valid scope".into()))?;
        acks.push(ScopeAck {
            scope: scope.to_string(),
            ..ack
        });
    }
    let n = acks.len();
    let recorded = state
        .store
        .ack_scopes(caller.user, caller.device, acks, Utc::now())
        .await?;
    tracing::info!(device = %caller.device, acks = n, recorded, "scopes acknowledged");
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// `POST /v1/scopes/ack`: a device reports that it purged (or bootstrapped) a scope; the
/// acknowledgement is audited. `not_found` for an event that is not the caller's.
pub async fn ack_scope<S: SyncStore>(
    State(state): State<AppState<S>>,
    caller: Caller,
    ApiJson(ack): ApiJson<ScopeAck>,
) -> Result<axum::http::StatusCode, ApiError> {
    let scope: Scope = ack
        .scope
        .parse()
        .map_err(|_| ApiError::Invalid("not a valid scope".into()))?;
    let ack = ScopeAck {
        scope: scope.to_string(),
        ..ack
    };
    state
        .store
        .ack_scope(caller.user, caller.device, ack, Utc::now())
        .await?;
    tracing::info!(device = %caller.device, "scope acknowledged");
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// `GET /v1/directory`: whom the caller may assign work to (a supervisor: the staff of their
/// commune; anyone else: themselves).
pub async fn directory<S: SyncStore>(
    State(state): State<AppState<S>>,
    caller: Caller,
) -> Result<Json<Directory>, ApiError> {
    let users = state.store.directory(caller.user).await?;
    tracing::info!(device = %caller.device, users = users.len(), "directory");
    Ok(Json(Directory { users }))
}

/// The query of `GET /v1/reports/{template}`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// The org unit (its subtree is counted).
    pub org: uuid::Uuid,
    /// The period: `2026-10`, `2026-Q4`, `2026-H2` or `2026`.
    pub period: String,
    /// `json` (the default), `csv` or `xlsx` (the form as a spreadsheet).
    #[serde(default)]
    pub format: Option<String>,
}

/// `GET /v1/reports/{template}?org=…&period=…[&format=csv|xlsx]`: a report template computed
/// for an org unit and everything below it (supervisors: their commune; officers: their own
/// unit's subtree), as JSON, CSV or an XLSX laid out as the paper form.
pub async fn report<S: SyncStore>(
    State(state): State<AppState<S>>,
    caller: Caller,
    ApiPath(template): ApiPath<String>,
    query: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    use axum::http::header;
    use axum::response::IntoResponse;
    let Query(q) = query.map_err(|_| {
        ApiError::Invalid(
            "expected org (an org-unit id) and period (YYYY-MM, YYYY-Qn, YYYY-H1/H2 or YYYY)"
                .into(),
        )
    })?;
    let format = match q.format.as_deref() {
        None | Some("json") => None,
        Some("csv") => Some("csv"),
        Some("xlsx") => Some("xlsx"),
        Some(_) => return Err(ApiError::Invalid("format must be json, csv or xlsx".into())),
    };
    let period = report_period(&q.period)?;
    let user = caller_user(&state, caller).await?;
    let report = crate::reports::compute(
        &*state.store,
        Some(&user),
        Id::from(q.org),
        &template,
        period,
    )
    .await
    .map_err(report_failure)?;
    tracing::info!(device = %caller.device, template = %report.template, period = %report.period, format = format.unwrap_or("json"), "report");
    let Some(format) = format else {
        return Ok(Json(report).into_response());
    };
    let labels = crate::reports::labels(&*state.store, Id::from(q.org))
        .await
        .map_err(report_failure)?;
    let (bytes, content_type) = if format == "csv" {
        (
            donghanh_core::report::export::to_csv(&report, &labels),
            "text/csv; charset=utf-8",
        )
    } else {
        (
            donghanh_core::report::export::to_xlsx(&report, &labels),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    };
    let bytes = bytes.map_err(|e| ApiError::Internal(e.to_string()))?;
    let file = format!("{}_{}.{format}", report.template, report.period);
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

fn report_failure(e: crate::reports::ReportFailure) -> ApiError {
    use crate::reports::ReportFailure;
    use donghanh_core::report::ReportError;
    match e {
        ReportFailure::UnknownOrg => ApiError::NotFound,
        ReportFailure::Forbidden => ApiError::Forbidden,
        ReportFailure::Report(ReportError::UnknownTemplate(_)) => ApiError::NotFound,
        // What the caller typed is never repeated (it may be a name or a phone number).
        ReportFailure::Report(ReportError::UnknownIndicator(_)) => {
            ApiError::Invalid("no such indicator: see the report definitions".into())
        }
        ReportFailure::Report(ReportError::InvalidPeriod(_)) => {
            ApiError::Invalid("period must be YYYY-MM, YYYY-Qn, YYYY-H1/H2 or YYYY".into())
        }
        ReportFailure::Report(e) => ApiError::Invalid(e.to_string()),
        ReportFailure::Store(e) => e.into(),
    }
}

/// `PUT /v1/plans`: sets the plan of an org unit for a period (replacing one set before), by a
/// supervisor for their commune or an officer within their unit.
pub async fn put_plan<S: SyncStore>(
    State(state): State<AppState<S>>,
    caller: Caller,
    ApiJson(plan): ApiJson<donghanh_core::report::Plan>,
) -> Result<axum::http::StatusCode, ApiError> {
    let user = caller_user(&state, caller).await?;
    crate::reports::set_plan(&*state.store, Some(&user), plan, Utc::now())
        .await
        .map_err(report_failure)?;
    tracing::info!(device = %caller.device, "plan set");
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// The query of `GET /v1/plans`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanQuery {
    /// The org unit.
    pub org: uuid::Uuid,
    /// The plan's period.
    pub period: String,
    /// Count to this day (default: today in Vietnam; kept inside the plan's period).
    pub as_of: Option<chrono::NaiveDate>,
}

/// `GET /v1/plans?org=…&period=…[&as_of=YYYY-MM-DD]`: a plan's progress.
pub async fn plan<S: SyncStore>(
    State(state): State<AppState<S>>,
    caller: Caller,
    query: Result<Query<PlanQuery>, QueryRejection>,
) -> Result<Json<donghanh_core::report::PlanProgress>, ApiError> {
    let Query(q) = query.map_err(|_| {
        ApiError::Invalid(
            "expected org (an org-unit id), period and optional as_of (YYYY-MM-DD)".into(),
        )
    })?;
    let period = report_period(&q.period)?;
    let user = caller_user(&state, caller).await?;
    let as_of = q
        .as_of
        .unwrap_or_else(|| donghanh_core::domain::vn_date(Utc::now()));
    let progress =
        crate::reports::plan_progress(&*state.store, Some(&user), Id::from(q.org), period, as_of)
            .await
            .map_err(report_failure)?;
    Ok(Json(progress))
}

/// `POST /v1/reports/{template}/close?org=…&period=…`: closes a period that is over; its report
/// is kept as it is now and answers from then on (late records show as notes on the next open
/// period's report).
pub async fn close_report<S: SyncStore>(
    State(state): State<AppState<S>>,
    caller: Caller,
    ApiPath(template): ApiPath<String>,
    query: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<Json<donghanh_core::report::Report>, ApiError> {
    let Query(q) = query.map_err(|_| {
        ApiError::Invalid(
            "expected org (an org-unit id) and period (YYYY-MM, YYYY-Qn, YYYY-H1/H2 or YYYY)"
                .into(),
        )
    })?;
    let period = report_period(&q.period)?;
    let user = caller_user(&state, caller).await?;
    let report = crate::reports::close(
        &*state.store,
        Some(&user),
        Id::from(q.org),
        &template,
        period,
        Utc::now(),
    )
    .await
    .map_err(report_failure)?;
    tracing::info!(device = %caller.device, template = %report.template, period = %report.period, "report closed");
    Ok(Json(report))
}

/// The query of `GET /v1/reports/records`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsQuery {
    /// The org unit.
    pub org: uuid::Uuid,
    /// The period.
    pub period: String,
    /// The indicator's code.
    pub indicator: String,
}

/// `GET /v1/reports/records?org=…&period=…&indicator=…`: the records behind one number, for a
/// supervisor of the commune (ids and kinds; the phone shows those it holds) or an officer under
/// a running break-the-glass grant (ids, kinds and who the people are); audited.
pub async fn report_records<S: SyncStore>(
    State(state): State<AppState<S>>,
    caller: Caller,
    query: Result<Query<RecordsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    use crate::reports::RecordsAccess;
    let Query(q) = query.map_err(|_| {
        ApiError::Invalid("expected org (an org-unit id), period and indicator".into())
    })?;
    let period = report_period(&q.period)?;
    let user = caller_user(&state, caller).await?;
    let now = Utc::now();
    let (records, access) = crate::reports::records(
        &*state.store,
        &user,
        Id::from(q.org),
        &q.indicator,
        period,
        now,
    )
    .await
    .map_err(report_failure)?;
    let indicator = q.indicator.chars().take(40).collect::<String>();
    let (action, purpose, people) = match access {
        RecordsAccess::Supervisor => ("report_records", format!("{indicator} {period}"), None),
        RecordsAccess::BreakGlass(grant) => {
            let mut ids: Vec<Id> = records.iter().filter_map(|r| r.person).collect();
            ids.sort_by_key(|i| *i.as_bytes());
            ids.dedup();
            let people = state.store.identities(ids).await?;
            (
                "break_glass_records",
                format!("{indicator} {period} grant {grant}"),
                Some(people),
            )
        }
    };
    state
        .store
        .audit_access(
            caller.user,
            caller.device,
            action,
            format!("org:{}", q.org),
            u64::try_from(records.len()).unwrap_or(u64::MAX),
            purpose,
            now,
        )
        .await?;
    tracing::info!(device = %caller.device, records = records.len(), break_glass = people.is_some(), "report records");
    let mut body = serde_json::json!({
        "records": records
            .iter()
            .map(|r| serde_json::json!({"id": r.id, "kind": r.kind, "person": r.person}))
            .collect::<Vec<_>>()
    });
    if let Some(people) = people {
        body["people"] = serde_json::to_value(people)
            .map_err(|_| ApiError::Internal("people could not be encoded".into()))?;
    }
    Ok(Json(body))
}

/// The body of `POST /v1/break-glass`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakGlassRequest {
    /// The unit (within the officer's).
    pub org: uuid::Uuid,
    /// Why: a written sentence (20–1000 characters), kept sealed.
    pub reason: String,
    /// How long, in minutes (1–240; default 60).
    #[serde(default)]
    pub minutes: Option<u32>,
}

/// `POST /v1/break-glass`: an officer asks to see the named records behind the numbers of one
/// unit within theirs, for a written reason, for a limited time; the grant is audited.
pub async fn break_glass<S: SyncStore>(
    State(state): State<AppState<S>>,
    caller: Caller,
    ApiJson(req): ApiJson<BreakGlassRequest>,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
    use crate::reports::GlassFailure;
    let user = caller_user(&state, caller).await?;
    let grant = crate::reports::break_glass(
        &*state.store,
        &user,
        caller.device,
        Id::from(req.org),
        &req.reason,
        req.minutes.unwrap_or(60),
        Utc::now(),
    )
    .await
    .map_err(|e| match e {
        GlassFailure::NotOfficer => ApiError::Forbidden,
        GlassFailure::Reason | GlassFailure::Minutes => ApiError::Invalid(e.to_string()),
        GlassFailure::Report(r) => report_failure(r),
    })?;
    tracing::info!(device = %caller.device, grant = %grant.id, "break the glass");
    Ok((
        axum::http::StatusCode::CREATED,
        Json(serde_json::json!({
            "id": grant.id,
            "org": grant.org,
            "expires_at": grant.expires_at,
        })),
    ))
}

/// A report period from a query, or `invalid_input` (never repeating what was sent).
fn report_period(text: &str) -> Result<donghanh_core::report::Period, ApiError> {
    donghanh_core::report::Period::parse(text).map_err(|_| {
        ApiError::Invalid("period must be YYYY-MM, YYYY-Qn, YYYY-H1/H2 or YYYY".into())
    })
}

/// The calling user, for the report endpoints' access rules.
async fn caller_user<S: SyncStore>(
    state: &AppState<S>,
    caller: Caller,
) -> Result<donghanh_core::domain::User, ApiError> {
    Ok(state
        .store
        .user(caller.user)
        .await?
        .ok_or(ApiError::Unauthorised)?
        .user)
}
