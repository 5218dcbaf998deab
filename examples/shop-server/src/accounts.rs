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
use shopsafe::password::{Password, PasswordContext};
use shopsafe::rotation::{Delivery, Error as AuthError, ResetToken};
use shopsafe::web::{Answer, ClientAgent, SessionIssued, accept_login};

use crate::answers::{Body, Source, auth_error, error, internal, spend_async};
use crate::app::{App, CustomerStores, Shared};
use crate::log;
use crate::profiles::AppError;
use crate::profiles::NewProfile;
use crate::session::Customer;

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
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    phone: Option<String>,
}

/// An optional free-text field: trimmed, at most `max` bytes, no control characters.
fn optional_text(value: Option<String>, max: usize) -> Result<Option<String>, ()> {
    match value.map(|v| v.trim().to_owned()) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) if v.len() <= max && !v.chars().any(char::is_control) => Ok(Some(v)),
        Some(_) => Err(()),
    }
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
    let Ok(name) = optional_text(body.name, 200) else {
        return error(StatusCode::BAD_REQUEST, "invalid_name");
    };
    let Ok(phone) = optional_text(body.phone, 32) else {
        return error(StatusCode::BAD_REQUEST, "invalid_phone");
    };
    let context = PasswordContext::new()
        .email(&email)
        .brand(&body.brand)
        .word(account.as_str());
    // The password policy first (a breached-password lookup at most, no hash): a
    // refused password is answered before anything says whether the email is taken.
    let policy = app.acceptance.clone();
    let checked_context = context.clone();
    let password = Password::new(body.password);
    let verdict = blocking(move || {
        let verdict = policy.check(&password, &checked_context);
        Ok::<_, AppError>((password, verdict))
    })
    .await;
    let password = match verdict {
        Ok((password, Ok(()))) => password,
        Ok((_, Err(reason))) => return auth_error(AuthError::PasswordRejected(reason)),
        Err(e) => return internal("password policy", &e),
    };
    // The profile next, sealed and pending (no lookup sees it yet): its insert decides
    // that both the account id and the email (through its blind index) are new, so a
    // second sign-up for either never overwrites the first one's profile. A taken
    // email answers as a taken id does.
    let profiles = Arc::clone(&app.profiles);
    let (id, home) = (account.as_str().to_owned(), body.address);
    let created = blocking(move || {
        profiles.create(&NewProfile {
            account: &id,
            email: &email,
            name: name.as_deref(),
            phone: phone.as_deref(),
            home: &home,
        })
    })
    .await;
    match created {
        Ok(true) => {}
        Ok(false) => return error(StatusCode::CONFLICT, "account_exists"),
        // An erased id is taken for good: nothing new is sealed for it.
        Err(e) if matches!(e.downcast_ref(), Some(shopsafe::seal::Error::Erased)) => {
            return error(StatusCode::CONFLICT, "account_exists");
        }
        Err(e) => return internal("create profile", &e),
    }
    let registered = app
        .auth
        .register(account.clone(), vec![brand], password, context)
        .await;
    let profiles = Arc::clone(&app.profiles);
    let id = account.as_str().to_owned();
    if let Err(e) = registered {
        // The credential was refused (or the id has one from elsewhere): the pending
        // profile made for this sign-up goes.
        if let Err(e) = blocking(move || profiles.remove(&id)).await {
            log(&format!("error: remove profile: {e}"));
        }
        return auth_error(e);
    }
    // The credential is stored: the profile must become visible. Tried twice; a
    // failure both times is a database failure, and the row stays pending with its
    // credential for an operator (the sweep never removes such a row).
    let activated =
        blocking(move || profiles.activate(&id).or_else(|_| profiles.activate(&id))).await;
    if let Err(e) = activated {
        return internal("activate profile", &e);
    }
    (
        StatusCode::CREATED,
        Json(json!({ "account": account.as_str() })),
    )
        .into_response()
}

#[derive(Deserialize)]
pub(crate) struct LoginBody {
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    email: Option<String>,
    password: String,
}

pub(crate) async fn login<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    Source(source): Source,
    ClientAgent(agent): ClientAgent,
    Body(body): Body<LoginBody>,
) -> Response {
    let password = Password::new(body.password);
    // By id, or by email through its blind index. Not even an id, or an email no one
    // has: the path of an unknown account, limiter included (the same cost, the same
    // answer, the same per-source budget); the index lookup is the same for both.
    let account = match (body.account, body.email) {
        (Some(name), None) => AccountId::new(&name).unwrap_or_else(|_| AccountId::unmatchable()),
        (None, Some(email)) => {
            let profiles = Arc::clone(&app.profiles);
            match blocking(move || profiles.account_by_email(&email)).await {
                // An email no one has stands for an account of its own (its own
                // rate-limit counter, as a real account's), which no account can be.
                Ok((found, index)) => found
                    .and_then(|a| AccountId::new(a).ok())
                    .unwrap_or_else(|| AccountId::unmatchable_for(&index)),
                Err(e) => return internal("find account by email", &e),
            }
        }
        _ => return error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
    };
    let decision = app
        .auth
        .login_from(account.clone(), password, source.clone())
        .await;
    let stamp = match accept_login(decision) {
        Ok(stamp) => stamp,
        Err(answer) => {
            // The customer must hear from us (an incident, a second signal): the reset
            // mail goes out off the request path, so the answer's timing does not tell.
            if matches!(answer, Answer::Refused(why) if why.mail_reset()) {
                let app = Arc::clone(&app);
                tokio::spawn(async move { send_reset(&app, account, source).await });
            }
            return answer.into_response();
        }
    };
    match app
        .kit
        .sessions()
        .start(&account, &stamp, &source, &agent)
        .await
    {
        Ok((token, _)) => SessionIssued::bearer(token).into_response(),
        Err(e) => auth_error(e),
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

pub(crate) async fn me(Customer(account, _): Customer) -> Response {
    Json(json!({ "account": account.as_str() })).into_response()
}

/// `GET /me/profile`: what the shop holds about the customer, opened for them alone.
pub(crate) async fn my_profile<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    Customer(account, _): Customer,
) -> Response {
    let profiles = Arc::clone(&app.profiles);
    let id = account.as_str().to_owned();
    match blocking(move || profiles.profile(&id)).await {
        Ok(Some(p)) => Json(json!({
            "account": account.as_str(),
            "email": p.email,
            "name": p.name,
            "phone": p.phone,
            "address": p.home,
        }))
        .into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no_profile"),
        Err(e) => internal("open profile", &e),
    }
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
        Err(e) => return auth_error(e),
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
        Ok(account) => {
            // The new stamp already ends every session; this also clears them from the
            // customer's list and ends remembered devices.
            let sessions = Arc::clone(&app.sessions);
            if let Err(e) = blocking(move || sessions.end_all_of(&account)).await {
                return auth_error(e);
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => auth_error(e),
    }
}
