//! The erasure ledger against a restore of the key store from a backup taken before an
//! erasure: the key store refuses to open anything while it is behind the ledger, a
//! replay destroys the listed keys again, and the erased customer stays unreadable; on
//! SQLite (the key store's file copied back) and on PostgreSQL (its schema dumped with
//! `pg_dump` and restored with `pg_restore`, against `SHOPSAFE_PG_URL`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here
#![cfg(feature = "sqlite")]

#[path = "support/servers.rs"]
#[allow(dead_code)]
mod servers;

use shopsafe::audit::AuditKey;
use shopsafe::card::{FileKeySource, VaultKeyId};
use shopsafe::kernel::AccountId;
use shopsafe::minimize::PiiKind;
use shopsafe::seal::{
    Column, Erasure, ErasureLedger, Error, KeyStore, LedgerStore, Sealed, Sealer,
};

fn id(s: &str) -> AccountId {
    AccountId::new(s).expect("id")
}

fn erasure() -> Erasure {
    Erasure::new()
        .erased("profile")
        .and_then(|e| e.retained("orders without personal data", "tax law: 10 years"))
        .expect("erasure")
}

/// The whole story, over any key store and ledger: `backup` and `restore` act on the
/// key store only (the customer database, with the ledger, stays current).
fn restore_then_replay<K: KeyStore + 'static, L: LedgerStore + Clone + 'static>(
    open_keys: &dyn Fn() -> K,
    ledger_store: L,
    backup: &dyn Fn(),
    restore: &dyn Fn(),
    dir: &std::path::Path,
    restore_under_a_running_server: bool,
) {
    let keks =
        FileKeySource::open_or_create(dir.join("c.keys"), &VaultKeyId::new("e1").expect("id"))
            .expect("keks");
    let key = AuditKey::generate().expect("key");
    let sealer = |keys: K| {
        Sealer::new(keys, &keks)
            .and_then(|s| s.with_ledger(ErasureLedger::new(ledger_store.clone(), &key)))
            .expect("sealer")
    };
    let email = Column::new("profiles", "email", PiiKind::Email).expect("column");
    let s = sealer(open_keys());
    let seal = |s: &Sealer<K>, who: &str| -> Sealed {
        s.seal(&id(who), &email, who, &format!("{who}@example.com"))
            .expect("seal")
    };
    let (jane, omar) = (seal(&s, "jane"), seal(&s, "omar"));
    drop(s);
    backup();

    // After the backup: a customer made, and two erased (one only known since).
    let s = sealer(open_keys());
    let late = seal(&s, "late");
    let destroyed = s
        .erase(&[id("jane"), id("late")], &erasure(), 10, |_| {})
        .expect("erase");
    assert_eq!(destroyed, 2);
    assert!(matches!(
        s.open(&id("jane"), &email, "jane", &jane),
        Err(Error::Erased)
    ));
    assert_eq!(
        s.open(&id("omar"), &email, "omar", &omar)
            .expect("open")
            .expose(),
        "omar@example.com"
    );
    let shipped = s
        .ledger()
        .expect("ledger")
        .checkpoint()
        .expect("checkpoint");
    assert_eq!(shipped.records, 2);
    let running = restore_under_a_running_server.then_some(s);

    // The key store comes back from the backup: jane's key is in it again.
    restore();
    if let Some(running) = running {
        // The server that did the erasures, still running, sees the store go back.
        assert!(matches!(
            running.open(&id("omar"), &email, "omar", &omar),
            Err(Error::BehindLedger { entries: 2 })
        ));
    }
    let s = sealer(open_keys());
    for (who, sealed) in [("jane", &jane), ("omar", &omar)] {
        assert!(
            matches!(
                s.open(&id(who), &email, who, sealed),
                Err(Error::BehindLedger { entries: 2 })
            ),
            "{who}: nothing opens while the key store is behind"
        );
    }
    assert!(matches!(
        s.seal(&id("new"), &email, "new", "new@example.com"),
        Err(Error::BehindLedger { .. })
    ));
    assert!(
        matches!(s.rewrap(100, |_| {}), Err(Error::BehindLedger { .. })),
        "no rotation carries an erased customer's key forward"
    );
    // A process that was already running when the store was restored refuses too.

    // A replay cut off after its first page (a crash: here a panic in the progress
    // callback) has destroyed what it reached and applied nothing else: the store
    // still refuses; the next replay does the rest.
    let cut = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        s.replay(1, |_| panic!("cut off"))
    }));
    assert!(cut.is_err());
    assert!(matches!(
        s.open(&id("omar"), &email, "omar", &omar),
        Err(Error::BehindLedger { entries: 1 })
    ));
    let report = s.replay(1, |_| {}).expect("replay");
    assert_eq!(
        (report.entries, report.destroyed),
        (1, 0),
        "jane's key went in the cut-off run; late's entry is applied now"
    );
    assert!(matches!(
        s.open(&id("jane"), &email, "jane", &jane),
        Err(Error::Erased)
    ));
    assert!(matches!(
        s.open(&id("late"), &email, "late", &late),
        Err(Error::Erased)
    ));
    assert_eq!(
        s.open(&id("omar"), &email, "omar", &omar)
            .expect("open")
            .expose(),
        "omar@example.com"
    );
    // The id erased after the backup (its key never in it) gets no new key either.
    assert!(matches!(
        s.seal(&id("late"), &email, "late", "late@example.com"),
        Err(Error::Erased)
    ));
    // Replaying again finds nothing to do; the ledger checks against what was shipped.
    assert_eq!(s.replay(1, |_| {}).expect("again").entries, 0);
    let verified = s
        .ledger()
        .expect("ledger")
        .verify(&[shipped])
        .expect("verify");
    assert_eq!(verified.entries, 2);
    drop(s);

    // A restart on the replayed store opens at once.
    let s = sealer(open_keys());
    assert!(s.open(&id("omar"), &email, "omar", &omar).is_ok());
}

