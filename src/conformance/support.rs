//! What every check shares: the store bound [`FullStore`] and the fixtures (times,
//! accounts, brands, stamps, hashes, token records).

use crate::kernel::AccountId;
use crate::kernel::BrandId;
use crate::kernel::Timestamp;
use crate::password::Hasher;
use crate::password::Params;
use crate::password::Password;
use crate::password::PasswordHash;
use crate::rotation::CampaignStore;
use crate::rotation::CredentialStore;
use crate::rotation::IncidentStore;
use crate::rotation::ResetTokenStore;
use crate::rotation::SecurityStamp;
use crate::rotation::TokenPurpose;
use crate::rotation::TokenRecord;
use std::sync::OnceLock;
use std::time::Duration;

/// The customer-side traits [`run_all`](super::run_all) exercises together.
pub trait FullStore:
    CredentialStore + IncidentStore + ResetTokenStore + CampaignStore + 'static
{
}

impl<T: CredentialStore + IncidentStore + ResetTokenStore + CampaignStore + 'static> FullStore
    for T
{
}

pub(super) fn t(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

pub(super) fn acct(s: &str) -> AccountId {
    AccountId::new(s).expect("valid account id")
}

pub(super) fn brand(s: &str) -> BrandId {
    BrandId::new(s).expect("valid brand id")
}

pub(super) fn stamp() -> SecurityStamp {
    SecurityStamp::generate().expect("os rng")
}

/// Three distinct hashes, made once (hashing is the slow part of the suite).
pub(super) fn hashes() -> &'static [PasswordHash; 3] {
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

pub(super) fn token(digest_byte: u8, account: &str, generation: u64, issued: i64) -> TokenRecord {
    TokenRecord::new(
        [digest_byte; 32],
        acct(account),
        generation,
        TokenPurpose::SelfService,
        t(issued),
        Duration::from_secs(3600),
    )
}
