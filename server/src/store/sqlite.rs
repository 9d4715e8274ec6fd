//! The embedded default backend: one SQLite file (rusqlite, bundled), zero setup.
//!
//! One connection behind a mutex, used from tokio's blocking pool; WAL mode, checkpointed by a
//! thread of its own ([`Checkpointer`]) rather than inside requests. Rows that hold
//! identity (users, devices) are sealed with the server key ([`ServerKeys`]); usernames are
//! looked up by a keyed hash. Org-unit names are public and stay clear. Token tables hold only
//! hashes of tokens.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use donghanh_core::domain::{
    AnyRecord, Calendar, Device, Id, LegalParams, OrgTree, OrgUnit, OrgUnitKind, RecordKind, Scope,
    User,
};
use donghanh_core::report::{Fact, Plan, Report};
use rusqlite::{Connection, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};

use donghanh_protocol::{
    Change, ChangeOp, Conflict, DirectoryEntry, Mutation, MutationOp, Outcome, PullPage, Receipt,
    ScopeAck, ScopeEvent, ScopeEventKind, SnapshotPage,
};
use serde_json::Value;
use serde_json::value::RawValue;

use super::{
    AccessGrant, GlassGrant, Identity, PushCaller, RawJson, StoreError, StoreResult, StoredUser,
    SyncStore,
};
use crate::secrets::ServerKeys;
use crate::sync::{self, Access, Current, Membership};

const V1: &str = r"
CREATE TABLE org_units (
    id BLOB PRIMARY KEY NOT NULL,
    json TEXT NOT NULL
) STRICT;

CREATE TABLE users (
    id BLOB PRIMARY KEY NOT NULL,
    username_mac BLOB NOT NULL UNIQUE,
    role TEXT NOT NULL,
    org_unit BLOB NOT NULL,
    sealed BLOB NOT NULL,
    password_hash TEXT NOT NULL
) STRICT;

CREATE TABLE devices (
    id BLOB PRIMARY KEY NOT NULL,
    user BLOB NOT NULL REFERENCES users(id),
    revoked_at INTEGER,
    sealed BLOB NOT NULL,
    refresh_hash BLOB NOT NULL
) STRICT;

CREATE TABLE access_tokens (
    hash BLOB PRIMARY KEY NOT NULL,
    device BLOB NOT NULL REFERENCES devices(id),
    user BLOB NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX access_tokens_device ON access_tokens(device);

-- Records as the server holds them: sealed JSON, clear kind/scope/version for sync, the
-- version at which each field last changed (field names only) for the three-way merge, and
-- the op that last changed the row. Tombstones stay (deleted = 1), so a device that comes back
-- after any time still learns of the delete.
CREATE TABLE records (
    id BLOB PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    scope TEXT NOT NULL,
    version INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    op_id INTEGER NOT NULL,
    field_versions TEXT NOT NULL,
    field_devices TEXT NOT NULL,
    sealed BLOB NOT NULL
) STRICT;
CREATE INDEX records_op ON records(op_id);
CREATE INDEX records_scope ON records(scope, op_id);

CREATE TABLE receipts (
    device BLOB NOT NULL,
    client_seq INTEGER NOT NULL,
    receipt TEXT NOT NULL,
    PRIMARY KEY (device, client_seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE scope_members (
    scope TEXT NOT NULL,
    user BLOB NOT NULL,
    PRIMARY KEY (scope, user)
) STRICT, WITHOUT ROWID;
CREATE INDEX scope_members_user ON scope_members(user);

CREATE TABLE scope_events (
    op_id INTEGER PRIMARY KEY NOT NULL,
    user BLOB NOT NULL,
    scope TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('grant', 'revoke'))
) STRICT;
CREATE INDEX scope_events_user ON scope_events(user, op_id);

CREATE TABLE conflicts (
    id BLOB PRIMARY KEY NOT NULL,
    record_id BLOB NOT NULL,
    kind TEXT NOT NULL,
    scope TEXT NOT NULL,
    field TEXT NOT NULL,
    sealed BLOB NOT NULL,
    lost_by_device BLOB NOT NULL,
    op_id INTEGER NOT NULL,
    resolved INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Who touched which case data, when, from which device, for what: append-only and hash-chained
-- (each row's hash covers its fields and the previous row's hash), so an edited, inserted or
-- deleted row breaks the chain. Scopes and records are random ids; nothing identifying is here.
CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY NOT NULL,
    at INTEGER NOT NULL,
    user BLOB NOT NULL,
    device BLOB NOT NULL,
    action TEXT NOT NULL,
    scope TEXT NOT NULL,
    record BLOB,
    count INTEGER NOT NULL,
    purpose TEXT NOT NULL,
    prev BLOB NOT NULL,
    hash BLOB NOT NULL
) STRICT;

-- The log position: every accepted change and scope event takes the next op_id, in commit
-- order (one writer).
CREATE TABLE op_counter (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    last INTEGER NOT NULL
) STRICT;
INSERT INTO op_counter(one, last) VALUES (1, 0);

CREATE TABLE login_failures (
    username_mac BLOB NOT NULL,
    at INTEGER NOT NULL
) STRICT;
CREATE INDEX login_failures_user ON login_failures(username_mac, at);
";

/// Org-derived scopes, the device cursor and the tombstone horizon.
///
/// - `users.commune`: the commune a user belongs to (a random org-unit id), so that a case's
///   supervisors are found without opening every user row.
/// - `case_communes`: the commune of each case (clear: an org-unit id, no identity), so that a
///   supervisor added later is granted the commune's existing cases.
/// - `devices.cursor` / `devices.last_seen`: the last cursor a device pulled from and when; the
///   tombstone compaction keeps every delete some active device has not yet pulled past.
/// - `server_meta.tombstone_horizon`: the newest tombstone removed; older cursors re-bootstrap.
const V2: &str = r"
ALTER TABLE users ADD COLUMN commune BLOB;
CREATE INDEX users_commune ON users(commune, role);
ALTER TABLE devices ADD COLUMN cursor INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN last_seen INTEGER;
CREATE TABLE case_communes (
    person BLOB PRIMARY KEY NOT NULL,
    commune BLOB NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX case_communes_commune ON case_communes(commune);
CREATE TABLE server_meta (
    k TEXT PRIMARY KEY NOT NULL,
    v INTEGER NOT NULL
) STRICT;
INSERT INTO server_meta(k, v) VALUES ('tombstone_horizon', 0);
CREATE INDEX records_tombstones ON records(deleted, op_id);
";

/// Report facts (`donghanh_core::report::Fact`): what indicators count of each record, kept
/// beside the records so that a province's report reads narrow rows instead of unsealing every
/// record. `person` (a random case id) and `point` (an org-unit id) select an org subtree;
/// `day` (days since 1 January of year 1; none for people and episodes, which every period
/// needs) bounds a period. Facts hold no name, number, address or text; a person's fact
/// (commune, sex, year of birth) is sealed all the same (`personal = 1`).
/// `server_meta.report_facts` is the fact format the rows were built with: a different one
/// rebuilds them from the records when the store opens.
const V3: &str = r"
CREATE TABLE report_facts (
    record BLOB PRIMARY KEY NOT NULL,
    person BLOB,
    point BLOB,
    day INTEGER,
    personal INTEGER NOT NULL,
    body BLOB NOT NULL
) STRICT;
CREATE INDEX report_facts_person ON report_facts(person);
CREATE INDEX report_facts_point ON report_facts(point);
INSERT INTO server_meta(k, v) VALUES ('report_facts', 0);
";

/// The format of `report_facts` rows; bump it when `Fact` or its projection changes (2: facts
/// externally tagged).
const REPORT_FACTS_FORMAT: i64 = 2;

/// Plans and targets: one plan per org unit and period (a later one replaces it), as JSON in
/// clear (indicator codes and numbers; no personal data).
const V4: &str = r"
CREATE TABLE plans (
    org BLOB NOT NULL,
    period TEXT NOT NULL,
    body TEXT NOT NULL,
    set_by BLOB NOT NULL,
    set_at INTEGER NOT NULL,
    PRIMARY KEY (org, period)
) STRICT, WITHOUT ROWID;
";

/// Closed reporting periods: the report as it was when closed (aggregates, JSON in clear), so
/// that a submitted figure never changes when late records arrive.
const V5: &str = r"
CREATE TABLE report_snapshots (
    org BLOB NOT NULL,
    template TEXT NOT NULL,
    period TEXT NOT NULL,
    body TEXT NOT NULL,
    closed_at INTEGER NOT NULL,
    PRIMARY KEY (org, template, period)
) STRICT, WITHOUT ROWID;
";

/// Break-the-glass grants (DESIGN.md §2): the reason is sealed (it may describe the case).
const V6: &str = r"
CREATE TABLE glass_grants (
    id BLOB PRIMARY KEY NOT NULL,
    user BLOB NOT NULL,
    org BLOB NOT NULL,
    granted_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    sealed BLOB NOT NULL
) STRICT;
CREATE INDEX glass_grants_user ON glass_grants(user, expires_at);
";

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(V1),
        M::up(V2),
        M::up(V3),
        M::up(V4),
        M::up(V5),
        M::up(V6),
    ])
}

/// A database failure. A full disk is told apart (SQLite's `SQLITE_FULL`, or an I/O error of
/// kind `StorageFull` around the file): the client is told to come back later instead of
/// getting a bare `internal`, and the operator's log says what to fix.
fn db_err<E: std::fmt::Display + 'static>(e: E) -> StoreError {
    let any: &dyn std::any::Any = &e;
    let full = match (
        any.downcast_ref::<rusqlite::Error>(),
        any.downcast_ref::<rusqlite_migration::Error>(),
        any.downcast_ref::<std::io::Error>(),
    ) {
        (Some(e), _, _) => is_disk_full(e),
        (_, Some(rusqlite_migration::Error::RusqliteError { err, .. }), _) => is_disk_full(err),
        (_, _, Some(e)) => e.kind() == std::io::ErrorKind::StorageFull,
        _ => false,
    };
    if full {
        return StoreError::Full;
    }
    StoreError::Database(e.to_string())
}

