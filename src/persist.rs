//! The persistence error: what every store port returns when the database fails, holds
//! a row it cannot read, or refuses a write. It sits below the domain modules (beside
//! `kernel`), so a port declared in `rotation`, `card` or `minimize` names it without
//! importing a backend.

impl From<crate::kernel::InvalidId> for Error {
    fn from(e: crate::kernel::InvalidId) -> Self {
        Self::InvalidId { kind: e.kind }
    }
}

/// A store failed. The backend's own error is the `source`; messages hold no secret.
///
/// Called `StoreError` before; that name stays as an alias for a release.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The backend failed (I/O, locking, SQL).
    #[error("store backend failed during {operation}")]
    Backend {
        /// What the store was doing.
        operation: &'static str,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A stored value could not be read back (a corrupt or foreign row).
    #[error("corrupt stored {what}")]
    Corrupt {
        /// Which value.
        what: &'static str,
    },
    /// An id that does not meet its format.
    #[error("invalid {kind} id")]
    InvalidId {
        /// `account`, `brand`, ...
        kind: &'static str,
    },
    /// The account already has a credential.
    #[error("account already exists")]
    AlreadyExists,
    /// The operation needs an incident that does not exist (or has another scope).
    #[error("no such incident, or wrong scope for this operation")]
    NoSuchIncident,
    /// The database was written by a newer release of this crate.
    #[error("database schema version {found} is newer than this release supports ({supported})")]
    SchemaTooNew {
        /// The version found.
        found: i64,
        /// The newest this release knows.
        supported: i64,
    },
    /// The file belongs to another store: the vault refuses the customer database and
    /// the customer store refuses the vault, so the two can never share a file.
    #[error("{path} is not a {expected} database (it holds {found})")]
    WrongDatabase {
        /// The file.
        path: String,
        /// What the caller opened it as.
        expected: &'static str,
        /// What it is.
        found: &'static str,
    },
    /// The OS random generator failed.
    #[error(transparent)]
    Rng(#[from] crate::secret::RngError),
    /// A write under something retired: a key wrapped under a key-encryption key whose
    /// epoch the key store has retired (a process that still holds the old epoch as its
    /// current one; restart it).
    #[error("write refused: the {what} it uses was retired")]
    Retired {
        /// What was retired.
        what: &'static str,
    },
    /// A retention batch the store will not apply: it purges or strips a record marked
    /// as held or in flight, or strips no field or a column not declared as personal data.
    #[error("retention batch refused: {0}")]
    RetentionRefused(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The former name of [`Error`], kept for a release.
pub type StoreError = Error;
