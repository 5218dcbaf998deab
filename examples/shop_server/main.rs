//! A small shop backend on axum and shopsafe's async API (`shopsafe::aio`): accounts,
//! logins with sessions, password resets by mail, cards in a separate vault, stored-card
//! charges with step-up, the breach notice, and the breach-day admin calls (declare an
//! incident, run its mail campaign).
//!
//! ```text
//! cargo run --release --example shop_server --features tokio,smtp
//! cargo run --release --example shop_server --features tokio,smtp -- --listen 127.0.0.1:0 --data /tmp/shop
//! SHOPSAFE_ADMIN_TOKEN=secret cargo run --release --example shop_server --features tokio,smtp,postgres -- --postgres 'host=/tmp dbname=shop'
//! ```
//!
//! The first line on stdout is `listening on http://ADDR`. Logs go to stderr through
//! shopsafe's redacting writer. SIGINT/SIGTERM: requests in flight finish (for at most
//! `--shutdown-deadline-secs`, then their connections are dropped), a running campaign
//! stops between two notices and resumes at the next start.
//!
//! Every path that hashes a password is limited per source (the client address; behind
//! a reverse proxy pass `--trusted-proxy CIDR` so that it is the client's, not the
//! proxy's), in counters kept in the customer database, shared by every server on it.
//! Account ids are public names: sign-up answers 409 for a taken one, as any shop's
//! "this name is taken" does, and is limited per source like a login.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // example code

mod mail;
mod net;
mod profiles;

use std::collections::{BTreeSet, HashMap};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path as UrlPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use shopsafe::aio::{
    AsyncAuthenticator, AsyncVault, CampaignEnd, CampaignTask, blocking, spawn_campaign,
};
use shopsafe::card::{
    CardOnFileStore, CardToken, Expiry, FileKeySource, GrantPolicy, KeySource, Order, Pan, Purpose,
    ShippingAddress, StepUp, Vault, VaultKeyId, VaultStore,
};
use shopsafe::minimize::{DataMap, Form, RedactingWriter};
use shopsafe::password::{
    AcceptancePolicy, Error as PasswordError, Hasher, OnLookupFailure, Params, Password,
    PasswordContext, Rejection,
};
use shopsafe::rotation::{
    Admission, AttemptOutcome, Authenticator, BrandLinks, CampaignOptions, Delivery,
    Error as AuthError, LoginDecision, RateLimiter, ResetToken, ResetUrlTemplate, StoreRateLimiter,
};
use shopsafe::smtp::{BrandMail, SmtpNotifier};
use shopsafe::store::{
    AccountId, AuditLog, AuditSink, BrandId, CampaignStore, CredentialStore, Incident,
    IncidentScope, IncidentStore, ResetTokenStore, SecurityStamp, StoreError, ThrottleStore,
    Timestamp,
};
use subtle::ConstantTimeEq as _;

use crate::mail::{Mailer, Outbox, ProfileBook};
use crate::profiles::{AppError, Profiles};

#[derive(Parser, Debug)]
#[command(about = "A shop backend on shopsafe (axum, tokio)")]
struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Folder for the databases, the vault's key file, the audit log and the outbox.
    #[arg(long, default_value = "shop-data")]
    data: PathBuf,
    /// PostgreSQL connection string (customer data and vault in schemas of their own).
    #[arg(long)]
    postgres: Option<String>,
    /// Schema name on PostgreSQL (the vault's is this with `_vault`).
    #[arg(long, default_value = "shop")]
    pg_schema: String,
    /// A brand and its reset link, `NAME=https://…{token}` (adds or replaces).
    #[arg(long = "brand")]
    brands: Vec<String>,
    /// Where mail goes as `.eml` files (default: `outbox` in the data folder).
    #[arg(long)]
    outbox: Option<PathBuf>,
    /// Waits this long after each campaign mail (a slow mail relay, for drills and tests).
    #[arg(long, default_value_t = 0)]
    mail_delay_ms: u64,
    /// Memory for concurrent password hashes, in MiB (default: shopsafe's).
    #[arg(long)]
    hash_memory_mib: Option<usize>,
    /// Sends mail through this SMTP relay instead of the outbox:
    /// `smtps://user:pass@host:465`, `smtp://user:pass@host:587?tls=required`, or plain
    /// `smtp://127.0.0.1:25` to a local relay. The password may come from
    /// `SHOPSAFE_SMTP_PASSWORD` instead.
    #[arg(long)]
    smtp: Option<String>,
    /// Verifies the relay against this CA file (PEM) instead of the platform's roots.
    #[arg(long)]
    smtp_ca: Option<PathBuf>,
    /// The sender of every mail.
    #[arg(long, default_value = "Shop <no-reply@shop.example>")]
    mail_from: String,
    /// Refuses new passwords found in this offline Pwned Passwords index (built with
    /// `examples/pwned_index.rs`) at sign-up and reset; a failed lookup refuses too.
    #[arg(long)]
    pwned_index: Option<PathBuf>,
    /// A reverse proxy (an address or `ADDR/LEN`) whose `X-Forwarded-For` names the
    /// client; repeat for several. Without it every client behind the proxy would count
    /// as the proxy's address, and one budget would throttle the whole site.
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    trusted_proxies: Vec<net::Cidr>,
    /// Connections open at once (one more is closed at once).
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Requests handled at once (more wait for a turn).
    #[arg(long, default_value_t = 512)]
    max_in_flight: usize,
    /// Seconds a client may take to send a request's headers.
    #[arg(long, default_value_t = 10)]
    header_timeout_secs: u64,
    /// Seconds a shutdown waits for requests in flight before dropping them.
    #[arg(long, default_value_t = 10)]
    shutdown_deadline_secs: u64,
    /// Sign-ups per source per hour.
    #[arg(long, default_value_t = 20)]
    signups_per_hour: u32,
    /// Charges per account per hour (the vault's 600 reveals a minute stay the last line).
    #[arg(long, default_value_t = 30)]
    charges_per_hour: u32,
    /// Prints the build profile (`debug` or `release`) and exits (for the tests).
    #[arg(long)]
    build_profile: bool,
}

