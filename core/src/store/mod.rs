//! The encrypted device store (DESIGN.md §4).
//!
//! One SQLite file, one connection behind a mutex (the one writer), opened in WAL mode with
//! `secure_delete=ON` (deleted bytes are overwritten, so a purged case leaves nothing behind)
//! and `temp_store=MEMORY` (no plaintext in temporary files; there is none to spill anyway,
//! since every value SQLite sees is either a clear column or an envelope). `synchronous=NORMAL`:
//! in WAL mode a commit survives a killed process; a power cut may roll back the last commits
//! but never corrupts the file (docs/adr/0001). Measured here, `FULL` costs ~2 ms p99 per commit.
//!
//! Work happens in closures: [`Store::write`] runs one transaction that commits only if the
//! closure succeeds, [`Store::read`] a consistent read. Raw connections never leave this module.
//!
//! Each record is sealed whole (JSON) under its scope's data key; its clear columns come from
//! the [`Record`] trait. Each local change writes its outbox mutation, numbered by the
//! `client_seq` counter kept in `meta`, in the same transaction, so a change and its mutation
//! exist together or not at all.
//!
//! **Outbox.** A mutation's patch is sealed like a record, under the scope's data key, bound to
//! its `client_seq`. A create is the exception: its payload is the whole record, so its row holds
//! an empty envelope that means "read the record" instead of a second sealed copy (this halved
//! the bytes written per new record). The push therefore sends a record's latest content in its
//! create; a refusal seals that content into the `rejected` row so it is never lost. Only a
//! create may point at its record: an empty payload on any other operation is tampering.
//!
//! Opening never guesses: a wrong PIN, a missing platform key, damaged key material and a file
//! that is not a database are told apart; only the last is moved aside (never deleted).

mod schema;
pub(crate) mod sync_state;

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::NaiveDate;
use ring::rand::{SecureRandom, SystemRandom};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde_json::Value;

use crate::crypto::{self, Aad, SecretKey};
use crate::domain::{Id, Person, Record, RecordKind, Scope, ValidationContext};
use crate::keystore::KeyStore;
use crate::search;
use crate::{Error, Result};

pub use schema::{LATEST as SCHEMA_VERSION, migrations};

/// Version of the payload encoding sealed inside record envelopes (bound in the AAD).
pub const PAYLOAD_VERSION: u32 = 1;
/// Shortest PIN accepted.
pub const MIN_PIN_LEN: usize = 6;
/// Longest PIN accepted.
pub const MAX_PIN_LEN: usize = 64;

const MASTER_ID: [u8; 16] = *b"master-key-v1\0\0\0";
const CANARY_ID: [u8; 16] = *b"canary-v1\0\0\0\0\0\0\0";
const SCOPE_KEY_ID: [u8; 16] = [0; 16];
const CANARY_PLAINTEXT: &[u8] = b"dong hanh canary v1";

/// Options for a new store.
#[derive(Debug, Clone, Copy)]
pub struct CreateOptions {
    /// PBKDF2 iterations for the PIN; at least [`crypto::MIN_PIN_ITERATIONS`].
    pub pin_iterations: u32,
}

/// The fewest PIN iterations a new store takes: [`crypto::MIN_PIN_ITERATIONS`], except in the
/// simulation's test builds (the `simulation` feature with debug assertions; see Cargo.toml).
#[cfg(not(all(feature = "simulation", debug_assertions)))]
const PIN_ITERATIONS_FLOOR: u32 = crypto::MIN_PIN_ITERATIONS;
#[cfg(all(feature = "simulation", debug_assertions))]
const PIN_ITERATIONS_FLOOR: u32 = 1;

impl Default for CreateOptions {
    fn default() -> Self {
        Self {
            pin_iterations: crypto::MIN_PIN_ITERATIONS,
        }
    }
}

/// One outbox mutation as stored (the patch still sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Per-device sequence number, never reused.
    pub client_seq: u64,
    /// The record changed.
    pub record_id: Id,
    /// The record's kind code.
    pub kind: String,
    /// The record's scope.
    pub scope: String,
    /// `create`, `update` or `delete`.
    pub op: String,
    /// The version the change was made on (0 for a create).
    pub base_version: u64,
}

/// Which outbox rows [`Reader::outbox_entries`] lists.
#[derive(Debug, Clone, Copy)]
pub(crate) enum OutboxFilter {
    /// Every pending mutation.
    All,
    /// The oldest `n`.
    Oldest(usize),
    /// One mutation.
    Seq(u64),
    /// The pending mutations of one record.
    Record(Id),
}

/// Where a sealed patch is kept.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PatchTable {
    /// A pending mutation.
    Outbox,
    /// A mutation the server refused.
    Rejected,
}

/// Which outbox rows [`Writer::delete_outbox`] removes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum OutboxRemoval {
    /// Every row sealed under a scope's data key (a purge).
    Key(i64),
    /// One mutation (acknowledged or rejected by the server).
    Seq(u64),
}

/// One line of a caseload: a person with the dates a worker plans by.
#[derive(Debug, Clone)]
pub struct CaseloadEntry {
    /// The person.
    pub person: Person,
    /// Due date of the person's earliest open follow-up task.
    pub next_due: Option<NaiveDate>,
    /// Day of the person's latest visit.
    pub last_visit: Option<NaiveDate>,
}

/// The unlocked encrypted store.
pub struct Store {
    path: PathBuf,
    inner: Mutex<Inner>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

struct Inner {
    conn: Connection,
    keys: RefCell<Keys>,
    nonces: crypto::NonceSource,
    /// The next `client_seq` as of the last commit (cached so a write need not look it up).
    next_seq: Option<u64>,
}

struct Keys {
    master: SecretKey,
    index: SecretKey,
    by_id: HashMap<u32, (String, SecretKey)>,
    by_scope: HashMap<String, u32>,
}

fn check_pin(pin: &str) -> Result<()> {
    let n = pin.chars().count();
    if !(MIN_PIN_LEN..=MAX_PIN_LEN).contains(&n) || pin.trim().is_empty() {
        return Err(Error::WeakPin {
            min: MIN_PIN_LEN,
            max: MAX_PIN_LEN,
        });
    }
    Ok(())
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    // journal_mode answers with a row; the rest are plain settings.
    let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    conn.execute_batch(
        "PRAGMA synchronous=NORMAL;
         PRAGMA secure_delete=ON;
         PRAGMA temp_store=MEMORY;
         PRAGMA foreign_keys=ON;
         PRAGMA busy_timeout=2000;
         PRAGMA cache_size=-8192;",
    )
}

fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
    )
}

