//! Vault keys: ids, the in-memory keyring, and where keys come from (`KeySource`).
//!
//! Each 256-bit vault key is split, with HMAC-SHA-256 as the PRF of a NIST SP 800-108
//! counter-mode KDF (one block, a label per purpose), into a sealing key for
//! XChaCha20-Poly1305 and a fingerprint key for HMAC-SHA-256. One key id names both, so
//! rotating a key rotates both, and shredding it makes its rows unreadable and its
//! fingerprints unmatchable.

use core::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64ct::{Base64, Encoding};
use zeroize::Zeroizing;

use super::Error;
use crate::audit::AuditKey;
use crate::kernel::{hmac_sha256, is_slug};
use crate::secret::fill_random;

/// A vault key's id: 1 to 16 characters of `a-z 0-9 _ -`, stored beside every row it seals.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "String", into = "String"))]
pub struct VaultKeyId(String);

impl VaultKeyId {
    /// Validates an id.
    ///
    /// # Errors
    /// [`Error::InvalidKeyId`].
    pub fn new(id: &str) -> Result<Self, Error> {
        if is_slug(id, 16, true) {
            Ok(Self(id.to_owned()))
        } else {
            Err(Error::InvalidKeyId)
        }
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for VaultKeyId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        Self::new(&s)
    }
}

impl From<VaultKeyId> for String {
    fn from(k: VaultKeyId) -> Self {
        k.0
    }
}

impl fmt::Debug for VaultKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VaultKeyId({})", self.0)
    }
}

impl fmt::Display for VaultKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// 32 bytes of key material. Wiped on drop, not `Clone`, `Debug` prints a mask.
pub struct VaultKey(Zeroizing<[u8; 32]>);

impl VaultKey {
    /// The key's bytes, for a key source that wraps it.
    pub(super) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// From exactly 32 bytes.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] for any other length.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| Error::InvalidKey)?;
        Ok(Self(Zeroizing::new(arr)))
    }

    /// A fresh random key from the OS generator.
    ///
    /// # Errors
    /// [`Error::Rng`].
    pub fn generate() -> Result<Self, Error> {
        let mut k = Zeroizing::new([0u8; 32]);
        fill_random(k.as_mut())?;
        Ok(Self(k))
    }

    fn derive(&self, label: &[u8]) -> Zeroizing<[u8; 32]> {
        // SP 800-108 counter mode, one block: PRF(K, [1] || label || 0x00 || [256]).
        Zeroizing::new(hmac_sha256(
            self.0.as_ref(),
            &[&[0, 0, 0, 1], label, &[0, 0, 0, 1, 0]],
        ))
    }
}

impl fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VaultKey([REDACTED])")
    }
}

/// The keys derived from one vault key.
pub(crate) struct KeyPair {
    pub(crate) id: VaultKeyId,
    pub(crate) seal: Zeroizing<[u8; 32]>,
    pub(crate) fingerprint: Zeroizing<[u8; 32]>,
}

/// The vault's keys in memory: every key still readable, the last one current.
pub(crate) struct Keyring {
    keys: Vec<KeyPair>,
}

impl Keyring {
    pub(crate) fn new(keys: Vec<(VaultKeyId, VaultKey)>) -> Result<Self, Error> {
        if keys.is_empty() {
            return Err(Error::NoKeys);
        }
        let mut ring = Self {
            keys: Vec::with_capacity(keys.len()),
        };
        for (id, key) in keys {
            ring.push(id, &key)?;
        }
        Ok(ring)
    }

    pub(crate) fn push(&mut self, id: VaultKeyId, key: &VaultKey) -> Result<(), Error> {
        if self.get(&id).is_some() {
            return Err(Error::DuplicateKeyId { id });
        }
        self.keys.push(KeyPair {
            seal: key.derive(b"shopsafe/vault/seal/v1"),
            fingerprint: key.derive(b"shopsafe/vault/fingerprint/v1"),
            id,
        });
        Ok(())
    }

