//! The customer key store's SQLite file: customers' wrapped data keys and the wrapped
//! blind-index keys, in a file of their own on the vault side (e.g.
//! `<vault-dir>/keys.db`), which refuses the customer database's and the vault's files.

use std::path::Path;

use rusqlite::{OptionalExtension, params, params_from_iter};

use super::{Pool, Schema, be, begin, to_i64};
use crate::card::VaultKeyId;
use crate::kernel::AccountId;
use crate::persist::StoreError;
use crate::seal::{KeyStore, WrappedIndexKey, WrappedKey};
use crate::secret::fill_random;
use crate::store::rows::{KeyRow, kek_counts, wrapped_index_key, wrapped_key};

const MIGRATIONS: &[&str] = &[
    // 1: the store's id, data keys and index keys.
    "CREATE TABLE key_store (
        one INTEGER PRIMARY KEY CHECK (one = 1),
        id BLOB NOT NULL CHECK (length(id) = 16)
    );
    CREATE TABLE data_keys (
        customer TEXT NOT NULL,
        version INTEGER NOT NULL,
        kek TEXT NOT NULL,
        wrapped BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (customer, version)
    ) WITHOUT ROWID;
    CREATE INDEX data_keys_by_kek ON data_keys (kek);
    CREATE TABLE index_keys (
        col TEXT PRIMARY KEY,
        kek TEXT NOT NULL,
        wrapped BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE retired_keks (kek TEXT PRIMARY KEY) WITHOUT ROWID;",
    // 2: erased customers, by a keyed digest of their id.
    "CREATE TABLE erased (
        tombstone BLOB PRIMARY KEY CHECK (length(tombstone) = 16),
        at INTEGER NOT NULL
    ) WITHOUT ROWID;",
    // 3: the last erasure-ledger entry applied (the ledger is on the customer side).
    "CREATE TABLE ledger_applied (
        one INTEGER PRIMARY KEY CHECK (one = 1),
        seq INTEGER NOT NULL,
        mac BLOB NOT NULL CHECK (length(mac) = 32)
    );",
];

/// Refuses a write under a retired epoch, inside the writer's (immediate) transaction.
fn refuse_retired<'a>(
    tx: &rusqlite::Connection,
    keks: impl IntoIterator<Item = &'a VaultKeyId>,
) -> Result<(), StoreError> {
    let mut stmt = tx
        .prepare_cached("SELECT count(*) FROM retired_keks WHERE kek = ?1")
        .map_err(be("check retired epochs"))?;
    let mut seen: Vec<&VaultKeyId> = Vec::new();
    for kek in keks {
        if seen.contains(&kek) {
            continue;
        }
        seen.push(kek);
        let n: i64 = stmt
            .query_row([kek.as_str()], |r| r.get(0))
            .map_err(be("check retired epochs"))?;
        if n > 0 {
            return Err(StoreError::Retired {
                what: "key-encryption key",
            });
        }
    }
    Ok(())
}

/// Refuses a key for an erased customer, inside the writer's (immediate) transaction.
fn refuse_erased(tx: &rusqlite::Connection, tombstones: &[[u8; 16]]) -> Result<(), StoreError> {
    if recorded(tx, tombstones)? > 0 {
        return Err(StoreError::Retired {
            what: "erased customer",
        });
    }
    Ok(())
}

/// How many of `tombstones` (each as listed, repeats counted) are recorded.
fn recorded(tx: &rusqlite::Connection, tombstones: &[[u8; 16]]) -> Result<usize, StoreError> {
    let mut stmt = tx
        .prepare_cached("SELECT count(*) FROM erased WHERE tombstone = ?1")
        .map_err(be("check erasures"))?;
    let mut found = 0;
    for t in tombstones {
        let n: i64 = stmt
            .query_row([&t[..]], |r| r.get(0))
            .map_err(be("check erasures"))?;
        found += usize::from(n > 0);
    }
    Ok(found)
}

