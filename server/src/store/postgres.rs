//! The scale-out backend: PostgreSQL (tokio-postgres, a deadpool pool), for deployments that
//! outgrow one machine, with several stateless server replicas on one database (DESIGN.md §5).
//!
//! It keeps every guarantee of the SQLite backend, with the same code for the decisions
//! ([`crate::sync::plan`]) and the same sealing ([`ServerKeys`]): identity and narrative are
//! sealed, usernames are keyed hashes, tokens are stored hashed, the audit log is hash-chained,
//! tombstones outlive every active cursor. The conformance suite ([`super::conformance`]) runs
//! against both.
//!
//! **Commit-ordered op ids** (docs/adr/0003-postgres-op-order.md). Every transaction that
//! changes sync state (assigns op ids, changes scope memberships, appends to the audit chain)
//! first locks the one row of `op_counter` (`FOR UPDATE`) and holds it to its commit. Writers
//! are therefore serialised exactly as SQLite's one connection serialises them: op ids are
//! handed out in commit order, each decision (replay check, scope check, three-way merge) reads
//! everything committed before it, and the audit chain's head has one writer at a time. A
//! reader reads in one `REPEATABLE READ` snapshot, which in PostgreSQL becomes visible only
//! when a transaction has committed and before its locks are released: every snapshot holds a
//! prefix of the op log, so a reader never sees op N+1 without op N. Reads (pulls, snapshots,
//! token checks, reports) run in parallel on every replica; they take the lock only for the
//! short transaction that records their audit entry and the device's cursor.
//!
//! **Migrations** are SQL in this file, one step per version, applied in one transaction under
//! an advisory lock (replicas starting together wait for each other) and recorded in
//! `schema_migrations`. A database newer than this build is refused. Never edit a shipped step.
//!
//! **Key check.** The database keeps a value sealed with the server key (`key_check`): a replica
//! started with another key file refuses to start instead of writing rows no other replica can
//! open.

use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Transaction};
use donghanh_core::domain::{
    AnyRecord, Calendar, Device, Id, LegalParams, OrgTree, OrgUnit, OrgUnitKind, RecordKind, Scope,
    User,
};
use donghanh_core::report::{Fact, Plan, Report};
use donghanh_protocol::{
    Change, ChangeOp, Conflict, DirectoryEntry, Mutation, MutationOp, Outcome, PullPage, Receipt,
    ScopeAck, ScopeEvent, ScopeEventKind, SnapshotPage,
};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio_postgres::error::SqlState;
use tokio_postgres::{IsolationLevel, NoTls};
use uuid::Uuid;

use super::{
    AccessGrant, GlassGrant, Identity, PushCaller, RawJson, StoreError, StoreResult, StoredUser,
    SyncStore,
};
use crate::secrets::ServerKeys;
use crate::sync::{self, Access, Current, Membership};

/// Version 1: the schema of the SQLite backend's five versions, written for PostgreSQL.
/// Columns named `user` there are `user_id` here (`user` is reserved); ids are `UUID`,
/// flags `BOOLEAN`, times Unix seconds (`BIGINT`). See `sqlite.rs` for what each table holds;
/// what is clear and what is sealed is the same.
const V1: &str = r"
CREATE TABLE org_units (
    id UUID PRIMARY KEY,
    json TEXT NOT NULL
);
CREATE TABLE users (
    id UUID PRIMARY KEY,
    username_mac BYTEA NOT NULL UNIQUE,
    role TEXT NOT NULL,
    org_unit UUID NOT NULL,
    sealed BYTEA NOT NULL,
    password_hash TEXT NOT NULL,
    commune UUID
);
CREATE INDEX users_commune ON users(commune, role);
CREATE TABLE devices (
    id UUID PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users(id),
    revoked_at BIGINT,
    sealed BYTEA NOT NULL,
    refresh_hash BYTEA NOT NULL,
    pull_cursor BIGINT NOT NULL DEFAULT 0,
    last_seen BIGINT
);
CREATE TABLE access_tokens (
    hash BYTEA PRIMARY KEY,
    device UUID NOT NULL REFERENCES devices(id),
    user_id UUID NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX access_tokens_device ON access_tokens(device);
CREATE INDEX access_tokens_expiry ON access_tokens(expires_at);
CREATE TABLE records (
    id UUID PRIMARY KEY,
    kind TEXT NOT NULL,
    scope TEXT NOT NULL,
    version BIGINT NOT NULL,
    deleted BOOLEAN NOT NULL DEFAULT false,
    op_id BIGINT NOT NULL,
    field_versions TEXT NOT NULL,
    field_devices TEXT NOT NULL,
    sealed BYTEA NOT NULL
);
CREATE INDEX records_op ON records(op_id);
CREATE INDEX records_scope ON records(scope, op_id);
CREATE INDEX records_scope_live ON records(scope, id) WHERE NOT deleted;
CREATE INDEX records_tombstones ON records(op_id) WHERE deleted;
CREATE TABLE receipts (
    device UUID NOT NULL,
    client_seq BIGINT NOT NULL,
    receipt TEXT NOT NULL,
    PRIMARY KEY (device, client_seq)
);
CREATE TABLE scope_members (
    scope TEXT NOT NULL,
    user_id UUID NOT NULL,
    PRIMARY KEY (scope, user_id)
);
CREATE INDEX scope_members_user ON scope_members(user_id, scope);
CREATE TABLE scope_events (
    op_id BIGINT PRIMARY KEY,
    user_id UUID NOT NULL,
    scope TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('grant', 'revoke'))
);
CREATE INDEX scope_events_user ON scope_events(user_id, op_id);
CREATE TABLE conflicts (
    id UUID PRIMARY KEY,
    record_id UUID NOT NULL,
    kind TEXT NOT NULL,
    scope TEXT NOT NULL,
    field TEXT NOT NULL,
    sealed BYTEA NOT NULL,
    lost_by_device UUID NOT NULL,
    op_id BIGINT NOT NULL,
    resolved BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX conflicts_open ON conflicts(scope, op_id) WHERE NOT resolved;
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    user_id UUID NOT NULL,
    device UUID NOT NULL,
    action TEXT NOT NULL,
    scope TEXT NOT NULL,
    record UUID,
    count BIGINT NOT NULL,
    purpose TEXT NOT NULL,
    prev BYTEA NOT NULL,
    hash BYTEA NOT NULL
);
-- The log position and the one commit point of every writer (see the module's docs).
CREATE TABLE op_counter (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    last BIGINT NOT NULL
);
INSERT INTO op_counter(one, last) VALUES (1, 0);
CREATE TABLE login_failures (
    username_mac BYTEA NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX login_failures_user ON login_failures(username_mac, at);
CREATE INDEX login_failures_at ON login_failures(at);
CREATE TABLE case_communes (
    person UUID PRIMARY KEY,
    commune UUID NOT NULL
);
CREATE INDEX case_communes_commune ON case_communes(commune);
CREATE TABLE server_meta (
    k TEXT PRIMARY KEY,
    v BIGINT NOT NULL
);
INSERT INTO server_meta(k, v) VALUES ('tombstone_horizon', 0), ('report_facts', 0);
CREATE TABLE report_facts (
    record UUID PRIMARY KEY,
    person UUID,
    point UUID,
    day INTEGER,
    personal BOOLEAN NOT NULL,
    body BYTEA NOT NULL
);
CREATE INDEX report_facts_person ON report_facts(person);
CREATE INDEX report_facts_point ON report_facts(point);
CREATE TABLE plans (
    org UUID NOT NULL,
    period TEXT NOT NULL,
    body TEXT NOT NULL,
    set_by UUID NOT NULL,
    set_at BIGINT NOT NULL,
    PRIMARY KEY (org, period)
);
CREATE TABLE report_snapshots (
    org UUID NOT NULL,
    template TEXT NOT NULL,
    period TEXT NOT NULL,
    body TEXT NOT NULL,
    closed_at BIGINT NOT NULL,
    PRIMARY KEY (org, template, period)
);
-- Break-the-glass grants (DESIGN.md §2): the reason is sealed (it may describe the case).
CREATE TABLE glass_grants (
    id UUID PRIMARY KEY,
    officer UUID NOT NULL,
    org UUID NOT NULL,
    granted_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    sealed BYTEA NOT NULL
);
CREATE INDEX glass_grants_officer ON glass_grants(officer, expires_at);
-- A value sealed with the server key: a replica with another key refuses to start.
CREATE TABLE key_check (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    sealed BYTEA NOT NULL
);
";

/// The migrations, in order: version `i + 1` is `MIGRATIONS[i]`.
const MIGRATIONS: &[&str] = &[V1];

/// The advisory-lock key under which migrations run (any constant; "dh-migr").
const MIGRATION_LOCK: i64 = 0x0064_682d_6d69_6772;

/// The format of `report_facts` rows (the SQLite backend's constant).
const REPORT_FACTS_FORMAT: i64 = 2;

/// What the key check seals.
const KEY_CHECK: &[u8] = b"donghanh-server-key-check";

/// A database error in words for the operator's log: PostgreSQL's message and code, never its
/// detail (which may quote a value).
fn pg_err(e: tokio_postgres::Error) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        return StoreError::Exists { what: "unique" };
    }
    if e.code() == Some(&SqlState::DISK_FULL) {
        return StoreError::Full;
    }
    match e.as_db_error() {
        Some(db) => StoreError::Database(format!("{} ({})", db.message(), db.code().code())),
        None => StoreError::Database(e.to_string()),
    }
}

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(e.to_string())
}

