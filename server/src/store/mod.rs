//! Storage behind one trait (DESIGN.md §5, STYLE.md point 7).
//!
//! [`SyncStore`] is what the HTTP layer needs from a database, in backend-neutral terms: the
//! embedded SQLite backend ([`sqlite::SqliteStore`]) is the default; PostgreSQL
//! ([`postgres::PgStore`]) is for deployments with several server replicas. Every backend must
//! pass the same conformance suite ([`conformance`]); [`pg_cluster`] gives tests a throwaway
//! PostgreSQL.
//!
//! Methods are `async` so that a network database fits behind the same trait; the SQLite backend
//! runs its blocking calls on tokio's blocking pool. Errors are [`StoreError`], which never
//! carries a value from a record.

pub mod any;
pub mod conformance;
pub mod pg_cluster;
pub mod postgres;
pub mod sqlite;

use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};
use donghanh_core::domain::{Device, DomainError, Id, OrgUnit, Role, User};
use donghanh_protocol::{
    Conflict, DirectoryEntry, Mutation, PullPage, Receipt, ScopeAck, SnapshotPage,
};
use serde_json::Value;

/// A storage failure, in terms the HTTP layer acts on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such row.
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken (a username already taken, …): `what` names the rule.
    #[error("already exists: {what}")]
    Exists {
        /// The rule broken.
        what: &'static str,
    },
    /// The data breaks a domain rule.
    #[error("invalid: {0}")]
    Invalid(#[from] DomainError),
    /// A pull cursor older than the tombstone horizon ([`SyncStore::compact`]).
    #[error("cursor older than the tombstone horizon")]
    CursorExpired,
    /// The database's disk is full: nothing was written; the same request succeeds once
    /// space is freed.
    #[error("the database's disk is full")]
    Full,
    /// The database failed; the message is for the operator's log and carries no record value.
    #[error("database: {0}")]
    Database(String),
}

/// Result of a storage call.
pub type StoreResult<T> = Result<T, StoreError>;

/// A record's JSON as the store keeps it, served without being parsed and written out again.
pub type RawJson = Box<serde_json::value::RawValue>;

/// A user as stored: the domain record, the password hash and whether the account is usable.
#[derive(Debug, Clone)]
pub struct StoredUser {
    /// The user.
    pub user: User,
    /// The encoded password hash (see `auth::hash_password`).
    pub password_hash: String,
}

/// What an access token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessGrant {
    /// The device it was issued to.
    pub device: Id,
    /// The device's user.
    pub user: Id,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// The server's storage.
