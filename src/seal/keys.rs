//! The [`KeyStore`] port: customers' data keys and the blind-index keys, each stored
//! only wrapped by a customer-data key-encryption key (KEK).

use crate::card::VaultKeyId;
use crate::kernel::{AccountId, Timestamp};
use crate::persist::StoreError;

/// A customer's data key as the key store holds it: wrapped (XChaCha20-Poly1305) under
/// the KEK of epoch `kek`, bound to the customer, the version and the key store's id.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WrappedKey {
    /// Whose key.
    pub customer: AccountId,
    /// Its version (1 for a customer's first key).
    pub version: u32,
    /// The epoch of the KEK that wraps it.
    pub kek: VaultKeyId,
    /// Nonce (24 bytes) and ciphertext with its tag (48 bytes).
    pub wrapped: Vec<u8>,
    /// When the key was made.
    pub created_at: Timestamp,
}

impl WrappedKey {
    /// A wrapped key record (for backends and their tests).
    #[must_use]
    pub fn new(
        customer: AccountId,
        version: u32,
        kek: VaultKeyId,
        wrapped: Vec<u8>,
        created_at: Timestamp,
    ) -> Self {
        Self {
            customer,
            version,
            kek,
            wrapped,
            created_at,
        }
    }
}

impl core::fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WrappedKey")
            .field("customer", &self.customer)
            .field("version", &self.version)
            .field("kek", &self.kek)
            .finish_non_exhaustive()
    }
}

/// A blind-index key as the key store holds it: one per column, wrapped like a data key.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WrappedIndexKey {
    /// `table.column`.
    pub column: String,
    /// The epoch of the KEK that wraps it.
    pub kek: VaultKeyId,
    /// Nonce and ciphertext with its tag.
    pub wrapped: Vec<u8>,
}

impl WrappedIndexKey {
    /// A wrapped index key record.
    #[must_use]
    pub fn new(column: String, kek: VaultKeyId, wrapped: Vec<u8>) -> Self {
        Self {
            column,
            kek,
            wrapped,
        }
    }
}

impl core::fmt::Debug for WrappedIndexKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WrappedIndexKey")
            .field("column", &self.column)
            .field("kek", &self.kek)
            .finish_non_exhaustive()
    }
}

/// Where customers' wrapped data keys and the blind-index keys live: a database of its
/// own, apart from the customer database and from the card vault
/// (`store::sqlite::SqliteKeyStore`, `store::postgres::PgKeyStore`). Every backend passes
/// `shopsafe::conformance::key_store`.
///
/// The store holds only wrapped keys: without the KEK (a key file, the environment, or
/// an HSM through a `KeyWrapper`) it opens nothing.
pub trait KeyStore: Send + Sync {
    /// This key store's id: 16 random bytes made when it was created, and bound into
    /// every key it wraps and every value sealed under them. A key store made afresh has
    /// another id, so a value sealed before answers
    /// [`WrongKeyStore`](super::Error::WrongKeyStore), not noise.
    ///
    /// # Errors
    /// A backend failure.
    fn store_id(&self) -> Result<[u8; 16], StoreError>;

    /// Stores each key unless its customer already has a key of that version, in one
    /// transaction, and returns the keys stored, in the order given: for each, the key
    /// made by whichever of two servers came first.
    ///
    /// Refuses the whole batch when any of `unless_erased` (the tombstones of the keys'
    /// customers) is recorded, checked in the same transaction; an erasure of one of the
    /// customers at the same moment ([`KeyStore::erase_customers`]) either comes after
    /// and destroys the key, or comes before and is seen here, never neither.
    ///
    /// # Errors
    /// [`StoreError::Retired`] with `what` = `"erased customer"` when refused so; a
    /// backend failure.
    fn insert_data_keys(
        &self,
        keys: &[WrappedKey],
        unless_erased: &[[u8; 16]],
    ) -> Result<Vec<WrappedKey>, StoreError>;