// ---------------------------------------------------------------------------------------
// Logs: every line through shopsafe's redacting writer, so a card number that reaches a
// log line by mistake is masked.

static LOG: Mutex<Option<RedactingWriter<std::io::Stderr>>> = Mutex::new(None);

fn log(line: &str) {
    let mut guard = LOG
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let w = guard.get_or_insert_with(|| RedactingWriter::new(std::io::stderr()));
    let _ = writeln!(w, "{line}");
    let _ = w.flush();
}

// ---------------------------------------------------------------------------------------
// The stores the server needs, on SQLite or PostgreSQL.

trait CustomerStores:
    CredentialStore
    + IncidentStore
    + ResetTokenStore
    + CampaignStore
    + CardOnFileStore
    + ThrottleStore
    + 'static
{
}
impl<T> CustomerStores for T where
    T: CredentialStore
        + IncidentStore
        + ResetTokenStore
        + CampaignStore
        + CardOnFileStore
        + ThrottleStore
        + 'static
{
}

enum CampaignRun {
    Running(CampaignTask),
    Ended {
        done: u64,
        total: u64,
        finished: bool,
    },
}

struct App<S, V> {
    auth: AsyncAuthenticator<S>,
    store: Arc<S>,
    vault: AsyncVault<V>,
    profiles: Arc<dyn Profiles>,
    links: Arc<BrandLinks>,
    brands: BTreeSet<String>,
    session_key: [u8; 32],
    mailer: Mailer,
    admin_token: Option<String>,
    campaigns: tokio::sync::Mutex<HashMap<i64, CampaignRun>>,
    data_map: Arc<DataMap>,
    /// The vault's keyed audit trail (the vault holds the other handle).
    audit: Arc<AuditLog>,
    /// Sign-ups, per source (and per account id asked for).
    signups: Arc<dyn RateLimiter>,
    /// Charges, per account (and per source).
    charges: Arc<dyn RateLimiter>,
    /// Proxies whose `X-Forwarded-For` is believed.
    proxies: Vec<net::Cidr>,
}

type Shared<S, V> = State<Arc<App<S, V>>>;

// ---------------------------------------------------------------------------------------
// Answers.

fn error(status: StatusCode, code: &str) -> Response {
    (status, Json(json!({ "error": code }))).into_response()
}

fn retry_after(status: StatusCode, code: &str, seconds: u64) -> Response {
    let mut r = error(status, code);
    r.headers_mut()
        .insert(header::RETRY_AFTER, seconds.max(1).into());
    r
}

fn internal(what: &str, e: &dyn std::fmt::Display) -> Response {
    log(&format!("error: {what}: {e}"));
    error(StatusCode::INTERNAL_SERVER_ERROR, "internal")
}

fn auth_error(e: &AuthError) -> Response {
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

fn invalid_credentials() -> Response {
    error(StatusCode::UNAUTHORIZED, "invalid_credentials")
}

/// A JSON body. One that does not parse gets a fixed answer with the rejection's status
/// (400, 415 or 422) and nothing of the request in it: axum's own rejection text quotes
/// the offending value back ("invalid type: integer 12345678901"), which may be a
/// password, into the answer and whatever logs it.
struct Body<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(invalid_body(&rejection)),
        }
    }
}

fn invalid_body(rejection: &JsonRejection) -> Response {
    error(rejection.status(), "invalid_body")
}

