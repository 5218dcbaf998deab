//! A strict PHC string parser and formatter for the argon2id hashes this crate stores.
//!
//! Accepted forms (parameters in this order; every number decimal without leading zeros):
//!
//! ```text
//! $argon2id$v=19$m=<kib>,t=<passes>,p=<lanes>[,keyid=<b64>]$<b64 salt>$<b64 hash>
//! $argon2id-onion$v=19$m=..,t=..,p=..[,keyid=<b64>],inner=<legacy>[,isalt=<b64>]$<salt>$<hash>
//! ```
//!
//! The first is the standard string that libsodium, argon2-cffi and the reference `argon2`
//! CLI write and read. The second is this crate's own wrapper around an imported legacy
//! digest ([`LegacyHash`](super::LegacyHash)); its distinct identifier guarantees no other
//! library mistakes it for a plain argon2id hash.
//!
//! Everything is checked (field count, identifier, version, number syntax and caps,
//! base64 canonical form, salt and tag lengths) before a single block of memory is
//! allocated, so a hostile stored string cannot make a verify allocate 4 TiB.

use core::fmt;
use core::str::FromStr;

use base64ct::{Base64Unpadded, Encoding};
use subtle::ConstantTimeEq;

use super::Error;
use super::error::printable;
use super::legacy::{Inner, InnerParams};
use super::params::{Params, caps};
use super::pepper::KeyId;

const ID_PLAIN: &str = "argon2id";
const ID_ONION: &str = "argon2id-onion";
/// The only argon2 version accepted: 0x13, written `v=19` by every current library.
const VERSION: u32 = 19;
/// A PHC string longer than this is refused before it is split (salt and tag at most 64
/// bytes each, so a legitimate string stays well under 300 characters).
const MAX_PHC_LEN: usize = 512;

/// Which computation a stored hash records.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// argon2id over the NFKC-normalized password.
    Argon2id,
    /// argon2id over a legacy digest of the password (onion wrapping).
    Onion(Inner),
}

/// A parsed, validated argon2id password hash (a PHC string).
///
/// `Debug` shows the algorithm and parameters but never the salt or the tag: the pair is
/// what an attacker needs to start cracking. There is no `Display`, so that a hash does not
/// end up in a log by `{}`; write it to the store with [`PasswordHash::to_phc_string`].
///
/// # Examples
/// ```
/// use shopsafe::password::PasswordHash;
///
/// let s = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$iz6R0ycPu0VtrQxCZWN6+lGSkV0fgUqLqlzshbkkfMI";
/// let hash: PasswordHash = s.parse()?;
/// assert_eq!(hash.to_phc_string(), s);
/// assert_eq!(hash.params().m_kib(), 19_456);
/// assert!(PasswordHash::parse("$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA").is_err());
/// # Ok::<(), shopsafe::password::Error>(())
/// ```
#[derive(Clone)]
pub struct PasswordHash {
    pub(crate) scheme: Scheme,
    pub(crate) params: Params,
    pub(crate) key_id: Option<KeyId>,
    pub(crate) salt: Vec<u8>,
    pub(crate) tag: Vec<u8>,
}

impl PasswordHash {
    /// Parses and validates a PHC string.
    ///
    /// # Errors
    /// A precise [`Error`] for each defect: [`Error::PhcMalformed`],
    /// [`Error::UnsupportedAlgorithm`], [`Error::UnsupportedVersion`],
    /// [`Error::UnknownParam`], [`Error::MemoryTooMuch`], [`Error::TimeCostTooHigh`],
    /// [`Error::ParallelismTooHigh`], [`Error::InvalidParams`], [`Error::InvalidBase64`],
    /// [`Error::SaltLength`], [`Error::OutputLength`], [`Error::InvalidKeyId`].
    /// No error message contains the salt or the tag.
    pub fn parse(s: &str) -> Result<Self, Error> {
        if s.len() > MAX_PHC_LEN {
            return Err(Error::PhcMalformed {
                reason: "longer than 512 bytes",
            });
        }
        let mut fields = s.split('$');
        if fields.next() != Some("") {
            return Err(Error::PhcMalformed {
                reason: "does not start with '$'",
            });
        }
        let (Some(id), Some(version), Some(param_field), Some(salt), Some(tag), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(Error::PhcMalformed {
                reason: "expected $id$v=19$params$salt$hash",
            });
        };

        let onion = match id {
            ID_PLAIN => false,
            ID_ONION => true,
            other => {
                return Err(Error::UnsupportedAlgorithm {
                    found: printable(other),
                });
            }
        };
        let version = version.strip_prefix("v=").ok_or(Error::PhcMalformed {
            reason: "missing v= version field",
        })?;
        let version = decimal(version, "v")?;
        if version != u64::from(VERSION) {
            return Err(Error::UnsupportedVersion { found: version });
        }

        let parsed = ParamList::parse(param_field, onion)?;
        let salt = b64(salt, "salt")?;
        if !(caps::MIN_SALT..=caps::MAX_SALT).contains(&salt.len()) {
            return Err(Error::SaltLength { len: salt.len() });
        }
        let tag = b64(tag, "hash")?;
        if !(caps::MIN_OUTPUT..=caps::MAX_OUTPUT).contains(&tag.len()) {
            return Err(Error::OutputLength { len: tag.len() });
        }
        Ok(Self {
            scheme: parsed.scheme,
            params: parsed.params,
            key_id: parsed.key_id,
            salt,
            tag,
        })
    }

