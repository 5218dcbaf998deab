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

/// The pseudo-random function of a PBKDF2 scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Prf {
    Sha1,
    Sha256,
    Sha512,
}

/// The legacy digest inside an onion hash (recorded in the PHC `inner=` parameter, with
/// `irounds=`, `ilen=` and `isalt=` where the scheme has them).
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Inner {
    Md5,
    Sha1,
    Sha256Salted {
        salt: Vec<u8>,
        position: SaltPosition,
    },
    /// PBKDF2-HMAC (Django, ASP.NET Identity): `len` bytes after `rounds` iterations.
    Pbkdf2 {
        prf: Prf,
        rounds: u32,
        len: usize,
        salt: Vec<u8>,
    },
    /// phpass portable hashes (WordPress before 6.8, phpBB): MD5 iterated 2^`log2` times.
    Phpass {
        log2: u8,
        salt: Vec<u8>,
    },
    /// bcrypt (`$2y$`, `$2a$`, `$2b$`: the same function); `wordpress` pre-hashes the
    /// password as WordPress 6.8 does. The digest is the 31-character encoded hash.
    Bcrypt {
        cost: u8,
        salt: Vec<u8>,
        wordpress: bool,
    },
    /// MD5-crypt (`$1$`): the digest is its 22-character encoded hash.
    Md5Crypt {
        salt: Vec<u8>,
    },
    /// SHA-crypt (`$5$`, `$6$`): the digest is its 43- or 86-character encoded hash.
    ShaCrypt {
        sha512: bool,
        rounds: u32,
        salt: Vec<u8>,
    },
}

/// The inner scheme's parameters as a PHC string carries them.
#[derive(Debug, Default)]
pub(crate) struct InnerParams {
    pub(crate) rounds: Option<u64>,
    pub(crate) len: Option<u64>,
    pub(crate) salt: Option<Vec<u8>>,
}

/// Hard caps on a stored onion's inner cost, whatever the import allowed: a hostile
/// stored string must not make one login run for seconds. Each is about a second or
/// less on this project's machine (`benches/legacy.rs` scaled): 2,000,000 PBKDF2
/// iterations (0.32 s with SHA-256, 1.2 s with SHA-512).
pub(crate) const MAX_PBKDF2_ROUNDS: u32 = 2_000_000;
/// 2^22 MD5 calls, about 0.6 s (phpass's own format would allow 2^30, minutes).
pub(crate) const MAX_PHPASS_LOG2: u8 = 22;
/// bcrypt cost 14, about 1.2 s.
pub(crate) const MAX_BCRYPT_COST: u8 = 14;
/// SHA-crypt's own minimum (glibc raises anything lower to it) and a hard cap
/// (2,000,000 SHA-512-crypt rounds, about 1.2 s).
pub(crate) const MIN_SHACRYPT_ROUNDS: u32 = 1_000;
pub(crate) const MAX_SHACRYPT_ROUNDS: u32 = 2_000_000;