fn meta_get(conn: &Connection, k: &str) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .prepare_cached("SELECT v FROM meta WHERE k = ?1")?
        .query_row([k], |r| r.get(0))
        .optional()?)
}

fn meta_put(conn: &Connection, k: &str, v: &[u8]) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta(k, v) VALUES (?1, ?2) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
    )?
    .execute(params![k, v])?;
    Ok(())
}

fn meta_aad(id: &[u8; 16]) -> Aad<'_> {
    Aad {
        table: "meta",
        record_id: id,
        record_version: 1,
        schema_version: PAYLOAD_VERSION,
        scope: "device",
        key_id: 0,
    }
}

fn scope_key_aad(scope: &str, key_id: u32) -> Aad<'_> {
    Aad {
        table: "scope_keys",
        record_id: &SCOPE_KEY_ID,
        record_version: 1,
        schema_version: PAYLOAD_VERSION,
        scope,
        key_id,
    }
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Moves a damaged database (and its WAL and shared-memory files) aside. Never deletes.
fn move_aside(path: &Path) -> Result<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let mut target = path.with_extension(format!("corrupt-{stamp}"));
    let mut n = 1;
    while target.exists() {
        target = path.with_extension(format!("corrupt-{stamp}-{n}"));
        n += 1;
    }
    std::fs::rename(path, &target)?;
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", path.display()));
        if side.exists() {
            std::fs::rename(
                &side,
                PathBuf::from(format!("{}{suffix}", target.display())),
            )?;
        }
    }
    Ok(target)
}

impl Store {
    /// Creates a new store at `path`, protected by the platform key store and `pin`.
    ///
    /// The file is built under a temporary name and renamed into place only when complete, so
    /// a failure leaves no half-made store behind.
    pub fn create(
        path: &Path,
        keystore: &dyn KeyStore,
        pin: &str,
        options: CreateOptions,
    ) -> Result<Store> {
        check_pin(pin)?;
        if path.exists() {
            return Err(Error::AlreadyInitialised(path.to_owned()));
        }
        let iterations = NonZeroU32::new(options.pin_iterations.max(PIN_ITERATIONS_FLOOR))
            .ok_or(Error::CorruptKeys)?;
        let tmp = path.with_extension("creating");
        for stale in [tmp.clone(), PathBuf::from(format!("{}-wal", tmp.display()))] {
            if stale.exists() {
                std::fs::remove_file(&stale)?;
            }
        }
        let result = Self::build(&tmp, keystore, pin, iterations);
        match result {
            Ok(()) => {
                std::fs::rename(&tmp, path)?;
                Self::open(path, keystore, pin)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                let _ = std::fs::remove_file(format!("{}-wal", tmp.display()));
                let _ = std::fs::remove_file(format!("{}-shm", tmp.display()));
                Err(e)
            }
        }
    }

    fn build(tmp: &Path, keystore: &dyn KeyStore, pin: &str, iterations: NonZeroU32) -> Result<()> {
        let rng = SystemRandom::new();
        let rand = |n: usize| -> Result<Vec<u8>> {
            let mut v = vec![0u8; n];
            rng.fill(&mut v)
                .map_err(|_| Error::Storage("random generator failed".into()))?;
            Ok(v)
        };
        let mut conn = Connection::open(tmp)?;
        // Built in rollback-journal mode and switched to WAL on first open, so that the
        // finished file is self-contained when it is renamed into place.
        conn.execute_batch("PRAGMA secure_delete=ON; PRAGMA temp_store=MEMORY;")?;
        migrations().to_latest(&mut conn)?;
        let device_secret = SecretKey::random(&rng).map_err(|_| Error::CorruptKeys)?;
        let wrapped_secret = keystore.wrap(device_secret.expose())?;
        let salt = rand(16)?;
        let kek = crypto::derive_kek(&device_secret, &crypto::stretch_pin(pin, &salt, iterations));
        let master = SecretKey::random(&rng).map_err(|_| Error::CorruptKeys)?;
        let seal = |key: &SecretKey, id: &[u8; 16], plain: &[u8]| {
            crypto::seal(&rng, key, &meta_aad(id), plain).map_err(|_| Error::CorruptKeys)
        };
        let tx = conn.transaction()?;
        meta_put(&tx, "store_id", &rand(16)?)?;
        meta_put(&tx, "device_secret_wrapped", &wrapped_secret)?;
        meta_put(&tx, "pin_kdf", b"pbkdf2-hmac-sha256")?;
        meta_put(&tx, "pin_salt", &salt)?;
        meta_put(&tx, "pin_iterations", &iterations.get().to_be_bytes())?;
        meta_put(&tx, "pin_check", &crypto::pin_check(&kek))?;
        meta_put(
            &tx,
            "master_wrapped",
            &seal(&kek, &MASTER_ID, master.expose())?,
        )?;
        meta_put(&tx, "canary", &seal(&master, &CANARY_ID, CANARY_PLAINTEXT)?)?;
        meta_put(&tx, "client_seq_floor", &0u64.to_be_bytes())?;
        tx.commit()?;
        drop(conn);
        Ok(())
    }