/// `SQLITE_FULL`, or `SQLITE_IOERR_SHMSIZE`: opening a WAL database grows its shared-memory
/// index file, which fails that way (as a bare "disk I/O error") when the disk is full.
fn is_disk_full(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == rusqlite::ErrorCode::DiskFull
            || f.extended_code == rusqlite::ffi::SQLITE_IOERR_SHMSIZE)
}

/// Stored JSON that does not decode. serde's message may quote a value (a name), so it is
/// never kept: the error says only what failed.
fn decode_err(_: serde_json::Error) -> StoreError {
    StoreError::Database("a stored value could not be decoded".into())
}

fn from_sql(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, _) = &e
        && f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    {
        return StoreError::Exists { what: "unique" };
    }
    db_err(e)
}

fn id_blob(id: Id) -> [u8; 16] {
    *id.as_bytes()
}

fn blob_to_id(blob: &[u8]) -> StoreResult<Id> {
    <[u8; 16]>::try_from(blob)
        .map(Id::from_bytes)
        .map_err(|_| db_err("a stored id is not 16 bytes"))
}

fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

/// A time in whole seconds, rounded up: an expiry stored this way never comes earlier than the
/// one asked for (a one-second token truncated down could die at once).
fn ts_ceil(t: DateTime<Utc>) -> i64 {
    t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0)
}

fn from_ts(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(s, 0).unwrap_or_default()
}

/// A record's row: kind, scope, version, deleted, field versions, field devices, sealed JSON.
type CurrentRow = (String, String, i64, i64, String, String, Vec<u8>);

/// A break-the-glass grant's row: id, org, granted at, expires at, sealed reason.
type GrantRow = (Vec<u8>, Vec<u8>, i64, i64, Vec<u8>);

/// An open conflict's row: record id, kind, scope, field, sealed values.
type ConflictRow = (Vec<u8>, String, String, String, Vec<u8>);

/// The SQLite backend.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    keys: Arc<ServerKeys>,
    /// Held, not read: the last clone dropped stops the thread.
    _checkpointer: Arc<Checkpointer>,
}

/// How often the checkpointer copies the write-ahead log into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// WAL pages (4 KiB) at which a commit checkpoints by itself: a backstop for a checkpointer
/// that cannot keep up (SQLite's default is 1,000).
const BACKSTOP_CHECKPOINT_PAGES: u32 = 16_000;