impl Inner {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Md5 => "md5",
            Self::Sha1 => "sha1",
            Self::Pbkdf2 { prf: Prf::Sha1, .. } => "pbkdf2-sha1",
            Self::Pbkdf2 {
                prf: Prf::Sha256, ..
            } => "pbkdf2-sha256",
            Self::Pbkdf2 {
                prf: Prf::Sha512, ..
            } => "pbkdf2-sha512",
            Self::Phpass { .. } => "phpass",
            Self::Bcrypt {
                wordpress: false, ..
            } => "bcrypt",
            Self::Bcrypt {
                wordpress: true, ..
            } => "wp-bcrypt",
            Self::Md5Crypt { .. } => "md5-crypt",
            Self::ShaCrypt { sha512: false, .. } => "sha256-crypt",
            Self::ShaCrypt { sha512: true, .. } => "sha512-crypt",
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
            Self::Sha256Salted { salt, .. }
            | Self::Pbkdf2 { salt, .. }
            | Self::Phpass { salt, .. }
            | Self::Bcrypt { salt, .. }
            | Self::Md5Crypt { salt }
            | Self::ShaCrypt { salt, .. } => Some(salt),
            Self::Md5 | Self::Sha1 => None,
        }
    }

    /// `irounds=`: PBKDF2's iterations, phpass's log2 of them.
    pub(crate) fn rounds(&self) -> Option<u64> {
        match self {
            Self::Pbkdf2 { rounds, .. } => Some(u64::from(*rounds)),
            Self::Phpass { log2, .. } => Some(u64::from(*log2)),
            Self::Bcrypt { cost, .. } => Some(u64::from(*cost)),
            Self::ShaCrypt { rounds, .. } => Some(u64::from(*rounds)),
            _ => None,
        }
    }

    /// `ilen=`: PBKDF2's output length.
    pub(crate) fn len(&self) -> Option<u64> {
        match self {
            Self::Pbkdf2 { len, .. } => u64::try_from(*len).ok(),
            _ => None,
        }
    }

    pub(crate) fn from_phc(name: &str, params: InnerParams) -> Result<Self, Error> {
        let malformed = |reason| Err(Error::PhcMalformed { reason });
        if let Some(prf) = match name {
            "pbkdf2-sha1" => Some(Prf::Sha1),
            "pbkdf2-sha256" => Some(Prf::Sha256),
            "pbkdf2-sha512" => Some(Prf::Sha512),
            _ => None,
        } {
            let (Some(rounds), Some(len), Some(salt)) = (params.rounds, params.len, params.salt)
            else {
                return malformed("pbkdf2 needs irounds=, ilen= and isalt=");
            };
            return Self::pbkdf2(prf, rounds, len, salt, MAX_PBKDF2_ROUNDS);
        }
        if name == "md5-crypt" {
            let (None, None, Some(salt)) = (params.rounds, params.len, params.salt) else {
                return malformed("md5-crypt needs isalt= only");
            };
            return Self::md5_crypt(salt);
        }
        if name == "sha256-crypt" || name == "sha512-crypt" {
            let (Some(rounds), None, Some(salt)) = (params.rounds, params.len, params.salt) else {
                return malformed("sha-crypt needs irounds= and isalt= only");
            };
            return Self::sha_crypt(name == "sha512-crypt", rounds, salt, MAX_SHACRYPT_ROUNDS);
        }
        if name == "bcrypt" || name == "wp-bcrypt" {
            let (Some(cost), None, Some(salt)) = (params.rounds, params.len, params.salt) else {
                return malformed("bcrypt needs irounds= and isalt= only");
            };
            return Self::bcrypt(cost, salt, name == "wp-bcrypt", MAX_BCRYPT_COST);
        }
        if name == "phpass" {
            let (Some(log2), None, Some(salt)) = (params.rounds, params.len, params.salt) else {
                return malformed("phpass needs irounds= and isalt= only");
            };
            return Self::phpass(log2, salt, MAX_PHPASS_LOG2);
        }
        if params.rounds.is_some() || params.len.is_some() {
            return malformed("irounds= or ilen= on a scheme without them");
        }
        let isalt = params.salt;
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

    /// A PBKDF2 scheme, checked: 1 to `max_rounds` iterations, a 16-to-64-byte output, a
    /// 1-to-48-byte salt.
    pub(crate) fn pbkdf2(
        prf: Prf,
        rounds: u64,
        len: u64,
        salt: Vec<u8>,
        max_rounds: u32,
    ) -> Result<Self, Error> {
        let scheme = "pbkdf2";
        let rounds: u32 = within(
            rounds,
            1,
            max_rounds,
            scheme,
            "iteration count is 0 or above the limit",
        )?;
        let len: usize = within(len, 16, 64, scheme, "derived key must be 16 to 64 bytes")?;
        if salt.is_empty() || salt.len() > MAX_LEGACY_SALT {
            return Err(Error::LegacyDigest {
                scheme,
                reason: "salt must be 1 to 48 bytes",
            });
        }
        Ok(Self::Pbkdf2 {
            prf,
            rounds,
            len,
            salt,
        })
    }

    /// A phpass scheme, checked: 2^7 to 2^`max_log2` iterations (phpass's own range
    /// starts at 7), an 8-byte salt.
    pub(crate) fn phpass(log2: u64, salt: Vec<u8>, max_log2: u8) -> Result<Self, Error> {
        let log2: u8 = within(
            log2,
            7,
            max_log2,
            "phpass",
            "iteration count outside 2^7 and the limit",
        )?;
        if salt.len() != 8 {
            return Err(Error::LegacyDigest {
                scheme: "phpass",
                reason: "salt must be 8 characters",
            });
        }
        Ok(Self::Phpass { log2, salt })
    }

    /// A bcrypt scheme, checked: cost 4 to `max_cost`, a 16-byte salt.
    pub(crate) fn bcrypt(
        cost: u64,
        salt: Vec<u8>,
        wordpress: bool,
        max_cost: u8,
    ) -> Result<Self, Error> {
        let cost: u8 = within(cost, 4, max_cost, "bcrypt", "cost outside 4 and the limit")?;
        if salt.len() != 16 {
            return Err(Error::LegacyDigest {
                scheme: "bcrypt",
                reason: "salt must be 16 bytes",
            });
        }
        Ok(Self::Bcrypt {
            cost,
            salt,
            wordpress,
        })
    }

    /// An MD5-crypt scheme, checked: a 1-to-8-character salt without `$`.
    pub(crate) fn md5_crypt(salt: Vec<u8>) -> Result<Self, Error> {
        if salt.is_empty() || salt.len() > 8 || salt.contains(&b'$') {
            return Err(Error::LegacyDigest {
                scheme: "md5-crypt",
                reason: "salt must be 1 to 8 characters without '$'",
            });
        }
        Ok(Self::Md5Crypt { salt })
    }

    /// A SHA-crypt scheme, checked: 1,000 to `max_rounds` rounds, a 1-to-16-character
    /// salt without `$`.
    pub(crate) fn sha_crypt(
        sha512: bool,
        rounds: u64,
        salt: Vec<u8>,
        max_rounds: u32,
    ) -> Result<Self, Error> {
        let scheme = "sha-crypt";
        let rounds: u32 = within(
            rounds,
            MIN_SHACRYPT_ROUNDS,
            max_rounds,
            scheme,
            "rounds below 1,000 or above the limit",
        )?;
        if salt.is_empty() || salt.len() > 16 || salt.contains(&b'$') {
            return Err(Error::LegacyDigest {
                scheme,
                reason: "salt must be 1 to 16 characters without '$'",
            });
        }
        Ok(Self::ShaCrypt {
            sha512,
            rounds,
            salt,
        })
    }

    pub(crate) fn digest_len(&self) -> usize {
        match self {
            Self::Bcrypt { .. } => 31,
            Self::Md5Crypt { .. } => 22,
            Self::ShaCrypt { sha512: false, .. } => 43,
            Self::ShaCrypt { sha512: true, .. } => 86,
            Self::Md5 | Self::Phpass { .. } => 16,
            Self::Sha1 => 20,
            Self::Sha256Salted { .. } => 32,
            Self::Pbkdf2 { len, .. } => *len,
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
            Self::Pbkdf2 {
                prf,
                rounds,
                len,
                salt,
            } => {
                let mut out = vec![0u8; *len];
                match prf {
                    Prf::Sha1 => pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, *rounds, &mut out),
                    Prf::Sha256 => {
                        pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, *rounds, &mut out);
                    }
                    Prf::Sha512 => {
                        pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password, salt, *rounds, &mut out);
                    }
                }
                out
            }
            Self::Phpass { log2, salt } => {
                // phpass: md5(salt . password), then 2^log2 times md5(hash . password).
                let mut hash = Md5::new()
                    .chain_update(salt)
                    .chain_update(password)
                    .finalize();
                for _ in 0..(1u64 << *log2) {
                    hash = Md5::new()
                        .chain_update(hash)
                        .chain_update(password)
                        .finalize();
                }
                hash.to_vec()
            }
            Self::Bcrypt {
                cost,
                salt,
                wordpress,
            } => bcrypt_digest(password, *cost, salt, *wordpress),
            Self::Md5Crypt { salt } => md5_crypt(password, salt),
            Self::ShaCrypt {
                sha512,
                rounds,
                salt,
            } => sha_crypt(password, *sha512, *rounds, salt),
        })
    }
}

