//! The application: the stores it needs, its state, its routes, and its start and
//! shutdown (campaigns a shutdown stopped resume at the next start).

use std::collections::{BTreeSet, HashMap};
use std::io::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post, put};
use shopsafe::aio::{AsyncAuthenticator, AsyncVault, CampaignEnd, CampaignTask, blocking};
use shopsafe::audit::{AuditLog, AuditSink};
use shopsafe::card::{
    CardOnFileStore, FileKeySource, GrantPolicy, KeySource, Purpose, Vault, VaultKeyId, VaultStore,
};
use shopsafe::kernel::BrandId;
use shopsafe::minimize::{DataMap, Form, RetentionStore};
use shopsafe::password::{AcceptancePolicy, Hasher, OnLookupFailure, Params};
use shopsafe::rotation::{
    Authenticator, BrandLinks, CampaignStore, CredentialStore, IncidentStore, RateLimiter,
    ResetTokenStore, ResetUrlTemplate, SessionStore, Sessions, StoreRateLimiter, ThrottleStore,
};
use shopsafe::smtp::{BrandMail, SmtpNotifier};
use shopsafe::web::Kit;

use crate::accounts::{create_account, forgot, health, login, me, my_profile, reset};
use crate::admin::{
    audit_checkpoint, campaign_status, declare, find_incident, my_exposure, pool_state,
    run_campaign, start_campaign,
};
use crate::cards::{CHARGES, add_card, charge};
use crate::erasure::{
    admin_erase, admin_export, admin_hold, admin_release, check_data_map, erase_me,
    erasure_checkpoint, my_export,
};
use crate::mail::{Mailer, Outbox, ProfileBook};
use crate::profiles::{AppError, Profiles};
use crate::session::{end_all_my_sessions, end_my_session, my_sessions};
use crate::{Args, log, net};

// ---------------------------------------------------------------------------------------
// The stores the server needs, on SQLite or PostgreSQL.

pub(crate) trait CustomerStores:
    CredentialStore
    + IncidentStore
    + ResetTokenStore
    + CampaignStore
    + CardOnFileStore
    + ThrottleStore
    + RetentionStore
    + SessionStore
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
        + RetentionStore
        + SessionStore
        + 'static
{
}

pub(crate) enum CampaignRun {
    Running(CampaignTask),
    Ended {
        done: u64,
        total: u64,
        finished: bool,
    },
}

pub(crate) struct App<S, V> {
    pub(crate) auth: AsyncAuthenticator<S>,
    pub(crate) store: Arc<S>,
    pub(crate) vault: AsyncVault<V>,
    pub(crate) profiles: Arc<dyn Profiles>,
    pub(crate) links: Arc<BrandLinks>,
    pub(crate) brands: BTreeSet<String>,
    /// Server-side sessions, in the customer database (the kit's).
    pub(crate) sessions: Arc<Sessions<dyn SessionStore>>,
    /// The web layer's settings: sessions, cookie, origin, trusted proxies.
    pub(crate) kit: Kit,
    pub(crate) mailer: Mailer,
    pub(crate) admin_token: Option<String>,
    pub(crate) campaigns: tokio::sync::Mutex<HashMap<i64, CampaignRun>>,
    pub(crate) data_map: Arc<DataMap>,
    /// The vault's keyed audit trail (the vault holds the other handle).
    pub(crate) audit: Arc<AuditLog>,
    /// Sign-ups, per source (and per account id asked for).
    pub(crate) signups: Arc<dyn RateLimiter>,
    /// Charges, per account (and per source).
    pub(crate) charges: Arc<dyn RateLimiter>,
    /// The password policy the authenticator applies, checked at sign-up before the
    /// profile is made (a refused password then says nothing about the email).
    pub(crate) acceptance: AcceptancePolicy,
}

pub(crate) type Shared<S, V> = State<Arc<App<S, V>>>;

// ---------------------------------------------------------------------------------------
// Start-up and shutdown.

