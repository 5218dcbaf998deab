//! Sessions: validating a token (the read every request makes) on SQLite and, with
//! `SHOPSAFE_PG_URL` and feature `postgres`, on PostgreSQL over its socket, among 100,000
//! live sessions; and ending every session one incident compromises on SQLite, with
//! 1,000,000 accounts holding one session each (each sample on a fresh copy).
//!
//! `cargo bench --bench sessions` (SQLite);
//! `SHOPSAFE_PG_URL=... cargo bench --features postgres --bench sessions` (both).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use shopsafe::kernel::{AccountId, BrandId, Timestamp};
use shopsafe::password::{Hasher, Params, Password};
use shopsafe::rotation::{
    CredentialStore, Incident, IncidentScope, SessionStore, SessionToken, Sessions,
};
use shopsafe::store::sqlite::SqliteStore;

const LIVE: usize = 100_000;
const TOKENS: usize = 1_000;

fn accounts(from: usize, n: usize) -> Vec<AccountId> {
    (from..from + n)
        .map(|i| AccountId::new(format!("cust-{i:08}")).expect("id"))
        .collect()
}

/// Seeds `n` credentials, set at 1 ms (before any incident's cutoff), in batches.
fn seed_credentials(mut insert: impl FnMut(&[AccountId]), n: usize) {
    for start in (0..n).step_by(100_000) {
        insert(&accounts(start, 100_000.min(n - start)));
    }
}

/// SQL that gives every credential one session (ids and digests from the account's
/// name: unique, and no token for them exists).
const ONE_SESSION_EACH: &str = "INSERT INTO sessions (digest, id, account, stamp, created_at,
    last_seen, expires_at, source, agent)
    SELECT {digest}, {id}, account, stamp, 1, 9000000000000, 9000000000000, '203.0.113.7', 'Firefox on Linux'
    FROM credentials";

/// Starts `TOKENS` real sessions (tokens kept) on accounts seeded before.
fn start_tokens<S: SessionStore + CredentialStore>(
    store: &Arc<S>,
) -> (Sessions<S>, Vec<SessionToken>) {
    let sessions = Sessions::new(Arc::clone(store));
    let tokens = accounts(0, TOKENS)
        .iter()
        .map(|a| {
            let stamp = store
                .load_credential(a)
                .expect("load")
                .expect("there")
                .stamp;
            sessions
                .start(a, &stamp, "203.0.113.7", "Firefox on Linux")
                .expect("start")
                .0
        })
        .collect();
    (sessions, tokens)
}

fn hash() -> shopsafe::password::PasswordHash {
    Hasher::new(Params::insecure_for_tests(64, 1, 1).expect("params"))
        .hash(&Password::new("bench password"))
        .expect("hash")
}

