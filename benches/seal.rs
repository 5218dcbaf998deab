//! Sealed customer data, side by side in one run so figures read as ratios.
//!
//! - `seal/seal_32`, `seal/open_32`: one 32-byte field with its customer's data key
//!   unwrapped (`CustomerKeys::seal`/`open`); `seal/blind_index`: one email index.
//! - `seal/keys_1000`: one key-store read and 1,000 unwraps (`Sealer::keys`);
//!   `seal/open_all_1000`: the same plus 1,000 opens (`Sealer::open_all`), on SQLite.
//! - `login/by_account` against `login/by_email` (the blind index, a lookup of the index
//!   in the application's table, then the same login) at OWASP parameters.
//!
//! - `erasure/export_one`: one customer's export as the shop server does it (a read of
//!   their sealed row and shipments from the application's table, one key-store read,
//!   seven opens); `erasure/erase_one`: one customer erased with the ledger on (ledger
//!   append, key destruction, the key store's mark: three commits, the first two synced);
//!   `erasure/erase_bulk_1000`: 1,000 erased in one call (one transaction of each).
//!
//! `scale` (only with `SHOPSAFE_SEAL_SCALE=1`, a few minutes): seeds 1,000,000 customers
//! whose emails are sealed, runs the campaign over them once with a no-op notifier and
//! once with a notifier that opens each address through a batch lookup (one sealed-row
//! read and one key-store read per batch of 2,000), then rotates the customer-data KEK
//! and rewraps the 1,000,000 data keys, retires the old epoch and destroys it (the
//! rotate-rewrap-destroy that makes erasures final against old key-store backups), and
//! replays a ledger of 1,000 erasures against the 1,000,000 keys (a key store restored
//! from before them). Printed, not sampled: each is one long run.
//!
//! `cargo bench --bench seal`; `SHOPSAFE_SEAL_SCALE=1 cargo bench --bench seal -- scale`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

use std::cell::Cell;
use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rusqlite::{Connection, params};
use shopsafe::audit::AuditKey;
use shopsafe::card::{FileKeySource, KeySource, VaultKey, VaultKeyId};
use shopsafe::kernel::{AccountId, BrandId, Timestamp};
use shopsafe::minimize::PiiKind;
use shopsafe::password::{Hasher, Params, Password};
use shopsafe::rotation::{
    Authenticator, BrandLinks, Campaign, CampaignOptions, Delivery, InMemoryRateLimiter, Incident,
    IncidentScope, Notice, Notifier, NotifyError, ResetUrlTemplate,
};
use shopsafe::seal::{Column, Erasure, ErasureLedger, Sealed, Sealer};
use shopsafe::store::sqlite::{SqliteKeyStore, SqliteStore};

fn sealer(dir: &Path) -> (FileKeySource, Sealer<SqliteKeyStore>) {
    let keks = FileKeySource::open_or_create(
        dir.join("customer.keys"),
        &VaultKeyId::new("e1").expect("id"),
    )
    .expect("keks");
    let store = SqliteKeyStore::open(dir.join("keys.db")).expect("key store");
    let sealer = Sealer::new(store, &keks).expect("sealer");
    (keks, sealer)
}

fn email() -> Column {
    Column::new("profiles", "email", PiiKind::Email).expect("column")
}

fn account(i: usize) -> AccountId {
    AccountId::new(format!("cust-{i:08}")).expect("id")
}

fn fields(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_keks, sealer) = sealer(dir.path());
    let col = email();
    let customers: Vec<AccountId> = (0..1_000).map(account).collect();
    let keys = sealer.keys_for_sealing(&customers).expect("keys");
    let value = "jane.doe12345678@example.com.xyz";
    assert_eq!(value.len(), 32);
    let jane = &customers[0];
    let sealed = keys.seal(jane, &col, "r1", value).expect("seal");
    let rows: Vec<(AccountId, String, Sealed)> = customers
        .iter()
        .map(|c| {
            let s = keys.seal(c, &col, c.as_str(), value).expect("seal");
            (c.clone(), c.as_str().to_owned(), s)
        })
        .collect();

    let mut g = c.benchmark_group("seal");
    g.bench_function("seal_32", |b| {
        b.iter(|| keys.seal(jane, &col, "r1", black_box(value)).expect("seal"))
    });
    g.bench_function("open_32", |b| {
        b.iter(|| {
            keys.open(jane, &col, "r1", black_box(&sealed))
                .expect("open")
        })
    });
    g.bench_function("blind_index", |b| {
        b.iter(|| sealer.blind_index(&col, black_box(value)).expect("index"))
    });
    g.throughput(Throughput::Elements(1_000));
    g.bench_function("keys_1000", |b| {
        b.iter(|| sealer.keys(black_box(&customers)).expect("keys"))
    });
    g.bench_function("open_all_1000", |b| {
        b.iter(|| sealer.open_all(&col, black_box(&rows)).expect("open"))
    });
    g.finish();
}