/// The client address a request counts by ([`net::client_source`]).
struct Source(String);

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
enum Refusal {
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
fn spend(limiter: &dyn RateLimiter, account: &AccountId, source: &str) -> Result<(), Refusal> {
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
async fn spend_async(
    limiter: &Arc<dyn RateLimiter>,
    account: &AccountId,
    source: &str,
) -> Result<(), Response> {
    let (limiter, account, source) = (Arc::clone(limiter), account.clone(), source.to_owned());
    blocking(move || spend(&*limiter, &account, &source))
        .await
        .map_err(Refusal::response)
}

// ---------------------------------------------------------------------------------------
// Sessions: `v1.<account hex>.<stamp hex>.<issued ms>.<HMAC-SHA-256 hex>` under a key in
// the data folder. Stateless, so any server with the key checks it; it lasts
// `SESSION_TTL`, and `validate_session` ends it sooner once the password changes or an
// incident expires the credential.

const SESSION_TTL_MS: i64 = 12 * 3600 * 1000;

fn session_mac(key: &[u8; 32], account: &str, stamp: &str, issued: &str) -> [u8; 32] {
    use hmac::{KeyInit as _, Mac as _};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key size");
    for part in [
        b"shop_server session v1".as_slice(),
        account.as_bytes(),
        stamp.as_bytes(),
        issued.as_bytes(),
    ] {
        mac.update(part);
        mac.update(b"\0");
    }
    mac.finalize().into_bytes().into()
}

fn new_session(key: &[u8; 32], account: &AccountId, stamp: &SecurityStamp) -> String {
    let account = base16ct::lower::encode_string(account.as_str().as_bytes());
    let stamp = base16ct::lower::encode_string(stamp.as_bytes());
    let issued = Timestamp::now().as_millis().to_string();
    let mac = base16ct::lower::encode_string(&session_mac(key, &account, &stamp, &issued));
    format!("v1.{account}.{stamp}.{issued}.{mac}")
}

fn parse_session(key: &[u8; 32], headers: &HeaderMap) -> Option<(AccountId, SecurityStamp)> {
    let text = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    let parts: Vec<&str> = text.split('.').collect();
    let [v, account, stamp, issued, mac] = parts[..] else {
        return None;
    };
    // One session, one string: the MAC is compared as the lower-case hex it was issued
    // in, so an upper-cased copy is not a second token for the same session.
    let expected = base16ct::lower::encode_string(&session_mac(key, account, stamp, issued));
    if v != "v1" || !bool::from(mac.as_bytes().ct_eq(expected.as_bytes())) {
        return None;
    }
    let age = Timestamp::now().as_millis() - issued.parse::<i64>().ok()?;
    if !(0..SESSION_TTL_MS).contains(&age) {
        return None;
    }
    let account = String::from_utf8(base16ct::lower::decode_vec(account).ok()?).ok()?;
    let stamp: [u8; 16] = base16ct::lower::decode_vec(stamp).ok()?.try_into().ok()?;
    Some((
        AccountId::new(&account).ok()?,
        SecurityStamp::from_bytes(stamp),
    ))
}

fn session_key(path: &std::path::Path) -> std::io::Result<[u8; 32]> {
    if let Ok(bytes) = std::fs::read(path) {
        return bytes
            .try_into()
            .map_err(|_| std::io::Error::other("session key file is not 32 bytes"));
    }
    // 32 random bytes from the OS generator (two security stamps' worth).
    let mut key = [0u8; 32];
    for half in key.chunks_mut(16) {
        let stamp = SecurityStamp::generate().map_err(std::io::Error::other)?;
        half.copy_from_slice(stamp.as_bytes());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(&key)?;
    Ok(key)
}

/// The account of a request's session, if the session is valid now.
async fn session<S: CustomerStores, V>(
    app: &App<S, V>,
    headers: &HeaderMap,
) -> Result<AccountId, Response> {
    let Some((account, stamp)) = parse_session(&app.session_key, headers) else {
        return Err(error(StatusCode::UNAUTHORIZED, "no_session"));
    };
    match app.auth.validate_session(account.clone(), stamp).await {
        Ok(true) => Ok(account),
        Ok(false) => Err(error(StatusCode::UNAUTHORIZED, "session_expired")),
        Err(e) => Err(auth_error(&e)),
    }
}

/// A customer with a valid session (401 otherwise), as a handler argument.
struct Customer(AccountId);

impl<S: CustomerStores, V: Send + Sync + 'static> FromRequestParts<Arc<App<S, V>>> for Customer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App<S, V>>) -> Result<Self, Response> {
        session(app, &parts.headers).await.map(Customer)
    }
}

/// The admin (the bearer token of `SHOPSAFE_ADMIN_TOKEN`; 403 otherwise).
struct Admin;

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

// ---------------------------------------------------------------------------------------
// Handlers.

async fn health() -> StatusCode {
    StatusCode::OK
}

#[derive(Deserialize)]
struct NewAccount {
    account: String,
    email: String,
    password: String,
    brand: String,
    address: Vec<String>,
}

fn valid_lines(lines: &[String]) -> bool {
    !lines.is_empty()
        && lines.len() <= 8
        && lines
            .iter()
            .all(|l| !l.trim().is_empty() && l.len() <= 200 && !l.chars().any(char::is_control))
}

async fn create_account<S: CustomerStores, V: VaultStore + 'static>(
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
struct LoginBody {
    account: String,
    password: String,
}

async fn login<S: CustomerStores, V: VaultStore + 'static>(
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
async fn send_reset<S: CustomerStores, V: VaultStore + 'static>(
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

async fn me(Customer(account): Customer) -> Response {
    Json(json!({ "account": account.as_str() })).into_response()
}

#[derive(Deserialize)]
struct Forgot {
    account: String,
}

async fn forgot<S: CustomerStores, V: VaultStore + 'static>(
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
struct ResetBody {
    token: String,
    password: String,
}

async fn reset<S: CustomerStores, V: VaultStore + 'static>(
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

#[derive(Deserialize)]
struct NewCard {
    number: String,
    expiry: String,
}

async fn add_card<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    Customer(account): Customer,
    Body(body): Body<NewCard>,
) -> Response {
    // The errors name what is wrong, never the number.
    let Ok(pan) = Pan::parse(&body.number) else {
        return error(StatusCode::BAD_REQUEST, "invalid_card_number");
    };
    let Ok(expiry) = Expiry::parse(&body.expiry) else {
        return error(StatusCode::BAD_REQUEST, "invalid_expiry");
    };
    let card = match app.vault.tokenize(pan, expiry).await {
        Ok(card) => card,
        Err(e) => return internal("tokenize", &e),
    };
    let store = Arc::clone(&app.store);
    let saved = card.clone();
    if let Err(e) = blocking(move || store.save_card(&account, &saved, Timestamp::now())).await {
        return internal("save card", &e);
    }
    (
        StatusCode::CREATED,
        Json(json!({
            "token": card.token.as_str(),
            "brand": card.brand.to_string(),
            "last4": card.last4.to_string(),
        })),
    )
        .into_response()
}

