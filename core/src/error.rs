//! The core's error type: what a caller (CLI, FFI, app) acts on.
//!
//! No variant carries personal data: messages name record kinds, fields and file locations,
//! never names, ID numbers, phone numbers, addresses or notes. rusqlite errors are mapped here,
//! in one place, so that a full disk or a damaged file becomes a typed error.

use std::path::PathBuf;

use crate::domain::DomainError;
use crate::keystore::KeyStoreError;

/// The result type of the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No store exists at this location yet.
    #[error("no device store at {0}; initialise it first")]
    NoStore(PathBuf),
    /// A store already exists; initialising again would orphan its data.
    #[error("a device store already exists at {0}")]
    AlreadyInitialised(PathBuf),
    /// The PIN does not unlock this store.
    #[error("wrong PIN")]
    WrongPin,
    /// The PIN chosen is too weak.
    #[error("the PIN must have between {min} and {max} characters")]
    WeakPin {
        /// Minimum length.
        min: usize,
        /// Maximum length.
        max: usize,
    },
    /// The platform key store failed (key missing, rejected, unavailable).
    #[error("device key: {0}")]
    KeyStore(#[from] KeyStoreError),
    /// The device was revoked and its data wiped; enrol it again to use it.
    #[error("this device was revoked and its data was wiped; enrol it again")]
    Wiped,
    /// The device was revoked by the server: its data has just been wiped.
    #[error("this device was revoked by the server; its data has been wiped")]
    DeviceRevoked,
    /// The device was not synced within its key lease: its data has just been wiped.
    #[error(
        "this device was not synced for too long (its key lease ran out); its data has been wiped, enrol it again"
    )]
    LeaseExpired,
    /// No colleague with this username in the directory the last sync brought.
    #[error(
        "no user with this username in this device's directory; sync first, or the user is not in your commune"
    )]
    UnknownUser,
    /// The device is not enrolled with a server.
    #[error("this device is not enrolled with a server")]
    NotEnrolled,
    /// The server refused because the enrolled user's role may not do this: conflicts are
    /// listed and resolved by a supervisor.
    #[error("only a supervisor may list and resolve conflicts")]
    SupervisorOnly,
    /// The server could not be reached or answered outside the protocol.
    #[error("network: {0}")]
    Network(String),
    /// The server refused the request.
    #[error("the server refused: {code}: {message}")]
    Server {
        /// The error code.
        code: String,
        /// The server's message (never personal data, by protocol).
        message: String,
    },
    /// The file could not be read as a database; it was moved aside, not deleted.
    #[error(
        "the device store is damaged; it was moved aside to {moved_to} (re-enroll to download the data again)"
    )]
    CorruptStore {
        /// Where the damaged file now is.
        moved_to: PathBuf,
    },
    /// The key material inside the store is damaged (the PIN was right).
    #[error("the keys in the device store are damaged")]
    CorruptKeys,
    /// A stored ciphertext failed authentication: tampered with, damaged or moved.
    #[error("a stored {kind} record failed authentication (damaged or tampered with)")]
    Tampered {
        /// The record kind code.
        kind: String,
    },
    /// A record that authenticated could not be decoded by this version.
    #[error("a stored {kind} record has a format this version cannot read")]
    Format {
        /// The record kind code.
        kind: String,
    },
    /// No record of this kind has this id (or it is of another kind).
    #[error("no {kind} with this id")]
    NotFound {
        /// The record kind code.
        kind: &'static str,
    },
    /// A record with this id already exists.
    #[error("a {kind} with this id already exists")]
    AlreadyExists {
        /// The record kind code.
        kind: &'static str,
    },
    /// The record breaks a domain rule.
    #[error("invalid input: {0}")]
    Invalid(#[from] DomainError),
    /// A report could not be computed (unknown template, bad period, not a supervisor).
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    /// The server sent a record this device refuses to store; the page it came in changed
    /// nothing (its cursor was not advanced either).
    #[error("the server sent a {kind} record that {problem}; the page was not applied")]
    RemoteRecord {
        /// The record kind code the change named (kind codes are not personal data).
        kind: String,
        /// What is wrong with it.
        problem: RemoteProblem,
    },
    /// The store was written by a newer version of the app.
    #[error(
        "the device store was written by a newer version (schema {found}; this version knows up to {known})"
    )]
    NewerSchema {
        /// Schema version found.
        found: usize,
        /// Latest schema this build knows.
        known: usize,
    },
    /// The device's storage is full; nothing was written.
    #[error("the device storage is full; nothing was saved")]
    DiskFull,
    /// Another process holds the store.
    #[error("the device store is busy (another process is using it)")]
    Busy,
    /// Any other storage failure. SQL text never contains values: every value is bound.
    #[error("storage error: {0}")]
    Storage(String),
    /// A file-system failure around the store.
    #[error("file error: {0}")]
    Io(std::io::Error),
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        // A full disk is the same condition whether SQLite or a plain file met it.
        if e.kind() == std::io::ErrorKind::StorageFull {
            return Error::DiskFull;
        }
        Error::Io(e)
    }
}

/// What is wrong with a record received from the server. Never quotes a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteProblem {
    /// The kind code is not one this version knows.
    #[error("has a kind this version does not know")]
    UnknownKind,
    /// An upsert without the record.
    #[error("has no content")]
    Missing,
    /// The JSON is not a record of its kind.
    #[error("cannot be decoded as its kind")]
    Malformed,
    /// The record's id, kind or scope differs from its change, or from the stored record.
    #[error("does not match its change or the stored record (id, kind or scope)")]
    Mismatch,
    /// The record breaks a domain rule (its message names fields only).
    #[error("breaks a domain rule: {0}")]
    Invalid(DomainError),
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        if let rusqlite::Error::SqliteFailure(f, _) = &e {
            match f.code {
                ErrorCode::DiskFull => return Error::DiskFull,
                // Opening a WAL database must grow its shared-memory index file; on a full
                // disk that fails with SQLITE_IOERR_SHMSIZE ("disk I/O error"), which says
                // nothing useful to the user: it is the same full disk, and nothing was written.
                ErrorCode::SystemIoFailure
                    if f.extended_code == rusqlite::ffi::SQLITE_IOERR_SHMSIZE =>
                {
                    return Error::DiskFull;
                }
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => return Error::Busy,
                _ => {}
            }
        }
        Error::Storage(e.to_string())
    }
}

impl From<rusqlite_migration::Error> for Error {
    fn from(e: rusqlite_migration::Error) -> Self {
        match e {
            rusqlite_migration::Error::RusqliteError { err, .. } => err.into(),
            other => Error::Storage(format!("migration: {other}")),
        }
    }
}
