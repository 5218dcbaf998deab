//! What sealing and opening a personal value can fail with.

use crate::card::VaultKeyId;
use crate::persist::StoreError;

/// A sealed value did not open, a key was not there, or the store failed. No message
/// holds a personal value, a key or a record key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The value does not open under its customer's key at this place: its bytes were
    /// changed, or it was copied from another row, column or customer.
    #[error(
        "sealed value does not open here (changed, or moved from another row, column or customer)"
    )]
    Tampered,
    /// Not a sealed value of a format this release reads.
    #[error("not a sealed value of a known format")]
    Malformed,
    /// The value was sealed under another key store than the one this sealer uses (a
    /// key store restored from another deployment, or created afresh).
    #[error("sealed under another key store than this one")]
    WrongKeyStore,
    /// The customer was erased: their data keys were destroyed, so nothing sealed for
    /// them opens, in this database or any copy of it (and nothing new is sealed for
    /// that account id).
    #[error("the customer was erased")]
    Erased,
    /// The key store holds no data key of that version for the customer.
    #[error("the key store holds no data key for this customer")]
    NoDataKey,
    /// A data key or an index key is wrapped under a key-encryption key the key source
    /// does not hold (an epoch retired, or the wrong key file).
    #[error("a key is wrapped under key-encryption key {kek}, which the key source does not hold")]
    UnknownKek {
        /// The epoch the key names.
        kek: VaultKeyId,
    },
    /// A wrapped key does not open under the key-encryption key it names: another key
    /// under the same id, or a changed or moved key-store row.
    #[error("a key does not unwrap under key-encryption key {kek}")]
    UnwrapFailed {
        /// The epoch the key names.
        kek: VaultKeyId,
    },
    /// The key store has retired the KEK epoch this sealer wraps new keys under: the
    /// process started before a rotation finished. Restart it (it reads the key source
    /// once, at start).
    #[error("key-encryption key {kek} was retired: restart to load the current one")]
    KekRetired {
        /// The retired epoch.
        kek: VaultKeyId,
    },
    /// The key source holds no key-encryption key.
    #[error("the key source holds no key-encryption key")]
    NoKek,
    /// A key-encryption key still wraps keys, so destroying it would lose them.
    #[error("key-encryption key {kek} still wraps {keys} keys: rewrap first")]
    KekInUse {
        /// The epoch.
        kek: VaultKeyId,
        /// How many keys it still wraps.
        keys: u64,
    },
    /// The value is longer than a sealed field takes.
    #[error("value of {len} bytes is longer than a sealed field takes ({max})")]
    TooLong {
        /// Its length.
        len: usize,
        /// The most a field takes.
        max: usize,
    },
    /// A table or column name that is not 1 to 63 characters of `a-z 0-9 _`.
    #[error("invalid table or column name")]
    InvalidName,
    /// The key store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The key source failed.
    #[error(transparent)]
    Keys(#[from] crate::card::Error),
    /// The OS random generator failed.
    #[error(transparent)]
    Rng(#[from] crate::secret::RngError),
}