    pub(crate) fn remove(&mut self, id: &VaultKeyId) -> Result<(), Error> {
        if self.current().id == *id {
            return Err(Error::ShredCurrentKey);
        }
        let before = self.keys.len();
        self.keys.retain(|k| k.id != *id);
        if self.keys.len() == before {
            Err(Error::UnknownKeyId { id: id.clone() })
        } else {
            Ok(())
        }
    }

    pub(crate) fn current(&self) -> &KeyPair {
        // `new` refuses an empty ring and `remove` never removes the current (last) key.
        &self.keys[self.keys.len() - 1]
    }

    pub(crate) fn get(&self, id: &VaultKeyId) -> Option<&KeyPair> {
        self.keys.iter().find(|k| k.id == *id)
    }

    /// Newest first: the order fingerprints are looked up in.
    pub(crate) fn newest_first(&self) -> impl Iterator<Item = &KeyPair> {
        self.keys.iter().rev()
    }
}

/// Where the vault's keys live: a KMS or HSM in production (implement this trait over
/// it), a file or the environment in development.
pub trait KeySource: Send + Sync {
    /// Every key still in use, oldest first; the last is the current one.
    ///
    /// # Errors
    /// Whatever kept the keys from being read.
    fn keys(&self) -> Result<Vec<(VaultKeyId, VaultKey)>, Error>;

    /// Stores a new key (it becomes the current one).
    ///
    /// # Errors
    /// [`Error::KeySourceReadOnly`], or whatever kept the key from being stored.
    fn add(&self, id: &VaultKeyId, key: &VaultKey) -> Result<(), Error>;

    /// Destroys a key for good (crypto-shredding).
    ///
    /// # Errors
    /// [`Error::KeySourceReadOnly`], [`Error::UnknownKeyId`], or an I/O failure.
    fn destroy(&self, id: &VaultKeyId) -> Result<(), Error>;

    /// The key of the audit trail's chain ([`AuditLog::open_keyed`](crate::audit::AuditLog::open_keyed),
    /// `SqliteVault::with_audit_key`, `PgVault::with_audit_key`): one key for the
    /// trail's whole life, never rotated with the vault keys (a trail must stay checkable
    /// after the keys that sealed its cards are shredded).
    ///
    /// # Errors
    /// [`Error::NoAuditKey`] for a source that holds none (the default), or whatever kept
    /// it from being read.
    fn audit_key(&self) -> Result<AuditKey, Error> {
        Err(Error::NoAuditKey)
    }
}

impl<T: KeySource + ?Sized> KeySource for std::sync::Arc<T> {
    fn keys(&self) -> Result<Vec<(VaultKeyId, VaultKey)>, Error> {
        (**self).keys()
    }
    fn add(&self, id: &VaultKeyId, key: &VaultKey) -> Result<(), Error> {
        (**self).add(id, key)
    }
    fn destroy(&self, id: &VaultKeyId) -> Result<(), Error> {
        (**self).destroy(id)
    }
    fn audit_key(&self) -> Result<AuditKey, Error> {
        (**self).audit_key()
    }
}

/// Keys in a text file, one `id base64-key` line each, oldest first (development and
/// tests).
///
/// The file is created with mode 0600 and a key file that its group or others can read
/// is refused ([`Error::KeyFileTooOpen`]). Every change (`add`, `destroy`, the first
/// key of `open_or_create`) holds an exclusive lock on a `<file>.lock` beside it for its
/// whole read-modify-write, so two processes rotating at once both keep their keys and two
/// processes starting at once create one first key; the new contents go to a temporary
/// file of a unique name (created new, 0600), are synced, renamed over the key file, and
/// the directory is synced.
///
/// # Security
/// A key file on the vault's own disk protects against a copy of the customer database,
/// not against a copy of the vault machine; use a KMS in production.
#[derive(Debug)]
pub struct FileKeySource {
    path: PathBuf,
}

/// Holds the key file's lock until dropped.
pub(super) struct KeyFileLock(std::fs::File);

