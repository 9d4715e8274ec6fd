//! The store's side of sync (schema v2): the SQL behind [`crate::sync`], kept here because only
//! this module touches the connection.
//!
//! - `records.server_version`: the version the server last confirmed, raised (never lowered)
//!   by receipts and pulled changes. `records.version` keeps counting local writes, because it
//!   is bound in the envelope's AAD: a remote record is re-sealed at local version + 1, so the
//!   ciphertext it replaces can never be replayed in its place.
//! - `rejected`: mutations the server refused. A row is moved from the outbox with its sealed
//!   patch unchanged (it opens with the outbox AAD, which binds the same record, sequence
//!   number, scope and key) and the client_seq floor is raised in the same transaction, exactly
//!   as for an acknowledged mutation ([`Writer::delete_outbox`] is the one way out of the
//!   outbox).
//! - `meta.pull_cursor`: the last server `op_id` applied, 8 bytes big-endian, written in the
//!   transaction that applies the page it came with.
//!
//! Remote records are stored without an outbox mutation: they are the server's, not a local
//! change to push.

use std::collections::HashSet;

use rusqlite::{OptionalExtension, params};

use super::{
    Error, Id, OutboxRemoval, PatchTable, Reader, Record, Result, Writer, id_from_blob, meta_get,
    meta_put, to_i64, to_u64,
};
use crate::sync::{RejectedMutation, ScopeTask, op_from_code};

/// The `meta` key of the pull cursor.
pub(crate) const PULL_CURSOR: &str = "pull_cursor";
/// The `meta` key of the scope work still to do (JSON list of [`ScopeTask`]; scopes are random
/// ids, clear like `records.scope`).
pub(crate) const SCOPE_WORK: &str = "scope_work";
/// The `meta` key of the first page's `as_of` of a pull from cursor 0 (0 once a revoke was
/// met): grants at or below it came whole with that pull.
pub(crate) const ZERO_AS_OF: &str = "zero_as_of";
/// The `meta` key of the key lease's end (Unix seconds, 8 bytes big-endian).
pub(crate) const LEASE_UNTIL: &str = "lease_until";

/// The clear columns of a stored record that sync compares with a pulled change.
#[derive(Debug, Clone)]
pub(crate) struct StoredIdentity {
    /// Kind code.
    pub kind: String,
    /// Scope.
    pub scope: String,
    /// Version the server last confirmed (0: never).
    pub server_version: u64,
    /// Local write counter (bound in the AAD; a re-seal goes one above it).
    pub version: u64,
}

impl Reader<'_> {
    /// The version the server last confirmed for a record (0 if never), if the record exists.
    pub fn server_version_of(&self, id: Id) -> Result<Option<u64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT server_version FROM records WHERE id = ?1",
                [id.as_bytes()],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .map(to_u64))
    }

    /// A counter kept in `meta` as 8 big-endian bytes.
    pub(crate) fn meta_u64(&self, k: &str) -> Result<Option<u64>> {
        meta_get(self.conn, k)?
            .map(|raw| {
                <[u8; 8]>::try_from(raw.as_slice())
                    .map(u64::from_be_bytes)
                    .map_err(|_| Error::Format {
                        kind: "sync state".into(),
                    })
            })
            .transpose()
    }

    /// Kind, scope, server version and local version of a stored record, if it exists.
    pub(crate) fn stored_identity(&self, id: Id) -> Result<Option<StoredIdentity>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT kind, scope, server_version, version FROM records WHERE id = ?1",
            )?
            .query_row([id.as_bytes()], |r| {
                Ok(StoredIdentity {
                    kind: r.get(0)?,
                    scope: r.get(1)?,
                    server_version: to_u64(r.get(2)?),
                    version: to_u64(r.get(3)?),
                })
            })
            .optional()?)
    }

    /// The records that have pending mutations.
    pub(crate) fn pending_record_ids(&self) -> Result<HashSet<Id>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT DISTINCT record_id FROM outbox")?;
        let ids = stmt
            .query_map([], |r| r.get::<_, Vec<u8>>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        ids.iter()
            .map(|b| {
                id_from_blob(b).ok_or(Error::Tampered {
                    kind: "outbox".into(),
                })
            })
            .collect()
    }

    /// The refused mutations, oldest first (clear columns; the patch stays sealed).
    pub(crate) fn rejected_rows(&self) -> Result<Vec<RejectedMutation>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT client_seq, record_id, kind, scope, op, code, message, at
             FROM rejected ORDER BY client_seq",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, i64>(7)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let tampered = || Error::Tampered {
            kind: "rejected mutation".into(),
        };
        rows.into_iter()
            .map(|(seq, id, kind, scope, op, code, message, at)| {
                Ok(RejectedMutation {
                    client_seq: to_u64(seq),
                    record_id: id_from_blob(&id).ok_or_else(tampered)?,
                    kind,
                    scope,
                    op: op_from_code(&op).ok_or_else(tampered)?,
                    code,
                    message,
                    at,
                })
            })
            .collect()
    }

    /// The sealed patch of a refused mutation.
    pub(crate) fn rejected_patch_of(&self, client_seq: u64) -> Result<serde_json::Value> {
        self.sealed_patch(PatchTable::Rejected, client_seq)
    }
}