#[derive(Deserialize)]
struct ChargeBody {
    card_token: String,
    amount_cents: u64,
    ship_to: Vec<String>,
}

async fn charge<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    Customer(account): Customer,
    Source(source): Source,
    Body(body): Body<ChargeBody>,
) -> Response {
    if !valid_lines(&body.ship_to) || body.amount_cents == 0 {
        return error(StatusCode::BAD_REQUEST, "invalid_order");
    }
    // Per account first: one customer charging their own card in a loop must not use
    // up the vault's reveals for everyone.
    if let Err(refused) = spend_async(&app.charges, &account, &source).await {
        return refused;
    }
    let Ok(token) = CardToken::parse(&body.card_token) else {
        return error(StatusCode::NOT_FOUND, "no_such_card");
    };
    let (store, profiles, who) = (
        Arc::clone(&app.store),
        Arc::clone(&app.profiles),
        account.clone(),
    );
    let looked_up = blocking(move || -> Result<_, AppError> {
        Ok((store.cards(&who)?, profiles.addresses(who.as_str())?))
    })
    .await;
    let (cards, known) = match looked_up {
        Ok(v) => v,
        Err(e) => return internal("load cards", &e),
    };
    let Some(card) = cards.into_iter().find(|c| c.token == token) else {
        return error(StatusCode::NOT_FOUND, "no_such_card");
    };
    let lines =
        |l: &[String]| ShippingAddress::new(&l.iter().map(String::as_str).collect::<Vec<_>>());
    let ship_to = lines(&body.ship_to);
    let known: Vec<ShippingAddress> = known.iter().map(|a| lines(a)).collect();
    if let StepUp::Required { .. } =
        StepUp::assess(&card, &Order::new(&ship_to, &known, Timestamp::now()))
    {
        return error(StatusCode::FORBIDDEN, "step_up_required");
    }
    let grant = app.vault.grant(Purpose::Charge, CHARGES);
    let pan = match app.vault.detokenize(token, grant).await {
        Ok(pan) => pan,
        Err(e) => return internal("detokenize", &e),
    };
    let authorization = processor_charge(pan, body.amount_cents);
    let profiles = Arc::clone(&app.profiles);
    let shipped = body.ship_to;
    if let Err(e) = blocking(move || profiles.record_shipment(account.as_str(), &shipped)).await {
        return internal("record shipment", &e);
    }
    (
        StatusCode::CREATED,
        Json(json!({ "authorization": authorization, "amount_cents": body.amount_cents })),
    )
        .into_response()
}

/// The one caller the vault's grant policy lets reveal card numbers.
const CHARGES: &str = "shop_server/charges";

/// The payment processor, stubbed: takes the number (wiped when dropped here), logs
/// nothing of it, answers an authorization code.
fn processor_charge(pan: Pan, amount_cents: u64) -> String {
    let code = format!("auth-{}-{amount_cents}", Timestamp::now().as_millis());
    drop(pan);
    code
}

