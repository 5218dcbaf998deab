//! Applying a retention plan: batches in transactions, resumable, leaving a run record.

use super::Error;
use super::retention::{Action, Planned};
use crate::store::{RetentionStore, Timestamp};

/// A table the application describes: its name, its key column, and the columns that
/// hold personal data (the only ones `StripPii` may clear). Names are SQL identifiers:
/// a letter or `_`, then letters, digits or `_`, at most 64.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSpec {
    name: String,
    key: String,
    pii: Vec<String>,
}

fn identifier(s: &str) -> Result<String, Error> {
    let mut bytes = s.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    if first_ok && s.len() <= 64 && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(s.to_owned())
    } else {
        Err(Error::InvalidIdentifier {
            name: s.chars().take(64).collect(),
        })
    }
}

impl TableSpec {
    /// Describes a table.
    ///
    /// # Errors
    /// [`Error::InvalidIdentifier`] for a name that is not a plain SQL identifier.
    ///
    /// # Examples
    /// ```
    /// use shopsafe::minimize::TableSpec;
    ///
    /// let orders = TableSpec::new("orders", "id", &["customer_name", "ship_to"])?;
    /// assert!(TableSpec::new("orders; DROP TABLE x", "id", &[]).is_err());
    /// # Ok::<(), shopsafe::minimize::Error>(())
    /// ```
    pub fn new(name: &str, key: &str, pii_columns: &[&str]) -> Result<Self, Error> {
        Ok(Self {
            name: identifier(name)?,
            key: identifier(key)?,
            pii: pii_columns
                .iter()
                .map(|c| identifier(c))
                .collect::<Result<_, _>>()?,
        })
    }

    /// The table's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key column.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The personal-data columns.
    #[must_use]
    pub fn pii_columns(&self) -> &[String] {
        &self.pii
    }
}

/// What a retention run did: the verifiable record it leaves (PCI DSS 3.2.1 asks for
/// proof that data past its retention is gone).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunReport {
    /// The run's name.
    pub run: String,
    /// The table.
    pub table: String,
    /// Records deleted.
    pub purged: u64,
    /// Records stripped of personal data.
    pub stripped: u64,
    /// Records kept.
    pub kept: u64,
    /// The last key applied (the resume point).
    pub last_key: Option<String>,
    /// When the run finished, if it has.
    pub finished_at: Option<Timestamp>,
}

impl RunReport {
    /// A report as a store reads it back.
    #[must_use]
    pub fn new(
        run: String,
        table: String,
        counts: [u64; 3],
        last_key: Option<String>,
        finished_at: Option<Timestamp>,
    ) -> Self {
        let [purged, stripped, kept] = counts;
        Self {
            run,
            table,
            purged,
            stripped,
            kept,
            last_key,
            finished_at,
        }
    }
}

/// Applies planned actions to `table` through `store`, `batch` records per transaction.
/// The plan must come in ascending key order; a run that was stopped is resumed by
/// calling again with the same `run` name and the same plan: records up to the stored
/// resume point are skipped.
///
/// # Errors
/// [`Error::OutOfOrder`] when keys do not ascend, [`Error::FieldNotPii`] when a strip
/// names a column not declared as personal data, [`Error::Store`].
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
        if let Action::StripPii { fields } = &p.action
            && let Some(field) = fields.iter().find(|f| !table.pii.contains(f))
        {
            return Err(Error::FieldNotPii {
                field: field.clone(),
            });
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
