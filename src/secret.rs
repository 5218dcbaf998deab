//! Shared secret newtypes and randomness helpers.
//!
//! Passwords, peppers, reset tokens and reset links live in these wrappers: the bytes
//! are wiped on drop, the type is not `Clone` and not `Serialize`, `Debug` prints a mask,
//! and reading the value takes a call to `expose_secret()`, which is easy to grep for in
//! a review. Card numbers (`card::Pan`), vault keys (`card::VaultKey`) and the audit key
//! (`audit::AuditKey`) have types of their own over a `Zeroizing` buffer, under the
//! same rules but for the name of the call that reads them.

use core::fmt;

use rand::TryRng;
use rand::rngs::SysRng;
use zeroize::Zeroizing;

/// A secret UTF-8 string, wiped from memory on drop.
///
/// # Examples
/// ```
/// use shopsafe::secret::SecretString;
///
/// let s = SecretString::new("hunter2".to_owned());
/// assert_eq!(format!("{s:?}"), "SecretString([REDACTED])");
/// assert_eq!(s.expose_secret(), "hunter2");
/// ```
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Wraps `value`; the `String` is moved in, so no unwiped copy is left behind.
    #[must_use]
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The secret value. Every call site is a place where the secret is used: keep them few.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([REDACTED])")
    }
}

/// Secret bytes (a key, a pepper), wiped from memory on drop.
///
/// # Examples
/// ```
/// use shopsafe::secret::SecretBytes;
///
/// let k = SecretBytes::new(vec![7; 32]);
/// assert_eq!(format!("{k:?}"), "SecretBytes([REDACTED; 32 bytes])");
/// assert_eq!(k.expose_secret().len(), 32);
/// ```
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Wraps `value`; the `Vec` is moved in, so no unwiped copy is left behind.
    #[must_use]
    pub fn new(value: Vec<u8>) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The secret bytes.
    #[must_use]
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The length is not secret (keys have fixed, documented sizes) and helps debugging.
        write!(f, "SecretBytes([REDACTED; {} bytes])", self.0.len())
    }
}

/// The operating system's random generator could not be read.
///
/// This is rare (an exhausted or sandboxed entropy source); treat it as an outage, never
/// fall back to a weaker generator.
#[derive(Debug, thiserror::Error)]
#[error("the operating system random generator failed")]
pub struct RngError(#[source] rand::rngs::SysError);

/// Fills `dest` from the operating system's CSPRNG.
pub(crate) fn fill_random(dest: &mut [u8]) -> Result<(), RngError> {
    SysRng.try_fill_bytes(dest).map_err(RngError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_value() {
        let s = SecretString::new("correct horse".to_owned());
        let b = SecretBytes::new(b"pepper-bytes".to_vec());
        assert!(!format!("{s:?}").contains("horse"));
        assert!(!format!("{b:?}").contains("112"));
        assert!(!format!("{b:?}").contains("pepper"));
    }

    #[test]
    fn fill_random_fills_distinct_values() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        fill_random(&mut a).expect("os rng available in tests");
        fill_random(&mut b).expect("os rng available in tests");
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 32]);
    }
}
