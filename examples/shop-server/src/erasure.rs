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
use shopsafe::minimize::{
    Category, CategoryRule, DataMap, Planned, RecordMeta, RetentionPolicy, Summary, TableSpec,
    apply_plan,
};
use shopsafe::password::Password;
use shopsafe::rotation::{CredentialFlags, LoginDecision};
use shopsafe::seal::Erasure;

use crate::answers::{
    Admin, Body, Source, auth_error, error, internal, invalid_credentials, retry_after,
};
use crate::app::{App, CustomerStores, Shared};
use crate::profiles::AppError;
use crate::session::Customer;

/// What the export and the erasure do with each field of the data map
/// ([`crate::app::data_map`]): the one table both are checked against at start
/// ([`check_data_map`]), and from which the erasure's answer and its ledger entry are
/// made.
struct Coverage {
    /// The field, as the data map names it.
    field: &'static str,
    /// Its key in the export, or why it is withheld.
    export: Export,
    /// What the erasure does with it.
    erasure: Fate,
}

enum Export {
    Key(&'static str),
    Withheld(&'static str),
}

enum Fate {
    /// Removed: its key destroyed, its rows deleted.
    Erased,
    /// Kept, as `what`, because `why`.
    Retained(&'static str, &'static str),
}

const COVERAGE: &[Coverage] = &[
    Coverage {
        field: "email address",
        export: Export::Key("email"),
        erasure: Fate::Erased,
    },
    Coverage {
        field: "name",
        export: Export::Key("name"),
        erasure: Fate::Erased,
    },
    Coverage {
        field: "phone number",
        export: Export::Key("phone"),
        erasure: Fate::Erased,
    },
    Coverage {
        field: "home address",
        export: Export::Key("address"),
        erasure: Fate::Erased,
    },
    Coverage {
        field: "shipping address",
        export: Export::Key("shipping_addresses"),
        erasure: Fate::Erased,
    },
    Coverage {
        field: "session source and device",
        export: Export::Key("sessions"),
        erasure: Fate::Erased,
    },
    Coverage {
        field: "password",
        export: Export::Withheld("kept only as an argon2id hash, from which it cannot be read"),
        erasure: Fate::Retained(
            "account id and disabled password hash",
            "so that the id cannot be signed up again and nothing new is sealed for it",
        ),
    },
    Coverage {
        field: "card number",
        export: Export::Key("cards"),
        erasure: Fate::Retained(
            "cards on file as token, brand, last four and expiry",
            "refunds and chargebacks; the card numbers stay in the separate vault",
        ),
    },
];

/// Erased beyond the data map's fields.
const ALSO_ERASED: &[&str] = &["remembered devices", "reset links"];
/// Retained beyond them.
const ALSO_RETAINED: &[(&str, &str)] = &[
    (
        "orders as id, date and amount, their shipping addresses stripped",
        "tax and accounting records (kept for the statutory period)",
    ),
    (
        "erasure record in the audit trail and the erasure ledger",
        "proof of the erasure (accountability, GDPR Art. 5(2))",
    ),
];

/// What the erasure does to the account's orders, through the retention planner: the
/// personal field stripped at once, the record kept.
fn order_policy() -> Result<(RetentionPolicy, TableSpec), AppError> {
    let policy = RetentionPolicy::new().rule(
        Category::new("orders")?,
        CategoryRule::strip_after(std::time::Duration::ZERO, &["ship_to"]),
    )?;
    Ok((policy, TableSpec::new("shop_orders", "id", &["ship_to"])?))
}

/// Refuses a data map with a field the export or the erasure leaves out.
pub(crate) fn check_data_map(map: &DataMap) -> Result<(), AppError> {
    let fields: Vec<&str> = COVERAGE.iter().map(|c| c.field).collect();
    map.check_covered("export", &fields)?;
    map.check_covered("erasure", &fields)?;
    Ok(())
}

/// Everything the shop holds about `account`, opened: the profile, the addresses
/// shipped to, the cards on file as brand, last four and expiry, and what is withheld
/// and why.
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
    let orders: Vec<Value> = app
        .profiles
        .orders(account.as_str())?
        .into_iter()
        .map(|o| {
            json!({"id": o.id, "amount_cents": o.amount_cents, "created_ms": o.created_ms,
                "ship_to": o.ship_to})
        })
        .collect();
    let sessions: Vec<Value> = app
        .sessions
        .list(account)?
        .iter()
        .map(|r| {
            json!({"created_ms": r.created_at.as_millis(), "last_seen_ms": r.last_seen.as_millis(),
                "source": r.source, "agent": r.agent})
        })
        .collect();
    let mut out = serde_json::Map::new();
    out.insert("account".into(), json!(account.as_str()));
    out.insert("orders".into(), Value::Array(orders));
    let mut withheld = Vec::new();
    for c in COVERAGE {
        let value = match (c.field, &c.export) {
            (what, Export::Withheld(why)) => {
                withheld.push(json!({"what": what, "why": why}));
                continue;
            }
            ("email address", _) => json!(profile.email),
            ("name", _) => json!(profile.name),
            ("phone number", _) => json!(profile.phone),
            ("home address", _) => json!(profile.home),
            ("shipping address", _) => json!(addresses.get(1..).unwrap_or(&[])),
            ("card number", _) => json!(cards),
            ("session source and device", _) => json!(sessions),
            (other, _) => return Err(format!("the export has no value for {other:?}").into()),
        };
        if let Export::Key(key) = c.export {
            out.insert(key.into(), value);
        }
    }
    out.insert("withheld".into(), Value::Array(withheld));
    Ok(Some(Value::Object(out)))
}

/// What an erasure removes, and what it keeps and why: as the answer says it, and as
/// the ledger records it.
fn erasure_answer() -> Value {
    let erased: Vec<&str> = COVERAGE
        .iter()
        .filter(|c| matches!(c.erasure, Fate::Erased))
        .map(|c| c.field)
        .chain(ALSO_ERASED.iter().copied())
        .collect();
    let retained: Vec<Value> = COVERAGE
        .iter()
        .filter_map(|c| match c.erasure {
            Fate::Retained(what, why) => Some((what, why)),
            Fate::Erased => None,
        })
        .chain(ALSO_RETAINED.iter().copied())
        .map(|(what, why)| json!({"what": what, "why": why}))
        .collect();
    json!({"erased": erased, "retained": retained})
}

/// The ledger's form of [`erasure_answer`].
fn ledger_erasure() -> Result<Erasure, AppError> {
    let mut e = Erasure::new();
    for c in COVERAGE {
        e = match c.erasure {
            Fate::Erased => e.erased(c.field)?,
            Fate::Retained(what, why) => e.retained(what, why)?,
        };
    }
    for what in ALSO_ERASED {
        e = e.erased(what)?;
    }
    for (what, why) in ALSO_RETAINED {
        e = e.retained(what, why)?;
    }
    Ok(e)
}

/// Why an erasure did not happen.
enum Refused {
    /// Under a legal hold.
    Held,
    Failed(AppError),
}

impl<E: Into<AppError>> From<E> for Refused {
    fn from(e: E) -> Self {
        Self::Failed(e.into())
    }
}

/// Erases `account` (blocking), unless it is under a legal hold.
fn erase<S: CustomerStores, V: VaultStore>(
    app: &App<S, V>,
    account: &AccountId,
    by: &str,
    reason: &str,
) -> Result<(), Refused> {
    if app.profiles.hold(account.as_str())?.is_some() {
        return Err(Refused::Held);
    }
    app.profiles.erase(account.as_str(), &ledger_erasure()?)?;
    // The orders stay, for tax, without the address (already noise: its key is gone).
    // Resumable: a run cut off is taken up again under the same name.
    let (policy, table) = order_policy()?;
    let category = Category::new("orders")?;
    let mut orders = app.profiles.order_keys(account.as_str())?;
    orders.sort();
    let records = orders.into_iter().map(|(id, created)| {
        RecordMeta::new(id, category.clone(), Timestamp::from_millis(created))
    });
    let mut summary = Summary::default();
    let planned: Vec<Planned> = policy
        .plan(records, Timestamp::now(), &mut summary)
        .collect();
    apply_plan(
        &*app.store,
        &format!("erasure_{}", account.as_str()),
        &table,
        planned,
        500,
    )?;
    // Sessions and reset links end with the credential: a disabled credential logs in
    // as an unknown account, and every session checks it.
    if let Some(record) = app.store.load_credential(account)? {
        app.store
            .set_flags(account, record.flags.union(CredentialFlags::DISABLED))?;
    }
    app.sessions.end_all_of(account)?;
    app.audit.record(
        &AuditRecord::new("-".into(), reason.into(), by.into(), Timestamp::now())
            .with_kind(AuditKind::Erasure),
    )?;
    Ok(())
}

/// The answer to an erasure.
fn erased(outcome: Result<(), Refused>) -> Response {
    match outcome {
        Ok(()) => (StatusCode::ACCEPTED, Json(erasure_answer())).into_response(),
        Err(Refused::Held) => error(StatusCode::CONFLICT, "legal_hold"),
        Err(Refused::Failed(e)) => internal("erase", &e),
    }
}

/// [`export_of`], recorded in the audit trail (who asked, for whom) before it is given.
fn audited_export<S: CustomerStores, V: VaultStore>(
    app: &App<S, V>,
    account: &AccountId,
    by: &str,
) -> Result<Option<Value>, AppError> {
    let export = export_of(app, account)?;
    if export.is_some() {
        app.audit.record(
            &AuditRecord::new(
                "-".into(),
                format!("export of {}", account.as_str()),
                by.into(),
                Timestamp::now(),
            )
            .with_kind(AuditKind::Export),
        )?;
    }
    Ok(export)
}

pub(crate) async fn my_export<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    Customer(account, _): Customer,
) -> Response {
    let app2 = Arc::clone(&app);
    match blocking(move || audited_export(&app2, &account, "customer")).await {
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
    Customer(account, _): Customer,
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
        Err(e) => return auth_error(e),
    }
    let app2 = Arc::clone(&app);
    erased(
        blocking(move || {
            erase(
                &app2,
                &account,
                "customer",
                "erasure requested by the customer",
            )
        })
        .await,
    )
}

