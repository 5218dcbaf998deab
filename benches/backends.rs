//! SQLite beside PostgreSQL in one run: the notification campaign (accounts/s, one worker
//! and, on PostgreSQL, four workers on four lanes) and tokenizing (cards/s).
//!
//! `pg_login_path/*` (with feature `tokio`): the store reads of one login (credential and
//! brands, two queries) from a tokio runtime, three ways: the sync client called through
//! `shopsafe::aio::blocking` (what `aio` ships), the async `tokio-postgres` driver on one
//! connection (statements prepared once, and as SQL text like the stores send), and the
//! sync client called directly with no runtime (the floor).
//!
//! `SHOPSAFE_PG_URL=... cargo bench --features postgres --bench backends`
//! (`bash .ci/pg-start` prints a URL for a throwaway local server). Without the variable
//! only SQLite runs. Each sample seeds a fresh database (or schema), untimed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

#[cfg(feature = "tokio")]
#[path = "support/limiter.rs"]
mod limiter;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shopsafe::card::{Expiry, FileKeySource, Pan, Vault, VaultKeyId, VaultStore, luhn_check_digit};
use shopsafe::password::{Hasher, Params, Password, PasswordHash};
use shopsafe::rotation::{
    BrandLinks, Campaign, CampaignOptions, Notice, NotifyError, ResetUrlTemplate,
};
use shopsafe::store::postgres::{PgOptions, PgStore, PgVault};
use shopsafe::store::sqlite::{SqliteStore, SqliteVault};
use shopsafe::store::{
    AccountId, AuditSink, BrandId, CampaignStore, CredentialStore, Incident, IncidentScope,
    IncidentStore, Timestamp,
};

const ACCOUNTS: usize = 20_000;
const CARDS: usize = 10_000;

fn pg_url() -> Option<String> {
    let url = std::env::var("SHOPSAFE_PG_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        eprintln!("SHOPSAFE_PG_URL is unset: PostgreSQL is skipped, SQLite runs alone");
    }
    url
}

fn schema_name() -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "bench_{}_{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    )
}

fn drop_schema(url: &str, schema: &str) {
    let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    c.batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .expect("drop schema");
}

fn hash() -> PasswordHash {
    Hasher::new(Params::insecure_for_tests(64, 1, 1).expect("params"))
        .hash(&Password::new("bench password"))
        .expect("hash")
}

fn links() -> BrandLinks {
    BrandLinks::new().default_template(
        ResetUrlTemplate::new("https://shop.example/reset?token={token}").expect("template"),
    )
}

fn ids() -> Vec<AccountId> {
    (0..ACCOUNTS)
        .map(|i| AccountId::new(format!("cust-{i:08}")).expect("id"))
        .collect()
}

/// Seeds `ACCOUNTS` credentials through `bulk` and declares an incident over them.
fn incident<S: IncidentStore>(store: &S) -> Incident {
    Incident::declare(
        store,
        IncidentScope::All,
        Timestamp::from_millis(2),
        "bench",
    )
    .expect("declare")
}

fn run_campaign<S: CampaignStore>(store: &S, incident: &Incident) -> Duration {
    let links = links();
    let quiet = |_: &Notice| -> Result<(), NotifyError> { Ok(()) };
    let started = Instant::now();
    let report = Campaign::new(store, &links)
        .run(incident, &quiet, CampaignOptions::new())
        .expect("campaign");
    assert_eq!(report.sent_this_run, ACCOUNTS as u64);
    started.elapsed()
}

