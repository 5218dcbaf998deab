//! The plain data of the vault side: sealed rows and audit records.

use core::fmt;

use super::Timestamp;

/// A card number as the vault stores it: sealed with XChaCha20-Poly1305 under the key
/// `key_id`, with associated data binding the token and the key id, and a keyed
/// fingerprint for recognising the same card.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SealedCard {
    /// The card token (random, not derived from the number).
    pub token: String,
    /// The key it is sealed under.
    pub key_id: String,
    /// The 24-byte XChaCha20 nonce.
    pub nonce: [u8; 24],
    /// Ciphertext and tag.
    pub ciphertext: Vec<u8>,
    /// The key the fingerprint was made with.
    pub fingerprint_key: String,
    /// HMAC-SHA-256 of the whole number under that key's fingerprint key.
    pub fingerprint: [u8; 32],
    /// When the card was tokenized.
    pub created_at: Timestamp,
}

impl SealedCard {
    /// Assembles a sealed row.
    #[must_use]
    pub fn new(
        token: String,
        key_id: String,
        nonce: [u8; 24],
        ciphertext: Vec<u8>,
        fingerprint_key: String,
        fingerprint: [u8; 32],
        created_at: Timestamp,
    ) -> Self {
        Self {
            token,
            key_id,
            nonce,
            ciphertext,
            fingerprint_key,
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

/// One detokenize, as the audit trail keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditRecord {
    /// The card token revealed.
    pub token: String,
    /// Why (`charge`, `refund`, ...).
    pub purpose: String,
    /// Who asked (a service or operator id).
    pub caller: String,
    /// When.
    pub at: Timestamp,
}

impl AuditRecord {
    /// A record.
    #[must_use]
    pub fn new(token: String, purpose: String, caller: String, at: Timestamp) -> Self {
        Self {
            token,
            purpose,
            caller,
            at,
        }
    }
}
