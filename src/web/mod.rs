//! The web layer for axum services (feature `axum`): the session and the client source
//! as extractors, the cross-site check, and the crate's answers as HTTP with the
//! security rules built in.
//!
//! - [`CurrentSession`]: the request's live session, from `Authorization: Bearer` or the
//!   [`Kit`]'s cookie; a state-changing request by cookie must pass the cross-site check
//!   (its `X-CSRF-Token`, or `Sec-Fetch-Site` and `Origin` against the kit's origin).
//! - [`ClientSource`] and [`ClientAgent`]: what a limiter counts by and a session keeps.
//! - [`SessionIssued`], [`SignedOut`]: a login's and a sign-out's answers (the cookie
//!   `Secure; HttpOnly; SameSite=Lax`, or the bearer token in the body).
//! - [`Answer`]: every error and refusal of the crate as HTTP (`From` the module errors,
//!   [`accept_login`] for a login decision); [`Body`] for JSON that never echoes.
//!
//! The extractors read a [`Kit`] from the state (`Kit: FromRef<State>`).
//!
//! # The answer table
//!
//! Every answer's body is `{"error": code}` (and `"reason"` where said). Rows marked
//! **alike** give byte-identical answers: the same status, headers and body, built with
//! no further I/O after the decision, whose cost the authenticator makes equal (a decoy
//! verify for unknown and disabled accounts and for credentials that must reset, the
//! incidents read on every path). Send any follow-up mail from a spawned task
//! ([`Refusal::mail_reset`]), never before answering.
//!
//! | from | answer | status | code | headers |
//! |---|---|---|---|---|
//! | `LoginDecision::Rejected` (wrong password, unknown or disabled account) | `Refused(Rejected)` | 401 | `invalid_credentials` | **alike** |
//! | `LoginDecision::ResetRequired` (an incident, a flag) | `Refused(ResetRequired)` | 401 | `invalid_credentials` | **alike** |
//! | `LoginDecision::SecondSignalRequired` (the right password: never said) | `Refused(SecondSignalRequired)` | 401 | `invalid_credentials` | **alike** |
//! | a login's `Password(PasswordTooLong)` ([`accept_login`]) | `Refused(Rejected)` | 401 | `invalid_credentials` | **alike** |
//! | `LoginDecision::Throttled`, `ResetThrottled` | `Throttled` | 429 | `throttled` | `Retry-After` (seconds, rounded up) |
//! | `Password(Overloaded)`, `RateLimiterUnavailable`, `StoreError::Backend` | `Overloaded` | 503 | `overloaded` | `Retry-After: 1` |
//! | `PasswordRejected(BreachCheckUnavailable)` | `BreachCheckUnavailable` | 503 | `breach_check_unavailable` | `Retry-After: 5` |
//! | `PasswordRejected(reason)` | `PasswordRejected` | 400 | `password_rejected`, `reason` as text for the form | |
//! | `Password(PasswordTooLong)` (a sign-up, a reset) | `PasswordTooLong` | 400 | `password_too_long` | |
//! | `TokenMalformed`, `TokenUnknown` | `TokenUnknown` | 400 | `token_unknown` | |
//! | `TokenAlreadyUsed` / `TokenExpired` / `TokenSuperseded` | `TokenUsed` / … | 400 | `token_used` / `token_expired` / `token_superseded` | |
//! | `StoreError::AlreadyExists` (a sign-up) | `AccountExists` | 409 | `account_exists` | |
//! | no session, `SessionMalformed` | `NoSession` | 401 | `no_session` | |
//! | a session not live (ended, expired, reset, erased, incident) | `SessionExpired` | 401 | `session_expired` | |
//! | a cookie request that changes state from another site | `CrossSite` | 403 | `cross_site` | |
//! | a JSON body that does not parse ([`Body`]) | `InvalidBody` | its 400/413/415/422 | `invalid_body` | |
//! | `card::Error` for a bad number / expiry | `Invalid` | 400 | `card_invalid` / `card_expiry_invalid` | |
//! | `card::Error::RevealRateExceeded` | `Throttled` | 429 | `throttled` | `Retry-After: 60` |
//! | anything else | `Internal` | 500 | `internal` | (the cause to the `shopsafe::web` event) |
//!
//! A "forgot password" endpoint should answer 202 before any work, whatever the account
//! and whatever the limiter says (the shop server's `POST /password/forgot`).

mod answer;
mod body;
mod kit;
mod session;
mod source;

pub use answer::{Answer, BREACH_CHECK_RETRY, OVERLOAD_RETRY, Refusal, accept_login};
pub use body::Body;
pub use kit::{CSRF_HEADER, DEFAULT_COOKIE, DEFAULT_ORIGIN, Kit, KitError};
pub use session::{
    Carrier, ClientAgent, ClientSource, CurrentSession, SessionIssued, SignedOut, csrf_token,
};
pub use source::{Cidr, InvalidCidr, client_source};

#[cfg(test)]
mod tests;