fn campaign(c: &mut Criterion) {
    let url = pg_url();
    let (hash, ids) = (hash(), ids());
    let brands = [BrandId::new("shoes").expect("brand")];
    let items = || {
        ids.iter()
            .map(|a| (a, &brands[..], &hash, Timestamp::from_millis(1)))
    };
    let mut g = c.benchmark_group("campaign");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(ACCOUNTS as u64));
    g.bench_function(BenchmarkId::new("sqlite", ACCOUNTS), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let dir = tempfile::tempdir().expect("temp dir");
                    let store = SqliteStore::open(dir.path().join("c.db")).expect("open");
                    store.insert_credentials_bulk(items()).expect("seed");
                    run_campaign(&store, &incident(&store))
                })
                .sum()
        });
    });
    if let Some(url) = url.as_deref() {
        let fresh = || {
            let schema = schema_name();
            let options = PgOptions::new(url)
                .and_then(|o| o.schema(&schema))
                .expect("options");
            let store = PgStore::connect(options.clone()).expect("connect");
            store.insert_credentials_bulk(items()).expect("seed");
            (store, options, schema)
        };
        g.bench_function(BenchmarkId::new("postgres", ACCOUNTS), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let (store, _, schema) = fresh();
                        let took = run_campaign(&store, &incident(&store));
                        drop(store);
                        drop_schema(url, &schema);
                        took
                    })
                    .sum()
            });
        });
        g.bench_function(BenchmarkId::new("postgres_4_workers", ACCOUNTS), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let (store, options, schema) = fresh();
                        let incident = incident(&store);
                        let links = links();
                        let workers: Vec<PgStore> = (0..4)
                            .map(|_| PgStore::connect(options.clone()).expect("connect"))
                            .collect();
                        let started = Instant::now();
                        let lanes = Campaign::new(&store, &links)
                            .split(&incident, 4)
                            .expect("split");
                        let sent: u64 = std::thread::scope(|s| {
                            let handles: Vec<_> = workers
                                .iter()
                                .enumerate()
                                .take(lanes)
                                .map(|(lane, worker)| {
                                    let (incident, links) = (&incident, &links);
                                    s.spawn(move || {
                                        let quiet =
                                            |_: &Notice| -> Result<(), NotifyError> { Ok(()) };
                                        Campaign::new(worker, links)
                                            .run_lane(
                                                incident,
                                                lane,
                                                &quiet,
                                                CampaignOptions::new(),
                                            )
                                            .expect("lane")
                                    })
                                })
                                .collect();
                            handles
                                .into_iter()
                                .map(|h| {
                                    let report = h.join().expect("worker");
                                    assert!(report.finished, "{report:?}");
                                    report.sent_this_run
                                })
                                .sum()
                        });
                        let took = started.elapsed();
                        assert_eq!(sent, ACCOUNTS as u64, "the lanes' notices add up");
                        assert_eq!(
                            store
                                .load_credential(&ids[0])
                                .expect("load")
                                .map(|r| r.generation),
                            Some(0)
                        );
                        drop((store, workers));
                        drop_schema(url, &schema);
                        took
                    })
                    .sum()
            });
        });
    }
    g.finish();
}

/// `CARDS` distinct test numbers (Visa, Luhn-valid).
fn pans() -> Vec<Pan> {
    (0..CARDS as u64)
        .map(|i| {
            let body = format!("4000{:011}", i * 7_919);
            let digit = luhn_check_digit(body.as_bytes()).expect("digits");
            Pan::parse(&format!("{body}{}", char::from(digit))).expect("pan")
        })
        .collect()
}

fn time_tokenize<S: VaultStore>(vault: &Vault<S>, pans: &[Pan]) -> Duration {
    let expiry = Expiry::new(1, 2030).expect("expiry");
    let started = Instant::now();
    for chunk in pans.chunks(1_000) {
        vault
            .tokenize_batch(chunk.iter().map(|p| (p, expiry)))
            .expect("tokenize");
    }
    started.elapsed()
}

fn vault_over<S: VaultStore + AuditSink + 'static>(
    store: Arc<S>,
    dir: &std::path::Path,
) -> Vault<Arc<S>> {
    let keys = FileKeySource::open_or_create(dir.join("keys"), &VaultKeyId::new("k1").expect("id"))
        .expect("keys");
    Vault::new(Arc::clone(&store), Box::new(keys), Box::new(store)).expect("vault")
}

fn tokenize(c: &mut Criterion) {
    let url = pg_url();
    let pans = pans();
    let mut g = c.benchmark_group("tokenize_batch");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(CARDS as u64));
    g.bench_function(BenchmarkId::new("sqlite", CARDS), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let dir = tempfile::tempdir().expect("temp dir");
                    let store = Arc::new(SqliteVault::open(dir.path().join("v.db")).expect("open"));
                    time_tokenize(&vault_over(store, dir.path()), &pans)
                })
                .sum()
        });
    });
    if let Some(url) = url.as_deref() {
        g.bench_function(BenchmarkId::new("postgres", CARDS), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let dir = tempfile::tempdir().expect("temp dir");
                        let schema = schema_name();
                        let options = PgOptions::new(url)
                            .and_then(|o| o.schema(&schema))
                            .expect("options");
                        let store = Arc::new(PgVault::connect(options).expect("connect"));
                        let took = time_tokenize(&vault_over(store, dir.path()), &pans);
                        drop_schema(url, &schema);
                        took
                    })
                    .sum()
            });
        });
    }
    g.finish();
}

