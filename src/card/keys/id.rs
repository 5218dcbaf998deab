//! A vault key and its id.

use core::fmt;

use zeroize::Zeroizing;

use crate::card::Error;
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
pub struct VaultKey(pub(super) Zeroizing<[u8; 32]>);

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

    pub(crate) fn derive(&self, label: &[u8]) -> Zeroizing<[u8; 32]> {
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