fn validate(c: &mut Criterion) {
    let mut g = c.benchmark_group("sessions/validate");
    let h = hash();
    let brands = [BrandId::new("shoes").expect("brand")];
    let dir = tempfile::tempdir().expect("dir");
    let sqlite = Arc::new(SqliteStore::open(dir.path().join("customers.db")).expect("open"));
    seed_credentials(
        |ids| {
            sqlite
                .insert_credentials_bulk(
                    ids.iter()
                        .map(|a| (a, &brands[..], &h, Timestamp::from_millis(1))),
                )
                .expect("seed");
        },
        LIVE,
    );
    {
        let db = rusqlite::Connection::open(sqlite.path()).expect("db");
        db.execute_batch(
            &ONE_SESSION_EACH
                .replace("{digest}", "randomblob(32)")
                .replace("{id}", "randomblob(16)"),
        )
        .expect("sessions");
    }
    // An incident on a brand nobody has: the liveness check reads it on every call.
    Incident::declare(
        &*sqlite,
        IncidentScope::Brand(BrandId::new("other").expect("brand")),
        Timestamp::now(),
        "bench",
    )
    .expect("declare");
    let (sessions, tokens) = start_tokens(&sqlite);
    let mut i = 0;
    g.bench_function("sqlite", |b| {
        b.iter(|| {
            i = (i + 1) % TOKENS;
            assert!(black_box(sessions.validate(&tokens[i]).expect("validate")).is_some());
        });
    });
    #[cfg(feature = "postgres")]
    if let Some(url) = std::env::var("SHOPSAFE_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        use shopsafe::store::postgres::{PgOptions, PgStore};
        let schema = format!("bench_sessions_{}", std::process::id());
        let pg = Arc::new(
            PgStore::connect(
                PgOptions::new(&url)
                    .and_then(|o| o.schema(&schema))
                    .expect("options"),
            )
            .expect("connect"),
        );
        seed_credentials(
            |ids| {
                pg.insert_credentials_bulk(
                    ids.iter()
                        .map(|a| (a, &brands[..], &h, Timestamp::from_millis(1))),
                )
                .expect("seed");
            },
            LIVE,
        );
        let mut admin = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        admin
            .batch_execute(&format!(
                "SET search_path TO \"{schema}\"; {}; ANALYZE",
                ONE_SESSION_EACH
                    .replace(
                        "{digest}",
                        "decode(md5(account) || md5(account || 'd'), 'hex')"
                    )
                    .replace("{id}", "decode(md5(account || 'i'), 'hex')")
            ))
            .expect("sessions");
        Incident::declare(
            &*pg,
            IncidentScope::Brand(BrandId::new("other").expect("brand")),
            Timestamp::now(),
            "bench",
        )
        .expect("declare");
        let (sessions, tokens) = start_tokens(&pg);
        let mut i = 0;
        g.bench_function("postgres", |b| {
            b.iter(|| {
                i = (i + 1) % TOKENS;
                assert!(black_box(sessions.validate(&tokens[i]).expect("validate")).is_some());
            });
        });
        admin
            .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .expect("drop");
    }
    g.finish();
}

fn end_incident(c: &mut Criterion) {
    const N: usize = 1_000_000;
    let mut g = c.benchmark_group("sessions/end_incident");
    g.sample_size(10).measurement_time(Duration::from_secs(30));
    let h = hash();
    let brands = [BrandId::new("shoes").expect("brand")];
    let dir = tempfile::tempdir().expect("dir");
    let template = dir.path().join("template.db");
    // Seeded on first use, so that a filter leaving this group out skips it.
    let seeded = std::cell::OnceCell::new();
    let seed = || {
        seeded.get_or_init(|| {
            let store = SqliteStore::open(&template).expect("open");
            seed_credentials(
                |ids| {
                    store
                        .insert_credentials_bulk(
                            ids.iter()
                                .map(|a| (a, &brands[..], &h, Timestamp::from_millis(1))),
                        )
                        .expect("seed");
                },
                N,
            );
            let db = rusqlite::Connection::open(&template).expect("db");
            db.execute_batch(
                &ONE_SESSION_EACH
                    .replace("{digest}", "randomblob(32)")
                    .replace("{id}", "randomblob(16)"),
            )
            .expect("sessions");
            db.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
                .expect("checkpoint");
        });
    };
    let copies = std::cell::Cell::new(0);
    g.bench_function("sqlite_1m_accounts", |b| {
        seed();
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                copies.set(copies.get() + 1);
                let path = dir.path().join(format!("copy-{}.db", copies.get()));
                std::fs::copy(&template, &path).expect("copy");
                let store = SqliteStore::open(&path).expect("open");
                let incident = Incident::declare(
                    &store,
                    IncidentScope::All,
                    Timestamp::from_millis(2),
                    "bench",
                )
                .expect("declare");
                let sessions = Sessions::new(Arc::new(store));
                let started = Instant::now();
                let ended = sessions.end_incident(incident.id).expect("end");
                total += started.elapsed();
                assert_eq!(ended, N as u64);
                drop(sessions);
                for suffix in ["", "-wal", "-shm"] {
                    std::fs::remove_file(format!("{}{suffix}", path.display())).ok();
                }
            }
            total
        });
    });
    g.finish();
}

criterion_group!(benches, validate, end_incident);
criterion_main!(benches);
