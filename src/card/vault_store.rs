//! The vault's store trait and its sealed row, owned here because they carry this
//! module's typed [`CardToken`], [`VaultKeyId`] and [`Fingerprint`]; backends
//! (`store::sqlite::SqliteVault`, `store::postgres::PgVault`) implement it over a database
//! of the vault's own.

use core::fmt;

use super::keys::VaultKeyId;
use super::on_file::{CardToken, Fingerprint};
use crate::kernel::Timestamp;
use crate::persist::StoreError;

/// A card number as the vault stores it: sealed with XChaCha20-Poly1305 under the key
/// `key_id`, with associated data binding the token and the key id, and a keyed
/// fingerprint for recognising the same card.
///
/// A backend stores the fields as they are and hands them back unchanged; a row whose
/// token or key id no longer parses comes back as [`StoreError::Corrupt`].
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SealedCard {
    /// The card token (random, not derived from the number).
    pub token: CardToken,
    /// The key it is sealed under.
    pub key_id: VaultKeyId,
    /// The 24-byte XChaCha20 nonce.
    pub nonce: [u8; 24],
    /// Ciphertext and tag.
    pub ciphertext: Vec<u8>,
    /// HMAC-SHA-256 of the whole number under a key's fingerprint key, with that key's id
    /// (the sealing key's, except in the middle of a rewrap).
    pub fingerprint: Fingerprint,
    /// When the card was tokenized.
    pub created_at: Timestamp,
}

impl SealedCard {
    /// Assembles a sealed row.
    #[must_use]
    pub fn new(
        token: CardToken,
        key_id: VaultKeyId,
        nonce: [u8; 24],
        ciphertext: Vec<u8>,
        fingerprint: Fingerprint,
        created_at: Timestamp,
    ) -> Self {
        Self {
            token,
            key_id,
            nonce,
            ciphertext,
            fingerprint,
            created_at,
        }
    }
}

impl fmt::Debug for SealedCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedCard")
            .field("token", &self.token)
            .field("key_id", &self.key_id)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// A card the vault holds, found by fingerprint: its token and the fingerprint that
/// matched (which names the key it matched under).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeldCard {
    /// The card's token.
    pub token: CardToken,
    /// The fingerprint, of those asked for, that the stored row carries.
    pub fingerprint: Fingerprint,
}

impl HeldCard {
    /// A found card.
    #[must_use]
    pub fn new(token: CardToken, fingerprint: Fingerprint) -> Self {
        Self { token, fingerprint }
    }
}

/// What [`VaultStore::find_or_insert`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FindOrInsert {
    /// The card was there already (stored by another checkout since the lookup).
    Found(HeldCard),
    /// The card was not there; the sealed row given was inserted.
    Inserted,
}

/// Sealed card numbers, in a database of the vault's own.
pub trait VaultStore: Send + Sync {
    /// Stores sealed cards, all or none (one transaction).
    ///
    /// # Errors
    /// A backend failure (a token that exists already is one).
    fn insert_sealed(&self, cards: &[SealedCard]) -> Result<(), StoreError>;

    /// A card whose fingerprint is one of `fingerprints` (tried in that order), with the
    /// fingerprint that matched: a read, no lock and no write. `tokenize` asks this
    /// first, so a card the vault holds costs a lookup, not a seal and a transaction. The
    /// default finds nothing (then `find_or_insert` decides, as before).
    ///
    /// # Errors
    /// A backend failure or a corrupt row.
    fn find_card(&self, fingerprints: &[Fingerprint]) -> Result<Option<HeldCard>, StoreError> {
        let _ = fingerprints;
        Ok(None)
    }

    /// In one transaction: the card whose fingerprint is one of `fingerprints`, else
    /// `card` inserted. Two checkouts storing the same new card at once get one token.
    ///
    /// # Errors
    /// A backend failure or a corrupt row.
    fn find_or_insert(
        &self,
        fingerprints: &[Fingerprint],
        card: &SealedCard,
    ) -> Result<FindOrInsert, StoreError>;

    /// One sealed card by token.
    ///
    /// # Errors
    /// A backend failure or a corrupt row.
    fn load_sealed(&self, token: &CardToken) -> Result<Option<SealedCard>, StoreError>;

    /// Up to `limit` cards sealed under a key other than `key_id`, in token order after
    /// `after`: the streaming input of a rewrap.
    ///
    /// # Errors
    /// A backend failure or a corrupt row.
    fn sealed_not_under(
        &self,
        key_id: &VaultKeyId,
        after: Option<&CardToken>,
        limit: usize,
    ) -> Result<Vec<SealedCard>, StoreError>;

    /// Replaces the sealed value and fingerprint of existing tokens, all or none.
    ///
    /// # Errors
    /// A backend failure.
    fn replace_sealed(&self, cards: &[SealedCard]) -> Result<(), StoreError>;

    /// How many cards are sealed under `key_id`.
    ///
    /// # Errors
    /// A backend failure.
    fn count_under(&self, key_id: &VaultKeyId) -> Result<u64, StoreError>;

    /// The vault's key generation, as every server sharing this store sees it: a counter
    /// that a rotation or a shred on any of them bumps
    /// ([`bump_key_generation`](Self::bump_key_generation)). A vault that finds it moved
    /// reloads its keys from its key source before it answers. The default, for a store
    /// no other server shares, is always 0.
    ///
    /// # Errors
    /// A backend failure.
    fn key_generation(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Bumps the key generation (after a rotation or a shred) and returns the new one.
    ///
    /// # Errors
    /// A backend failure.
    fn bump_key_generation(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}

impl<T: VaultStore + ?Sized> VaultStore for std::sync::Arc<T> {
    fn insert_sealed(&self, cards: &[SealedCard]) -> Result<(), StoreError> {
        (**self).insert_sealed(cards)
    }
    fn find_card(&self, fingerprints: &[Fingerprint]) -> Result<Option<HeldCard>, StoreError> {
        (**self).find_card(fingerprints)
    }
    fn find_or_insert(
        &self,
        fingerprints: &[Fingerprint],
        card: &SealedCard,
    ) -> Result<FindOrInsert, StoreError> {
        (**self).find_or_insert(fingerprints, card)
    }
    fn load_sealed(&self, token: &CardToken) -> Result<Option<SealedCard>, StoreError> {
        (**self).load_sealed(token)
    }
    fn sealed_not_under(
        &self,
        key_id: &VaultKeyId,
        after: Option<&CardToken>,
        limit: usize,
    ) -> Result<Vec<SealedCard>, StoreError> {
        (**self).sealed_not_under(key_id, after, limit)
    }
    fn replace_sealed(&self, cards: &[SealedCard]) -> Result<(), StoreError> {
        (**self).replace_sealed(cards)
    }
    fn count_under(&self, key_id: &VaultKeyId) -> Result<u64, StoreError> {
        (**self).count_under(key_id)
    }
    fn key_generation(&self) -> Result<u64, StoreError> {
        (**self).key_generation()
    }
    fn bump_key_generation(&self) -> Result<u64, StoreError> {
        (**self).bump_key_generation()
    }
}
