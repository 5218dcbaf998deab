//! `LegacyHash::parse`: the stored forms old platforms export, recognised from the string
//! alone (each is self-describing by prefix or exact shape).

use base64ct::{Base64, Encoding as _};
use zeroize::Zeroizing;

use super::hash::LegacyHash;
use super::inner::{Inner, Prf, SaltPosition};
use crate::password::Error;

/// Limits on what [`LegacyHash::parse_with`] accepts, so that no imported row makes a
/// login run for seconds. The stored onion has hard caps of its own (2,000,000 PBKDF2
/// iterations, phpass 2^22, bcrypt cost 14, 2,000,000 SHA-crypt rounds: about a second
/// each at most) that no setting here can raise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LegacyLimits {
    /// The most PBKDF2 iterations (default and hard cap 2,000,000: Django 5.2 writes
    /// 1,000,000; 2,000,000 cost 0.32 s with SHA-256 and 1.2 s with SHA-512 here).
    pub max_pbkdf2_rounds: u32,
    /// The largest phpass log2 iteration count (default 18; WordPress writes 8, phpBB 11).
    pub max_phpass_log2: u8,
    /// The largest bcrypt cost (default 13, about 0.6 s here; PHP and Laravel write 10
    /// to 12).
    pub max_bcrypt_cost: u8,
    /// The most SHA-crypt rounds (default 1,000,000, about 0.4 s of SHA-512-crypt here;
    /// glibc writes 5,000).
    pub max_shacrypt_rounds: u32,
}

impl Default for LegacyLimits {
    fn default() -> Self {
        Self {
            max_pbkdf2_rounds: 2_000_000,
            max_phpass_log2: 18,
            max_bcrypt_cost: 13,
            max_shacrypt_rounds: 1_000_000,
        }
    }
}

impl LegacyLimits {
    /// Each limit lowered to the stored onion's hard cap, so that nothing imported is
    /// refused when its wrapped form is read back.
    fn clamped(&self) -> Self {
        use super::inner::{
            MAX_BCRYPT_COST, MAX_PBKDF2_ROUNDS, MAX_PHPASS_LOG2, MAX_SHACRYPT_ROUNDS,
        };
        Self {
            max_pbkdf2_rounds: self.max_pbkdf2_rounds.min(MAX_PBKDF2_ROUNDS),
            max_phpass_log2: self.max_phpass_log2.min(MAX_PHPASS_LOG2),
            max_bcrypt_cost: self.max_bcrypt_cost.min(MAX_BCRYPT_COST),
            max_shacrypt_rounds: self.max_shacrypt_rounds.min(MAX_SHACRYPT_ROUNDS),
        }
    }
}

/// crypt(3)'s base64 alphabet, in its order (phpass's count character is an index in it).
const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

impl LegacyHash {
    /// Recognises an exported password hash from the string alone, with the default
    /// [`LegacyLimits`]:
    ///
    /// | form | platform |
    /// |---|---|
    /// | 32 / 40 hex digits | unsalted MD5 / SHA-1 |
    /// | `pbkdf2_sha256$<iterations>$<salt>$<base64>`, `pbkdf2_sha1$…` | Django (Saleor, django-oscar) |
    /// | `$P$…` / `$H$…` (34 characters) | phpass: WordPress before 6.8, WooCommerce, phpBB |
    /// | base64 of `0x00 ‖ salt ‖ key` (v2) or `0x01 ‖ prf ‖ iterations ‖ salt length ‖ salt ‖ key` (v3) | ASP.NET Identity (nopCommerce) |
    /// | `<64 hex>:<salt>:1` | Magento 2 legacy rows (SHA-256 of salt then password) |
    ///
    /// | `$2y$`, `$2a$`, `$2b$` (60 characters) | bcrypt: PHP `password_hash`, Laravel, Shopware, PrestaShop 1.7+, Symfony |
    /// | `$wp$2y$…` | WordPress 6.8+: bcrypt over base64(HMAC-SHA-384) |
    ///
    /// | `$1$<salt>$<hash>` | MD5-crypt, older Unix-style custom systems |
    /// | `$5$[rounds=N$]<salt>$<hash>`, `$6$…` | SHA-256-crypt, SHA-512-crypt |
    ///
    /// `$2x$` (hashes made by an old crypt_blowfish bug) is recognised and refused.
    ///
    /// # Errors
    /// [`Error::LegacyDigest`] naming the format that could not be read and why, or
    /// `unknown` when no form matches. Never panics (proptested).
    ///
    /// # Examples
    /// ```
    /// use shopsafe::password::LegacyHash;
    ///
    /// let django = LegacyHash::parse(
    ///     "pbkdf2_sha256$1000$AwiMebbdwBXp$bJv7Kcq3siLSM1hbD7RxPoV5pEexC8IXrWYXGbGJ4RU=",
    /// )?;
    /// assert_eq!(format!("{django:?}"), "LegacyHash(pbkdf2-sha256)");
    /// let wordpress = LegacyHash::parse("$P$62pKikNhGackJ8fKRohKZq2C2dEQWn.")?;
    /// assert_eq!(format!("{wordpress:?}"), "LegacyHash(phpass)");
    /// assert!(LegacyHash::parse("pbkdf2_sha256$0$salt$AAAA").is_err());
    /// # Ok::<(), shopsafe::password::Error>(())
    /// ```
    pub fn parse(stored: &str) -> Result<Self, Error> {
        Self::parse_with(stored, &LegacyLimits::default())
    }

