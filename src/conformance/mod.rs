//! The store conformance suite (feature `conformance`): written once against the
//! traits, run by every backend, the crate's SQLite and PostgreSQL ones and yours.
//!
//! Each check takes a fresh, empty store and panics, like a test, when the backend
//! disagrees with the trait's contract. Call the entry points from a `#[test]` of your
//! backend's crate, with a constructor for fresh stores:
//!
//! - [`run_all`] checks `CredentialStore`, `IncidentStore`, `ResetTokenStore` and
//!   `CampaignStore` (12 checks); `ThrottleStore` (2 checks, `run_throttle`);
//! - [`run_cards`] checks `card::CardOnFileStore`;
//! - [`run_retention`] checks `minimize::RetentionStore`'s bookkeeping and refusals (no
//!   table of the application's is needed);
//! - [`run_vault`] checks `VaultStore` and `AuditSink` (on the vault's store).
//!
//! The checks live in one file per trait, as the backends' do.
//!
//! # Examples
//! ```
//! # #[cfg(feature = "sqlite")] {
//! use shopsafe::store::conformance;
//! use shopsafe::store::sqlite::{SqliteStore, SqliteVault};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let n = std::cell::Cell::new(0);
//! let fresh = || {
//!     n.set(n.get() + 1);
//!     SqliteStore::open(dir.path().join(format!("c{}.db", n.get()))).unwrap()
//! };
//! conformance::run_cards(&fresh);
//! conformance::run_retention(&fresh);
//! conformance::run_vault(&|| {
//!     n.set(n.get() + 1);
//!     SqliteVault::open(dir.path().join(format!("v{}.db", n.get()))).unwrap()
//! });
//! # }
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a conformance check fails by panicking, as a test does"
)]

mod campaigns;
mod cards;
mod credentials;
mod incidents;
mod retention;
mod tokens;
mod vault;

use std::sync::{Arc, Barrier, OnceLock};
use std::time::Duration;

use self::campaigns::{
    affected_accounts_follow_the_scope,
    campaign_claims_in_account_order_and_resumes_from_the_checkpoint,
    campaigns_split_into_disjoint_lanes,
    undeliverable_notices_are_kept_per_lane_listed_in_order_and_counted,
};
use self::cards::cards_on_file_round_trip_per_account;
use self::credentials::{
    credentials_round_trip, flags_are_stored, replace_hash_needs_the_current_generation,
};
use self::incidents::incidents_are_listed_in_order_and_account_lists_stream;
use self::retention::{
    batches_that_would_touch_held_records_or_undeclared_fields_are_refused,
    runs_resume_count_and_finish,
};
use self::tokens::{
    concurrent_redemption_has_one_winner, redemption_bumps_generation_stamp_and_keeps_history,
    redemption_outcomes_are_precise,
    self_service_tokens_keep_the_newest_and_never_touch_incident_tokens,
};
use self::vault::{
    audit_records_are_accepted, fingerprints_find_a_card_under_any_key_and_insert_once,
    rewrap_streams_rows_not_under_a_key_and_replaces_them,
    sealed_rows_round_trip_and_batches_are_all_or_none,
    the_key_generation_starts_at_zero_and_counts_bumps,
};
use crate::kernel::{AccountId, BrandId, Timestamp};
use crate::password::{Hasher, Params, Password, PasswordHash};
use crate::persist::StoreError;
use crate::rotation::{
    CampaignStore, CredentialFlags, CredentialStore, IncidentScope, IncidentStore, RedeemOutcome,
    Redemption, ResetTokenStore, SELF_SERVICE_LIVE, SecurityStamp, TokenPurpose, TokenRecord,
};

/// The customer-side traits [`run_all`] exercises together.
pub trait FullStore:
    CredentialStore + IncidentStore + ResetTokenStore + CampaignStore + 'static
{
}
impl<T: CredentialStore + IncidentStore + ResetTokenStore + CampaignStore + 'static> FullStore
    for T
{
}

