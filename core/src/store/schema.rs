//! The schema story, in one module (STYLE.md point 5).
//!
//! Records are a rowid table with a unique index on the random id, not a `WITHOUT ROWID` table
//! keyed by it: rows are envelopes of a few hundred bytes, and random-key inserts into a
//! clustered B-tree of large rows measured 2.6× slower in bulk (BENCHMARKS.md).
//!
//! The version lives in SQLite's `user_version` (rusqlite_migration). Each step is embedded SQL;
//! a shipped step is never edited, only followed by a new one. `tests/migrations.rs` checks that
//! a database migrated from the frozen fixture of every shipped version equals a fresh one.
//!
//! **Clear columns** (everything else is inside an envelope):
//! - `meta.k`: names of the key-material entries; `meta.v` holds only wrapped keys, salts,
//!   the `client_seq` floor, check values and (v2) `pull_cursor`, the last server `op_id`
//!   applied (8 bytes, big-endian; absent means 0).
//! - `scope_keys.key_id`, `scope_keys.scope`: which scopes the device holds (random ids).
//! - `records.id`, `kind`, `scope`, `subject` (random person id), `day` (a date, `YYYY-MM-DD`),
//!   `state` (coarse status code such as `open`), `version` (local writes; bound in the AAD),
//!   `key_id`; (v2) `server_version`, the version the server last confirmed (0: never).
//! - `blind_index.token`: truncated keyed hashes of name prefixes; `record_id`.
//! - `outbox.client_seq`, `record_id`, `kind`, `scope`, `op`, `base_version`, `key_id`,
//!   `created_at` (device clock, seconds).
//! - (v2) `rejected.client_seq`, `record_id`, `kind`, `scope`, `op`, `code` and `message` (the
//!   server's reason: a stable code and a text that by protocol never carries personal data),
//!   `at` (device clock, seconds, when the rejection arrived), `key_id`. The refused patch stays
//!   sealed in `rejected.envelope`, moved unchanged from the outbox row.
//!
//! Version 2 adds sync state: `records.server_version` and the `rejected` table. `version`
//! keeps counting local writes (each write re-seals with a fresh AAD version, so an old
//! ciphertext cannot be replayed), while `server_version` is what a mutation names as its
//! `base_version`. They are different numbers: a record written twice locally before its first
//! push is at local version 2 and server version 0.

use rusqlite_migration::{M, Migrations};

/// Version 1: key material, scope keys, sealed records, blind index, outbox.
const V1: &str = r"
CREATE TABLE meta (
    k TEXT PRIMARY KEY NOT NULL,
    v BLOB NOT NULL
) STRICT;

CREATE TABLE scope_keys (
    key_id INTEGER PRIMARY KEY NOT NULL,
    scope TEXT NOT NULL UNIQUE,
    wrapped BLOB NOT NULL
) STRICT;

CREATE TABLE records (
    rid INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE CHECK (length(id) = 16),
    kind TEXT NOT NULL,
    scope TEXT NOT NULL,
    subject BLOB CHECK (subject IS NULL OR length(subject) = 16),
    day TEXT,
    state TEXT,
    version INTEGER NOT NULL CHECK (version > 0),
    key_id INTEGER NOT NULL REFERENCES scope_keys(key_id),
    envelope BLOB NOT NULL
) STRICT;
-- No index on key_id: only a purge (rare) looks rows up by it, and a full scan there is cheaper
-- than a fourth B-tree page written by every commit.
-- Covering index for per-person questions: a person's visits by day, the last visit (MAX seek),
-- the next open task (scan of one person's few tasks without touching the table).
CREATE INDEX records_kind_subject_day ON records(kind, subject, day, state);

CREATE TABLE blind_index (
    token BLOB NOT NULL,
    record_id BLOB NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    PRIMARY KEY (token, record_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX blind_index_record ON blind_index(record_id);

CREATE TABLE outbox (
    client_seq INTEGER PRIMARY KEY NOT NULL,
    record_id BLOB NOT NULL CHECK (length(record_id) = 16),
    kind TEXT NOT NULL,
    scope TEXT NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('create', 'update', 'delete')),
    base_version INTEGER NOT NULL,
    key_id INTEGER NOT NULL REFERENCES scope_keys(key_id),
    envelope BLOB NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
";

/// Version 2: sync state. The server version a record was last confirmed at (from a receipt or a
/// pulled change), and the mutations the server refused, kept until the user dismisses them.
///
/// Rows of v1 get `server_version = 0`: nothing had ever been pushed before v2 (v1 had no sync).
const V2: &str = r"
ALTER TABLE records ADD COLUMN server_version INTEGER NOT NULL DEFAULT 0
    CHECK (server_version >= 0);

CREATE TABLE rejected (
    client_seq INTEGER PRIMARY KEY NOT NULL,
    record_id BLOB NOT NULL CHECK (length(record_id) = 16),
    kind TEXT NOT NULL,
    scope TEXT NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('create', 'update', 'delete')),
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    at INTEGER NOT NULL,
    key_id INTEGER NOT NULL REFERENCES scope_keys(key_id),
    envelope BLOB NOT NULL
) STRICT;
";

/// The migrations, oldest first. Append only.
#[must_use]
pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(V1), M::up(V2)])
}

/// The schema version this build writes.
pub const LATEST: usize = 2;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid_and_latest_matches() {
        migrations().validate().unwrap();
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut conn).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(usize::try_from(v).unwrap(), LATEST);
    }
}