fn login(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("login.db")).expect("open"));
    let (_keks, sealer) = sealer(dir.path());
    let col = email();
    let hasher = Arc::new(Hasher::new(Params::owasp()));
    let password = Password::new("walnut cobbler lantern river");
    let hash = hasher.hash(&password).expect("hash");
    let brands = [BrandId::new("shoes").expect("brand")];
    let ids: Vec<AccountId> = (0..10_000).map(account).collect();
    store
        .insert_credentials_bulk(
            ids.iter()
                .map(|a| (a, &brands[..], &hash, Timestamp::from_millis(1))),
        )
        .expect("seed");
    // The application's table: the sealed email and its blind index.
    let app = Connection::open(store.path()).expect("app");
    app.execute_batch(
        "CREATE TABLE profiles (id TEXT PRIMARY KEY, email BLOB, email_index BLOB UNIQUE)",
    )
    .expect("schema");
    let keys = sealer.keys_for_sealing(&ids).expect("keys");
    for a in &ids {
        let address = format!("{}@example.com", a.as_str());
        let sealed = keys.seal(a, &col, a.as_str(), &address).expect("seal");
        app.execute(
            "INSERT INTO profiles VALUES (?1, ?2, ?3)",
            params![
                a.as_str(),
                sealed.as_bytes(),
                sealer
                    .blind_index(&col, &address)
                    .expect("index")
                    .as_bytes()
            ],
        )
        .expect("insert");
    }
    drop(keys);
    let unlimited = InMemoryRateLimiter::new(u32::MAX, u32::MAX, Duration::from_secs(1));
    let auth =
        Authenticator::new(Arc::clone(&store), hasher).with_rate_limiter(Arc::new(unlimited));
    let who = account(4_242);
    let typed = format!(" CUST-{:08}@Example.com", 4_242);

    let mut g = c.benchmark_group("login");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));
    g.bench_function("by_account", |b| {
        b.iter(|| auth.login(black_box(&who), &password).expect("login"))
    });
    g.bench_function("by_email", |b| {
        b.iter(|| {
            let index = sealer
                .blind_index(&col, black_box(typed.as_str()))
                .expect("index");
            let id: String = app
                .prepare_cached("SELECT id FROM profiles WHERE email_index = ?1")
                .and_then(|mut s| s.query_row([&index.as_bytes()[..]], |r| r.get(0)))
                .expect("found");
            let id = AccountId::new(id).expect("id");
            auth.login(&id, &password).expect("login")
        })
    });
    g.finish();
}

/// Opens each notice's email from its sealed row, a batch at a time.
struct Opening<'a> {
    db: Connection,
    sealer: &'a Sealer<SqliteKeyStore>,
    col: Column,
    opened: Cell<u64>,
}