/// The erasure's transaction.
fn erase_in(
    c: &mut rusqlite::Connection,
    customers: &[AccountId],
    tombstones: &[[u8; 16]],
    now: i64,
) -> Result<u64, StoreError> {
    let tx = begin(c, "begin erasure")?;
    let mut destroyed = 0u64;
    {
        let mut delete = tx
            .prepare_cached("DELETE FROM data_keys WHERE customer = ?1")
            .map_err(be("destroy data keys"))?;
        for customer in customers {
            destroyed += delete
                .execute([customer.as_str()])
                .map_err(be("destroy data keys"))? as u64;
        }
        let mut mark = tx
            .prepare_cached(
                "INSERT INTO erased (tombstone, at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            )
            .map_err(be("record erasure"))?;
        for tombstone in tombstones {
            mark.execute(params![&tombstone[..], now])
                .map_err(be("record erasure"))?;
        }
    }
    tx.commit().map_err(be("commit erasure"))?;
    Ok(destroyed)
}

const SCHEMA: Schema = Schema {
    kind: "key store",
    application_id: super::KEYS_APPLICATION_ID,
    migrations: MIGRATIONS,
    dedicated: true,
};

/// Customers per `IN (...)` query.
const CHUNK: usize = 500;

const SELECT_KEY: &str = "SELECT customer, version, kek, wrapped, created_at FROM data_keys";

/// The customer key store ([`KeyStore`]) over one SQLite file of its own.
///
/// # Examples
/// ```
/// use shopsafe::store::sqlite::{SqliteKeyStore, SqliteStore, SqliteVault};
///
/// let dir = tempfile::tempdir()?;
/// let customers = SqliteStore::open(dir.path().join("customers.db"))?;
/// let vault = SqliteVault::open(dir.path().join("vault.db"))?;
/// let keys = SqliteKeyStore::open(dir.path().join("keys.db"))?;
/// assert!(SqliteKeyStore::open(customers.path()).is_err(), "never the customer file");
/// assert!(SqliteKeyStore::open(vault.path()).is_err(), "nor the vault's");
/// # drop(keys); Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SqliteKeyStore {
    pool: Pool,
    id: [u8; 16],
}

impl SqliteKeyStore {
    /// Opens (creating if needed) and migrates the key store at `path`.
    ///
    /// # Errors
    /// [`StoreError::WrongDatabase`] for any other file with tables,
    /// [`StoreError::SchemaTooNew`], or a backend failure.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let pool = Pool::open(path.as_ref(), &SCHEMA)?;
        let id = pool.with(|c| {
            let mut fresh = [0u8; 16];
            fill_random(&mut fresh)?;
            let tx = begin(c, "begin key store id")?;
            tx.execute(
                "INSERT INTO key_store (one, id) VALUES (1, ?1) ON CONFLICT DO NOTHING",
                [&fresh[..]],
            )
            .map_err(be("make key store id"))?;
            let id: Vec<u8> = tx
                .query_row("SELECT id FROM key_store", [], |r| r.get(0))
                .map_err(be("read key store id"))?;
            tx.commit().map_err(be("commit key store id"))?;
            id.try_into().map_err(|_| StoreError::Corrupt {
                what: "key store id",
            })
        })?;
        Ok(Self { pool, id })
    }

    /// Opens the key store at `path`, which must exist: a missing key store is an error
    /// here, never a fresh empty one (under which every sealed value would answer
    /// `WrongKeyStore`).
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the file is missing, and as [`SqliteKeyStore::open`].
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        if !path.as_ref().exists() {
            return Err(StoreError::Backend {
                operation: "open key store (missing)",
                source: "the key store file does not exist".into(),
            });
        }
        Self::open(path)
    }

    /// The database file.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.pool.path()
    }
}

