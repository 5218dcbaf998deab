//! The crate's answers as HTTP: one place for the rules that keep an answer from
//! telling a guesser anything.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::password::{Error as PasswordError, Rejection};
use crate::persist::StoreError;
use crate::rotation::{Error as RotationError, LoginDecision, ResetReason, SecurityStamp};

/// How long a client waits after an overload (a full hashing pool, a store or limiter
/// that did not answer) before it tries again.
pub const OVERLOAD_RETRY: Duration = Duration::from_secs(1);

/// How long a client waits after the breached-password corpus could not be asked.
pub const BREACH_CHECK_RETRY: Duration = Duration::from_secs(5);

/// Why a login was refused. Every one of them answers exactly as
/// [`Refusal::Rejected`] does (the same status, body and headers), so the answer says
/// nothing the guesser did not know; the variant is for the service's own follow-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// Wrong password, unknown or disabled account, or a password longer than any
    /// sign-up accepts.
    Rejected,
    /// The credential must be reset (an incident, a flag). Mail the customer a reset
    /// link off the request path ([`Refusal::mail_reset`]).
    ResetRequired(ResetReason),
    /// The password was right, from a new source while others guess at the account: the
    /// second signal is the customer's mailbox. Mail a reset link off the request path.
    SecondSignalRequired,
}

impl Refusal {
    /// Whether the service should mail the account a reset link (spawned, so that the
    /// answer's timing does not tell either).
    #[must_use]
    pub fn mail_reset(self) -> bool {
        !matches!(self, Self::Rejected)
    }
}

