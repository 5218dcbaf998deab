//! Persistence behind small traits, with SQLite (feature `sqlite`) and PostgreSQL (feature
//! `postgres`) implementations.
//!
//! The domain modules talk to these traits only; one backend struct implements them all
//! over one database, so that a redemption (token + credential + history) or a campaign
//! batch (tokens + progress) is one transaction. A conformance suite, written once
//! against the traits, runs for every backend.
//!
//! | trait | holds |
//! |---|---|
//! | [`CredentialStore`] | credential records, brands, password history |
//! | [`IncidentStore`] | declared incidents and their explicit account lists |
//! | [`ResetTokenStore`] | reset token digests; atomic redemption |
//! | [`CampaignStore`] | notification campaigns: batches claimed, progress |
//! | [`AuditSink`] | the vault's detokenize audit trail ([`AuditLog`]: a hash-chained file) |
//!
//! Three traits carry a domain module's own types and live there:
//! [`card::VaultStore`](super::card::VaultStore) (sealed card numbers, in a database of
//! the vault's own, keyed by `CardToken`, `VaultKeyId` and `Fingerprint`),
//! [`card::CardOnFileStore`](super::card::CardOnFileStore) (the customer side's cards on
//! file) and [`minimize::RetentionStore`](super::minimize::RetentionStore) (retention
//! plans applied to the application's tables). The backends here implement them too. The
//! ids and the clock ([`AccountId`], [`BrandId`], [`Timestamp`]) live in
//! [`kernel`](super::kernel) and are re-exported here. ARCHITECTURE.md draws the layers.

mod error;
mod types;

#[cfg(feature = "sqlite")]
pub mod sqlite;

#[cfg(feature = "postgres")]
pub mod postgres;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod rows;

#[cfg(any(test, feature = "conformance"))]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;

pub use audit_chain::{
    AUDIT_MIGRATION, AuditBreak, AuditCheckpoint, AuditKey, AuditVerified,
    DEFAULT_CHECKPOINT_EVERY, InvalidCheckpoint,
};
pub use audit_log::{AuditLog, AuditRepair};
pub use audit_record::{AuditOutcome, AuditRecord};
pub use types::{
    AccountId, BrandId, CampaignId, CampaignState, ClaimedAccount, CredentialFlags,
    CredentialRecord, Incident, IncidentId, IncidentScope, RedeemOutcome, Redemption,
    SecurityStamp, Timestamp, TokenPurpose, TokenRecord, Undelivered,
};

mod audit_chain;
mod audit_log;
mod audit_record;

use crate::password::PasswordHash;

pub use error::{Error, StoreError};

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

/// Incidents.
pub trait IncidentStore: Send + Sync {
    /// Records an incident. O(1): nothing else is written.
    ///
    /// # Errors
    /// A backend failure.
    fn declare_incident(
        &self,
        scope: &IncidentScope,
        cutoff: Timestamp,
        declared_at: Timestamp,
        reason: &str,
    ) -> Result<Incident, StoreError>;

    /// Adds accounts to an [`IncidentScope::Accounts`] incident, streaming, in batches;
    /// returns how many were added (repeats count once).
    ///
    /// # Errors
    /// [`StoreError::NoSuchIncident`], or a backend failure.
    fn add_incident_accounts(
        &self,
        incident: IncidentId,
        accounts: &mut dyn Iterator<Item = AccountId>,
    ) -> Result<u64, StoreError>;

    /// Every incident, oldest first (a short list: one row per incident).
    ///
    /// # Errors
    /// A backend failure or a corrupt row.
    fn incidents(&self) -> Result<Vec<Incident>, StoreError>;

