#![doc = include_str!("lib.md")]
// The lint wall is the `[lints]` table of Cargo.toml, so tests, examples and benches are
// linted alike. Unit tests may unwrap, expect and panic: that is how they fail.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod aio;
pub mod audit;
pub mod card;
#[cfg(any(test, feature = "conformance"))]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
pub mod events;
pub mod guide;
pub mod kernel;
pub mod minimize;
pub mod password;
pub mod persist;
pub mod pwned;
pub mod rotation;
pub mod seal;
pub mod secret;
#[cfg(feature = "smtp")]
#[cfg_attr(docsrs, doc(cfg(feature = "smtp")))]
pub mod smtp;
pub mod store;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod web;

/// What a login and checkout service needs, in one import: `use shopsafe::prelude::*;`.
/// Each name here is also at its one path in its module.
pub mod prelude {
    #[cfg(feature = "tokio")]
    pub use crate::aio::{AsyncAuthenticator, AsyncSessions, AsyncVault, blocking};
    pub use crate::card::{
        CardOnFile, CardToken, Expiry, FileKeySource, Pan, Purpose, Vault, VaultKeyId,
    };
    pub use crate::kernel::{AccountId, BrandId, Timestamp};
    pub use crate::password::{AcceptancePolicy, Hasher, Params, Password, PasswordContext};
    pub use crate::rotation::{
        Authenticator, BrandLinks, Campaign, CampaignOptions, Incident, IncidentId, IncidentScope,
        LoginDecision, Notice, NotifyError, ResetLink, ResetToken, ResetUrlTemplate, SessionId,
        SessionToken, Sessions,
    };
    #[cfg(feature = "sqlite")]
    pub use crate::store::sqlite::{SqliteStore, SqliteVault};
    #[cfg(feature = "axum")]
    pub use crate::web::{
        Answer, Body, ClientAgent, ClientSource, CurrentSession, Kit, SessionIssued, SignedOut,
        accept_login,
    };
}

/// Any error of this crate: one variant per module, each wrapping that module's own enum.
///
/// # Examples
/// ```
/// fn login() -> Result<(), shopsafe::Error> {
///     let _hash: shopsafe::password::PasswordHash = "$argon2id$v=19$bad".parse()?;
///     Ok(())
/// }
/// assert!(matches!(login(), Err(shopsafe::Error::Password(_))));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// From [`password`].
    #[error(transparent)]
    Password(#[from] password::Error),
    /// From [`audit`].
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
    /// From [`card`].
    #[error(transparent)]
    Card(#[from] card::Error),
    /// From [`minimize`].
    #[error(transparent)]
    Minimize(#[from] minimize::Error),
    /// From [`pwned`].
    #[error(transparent)]
    Pwned(#[from] pwned::Error),
    /// From [`rotation`].
    #[error(transparent)]
    Rotation(#[from] rotation::Error),
    /// From [`seal`].
    #[error(transparent)]
    Seal(#[from] seal::Error),
    /// From [`persist`]: a store failed.
    #[error(transparent)]
    Store(#[from] persist::StoreError),
}

/// The README's code blocks, run as doc tests: the README is the repository's front
/// door (with links GitHub follows), `src/lib.md` the crate's (with links rustdoc follows).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
