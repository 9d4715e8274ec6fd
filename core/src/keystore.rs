//! The platform secret: where a device keeps the key that only it holds.
//!
//! Phones implement [`KeyStore`] over the Android Keystore or the iOS Keychain (through the
//! foreign trait in `bindings/`): the platform key never leaves the secure hardware, it only
//! wraps and unwraps the device secret that the core generates. The headless CLI uses
//! [`FileKeyStore`], a 256-bit key in a file readable only by its owner.
//!
//! A missing platform key is an error, never a reason to make a new one: a new key would
//! silently orphan every record on the device (DESIGN.md §4).

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ring::rand::SystemRandom;

use crate::crypto::{self, Aad, SecretKey};

/// Why the platform key store could not do its job. No variant carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyStoreError {
    /// The platform key does not exist (deleted, never created, or a different device).
    #[error("the device key is missing")]
    KeyMissing,
    /// The platform refused to unwrap: the wrapped secret was not made by this key.
    #[error("the device key does not match this store")]
    Rejected,
    /// The platform key store cannot be used right now (locked, I/O, permissions).
    #[error("the device key store is unavailable: {0}")]
    Unavailable(String),
}

/// The platform secret holder: wraps and unwraps the device secret.
pub trait KeyStore: Send + Sync {
    /// Encrypts `secret` under the platform key, creating that key if this is a new store.
    fn wrap(&self, secret: &[u8]) -> Result<Vec<u8>, KeyStoreError>;
    /// Decrypts what [`KeyStore::wrap`] returned. Must fail, not invent, when the key is gone.
    fn unwrap(&self, wrapped: &[u8]) -> Result<Vec<u8>, KeyStoreError>;
}

/// A key store kept in one owner-only file: the CLI's stand-in for Keystore/Keychain.
pub struct FileKeyStore {
    path: PathBuf,
    key: Option<SecretKey>,
}

impl fmt::Debug for FileKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileKeyStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

const WRAP_ID: [u8; 16] = *b"device-secret-v1";

impl FileKeyStore {
    /// Creates the key file. Fails if it already exists: an existing key is never replaced.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self, KeyStoreError> {
        let path = path.into();
        let key = SecretKey::random(&SystemRandom::new())
            .map_err(|_| KeyStoreError::Unavailable("random generator failed".into()))?;
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts.open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                KeyStoreError::Unavailable("a device key file already exists".into())
            }
            _ => KeyStoreError::Unavailable(format!("cannot create the device key file: {e}")),
        })?;
        file.write_all(key.expose())
            .and_then(|()| file.sync_all())
            .map_err(|e| KeyStoreError::Unavailable(format!("cannot write the device key: {e}")))?;
        Ok(Self {
            path,
            key: Some(key),
        })
    }

    /// Opens an existing key file. A missing file is [`KeyStoreError::KeyMissing`].
    pub fn open(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let key = fs::read(&path)
            .ok()
            .and_then(|b| SecretKey::from_slice(&b).ok());
        Self { path, key }
    }

    /// The key file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn aad(&self) -> Aad<'static> {
        Aad {
            table: "keystore",
            record_id: &WRAP_ID,
            record_version: 1,
            schema_version: 1,
            scope: "device",
            key_id: 0,
        }
    }

    fn key(&self) -> Result<&SecretKey, KeyStoreError> {
        if let Some(k) = &self.key {
            return Ok(k);
        }
        if self.path.exists() {
            Err(KeyStoreError::Unavailable(
                "the device key file is unreadable or damaged".into(),
            ))
        } else {
            Err(KeyStoreError::KeyMissing)
        }
    }
}

impl KeyStore for FileKeyStore {
    fn wrap(&self, secret: &[u8]) -> Result<Vec<u8>, KeyStoreError> {
        crypto::seal(&SystemRandom::new(), self.key()?, &self.aad(), secret)
            .map_err(|_| KeyStoreError::Unavailable("cannot seal the device secret".into()))
    }

    fn unwrap(&self, wrapped: &[u8]) -> Result<Vec<u8>, KeyStoreError> {
        crypto::open(self.key()?, &self.aad(), wrapped).map_err(|_| KeyStoreError::Rejected)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_owner_only_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.key");
        let ks = FileKeyStore::create(&path).unwrap();
        let wrapped = ks.wrap(b"s3cret").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(FileKeyStore::create(&path).is_err());
        assert_eq!(
            FileKeyStore::open(&path).unwrap(&wrapped).unwrap(),
            b"s3cret"
        );
    }

    #[test]
    fn missing_key_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.key");
        let wrapped = FileKeyStore::create(&path).unwrap().wrap(b"x").unwrap();
        fs::remove_file(&path).unwrap();
        let ks = FileKeyStore::open(&path);
        assert_eq!(ks.unwrap(&wrapped), Err(KeyStoreError::KeyMissing));
        assert!(!path.exists(), "opening must not create a key");
        let other = FileKeyStore::create(&path).unwrap();
        assert_eq!(other.unwrap(&wrapped), Err(KeyStoreError::Rejected));
    }
}