    /// The canonical PHC string, as stored in the credential record.
    #[must_use]
    pub fn to_phc_string(&self) -> String {
        let id = match self.scheme {
            Scheme::Argon2id => ID_PLAIN,
            Scheme::Onion(_) => ID_ONION,
        };
        let mut s = format!("${id}$v={VERSION}${}", self.params);
        if let Some(key_id) = &self.key_id {
            s.push_str(",keyid=");
            s.push_str(&Base64Unpadded::encode_string(key_id.as_str().as_bytes()));
        }
        if let Scheme::Onion(inner) = &self.scheme {
            s.push_str(",inner=");
            s.push_str(inner.name());
            if let Some(rounds) = inner.rounds() {
                s.push_str(&format!(",irounds={rounds}"));
            }
            if let Some(len) = inner.len() {
                s.push_str(&format!(",ilen={len}"));
            }
            if let Some(isalt) = inner.salt() {
                s.push_str(",isalt=");
                s.push_str(&Base64Unpadded::encode_string(isalt));
            }
        }
        s.push('$');
        s.push_str(&Base64Unpadded::encode_string(&self.salt));
        s.push('$');
        s.push_str(&Base64Unpadded::encode_string(&self.tag));
        s
    }

    /// The argon2id cost parameters recorded in the hash.
    #[must_use]
    pub fn params(&self) -> Params {
        self.params
    }

    /// The pepper key id recorded in the hash, if it was hashed with a pepper.
    #[must_use]
    pub fn key_id(&self) -> Option<&KeyId> {
        self.key_id.as_ref()
    }

    /// Whether this is an onion-wrapped legacy digest that must be replaced by a plain
    /// argon2id hash at the next successful login.
    #[must_use]
    pub fn is_legacy(&self) -> bool {
        matches!(self.scheme, Scheme::Onion(_))
    }
}

impl FromStr for PasswordHash {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

/// Constant-time on salt and tag: equality of stored hashes is not a timing oracle either.
impl PartialEq for PasswordHash {
    fn eq(&self, other: &Self) -> bool {
        let same_bytes = self.salt.ct_eq(&other.salt) & self.tag.ct_eq(&other.tag);
        self.scheme == other.scheme
            && self.params == other.params
            && self.key_id == other.key_id
            && bool::from(same_bytes)
    }
}

impl Eq for PasswordHash {}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("PasswordHash");
        match &self.scheme {
            Scheme::Argon2id => d.field("scheme", &ID_PLAIN),
            Scheme::Onion(inner) => d.field("scheme", &format_args!("{ID_ONION}/{}", inner.name())),
        };
        d.field("params", &self.params)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

struct ParamList {
    scheme: Scheme,
    params: Params,
    key_id: Option<KeyId>,
}

impl ParamList {
    fn parse(field: &str, onion: bool) -> Result<Self, Error> {
        let mut pairs = field.split(',').map(|pair| {
            pair.split_once('=').ok_or(Error::PhcMalformed {
                reason: "parameter without '='",
            })
        });
        let mut next = |name: &'static str| -> Result<&str, Error> {
            match pairs.next().transpose()? {
                Some((n, v)) if n == name => Ok(v),
                Some((n, _)) => Err(Error::UnknownParam { name: printable(n) }),
                None => Err(Error::PhcMalformed {
                    reason: "missing m, t or p parameter",
                }),
            }
        };
        let m = decimal(next("m")?, "m")?;
        let t = decimal(next("t")?, "t")?;
        let p = decimal(next("p")?, "p")?;
        if m > u64::from(caps::MAX_M_KIB) {
            return Err(Error::MemoryTooMuch { m_kib: m });
        }
        if t > u64::from(caps::MAX_T) {
            return Err(Error::TimeCostTooHigh { t });
        }
        if p > u64::from(caps::MAX_P) {
            return Err(Error::ParallelismTooHigh { p });
        }
        // All three fit in u32 now (caps are below u32::MAX).
        let params = Params::from_stored(narrow(m), narrow(t), narrow(p))?;

