//! The one FFI error: what an app acts on (STYLE.md point 3).
//!
//! Every core error is mapped here, in one place. No variant carries personal data: the core's
//! messages name record kinds and fields, never values, and this layer adds only the name of
//! the argument that could not be parsed. The foreign `KeyStore` and `SyncListener` answer with
//! this same type; anything else they throw arrives as [`DonghanhError::KeyStoreUnavailable`]
//! (see the `From<UnexpectedUniFFICallbackError>` below), never as a crash.

use donghanh_core::domain::DomainError;
use donghanh_core::{Error as CoreError, KeyStoreError};

/// Everything that can go wrong, as Kotlin (`DonghanhException`), Swift and Python see it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum DonghanhError {
    /// An argument is malformed (id, date, time) or breaks a domain rule (blank, too long, in
    /// the future…). `reason` names the argument or field, never its value. Nothing was written.
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// Which argument or field, and what is expected.
        reason: String,
    },
    /// A status change the record's state machine does not allow (an episode completed
    /// twice, a cancelled session held, a declined referral accepted). Nothing was written.
    #[error("the status cannot change from {from_status} to {to_status}")]
    InvalidTransition {
        /// The current status code.
        from_status: String,
        /// The status code asked for.
        to_status: String,
    },
    /// The enrolled user's role may not do this (conflicts are a supervisor's). Nothing was
    /// changed.
    #[error("not allowed: {reason}")]
    Forbidden {
        /// What is not allowed (never a value).
        reason: String,
    },
    /// The PIN does not unlock this store.
    #[error("wrong PIN")]
    WrongPin,
    /// The new PIN is too short or too long.
    #[error("the PIN must have between {min} and {max} characters")]
    WeakPin {
        /// Minimum length.
        min: u32,
        /// Maximum length.
        max: u32,
    },
    /// No store in this directory yet: create or enrol first.
    #[error("no device store in this directory")]
    NoStore,
    /// No record of this kind with this id on the device.
    #[error("no {kind} with this id")]
    NotFound {
        /// The record kind code (`person`, `session`…).
        kind: String,
    },
    /// The record (or the device store) already exists.
    #[error("a {kind} with this id already exists")]
    AlreadyExists {
        /// The record kind code, or `store`.
        kind: String,
    },
    /// The device is not enrolled with a server.
    #[error("this device is not enrolled with a server")]
    NotEnrolled,
    /// No colleague with this username in the directory the last sync brought.
    #[error("no user with this username in this device's directory")]
    UnknownUser,
    /// The server could not be reached (retry later; nothing was lost).
    #[error("network: {reason}")]
    Network {
        /// What failed (never a record).
        reason: String,
    },
    /// The server refused (bad login, lockout, protocol…); `code` is its stable code.
    #[error("the server refused: {code}: {detail}")]
    Server {
        /// The server's stable error code.
        code: String,
        /// The server's message (value-free by protocol). Not `message`: that name is taken
        /// by the exception classes of Kotlin and Swift.
        detail: String,
    },
    /// The server revoked this device: its data has just been wiped.
    #[error("this device was revoked; its data has been wiped")]
    Revoked,
    /// The device was wiped earlier (revoked): enrol again.
    #[error("this device was wiped; enrol it again")]
    Wiped,
    /// The key lease ran out (no sync for too long): the data has just been wiped.
    #[error("the key lease ran out; the data has been wiped, enrol again")]
    LeaseExpired,
    /// The platform key does not exist (deleted, or another device).
    #[error("the device key is missing")]
    KeyMissing,
    /// The platform key refused to unwrap the device secret.
    #[error("the device key does not match this store")]
    KeyRejected,
    /// The platform key store failed or threw.
    #[error("the device key store is unavailable: {reason}")]
    KeyStoreUnavailable {
        /// What failed (never key material).
        reason: String,
    },
    /// The device's storage is full; nothing was saved.
    #[error("the device storage is full; nothing was saved")]
    DiskFull,
    /// Another process holds the store.
    #[error("the device store is busy")]
    Busy,
    /// Any other storage failure.
    #[error("storage error: {reason}")]
    Storage {
        /// What failed (SQL text and OS errors never contain values).
        reason: String,
    },
    /// The store or a record in it is damaged (a damaged file is moved aside, never deleted),
    /// or the server sent something this device refuses to store.
    #[error("damaged data: {reason}")]
    Corrupt {
        /// What is damaged (kinds and locations, never values).
        reason: String,
    },
    /// The store was written by a newer version of the app.
    #[error("the device store was written by a newer version of the app")]
    NewerVersion,
    /// The device was locked (`lock()`): open it again with the PIN.
    #[error("the device is locked")]
    Locked,
}

