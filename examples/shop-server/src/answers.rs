//! Requests in and answers out: the shop's own error answers (the library's are
//! `shopsafe::web::Answer`, where the rule that an unknown account and a wrong password
//! answer alike lives), the client source, the per-source budgets, and the admin check.

use std::sync::Arc;

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use shopsafe::aio::blocking;
use shopsafe::kernel::{AccountId, Timestamp};
use shopsafe::rotation::{Admission, AttemptOutcome, Error as AuthError, RateLimiter};
pub(crate) use shopsafe::web::Body;
use shopsafe::web::{Answer, ClientSource, Refusal};
use subtle::ConstantTimeEq as _;

use crate::app::App;
use crate::log;

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

/// An error of the library as its row of the answer table (`shopsafe::web`); one with
/// no row of its own (a 500) is logged, as the shop logs its own failures (the error's
/// text names no secret and no person).
pub(crate) fn auth_error(e: AuthError) -> Response {
    let text = e.to_string();
    let answer = Answer::from(e);
    if answer == Answer::Internal {
        log(&format!("error: {text}"));
    }
    answer.into_response()
}

pub(crate) fn invalid_credentials() -> Response {
    Answer::Refused(Refusal::Rejected).into_response()
}

/// The client address a request counts by (`shopsafe::web::ClientSource`, behind the
/// kit's trusted proxies).
pub(crate) struct Source(pub(crate) String);

impl<S: Send + Sync + 'static, V: Send + Sync + 'static> FromRequestParts<Arc<App<S, V>>>
    for Source
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App<S, V>>) -> Result<Self, Response> {
        match ClientSource::of(&app.kit, parts) {
            Ok(ClientSource(source)) => Ok(Self(source)),
            Err(answer) => {
                log("error: source: no peer address");
                Err(answer.into_response())
            }
        }
    }
}

/// One use of a budget that has no second signal to give (a sign-up, a charge): past the
/// account's limit it is refused whatever the source, and every use counts.
pub(crate) fn spend(
    limiter: &dyn RateLimiter,
    account: &AccountId,
    source: &str,
) -> Result<(), Answer> {
    let now = Timestamp::now();
    match limiter.reserve(account, source, now) {
        Ok(Admission::Allowed(r)) if r.second_signal_required() => {
            let _ = limiter.settle(r, AttemptOutcome::NotTried, now);
            Err(Answer::Throttled {
                retry_after: std::time::Duration::from_secs(60),
            })
        }
        Ok(Admission::Allowed(r)) => {
            let _ = limiter.settle(r, AttemptOutcome::Failure, now);
            Ok(())
        }
        Ok(Admission::Throttled { retry_after }) => Err(Answer::Throttled { retry_after }),
        Err(_) => Err(Answer::overloaded()),
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
        .map_err(IntoResponse::into_response)
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
