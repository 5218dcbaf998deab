//! The password as typed, and its normalized form.

use core::fmt;

use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use super::Error;
use crate::secret::SecretString;

/// Longest accepted password after NFKC normalization, in bytes. Bounds hashing and
/// checking cost; NIST SP 800-63B §3.1.1.2 asks for at least 64 characters, and 1 KiB holds
/// 256 characters even in a four-byte script.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Longest raw input looked at: NFKC can grow text (up to 18× for rare characters), so
/// the raw input is capped before normalizing, to bound that work too.
const MAX_RAW_BYTES: usize = 4 * MAX_PASSWORD_BYTES;

/// A password as the customer typed it: wiped on drop, `Debug` prints a mask, not `Clone`.
///
/// Hashing and policy checks use its NFKC normalization (NIST SP 800-63B §3.1.1.2), so
/// the same password typed with a composed or decomposed "é" verifies either way.
///
/// # Examples
/// ```
/// use shopsafe::password::Password;
///
/// let pw = Password::new("correct horse battery staple");
/// assert_eq!(format!("{pw:?}"), "Password([REDACTED])");
/// ```
pub struct Password(SecretString);

impl Password {
    /// Wraps a password. Prefer passing an owned `String` (moved in, no copy left behind).
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::new(value.into()))
    }

    /// The password exactly as typed. Used for legacy digests, which never normalized.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// The NFKC form that is checked and hashed.
    ///
    /// # Errors
    /// [`Error::PasswordTooLong`] when the input or its normalization exceeds the caps.
    pub(crate) fn normalized(&self) -> Result<Zeroizing<String>, Error> {
        let raw = self.expose_secret();
        if raw.len() > MAX_RAW_BYTES {
            return Err(Error::PasswordTooLong {
                max_bytes: MAX_PASSWORD_BYTES,
            });
        }
        let normalized = Zeroizing::new(raw.nfkc().collect::<String>());
        if normalized.len() > MAX_PASSWORD_BYTES {
            return Err(Error::PasswordTooLong {
                max_bytes: MAX_PASSWORD_BYTES,
            });
        }
        Ok(normalized)
    }
}

impl From<String> for Password {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn composed_and_decomposed_forms_normalize_alike() {
        let composed = Password::new("caf\u{e9} au lait tous les jours");
        let decomposed = Password::new("cafe\u{301} au lait tous les jours");
        assert_eq!(
            *composed.normalized().expect("short"),
            *decomposed.normalized().expect("short")
        );
        // NFKC folds compatibility forms: full-width letters become ASCII.
        assert_eq!(*Password::new("ＡＢＣ").normalized().expect("short"), "ABC");
    }

    #[test]
    fn length_caps_are_enforced() {
        assert!(
            Password::new("a".repeat(MAX_PASSWORD_BYTES))
                .normalized()
                .is_ok()
        );
        assert!(matches!(
            Password::new("a".repeat(MAX_PASSWORD_BYTES + 1)).normalized(),
            Err(Error::PasswordTooLong {
                max_bytes: MAX_PASSWORD_BYTES
            })
        ));
        // U+FDFA normalizes to 18 characters (33 bytes): the output cap catches growth.
        assert!(Password::new("\u{FDFA}".repeat(40)).normalized().is_err());
        assert!(Password::new("a".repeat(1 << 20)).normalized().is_err());
    }

    proptest! {
        #[test]
        fn normalization_is_idempotent(s in "\\PC{0,64}") {
            if let Ok(once) = Password::new(s).normalized() {
                let twice = Password::new(once.to_string()).normalized().expect("NFKC output is no longer than the cap");
                prop_assert_eq!(&*once, &*twice);
            }
        }

        #[test]
        fn arbitrary_unicode_never_panics(s in any::<String>()) {
            let _ = Password::new(s).normalized();
        }
    }
}