pub trait SyncStore: Send + Sync + 'static {
    /// Every org unit.
    fn org_units(&self) -> impl Future<Output = StoreResult<Vec<OrgUnit>>> + Send;
    /// Adds an org unit, refusing one that breaks the tree (unknown parent, misplaced kind).
    fn add_org_unit(&self, unit: OrgUnit) -> impl Future<Output = StoreResult<()>> + Send;
    /// Adds a user; [`StoreError::Exists`] when the username is taken.
    fn add_user(&self, user: StoredUser) -> impl Future<Output = StoreResult<()>> + Send;
    /// A user by login name.
    fn user_by_username(
        &self,
        username: &str,
    ) -> impl Future<Output = StoreResult<Option<StoredUser>>> + Send;
    /// A user by id.
    fn user(&self, id: Id) -> impl Future<Output = StoreResult<Option<StoredUser>>> + Send;
    /// Enrols a device with the hash of its first refresh token.
    fn add_device(
        &self,
        device: Device,
        refresh_hash: Vec<u8>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// A device by id.
    fn device(&self, id: Id) -> impl Future<Output = StoreResult<Option<Device>>> + Send;
    /// Revokes a device: its tokens stop working at once. [`StoreError::NotFound`] if unknown.
    fn revoke_device(
        &self,
        id: Id,
        at: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Replaces the device's refresh-token hash if (and only if) it is `old`, and answers true
    /// as well when it already is `new` (the same rotation asked again after its answer was
    /// lost; `new` is then the device's own proposal, which nobody else knows). Returns whether
    /// the device now holds `new`: a refresh token works once. Never for a revoked device.
    fn rotate_refresh(
        &self,
        device: Id,
        old: Vec<u8>,
        new: Vec<u8>,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Stores an access token's hash.
    fn put_access_token(
        &self,
        hash: Vec<u8>,
        grant: AccessGrant,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// What an access token's hash grants, if it exists and its device is not revoked.
    fn access_grant(
        &self,
        hash: Vec<u8>,
    ) -> impl Future<Output = StoreResult<Option<AccessGrant>>> + Send;
    /// Records a failed login for a username (whether or not it exists).
    fn record_login_failure(
        &self,
        username: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Failed logins for a username since a time.
    fn login_failures_since(
        &self,
        username: &str,
        since: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<u32>> + Send;
    /// Forgets a username's failed logins (after a success).
    fn clear_login_failures(&self, username: &str) -> impl Future<Output = StoreResult<()>> + Send;
    /// Handles one pushed mutation in one transaction: the stored receipt of a replay, or
    /// authorise, plan ([`crate::sync::plan`]), write, append to the log, store the receipt.
    fn push(
        &self,
        caller: PushCaller,
        mutation: Mutation<Value>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<Receipt>> + Send;
    /// Handles the mutations of one push request in order, as [`SyncStore::push`] handles
    /// each, and returns their receipts in order. A backend may write them in one transaction
    /// (each mutation's decision sees the ones before it, exactly as in separate ones): an
    /// error then keeps none of them, and the device, which gets no receipts, pushes them
    /// again and is answered from the stored receipts of whatever did commit.
    fn push_many(
        &self,
        caller: PushCaller,
        mutations: Vec<Mutation<Value>>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<Vec<Receipt>>> + Send {
        async move {
            let mut receipts = Vec::with_capacity(mutations.len());
            for m in mutations {
                receipts.push(self.push(caller, m, now).await?);
            }
            Ok(receipts)
        }
    }
    /// The changes and scope events after `cursor` for the scopes `user` holds, at most `limit`
    /// items and about `max_bytes` of records, in log order. Audited per scope served.
    fn pull(
        &self,
        user: Id,
        device: Id,
        cursor: u64,
        limit: u32,
        max_bytes: u32,
    ) -> impl Future<Output = StoreResult<PullPage<RawJson>>> + Send;
    /// Open conflicts in the scopes `user` holds, oldest first.
    fn conflicts(&self, user: Id)
    -> impl Future<Output = StoreResult<Vec<Conflict<Value>>>> + Send;
    /// Closes a conflict; with `restore`, writes the losing value back as a new change (merged
    /// like any edit, audited). [`StoreError::NotFound`] for a conflict the caller cannot see.
    fn resolve_conflict(
        &self,
        caller: PushCaller,
        id: Id,
        restore: bool,
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Recomputes the audit log's hash chain.
    fn verify_audit(&self) -> impl Future<Output = StoreResult<crate::audit::Verdict>> + Send;
    /// The scopes a user holds now.
    fn scopes_of(&self, user: Id) -> impl Future<Output = StoreResult<Vec<String>>> + Send;
    /// Records a device's acknowledgement of a scope event (a purge or a bootstrap done), in
    /// the audit log, and raises the device's known cursor to the event. A push into a scope
    /// revoked after the device's known cursor is still accepted (work done offline before the
    /// device could know); after the acknowledgement it is not. [`StoreError::NotFound`]
    /// unless the event is the user's.
    fn ack_scope(
        &self,
        user: Id,
        device: Id,
        ack: ScopeAck,
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Several acknowledgements, in order, each as [`SyncStore::ack_scope`] records it; those
    /// it would answer [`StoreError::NotFound`] are skipped. A backend may record them in one
    /// transaction. Returns how many were recorded.
    fn ack_scopes(
        &self,
        user: Id,
        device: Id,
        acks: Vec<ScopeAck>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<usize>> + Send {
        async move {
            let mut recorded = 0;
            for ack in acks {
                match self.ack_scope(user, device, ack, now).await {
                    Ok(()) => recorded += 1,
                    Err(StoreError::NotFound) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(recorded)
        }
    }
    /// The colleagues `user` may assign work to: a supervisor, the staff of their commune;
    /// anyone else, themselves. By username.
    fn directory(&self, user: Id) -> impl Future<Output = StoreResult<Vec<DirectoryEntry>>> + Send;
    /// Removes tombstones every active device has pulled past (a device is active when it is
    /// not revoked and was seen within `lease_seconds`), and raises the tombstone horizon to
    /// the newest one removed: a pull from a cursor below it answers
    /// [`StoreError::CursorExpired`]. Never expires a tombstone by time alone. Returns how many
    /// were removed.
    fn compact(
        &self,
        now: DateTime<Utc>,
        lease_seconds: u64,
    ) -> impl Future<Output = StoreResult<u64>> + Send;
    /// The tombstone horizon (0 before any compaction).
    fn tombstone_horizon(&self) -> impl Future<Output = StoreResult<u64>> + Send;
    /// One page of a scope's live records in id order after `after`, if `user` holds the scope
    /// ([`StoreError::NotFound`] otherwise: a scope one may not see is one that does not exist).
    fn snapshot(
        &self,
        user: Id,
        device: Id,
        scope: String,
        after: Option<Id>,
        limit: u32,
    ) -> impl Future<Output = StoreResult<SnapshotPage<RawJson>>> + Send;

    /// Records when a user was last trained (`None`: never); `NotFound` for an unknown user.
    fn set_trained(
        &self,
        user: Id,
        on: Option<NaiveDate>,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// A staff fact for each volunteer, counsellor and supervisor of `communes`.
    fn staff_facts(
        &self,
        communes: Vec<Id>,
    ) -> impl Future<Output = StoreResult<Vec<donghanh_core::report::Fact>>> + Send;

    /// Stores a plan (replacing the plan of the same org unit and period).
    fn put_plan(
        &self,
        plan: donghanh_core::report::Plan,
        by: Id,
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Appends an access to the audit log (who looked at which records behind a report, …).
    #[allow(clippy::too_many_arguments)]
    fn audit_access(
        &self,
        user: Id,
        device: Id,
        action: &'static str,
        scope: String,
        count: u64,
        purpose: String,
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Keeps a closed period's report; `Exists` if that period is closed already.
    fn close_report(
        &self,
        org: Id,
        report: donghanh_core::report::Report,
        at: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// The report kept when the period was closed, if it was.
    fn closed_report(
        &self,
        org: Id,
        template: String,
        period: donghanh_core::report::Period,
    ) -> impl Future<Output = StoreResult<Option<donghanh_core::report::Report>>> + Send;

    /// The plans of an org unit, by period.
    fn plans(
        &self,
        org: Id,
    ) -> impl Future<Output = StoreResult<Vec<donghanh_core::report::Plan>>> + Send;

    /// The report facts of the cases of `communes` and of the sessions and attendance at
    /// `points`, for a period from `start` to `end` (people and episodes whatever their dates,
    /// which every period needs), read from one consistent state.
    fn report_facts(
        &self,
        communes: Vec<Id>,
        points: Vec<Id>,
        start: NaiveDate,
        end: NaiveDate,
    ) -> impl Future<Output = StoreResult<Vec<donghanh_core::report::Fact>>> + Send;

    /// Keeps a break-the-glass grant (its reason sealed) and audits it, in one transaction.
    fn put_glass_grant(
        &self,
        grant: GlassGrant,
        device: Id,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// The grants of `user` still running at `now`.
    fn glass_grants(
        &self,
        user: Id,
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<Vec<GlassGrant>>> + Send;

    /// Name and date of birth of the people among `ids` (ids that are not people's are left
    /// out). The caller audits the disclosure.
    fn identities(&self, ids: Vec<Id>) -> impl Future<Output = StoreResult<Vec<Identity>>> + Send;
}

/// Break-the-glass (DESIGN.md §2): an officer, who sees aggregates only, may see the named
/// records behind a number of one unit within theirs for a short time, for a written reason.
#[derive(Clone, PartialEq, Eq)]
pub struct GlassGrant {
    /// Grant id.
    pub id: Id,
    /// The officer.
    pub user: Id,
    /// The unit (and everything below it).
    pub org: Id,
    /// Why (sealed at rest: it may describe the case).
    pub reason: String,
    /// When it was granted.
    pub granted_at: DateTime<Utc>,
    /// When it stops.
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for GlassGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlassGrant")
            .field("id", &self.id)
            .field("user", &self.user)
            .field("org", &self.org)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Who a person is, as a break-the-glass answer shows it.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
pub struct Identity {
    /// The person.
    pub id: Id,
    /// Full name.
    pub full_name: String,
    /// Date of birth.
    pub birth_date: Option<NaiveDate>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Who pushes.
#[derive(Debug, Clone, Copy)]
pub struct PushCaller {
    /// The user.
    pub user: Id,
    /// Their role.
    pub role: Role,
    /// The device (with `client_seq`, the idempotency key).
    pub device: Id,
}
