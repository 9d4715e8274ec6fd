//! The server's own keys: identity and narrative fields are encrypted at rest (DESIGN.md §5).
//!
//! One 256-bit root key lives in `DIR/server.key`, readable only by its owner, created with a
//! new data directory and never silently replaced: a database whose key is missing refuses to
//! start. From it, HKDF derives a sealing key (AES-256-GCM, fresh random nonce, associated data
//! binding table and row id) and a lookup key (HMAC-SHA256, for equality lookups such as a
//! username, which is often a person's name and so is never stored in clear).
//!
//! This is not the device's crypto (the server does not link it); it is a few lines over `ring`
//! with the same discipline.
//!
//! **Rotation.** Every envelope names the key that sealed it (one byte, bound in the associated
//! data). The key file holds one or more root keys as `id ‖ 32 bytes` entries, the last one
//! current (a legacy file of exactly 32 bytes is key 1). `donghanh-server admin key rotate`
//! ([`ServerKeys::add_key`], then the store re-seals every row and re-computes every lookup
//! under the new key in one transaction, then [`ServerKeys::retire_keys`]) never leaves a
//! moment where a committed row is sealed by a key the file does not hold: the new key is in
//! the file before any row uses it, and old keys leave only after the re-seal committed. The
//! file is always replaced atomically (write, fsync, rename).

use std::fmt;
use std::io::Write;
use std::path::Path;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{hkdf, hmac};

/// Envelope format byte.
const FORMAT: u8 = 1;
/// Key id of a legacy single-key file.
const LEGACY_KEY_ID: u8 = 1;
/// Length of one key-file entry: id and root key.
const ENTRY: usize = 33;

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
    /// Writing the key file failed; the previous file is unchanged.
    #[error("cannot write the server key file: {0}")]
    Write(std::io::Error),
    /// All 255 key ids are used.
    #[error("no key id left; retire old keys first")]
    NoKeyId,
}

/// The server's derived keys: every key the file holds (to open), the current one (to seal
/// and to look up).
pub struct ServerKeys {
    seal: Vec<(u8, LessSafeKey)>,
    current: u8,
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

/// Reads the key file's entries: `(id, root)` in file order.
fn read_entries(path: &Path) -> Result<Vec<(u8, [u8; 32])>, SecretError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SecretError::KeyMissing);
        }
        Err(_) => return Err(SecretError::KeyDamaged),
    };
    if bytes.len() == 32 {
        let mut root = [0u8; 32];
        root.copy_from_slice(&bytes);
        return Ok(vec![(LEGACY_KEY_ID, root)]);
    }
    if bytes.is_empty() || bytes.len() % ENTRY != 0 {
        return Err(SecretError::KeyDamaged);
    }
    let mut entries = Vec::new();
    for chunk in bytes.chunks_exact(ENTRY) {
        let mut root = [0u8; 32];
        root.copy_from_slice(&chunk[1..]);
        if chunk[0] == 0 || entries.iter().any(|(id, _)| *id == chunk[0]) {
            return Err(SecretError::KeyDamaged);
        }
        entries.push((chunk[0], root));
    }
    Ok(entries)
}

