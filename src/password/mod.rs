//! argon2id credential hashing: the login service's half of "a copied database is worthless".
//!
//! - [`Hasher`] hashes and verifies with [`Params`] presets ([`Params::owasp`] by default),
//!   returns a rehash when a stored hash is below policy, and runs a decoy verify of equal
//!   cost for unknown accounts ([`Hasher::dummy_verify`]).
//! - [`PasswordHash`] is a strictly parsed PHC string (`$argon2id$v=19$m=..,t=..,p=..$salt$hash`):
//!   compatible with libsodium, argon2-cffi and the reference `argon2` CLI.
//! - [`PepperKeyring`] holds secret peppers by [`KeyId`], recorded in the PHC `keyid` field.
//! - [`LegacyHash::parse`] reads what old platforms export (bcrypt, WordPress, phpass,
//!   Django, ASP.NET Identity, Magento, crypt, MD5/SHA-1) and [`Hasher::upgrade_legacy`]
//!   wraps a table as argon2id offline; the next login turns each into plain argon2id.
//! - [`AcceptancePolicy`] applies NIST SP 800-63B to new passwords: length, a bundled
//!   blocklist of 475,794 common passwords, a zxcvbn strength estimate, context words and,
//!   through the [`BreachedPasswords`] trait, a breached-password corpus.
//! - [`Limiter`] bounds the memory of concurrent hashing and pools block buffers.
//!
//! # Examples
//! A login handler:
//! ```
//! use shopsafe::password::{Hasher, Params, Password, PasswordHash, Verification};
//!
//! # let hasher = Hasher::new(Params::insecure_for_tests(64, 1, 1)?);
//! # let stored_phc = hasher.hash(&Password::new("correct horse battery staple"))?.to_phc_string();
//! # let lookup = |_: &str| Some(stored_phc.clone());
//! let typed = Password::new("correct horse battery staple");
//! let verdict = match lookup("jane@example.com") {
//!     Some(phc) => hasher.verify(&typed, &PasswordHash::parse(&phc)?)?,
//!     None => hasher.dummy_verify(&typed)?, // same cost, same answer: no enumeration
//! };
//! match verdict {
//!     Verification::Match { rehash: Some(new) } => { /* store new.to_phc_string(), log in */ }
//!     Verification::Match { rehash: None } => { /* log in */ }
//!     Verification::Mismatch => { /* "wrong email or password" */ }
//! }
//! # Ok::<(), shopsafe::password::Error>(())
//! ```

mod breached;
mod error;
mod hasher;
mod input;
mod legacy;
mod limiter;
mod params;
mod pepper;
mod phc;
mod policy;
#[cfg(feature = "password-hash")]
mod traits;

pub use breached::{BreachLookupError, BreachedPasswords, OnLookupFailure, PwnedDigest};
pub use error::Error;
pub use hasher::{Hasher, HasherBuilder, UpgradeSummary, Verification};
pub use input::{MAX_PASSWORD_BYTES, Password};
pub use legacy::{LegacyHash, LegacyLimits, SaltPosition};
pub use limiter::{Limiter, LimiterStats};
pub use params::{OUTPUT_LEN, Params, ParamsBuilder, SALT_LEN};
pub use pepper::{KeyId, Pepper, PepperKeyring};
pub use phc::PasswordHash;
pub use policy::{
    AcceptancePolicy, BreachCheck, ContextKind, MIN_CHARS_MULTI_FACTOR, MIN_CHARS_SINGLE_FACTOR,
    MIN_GUESSES, PasswordContext, Rejection, blocklist_len,
};
