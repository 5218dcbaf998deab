//! The store trait retention plans are applied through, owned here because it carries
//! this module's [`TableSpec`] and [`Planned`], and the record of a run it returns
//! ([`RunReport`]); backends implement it.

use super::Error;
use super::retention::{Action, Planned};
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
    pub(crate) fn check_batch(&self, batch: &[Planned]) -> Result<(), StoreError> {
        self.refusal(batch).map_or(Ok(()), |refused| {
            Err(StoreError::RetentionRefused(Box::new(refused)))
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
