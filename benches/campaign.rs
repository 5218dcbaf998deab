//! Breach-day throughput on SQLite, side by side in one run so the figures read as ratios.
//!
//! - `campaign/run/N`: `Campaign::run` over N affected accounts on two brands (claim with
//!   a token per account, link, notice, a checkpoint every 64 notices) with a notifier
//!   that does nothing; at 20,000 and 1,000,000 accounts.
//! - `campaign/run_checkpoint_every_1`: the same with a checkpoint after every notice.
//! - `campaign/claim_only`: the claims alone (digests stored, no RNG, no notice, no
//!   checkpoint): the floor the campaign's own work sits on.
//! - `declare_all/N`: `Incident::declare` for every credential at 1,000 and 1,000,000
//!   credentials: one row either way.
//! - `campaign/run_async_task/20000` (feature `tokio`): the same run as
//!   `shopsafe::aio::spawn_campaign`, awaited on a tokio runtime.
//! - `login/*`: `bare_verify` (the hasher alone) against `accepted` (the whole login
//!   decision: rate limit, load, incidents, verify) and `reset_required` (a compromised
//!   credential: decoy verify) at OWASP parameters; `accepted_async` (feature `tokio`):
//!   `AsyncAuthenticator::login_from` awaited, one at a time (the cost of the hop to a
//!   blocking thread and the slot).
//!
//! `cargo bench --bench campaign` (about 6 minutes; seeds a 1M-account database once).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

#[path = "support/limiter.rs"]
mod limiter;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shopsafe::password::{Hasher, Params, Password};
#[cfg(feature = "smtp")]
use shopsafe::rotation::Notifier;
use shopsafe::rotation::{
    Authenticator, BrandLinks, Campaign, CampaignOptions, InMemoryRateLimiter, LoginDecision,
    Notice, NotifyError, ResetUrlTemplate,
};
use shopsafe::store::sqlite::SqliteStore;
use shopsafe::store::{
    AccountId, BrandId, CampaignStore, Incident, IncidentScope, Timestamp, TokenPurpose,
    TokenRecord,
};

/// A database of `n` credentials (one brand, one shared hash), made once per size and
/// copied for each sample, so a sample's setup is a file copy.
struct Template {
    dir: tempfile::TempDir,
    path: std::path::PathBuf,
    copies: std::cell::Cell<u32>,
    /// How many accounts it holds (every one affected by the copies' incident).
    accounts: u64,
}

impl Template {
    fn new(n: usize) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(format!("template-{n}.db"));
        let hash = Hasher::new(Params::insecure_for_tests(64, 1, 1).expect("params"))
            .hash(&Password::new("bench password"))
            .expect("hash");
        let store = SqliteStore::open(&path).expect("open");
        let brands = [
            BrandId::new("shoes").expect("brand"),
            BrandId::new("boots").expect("brand"),
        ];
        for chunk in (0..n).collect::<Vec<_>>().chunks(100_000) {
            let ids: Vec<AccountId> = chunk
                .iter()
                .map(|i| AccountId::new(format!("cust-{i:08}")).expect("id"))
                .collect();
            let items = ids
                .iter()
                .enumerate()
                .map(|(k, a)| (a, &brands[k % 2..=k % 2], &hash, Timestamp::from_millis(1)));
            store.insert_credentials_bulk(items).expect("seed");
        }
        // Fold the WAL into the main file so a copy of that one file is the whole database.
        drop(store);
        Self {
            dir,
            path,
            copies: 0.into(),
            accounts: n as u64,
        }
    }

    /// A fresh copy with an "all" incident declared on it.
    fn copy(&self) -> (SqliteStore, Incident) {
        self.copies.set(self.copies.get() + 1);
        let path = self
            .dir
            .path()
            .join(format!("copy-{}.db", self.copies.get()));
        std::fs::copy(&self.path, &path).expect("copy");
        let store = SqliteStore::open(&path).expect("open");
        let incident = Incident::declare(
            &store,
            IncidentScope::All,
            Timestamp::from_millis(2),
            "bench",
        )
        .expect("declare");
        (store, incident)
    }
}

fn remove(store: SqliteStore) {
    let path = store.path().to_path_buf();
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        std::fs::remove_file(p).ok();
    }
}

fn links() -> BrandLinks {
    BrandLinks::new()
        .brand(
            BrandId::new("shoes").expect("brand"),
            ResetUrlTemplate::new("https://shoes.example/reset?token={token}").expect("template"),
        )
        .brand(
            BrandId::new("boots").expect("brand"),
            ResetUrlTemplate::new("https://boots.example/reset?token={token}").expect("template"),
        )
}

