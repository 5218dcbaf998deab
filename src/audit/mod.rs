//! The vault's audit trail: who revealed which card, when and why, in a keyed hash chain
//! that whoever can write the trail cannot edit unseen.
//!
//! - [`AuditSink`] is the port the vault writes through; [`AuditLog`] is the file
//!   implementation, and both backends' vaults hold the same records in a table
//!   (`SqliteVault`, `PgVault`).
//! - [`AuditRecord`] is one entry; [`AuditKey`] keys the chain; [`AuditCheckpoint`]s (count
//!   and head, MAC'd) shipped elsewhere expose a cut-off tail.
//! - One check, written once in `chain`, reads the file and both tables back; `table`
//!   holds what both backends' audit tables do (append, checkpoint, migrate, verify), over
//!   a transaction each backend gives.
//!
//! It sits below `card` (which calls [`AuditSink`]) and imports nothing but `kernel`,
//! `secret` and `persist`; its error is [`AuditError`], which wraps the
//! [`StoreError`](crate::persist::StoreError) of the storage under it.

mod chain;
mod error;
mod log;
mod record;
mod sink;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) mod table;

pub use chain::{
    AUDIT_MIGRATION, AuditCheckpoint, AuditKey, AuditVerified, DEFAULT_CHECKPOINT_EVERY,
    InvalidCheckpoint,
};
pub use error::{AuditBreak, AuditError};
pub use log::{AuditLog, AuditRepair};
pub use record::{AuditKind, AuditOutcome, AuditRecord};
pub use sink::AuditSink;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) use table::{AuditTx, KeyedAudit, LastRow, PAGE, StoredRow};
