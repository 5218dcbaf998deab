//! The reset token port: token digests and their atomic redemption.

use std::time::Duration;

use super::credentials::SecurityStamp;
use crate::kernel::{AccountId, Timestamp};
use crate::password::PasswordHash;
use crate::persist::StoreError;

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

/// The most unused self-service reset tokens an account keeps: a new request drops the
/// oldest beyond it.
pub const SELF_SERVICE_LIVE: usize = 5;

/// Reset token digests.
pub trait ResetTokenStore: Send + Sync {
    /// Stores a token record. A self-service record never touches the account's incident
    /// tokens (a breach notice's link keeps working whoever asks for a reset): it drops
    /// the account's expired unused self-service tokens and all but the newest
    /// `SELF_SERVICE_LIVE - 1` unused ones, so at most [`SELF_SERVICE_LIVE`] are live and
    /// a flood of requests cannot grow the table. Used tokens are kept, so a second use
    /// says "already used".
    ///
    /// # Errors
    /// A backend failure.
    fn issue_token(&self, record: &TokenRecord) -> Result<(), StoreError>;

    /// Looks a token up by its account and digest.
    ///
    /// # Errors
    /// A backend failure or a corrupt row.
    fn find_token(
        &self,
        account: &AccountId,
        digest: &[u8; 32],
    ) -> Result<Option<TokenRecord>, StoreError>;

    /// Atomically: marks the token used (only if unused, unexpired and issued for the
    /// current generation), moves the old hash into the history (keeping
    /// `history_keep`), writes the new hash, bumps the generation, sets a new stamp and
    /// set-at time. Two concurrent redemptions of one token: exactly one succeeds.
    ///
    /// # Errors
    /// A backend failure (then nothing was changed).
    fn redeem_token(&self, redemption: &Redemption<'_>) -> Result<RedeemOutcome, StoreError>;
}
