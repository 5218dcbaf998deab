//! Sealed customer data: names, emails, phones and addresses stored so that a copy of the
//! customer database reads as noise.
//!
//! - **Field sealing** ([`Sealer::seal`], [`Sealed`]): XChaCha20-Poly1305 under the
//!   customer's own data key, the associated data binding the value to its table, column,
//!   record key, customer and key version, so a value copied to another row, column or
//!   customer does not open. Short values are padded to length buckets ([`Padding`]).
//! - **The key hierarchy**: a data key per customer, kept in a [`KeyStore`] of its own
//!   (its own SQLite file or PostgreSQL schema, apart from the customer database and the
//!   card vault), wrapped locally by the customer-data key-encryption key (KEK). Only the
//!   KEK comes from a `card::KeySource` (a key file, the environment, or an HSM through
//!   `EnvelopeKeySource`), and it is read once when the [`Sealer`] starts. Rotating the
//!   KEK rewraps every data key and touches no sealed value ([`Sealer::rewrap`]).
//! - **Blind indexes** ([`Sealer::blind_index`], [`BlindIndex`]): login by email and
//!   "find the customer with this phone" on sealed data.
//! - **In bulk** ([`Sealer::keys`], [`Sealer::open_all`]): one key-store read per batch.
//!
//! # Security
//! A copy of the customer database alone gives an intruder, for each sealed field: that
//! the row has one, its padded length (its bucket), which rows share a value (through the
//! blind indexes), and how many do. A copy of the key store alone gives wrapped keys that
//! open only with the KEK. A copy of both, with the KEK (the application server's key
//! file, or its HSM session), gives everything: keep the KEK off the database servers.
//! The application server's memory holds the KEK and, while a batch runs, that batch's
//! data keys.
//!
//! What an index leaks: equality and frequency within its column (a common surname
//! shows as a large group), nothing across columns or deployments (each column has its
//! own key). Indexes are 128-bit truncations: a false match between two different values
//! has probability 2⁻¹²⁸ a pair, and a lookup confirms each hit by opening it
//! ([`Sealer::same`]).

mod column;
mod error;
mod index;
mod kek;
mod keys;
mod ledger;
mod sealed;
mod sealer;

pub use column::{Column, Padding};
pub use error::Error;
pub use index::BlindIndex;
pub use keys::{KeyStore, WrappedIndexKey, WrappedKey};
pub use ledger::{Erasure, ErasureLedger, LedgerEntry, LedgerStore, LedgerVerified, Retained};
pub use sealed::{MAX_VALUE, Sealed};
pub use sealer::{CustomerKeys, Plaintext, Replay, Rewrap, Sealer};
