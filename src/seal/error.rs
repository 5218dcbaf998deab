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
    /// An [`Erasure`](super::Erasure) item that is empty, over 200 bytes, or holds a
    /// control character.
    #[error("invalid erasure item (1 to 200 bytes, no control characters)")]
    InvalidErasure,
    /// The erasure ledger does not check at entry `seq`: an entry changed, dropped,
    /// added or moved, a checkpoint that does not match it, or a key store that marks an
    /// entry the ledger does not hold (another deployment's ledger).
    #[error("the erasure ledger does not check at entry {seq}")]
    LedgerBroken {
        /// The first entry that does not check.
        seq: u64,
    },
    /// The erasure ledger ends before a checkpoint of it: cut back, or restored from a
    /// backup older than the checkpoint. Erasures after its end may be lost: redo them.
    #[error("the erasure ledger holds {entries} entries, fewer than a checkpoint's {checkpoint}")]
    LedgerCut {
        /// The checkpoint's count.
        checkpoint: u64,
        /// The ledger's.
        entries: u64,
    },
    /// The key store is behind the erasure ledger (restored from an older backup, or an
    /// erasure cut off before it destroyed the keys): it opens nothing until
    /// [`Sealer::replay`](super::Sealer::replay) has destroyed the listed keys again.
    #[error("the key store is {entries} erasures behind the erasure ledger: replay it")]
    BehindLedger {
        /// Entries it has not applied.
        entries: u64,
    },
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