    /// [`parse`](Self::parse) with other limits.
    ///
    /// # Errors
    /// As [`parse`](Self::parse); a cost above `limits` is refused.
    pub fn parse_with(stored: &str, limits: &LegacyLimits) -> Result<Self, Error> {
        let limits = &limits.clamped();
        let s = stored.trim();
        if let Some(rest) = s.strip_prefix("pbkdf2_sha256$") {
            return django(rest, Prf::Sha256, limits);
        }
        if let Some(rest) = s.strip_prefix("pbkdf2_sha1$") {
            return django(rest, Prf::Sha1, limits);
        }
        if s.starts_with("$P$") || s.starts_with("$H$") {
            return phpass(s, limits);
        }
        if let Some(rest) = s.strip_prefix("$wp") {
            return bcrypt(rest, true, limits);
        }
        if s.starts_with("$2") {
            return bcrypt(s, false, limits);
        }
        if let Some(rest) = s.strip_prefix("$1$") {
            return md5_crypt(rest);
        }
        if let Some(rest) = s.strip_prefix("$5$") {
            return sha_crypt(rest, false, limits);
        }
        if let Some(rest) = s.strip_prefix("$6$") {
            return sha_crypt(rest, true, limits);
        }
        if let Some((hex, rest)) = s.split_once(':')
            && hex.len() == 64
        {
            return magento(hex, rest);
        }
        if s.bytes().all(|b| b.is_ascii_hexdigit()) {
            match s.len() {
                32 => return Self::md5_hex(s),
                40 => return Self::sha1_hex(s),
                _ => {}
            }
        }
        let base64ish = !s.is_empty()
            && !s.starts_with('$')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
        if base64ish && let Ok(blob) = Base64::decode_vec(s) {
            return aspnet(&Zeroizing::new(blob), limits);
        }
        Err(Error::LegacyDigest {
            scheme: "unknown",
            reason: "no supported legacy format matches",
        })
    }
}

fn bad(scheme: &'static str, reason: &'static str) -> Error {
    Error::LegacyDigest { scheme, reason }
}

/// An error of the inner scheme, named after the format being read.
fn named(scheme: &'static str) -> impl Fn(Error) -> Error {
    move |e| match e {
        Error::LegacyDigest { reason, .. } => bad(scheme, reason),
        other => other,
    }
}

/// `<iterations>$<salt>$<base64 key>` after Django's algorithm name.
fn django(rest: &str, prf: Prf, limits: &LegacyLimits) -> Result<LegacyHash, Error> {
    let scheme = "django-pbkdf2";
    let mut parts = rest.split('$');
    let (Some(iterations), Some(salt), Some(key), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(scheme, "expected <iterations>$<salt>$<hash>"));
    };
    if iterations.is_empty()
        || iterations.len() > 10
        || !iterations.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad(scheme, "iterations are not a decimal number"));
    }
    let rounds: u64 = iterations
        .parse()
        .map_err(|_| bad(scheme, "iterations are not a decimal number"))?;
    let key =
        Zeroizing::new(Base64::decode_vec(key).map_err(|_| bad(scheme, "the hash is not base64"))?);
    let inner = Inner::pbkdf2(
        prf,
        rounds,
        key.len() as u64,
        salt.as_bytes().to_vec(),
        limits.max_pbkdf2_rounds,
    )
    .map_err(named(scheme))?;
    Ok(LegacyHash { inner, digest: key })
}