        let mut key_id = None;
        let mut inner_name = None;
        let mut inner = InnerParams::default();
        for pair in pairs {
            let (name, value) = pair?;
            // After inner=, in this order and each at most once: irounds, ilen, isalt.
            let named = inner_name.is_some();
            let (rounds, len, salt) = (
                inner.rounds.is_some(),
                inner.len.is_some(),
                inner.salt.is_some(),
            );
            match name {
                "keyid" if key_id.is_none() && !named => {
                    key_id = Some(KeyId::from_phc_bytes(&b64(value, "keyid")?)?);
                }
                "inner" if onion && !named => inner_name = Some(value),
                "irounds" if named && !rounds && !len && !salt => {
                    inner.rounds = Some(decimal(value, "irounds")?);
                }
                "ilen" if named && !len && !salt => inner.len = Some(decimal(value, "ilen")?),
                "isalt" if named && !salt => {
                    inner.salt = Some(b64(value, "isalt")?);
                }
                other => {
                    return Err(Error::UnknownParam {
                        name: printable(other),
                    });
                }
            }
        }
        let scheme = if onion {
            let name = inner_name.ok_or(Error::PhcMalformed {
                reason: "onion hash without inner= parameter",
            })?;
            Scheme::Onion(Inner::from_phc(name, inner)?)
        } else {
            Scheme::Argon2id
        };
        Ok(Self {
            scheme,
            params,
            key_id,
        })
    }
}

/// A PHC decimal: 1 to 10 ASCII digits, no sign, no leading zero (PHC string format spec).
fn decimal(s: &str, field: &'static str) -> Result<u64, Error> {
    let bytes = s.as_bytes();
    let canonical = !bytes.is_empty()
        && bytes.len() <= 10
        && bytes.iter().all(u8::is_ascii_digit)
        && (bytes[0] != b'0' || bytes.len() == 1);
    if !canonical {
        return Err(Error::PhcNumber { field });
    }
    s.parse().map_err(|_| Error::PhcNumber { field })
}

fn b64(s: &str, field: &'static str) -> Result<Vec<u8>, Error> {
    Base64Unpadded::decode_vec(s).map_err(|_| Error::InvalidBase64 { field })
}

