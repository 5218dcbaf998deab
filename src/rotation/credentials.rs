//! The credential port: what [`Authenticator`](super::Authenticator) reads and writes
//! of an account's password, and the records it carries.

use core::fmt;

use subtle::ConstantTimeEq;

use crate::kernel::{AccountId, BrandId, Timestamp};
use crate::password::PasswordHash;
use crate::persist::StoreError;
use crate::secret::{RngError, fill_random};

/// A random 128-bit value that changes whenever the credential does; sessions carry it and
/// die when it changes.
///
/// Compared in constant time; `Debug` does not print it.
#[derive(Clone)]
pub struct SecurityStamp([u8; 16]);

impl SecurityStamp {
    /// A fresh random stamp.
    ///
    /// # Errors
    /// [`RngError`] when the OS generator fails.
    pub fn generate() -> Result<Self, RngError> {
        let mut b = [0u8; 16];
        fill_random(&mut b)?;
        Ok(Self(b))
    }

    /// From its 16 bytes (as stored).
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// Its 16 bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl PartialEq for SecurityStamp {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SecurityStamp {}

impl fmt::Debug for SecurityStamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecurityStamp([REDACTED])")
    }
}

/// Flags on a credential record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CredentialFlags(u32);

impl CredentialFlags {
    /// No flags.
    pub const NONE: Self = Self(0);
    /// The account is disabled: every login is rejected.
    pub const DISABLED: Self = Self(1);
    /// A reset is required for this account alone (set by an operator).
    pub const MUST_RESET: Self = Self(2);

    /// Whether every flag in `other` is set.
    #[must_use]
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of two flag sets.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// The raw bits (as stored).
    #[must_use]
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// From raw bits (unknown bits are kept, so a newer release's flags survive a rollback).
    #[must_use]
    pub const fn from_bits(bits: u32) -> Self {
        Self(bits)
    }
}

/// A stored credential.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CredentialRecord {
    /// Whose.
    pub account: AccountId,
    /// The argon2id hash.
    pub hash: PasswordHash,
    /// Bumped each time the password is set by reset; reset tokens are bound to it.
    pub generation: u64,
    /// When the current password was set.
    pub set_at: Timestamp,
    /// Changes with every password change; sessions carry it.
    pub stamp: SecurityStamp,
    /// Flags.
    pub flags: CredentialFlags,
    /// The storefronts this account belongs to, the one it signed up on first.
    pub brands: Vec<BrandId>,
}

/// Credential records.
pub trait CredentialStore: Send + Sync {
    /// Creates the credential of a new account (generation 0).
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`], or a backend failure.
    fn insert_credential(
        &self,
        account: &AccountId,
        brands: &[BrandId],
        hash: &PasswordHash,
        stamp: &SecurityStamp,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Loads a credential, `None` for an unknown account.
    ///
    /// # Errors
    /// A backend failure or a corrupt row.
    fn load_credential(&self, account: &AccountId) -> Result<Option<CredentialRecord>, StoreError>;

    /// Replaces the hash in place (a rehash on login) if the generation is still
    /// `generation`; returns whether it did. The stamp and set-at time do not change.
    ///
    /// # Errors
    /// A backend failure.
    fn replace_hash(
        &self,
        account: &AccountId,
        generation: u64,
        hash: &PasswordHash,
    ) -> Result<bool, StoreError>;

    /// Sets or clears flags.
    ///
    /// # Errors
    /// A backend failure.
    fn set_flags(&self, account: &AccountId, flags: CredentialFlags) -> Result<bool, StoreError>;

    /// The last `limit` previous hashes of the account, newest first.
    ///
    /// # Errors
    /// A backend failure or a corrupt row.
    fn password_history(
        &self,
        account: &AccountId,
        limit: usize,
    ) -> Result<Vec<PasswordHash>, StoreError>;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn ids_reject_what_they_promise_to_reject() {
        assert!(AccountId::new("x".repeat(128)).is_ok());
        assert!(AccountId::new("x".repeat(129)).is_err());
        assert!(AccountId::new("a\nb").is_err());
        assert!(AccountId::new("ünïcode-ok").is_ok());
        assert!(BrandId::new("x".repeat(33)).is_err());
        assert!(BrandId::new("shoes_2-eu").is_ok());
        assert!(BrandId::new("Shoes").is_err());
    }

    #[test]
    fn timestamps_saturate_instead_of_overflowing() {
        let end = Timestamp::from_millis(i64::MAX - 1).plus(Duration::from_secs(10));
        assert_eq!(end, Timestamp::from_millis(i64::MAX));
        assert_eq!(
            Timestamp::from_millis(5)
                .plus(Duration::from_millis(7))
                .as_millis(),
            12
        );
    }

    #[test]
    fn stamps_compare_by_value_and_never_print() {
        let a = SecurityStamp::from_bytes([7; 16]);
        assert_eq!(a, SecurityStamp::from_bytes([7; 16]));
        assert_ne!(a, SecurityStamp::from_bytes([8; 16]));
        assert_eq!(format!("{a:?}"), "SecurityStamp([REDACTED])");
        assert_ne!(
            SecurityStamp::generate().expect("rng"),
            SecurityStamp::generate().expect("rng")
        );
    }

    proptest! {
        #[test]
        fn account_ids_accept_exactly_short_control_free_text(s in any::<String>()) {
            let ok = !s.is_empty() && s.len() <= 128 && !s.chars().any(char::is_control);
            let parsed = AccountId::new(s.clone());
            prop_assert_eq!(parsed.is_ok(), ok);
            if let Ok(id) = parsed {
                prop_assert_eq!(id.as_str(), s.as_str());
                prop_assert_eq!(id.to_string(), s);
            }
        }

        #[test]
        fn brand_ids_accept_exactly_their_alphabet(s in "[a-zA-Z0-9_ &-]{0,40}") {
            let ok = (1..=32).contains(&s.len())
                && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
            prop_assert_eq!(BrandId::new(s.clone()).map(|b| b.as_str().to_owned()).ok(), ok.then_some(s));
        }

        #[test]
        fn flags_bits_round_trip(bits in any::<u32>()) {
            let f = CredentialFlags::from_bits(bits);
            prop_assert_eq!(f.bits(), bits);
            prop_assert!(f.union(CredentialFlags::DISABLED).contains(CredentialFlags::DISABLED));
        }
    }
}