    /// Opens and unlocks the store at `path`.
    ///
    /// Errors, in the order they are checked: [`Error::NoStore`]; [`Error::CorruptStore`] when
    /// the file is not a readable database (it is moved aside); [`Error::NewerSchema`];
    /// [`Error::KeyStore`] when the platform key is missing or does not match;
    /// [`Error::WrongPin`]; [`Error::CorruptKeys`]. Nothing is written unless the PIN is right.
    pub fn open(path: &Path, keystore: &dyn KeyStore, pin: &str) -> Result<Store> {
        if !path.is_file() {
            return Err(Error::NoStore(path.to_owned()));
        }
        let conn = match Self::open_checked(path) {
            Ok(conn) => conn,
            Err(e) if is_corruption(&e) => {
                return Err(Error::CorruptStore {
                    moved_to: move_aside(path)?,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let mut conn = conn;
        let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let found = usize::try_from(found).map_err(|_| Error::CorruptKeys)?;
        if found > schema::LATEST {
            return Err(Error::NewerSchema {
                found,
                known: schema::LATEST,
            });
        }
        if meta_get(&conn, "wiped")?.is_some() {
            return Err(Error::Wiped);
        }
        let (master, keys_ok) = Self::unlock(&conn, keystore, pin)?;
        if !keys_ok {
            return Err(Error::CorruptKeys);
        }
        migrations().to_latest(&mut conn)?;
        let index = crypto::derive_index_key(&master);
        Ok(Store {
            path: path.to_owned(),
            inner: Mutex::new(Inner {
                conn,
                keys: RefCell::new(Keys {
                    master,
                    index,
                    by_id: HashMap::new(),
                    by_scope: HashMap::new(),
                }),
                nonces: crypto::NonceSource::new(),
                next_seq: None,
            }),
        })
    }

    fn open_checked(path: &Path) -> rusqlite::Result<Connection> {
        match Self::open_connection(path, false) {
            // A full disk: the WAL's shared-memory index file cannot be created. In exclusive
            // locking mode SQLite keeps that index in memory instead, so the store still opens
            // and reads (a phone with a full disk still shows its records); writes then fail
            // with a plain disk-full error, and the lock is released when the store closes.
            Err(rusqlite::Error::SqliteFailure(f, _))
                if f.extended_code == rusqlite::ffi::SQLITE_IOERR_SHMSIZE =>
            {
                Self::open_connection(path, true)
            }
            other => other,
        }
    }

    fn open_connection(path: &Path, exclusive: bool) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        if exclusive {
            // Before the first read, so that the WAL index never goes to the shared file.
            let _mode: String =
                conn.query_row("PRAGMA locking_mode=EXCLUSIVE", [], |r| r.get(0))?;
        }
        // A store always has a schema: a file without one (empty, truncated to nothing, or some
        // other SQLite file) is not ours, and is moved aside before anything writes to it.
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version == 0 {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_NOTADB),
                Some("no device store schema".into()),
            ));
        }
        configure(&conn)?;
        let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        if check != "ok" {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                Some("quick_check failed".into()),
            ));
        }
        Ok(conn)
    }

    /// Recovers the master key. Returns it with whether the canary opened.
    fn unlock(conn: &Connection, keystore: &dyn KeyStore, pin: &str) -> Result<(SecretKey, bool)> {
        let need = |k: &str| -> Result<Vec<u8>> { meta_get(conn, k)?.ok_or(Error::CorruptKeys) };
        let wrapped_secret = need("device_secret_wrapped")?;
        let device_secret = SecretKey::from_slice(&keystore.unwrap(&wrapped_secret)?)
            .map_err(|_| Error::CorruptKeys)?;
        let salt = need("pin_salt")?;
        let iterations = need("pin_iterations")?;
        let iterations = <[u8; 4]>::try_from(iterations.as_slice())
            .ok()
            .map(u32::from_be_bytes)
            .and_then(NonZeroU32::new)
            .ok_or(Error::CorruptKeys)?;
        let kek = crypto::derive_kek(&device_secret, &crypto::stretch_pin(pin, &salt, iterations));
        if !crypto::pin_check_matches(&kek, &need("pin_check")?) {
            return Err(Error::WrongPin);
        }
        let master = crypto::open(&kek, &meta_aad(&MASTER_ID), &need("master_wrapped")?)
            .ok()
            .and_then(|m| SecretKey::from_slice(&m).ok())
            .ok_or(Error::CorruptKeys)?;
        let canary_ok = crypto::open(&master, &meta_aad(&CANARY_ID), &need("canary")?)
            .is_ok_and(|c| c == CANARY_PLAINTEXT);
        Ok((master, canary_ok))
    }

    /// The database file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>> {
        self.inner
            .lock()
            .map_err(|_| Error::Storage("store lock poisoned".into()))
    }

    /// Runs `f` in one write transaction; commits only if it returns `Ok`.
    pub fn write<T>(&self, f: impl FnOnce(&mut Writer<'_>) -> Result<T>) -> Result<T> {
        let mut guard = self.lock()?;
        let inner = &mut *guard;
        let tx = inner.conn.transaction()?;
        let mut w = Writer {
            tx,
            keys: &inner.keys,
            nonces: &mut inner.nonces,
            created: Vec::new(),
            next_seq: inner.next_seq,
        };
        let out = f(&mut w);
        let created = std::mem::take(&mut w.created);
        let next_seq = w.next_seq;
        let result = match out {
            Ok(v) => w.tx.commit().map(|()| v).map_err(Error::from),
            Err(e) => Err(e),
        };
        inner.next_seq = if result.is_ok() { next_seq } else { None };
        if result.is_err() {
            // Keys made in a rolled-back transaction must not outlive it in the cache.
            let mut keys = inner.keys.borrow_mut();
            for id in created {
                if let Some((scope, _)) = keys.by_id.remove(&id) {
                    keys.by_scope.remove(&scope);
                }
            }
        }
        result
    }

    /// Runs `f` against a consistent read view.
    pub fn read<T>(&self, f: impl FnOnce(&Reader<'_>) -> Result<T>) -> Result<T> {
        let mut guard = self.lock()?;
        let inner = &mut *guard;
        let tx = inner.conn.transaction()?;
        let out = f(&Reader {
            conn: &tx,
            keys: &inner.keys,
        });
        drop(tx);
        out
    }

    /// Copies the WAL into the main file and truncates it (after a purge, so deleted bytes do
    /// not linger in the log).
    pub fn checkpoint(&self) -> Result<()> {
        let guard = self.lock()?;
        guard
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Lets the WAL grow to [`BULK_CHECKPOINT_PAGES`] before a commit copies it into the
    /// database file, until the returned guard is dropped; then call [`Store::checkpoint`].
    ///
    /// For many large transactions in a row (a pull of thousands of records): with random
    /// record ids each of them rewrites most index pages, and at the usual interval nearly
    /// every commit copied its pages to the database file again, with two `fsync`s. With
    /// the larger interval an index page is copied once per 16 MiB of log rather than once
    /// per transaction. The log holds only envelopes and clear columns, like the file. The
    /// page cache is raised to [`BULK_CACHE_KIB`] meanwhile, so that the indexes every page
    /// touches stay in memory (a bound: it does not grow with the data pulled).
    pub fn bulk_writes(&self) -> Result<BulkWrites<'_>> {
        self.set_bulk(BULK_CHECKPOINT_PAGES, BULK_CACHE_KIB)?;
        Ok(BulkWrites { store: self })
    }

    fn set_bulk(&self, checkpoint_pages: u32, cache_kib: u32) -> Result<()> {
        let guard = self.lock()?;
        guard.conn.query_row(
            &format!("PRAGMA wal_autocheckpoint={checkpoint_pages}"),
            [],
            |_| Ok(()),
        )?;
        guard
            .conn
            .execute_batch(&format!("PRAGMA cache_size=-{cache_kib};"))?;
        Ok(())
    }
}

/// WAL pages (4 KiB) at which a commit checkpoints: SQLite's default.
const CHECKPOINT_PAGES: u32 = 1_000;
/// WAL pages at which a commit checkpoints during [`Store::bulk_writes`] (16 MiB).
pub const BULK_CHECKPOINT_PAGES: u32 = 4_000;
/// The page cache (KiB) outside [`Store::bulk_writes`].
const CACHE_KIB: u32 = 8_192;
/// The page cache (KiB) during [`Store::bulk_writes`].
pub const BULK_CACHE_KIB: u32 = 32_768;

/// Restores the usual checkpoint interval when dropped (see [`Store::bulk_writes`]).
#[derive(Debug)]
pub struct BulkWrites<'a> {
    store: &'a Store,
}