/// MD5-crypt (Poul-Henning Kamp's, FreeBSD 1994; `$1$`), as its 22-character hash text.
fn md5_crypt(password: &[u8], salt: &[u8]) -> Vec<u8> {
    let alt = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    let mut ctx = Md5::new()
        .chain_update(password)
        .chain_update(b"$1$")
        .chain_update(salt);
    for chunk in password.chunks(16) {
        ctx.update(&alt[..chunk.len()]);
    }
    let mut i = password.len();
    while i > 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&password[..1]);
        }
        i >>= 1;
    }
    let mut fin = ctx.finalize();
    for round in 0..1000 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(password);
        } else {
            c.update(fin);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(password);
        }
        if round & 1 == 1 {
            c.update(fin);
        } else {
            c.update(password);
        }
        fin = c.finalize();
    }
    // The output's byte order (as `(fin[0] << 16) | (fin[6] << 8) | fin[12]`, … in the
    // C code), then crypt's little-endian base64, the one SHA-crypt uses.
    const ORDER: [usize; 16] = [12, 6, 0, 13, 7, 1, 14, 8, 2, 15, 9, 3, 5, 10, 4, 11];
    let ordered: Zeroizing<Vec<u8>> = Zeroizing::new(ORDER.iter().map(|&i| fin[i]).collect());
    <base64ct::Base64ShaCrypt as base64ct::Encoding>::encode_string(&ordered).into_bytes()
}

