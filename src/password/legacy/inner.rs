//! The wrapped scheme: which legacy digest a record holds, its parameters (with their
//! hard caps), its name in the PHC string, and the digest it computes.

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::digest::{bcrypt_digest, md5_crypt, sha_crypt};
use crate::password::Error;
use crate::password::error::printable;

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

/// `value` as a `T` in `min..=max`, or the scheme's error.
pub(super) fn within<T: TryFrom<u64> + PartialOrd>(
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
pub(super) const MAX_LEGACY_SALT: usize = 48;