    /// Whether `account` is on the list of an [`IncidentScope::Accounts`] incident.
    ///
    /// # Errors
    /// A backend failure.
    fn is_listed(&self, incident: IncidentId, account: &AccountId) -> Result<bool, StoreError>;
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

/// Rate-limit state every server of a deployment shares: one number per key (a GCRA
/// theoretical arrival time, in nanoseconds since the epoch; see `rotation::Rate`). Keys
/// are 16-byte digests: no account name or address is stored.
pub trait ThrottleStore: Send + Sync {
    /// In one transaction that no other update of these keys interleaves with: reads the
    /// values of `keys` (`None`: no row, or a value at or before `now`, which means the
    /// same), lets `update` change them, writes them back (`None` deletes the row), and
    /// deletes at most `sweep` rows of any key whose value is at or before `now`, so old
    /// keys leave the table a bounded amount per write.
    ///
    /// # Errors
    /// A backend failure: the caller refuses the attempt (a limiter fails closed).
    fn update_throttle(
        &self,
        keys: &[[u8; 16]],
        now: i64,
        sweep: usize,
        update: &mut dyn FnMut(&mut [Option<i64>]),
    ) -> Result<(), StoreError>;

    /// How many keys the table holds.
    ///
    /// # Errors
    /// A backend failure.
    fn throttle_rows(&self) -> Result<u64, StoreError>;

    /// Applies `adjustments` in one transaction, without handing the values out: what a
    /// successful login does (clear the account, give one attempt back to the source).
    /// The default runs [`update_throttle`](Self::update_throttle); a networked backend
    /// overrides it to save the round trip that reading takes.
    ///
    /// # Errors
    /// A backend failure.
    fn adjust_throttle(
        &self,
        adjustments: &[([u8; 16], ThrottleAdjust)],
        now: i64,
    ) -> Result<(), StoreError> {
        let keys: Vec<[u8; 16]> = adjustments.iter().map(|(k, _)| *k).collect();
        self.update_throttle(&keys, now, 0, &mut |values| {
            for (value, (_, adjust)) in values.iter_mut().zip(adjustments) {
                *value = adjust.apply(*value, now);
            }
        })
    }
}

/// A change to one throttle value that does not depend on reading it first
/// ([`ThrottleStore::adjust_throttle`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ThrottleAdjust {
    /// Forget the key.
    Clear,
    /// Move the value back by this many nanoseconds (one attempt's interval); forget the
    /// key when that reaches `now`.
    GiveBack(i64),
}

impl ThrottleAdjust {
    /// The value after the change (`None`: no row).
    #[must_use]
    pub fn apply(self, value: Option<i64>, now: i64) -> Option<i64> {
        match self {
            Self::Clear => None,
            Self::GiveBack(ns) => value.map(|t| t.saturating_sub(ns)).filter(|&t| t > now),
        }
    }
}

/// Notification campaigns.
pub trait CampaignStore: Send + Sync {
    /// The lanes of `incident`'s campaign, in lane order. On the first call the campaign
    /// is created and the affected accounts are split into `lanes` ranges of about equal
    /// size (at least one; fewer when there are fewer accounts); later calls return the
    /// lanes as they were split, whatever `lanes` says, so workers and resumed runs agree.
    ///
    /// # Errors
    /// [`StoreError::NoSuchIncident`], or a backend failure.
    fn open_lanes(
        &self,
        incident: &Incident,
        lanes: usize,
        now: Timestamp,
    ) -> Result<Vec<CampaignState>, StoreError>;

    /// The lanes of `incident`'s campaign as they stand, in lane order; empty when no
    /// campaign was opened. A read: it never creates the campaign (status pages and
    /// monitors call this, not [`open_lanes`](Self::open_lanes)).
    ///
    /// # Errors
    /// A backend failure.
    fn lanes(&self, incident: IncidentId) -> Result<Vec<CampaignState>, StoreError>;

    /// How many accounts the incident affects now, after `after` and up to and including
    /// `until` in account order, where given (one counting pass).
    ///
    /// # Errors
    /// A backend failure.
    fn count_affected(
        &self,
        incident: &Incident,
        after: Option<&AccountId>,
        until: Option<&AccountId>,
    ) -> Result<u64, StoreError>;