impl Notifier for Opening<'_> {
    fn send(&self, n: &Notice) -> Result<(), NotifyError> {
        self.deliver_all(std::slice::from_ref(n))
            .pop()
            .expect("outcome")
            .map(drop)
    }
    fn parallelism(&self) -> usize {
        2_000
    }
    fn deliver_all(&self, notices: &[Notice]) -> Vec<Result<Delivery, NotifyError>> {
        let (low, high) = (&notices[0].account, &notices[notices.len() - 1].account);
        let mut stmt = self
            .db
            .prepare_cached("SELECT id, email FROM profiles WHERE id BETWEEN ?1 AND ?2")
            .expect("prepare");
        let mut sealed: HashMap<String, Vec<u8>> = stmt
            .query_map(params![low.as_str(), high.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        let rows: Vec<(AccountId, String, Sealed)> = notices
            .iter()
            .map(|n| {
                let bytes = sealed.remove(n.account.as_str()).expect("a row");
                (
                    n.account.clone(),
                    n.account.as_str().to_owned(),
                    Sealed::from_bytes(&bytes).expect("sealed"),
                )
            })
            .collect();
        let opened = self.sealer.open_all(&self.col, &rows).expect("open");
        opened
            .into_iter()
            .map(|o| {
                black_box(o.expect("opens"));
                self.opened.set(self.opened.get() + 1);
                Ok(Delivery::Accepted)
            })
            .collect()
    }
}

fn scale(c: &mut Criterion) {
    if std::env::var_os("SHOPSAFE_SEAL_SCALE").is_none() {
        return;
    }
    let _ = c;
    const N: usize = 1_000_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("customers.db")).expect("open");
    let (keks, sealer) = sealer(dir.path());
    let col = email();
    let brands = [BrandId::new("shoes").expect("brand")];
    let hash = Hasher::new(Params::insecure_for_tests(64, 1, 1).expect("params"))
        .hash(&Password::new("x"))
        .expect("hash");
    let app = Connection::open(store.path()).expect("app");
    app.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE profiles (id TEXT PRIMARY KEY, email BLOB)",
    )
    .expect("schema");
    let started = Instant::now();
    for chunk in (0..N).collect::<Vec<_>>().chunks(10_000) {
        let ids: Vec<AccountId> = chunk.iter().map(|i| account(*i)).collect();
        store
            .insert_credentials_bulk(
                ids.iter()
                    .map(|a| (a, &brands[..], &hash, Timestamp::from_millis(1))),
            )
            .expect("seed");
        let keys = sealer.keys_for_sealing(&ids).expect("keys");
        let tx = app.unchecked_transaction().expect("tx");
        for a in &ids {
            let s = keys
                .seal(a, &col, a.as_str(), &format!("{}@example.com", a.as_str()))
                .expect("seal");
            tx.execute(
                "INSERT INTO profiles VALUES (?1, ?2)",
                params![a.as_str(), s.as_bytes()],
            )
            .expect("insert");
        }
        tx.commit().expect("commit");
    }
    println!(
        "scale: seeded {N} sealed customers in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let links = BrandLinks::new().brand(
        brands[0].clone(),
        ResetUrlTemplate::new("https://shoes.example/reset?t={token}").expect("url"),
    );
    let run = |notifier: &dyn Notifier| {
        let incident = Incident::declare(&store, IncidentScope::All, Timestamp::now(), "bench")
            .expect("declare");
        let started = Instant::now();
        let report = Campaign::new(&store, &links)
            .run(&incident, notifier, CampaignOptions::new())
            .expect("run");
        assert_eq!(report.sent_total, N as u64);
        started.elapsed()
    };
    let noop = |_: &Notice| -> Result<(), NotifyError> { Ok(()) };
    let plain = run(&noop);
    let opening = Opening {
        db: Connection::open(store.path()).expect("db"),
        sealer: &sealer,
        col: col.clone(),
        opened: Cell::new(0),
    };
    let sealed = run(&opening);
    assert_eq!(opening.opened.get(), N as u64);
    let rate = |d: Duration| N as f64 / d.as_secs_f64();
    println!(
        "scale: campaign over {N}: no-op notifier {:.0} notices/s; opening each sealed email {:.0} notices/s ({:.2}x)",
        rate(plain),
        rate(sealed),
        plain.as_secs_f64() / sealed.as_secs_f64()
    );
    // The KEK rotation: a new epoch, a sealer over it, and the rewrap of every data key.
    drop(opening);
    let store_back = sealer.into_store();
    keks.add(
        &VaultKeyId::new("e2").expect("id"),
        &VaultKey::generate().expect("key"),
    )
    .expect("new epoch");
    let sealer = Sealer::new(store_back, &keks).expect("sealer");
    let started = Instant::now();
    let mut batches = 0u64;
    let report = sealer.rewrap(10_000, |_| batches += 1).expect("rewrap");
    let took = started.elapsed();
    // Every data key, and the index keys (the tombstones' among them).
    assert_eq!(report.rewrapped, report.to_do);
    assert!(report.rewrapped >= N as u64, "every data key");
    println!(
        "scale: rewrapped {} keys under a new KEK in {:.1} s ({:.0} keys/s, {batches} batches)",
        report.rewrapped,
        took.as_secs_f64(),
        report.rewrapped as f64 / took.as_secs_f64()
    );
    let retiring = Instant::now();
    sealer
        .retire_kek(&keks, &VaultKeyId::new("e1").expect("id"))
        .expect("retire");
    println!(
        "scale: rotate-rewrap-destroy over {N} data keys: {:.1} s (retire and destroy {:.1} ms)",
        (took + retiring.elapsed()).as_secs_f64(),
        retiring.elapsed().as_secs_f64() * 1e3
    );
    // A key store 1,000 erasures behind its ledger (restored from before them): the
    // replay scans every customer of the key store once.
    let ledger = ErasureLedger::new(
        SqliteStore::open(dir.path().join("ledger.db")).expect("ledger"),
        &AuditKey::generate().expect("key"),
    );
    let erased: Vec<AccountId> = (0..N).step_by(N / 1_000).map(account).collect();
    ledger.record(&erased, &Erasure::new()).expect("record");
    let sealer = sealer.with_ledger(ledger).expect("ledger");
    let started = Instant::now();
    let replay = sealer.replay(10_000, |_| {}).expect("replay");
    assert_eq!((replay.entries, replay.destroyed), (1_000, 1_000));
    println!(
        "scale: replayed {} erasures against {N} data keys in {:.2} s",
        replay.entries,
        started.elapsed().as_secs_f64()
    );
}

