//! The customer side's store trait for cards on file, owned here because it carries this
//! module's [`CardOnFile`]; backends (`store::sqlite`, `store::postgres`) implement it.

use super::CardOnFile;
use crate::kernel::{AccountId, Timestamp};
use crate::persist::StoreError;

/// The customer side's cards on file: token, brand, last four, expiry, fingerprint. Never
/// a card number: there is no column for one.
pub trait CardOnFileStore: Send + Sync {
    /// Stores a card on an account (again: replaces the earlier row of that token).
    ///
    /// # Errors
    /// A backend failure.
    fn save_card(
        &self,
        account: &AccountId,
        card: &CardOnFile,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// The account's cards, oldest first.
    ///
    /// # Errors
    /// A backend failure or a corrupt row.
    fn cards(&self, account: &AccountId) -> Result<Vec<CardOnFile>, StoreError>;
}
