//! Pepper: a secret key mixed into every hash (argon2's secret input `K`), kept outside the
//! customer database, so a copied credential table cannot be cracked on its own.

use core::fmt;

use super::Error;
use crate::secret::{SecretBytes, fill_random};

/// Shortest pepper accepted: 256 bits.
pub(super) const MIN_PEPPER_LEN: usize = 32;
/// Longest pepper accepted (argon2 takes more, but longer adds nothing).
pub(super) const MAX_PEPPER_LEN: usize = 64;

/// A pepper key id, recorded in the PHC `keyid` parameter of every hash made with it.
///
/// 1 to 8 characters (RustCrypto's limit for `keyid`), each `A-Z a-z 0-9 . _ -`.
/// Not secret: it only names which pepper to use.
///
/// # Examples
/// ```
/// use shopsafe::password::KeyId;
///
/// let id = KeyId::new("2026-11")?;
/// assert_eq!(id.as_str(), "2026-11");
/// assert!(KeyId::new("far-too-long").is_err());
/// # Ok::<(), shopsafe::password::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyId(String);

impl KeyId {
    /// Validates a key id.
    ///
    /// # Errors
    /// [`Error::InvalidKeyId`] when it is empty, longer than 8 bytes or has other characters.
    pub fn new(id: &str) -> Result<Self, Error> {
        let ok = (1..=8).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
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

    pub(crate) fn from_phc_bytes(bytes: &[u8]) -> Result<Self, Error> {
        Self::new(core::str::from_utf8(bytes).map_err(|_| Error::InvalidKeyId)?)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A pepper: 32 to 64 secret bytes, wiped on drop, never printed.
///
/// # Security
/// Keep it out of the customer database (a secrets manager, a KMS-unwrapped file, an
/// environment variable injected at start). Losing it makes every hash made with it
/// unverifiable: those accounts then need a password reset, so back it up like a key.
pub struct Pepper(SecretBytes);

impl Pepper {
    /// Wraps existing key material.
    ///
    /// # Errors
    /// [`Error::PepperLength`] unless 32 ≤ len ≤ 64.
    pub fn new(bytes: Vec<u8>) -> Result<Self, Error> {
        if (MIN_PEPPER_LEN..=MAX_PEPPER_LEN).contains(&bytes.len()) {
            Ok(Self(SecretBytes::new(bytes)))
        } else {
            Err(Error::PepperLength { len: bytes.len() })
        }
    }

    /// 32 fresh bytes from the operating system's CSPRNG.
    ///
    /// # Errors
    /// [`Error::Rng`] when the OS generator fails.
    pub fn generate() -> Result<Self, Error> {
        let mut bytes = vec![0u8; MIN_PEPPER_LEN];
        fill_random(&mut bytes)?;
        Ok(Self(SecretBytes::new(bytes)))
    }

    pub(crate) fn expose_secret(&self) -> &[u8] {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper([REDACTED])")
    }
}

/// Peppers by key id, one of them current.
///
/// New hashes use the current key; verify picks the key the stored hash names. After
/// [`rotate`](Self::rotate), hashes under older keys still verify and each successful
/// verify returns a rehash under the new key, so the old key can be retired once no
/// stored hash names it.
///
/// # Examples
/// ```
/// use shopsafe::password::{KeyId, Pepper, PepperKeyring};
///
/// let mut ring = PepperKeyring::new(KeyId::new("k1")?, Pepper::generate()?);
/// ring.rotate(KeyId::new("k2")?, Pepper::generate()?)?;
/// assert_eq!(ring.current_id().as_str(), "k2");
/// assert!(ring.contains(&KeyId::new("k1")?));
/// # Ok::<(), shopsafe::password::Error>(())
/// ```
#[derive(Debug)]
pub struct PepperKeyring {
    /// Few keys (one per rotation): a vector beats a map here.
    keys: Vec<(KeyId, Pepper)>,
    current: usize,
}

impl PepperKeyring {
    /// A keyring whose current key is `pepper`.
    #[must_use]
    pub fn new(id: KeyId, pepper: Pepper) -> Self {
        Self {
            keys: vec![(id, pepper)],
            current: 0,
        }
    }

    /// Adds an older key that stored hashes may still name.
    ///
    /// # Errors
    /// [`Error::DuplicateKeyId`] when the id is already in the ring.
    pub fn add_previous(&mut self, id: KeyId, pepper: Pepper) -> Result<(), Error> {
        self.insert(id, pepper).map(|_| ())
    }

    /// Adds `pepper` and makes it current; the previous keys stay for verification.
    ///
    /// # Errors
    /// [`Error::DuplicateKeyId`] when the id is already in the ring.
    pub fn rotate(&mut self, id: KeyId, pepper: Pepper) -> Result<(), Error> {
        self.current = self.insert(id, pepper)?;
        Ok(())
    }

    /// Removes a retired key. Hashes that name it then fail with [`Error::UnknownKeyId`].
    ///
    /// # Errors
    /// [`Error::RemoveCurrentKey`] for the current key; [`Error::UnknownKeyId`] if absent.
    pub fn remove(&mut self, id: &KeyId) -> Result<(), Error> {
        let index = self
            .index(id)
            .ok_or_else(|| Error::UnknownKeyId { key_id: id.clone() })?;
        if index == self.current {
            return Err(Error::RemoveCurrentKey);
        }
        self.keys.remove(index);
        if index < self.current {
            self.current -= 1;
        }
        Ok(())
    }

    /// The id new hashes are made with.
    #[must_use]
    pub fn current_id(&self) -> &KeyId {
        &self.keys[self.current].0
    }

    /// Whether `id` is in the ring.
    #[must_use]
    pub fn contains(&self, id: &KeyId) -> bool {
        self.index(id).is_some()
    }

    pub(crate) fn current(&self) -> (&KeyId, &Pepper) {
        let (id, pepper) = &self.keys[self.current];
        (id, pepper)
    }

    pub(crate) fn get(&self, id: &KeyId) -> Option<&Pepper> {
        self.index(id).map(|i| &self.keys[i].1)
    }

    fn index(&self, id: &KeyId) -> Option<usize> {
        self.keys.iter().position(|(k, _)| k == id)
    }

    fn insert(&mut self, id: KeyId, pepper: Pepper) -> Result<usize, Error> {
        if self.contains(&id) {
            return Err(Error::DuplicateKeyId { key_id: id });
        }
        self.keys.push((id, pepper));
        Ok(self.keys.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> KeyId {
        KeyId::new(s).expect("valid test key id")
    }

    #[test]
    fn key_ids_are_validated() {
        for bad in ["", "123456789", "a b", "k$1", "ключ"] {
            assert!(KeyId::new(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["k", "12345678", "2026-11", "a.b_c-d"] {
            assert!(KeyId::new(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn pepper_length_is_enforced_and_never_printed() {
        assert!(matches!(
            Pepper::new(vec![1; 31]),
            Err(Error::PepperLength { len: 31 })
        ));
        assert!(matches!(
            Pepper::new(vec![1; 65]),
            Err(Error::PepperLength { len: 65 })
        ));
        let p = Pepper::new(vec![0x41; 32]).expect("32 bytes is valid");
        assert_eq!(format!("{p:?}"), "Pepper([REDACTED])");
        let ring = PepperKeyring::new(id("k1"), p);
        assert!(!format!("{ring:?}").contains("65"));
        assert!(!format!("{ring:?}").contains("AAAA"));
    }

    #[test]
    fn rotate_remove_and_lookup() {
        let mut ring = PepperKeyring::new(id("k1"), Pepper::new(vec![1; 32]).expect("valid"));
        ring.add_previous(id("k0"), Pepper::new(vec![0; 32]).expect("valid"))
            .expect("new id");
        ring.rotate(id("k2"), Pepper::new(vec![2; 32]).expect("valid"))
            .expect("new id");
        assert_eq!(ring.current_id(), &id("k2"));
        assert!(matches!(
            ring.rotate(id("k1"), Pepper::new(vec![9; 32]).expect("valid")),
            Err(Error::DuplicateKeyId { .. })
        ));
        assert!(matches!(
            ring.remove(&id("k2")),
            Err(Error::RemoveCurrentKey)
        ));
        ring.remove(&id("k0")).expect("k0 present and not current");
        assert_eq!(ring.current_id(), &id("k2"));
        assert_eq!(
            ring.get(&id("k1")).map(Pepper::expose_secret),
            Some(&[1u8; 32][..])
        );
        assert!(ring.get(&id("k0")).is_none());
    }
}
