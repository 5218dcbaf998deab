//! Accounts and logins: sign-up, login, forgotten password and reset.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use shopsafe::aio::blocking;
use shopsafe::card::VaultStore;
use shopsafe::kernel::{AccountId, BrandId};
use shopsafe::password::{Error as PasswordError, Password, PasswordContext};
use shopsafe::rotation::{Delivery, Error as AuthError, LoginDecision, ResetToken};

use crate::answers::{
    Body, Source, auth_error, error, internal, invalid_credentials, retry_after, spend_async,
};
use crate::app::{App, CustomerStores, Shared};
use crate::log;
use crate::session::{Customer, new_session};

pub(crate) async fn health() -> StatusCode {
    StatusCode::OK
}

#[derive(Deserialize)]
pub(crate) struct NewAccount {
    account: String,
    email: String,
    password: String,
    brand: String,
    address: Vec<String>,
}

pub(crate) fn valid_lines(lines: &[String]) -> bool {
    !lines.is_empty()
        && lines.len() <= 8
        && lines
            .iter()
            .all(|l| !l.trim().is_empty() && l.len() <= 200 && !l.chars().any(char::is_control))
}

pub(crate) async fn create_account<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    Source(source): Source,
    Body(body): Body<NewAccount>,
) -> Response {
    let Ok(account) = AccountId::new(&body.account) else {
        return error(StatusCode::BAD_REQUEST, "invalid_account");
    };
    // Before anything is looked up or hashed: a sign-up costs a hash, and its 409 says
    // whether an id is taken (account ids are public names, but not at full speed).
    if let Err(refused) = spend_async(&app.signups, &account, &source).await {
        return refused;
    }
    if !app.brands.contains(&body.brand) {
        return error(StatusCode::BAD_REQUEST, "unknown_brand");
    }
    let Ok(brand) = BrandId::new(&body.brand) else {
        return error(StatusCode::BAD_REQUEST, "unknown_brand");
    };
    let email = body.email.trim().to_owned();
    if email.len() > 254 || !email.contains('@') || email.chars().any(char::is_control) {
        return error(StatusCode::BAD_REQUEST, "invalid_email");
    }
    if !valid_lines(&body.address) {
        return error(StatusCode::BAD_REQUEST, "invalid_address");
    }
    let context = PasswordContext::new()
        .email(&email)
        .brand(&body.brand)
        .word(account.as_str());
    // The credential first: its insert is what decides that the account is new, so a
    // second sign-up for the account never overwrites the first one's profile.
    if let Err(e) = app
        .auth
        .register(
            account.clone(),
            vec![brand],
            Password::new(body.password),
            context,
        )
        .await
    {
        return auth_error(&e);
    }
    let profiles = Arc::clone(&app.profiles);
    let (name, home) = (account.as_str().to_owned(), body.address);
    match blocking(move || profiles.create(&name, &email, &home)).await {
        Ok(()) => (
            StatusCode::CREATED,
            Json(json!({ "account": account.as_str() })),
        )
            .into_response(),
        Err(e) => internal("create profile", &e),
    }
}

#[derive(Deserialize)]
pub(crate) struct LoginBody {
    account: String,
    password: String,
}

pub(crate) async fn login<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    Source(source): Source,
    Body(body): Body<LoginBody>,
) -> Response {
    let password = Password::new(body.password);
    // Not even an id: the path of an unknown account, limiter included (the same cost,
    // the same answer, the same per-source budget).
    let account = AccountId::new(&body.account).unwrap_or_else(|_| AccountId::unmatchable());
    match app
        .auth
        .login_from(account.clone(), password, source.clone())
        .await
    {
        Ok(LoginDecision::Accepted { session_stamp, .. }) => {
            let session = new_session(&app.session_key, &account, &session_stamp);
            (StatusCode::OK, Json(json!({ "session": session }))).into_response()
        }
        Ok(LoginDecision::ResetRequired { .. }) => {
            // The same answer as a wrong password; the reset mail goes out off the
            // request path, so the answer's timing does not tell either.
            let app = Arc::clone(&app);
            tokio::spawn(async move { send_reset(&app, account, source).await });
            invalid_credentials()
        }
        Ok(LoginDecision::Throttled { retry_after: wait }) => {
            retry_after(StatusCode::TOO_MANY_REQUESTS, "throttled", wait.as_secs())
        }
        Ok(LoginDecision::SecondSignalRequired { .. }) => {
            // The right password from a new source while others guess at the account:
            // the second signal is the customer's mailbox. The answer is the one a
            // wrong password gets, so it tells a guesser nothing.
            let app = Arc::clone(&app);
            tokio::spawn(async move { send_reset(&app, account, source).await });
            invalid_credentials()
        }
        Ok(_) => invalid_credentials(),
        // Longer than any password sign-up accepts, so never the right one; refused
        // before any lookup, alike for every account.
        Err(AuthError::Password(PasswordError::PasswordTooLong { .. })) => invalid_credentials(),
        Err(e) => auth_error(&e),
    }
}

/// Issues a reset link and mails it (unknown accounts and throttled requests: nothing).
pub(crate) async fn send_reset<S: CustomerStores, V: VaultStore + 'static>(
    app: &App<S, V>,
    account: AccountId,
    source: String,
) {
    let link = match app
        .auth
        .request_reset_from(account.clone(), None, source)
        .await
    {
        Ok(Some(link)) => link,
        Ok(None) | Err(AuthError::ResetThrottled { .. }) => return,
        Err(e) => return log(&format!("error: reset request: {e}")),
    };
    let profiles = Arc::clone(&app.profiles);
    let mailer = app.mailer.clone();
    let sent = blocking(move || mailer.reset(&*profiles, &account, &link)).await;
    match sent {
        Ok(Delivery::Accepted) => {}
        Ok(Delivery::Undeliverable(why)) => log(&format!("reset mail undeliverable: {why}")),
        Ok(other) => log(&format!("reset mail: {other:?}")),
        Err(e) => log(&format!("error: reset mail: {e}")),
    }
}

pub(crate) async fn me(Customer(account): Customer) -> Response {
    Json(json!({ "account": account.as_str() })).into_response()
}

#[derive(Deserialize)]
pub(crate) struct Forgot {
    account: String,
}

pub(crate) async fn forgot<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    Source(source): Source,
    Body(body): Body<Forgot>,
) -> StatusCode {
    // 202 before any work, whatever the account: nothing in the answer or its timing
    // says whether the account exists.
    if let Ok(account) = AccountId::new(&body.account) {
        tokio::spawn(async move { send_reset(&app, account, source).await });
    }
    StatusCode::ACCEPTED
}

#[derive(Deserialize)]
pub(crate) struct ResetBody {
    token: String,
    password: String,
}

pub(crate) async fn reset<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    Body(body): Body<ResetBody>,
) -> Response {
    let token = match ResetToken::parse(&body.token) {
        Ok(t) => t,
        Err(e) => return auth_error(&e),
    };
    let profiles = Arc::clone(&app.profiles);
    let name = token.account().as_str().to_owned();
    let email = blocking(move || profiles.email(&name)).await.ok().flatten();
    let mut context = PasswordContext::new().word(token.account().as_str());
    if let Some(email) = &email {
        context = context.email(email);
    }
    match app
        .auth
        .redeem(token, Password::new(body.password), context)
        .await
    {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => auth_error(&e),
    }
}
