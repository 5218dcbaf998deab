//! Applying a retention plan: batches in transactions, resumable, leaving a run record.

use super::Error;
use super::retention::Planned;
use super::store::{RetentionStore, RunReport, TableSpec};
use crate::kernel::Timestamp;

/// Applies planned actions to `table` through `store`, `batch` records per transaction.
/// The plan must come in ascending key order; a run that was stopped is resumed by
/// calling again with the same `run` name and the same plan: records up to the stored
/// resume point are skipped.
///
/// A record the plan marks as held or in flight is refused ([`Error::HeldRecord`]), and
/// with hold or in-flight columns in the [`TableSpec`] the store also skips (and counts
/// as kept) any row held *now*, so a plan made before a hold, or replayed on resume,
/// cannot delete what the hold protects.
///
/// # Errors
/// [`Error::OutOfOrder`] when keys do not ascend, [`Error::FieldNotPii`] when a strip
/// names a column not declared as personal data, [`Error::EmptyStrip`],
/// [`Error::HeldRecord`], [`Error::Store`].
pub fn apply_plan(
    store: &dyn RetentionStore,
    run: &str,
    table: &TableSpec,
    planned: impl IntoIterator<Item = Planned>,
    batch: usize,
) -> Result<RunReport, Error> {
    let resume = store.resume_point(run, table)?;
    let mut last: Option<String> = resume.clone();
    let mut pending = Vec::with_capacity(batch.max(1));
    for p in planned {
        if let Some(prev) = &last
            && p.record.id <= *prev
        {
            if resume.as_ref().is_some_and(|r| p.record.id <= *r) {
                continue; // applied by an earlier attempt of this run
            }
            return Err(Error::OutOfOrder);
        }
        if let Some(refused) = table.refusal(core::slice::from_ref(&p)) {
            return Err(refused);
        }
        last = Some(p.record.id.clone());
        pending.push(p);
        if pending.len() >= batch.max(1) {
            store.apply_batch(run, table, &pending)?;
            pending.clear();
        }
    }
    if !pending.is_empty() {
        store.apply_batch(run, table, &pending)?;
    }
    Ok(store.finish_run(run, table, Timestamp::now())?)
}
