//! Export and erasure on request (GDPR Art. 15, 17 and 20): `GET /me/export`,
//! `DELETE /me`, and the admin forms of both.
//!
//! Erasure destroys the customer's data key first (every sealed value of theirs, in the
//! database and in every copy or backup of it, becomes noise), removes their rows,
//! disables the credential (a login then takes an unknown account's path, and every
//! session answers 401) and writes an erasure record to the audit trail.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use shopsafe::aio::blocking;
use shopsafe::audit::{AuditKind, AuditRecord, AuditSink};
use shopsafe::card::VaultStore;
use shopsafe::kernel::{AccountId, Timestamp};
use shopsafe::password::Password;
use shopsafe::rotation::{CredentialFlags, LoginDecision};

use crate::answers::{
    Admin, Body, Source, auth_error, error, internal, invalid_credentials, retry_after,
};
use crate::app::{App, CustomerStores, Shared};
use crate::profiles::AppError;
use crate::session::Customer;

/// Everything the shop holds about `account`, opened: the profile, the addresses
/// shipped to, and the cards on file as brand, last four and expiry.
fn export_of<S: CustomerStores, V>(
    app: &App<S, V>,
    account: &AccountId,
) -> Result<Option<Value>, AppError> {
    let Some(profile) = app.profiles.profile(account.as_str())? else {
        return Ok(None);
    };
    let addresses = app.profiles.addresses(account.as_str())?;
    let cards: Vec<Value> = app
        .store
        .cards(account)?
        .iter()
        .map(|c| {
            json!({"brand": c.brand.to_string(), "last4": c.last4.to_string(),
                "expiry": c.expiry.to_string()})
        })
        .collect();
    Ok(Some(json!({
        "account": account.as_str(),
        "email": profile.email,
        "name": profile.name,
        "phone": profile.phone,
        "address": profile.home,
        "shipping_addresses": addresses.get(1..).unwrap_or(&[]),
        "cards": cards,
    })))
}

/// What an erasure removes, and what it keeps and why.
fn erasure_answer() -> Value {
    json!({
        "erased": ["email address", "name", "phone number", "home address",
            "shipping addresses", "sessions", "reset links"],
        "retained": [
            {"what": "account id and disabled password hash",
             "why": "so that the id cannot be signed up again and nothing new is sealed for it"},
            {"what": "cards on file as token, brand, last four and expiry",
             "why": "refunds and chargebacks; the card numbers stay in the separate vault"},
            {"what": "erasure record in the audit trail",
             "why": "proof of the erasure (accountability, GDPR Art. 5(2))"},
        ],
    })
}

/// Erases `account` (blocking).
fn erase<S: CustomerStores, V: VaultStore>(
    app: &App<S, V>,
    account: &AccountId,
    by: &str,
    reason: &str,
) -> Result<(), AppError> {
    app.profiles.erase(account.as_str())?;
    // Sessions and reset links end with the credential: a disabled credential logs in
    // as an unknown account, and every session checks it.
    if let Some(record) = app.store.load_credential(account)? {
        app.store
            .set_flags(account, record.flags.union(CredentialFlags::DISABLED))?;
    }
    app.audit.record(
        &AuditRecord::new("-".into(), reason.into(), by.into(), Timestamp::now())
            .with_kind(AuditKind::Erasure),
    )?;
    Ok(())
}

pub(crate) async fn my_export<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    Customer(account): Customer,
) -> Response {
    let app2 = Arc::clone(&app);
    match blocking(move || export_of(&app2, &account)).await {
        Ok(Some(v)) => Json(v).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no_profile"),
        Err(e) => internal("export", &e),
    }
}

#[derive(Deserialize)]
pub(crate) struct EraseMe {
    password: String,
}

pub(crate) async fn erase_me<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    Customer(account): Customer,
    Source(source): Source,
    Body(body): Body<EraseMe>,
) -> Response {
    // The password again, through the limiter: a stolen session alone erases nothing.
    match app
        .auth
        .login_from(account.clone(), Password::new(body.password), source)
        .await
    {
        Ok(LoginDecision::Accepted { .. }) => {}
        Ok(LoginDecision::Throttled { retry_after: wait }) => {
            return retry_after(StatusCode::TOO_MANY_REQUESTS, "throttled", wait.as_secs());
        }
        Ok(_) => return invalid_credentials(),
        Err(e) => return auth_error(&e),
    }
    let app2 = Arc::clone(&app);
    match blocking(move || {
        erase(
            &app2,
            &account,
            "customer",
            "erasure requested by the customer",
        )
    })
    .await
    {
        Ok(()) => (StatusCode::ACCEPTED, Json(erasure_answer())).into_response(),
        Err(e) => internal("erase", &e),
    }
}

#[derive(Deserialize)]
pub(crate) struct EraseBody {
    reason: String,
}

pub(crate) async fn admin_erase<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    _: Admin,
    UrlPath(name): UrlPath<String>,
    Body(body): Body<EraseBody>,
) -> Response {
    let Ok(account) = AccountId::new(&name) else {
        return error(StatusCode::NOT_FOUND, "no_such_account");
    };
    let reason = body
        .reason
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect::<String>();
    let app2 = Arc::clone(&app);
    match blocking(move || erase(&app2, &account, "admin", &reason)).await {
        Ok(()) => (StatusCode::ACCEPTED, Json(erasure_answer())).into_response(),
        Err(e) => internal("erase", &e),
    }
}

pub(crate) async fn admin_export<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    _: Admin,
    UrlPath(name): UrlPath<String>,
) -> Response {
    let Ok(account) = AccountId::new(&name) else {
        return error(StatusCode::NOT_FOUND, "no_such_account");
    };
    let app2 = Arc::clone(&app);
    match blocking(move || export_of(&app2, &account)).await {
        Ok(Some(v)) => Json(v).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no_profile"),
        Err(e) => internal("export", &e),
    }
}