/// Two servers erasing at once, and an erasure cut off after its ledger entry (a crash
/// between the two writes): afterwards nothing is left behind that a replay does not
/// finish, and every erased customer reads as erased.
fn two_servers_and_a_crash<K: KeyStore + 'static, L: LedgerStore + Clone + 'static>(
    keys: std::sync::Arc<K>,
    ledger_store: L,
    dir: &std::path::Path,
) {
    let keks =
        FileKeySource::open_or_create(dir.join("c.keys"), &VaultKeyId::new("e1").expect("id"))
            .expect("keks");
    let key = AuditKey::generate().expect("key");
    let email = Column::new("profiles", "email", PiiKind::Email).expect("column");
    let server_with = |in_flight: std::time::Duration| {
        Sealer::new(std::sync::Arc::clone(&keys), &keks)
            .and_then(|s| {
                s.with_ledger(ErasureLedger::new(ledger_store.clone(), &key).in_flight(in_flight))
            })
            .expect("sealer")
    };
    let server = || server_with(std::time::Duration::from_secs(300));
    let first = server();
    let ids: Vec<AccountId> = (0..60).map(|i| id(&format!("c{i:02}"))).collect();
    let sealed: Vec<Sealed> = ids
        .iter()
        .map(|c| {
            first
                .seal(c, &email, c.as_str(), "someone@example.com")
                .expect("seal")
        })
        .collect();
    let (a, b) = (server(), server());
    std::thread::scope(|scope| {
        for (sealer, half) in [(&a, &ids[..25]), (&b, &ids[25..50])] {
            scope.spawn(move || {
                for c in half {
                    sealer
                        .erase(std::slice::from_ref(c), &erasure(), 1, |_| {})
                        .expect("erase");
                }
            });
        }
    });
    // Both are done: neither refuses, nor does a server started now.
    for s in [&a, &b, &server()] {
        assert!(
            s.open(&ids[55], &email, ids[55].as_str(), &sealed[55])
                .is_ok()
        );
        assert!(matches!(
            s.open(&ids[0], &email, ids[0].as_str(), &sealed[0]),
            Err(Error::Erased)
        ));
    }
    // A crash after the ledger entry, before the keys were destroyed (or an erasure
    // still under way on another server): a running server that erases after it is not
    // refused for it, since it never saw it applied.
    ErasureLedger::new(ledger_store.clone(), &key)
        .record(&ids[50..52], &erasure())
        .expect("entry");
    a.erase(&ids[52..53], &erasure(), 1, |_| {}).expect("erase");
    assert!(
        a.open(&ids[55], &email, ids[55].as_str(), &sealed[55])
            .is_ok()
    );
    // A server started now finds them in the ledger, unapplied: past the in-flight
    // window (here made zero) it refuses until a replay has finished them.
    let early = server();
    assert!(
        early
            .open(&ids[55], &email, ids[55].as_str(), &sealed[55])
            .is_ok(),
        "within the window they may be under way"
    );
    let after_crash = server_with(std::time::Duration::ZERO);
    assert!(matches!(
        after_crash.open(&ids[55], &email, ids[55].as_str(), &sealed[55]),
        Err(Error::BehindLedger { entries: 2 })
    ));
    let replay = after_crash.replay(7, |_| {}).expect("replay");
    // Read from the store's mark on: the two cut off, and the one after them (applied,
    // but above the mark, which stopped at the gap).
    assert_eq!((replay.entries, replay.destroyed), (3, 2));
    for (i, c) in ids.iter().enumerate() {
        let opened = after_crash.open(c, &email, c.as_str(), &sealed[i]);
        assert_eq!(
            matches!(opened, Err(Error::Erased)),
            i < 53,
            "{i}: {opened:?}"
        );
    }
    let verified = after_crash
        .ledger()
        .expect("ledger")
        .verify(&[])
        .expect("verify");
    assert_eq!(verified.entries, 53);
}