impl Drop for BulkWrites<'_> {
    fn drop(&mut self) {
        // Failing to restore leaves a larger interval, which costs WAL size, not safety.
        let _ = self.store.set_bulk(CHECKPOINT_PAGES, CACHE_KIB);
    }
}

/// A read view over the store.
pub struct Reader<'a> {
    conn: &'a Connection,
    keys: &'a RefCell<Keys>,
}

impl fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Reader")
    }
}

fn record_aad<'a>(id: &'a [u8; 16], version: u64, scope: &'a str, key_id: u32) -> Aad<'a> {
    Aad {
        table: "records",
        record_id: id,
        record_version: version,
        schema_version: PAYLOAD_VERSION,
        scope,
        key_id,
    }
}

fn outbox_aad<'a>(id: &'a [u8; 16], client_seq: u64, scope: &'a str, key_id: u32) -> Aad<'a> {
    Aad {
        table: "outbox",
        record_id: id,
        record_version: client_seq,
        schema_version: PAYLOAD_VERSION,
        scope,
        key_id,
    }
}

fn id_from_blob(b: &[u8]) -> Option<Id> {
    <[u8; 16]>::try_from(b).ok().map(Id::from_bytes)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::Storage("counter overflow".into()))
}

/// The columns a sealed record row is read from.
struct Row {
    id: [u8; 16],
    kind: String,
    scope: String,
    version: u64,
    key_id: u32,
    envelope: Vec<u8>,
}

const ROW_COLUMNS: &str = "id, kind, scope, version, key_id, envelope";

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let id: Vec<u8> = r.get(0)?;
    Ok(Row {
        id: <[u8; 16]>::try_from(id.as_slice()).unwrap_or([0; 16]),
        kind: r.get(1)?,
        scope: r.get(2)?,
        version: to_u64(r.get(3)?),
        key_id: u32::try_from(r.get::<_, i64>(4)?).unwrap_or(u32::MAX),
        envelope: r.get(5)?,
    })
}