/// SHA-crypt (Ulrich Drepper's; `$5$`, `$6$`) via RustCrypto's `sha-crypt`, as its hash
/// text: the output bytes in the specification's order, in crypt's base64.
fn sha_crypt(password: &[u8], sha512: bool, rounds: u32, salt: &[u8]) -> Vec<u8> {
    use base64ct::{Base64ShaCrypt, Encoding as _};
    // The specification's byte orders (as `sha-crypt` applies them in its MCF encoder).
    const ORDER_256: [usize; 32] = [
        20, 10, 0, 11, 1, 21, 2, 22, 12, 23, 13, 3, 14, 4, 24, 5, 25, 15, 26, 16, 6, 17, 7, 27, 8,
        28, 18, 29, 19, 9, 30, 31,
    ];
    const ORDER_512: [usize; 64] = [
        42, 21, 0, 1, 43, 22, 23, 2, 44, 45, 24, 3, 4, 46, 25, 26, 5, 47, 48, 27, 6, 7, 49, 28, 29,
        8, 50, 51, 30, 9, 10, 52, 31, 32, 11, 53, 54, 33, 12, 13, 55, 34, 35, 14, 56, 57, 36, 15,
        16, 58, 37, 38, 17, 59, 60, 39, 18, 19, 61, 40, 41, 20, 62, 63,
    ];
    // Rounds were checked when the scheme was built; if they were refused here, an empty
    // digest never matches a stored one.
    let Ok(params) = sha_crypt::Params::new(rounds) else {
        return Vec::new();
    };
    let ordered: Zeroizing<Vec<u8>> = Zeroizing::new(if sha512 {
        let raw = Zeroizing::new(sha_crypt::sha512_crypt(password, salt, params));
        ORDER_512.iter().map(|&i| raw[i]).collect()
    } else {
        let raw = Zeroizing::new(sha_crypt::sha256_crypt(password, salt, params));
        ORDER_256.iter().map(|&i| raw[i]).collect()
    });
    Base64ShaCrypt::encode_string(&ordered).into_bytes()
}