#[test]
fn two_sqlite_servers_erasing_at_once_and_a_crash_leave_nothing_behind() {
    use shopsafe::store::sqlite::{SqliteKeyStore, SqliteStore};
    let dir = tempfile::tempdir().expect("dir");
    let customers =
        std::sync::Arc::new(SqliteStore::open(dir.path().join("customers.db")).expect("store"));
    let keys = std::sync::Arc::new(SqliteKeyStore::open(dir.path().join("keys.db")).expect("keys"));
    two_servers_and_a_crash(keys, customers, dir.path());
}

#[cfg(feature = "postgres")]
#[test]
fn two_postgres_servers_erasing_at_once_and_a_crash_leave_nothing_behind() {
    use shopsafe::store::postgres::{PgKeyStore, PgOptions, PgStore};
    let Some(url) = servers::server_env(
        "two_postgres_servers_erasing_at_once_and_a_crash_leave_nothing_behind",
        "SHOPSAFE_PG_URL",
        "SHOPSAFE_REQUIRE_PG",
        "set SHOPSAFE_PG_URL (e.g. `bash .ci/pg-start`) to run it",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let schema = servers::unique("ledger2");
    let options = |s: &str| {
        PgOptions::new(&url)
            .and_then(|o| o.schema(s))
            .expect("options")
    };
    let customers = std::sync::Arc::new(PgStore::connect(options(&schema)).expect("store"));
    let keys =
        std::sync::Arc::new(PgKeyStore::connect(options(&format!("{schema}_keys"))).expect("keys"));
    two_servers_and_a_crash(keys, customers, dir.path());
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    admin
        .batch_execute(&format!(
            "DROP SCHEMA \"{schema}\" CASCADE; DROP SCHEMA \"{schema}_keys\" CASCADE"
        ))
        .expect("clean up");
}

#[test]
fn a_sqlite_key_store_restored_from_before_an_erasure_refuses_until_replayed() {
    use shopsafe::store::sqlite::{SqliteKeyStore, SqliteStore};
    let dir = tempfile::tempdir().expect("dir");
    let keys = dir.path().join("keys.db");
    let saved = dir.path().join("keys.backup");
    let customers =
        std::sync::Arc::new(SqliteStore::open(dir.path().join("customers.db")).expect("store"));
    // Every connection is closed when the sealer drops, so the file is whole.
    let backup = || {
        std::fs::copy(&keys, &saved).expect("backup");
    };
    let restore = || {
        for tail in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.path().join(format!("keys.db{tail}")));
        }
        std::fs::copy(&saved, &keys).expect("restore");
    };
    restore_then_replay(
        &|| SqliteKeyStore::open(&keys).expect("keys"),
        customers,
        &backup,
        &restore,
        dir.path(),
        false,
    );
}