impl Drop for KeyFileLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl FileKeySource {
    /// Uses `path`; creates it with one fresh key named `initial_id` if it does not exist.
    ///
    /// # Errors
    /// [`Error::KeyFile`] on I/O failure, [`Error::KeyFileTooOpen`], [`Error::Rng`].
    pub fn open_or_create(path: impl AsRef<Path>, initial_id: &VaultKeyId) -> Result<Self, Error> {
        let source = Self {
            path: path.as_ref().to_path_buf(),
        };
        let _lock = source.lock(true)?;
        if source.path.exists() {
            source.check_mode()?;
        } else {
            source.write_lines(&[(initial_id.clone(), VaultKey::generate()?)])?;
        }
        Ok(source)
    }

    /// Locks `<file>.lock` (exclusive for changes, shared for reads).
    fn lock(&self, exclusive: bool) -> Result<KeyFileLock, Error> {
        lock_beside(&self.path, exclusive)
    }

    /// Refuses a key file its group or others may read or write.
    fn check_mode(&self) -> Result<(), Error> {
        check_mode(&self.path)
    }

    /// `<file>.audit-anchor`: where an audit log keyed under this source's audit key
    /// keeps its first record and latest checkpoint
    /// ([`AuditLog::open_keyed_anchored`](crate::audit::AuditLog::open_keyed_anchored)),
    /// on the key's side of the machine rather than the log's.
    #[must_use]
    pub fn audit_anchor_path(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".audit-anchor");
        self.path.with_file_name(name)
    }

    /// `<file>.audit-key`: the audit chain's key, base64.
    fn audit_key_path(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".audit-key");
        self.path.with_file_name(name)
    }

    fn read_keys(&self) -> Result<Vec<(VaultKeyId, VaultKey)>, Error> {
        self.check_mode()?;
        let text = Zeroizing::new(std::fs::read_to_string(&self.path).map_err(Error::KeyFile)?);
        parse_key_lines(&text)
    }

    fn write_lines(&self, keys: &[(VaultKeyId, VaultKey)]) -> Result<(), Error> {
        let mut text = Zeroizing::new(String::new());
        for (id, key) in keys {
            text.push_str(id.as_str());
            text.push(' ');
            text.push_str(&Zeroizing::new(Base64::encode_string(key.0.as_ref())));
            text.push('\n');
        }
        write_secret_file(&self.path, &text)
    }
}

/// Locks `<file>.lock` beside `path` (exclusive for changes, shared for reads). The lock
/// file is never replaced, so every process locks the same one, unlike the key file
/// itself, which each change replaces by a rename.
pub(super) fn lock_beside(path: &Path, exclusive: bool) -> Result<KeyFileLock, Error> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options
        .open(path.with_file_name(name))
        .map_err(Error::KeyFile)?;
    if exclusive {
        file.lock().map_err(Error::KeyFile)?;
    } else {
        file.lock_shared().map_err(Error::KeyFile)?;
    }
    Ok(KeyFileLock(file))
}

/// Refuses a secret file its group or others may read or write.
pub(super) fn check_mode(path: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(Error::KeyFile)?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(Error::KeyFileTooOpen { mode: mode & 0o777 });
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Replaces `path` with `text` (mode 0600) through a synced temporary and a rename.
pub(super) fn write_secret_file(path: &Path, text: &str) -> Result<(), Error> {
    // A unique name, created new: never a stale or planted file (whose mode and
    // owner it would keep), never another key file's temporary.
    let mut nonce = [0u8; 12];
    fill_random(&mut nonce)?;
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".{}.tmp", base16ct::lower::encode_string(&nonce)));
    let tmp = path.with_file_name(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(Error::KeyFile)?;
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::KeyFile(e));
    }
    sync_dir(path)
}

/// Syncs the directory holding `path`, so the rename survives a power loss.
fn sync_dir(path: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(Error::KeyFile)?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Parses `id base64` lines (blank lines and `#` comments skipped).
fn parse_key_lines(text: &str) -> Result<Vec<(VaultKeyId, VaultKey)>, Error> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let (id, key) = line
                .split_once(char::is_whitespace)
                .ok_or(Error::InvalidKey)?;
            let bytes =
                Zeroizing::new(Base64::decode_vec(key.trim()).map_err(|_| Error::InvalidKey)?);
            Ok((VaultKeyId::new(id)?, VaultKey::from_bytes(&bytes)?))
        })
        .collect()
}

