//! The backends: SQLite (feature `sqlite`) and PostgreSQL (feature `postgres`).
//!
//! Each backend implements every port of the crate over one database for the customer
//! side and one for the vault, so that a redemption (token + credential + history) or a
//! campaign batch (tokens + progress) is one transaction. The ports live with the modules
//! that call them:
//!
//! | port | module | holds |
//! |---|---|---|
//! | [`CredentialStore`] | `rotation` | credential records, brands, password history |
//! | [`IncidentStore`] | `rotation` | declared incidents and their explicit account lists |
//! | [`ResetTokenStore`] | `rotation` | reset token digests; atomic redemption |
//! | [`CampaignStore`] | `rotation` | notification campaigns: lanes, batches claimed, progress |
//! | [`ThrottleStore`] | `rotation` | rate-limit state shared by every server |
//! | [`AuditSink`] | `audit` | the vault's audit trail ([`AuditLog`]: a file) |
//! | [`VaultStore`](crate::card::VaultStore) | `card` | sealed card numbers, in a database of the vault's own |
//! | [`CardOnFileStore`](crate::card::CardOnFileStore) | `card` | the customer side's cards on file |
//! | [`RetentionStore`](crate::minimize::RetentionStore) | `minimize` | retention plans applied to the application's tables |
//!
//! Every port returns [`StoreError`]. A backend of your own
//! implements the ports and passes the conformance suite (`shopsafe::conformance`,
//! feature `conformance`), as these two do. Nothing inside the crate imports this module:
//! the names below are the 0.1 paths, kept as re-exports. ARCHITECTURE.md draws the
//! layers.

#[cfg(feature = "sqlite")]
pub mod sqlite;

#[cfg(feature = "postgres")]
pub mod postgres;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod rows;

/// The conformance suite, now [`crate::conformance`] (its 0.1 path).
#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub use crate::conformance;

pub use crate::audit::{
    AUDIT_MIGRATION, AuditBreak, AuditCheckpoint, AuditError, AuditKey, AuditLog, AuditOutcome,
    AuditRecord, AuditRepair, AuditSink, AuditVerified, DEFAULT_CHECKPOINT_EVERY,
    InvalidCheckpoint,
};
pub use crate::kernel::{AccountId, BrandId, Timestamp};
pub use crate::persist::{Error, StoreError};
pub use crate::rotation::{
    CampaignId, CampaignState, CampaignStore, ClaimedAccount, CredentialFlags, CredentialRecord,
    CredentialStore, Incident, IncidentId, IncidentScope, IncidentStore, RedeemOutcome, Redemption,
    ResetTokenStore, SELF_SERVICE_LIVE, SecurityStamp, ThrottleAdjust, ThrottleStore, TokenPurpose,
    TokenRecord, Undelivered,
};
