//! The store conformance suite (feature `conformance`): written once against the
//! traits, run by every backend, the crate's SQLite and PostgreSQL ones and yours.
//!
//! Each check takes a fresh, empty store and panics, like a test, when the backend
//! disagrees with the trait's contract. Call the entry points from a `#[test]` of your
//! backend's crate, with a constructor for fresh stores:
//!
//! - [`run_all`] checks `CredentialStore`, `IncidentStore`, `ResetTokenStore` and
//!   `CampaignStore` (12 checks); [`run_throttle`] checks `ThrottleStore` (3 checks);
//! - [`run_cards`] checks `card::CardOnFileStore`;
//! - [`run_retention`] checks `minimize::RetentionStore`'s bookkeeping and refusals (no
//!   table of the application's is needed);
//! - [`run_vault`] checks `VaultStore` and `AuditSink` (on the vault's store);
//! - [`run_key_store`] checks `seal::KeyStore` (on the customer key store);
//! - [`run_ledger`] checks `seal::LedgerStore` (on the customer store).
//!
//! The checks live in one file per trait, as the backends' do (`throttle.rs` for
//! `ThrottleStore`), and share the fixtures of `support.rs`.
//!
//! # Examples
//! ```
//! # #[cfg(feature = "sqlite")] {
//! use shopsafe::conformance;
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
mod keys;
mod ledger;
mod retention;
mod sessions;
mod support;
mod throttle;
mod tokens;
mod vault;

use std::sync::Arc;

pub use self::sessions::SessionsStore;
pub use self::support::FullStore;
use self::throttle::{
    concurrent_throttle_updates_never_lose_one, throttle_adjustments_clear_give_back_and_expire,
    throttle_values_round_trip_expire_and_sweep,
};

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

/// Runs every check of [`SessionStore`](crate::rotation::SessionStore): liveness bound to
/// the credential (stamp, flags, incidents), listing and ending per account and per
/// incident, rotation, purge, and remember-device families under concurrent use.
///
/// # Panics
/// When the backend breaks the trait's contract (5 checks).
pub fn run_sessions<S: SessionsStore>(fresh: &dyn Fn() -> S) {
    sessions::a_session_lives_only_while_its_credential_does(&fresh());
    sessions::incidents_end_the_sessions_they_compromise(&fresh());
    sessions::sessions_list_and_end_per_account(&fresh());
    sessions::device_tokens_rotate_once_and_a_reuse_ends_the_family(&fresh());
    sessions::two_uses_of_one_device_token_at_once_rotate_once(Arc::new(fresh()));
}

/// Runs the checks of [`KeyStore`](crate::seal::KeyStore), the customer key store, each
/// on a fresh store (10 checks).
///
/// # Panics
/// When the backend breaks the trait's contract.
pub fn run_key_store<S: crate::seal::KeyStore + 'static>(fresh: &dyn Fn() -> S) {
    keys::the_store_id_is_stable_and_a_data_key_is_inserted_once(&fresh());
    keys::keys_not_under_an_epoch_page_in_order_and_rewrap_once(&fresh());
    keys::index_keys_are_inserted_once(&fresh());
    keys::two_servers_sealing_a_new_customer_at_once_share_one_key(Arc::new(fresh()));
    keys::a_kek_rotation_rewraps_every_key_and_opens_every_value(fresh());
    keys::a_retired_epoch_takes_no_more_keys(&fresh());
    keys::retiring_an_epoch_while_another_process_writes_under_it_loses_no_key(Arc::new(fresh()));
    keys::erasure_destroys_every_version_and_keeps_only_a_tombstone(fresh());
    keys::the_ledger_mark_only_moves_up_and_customers_page_in_order(&fresh());
    keys::an_erasure_racing_a_first_key_never_leaves_the_key(Arc::new(fresh()));
}

/// Runs the checks of [`LedgerStore`](crate::seal::LedgerStore) (2 checks: entries chained
/// and read back, two appenders at once), each on a fresh customer store.
///
/// # Panics
/// When the backend breaks the trait's contract.
pub fn run_ledger<S: crate::seal::LedgerStore + 'static>(fresh: &dyn Fn() -> S) {
    ledger::entries_chain_from_the_head_and_read_back_in_order(fresh());
    ledger::two_appenders_at_once_never_chain_from_one_head(fresh());
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