/// An answer of the crate, as HTTP. Built from the crate's errors and decisions
/// (`From`, [`accept_login`]) or by the service for its own refusals ([`Answer::Invalid`]
/// and its kin take a fixed code, never the request's words); every mapping is a row of
/// the [answer table](crate::web#the-answer-table).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answer {
    /// A refused login: 401 `invalid_credentials`, whatever the [`Refusal`].
    Refused(Refusal),
    /// Too many attempts: 429 `throttled` with `Retry-After`.
    Throttled {
        /// When to retry.
        retry_after: Duration,
    },
    /// The service is overloaded or a store did not answer: 503 `overloaded` with
    /// `Retry-After`.
    Overloaded {
        /// When to retry.
        retry_after: Duration,
    },
    /// The breached-password corpus could not be asked: 503 `breach_check_unavailable`
    /// with `Retry-After` (not the password's fault).
    BreachCheckUnavailable,
    /// The acceptance policy refused a new password: 400 `password_rejected` with the
    /// reason as text for the form (the reason never quotes the password).
    PasswordRejected(String),
    /// A new password longer than any sign-up accepts: 400 `password_too_long`.
    PasswordTooLong,
    /// A reset token that was never issued, was replaced, or does not parse: 400
    /// `token_unknown`.
    TokenUnknown,
    /// A reset token already used: 400 `token_used`.
    TokenUsed,
    /// A reset token past its lifetime: 400 `token_expired`.
    TokenExpired,
    /// A reset token older than the password's last change: 400 `token_superseded`.
    TokenSuperseded,
    /// A sign-up for an account that exists: 409 `account_exists`.
    AccountExists,
    /// No session on the request (or not one that parses): 401 `no_session`.
    NoSession,
    /// A session that is not live (ended, expired, its account reset, erased or
    /// compromised by an incident): 401 `session_expired`.
    SessionExpired,
    /// A state-changing request by cookie that failed the cross-site check: 403
    /// `cross_site`.
    CrossSite,
    /// A body that does not parse: its status (400, 413, 415 or 422) and `invalid_body`,
    /// never the parser's text (which quotes the value back).
    InvalidBody(StatusCode),
    /// The service's own refusal of a request: 400 and the code.
    Invalid(&'static str),
    /// The service's own "no such thing": 404 and the code.
    NotFound(&'static str),
    /// The service's own refusal of a caller: 403 and the code.
    Forbidden(&'static str),
    /// The service's own conflict: 409 and the code.
    Conflict(&'static str),
    /// Anything else: 500 `internal`, with nothing of the cause in the answer (the cause
    /// goes to the `shopsafe::web` error event with the feature `tracing`).
    Internal,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

impl Answer {
    /// The answer's status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Refused(_) | Self::NoSession | Self::SessionExpired => StatusCode::UNAUTHORIZED,
            Self::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Overloaded { .. } | Self::BreachCheckUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::PasswordRejected(_)
            | Self::PasswordTooLong
            | Self::TokenUnknown
            | Self::TokenUsed
            | Self::TokenExpired
            | Self::TokenSuperseded
            | Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::AccountExists | Self::Conflict(_) => StatusCode::CONFLICT,
            Self::CrossSite | Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::InvalidBody(status) => *status,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `error` code of the answer's JSON body.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Refused(_) => "invalid_credentials",
            Self::Throttled { .. } => "throttled",
            Self::Overloaded { .. } => "overloaded",
            Self::BreachCheckUnavailable => "breach_check_unavailable",
            Self::PasswordRejected(_) => "password_rejected",
            Self::PasswordTooLong => "password_too_long",
            Self::TokenUnknown => "token_unknown",
            Self::TokenUsed => "token_used",
            Self::TokenExpired => "token_expired",
            Self::TokenSuperseded => "token_superseded",
            Self::AccountExists => "account_exists",
            Self::NoSession => "no_session",
            Self::SessionExpired => "session_expired",
            Self::CrossSite => "cross_site",
            Self::InvalidBody(_) => "invalid_body",
            Self::Invalid(code)
            | Self::NotFound(code)
            | Self::Forbidden(code)
            | Self::Conflict(code) => code,
            Self::Internal => "internal",
        }
    }

    /// The `Retry-After` the answer carries, in whole seconds (at least 1).
    #[must_use]
    pub fn retry_after(&self) -> Option<u64> {
        let wait = match self {
            Self::Throttled { retry_after } | Self::Overloaded { retry_after } => *retry_after,
            Self::BreachCheckUnavailable => BREACH_CHECK_RETRY,
            _ => return None,
        };
        // Rounded up: a client told 0 (or less than the real wait) comes back too soon.
        let secs = wait
            .as_secs()
            .saturating_add(u64::from(wait.subsec_nanos() > 0));
        Some(secs.max(1))
    }

    /// An overload with the default wait.
    #[must_use]
    pub fn overloaded() -> Self {
        Self::Overloaded {
            retry_after: OVERLOAD_RETRY,
        }
    }

    /// The answer for an error the table has no row for: 500, and the cause (its
    /// `Display`, which names no secret and no person) to the error event.
    pub(crate) fn internal(what: &'static str, cause: &dyn core::fmt::Display) -> Self {
        crate::events::internal_error(what, cause);
        Self::Internal
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let reason = match &self {
            Self::PasswordRejected(reason) => Some(reason.as_str()),
            _ => None,
        };
        let body = Body {
            error: self.code(),
            reason,
        };
        let mut response = (self.status(), Json(body)).into_response();
        if let Some(secs) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// The session stamp of an accepted login, or the answer for every other outcome: the
/// one place where a wrong password, an unknown, disabled or must-reset account, a
/// second-signal demand and a too-long password become the same answer.
///
/// # Errors
/// The [`Answer`] to send: [`Answer::Refused`] (check [`Refusal::mail_reset`] for the
/// follow-up), [`Answer::Throttled`], or the error's row of the table.
///
/// # Examples
/// ```
/// use shopsafe::rotation::LoginDecision;
/// use shopsafe::web::{Answer, Refusal, accept_login};
///
/// let refused = accept_login(Ok(LoginDecision::Rejected)).unwrap_err();
/// assert_eq!(refused, Answer::Refused(Refusal::Rejected));
/// assert_eq!((refused.status().as_u16(), refused.code()), (401, "invalid_credentials"));
/// ```
pub fn accept_login(result: Result<LoginDecision, RotationError>) -> Result<SecurityStamp, Answer> {
    match result {
        Ok(LoginDecision::Accepted { session_stamp, .. }) => Ok(session_stamp),
        Ok(LoginDecision::ResetRequired { reason }) => {
            Err(Answer::Refused(Refusal::ResetRequired(reason)))
        }
        Ok(LoginDecision::SecondSignalRequired { .. }) => {
            Err(Answer::Refused(Refusal::SecondSignalRequired))
        }
        Ok(LoginDecision::Throttled { retry_after }) => Err(Answer::Throttled { retry_after }),
        // Longer than any sign-up accepts, so never the right password; refused before
        // any lookup, alike for every account.
        Err(RotationError::Password(PasswordError::PasswordTooLong { .. }))
        | Ok(LoginDecision::Rejected) => Err(Answer::Refused(Refusal::Rejected)),
        Err(e) => Err(Answer::from(e)),
    }
}

impl From<RotationError> for Answer {
    fn from(e: RotationError) -> Self {
        match e {
            RotationError::Password(p) => Self::from(p),
            RotationError::RateLimiterUnavailable(_) => Self::overloaded(),
            RotationError::PasswordRejected(Rejection::BreachCheckUnavailable) => {
                Self::BreachCheckUnavailable
            }
            RotationError::PasswordRejected(reason) => Self::PasswordRejected(reason.to_string()),
            RotationError::TokenMalformed | RotationError::TokenUnknown => Self::TokenUnknown,
            RotationError::TokenAlreadyUsed => Self::TokenUsed,
            RotationError::TokenExpired => Self::TokenExpired,
            RotationError::TokenSuperseded => Self::TokenSuperseded,
            RotationError::SessionMalformed => Self::NoSession,
            RotationError::ResetThrottled { retry_after } => Self::Throttled { retry_after },
            RotationError::Store(s) => Self::from(s),
            other => Self::internal("rotation", &other),
        }
    }
}

impl From<PasswordError> for Answer {
    fn from(e: PasswordError) -> Self {
        match e {
            PasswordError::Overloaded { .. } => Self::overloaded(),
            PasswordError::PasswordTooLong { .. } => Self::PasswordTooLong,
            other => Self::internal("password", &other),
        }
    }
}

impl From<StoreError> for Answer {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::AlreadyExists => Self::AccountExists,
            // The database did not answer: the client may try again shortly.
            StoreError::Backend { .. } => {
                crate::events::internal_error("store", &e);
                Self::overloaded()
            }
            other => Self::internal("store", &other),
        }
    }
}

impl From<crate::card::Error> for Answer {
    fn from(e: crate::card::Error) -> Self {
        use crate::card::Error as CardError;
        match e {
            CardError::InvalidPan { .. }
            | CardError::LuhnMismatch
            | CardError::UnknownBrand
            | CardError::WrongLengthForBrand { .. } => Self::Invalid("card_invalid"),
            CardError::InvalidExpiry => Self::Invalid("card_expiry_invalid"),
            CardError::RevealRateExceeded => Self::Throttled {
                retry_after: Duration::from_secs(60),
            },
            CardError::Store(s) => Self::from(s),
            other => Self::internal("card", &other),
        }
    }
}

impl IntoResponse for RotationError {
    fn into_response(self) -> Response {
        Answer::from(self).into_response()
    }
}
