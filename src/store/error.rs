//! The store module's error.

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
    /// The audit log ends in an unterminated line (a crash or a full disk mid-write).
    /// Nothing is appended after it; [`AuditLog::repair`](super::AuditLog::repair) cuts it off and records that it
    /// did.
    #[error(
        "audit log {path} ends in an unterminated line ({torn_bytes} bytes after byte {valid_bytes}); run AuditLog::repair"
    )]
    TornAuditTail {
        /// The file.
        path: String,
        /// Where the last complete line ends.
        valid_bytes: u64,
        /// How many bytes follow it.
        torn_bytes: u64,
    },
    /// A keyed audit trail failed its check: what and where.
    #[error("audit trail tampered with: {0}")]
    AuditTampered(#[source] super::AuditBreak),
    /// The audit trail holds keyed records and was opened or checked without its key
    /// (or a table was asked for a checkpoint without one).
    #[error("the audit trail is keyed: use its audit key")]
    AuditKeyRequired,
    /// A keyed writer met unkeyed (0.1) records that no keyed record has taken over: run
    /// the one-time migration (`AuditLog::migrate_to_keyed`, `migrate_audit` on a vault)
    /// after checking them, or find out who wrote them.
    #[error("the audit trail ends in unkeyed records: migrate it to the keyed chain first")]
    AuditMigrationRequired,
    /// A retention batch the store will not apply: it purges or strips a record marked
    /// as held or in flight, or strips no field or a column not declared as personal data.
    #[error("retention batch refused: {0}")]
    RetentionRefused(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The former name of [`Error`], kept for a release.
pub type StoreError = Error;
