//! The minimize module's errors.

/// Errors of the minimize module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A pseudonymizer key shorter than 16 bytes.
    #[error("pseudonymizer key must be at least 16 bytes")]
    KeyTooShort,
    /// A key id must be 1–16 characters of `a-z 0-9 _ -`.
    #[error("invalid pseudonymizer key id")]
    InvalidKeyId,
    /// A category name must be 1–32 characters of `a-z 0-9 _`.
    #[error("invalid data category name")]
    InvalidCategory,
    /// A retention rule needs a maximum age, a dormancy, or both.
    #[error("a retention rule needs a maximum age or a dormancy")]
    EmptyRule,
    /// Not a plain SQL identifier.
    #[error("invalid SQL identifier {name:?}")]
    InvalidIdentifier {
        /// The name (at most 64 characters of it).
        name: String,
    },
    /// A strip names a column the table spec does not declare as personal data.
    #[error("column {field} is not declared as personal data")]
    FieldNotPii {
        /// The column.
        field: String,
    },
    /// A retention rule strips personal data but names no field to strip.
    #[error("a strip rule must name at least one field")]
    EmptyStrip,
    /// A plan would purge or strip a record it marks as held (legal hold) or in flight.
    #[error("refused to {action} record {key:?}: it is under legal hold or in flight")]
    HeldRecord {
        /// `purge` or `strip`.
        action: &'static str,
        /// The record's key.
        key: String,
    },
    /// Planned records must come in ascending key order (that is what makes a run
    /// resumable).
    #[error("planned records are not in ascending key order")]
    OutOfOrder,
    /// A field of the data map that an export or an erasure does not cover.
    #[error("the {by} does not cover {field:?}, which the data map says is held")]
    Uncovered {
        /// What left it out (`export`, `erasure`).
        by: String,
        /// The field, as the map names it.
        field: String,
    },
    /// From the store.
    #[error(transparent)]
    Store(#[from] crate::persist::StoreError),
    /// The rule would expire records before the minimum it says the law requires.
    #[error("retention rule for {category} is shorter than its statutory minimum")]
    BelowStatutoryMinimum {
        /// The category.
        category: String,
    },
}