fn narrow(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$iz6R0ycPu0VtrQxCZWN6+lGSkV0fgUqLqlzshbkkfMI";

    fn err(s: &str) -> Error {
        PasswordHash::parse(s).expect_err("string must be refused")
    }

    #[test]
    fn parses_and_formats_a_standard_string() {
        let h = PasswordHash::parse(GOOD).expect("valid");
        assert_eq!(h.to_phc_string(), GOOD);
        assert_eq!(h.params(), Params::owasp());
        assert_eq!(h.salt, b"somesaltsomesalt");
        assert!(!h.is_legacy());
        assert!(h.key_id().is_none());
    }

    #[test]
    fn absurd_memory_is_refused_before_any_work() {
        // 4 TiB in KiB, and an 11-digit value.
        let s = GOOD.replace("m=19456", "m=4294967295");
        assert!(matches!(
            err(&s),
            Error::MemoryTooMuch {
                m_kib: 4_294_967_295
            }
        ));
        let s = GOOD.replace("m=19456", "m=99999999999");
        assert!(matches!(err(&s), Error::PhcNumber { field: "m" }));
    }

    #[test]
    fn each_defect_has_its_own_error() {
        type Expect = fn(&Error) -> bool;
        let cases: Vec<(String, Expect)> = vec![
            (GOOD.replace("argon2id", "argon2i"), |e| {
                matches!(e, Error::UnsupportedAlgorithm { .. })
            }),
            (GOOD.replace("v=19", "v=16"), |e| {
                matches!(e, Error::UnsupportedVersion { found: 16 })
            }),
            (GOOD.replace("v=19", "19"), |e| {
                matches!(e, Error::PhcMalformed { .. })
            }),
            (GOOD.replace("t=2", "t=100"), |e| {
                matches!(e, Error::TimeCostTooHigh { t: 100 })
            }),
            (GOOD.replace("p=1", "p=65"), |e| {
                matches!(e, Error::ParallelismTooHigh { p: 65 })
            }),
            (GOOD.replace("t=2", "t=0"), |e| {
                matches!(e, Error::InvalidParams { .. })
            }),
            (GOOD.replace("t=2", "t=02"), |e| {
                matches!(e, Error::PhcNumber { field: "t" })
            }),
            (GOOD.replace("t=2", "t=+2"), |e| {
                matches!(e, Error::PhcNumber { field: "t" })
            }),
            (GOOD.replace("m=19456,t=2", "t=2,m=19456"), |e| {
                matches!(e, Error::UnknownParam { .. })
            }),
            (GOOD.replace("p=1", "p=1,data=YWJj"), |e| {
                matches!(e, Error::UnknownParam { .. })
            }),
            (GOOD.replace("p=1", "p=1,inner=md5"), |e| {
                matches!(e, Error::UnknownParam { .. })
            }),
            (GOOD.replace("c29tZXNhbHRzb21lc2FsdA", "c29tZQ"), |e| {
                matches!(e, Error::SaltLength { len: 4 })
            }),
            (
                GOOD.replace("c29tZXNhbHRzb21lc2FsdA", "c29tZXNhbHRzb21lc2Fsd!"),
                |e| matches!(e, Error::InvalidBase64 { field: "salt" }),
            ),
            (
                GOOD.replace("iz6R0ycPu0VtrQxCZWN6+lGSkV0fgUqLqlzshbkkfMI", "aGFzaA"),
                |e| matches!(e, Error::OutputLength { len: 4 }),
            ),
            (GOOD[..GOOD.len() - 44].to_owned(), |e| {
                matches!(e, Error::PhcMalformed { .. })
            }),
            (format!("{GOOD}$extra"), |e| {
                matches!(e, Error::PhcMalformed { .. })
            }),
            (GOOD[1..].to_owned(), |e| {
                matches!(e, Error::PhcMalformed { .. })
            }),
            ("x".repeat(600), |e| matches!(e, Error::PhcMalformed { .. })),
        ];
        for (s, ok) in cases {
            let e = err(&s);
            assert!(ok(&e), "{s}: got {e:?}");
        }
    }

    #[test]
    fn non_canonical_base64_is_refused() {
        // Same tag with the last character's unused low bits set: decodes loosely elsewhere.
        let s = GOOD.replace("fMI", "fMJ");
        assert!(matches!(err(&s), Error::InvalidBase64 { field: "hash" }));
    }

    #[test]
    fn debug_hides_salt_and_tag() {
        let h = PasswordHash::parse(GOOD).expect("valid");
        for dbg in [format!("{h:?}"), format!("{h:#?}")] {
            // Neither as stored (base64) nor decoded: as text, a byte list or hex. A
            // derived Debug would print the decoded bytes, which the base64 check misses.
            let mut forbidden = vec![
                "c29tZ".to_owned(),
                "iz6R".to_owned(),
                "somesalt".to_owned(),
                base16ct::lower::encode_string(&h.salt[..4]),
                base16ct::lower::encode_string(&h.tag[..4]),
                format!("{:?}", &h.salt[..3])
                    .trim_matches(['[', ']'])
                    .to_owned(),
                format!("{:?}", &h.tag[..3])
                    .trim_matches(['[', ']'])
                    .to_owned(),
                "salt".to_owned(),
                "tag".to_owned(),
            ];
            forbidden.retain(|f| !f.is_empty());
            for f in &forbidden {
                assert!(!dbg.contains(f.as_str()), "{f:?} in {dbg}");
            }
            assert!(dbg.contains("m=19456") || dbg.contains("19456"), "{dbg}");
        }
    }

    #[test]
    fn keyid_round_trips() {
        let s = "$argon2id$v=19$m=19456,t=2,p=1,keyid=azE$c29tZXNhbHRzb21lc2FsdA$iz6R0ycPu0VtrQxCZWN6+lGSkV0fgUqLqlzshbkkfMI";
        let h = PasswordHash::parse(s).expect("valid");
        assert_eq!(h.key_id().map(KeyId::as_str), Some("k1"));
        assert_eq!(h.to_phc_string(), s);
    }
}
