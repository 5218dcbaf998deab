//! [`KeySource`]: where the vault's keys, the pepper and the audit key come from.

use super::id::{VaultKey, VaultKeyId};
use crate::audit::AuditKey;
use crate::card::Error;

/// Where the vault's keys live: a KMS or HSM in production (implement this trait over
/// it), a file or the environment in development.
pub trait KeySource: Send + Sync {
    /// Every key still in use, oldest first; the last is the current one.
    ///
    /// # Errors
    /// Whatever kept the keys from being read.
    fn keys(&self) -> Result<Vec<(VaultKeyId, VaultKey)>, Error>;

    /// Stores a new key (it becomes the current one).
    ///
    /// # Errors
    /// [`Error::KeySourceReadOnly`], or whatever kept the key from being stored.
    fn add(&self, id: &VaultKeyId, key: &VaultKey) -> Result<(), Error>;

    /// Destroys a key for good (crypto-shredding).
    ///
    /// # Errors
    /// [`Error::KeySourceReadOnly`], [`Error::UnknownKeyId`], or an I/O failure.
    fn destroy(&self, id: &VaultKeyId) -> Result<(), Error>;

    /// The key of the audit trail's chain ([`AuditLog::open_keyed`](crate::audit::AuditLog::open_keyed),
    /// `SqliteVault::with_audit_key`, `PgVault::with_audit_key`): one key for the
    /// trail's whole life, never rotated with the vault keys (a trail must stay checkable
    /// after the keys that sealed its cards are shredded).
    ///
    /// # Errors
    /// [`Error::NoAuditKey`] for a source that holds none (the default), or whatever kept
    /// it from being read.
    fn audit_key(&self) -> Result<AuditKey, Error> {
        Err(Error::NoAuditKey)
    }
}

impl<T: KeySource + ?Sized> KeySource for std::sync::Arc<T> {
    fn keys(&self) -> Result<Vec<(VaultKeyId, VaultKey)>, Error> {
        (**self).keys()
    }
    fn add(&self, id: &VaultKeyId, key: &VaultKey) -> Result<(), Error> {
        (**self).add(id, key)
    }
    fn destroy(&self, id: &VaultKeyId) -> Result<(), Error> {
        (**self).destroy(id)
    }
    fn audit_key(&self) -> Result<AuditKey, Error> {
        (**self).audit_key()
    }
}