/// An admin's reason as the audit trail and the holds keep it: control characters
/// dropped, at most 200 characters.
fn reason_text(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_control()).take(200).collect()
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
    let reason = reason_text(&body.reason);
    let app2 = Arc::clone(&app);
    erased(blocking(move || erase(&app2, &account, "admin", &reason)).await)
}

#[derive(Deserialize)]
pub(crate) struct HoldBody {
    reason: String,
}

/// `PUT /admin/customers/{account}/hold` `{"reason"}`: puts the account under a legal
/// hold (its erasure answers 409 until it is lifted) → 204.
pub(crate) async fn admin_hold<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    _: Admin,
    UrlPath(name): UrlPath<String>,
    Body(body): Body<HoldBody>,
) -> Response {
    let Ok(account) = AccountId::new(&name) else {
        return error(StatusCode::NOT_FOUND, "no_such_account");
    };
    let reason = reason_text(&body.reason);
    if reason.trim().is_empty() {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "reason_required");
    }
    let app2 = Arc::clone(&app);
    match blocking(move || app2.profiles.set_hold(account.as_str(), Some(&reason))).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => internal("hold", &e),
    }
}

/// `DELETE /admin/customers/{account}/hold`: lifts it → 204.
pub(crate) async fn admin_release<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    _: Admin,
    UrlPath(name): UrlPath<String>,
) -> Response {
    let Ok(account) = AccountId::new(&name) else {
        return error(StatusCode::NOT_FOUND, "no_such_account");
    };
    let app2 = Arc::clone(&app);
    match blocking(move || app2.profiles.set_hold(account.as_str(), None)).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => internal("hold", &e),
    }
}

