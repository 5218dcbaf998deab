//! Breached-password corpora for the acceptance policy: the Pwned Passwords data, offline
//! ([`PwnedIndex`], built by [`build_index`]) and, with the `pwned-api` feature, online
//! through its k-anonymity range API (`RangeClient`).
//!
//! Both implement [`password::BreachedPasswords`](crate::password::BreachedPasswords),
//! which [`AcceptancePolicy::with_breached_passwords`](crate::password::AcceptancePolicy::with_breached_passwords)
//! consults at sign-up and reset.
//!
//! # Examples
//! ```no_run
//! use std::sync::Arc;
//! use shopsafe::password::{AcceptancePolicy, OnLookupFailure};
//! use shopsafe::pwned::PwnedIndex;
//!
//! let index = PwnedIndex::open(std::path::Path::new("/var/lib/shop/pwned.idx"))?;
//! let policy = AcceptancePolicy::single_factor()
//!     .with_breached_passwords(Arc::new(index), OnLookupFailure::Refuse);
//! # Ok::<(), shopsafe::pwned::Error>(())
//! ```

use std::path::PathBuf;

mod index;
#[cfg(feature = "pwned-api")]
mod range;

pub use index::{BuildReport, PwnedIndex, SCAN_RECORDS, build_index};
#[cfg(feature = "pwned-api")]
pub use range::{DEFAULT_RANGE_URL, DEFAULT_TIMEOUT, RangeClient};

/// Building or opening an index, or configuring the range client, failed. Lookups fail
/// with [`BreachLookupError`](crate::password::BreachLookupError) instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A line of the input is not in the published format.
    #[error("{}, line {line}: {reason}", path.display())]
    BadLine {
        /// The file.
        path: PathBuf,
        /// The line number (1-based; 0 for the file's name).
        line: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// The single-file input is not sorted by hash.
    #[error("{}, line {line}: hashes out of order (a single file must be sorted by hash)", path.display())]
    NotSorted {
        /// The file.
        path: PathBuf,
        /// The first line out of order.
        line: u64,
    },
    /// The file is not an index of this version, or its size does not match its header.
    #[error("not a usable index: {0}")]
    BadIndex(String),
    /// The range API's address was refused (not `https://`, and not plain HTTP to
    /// loopback).
    #[error("range API address refused: {0}")]
    BadUrl(String),
}
