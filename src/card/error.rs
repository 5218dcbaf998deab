//! The card module's errors.

use super::{Brand, VaultKeyId};

/// Errors of the card module. None holds a card number or key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Not a card number.
    #[error("invalid card number: {reason}")]
    InvalidPan {
        /// What was wrong.
        reason: &'static str,
    },
    /// The Luhn check digit does not match: a typo.
    #[error("invalid card number: check digit does not match")]
    LuhnMismatch,
    /// No brand issues numbers starting this way.
    #[error("card number of an unknown brand")]
    UnknownBrand,
    /// The brand does not issue numbers of this length.
    #[error("{brand} does not issue {length}-digit card numbers")]
    WrongLengthForBrand {
        /// The brand by IIN.
        brand: Brand,
        /// The length found.
        length: usize,
    },
    /// Not a month 1–12 of a year 2000–2099.
    #[error("invalid expiry date")]
    InvalidExpiry,
    /// Not a card token.
    #[error("invalid card token")]
    InvalidToken,
    /// The vault has no card with this token.
    #[error("unknown card token")]
    UnknownToken,
    /// The sealed card failed to open: edited, swapped between rows, or damaged.
    #[error("sealed card failed authentication (tampered or damaged)")]
    Tampered,
    /// The card was sealed under a key that has been shredded.
    #[error("card sealed under key {id}, which has been shredded")]
    KeyShredded {
        /// The key.
        id: VaultKeyId,
    },
    /// No key with this id.
    #[error("unknown vault key id {id}")]
    UnknownKeyId {
        /// The id.
        id: VaultKeyId,
    },
    /// A key with this id exists already.
    #[error("vault key id {id} is already in use")]
    DuplicateKeyId {
        /// The id.
        id: VaultKeyId,
    },
    /// The current key cannot be shredded: rotate first.
    #[error("the current vault key cannot be shredded; rotate first")]
    ShredCurrentKey,
    /// A vault key id must be 1–16 characters of `a-z 0-9 _ -`.
    #[error("invalid vault key id")]
    InvalidKeyId,
    /// Key material that is not 32 bytes (or not base64).
    #[error("invalid vault key: 32 bytes of base64 expected")]
    InvalidKey,
    /// The key source holds no key.
    #[error("the key source holds no vault key")]
    NoKeys,
    /// The key-encryption key service (an HSM, a KMS) failed or refused.
    #[error("the key-encryption key service failed")]
    KeyWrapper(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A wrapped key did not unwrap: another key-encryption key, another key's slot, or
    /// a changed file.
    #[error("a wrapped key did not unwrap under key-encryption key {kek}")]
    UnwrapFailed {
        /// The key-encryption key it names.
        kek: String,
    },
    /// The key source holds no audit key (or its random generator failed making one).
    #[error("the key source holds no audit key")]
    NoAuditKey,
    /// The key source cannot add or destroy keys.
    #[error("the key source is read-only")]
    KeySourceReadOnly,
    /// The key file could not be read or written.
    #[error("vault key file I/O failed")]
    KeyFile(#[source] std::io::Error),
    /// The key file can be read by its group or by others: refused until it is private.
    #[error("vault key file is readable by group or others (mode {mode:o}); run `chmod 600` on it")]
    KeyFileTooOpen {
        /// Its permission bits.
        mode: u32,
    },
    /// The grant was made by another vault.
    #[error("detokenize grant from another vault")]
    ForeignGrant,
    /// The vault's grant policy does not let this caller reveal numbers for this
    /// purpose (recorded as refused).
    #[error("detokenize refused: the grant policy does not allow this caller and purpose")]
    GrantNotAllowed,
    /// The vault revealed as many numbers in the last minute as its grant policy allows
    /// (recorded as refused).
    #[error("detokenize refused: the per-minute limit of the grant policy is reached")]
    RevealRateExceeded,
    /// From the store (including the audit sink).
    #[error(transparent)]
    Store(#[from] crate::persist::StoreError),
    /// The audit trail refused the record or failed its check (then no card number was
    /// revealed). A failure of the storage under it is [`Error::Store`].
    #[error(transparent)]
    Audit(crate::audit::AuditError),
    /// The OS random generator failed.
    #[error(transparent)]
    Rng(#[from] crate::secret::RngError),
}

impl From<crate::audit::AuditError> for Error {
    fn from(e: crate::audit::AuditError) -> Self {
        match e {
            crate::audit::AuditError::Store(e) => Self::Store(e),
            other => Self::Audit(other),
        }
    }
}
