//! The store trait retention plans are applied through, owned here because it carries
//! this module's [`TableSpec`], [`Planned`] and [`RunReport`]; backends implement it.

use super::{Planned, RunReport, TableSpec};
use crate::kernel::Timestamp;
use crate::persist::StoreError;

/// Where retention plans are applied: the application's own tables, described by
/// [`TableSpec`], and a record of each run.
pub trait RetentionStore: Send + Sync {
    /// The last key a run applied to `table`, if it started.
    ///
    /// # Errors
    /// A backend failure.
    fn resume_point(&self, run: &str, table: &TableSpec) -> Result<Option<String>, StoreError>;

    /// Applies a batch in one transaction, together with the run's counts and resume
    /// point.
    ///
    /// # Errors
    /// A backend failure (then nothing of the batch was applied).
    fn apply_batch(
        &self,
        run: &str,
        table: &TableSpec,
        batch: &[Planned],
    ) -> Result<(), StoreError>;

    /// Marks the run finished and returns its record.
    ///
    /// # Errors
    /// A backend failure.
    fn finish_run(
        &self,
        run: &str,
        table: &TableSpec,
        now: Timestamp,
    ) -> Result<RunReport, StoreError>;
}