    /// Every key (all versions) of these customers, in one read; a customer without one
    /// is absent. The order is not specified.
    ///
    /// # Errors
    /// A backend failure, [`StoreError::Corrupt`] for a row that does not read.
    fn data_keys(&self, customers: &[AccountId]) -> Result<Vec<WrappedKey>, StoreError>;

    /// Up to `limit` data keys not wrapped under `kek`, in (customer, version) order
    /// (byte order of the ids) after `after`.
    ///
    /// # Errors
    /// A backend failure.
    fn keys_not_under(
        &self,
        kek: &VaultKeyId,
        after: Option<(&AccountId, u32)>,
        limit: usize,
    ) -> Result<Vec<WrappedKey>, StoreError>;

    /// Replaces the wrap of each key, where its row is still wrapped under the epoch
    /// paired with it (so two rewraps at once change each row once), in one
    /// transaction; returns how many rows changed.
    ///
    /// # Errors
    /// A backend failure.
    fn rewrap_data_keys(&self, keys: &[(VaultKeyId, WrappedKey)]) -> Result<u64, StoreError>;

    /// Erases customers: destroys every data key (all versions) of each of `customers`,
    /// and records each of `tombstones` (keyed digests of erased ids, never the ids; a
    /// replay of the erasure ledger records some whose ids it does not know), in one
    /// transaction. Erasing again is a no-op. Returns how many keys it destroyed.
    ///
    /// # Errors
    /// A backend failure.
    fn erase_customers(
        &self,
        customers: &[AccountId],
        tombstones: &[[u8; 16]],
    ) -> Result<u64, StoreError>;

    /// Customers holding a data key, in id order, at most `limit` after `after`: how a
    /// ledger replay finds the keys to destroy.
    ///
    /// # Errors
    /// A backend failure.
    fn data_key_customers(
        &self,
        after: Option<&AccountId>,
        limit: usize,
    ) -> Result<Vec<AccountId>, StoreError>;

    /// The last erasure-ledger entry the store is known to have applied (with every one
    /// before it): its sequence number and MAC.
    ///
    /// # Errors
    /// A backend failure.
    fn ledger_applied(&self) -> Result<Option<(u64, [u8; 32])>, StoreError>;

    /// Records that every ledger entry up to `seq` (whose MAC is `mac`) is applied, in
    /// one transaction with the checks that the mark is still at least `from` (the mark
    /// `applied` was counted from; none counts as 0) and that each of `applied` (the
    /// digests of the entries after `from` it vouches for) is recorded as erased; never
    /// down. Whether it moved (false: the mark went back, a tombstone is missing, or a
    /// later mark is there).
    ///
    /// # Errors
    /// A backend failure.
    fn advance_ledger(
        &self,
        from: u64,
        seq: u64,
        mac: &[u8; 32],
        applied: &[[u8; 16]],
    ) -> Result<bool, StoreError>;

    /// Sets the ledger mark to `to` (or none), down as well as up: only for an operator
    /// accepting a customer database restored from before the key store.
    ///
    /// # Errors
    /// A backend failure.
    fn reset_ledger_mark(&self, to: Option<(u64, [u8; 32])>) -> Result<(), StoreError>;

    /// Which of these tombstones the store holds.
    ///
    /// # Errors
    /// A backend failure.
    fn erased(&self, tombstones: &[[u8; 16]]) -> Result<Vec<[u8; 16]>, StoreError>;

    /// Retires the epoch `kek`, in one transaction with counting the keys it still
    /// wraps: when it wraps none, marks it retired and returns 0; otherwise changes
    /// nothing and returns how many it wraps. From then on, every write of a key wrapped
    /// under a retired epoch ([`KeyStore::insert_data_keys`],
    /// [`KeyStore::insert_index_key`], the rewraps) is refused with
    /// [`StoreError::Retired`], in the writer's own transaction, so that a process still
    /// holding the old epoch as its current one cannot wrap a key under it after the
    /// count (a key that would be lost when the KEK is destroyed). Retiring an epoch
    /// again returns 0.
    ///
    /// # Errors
    /// A backend failure.
    fn retire_kek(&self, kek: &VaultKeyId) -> Result<u64, StoreError>;

