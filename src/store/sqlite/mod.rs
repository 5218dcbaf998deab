//! SQLite stores (bundled SQLite): [`SqliteStore`] for the customer side, [`SqliteVault`]
//! for sealed card numbers, each in a file of its own.
//!
//! Opened in WAL mode with `synchronous = NORMAL` (a power loss can lose the last
//! commits but never corrupts), a 5 s busy timeout, and versioned migrations tracked in
//! `PRAGMA user_version`. Each file is marked with its kind in `PRAGMA application_id`,
//! and each store refuses the other's file: the vault can never be opened on the customer
//! database by a configuration slip. Several processes may open the same file; each store
//! keeps a small pool of connections, so threads do not serialize on one.

mod customer;
mod keys;
mod vault;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

pub use customer::SqliteStore;
pub use keys::SqliteKeyStore;
pub use vault::SqliteVault;

use super::rows::{to_i64, to_u64};
use crate::persist::StoreError;

/// `PRAGMA application_id` of a customer database: "SSCU".
const CUSTOMER_APPLICATION_ID: i32 = 0x5353_4355;
/// `PRAGMA application_id` of a vault database: "SSVT".
const VAULT_APPLICATION_ID: i32 = 0x5353_5654;
/// `PRAGMA application_id` of a customer key store: "SSKY".
const KEYS_APPLICATION_ID: i32 = 0x5353_4B59;
const MAX_IDLE_CONNECTIONS: usize = 8;

/// What a store expects of its file.
struct Schema {
    /// "customer" or "vault", for error messages.
    kind: &'static str,
    application_id: i32,
    migrations: &'static [&'static str],
    /// Whether the file must hold nothing but this store (the vault).
    dedicated: bool,
}

/// One database file and a few idle connections to it.
#[derive(Debug)]
struct Pool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Pool {
    /// Opens (creating if needed), checks the file's kind, and migrates.
    fn open(path: &Path, schema: &Schema) -> Result<Self, StoreError> {
        create_private(path)?;
        let mut conn = connect(path)?;
        claim(&mut conn, path, schema)?;
        migrate(&mut conn, schema.migrations)?;
        Ok(Self {
            path: path.to_path_buf(),
            idle: Mutex::new(vec![conn]),
        })
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn schema_version(&self) -> Result<i64, StoreError> {
        self.with(|c| {
            c.pragma_query_value(None, "user_version", |r| r.get(0))
                .map_err(be("read schema version"))
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_any(f)
    }

    /// [`Self::with`] for work whose error wraps the store's (the audit trail's).
    fn with_any<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => connect(&self.path)?,
        };
        let result = f(&mut conn);
        // A connection left inside a transaction (a panic mid-way) is dropped, not reused.
        if conn.is_autocommit() {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < MAX_IDLE_CONNECTIONS {
                idle.push(conn);
            }
        }
        result
    }
}

/// Creates the database file with mode 0600 if it does not exist yet: SQLite would create
/// it with the process umask (usually 0644, readable by every local user), and its `-wal`
/// and `-shm` files take the main file's mode. An existing file keeps its mode.
fn create_private(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Backend {
            operation: "create database file",
            source: Box::new(e),
        }),
    }
}

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(be("open database"))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(be("set busy timeout"))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(be("enable WAL"))?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(be("set synchronous"))?;
    conn.pragma_update(None, "cache_size", -16_384)
        .map_err(be("set cache size"))?;
    // Checkpoint a twentieth as often as SQLite's default (1,000 pages; the WAL grows to
    // about 80 MiB): a page that the next batches dirty again (the vault's fingerprint
    // index takes random inserts) is copied to the main file once, not once per batch.
    // A 1M-card import: 80,000 cards/s with the last tenth at 60,000/s, against 53,000
    // and 38,000/s at the default. A bigger page cache changed little.
    conn.pragma_update(None, "wal_autocheckpoint", 20_000)
        .map_err(be("set checkpoint interval"))?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// Checks that the file is of this store's kind (or new), and marks it so.