/// The fields of one customer that the customer database holds.
fn customer_fields<S: CustomerStores>(
    store: &S,
    profiles: &dyn Profiles,
    account: &AccountId,
) -> Result<Vec<&'static str>, AppError> {
    let mut fields = vec!["email address", "home address", "password"];
    if profiles.addresses(account.as_str())?.len() > 1 {
        fields.push("shipping address");
    }
    if !store.cards(account)?.is_empty() {
        fields.push("card number");
    }
    Ok(fields)
}

fn exposure_text<S: CustomerStores>(
    map: &DataMap,
    store: &S,
    profiles: &dyn Profiles,
    incident: &Incident,
    account: &AccountId,
) -> Result<String, AppError> {
    let affected = match &incident.scope {
        IncidentScope::Brand(brand) => store
            .load_credential(account)?
            .is_some_and(|c| c.brands.contains(brand)),
        IncidentScope::Accounts => store.is_listed(incident.id, account)?,
        _ => true,
    };
    let fields = if affected {
        customer_fields(store, profiles, account)?
    } else {
        Vec::new()
    };
    Ok(map.incident(&["customer_db"]).notice(&fields))
}

async fn my_exposure<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    Customer(account): Customer,
) -> Response {
    let (store, profiles, map) = (
        Arc::clone(&app.store),
        Arc::clone(&app.profiles),
        Arc::clone(&app.data_map),
    );
    let notice = blocking(move || -> Result<Option<(i64, String)>, AppError> {
        let Some(last) = store
            .incidents()?
            .into_iter()
            .max_by_key(|i| (i.declared_at, i.id.0))
        else {
            return Ok(None);
        };
        let text = exposure_text(&map, &*store, &*profiles, &last, &account)?;
        Ok(Some((last.id.0, text)))
    })
    .await;
    match notice {
        Ok(Some((incident, notice))) => {
            Json(json!({ "incident": incident, "notice": notice })).into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, "no_incident"),
        Err(e) => internal("exposure", &e),
    }
}

// ---------------------------------------------------------------------------------------
// Admin.

fn is_admin<S, V>(app: &App<S, V>, headers: &HeaderMap) -> bool {
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

#[derive(Deserialize)]
struct NewIncident {
    scope: Value,
    reason: String,
}

/// `POST /admin/audit/checkpoint`: a MAC'd checkpoint of the vault's audit trail, to be
/// shipped somewhere this machine cannot write.
async fn audit_checkpoint<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    _: Admin,
) -> Response {
    let audit = Arc::clone(&app.audit);
    match blocking(move || audit.checkpoint()).await {
        Ok(cp) => {
            Json(json!({ "records": cp.records, "checkpoint": cp.to_string() })).into_response()
        }
        Err(e) => {
            log(&format!("audit checkpoint failed: {e}"));
            error(StatusCode::SERVICE_UNAVAILABLE, "audit_unavailable")
        }
    }
}

/// `GET /admin/pool`: the hashing pool's slots and how many are free now.
async fn pool_state<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    _: Admin,
) -> Response {
    let pool = app.auth.pool();
    Json(json!({ "size": pool.size(), "available": pool.available() })).into_response()
}

async fn declare<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    _: Admin,
    Body(body): Body<NewIncident>,
) -> Response {
    let scope = match &body.scope {
        Value::String(s) if s == "all" => IncidentScope::All,
        Value::Object(o) => match o.get("brand").and_then(Value::as_str).map(BrandId::new) {
            Some(Ok(brand)) => IncidentScope::Brand(brand),
            _ => return error(StatusCode::BAD_REQUEST, "invalid_scope"),
        },
        _ => return error(StatusCode::BAD_REQUEST, "invalid_scope"),
    };
    let store = Arc::clone(&app.store);
    let reason = body.reason;
    match blocking(move || Incident::declare(&*store, scope, Timestamp::now(), &reason)).await {
        Ok(incident) => {
            log(&format!("incident {} declared", incident.id.0));
            (
                StatusCode::CREATED,
                Json(json!({ "incident": incident.id.0 })),
            )
                .into_response()
        }
        Err(e) => auth_error(&e),
    }
}

async fn find_incident<S: CustomerStores>(
    store: &Arc<S>,
    id: i64,
) -> Result<Option<Incident>, AuthError> {
    let store = Arc::clone(store);
    blocking(move || Ok(store.incidents()?.into_iter().find(|i| i.id.0 == id))).await
}

fn start_campaign<S: CustomerStores, V: VaultStore + 'static>(
    app: &App<S, V>,
    incident: Incident,
) -> CampaignTask {
    let notifier = app.mailer.notifier(Arc::clone(&app.profiles));
    let (store, profiles, map) = (
        Arc::clone(&app.store),
        Arc::clone(&app.profiles),
        Arc::clone(&app.data_map),
    );
    let scope = incident.clone();
    let options = move || {
        CampaignOptions::new()
            .exposure(move |account| exposure_text(&map, &*store, &*profiles, &scope, account).ok())
    };
    spawn_campaign(
        Arc::clone(&app.store),
        Arc::clone(&app.links),
        incident,
        notifier,
        options,
    )
}

