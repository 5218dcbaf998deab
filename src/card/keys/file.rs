//! [`FileKeySource`]: the keys in a file of their own (mode 0600), for development and
//! small deployments.

use std::path::{Path, PathBuf};

use base64ct::{Base64, Encoding};
use zeroize::Zeroizing;

use super::files::{KeyFileLock, check_mode, lock_beside, write_secret_file};
use super::id::{VaultKey, VaultKeyId};
use super::source::KeySource;
use crate::audit::AuditKey;
use crate::card::Error;

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

/// Parses `id base64` lines (blank lines and `#` comments skipped).
pub(super) fn parse_key_lines(text: &str) -> Result<Vec<(VaultKeyId, VaultKey)>, Error> {
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
pub(super) fn audit_key_from_base64(text: &str) -> Result<AuditKey, Error> {
    let bytes = Zeroizing::new(Base64::decode_vec(text.trim()).map_err(|_| Error::InvalidKey)?);
    let bytes: Zeroizing<[u8; 32]> =
        Zeroizing::new(bytes.as_slice().try_into().map_err(|_| Error::InvalidKey)?);
    Ok(AuditKey::from_bytes(*bytes))
}
