//! The port the vault writes its audit trail through.

use super::chain::AuditCheckpoint;
use super::error::AuditError;
use super::record::AuditRecord;

/// Where the vault writes who revealed which card, and why. A detokenize whose record
/// cannot be written returns no card number.
pub trait AuditSink: Send + Sync {
    /// Appends a record.
    ///
    /// # Errors
    /// Whatever kept it from being written.
    fn record(&self, entry: &AuditRecord) -> Result<(), AuditError>;

    /// Takes a MAC'd checkpoint of a keyed trail as it is now (count and head), keeps
    /// it beside the trail and returns it, to be shipped somewhere the vault machine
    /// cannot write.
    ///
    /// # Errors
    /// [`AuditError::KeyRequired`] for a sink without an audit key (the default),
    /// or whatever kept it from being written.
    fn checkpoint(&self) -> Result<AuditCheckpoint, AuditError> {
        Err(AuditError::KeyRequired)
    }
}

impl<T: AuditSink + ?Sized> AuditSink for std::sync::Arc<T> {
    fn record(&self, entry: &AuditRecord) -> Result<(), AuditError> {
        (**self).record(entry)
    }

    fn checkpoint(&self) -> Result<AuditCheckpoint, AuditError> {
        (**self).checkpoint()
    }
}