/// Times `Campaign::run` over fresh copies of `template`.
fn time_runs(
    template: &Template,
    iters: u64,
    options: impl Fn() -> CampaignOptions<'static>,
) -> Duration {
    let links = links();
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let (store, incident) = template.copy();
        let notifier = |n: &Notice| -> Result<(), NotifyError> {
            black_box(n.link.expose_secret().len());
            Ok(())
        };
        let start = Instant::now();
        let report = Campaign::new(&store, &links)
            .run(&incident, &notifier, options())
            .expect("run");
        total += start.elapsed();
        assert!(report.finished);
        assert_eq!(report.sent_this_run, template.accounts, "{report:?}");
        assert_eq!(report.affected, template.accounts, "{report:?}");
        remove(store);
    }
    total
}

/// Times `aio::spawn_campaign` runs, awaited on a tokio runtime, over fresh copies.
#[cfg(feature = "tokio")]
fn time_async_runs(template: &Template, iters: u64) -> Duration {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let links = Arc::new(links());
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let (store, incident) = template.copy();
        let store = Arc::new(store);
        let notifier = |n: &Notice| -> Result<(), NotifyError> {
            black_box(n.link.expose_secret().len());
            Ok(())
        };
        let start = Instant::now();
        let end = runtime.block_on(async {
            shopsafe::aio::spawn_campaign(
                Arc::clone(&store),
                Arc::clone(&links),
                incident,
                notifier,
                CampaignOptions::new,
            )
            .join()
            .await
        });
        total += start.elapsed();
        match end.expect("run") {
            shopsafe::aio::CampaignEnd::Completed(report) => {
                assert_eq!(report.sent_this_run, template.accounts, "{report:?}");
            }
            other => panic!("{other:?}"),
        }
        remove(Arc::try_unwrap(store).expect("the task let go of the store"));
    }
    total
}

/// Times `Campaign::run` over fresh copies of `template`, sending through `notifier`.
#[cfg(feature = "smtp")]
fn time_runs_through(template: &Template, iters: u64, notifier: &dyn Notifier) -> Duration {
    let links = links();
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let (store, incident) = template.copy();
        let start = Instant::now();
        let report = Campaign::new(&store, &links)
            .run(&incident, notifier, CampaignOptions::new())
            .expect("run");
        total += start.elapsed();
        assert_eq!(report.sent_this_run, template.accounts, "{report:?}");
        remove(store);
    }
    total
}

/// Notices through a real SMTP relay (`SHOPSAFE_SMTP_DIR=$(bash .ci/smtp-start)`: aiosmtpd
/// on 127.0.0.1), beside the same campaign with a notifier that sends nothing.
#[cfg(feature = "smtp")]
fn campaign_smtp(c: &mut Criterion) {
    let Ok(relay) = std::env::var("SHOPSAFE_SMTP_DIR") else {
        eprintln!("campaign_smtp: set SHOPSAFE_SMTP_DIR=$(bash .ci/smtp-start) to run it");
        return;
    };
    let port = std::fs::read_to_string(std::path::Path::new(&relay).join("plain.port"))
        .expect("port")
        .trim()
        .to_owned();
    let mut g = c.benchmark_group("campaign_smtp");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    let template = Template::new(200);
    g.throughput(Throughput::Elements(200));
    let book = |a: &AccountId| -> Result<Option<String>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Some(format!("bench-{}@customers.example", a.as_str())))
    };
    for pool in [1u32, 4, 16] {
        let notifier = shopsafe::smtp::SmtpNotifier::builder(&format!("smtp://127.0.0.1:{port}"))
            .default_brand(
                shopsafe::smtp::BrandMail::new("Shop <no-reply@shop.example>", "Shop")
                    .expect("sender"),
            )
            .pool_size(pool)
            .build(book)
            .expect("notifier");
        g.bench_function(BenchmarkId::new("relay_pool", pool), |b| {
            b.iter_custom(|i| time_runs_through(&template, i, &notifier))
        });
    }
    g.bench_function("no_mail_checkpoint_every_1", |b| {
        b.iter_custom(|i| time_runs(&template, i, || CampaignOptions::new().checkpoint_every(1)))
    });
    g.finish();
}

#[cfg(not(feature = "smtp"))]
fn campaign_smtp(_: &mut Criterion) {}