/// phpass portable: `$P$` or `$H$`, one count character, 8 salt characters, 22 hash
/// characters (phpass's own little-endian base64 of 16 bytes).
fn phpass(s: &str, limits: &LegacyLimits) -> Result<LegacyHash, Error> {
    let scheme = "phpass";
    let b = s.as_bytes();
    if b.len() != 34 {
        return Err(bad(scheme, "must be 34 characters"));
    }
    let log2 = ITOA64
        .iter()
        .position(|&c| c == b[3])
        .ok_or(bad(scheme, "bad count character"))?;
    let salt = &b[4..12];
    if !salt.iter().all(|c| ITOA64.contains(c)) {
        return Err(bad(scheme, "bad salt character"));
    }
    // phpass's `encode64` is crypt's little-endian base64, the one SHA-crypt uses;
    // `base64ct` refuses a non-canonical last character.
    let mut digest = [0u8; 16];
    <base64ct::Base64ShaCrypt as base64ct::Encoding>::decode(&b[12..], &mut digest)
        .ok()
        .filter(|d| d.len() == 16)
        .ok_or(bad(scheme, "the hash is not phpass base64"))?;
    let inner = Inner::phpass(log2 as u64, salt.to_vec(), limits.max_phpass_log2)?;
    Ok(LegacyHash {
        inner,
        digest: Zeroizing::new(digest.to_vec()),
    })
}

/// `$2y$NN$<22 salt><31 hash>`: the salt decoded (16 bytes), the hash kept as its 31
/// characters, which must be the canonical encoding of 23 bytes.
fn bcrypt(s: &str, wordpress: bool, limits: &LegacyLimits) -> Result<LegacyHash, Error> {
    use base64ct::Base64Bcrypt;
    let scheme = if wordpress {
        "wordpress-bcrypt"
    } else {
        "bcrypt"
    };
    if s.len() != 60 || !s.is_ascii() {
        return Err(bad(scheme, "must be 60 characters"));
    }
    if !["$2a$", "$2b$", "$2y$"].iter().any(|p| s.starts_with(p)) {
        return Err(bad(scheme, "version must be 2a, 2b or 2y"));
    }
    let cost = &s[4..6];
    if !cost.bytes().all(|c| c.is_ascii_digit()) || s.as_bytes()[6] != b'$' {
        return Err(bad(scheme, "cost must be two digits"));
    }
    let (salt_text, hash_text) = (&s[7..29], &s[29..]);
    let mut salt = [0u8; 16];
    let mut hash = [0u8; 23];
    let canonical = Base64Bcrypt::decode(salt_text, &mut salt).is_ok()
        && Base64Bcrypt::decode(hash_text, &mut hash).is_ok()
        && Base64Bcrypt::encode_string(&salt) == salt_text
        && Base64Bcrypt::encode_string(&hash) == hash_text;
    if !canonical {
        return Err(bad(scheme, "salt or hash is not canonical bcrypt base64"));
    }
    let cost: u64 = cost
        .parse()
        .map_err(|_| bad(scheme, "cost must be two digits"))?;
    // The range (4 to the limit) is checked once, by the scheme.
    let inner = Inner::bcrypt(cost, salt.to_vec(), wordpress, limits.max_bcrypt_cost)
        .map_err(named(scheme))?;
    Ok(LegacyHash {
        inner,
        digest: Zeroizing::new(hash_text.as_bytes().to_vec()),
    })
}

/// The hash text of a crypt scheme: exactly `len` characters of crypt's base64.
fn crypt_text(hash: &str, len: usize, scheme: &'static str) -> Result<Zeroizing<Vec<u8>>, Error> {
    if hash.len() != len || !hash.bytes().all(|c| ITOA64.contains(&c)) {
        return Err(bad(
            scheme,
            "the hash is not crypt base64 of the right length",
        ));
    }
    Ok(Zeroizing::new(hash.as_bytes().to_vec()))
}