impl Reader<'_> {
    /// The data key with this id, loading (and unwrapping) it on first use.
    fn data_key(&self, key_id: u32, scope: &str) -> Result<SecretKey> {
        if let Some((s, k)) = self.keys.borrow().by_id.get(&key_id) {
            return if s == scope {
                Ok(k.clone())
            } else {
                Err(Error::CorruptKeys)
            };
        }
        let row: Option<(String, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT scope, wrapped FROM scope_keys WHERE key_id = ?1",
                [i64::from(key_id)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (key_scope, wrapped) = row.ok_or(Error::CorruptKeys)?;
        if key_scope != scope {
            return Err(Error::CorruptKeys);
        }
        let mut keys = self.keys.borrow_mut();
        let raw = crypto::open(&keys.master, &scope_key_aad(scope, key_id), &wrapped)
            .map_err(|_| Error::CorruptKeys)?;
        let key = SecretKey::from_slice(&raw).map_err(|_| Error::CorruptKeys)?;
        keys.by_id.insert(key_id, (scope.to_owned(), key.clone()));
        keys.by_scope.insert(scope.to_owned(), key_id);
        Ok(key)
    }

    fn open_row<R: Record>(&self, row: &Row) -> Result<R> {
        let kind = R::KIND.code();
        if row.kind != kind {
            return Err(Error::NotFound { kind });
        }
        let key = self.data_key(row.key_id, &row.scope)?;
        let plain = crypto::open(
            &key,
            &record_aad(&row.id, row.version, &row.scope, row.key_id),
            &row.envelope,
        )
        .map_err(|_| Error::Tampered {
            kind: kind.to_owned(),
        })?;
        let record: R = serde_json::from_slice(&plain).map_err(|_| Error::Format {
            kind: kind.to_owned(),
        })?;
        if record.id().as_bytes() != &row.id || record.scope().to_string() != row.scope {
            return Err(Error::Tampered {
                kind: kind.to_owned(),
            });
        }
        Ok(record)
    }

    fn rows(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Row>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt
            .query_map(params, read_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// The record with this id and kind, if any.
    pub fn get<R: Record>(&self, id: Id) -> Result<Option<R>> {
        let sql = format!("SELECT {ROW_COLUMNS} FROM records WHERE id = ?1 AND kind = ?2");
        self.rows(&sql, params![id.as_bytes(), R::KIND.code()])?
            .first()
            .map(|row| self.open_row(row))
            .transpose()
    }

    /// The record with this id, or [`Error::NotFound`].
    pub fn require<R: Record>(&self, id: Id) -> Result<R> {
        self.get(id)?.ok_or(Error::NotFound {
            kind: R::KIND.code(),
        })
    }

    /// The stored version of a record, if it exists.
    pub fn version_of(&self, id: Id) -> Result<Option<u64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT version FROM records WHERE id = ?1",
                [id.as_bytes()],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .map(to_u64))
    }

    /// Every record of a kind.
    pub fn all<R: Record>(&self) -> Result<Vec<R>> {
        let sql = format!("SELECT {ROW_COLUMNS} FROM records WHERE kind = ?1");
        self.rows(&sql, [R::KIND.code()])?
            .iter()
            .map(|r| self.open_row(r))
            .collect()
    }

    /// Every record of a kind about one person, ordered by day.
    pub fn by_subject<R: Record>(&self, subject: Id) -> Result<Vec<R>> {
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM records WHERE kind = ?1 AND subject = ?2 ORDER BY day, id"
        );
        self.rows(&sql, params![R::KIND.code(), subject.as_bytes()])?
            .iter()
            .map(|r| self.open_row(r))
            .collect()
    }

    /// Records of a kind in a given state, ordered by day.
    pub fn by_state<R: Record>(&self, state: &str) -> Result<Vec<R>> {
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM records WHERE kind = ?1 AND state = ?2 ORDER BY day, id"
        );
        self.rows(&sql, params![R::KIND.code(), state])?
            .iter()
            .map(|r| self.open_row(r))
            .collect()
    }

    /// Whether a record of this kind and id exists (clear columns only, nothing decrypted).
    pub fn exists(&self, kind: RecordKind, id: Id) -> Result<bool> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM records WHERE id = ?1 AND kind = ?2")?;
        Ok(stmt.exists(params![id.as_bytes(), kind.code()])?)
    }

    /// Like [`Reader::require`] for existence only: [`Error::NotFound`] if absent.
    pub fn require_exists(&self, kind: RecordKind, id: Id) -> Result<()> {
        if self.exists(kind, id)? {
            Ok(())
        } else {
            Err(Error::NotFound { kind: kind.code() })
        }
    }

    /// Records of a kind about one person in a given state (e.g. active episodes).
    pub fn by_subject_state<R: Record>(&self, subject: Id, state: &str) -> Result<Vec<R>> {
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM records WHERE kind = ?1 AND subject = ?2 AND state = ?3
             ORDER BY day, id"
        );
        self.rows(&sql, params![R::KIND.code(), subject.as_bytes(), state])?
            .iter()
            .map(|r| self.open_row(r))
            .collect()
    }

    /// Everyone held, each with the due day of their earliest open task and the day of their
    /// latest visit. Both days come from the covering index, one seek per person. Unordered.
    pub fn caseload(&self) -> Result<Vec<CaseloadEntry>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT p.id, p.kind, p.scope, p.version, p.key_id, p.envelope,
               (SELECT MIN(t.day) FROM records t
                 WHERE t.kind = 'task' AND t.subject = p.id AND t.state = 'open'),
               (SELECT MAX(v.day) FROM records v WHERE v.kind = 'visit' AND v.subject = p.id)
             FROM records p WHERE p.kind = 'person'",
        )?;
        let day =
            |s: Option<String>| s.and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok());
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    read_row(r)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, Option<String>>(7)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(row, next, last)| {
                Ok(CaseloadEntry {
                    person: self.open_row(&row)?,
                    next_due: day(next),
                    last_visit: day(last),
                })
            })
            .collect()
    }

    /// People whose name matches `query` without regard to case or diacritics: candidates come
    /// from the blind index, then each is decrypted and confirmed.
    pub fn search_people(&self, query: &str) -> Result<Vec<Person>> {
        let words = search::words(query);
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let terms: Vec<String> = words.iter().filter_map(|w| search::query_term(w)).collect();
        let candidates: Vec<Row> = if terms.is_empty() {
            // Only one-letter words: nothing to look up, so confirm over every person.
            let sql = format!("SELECT {ROW_COLUMNS} FROM records WHERE kind = 'person'");
            self.rows(&sql, [])?
        } else {
            let index_key = self.keys.borrow().index.clone();
            let mut ids: Option<Vec<Vec<u8>>> = None;
            for term in &terms {
                let token = crypto::blind_token(&index_key, term);
                let mut stmt = self
                    .conn
                    .prepare_cached("SELECT record_id FROM blind_index WHERE token = ?1")?;
                let found: Vec<Vec<u8>> = stmt
                    .query_map([&token[..]], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                ids = Some(match ids {
                    None => found,
                    Some(prev) => prev.into_iter().filter(|id| found.contains(id)).collect(),
                });
            }
            let sql =
                format!("SELECT {ROW_COLUMNS} FROM records WHERE id = ?1 AND kind = 'person'");
            let mut rows = Vec::new();
            for id in ids.unwrap_or_default() {
                rows.extend(self.rows(&sql, [&id])?);
            }
            rows
        };
        let mut people = Vec::new();
        for row in &candidates {
            let person: Person = self.open_row(row)?;
            if search::matches(&person.full_name, query) {
                people.push(person);
            }
        }
        people.sort_by_cached_key(|p| search::fold(&p.full_name));
        Ok(people)
    }

    /// The pending outbox, oldest first.
    pub fn outbox(&self) -> Result<Vec<OutboxEntry>> {
        self.outbox_entries(OutboxFilter::All)
    }

    /// Outbox rows (clear columns only), oldest first.
    pub(crate) fn outbox_entries(&self, filter: OutboxFilter) -> Result<Vec<OutboxEntry>> {
        // One statement per filter; every value is bound (`-1` means no limit in SQLite).
        let (condition, arg): (&str, rusqlite::types::Value) = match filter {
            OutboxFilter::All => ("?1 = ?1", (-1i64).into()),
            OutboxFilter::Oldest(n) => ("?1 = ?1", i64::try_from(n).unwrap_or(i64::MAX).into()),
            OutboxFilter::Seq(seq) => ("client_seq = ?1", to_i64(seq)?.into()),
            OutboxFilter::Record(id) => ("record_id = ?1", id.as_bytes().to_vec().into()),
        };
        let limit = match filter {
            OutboxFilter::Oldest(_) => "?1",
            OutboxFilter::All | OutboxFilter::Seq(_) | OutboxFilter::Record(_) => "-1",
        };
        let sql = format!(
            "SELECT client_seq, record_id, kind, scope, op, base_version FROM outbox
             WHERE {condition} ORDER BY client_seq LIMIT {limit}"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map([arg], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut out = Vec::with_capacity(rows.len());
        for (seq, id, kind, scope, op, base) in rows {
            let record_id = id_from_blob(&id).ok_or(Error::Tampered {
                kind: "outbox".into(),
            })?;
            out.push(OutboxEntry {
                client_seq: to_u64(seq),
                record_id,
                kind,
                scope,
                op,
                base_version: to_u64(base),
            });
        }
        Ok(out)
    }

    /// The decrypted patch of one outbox mutation (a JSON object of the changed fields).
    pub fn outbox_patch(&self, client_seq: u64) -> Result<Value> {
        self.sealed_patch(PatchTable::Outbox, client_seq)
    }

    /// Opens the patch of a mutation, pending (outbox) or refused (rejected). A refused row
    /// keeps the outbox envelope unchanged, so both open with the outbox AAD.
    pub(crate) fn sealed_patch(&self, table: PatchTable, client_seq: u64) -> Result<Value> {
        let (sql, not_found) = match table {
            PatchTable::Outbox => (
                "SELECT record_id, scope, key_id, envelope, op FROM outbox WHERE client_seq = ?1",
                "outbox",
            ),
            PatchTable::Rejected => (
                "SELECT record_id, scope, key_id, envelope, op FROM rejected WHERE client_seq = ?1",
                "rejected mutation",
            ),
        };
        let (id, scope, key_id, envelope, op): (Vec<u8>, String, i64, Vec<u8>, String) = self
            .conn
            .prepare_cached(sql)?
            .query_row([to_i64(client_seq)?], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()?
            .ok_or(Error::NotFound { kind: not_found })?;
        let tampered = || Error::Tampered {
            kind: "outbox".into(),
        };
        let id = <[u8; 16]>::try_from(id.as_slice()).map_err(|_| tampered())?;
        if envelope.is_empty() {
            // Only a create may point at its record; anything else with no payload is damage.
            if op != "create" {
                return Err(tampered());
            }
            return self.record_json(&id, &scope);
        }
        let key_id = u32::try_from(key_id).map_err(|_| tampered())?;
        let key = self.data_key(key_id, &scope)?;
        let plain = crypto::open(
            &key,
            &outbox_aad(&id, client_seq, &scope, key_id),
            &envelope,
        )
        .map_err(|_| tampered())?;
        serde_json::from_slice(&plain).map_err(|_| Error::Format {
            kind: "outbox".into(),
        })
    }

    /// A stored record's JSON, whatever its kind (the payload of a pending create).
    fn record_json(&self, id: &[u8; 16], scope: &str) -> Result<Value> {
        let sql = format!("SELECT {ROW_COLUMNS} FROM records WHERE id = ?1");
        let row = self
            .rows(&sql, [&id[..]])?
            .into_iter()
            .next()
            .ok_or(Error::NotFound { kind: "record" })?;
        let kind = row.kind.clone();
        if row.scope != scope {
            return Err(Error::Tampered { kind });
        }
        let key = self.data_key(row.key_id, &row.scope)?;
        let plain = crypto::open(
            &key,
            &record_aad(&row.id, row.version, &row.scope, row.key_id),
            &row.envelope,
        )
        .map_err(|_| Error::Tampered { kind: kind.clone() })?;
        serde_json::from_slice(&plain).map_err(|_| Error::Format { kind })
    }

    /// The scopes this device holds a data key for.
    pub fn scopes(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT scope FROM scope_keys ORDER BY scope")?;
        let rows = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }
}

/// A write transaction over the store.
pub struct Writer<'a> {
    tx: rusqlite::Transaction<'a>,
    keys: &'a RefCell<Keys>,
    nonces: &'a mut crypto::NonceSource,
    created: Vec<u32>,
    next_seq: Option<u64>,
}

impl fmt::Debug for Writer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Writer")
    }
}

