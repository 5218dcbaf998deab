//! The store conformance suite: written once against the traits, run for every backend.
//!
//! Each check takes a fresh, empty store. A backend's test module calls [`run_all`] with
//! a constructor (see `store::sqlite`'s and `store::postgres`' tests). The checks live in
//! one file per trait, as the backends do.

mod campaigns;
mod credentials;
mod incidents;
mod tokens;

use std::sync::{Arc, Barrier, OnceLock};
use std::time::Duration;

use self::campaigns::*;
use self::credentials::*;
use self::incidents::*;
use self::tokens::*;
use super::{
    AccountId, BrandId, CampaignStore, CredentialFlags, CredentialStore, IncidentScope,
    IncidentStore, RedeemOutcome, Redemption, ResetTokenStore, SELF_SERVICE_LIVE, SecurityStamp,
    StoreError, Timestamp, TokenPurpose, TokenRecord,
};
use crate::password::{Hasher, Params, Password, PasswordHash};

/// Every trait the suite exercises.
pub(crate) trait FullStore:
    CredentialStore + IncidentStore + ResetTokenStore + CampaignStore + 'static
{
}
impl<T: CredentialStore + IncidentStore + ResetTokenStore + CampaignStore + 'static> FullStore
    for T
{
}

/// Runs every check, each on a fresh store from `fresh`.
pub(crate) fn run_all<S: FullStore>(fresh: &dyn Fn() -> S) {
    credentials_round_trip(&fresh());
    replace_hash_needs_the_current_generation(&fresh());
    flags_are_stored(&fresh());
    incidents_are_listed_in_order_and_account_lists_stream(&fresh());
    self_service_tokens_keep_the_newest_and_never_touch_incident_tokens(&fresh());
    redemption_outcomes_are_precise(&fresh());
    redemption_bumps_generation_stamp_and_keeps_history(&fresh());
    concurrent_redemption_has_one_winner(Arc::new(fresh()));
    campaign_claims_in_account_order_and_resumes_from_the_checkpoint(&fresh());
    affected_accounts_follow_the_scope(&fresh());
    campaigns_split_into_disjoint_lanes(&fresh());
}

fn t(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn acct(s: &str) -> AccountId {
    AccountId::new(s).expect("valid account id")
}

fn brand(s: &str) -> BrandId {
    BrandId::new(s).expect("valid brand id")
}

fn stamp() -> SecurityStamp {
    SecurityStamp::generate().expect("os rng")
}

/// Three distinct hashes, made once (hashing is the slow part of the suite).
fn hashes() -> &'static [PasswordHash; 3] {
    static HASHES: OnceLock<[PasswordHash; 3]> = OnceLock::new();
    HASHES.get_or_init(|| {
        let h = Hasher::new(Params::insecure_for_tests(64, 1, 1).expect("valid test params"));
        let mk = |s: &str| h.hash(&Password::new(s)).expect("hash");
        [
            mk("first password for tests"),
            mk("second password for tests"),
            mk("third password for tests"),
        ]
    })
}

fn token(digest_byte: u8, account: &str, generation: u64, issued: i64) -> TokenRecord {
    TokenRecord::new(
        [digest_byte; 32],
        acct(account),
        generation,
        TokenPurpose::SelfService,
        t(issued),
        Duration::from_secs(3600),
    )
}