/// `POST /admin/erasures/checkpoint` → 200 `{"checkpoint": line}`: a MAC'd checkpoint
/// of the erasure ledger, to ship off the machine.
pub(crate) async fn erasure_checkpoint<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    _: Admin,
) -> Response {
    let app2 = Arc::clone(&app);
    match blocking(move || app2.profiles.erasure_checkpoint()).await {
        Ok(cp) => Json(json!({"checkpoint": cp.to_string()})).into_response(),
        Err(e) => internal("erasure checkpoint", &e),
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
    match blocking(move || audited_export(&app2, &account, "admin")).await {
        Ok(Some(v)) => Json(v).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no_profile"),
        Err(e) => internal("export", &e),
    }
}

#[cfg(test)]
mod tests {
    use shopsafe::minimize::Form;

    use super::*;

    #[test]
    fn a_field_added_to_the_data_map_and_not_to_the_export_stops_the_start() {
        check_data_map(&crate::app::data_map()).expect("the shop's map is covered");
        let grown = crate::app::data_map().holds("customer_db", "date of birth", Form::Sealed);
        let err = check_data_map(&grown).expect_err("a field nobody exports");
        let text = err.to_string();
        assert!(
            text.contains("\"date of birth\"") && text.contains("export"),
            "{text}"
        );
    }

    #[test]
    fn the_answer_and_the_ledger_entry_say_the_same() {
        let answer = erasure_answer();
        let entry = ledger_erasure().expect("erasure");
        let erased: Vec<String> = answer["erased"]
            .as_array()
            .expect("list")
            .iter()
            .map(|v| v.as_str().expect("text").to_owned())
            .collect();
        assert_eq!(erased, entry.erased_items());
        assert_eq!(
            answer["retained"].as_array().expect("list").len(),
            entry.retained_items().len()
        );
        assert!(erased.iter().any(|e| e == "email address"));
    }
}