/// The type every exported call returns.
pub type Result<T, E = DonghanhError> = std::result::Result<T, E>;

impl DonghanhError {
    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        DonghanhError::InvalidInput {
            reason: reason.into(),
        }
    }
}

impl From<CoreError> for DonghanhError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::NoStore(_) => DonghanhError::NoStore,
            CoreError::AlreadyInitialised(_) => DonghanhError::AlreadyExists {
                kind: "store".into(),
            },
            CoreError::WrongPin => DonghanhError::WrongPin,
            CoreError::WeakPin { min, max } => DonghanhError::WeakPin {
                min: u32::try_from(min).unwrap_or(u32::MAX),
                max: u32::try_from(max).unwrap_or(u32::MAX),
            },
            CoreError::KeyStore(k) => k.into(),
            CoreError::Wiped => DonghanhError::Wiped,
            CoreError::DeviceRevoked => DonghanhError::Revoked,
            CoreError::LeaseExpired => DonghanhError::LeaseExpired,
            CoreError::UnknownUser => DonghanhError::UnknownUser,
            CoreError::NotEnrolled => DonghanhError::NotEnrolled,
            e @ CoreError::SupervisorOnly => DonghanhError::Forbidden {
                reason: e.to_string(),
            },
            CoreError::Network(reason) => DonghanhError::Network { reason },
            CoreError::Server { code, message } => DonghanhError::Server {
                code,
                detail: message,
            },
            e @ (CoreError::CorruptStore { .. }
            | CoreError::CorruptKeys
            | CoreError::Tampered { .. }
            | CoreError::Format { .. }
            | CoreError::RemoteRecord { .. }) => DonghanhError::Corrupt {
                reason: e.to_string(),
            },
            CoreError::NotFound { kind } => DonghanhError::NotFound { kind: kind.into() },
            CoreError::AlreadyExists { kind } => DonghanhError::AlreadyExists { kind: kind.into() },
            CoreError::Invalid(DomainError::InvalidTransition { from, to }) => {
                DonghanhError::InvalidTransition {
                    from_status: from.into(),
                    to_status: to.into(),
                }
            }
            CoreError::Invalid(d) => DonghanhError::invalid(d.to_string()),
            CoreError::Report(r) => DonghanhError::invalid(r.to_string()),
            CoreError::NewerSchema { .. } => DonghanhError::NewerVersion,
            CoreError::DiskFull => DonghanhError::DiskFull,
            CoreError::Busy => DonghanhError::Busy,
            CoreError::Storage(reason) => DonghanhError::Storage { reason },
            CoreError::Io(e) => DonghanhError::Storage {
                reason: e.kind().to_string(),
            },
        }
    }
}

impl From<KeyStoreError> for DonghanhError {
    fn from(e: KeyStoreError) -> Self {
        match e {
            KeyStoreError::KeyMissing => DonghanhError::KeyMissing,
            KeyStoreError::Rejected => DonghanhError::KeyRejected,
            KeyStoreError::Unavailable(reason) => DonghanhError::KeyStoreUnavailable { reason },
        }
    }
}

/// What the core's key store contract understands of a foreign key store's answer.
impl From<DonghanhError> for KeyStoreError {
    fn from(e: DonghanhError) -> Self {
        match e {
            DonghanhError::KeyMissing => KeyStoreError::KeyMissing,
            DonghanhError::KeyRejected => KeyStoreError::Rejected,
            DonghanhError::KeyStoreUnavailable { reason } => KeyStoreError::Unavailable(reason),
            _ => KeyStoreError::Unavailable("the platform key store failed".into()),
        }
    }
}

/// A foreign callback threw something other than a `DonghanhError`. Its text is dropped: a
/// foreign exception may quote anything, and this error may be logged.
impl From<uniffi::UnexpectedUniFFICallbackError> for DonghanhError {
    fn from(_: uniffi::UnexpectedUniFFICallbackError) -> Self {
        DonghanhError::KeyStoreUnavailable {
            reason: "the platform key store threw an unexpected error".into(),
        }
    }
}