/// Stored JSON that does not decode. serde's message may quote a value, so it is never kept.
fn decode_err(_: serde_json::Error) -> StoreError {
    StoreError::Database("a stored value could not be decoded".into())
}

fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

/// Rounded up, as in the SQLite backend: an expiry never comes earlier than asked.
fn ts_ceil(t: DateTime<Utc>) -> i64 {
    t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0)
}

fn from_ts(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(s, 0).unwrap_or_default()
}

fn u64_of(v: i64) -> StoreResult<u64> {
    u64::try_from(v).map_err(db_err)
}

fn i64_of(v: u64) -> StoreResult<i64> {
    i64::try_from(v).map_err(db_err)
}

/// Prepares (once per connection) and runs a statement: `q!(client_or_tx, method, sql, params…)`.
macro_rules! q {
    ($c:expr, $method:ident, $sql:expr $(, $p:expr)* $(,)?) => {{
        let stmt = $c.prepare_cached($sql).await.map_err(pg_err)?;
        $c.$method(&stmt, &[$(&$p),*]).await.map_err(pg_err)
    }};
}

/// Connection settings of the PostgreSQL backend.
#[derive(Clone)]
pub struct PgConfig {
    /// `postgres://user:password@host:port/dbname` or a key=value string.
    pub url: String,
    /// Connections this replica keeps open at most.
    pub pool_size: usize,
}

impl std::fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.debug_struct("PgConfig")
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

/// Default pool size of one replica.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// The PostgreSQL backend: a pool of connections and the server's keys. Clones share both.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    keys: Arc<ServerKeys>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("pool", &self.pool.status())
            .finish_non_exhaustive()
    }
}

/// Whether the database at `url` already holds a server (its key check is set). A new data
/// directory's key may be created only for a database that does not.
pub async fn holds_a_server(config: &PgConfig) -> StoreResult<bool> {
    let pool = pool(config)?;
    let client = pool.get().await.map_err(db_err)?;
    let row = q!(
        client,
        query_one,
        "SELECT to_regclass('key_check') IS NOT NULL"
    )?;
    if !row.get::<_, bool>(0) {
        return Ok(false);
    }
    let row = q!(client, query_one, "SELECT count(*) FROM key_check")?;
    Ok(row.get::<_, i64>(0) > 0)
}