#[test]
fn a_ledger_edited_cut_or_from_elsewhere_does_not_check() {
    use shopsafe::store::sqlite::{SqliteKeyStore, SqliteStore};
    let dir = tempfile::tempdir().expect("dir");
    let customers =
        std::sync::Arc::new(SqliteStore::open(dir.path().join("customers.db")).expect("store"));
    let key = AuditKey::generate().expect("key");
    let ledger = ErasureLedger::new(customers.clone(), &key).checkpoint_every(2);
    let ids: Vec<AccountId> = (0..5).map(|i| id(&format!("c{i}"))).collect();
    let entries = ledger.record(&ids, &erasure()).expect("record");
    assert_eq!(
        entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert_ne!(entries[0].customer, ledger.digest(&ids[1]));
    let shipped = ledger.checkpoint().expect("checkpoint");
    // One kept beside it (a call keeps at most one: at 4, the last due) and the
    // shipped one.
    assert_eq!(ledger.verify(&[shipped]).expect("verify").checkpoints, 2);
    // Under another key, nothing checks.
    let other = ErasureLedger::new(customers.clone(), &AuditKey::generate().expect("key"));
    assert!(matches!(other.verify(&[]), Err(Error::LedgerBroken { .. })));
    // An entry edited in the database (what was retained), then the last one dropped.
    let c = rusqlite::Connection::open(customers.path()).expect("open");
    c.execute("UPDATE erasure_ledger SET retained = '' WHERE seq = 3", [])
        .expect("edit");
    assert!(matches!(
        ledger.verify(&[]),
        Err(Error::LedgerBroken { seq: 3 })
    ));
    c.execute(
        "UPDATE erasure_ledger SET retained = ?1 WHERE seq = 3",
        [entries[2].retained_text()],
    )
    .expect("undo");
    ledger.verify(&[shipped]).expect("whole again");
    c.execute("DELETE FROM erasure_ledger WHERE seq = 5", [])
        .expect("cut");
    assert!(matches!(
        ledger.verify(&[shipped]),
        Err(Error::LedgerCut {
            checkpoint: 5,
            entries: 4
        })
    ));
    // A key store marked by this ledger, opened with another ledger (another
    // deployment's customer database): refused, not replayed.
    let keks = FileKeySource::open_or_create(
        dir.path().join("c.keys"),
        &VaultKeyId::new("e1").expect("id"),
    )
    .expect("keks");
    let keys = SqliteKeyStore::open(dir.path().join("keys.db")).expect("keys");
    keys.reset_ledger_mark(Some((4, entries[3].mac)))
        .expect("mark");
    let elsewhere = SqliteStore::open(dir.path().join("elsewhere.db")).expect("store");
    let stranger = ErasureLedger::new(elsewhere, &key);
    stranger.record(&ids, &erasure()).expect("record");
    let sealer = Sealer::new(keys, &keks)
        .and_then(|s| s.with_ledger(stranger))
        .expect("sealer");
    assert!(matches!(
        sealer.replay(10, |_| {}),
        Err(Error::LedgerBroken { seq: 4 })
    ));
}

#[cfg(feature = "postgres")]
#[test]
fn a_postgres_key_store_restored_from_before_an_erasure_refuses_until_replayed() {
    use shopsafe::store::postgres::{PgKeyStore, PgOptions, PgStore};
    let Some(url) = servers::server_env(
        "a_postgres_key_store_restored_from_before_an_erasure_refuses_until_replayed",
        "SHOPSAFE_PG_URL",
        "SHOPSAFE_REQUIRE_PG",
        "set SHOPSAFE_PG_URL (e.g. `bash .ci/pg-start`) to run it",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let schema = servers::unique("ledger");
    let keys_schema = format!("{schema}_keys");
    let options = |s: &str| {
        PgOptions::new(&url)
            .and_then(|o| o.schema(s))
            .expect("options")
    };
    let customers = std::sync::Arc::new(PgStore::connect(options(&schema)).expect("store"));
    let dump = dir.path().join("keys.dump");
    let tool = |name: &str| -> std::path::PathBuf {
        // The server's own tools (the version it runs), else the ones on PATH.
        std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|d| d.path().join("bin").join(name))
            .filter(|p| p.exists())
            .max()
            .unwrap_or_else(|| name.into())
    };
    let run = |cmd: &mut std::process::Command| {
        let out = cmd.output().expect("run a PostgreSQL tool");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let backup = || {
        run(std::process::Command::new(tool("pg_dump"))
            .args(["--format=custom", "--schema", &keys_schema, "--file"])
            .arg(&dump)
            .args(["--dbname", &url]));
    };
    let restore = || {
        let mut admin = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        admin
            .batch_execute(&format!("DROP SCHEMA \"{keys_schema}\" CASCADE"))
            .expect("drop the live key store");
        run(std::process::Command::new(tool("pg_restore"))
            .args(["--dbname", &url])
            .arg(&dump));
    };
    restore_then_replay(
        &|| PgKeyStore::connect(options(&keys_schema)).expect("keys"),
        customers,
        &backup,
        &restore,
        dir.path(),
        true,
    );
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    admin
        .batch_execute(&format!(
            "DROP SCHEMA \"{schema}\" CASCADE; DROP SCHEMA \"{keys_schema}\" CASCADE"
        ))
        .expect("clean up");
}

#[test]
fn a_customer_database_restored_from_before_the_key_store_is_a_cut_to_accept() {
    use shopsafe::store::sqlite::{SqliteKeyStore, SqliteStore};
    let dir = tempfile::tempdir().expect("dir");
    let customers =
        std::sync::Arc::new(SqliteStore::open(dir.path().join("customers.db")).expect("store"));
    let keks = FileKeySource::open_or_create(
        dir.path().join("c.keys"),
        &VaultKeyId::new("e1").expect("id"),
    )
    .expect("keks");
    let key = AuditKey::generate().expect("key");
    let sealer = Sealer::new(
        SqliteKeyStore::open(dir.path().join("keys.db")).expect("keys"),
        &keks,
    )
    .and_then(|s| s.with_ledger(ErasureLedger::new(customers.clone(), &key)))
    .expect("sealer");
    let email = Column::new("profiles", "email", PiiKind::Email).expect("column");
    let (a, b, c) = (id("a"), id("b"), id("c"));
    let sealed: Vec<Sealed> = [&a, &b, &c]
        .iter()
        .map(|x| sealer.seal(x, &email, "r", "x@example.com").expect("seal"))
        .collect();
    sealer
        .erase(std::slice::from_ref(&a), &erasure(), 1, |_| {})
        .expect("erase");
    sealer
        .erase(std::slice::from_ref(&b), &erasure(), 1, |_| {})
        .expect("erase");
    // The customer database comes back from between the two erasures: the ledger (and
    // what it saw applied) ends at the first.
    let db = rusqlite::Connection::open(customers.path()).expect("open");
    db.execute_batch(
        "DELETE FROM erasure_ledger WHERE seq = 2; UPDATE erasure_ledger_applied SET seq = 1;",
    )
    .expect("an older customer database");
    assert!(matches!(
        sealer.open(&c, &email, "r", &sealed[2]),
        Err(Error::LedgerCut {
            checkpoint: 2,
            entries: 1
        })
    ));
    assert!(matches!(
        sealer.replay(10, |_| {}),
        Err(Error::LedgerCut { .. })
    ));
    // The operator accepts it: b stays erased (its key is gone), c opens again, and a
    // new erasure takes the next place in the ledger.
    assert_eq!(sealer.accept_ledger_cut().expect("accept"), 1);
    assert!(sealer.open(&c, &email, "r", &sealed[2]).is_ok());
    assert!(matches!(
        sealer.open(&b, &email, "r", &sealed[1]),
        Err(Error::Erased)
    ));
    sealer
        .erase(std::slice::from_ref(&c), &erasure(), 1, |_| {})
        .expect("erase");
    assert!(matches!(
        sealer.open(&c, &email, "r", &sealed[2]),
        Err(Error::Erased)
    ));
    assert_eq!(
        sealer
            .ledger()
            .expect("ledger")
            .verify(&[])
            .expect("verify")
            .entries,
        2
    );
}