impl Reader<'_> {
    /// Scope work recorded by pulled pages and not yet done, in log order.
    pub(crate) fn scope_work(&self) -> Result<Vec<ScopeTask>> {
        match meta_get(self.conn, SCOPE_WORK)? {
            None => Ok(Vec::new()),
            Some(raw) => serde_json::from_slice(&raw).map_err(|_| Error::Format {
                kind: "sync state".into(),
            }),
        }
    }
}

impl Reader<'_> {
    /// When the key lease ends (Unix seconds), if the device is enrolled.
    pub fn lease_until(&self) -> Result<Option<u64>> {
        self.meta_u64(LEASE_UNTIL)
    }
}

impl Writer<'_> {
    /// Sets the end of the key lease (Unix seconds).
    pub fn put_lease_until(&mut self, until: u64) -> Result<()> {
        self.put_meta_u64(LEASE_UNTIL, until)
    }

    /// Replaces the list of scope work still to do.
    pub(crate) fn put_scope_work(&mut self, work: &[ScopeTask]) -> Result<()> {
        let raw = serde_json::to_vec(work).map_err(|_| Error::Format {
            kind: "sync state".into(),
        })?;
        meta_put(&self.tx, SCOPE_WORK, &raw)
    }

    /// Forgets every record this device holds except those with a pending local change (their
    /// outbox rows read them), and the pull cursor: the server no longer keeps the deletes
    /// after this device's cursor, so it downloads everything again instead of keeping
    /// records deleted meanwhile. Scope keys, the outbox and refused mutations stay.
    pub(crate) fn reset_for_rebootstrap(&mut self) -> Result<usize> {
        let pending = self.reader().pending_record_ids()?;
        let ids: Vec<Vec<u8>> = {
            let mut stmt = self.tx.prepare("SELECT id FROM records")?;
            stmt.query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        let mut removed = 0;
        for raw in ids {
            let id = id_from_blob(&raw).ok_or_else(|| Error::Format {
                kind: "record id".into(),
            })?;
            if !pending.contains(&id) && self.delete_record(id)? {
                removed += 1;
            }
        }
        self.put_meta_u64(PULL_CURSOR, 0)?;
        self.put_scope_work(&[])?;
        Ok(removed)
    }

    /// Writes a counter to `meta` as 8 big-endian bytes.
    pub(crate) fn put_meta_u64(&mut self, k: &str, v: u64) -> Result<()> {
        meta_put(&self.tx, k, &v.to_be_bytes())
    }

    /// Raises a record's server version to `version` (never lowers it). A missing record (a
    /// deleted one) is not an error.
    pub(crate) fn raise_server_version(&mut self, id: Id, version: u64) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE records SET server_version = ?2 WHERE id = ?1 AND server_version < ?2",
            )?
            .execute(params![id.as_bytes(), to_i64(version)?])?;
        Ok(())
    }

    /// Moves a pending mutation to `rejected` with the server's reason, raising the client_seq
    /// floor. Returns whether the mutation was pending.
    pub(crate) fn reject_outbox(
        &mut self,
        client_seq: u64,
        code: &str,
        message: &str,
        at: i64,
    ) -> Result<bool> {
        // A pending create carries no payload of its own (it is the record): seal the record's
        // content into the refused row now, so the refusal keeps what was refused even if the
        // record later changes or goes.
        let row: Option<(Vec<u8>, String, i64, Vec<u8>)> = self
            .tx
            .query_row(
                "SELECT record_id, scope, key_id, envelope FROM outbox WHERE client_seq = ?1",
                [to_i64(client_seq)?],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let Some((record_id, scope, key_id, envelope)) = row else {
            return Ok(false);
        };
        let envelope = if envelope.is_empty() {
            let plain =
                serde_json::to_vec(&self.reader().outbox_patch(client_seq)?).map_err(|_| {
                    Error::Format {
                        kind: "outbox".into(),
                    }
                })?;
            let id = <[u8; 16]>::try_from(record_id.as_slice()).map_err(|_| Error::Tampered {
                kind: "outbox".into(),
            })?;
            let key_id = u32::try_from(key_id).map_err(|_| Error::CorruptKeys)?;
            self.seal_outbox_payload(&id, client_seq, &scope, key_id, &plain)?
        } else {
            envelope
        };
        let moved = self
            .tx
            .prepare_cached(
                "INSERT INTO rejected(client_seq, record_id, kind, scope, op, code, message, at,
                                      key_id, envelope)
                 SELECT client_seq, record_id, kind, scope, op, ?2, ?3, ?4, key_id, ?5
                 FROM outbox WHERE client_seq = ?1",
            )?
            .execute(params![to_i64(client_seq)?, code, message, at, envelope])?;
        if moved == 0 {
            return Ok(false);
        }
        self.delete_outbox(OutboxRemoval::Seq(client_seq))?;
        Ok(true)
    }

    /// Forgets a refused mutation. Returns whether it existed.
    pub(crate) fn delete_rejected(&mut self, client_seq: u64) -> Result<bool> {
        Ok(self
            .tx
            .prepare_cached("DELETE FROM rejected WHERE client_seq = ?1")?
            .execute([to_i64(client_seq)?])?
            > 0)
    }

    /// Stores a record received from the server (insert or replace), confirmed at
    /// `server_version`, re-sealed at local version + 1 (`stored_version` is the local version
    /// now, none for a new record, as [`Reader::stored_identity`] read it in this
    /// transaction), with its blind index entries, and no outbox mutation. `plain` is the
    /// record's JSON when the caller has it (the text it was decoded from); otherwise the
    /// record is serialised. The caller has checked it.
    pub(crate) fn put_remote<R: Record>(
        &mut self,
        record: &R,
        server_version: u64,
        stored_version: Option<u64>,
        plain: Option<&[u8]>,
    ) -> Result<()> {
        let version = stored_version.map_or(1, |v| v.saturating_add(1));
        self.write_remote(record, server_version, version, plain, true)
            .map(drop)
    }

    /// Stores a record received from the server that this device does not hold, as
    /// [`Writer::put_remote`] would at local version 1. Returns `false`, having changed
    /// nothing, if a record with its id exists: the caller then compares it with the stored
    /// one. Most pulled records are new (visits are written once), and this spares them the
    /// lookup.
    pub(crate) fn insert_remote<R: Record>(
        &mut self,
        record: &R,
        server_version: u64,
        plain: Option<&[u8]>,
    ) -> Result<bool> {
        self.write_remote(record, server_version, 1, plain, false)
    }

    fn write_remote<R: Record>(
        &mut self,
        record: &R,
        server_version: u64,
        version: u64,
        plain: Option<&[u8]>,
        replace: bool,
    ) -> Result<bool> {
        let serialised;
        let plain = match plain {
            Some(p) => p,
            None => {
                serialised = serde_json::to_vec(record).map_err(|_| Self::format_error::<R>())?;
                &serialised
            }
        };
        let (key_id, _key, envelope) = self.seal_record(record, version, plain)?;
        let sql = if replace {
            "INSERT INTO records(id, kind, scope, subject, day, state, version, key_id,
                                 envelope, server_version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT(id) DO UPDATE SET subject = excluded.subject, day = excluded.day,
               state = excluded.state, version = excluded.version, key_id = excluded.key_id,
               envelope = excluded.envelope, server_version = excluded.server_version"
        } else {
            "INSERT INTO records(id, kind, scope, subject, day, state, version, key_id,
                                 envelope, server_version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        };
        let written = self.tx.prepare_cached(sql)?.execute(params![
            record.id().as_bytes(),
            R::KIND.code(),
            record.scope().to_string(),
            record.subject().map(|s| *s.as_bytes()),
            record.day().map(|d| d.to_string()),
            record.state(),
            to_i64(version)?,
            i64::from(key_id),
            envelope,
            to_i64(server_version)?,
        ]);
        match written {
            Err(rusqlite::Error::SqliteFailure(f, _))
                if !replace && f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
            {
                return Ok(false);
            }
            other => other?,
        };
        self.after_write::<R>(plain, !replace)?;
        Ok(true)
    }

    /// Removes a record; its blind-index entries go with it (ON DELETE CASCADE). Pending
    /// mutations of the record stay in the outbox. Returns whether it existed.
    pub(crate) fn delete_record(&mut self, id: Id) -> Result<bool> {
        Ok(self
            .tx
            .prepare_cached("DELETE FROM records WHERE id = ?1")?
            .execute([id.as_bytes()])?
            > 0)
    }
}