fn pool(config: &PgConfig) -> StoreResult<Pool> {
    let pg: tokio_postgres::Config = config
        .url
        .parse()
        .map_err(|_| StoreError::Database("the database URL is not valid".into()))?;
    let manager = Manager::from_config(
        pg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(config.pool_size.max(1))
        .build()
        .map_err(db_err)
}

type Tx<'a> = Transaction<'a>;

impl PgStore {
    /// Connects, migrates the schema to this build's version, checks the key against the
    /// database (setting it on a new database), and brings derived rows up to date.
    pub async fn connect(config: &PgConfig, keys: ServerKeys) -> StoreResult<PgStore> {
        let store = PgStore {
            pool: pool(config)?,
            keys: Arc::new(keys),
        };
        let mut client = store.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        q!(
            tx,
            execute,
            "SELECT pg_advisory_xact_lock($1)",
            MIGRATION_LOCK
        )?;
        migrate(&tx).await?;
        Self::check_key(&tx, &store.keys).await?;
        // (No reconciliation of every user's org scopes as the SQLite backend does at start:
        // that upgrades databases from before org scopes, which PostgreSQL never had.)
        Self::lock_log(&tx).await?;
        Self::rebuild_report_facts_if_stale(&tx, &store.keys).await?;
        tx.commit().await.map_err(pg_err)?;
        drop(client);
        Ok(store)
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Client> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => pg_err(e),
            other => db_err(other),
        })
    }

    /// Sets the key check on a new database; on an existing one, refuses a key that cannot
    /// open it.
    async fn check_key(tx: &Tx<'_>, keys: &ServerKeys) -> StoreResult<()> {
        let row = q!(tx, query_opt, "SELECT sealed FROM key_check WHERE one = 1")?;
        match row {
            Some(row) => {
                let sealed: Vec<u8> = row.get(0);
                match keys.open("key_check", b"1", &sealed) {
                    Ok(plain) if plain == KEY_CHECK => Ok(()),
                    _ => Err(StoreError::Database(
                        "the server key does not match this database: every replica needs \
                         the same key file"
                            .into(),
                    )),
                }
            }
            None => {
                let sealed = keys.seal("key_check", b"1", KEY_CHECK).map_err(db_err)?;
                q!(
                    tx,
                    execute,
                    "INSERT INTO key_check(one, sealed) VALUES (1, $1)",
                    sealed
                )?;
                Ok(())
            }
        }
    }

    /// Takes the commit point: the `op_counter` row, held to the end of the transaction.
    /// Every transaction that assigns op ids, changes memberships or appends to the audit
    /// chain takes it first, so that they commit one at a time, in op order.
    async fn lock_log(tx: &Tx<'_>) -> StoreResult<i64> {
        let row = q!(
            tx,
            query_one,
            "SELECT last FROM op_counter WHERE one = 1 FOR UPDATE"
        )?;
        Ok(row.get(0))
    }

    /// A write transaction holding the commit point.
    async fn begin_logged<'a>(client: &'a mut deadpool_postgres::Client) -> StoreResult<Tx<'a>> {
        let tx = client.transaction().await.map_err(pg_err)?;
        Self::lock_log(&tx).await?;
        Ok(tx)
    }

    /// A read-only transaction on one snapshot: a prefix of the op log.
    async fn begin_snapshot<'a>(client: &'a mut deadpool_postgres::Client) -> StoreResult<Tx<'a>> {
        client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg_err)
    }

    /// Users, devices, records and conflicts re-sealed with the current key, usernames'
    /// lookups recomputed, the key check re-sealed, in one transaction (see
    /// [`super::sqlite::SqliteStore::reseal_all`]). Returns the number of rows re-sealed.
    pub async fn reseal_all(&self) -> StoreResult<u64> {
        let keys = Arc::clone(&self.keys);
        let mut client = self.client().await?;
        let tx = Self::begin_logged(&mut client).await?;
        let mut count = 0u64;
        for table in ["users", "devices", "records", "conflicts", "glass_grants"] {
            let rows = tx
                .query(&format!("SELECT id, sealed FROM {table}"), &[])
                .await
                .map_err(pg_err)?;
            let update = tx
                .prepare(&format!("UPDATE {table} SET sealed = $2 WHERE id = $1"))
                .await
                .map_err(pg_err)?;
            for row in rows {
                let id: Uuid = row.get(0);
                let sealed: Vec<u8> = row.get(1);
                let plain = keys.open(table, id.as_bytes(), &sealed).map_err(db_err)?;
                if table == "users" {
                    let user: User = serde_json::from_slice(&plain).map_err(decode_err)?;
                    q!(
                        tx,
                        execute,
                        "UPDATE users SET username_mac = $2 WHERE id = $1",
                        id,
                        keys.lookup("username", &user.username)
                    )?;
                }
                let resealed = keys.seal(table, id.as_bytes(), &plain).map_err(db_err)?;
                tx.execute(&update, &[&id, &resealed])
                    .await
                    .map_err(pg_err)?;
                count += 1;
            }
        }
        let facts = q!(
            tx,
            query,
            "SELECT record, body FROM report_facts WHERE personal"
        )?;
        for row in facts {
            let id: Uuid = row.get(0);
            let sealed: Vec<u8> = row.get(1);
            let plain = keys
                .open("report_facts", id.as_bytes(), &sealed)
                .map_err(db_err)?;
            let resealed = keys
                .seal("report_facts", id.as_bytes(), &plain)
                .map_err(db_err)?;
            q!(
                tx,
                execute,
                "UPDATE report_facts SET body = $2 WHERE record = $1",
                id,
                resealed
            )?;
            count += 1;
        }
        let check = keys.seal("key_check", b"1", KEY_CHECK).map_err(db_err)?;
        q!(
            tx,
            execute,
            "UPDATE key_check SET sealed = $1 WHERE one = 1",
            check
        )?;
        q!(tx, execute, "DELETE FROM login_failures")?;
        tx.commit().await.map_err(pg_err)?;
        Ok(count)
    }

    /// Whether the database has no user yet (a new server).
    pub async fn has_no_user(&self) -> StoreResult<bool> {
        let client = self.client().await?;
        let row = q!(client, query_one, "SELECT NOT EXISTS (SELECT 1 FROM users)")?;
        Ok(row.get(0))
    }

    /// Creates the system's root unit and its `admin` user if the database has no user yet,
    /// in one transaction (replicas starting together create one admin). Returns whether it
    /// did.
    pub async fn bootstrap_admin(&self, root: OrgUnit, admin: StoredUser) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = Self::begin_logged(&mut client).await?;
        let users: i64 = q!(tx, query_one, "SELECT count(*) FROM users")?.get(0);
        if users > 0 {
            return Ok(false);
        }
        Self::add_org_unit_tx(&tx, root).await?;
        Self::add_user_tx(&tx, &self.keys, admin).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(true)
    }

    /// Appends entries to the audit chain, in order. The caller holds the commit point.
    async fn audit_many(tx: &Tx<'_>, entries: Vec<crate::audit::Entry>) -> StoreResult<()> {
        let last = q!(
            tx,
            query_opt,
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
        )?;
        let (mut seq, mut prev) = match last {
            Some(row) => (u64_of(row.get(0))? + 1, row.get::<_, Vec<u8>>(1)),
            None => (1, crate::audit::GENESIS.to_vec()),
        };
        let insert = tx
            .prepare_cached(
                "INSERT INTO audit_log(seq, at, user_id, device, action, scope, record, count,
                                       purpose, prev, hash)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .await
            .map_err(pg_err)?;
        for mut entry in entries {
            entry.seq = seq;
            let hash = crate::audit::hash(&entry, &prev);
            tx.execute(
                &insert,
                &[
                    &i64_of(seq)?,
                    &entry.at,
                    &Uuid::from_bytes(entry.user),
                    &Uuid::from_bytes(entry.device),
                    &entry.action,
                    &entry.scope,
                    &entry.record.map(Uuid::from_bytes),
                    &i64_of(entry.count)?,
                    &entry.purpose,
                    &prev,
                    &hash,
                ],
            )
            .await
            .map_err(pg_err)?;
            prev = hash;
            seq += 1;
        }
        Ok(())
    }

    async fn audit(tx: &Tx<'_>, entry: crate::audit::Entry) -> StoreResult<()> {
        Self::audit_many(tx, vec![entry]).await
    }

    async fn next_op(tx: &Tx<'_>) -> StoreResult<u64> {
        let row = q!(
            tx,
            query_one,
            "UPDATE op_counter SET last = last + 1 WHERE one = 1 RETURNING last"
        )?;
        u64_of(row.get(0))
    }

    /// Writes an accepted plan (see the SQLite backend's `write_plan`). Returns the op id.
    #[allow(clippy::too_many_arguments)]
    async fn write_plan(
        tx: &Tx<'_>,
        keys: &ServerKeys,
        m: &Mutation<Value>,
        plan: &sync::Plan,
        caller: PushCaller,
        now: DateTime<Utc>,
        purpose: &str,
    ) -> StoreResult<u64> {
        let id = m.record_id;
        let op_id = Self::next_op(tx).await?;
        let sealed = keys
            .seal(
                "records",
                id.as_bytes(),
                &serde_json::to_vec(&plan.record).map_err(db_err)?,
            )
            .map_err(db_err)?;
        let field_versions = serde_json::to_string(&plan.field_versions).map_err(db_err)?;
        let field_devices = serde_json::to_string(&plan.field_devices).map_err(db_err)?;
        q!(
            tx,
            execute,
            "INSERT INTO records(id, kind, scope, version, deleted, op_id, field_versions,
                                 field_devices, sealed)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT(id) DO UPDATE SET version = excluded.version,
               deleted = excluded.deleted, op_id = excluded.op_id,
               field_versions = excluded.field_versions, field_devices = excluded.field_devices,
               sealed = excluded.sealed",
            id,
            m.kind,
            m.scope,
            i64_of(plan.version)?,
            plan.deleted,
            i64_of(op_id)?,
            field_versions,
            field_devices,
            sealed
        )?;
        Self::write_facts(
            tx,
            keys,
            &m.kind,
            id,
            Value::Object(plan.record.clone()),
            plan.deleted,
        )
        .await?;
        for conflict in &plan.conflicts {
            let cid = Id::new();
            let body = serde_json::json!({"kept": conflict.kept, "lost": conflict.lost});
            let sealed = keys
                .seal(
                    "conflicts",
                    cid.as_bytes(),
                    &serde_json::to_vec(&body).map_err(db_err)?,
                )
                .map_err(db_err)?;
            let lost_by = plan
                .lost_by
                .get(&conflict.field)
                .copied()
                .unwrap_or_else(|| Id::from(Uuid::nil()))
                .uuid();
            q!(
                tx,
                execute,
                "INSERT INTO conflicts(id, record_id, kind, scope, field, sealed, lost_by_device,
                                       op_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                cid.uuid(),
                id,
                m.kind,
                m.scope,
                conflict.field,
                sealed,
                lost_by,
                i64_of(op_id)?
            )?;
        }
        for change in &plan.membership {
            Self::apply_membership(tx, change).await?;
        }
        if let Some((before, after)) = plan.case_commune {
            let person = Id::from(id);
            if let Some(old) = before {
                for supervisor in Self::supervisors_of(tx, old).await? {
                    Self::apply_membership(
                        tx,
                        &Membership::Revoke(Scope::Person(person), supervisor),
                    )
                    .await?;
                }
            }
            match after {
                Some(new) => {
                    q!(
                        tx,
                        execute,
                        "INSERT INTO case_communes(person, commune) VALUES ($1, $2)
                         ON CONFLICT(person) DO UPDATE SET commune = excluded.commune",
                        id,
                        new.uuid()
                    )?;
                    for supervisor in Self::supervisors_of(tx, new).await? {
                        Self::apply_membership(
                            tx,
                            &Membership::Grant(Scope::Person(person), supervisor),
                        )
                        .await?;
                    }
                }
                None => {
                    q!(
                        tx,
                        execute,
                        "DELETE FROM case_communes WHERE person = $1",
                        id
                    )?;
                }
            }
        }
        Self::audit(
            tx,
            crate::audit::Entry {
                seq: 0,
                at: ts(now),
                user: *caller.user.as_bytes(),
                device: *caller.device.as_bytes(),
                action: "edit".into(),
                scope: m.scope.clone(),
                record: Some(*id.as_bytes()),
                count: 1,
                purpose: purpose.into(),
            },
        )
        .await?;
        Ok(op_id)
    }

    /// Adds or removes one membership; a change takes an op id and becomes a scope event.
    async fn apply_membership(tx: &Tx<'_>, change: &Membership) -> StoreResult<()> {
        let (scope, user, kind) = match change {
            Membership::Grant(s, u) => (s, u, "grant"),
            Membership::Revoke(s, u) => (s, u, "revoke"),
        };
        let scope = scope.to_string();
        let changed = if kind == "grant" {
            q!(
                tx,
                execute,
                "INSERT INTO scope_members(scope, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                scope,
                user.uuid()
            )?
        } else {
            q!(
                tx,
                execute,
                "DELETE FROM scope_members WHERE scope = $1 AND user_id = $2",
                scope,
                user.uuid()
            )?
        };
        if changed > 0 {
            let event_op = Self::next_op(tx).await?;
            q!(
                tx,
                execute,
                "INSERT INTO scope_events(op_id, user_id, scope, kind) VALUES ($1, $2, $3, $4)",
                i64_of(event_op)?,
                user.uuid(),
                scope,
                kind
            )?;
        }
        Ok(())
    }

    async fn load_units(tx: &Tx<'_>) -> StoreResult<Vec<OrgUnit>> {
        let rows = q!(tx, query, "SELECT json FROM org_units")?;
        rows.iter()
            .map(|r| serde_json::from_str(r.get::<_, &str>(0)).map_err(decode_err))
            .collect()
    }

    async fn load_tree(tx: &Tx<'_>) -> StoreResult<OrgTree> {
        Ok(OrgTree::new(Self::load_units(tx).await?)?)
    }

    async fn supervisors_of(tx: &Tx<'_>, commune: Id) -> StoreResult<Vec<Id>> {
        let rows = q!(
            tx,
            query,
            "SELECT id FROM users WHERE commune = $1 AND role = 'supervisor' ORDER BY id",
            commune.uuid()
        )?;
        Ok(rows.iter().map(|r| Id::from(r.get::<_, Uuid>(0))).collect())
    }

    /// Grants a user every scope their place in the org tree gives (see the SQLite backend).
    async fn reconcile_user(tx: &Tx<'_>, tree: &OrgTree, user: &User) -> StoreResult<()> {
        let commune = tree.commune_of(user.org_unit).map(|c| c.uuid());
        q!(
            tx,
            execute,
            "UPDATE users SET commune = $2 WHERE id = $1",
            user.id.uuid(),
            commune
        )?;
        for scope in sync::org_scopes(user, tree) {
            Self::apply_membership(tx, &Membership::Grant(scope, user.id)).await?;
        }
        if let Some(commune) = sync::supervised_commune(user, tree) {
            let cases = q!(
                tx,
                query,
                "SELECT person FROM case_communes WHERE commune = $1 ORDER BY person",
                commune.uuid()
            )?;
            for case in cases {
                let person = Id::from(case.get::<_, Uuid>(0));
                Self::apply_membership(tx, &Membership::Grant(Scope::Person(person), user.id))
                    .await?;
            }
        }
        Ok(())
    }

    async fn commune_of_user(tx: &Tx<'_>, user: Id) -> StoreResult<Option<Id>> {
        let row = q!(
            tx,
            query_opt,
            "SELECT commune FROM users WHERE id = $1",
            user.uuid()
        )?;
        Ok(row.and_then(|r| r.get::<_, Option<Uuid>>(0)).map(Id::from))
    }

    /// Replaces the report facts of one record (see the SQLite backend's `write_facts`).
    async fn write_facts(
        tx: &Tx<'_>,
        keys: &ServerKeys,
        kind: &str,
        id: Uuid,
        record: Value,
        deleted: bool,
    ) -> StoreResult<()> {
        let facts = match (deleted, RecordKind::from_code(kind)) {
            (false, Some(kind)) => AnyRecord::from_json(kind, record)
                .map(|r| Fact::of(&r, Calendar::embedded(), LegalParams::embedded()))
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let Some(first) = facts.first() else {
            q!(
                tx,
                execute,
                "DELETE FROM report_facts WHERE record = $1",
                id
            )?;
            return Ok(());
        };
        let always = facts
            .iter()
            .any(|f| matches!(f, Fact::Person { .. } | Fact::Episode { .. }));
        let day: Option<i32> = if always {
            None
        } else {
            first.day().map(|d| d.num_days_from_ce())
        };
        let personal = facts.iter().any(Fact::is_personal);
        let json = serde_json::to_vec(&facts).map_err(db_err)?;
        let body = if personal {
            keys.seal("report_facts", id.as_bytes(), &json)
                .map_err(db_err)?
        } else {
            json
        };
        q!(
            tx,
            execute,
            "INSERT INTO report_facts(record, person, point, day, personal, body)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT(record) DO UPDATE SET person = excluded.person, point = excluded.point,
               day = excluded.day, personal = excluded.personal, body = excluded.body",
            id,
            first.person().map(|p| p.uuid()),
            first.point().map(|p| p.uuid()),
            day,
            personal,
            body
        )?;
        Ok(())
    }

    async fn rebuild_report_facts_if_stale(tx: &Tx<'_>, keys: &ServerKeys) -> StoreResult<()> {
        let built: i64 = q!(
            tx,
            query_one,
            "SELECT v FROM server_meta WHERE k = 'report_facts'"
        )?
        .get(0);
        if built == REPORT_FACTS_FORMAT {
            return Ok(());
        }
        q!(tx, execute, "DELETE FROM report_facts")?;
        let rows = q!(
            tx,
            query,
            "SELECT id, kind, sealed FROM records WHERE NOT deleted"
        )?;
        for row in rows {
            let id: Uuid = row.get(0);
            let kind: String = row.get(1);
            let sealed: Vec<u8> = row.get(2);
            let plain = keys
                .open("records", id.as_bytes(), &sealed)
                .map_err(db_err)?;
            let record: Value = serde_json::from_slice(&plain).map_err(decode_err)?;
            Self::write_facts(tx, keys, &kind, id, record, false).await?;
        }
        q!(
            tx,
            execute,
            "UPDATE server_meta SET v = $1 WHERE k = 'report_facts'",
            REPORT_FACTS_FORMAT
        )?;
        Ok(())
    }

    async fn read_current(
        tx: &Tx<'_>,
        keys: &ServerKeys,
        id: Uuid,
    ) -> StoreResult<Option<Current>> {
        let row = q!(
            tx,
            query_opt,
            "SELECT kind, scope, version, deleted, field_versions, field_devices, sealed
             FROM records WHERE id = $1",
            id
        )?;
        let Some(row) = row else {
            return Ok(None);
        };
        let sealed: Vec<u8> = row.get(6);
        let plain = keys
            .open("records", id.as_bytes(), &sealed)
            .map_err(db_err)?;
        let record = match serde_json::from_slice::<Value>(&plain).map_err(decode_err)? {
            Value::Object(m) => m,
            _ => return Err(db_err("stored record is not an object")),
        };
        Ok(Some(Current {
            kind: row.get(0),
            scope: row.get(1),
            record,
            version: u64_of(row.get(2))?,
            field_versions: serde_json::from_str(row.get(4)).map_err(decode_err)?,
            field_devices: serde_json::from_str(row.get(5)).map_err(decode_err)?,
            deleted: row.get(3),
        }))
    }

    /// One pushed mutation in the caller's transaction, which holds the commit point.
    async fn push_one(
        tx: &Tx<'_>,
        keys: &ServerKeys,
        caller: PushCaller,
        m: Mutation<Value>,
        now: DateTime<Utc>,
    ) -> StoreResult<Receipt> {
        let device = caller.device.uuid();
        let seq = i64::try_from(m.client_seq).map_err(|_| db_err("client_seq out of range"))?;
        let stored = q!(
            tx,
            query_opt,
            "SELECT receipt FROM receipts WHERE device = $1 AND client_seq = $2",
            device,
            seq
        )?;
        if let Some(row) = stored {
            return serde_json::from_str(row.get::<_, &str>(0)).map_err(decode_err);
        }
        let holds_scope = q!(
            tx,
            query_opt,
            "SELECT 1 FROM scope_members WHERE scope = $1 AND user_id = $2
             UNION ALL
             SELECT 1 FROM scope_events e, devices d
             WHERE d.id = $3 AND e.user_id = $2 AND e.scope = $1 AND e.kind = 'revoke'
               AND e.op_id > d.pull_cursor
             LIMIT 1",
            m.scope,
            caller.user.uuid(),
            device
        )?
        .is_some();
        let commune = Self::commune_of_user(tx, caller.user).await?;
        let current = Self::read_current(tx, keys, m.record_id).await?;
        let access = Access {
            user: caller.user,
            role: caller.role,
            holds_scope,
            device: caller.device,
            commune,
        };
        let receipt = match sync::plan(&m, current.as_ref(), access, now) {
            Err(reason) => Receipt {
                client_seq: m.client_seq,
                record_id: m.record_id,
                outcome: Outcome::Rejected,
                version: None,
                op_id: None,
                reason: Some(reason),
            },
            Ok(plan) => {
                let op_id = Self::write_plan(tx, keys, &m, &plan, caller, now, "sync").await?;
                Receipt {
                    client_seq: m.client_seq,
                    record_id: m.record_id,
                    outcome: plan.outcome,
                    version: Some(plan.version),
                    op_id: Some(op_id),
                    reason: None,
                }
            }
        };
        let stored = serde_json::to_string(&receipt).map_err(db_err)?;
        q!(
            tx,
            execute,
            "INSERT INTO receipts(device, client_seq, receipt) VALUES ($1, $2, $3)",
            device,
            seq,
            stored
        )?;
        Ok(receipt)
    }

    /// One scope acknowledgement in the caller's transaction (holding the commit point).
    async fn ack_one(
        tx: &Tx<'_>,
        user: Id,
        device: Id,
        ack: &ScopeAck,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let kind = match ack.kind {
            ScopeEventKind::Grant => "grant",
            ScopeEventKind::Revoke => "revoke",
        };
        let Ok(op) = i64::try_from(ack.op_id) else {
            return Ok(false);
        };
        let known = q!(
            tx,
            query_opt,
            "SELECT 1 FROM scope_events
             WHERE op_id = $1 AND user_id = $2 AND scope = $3 AND kind = $4",
            op,
            user.uuid(),
            ack.scope,
            kind
        )?
        .is_some();
        if !known {
            return Ok(false);
        }
        q!(
            tx,
            execute,
            "UPDATE devices SET pull_cursor = greatest(pull_cursor, $2) WHERE id = $1",
            device.uuid(),
            op
        )?;
        Self::audit(
            tx,
            crate::audit::Entry {
                seq: 0,
                at: ts(now),
                user: *user.as_bytes(),
                device: *device.as_bytes(),
                action: if kind == "grant" {
                    "bootstrap_ack".into()
                } else {
                    "purge_ack".into()
                },
                scope: ack.scope.clone(),
                record: None,
                count: ack.op_id,
                purpose: "sync".into(),
            },
        )
        .await?;
        Ok(true)
    }

    fn read_user(
        keys: &ServerKeys,
        id: Uuid,
        sealed: Vec<u8>,
        hash: String,
    ) -> StoreResult<StoredUser> {
        let plain = keys.open("users", id.as_bytes(), &sealed).map_err(db_err)?;
        let user: User = serde_json::from_slice(&plain).map_err(decode_err)?;
        Ok(StoredUser {
            user,
            password_hash: hash,
        })
    }

    async fn add_org_unit_tx(tx: &Tx<'_>, unit: OrgUnit) -> StoreResult<()> {
        let mut units = Self::load_units(tx).await?;
        units.push(unit.clone());
        let tree = OrgTree::new(units)?;
        let json = serde_json::to_string(&unit).map_err(db_err)?;
        q!(
            tx,
            execute,
            "INSERT INTO org_units(id, json) VALUES ($1, $2)",
            unit.id.uuid(),
            json
        )?;
        let scope = match unit.kind {
            OrgUnitKind::Team => Some(Scope::Team(unit.id)),
            OrgUnitKind::CommunityPoint => Some(Scope::Point(unit.id)),
            _ => None,
        };
        if let (Some(scope), Some(commune)) = (scope, tree.commune_of(unit.id)) {
            for supervisor in Self::supervisors_of(tx, commune).await? {
                Self::apply_membership(tx, &Membership::Grant(scope, supervisor)).await?;
            }
        }
        Ok(())
    }

    async fn add_user_tx(tx: &Tx<'_>, keys: &ServerKeys, user: StoredUser) -> StoreResult<()> {
        user.user.validate()?;
        let known = q!(
            tx,
            query_opt,
            "SELECT 1 FROM org_units WHERE id = $1",
            user.user.org_unit.uuid()
        )?
        .is_some();
        if !known {
            return Err(StoreError::Invalid(
                donghanh_core::domain::DomainError::UnknownReference { field: "org_unit" },
            ));
        }
        let id = user.user.id.uuid();
        let sealed = keys
            .seal(
                "users",
                id.as_bytes(),
                &serde_json::to_vec(&user.user).map_err(db_err)?,
            )
            .map_err(db_err)?;
        q!(
            tx,
            execute,
            "INSERT INTO users(id, username_mac, role, org_unit, sealed, password_hash)
             VALUES ($1, $2, $3, $4, $5, $6)",
            id,
            keys.lookup("username", &user.user.username),
            user.user.role.code(),
            user.user.org_unit.uuid(),
            sealed,
            user.password_hash
        )
        .map_err(|e| match e {
            StoreError::Exists { .. } => StoreError::Exists { what: "username" },
            other => other,
        })?;
        let tree = Self::load_tree(tx).await?;
        Self::reconcile_user(tx, &tree, &user.user).await
    }

    async fn user_where(
        &self,
        sql: &str,
        key: &(dyn tokio_postgres::types::ToSql + Sync),
    ) -> StoreResult<Option<StoredUser>> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await.map_err(pg_err)?;
        let row = client.query_opt(&stmt, &[key]).await.map_err(pg_err)?;
        row.map(|r| Self::read_user(&self.keys, r.get(0), r.get(1), r.get(2)))
            .transpose()
    }
}

