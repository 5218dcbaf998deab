//! Requests in and answers out: the error answers (where the rule that an unknown
//! account and a wrong password answer alike lives), the JSON body that never quotes a
//! rejected value, the client source, the per-source budgets, and the admin check.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;
use shopsafe::aio::blocking;
use shopsafe::kernel::{AccountId, Timestamp};
use shopsafe::password::{Error as PasswordError, Rejection};
use shopsafe::persist::StoreError;
use shopsafe::rotation::{Admission, AttemptOutcome, Error as AuthError, RateLimiter};
use subtle::ConstantTimeEq as _;

use crate::app::App;
use crate::{log, net};

pub(crate) fn error(status: StatusCode, code: &str) -> Response {
    (status, Json(json!({ "error": code }))).into_response()
}

pub(crate) fn retry_after(status: StatusCode, code: &str, seconds: u64) -> Response {
    let mut r = error(status, code);
    r.headers_mut()
        .insert(header::RETRY_AFTER, seconds.max(1).into());
    r
}

pub(crate) fn internal(what: &str, e: &dyn std::fmt::Display) -> Response {
    log(&format!("error: {what}: {e}"));
    error(StatusCode::INTERNAL_SERVER_ERROR, "internal")
}

pub(crate) fn auth_error(e: &AuthError) -> Response {
    match e {
        AuthError::Password(PasswordError::Overloaded { .. })
        | AuthError::RateLimiterUnavailable(_) => {
            retry_after(StatusCode::SERVICE_UNAVAILABLE, "overloaded", 1)
        }
        // Not the password's fault: the breach corpus could not be asked; try again.
        AuthError::PasswordRejected(Rejection::BreachCheckUnavailable) => retry_after(
            StatusCode::SERVICE_UNAVAILABLE,
            "breach_check_unavailable",
            5,
        ),
        AuthError::PasswordRejected(reason) => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "password_rejected", "reason": reason.to_string() })),
        )
            .into_response(),
        // Refused before any lookup, the same for every account: it tells nothing.
        AuthError::Password(PasswordError::PasswordTooLong { .. }) => {
            error(StatusCode::BAD_REQUEST, "password_too_long")
        }
        AuthError::TokenMalformed | AuthError::TokenUnknown => {
            error(StatusCode::BAD_REQUEST, "token_unknown")
        }
        AuthError::TokenAlreadyUsed => error(StatusCode::BAD_REQUEST, "token_used"),
        AuthError::TokenExpired => error(StatusCode::BAD_REQUEST, "token_expired"),
        AuthError::TokenSuperseded => error(StatusCode::BAD_REQUEST, "token_superseded"),
        AuthError::ResetThrottled { retry_after: wait } => {
            retry_after(StatusCode::TOO_MANY_REQUESTS, "throttled", wait.as_secs())
        }
        AuthError::Store(StoreError::AlreadyExists) => {
            error(StatusCode::CONFLICT, "account_exists")
        }
        other => internal("authenticator", other),
    }
}

pub(crate) fn invalid_credentials() -> Response {
    error(StatusCode::UNAUTHORIZED, "invalid_credentials")
}

/// A JSON body. One that does not parse gets a fixed answer with the rejection's status
/// (400, 415 or 422) and nothing of the request in it: axum's own rejection text quotes
/// the offending value back ("invalid type: integer 12345678901"), which may be a
/// password, into the answer and whatever logs it.
pub(crate) struct Body<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(invalid_body(&rejection)),
        }
    }
}

pub(crate) fn invalid_body(rejection: &JsonRejection) -> Response {
    error(rejection.status(), "invalid_body")
}

/// The client address a request counts by ([`net::client_source`]).
pub(crate) struct Source(pub(crate) String);

impl<S: Send + Sync + 'static, V: Send + Sync + 'static> FromRequestParts<Arc<App<S, V>>>
    for Source
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App<S, V>>) -> Result<Self, Response> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Err(internal("source", &"no peer address"));
        };
        Ok(Self(net::client_source(
            *peer,
            &parts.headers,
            &app.proxies,
        )))
    }
}

/// Why [`spend`] refused.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Refusal {
    Throttled(std::time::Duration),
    Unavailable,
}

impl Refusal {
    fn response(self) -> Response {
        match self {
            Self::Throttled(wait) => {
                retry_after(StatusCode::TOO_MANY_REQUESTS, "throttled", wait.as_secs())
            }
            Self::Unavailable => retry_after(StatusCode::SERVICE_UNAVAILABLE, "overloaded", 1),
        }
    }
}

impl From<StoreError> for Refusal {
    fn from(_: StoreError) -> Self {
        Self::Unavailable
    }
}

/// One use of a budget that has no second signal to give (a sign-up, a charge): past the
/// account's limit it is refused whatever the source, and every use counts.
pub(crate) fn spend(
    limiter: &dyn RateLimiter,
    account: &AccountId,
    source: &str,
) -> Result<(), Refusal> {
    let now = Timestamp::now();
    match limiter.reserve(account, source, now) {
        Ok(Admission::Allowed(r)) if r.second_signal_required() => {
            let _ = limiter.settle(r, AttemptOutcome::NotTried, now);
            Err(Refusal::Throttled(std::time::Duration::from_secs(60)))
        }
        Ok(Admission::Allowed(r)) => {
            let _ = limiter.settle(r, AttemptOutcome::Failure, now);
            Ok(())
        }
        Ok(Admission::Throttled { retry_after: wait }) => Err(Refusal::Throttled(wait)),
        Err(_) => Err(Refusal::Unavailable),
    }
}

/// [`spend`] off the runtime (the limiter's store may block).
pub(crate) async fn spend_async(
    limiter: &Arc<dyn RateLimiter>,
    account: &AccountId,
    source: &str,
) -> Result<(), Response> {
    let (limiter, account, source) = (Arc::clone(limiter), account.clone(), source.to_owned());
    blocking(move || spend(&*limiter, &account, &source))
        .await
        .map_err(Refusal::response)
}

/// The admin (the bearer token of `SHOPSAFE_ADMIN_TOKEN`; 403 otherwise).
pub(crate) struct Admin;

impl<S: Send + Sync + 'static, V: Send + Sync + 'static> FromRequestParts<Arc<App<S, V>>>
    for Admin
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App<S, V>>) -> Result<Self, Response> {
        if is_admin(app, &parts.headers) {
            Ok(Admin)
        } else {
            Err(error(StatusCode::FORBIDDEN, "admin_only"))
        }
    }
}

pub(crate) fn is_admin<S, V>(app: &App<S, V>, headers: &HeaderMap) -> bool {
    let Some(expected) = &app.admin_token else {
        return false;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}
