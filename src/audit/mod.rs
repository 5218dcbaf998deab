//! The vault's audit trail: who revealed which card, when and why, in a keyed hash chain
//! that whoever can write the trail cannot edit unseen.
//!
//! - [`AuditSink`] is the port the vault writes through; [`AuditLog`] is the file
//!   implementation, and both backends' vaults hold the same records in a table
//!   (`SqliteVault`, `PgVault`).
//! - [`AuditRecord`] is one entry; [`AuditKey`] keys the chain; [`AuditCheckpoint`]s (count
//!   and head, MAC'd) shipped elsewhere expose a cut-off tail.
//! - One check, written once in `chain`, reads the file and both tables back.
//!
//! It sits below `card` (which calls [`AuditSink`]) and imports nothing but `kernel`,
//! `secret` and `persist`; its error is [`AuditError`], which wraps the
//! [`StoreError`](crate::persist::StoreError) of the storage under it.

mod chain;
mod error;
mod log;
mod record;
mod sink;

pub use chain::{
    AUDIT_MIGRATION, AuditCheckpoint, AuditKey, AuditVerified, DEFAULT_CHECKPOINT_EVERY,
    InvalidCheckpoint,
};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) use chain::{ChainCheck, LastRow, migration_record, migration_row, next_row, row_link};
pub use error::{AuditBreak, AuditError};
pub use log::{AuditLog, AuditRepair};
pub use record::{AuditOutcome, AuditRecord};
pub use sink::AuditSink;
