//! The card vault on SQLite (on disk), side by side in one run so figures read as ratios.
//!
//! - `tokenize/batch_1000`: `Vault::tokenize_batch`, 1,000 new cards per transaction (an
//!   import); `tokenize/batch_1000_dedupe`: `Vault::tokenize_batch_dedupe`, 1,000 rows of
//!   which 500 are cards the vault holds and 250 new cards appear twice; `tokenize/one`: `Vault::tokenize`, a fingerprint lookup and one transaction
//!   per card (a checkout).
//! - `detokenize/audit_sqlite` (audit row in the vault database) and
//!   `detokenize/audit_log_file` (hash-chained `AuditLog`): grant check, audit record,
//!   load, open; beside `detokenize/load_only` (the store lookup alone) and
//!   `fingerprint` (one HMAC).
//!
//! `scale` (only with `SHOPSAFE_VAULT_SCALE=1`, about a minute): an import of 1,000,000
//! distinct cards in batches of 1,000 into one fresh vault, with the rate of each tenth,
//! then `tokenize` of cards the vault already holds (one per call, as at checkout) and of
//! new cards, into that 1M vault. Printed, not sampled: it is one long run.
//!
//! `cargo bench --bench vault`; `SHOPSAFE_VAULT_SCALE=1 cargo bench --bench vault -- scale`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use shopsafe::card::{
    Expiry, FileKeySource, Pan, Purpose, Vault, VaultKeyId, VaultStore, luhn_valid,
};
use shopsafe::store::sqlite::SqliteVault;
use shopsafe::store::{AuditKey, AuditLog, AuditSink};

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

/// An empty vault in a temporary folder (its own file, key file and audit table).
fn fresh_vault() -> (tempfile::TempDir, Arc<SqliteVault>, Vault<Arc<SqliteVault>>) {
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
    (dir, store, vault)
}