/// Replaces the key file atomically: a temporary file beside it, fsync, rename, fsync of the
/// directory. Owner-only.
fn write_entries(path: &Path, entries: &[(u8, [u8; 32])], create: bool) -> Result<(), SecretError> {
    let mut bytes = Vec::with_capacity(entries.len() * ENTRY);
    for (id, root) in entries {
        bytes.push(*id);
        bytes.extend_from_slice(root);
    }
    let tmp = path.with_extension("key.new");
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let err = if create {
        SecretError::Create
    } else {
        SecretError::Write
    };
    let mut file = opts.open(&tmp).map_err(err)?;
    file.write_all(&bytes)
        .and_then(|()| file.sync_all())
        .map_err(err)?;
    drop(file);
    if create {
        // Never replace an existing key on creation.
        std::fs::hard_link(&tmp, path).map_err(err)?;
        let _ = std::fs::remove_file(&tmp);
    } else {
        std::fs::rename(&tmp, path).map_err(err)?;
    }
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

impl ServerKeys {
    /// Creates the key file (which must not exist) and returns its keys.
    pub fn create(path: &Path) -> Result<ServerKeys, SecretError> {
        if path.exists() {
            return Err(SecretError::Create(std::io::Error::from(
                std::io::ErrorKind::AlreadyExists,
            )));
        }
        let rng = SystemRandom::new();
        let mut root = [0u8; 32];
        rng.fill(&mut root).map_err(|_| SecretError::Random)?;
        let entries = vec![(1, root)];
        write_entries(path, &entries, true)?;
        Self::from_entries(&entries)
    }

    /// Loads the key file.
    pub fn load(path: &Path) -> Result<ServerKeys, SecretError> {
        Self::from_entries(&read_entries(path)?)
    }

    /// Adds a new current key to the key file (the old ones stay, to open what they sealed)
    /// and returns the keys with the new one current. Nothing is sealed with it yet.
    pub fn add_key(path: &Path) -> Result<ServerKeys, SecretError> {
        let mut entries = read_entries(path)?;
        let id = (1..=u8::MAX)
            .find(|id| !entries.iter().any(|(used, _)| used == id))
            .ok_or(SecretError::NoKeyId)?;
        let mut root = [0u8; 32];
        SystemRandom::new()
            .fill(&mut root)
            .map_err(|_| SecretError::Random)?;
        entries.push((id, root));
        write_entries(path, &entries, false)?;
        Self::from_entries(&entries)
    }

    /// Removes every key but the current one from the key file. Call only once nothing sealed
    /// with the others remains (after the store's re-seal committed).
    pub fn retire_keys(path: &Path) -> Result<ServerKeys, SecretError> {
        let entries = read_entries(path)?;
        let current = *entries.last().ok_or(SecretError::KeyDamaged)?;
        write_entries(path, &[current], false)?;
        Self::from_entries(&[current])
    }

    /// The id of the key that seals.
    #[must_use]
    pub fn current_key_id(&self) -> u8 {
        self.current
    }

    /// The ids of every key held (to open).
    #[must_use]
    pub fn key_ids(&self) -> Vec<u8> {
        self.seal.iter().map(|(id, _)| *id).collect()
    }

    /// The key id an envelope names, if it is one.
    #[must_use]
    pub fn sealed_key_id(sealed: &[u8]) -> Option<u8> {
        (sealed.len() >= 2 + NONCE_LEN + 16 && sealed[0] == FORMAT).then(|| sealed[1])
    }

    fn from_entries(entries: &[(u8, [u8; 32])]) -> Result<ServerKeys, SecretError> {
        let mut seal = Vec::with_capacity(entries.len());
        for (id, root) in entries {
            let key = UnboundKey::new(&AES_256_GCM, &derive(root, b"seal")?)
                .map_err(|_| SecretError::KeyDamaged)?;
            seal.push((*id, LessSafeKey::new(key)));
        }
        let (current, root) = entries.last().ok_or(SecretError::KeyDamaged)?;
        Ok(ServerKeys {
            seal,
            current: *current,
            lookup: hmac::Key::new(hmac::HMAC_SHA256, &derive(root, b"lookup")?),
            rng: SystemRandom::new(),
        })
    }

    fn key(&self, id: u8) -> Result<&LessSafeKey, SecretError> {
        self.seal
            .iter()
            .find(|(k, _)| *k == id)
            .map(|(_, key)| key)
            .ok_or(SecretError::Authentication)
    }

    fn aad(key_id: u8, table: &str, id: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(table.len() + id.len() + 3);
        aad.push(FORMAT);
        aad.push(key_id);
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
        out.extend_from_slice(&[FORMAT, self.current]);
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.extend_from_slice(plain);
        let tag = self
            .key(self.current)?
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(self.current, table, id)),
                &mut out[start..],
            )
            .map_err(|_| SecretError::Authentication)?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Opens what [`ServerKeys::seal`] made for the same table and row.
    pub fn open(&self, table: &str, id: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
        let key_id = Self::sealed_key_id(sealed).ok_or(SecretError::Authentication)?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[2..2 + NONCE_LEN]);
        let mut body = sealed[2 + NONCE_LEN..].to_vec();
        let n = self
            .key(key_id)?
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(key_id, table, id)),
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

    #[test]
    fn a_rotated_key_opens_the_old_envelopes_until_retired() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.key");
        let one = ServerKeys::create(&path).unwrap();
        let old = one.seal("records", b"r", b"Tran Van Ba").unwrap();
        let two = ServerKeys::add_key(&path).unwrap();
        assert_eq!((two.current_key_id(), two.key_ids()), (2, vec![1, 2]));
        assert_eq!(two.open("records", b"r", &old).unwrap(), b"Tran Van Ba");
        let new = two.seal("records", b"r", b"Tran Van Ba").unwrap();
        assert_eq!(ServerKeys::sealed_key_id(&new), Some(2));
        // The key id is bound: relabelling an envelope with another key's id fails.
        let mut relabelled = new.clone();
        relabelled[1] = 1;
        assert!(two.open("records", b"r", &relabelled).is_err());
        // Lookups follow the current key.
        assert_ne!(one.lookup("username", "hoa"), two.lookup("username", "hoa"));
        let loaded = ServerKeys::load(&path).unwrap();
        assert_eq!(loaded.open("records", b"r", &old).unwrap(), b"Tran Van Ba");
        let retired = ServerKeys::retire_keys(&path).unwrap();
        assert_eq!(retired.key_ids(), vec![2]);
        assert!(retired.open("records", b"r", &old).is_err());
        assert_eq!(retired.open("records", b"r", &new).unwrap(), b"Tran Van Ba");
        assert_eq!(ServerKeys::load(&path).unwrap().key_ids(), vec![2]);
    }

    #[test]
    fn a_legacy_single_key_file_is_key_one_and_damaged_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.key");
        std::fs::write(&path, [7u8; 32]).unwrap();
        let keys = ServerKeys::load(&path).unwrap();
        assert_eq!(keys.key_ids(), vec![1]);
        for bad in [
            vec![],
            vec![1u8; 31],
            vec![0u8; 33],
            [[2u8; 33], [2u8; 33]].concat(),
        ] {
            std::fs::write(&path, &bad).unwrap();
            assert!(matches!(
                ServerKeys::load(&path),
                Err(SecretError::KeyDamaged)
            ));
        }
    }
}