fn campaign(c: &mut Criterion) {
    let mut g = c.benchmark_group("campaign");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(15));
    let small = Template::new(20_000);
    g.throughput(Throughput::Elements(20_000));
    g.bench_function(BenchmarkId::new("run", 20_000), |b| {
        b.iter_custom(|i| time_runs(&small, i, CampaignOptions::new))
    });
    #[cfg(feature = "tokio")]
    g.bench_function(BenchmarkId::new("run_async_task", 20_000), |b| {
        b.iter_custom(|i| time_async_runs(&small, i))
    });
    g.bench_function(BenchmarkId::new("run_checkpoint_every_1", 20_000), |b| {
        b.iter_custom(|i| time_runs(&small, i, || CampaignOptions::new().checkpoint_every(1)))
    });
    g.bench_function(BenchmarkId::new("claim_only", 20_000), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (store, incident) = small.copy();
                let start = Instant::now();
                let mut after: Option<AccountId> = None;
                let mut n = 0u64;
                loop {
                    let mut issue = |a: &AccountId, generation: u64| {
                        n += 1;
                        let mut digest = [0u8; 32];
                        digest[..8].copy_from_slice(&n.to_le_bytes());
                        Ok(TokenRecord::new(
                            digest,
                            a.clone(),
                            generation,
                            TokenPurpose::Incident,
                            Timestamp::from_millis(3),
                            Duration::from_secs(3600),
                        ))
                    };
                    let batch = store
                        .claim_batch(&incident, after.as_ref(), None, 2_000, &mut issue)
                        .expect("claim");
                    let Some(last) = batch.last() else { break };
                    after = Some(last.account.clone());
                }
                total += start.elapsed();
                assert_eq!(n, small.accounts, "every account claimed once");
                remove(store);
            }
            total
        });
    });
    drop(small);

    let big = Template::new(1_000_000);
    g.throughput(Throughput::Elements(1_000_000));
    g.measurement_time(Duration::from_secs(60));
    g.bench_function(BenchmarkId::new("run", 1_000_000), |b| {
        b.iter_custom(|i| time_runs(&big, i, CampaignOptions::new))
    });
    g.finish();

    // Declaring is one row whatever the number of credentials.
    let mut g = c.benchmark_group("declare_all");
    g.sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let tiny = Template::new(1_000);
    for (n, template) in [(1_000, &tiny), (1_000_000, &big)] {
        let (store, _) = template.copy();
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                Incident::declare(
                    &store,
                    IncidentScope::All,
                    Timestamp::from_millis(5),
                    "bench",
                )
                .expect("declare")
            })
        });
        remove(store);
    }
    g.finish();
}

fn login(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("login.db")).expect("open"));
    let hasher = Arc::new(Hasher::new(Params::owasp()));
    let hash = hasher
        .hash(&Password::new("walnut cobbler lantern river"))
        .expect("hash");
    let brands = [BrandId::new("shoes").expect("brand")];
    let (ok, hit) = (
        AccountId::new("fine").expect("id"),
        AccountId::new("hit").expect("id"),
    );
    let items = [(&hit, &brands[..], &hash, Timestamp::from_millis(1))];
    store.insert_credentials_bulk(items).expect("seed");
    let (_, listed) =
        Incident::declare_accounts(&*store, [hit.clone()], Timestamp::from_millis(2), "bench")
            .expect("declare");
    assert_eq!(listed, 1);
    store
        .insert_credentials_bulk([(&ok, &brands[..], &hash, Timestamp::from_millis(3))])
        .expect("seed");
    // Every iteration is one more attempt on the same account: without a limit wide
    // enough, `reset_required` (a failure, like every answer but Accepted) would measure
    // the throttle after ten iterations.
    let unlimited = InMemoryRateLimiter::new(u32::MAX, u32::MAX, Duration::from_secs(1));
    let auth =
        Authenticator::new(Arc::clone(&store), hasher).with_rate_limiter(Arc::new(unlimited));
    let password = Password::new("walnut cobbler lantern river");

    let mut g = c.benchmark_group("login");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));
    g.bench_function("bare_verify", |b| {
        b.iter(|| {
            auth.hasher()
                .verify(black_box(&password), &hash)
                .expect("verify")
        })
    });
    // What a limiter adds to a login: one reserve and one settle (a success), on a new
    // account and source each time, in memory and in the SQLite store shared by servers.
    let in_memory = InMemoryRateLimiter::new(10, 100, Duration::from_secs(900));
    let shared = shopsafe::rotation::StoreRateLimiter::new(
        Arc::clone(&store),
        10,
        100,
        Duration::from_secs(900),
    );
    for (name, limiter) in [
        (
            "limiter_in_memory",
            &in_memory as &dyn shopsafe::rotation::RateLimiter,
        ),
        ("limiter_sqlite_store", &shared),
    ] {
        let mut n = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                n += 1;
                limiter::reserve_and_settle(limiter, n);
            })
        });
    }
    g.bench_function("accepted", |b| {
        b.iter(|| {
            let d = auth.login(black_box(&ok), &password).expect("login");
            assert!(matches!(d, LoginDecision::Accepted { .. }), "{d:?}");
        })
    });
    g.bench_function("reset_required", |b| {
        b.iter(|| {
            let d = auth.login(black_box(&hit), &password).expect("login");
            assert!(matches!(d, LoginDecision::ResetRequired { .. }), "{d:?}");
        })
    });
    #[cfg(feature = "tokio")]
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let auth = shopsafe::aio::AsyncAuthenticator::new(auth);
        g.bench_function("accepted_async", |b| {
            b.iter(|| {
                let d = runtime
                    .block_on(auth.login_from(
                        ok.clone(),
                        Password::new("walnut cobbler lantern river"),
                        "",
                    ))
                    .expect("login");
                assert!(matches!(d, LoginDecision::Accepted { .. }), "{d:?}");
            })
        });
    }
    g.finish();
}

criterion_group!(benches, campaign_smtp, campaign, login);
criterion_main!(benches);