pub(crate) fn router<S: CustomerStores, V: VaultStore + 'static>(app: Arc<App<S, V>>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/accounts", post(create_account::<S, V>))
        .route("/login", post(login::<S, V>))
        .route("/me", get(me).delete(erase_me::<S, V>))
        .route("/me/profile", get(my_profile::<S, V>))
        .route("/me/export", get(my_export::<S, V>))
        .route("/me/sessions", get(my_sessions::<S, V>))
        .route("/me/sessions/end-all", post(end_all_my_sessions::<S, V>))
        .route(
            "/me/sessions/{id}",
            axum::routing::delete(end_my_session::<S, V>),
        )
        .route(
            "/admin/customers/{account}/erase",
            post(admin_erase::<S, V>),
        )
        .route(
            "/admin/customers/{account}/export",
            get(admin_export::<S, V>),
        )
        .route(
            "/admin/customers/{account}/hold",
            put(admin_hold::<S, V>).delete(admin_release::<S, V>),
        )
        .route(
            "/admin/erasures/checkpoint",
            post(erasure_checkpoint::<S, V>),
        )
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

pub(crate) fn brand_links(
    extra: &[String],
) -> Result<(Arc<BrandLinks>, BTreeSet<String>), AppError> {
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

pub(crate) fn data_map() -> DataMap {
    DataMap::new()
        .holds("customer_db", "email address", Form::Sealed)
        .holds("customer_db", "name", Form::Sealed)
        .holds("customer_db", "phone number", Form::Sealed)
        .holds("customer_db", "home address", Form::Sealed)
        .holds("customer_db", "shipping address", Form::Sealed)
        // Opened only with the key store and the KEK file, both on the vault side.
        .sealed_with("customer_db", &["key_store", "vault_keys"])
        .holds("customer_db", "password", Form::HashedArgon2id)
        // Where each session's login came from, and a coarse browser and system.
        .holds("customer_db", "session source and device", Form::Plain)
        .holds("customer_db", "card number", Form::Masked)
        .holds("vault", "card number", Form::EncryptedElsewhere)
}

pub(crate) async fn shutdown_signal() {
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

pub(crate) async fn serve<S: CustomerStores, V: VaultStore + AuditSink + 'static>(
    args: Args,
    vault_dir: std::path::PathBuf,
    store: Arc<S>,
    vault_store: Arc<V>,
    profiles: Arc<dyn Profiles>,
) -> Result<(), AppError> {
    // The export and the erasure cover every field the data map says is held, or the
    // server does not start.
    let map = data_map();
    check_data_map(&map)?;
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
            .with_policy(acceptance.clone())
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
    let data = vault_dir.clone();
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
    let kit = Kit::new(Sessions::new(Arc::clone(&store)))
        .with_origin(&args.origin)?
        .with_trusted_proxies(args.trusted_proxies.clone());
    let sessions = Arc::clone(kit.sessions().sync());
    let app = Arc::new(App {
        auth,
        store,
        vault,
        profiles,
        links,
        brands,
        sessions,
        kit,
        mailer,
        admin_token: std::env::var("SHOPSAFE_ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
        campaigns: tokio::sync::Mutex::new(HashMap::new()),
        data_map: Arc::new(map),
        audit,
        signups,
        charges,
        acceptance,
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

    // An erasure cut off (a crash between its ledger entry and the key destruction, on
    // this server or another) is finished within a minute: the ledger is replayed every
    // 60 s (at start it was, before anything opened).
    // Expired sessions are swept at the same pace (validation refuses them anyway).
    let profiles = Arc::clone(&app.profiles);
    let sessions = Arc::clone(&app.sessions);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        every.tick().await;
        loop {
            every.tick().await;
            let s = Arc::clone(&sessions);
            if let Err(e) = blocking(move || s.purge()).await {
                log(&format!("error: session purge: {e}"));
            }
            let p = Arc::clone(&profiles);
            match blocking(move || p.replay_erasures()).await {
                Ok((0, _)) => {}
                Ok((entries, destroyed)) => log(&format!(
                    "erasure ledger: {entries} erasures replayed, {destroyed} keys destroyed"
                )),
                Err(e) => log(&format!("error: erasure ledger replay: {e}")),
            }
        }
    });

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