/// Fields that differ between two JSON objects, with their new values.
fn changed_fields(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => Value::Object(
            n.iter()
                .filter(|(k, v)| o.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        _ => new.clone(),
    }
}

impl Writer<'_> {
    /// A read view inside this transaction (sees its uncommitted changes).
    #[must_use]
    pub fn reader(&self) -> Reader<'_> {
        Reader {
            conn: &self.tx,
            keys: self.keys,
        }
    }

    /// The data key of `scope`, creating (and wrapping) one for a scope seen the first time.
    fn scope_key(&mut self, scope: &str) -> Result<(u32, SecretKey)> {
        if let Some(id) = self.keys.borrow().by_scope.get(scope).copied() {
            return Ok((id, self.reader().data_key(id, scope)?));
        }
        let existing: Option<i64> = self
            .tx
            .prepare_cached("SELECT key_id FROM scope_keys WHERE scope = ?1")?
            .query_row([scope], |r| r.get(0))
            .optional()?;
        if let Some(id) = existing {
            let id = u32::try_from(id).map_err(|_| Error::CorruptKeys)?;
            return Ok((id, self.reader().data_key(id, scope)?));
        }
        let next: i64 = self
            .tx
            .prepare_cached("SELECT COALESCE(MAX(key_id), 0) + 1 FROM scope_keys")?
            .query_row([], |r| r.get(0))?;
        let key_id = u32::try_from(next).map_err(|_| Error::Storage("too many scopes".into()))?;
        let key = SecretKey::random(self.nonces.rng()).map_err(|_| Error::CorruptKeys)?;
        let wrapped = {
            let keys = self.keys.borrow();
            crypto::seal_next(
                self.nonces,
                &keys.master,
                &scope_key_aad(scope, key_id),
                key.expose(),
            )
            .map_err(|_| Error::CorruptKeys)?
        };
        self.tx
            .prepare_cached("INSERT INTO scope_keys(key_id, scope, wrapped) VALUES (?1, ?2, ?3)")?
            .execute(params![next, scope, wrapped])?;
        let mut keys = self.keys.borrow_mut();
        keys.by_id.insert(key_id, (scope.to_owned(), key.clone()));
        keys.by_scope.insert(scope.to_owned(), key_id);
        self.created.push(key_id);
        Ok((key_id, key))
    }

    /// The next `client_seq`. Numbers are never reused: the next one is above both the highest
    /// pending mutation and the floor, the highest number ever removed from the outbox (written
    /// to `meta` in the transaction that removes mutations). A change thus writes its number
    /// only in its own outbox row, in its own transaction.
    fn next_client_seq(&mut self) -> Result<u64> {
        let seq = match self.next_seq {
            Some(seq) => seq,
            None => {
                let max: i64 = self.tx.query_row(
                    "SELECT COALESCE(MAX(client_seq), 0) FROM outbox",
                    [],
                    |r| r.get(0),
                )?;
                to_u64(max).max(self.seq_floor()?) + 1
            }
        };
        self.next_seq = Some(seq + 1);
        Ok(seq)
    }

    fn seq_floor(&self) -> Result<u64> {
        let raw = meta_get(&self.tx, "client_seq_floor")?.ok_or(Error::CorruptKeys)?;
        <[u8; 8]>::try_from(raw.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| Error::CorruptKeys)
    }

    /// Deletes outbox rows (a scope's, or one acknowledged mutation), first raising the floor
    /// past every number removed so that none is ever handed out again. The one way rows leave
    /// the outbox.
    pub(crate) fn delete_outbox(&mut self, which: OutboxRemoval) -> Result<usize> {
        let (condition, arg) = match which {
            OutboxRemoval::Key(key_id) => ("key_id = ?1", key_id),
            OutboxRemoval::Seq(seq) => ("client_seq = ?1", to_i64(seq)?),
        };
        let highest: Option<i64> = self
            .tx
            .prepare_cached(&format!(
                "SELECT MAX(client_seq) FROM outbox WHERE {condition}"
            ))?
            .query_row([arg], |r| r.get(0))?;
        let Some(highest) = highest else {
            return Ok(0);
        };
        let floor = self.seq_floor()?.max(to_u64(highest));
        meta_put(&self.tx, "client_seq_floor", &floor.to_be_bytes())?;
        Ok(self
            .tx
            .prepare_cached(&format!("DELETE FROM outbox WHERE {condition}"))?
            .execute([arg])?)
    }

    fn format_error<R: Record>() -> Error {
        Error::Format {
            kind: R::KIND.code().into(),
        }
    }

    /// Seals `plain` (the record's JSON) as version `version` of the record.
    fn seal_record<R: Record>(
        &mut self,
        record: &R,
        version: u64,
        plain: &[u8],
    ) -> Result<(u32, SecretKey, Vec<u8>)> {
        let scope = record.scope().to_string();
        let (key_id, key) = self.scope_key(&scope)?;
        let id = record.id();
        let aad = record_aad(id.as_bytes(), version, &scope, key_id);
        let envelope =
            crypto::seal_next(self.nonces, &key, &aad, plain).map_err(|_| Error::CorruptKeys)?;
        Ok((key_id, key, envelope))
    }

    /// Queues a mutation whose patch (JSON bytes) is sealed like a record.
    fn push_outbox<R: Record>(
        &mut self,
        record: &R,
        op: &str,
        base_version: u64,
        (key_id, key): (u32, &SecretKey),
        patch: Option<&[u8]>,
    ) -> Result<u64> {
        let seq = self.next_client_seq()?;
        let scope = record.scope().to_string();
        let id = record.id();
        let aad = outbox_aad(id.as_bytes(), seq, &scope, key_id);
        // A create's payload is the record itself: an empty envelope says "read the record"
        // rather than sealing the same bytes a second time (module docs, "Outbox").
        let envelope = match patch {
            Some(patch) => {
                crypto::seal_next(self.nonces, key, &aad, patch).map_err(|_| Error::CorruptKeys)?
            }
            None => Vec::new(),
        };
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO outbox(client_seq, record_id, kind, scope, op, base_version, key_id, envelope, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        stmt.execute(params![
            to_i64(seq)?,
            record.id().as_bytes(),
            R::KIND.code(),
            scope,
            op,
            to_i64(base_version)?,
            i64::from(key_id),
            envelope,
            now_secs()
        ])?;
        Ok(seq)
    }

    /// Seals a mutation payload with the outbox associated data (also used for refused rows).
    pub(crate) fn seal_outbox_payload(
        &mut self,
        id: &[u8; 16],
        client_seq: u64,
        scope: &str,
        key_id: u32,
        plain: &[u8],
    ) -> Result<Vec<u8>> {
        let key = self.reader().data_key(key_id, scope)?;
        crypto::seal_next(
            self.nonces,
            &key,
            &outbox_aad(id, client_seq, scope, key_id),
            plain,
        )
        .map_err(|_| Error::CorruptKeys)
    }

    /// Writes a person's blind-index entries, first removing the old ones unless the record
    /// is `new` (a record just inserted has none: they go with a deleted record).
    fn index_person(&mut self, person: &Person, new: bool) -> Result<()> {
        let id = person.id;
        if !new {
            self.tx
                .prepare_cached("DELETE FROM blind_index WHERE record_id = ?1")?
                .execute([id.as_bytes()])?;
        }
        let index_key = self.keys.borrow().index.clone();
        let mut stmt = self.tx.prepare_cached(
            "INSERT OR IGNORE INTO blind_index(token, record_id) VALUES (?1, ?2)",
        )?;
        for token in crypto::blind_tokens(&index_key, search::index_terms(&person.full_name)) {
            stmt.execute(params![&token[..], id.as_bytes()])?;
        }
        Ok(())
    }

    /// Keeps the blind index in step with a person's sealed JSON; `new` as for
    /// [`Writer::index_person`].
    fn after_write<R: Record>(&mut self, plain: &[u8], new: bool) -> Result<()> {
        if R::KIND == RecordKind::Person {
            let person: Person =
                serde_json::from_slice(plain).map_err(|_| Self::format_error::<R>())?;
            self.index_person(&person, new)?;
        }
        Ok(())
    }

    /// Validates and inserts a new record, with its `create` mutation in the outbox
    /// (`base_version` 0: the server has never confirmed it; `server_version` starts at 0).
    /// Returns the mutation's `client_seq`.
    pub fn insert<R: Record>(&mut self, record: &R, ctx: &ValidationContext) -> Result<u64> {
        record.validate(ctx)?;
        let plain = serde_json::to_vec(record).map_err(|_| Self::format_error::<R>())?;
        let (key_id, key, envelope) = self.seal_record(record, 1, &plain)?;
        let inserted = self
            .tx
            .prepare_cached(
                "INSERT INTO records(id, kind, scope, subject, day, state, version, key_id, envelope)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8)",
            )?
            .execute(params![
                record.id().as_bytes(),
                R::KIND.code(),
                record.scope().to_string(),
                record.subject().map(|s| *s.as_bytes()),
                record.day().map(|d| d.to_string()),
                record.state(),
                i64::from(key_id),
                envelope,
            ]);
        match inserted {
            Err(rusqlite::Error::SqliteFailure(f, _))
                if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
            {
                return Err(Error::AlreadyExists {
                    kind: R::KIND.code(),
                });
            }
            other => other?,
        };
        self.after_write::<R>(&plain, true)?;
        // A create's patch is the whole record, read from the record when it is pushed.
        self.push_outbox(record, "create", 0, (key_id, &key), None)
    }

    /// Validates and replaces an existing record (local version + 1), with an `update` mutation
    /// carrying only the changed fields and, as `base_version`, the record's server version
    /// (0 if the server has never confirmed it). A record cannot change kind or scope.
    pub fn update<R: Record>(&mut self, record: &R, ctx: &ValidationContext) -> Result<u64> {
        record.validate(ctx)?;
        let old: R = self.reader().require(record.id())?;
        if old.scope() != record.scope() {
            return Err(Error::Invalid(crate::domain::DomainError::MismatchedScope));
        }
        // `version` counts local writes (bound in the AAD); the mutation names the version the
        // server last confirmed, which is what its three-way merge compares against.
        let local = self.reader().version_of(record.id())?.unwrap_or(0);
        let base = self.reader().server_version_of(record.id())?.unwrap_or(0);
        let old_json = serde_json::to_value(&old).map_err(|_| Self::format_error::<R>())?;
        let new_json = serde_json::to_value(record).map_err(|_| Self::format_error::<R>())?;
        let plain = serde_json::to_vec(&new_json).map_err(|_| Self::format_error::<R>())?;
        let patch = serde_json::to_vec(&changed_fields(&old_json, &new_json))
            .map_err(|_| Self::format_error::<R>())?;
        let (key_id, key, envelope) = self.seal_record(record, local + 1, &plain)?;
        self.tx
            .prepare_cached(
                "UPDATE records SET subject = ?2, day = ?3, state = ?4, version = ?5, key_id = ?6,
                 envelope = ?7 WHERE id = ?1",
            )?
            .execute(params![
                record.id().as_bytes(),
                record.subject().map(|s| *s.as_bytes()),
                record.day().map(|d| d.to_string()),
                record.state(),
                to_i64(local + 1)?,
                i64::from(key_id),
                envelope,
            ])?;
        self.after_write::<R>(&plain, false)?;
        self.push_outbox(record, "update", base, (key_id, &key), Some(&patch))
    }

    /// Removes everything of a scope: its records, their index entries, its outbox mutations,
    /// its refused mutations and its data key, in this transaction. Sync calls this only after the scope's outbox has
    /// been pushed. Returns the number of records removed.
    pub fn purge_scope(&mut self, scope: &Scope) -> Result<usize> {
        let scope = scope.to_string();
        let key_id: Option<i64> = self
            .tx
            .query_row(
                "SELECT key_id FROM scope_keys WHERE scope = ?1",
                [&scope],
                |r| r.get(0),
            )
            .optional()?;
        let Some(key_id) = key_id else {
            return Ok(0);
        };
        // Index entries go with their records (ON DELETE CASCADE); rows are found by key id.
        let n = self
            .tx
            .execute("DELETE FROM records WHERE key_id = ?1", [key_id])?;
        self.delete_outbox(OutboxRemoval::Key(key_id))?;
        // Refused mutations hold the scope's sealed patches (and their clear columns) too.
        self.tx
            .execute("DELETE FROM rejected WHERE key_id = ?1", [key_id])?;
        self.tx
            .execute("DELETE FROM scope_keys WHERE key_id = ?1", [key_id])?;
        let mut keys = self.keys.borrow_mut();
        if let Some(id) = keys.by_scope.remove(&scope) {
            keys.by_id.remove(&id);
        }
        Ok(n)
    }
}