/// Applies the migrations this database lacks, in the caller's transaction (which holds the
/// migration lock).
async fn migrate(tx: &Tx<'_>) -> StoreResult<()> {
    let exists: bool = q!(
        tx,
        query_one,
        "SELECT to_regclass('schema_migrations') IS NOT NULL"
    )?
    .get(0);
    if !exists {
        tx.batch_execute(
            "CREATE TABLE schema_migrations (
                 version INTEGER PRIMARY KEY,
                 applied_at BIGINT NOT NULL
             )",
        )
        .await
        .map_err(pg_err)?;
    }
    let current: i32 = q!(
        tx,
        query_one,
        "SELECT coalesce(max(version), 0) FROM schema_migrations"
    )?
    .get(0);
    let known = i32::try_from(MIGRATIONS.len()).map_err(db_err)?;
    if current > known {
        return Err(StoreError::Database(format!(
            "the database schema is version {current}, newer than this build's {known}: \
             upgrade the server"
        )));
    }
    for (version, sql) in (1..=known)
        .zip(MIGRATIONS)
        .skip(usize::try_from(current).map_err(db_err)?)
    {
        tx.batch_execute(sql).await.map_err(pg_err)?;
        q!(
            tx,
            execute,
            "INSERT INTO schema_migrations(version, applied_at) VALUES ($1, $2)",
            version,
            ts(Utc::now())
        )?;
    }
    Ok(())
}

