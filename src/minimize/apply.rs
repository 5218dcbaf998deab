//! Applying a retention plan: batches in transactions, resumable, leaving a run record.

use super::Error;
use super::RetentionStore;
use super::retention::{Action, Planned};
use crate::kernel::Timestamp;

/// A table the application describes: its name, its key column, and the columns that
/// hold personal data (the only ones `StripPii` may clear); optionally the table's own
/// legal-hold and in-flight columns, which the store checks at the moment it deletes or
/// strips a row, whatever the plan says. Names are SQL identifiers: a letter or `_`, then
/// letters, digits or `_`, at most 64.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSpec {
    name: String,
    key: String,
    pii: Vec<String>,
    hold: Option<String>,
    in_flight: Option<String>,
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
            hold: None,
            in_flight: None,
        })
    }

    /// The table's legal-hold column (boolean; SQLite 0/1): a row where it is true is
    /// never deleted or stripped, even by a plan made before the hold was placed.
    ///
    /// # Errors
    /// [`Error::InvalidIdentifier`].
    ///
    /// # Examples
    /// ```
    /// use shopsafe::minimize::TableSpec;
    ///
    /// let profiles = TableSpec::new("profiles", "id", &["name", "email"])?
    ///     .with_hold_column("legal_hold")?
    ///     .with_in_flight_column("open_order")?;
    /// # Ok::<(), shopsafe::minimize::Error>(())
    /// ```
    pub fn with_hold_column(mut self, column: &str) -> Result<Self, Error> {
        self.hold = Some(identifier(column)?);
        Ok(self)
    }

    /// The table's in-flight column (boolean; SQLite 0/1): a row where it is true (an
    /// order not yet delivered or refunded) is never deleted or stripped.
    ///
    /// # Errors
    /// [`Error::InvalidIdentifier`].
    pub fn with_in_flight_column(mut self, column: &str) -> Result<Self, Error> {
        self.in_flight = Some(identifier(column)?);
        Ok(self)
    }

    /// The SQL condition (to `AND` after the key comparison) that keeps rows held now:
    /// empty without hold or in-flight columns. Identifiers are validated, so quoting is
    /// enough. `IS NOT TRUE` lets NULL count as "not held" in SQLite and PostgreSQL alike.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn not_held_sql(&self) -> String {
        [&self.hold, &self.in_flight]
            .into_iter()
            .flatten()
            .map(|c| format!(" AND \"{c}\" IS NOT TRUE"))
            .collect()
    }

    /// [`refusal`](Self::refusal) as a store answers it: `StoreError::RetentionRefused`.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn check_batch(&self, batch: &[Planned]) -> Result<(), crate::persist::StoreError> {
        self.refusal(batch).map_or(Ok(()), |refused| {
            Err(crate::persist::StoreError::RetentionRefused(Box::new(
                refused,
            )))
        })
    }

    /// Why a store must refuse `batch`, if it must: a purge or strip of a record the plan
    /// itself marks as held or in flight, or a strip of no field or of a column not
    /// declared as personal data (the store builds SQL from the field names).
    pub(crate) fn refusal(&self, batch: &[Planned]) -> Option<Error> {
        batch.iter().find_map(|p| {
            let action = match &p.action {
                Action::Purge => "purge",
                Action::StripPii { fields } => {
                    if fields.is_empty() {
                        return Some(Error::EmptyStrip);
                    }
                    if let Some(field) = fields.iter().find(|f| !self.pii.contains(f)) {
                        return Some(Error::FieldNotPii {
                            field: field.chars().take(64).collect(),
                        });
                    }
                    "strip"
                }
                Action::Keep { .. } => return None,
            };
            (p.record.legal_hold || p.record.in_flight).then(|| Error::HeldRecord {
                action,
                key: p.record.id.clone(),
            })
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
