//! Keyed pseudonyms: the same value and kind give the same pseudonym under one key.

use core::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use zeroize::Zeroizing;

use super::Error;
use super::PiiKind;
use crate::kernel::{hmac_sha256, is_slug};

/// HMAC-SHA-256 pseudonyms for analytics joins: `<key id>:<22 base64url characters>`
/// (128 bits of the MAC).
///
/// The kind is part of the MAC input, so an email and a phone with the same text never
/// share a pseudonym; emails are trimmed and lowercased, phones reduced to their digits,
/// names and addresses trimmed with white space folded, before hashing.
///
/// # Security
/// A pseudonym is still personal data (GDPR recital 26): whoever holds the key can test
/// guesses. Keep the key out of the analytics store; destroying it anonymises every
/// pseudonym made with it.
///
/// # Examples
/// ```
/// use shopsafe::minimize::{PiiKind, Pseudonymizer};
///
/// let p = Pseudonymizer::new("a1", vec![7; 32])?;
/// let x = p.pseudonym(PiiKind::Email, " Jane@Example.com");
/// assert_eq!(x, p.pseudonym(PiiKind::Email, "jane@example.com"));
/// assert_ne!(x, p.pseudonym(PiiKind::PersonName, "jane@example.com"));
/// assert!(x.starts_with("a1:"));
/// # Ok::<(), shopsafe::minimize::Error>(())
/// ```
pub struct Pseudonymizer {
    key_id: String,
    key: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pseudonymizer({}, [REDACTED])", self.key_id)
    }
}

impl Pseudonymizer {
    /// A pseudonymizer with a key of at least 16 bytes (128 bits) and an id of 1–16
    /// characters of `a-z 0-9 _ -`.
    ///
    /// # Errors
    /// [`Error::KeyTooShort`], [`Error::InvalidKeyId`].
    pub fn new(key_id: &str, key: Vec<u8>) -> Result<Self, Error> {
        let key = Zeroizing::new(key);
        if key.len() < 16 {
            return Err(Error::KeyTooShort);
        }
        if !is_slug(key_id, 16, true) {
            return Err(Error::InvalidKeyId);
        }
        Ok(Self {
            key_id: key_id.to_owned(),
            key,
        })
    }

    /// The pseudonym of `value` as `kind`.
    #[must_use]
    pub fn pseudonym(&self, kind: PiiKind, value: &str) -> String {
        let normalized = Zeroizing::new(normalize(kind, value));
        let tag = hmac_sha256(
            &self.key,
            &[kind.as_str().as_bytes(), &[0], normalized.as_bytes()],
        );
        format!(
            "{}:{}",
            self.key_id,
            Base64UrlUnpadded::encode_string(&tag[..16])
        )
    }
}

/// The form a value is hashed in.
fn normalize(kind: PiiKind, value: &str) -> String {
    match kind {
        PiiKind::Email => value.trim().to_lowercase(),
        PiiKind::Phone => value.chars().filter(char::is_ascii_digit).collect(),
        _ => value.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn p(key: u8) -> Pseudonymizer {
        Pseudonymizer::new("k1", vec![key; 32]).expect("valid")
    }

    #[test]
    fn normalisation_rules_and_key_separation() {
        let a = p(1);
        assert_eq!(
            a.pseudonym(PiiKind::Phone, "+1 (415) 555-0132"),
            a.pseudonym(PiiKind::Phone, "14155550132")
        );
        assert_ne!(
            a.pseudonym(PiiKind::Email, "x@y.z"),
            p(2).pseudonym(PiiKind::Email, "x@y.z")
        );
        assert!(matches!(
            Pseudonymizer::new("k1", vec![0; 15]),
            Err(Error::KeyTooShort)
        ));
        assert!(matches!(
            Pseudonymizer::new("K 1", vec![0; 32]),
            Err(Error::InvalidKeyId)
        ));
        assert_eq!(format!("{a:?}"), "Pseudonymizer(k1, [REDACTED])");
    }

    #[test]
    fn known_answer_from_an_independent_hmac() {
        // Python: hmac.new(bytes([7]*32), b"email\x00jane@example.com", sha256).digest()[:16]
        let p = Pseudonymizer::new("k1", vec![7; 32]).expect("valid");
        assert_eq!(
            p.pseudonym(PiiKind::Email, "Jane@Example.com"),
            "k1:ypeSk9_tnMpCc3ZKLQCktw"
        );
    }

    proptest! {
        #[test]
        fn stable_per_kind_and_never_colliding_across_kinds(s in any::<String>()) {
            let a = p(3);
            let e = a.pseudonym(PiiKind::Email, &s);
            prop_assert_eq!(&e, &a.pseudonym(PiiKind::Email, &s));
            prop_assert_ne!(&e, &a.pseudonym(PiiKind::FreeText, &s));
            prop_assert_eq!(e.len(), 3 + 22);
        }
    }
}