/// A thread with its own connection that checkpoints the write-ahead log every
/// [`CHECKPOINT_EVERY`] (PASSIVE: it never blocks the writer or readers), so that a request's
/// commit does not: a checkpoint writes the log's pages into the database file and `fsync`s
/// it, which on this project's disks took 20–70 ms, and SQLite runs it in the commit that
/// crosses the interval. Durability is unchanged: the same commits, the same `fsync`s
/// (`synchronous=NORMAL` syncs the log at each checkpoint), on another thread. Stopped and
/// joined when the last clone of the store is dropped.
#[derive(Debug)]
struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path) -> StoreResult<Checkpointer> {
        let conn = Connection::open(path).map_err(db_err)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_EVERY)
                {
                    // A failed checkpoint is retried at the next tick (and the writer's
                    // backstop still runs); it loses nothing.
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
            })
            .map_err(db_err)?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database at `path`.
    pub fn open(path: &Path, keys: ServerKeys) -> StoreResult<SqliteStore> {
        let mut conn = Connection::open(path).map_err(db_err)?;
        let _: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(db_err)?;
        conn.execute_batch(
            "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;
             PRAGMA busy_timeout=5000; PRAGMA cache_size=-65536;",
        )
        .map_err(db_err)?;
        conn.query_row(
            &format!("PRAGMA wal_autocheckpoint={BACKSTOP_CHECKPOINT_PAGES}"),
            [],
            |_| Ok(()),
        )
        .map_err(db_err)?;
        migrations().to_latest(&mut conn).map_err(db_err)?;
        {
            // Users added before org scopes existed (a v1 database) get theirs now; for
            // everyone else this changes nothing.
            let tx = conn.transaction().map_err(db_err)?;
            Self::reconcile_all(&tx, &keys)?;
            Self::rebuild_report_facts_if_stale(&tx, &keys)?;
            tx.commit().map_err(db_err)?;
        }
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            keys: Arc::new(keys),
            _checkpointer: Arc::new(Checkpointer::start(path)?),
        })
    }

    /// Re-seals every sealed row with the current key and recomputes every keyed lookup
    /// (usernames; login-failure counters are cleared), in one transaction: part of a key
    /// rotation ([`ServerKeys::add_key`] before, [`ServerKeys::retire_keys`] after). Run it
    /// with the server stopped. Returns the number of rows re-sealed.
    pub async fn reseal_all(&self) -> StoreResult<u64> {
        self.run(|c, keys| {
            let tx = c.transaction().map_err(db_err)?;
            let mut count = 0u64;
            for table in ["users", "devices", "records", "conflicts", "glass_grants"] {
                let rows: Vec<(Vec<u8>, Vec<u8>)> = {
                    let mut stmt = tx
                        .prepare(&format!("SELECT id, sealed FROM {table}"))
                        .map_err(db_err)?;
                    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                        .map_err(db_err)?
                        .collect::<Result<_, _>>()
                        .map_err(db_err)?
                };
                let mut update = tx
                    .prepare(&format!("UPDATE {table} SET sealed = ?2 WHERE id = ?1"))
                    .map_err(db_err)?;
                for (id, sealed) in rows {
                    let plain = keys.open(table, &id, &sealed).map_err(db_err)?;
                    if table == "users" {
                        let user: User = serde_json::from_slice(&plain).map_err(decode_err)?;
                        tx.execute(
                            "UPDATE users SET username_mac = ?2 WHERE id = ?1",
                            params![id, keys.lookup("username", &user.username)],
                        )
                        .map_err(db_err)?;
                    }
                    let resealed = keys.seal(table, &id, &plain).map_err(db_err)?;
                    update.execute(params![id, resealed]).map_err(db_err)?;
                    count += 1;
                }
            }
            // A person's report facts are sealed too.
            let facts: Vec<(Vec<u8>, Vec<u8>)> = {
                let mut stmt = tx
                    .prepare("SELECT record, body FROM report_facts WHERE personal = 1")
                    .map_err(db_err)?;
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(db_err)?
                    .collect::<Result<_, _>>()
                    .map_err(db_err)?
            };
            for (id, sealed) in facts {
                let plain = keys.open("report_facts", &id, &sealed).map_err(db_err)?;
                let resealed = keys.seal("report_facts", &id, &plain).map_err(db_err)?;
                tx.execute(
                    "UPDATE report_facts SET body = ?2 WHERE record = ?1",
                    params![id, resealed],
                )
                .map_err(db_err)?;
                count += 1;
            }
            tx.execute("DELETE FROM login_failures", [])
                .map_err(db_err)?;
            tx.commit().map_err(db_err)?;
            Ok(count)
        })
        .await
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection, &ServerKeys) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let conn = Arc::clone(&self.conn);
        let keys = Arc::clone(&self.keys);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| db_err("connection lock poisoned"))?;
            f(&mut guard, &keys)
        })
        .await
        .map_err(db_err)?
    }

    /// Appends to the hash-chained audit log, in the caller's transaction.
    fn audit(tx: &rusqlite::Transaction<'_>, entry: crate::audit::Entry) -> StoreResult<()> {
        Self::audit_many(tx, std::iter::once(entry))
    }

    /// Appends entries to the audit log in order, reading the chain's head once (a pull page
    /// audits every scope it serves).
    fn audit_many(
        tx: &rusqlite::Transaction<'_>,
        entries: impl IntoIterator<Item = crate::audit::Entry>,
    ) -> StoreResult<()> {
        let last: Option<(i64, Vec<u8>)> = tx
            .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(db_err)?;
        let (mut seq, mut prev) = match last {
            Some((seq, hash)) => (u64::try_from(seq).map_err(db_err)? + 1, hash),
            None => (1, crate::audit::GENESIS.to_vec()),
        };
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO audit_log(seq, at, user, device, action, scope, record, count, purpose, prev, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )
            .map_err(db_err)?;
        for mut entry in entries {
            entry.seq = seq;
            let hash = crate::audit::hash(&entry, &prev);
            insert
                .execute(params![
                    i64::try_from(seq).map_err(db_err)?,
                    entry.at,
                    entry.user,
                    entry.device,
                    entry.action,
                    entry.scope,
                    entry.record,
                    i64::try_from(entry.count).map_err(db_err)?,
                    entry.purpose,
                    prev,
                    hash
                ])
                .map_err(db_err)?;
            prev = hash;
            seq += 1;
        }
        Ok(())
    }

    /// Writes an accepted plan: the record, its conflicts, membership changes with their scope
    /// events, and the audit entry. Returns the op id. Shared by pushes and server-side changes.
    #[allow(clippy::too_many_arguments)]
    fn write_plan(
        tx: &rusqlite::Transaction<'_>,
        keys: &ServerKeys,
        m: &Mutation<Value>,
        plan: &sync::Plan,
        caller: PushCaller,
        now: DateTime<Utc>,
        purpose: &str,
    ) -> StoreResult<u64> {
        let id = *m.record_id.as_bytes();
        let device = id_blob(caller.device);
        let op_id = Self::next_op(tx)?;
        let sealed = keys
            .seal(
                "records",
                &id,
                &serde_json::to_vec(&plan.record).map_err(db_err)?,
            )
            .map_err(db_err)?;
        let (version, op) = (
            i64::try_from(plan.version).map_err(db_err)?,
            i64::try_from(op_id).map_err(db_err)?,
        );
        let field_versions = serde_json::to_string(&plan.field_versions).map_err(db_err)?;
        let field_devices = serde_json::to_string(&plan.field_devices).map_err(db_err)?;
        tx.prepare_cached(
            "INSERT INTO records(id, kind, scope, version, deleted, op_id, field_versions, field_devices, sealed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT(id) DO UPDATE SET version = excluded.version,
               deleted = excluded.deleted, op_id = excluded.op_id,
               field_versions = excluded.field_versions, field_devices = excluded.field_devices,
               sealed = excluded.sealed",
        )
        .and_then(|mut s| {
            s.execute(params![
                id,
                m.kind,
                m.scope,
                version,
                i64::from(plan.deleted),
                op,
                field_versions,
                field_devices,
                sealed
            ])
        })
        .map_err(db_err)?;
        Self::write_facts(
            tx,
            keys,
            &m.kind,
            &id,
            Value::Object(plan.record.clone()),
            plan.deleted,
        )?;
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
            tx.execute(
                "INSERT INTO conflicts(id, record_id, kind, scope, field, sealed, lost_by_device, op_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    id_blob(cid),
                    id,
                    m.kind,
                    m.scope,
                    conflict.field,
                    sealed,
                    // Unknown (a record older than per-field devices): the nil id.
                    id_blob(
                        plan.lost_by
                            .get(&conflict.field)
                            .copied()
                            .unwrap_or_else(|| Id::from(uuid::Uuid::nil()))
                    ),
                    i64::try_from(op_id).map_err(db_err)?
                ],
            )
            .map_err(db_err)?;
        }
        for change in &plan.membership {
            Self::apply_membership(tx, change)?;
        }
        if let Some((before, after)) = plan.case_commune {
            if let Some(old) = before {
                for supervisor in Self::supervisors_of(tx, old)? {
                    Self::apply_membership(
                        tx,
                        &Membership::Revoke(Scope::Person(Id::from(m.record_id)), supervisor),
                    )?;
                }
            }
            match after {
                Some(new) => {
                    tx.execute(
                        "INSERT INTO case_communes(person, commune) VALUES (?1, ?2)
                         ON CONFLICT(person) DO UPDATE SET commune = excluded.commune",
                        params![id, id_blob(new)],
                    )
                    .map_err(db_err)?;
                    for supervisor in Self::supervisors_of(tx, new)? {
                        Self::apply_membership(
                            tx,
                            &Membership::Grant(Scope::Person(Id::from(m.record_id)), supervisor),
                        )?;
                    }
                }
                None => {
                    tx.execute("DELETE FROM case_communes WHERE person = ?1", [id])
                        .map_err(db_err)?;
                }
            }
        }
        Self::audit(
            tx,
            crate::audit::Entry {
                seq: 0,
                at: ts(now),
                user: id_blob(caller.user),
                device,
                action: "edit".into(),
                scope: m.scope.clone(),
                record: Some(id),
                count: 1,
                purpose: purpose.into(),
            },
        )?;
        Ok(op_id)
    }

    /// Adds or removes one scope membership; a change (not a no-op) takes an op id and
    /// becomes a scope event the user's devices pull.
    fn apply_membership(tx: &rusqlite::Transaction<'_>, change: &Membership) -> StoreResult<()> {
        let (scope, user, kind) = match change {
            Membership::Grant(s, u) => (s, u, "grant"),
            Membership::Revoke(s, u) => (s, u, "revoke"),
        };
        let changed = if kind == "grant" {
            tx.execute(
                "INSERT OR IGNORE INTO scope_members(scope, user) VALUES (?1, ?2)",
                params![scope.to_string(), id_blob(*user)],
            )
        } else {
            tx.execute(
                "DELETE FROM scope_members WHERE scope = ?1 AND user = ?2",
                params![scope.to_string(), id_blob(*user)],
            )
        }
        .map_err(db_err)?;
        if changed > 0 {
            let event_op = Self::next_op(tx)?;
            tx.execute(
                "INSERT INTO scope_events(op_id, user, scope, kind) VALUES (?1, ?2, ?3, ?4)",
                params![
                    i64::try_from(event_op).map_err(db_err)?,
                    id_blob(*user),
                    scope.to_string(),
                    kind
                ],
            )
            .map_err(db_err)?;
        }
        Ok(())
    }

    /// The org tree as stored.
    fn load_tree(tx: &rusqlite::Transaction<'_>) -> StoreResult<OrgTree> {
        let mut stmt = tx.prepare("SELECT json FROM org_units").map_err(db_err)?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(db_err)?;
        let mut units: Vec<OrgUnit> = Vec::new();
        for row in rows {
            units.push(serde_json::from_str(&row.map_err(db_err)?).map_err(decode_err)?);
        }
        Ok(OrgTree::new(units)?)
    }

    /// The supervisors of a commune's cases.
    fn supervisors_of(tx: &rusqlite::Transaction<'_>, commune: Id) -> StoreResult<Vec<Id>> {
        let mut stmt = tx
            .prepare_cached("SELECT id FROM users WHERE commune = ?1 AND role = 'supervisor'")
            .map_err(db_err)?;
        let rows = stmt
            .query_map([id_blob(commune)], |r| r.get::<_, Vec<u8>>(0))
            .map_err(db_err)?;
        let mut out = Vec::new();
        for row in rows {
            let raw = row.map_err(db_err)?;
            out.push(Id::from(uuid::Uuid::from_slice(&raw).map_err(db_err)?));
        }
        Ok(out)
    }

    /// Grants `user` every scope their place in the org tree gives them (the teams, points
    /// and cases of a supervisor's commune; a counsellor's point) and stores their commune.
    /// Grants only: taking scopes away is the job of the change that causes it.
    fn reconcile_user(
        tx: &rusqlite::Transaction<'_>,
        tree: &OrgTree,
        user: &User,
    ) -> StoreResult<()> {
        let commune = tree.commune_of(user.org_unit);
        tx.execute(
            "UPDATE users SET commune = ?2 WHERE id = ?1",
            params![id_blob(user.id), commune.map(id_blob)],
        )
        .map_err(db_err)?;
        for scope in sync::org_scopes(user, tree) {
            Self::apply_membership(tx, &Membership::Grant(scope, user.id))?;
        }
        if let Some(commune) = sync::supervised_commune(user, tree) {
            let cases: Vec<Vec<u8>> = {
                let mut stmt = tx
                    .prepare("SELECT person FROM case_communes WHERE commune = ?1")
                    .map_err(db_err)?;
                stmt.query_map([id_blob(commune)], |r| r.get(0))
                    .map_err(db_err)?
                    .collect::<Result<_, _>>()
                    .map_err(db_err)?
            };
            for case in cases {
                let person = Id::from(uuid::Uuid::from_slice(&case).map_err(db_err)?);
                Self::apply_membership(tx, &Membership::Grant(Scope::Person(person), user.id))?;
            }
        }
        Ok(())
    }

    /// [`Self::reconcile_user`] for every user.
    fn reconcile_all(tx: &rusqlite::Transaction<'_>, keys: &ServerKeys) -> StoreResult<()> {
        let tree = Self::load_tree(tx)?;
        let rows: Vec<(Vec<u8>, Vec<u8>, String)> = {
            let mut stmt = tx
                .prepare("SELECT id, sealed, password_hash FROM users")
                .map_err(db_err)?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(db_err)?
                .collect::<Result<_, _>>()
                .map_err(db_err)?
        };
        for (id, sealed, hash) in rows {
            let stored = Self::read_user(keys, &id, &sealed, hash)?;
            Self::reconcile_user(tx, &tree, &stored.user)?;
        }
        Ok(())
    }

    /// The caller's commune, as stored with their user row.
    fn commune_of_user(tx: &rusqlite::Transaction<'_>, user: Id) -> StoreResult<Option<Id>> {
        let raw: Option<Option<Vec<u8>>> = tx
            .prepare_cached("SELECT commune FROM users WHERE id = ?1")
            .and_then(|mut s| s.query_row([id_blob(user)], |r| r.get(0)).optional())
            .map_err(db_err)?;
        raw.flatten()
            .map(|b| uuid::Uuid::from_slice(&b).map(Id::from).map_err(db_err))
            .transpose()
    }

    /// Replaces the report facts of one record (none when it is deleted or counts nowhere).
    fn write_facts(
        tx: &rusqlite::Transaction<'_>,
        keys: &ServerKeys,
        kind: &str,
        id: &[u8; 16],
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
            tx.prepare_cached("DELETE FROM report_facts WHERE record = ?1")
                .map_err(db_err)?
                .execute([id])
                .map_err(db_err)?;
            return Ok(());
        };
        let always = facts
            .iter()
            .any(|f| matches!(f, Fact::Person { .. } | Fact::Episode { .. }));
        let day = if always {
            None
        } else {
            first.day().map(|d| i64::from(d.num_days_from_ce()))
        };
        let personal = facts.iter().any(Fact::is_personal);
        let json = serde_json::to_vec(&facts).map_err(db_err)?;
        let body = if personal {
            keys.seal("report_facts", id, &json).map_err(db_err)?
        } else {
            json
        };
        tx.prepare_cached(
            "INSERT INTO report_facts(record, person, point, day, personal, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(record) DO UPDATE SET person = excluded.person, point = excluded.point,
               day = excluded.day, personal = excluded.personal, body = excluded.body",
        )
        .map_err(db_err)?
        .execute(params![
            id,
            first.person().map(id_blob),
            first.point().map(id_blob),
            day,
            i64::from(personal),
            body
        ])
        .map_err(db_err)?;
        Ok(())
    }

    /// Rebuilds every record's report facts when they were built with another format (or not
    /// at all: a database from before reports).
    fn rebuild_report_facts_if_stale(
        tx: &rusqlite::Transaction<'_>,
        keys: &ServerKeys,
    ) -> StoreResult<()> {
        let built: i64 = tx
            .query_row(
                "SELECT v FROM server_meta WHERE k = 'report_facts'",
                [],
                |r| r.get(0),
            )
            .map_err(db_err)?;
        if built == REPORT_FACTS_FORMAT {
            return Ok(());
        }
        tx.execute("DELETE FROM report_facts", []).map_err(db_err)?;
        let rows: Vec<(Vec<u8>, String, Vec<u8>)> = {
            let mut stmt = tx
                .prepare("SELECT id, kind, sealed FROM records WHERE deleted = 0")
                .map_err(db_err)?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(db_err)?
                .collect::<Result<_, _>>()
                .map_err(db_err)?
        };
        for (id, kind, sealed) in rows {
            let id: [u8; 16] = id
                .try_into()
                .map_err(|_| db_err("a record id is not 16 bytes"))?;
            let plain = keys.open("records", &id, &sealed).map_err(db_err)?;
            let record: Value = serde_json::from_slice(&plain).map_err(decode_err)?;
            Self::write_facts(tx, keys, &kind, &id, record, false)?;
        }
        tx.execute(
            "UPDATE server_meta SET v = ?1 WHERE k = 'report_facts'",
            [REPORT_FACTS_FORMAT],
        )
        .map_err(db_err)?;
        Ok(())
    }

    fn next_op(tx: &rusqlite::Transaction<'_>) -> StoreResult<u64> {
        let op: i64 = tx
            .prepare_cached("UPDATE op_counter SET last = last + 1 RETURNING last")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(db_err)?;
        u64::try_from(op).map_err(db_err)
    }

    fn read_current(
        tx: &rusqlite::Transaction<'_>,
        keys: &ServerKeys,
        id: &[u8; 16],
    ) -> StoreResult<Option<Current>> {
        let row: Option<CurrentRow> = tx
            .prepare_cached(
                "SELECT kind, scope, version, deleted, field_versions, field_devices, sealed
                 FROM records WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([id], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                })
                .optional()
            })
            .map_err(db_err)?;
        let Some((kind, scope, version, deleted, fv, fd, sealed)) = row else {
            return Ok(None);
        };
        let plain = keys.open("records", id, &sealed).map_err(db_err)?;
        let record = match serde_json::from_slice::<Value>(&plain).map_err(decode_err)? {
            Value::Object(m) => m,
            _ => return Err(db_err("stored record is not an object")),
        };
        Ok(Some(Current {
            kind,
            scope,
            record,
            version: u64::try_from(version).map_err(db_err)?,
            field_versions: serde_json::from_str(&fv).map_err(decode_err)?,
            field_devices: serde_json::from_str(&fd).map_err(decode_err)?,
            deleted: deleted != 0,
        }))
    }

    /// One pushed mutation, in the caller's transaction (see [`SyncStore::push`]): the stored
    /// receipt of a replay, or authorise, plan, write, log and store the receipt. Writes
    /// nothing but the receipt for a refused mutation; an error leaves the transaction to be
    /// rolled back whole.
    fn push_one(
        tx: &rusqlite::Transaction<'_>,
        keys: &ServerKeys,
        caller: PushCaller,
        m: Mutation<Value>,
        now: DateTime<Utc>,
    ) -> StoreResult<Receipt> {
        let device = id_blob(caller.device);
        let seq = i64::try_from(m.client_seq).map_err(|_| db_err("client_seq out of range"))?;
        let stored: Option<String> = tx
            .prepare_cached("SELECT receipt FROM receipts WHERE device = ?1 AND client_seq = ?2")
            .and_then(|mut s| s.query_row(params![device, seq], |r| r.get(0)).optional())
            .map_err(db_err)?;
        if let Some(receipt) = stored {
            // A replay: the same answer, nothing applied twice.
            return serde_json::from_str(&receipt).map_err(decode_err);
        }
        // Held now, or revoked after the last cursor this device pulled from: work done
        // offline before the device could know is still accepted (the device pushes what
        // it holds, then purges).
        let holds_scope = tx
            .prepare_cached(
                "SELECT 1 FROM scope_members WHERE scope = ?1 AND user = ?2
                 UNION ALL
                 SELECT 1 FROM scope_events e, devices d
                 WHERE d.id = ?3 AND e.user = ?2 AND e.scope = ?1 AND e.kind = 'revoke'
                   AND e.op_id > d.cursor
                 LIMIT 1",
            )
            .and_then(|mut s| {
                s.query_row(params![m.scope, id_blob(caller.user), device], |_| Ok(()))
                    .optional()
            })
            .map_err(db_err)?
            .is_some();
        let commune = Self::commune_of_user(tx, caller.user)?;
        let id = *m.record_id.as_bytes();
        let current = Self::read_current(tx, keys, &id)?;
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
                let op_id = Self::write_plan(tx, keys, &m, &plan, caller, now, "sync")?;
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
        tx.prepare_cached("INSERT INTO receipts(device, client_seq, receipt) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| s.execute(params![device, seq, stored]))
            .map_err(db_err)?;
        Ok(receipt)
    }

    /// Records one scope acknowledgement in the caller's transaction (see
    /// [`SyncStore::ack_scope`]). Returns `false`, having written nothing, for an event that is
    /// not the user's.
    fn ack_one(
        tx: &rusqlite::Transaction<'_>,
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
        let known = tx
            .prepare_cached(
                "SELECT 1 FROM scope_events
                 WHERE op_id = ?1 AND user = ?2 AND scope = ?3 AND kind = ?4",
            )
            .and_then(|mut s| {
                s.query_row(params![op, id_blob(user), ack.scope, kind], |_| Ok(()))
                    .optional()
            })
            .map_err(db_err)?
            .is_some();
        if !known {
            return Ok(false);
        }
        // The device has applied the page that carried the event: its cursor is past it
        // (this also ends the grace for offline work in a revoked scope).
        tx.prepare_cached("UPDATE devices SET cursor = max(cursor, ?2) WHERE id = ?1")
            .and_then(|mut s| s.execute(params![id_blob(device), op]))
            .map_err(db_err)?;
        Self::audit(
            tx,
            crate::audit::Entry {
                seq: 0,
                at: ts(now),
                user: id_blob(user),
                device: id_blob(device),
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
        )?;
        Ok(true)
    }

    fn read_user(
        keys: &ServerKeys,
        id: &[u8],
        sealed: &[u8],
        hash: String,
    ) -> StoreResult<StoredUser> {
        let plain = keys.open("users", id, sealed).map_err(db_err)?;
        let user: User = serde_json::from_slice(&plain).map_err(decode_err)?;
        Ok(StoredUser {
            user,
            password_hash: hash,
        })
    }
}

impl SyncStore for SqliteStore {
    async fn org_units(&self) -> StoreResult<Vec<OrgUnit>> {
        self.run(|c, _| {
            let mut stmt = c.prepare("SELECT json FROM org_units").map_err(db_err)?;
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(db_err)?;
            let mut units = Vec::new();
            for row in rows {
                units.push(serde_json::from_str(&row.map_err(db_err)?).map_err(decode_err)?);
            }
            Ok(units)
        })
        .await
    }

    async fn add_org_unit(&self, unit: OrgUnit) -> StoreResult<()> {
        self.run(move |c, _| {
            let tx = c.transaction().map_err(db_err)?;
            let mut units: Vec<OrgUnit> = {
                let mut stmt = tx.prepare("SELECT json FROM org_units").map_err(db_err)?;
                let rows = stmt
                    .query_map([], |r| r.get::<_, String>(0))
                    .map_err(db_err)?;
                let mut v = Vec::new();
                for row in rows {
                    v.push(serde_json::from_str(&row.map_err(db_err)?).map_err(decode_err)?);
                }
                v
            };
            units.push(unit.clone());
            let tree = OrgTree::new(units)?;
            let json = serde_json::to_string(&unit).map_err(db_err)?;
            tx.execute(
                "INSERT INTO org_units(id, json) VALUES (?1, ?2)",
                params![id_blob(unit.id), json],
            )
            .map_err(from_sql)?;
            // A new team or point is held at once by its commune's supervisors.
            let scope = match unit.kind {
                OrgUnitKind::Team => Some(Scope::Team(unit.id)),
                OrgUnitKind::CommunityPoint => Some(Scope::Point(unit.id)),
                _ => None,
            };
            if let (Some(scope), Some(commune)) = (scope, tree.commune_of(unit.id)) {
                for supervisor in Self::supervisors_of(&tx, commune)? {
                    Self::apply_membership(&tx, &Membership::Grant(scope, supervisor))?;
                }
            }
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn add_user(&self, user: StoredUser) -> StoreResult<()> {
        self.run(move |c, keys| {
            user.user.validate()?;
            let tx = c.transaction().map_err(db_err)?;
            let known: bool = tx
                .query_row(
                    "SELECT 1 FROM org_units WHERE id = ?1",
                    [id_blob(user.user.org_unit)],
                    |_| Ok(()),
                )
                .optional()
                .map_err(db_err)?
                .is_some();
            if !known {
                return Err(StoreError::Invalid(
                    donghanh_core::domain::DomainError::UnknownReference { field: "org_unit" },
                ));
            }
            let id = id_blob(user.user.id);
            let sealed = keys
                .seal(
                    "users",
                    &id,
                    &serde_json::to_vec(&user.user).map_err(db_err)?,
                )
                .map_err(db_err)?;
            tx.execute(
                "INSERT INTO users(id, username_mac, role, org_unit, sealed, password_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    id,
                    keys.lookup("username", &user.user.username),
                    user.user.role.code(),
                    id_blob(user.user.org_unit),
                    sealed,
                    user.password_hash
                ],
            )
            .map_err(|e| match from_sql(e) {
                StoreError::Exists { .. } => StoreError::Exists { what: "username" },
                other => other,
            })?;
            let tree = Self::load_tree(&tx)?;
            Self::reconcile_user(&tx, &tree, &user.user)?;
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<StoredUser>> {
        let username = username.to_owned();
        self.run(move |c, keys| {
            let row: Option<(Vec<u8>, Vec<u8>, String)> = c
                .query_row(
                    "SELECT id, sealed, password_hash FROM users WHERE username_mac = ?1",
                    [keys.lookup("username", &username)],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(db_err)?;
            row.map(|(id, sealed, hash)| Self::read_user(keys, &id, &sealed, hash))
                .transpose()
        })
        .await
    }

    async fn user(&self, id: Id) -> StoreResult<Option<StoredUser>> {
        self.run(move |c, keys| {
            let row: Option<(Vec<u8>, Vec<u8>, String)> = c
                .query_row(
                    "SELECT id, sealed, password_hash FROM users WHERE id = ?1",
                    [id_blob(id)],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(db_err)?;
            row.map(|(id, sealed, hash)| Self::read_user(keys, &id, &sealed, hash))
                .transpose()
        })
        .await
    }

    async fn add_device(&self, device: Device, refresh_hash: Vec<u8>) -> StoreResult<()> {
        self.run(move |c, keys| {
            device.validate()?;
            let id = id_blob(device.id);
            let sealed = keys
                .seal("devices", &id, &serde_json::to_vec(&device).map_err(db_err)?)
                .map_err(db_err)?;
            c.execute(
                "INSERT INTO devices(id, user, revoked_at, sealed, refresh_hash) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, id_blob(device.user), device.revoked_at.map(ts), sealed, refresh_hash],
            )
            .map_err(from_sql)?;
            Ok(())
        })
        .await
    }

    async fn device(&self, id: Id) -> StoreResult<Option<Device>> {
        self.run(move |c, keys| {
            let sealed: Option<Vec<u8>> = c
                .query_row(
                    "SELECT sealed FROM devices WHERE id = ?1",
                    [id_blob(id)],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?;
            sealed
                .map(|s| {
                    let plain = keys.open("devices", &id_blob(id), &s).map_err(db_err)?;
                    serde_json::from_slice(&plain).map_err(decode_err)
                })
                .transpose()
        })
        .await
    }

    async fn revoke_device(&self, id: Id, at: DateTime<Utc>) -> StoreResult<()> {
        self.run(move |c, keys| {
            let tx = c.transaction().map_err(db_err)?;
            let sealed: Vec<u8> = tx
                .query_row(
                    "SELECT sealed FROM devices WHERE id = ?1",
                    [id_blob(id)],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?
                .ok_or(StoreError::NotFound)?;
            let mut device: Device = serde_json::from_slice(
                &keys
                    .open("devices", &id_blob(id), &sealed)
                    .map_err(db_err)?,
            )
            .map_err(decode_err)?;
            device.revoke(at)?;
            let sealed = keys
                .seal(
                    "devices",
                    &id_blob(id),
                    &serde_json::to_vec(&device).map_err(db_err)?,
                )
                .map_err(db_err)?;
            tx.execute(
                "UPDATE devices SET revoked_at = ?2, sealed = ?3 WHERE id = ?1",
                params![id_blob(id), ts(at), sealed],
            )
            .map_err(db_err)?;
            tx.execute("DELETE FROM access_tokens WHERE device = ?1", [id_blob(id)])
                .map_err(db_err)?;
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn rotate_refresh(&self, device: Id, old: Vec<u8>, new: Vec<u8>) -> StoreResult<bool> {
        self.run(move |c, _| {
            let n = c
                .execute(
                    "UPDATE devices SET refresh_hash = ?3
                     WHERE id = ?1 AND (refresh_hash = ?2 OR refresh_hash = ?3)
                       AND revoked_at IS NULL",
                    params![id_blob(device), old, new],
                )
                .map_err(db_err)?;
            Ok(n == 1)
        })
        .await
    }

    async fn put_access_token(&self, hash: Vec<u8>, grant: AccessGrant) -> StoreResult<()> {
        self.run(move |c, _| {
            c.execute(
                "INSERT INTO access_tokens(hash, device, user, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![
                    hash,
                    id_blob(grant.device),
                    id_blob(grant.user),
                    ts_ceil(grant.expires_at)
                ],
            )
            .map_err(from_sql)?;
            // Expired tokens are useless; drop them as new ones arrive.
            c.execute(
                "DELETE FROM access_tokens WHERE expires_at < ?1",
                [ts(Utc::now())],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn access_grant(&self, hash: Vec<u8>) -> StoreResult<Option<AccessGrant>> {
        self.run(move |c, _| {
            let row: Option<(Vec<u8>, Vec<u8>, i64)> = c
                .query_row(
                    "SELECT t.device, t.user, t.expires_at FROM access_tokens t
                     JOIN devices d ON d.id = t.device
                     WHERE t.hash = ?1 AND d.revoked_at IS NULL",
                    [hash],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(db_err)?;
            Ok(row.and_then(|(device, user, expires)| {
                Some(AccessGrant {
                    device: Id::from_bytes(device.try_into().ok()?),
                    user: Id::from_bytes(user.try_into().ok()?),
                    expires_at: from_ts(expires),
                })
            }))
        })
        .await
    }

    async fn record_login_failure(&self, username: &str, at: DateTime<Utc>) -> StoreResult<()> {
        let username = username.to_owned();
        self.run(move |c, keys| {
            let tx = c.transaction().map_err(db_err)?;
            // Failures older than the lockout window count for nothing: drop them, so that
            // attempts on made-up usernames cannot grow the table without bound.
            tx.execute(
                "DELETE FROM login_failures WHERE at < ?1",
                [ts(at - crate::auth::FAILURE_WINDOW)],
            )
            .map_err(db_err)?;
            tx.execute(
                "INSERT INTO login_failures(username_mac, at) VALUES (?1, ?2)",
                params![keys.lookup("username", &username), ts(at)],
            )
            .map_err(db_err)?;
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn login_failures_since(&self, username: &str, since: DateTime<Utc>) -> StoreResult<u32> {
        let username = username.to_owned();
        self.run(move |c, keys| {
            let n: i64 = c
                .query_row(
                    "SELECT count(*) FROM login_failures WHERE username_mac = ?1 AND at >= ?2",
                    params![keys.lookup("username", &username), ts(since)],
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            Ok(u32::try_from(n).unwrap_or(u32::MAX))
        })
        .await
    }

    async fn clear_login_failures(&self, username: &str) -> StoreResult<()> {
        let username = username.to_owned();
        self.run(move |c, keys| {
            c.execute(
                "DELETE FROM login_failures WHERE username_mac = ?1",
                [keys.lookup("username", &username)],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn push(
        &self,
        caller: PushCaller,
        m: Mutation<Value>,
        now: DateTime<Utc>,
    ) -> StoreResult<Receipt> {
        self.run(move |c, keys| {
            let tx = c.transaction().map_err(db_err)?;
            let receipt = Self::push_one(&tx, keys, caller, m, now)?;
            tx.commit().map_err(db_err)?;
            Ok(receipt)
        })
        .await
    }

    async fn push_many(
        &self,
        caller: PushCaller,
        mutations: Vec<Mutation<Value>>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Receipt>> {
        self.run(move |c, keys| {
            let tx = c.transaction().map_err(db_err)?;
            let mut receipts = Vec::with_capacity(mutations.len());
            for m in mutations {
                receipts.push(Self::push_one(&tx, keys, caller, m, now)?);
            }
            tx.commit().map_err(db_err)?;
            Ok(receipts)
        })
        .await
    }

    async fn pull(
        &self,
        user: Id,
        device: Id,
        cursor: u64,
        limit: u32,
        max_bytes: u32,
    ) -> StoreResult<PullPage<RawJson>> {
        self.run(move |c, keys| {
            let tx = c.transaction().map_err(db_err)?;
            let cursor_i = i64::try_from(cursor).map_err(|_| db_err("cursor out of range"))?;
            let horizon: i64 = tx
                .query_row(
                    "SELECT v FROM server_meta WHERE k = 'tombstone_horizon'",
                    [],
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            if cursor_i > 0 && cursor_i < horizon {
                return Err(StoreError::CursorExpired);
            }
            // The device has applied everything up to `cursor`: deletes below it are no longer
            // needed for this device.
            tx.execute(
                "UPDATE devices SET cursor = max(cursor, ?2), last_seen = ?3 WHERE id = ?1",
                params![id_blob(device), cursor_i, ts(Utc::now())],
            )
            .map_err(db_err)?;
            let fetch = i64::from(limit) + 1;
            let high: i64 = tx
                .prepare_cached("SELECT last FROM op_counter")
                .and_then(|mut s| s.query_row([], |r| r.get(0)))
                .map_err(db_err)?;
            let mut events: Vec<ScopeEvent> = Vec::new();
            {
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT op_id, scope, kind FROM scope_events
                         WHERE user = ?1 AND op_id > ?2 ORDER BY op_id LIMIT ?3",
                    )
                    .map_err(db_err)?;
                let rows = stmt
                    .query_map(params![id_blob(user), cursor_i, fetch], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                        ))
                    })
                    .map_err(db_err)?;
                for row in rows {
                    let (op_id, scope, kind) = row.map_err(db_err)?;
                    events.push(ScopeEvent {
                        op_id: u64::try_from(op_id).map_err(db_err)?,
                        scope,
                        kind: if kind == "grant" {
                            ScopeEventKind::Grant
                        } else {
                            ScopeEventKind::Revoke
                        },
                    });
                }
            }
            // Changes are read in log order and opened only once taken: a page stops at the
            // item limit or once its byte budget is used, interleaved with events by op_id.
            // The sealed JSON is sent as it was stored, never parsed into a tree and written
            // out again. The log is walked by `records_op`, skipping rows of scopes the user
            // does not hold, so a page costs the rows it walks; left to itself SQLite chose
            // `records_scope` and sorted every held row after the cursor for every page
            // (quadratic in a fresh phone's pull).
            let (mut changes, mut page_events) = (Vec::new(), Vec::new());
            let (mut taken, mut bytes, mut last) = (0u32, 0usize, cursor);
            let mut events = events.into_iter().peekable();
            let more_changes = {
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT r.id, r.kind, r.scope, r.version, r.deleted, r.op_id, r.sealed
                         FROM records r INDEXED BY records_op
                         WHERE r.op_id > ?1
                           AND r.scope IN (SELECT scope FROM scope_members WHERE user = ?2)
                         ORDER BY r.op_id LIMIT ?3",
                    )
                    .map_err(db_err)?;
                let mut rows = stmt
                    .query(params![cursor_i, id_blob(user), fetch])
                    .map_err(db_err)?;
                let mut row = rows.next().map_err(db_err)?;
                while taken < limit && (taken == 0 || bytes < max_bytes as usize) {
                    let change_op: Option<i64> =
                        row.map(|r| r.get(5)).transpose().map_err(db_err)?;
                    let take_change = match (change_op, events.peek()) {
                        (None, None) => break,
                        (Some(_), None) => true,
                        (None, Some(_)) => false,
                        (Some(a), Some(e)) => u64::try_from(a).map_err(db_err)? < e.op_id,
                    };
                    if let (true, Some(r)) = (take_change, row) {
                        let id: [u8; 16] = r
                            .get_ref(0)
                            .and_then(|v| v.as_blob().map_err(Into::into))
                            .map_err(db_err)?
                            .try_into()
                            .map_err(db_err)?;
                        let deleted = r.get::<_, i64>(4).map_err(db_err)? != 0;
                        let record = if deleted {
                            bytes += 64;
                            None
                        } else {
                            let sealed = r
                                .get_ref(6)
                                .and_then(|v| v.as_blob().map_err(Into::into))
                                .map_err(db_err)?;
                            let plain = keys.open("records", &id, sealed).map_err(db_err)?;
                            bytes += plain.len() + 64;
                            let text = String::from_utf8(plain)
                                .map_err(|_| db_err("a stored record is not UTF-8"))?;
                            Some(RawValue::from_string(text).map_err(decode_err)?)
                        };
                        let op_id =
                            u64::try_from(r.get::<_, i64>(5).map_err(db_err)?).map_err(db_err)?;
                        changes.push(Change {
                            op_id,
                            record_id: uuid::Uuid::from_bytes(id),
                            kind: r.get(1).map_err(db_err)?,
                            scope: r.get(2).map_err(db_err)?,
                            version: u64::try_from(r.get::<_, i64>(3).map_err(db_err)?)
                                .map_err(db_err)?,
                            op: if deleted {
                                ChangeOp::Delete
                            } else {
                                ChangeOp::Upsert
                            },
                            record,
                        });
                        last = op_id;
                        row = rows.next().map_err(db_err)?;
                    } else if let Some(event) = events.next() {
                        last = event.op_id;
                        page_events.push(event);
                    }
                    taken += 1;
                }
                row.is_some()
            };
            let has_more = more_changes || events.peek().is_some();
            let high = u64::try_from(high).map_err(db_err)?;
            let mut per_scope: std::collections::BTreeMap<&str, u64> =
                std::collections::BTreeMap::new();
            for change in &changes {
                *per_scope.entry(change.scope.as_str()).or_default() += 1;
            }
            let at = ts(Utc::now());
            Self::audit_many(
                &tx,
                per_scope
                    .into_iter()
                    .map(|(scope, count)| crate::audit::Entry {
                        seq: 0,
                        at,
                        user: id_blob(user),
                        device: id_blob(device),
                        action: "sync_down".into(),
                        scope: scope.to_owned(),
                        record: None,
                        count,
                        purpose: "sync".into(),
                    }),
            )?;
            tx.commit().map_err(db_err)?;
            Ok(PullPage {
                changes,
                scope_events: page_events,
                next_cursor: if has_more { last } else { high.max(cursor) },
                has_more,
                as_of: high,
            })
        })
        .await
    }

    async fn scopes_of(&self, user: Id) -> StoreResult<Vec<String>> {
        self.run(move |c, _| {
            let mut stmt = c
                .prepare("SELECT scope FROM scope_members WHERE user = ?1 ORDER BY scope")
                .map_err(db_err)?;
            let rows = stmt
                .query_map([id_blob(user)], |r| r.get(0))
                .map_err(db_err)?;
            rows.collect::<Result<Vec<String>, _>>().map_err(db_err)
        })
        .await
    }

    async fn snapshot(
        &self,
        user: Id,
        device: Id,
        scope: String,
        after: Option<Id>,
        limit: u32,
    ) -> StoreResult<SnapshotPage<RawJson>> {
        self.run(move |c, keys| {
            let tx = c.transaction().map_err(db_err)?;
            let holds = tx
                .query_row(
                    "SELECT 1 FROM scope_members WHERE scope = ?1 AND user = ?2",
                    params![scope, id_blob(user)],
                    |_| Ok(()),
                )
                .optional()
                .map_err(db_err)?
                .is_some();
            if !holds {
                return Err(StoreError::NotFound);
            }
            let as_of: i64 = tx
                .query_row("SELECT last FROM op_counter", [], |r| r.get(0))
                .map_err(db_err)?;
            let after = after.map_or([0u8; 16], id_blob);
            let mut stmt = tx
                .prepare_cached(
                    "SELECT id, kind, version, op_id, sealed FROM records
                     WHERE scope = ?1 AND deleted = 0 AND id > ?2 ORDER BY id LIMIT ?3",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map(params![scope, after, i64::from(limit) + 1], |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Vec<u8>>(4)?,
                    ))
                })
                .map_err(db_err)?;
            let mut records = Vec::new();
            for row in rows {
                let (id, kind, version, op_id, sealed) = row.map_err(db_err)?;
                let id: [u8; 16] = id.as_slice().try_into().map_err(db_err)?;
                let plain = keys.open("records", &id, &sealed).map_err(db_err)?;
                let text =
                    String::from_utf8(plain).map_err(|_| db_err("a stored record is not UTF-8"))?;
                records.push(Change {
                    op_id: u64::try_from(op_id).map_err(db_err)?,
                    record_id: uuid::Uuid::from_bytes(id),
                    kind,
                    scope: scope.clone(),
                    version: u64::try_from(version).map_err(db_err)?,
                    op: ChangeOp::Upsert,
                    record: Some(RawValue::from_string(text).map_err(decode_err)?),
                });
            }
            let more = records.len() > limit as usize;
            records.truncate(limit as usize);
            let next_after = if more {
                records.last().map(|r| r.record_id)
            } else {
                None
            };
            if !records.is_empty() {
                Self::audit(
                    &tx,
                    crate::audit::Entry {
                        seq: 0,
                        at: ts(Utc::now()),
                        user: id_blob(user),
                        device: id_blob(device),
                        action: "sync_down".into(),
                        scope: scope.clone(),
                        record: None,
                        count: records.len() as u64,
                        purpose: "bootstrap".into(),
                    },
                )?;
            }
            drop(stmt);
            tx.commit().map_err(db_err)?;
            Ok(SnapshotPage {
                scope,
                records,
                as_of: u64::try_from(as_of).map_err(db_err)?,
                next_after,
            })
        })
        .await
    }

    async fn ack_scope(
        &self,
        user: Id,
        device: Id,
        ack: ScopeAck,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.run(move |c, _| {
            let tx = c.transaction().map_err(db_err)?;
            if !Self::ack_one(&tx, user, device, &ack, now)? {
                return Err(StoreError::NotFound);
            }
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn ack_scopes(
        &self,
        user: Id,
        device: Id,
        acks: Vec<ScopeAck>,
        now: DateTime<Utc>,
    ) -> StoreResult<usize> {
        self.run(move |c, _| {
            let tx = c.transaction().map_err(db_err)?;
            let mut recorded = 0;
            for ack in &acks {
                if Self::ack_one(&tx, user, device, ack, now)? {
                    recorded += 1;
                }
            }
            tx.commit().map_err(db_err)?;
            Ok(recorded)
        })
        .await
    }

    async fn directory(&self, user: Id) -> StoreResult<Vec<DirectoryEntry>> {
        self.run(move |c, keys| {
            let tx = c.transaction().map_err(db_err)?;
            let me: Option<(String, Option<Vec<u8>>)> = tx
                .query_row(
                    "SELECT role, commune FROM users WHERE id = ?1",
                    [id_blob(user)],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(db_err)?;
            let (role, commune) = me.ok_or(StoreError::NotFound)?;
            // A supervisor sees the staff of their commune; anyone else only themselves.
            let (sql, key): (&str, Vec<u8>) = match (role.as_str(), commune) {
                ("supervisor", Some(commune)) => (
                    "SELECT id, sealed, password_hash FROM users
                     WHERE commune = ?1 AND role IN ('volunteer', 'counsellor', 'supervisor')",
                    commune,
                ),
                _ => (
                    "SELECT id, sealed, password_hash FROM users WHERE id = ?1",
                    id_blob(user).to_vec(),
                ),
            };
            let rows: Vec<(Vec<u8>, Vec<u8>, String)> = {
                let mut stmt = tx.prepare(sql).map_err(db_err)?;
                stmt.query_map([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .map_err(db_err)?
                    .collect::<Result<_, _>>()
                    .map_err(db_err)?
            };
            let mut out = Vec::with_capacity(rows.len());
            for (id, sealed, hash) in rows {
                let u = Self::read_user(keys, &id, &sealed, hash)?.user;
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
        })
        .await
    }

    async fn compact(&self, now: DateTime<Utc>, lease_seconds: u64) -> StoreResult<u64> {
        self.run(move |c, _| {
            let tx = c.transaction().map_err(db_err)?;
            let since = ts(now) - i64::try_from(lease_seconds).unwrap_or(i64::MAX / 2);
            let high: i64 = tx
                .query_row("SELECT last FROM op_counter", [], |r| r.get(0))
                .map_err(db_err)?;
            // The oldest cursor of an active device; with none active, nobody needs a delete.
            let oldest: Option<i64> = tx
                .query_row(
                    "SELECT min(cursor) FROM devices
                     WHERE revoked_at IS NULL AND last_seen IS NOT NULL AND last_seen >= ?1",
                    [since],
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            let safe = oldest.unwrap_or(high);
            let newest_removed: Option<i64> = tx
                .query_row(
                    "SELECT max(op_id) FROM records WHERE deleted = 1 AND op_id <= ?1",
                    [safe],
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            let removed = tx
                .execute(
                    "DELETE FROM records WHERE deleted = 1 AND op_id <= ?1",
                    [safe],
                )
                .map_err(db_err)?;
            if let Some(newest) = newest_removed {
                tx.execute(
                    "UPDATE server_meta SET v = max(v, ?1) WHERE k = 'tombstone_horizon'",
                    [newest],
                )
                .map_err(db_err)?;
            }
            tx.commit().map_err(db_err)?;
            Ok(removed as u64)
        })
        .await
    }

    async fn tombstone_horizon(&self) -> StoreResult<u64> {
        self.run(|c, _| {
            let v: i64 = c
                .query_row(
                    "SELECT v FROM server_meta WHERE k = 'tombstone_horizon'",
                    [],
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            u64::try_from(v).map_err(db_err)
        })
        .await
    }

    async fn verify_audit(&self) -> StoreResult<crate::audit::Verdict> {
        self.run(|c, _| {
            let mut stmt = c
                .prepare(
                    "SELECT seq, at, user, device, action, scope, record, count, purpose, prev, hash
                     FROM audit_log ORDER BY seq",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map([], |r| {
                    let blob16 = |v: Vec<u8>| <[u8; 16]>::try_from(v.as_slice()).unwrap_or([0; 16]);
                    Ok((
                        crate::audit::Entry {
                            seq: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                            at: r.get(1)?,
                            user: blob16(r.get(2)?),
                            device: blob16(r.get(3)?),
                            action: r.get(4)?,
                            scope: r.get(5)?,
                            record: r.get::<_, Option<Vec<u8>>>(6)?.map(blob16),
                            count: u64::try_from(r.get::<_, i64>(7)?).unwrap_or(0),
                            purpose: r.get(8)?,
                        },
                        r.get::<_, Vec<u8>>(9)?,
                        r.get::<_, Vec<u8>>(10)?,
                    ))
                })
                .map_err(db_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_err)?;
            Ok(crate::audit::verify(
                rows.iter().map(|(e, p, h)| (e, p.as_slice(), h.as_slice())),
            ))
        })
        .await
    }

    async fn conflicts(&self, user: Id) -> StoreResult<Vec<Conflict<Value>>> {
        self.run(move |c, keys| {
            let mut stmt = c
                .prepare(
                    "SELECT id, record_id, kind, scope, field, sealed, lost_by_device, op_id
                     FROM conflicts
                     WHERE resolved = 0
                       AND scope IN (SELECT scope FROM scope_members WHERE user = ?1)
                     ORDER BY op_id",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map([id_blob(user)], |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, Vec<u8>>(5)?,
                        r.get::<_, Vec<u8>>(6)?,
                        r.get::<_, i64>(7)?,
                    ))
                })
                .map_err(db_err)?;
            let mut out = Vec::new();
            for row in rows {
                let (id, record, kind, scope, field, sealed, device, op_id) =
                    row.map_err(db_err)?;
                let id16: [u8; 16] = id.as_slice().try_into().map_err(db_err)?;
                let body: Value = serde_json::from_slice(
                    &keys.open("conflicts", &id16, &sealed).map_err(db_err)?,
                )
                .map_err(decode_err)?;
                out.push(Conflict {
                    id: uuid::Uuid::from_bytes(id16),
                    record_id: uuid::Uuid::from_slice(&record).map_err(db_err)?,
                    kind,
                    scope,
                    field,
                    kept: body["kept"].clone(),
                    lost: body["lost"].clone(),
                    lost_by_device: uuid::Uuid::from_slice(&device).map_err(db_err)?,
                    op_id: u64::try_from(op_id).map_err(db_err)?,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn resolve_conflict(
        &self,
        caller: PushCaller,
        id: Id,
        restore: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.run(move |c, keys| {
            let tx = c.transaction().map_err(db_err)?;
            let row: Option<ConflictRow> = tx
                .query_row(
                    "SELECT record_id, kind, scope, field, sealed FROM conflicts
                     WHERE id = ?1 AND resolved = 0
                       AND scope IN (SELECT scope FROM scope_members WHERE user = ?2)",
                    params![id_blob(id), id_blob(caller.user)],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()
                .map_err(db_err)?;
            let (record, kind, scope, field, sealed) = row.ok_or(StoreError::NotFound)?;
            tx.execute(
                "UPDATE conflicts SET resolved = 1 WHERE id = ?1",
                [id_blob(id)],
            )
            .map_err(db_err)?;
            if restore {
                let body: Value = serde_json::from_slice(
                    &keys
                        .open("conflicts", &id_blob(id), &sealed)
                        .map_err(db_err)?,
                )
                .map_err(decode_err)?;
                let record16: [u8; 16] = record.as_slice().try_into().map_err(db_err)?;
                let current =
                    Self::read_current(&tx, keys, &record16)?.ok_or(StoreError::NotFound)?;
                let mut patch = serde_json::Map::new();
                patch.insert(field, body["lost"].clone());
                let m = Mutation {
                    client_seq: 0,
                    record_id: uuid::Uuid::from_bytes(record16),
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
                    commune: Self::commune_of_user(&tx, caller.user)?,
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
                Self::write_plan(&tx, keys, &m, &plan, caller, now, "conflict_restore")?;
            }
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn set_trained(&self, user: Id, on: Option<NaiveDate>) -> StoreResult<()> {
        self.run(move |c, keys| {
            let tx = c.transaction().map_err(db_err)?;
            let sealed: Vec<u8> = tx
                .query_row(
                    "SELECT sealed FROM users WHERE id = ?1",
                    [id_blob(user)],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?
                .ok_or(StoreError::NotFound)?;
            let id = id_blob(user);
            let plain = keys.open("users", &id, &sealed).map_err(db_err)?;
            let mut stored: User = serde_json::from_slice(&plain).map_err(decode_err)?;
            stored.trained_on = on;
            let resealed = keys
                .seal("users", &id, &serde_json::to_vec(&stored).map_err(db_err)?)
                .map_err(db_err)?;
            tx.execute(
                "UPDATE users SET sealed = ?2 WHERE id = ?1",
                params![id, resealed],
            )
            .map_err(db_err)?;
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn staff_facts(&self, communes: Vec<Id>) -> StoreResult<Vec<Fact>> {
        self.run(move |c, keys| {
            let mut out = Vec::new();
            let mut stmt = c
                .prepare_cached(
                    "SELECT id, sealed FROM users WHERE commune = ?1
                     AND role IN ('volunteer', 'counsellor', 'supervisor')",
                )
                .map_err(db_err)?;
            for commune in communes {
                let rows: Vec<(Vec<u8>, Vec<u8>)> = stmt
                    .query_map([id_blob(commune)], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(db_err)?
                    .collect::<Result<_, _>>()
                    .map_err(db_err)?;
                for (id, sealed) in rows {
                    let plain = keys.open("users", &id, &sealed).map_err(db_err)?;
                    let user: User = serde_json::from_slice(&plain).map_err(decode_err)?;
                    out.push(Fact::Staff {
                        id: user.id,
                        commune: Some(commune),
                        trained_on: user.trained_on,
                    });
                }
            }
            Ok(out)
        })
        .await
    }

    async fn put_plan(&self, plan: Plan, by: Id, now: DateTime<Utc>) -> StoreResult<()> {
        self.run(move |c, _| {
            c.execute(
                "INSERT INTO plans(org, period, body, set_by, set_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(org, period) DO UPDATE SET body = excluded.body,
                   set_by = excluded.set_by, set_at = excluded.set_at",
                params![
                    id_blob(plan.org),
                    plan.period.to_string(),
                    serde_json::to_string(&plan).map_err(db_err)?,
                    id_blob(by),
                    ts(now)
                ],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn close_report(&self, org: Id, report: Report, at: DateTime<Utc>) -> StoreResult<()> {
        self.run(move |c, _| {
            let inserted = c
                .execute(
                    "INSERT OR IGNORE INTO report_snapshots(org, template, period, body, closed_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        id_blob(org),
                        report.template,
                        report.period.to_string(),
                        serde_json::to_string(&report).map_err(db_err)?,
                        ts(at)
                    ],
                )
                .map_err(db_err)?;
            if inserted == 0 {
                return Err(StoreError::Exists {
                    what: "a closed report for this unit, template and period",
                });
            }
            Ok(())
        })
        .await
    }

    async fn closed_report(
        &self,
        org: Id,
        template: String,
        period: donghanh_core::report::Period,
    ) -> StoreResult<Option<Report>> {
        self.run(move |c, _| {
            let body: Option<String> = c
                .query_row(
                    "SELECT body FROM report_snapshots WHERE org = ?1 AND template = ?2 AND period = ?3",
                    params![id_blob(org), template, period.to_string()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?;
            body.map(|b| serde_json::from_str(&b).map_err(decode_err))
                .transpose()
        })
        .await
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
        self.run(move |c, _| {
            let tx = c.transaction().map_err(db_err)?;
            Self::audit(
                &tx,
                crate::audit::Entry {
                    seq: 0,
                    at: ts(now),
                    user: id_blob(user),
                    device: id_blob(device),
                    action: action.to_owned(),
                    scope,
                    record: None,
                    count,
                    purpose,
                },
            )?;
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn plans(&self, org: Id) -> StoreResult<Vec<Plan>> {
        self.run(move |c, _| {
            let mut stmt = c
                .prepare_cached("SELECT body FROM plans WHERE org = ?1 ORDER BY period")
                .map_err(db_err)?;
            let rows: Vec<String> = stmt
                .query_map([id_blob(org)], |r| r.get(0))
                .map_err(db_err)?
                .collect::<Result<_, _>>()
                .map_err(db_err)?;
            rows.iter()
                .map(|b| serde_json::from_str(b).map_err(decode_err))
                .collect()
        })
        .await
    }

    async fn put_glass_grant(&self, grant: GlassGrant, device: Id) -> StoreResult<()> {
        self.run(move |c, keys| {
            let tx = c.transaction().map_err(db_err)?;
            let id = id_blob(grant.id);
            let sealed = keys
                .seal("glass_grants", &id, grant.reason.as_bytes())
                .map_err(db_err)?;
            tx.execute(
                "INSERT INTO glass_grants(id, user, org, granted_at, expires_at, sealed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    id,
                    id_blob(grant.user),
                    id_blob(grant.org),
                    ts(grant.granted_at),
                    ts(grant.expires_at),
                    sealed
                ],
            )
            .map_err(from_sql)?;
            Self::audit(
                &tx,
                crate::audit::Entry {
                    seq: 0,
                    at: ts(grant.granted_at),
                    user: id_blob(grant.user),
                    device: id_blob(device),
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
            )?;
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn glass_grants(&self, user: Id, now: DateTime<Utc>) -> StoreResult<Vec<GlassGrant>> {
        self.run(move |c, keys| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT id, org, granted_at, expires_at, sealed FROM glass_grants
                     WHERE user = ?1 AND expires_at > ?2 ORDER BY granted_at",
                )
                .map_err(db_err)?;
            let rows: Vec<GrantRow> = stmt
                .query_map(params![id_blob(user), ts(now)], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .map_err(db_err)?
                .collect::<Result<_, _>>()
                .map_err(db_err)?;
            rows.into_iter()
                .map(|(id, org, granted, expires, sealed)| {
                    let reason = keys.open("glass_grants", &id, &sealed).map_err(db_err)?;
                    Ok(GlassGrant {
                        id: blob_to_id(&id)?,
                        user,
                        org: blob_to_id(&org)?,
                        reason: String::from_utf8(reason).map_err(db_err)?,
                        granted_at: from_ts(granted),
                        expires_at: from_ts(expires),
                    })
                })
                .collect()
        })
        .await
    }

    async fn identities(&self, ids: Vec<Id>) -> StoreResult<Vec<Identity>> {
        self.run(move |c, keys| {
            let tx = c.transaction().map_err(db_err)?;
            let mut out = Vec::new();
            for id in ids {
                let Some(current) = Self::read_current(&tx, keys, &id_blob(id))? else {
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
            Ok(out)
        })
        .await
    }

    async fn report_facts(
        &self,
        communes: Vec<Id>,
        points: Vec<Id>,
        start: NaiveDate,
        end: NaiveDate,
    ) -> StoreResult<Vec<Fact>> {
        self.run(move |c, keys| {
            // One read transaction: the facts of one consistent state of the database.
            let tx = c.transaction().map_err(db_err)?;
            tx.execute_batch(
                "CREATE TEMP TABLE IF NOT EXISTS report_units(id BLOB PRIMARY KEY) WITHOUT ROWID;
                 DELETE FROM temp.report_units;",
            )
            .map_err(db_err)?;
            {
                let mut insert = tx
                    .prepare("INSERT OR IGNORE INTO temp.report_units(id) VALUES (?1)")
                    .map_err(db_err)?;
                for unit in communes.iter().chain(&points) {
                    insert.execute([id_blob(*unit)]).map_err(db_err)?;
                }
            }
            // The planner answers the OR below with the person and point indexes, then one
            // table lookup per fact: random reads all over the table (at province scale, most of
            // the report's time). When the subtree holds a large share of the cases, one scan
            // of the table in order is far cheaper, each row tested in memory against the
            // subtree's cases and points (hash sets: SQLite's IN over a quarter of a million
            // blobs costs a B-tree descent per row); a small subtree keeps the indexes.
            let cases: HashSet<Vec<u8>> = {
                let mut stmt = tx
                    .prepare(
                        "SELECT person FROM case_communes
                         WHERE commune IN (SELECT id FROM temp.report_units)",
                    )
                    .map_err(db_err)?;
                stmt.query_map([], |r| r.get(0))
                    .map_err(db_err)?
                    .collect::<Result<_, _>>()
                    .map_err(db_err)?
            };
            let all: i64 = tx
                .query_row("SELECT count(*) FROM case_communes", [], |r| r.get(0))
                .map_err(db_err)?;
            let within = i64::try_from(cases.len()).unwrap_or(i64::MAX);
            let scan = within.saturating_mul(8) >= all;
            let units: HashSet<Vec<u8>> = communes
                .iter()
                .chain(&points)
                .map(|u| id_blob(*u).to_vec())
                .collect();
            let sql = if scan {
                "SELECT f.record, f.personal, f.body, f.person, f.point FROM report_facts f
                 WHERE f.day IS NULL OR f.day BETWEEN ?1 AND ?2"
            } else {
                "SELECT f.record, f.personal, f.body, NULL, NULL FROM report_facts f
                 WHERE (f.day IS NULL OR f.day BETWEEN ?1 AND ?2)
                   AND (f.person IN (SELECT person FROM case_communes
                                      WHERE commune IN (SELECT id FROM temp.report_units))
                        OR f.point IN (SELECT id FROM temp.report_units))"
            };
            // Decoding the JSON is most of the work left: the rows are read here and decoded by
            // a worker per core, in batches (the engine does not depend on the facts' order).
            let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
            let facts = std::thread::scope(|scope| -> StoreResult<Vec<Fact>> {
                let mut senders = Vec::new();
                let mut decoders = Vec::new();
                for _ in 0..workers {
                    let (send, batches) = std::sync::mpsc::sync_channel::<Vec<Vec<u8>>>(4);
                    senders.push(send);
                    decoders.push(scope.spawn(move || -> StoreResult<Vec<Fact>> {
                        let mut facts = Vec::new();
                        for batch in batches {
                            for json in batch {
                                let mut some: Vec<Fact> =
                                    serde_json::from_slice(&json).map_err(decode_err)?;
                                facts.append(&mut some);
                            }
                        }
                        Ok(facts)
                    }));
                }
                let read = (|| -> StoreResult<()> {
                    const BATCH: usize = 1024;
                    let mut stmt = tx.prepare(sql).map_err(db_err)?;
                    let mut rows = stmt
                        .query(params![
                            i64::from(start.num_days_from_ce()),
                            i64::from(end.num_days_from_ce())
                        ])
                        .map_err(db_err)?;
                    let mut batch = Vec::with_capacity(BATCH);
                    let mut next = 0;
                    while let Some(row) = rows.next().map_err(db_err)? {
                        if scan {
                            let person = row.get_ref(3).map_err(db_err)?.as_blob_or_null();
                            let point = row.get_ref(4).map_err(db_err)?.as_blob_or_null();
                            let person = person.map_err(db_err)?;
                            let point = point.map_err(db_err)?;
                            if !person.is_some_and(|p| cases.contains(p))
                                && !point.is_some_and(|p| units.contains(p))
                            {
                                continue;
                            }
                        }
                        let personal: i64 = row.get(1).map_err(db_err)?;
                        let body: Vec<u8> = row.get(2).map_err(db_err)?;
                        batch.push(if personal != 0 {
                            let record: Vec<u8> = row.get(0).map_err(db_err)?;
                            keys.open("report_facts", &record, &body).map_err(db_err)?
                        } else {
                            body
                        });
                        if batch.len() == BATCH {
                            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                            // A decoder that stopped has an error to tell: stop reading.
                            if senders[next % workers].send(full).is_err() {
                                return Ok(());
                            }
                            next += 1;
                        }
                    }
                    if !batch.is_empty() {
                        let _ = senders[next % workers].send(batch);
                    }
                    Ok(())
                })();
                drop(senders);
                let mut facts = Vec::new();
                for decoder in decoders {
                    let mut part = decoder
                        .join()
                        .map_err(|_| db_err("a report facts decoder panicked"))??;
                    facts.append(&mut part);
                }
                read?;
                Ok(facts)
            })?;
            tx.execute("DELETE FROM temp.report_units", [])
                .map_err(db_err)?;
            tx.commit().map_err(db_err)?;
            Ok(facts)
        })
        .await
    }
}