/// Runs every check of the credential, incident, token and campaign traits, each on a
/// fresh store from `fresh`.
///
/// # Panics
/// When the backend breaks the traits' contract (the message says how).
pub fn run_all<S: FullStore>(fresh: &dyn Fn() -> S) {
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
    undeliverable_notices_are_kept_per_lane_listed_in_order_and_counted(&fresh());
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

/// Runs the checks of [`CardOnFileStore`](crate::card::CardOnFileStore) on a fresh store.
///
/// # Panics
/// When the backend breaks the trait's contract.
pub fn run_cards<S: crate::card::CardOnFileStore>(fresh: &dyn Fn() -> S) {
    cards_on_file_round_trip_per_account(&fresh());
}

/// Runs the checks of [`RetentionStore`](crate::minimize::RetentionStore) that need no
/// table of the application's, each on a fresh store.
///
/// # Panics
/// When the backend breaks the trait's contract.
pub fn run_retention<S: crate::minimize::RetentionStore>(fresh: &dyn Fn() -> S) {
    runs_resume_count_and_finish(&fresh());
    batches_that_would_touch_held_records_or_undeclared_fields_are_refused(&fresh());
}

/// Runs the checks of [`ThrottleStore`](crate::rotation::ThrottleStore) on a fresh store.
///
/// # Panics
/// When the backend breaks the trait's contract.
pub fn run_throttle<S: crate::rotation::ThrottleStore>(fresh: &dyn Fn() -> S) {
    throttle_values_round_trip_expire_and_sweep(&fresh());
    concurrent_throttle_updates_never_lose_one(&fresh());
    throttle_adjustments_clear_give_back_and_expire(&fresh());
}

fn throttle_adjustments_clear_give_back_and_expire(s: &impl crate::rotation::ThrottleStore) {
    use crate::rotation::ThrottleAdjust::{Clear, GiveBack};
    let keys = [[1u8; 16], [2u8; 16], [3u8; 16], [4u8; 16]];
    s.update_throttle(&keys, 100, 0, &mut |v| {
        v.copy_from_slice(&[Some(1_000), Some(1_000), Some(1_000), Some(1_000)]);
    })
    .expect("write");
    s.adjust_throttle(
        &[
            (keys[0], Clear),
            (keys[1], GiveBack(300)),
            (keys[2], GiveBack(950)),
            ([9u8; 16], GiveBack(10)),
            ([8u8; 16], Clear),
        ],
        100,
    )
    .expect("adjust");
    let mut seen = Vec::new();
    s.update_throttle(&keys, 100, 0, &mut |v| seen = v.to_vec())
        .expect("read");
    assert_eq!(
        seen,
        [None, Some(700), None, Some(1_000)],
        "cleared; given back; given back to before now (gone); untouched"
    );
    assert_eq!(
        s.throttle_rows().expect("rows"),
        2,
        "keys that had no row get none"
    );
    s.adjust_throttle(&[], 100).expect("nothing to do");
}

fn throttle_values_round_trip_expire_and_sweep(s: &impl crate::rotation::ThrottleStore) {
    let (a, b) = ([1u8; 16], [2u8; 16]);
    let mut seen = Vec::new();
    s.update_throttle(&[a, b], 100, 0, &mut |v| {
        seen.push(v.to_vec());
        v[0] = Some(500);
        v[1] = Some(150);
    })
    .expect("write");
    assert_eq!(seen, [vec![None, None]], "unknown keys read as None");
    assert_eq!(s.throttle_rows().expect("rows"), 2);
    s.update_throttle(&[b, a], 200, 0, &mut |v| seen.push(v.to_vec()))
        .expect("read");
    assert_eq!(
        seen[1],
        [None, Some(500)],
        "a value at or before now reads as None"
    );
    assert_eq!(
        s.throttle_rows().expect("rows"),
        1,
        "and None written back deletes it"
    );
    // Untouched, expired rows go in sweeps of at most the number asked.
    for k in 10..20u8 {
        s.update_throttle(&[[k; 16]], 1_000, 0, &mut |v| v[0] = Some(1_001))
            .expect("write");
    }
    s.update_throttle(&[[99; 16]], 5_000, 3, &mut |v| v[0] = None)
        .expect("sweep");
    let rows = s.throttle_rows().expect("rows");
    assert_eq!(rows, 8, "3 of 11 expired rows swept");
    let live = [3u8; 16];
    s.update_throttle(&[live], 5_000, 0, &mut |v| v[0] = Some(9_000))
        .expect("write");
    assert_eq!(s.throttle_rows().expect("rows"), rows + 1);
    s.update_throttle(&[live], 5_000, 0, &mut |v| v[0] = None)
        .expect("delete");
    assert_eq!(s.throttle_rows().expect("rows"), rows);
}

fn concurrent_throttle_updates_never_lose_one(s: &impl crate::rotation::ThrottleStore) {
    let key = [7u8; 16];
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(move || {
                for _ in 0..25 {
                    s.update_throttle(&[key], 0, 0, &mut |v| {
                        v[0] = Some(v[0].unwrap_or(0) + 1);
                    })
                    .expect("update");
                }
            });
        }
    });
    let mut last = None;
    s.update_throttle(&[key], 0, 0, &mut |v| last = v[0])
        .expect("read");
    assert_eq!(last, Some(100), "every increment under the row's lock");
}

/// Runs the checks of [`VaultStore`](crate::card::VaultStore) and
/// [`AuditSink`](crate::audit::AuditSink), each on a fresh vault store.
///
/// # Panics
/// When the backend breaks the traits' contract.
pub fn run_vault<S: crate::card::VaultStore + crate::audit::AuditSink>(fresh: &dyn Fn() -> S) {
    sealed_rows_round_trip_and_batches_are_all_or_none(&fresh());
    fingerprints_find_a_card_under_any_key_and_insert_once(&fresh());
    rewrap_streams_rows_not_under_a_key_and_replaces_them(&fresh());
    the_key_generation_starts_at_zero_and_counts_bumps(&fresh());
    audit_records_are_accepted(&fresh());
}
