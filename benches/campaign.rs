//! Breach-day throughput on SQLite, side by side in one run so the figures read as ratios.
//!
//! - `campaign/run`: `Campaign::run` over N affected accounts (claim + token per account,
//!   link, notice, per-notice checkpoint) with a notifier that does nothing.
//! - `campaign/claim_only`: the same claims (tokens generated, digests stored) with no
//!   notice and no checkpoint: the floor the campaign's own bookkeeping sits on.
//! - `login/*`: one login decision: `reset_required` (compromised: decoy verify) against
//!   `accepted` (a real verify) at OWASP parameters; they should cost the same.
//!
//! `cargo bench --bench campaign`. Each campaign sample seeds a fresh database (not timed).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shopsafe::password::{Hasher, Params, Password};
use shopsafe::rotation::{
    Authenticator, BrandLinks, Campaign, CampaignOptions, Notice, NotifyError, ResetUrlTemplate,
};
use shopsafe::store::sqlite::SqliteStore;
use shopsafe::store::{
    AccountId, BrandId, CampaignStore, Incident, IncidentScope, Timestamp, TokenPurpose,
    TokenRecord,
};

const ACCOUNTS: usize = 20_000;

fn seeded(
    dir: &std::path::Path,
    n: usize,
    hash: &shopsafe::password::PasswordHash,
) -> (SqliteStore, Incident) {
    let path = dir.join(format!("bench-{}.db", rand_suffix()));
    let store = SqliteStore::open(path).expect("open");
    let ids: Vec<AccountId> = (0..n)
        .map(|i| AccountId::new(format!("cust-{i:08}")).expect("id"))
        .collect();
    let brands = [BrandId::new("shoes").expect("brand")];
    let items = ids
        .iter()
        .map(|a| (a, &brands[..], hash, Timestamp::from_millis(1)));
    store.insert_credentials_bulk(items).expect("seed");
    let incident = Incident::declare(
        &store,
        IncidentScope::All,
        Timestamp::from_millis(2),
        "bench",
    )
    .expect("declare");
    (store, incident)
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn campaign(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let hash = Hasher::new(Params::insecure_for_tests(64, 1, 1).expect("params"))
        .hash(&Password::new("bench password"))
        .expect("hash");
    let links = BrandLinks::new().default_template(
        ResetUrlTemplate::new("https://shoes.example/reset?token={token}").expect("template"),
    );
    let mut g = c.benchmark_group("campaign");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(ACCOUNTS as u64));

    g.bench_function(BenchmarkId::new("run", ACCOUNTS), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (store, incident) = seeded(dir.path(), ACCOUNTS, &hash);
                let notifier = |n: &Notice| -> Result<(), NotifyError> {
                    black_box(n.link.expose_secret().len());
                    Ok(())
                };
                let start = Instant::now();
                let report = Campaign::new(&store, &links)
                    .run(&incident, &notifier, CampaignOptions::new())
                    .expect("run");
                total += start.elapsed();
                assert_eq!(report.sent_total, ACCOUNTS as u64);
                std::fs::remove_file(store.path()).ok();
            }
            total
        });
    });

    g.bench_function(BenchmarkId::new("claim_only", ACCOUNTS), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (store, incident) = seeded(dir.path(), ACCOUNTS, &hash);
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
                        .claim_batch(&incident, after.as_ref(), 2_000, &mut issue)
                        .expect("claim");
                    let Some(last) = batch.last() else { break };
                    after = Some(last.account.clone());
                }
                total += start.elapsed();
                std::fs::remove_file(store.path()).ok();
            }
            total
        });
    });
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
    let auth = Authenticator::new(Arc::clone(&store), hasher);
    let password = Password::new("walnut cobbler lantern river");

    let mut g = c.benchmark_group("login");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));
    g.bench_function("accepted", |b| {
        b.iter(|| auth.login(black_box(&ok), &password).expect("login"))
    });
    g.bench_function("reset_required", |b| {
        b.iter(|| auth.login(black_box(&hit), &password).expect("login"))
    });
    g.finish();
}

criterion_group!(benches, campaign, login);
criterion_main!(benches);
