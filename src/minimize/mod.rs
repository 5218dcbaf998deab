//! Data minimization: personal data that never prints, masks, keyed pseudonyms, and a
//! card-number scanner for logs.
//!
//! - [`Pii`] wraps names, emails, phones, addresses, dates of birth, free text: `Debug`
//!   and `Display` print a mask ([`mask`]), reading takes [`Pii::expose`].
//! - [`Pseudonymizer`]: HMAC-SHA-256 pseudonyms per key and kind, for analytics joins.
//! - [`scan`], [`redact`], [`redact_bytes`] and [`RedactingWriter`] find card numbers in
//!   text (12–19 digits, plausible grouping, Luhn, known IIN) and write `[PAN:…1234]`.
//!
//! Retention planning and the breach exposure report are not here yet.
//!
//! # Security
//! The scanner finds card numbers written as digits; it cannot find one spelled out in
//! words, split across lines, or encoded (base64, hex). Masks are for display, not for
//! storage: a masked email still says who a customer probably is.

pub mod mask;
mod pii;
mod pseudonym;
mod scanner;

pub use pii::{Pii, PiiKind};
pub use pseudonym::Pseudonymizer;
pub use scanner::{
    PanMatch, RedactStyle, RedactingWriter, redact, redact_bytes, redact_with, scan,
};

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
}
