//! The campaign port: notification campaigns, the batches claimed and their progress.

use super::incidents::{Incident, IncidentId};
use super::tokens::TokenRecord;
use crate::kernel::{AccountId, BrandId, Timestamp};
use crate::persist::StoreError;

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