fn bench(c: &mut Criterion) {
    let (dir, store, vault) = fresh_vault();
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
    // An import where half the rows repeat a card: 500 held already, 250 new twice.
    // Held cards come from what batch_1000 stored: numbers 1,000 to `stored_until`.
    let stored_until = next + 1_000;
    let mut round = 0u64;
    g.bench_function("batch_1000_dedupe", |b| {
        b.iter_batched(
            || {
                round += 1;
                let held = 1_000 + (round * 500) % (stored_until - 1_500);
                let new = 200_000_000 + round * 250;
                let mut rows = pans(held, 500);
                rows.extend(pans(new, 250));
                rows.extend(pans(new, 250));
                rows
            },
            |cards| {
                vault
                    .tokenize_batch_dedupe(cards.iter().map(|p| (p, expiry)))
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
    // The same, keyed: the file's lines and the table's rows carry a MAC and a sequence
    // number (a checkpoint every 1,000 records).
    let keyed_log =
        AuditLog::open_keyed(dir.path().join("keyed.log"), AuditKey::from_bytes([3; 32]))
            .expect("keyed audit log");
    let keyed_table = SqliteVault::open(dir.path().join("vault.db"))
        .expect("vault db")
        .with_audit_key(AuditKey::from_bytes([3; 32]));
    for (name, sink) in [
        (
            "audit_log_file_keyed",
            Box::new(keyed_log) as Box<dyn AuditSink>,
        ),
        ("audit_sqlite_keyed", Box::new(keyed_table)),
    ] {
        let keys = FileKeySource::open_or_create(
            dir.path().join("vault.keys"),
            &VaultKeyId::new("k1").expect("id"),
        )
        .expect("keys");
        let keyed = Vault::new(Arc::clone(&store), Box::new(keys), sink).expect("vault");
        let keyed_grant = keyed.grant(Purpose::Charge, "bench");
        g.bench_function(name, |b| {
            b.iter(|| {
                keyed
                    .detokenize(black_box(&card.token), &keyed_grant)
                    .expect("detokenize")
            })
        });
    }
    g.bench_function("load_only", |b| {
        b.iter(|| store.load_sealed(black_box(&card.token)).expect("load"))
    });
    g.bench_function("fingerprint", |b| {
        b.iter(|| vault.fingerprint(black_box(&pan)))
    });
    g.finish();
}

/// The import at scale and checkout against a large vault (see the file's docs).
fn scale(c: &mut Criterion) {
    if std::env::var_os("SHOPSAFE_VAULT_SCALE").is_none() {
        return;
    }
    let _ = c;
    const TOTAL: u64 = 1_000_000;
    const BATCH: u64 = 1_000;
    let (_dir, store, vault) = fresh_vault();
    let expiry = Expiry::new(8, 2029).expect("expiry");
    let started = std::time::Instant::now();
    let mut tenth = std::time::Instant::now();
    let mut rates = Vec::new();
    for k in 0..TOTAL / BATCH {
        let cards = pans(k * BATCH, BATCH);
        let stored = vault
            .tokenize_batch(cards.iter().map(|p| (p, expiry)))
            .expect("batch");
        assert_eq!(stored.len() as u64, BATCH);
        if (k + 1) % (TOTAL / BATCH / 10) == 0 {
            rates.push(TOTAL as f64 / 10.0 / tenth.elapsed().as_secs_f64());
            tenth = std::time::Instant::now();
        }
    }
    let overall = TOTAL as f64 / started.elapsed().as_secs_f64();
    assert_eq!(
        store
            .count_under(&VaultKeyId::new("k1").expect("key id"))
            .expect("count"),
        TOTAL
    );
    let tenths: Vec<String> = rates.iter().map(|r| format!("{:.0}", r)).collect();
    println!(
        "vault/scale/import_1m: {overall:.0} cards/s overall; per tenth: {}",
        tenths.join(", ")
    );
    // Checkout: cards already held, one call each.
    let known = pans(123_456, 20_000);
    let t = std::time::Instant::now();
    for p in &known {
        black_box(vault.tokenize(p, expiry).expect("tokenize"));
    }
    println!(
        "vault/scale/tokenize_known: {:.0} cards/s into the 1M vault",
        known.len() as f64 / t.elapsed().as_secs_f64()
    );
    let fresh = pans(TOTAL + 10, 2_000);
    let t = std::time::Instant::now();
    for p in &fresh {
        black_box(vault.tokenize(p, expiry).expect("tokenize"));
    }
    println!(
        "vault/scale/tokenize_new: {:.0} cards/s into the 1M vault (one commit each)",
        fresh.len() as f64 / t.elapsed().as_secs_f64()
    );
    assert_eq!(
        store
            .count_under(&VaultKeyId::new("k1").expect("key id"))
            .expect("count"),
        TOTAL + 2_000
    );
}

/// Keys from an HSM (SoftHSM2, feature `pkcs11`, `SHOPSAFE_SOFTHSM_DIR` and
/// `SOFTHSM2_CONF` as `.ci/softhsm-start` sets them) beside a key file: opening a vault
/// (its key ring read and unwrapped), a vault key rotation, and a KEK rotation (every
/// wrapped key moved to a new KEK).
#[cfg(feature = "pkcs11")]
fn keys(c: &mut Criterion) {
    use shopsafe::card::{EnvelopeKeySource, KeySource, Pkcs11Wrapper};
    let Some(module) = std::env::var("SHOPSAFE_SOFTHSM_DIR").ok().and_then(|d| {
        std::fs::read_to_string(std::path::Path::new(&d).join("module"))
            .ok()
            .map(|m| m.trim().to_owned())
    }) else {
        eprintln!("keys: set SHOPSAFE_SOFTHSM_DIR and SOFTHSM2_CONF (.ci/softhsm-start) to run it");
        return;
    };
    let (dir, store, _) = fresh_vault();
    let n = std::process::id();
    let kek = |i: u32| format!("bench-kek-{n}-{i}");
    let hsm = Pkcs11Wrapper::open(&module, "shopsafe-test", "1234", &kek(0)).expect("token");
    hsm.generate_kek(&kek(0)).expect("KEK");
    let wrapped = dir.path().join("vault.keys.wrapped");
    let envelope = Arc::new(
        EnvelopeKeySource::open_or_create(&wrapped, hsm, &VaultKeyId::new("k1").expect("id"))
            .expect("envelope"),
    );
    let file = Arc::new(
        FileKeySource::open_or_create(
            dir.path().join("vault.keys"),
            &VaultKeyId::new("k1").expect("id"),
        )
        .expect("file keys"),
    );
    // Eight vault keys in each, as after two years of quarterly rotations.
    for i in 2..=8 {
        let id = VaultKeyId::new(&format!("k{i}")).expect("id");
        let key = shopsafe::card::VaultKey::generate().expect("key");
        envelope.add(&id, &key).expect("add");
        file.add(&id, &key).expect("add");
    }
    let mut g = c.benchmark_group("keys");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g.bench_function("vault_open_file", |b| {
        b.iter(|| {
            Vault::new(
                Arc::clone(&store),
                Box::new(Arc::clone(&file)),
                Box::new(Arc::clone(&store)),
            )
            .expect("vault")
        })
    });
    g.bench_function("vault_open_hsm", |b| {
        b.iter(|| {
            Vault::new(
                Arc::clone(&store),
                Box::new(Arc::clone(&envelope)),
                Box::new(Arc::clone(&store)),
            )
            .expect("vault")
        })
    });
    let mut next = 100u32;
    for (name, source) in [
        (
            "vault_key_rotate_file",
            Arc::clone(&file) as Arc<dyn KeySource>,
        ),
        (
            "vault_key_rotate_hsm",
            Arc::clone(&envelope) as Arc<dyn KeySource>,
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                next += 1;
                let id = VaultKeyId::new(&format!("r{next}")).expect("id");
                source
                    .add(&id, &shopsafe::card::VaultKey::generate().expect("key"))
                    .expect("add");
                source.destroy(&id).expect("destroy");
            })
        });
    }
    // A KEK rotation: 10 wrapped keys (8 vault keys, the audit key, a pepper) re-wrapped.
    let mut round = 0u32;
    let mut current = envelope;
    g.bench_function("kek_rotate_10_keys", |b| {
        b.iter(|| {
            round += 1;
            let hsm =
                Pkcs11Wrapper::open(&module, "shopsafe-test", "1234", &kek(round)).expect("token");
            hsm.generate_kek(&kek(round)).expect("KEK");
            let next = EnvelopeKeySource::open_or_create(
                &wrapped,
                hsm,
                &VaultKeyId::new("k1").expect("id"),
            )
            .expect("envelope");
            let r = next.rewrap().expect("rewrap");
            assert_eq!(r.rewrapped, 10);
            current
                .wrapper()
                .destroy_kek(&kek(round - 1))
                .expect("old KEK");
            current = Arc::new(next);
        })
    });
    g.finish();
}

#[cfg(not(feature = "pkcs11"))]
fn keys(_: &mut Criterion) {}

criterion_group!(benches, bench, scale, keys);
criterion_main!(benches);