fn erasure(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_keks, sealer) = sealer(dir.path());
    let customers = SqliteStore::open(dir.path().join("customers.db")).expect("store");
    let app = Connection::open(customers.path()).expect("app");
    let ledger = ErasureLedger::new(customers, &AuditKey::generate().expect("key"));
    let sealer = sealer.with_ledger(ledger).expect("ledger");
    let what = Erasure::new()
        .erased("profile")
        .and_then(|e| e.retained("orders without personal data", "tax law"))
        .expect("erasure");
    // One customer's sealed row (email, name, phone, home) and three shipments.
    let cols: Vec<Column> = [
        ("email", PiiKind::Email),
        ("name", PiiKind::PersonName),
        ("phone", PiiKind::Phone),
        ("home", PiiKind::PostalAddress),
        ("ship_to", PiiKind::PostalAddress),
    ]
    .iter()
    .map(|(n, k)| Column::new("shop", n, *k).expect("column"))
    .collect();
    app.execute_batch(
        "CREATE TABLE shop (account TEXT, col INTEGER, record TEXT, sealed BLOB);
         CREATE INDEX shop_by_account ON shop (account);",
    )
    .expect("schema");
    let jane = account(0);
    let values = [
        "jane.doe@example.com",
        "Jane Doe",
        "+442079460000",
        "1 Main St, Wexford",
        "2 Side St, Cork",
        "3 Back Lane, Galway",
        "4 Quay, Dublin",
    ];
    let keys = sealer
        .keys_for_sealing(std::slice::from_ref(&jane))
        .expect("keys");
    for (i, v) in values.iter().enumerate() {
        let col = &cols[i.min(4)];
        let record = format!("r{i}");
        let sealed = keys.seal(&jane, col, &record, *v).expect("seal");
        app.execute(
            "INSERT INTO shop VALUES (?1, ?2, ?3, ?4)",
            params![
                jane.as_str(),
                i64::try_from(i.min(4)).expect("column"),
                record,
                sealed.as_bytes()
            ],
        )
        .expect("insert");
    }
    drop(keys);
    let next = Cell::new(1usize);
    let fresh = |n: u64| -> Vec<AccountId> {
        let n = usize::try_from(n).expect("iterations");
        let ids: Vec<AccountId> = (0..n).map(|i| account(next.get() + i)).collect();
        next.set(next.get() + n);
        for chunk in ids.chunks(10_000) {
            sealer.keys_for_sealing(chunk).expect("keys");
        }
        ids
    };

    let mut g = c.benchmark_group("erasure");
    g.sample_size(20);
    g.bench_function("export_one", |b| {
        b.iter(|| {
            let rows: Vec<(i64, String, Vec<u8>)> = app
                .prepare_cached("SELECT col, record, sealed FROM shop WHERE account = ?1")
                .and_then(|mut st| {
                    st.query_map([jane.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                        .collect()
                })
                .expect("rows");
            let keys = sealer.keys(std::slice::from_ref(&jane)).expect("keys");
            let opened: Vec<_> = rows
                .iter()
                .map(|(col, record, bytes)| {
                    let sealed = Sealed::from_bytes(bytes).expect("sealed");
                    keys.open(
                        &jane,
                        &cols[usize::try_from(*col).expect("column")],
                        record,
                        &sealed,
                    )
                    .expect("open")
                })
                .collect();
            assert_eq!(opened.len(), 7);
            opened
        })
    });
    g.bench_function("erase_one", |b| {
        b.iter_custom(|iters| {
            let ids = fresh(iters);
            let started = Instant::now();
            for id in &ids {
                sealer
                    .erase(std::slice::from_ref(id), &what, 1, |_| {})
                    .expect("erase");
            }
            started.elapsed()
        })
    });
    g.throughput(Throughput::Elements(1_000));
    g.bench_function("erase_bulk_1000", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let ids = fresh(1_000);
                let started = Instant::now();
                let n = sealer.erase(&ids, &what, 1_000, |_| {}).expect("erase");
                total += started.elapsed();
                assert_eq!(n, 1_000);
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, fields, login, erasure, scale);
criterion_main!(benches);
