//! The plain data the stores persist: ids, times, credential records, incidents, tokens.

use core::fmt;
use std::time::Duration;

use subtle::ConstantTimeEq;

pub use crate::kernel::{AccountId, BrandId, Timestamp};
use crate::password::PasswordHash;
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

/// A declared incident's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IncidentId(pub i64);

impl fmt::Display for IncidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "incident-{}", self.0)
    }
}

/// Which credentials an incident compromises (those set at or before its cutoff, in scope).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IncidentScope {
    /// Every account.
    All,
    /// Every account of one brand.
    Brand(BrandId),
    /// An explicit list of accounts, added to the store as a stream.
    Accounts,
}

/// A declared incident.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Incident {
    /// Its id.
    pub id: IncidentId,
    /// Its scope.
    pub scope: IncidentScope,
    /// Credentials set at or before this time (and in scope) are compromised.
    pub cutoff: Timestamp,
    /// When it was declared.
    pub declared_at: Timestamp,
    /// Operator's note (not shown to customers).
    pub reason: String,
}

impl Incident {
    /// Whether a credential set at `set_at` falls before this incident's cutoff. The
    /// cutoff itself counts as compromised: a password set in the very millisecond an
    /// incident is declared at "now" may predate the operator's knowledge of it, and an
    /// extra reset is the cheaper mistake. (Scope is checked separately.)
    #[must_use]
    pub fn compromises_set_at(&self, set_at: Timestamp) -> bool {
        set_at <= self.cutoff
    }
}

/// Why a reset token was issued (sets its default lifetime).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenPurpose {
    /// Sent by a notification campaign after an incident.
    Incident,
    /// Asked for by the customer ("forgot password").
    SelfService,
}

/// What is stored of a reset token: its account and the SHA-256 digest of its secret,
/// never the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenRecord {
    /// SHA-256 of the token's 32 random bytes.
    pub digest: [u8; 32],
    /// Whose.
    pub account: AccountId,
    /// The credential generation it was issued for; redeeming needs the same one.
    pub generation: u64,
    /// Why.
    pub purpose: TokenPurpose,
    /// When.
    pub issued_at: Timestamp,
    /// Until when it can be redeemed.
    pub expires_at: Timestamp,
    /// When it was redeemed, if it was.
    pub used_at: Option<Timestamp>,
}

impl TokenRecord {
    /// A record for a token issued now.
    #[must_use]
    pub fn new(
        digest: [u8; 32],
        account: AccountId,
        generation: u64,
        purpose: TokenPurpose,
        issued_at: Timestamp,
        ttl: Duration,
    ) -> Self {
        Self {
            digest,
            account,
            generation,
            purpose,
            issued_at,
            expires_at: issued_at.plus(ttl),
            used_at: None,
        }
    }
}

/// A password change by reset token, applied atomically by [`ResetTokenStore::redeem_token`](super::ResetTokenStore::redeem_token).
#[derive(Debug)]
#[non_exhaustive]
pub struct Redemption<'a> {
    /// Whose token.
    pub account: &'a AccountId,
    /// The digest of the token's secret.
    pub digest: [u8; 32],
    /// The time of redemption (expiry is checked against it).
    pub now: Timestamp,
    /// The new password's hash.
    pub new_hash: &'a PasswordHash,
    /// The new security stamp.
    pub new_stamp: &'a SecurityStamp,
    /// How many previous hashes to keep in the password history.
    pub history_keep: usize,
}

impl<'a> Redemption<'a> {
    /// Describes a redemption.
    #[must_use]
    pub fn new(
        account: &'a AccountId,
        digest: [u8; 32],
        now: Timestamp,
        new_hash: &'a PasswordHash,
        new_stamp: &'a SecurityStamp,
        history_keep: usize,
    ) -> Self {
        Self {
            account,
            digest,
            now,
            new_hash,
            new_stamp,
            history_keep,
        }
    }
}

/// The store's verdict on a redemption.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum RedeemOutcome {
    /// Done: the password is replaced, the generation bumped, the stamp changed.
    Redeemed {
        /// Whose password changed.
        account: AccountId,
    },
    /// No such token (never issued, or replaced by a newer one).
    Unknown,
    /// Redeemed before.
    AlreadyUsed,
    /// Past its lifetime.
    Expired,
    /// The password changed since the token was issued.
    Superseded,
}

/// A campaign's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CampaignId(pub i64);

/// The durable state of a notification campaign, or of one lane of it: a campaign split
/// among workers is a set of lanes, disjoint ranges of accounts, each with its own cursor.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CampaignState {
    /// Its id.
    pub id: CampaignId,
    /// The incident it notifies.
    pub incident: IncidentId,
    /// Every account up to and including this one has been notified.
    pub sent_cursor: Option<AccountId>,
    /// Notices delivered so far.
    pub sent: u64,
    /// When it finished, if it has.
    pub finished_at: Option<Timestamp>,
    /// Which lane this is (0-based), when the campaign is split among workers.
    pub lane: u32,
    /// How many lanes the campaign has (1 unless split).
    pub lanes: u32,
    /// The lane covers accounts after this one (all from the first if `None`) ...
    pub range_after: Option<AccountId>,
    /// ... up to and including this one (to the last if `None`).
    pub range_until: Option<AccountId>,
}

/// A notice that could not be delivered, as the campaign recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Undelivered {
    /// Whose.
    pub account: AccountId,
    /// Why, as the notifier said it (`no-address`, `rejected 550`, ...).
    pub reason: String,
    /// When.
    pub at: Timestamp,
}

impl Undelivered {
    /// A record of a notice that could not be delivered.
    #[must_use]
    pub fn new(account: AccountId, reason: String, at: Timestamp) -> Self {
        Self {
            account,
            reason,
            at,
        }
    }
}

/// An account claimed for notification, with the token record issued for it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClaimedAccount {
    /// Whose.
    pub account: AccountId,
    /// The brand to write as: the incident's brand, else the account's first brand.
    pub brand: Option<BrandId>,
}

#[cfg(test)]
mod tests {
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