impl KeySource for FileKeySource {
    fn keys(&self) -> Result<Vec<(VaultKeyId, VaultKey)>, Error> {
        let _lock = self.lock(false)?;
        self.read_keys()
    }

    fn add(&self, id: &VaultKeyId, key: &VaultKey) -> Result<(), Error> {
        let _lock = self.lock(true)?;
        let mut keys = self.read_keys()?;
        if keys.iter().any(|(k, _)| k == id) {
            return Err(Error::DuplicateKeyId { id: id.clone() });
        }
        keys.push((id.clone(), VaultKey::from_bytes(key.0.as_ref())?));
        self.write_lines(&keys)
    }

    fn destroy(&self, id: &VaultKeyId) -> Result<(), Error> {
        let _lock = self.lock(true)?;
        let mut keys = self.read_keys()?;
        let before = keys.len();
        keys.retain(|(k, _)| k != id);
        if keys.len() == before {
            return Err(Error::UnknownKeyId { id: id.clone() });
        }
        self.write_lines(&keys)
    }

    /// Reads `<file>.audit-key`, creating it (mode 0600, one fresh key) under the key
    /// file's lock the first time.
    fn audit_key(&self) -> Result<AuditKey, Error> {
        let path = self.audit_key_path();
        let _lock = self.lock(true)?;
        if !path.exists() {
            let key = AuditKey::generate().map_err(|_| Error::NoAuditKey)?;
            let text = Zeroizing::new(Base64::encode_string(key.expose_secret()));
            write_secret_file(&path, &text)?;
            return Ok(key);
        }
        check_mode(&path)?;
        let text = Zeroizing::new(std::fs::read_to_string(&path).map_err(Error::KeyFile)?);
        audit_key_from_base64(&text)
    }
}

/// An audit key from its base64 text.
fn audit_key_from_base64(text: &str) -> Result<AuditKey, Error> {
    let bytes = Zeroizing::new(Base64::decode_vec(text.trim()).map_err(|_| Error::InvalidKey)?);
    let bytes: Zeroizing<[u8; 32]> =
        Zeroizing::new(bytes.as_slice().try_into().map_err(|_| Error::InvalidKey)?);
    Ok(AuditKey::from_bytes(*bytes))
}

/// Keys from an environment variable holding `id base64` pairs separated by `;` or new
/// lines, oldest first. Read-only: rotate and shred by changing the variable.
#[derive(Debug)]
pub struct EnvKeySource {
    var: String,
}

impl EnvKeySource {
    /// Reads the variable `var` (e.g. `SHOPSAFE_VAULT_KEYS`) on each `keys()` call.
    #[must_use]
    pub fn new(var: &str) -> Self {
        Self {
            var: var.to_owned(),
        }
    }
}

impl KeySource for EnvKeySource {
    fn keys(&self) -> Result<Vec<(VaultKeyId, VaultKey)>, Error> {
        let text = Zeroizing::new(
            std::env::var(&self.var)
                .map_err(|_| Error::NoKeys)?
                .replace(';', "\n"),
        );
        parse_key_lines(&text)
    }

    fn add(&self, _: &VaultKeyId, _: &VaultKey) -> Result<(), Error> {
        Err(Error::KeySourceReadOnly)
    }

    fn destroy(&self, _: &VaultKeyId) -> Result<(), Error> {
        Err(Error::KeySourceReadOnly)
    }

