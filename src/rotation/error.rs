//! The rotation module's errors.

use std::time::Duration;

use crate::password::Rejection;

/// Errors of the rotation module. None says whether an account exists.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Not a reset token (wrong length or alphabet), or a link without one.
    #[error("malformed reset token")]
    TokenMalformed,
    /// A session or remember-device token that is not the prefix and 43 characters of
    /// canonical base64url.
    #[error("malformed session token")]
    SessionMalformed,
    /// No such token: never issued, or replaced by a newer one.
    #[error("unknown reset token")]
    TokenUnknown,
    /// The token was already used.
    #[error("reset token already used")]
    TokenAlreadyUsed,
    /// The campaign was not split into that many lanes.
    #[error("the campaign has no lane {lane}")]
    NoSuchLane {
        /// The lane asked for.
        lane: usize,
    },
    /// The token is past its lifetime.
    #[error("reset token expired")]
    TokenExpired,
    /// The password changed after the token was issued.
    #[error("reset token superseded by a later password change")]
    TokenSuperseded,
    /// The new password was refused; the token stays usable.
    #[error("new password refused: {0}")]
    PasswordRejected(Rejection),
    /// `declare` was given the account-list scope; use `declare_accounts`.
    #[error("an account-list incident is declared with Incident::declare_accounts")]
    ScopeNeedsList,
    /// A reset URL template is unusable.
    #[error("invalid reset URL template: {reason}")]
    InvalidTemplate {
        /// Why.
        reason: &'static str,
    },
    /// No reset URL template for this brand and no default.
    #[error("no reset URL template for brand {brand:?} and no default")]
    NoTemplateForBrand {
        /// The brand, if the account has one.
        brand: Option<String>,
    },
    /// The notifier failed; progress up to the previous notice is saved.
    #[error(transparent)]
    Notify(#[from] NotifyError),
    /// From the password module (hashing overloaded, ...).
    #[error(transparent)]
    Password(#[from] crate::password::Error),
    /// From the store.
    #[error(transparent)]
    Store(#[from] crate::persist::StoreError),
    /// The rate limiter could not answer; the attempt was refused without being checked
    /// (a limiter fails closed). Answer 503.
    #[error("rate limiter unavailable")]
    RateLimiterUnavailable(#[source] crate::persist::StoreError),
    /// Too many "forgot password" requests for this account or from this source. Show
    /// the same page as for a sent link.
    #[error("too many reset requests; retry in {retry_after:?}")]
    ResetThrottled {
        /// When to retry.
        retry_after: Duration,
    },
    /// The OS random generator failed.
    #[error(transparent)]
    Rng(#[from] crate::secret::RngError),
}

/// A delivery failure; the campaign stops there and resumes at that account next run.
#[derive(Debug, thiserror::Error)]
#[error("notice delivery failed")]
pub struct NotifyError(#[source] pub Box<dyn std::error::Error + Send + Sync>);
