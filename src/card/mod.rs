//! Tokenized card storage, kept apart from the customer database.
//!
//! - [`Pan`]: a parsed card number (Luhn, brand from the IIN table, lengths per brand),
//!   wiped on drop, printed as `Visa ••••1111` at most.
//! - [`Vault`]: in the payment service, over a [`VaultStore`] of
//!   its own (`store::sqlite::SqliteVault`, a separate file). `tokenize` seals the number
//!   with XChaCha20-Poly1305 under the current key ([`KeySource`]) and returns a
//!   [`CardOnFile`]: token, brand, last four, expiry, keyed [`Fingerprint`].
//!   `detokenize` needs a [`DetokenizeGrant`] and writes an audit record first. Keys
//!   rotate ([`Vault::rotate`], [`Vault::rewrap`]) and can be shredded
//!   ([`Vault::shred`]).
//! - [`StepUp::assess`]: a stored card shipping to a new address (or after a recent
//!   email or password change, or from a new device) needs the cardholder again.
//!
//! # Security
//! What this module cannot do: keep the vault safe if the vault's machine and its key
//! source are both taken; protect a number while the payment service holds it in the
//! clear (between `detokenize` and the processor call); or stop a number from reaching a
//! log that the application writes itself (the `minimize` redactor is for that).

mod brand;
mod error;
mod grant;
mod keys;
mod on_file;
mod pan;
mod stepup;
mod store;
mod vault;
mod vault_store;

pub use brand::Brand;
pub use error::Error;
pub use grant::{GrantPolicy, Purpose};
#[cfg(feature = "pkcs11")]
#[cfg_attr(docsrs, doc(cfg(feature = "pkcs11")))]
pub use keys::Pkcs11Wrapper;
pub use keys::{
    EnvKeySource, EnvelopeKeySource, FileKeySource, KekRewrap, KeySource, KeyWrapper,
    UnwrappedPepper, VaultKey, VaultKeyId,
};
pub use on_file::{CardOnFile, CardToken, Fingerprint};
pub use pan::{Expiry, Last4, PAN_DIGITS, Pan, luhn_check_digit, luhn_valid};
pub use stepup::{Order, RECENT_CHANGE, ShippingAddress, StepUp, StepUpReason};
pub use store::CardOnFileStore;
pub use vault::{DetokenizeGrant, RewrapReport, Vault};
pub use vault_store::{FindOrInsert, HeldCard, SealedCard, VaultStore};
