//! The two foreign traits: the app's platform key store and its sync listener.
//!
//! Both answer with the one [`DonghanhError`]. Whatever else a foreign implementation throws
//! reaches Rust as an unexpected callback error, which becomes a typed error (never a panic):
//! for the key store, `KeyStoreUnavailable`, so the open fails cleanly and nothing is written;
//! for the listener, the notice is dropped and the sync round goes on.

use std::sync::Arc;

use donghanh_core::KeyStoreError;
use donghanh_core::sync::client as core_sync;

use crate::error::DonghanhError;
use crate::types::{SyncPhase, SyncReport};

/// The platform secret holder (Android Keystore, iOS Keychain): wraps and unwraps the device
/// secret the core generates. The platform key never leaves it.
///
/// `wrap` is called once, when a store is created (create the platform key then, if needed);
/// `unwrap` at every open. A missing key must throw `KeyMissing`, never make a new key: a new
/// key silently orphans every record on the device. Throw `KeyRejected` when the platform key
/// refuses the blob, `KeyStoreUnavailable` when the key store cannot be used right now.
#[uniffi::export(with_foreign)]
pub trait KeyStore: Send + Sync {
    /// Encrypts `secret` under the platform key.
    fn wrap(&self, secret: Vec<u8>) -> Result<Vec<u8>, DonghanhError>;
    /// Decrypts what `wrap` returned.
    fn unwrap(&self, wrapped: Vec<u8>) -> Result<Vec<u8>, DonghanhError>;
}

/// The core's view of a foreign key store.
pub(crate) struct ForeignKeyStore(pub(crate) Arc<dyn KeyStore>);

impl donghanh_core::KeyStore for ForeignKeyStore {
    fn wrap(&self, secret: &[u8]) -> Result<Vec<u8>, KeyStoreError> {
        self.0.wrap(secret.to_vec()).map_err(KeyStoreError::from)
    }

    fn unwrap(&self, wrapped: &[u8]) -> Result<Vec<u8>, KeyStoreError> {
        self.0.unwrap(wrapped.to_vec()).map_err(KeyStoreError::from)
    }
}

/// What a running sync round tells the app. Called on the syncing thread (the app's worker
/// thread), between steps. Nothing passed carries personal data: counts, scope kinds, codes.
/// An exception thrown here is ignored: a listener cannot break a sync round.
#[uniffi::export(with_foreign)]
pub trait SyncListener: Send + Sync {
    /// The round moved on: the phase and the counts so far.
    fn progress(&self, phase: SyncPhase, report: SyncReport) -> Result<(), DonghanhError>;
    /// The server refused one local change (kept in `rejected()` for the user).
    fn rejected(&self, client_seq: u64, code: String) -> Result<(), DonghanhError>;
    /// A scope (`person`, `point`, `team`, `user`) was removed from this device: a case was
    /// reassigned away, for example. Tell the user.
    fn scope_removed(&self, scope_kind: String) -> Result<(), DonghanhError>;
    /// The device was revoked and its data wiped.
    fn wiped(&self) -> Result<(), DonghanhError>;
}

/// The core's view of a foreign listener.
pub(crate) struct ForeignListener(pub(crate) Arc<dyn SyncListener>);

impl core_sync::SyncListener for ForeignListener {
    fn progress(&self, phase: core_sync::SyncPhase, report: &core_sync::SyncReport) {
        let _ = self.0.progress(phase.into(), report.into());
    }

    fn rejected(&self, client_seq: u64, code: &str) {
        let _ = self.0.rejected(client_seq, code.to_owned());
    }

    fn scope_removed(&self, scope_kind: &str) {
        let _ = self.0.scope_removed(scope_kind.to_owned());
    }

    fn wiped(&self) {
        let _ = self.0.wiped();
    }
}
