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
use crate::secret::{fill_random, hmac_sha256, is_slug};

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
}

/// Keys in a text file, one `id base64-key` line each, oldest first (development and
/// tests). Created with mode 0600 on Unix.
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
    /// [`Error::KeyFile`] on I/O failure, [`Error::Rng`].
    pub fn open_or_create(path: impl AsRef<Path>, initial_id: &VaultKeyId) -> Result<Self, Error> {
        let source = Self {
            path: path.as_ref().to_path_buf(),
        };
        if !source.path.exists() {
            source.write_lines(&[(initial_id.clone(), VaultKey::generate()?)])?;
        }
        Ok(source)
    }

    fn write_lines(&self, keys: &[(VaultKeyId, VaultKey)]) -> Result<(), Error> {
        let mut text = Zeroizing::new(String::new());
        for (id, key) in keys {
            text.push_str(id.as_str());
            text.push(' ');
            text.push_str(&Zeroizing::new(Base64::encode_string(key.0.as_ref())));
            text.push('\n');
        }
        let tmp = self.path.with_extension("tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp).map_err(Error::KeyFile)?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(Error::KeyFile)?;
        std::fs::rename(&tmp, &self.path).map_err(Error::KeyFile)
    }
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
        let text = Zeroizing::new(std::fs::read_to_string(&self.path).map_err(Error::KeyFile)?);
        parse_key_lines(&text)
    }

    fn add(&self, id: &VaultKeyId, key: &VaultKey) -> Result<(), Error> {
        let mut keys = self.keys()?;
        if keys.iter().any(|(k, _)| k == id) {
            return Err(Error::DuplicateKeyId { id: id.clone() });
        }
        keys.push((id.clone(), VaultKey::from_bytes(key.0.as_ref())?));
        self.write_lines(&keys)
    }

    fn destroy(&self, id: &VaultKeyId) -> Result<(), Error> {
        let mut keys = self.keys()?;
        let before = keys.len();
        keys.retain(|(k, _)| k != id);
        if keys.len() == before {
            return Err(Error::UnknownKeyId { id: id.clone() });
        }
        self.write_lines(&keys)
    }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> VaultKeyId {
        VaultKeyId::new(s).expect("valid id")
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
}
