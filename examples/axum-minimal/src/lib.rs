//! The smallest shop on shopsafe's web kit: sign-up, sessions, sign-out everywhere, forgot
//! and reset, breach day and a card at checkout (`tests/http.rs` drives it over HTTP). Mail
//! goes to an outbox in memory: a real shop plugs in `shopsafe::smtp`.

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use shopsafe::prelude::*;

/// The service's state: the library's pieces and the outbox.
#[derive(Clone)]
pub struct Shop {
    auth: AsyncAuthenticator<SqliteStore>,
    store: Arc<SqliteStore>,
    vault: AsyncVault<Arc<SqliteVault>>,
    kit: Kit,
    links: Arc<BrandLinks>,
    /// Every mail sent: (account, reset link).
    pub outbox: Arc<Outbox>,
}

fn mail(outbox: &Outbox, to: &AccountId, link: &ResetLink) -> Result<(), NotifyError> {
    let entry = (to.as_str().to_owned(), link.expose_secret().to_owned());
    outbox.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(entry);
    Ok(())
}

impl FromRef<Shop> for Kit {
    fn from_ref(shop: &Shop) -> Kit {
        shop.kit.clone()
    }
}

type Result<T, E = Answer> = std::result::Result<T, E>;
type Outbox = Mutex<Vec<(String, String)>>;

/// The shop's routes and state, its files in `dir` (serve with connect info, as main.rs).
///
/// # Errors
/// A store or key file that cannot be opened.
pub fn app(dir: &Path) -> Result<(Router, Shop), Box<dyn std::error::Error>> {
    let store = Arc::new(SqliteStore::open(dir.join("customers.db"))?);
    let links = BrandLinks::new()
        .default_template(ResetUrlTemplate::new("https://shop.example/reset/{token}")?);
    let hasher = Arc::new(Hasher::new(Params::owasp()));
    let auth = Authenticator::new(Arc::clone(&store), hasher).with_links(links.clone());
    let (auth, links) = (AsyncAuthenticator::new(auth), Arc::new(links));
    let vault_db = Arc::new(SqliteVault::open(dir.join("vault.db"))?);
    let keys = FileKeySource::open_or_create(dir.join("vault.keys"), &VaultKeyId::new("k1")?)?;
    // The vault's database keeps its audit trail too (every reveal is recorded).
    let vault =
        AsyncVault::new(Vault::new(Arc::clone(&vault_db), Box::new(keys), Box::new(vault_db))?);
    let kit = Kit::new(Sessions::new(Arc::clone(&store)));
    let shop = Shop { auth, store, vault, kit, links, outbox: Arc::default() };
    let routes = Router::new()
        .route("/accounts", post(register))
        .route("/login", post(login))
        .route("/logout-everywhere", post(logout_everywhere))
        .route("/me", get(me))
        .route("/password/forgot", post(forgot))
        .route("/password/reset", post(reset))
        .route("/checkout", post(checkout))
        .with_state(shop.clone());
    Ok((routes, shop))
}

#[derive(Deserialize)]
struct Credentials {
    account: String,
    password: String,
}

async fn register(State(shop): State<Shop>, Body(b): Body<Credentials>) -> Result<StatusCode> {
    let id = AccountId::new(&b.account).map_err(|_| Answer::Invalid("invalid_account"))?;
    let context = PasswordContext::new().word(id.as_str());
    let brands = vec![BrandId::new("shop").map_err(|_| Answer::Internal)?];
    shop.auth.register(id, brands, Password::new(b.password), context).await?;
    Ok(StatusCode::CREATED)
}

async fn login(
    State(shop): State<Shop>,
    ClientSource(source): ClientSource,
    ClientAgent(agent): ClientAgent,
    Body(b): Body<Credentials>,
) -> Result<SessionIssued> {
    // A name that does not parse takes the unknown account's path (same cost, same answer).
    let id = AccountId::new(&b.account).unwrap_or_else(|_| AccountId::unmatchable());
    let decision =
        shop.auth.login_from(id.clone(), Password::new(b.password), source.as_str()).await;
    let stamp = match accept_login(decision) {
        Ok(stamp) => stamp,
        Err(answer) => {
            if matches!(answer, Answer::Refused(why) if why.mail_reset()) {
                tokio::spawn(mail_reset(shop, id, source));
            }
            return Err(answer);
        }
    };
    let (token, _) = shop.kit.sessions().start(&id, &stamp, &source, &agent).await?;
    Ok(SessionIssued::bearer(token))
}

async fn me(session: CurrentSession) -> Json<Value> {
    Json(json!({ "account": session.account().as_str() }))
}

async fn logout_everywhere(State(shop): State<Shop>, session: CurrentSession) -> Result<Response> {
    shop.kit.sessions().end_all_of(session.account()).await?;
    Ok(SignedOut::of(&shop.kit, &session).into_response())
}

async fn mail_reset(shop: Shop, id: AccountId, source: String) {
    if let Ok(Some(link)) = shop.auth.request_reset_from(id.clone(), None, source).await {
        let _ = mail(&shop.outbox, &id, &link);
    }
}

#[derive(Deserialize)]
struct Forgot {
    account: String,
}

async fn forgot(
    State(shop): State<Shop>,
    ClientSource(source): ClientSource,
    Body(b): Body<Forgot>,
) -> StatusCode {
    // 202 before any work, whatever the account: the answer tells nothing.
    if let Ok(id) = AccountId::new(&b.account) {
        tokio::spawn(mail_reset(shop, id, source));
    }
    StatusCode::ACCEPTED
}

#[derive(Deserialize)]
struct Reset {
    token: String,
    password: String,
}

async fn reset(State(shop): State<Shop>, Body(b): Body<Reset>) -> Result<StatusCode> {
    let token = ResetToken::parse(&b.token)?;
    let id = shop.auth.redeem(token, Password::new(b.password), PasswordContext::new()).await?;
    shop.kit.sessions().end_all_of(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Breach day, the operator's (no route): old passwords must reset, sessions end, all mailed.
///
/// # Errors
/// The answer for a store that failed.
pub async fn breach_day(shop: &Shop) -> Result<Value> {
    let store = Arc::clone(&shop.store);
    let incident = blocking(move || {
        Incident::declare(&*store, IncidentScope::All, Timestamp::now(), "db copied")
    })
    .await?;
    let (id, ended) = (incident.id, shop.kit.sessions().end_incident(incident.id).await?);
    let (store, shop) = (Arc::clone(&shop.store), shop.clone());
    let report = blocking(move || {
        let send = |n: &Notice| mail(&shop.outbox, &n.account, &n.link);
        Campaign::new(&*store, &shop.links).run(&incident, &send, CampaignOptions::new())
    })
    .await?;
    Ok(json!({ "incident": id.0, "sessions_ended": ended, "notified": report.sent_total }))
}

#[derive(Deserialize)]
struct Card {
    number: String,
    expiry: String,
}

async fn checkout(
    State(shop): State<Shop>,
    _: CurrentSession,
    Body(b): Body<Card>,
) -> Result<Json<Value>> {
    let card = shop.vault.tokenize(Pan::parse(&b.number)?, Expiry::parse(&b.expiry)?).await?;
    Ok(Json(json!({ "card": card.token.as_str(), "last4": card.last4 })))
}
