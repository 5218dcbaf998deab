//! [`LegacyHash`]: an old system's stored hash, ready to be wrapped.

use zeroize::Zeroizing;

use super::inner::{Inner, MAX_LEGACY_SALT, SaltPosition};
use crate::password::Error;

/// An old system's stored digest, ready to be wrapped by
/// [`Hasher::wrap_legacy`](crate::password::Hasher::wrap_legacy).
///
/// `Debug` names the scheme only: an unsalted MD5 is as good as the password to anyone with
/// a lookup table.
///
/// # Examples
/// ```
/// use shopsafe::password::{LegacyHash, SaltPosition};
///
/// // md5("password")
/// let old = LegacyHash::md5_hex("5f4dcc3b5aa765d61d8327deb882cf99")?;
/// assert_eq!(format!("{old:?}"), "LegacyHash(md5)");
/// let salted = LegacyHash::sha256_salted_hex(b"s4lt", SaltPosition::Prefix,
///     "0f2ad1d7b1e2c6e9c1f7e2c9e8d2a4b6c1d8e2f3a4b5c6d7e8f9a0b1c2d3e4f5")?;
/// assert!(LegacyHash::sha1_hex("not hex").is_err());
/// # Ok::<(), shopsafe::password::Error>(())
/// ```
pub struct LegacyHash {
    pub(crate) inner: Inner,
    pub(crate) digest: Zeroizing<Vec<u8>>,
}

impl LegacyHash {
    /// An unsalted MD5 digest, 32 hex digits (either case).
    ///
    /// # Errors
    /// [`Error::LegacyDigest`] when it is not 32 hex digits.
    pub fn md5_hex(hex: &str) -> Result<Self, Error> {
        Self::from_hex(Inner::Md5, hex)
    }

    /// An unsalted SHA-1 digest, 40 hex digits.
    ///
    /// # Errors
    /// [`Error::LegacyDigest`] when it is not 40 hex digits.
    pub fn sha1_hex(hex: &str) -> Result<Self, Error> {
        Self::from_hex(Inner::Sha1, hex)
    }

    /// A salted SHA-256 digest, 64 hex digits, with the old system's salt bytes and where
    /// it put them.
    ///
    /// # Errors
    /// [`Error::LegacyDigest`] when the digest is not 64 hex digits or the salt is empty or
    /// longer than 48 bytes (it must fit in the PHC string).
    pub fn sha256_salted_hex(
        salt: &[u8],
        position: SaltPosition,
        hex: &str,
    ) -> Result<Self, Error> {
        if salt.is_empty() || salt.len() > MAX_LEGACY_SALT {
            return Err(Error::LegacyDigest {
                scheme: "sha256",
                reason: "salt must be 1 to 48 bytes",
            });
        }
        Self::from_hex(
            Inner::Sha256Salted {
                salt: salt.to_vec(),
                position,
            },
            hex,
        )
    }

    fn from_hex(inner: Inner, hex: &str) -> Result<Self, Error> {
        let scheme = inner.name();
        let digest = base16ct::mixed::decode_vec(hex.trim()).map_err(|_| Error::LegacyDigest {
            scheme,
            reason: "not hexadecimal",
        })?;
        let digest = Zeroizing::new(digest);
        if digest.len() != inner.digest_len() {
            return Err(Error::LegacyDigest {
                scheme,
                reason: "wrong digest length",
            });
        }
        Ok(Self { inner, digest })
    }
}

impl LegacyHash {
    /// The scheme's name as the wrapped PHC string records it (`inner=`): `md5`, `sha1`,
    /// `sha256-salt-prefix`, `pbkdf2-sha1`, `pbkdf2-sha256`, `pbkdf2-sha512`, `phpass`,
    /// `bcrypt`, `wp-bcrypt`, `md5-crypt`, `sha256-crypt`, `sha512-crypt`.
    #[must_use]
    pub fn scheme(&self) -> &'static str {
        self.inner.name()
    }
}

impl core::fmt::Debug for LegacyHash {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "LegacyHash({})", self.inner.name())
    }
}