impl SyncStore for PgStore {
    async fn org_units(&self) -> StoreResult<Vec<OrgUnit>> {
        let client = self.client().await?;
        let rows = q!(client, query, "SELECT json FROM org_units")?;
        rows.iter()
            .map(|r| serde_json::from_str(r.get::<_, &str>(0)).map_err(decode_err))
            .collect()
    }

    async fn add_org_unit(&self, unit: OrgUnit) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = Self::begin_logged(&mut client).await?;
        Self::add_org_unit_tx(&tx, unit).await?;
        tx.commit().await.map_err(pg_err)
    }

    async fn add_user(&self, user: StoredUser) -> StoreResult<()> {
        user.user.validate()?;
        let mut client = self.client().await?;
        let tx = Self::begin_logged(&mut client).await?;
        Self::add_user_tx(&tx, &self.keys, user).await?;
        tx.commit().await.map_err(pg_err)
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<StoredUser>> {
        let mac = self.keys.lookup("username", username);
        self.user_where(
            "SELECT id, sealed, password_hash FROM users WHERE username_mac = $1",
            &mac,
        )
        .await
    }

    async fn user(&self, id: Id) -> StoreResult<Option<StoredUser>> {
        self.user_where(
            "SELECT id, sealed, password_hash FROM users WHERE id = $1",
            &id.uuid(),
        )
        .await
    }

    async fn add_device(&self, device: Device, refresh_hash: Vec<u8>) -> StoreResult<()> {
        device.validate()?;
        let id = device.id.uuid();
        let sealed = self
            .keys
            .seal(
                "devices",
                id.as_bytes(),
                &serde_json::to_vec(&device).map_err(db_err)?,
            )
            .map_err(db_err)?;
        let client = self.client().await?;
        q!(
            client,
            execute,
            "INSERT INTO devices(id, user_id, revoked_at, sealed, refresh_hash)
             VALUES ($1, $2, $3, $4, $5)",
            id,
            device.user.uuid(),
            device.revoked_at.map(ts),
            sealed,
            refresh_hash
        )?;
        Ok(())
    }

    async fn device(&self, id: Id) -> StoreResult<Option<Device>> {
        let client = self.client().await?;
        let row = q!(
            client,
            query_opt,
            "SELECT sealed FROM devices WHERE id = $1",
            id.uuid()
        )?;
        row.map(|r| {
            let sealed: Vec<u8> = r.get(0);
            let plain = self
                .keys
                .open("devices", id.as_bytes(), &sealed)
                .map_err(db_err)?;
            serde_json::from_slice(&plain).map_err(decode_err)
        })
        .transpose()
    }

    async fn revoke_device(&self, id: Id, at: DateTime<Utc>) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let row = q!(
            tx,
            query_opt,
            "SELECT sealed FROM devices WHERE id = $1 FOR UPDATE",
            id.uuid()
        )?
        .ok_or(StoreError::NotFound)?;
        let sealed: Vec<u8> = row.get(0);
        let mut device: Device = serde_json::from_slice(
            &self
                .keys
                .open("devices", id.as_bytes(), &sealed)
                .map_err(db_err)?,
        )
        .map_err(decode_err)?;
        device.revoke(at)?;
        let sealed = self
            .keys
            .seal(
                "devices",
                id.as_bytes(),
                &serde_json::to_vec(&device).map_err(db_err)?,
            )
            .map_err(db_err)?;
        q!(
            tx,
            execute,
            "UPDATE devices SET revoked_at = $2, sealed = $3 WHERE id = $1",
            id.uuid(),
            ts(at),
            sealed
        )?;
        q!(
            tx,
            execute,
            "DELETE FROM access_tokens WHERE device = $1",
            id.uuid()
        )?;
        tx.commit().await.map_err(pg_err)
    }

    async fn rotate_refresh(&self, device: Id, old: Vec<u8>, new: Vec<u8>) -> StoreResult<bool> {
        let client = self.client().await?;
        let n = q!(
            client,
            execute,
            "UPDATE devices SET refresh_hash = $3
             WHERE id = $1 AND (refresh_hash = $2 OR refresh_hash = $3)
               AND revoked_at IS NULL",
            device.uuid(),
            old,
            new
        )?;
        Ok(n == 1)
    }

    async fn put_access_token(&self, hash: Vec<u8>, grant: AccessGrant) -> StoreResult<()> {
        let client = self.client().await?;
        q!(
            client,
            execute,
            "INSERT INTO access_tokens(hash, device, user_id, expires_at) VALUES ($1, $2, $3, $4)",
            hash,
            grant.device.uuid(),
            grant.user.uuid(),
            ts_ceil(grant.expires_at)
        )?;
        q!(
            client,
            execute,
            "DELETE FROM access_tokens WHERE expires_at < $1",
            ts(Utc::now())
        )?;
        Ok(())
    }

    async fn access_grant(&self, hash: Vec<u8>) -> StoreResult<Option<AccessGrant>> {
        let client = self.client().await?;
        let row = q!(
            client,
            query_opt,
            "SELECT t.device, t.user_id, t.expires_at FROM access_tokens t
             JOIN devices d ON d.id = t.device
             WHERE t.hash = $1 AND d.revoked_at IS NULL",
            hash
        )?;
        Ok(row.map(|r| AccessGrant {
            device: Id::from(r.get::<_, Uuid>(0)),
            user: Id::from(r.get::<_, Uuid>(1)),
            expires_at: from_ts(r.get(2)),
        }))
    }

    async fn record_login_failure(&self, username: &str, at: DateTime<Utc>) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        q!(
            tx,
            execute,
            "DELETE FROM login_failures WHERE at < $1",
            ts(at - crate::auth::FAILURE_WINDOW)
        )?;
        q!(
            tx,
            execute,
            "INSERT INTO login_failures(username_mac, at) VALUES ($1, $2)",
            self.keys.lookup("username", username),
            ts(at)
        )?;
        tx.commit().await.map_err(pg_err)
    }

    async fn login_failures_since(&self, username: &str, since: DateTime<Utc>) -> StoreResult<u32> {
        let client = self.client().await?;
        let n: i64 = q!(
            client,
            query_one,
            "SELECT count(*) FROM login_failures WHERE username_mac = $1 AND at >= $2",
            self.keys.lookup("username", username),
            ts(since)
        )?
        .get(0);
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn clear_login_failures(&self, username: &str) -> StoreResult<()> {
        let client = self.client().await?;
        q!(
            client,
            execute,
            "DELETE FROM login_failures WHERE username_mac = $1",
            self.keys.lookup("username", username)
        )?;
        Ok(())
    }

    async fn push(
        &self,
        caller: PushCaller,
        m: Mutation<Value>,
        now: DateTime<Utc>,
    ) -> StoreResult<Receipt> {
        let mut client = self.client().await?;
        let tx = Self::begin_logged(&mut client).await?;
        let receipt = Self::push_one(&tx, &self.keys, caller, m, now).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(receipt)
    }

    async fn push_many(
        &self,
        caller: PushCaller,
        mutations: Vec<Mutation<Value>>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Receipt>> {
        let mut client = self.client().await?;
        let tx = Self::begin_logged(&mut client).await?;
        let mut receipts = Vec::with_capacity(mutations.len());
        for m in mutations {
            receipts.push(Self::push_one(&tx, &self.keys, caller, m, now).await?);
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(receipts)
    }

    async fn pull(
        &self,
        user: Id,
        device: Id,
        cursor: u64,
        limit: u32,
        max_bytes: u32,
    ) -> StoreResult<PullPage<RawJson>> {
        let cursor_i = i64::try_from(cursor).map_err(|_| db_err("cursor out of range"))?;
        let mut client = self.client().await?;
        // The page, from one snapshot: a prefix of the op log.
        let (changes, page_events, has_more, last, high) = {
            let tx = Self::begin_snapshot(&mut client).await?;
            let horizon: i64 = q!(
                tx,
                query_one,
                "SELECT v FROM server_meta WHERE k = 'tombstone_horizon'"
            )?
            .get(0);
            if cursor_i > 0 && cursor_i < horizon {
                return Err(StoreError::CursorExpired);
            }
            let fetch = i64::from(limit) + 1;
            let high: i64 = q!(tx, query_one, "SELECT last FROM op_counter WHERE one = 1")?.get(0);
            let event_rows = q!(
                tx,
                query,
                "SELECT op_id, scope, kind FROM scope_events
                 WHERE user_id = $1 AND op_id > $2 ORDER BY op_id LIMIT $3",
                user.uuid(),
                cursor_i,
                fetch
            )?;
            let mut events = Vec::with_capacity(event_rows.len());
            for r in &event_rows {
                events.push(ScopeEvent {
                    op_id: u64_of(r.get(0))?,
                    scope: r.get(1),
                    kind: if r.get::<_, &str>(2) == "grant" {
                        ScopeEventKind::Grant
                    } else {
                        ScopeEventKind::Revoke
                    },
                });
            }
            let rows = q!(
                tx,
                query,
                // Per held scope, its first rows after the cursor (`records_scope`), merged by
                // op id: a page costs the user's scopes and the rows it returns, not every op
                // of every scope since the cursor (a volunteer holds a few cases among a
                // province's thousands).
                "SELECT r.id, r.kind, r.scope, r.version, r.deleted, r.op_id, r.sealed
                 FROM scope_members m
                 CROSS JOIN LATERAL (
                     SELECT id, kind, scope, version, deleted, op_id, sealed FROM records
                     WHERE scope = m.scope AND op_id > $1 ORDER BY op_id LIMIT $3
                 ) r
                 WHERE m.user_id = $2
                 ORDER BY r.op_id LIMIT $3",
                cursor_i,
                user.uuid(),
                fetch
            )?;
            tx.commit().await.map_err(pg_err)?;
            let (mut changes, mut page_events) = (Vec::new(), Vec::new());
            let (mut taken, mut bytes, mut last) = (0u32, 0usize, cursor);
            let mut events = events.into_iter().peekable();
            let mut rows = rows.into_iter().peekable();
            while taken < limit && (taken == 0 || bytes < max_bytes as usize) {
                let change_op = rows.peek().map(|r| r.get::<_, i64>(5));
                let take_change = match (change_op, events.peek()) {
                    (None, None) => break,
                    (Some(_), None) => true,
                    (None, Some(_)) => false,
                    (Some(a), Some(e)) => u64_of(a)? < e.op_id,
                };
                if take_change && let Some(r) = rows.next() {
                    let id: Uuid = r.get(0);
                    let deleted: bool = r.get(4);
                    let record = if deleted {
                        bytes += 64;
                        None
                    } else {
                        let sealed: &[u8] = r.get(6);
                        let plain = self
                            .keys
                            .open("records", id.as_bytes(), sealed)
                            .map_err(db_err)?;
                        bytes += plain.len() + 64;
                        let text = String::from_utf8(plain)
                            .map_err(|_| db_err("a stored record is not UTF-8"))?;
                        Some(RawValue::from_string(text).map_err(decode_err)?)
                    };
                    let op_id = u64_of(r.get(5))?;
                    changes.push(Change {
                        op_id,
                        record_id: id,
                        kind: r.get(1),
                        scope: r.get(2),
                        version: u64_of(r.get(3))?,
                        op: if deleted {
                            ChangeOp::Delete
                        } else {
                            ChangeOp::Upsert
                        },
                        record,
                    });
                    last = op_id;
                } else if let Some(event) = events.next() {
                    last = event.op_id;
                    page_events.push(event);
                }
                taken += 1;
            }
            let has_more = rows.peek().is_some() || events.peek().is_some();
            (changes, page_events, has_more, last, u64_of(high)?)
        };
        // The device's cursor and the audit of what the page serves: one short write.
        let mut per_scope: std::collections::BTreeMap<&str, u64> =
            std::collections::BTreeMap::new();
        for change in &changes {
            *per_scope.entry(change.scope.as_str()).or_default() += 1;
        }
        let at = ts(Utc::now());
        // A page that serves no record appends nothing to the audit chain, and so does not
        // wait for the commit point (the cursor only ever rises, and compaction reading an
        // older one keeps more tombstones, never fewer).
        let tx = if changes.is_empty() {
            client.transaction().await.map_err(pg_err)?
        } else {
            Self::begin_logged(&mut client).await?
        };
        q!(
            tx,
            execute,
            "UPDATE devices SET pull_cursor = greatest(pull_cursor, $2), last_seen = $3
             WHERE id = $1",
            device.uuid(),
            cursor_i,
            at
        )?;
        let entries: Vec<crate::audit::Entry> = per_scope
            .into_iter()
            .map(|(scope, count)| crate::audit::Entry {
                seq: 0,
                at,
                user: *user.as_bytes(),
                device: *device.as_bytes(),
                action: "sync_down".into(),
                scope: scope.to_owned(),
                record: None,
                count,
                purpose: "sync".into(),
            })
            .collect();
        Self::audit_many(&tx, entries).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(PullPage {
            changes,
            scope_events: page_events,
            next_cursor: if has_more { last } else { high.max(cursor) },
            has_more,
            as_of: high,
        })
    }

    async fn conflicts(&self, user: Id) -> StoreResult<Vec<Conflict<Value>>> {
        let client = self.client().await?;
        let rows = q!(
            client,
            query,
            "SELECT id, record_id, kind, scope, field, sealed, lost_by_device, op_id
             FROM conflicts
             WHERE NOT resolved
               AND scope IN (SELECT scope FROM scope_members WHERE user_id = $1)
             ORDER BY op_id",
            user.uuid()
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let id: Uuid = r.get(0);
            let sealed: Vec<u8> = r.get(5);
            let body: Value = serde_json::from_slice(
                &self
                    .keys
                    .open("conflicts", id.as_bytes(), &sealed)
                    .map_err(db_err)?,
            )
            .map_err(decode_err)?;
            out.push(Conflict {
                id,
                record_id: r.get(1),
                kind: r.get(2),
                scope: r.get(3),
                field: r.get(4),
                kept: body["kept"].clone(),
                lost: body["lost"].clone(),
                lost_by_device: r.get(6),
                op_id: u64_of(r.get(7))?,
            });
        }
        Ok(out)
    }

    async fn resolve_conflict(
        &self,
        caller: PushCaller,
        id: Id,
        restore: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let keys = Arc::clone(&self.keys);
        let mut client = self.client().await?;
        let tx = Self::begin_logged(&mut client).await?;
        let row = q!(
            tx,
            query_opt,
            "SELECT record_id, kind, scope, field, sealed FROM conflicts
             WHERE id = $1 AND NOT resolved
               AND scope IN (SELECT scope FROM scope_members WHERE user_id = $2)",
            id.uuid(),
            caller.user.uuid()
        )?
        .ok_or(StoreError::NotFound)?;
        let record: Uuid = row.get(0);
        let (kind, scope, field): (String, String, String) = (row.get(1), row.get(2), row.get(3));
        let sealed: Vec<u8> = row.get(4);
        q!(
            tx,
            execute,
            "UPDATE conflicts SET resolved = true WHERE id = $1",
            id.uuid()
        )?;
        if restore {
            let body: Value = serde_json::from_slice(
                &keys
                    .open("conflicts", id.as_bytes(), &sealed)
                    .map_err(db_err)?,
            )
            .map_err(decode_err)?;
            let current = Self::read_current(&tx, &keys, record)
                .await?
                .ok_or(StoreError::NotFound)?;
            let mut patch = serde_json::Map::new();
            patch.insert(field, body["lost"].clone());
            let m = Mutation {
                client_seq: 0,
                record_id: record,
                kind,
                scope,
                op: MutationOp::Update,
                base_version: current.version,
                patch: Value::Object(patch),
            };
            let access = Access {
                user: caller.user,
                role: caller.role,
                holds_scope: true,
                device: caller.device,
                commune: Self::commune_of_user(&tx, caller.user).await?,
            };
            let plan = sync::plan(&m, Some(&current), access, now).map_err(|e| {
                StoreError::Invalid(donghanh_core::domain::DomainError::InvalidFormat {
                    field: "restore",
                    expected: if e.code == "forbidden" {
                        "a role that may edit this record"
                    } else {
                        "a value that is still valid"
                    },
                })
            })?;
            Self::write_plan(&tx, &keys, &m, &plan, caller, now, "conflict_restore").await?;
        }
        tx.commit().await.map_err(pg_err)
    }

    async fn verify_audit(&self) -> StoreResult<crate::audit::Verdict> {
        let mut client = self.client().await?;
        let tx = Self::begin_snapshot(&mut client).await?;
        let rows = q!(
            tx,
            query,
            "SELECT seq, at, user_id, device, action, scope, record, count, purpose, prev, hash
             FROM audit_log ORDER BY seq"
        )?;
        tx.commit().await.map_err(pg_err)?;
        let mut entries = Vec::with_capacity(rows.len());
        for r in &rows {
            entries.push((
                crate::audit::Entry {
                    seq: u64::try_from(r.get::<_, i64>(0)).unwrap_or(0),
                    at: r.get(1),
                    user: *r.get::<_, Uuid>(2).as_bytes(),
                    device: *r.get::<_, Uuid>(3).as_bytes(),
                    action: r.get(4),
                    scope: r.get(5),
                    record: r.get::<_, Option<Uuid>>(6).map(|u| *u.as_bytes()),
                    count: u64::try_from(r.get::<_, i64>(7)).unwrap_or(0),
                    purpose: r.get(8),
                },
                r.get::<_, Vec<u8>>(9),
                r.get::<_, Vec<u8>>(10),
            ));
        }
        Ok(crate::audit::verify(
            entries
                .iter()
                .map(|(e, p, h)| (e, p.as_slice(), h.as_slice())),
        ))
    }

    async fn scopes_of(&self, user: Id) -> StoreResult<Vec<String>> {
        let client = self.client().await?;
        let rows = q!(
            client,
            query,
            "SELECT scope FROM scope_members WHERE user_id = $1 ORDER BY scope COLLATE \"C\"",
            user.uuid()
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn ack_scope(
        &self,
        user: Id,
        device: Id,
        ack: ScopeAck,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = Self::begin_logged(&mut client).await?;
        if !Self::ack_one(&tx, user, device, &ack, now).await? {
            return Err(StoreError::NotFound);
        }
        tx.commit().await.map_err(pg_err)
    }

    async fn ack_scopes(
        &self,
        user: Id,
        device: Id,
        acks: Vec<ScopeAck>,
        now: DateTime<Utc>,
    ) -> StoreResult<usize> {
        let mut client = self.client().await?;
        let tx = Self::begin_logged(&mut client).await?;
        let mut recorded = 0;
        for ack in &acks {
            if Self::ack_one(&tx, user, device, ack, now).await? {
                recorded += 1;
            }
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(recorded)
    }

    async fn directory(&self, user: Id) -> StoreResult<Vec<DirectoryEntry>> {
        let client = self.client().await?;
        let me = q!(
            client,
            query_opt,
            "SELECT role, commune FROM users WHERE id = $1",
            user.uuid()
        )?
        .ok_or(StoreError::NotFound)?;
        let role: String = me.get(0);
        let commune: Option<Uuid> = me.get(1);
        let rows = match (role.as_str(), commune) {
            ("supervisor", Some(commune)) => q!(
                client,
                query,
                "SELECT id, sealed, password_hash FROM users
                 WHERE commune = $1 AND role IN ('volunteer', 'counsellor', 'supervisor')",
                commune
            )?,
            _ => q!(
                client,
                query,
                "SELECT id, sealed, password_hash FROM users WHERE id = $1",
                user.uuid()
            )?,
        };
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let u = Self::read_user(&self.keys, r.get(0), r.get(1), r.get(2))?.user;
            let role = serde_json::to_value(u.role)
                .ok()
                .and_then(|v| serde_json::from_value(v).ok())
                .ok_or_else(|| db_err("a stored role has no wire form"))?;
            out.push(DirectoryEntry {
                id: u.id.uuid(),
                username: u.username,
                display_name: u.display_name,
                role,
                org_unit: u.org_unit.uuid(),
                point: u.point.map(|p| p.uuid()),
            });
        }
        out.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(out)
    }

    async fn compact(&self, now: DateTime<Utc>, lease_seconds: u64) -> StoreResult<u64> {
        let mut client = self.client().await?;
        let tx = Self::begin_logged(&mut client).await?;
        let since = ts(now) - i64::try_from(lease_seconds).unwrap_or(i64::MAX / 2);
        let high: i64 = q!(tx, query_one, "SELECT last FROM op_counter WHERE one = 1")?.get(0);
        let oldest: Option<i64> = q!(
            tx,
            query_one,
            "SELECT min(pull_cursor) FROM devices
             WHERE revoked_at IS NULL AND last_seen IS NOT NULL AND last_seen >= $1",
            since
        )?
        .get(0);
        let safe = oldest.unwrap_or(high);
        let newest_removed: Option<i64> = q!(
            tx,
            query_one,
            "SELECT max(op_id) FROM records WHERE deleted AND op_id <= $1",
            safe
        )?
        .get(0);
        let removed = q!(
            tx,
            execute,
            "DELETE FROM records WHERE deleted AND op_id <= $1",
            safe
        )?;
        if let Some(newest) = newest_removed {
            q!(
                tx,
                execute,
                "UPDATE server_meta SET v = greatest(v, $1) WHERE k = 'tombstone_horizon'",
                newest
            )?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(removed)
    }

    async fn tombstone_horizon(&self) -> StoreResult<u64> {
        let client = self.client().await?;
        let v: i64 = q!(
            client,
            query_one,
            "SELECT v FROM server_meta WHERE k = 'tombstone_horizon'"
        )?
        .get(0);
        u64_of(v)
    }

    async fn snapshot(
        &self,
        user: Id,
        device: Id,
        scope: String,
        after: Option<Id>,
        limit: u32,
    ) -> StoreResult<SnapshotPage<RawJson>> {
        let mut client = self.client().await?;
        let (records, as_of, more) = {
            let tx = Self::begin_snapshot(&mut client).await?;
            let holds = q!(
                tx,
                query_opt,
                "SELECT 1 FROM scope_members WHERE scope = $1 AND user_id = $2",
                scope,
                user.uuid()
            )?
            .is_some();
            if !holds {
                return Err(StoreError::NotFound);
            }
            let as_of: i64 = q!(tx, query_one, "SELECT last FROM op_counter WHERE one = 1")?.get(0);
            let after = after.map_or(Uuid::nil(), |a| a.uuid());
            let rows = q!(
                tx,
                query,
                "SELECT id, kind, version, op_id, sealed FROM records
                 WHERE scope = $1 AND NOT deleted AND id > $2 ORDER BY id LIMIT $3",
                scope,
                after,
                i64::from(limit) + 1
            )?;
            tx.commit().await.map_err(pg_err)?;
            let more = rows.len() > limit as usize;
            let mut records = Vec::with_capacity(rows.len());
            for r in rows.iter().take(limit as usize) {
                let id: Uuid = r.get(0);
                let sealed: &[u8] = r.get(4);
                let plain = self
                    .keys
                    .open("records", id.as_bytes(), sealed)
                    .map_err(db_err)?;
                let text =
                    String::from_utf8(plain).map_err(|_| db_err("a stored record is not UTF-8"))?;
                records.push(Change {
                    op_id: u64_of(r.get(3))?,
                    record_id: id,
                    kind: r.get(1),
                    scope: scope.clone(),
                    version: u64_of(r.get(2))?,
                    op: ChangeOp::Upsert,
                    record: Some(RawValue::from_string(text).map_err(decode_err)?),
                });
            }
            (records, u64_of(as_of)?, more)
        };
        let next_after = if more {
            records.last().map(|r| r.record_id)
        } else {
            None
        };
        if !records.is_empty() {
            let tx = Self::begin_logged(&mut client).await?;
            Self::audit(
                &tx,
                crate::audit::Entry {
                    seq: 0,
                    at: ts(Utc::now()),
                    user: *user.as_bytes(),
                    device: *device.as_bytes(),
                    action: "sync_down".into(),
                    scope: scope.clone(),
                    record: None,
                    count: records.len() as u64,
                    purpose: "bootstrap".into(),
                },
            )
            .await?;
            tx.commit().await.map_err(pg_err)?;
        }
        Ok(SnapshotPage {
            scope,
            records,
            as_of,
            next_after,
        })
    }

    async fn set_trained(&self, user: Id, on: Option<NaiveDate>) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let row = q!(
            tx,
            query_opt,
            "SELECT sealed FROM users WHERE id = $1 FOR UPDATE",
            user.uuid()
        )?
        .ok_or(StoreError::NotFound)?;
        let sealed: Vec<u8> = row.get(0);
        let plain = self
            .keys
            .open("users", user.as_bytes(), &sealed)
            .map_err(db_err)?;
        let mut stored: User = serde_json::from_slice(&plain).map_err(decode_err)?;
        stored.trained_on = on;
        let resealed = self
            .keys
            .seal(
                "users",
                user.as_bytes(),
                &serde_json::to_vec(&stored).map_err(db_err)?,
            )
            .map_err(db_err)?;
        q!(
            tx,
            execute,
            "UPDATE users SET sealed = $2 WHERE id = $1",
            user.uuid(),
            resealed
        )?;
        tx.commit().await.map_err(pg_err)
    }

    async fn staff_facts(&self, communes: Vec<Id>) -> StoreResult<Vec<Fact>> {
        let client = self.client().await?;
        let mut out = Vec::new();
        for commune in communes {
            let rows = q!(
                client,
                query,
                "SELECT id, sealed FROM users WHERE commune = $1
                 AND role IN ('volunteer', 'counsellor', 'supervisor')",
                commune.uuid()
            )?;
            for r in rows {
                let id: Uuid = r.get(0);
                let sealed: Vec<u8> = r.get(1);
                let plain = self
                    .keys
                    .open("users", id.as_bytes(), &sealed)
                    .map_err(db_err)?;
                let user: User = serde_json::from_slice(&plain).map_err(decode_err)?;
                out.push(Fact::Staff {
                    id: user.id,
                    commune: Some(commune),
                    trained_on: user.trained_on,
                });
            }
        }
        Ok(out)
    }

    async fn put_plan(&self, plan: Plan, by: Id, now: DateTime<Utc>) -> StoreResult<()> {
        let client = self.client().await?;
        q!(
            client,
            execute,
            "INSERT INTO plans(org, period, body, set_by, set_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT(org, period) DO UPDATE SET body = excluded.body,
               set_by = excluded.set_by, set_at = excluded.set_at",
            plan.org.uuid(),
            plan.period.to_string(),
            serde_json::to_string(&plan).map_err(db_err)?,
            by.uuid(),
            ts(now)
        )?;
        Ok(())
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
        let mut client = self.client().await?;
        let tx = Self::begin_logged(&mut client).await?;
        Self::audit(
            &tx,
            crate::audit::Entry {
                seq: 0,
                at: ts(now),
                user: *user.as_bytes(),
                device: *device.as_bytes(),
                action: action.to_owned(),
                scope,
                record: None,
                count,
                purpose,
            },
        )
        .await?;
        tx.commit().await.map_err(pg_err)
    }

    async fn close_report(&self, org: Id, report: Report, at: DateTime<Utc>) -> StoreResult<()> {
        let client = self.client().await?;
        let inserted = q!(
            client,
            execute,
            "INSERT INTO report_snapshots(org, template, period, body, closed_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            org.uuid(),
            report.template,
            report.period.to_string(),
            serde_json::to_string(&report).map_err(db_err)?,
            ts(at)
        )?;
        if inserted == 0 {
            return Err(StoreError::Exists {
                what: "a closed report for this unit, template and period",
            });
        }
        Ok(())
    }

    async fn closed_report(
        &self,
        org: Id,
        template: String,
        period: donghanh_core::report::Period,
    ) -> StoreResult<Option<Report>> {
        let client = self.client().await?;
        let row = q!(
            client,
            query_opt,
            "SELECT body FROM report_snapshots WHERE org = $1 AND template = $2 AND period = $3",
            org.uuid(),
            template,
            period.to_string()
        )?;
        row.map(|r| serde_json::from_str(r.get::<_, &str>(0)).map_err(decode_err))
            .transpose()
    }

    async fn plans(&self, org: Id) -> StoreResult<Vec<Plan>> {
        let client = self.client().await?;
        let rows = q!(
            client,
            query,
            "SELECT body FROM plans WHERE org = $1 ORDER BY period COLLATE \"C\"",
            org.uuid()
        )?;
        rows.iter()
            .map(|r| serde_json::from_str(r.get::<_, &str>(0)).map_err(decode_err))
            .collect()
    }

    async fn report_facts(
        &self,
        communes: Vec<Id>,
        points: Vec<Id>,
        start: NaiveDate,
        end: NaiveDate,
    ) -> StoreResult<Vec<Fact>> {
        // The SQLite backend's query: the cases of any of these units' communes, and the
        // sessions of any of them that is a point.
        let units: Vec<Uuid> = communes.iter().chain(&points).map(Id::uuid).collect();
        let client = self.client().await?;
        // One statement: one consistent state of the database.
        let rows = q!(
            client,
            query,
            "SELECT f.record, f.personal, f.body FROM report_facts f
             WHERE (f.day IS NULL OR f.day BETWEEN $1 AND $2)
               AND (f.person IN (SELECT person FROM case_communes WHERE commune = ANY($3))
                    OR f.point = ANY($3))",
            start.num_days_from_ce(),
            end.num_days_from_ce(),
            units
        )?;
        let mut facts = Vec::new();
        for r in rows {
            let record: Uuid = r.get(0);
            let personal: bool = r.get(1);
            let body: Vec<u8> = r.get(2);
            let json = if personal {
                self.keys
                    .open("report_facts", record.as_bytes(), &body)
                    .map_err(db_err)?
            } else {
                body
            };
            let mut some: Vec<Fact> = serde_json::from_slice(&json).map_err(decode_err)?;
            facts.append(&mut some);
        }
        Ok(facts)
    }

    async fn put_glass_grant(&self, grant: GlassGrant, device: Id) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = Self::begin_logged(&mut client).await?;
        let id = grant.id.uuid();
        let sealed = self
            .keys
            .seal("glass_grants", id.as_bytes(), grant.reason.as_bytes())
            .map_err(db_err)?;
        q!(
            tx,
            execute,
            "INSERT INTO glass_grants(id, officer, org, granted_at, expires_at, sealed)
             VALUES ($1, $2, $3, $4, $5, $6)",
            id,
            grant.user.uuid(),
            grant.org.uuid(),
            ts(grant.granted_at),
            ts(grant.expires_at),
            sealed
        )?;
        Self::audit(
            &tx,
            crate::audit::Entry {
                seq: 0,
                at: ts(grant.granted_at),
                user: *grant.user.as_bytes(),
                device: *device.as_bytes(),
                action: "break_glass".to_owned(),
                scope: format!("org:{}", grant.org),
                record: None,
                count: 0,
                purpose: format!(
                    "grant {} until {}",
                    grant.id,
                    grant.expires_at.format("%Y-%m-%dT%H:%M:%SZ")
                ),
            },
        )
        .await?;
        tx.commit().await.map_err(pg_err)
    }

    async fn glass_grants(&self, user: Id, now: DateTime<Utc>) -> StoreResult<Vec<GlassGrant>> {
        let client = self.client().await?;
        let rows = q!(
            client,
            query,
            "SELECT id, org, granted_at, expires_at, sealed FROM glass_grants
             WHERE officer = $1 AND expires_at > $2 ORDER BY granted_at",
            user.uuid(),
            ts(now)
        )?;
        rows.iter()
            .map(|r| {
                let id: Uuid = r.get(0);
                let org: Uuid = r.get(1);
                let sealed: Vec<u8> = r.get(4);
                let reason = self
                    .keys
                    .open("glass_grants", id.as_bytes(), &sealed)
                    .map_err(db_err)?;
                Ok(GlassGrant {
                    id: Id::from(id),
                    user,
                    org: Id::from(org),
                    reason: String::from_utf8(reason).map_err(db_err)?,
                    granted_at: from_ts(r.get(2)),
                    expires_at: from_ts(r.get(3)),
                })
            })
            .collect()
    }

    async fn identities(&self, ids: Vec<Id>) -> StoreResult<Vec<Identity>> {
        let mut client = self.client().await?;
        // One read transaction: the people as they are at one moment.
        let tx = client.transaction().await.map_err(pg_err)?;
        let mut out = Vec::new();
        for id in ids {
            let Some(current) = Self::read_current(&tx, &self.keys, id.uuid()).await? else {
                continue;
            };
            if current.kind != "person" || current.deleted {
                continue;
            }
            let text = |field: &str| {
                current
                    .record
                    .get(field)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            out.push(Identity {
                id,
                full_name: text("full_name").unwrap_or_default(),
                birth_date: text("birth_date").and_then(|d| d.parse().ok()),
            });
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(out)
    }
}
