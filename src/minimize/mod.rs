//! Data minimization: personal data that never prints, masks, keyed pseudonyms, and a
//! card-number scanner for logs.
//!
//! - [`Pii`] wraps names, emails, phones, addresses, dates of birth, free text: `Debug`
//!   and `Display` print a mask ([`mask`]), reading takes [`Pii::expose`].
//! - [`Pseudonymizer`]: HMAC-SHA-256 pseudonyms per key and kind, for analytics joins.
//! - [`scan`], [`redact`], [`redact_bytes`] and [`RedactingWriter`] find card numbers in
//!   text (12–19 digits, plausible grouping, Luhn, known IIN) and write `[PAN:…1234]`;
//!   with the `tracing` feature, `RedactingMakeWriter` puts that in front of a
//!   tracing-subscriber writer.
//!
//! - [`RetentionPolicy`]: per-category rules (age, dormancy, a statutory minimum), legal
//!   holds and in-flight records; decisions [`Action::Purge`], [`Action::StripPii`],
//!   [`Action::Keep`] for a stream of [`RecordMeta`], with a [`Summary`]. It deletes
//!   nothing.
//!
//! - [`DataMap`] and [`ExposureReport`]: which stores hold which fields in what form;
//!   after an incident, per customer what was exposed and how, what was not, the notice
//!   paragraph, and counts for the public statement.
//!
//! - [`apply_plan`] applies a plan through a
//!   [`RetentionStore`] to a table the application
//!   describes ([`TableSpec`]): batches in transactions, resumable, leaving a
//!   [`RunReport`].
//!
//! # Security
//! The scanner finds card numbers written as digits; it cannot find one spelled out in
//! words, split across lines, or encoded (base64, hex). Masks are for display, not for
//! storage: a masked email still says who a customer probably is.

mod apply;
mod exposure;
pub mod mask;
mod pii;
mod pseudonym;
mod retention;
mod scanner;
mod store;
#[cfg(feature = "tracing")]
mod tracing_writer;

pub use apply::{RunReport, TableSpec, apply_plan};
pub use exposure::{CustomerExposure, DataMap, ExposureReport, Form, Holding};
pub use pii::{Pii, PiiKind};
pub use pseudonym::Pseudonymizer;
pub use retention::{
    Action, Category, CategoryRule, KeepReason, OnExpiry, Planned, RecordMeta, RetentionPolicy,
    Summary,
};
pub use scanner::{
    Detect, PanMatch, RedactStyle, RedactingWriter, Redactor, redact, redact_bytes, redact_with,
    scan,
};
pub use store::RetentionStore;
#[cfg(feature = "tracing")]
pub use tracing_writer::RedactingMakeWriter;

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
    /// From the store.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The rule would expire records before the minimum it says the law requires.
    #[error("retention rule for {category} is shorter than its statutory minimum")]
    BelowStatutoryMinimum {
        /// The category.
        category: String,
    },
}