/// Associated-data id of the sealed device credentials in `meta`.
const CREDENTIALS_ID: [u8; 16] = *b"credentials-v1\0\0";
/// Associated-data id of the sealed staff directory in `meta`.
const DIRECTORY_ID: [u8; 16] = *b"directory-v1\0\0\0\0";

impl Reader<'_> {
    /// The device's sync credentials (sealed under the master key), if it is enrolled.
    pub fn credentials(&self) -> Result<Option<Vec<u8>>> {
        let Some(sealed) = meta_get(self.conn, "credentials")? else {
            return Ok(None);
        };
        let keys = self.keys.borrow();
        crypto::open(&keys.master, &meta_aad(&CREDENTIALS_ID), &sealed)
            .map(Some)
            .map_err(|_| Error::CorruptKeys)
    }
}

impl Reader<'_> {
    /// The staff directory last downloaded (sealed: it holds colleagues' names), if any.
    pub fn directory(&self) -> Result<Option<Vec<u8>>> {
        let Some(sealed) = meta_get(self.conn, "directory")? else {
            return Ok(None);
        };
        let keys = self.keys.borrow();
        crypto::open(&keys.master, &meta_aad(&DIRECTORY_ID), &sealed)
            .map(Some)
            .map_err(|_| Error::CorruptKeys)
    }
}

