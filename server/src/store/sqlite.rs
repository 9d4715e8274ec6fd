//! The embedded default backend: one SQLite file (rusqlite, bundled), zero setup.
//!
//! One connection behind a mutex, used from tokio's blocking pool; WAL mode. Rows that hold
//! identity (users, devices) are sealed with the server key ([`ServerKeys`]); usernames are
//! looked up by a keyed hash. Org-unit names are public and stay clear. Token tables hold only
//! hashes of tokens.

use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use donghanh_core::domain::{Device, Id, OrgTree, OrgUnit, User};
use rusqlite::{Connection, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};

use super::{AccessGrant, StoreError, StoreResult, StoredUser, SyncStore};
use crate::secrets::ServerKeys;

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

CREATE TABLE login_failures (
    username_mac BLOB NOT NULL,
    at INTEGER NOT NULL
) STRICT;
CREATE INDEX login_failures_user ON login_failures(username_mac, at);
";

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(V1)])
}

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(e.to_string())
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

fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

fn from_ts(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(s, 0).unwrap_or_default()
}

/// The SQLite backend.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    keys: Arc<ServerKeys>,
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
             PRAGMA busy_timeout=5000;",
        )
        .map_err(db_err)?;
        migrations().to_latest(&mut conn).map_err(db_err)?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            keys: Arc::new(keys),
        })
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

    fn read_user(
        keys: &ServerKeys,
        id: &[u8],
        sealed: &[u8],
        hash: String,
    ) -> StoreResult<StoredUser> {
        let plain = keys.open("users", id, sealed).map_err(db_err)?;
        let user: User = serde_json::from_slice(&plain).map_err(db_err)?;
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
                units.push(serde_json::from_str(&row.map_err(db_err)?).map_err(db_err)?);
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
                    v.push(serde_json::from_str(&row.map_err(db_err)?).map_err(db_err)?);
                }
                v
            };
            units.push(unit.clone());
            OrgTree::new(units)?;
            let json = serde_json::to_string(&unit).map_err(db_err)?;
            tx.execute(
                "INSERT INTO org_units(id, json) VALUES (?1, ?2)",
                params![id_blob(unit.id), json],
            )
            .map_err(from_sql)?;
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
                    serde_json::from_slice(&plain).map_err(db_err)
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
            .map_err(db_err)?;
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
                     WHERE id = ?1 AND refresh_hash = ?2 AND revoked_at IS NULL",
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
                    ts(grant.expires_at)
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
            c.execute(
                "INSERT INTO login_failures(username_mac, at) VALUES (?1, ?2)",
                params![keys.lookup("username", &username), ts(at)],
            )
            .map_err(db_err)?;
            Ok(())
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
}
