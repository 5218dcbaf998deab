//! The card vault on SQLite (on disk), side by side in one run so figures read as ratios.
//!
//! - `tokenize/batch_1000`: `Vault::tokenize_batch`, 1,000 new cards per transaction (an
//!   import); `tokenize/one`: `Vault::tokenize`, a fingerprint lookup and one transaction
//!   per card (a checkout).
//! - `detokenize/audit_sqlite` (audit row in the vault database) and
//!   `detokenize/audit_log_file` (hash-chained `AuditLog`): grant check, audit record,
//!   load, open; beside `detokenize/load_only` (the store lookup alone) and
//!   `fingerprint` (one HMAC).
//!
//! `cargo bench --bench vault`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use shopsafe::card::{Expiry, FileKeySource, Pan, Purpose, Vault, VaultKeyId, luhn_valid};
use shopsafe::store::sqlite::SqliteVault;
use shopsafe::store::{AuditLog, VaultStore};

/// `n` distinct valid Visa numbers, from `start`.
fn pans(start: u64, n: u64) -> Vec<Pan> {
    (start..start + n)
        .map(|i| {
            let mut digits = format!("4{i:014}0").into_bytes();
            for d in b'0'..=b'9' {
                digits[15] = d;
                if luhn_valid(&digits) {
                    break;
                }
            }
            Pan::parse(std::str::from_utf8(&digits).expect("ascii")).expect("valid")
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SqliteVault::open(dir.path().join("vault.db")).expect("vault db"));
    let keys = FileKeySource::open_or_create(
        dir.path().join("vault.keys"),
        &VaultKeyId::new("k1").expect("id"),
    )
    .expect("keys");
    let vault = Vault::new(
        Arc::clone(&store),
        Box::new(keys),
        Box::new(Arc::clone(&store)),
    )
    .expect("vault");
    let expiry = Expiry::new(8, 2029).expect("expiry");
    let mut next = 0u64;

    let mut g = c.benchmark_group("tokenize");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(1_000));
    g.bench_function("batch_1000", |b| {
        b.iter_batched(
            || {
                next += 1_000;
                pans(next, 1_000)
            },
            |cards| {
                vault
                    .tokenize_batch(cards.iter().map(|p| (p, expiry)))
                    .expect("batch")
            },
            BatchSize::PerIteration,
        )
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("one", |b| {
        b.iter_batched(
            || {
                next += 1;
                pans(next + 100_000_000, 1).pop().expect("one")
            },
            |pan| vault.tokenize(&pan, expiry).expect("tokenize"),
            BatchSize::SmallInput,
        )
    });
    g.finish();

    let card = vault.tokenize(&pans(7, 1)[0], expiry).expect("tokenize");
    let grant = vault.grant(Purpose::Charge, "bench");
    let pan = pans(7, 1).pop().expect("one");
    let mut g = c.benchmark_group("detokenize");
    g.sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g.bench_function("audit_sqlite", |b| {
        b.iter(|| {
            vault
                .detokenize(black_box(&card.token), &grant)
                .expect("detokenize")
        })
    });
    let keys = FileKeySource::open_or_create(
        dir.path().join("vault.keys"),
        &VaultKeyId::new("k1").expect("id"),
    )
    .expect("keys");
    let log = AuditLog::open(dir.path().join("audit.log")).expect("audit log");
    let logged = Vault::new(Arc::clone(&store), Box::new(keys), Box::new(log)).expect("vault");
    let logged_grant = logged.grant(Purpose::Charge, "bench");
    g.bench_function("audit_log_file", |b| {
        b.iter(|| {
            logged
                .detokenize(black_box(&card.token), &logged_grant)
                .expect("detokenize")
        })
    });
    g.bench_function("load_only", |b| {
        b.iter(|| {
            store
                .load_sealed(black_box(card.token.as_str()))
                .expect("load")
        })
    });
    g.bench_function("fingerprint", |b| {
        b.iter(|| vault.fingerprint(black_box(&pan)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
