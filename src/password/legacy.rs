//! Importing an old system's hashes by onion wrapping (OWASP "upgrade method two").
//!
//! A database of unsalted MD5 or SHA-1 hex digests cannot wait for every customer to log
//! in: the weak digests must become argon2id today. Wrapping stores
//! `argon2id(legacy_digest)`, computed offline from the digest alone. At the next
//! successful login, [`Hasher::verify`](super::Hasher::verify) recomputes the legacy digest
//! from the typed password, verifies the wrapper, and returns a plain argon2id rehash.
//!
//! # Security
//! Store the rehash as soon as it is returned: while a record is still wrapped, anyone
//! holding an MD5 of the same password from another breach can test that digest directly
//! against the wrapper ("hash shucking"), skipping the password search.

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::Error;
use super::error::printable;

/// Where the salt goes in an old salted SHA-256 scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaltPosition {
    /// `sha256(salt || password)`.
    Prefix,
    /// `sha256(password || salt)`.
    Suffix,
}

/// The legacy digest inside an onion hash (recorded in the PHC `inner=` parameter).
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Inner {
    Md5,
    Sha1,
    Sha256Salted {
        salt: Vec<u8>,
        position: SaltPosition,
    },
}

impl Inner {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Md5 => "md5",
            Self::Sha1 => "sha1",
            Self::Sha256Salted {
                position: SaltPosition::Prefix,
                ..
            } => "sha256-salt-prefix",
            Self::Sha256Salted {
                position: SaltPosition::Suffix,
                ..
            } => "sha256-salt-suffix",
        }
    }

    pub(crate) fn salt(&self) -> Option<&[u8]> {
        match self {
            Self::Sha256Salted { salt, .. } => Some(salt),
            Self::Md5 | Self::Sha1 => None,
        }
    }

    pub(crate) fn from_phc(name: &str, isalt: Option<Vec<u8>>) -> Result<Self, Error> {
        let inner = match (name, isalt) {
            ("md5", None) => Self::Md5,
            ("sha1", None) => Self::Sha1,
            ("sha256-salt-prefix", Some(salt)) => Self::Sha256Salted {
                salt,
                position: SaltPosition::Prefix,
            },
            ("sha256-salt-suffix", Some(salt)) => Self::Sha256Salted {
                salt,
                position: SaltPosition::Suffix,
            },
            ("md5" | "sha1", Some(_)) => {
                return Err(Error::PhcMalformed {
                    reason: "isalt= on an unsalted legacy scheme",
                });
            }
            ("sha256-salt-prefix" | "sha256-salt-suffix", None) => {
                return Err(Error::PhcMalformed {
                    reason: "salted legacy scheme without isalt=",
                });
            }
            (other, _) => {
                return Err(Error::UnsupportedAlgorithm {
                    found: format!("inner={}", printable(other)),
                });
            }
        };
        Ok(inner)
    }

    fn digest_len(&self) -> usize {
        match self {
            Self::Md5 => 16,
            Self::Sha1 => 20,
            Self::Sha256Salted { .. } => 32,
        }
    }

    /// The legacy digest of the password bytes exactly as typed (the old system never
    /// normalized them).
    pub(crate) fn digest(&self, password: &[u8]) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(match self {
            Self::Md5 => Md5::digest(password).to_vec(),
            Self::Sha1 => Sha1::digest(password).to_vec(),
            Self::Sha256Salted { salt, position } => {
                let mut h = Sha256::new();
                match position {
                    SaltPosition::Prefix => {
                        h.update(salt);
                        h.update(password);
                    }
                    SaltPosition::Suffix => {
                        h.update(password);
                        h.update(salt);
                    }
                }
                h.finalize().to_vec()
            }
        })
    }
}

/// An old system's stored digest, ready to be wrapped by
/// [`Hasher::wrap_legacy`](super::Hasher::wrap_legacy).
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

impl core::fmt::Debug for LegacyHash {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "LegacyHash({})", self.inner.name())
    }
}

/// Legacy salts are written into the PHC string as base64 (48 bytes → 64 characters).
const MAX_LEGACY_SALT: usize = 48;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_the_standard_vectors() {
        // RFC 1321 §A.5, FIPS 180 examples: "abc".
        assert_eq!(
            base16ct::lower::encode_string(&Inner::Md5.digest(b"abc")),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            base16ct::lower::encode_string(&Inner::Sha1.digest(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        let prefix = Inner::Sha256Salted {
            salt: b"a".to_vec(),
            position: SaltPosition::Prefix,
        };
        let suffix = Inner::Sha256Salted {
            salt: b"c".to_vec(),
            position: SaltPosition::Suffix,
        };
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(base16ct::lower::encode_string(&prefix.digest(b"bc")), abc);
        assert_eq!(base16ct::lower::encode_string(&suffix.digest(b"ab")), abc);
    }

    #[test]
    fn hex_input_is_validated() {
        assert!(LegacyHash::md5_hex("900150983CD24FB0D6963F7D28E17F72").is_ok());
        assert!(LegacyHash::md5_hex(" 900150983cd24fb0d6963f7d28e17f72\n").is_ok());
        for (bad, why) in [
            ("900150983cd24fb0d6963f7d28e17f7", "not hexadecimal"),
            ("900150983cd24fb0d6963f7d28e17f72aa", "wrong digest length"),
            ("zz0150983cd24fb0d6963f7d28e17f72", "not hexadecimal"),
        ] {
            assert!(
                matches!(LegacyHash::md5_hex(bad), Err(Error::LegacyDigest { reason, .. }) if reason == why),
                "{bad}"
            );
        }
        assert!(LegacyHash::sha1_hex("900150983cd24fb0d6963f7d28e17f72").is_err());
        assert!(LegacyHash::sha256_salted_hex(b"", SaltPosition::Prefix, &"0".repeat(64)).is_err());
        assert!(
            LegacyHash::sha256_salted_hex(&[0; 49], SaltPosition::Prefix, &"0".repeat(64)).is_err()
        );
    }

    #[test]
    fn phc_names_round_trip() {
        for inner in [
            Inner::Md5,
            Inner::Sha1,
            Inner::Sha256Salted {
                salt: vec![1, 2],
                position: SaltPosition::Prefix,
            },
            Inner::Sha256Salted {
                salt: vec![3],
                position: SaltPosition::Suffix,
            },
        ] {
            let back = Inner::from_phc(inner.name(), inner.salt().map(<[u8]>::to_vec));
            assert!(back.is_ok_and(|b| b == inner));
        }
        assert!(Inner::from_phc("md4", None).is_err());
        assert!(Inner::from_phc("md5", Some(vec![1])).is_err());
        assert!(Inner::from_phc("sha256-salt-prefix", None).is_err());
    }
}