async fn run_campaign<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    _: Admin,
    UrlPath(id): UrlPath<i64>,
) -> Response {
    let incident = match find_incident(&app.store, id).await {
        Ok(Some(i)) => i,
        Ok(None) => return error(StatusCode::NOT_FOUND, "no_such_incident"),
        Err(e) => return auth_error(&e),
    };
    let mut campaigns = app.campaigns.lock().await;
    if !matches!(campaigns.get(&id), Some(CampaignRun::Running(_))) {
        let profiles = Arc::clone(&app.profiles);
        if let Err(e) = blocking(move || profiles.set_campaign(id, false, 0, 0)).await {
            return internal("record campaign", &e);
        }
        campaigns.insert(id, CampaignRun::Running(start_campaign(&app, incident)));
        log(&format!("campaign of incident {id} started"));
    }
    (StatusCode::ACCEPTED, Json(json!({ "incident": id }))).into_response()
}

/// Turns a finished task into its end state (and records a finished campaign).
async fn settle(profiles: &Arc<dyn Profiles>, id: i64, run: CampaignRun) -> CampaignRun {
    let CampaignRun::Running(task) = run else {
        return run;
    };
    if !task.is_finished() {
        return CampaignRun::Running(task);
    }
    let last = task.progress();
    match task.join().await {
        Ok(CampaignEnd::Completed(report)) => {
            let (finished, done, total) = (report.finished, report.sent_total, report.affected);
            let profiles = Arc::clone(profiles);
            let _ = blocking(move || profiles.set_campaign(id, finished, done, total)).await;
            log(&format!(
                "campaign of incident {id}: {} notices in all",
                report.sent_total
            ));
            CampaignRun::Ended {
                done: report.sent_total,
                total: report.affected,
                finished: report.finished,
            }
        }
        Ok(_) => {
            let (done, total) = last.map_or((0, 0), |p| (p.done, p.total));
            CampaignRun::Ended {
                done,
                total,
                finished: false,
            }
        }
        Err(e) => {
            log(&format!("error: campaign of incident {id}: {e}"));
            let (done, total) = last.map_or((0, 0), |p| (p.done, p.total));
            CampaignRun::Ended {
                done,
                total,
                finished: false,
            }
        }
    }
}

async fn campaign_status<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    _: Admin,
    UrlPath(id): UrlPath<i64>,
) -> Response {
    let mut campaigns = app.campaigns.lock().await;
    let run = match campaigns.remove(&id) {
        Some(run) => run,
        // Not run by this process: as recorded by the one that ran it.
        None => {
            let profiles = Arc::clone(&app.profiles);
            match blocking(move || profiles.campaign(id)).await {
                Ok(Some((finished, done, total))) => CampaignRun::Ended {
                    done,
                    total,
                    finished,
                },
                Ok(None) => return error(StatusCode::NOT_FOUND, "no_campaign"),
                Err(e) => return internal("campaign state", &e),
            }
        }
    };
    let run = settle(&app.profiles, id, run).await;
    // Notices that could not go out (no address, refused by the relay), as recorded.
    let undeliverable = match find_incident(&app.store, id).await {
        Ok(Some(incident)) => {
            let store = Arc::clone(&app.store);
            blocking(move || -> Result<u64, AppError> {
                // A read: the lanes as they stand (none yet: nothing to count).
                let lanes = store.lanes(incident.id)?;
                lanes
                    .iter()
                    .map(|l| store.count_undeliverable(l.id).map_err(AppError::from))
                    .sum()
            })
            .await
            .unwrap_or(0)
        }
        _ => 0,
    };
    let body = match &run {
        CampaignRun::Running(task) => {
            let (done, total) = task.progress().map_or((0, 0), |p| (p.done, p.total));
            json!({ "done": done, "total": total, "finished": false, "undeliverable": undeliverable })
        }
        CampaignRun::Ended {
            done,
            total,
            finished,
        } => {
            json!({ "done": done, "total": total, "finished": finished, "undeliverable": undeliverable })
        }
    };
    campaigns.insert(id, run);
    Json(body).into_response()
}

// ---------------------------------------------------------------------------------------
// Start-up and shutdown.

fn router<S: CustomerStores, V: VaultStore + 'static>(app: Arc<App<S, V>>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/accounts", post(create_account::<S, V>))
        .route("/login", post(login::<S, V>))
        .route("/me", get(me))
        .route("/me/exposure", get(my_exposure::<S, V>))
        .route("/password/forgot", post(forgot::<S, V>))
        .route("/password/reset", post(reset::<S, V>))
        .route("/cards", post(add_card::<S, V>))
        .route("/charges", post(charge::<S, V>))
        .route("/admin/incidents", post(declare::<S, V>))
        .route("/admin/audit/checkpoint", post(audit_checkpoint::<S, V>))
        .route("/admin/pool", get(pool_state::<S, V>))
        .route(
            "/admin/incidents/{id}/campaign",
            post(run_campaign::<S, V>).get(campaign_status::<S, V>),
        )
        .with_state(app)
}