impl Writer<'_> {
    /// Stores the staff directory, sealed under the master key.
    pub fn put_directory(&mut self, plain: &[u8]) -> Result<()> {
        let sealed = {
            let keys = self.keys.borrow();
            crypto::seal_next(self.nonces, &keys.master, &meta_aad(&DIRECTORY_ID), plain)
                .map_err(|_| Error::CorruptKeys)?
        };
        meta_put(&self.tx, "directory", &sealed)
    }

    /// Stores the device's sync credentials, sealed under the master key: a copied database
    /// without the PIN and the platform key cannot sync as this device.
    pub fn put_credentials(&mut self, plain: &[u8]) -> Result<()> {
        let sealed = {
            let keys = self.keys.borrow();
            crypto::seal_next(self.nonces, &keys.master, &meta_aad(&CREDENTIALS_ID), plain)
                .map_err(|_| Error::CorruptKeys)?
        };
        meta_put(&self.tx, "credentials", &sealed)
    }

    /// The remote wipe (a revoked device): every scope is purged, then the credentials, the
    /// wrapped master key and the canary are deleted. What is left can never be decrypted, and
    /// opening the store says so ([`Error::Wiped`]).
    pub fn wipe(&mut self) -> Result<usize> {
        let scopes = self.reader().scopes()?;
        let mut removed = 0;
        for scope in scopes {
            let scope: Scope = scope.parse().map_err(|_| Error::CorruptKeys)?;
            removed += self.purge_scope(&scope)?;
        }
        self.tx.execute(
            "DELETE FROM meta WHERE k IN ('credentials', 'directory', 'master_wrapped', 'canary', 'device_secret_wrapped')",
            [],
        )?;
        meta_put(&self.tx, "wiped", b"1")?;
        Ok(removed)
    }
}
