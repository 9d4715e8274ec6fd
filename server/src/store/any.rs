//! Either backend behind one type, for code that chooses at run time (the end-to-end harness
//! runs its scenarios on the backend its environment names).

use chrono::{DateTime, NaiveDate, Utc};
use donghanh_core::domain::{Device, Id, OrgUnit};
use donghanh_core::report::{Fact, Period, Plan, Report};
use donghanh_protocol::{
    Conflict, DirectoryEntry, Mutation, PullPage, Receipt, ScopeAck, SnapshotPage,
};
use serde_json::Value;

use super::postgres::PgStore;
use super::sqlite::SqliteStore;
use super::{
    AccessGrant, GlassGrant, Identity, PushCaller, RawJson, StoreResult, StoredUser, SyncStore,
};

/// The SQLite or the PostgreSQL backend.
#[derive(Debug, Clone)]
pub enum AnyStore {
    /// Embedded SQLite.
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Postgres(PgStore),
}

/// `either!(self, method(args…))`: the same call on whichever backend this is.
macro_rules! either {
    ($self:ident, $method:ident($($arg:expr),*)) => {
        match $self {
            AnyStore::Sqlite(s) => s.$method($($arg),*).await,
            AnyStore::Postgres(s) => s.$method($($arg),*).await,
        }
    };
}

impl SyncStore for AnyStore {
    async fn org_units(&self) -> StoreResult<Vec<OrgUnit>> {
        either!(self, org_units())
    }
    async fn add_org_unit(&self, unit: OrgUnit) -> StoreResult<()> {
        either!(self, add_org_unit(unit))
    }
    async fn add_user(&self, user: StoredUser) -> StoreResult<()> {
        either!(self, add_user(user))
    }
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<StoredUser>> {
        either!(self, user_by_username(username))
    }
    async fn user(&self, id: Id) -> StoreResult<Option<StoredUser>> {
        either!(self, user(id))
    }
    async fn add_device(&self, device: Device, refresh_hash: Vec<u8>) -> StoreResult<()> {
        either!(self, add_device(device, refresh_hash))
    }
    async fn device(&self, id: Id) -> StoreResult<Option<Device>> {
        either!(self, device(id))
    }
    async fn revoke_device(&self, id: Id, at: DateTime<Utc>) -> StoreResult<()> {
        either!(self, revoke_device(id, at))
    }
    async fn rotate_refresh(&self, device: Id, old: Vec<u8>, new: Vec<u8>) -> StoreResult<bool> {
        either!(self, rotate_refresh(device, old, new))
    }
    async fn put_access_token(&self, hash: Vec<u8>, grant: AccessGrant) -> StoreResult<()> {
        either!(self, put_access_token(hash, grant))
    }
    async fn access_grant(&self, hash: Vec<u8>) -> StoreResult<Option<AccessGrant>> {
        either!(self, access_grant(hash))
    }
    async fn record_login_failure(&self, username: &str, at: DateTime<Utc>) -> StoreResult<()> {
        either!(self, record_login_failure(username, at))
    }
    async fn login_failures_since(&self, username: &str, since: DateTime<Utc>) -> StoreResult<u32> {
        either!(self, login_failures_since(username, since))
    }
    async fn clear_login_failures(&self, username: &str) -> StoreResult<()> {
        either!(self, clear_login_failures(username))
    }
    async fn push(
        &self,
        caller: PushCaller,
        mutation: Mutation<Value>,
        now: DateTime<Utc>,
    ) -> StoreResult<Receipt> {
        either!(self, push(caller, mutation, now))
    }
    async fn push_many(
        &self,
        caller: PushCaller,
        mutations: Vec<Mutation<Value>>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Receipt>> {
        either!(self, push_many(caller, mutations, now))
    }
    async fn pull(
        &self,
        user: Id,
        device: Id,
        cursor: u64,
        limit: u32,
        max_bytes: u32,
    ) -> StoreResult<PullPage<RawJson>> {
        either!(self, pull(user, device, cursor, limit, max_bytes))
    }
    async fn conflicts(&self, user: Id) -> StoreResult<Vec<Conflict<Value>>> {
        either!(self, conflicts(user))
    }
    async fn resolve_conflict(
        &self,
        caller: PushCaller,
        id: Id,
        restore: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        either!(self, resolve_conflict(caller, id, restore, now))
    }
    async fn verify_audit(&self) -> StoreResult<crate::audit::Verdict> {
        either!(self, verify_audit())
    }
    async fn scopes_of(&self, user: Id) -> StoreResult<Vec<String>> {
        either!(self, scopes_of(user))
    }
    async fn ack_scope(
        &self,
        user: Id,
        device: Id,
        ack: ScopeAck,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        either!(self, ack_scope(user, device, ack, now))
    }
    async fn ack_scopes(
        &self,
        user: Id,
        device: Id,
        acks: Vec<ScopeAck>,
        now: DateTime<Utc>,
    ) -> StoreResult<usize> {
        either!(self, ack_scopes(user, device, acks, now))
    }
    async fn directory(&self, user: Id) -> StoreResult<Vec<DirectoryEntry>> {
        either!(self, directory(user))
    }
    async fn compact(&self, now: DateTime<Utc>, lease_seconds: u64) -> StoreResult<u64> {
        either!(self, compact(now, lease_seconds))
    }
    async fn tombstone_horizon(&self) -> StoreResult<u64> {
        either!(self, tombstone_horizon())
    }
    async fn snapshot(
        &self,
        user: Id,
        device: Id,
        scope: String,
        after: Option<Id>,
        limit: u32,
    ) -> StoreResult<SnapshotPage<RawJson>> {
        either!(self, snapshot(user, device, scope, after, limit))
    }
    async fn set_trained(&self, user: Id, on: Option<NaiveDate>) -> StoreResult<()> {
        either!(self, set_trained(user, on))
    }
    async fn staff_facts(&self, communes: Vec<Id>) -> StoreResult<Vec<Fact>> {
        either!(self, staff_facts(communes))
    }
    async fn put_plan(&self, plan: Plan, by: Id, now: DateTime<Utc>) -> StoreResult<()> {
        either!(self, put_plan(plan, by, now))
    }
    async fn audit_access(
        &self,
        user: Id,
        device: Id,
        action: &'static str,
        scope: String,
        count: u64,
        purpose: String,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        either!(
            self,
            audit_access(user, device, action, scope, count, purpose, now)
        )
    }
    async fn close_report(&self, org: Id, report: Report, at: DateTime<Utc>) -> StoreResult<()> {
        either!(self, close_report(org, report, at))
    }
    async fn closed_report(
        &self,
        org: Id,
        template: String,
        period: Period,
    ) -> StoreResult<Option<Report>> {
        either!(self, closed_report(org, template, period))
    }
    async fn plans(&self, org: Id) -> StoreResult<Vec<Plan>> {
        either!(self, plans(org))
    }
    async fn report_facts(
        &self,
        communes: Vec<Id>,
        points: Vec<Id>,
        start: NaiveDate,
        end: NaiveDate,
    ) -> StoreResult<Vec<Fact>> {
        either!(self, report_facts(communes, points, start, end))
    }
    async fn put_glass_grant(&self, grant: GlassGrant, device: Id) -> StoreResult<()> {
        either!(self, put_glass_grant(grant, device))
    }
    async fn glass_grants(&self, user: Id, now: DateTime<Utc>) -> StoreResult<Vec<GlassGrant>> {
        either!(self, glass_grants(user, now))
    }
    async fn identities(&self, ids: Vec<Id>) -> StoreResult<Vec<Identity>> {
        either!(self, identities(ids))
    }
}