fn brand_links(extra: &[String]) -> Result<(Arc<BrandLinks>, BTreeSet<String>), AppError> {
    let mut templates: Vec<(String, String)> = vec![
        ("shoes".into(), "https://shoes.example/reset/{token}".into()),
        ("boots".into(), "https://boots.example/reset/{token}".into()),
    ];
    for spec in extra {
        let (name, url) = spec.split_once('=').ok_or("--brand takes NAME=URL")?;
        templates.retain(|(n, _)| n != name);
        templates.push((name.to_owned(), url.to_owned()));
    }
    let mut links = BrandLinks::new().default_template(ResetUrlTemplate::new(&templates[0].1)?);
    let mut names = BTreeSet::new();
    for (name, url) in templates {
        links = links.brand(BrandId::new(&name)?, ResetUrlTemplate::new(&url)?);
        names.insert(name);
    }
    Ok((Arc::new(links), names))
}

fn data_map() -> DataMap {
    DataMap::new()
        .holds("customer_db", "email address", Form::Plain)
        .holds("customer_db", "home address", Form::Plain)
        .holds("customer_db", "shipping address", Form::Plain)
        .holds("customer_db", "password", Form::HashedArgon2id)
        .holds("customer_db", "card number", Form::Masked)
        .holds("vault", "card number", Form::EncryptedElsewhere)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn serve<S: CustomerStores, V: VaultStore + AuditSink + 'static>(
    args: Args,
    store: Arc<S>,
    vault_store: Arc<V>,
    profiles: Arc<dyn Profiles>,
) -> Result<(), AppError> {
    let mut builder = Hasher::builder().params(Params::owasp());
    if let Some(mib) = args.hash_memory_mib {
        builder = builder.memory_budget(mib << 20);
    }
    let hasher = Arc::new(builder.build()?);
    let (links, brands) = brand_links(&args.brands)?;
    let mut acceptance = AcceptancePolicy::single_factor();
    if let Some(path) = &args.pwned_index {
        let index = shopsafe::pwned::PwnedIndex::open(path)?;
        acceptance = acceptance.with_breached_passwords(Arc::new(index), OnLookupFailure::Refuse);
    }
    // Every limiter counts in the customer database, so that all servers on it share
    // one budget; each in a scope of its own.
    let hour = std::time::Duration::from_secs(3600);
    let limiter =
        |scope: &str, per_account: u32, per_source: u32, window| -> Arc<dyn RateLimiter> {
            Arc::new(
                StoreRateLimiter::new(Arc::clone(&store), per_account, per_source, window)
                    .with_scope(scope),
            )
        };
    let (per_account, per_source) = shopsafe::rotation::RESET_REQUESTS_PER_HOUR;
    let auth = AsyncAuthenticator::new(
        Authenticator::new(Arc::clone(&store), Arc::clone(&hasher))
            .with_links((*links).clone())
            .with_policy(acceptance)
            .with_rate_limiter(limiter("login", 10, 100, hour / 4))
            .with_reset_rate_limiter(limiter("reset", per_account, per_source, hour)),
    );
    let signups = limiter("sign-up", 5, args.signups_per_hour, hour);
    let charges = limiter(
        "charge",
        args.charges_per_hour,
        args.charges_per_hour.saturating_mul(4),
        hour,
    );
    // Only the charge handler reveals numbers, for charges, and at most 600 a minute.
    let policy = GrantPolicy::deny_all()
        .allow(CHARGES, &[Purpose::Charge])
        .max_per_minute(600);
    // Built off the runtime: opening the vault reads its store (and files).
    let data = args.data.clone();
    let (vault, audit) = blocking(move || -> Result<_, AppError> {
        let keys = FileKeySource::open_or_create(data.join("vault.keys"), &VaultKeyId::new("k1")?)?;
        // Keyed under the key source's audit key (vault.keys.audit-key), MAC'd
        // checkpoints every 1,000 records in vault-audit.log.checkpoints, and the
        // trail's first record and latest checkpoint beside the key
        // (vault.keys.audit-anchor): a log emptied or replaced is refused at start.
        let audit = Arc::new(AuditLog::open_keyed_anchored(
            data.join("vault-audit.log"),
            keys.audit_key()?,
            keys.audit_anchor_path(),
        )?);
        let vault = Vault::new(vault_store, Box::new(keys), Box::new(Arc::clone(&audit)))?
            .with_grant_policy(policy);
        Ok((vault, audit))
    })
    .await?;
    let vault = AsyncVault::new(vault);
    let mailer = match &args.smtp {
        None => Mailer::Outbox(
            Outbox::open(
                &args
                    .outbox
                    .clone()
                    .unwrap_or_else(|| args.data.join("outbox")),
            )?
            .with_delay(std::time::Duration::from_millis(args.mail_delay_ms)),
        ),
        Some(url) => {
            let mut url = url::Url::parse(url).map_err(|_| "--smtp: not a URL")?;
            if let Ok(password) = std::env::var("SHOPSAFE_SMTP_PASSWORD") {
                url.set_password(Some(&password))
                    .map_err(|()| "--smtp: this URL takes no password")?;
            }
            let mut builder = SmtpNotifier::builder(url.as_str())
                .default_brand(BrandMail::new(&args.mail_from, "our shop")?);
            for name in &brands {
                builder =
                    builder.brand(BrandId::new(name)?, BrandMail::new(&args.mail_from, name)?);
            }
            if let Some(ca) = &args.smtp_ca {
                builder = builder.ca_file(ca);
            }
            Mailer::Smtp(Arc::new(builder.build(ProfileBook(Arc::clone(&profiles)))?))
        }
    };
    let app = Arc::new(App {
        auth,
        store,
        vault,
        profiles,
        links,
        brands,
        session_key: session_key(&args.data.join("session.key"))?,
        mailer,
        admin_token: std::env::var("SHOPSAFE_ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
        campaigns: tokio::sync::Mutex::new(HashMap::new()),
        data_map: Arc::new(data_map()),
        audit,
        signups,
        charges,
        proxies: args.trusted_proxies.clone(),
    });
    if app.admin_token.is_none() {
        log("warning: SHOPSAFE_ADMIN_TOKEN is not set: every /admin call answers 403");
    }

    // Campaigns a shutdown stopped carry on where they stopped.
    let profiles = Arc::clone(&app.profiles);
    for id in blocking(move || profiles.unfinished_campaigns()).await? {
        if let Some(incident) = find_incident(&app.store, id).await? {
            log(&format!("campaign of incident {id} resumed"));
            let task = start_campaign(&app, incident);
            app.campaigns
                .lock()
                .await
                .insert(id, CampaignRun::Running(task));
        }
    }

    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{}", listener.local_addr()?)?;
        out.flush()?;
    }
    log(&format!("pool of {} hashing slots", app.auth.pool().size()));
    let edge = net::Edge {
        max_connections: args.max_connections,
        header_timeout: std::time::Duration::from_secs(args.header_timeout_secs.max(1)),
        shutdown_deadline: std::time::Duration::from_secs(args.shutdown_deadline_secs),
    };
    let routes = router(Arc::clone(&app)).layer(tower::limit::ConcurrencyLimitLayer::new(
        args.max_in_flight.max(1),
    ));
    net::serve(listener, routes, edge, shutdown_signal()).await?;

    // Requests are done; stop the campaigns between two notices (they resume next time).
    let mut campaigns = app.campaigns.lock().await;
    for (id, run) in campaigns.drain() {
        if let CampaignRun::Running(task) = run {
            task.stop();
            match task.join().await {
                Ok(CampaignEnd::Stopped) => log(&format!(
                    "campaign of incident {id} stopped; resumes at next start"
                )),
                Ok(CampaignEnd::Completed(r)) => {
                    let profiles = Arc::clone(&app.profiles);
                    let (finished, done, total) = (r.finished, r.sent_total, r.affected);
                    let _ =
                        blocking(move || profiles.set_campaign(id, finished, done, total)).await;
                }
                Ok(_) => {}
                Err(e) => log(&format!("error: campaign of incident {id}: {e}")),
            }
        }
    }
    log("stopped");
    Ok(())
}

