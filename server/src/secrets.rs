//! The server's own keys: identity and narrative fields are encrypted at rest (DESIGN.md §5).
//!
//! One 256-bit root key lives in `DIR/server.key`, readable only by its owner, created with a
//! new data directory and never silently replaced: a database whose key is missing refuses to
//! start. From it, HKDF derives a sealing key (AES-256-GCM, fresh random nonce, associated data
//! binding table and row id) and a lookup key (HMAC-SHA256, for equality lookups such as a
//! username, which is often a person's name and so is never stored in clear).
//!
//! This is not the device's crypto (the server does not link it); it is a few lines over `ring`
//! with the same discipline. Rotation (several key ids) comes with the key-management work of
//! issue 3; the envelope already carries a key id for it.

use std::fmt;
use std::io::Write;
use std::path::Path;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{hkdf, hmac};

/// Envelope format byte.
const FORMAT: u8 = 1;
/// Key id of the only key so far.
const KEY_ID: u8 = 1;

/// Why the server's keys or a sealed value could not be used. No variant carries data.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The key file is missing while the database exists.
    #[error("the server key file is missing; restore it from backup (it is never regenerated)")]
    KeyMissing,
    /// The key file exists but cannot be used.
    #[error("the server key file is unreadable or damaged")]
    KeyDamaged,
    /// Creating the key file failed.
    #[error("cannot create the server key file: {0}")]
    Create(std::io::Error),
    /// A sealed value failed authentication (tampered, moved, or another key).
    #[error("a sealed value failed authentication")]
    Authentication,
    /// The random generator failed.
    #[error("random generator failed")]
    Random,
}

/// The server's derived keys.
pub struct ServerKeys {
    seal: LessSafeKey,
    lookup: hmac::Key,
    rng: SystemRandom,
}

impl fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerKeys(…)")
    }
}

struct Len32;
impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

fn derive(root: &[u8], info: &[u8]) -> Result<[u8; 32], SecretError> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"donghanh-server/v1").extract(root);
    let mut out = [0u8; 32];
    let info = [info];
    prk.expand(&info, Len32)
        .and_then(|okm| okm.fill(&mut out))
        .map_err(|_| SecretError::KeyDamaged)?;
    Ok(out)
}

impl ServerKeys {
    /// Creates the key file (which must not exist) and returns its keys.
    pub fn create(path: &Path) -> Result<ServerKeys, SecretError> {
        let rng = SystemRandom::new();
        let mut root = [0u8; 32];
        rng.fill(&mut root).map_err(|_| SecretError::Random)?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts.open(path).map_err(SecretError::Create)?;
        file.write_all(&root)
            .and_then(|()| file.sync_all())
            .map_err(SecretError::Create)?;
        Self::from_root(&root)
    }

    /// Loads the key file.
    pub fn load(path: &Path) -> Result<ServerKeys, SecretError> {
        let root = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SecretError::KeyMissing);
            }
            Err(_) => return Err(SecretError::KeyDamaged),
        };
        if root.len() != 32 {
            return Err(SecretError::KeyDamaged);
        }
        Self::from_root(&root)
    }

    fn from_root(root: &[u8]) -> Result<ServerKeys, SecretError> {
        let seal = UnboundKey::new(&AES_256_GCM, &derive(root, b"seal")?)
            .map_err(|_| SecretError::KeyDamaged)?;
        Ok(ServerKeys {
            seal: LessSafeKey::new(seal),
            lookup: hmac::Key::new(hmac::HMAC_SHA256, &derive(root, b"lookup")?),
            rng: SystemRandom::new(),
        })
    }

    fn aad(table: &str, id: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(table.len() + id.len() + 3);
        aad.push(FORMAT);
        aad.push(KEY_ID);
        aad.extend_from_slice(table.as_bytes());
        aad.push(0);
        aad.extend_from_slice(id);
        aad
    }

    /// Seals `plain` for row `id` of `table`: `format ‖ key id ‖ nonce ‖ ciphertext ‖ tag`.
    pub fn seal(&self, table: &str, id: &[u8], plain: &[u8]) -> Result<Vec<u8>, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SecretError::Random)?;
        let mut out = Vec::with_capacity(2 + NONCE_LEN + plain.len() + 16);
        out.extend_from_slice(&[FORMAT, KEY_ID]);
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.extend_from_slice(plain);
        let tag = self
            .seal
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(table, id)),
                &mut out[start..],
            )
            .map_err(|_| SecretError::Authentication)?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Opens what [`ServerKeys::seal`] made for the same table and row.
    pub fn open(&self, table: &str, id: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
        if sealed.len() < 2 + NONCE_LEN + 16 || sealed[0] != FORMAT || sealed[1] != KEY_ID {
            return Err(SecretError::Authentication);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[2..2 + NONCE_LEN]);
        let mut body = sealed[2 + NONCE_LEN..].to_vec();
        let n = self
            .seal
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(table, id)),
                &mut body,
            )
            .map_err(|_| SecretError::Authentication)?
            .len();
        body.truncate(n);
        Ok(body)
    }

    /// A keyed hash for equality lookups (`purpose` keeps lookups of different things apart).
    #[must_use]
    pub fn lookup(&self, purpose: &str, value: &str) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(&self.lookup);
        ctx.update(purpose.as_bytes());
        ctx.update(&[0]);
        ctx.update(value.as_bytes());
        ctx.sign().as_ref().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_in_their_row_and_the_key_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.key");
        let keys = ServerKeys::create(&path).unwrap();
        let sealed = keys.seal("users", b"row-1", b"Nguyen Thi Hoa").unwrap();
        assert!(!sealed.windows(3).any(|w| w == b"Hoa"));
        let again = ServerKeys::load(&path).unwrap();
        assert_eq!(
            again.open("users", b"row-1", &sealed).unwrap(),
            b"Nguyen Thi Hoa"
        );
        assert!(again.open("users", b"row-2", &sealed).is_err());
        assert!(again.open("devices", b"row-1", &sealed).is_err());
        assert!(
            ServerKeys::create(&path).is_err(),
            "an existing key is never replaced"
        );
        assert_eq!(
            keys.lookup("username", "hoa"),
            again.lookup("username", "hoa")
        );
        assert_ne!(keys.lookup("username", "hoa"), keys.lookup("other", "hoa"));
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(
            ServerKeys::load(&path),
            Err(SecretError::KeyMissing)
        ));
    }
}