/// `<salt>$<22 characters>` after `$1$`.
fn md5_crypt(rest: &str) -> Result<LegacyHash, Error> {
    let scheme = "md5-crypt";
    let (salt, hash) = rest
        .split_once('$')
        .ok_or(bad(scheme, "expected $1$<salt>$<hash>"))?;
    let digest = crypt_text(hash, 22, scheme)?;
    Ok(LegacyHash {
        inner: Inner::md5_crypt(salt.as_bytes().to_vec())?,
        digest,
    })
}

/// `[rounds=N$]<salt>$<hash>` after `$5$` or `$6$`.
fn sha_crypt(rest: &str, sha512: bool, limits: &LegacyLimits) -> Result<LegacyHash, Error> {
    let scheme = "sha-crypt";
    let (rounds, rest) = match rest.strip_prefix("rounds=") {
        Some(r) => {
            let (n, rest) = r
                .split_once('$')
                .ok_or(bad(scheme, "rounds= without '$'"))?;
            if n.is_empty() || n.len() > 10 || !n.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad(scheme, "rounds are not a decimal number"));
            }
            (
                n.parse()
                    .map_err(|_| bad(scheme, "rounds are not a decimal number"))?,
                rest,
            )
        }
        None => (5_000, rest),
    };
    let (salt, hash) = rest
        .split_once('$')
        .ok_or(bad(scheme, "expected <salt>$<hash>"))?;
    let digest = crypt_text(hash, if sha512 { 86 } else { 43 }, scheme)?;
    Ok(LegacyHash {
        inner: Inner::sha_crypt(
            sha512,
            rounds,
            salt.as_bytes().to_vec(),
            limits.max_shacrypt_rounds,
        )?,
        digest,
    })
}

/// ASP.NET Identity's `PasswordHasher` blobs (marker 0x00: v2; 0x01: v3).
fn aspnet(blob: &[u8], limits: &LegacyLimits) -> Result<LegacyHash, Error> {
    let scheme = "aspnet-identity";
    match blob.first() {
        Some(0x00) => {
            // v2: PBKDF2-HMAC-SHA1, 1,000 iterations, 16-byte salt, 32-byte key.
            if blob.len() != 49 {
                return Err(bad(scheme, "a v2 hash is 49 bytes"));
            }
            let inner = Inner::pbkdf2(
                Prf::Sha1,
                1000,
                32,
                blob[1..17].to_vec(),
                limits.max_pbkdf2_rounds,
            )
            .map_err(named(scheme))?;
            Ok(LegacyHash {
                inner,
                digest: Zeroizing::new(blob[17..].to_vec()),
            })
        }
        Some(0x01) => {
            let be = |at: usize| -> Option<u32> {
                Some(u32::from_be_bytes(blob.get(at..at + 4)?.try_into().ok()?))
            };
            let (Some(prf), Some(rounds), Some(salt_len)) = (be(1), be(5), be(9)) else {
                return Err(bad(scheme, "a v3 header is 13 bytes"));
            };
            let prf = match prf {
                0 => Prf::Sha1,
                1 => Prf::Sha256,
                2 => Prf::Sha512,
                _ => return Err(bad(scheme, "unknown v3 PRF")),
            };
            let salt_end = usize::try_from(salt_len)
                .ok()
                .and_then(|l| l.checked_add(13))
                .filter(|&end| end <= blob.len())
                .ok_or(bad(scheme, "the v3 salt runs past the end"))?;
            let key = &blob[salt_end..];
            let inner = Inner::pbkdf2(
                prf,
                u64::from(rounds),
                key.len() as u64,
                blob[13..salt_end].to_vec(),
                limits.max_pbkdf2_rounds,
            )
            .map_err(named(scheme))?;
            Ok(LegacyHash {
                inner,
                digest: Zeroizing::new(key.to_vec()),
            })
        }
        _ => Err(bad(scheme, "unknown format marker")),
    }
}