fn main() -> Result<(), AppError> {
    let args = Args::parse();
    if args.build_profile {
        println!(
            "{}",
            if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
        );
        return Ok(());
    }
    std::fs::create_dir_all(&args.data)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // The stores are opened before the runtime runs anything: the sync PostgreSQL client
    // must not be built on one of its threads.
    if let Some(url) = args.postgres.clone() {
        #[cfg(feature = "postgres")]
        {
            use shopsafe::store::postgres::{PgOptions, PgStore, PgVault};
            let schema = args.pg_schema.clone();
            let options = PgOptions::new(&url)?.schema(&schema)?;
            let store = Arc::new(PgStore::connect(options.clone())?);
            let vault = Arc::new(PgVault::connect(
                PgOptions::new(&url)?.schema(&format!("{schema}_vault"))?,
            )?);
            let profiles: Arc<dyn Profiles> =
                Arc::new(profiles::PgProfiles::connect(&options, &schema)?);
            return runtime.block_on(serve(args, store, vault, profiles));
        }
        #[cfg(not(feature = "postgres"))]
        {
            let _ = url;
            return Err("--postgres needs the `postgres` feature".into());
        }
    }
    use shopsafe::store::sqlite::{SqliteStore, SqliteVault};
    let store = Arc::new(SqliteStore::open(args.data.join("customers.db"))?);
    let vault = Arc::new(SqliteVault::open(args.data.join("vault.db"))?);
    let profiles: Arc<dyn Profiles> = Arc::new(profiles::SqliteProfiles::open(store.path())?);
    runtime.block_on(serve(args, store, vault, profiles))
}