    /// In one transaction: the next `limit` affected accounts after `after` (and up to and
    /// including `until`) in account order, with a token record from
    /// `issue(account, generation)` stored for each (the outbox intent: a notice is due for
    /// every account holding a campaign token past the sent cursor).
    ///
    /// Earlier tokens of those accounts stay valid: a notice delivered just before a
    /// crash, and claimed again on resume, must still work. Redeeming any one token bumps
    /// the generation, which ends all the others.
    ///
    /// # Errors
    /// A backend failure (then no token of the batch was stored).
    fn claim_batch(
        &self,
        incident: &Incident,
        after: Option<&AccountId>,
        until: Option<&AccountId>,
        limit: usize,
        issue: &mut dyn FnMut(&AccountId, u64) -> Result<TokenRecord, StoreError>,
    ) -> Result<Vec<ClaimedAccount>, StoreError>;

    /// Records that every account of the lane up to `sent_cursor` was notified, `sent` in
    /// all.
    ///
    /// # Errors
    /// A backend failure.
    fn checkpoint(
        &self,
        campaign: CampaignId,
        sent_cursor: &AccountId,
        sent: u64,
    ) -> Result<(), StoreError>;

    /// Marks the lane finished.
    ///
    /// # Errors
    /// A backend failure.
    fn finish_campaign(&self, campaign: CampaignId, now: Timestamp) -> Result<(), StoreError>;

    /// Records that the lane's notice to `account` cannot be delivered, and why (a
    /// second record for the same account replaces the first). The cursor is not moved
    /// here: [`CampaignStore::checkpoint`] moves it past the account.
    ///
    /// # Errors
    /// A backend failure.
    fn record_undeliverable(
        &self,
        campaign: CampaignId,
        entry: &Undelivered,
    ) -> Result<(), StoreError>;

    /// The lane's undeliverable notices after `after` in account order, at most `limit`.
    ///
    /// # Errors
    /// A backend failure, [`StoreError::InvalidId`] for a stored account that no longer
    /// parses.
    fn undeliverable(
        &self,
        campaign: CampaignId,
        after: Option<&AccountId>,
        limit: usize,
    ) -> Result<Vec<Undelivered>, StoreError>;

    /// How many of the lane's notices were recorded as undeliverable.
    ///
    /// # Errors
    /// A backend failure.
    fn count_undeliverable(&self, campaign: CampaignId) -> Result<u64, StoreError>;
}

/// Where the vault writes who revealed which card, and why. A detokenize whose record
/// cannot be written returns no card number.
pub trait AuditSink: Send + Sync {
    /// Appends a record.
    ///
    /// # Errors
    /// Whatever kept it from being written.
    fn record(&self, entry: &AuditRecord) -> Result<(), StoreError>;

    /// Takes a MAC'd checkpoint of a keyed trail as it is now (count and head), keeps
    /// it beside the trail and returns it, to be shipped somewhere the vault machine
    /// cannot write.
    ///
    /// # Errors
    /// [`StoreError::AuditKeyRequired`] for a sink without an audit key (the default),
    /// or whatever kept it from being written.
    fn checkpoint(&self) -> Result<AuditCheckpoint, StoreError> {
        Err(StoreError::AuditKeyRequired)
    }
}

impl<T: ThrottleStore + ?Sized> ThrottleStore for std::sync::Arc<T> {
    fn update_throttle(
        &self,
        keys: &[[u8; 16]],
        now: i64,
        sweep: usize,
        update: &mut dyn FnMut(&mut [Option<i64>]),
    ) -> Result<(), StoreError> {
        (**self).update_throttle(keys, now, sweep, update)
    }

    fn throttle_rows(&self) -> Result<u64, StoreError> {
        (**self).throttle_rows()
    }

    fn adjust_throttle(
        &self,
        adjustments: &[([u8; 16], ThrottleAdjust)],
        now: i64,
    ) -> Result<(), StoreError> {
        (**self).adjust_throttle(adjustments, now)
    }
}

impl<T: AuditSink + ?Sized> AuditSink for std::sync::Arc<T> {
    fn record(&self, entry: &AuditRecord) -> Result<(), StoreError> {
        (**self).record(entry)
    }

    fn checkpoint(&self) -> Result<AuditCheckpoint, StoreError> {
        (**self).checkpoint()
    }
}