    /// How many data keys and index keys each KEK epoch wraps.
    ///
    /// # Errors
    /// A backend failure.
    fn count_by_kek(&self) -> Result<Vec<(VaultKeyId, u64)>, StoreError>;

    /// Stores `key` unless its column has one, and returns the one stored.
    ///
    /// # Errors
    /// A backend failure.
    fn insert_index_key(&self, key: &WrappedIndexKey) -> Result<WrappedIndexKey, StoreError>;

    /// Every index key.
    ///
    /// # Errors
    /// A backend failure.
    fn index_keys(&self) -> Result<Vec<WrappedIndexKey>, StoreError>;

    /// Replaces an index key's wrap where it is still under `from`; whether it changed.
    ///
    /// # Errors
    /// A backend failure.
    fn rewrap_index_key(
        &self,
        from: &VaultKeyId,
        key: &WrappedIndexKey,
    ) -> Result<bool, StoreError>;
}

impl<T: KeyStore + ?Sized> KeyStore for std::sync::Arc<T> {
    fn store_id(&self) -> Result<[u8; 16], StoreError> {
        (**self).store_id()
    }
    fn insert_data_keys(
        &self,
        keys: &[WrappedKey],
        unless_erased: &[[u8; 16]],
    ) -> Result<Vec<WrappedKey>, StoreError> {
        (**self).insert_data_keys(keys, unless_erased)
    }
    fn data_keys(&self, customers: &[AccountId]) -> Result<Vec<WrappedKey>, StoreError> {
        (**self).data_keys(customers)
    }
    fn keys_not_under(
        &self,
        kek: &VaultKeyId,
        after: Option<(&AccountId, u32)>,
        limit: usize,
    ) -> Result<Vec<WrappedKey>, StoreError> {
        (**self).keys_not_under(kek, after, limit)
    }
    fn rewrap_data_keys(&self, keys: &[(VaultKeyId, WrappedKey)]) -> Result<u64, StoreError> {
        (**self).rewrap_data_keys(keys)
    }
    fn erase_customers(
        &self,
        customers: &[AccountId],
        tombstones: &[[u8; 16]],
    ) -> Result<u64, StoreError> {
        (**self).erase_customers(customers, tombstones)
    }
    fn data_key_customers(
        &self,
        after: Option<&AccountId>,
        limit: usize,
    ) -> Result<Vec<AccountId>, StoreError> {
        (**self).data_key_customers(after, limit)
    }
    fn ledger_applied(&self) -> Result<Option<(u64, [u8; 32])>, StoreError> {
        (**self).ledger_applied()
    }
    fn advance_ledger(
        &self,
        from: u64,
        seq: u64,
        mac: &[u8; 32],
        applied: &[[u8; 16]],
    ) -> Result<bool, StoreError> {
        (**self).advance_ledger(from, seq, mac, applied)
    }
    fn reset_ledger_mark(&self, to: Option<(u64, [u8; 32])>) -> Result<(), StoreError> {
        (**self).reset_ledger_mark(to)
    }
    fn erased(&self, tombstones: &[[u8; 16]]) -> Result<Vec<[u8; 16]>, StoreError> {
        (**self).erased(tombstones)
    }
    fn retire_kek(&self, kek: &VaultKeyId) -> Result<u64, StoreError> {
        (**self).retire_kek(kek)
    }
    fn count_by_kek(&self) -> Result<Vec<(VaultKeyId, u64)>, StoreError> {
        (**self).count_by_kek()
    }
    fn insert_index_key(&self, key: &WrappedIndexKey) -> Result<WrappedIndexKey, StoreError> {
        (**self).insert_index_key(key)
    }
    fn index_keys(&self) -> Result<Vec<WrappedIndexKey>, StoreError> {
        (**self).index_keys()
    }
    fn rewrap_index_key(
        &self,
        from: &VaultKeyId,
        key: &WrappedIndexKey,
    ) -> Result<bool, StoreError> {
        (**self).rewrap_index_key(from, key)
    }
}