#[cfg(feature = "tokio")]
fn pg_login_path(c: &mut Criterion) {
    let Some(url) = pg_url() else { return };
    let schema = schema_name();
    let options = PgOptions::new(&url)
        .and_then(|o| o.schema(&schema))
        .expect("options");
    let store = Arc::new(PgStore::connect(options).expect("connect"));
    let (hash, ids) = (hash(), ids());
    let brands = [BrandId::new("shoes").expect("brand")];
    store
        .insert_credentials_bulk(
            ids.iter()
                .map(|a| (a, &brands[..], &hash, Timestamp::from_millis(1))),
        )
        .expect("seed");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let account = ids[ACCOUNTS / 2].clone();

    let mut g = c.benchmark_group("pg_login_path");
    g.sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g.bench_function("sync_client_direct", |b| {
        b.iter(|| store.load_credential(&account).expect("load").expect("row"))
    });
    // What the shared limiter adds to a login on PostgreSQL: one reserve and one settle
    // (a success), on a new account and source each time (campaign.rs has the same for
    // memory and SQLite).
    let limiter = shopsafe::rotation::StoreRateLimiter::new(
        Arc::clone(&store),
        10,
        100,
        Duration::from_secs(900),
    );
    // The yardstick, in the same run: one login's verify at the OWASP preset.
    let owasp = Hasher::new(Params::owasp());
    let (typed, stored) = (
        Password::new("bench password"),
        owasp.hash(&Password::new("bench password")).expect("hash"),
    );
    g.bench_function("owasp_verify", |b| {
        b.iter(|| owasp.verify(&typed, &stored).expect("verify"))
    });
    let mut n = 0u64;
    g.bench_function("limiter_pg_store", |b| {
        b.iter(|| {
            n += 1;
            limiter::reserve_and_settle(&limiter, n);
        })
    });
    g.bench_function("sync_client_via_aio_blocking", |b| {
        b.iter(|| {
            let (store, account) = (Arc::clone(&store), account.clone());
            runtime
                .block_on(shopsafe::aio::blocking(move || {
                    store.load_credential(&account)
                }))
                .expect("load")
                .expect("row")
        })
    });
    let client = runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(
            &format!("{url} options='-c search_path={schema}'"),
            tokio_postgres::NoTls,
        )
        .await
        .expect("connect");
        tokio::spawn(connection);
        client
    });
    let (credential, brand_rows) = runtime.block_on(async {
        (
            client
                .prepare("SELECT phc, generation, set_at, stamp, flags FROM credentials WHERE account = $1")
                .await
                .expect("prepare"),
            client
                .prepare("SELECT brand FROM account_brands WHERE account = $1 ORDER BY position")
                .await
                .expect("prepare"),
        )
    });
    g.bench_function("tokio_postgres", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let row = client
                    .query_opt(&credential, &[&account.as_str()])
                    .await
                    .expect("load")
                    .expect("row");
                let brands = client
                    .query(&brand_rows, &[&account.as_str()])
                    .await
                    .expect("brands");
                (row.get::<_, String>(0).len(), brands.len())
            })
        })
    });
    // The stores send SQL text, which the server parses on each call (a round trip to
    // prepare, one to run): the same with tokio-postgres, to tell the driver from that.
    g.bench_function("tokio_postgres_unprepared", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let row = client
                    .query_opt(
                        "SELECT phc, generation, set_at, stamp, flags FROM credentials WHERE account = $1",
                        &[&account.as_str()],
                    )
                    .await
                    .expect("load")
                    .expect("row");
                let brands = client
                    .query(
                        "SELECT brand FROM account_brands WHERE account = $1 ORDER BY position",
                        &[&account.as_str()],
                    )
                    .await
                    .expect("brands");
                (row.get::<_, String>(0).len(), brands.len())
            })
        })
    });
    g.finish();
    drop(client);
    drop(runtime);
    drop(store);
    drop_schema(&url, &schema);
}

#[cfg(not(feature = "tokio"))]
fn pg_login_path(_: &mut Criterion) {}

criterion_group!(benches, campaign, tokenize, pg_login_path);
criterion_main!(benches);
