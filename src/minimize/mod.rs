//! Data minimization: personal data that never prints, masks, keyed pseudonyms, and a
//! card-number scanner for logs.
//!
//! - [`Pii`] wraps names, emails, phones, addresses, dates of birth, free text: `Debug`
//!   and `Display` print a mask ([`mask`]), reading takes [`Pii::expose`].
//! - [`Pseudonymizer`]: HMAC-SHA-256 pseudonyms per key and kind, for analytics joins.
//! - [`scan`], [`redact`], [`redact_bytes`] and [`RedactingWriter`] find card numbers in
//!   text (12–19 digits, plausible grouping, Luhn, known IIN) and write `[PAN:…1234]`;
//!   with the `tracing-redact` feature, `RedactingMakeWriter` puts that in front of a
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
mod error;
mod exposure;
pub mod mask;
mod pii;
mod pseudonym;
mod redact;
mod retention;
mod scanner;
mod store;
#[cfg(feature = "tracing-redact")]
mod tracing_writer;
mod writer;

pub use apply::apply_plan;
pub use error::Error;
pub use exposure::{CustomerExposure, DataMap, ExposureReport, Form, Holding};
pub use pii::{Pii, PiiKind};
pub use pseudonym::Pseudonymizer;
pub use redact::{RedactStyle, Redactor, redact, redact_bytes, redact_with};
pub use retention::{
    Action, Category, CategoryRule, KeepReason, OnExpiry, Planned, RecordMeta, RetentionPolicy,
    Summary,
};
pub use scanner::{Detect, PanMatch, scan};
pub use store::{RetentionStore, RunReport, TableSpec};
#[cfg(feature = "tracing-redact")]
pub use tracing_writer::RedactingMakeWriter;
pub use writer::RedactingWriter;