    /// The variable named `<var>_AUDIT` (e.g. `SHOPSAFE_VAULT_KEYS_AUDIT`): 32 bytes,
    /// base64.
    fn audit_key(&self) -> Result<AuditKey, Error> {
        let text = Zeroizing::new(
            std::env::var(format!("{}_AUDIT", self.var)).map_err(|_| Error::NoAuditKey)?,
        );
        audit_key_from_base64(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> VaultKeyId {
        VaultKeyId::new(s).expect("valid id")
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_temp_file_cannot_open_the_key_file_up() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("vault.keys");
        let source = FileKeySource::open_or_create(&path, &id("k1")).expect("create");
        assert_eq!(mode(&path), 0o600);
        // A stale or planted `vault.tmp`, world-readable: the old temp name.
        let planted = dir.path().join("vault.tmp");
        std::fs::write(&planted, "").expect("plant");
        std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        source
            .add(&id("k2"), &VaultKey::generate().expect("key"))
            .expect("add");
        assert_eq!(mode(&path), 0o600, "the key file stays private");
        assert_eq!(
            std::fs::read(&planted).expect("read"),
            b"",
            "and the planted file untouched"
        );
        assert_eq!(source.keys().expect("keys").len(), 2);
        // A key file named like a temporary works too.
        let odd = FileKeySource::open_or_create(dir.path().join("keys.tmp"), &id("k1"))
            .expect("odd name");
        odd.add(&id("k2"), &VaultKey::generate().expect("key"))
            .expect("add");
        assert_eq!(odd.keys().expect("keys").len(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused_with_the_fix_in_the_message() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("vault.keys");
        let source = FileKeySource::open_or_create(&path, &id("k1")).expect("create");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = source.keys().expect_err("refused");
        assert!(
            matches!(err, Error::KeyFileTooOpen { mode: 0o644 }),
            "{err:?}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");
        assert!(FileKeySource::open_or_create(&path, &id("k1")).is_err());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(source.keys().expect("keys").len(), 1);
    }

    #[test]
    fn two_processes_rotating_at_once_keep_every_key() {
        // `add` read, changed and wrote the file without a lock: two rotations at once
        // lost a key, and every card sealed under it.
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("vault.keys");
        drop(FileKeySource::open_or_create(&path, &id("k0")).expect("create"));
        std::thread::scope(|scope| {
            for p in 0..2 {
                let path = &path;
                scope.spawn(move || {
                    // Each "process" has its own source over the same file.
                    let source = FileKeySource::open_or_create(path, &id("k0")).expect("open");
                    for i in 0..20 {
                        source
                            .add(
                                &id(&format!("p{p}-{i}")),
                                &VaultKey::generate().expect("key"),
                            )
                            .expect("add");
                    }
                });
            }
        });
        let keys = FileKeySource::open_or_create(&path, &id("k0"))
            .and_then(|s| s.keys())
            .expect("keys");
        assert_eq!(keys.len(), 41);
        let leftovers = std::fs::read_dir(dir.path())
            .expect("list")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            })
            .count();
        assert_eq!(leftovers, 0, "no temporary file left behind");
    }

    #[test]
    fn two_processes_starting_at_once_create_one_first_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("vault.keys");
        let firsts: Vec<[u8; 32]> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let path = &path;
                    scope.spawn(move || {
                        let source = FileKeySource::open_or_create(path, &id("k1")).expect("open");
                        let keys = source.keys().expect("keys");
                        assert_eq!(keys.len(), 1);
                        *keys[0].1.0
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        assert!(
            firsts.windows(2).all(|w| w[0] == w[1]),
            "one key for everyone"
        );
    }

    #[test]
    fn derived_keys_differ_by_purpose_and_by_key() {
        let a = VaultKey::from_bytes(&[1; 32]).expect("32 bytes");
        let b = VaultKey::from_bytes(&[2; 32]).expect("32 bytes");
        let ring = Keyring::new(vec![(id("a"), a), (id("b"), b)]).expect("ring");
        let (ka, kb) = (
            ring.get(&id("a")).expect("a"),
            ring.get(&id("b")).expect("b"),
        );
        assert_ne!(*ka.seal, *ka.fingerprint);
        assert_ne!(*ka.seal, *kb.seal);
        assert_eq!(ring.current().id, id("b"), "the last key is current");
        assert_eq!(
            format!("{:?}", VaultKey::from_bytes(&[1; 32]).expect("key")),
            "VaultKey([REDACTED])"
        );
    }

    #[test]
    fn subkey_derivation_matches_an_independent_hmac() {
        // Python: hmac.new(bytes([1]*32), b"\0\0\0\x01shopsafe/vault/seal/v1\0\0\0\x01\0", sha256)
        let key = VaultKey::from_bytes(&[1; 32]).expect("32 bytes");
        let seal = key.derive(b"shopsafe/vault/seal/v1");
        assert_eq!(
            base16ct::lower::encode_string(seal.as_ref()),
            "348c35ee71cdbadee9c4bd76dbfcf196848f17d0d828ff73994058e7ebae705c"
        );
    }

    #[test]
    fn the_current_key_cannot_be_removed_and_ids_are_unique() {
        let mut ring = Keyring::new(vec![(
            id("a"),
            VaultKey::from_bytes(&[1; 32]).expect("key"),
        )])
        .expect("ring");
        assert!(matches!(ring.remove(&id("a")), Err(Error::ShredCurrentKey)));
        assert!(matches!(
            ring.push(id("a"), &VaultKey::from_bytes(&[3; 32]).expect("key")),
            Err(Error::DuplicateKeyId { .. })
        ));
        assert!(matches!(Keyring::new(vec![]), Err(Error::NoKeys)));
    }

    #[test]
    fn file_source_adds_and_destroys_keys() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("vault.keys");
        let source = FileKeySource::open_or_create(&path, &id("k1")).expect("create");
        source
            .add(&id("k2"), &VaultKey::generate().expect("rng"))
            .expect("add");
        let ids: Vec<_> = source
            .keys()
            .expect("read")
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(ids, [id("k1"), id("k2")]);
        source.destroy(&id("k1")).expect("destroy");
        assert_eq!(source.keys().expect("read").len(), 1);
        assert!(matches!(
            source.destroy(&id("k1")),
            Err(Error::UnknownKeyId { .. })
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn malformed_key_lines_are_typed_errors() {
        assert!(
            matches!(parse_key_lines("k1 AAAA"), Err(Error::InvalidKey)),
            "3 bytes"
        );
        assert!(matches!(parse_key_lines("k1"), Err(Error::InvalidKey)));
        assert!(matches!(
            parse_key_lines("K1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            Err(Error::InvalidKeyId)
        ));
        assert_eq!(
            parse_key_lines("# comment\n\nk1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
                .expect("ok")
                .len(),
            1
        );
    }

    #[test]
    fn the_file_source_keeps_one_audit_key_through_rotations_and_shreds() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("vault.keys");
        let a = FileKeySource::open_or_create(&path, &id("k1")).expect("open");
        let b = FileKeySource::open_or_create(&path, &id("k1")).expect("second process");
        let first = a.audit_key().expect("created");
        assert_eq!(
            b.audit_key().expect("read").expose_secret(),
            first.expose_secret()
        );
        a.add(&id("k2"), &VaultKey::generate().expect("key"))
            .expect("rotate");
        a.destroy(&id("k1")).expect("shred");
        assert_eq!(
            a.audit_key().expect("read").expose_secret(),
            first.expose_secret()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let audit = dir.path().join("vault.keys.audit-key");
            let mode = std::fs::metadata(&audit)
                .expect("stat")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&audit, std::fs::Permissions::from_mode(0o644))
                .expect("chmod");
            assert!(matches!(a.audit_key(), Err(Error::KeyFileTooOpen { .. })));
            std::fs::set_permissions(&audit, std::fs::Permissions::from_mode(0o600))
                .expect("chmod");
            std::fs::write(&audit, "not base64!").expect("write");
            assert!(matches!(a.audit_key(), Err(Error::InvalidKey)));
        }
        assert!(matches!(
            EnvKeySource::new("SHOPSAFE_TEST_NO_SUCH_VAR").audit_key(),
            Err(Error::NoAuditKey)
        ));
    }
}
