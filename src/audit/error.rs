//! The audit trail's error.

use crate::persist::StoreError;

/// The audit trail could not be written or read back, or failed its check. Messages
/// name the file and the record, never a token or a caller.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The trail's storage failed (the file, or the vault's database).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A record or checkpoint could not be read back (a corrupt or foreign line or row,
    /// or a broken unkeyed chain).
    #[error("corrupt stored {what}")]
    Corrupt {
        /// Which value.
        what: &'static str,
    },
    /// The audit log ends in an unterminated line (a crash or a full disk mid-write).
    /// Nothing is appended after it; [`AuditLog::repair`](super::AuditLog::repair) cuts
    /// it off and records that it did.
    #[error(
        "audit log {path} ends in an unterminated line ({torn_bytes} bytes after byte {valid_bytes}); run AuditLog::repair"
    )]
    TornTail {
        /// The file.
        path: String,
        /// Where the last complete line ends.
        valid_bytes: u64,
        /// How many bytes follow it.
        torn_bytes: u64,
    },
    /// A keyed audit trail failed its check: what and where.
    #[error("audit trail tampered with: {0}")]
    Tampered(#[source] AuditBreak),
    /// The audit trail holds keyed records and was opened or checked without its key
    /// (or a table was asked for a checkpoint without one).
    #[error("the audit trail is keyed: use its audit key")]
    KeyRequired,
    /// A keyed writer met unkeyed (0.1) records that no keyed record has taken over: run
    /// the one-time migration (`AuditLog::migrate_to_keyed`, `migrate_audit` on a vault)
    /// after checking them, or find out who wrote them.
    #[error("the audit trail ends in unkeyed records: migrate it to the keyed chain first")]
    MigrationRequired,
}

impl From<crate::secret::RngError> for AuditError {
    fn from(e: crate::secret::RngError) -> Self {
        Self::Store(e.into())
    }
}

/// Where and how a keyed audit trail was found tampered with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditBreak {
    /// Record number `record` was changed (its MAC does not match its contents).
    #[error("record {record} was edited")]
    Edited {
        /// Its position, from 1.
        record: u64,
    },
    /// The record at position `record` says it is number `sequence`: records were
    /// reordered, removed or inserted there.
    #[error(
        "record at position {record} carries sequence number {sequence}: records reordered, removed or inserted"
    )]
    OutOfOrder {
        /// Its position, from 1.
        record: u64,
        /// The number it carries.
        sequence: u64,
    },
    /// An unkeyed record after a keyed one (a downgrade to the 0.1 chain, which anyone
    /// can compute).
    #[error("record {record} is unkeyed after keyed records")]
    Downgraded {
        /// Its position, from 1.
        record: u64,
    },
    /// The trail is shorter than a checkpoint says it was: its tail was cut off.
    #[error("truncated: a checkpoint counts {checkpoint} records, the trail holds {records}")]
    Truncated {
        /// The checkpoint's count.
        checkpoint: u64,
        /// Records found.
        records: u64,
    },
    /// The trail's head after `checkpoint` records is not the checkpoint's: the records
    /// up to there were rewritten (under the key, or before it was keyed).
    #[error("the trail's first {checkpoint} records differ from its checkpoint")]
    Rewritten {
        /// The checkpoint's count.
        checkpoint: u64,
    },
    /// The trail's first `records` records are unkeyed and no migration record took
    /// them over: a keyed trail replaced by an unkeyed one (which anyone can compute), or
    /// a 0.1 trail not yet migrated.
    #[error("the first {records} records are unkeyed and were never migrated")]
    Unmigrated {
        /// Unkeyed records found.
        records: u64,
    },
    /// A checkpoint that the audit key did not make.
    #[error("a checkpoint of {records} records was not made with this audit key")]
    ForgedCheckpoint {
        /// Its count.
        records: u64,
    },
}