fn read_key(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

impl KeyStore for SqliteKeyStore {
    fn store_id(&self) -> Result<[u8; 16], StoreError> {
        Ok(self.id)
    }

    fn insert_data_keys(
        &self,
        keys: &[WrappedKey],
        unless_erased: &[[u8; 16]],
    ) -> Result<Vec<WrappedKey>, StoreError> {
        self.pool.with(|c| {
            // Immediate: an erasure runs wholly before or after this.
            let tx = begin(c, "begin data key insert")?;
            refuse_retired(&tx, keys.iter().map(|k| &k.kek))?;
            refuse_erased(&tx, unless_erased)?;
            let mut out = Vec::with_capacity(keys.len());
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO data_keys (customer, version, kek, wrapped, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                    )
                    .map_err(be("insert data key"))?;
                let mut read = tx
                    .prepare_cached(&format!(
                        "{SELECT_KEY} WHERE customer = ?1 AND version = ?2"
                    ))
                    .map_err(be("read data key"))?;
                for key in keys {
                    let (customer, version) = (key.customer.as_str(), i64::from(key.version));
                    insert
                        .execute(params![
                            customer,
                            version,
                            key.kek.as_str(),
                            key.wrapped,
                            key.created_at.as_millis()
                        ])
                        .map_err(be("insert data key"))?;
                    let row = read
                        .query_row(params![customer, version], read_key)
                        .map_err(be("read data key"))?;
                    out.push(wrapped_key(row)?);
                }
            }
            tx.commit().map_err(be("commit data key insert"))?;
            Ok(out)
        })
    }

    fn data_keys(&self, customers: &[AccountId]) -> Result<Vec<WrappedKey>, StoreError> {
        self.pool.with(|c| {
            let mut out = Vec::with_capacity(customers.len());
            for chunk in customers.chunks(CHUNK) {
                let marks = vec!["?"; chunk.len()].join(",");
                let mut stmt = c
                    .prepare_cached(&format!("{SELECT_KEY} WHERE customer IN ({marks})"))
                    .map_err(be("read data keys"))?;
                let rows: Vec<KeyRow> = stmt
                    .query_map(
                        params_from_iter(chunk.iter().map(AccountId::as_str)),
                        read_key,
                    )
                    .and_then(Iterator::collect)
                    .map_err(be("read data keys"))?;
                for row in rows {
                    out.push(wrapped_key(row)?);
                }
            }
            Ok(out)
        })
    }

    fn keys_not_under(
        &self,
        kek: &VaultKeyId,
        after: Option<(&AccountId, u32)>,
        limit: usize,
    ) -> Result<Vec<WrappedKey>, StoreError> {
        self.pool.with(|c| {
            let (customer, version) = after.map_or(("", -1), |(a, v)| (a.as_str(), i64::from(v)));
            let mut stmt = c
                .prepare_cached(&format!(
                    "{SELECT_KEY} WHERE kek <> ?1 AND (customer, version) > (?2, ?3)
                     ORDER BY customer, version LIMIT ?4"
                ))
                .map_err(be("read keys to rewrap"))?;
            let rows: Vec<KeyRow> = stmt
                .query_map(
                    params![kek.as_str(), customer, version, to_i64(limit as u64)],
                    read_key,
                )
                .and_then(Iterator::collect)
                .map_err(be("read keys to rewrap"))?;
            rows.into_iter().map(wrapped_key).collect()
        })
    }

    fn rewrap_data_keys(&self, keys: &[(VaultKeyId, WrappedKey)]) -> Result<u64, StoreError> {
        self.pool.with(|c| {
            let tx = begin(c, "begin rewrap")?;
            refuse_retired(&tx, keys.iter().map(|(_, k)| &k.kek))?;
            let mut changed = 0u64;
            {
                let mut stmt = tx
                    .prepare_cached(
                        "UPDATE data_keys SET kek = ?1, wrapped = ?2
                         WHERE customer = ?3 AND version = ?4 AND kek = ?5",
                    )
                    .map_err(be("rewrap data keys"))?;
                for (from, key) in keys {
                    changed += stmt
                        .execute(params![
                            key.kek.as_str(),
                            key.wrapped,
                            key.customer.as_str(),
                            i64::from(key.version),
                            from.as_str()
                        ])
                        .map_err(be("rewrap data keys"))? as u64;
                }
            }
            tx.commit().map_err(be("commit rewrap"))?;
            Ok(changed)
        })
    }

    fn erase_customers(
        &self,
        customers: &[AccountId],
        tombstones: &[[u8; 16]],
    ) -> Result<u64, StoreError> {
        let now = crate::kernel::Timestamp::now().as_millis();
        self.pool.with(|c| {
            // Durable at commit (the WAL synced), unlike the store's other writes: an
            // erasure once answered must survive a power loss.
            c.pragma_update(None, "synchronous", "FULL")
                .map_err(be("set synchronous"))?;
            let done = erase_in(c, customers, tombstones, now);
            // After the commit: a failure here leaves the connection syncing every
            // commit (slower, not wrong), and must not report the erasure as failed.
            let _ = c.pragma_update(None, "synchronous", "NORMAL");
            done
        })
    }

    fn data_key_customers(
        &self,
        after: Option<&AccountId>,
        limit: usize,
    ) -> Result<Vec<AccountId>, StoreError> {
        self.pool.with(|c| {
            let rows: Vec<String> = c
                .prepare_cached(
                    "SELECT DISTINCT customer FROM data_keys WHERE customer > ?1
                     ORDER BY customer LIMIT ?2",
                )
                .and_then(|mut s| {
                    s.query_map(
                        params![after.map_or("", AccountId::as_str), to_i64(limit as u64)],
                        |r| r.get(0),
                    )?
                    .collect()
                })
                .map_err(be("read customers with keys"))?;
            rows.into_iter()
                .map(|id| {
                    AccountId::new(id).map_err(|_| StoreError::Corrupt {
                        what: "data key customer",
                    })
                })
                .collect()
        })
    }

    fn ledger_applied(&self) -> Result<Option<(u64, [u8; 32])>, StoreError> {
        self.pool.with(|c| {
            let row: Option<(i64, Vec<u8>)> = c
                .prepare_cached("SELECT seq, mac FROM ledger_applied")
                .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
                .map_err(be("read ledger mark"))?;
            crate::store::rows::ledger_mark(row)
        })
    }

    fn advance_ledger(
        &self,
        from: u64,
        seq: u64,
        mac: &[u8; 32],
        applied: &[[u8; 16]],
    ) -> Result<bool, StoreError> {
        self.pool.with(|c| {
            let tx = begin(c, "begin ledger mark")?;
            let now: i64 = tx
                .query_row(
                    "SELECT coalesce((SELECT seq FROM ledger_applied), 0)",
                    [],
                    |r| r.get(0),
                )
                .map_err(be("read ledger mark"))?;
            if now < to_i64(from) {
                return Ok(false);
            }
            if recorded(&tx, applied)? < applied.len() {
                return Ok(false);
            }
            let moved = tx
                .execute(
                    "INSERT INTO ledger_applied (one, seq, mac) VALUES (1, ?1, ?2)
                     ON CONFLICT (one) DO UPDATE SET seq = excluded.seq, mac = excluded.mac
                     WHERE excluded.seq > ledger_applied.seq",
                    params![to_i64(seq), &mac[..]],
                )
                .map_err(be("advance ledger mark"))?;
            tx.commit().map_err(be("commit ledger mark"))?;
            Ok(moved > 0)
        })
    }

    fn reset_ledger_mark(&self, to: Option<(u64, [u8; 32])>) -> Result<(), StoreError> {
        self.pool.with(|c| {
            let tx = begin(c, "begin ledger mark reset")?;
            tx.execute("DELETE FROM ledger_applied", [])
                .map_err(be("reset ledger mark"))?;
            if let Some((seq, mac)) = to {
                tx.execute(
                    "INSERT INTO ledger_applied (one, seq, mac) VALUES (1, ?1, ?2)",
                    params![to_i64(seq), &mac[..]],
                )
                .map_err(be("reset ledger mark"))?;
            }
            tx.commit().map_err(be("commit ledger mark reset"))
        })
    }

    fn erased(&self, tombstones: &[[u8; 16]]) -> Result<Vec<[u8; 16]>, StoreError> {
        self.pool.with(|c| {
            let mut out = Vec::new();
            for chunk in tombstones.chunks(CHUNK) {
                let marks = vec!["?"; chunk.len()].join(",");
                let mut stmt = c
                    .prepare_cached(&format!(
                        "SELECT tombstone FROM erased WHERE tombstone IN ({marks})"
                    ))
                    .map_err(be("read erasures"))?;
                let rows: Vec<Vec<u8>> = stmt
                    .query_map(params_from_iter(chunk.iter().map(|t| &t[..])), |r| r.get(0))
                    .and_then(Iterator::collect)
                    .map_err(be("read erasures"))?;
                for t in rows {
                    out.push(
                        t.try_into()
                            .map_err(|_| StoreError::Corrupt { what: "tombstone" })?,
                    );
                }
            }
            Ok(out)
        })
    }

    fn retire_kek(&self, kek: &VaultKeyId) -> Result<u64, StoreError> {
        self.pool.with(|c| {
            // Immediate: no writer runs between the count and the mark.
            let tx = begin(c, "begin retire epoch")?;
            let n: i64 = tx
                .query_row(
                    "SELECT (SELECT count(*) FROM data_keys WHERE kek = ?1)
                          + (SELECT count(*) FROM index_keys WHERE kek = ?1)",
                    [kek.as_str()],
                    |r| r.get(0),
                )
                .map_err(be("count keys under epoch"))?;
            if n == 0 {
                tx.execute(
                    "INSERT INTO retired_keks (kek) VALUES (?1) ON CONFLICT DO NOTHING",
                    [kek.as_str()],
                )
                .map_err(be("retire epoch"))?;
            }
            tx.commit().map_err(be("commit retire epoch"))?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn count_by_kek(&self) -> Result<Vec<(VaultKeyId, u64)>, StoreError> {
        self.pool.with(|c| {
            let rows: Vec<(String, i64)> = c
                .prepare_cached(
                    "SELECT kek, count(*) FROM (SELECT kek FROM data_keys UNION ALL
                     SELECT kek FROM index_keys) GROUP BY kek ORDER BY kek",
                )
                .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
                .map_err(be("count keys by epoch"))?;
            kek_counts(rows)
        })
    }

    fn insert_index_key(&self, key: &WrappedIndexKey) -> Result<WrappedIndexKey, StoreError> {
        self.pool.with(|c| {
            let tx = begin(c, "begin index key insert")?;
            refuse_retired(&tx, [&key.kek])?;
            tx.execute(
                "INSERT INTO index_keys (col, kek, wrapped) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
                params![key.column, key.kek.as_str(), key.wrapped],
            )
            .map_err(be("insert index key"))?;
            let row = tx
                .query_row(
                    "SELECT col, kek, wrapped FROM index_keys WHERE col = ?1",
                    [&key.column],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(be("read index key"))?
                .ok_or(StoreError::Corrupt { what: "index key" })?;
            tx.commit().map_err(be("commit index key insert"))?;
            wrapped_index_key(row)
        })
    }

    fn index_keys(&self) -> Result<Vec<WrappedIndexKey>, StoreError> {
        self.pool.with(|c| {
            let rows: Vec<(String, String, Vec<u8>)> = c
                .prepare_cached("SELECT col, kek, wrapped FROM index_keys ORDER BY col")
                .and_then(|mut s| {
                    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                        .collect()
                })
                .map_err(be("read index keys"))?;
            rows.into_iter().map(wrapped_index_key).collect()
        })
    }

    fn rewrap_index_key(
        &self,
        from: &VaultKeyId,
        key: &WrappedIndexKey,
    ) -> Result<bool, StoreError> {
        self.pool.with(|c| {
            let tx = begin(c, "begin index key rewrap")?;
            refuse_retired(&tx, [&key.kek])?;
            let n = tx
                .execute(
                    "UPDATE index_keys SET kek = ?1, wrapped = ?2 WHERE col = ?3 AND kek = ?4",
                    params![key.kek.as_str(), key.wrapped, key.column, from.as_str()],
                )
                .map_err(be("rewrap index key"))?;
            tx.commit().map_err(be("commit index key rewrap"))?;
            Ok(n == 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[test]
    fn sqlite_passes_the_key_store_conformance_suite() {
        let root = tempfile::tempdir().expect("temp dir");
        let n = AtomicU32::new(0);
        let fresh = || {
            let i = n.fetch_add(1, Ordering::SeqCst);
            SqliteKeyStore::open(root.path().join(format!("keys-{i}.db"))).expect("open")
        };
        crate::conformance::run_key_store(&fresh);
        assert_eq!(
            n.load(Ordering::SeqCst),
            10,
            "every check ran on its own file"
        );
    }

    #[test]
    fn the_key_store_keeps_its_id_refuses_other_files_and_is_never_made_up() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("keys.db");
        assert!(
            SqliteKeyStore::open_existing(&path).is_err(),
            "a missing store is an error"
        );
        assert!(!path.exists(), "and not created");
        let id = SqliteKeyStore::open(&path)
            .expect("open")
            .store_id()
            .expect("id");
        let again = SqliteKeyStore::open_existing(&path).expect("reopen");
        assert_eq!(again.store_id().expect("id"), id);
        let customers = super::super::SqliteStore::open(dir.path().join("c.db")).expect("open");
        let err = SqliteKeyStore::open(customers.path()).expect_err("refused");
        assert!(matches!(err, StoreError::WrongDatabase { .. }), "{err:?}");
        let err = super::super::SqliteStore::open(&path).expect_err("refused");
        assert!(err.to_string().contains("key store"), "{err}");
    }
}
