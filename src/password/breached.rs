//! The breached-password check's interface (NIST SP 800-63B-4 §3.1.1.2: refuse
//! "passwords obtained from previous breach corpuses").
//!
//! `password` holds only the trait and the digest it is asked about, so it stays free of
//! I/O. The implementations live in [`crate::pwned`]: an offline index of the Pwned
//! Passwords data and, behind the `pwned-api` feature, a client of its k-anonymity range
//! API. The [`AcceptancePolicy`](super::AcceptancePolicy) consults the source at sign-up
//! and reset, never at login (a lookup whose time depends on the password must not sit on
//! the path an attacker can time).

use sha1::{Digest, Sha1};
use zeroize::Zeroize;

/// The SHA-1 digest of a password as the customer typed it (UTF-8), the key of the Pwned
/// Passwords corpus.
///
/// # Security
/// SHA-1 of a password is as good as the password to anyone with a dictionary: it is
/// zeroized on drop, never printed (`Debug` shows a mask) and not `Clone`. Only its first
/// five hex digits ([`prefix_hex`](Self::prefix_hex)) may leave the machine.
pub struct PwnedDigest([u8; 20]);

impl Drop for PwnedDigest {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl PwnedDigest {
    /// The digest of these bytes (the password as typed, not normalized: the corpus holds
    /// what people typed).
    ///
    /// # Examples
    /// ```
    /// use shopsafe::password::PwnedDigest;
    ///
    /// // The corpus's best-known line: SHA-1("password").
    /// let d = PwnedDigest::of(b"password");
    /// assert_eq!(d.prefix_hex(), "5BAA6");
    /// ```
    #[must_use]
    pub fn of(password: &[u8]) -> Self {
        Self(Sha1::digest(password).into())
    }

    /// A digest given as its 20 bytes (for implementations and tests).
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 20]) -> Self {
        Self(bytes)
    }

    /// The 20 bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// The first five hex digits, uppercase: the range the k-anonymity API is asked for.
    #[must_use]
    pub fn prefix_hex(&self) -> String {
        let mut hex = base16ct::upper::encode_string(&self.0[..3]);
        hex.truncate(5);
        hex
    }
}

impl core::fmt::Debug for PwnedDigest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PwnedDigest(****)")
    }
}

/// A corpus of passwords known from breaches.
///
/// # Examples
/// A source that knows one password (real ones: [`crate::pwned::PwnedIndex`] and, with
/// the `pwned-api` feature, `crate::pwned::RangeClient`):
/// ```
/// use shopsafe::password::{BreachLookupError, BreachedPasswords, PwnedDigest};
///
/// struct One;
/// impl BreachedPasswords for One {
///     fn times_seen(&self, digest: &PwnedDigest) -> Result<u64, BreachLookupError> {
///         Ok(if digest.prefix_hex() == "5BAA6" { 10_000_000 } else { 0 })
///     }
/// }
/// assert_eq!(One.times_seen(&PwnedDigest::of(b"password"))?, 10_000_000);
/// # Ok::<(), BreachLookupError>(())
/// ```
pub trait BreachedPasswords: Send + Sync {
    /// How many times the password with this digest appears in the corpus; 0 when it does
    /// not.
    ///
    /// # Errors
    /// [`BreachLookupError`] when the corpus could not be read or asked; the
    /// [`AcceptancePolicy`](super::AcceptancePolicy) then accepts or refuses as its
    /// [`OnLookupFailure`] says.
    fn times_seen(&self, digest: &PwnedDigest) -> Result<u64, BreachLookupError>;
}

impl<T: BreachedPasswords + ?Sized> BreachedPasswords for std::sync::Arc<T> {
    fn times_seen(&self, digest: &PwnedDigest) -> Result<u64, BreachLookupError> {
        (**self).times_seen(digest)
    }
}

/// Why a breach lookup gave no answer. Never carries the digest or its prefix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BreachLookupError {
    /// Reading a local index failed.
    #[error("reading the breach index failed: {0}")]
    Io(#[from] std::io::Error),
    /// A local index is not in the expected format or is damaged.
    #[error("the breach index is damaged: {0}")]
    Corrupt(String),
    /// The remote service did not answer in time.
    #[error("the breach service did not answer within {0:?}")]
    Timeout(core::time::Duration),
    /// The remote service answered with an error or something unreadable, or could not be
    /// reached.
    #[error("the breach service failed: {0}")]
    Service(String),
}

/// What the acceptance policy does when the breach lookup fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnLookupFailure {
    /// Accept the password (the other rules still apply). Sign-ups keep working when the
    /// breach service is down; a breached password may get through meanwhile.
    Accept,
    /// Refuse with [`Rejection::BreachCheckUnavailable`](super::Rejection::BreachCheckUnavailable):
    /// the customer tries again later.
    Refuse,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_sha1_of_the_bytes_and_never_prints() {
        // RFC 3174 test 1: SHA-1("abc").
        let d = PwnedDigest::of(b"abc");
        assert_eq!(
            base16ct::lower::encode_string(d.as_bytes()),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(d.prefix_hex(), "A9993");
        assert_eq!(format!("{d:?}"), "PwnedDigest(****)");
    }
}