/// The 31 characters bcrypt encodes its hash as, for these inputs. WordPress 6.8 first
/// replaces the password by base64(HMAC-SHA-384(key "wp-sha384", password)).
fn bcrypt_digest(password: &[u8], cost: u8, salt: &[u8], wordpress: bool) -> Vec<u8> {
    use base64ct::{Base64, Encoding as _};
    use hmac::{KeyInit, Mac as _};
    let pre;
    let input = if wordpress {
        #[allow(clippy::expect_used, reason = "an invariant of HMAC, not of the input")]
        let mut mac = <hmac::Hmac<sha2::Sha384> as KeyInit>::new_from_slice(b"wp-sha384")
            .expect("HMAC accepts keys of every length");
        mac.update(password);
        pre = Zeroizing::new(Base64::encode_string(&mac.finalize().into_bytes()));
        pre.as_bytes()
    } else {
        password
    };
    let mut salt16 = [0u8; 16];
    salt16.copy_from_slice(salt);
    // Cost and salt were checked when the scheme was built, so this does not fail; if it
    // did, an empty digest never matches a stored one.
    bcrypt::hash_with_salt(input, u32::from(cost), salt16).map_or_else(
        |_| Vec::new(),
        |parts| {
            let text = Zeroizing::new(parts.format_for_version(bcrypt::Version::TwoY));
            text.as_bytes()[29..].to_vec()
        },
    )
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

/// `value` as a `T` in `min..=max`, or the scheme's error.
fn within<T: TryFrom<u64> + PartialOrd>(
    value: u64,
    min: T,
    max: T,
    scheme: &'static str,
    reason: &'static str,
) -> Result<T, Error> {
    T::try_from(value)
        .ok()
        .filter(|v| (min..=max).contains(v))
        .ok_or(Error::LegacyDigest { scheme, reason })
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

    fn params_of(inner: &Inner) -> InnerParams {
        InnerParams {
            rounds: inner.rounds(),
            len: inner.len(),
            salt: inner.salt().map(<[u8]>::to_vec),
        }
    }

    #[test]
    fn phc_names_round_trip() {
        for inner in [
            Inner::Pbkdf2 {
                prf: Prf::Sha512,
                rounds: 5,
                len: 32,
                salt: vec![9; 16],
            },
            Inner::Phpass {
                log2: 8,
                salt: b"abcdefgh".to_vec(),
            },
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
            let back = Inner::from_phc(inner.name(), params_of(&inner));
            assert!(back.is_ok_and(|b| b == inner));
        }
        let salted = |salt: Option<Vec<u8>>| InnerParams {
            salt,
            ..InnerParams::default()
        };
        assert!(Inner::from_phc("md4", salted(None)).is_err());
        assert!(Inner::from_phc("md5", salted(Some(vec![1]))).is_err());
        assert!(Inner::from_phc("sha256-salt-prefix", salted(None)).is_err());
        assert!(Inner::from_phc("phpass", salted(Some(vec![1; 8]))).is_err());
        let pbkdf2 = |rounds, len| InnerParams {
            rounds: Some(rounds),
            len: Some(len),
            salt: Some(vec![1; 8]),
        };
        assert!(Inner::from_phc("pbkdf2-sha256", pbkdf2(1000, 32)).is_ok());
        assert!(Inner::from_phc("pbkdf2-sha256", pbkdf2(0, 32)).is_err());
        assert!(Inner::from_phc("pbkdf2-sha256", pbkdf2(2_000_001, 32)).is_err());
        let costly = |name, rounds| InnerParams {
            rounds: Some(rounds),
            len: None,
            salt: Some(vec![b'a'; if name == "bcrypt" { 16 } else { 8 }]),
        };
        assert!(Inner::from_phc("phpass", costly("phpass", 22)).is_ok());
        assert!(
            Inner::from_phc("phpass", costly("phpass", 23)).is_err(),
            "2^23 MD5s in a stored string: refused"
        );
        assert!(Inner::from_phc("bcrypt", costly("bcrypt", 15)).is_err());
        assert!(Inner::from_phc("sha512-crypt", costly("sha512-crypt", 2_000_001)).is_err());
        assert!(Inner::from_phc("pbkdf2-sha256", pbkdf2(1000, 15)).is_err());
        assert!(Inner::from_phc("md5", pbkdf2(1000, 32)).is_err());
    }
}