/// Magento 2's legacy `<sha256 hex>:<salt>:1`.
fn magento(hex: &str, rest: &str) -> Result<LegacyHash, Error> {
    let Some((salt, "1")) = rest.rsplit_once(':') else {
        return Err(bad("magento", "expected <sha256 hex>:<salt>:1"));
    };
    LegacyHash::sha256_salted_hex(salt.as_bytes(), SaltPosition::Prefix, hex)
        .map_err(named("magento"))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn phpass_hashes_with_a_non_canonical_last_character_are_refused() {
        let good = "$P$62pKikNhGackJ8fKRohKZq2C2dEQWn.";
        assert!(LegacyHash::parse(good).is_ok());
        // The last character carries 2 bits of the 16th byte; the others must be 0.
        let odd = format!("{}z", &good[..33]);
        assert!(matches!(
            LegacyHash::parse(&odd),
            Err(Error::LegacyDigest {
                scheme: "phpass",
                ..
            })
        ));
    }

    #[test]
    fn costs_above_the_limits_are_refused_at_parse_time() {
        let refused = |r: Result<LegacyHash, Error>| matches!(r, Err(Error::LegacyDigest { reason, .. }) if reason.contains("limit"));
        let with = |max_pbkdf2_rounds| LegacyLimits {
            max_pbkdf2_rounds,
            ..LegacyLimits::default()
        };
        let key = "bJv7Kcq3siLSM1hbD7RxPoV5pEexC8IXrWYXGbGJ4RU=";
        let django = format!("pbkdf2_sha256$1500000$salt${key}");
        assert!(
            LegacyHash::parse(&django).is_ok(),
            "1.5M is under the default 2M"
        );
        assert!(refused(LegacyHash::parse_with(&django, &with(1_000_000))));
        // A limit above the hard cap is clamped to it: 3M stays refused.
        let over = format!("pbkdf2_sha256$3000000$salt${key}");
        assert!(refused(LegacyHash::parse(&over)));
        assert!(refused(LegacyHash::parse_with(&over, &with(u32::MAX))));
        assert!(
            matches!(
                LegacyHash::parse_with(&django, &with(1_000_000)),
                Err(Error::LegacyDigest {
                    scheme: "django-pbkdf2",
                    ..
                })
            ),
            "the error names the format read, not the inner scheme"
        );
        // Count character 'J' is 2^21, over the default 2^18.
        assert!(refused(LegacyHash::parse(
            "$P$J2pKikNhGackJ8fKRohKZq2C2dEQWn."
        )));
        assert!(refused(LegacyHash::parse(
            "$2y$14$dC5qIyid996ty3RsSzFnjOFf0Nwko/q1Yae.fxJ8alD2B0stRdKbe"
        )));
    }

    #[test]
    fn each_refused_format_is_named() {
        for (s, scheme) in [
            (
                "$2x$04$dC5qIyid996ty3RsSzFnjOFf0Nwko/q1Yae.fxJ8alD2B0stRdKbe",
                "bcrypt",
            ),
            (
                "$2y$31$dC5qIyid996ty3RsSzFnjOFf0Nwko/q1Yae.fxJ8alD2B0stRdKbe",
                "bcrypt",
            ),
            (
                "$wp$2y$04$Bg8d8SaK5bOl8ZwYSUfRp.yAzcdQG5WGkUN7v52nF7p3LzOnjSi2",
                "wordpress-bcrypt",
            ),
            ("$1$Gog4uvUH$NbvXTTCfn/CvX40TW89Cw", "md5-crypt"),
            ("$1$toolongsalt$NbvXTTCfn/CvX40TW89Cw.", "md5-crypt"),
            ("$6$oC0ShToQaXG1cn6n$ZOX", "sha-crypt"),
            ("$6$rounds=999$oC0ShToQaXG1cn6n$ZOX", "sha-crypt"),
            ("hello world", "unknown"),
            ("", "unknown"),
        ] {
            assert!(
                matches!(LegacyHash::parse(s), Err(Error::LegacyDigest { scheme: got, .. }) if got == scheme),
                "{s}"
            );
        }
    }

    proptest! {
        #[test]
        fn garbage_is_an_error_never_a_panic(s in ".{0,120}") {
            let _ = LegacyHash::parse(&s);
        }

        #[test]
        fn near_misses_of_each_format_never_panic(
            prefix in prop_oneof![
                Just("pbkdf2_sha256$"), Just("pbkdf2_sha1$"), Just("$P$"), Just("$H$"),
                Just("$2y$10$"), Just("$wp$2y$10$"), Just("$2b$0"),
                Just("AQAAAA"), Just("AA"), Just("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef:"),
            ],
            rest in "[A-Za-z0-9./+=$:]{0,90}",
        ) {
            let _ = LegacyHash::parse(&format!("{prefix}{rest}"));
        }
    }
}