fn claim(conn: &mut Connection, path: &Path, schema: &Schema) -> Result<(), StoreError> {
    let tx = begin(conn, "begin claim of database")?;
    let id: i32 = tx
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(be("read application id"))?;
    let wrong = |found| StoreError::WrongDatabase {
        path: path.display().to_string(),
        expected: schema.kind,
        found,
    };
    match id {
        x if x == schema.application_id => return Ok(()),
        CUSTOMER_APPLICATION_ID => return Err(wrong("shopsafe customer data")),
        VAULT_APPLICATION_ID => return Err(wrong("a shopsafe card vault")),
        KEYS_APPLICATION_ID => return Err(wrong("a shopsafe customer key store")),
        0 => {}
        _ => return Err(wrong("another application's data")),
    }
    if schema.dedicated {
        let tables: i64 = tx
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'",
                [],
                |r| r.get(0),
            )
            .map_err(be("list tables"))?;
        if tables > 0 {
            return Err(wrong("other tables"));
        }
    }
    tx.pragma_update(None, "application_id", schema.application_id)
        .map_err(be("set application id"))?;
    tx.commit().map_err(be("commit claim of database"))
}

fn migrate(conn: &mut Connection, migrations: &[&str]) -> Result<(), StoreError> {
    let tx = begin(conn, "begin migration")?;
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(be("read schema version"))?;
    let supported = i64::try_from(migrations.len()).unwrap_or(i64::MAX);
    if version > supported {
        return Err(StoreError::SchemaTooNew {
            found: version,
            supported,
        });
    }
    for (i, sql) in migrations
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        tx.execute_batch(sql).map_err(be("apply migration"))?;
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(i + 1).unwrap_or(i64::MAX),
        )
        .map_err(be("set schema version"))?;
    }
    tx.commit().map_err(be("commit migration"))
}

/// An immediate transaction: it takes the write lock at once, so two writers queue on the
/// busy timeout instead of failing later with a lock upgrade error.
fn begin<'c>(
    conn: &'c mut Connection,
    operation: &'static str,
) -> Result<Transaction<'c>, StoreError> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(be(operation))
}

fn be(operation: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| StoreError::Backend {
        operation,
        source: Box::new(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn database_files_and_their_wal_are_private_to_their_owner() {
        use std::os::unix::fs::PermissionsExt;

        use crate::kernel::{AccountId, Timestamp};
        use crate::rotation::{CredentialStore, SecurityStamp};
        let dir = tempfile::tempdir().expect("temp dir");
        let (customers, vault) = (dir.path().join("customers.db"), dir.path().join("vault.db"));
        let store = SqliteStore::open(&customers).expect("customer db");
        let _vault = SqliteVault::open(&vault).expect("vault db");
        let hash = crate::password::PasswordHash::parse(
            "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$ZxzuUbUsq8PBrbsMvrjJfDQuNcnfiFnVL9F9sIKTZAI",
        )
        .expect("phc");
        store
            .insert_credential(
                &AccountId::new("jane").expect("id"),
                &[],
                &hash,
                &SecurityStamp::from_bytes([1; 16]),
                Timestamp::from_millis(1),
            )
            .expect("a write, so the WAL exists");
        let wal = dir.path().join("customers.db-wal");
        assert!(wal.exists());
        for file in [customers, vault, wal] {
            let mode = std::fs::metadata(&file).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        }
    }

    #[test]
    fn each_store_refuses_the_others_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (customers, vault) = (dir.path().join("customers.db"), dir.path().join("vault.db"));
        drop(SqliteStore::open(&customers).expect("customer db"));
        drop(SqliteVault::open(&vault).expect("vault db"));
        let err = SqliteVault::open(&customers).expect_err("vault on the customer file");
        assert!(
            matches!(
                err,
                StoreError::WrongDatabase {
                    expected: "vault",
                    ..
                }
            ),
            "{err:?}"
        );
        let err = SqliteStore::open(&vault).expect_err("customer store on the vault file");
        assert!(
            matches!(
                err,
                StoreError::WrongDatabase {
                    expected: "customer",
                    ..
                }
            ),
            "{err:?}"
        );
        // An unmarked file with tables of its own is no place for a vault.
        let other = dir.path().join("app.db");
        Connection::open(&other)
            .and_then(|c| c.execute_batch("CREATE TABLE orders (id INTEGER)"))
            .expect("app db");
        assert!(matches!(
            SqliteVault::open(&other),
            Err(StoreError::WrongDatabase {
                found: "other tables",
                ..
            })
        ));
        assert!(
            SqliteStore::open(&other).is_ok(),
            "the customer store may share the application's database"
        );
        let foreign = dir.path().join("foreign.db");
        Connection::open(&foreign)
            .and_then(|c| c.pragma_update(None, "application_id", 7))
            .expect("foreign db");
        assert!(matches!(
            SqliteStore::open(&foreign),
            Err(StoreError::WrongDatabase { .. })
        ));
    }
}
