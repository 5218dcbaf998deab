//! The PostgreSQL customer key store: customers' wrapped data keys and the wrapped
//! blind-index keys, in a schema that holds nothing else (`shopsafe_keys` by default),
//! readable by its owner only.

use postgres::Row;

use super::{PgOptions, Pool, Schema, be, to_i64};
use crate::card::VaultKeyId;
use crate::kernel::AccountId;
use crate::persist::StoreError;
use crate::seal::{KeyStore, WrappedIndexKey, WrappedKey};
use crate::secret::fill_random;
use crate::store::rows::{kek_counts, wrapped_index_key, wrapped_key};

const MIGRATIONS: &[&str] = &[
    // 1: the store's id, data keys and index keys.
    "CREATE TABLE key_store (
        one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
        id BYTEA NOT NULL CHECK (length(id) = 16)
    );
    CREATE TABLE data_keys (
        customer TEXT COLLATE \"C\" NOT NULL,
        version INTEGER NOT NULL,
        kek TEXT NOT NULL,
        wrapped BYTEA NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (customer, version)
    );
    CREATE INDEX data_keys_by_kek ON data_keys (kek);
    CREATE TABLE index_keys (
        col TEXT PRIMARY KEY,
        kek TEXT NOT NULL,
        wrapped BYTEA NOT NULL
    );
    -- One row per epoch ever written under: a writer holds it FOR SHARE until it commits,
    -- a retirement FOR UPDATE while it counts and marks.
    CREATE TABLE keks (
        kek TEXT PRIMARY KEY,
        retired BOOLEAN NOT NULL DEFAULT FALSE
    );
    REVOKE ALL ON SCHEMA \"{schema}\" FROM PUBLIC;
    REVOKE ALL ON ALL TABLES IN SCHEMA \"{schema}\" FROM PUBLIC;",
    // 2: erased customers, by a keyed digest of their id.
    "CREATE TABLE erased (
        tombstone BYTEA PRIMARY KEY CHECK (length(tombstone) = 16),
        at BIGINT NOT NULL
    );
    REVOKE ALL ON erased FROM PUBLIC;",
    // 3: the last erasure-ledger entry applied (the ledger is on the customer side).
    "CREATE TABLE ledger_applied (
        one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
        seq BIGINT NOT NULL,
        mac BYTEA NOT NULL CHECK (length(mac) = 32)
    );
    REVOKE ALL ON ledger_applied FROM PUBLIC;",
];

const SCHEMA: Schema = Schema {
    kind: "keys",
    default_name: "shopsafe_keys",
    migrations: MIGRATIONS,
    dedicated: true,
};

/// Takes a transaction-long advisory lock per customer, in the order of the locks' keys
/// (so that two transactions never wait on each other in a circle): a key insert and an
/// erasure of the same customer run one after the other.
fn lock_customers(
    tx: &mut postgres::Transaction<'_>,
    customers: &[&str],
) -> Result<(), StoreError> {
    if customers.is_empty() {
        return Ok(());
    }
    tx.execute(
        "SELECT pg_advisory_xact_lock(k) FROM
           (SELECT DISTINCT hashtextextended('shopsafe/data-key/' || c, 0) AS k
              FROM unnest($1::text[]) AS c) AS locks ORDER BY k",
        &[&customers],
    )
    .map_err(be("lock customers"))?;
    Ok(())
}

/// The advisory lock a replay's tombstones take exclusively and a key insert shared
/// (outside the range of the per-customer locks' keys only by convention: a collision
/// would only make them wait).
const REPLAY_LOCK: i64 = 0x7368_6f70_7361_6665; // "shopsafe"

const SELECT_KEY: &str = "SELECT customer, version, kek, wrapped, created_at FROM data_keys";

/// Refuses a write under a retired epoch: holds each epoch's row `FOR SHARE` until the
/// writer commits, so a retirement (which takes it `FOR UPDATE`) either waits for this
/// write and counts it, or has committed and is seen here.
fn refuse_retired<'a>(
    tx: &mut postgres::Transaction<'_>,
    keks: impl IntoIterator<Item = &'a VaultKeyId>,
) -> Result<(), StoreError> {
    let mut ids: Vec<&str> = keks.into_iter().map(VaultKeyId::as_str).collect();
    ids.sort_unstable();
    ids.dedup();
    for kek in ids {
        tx.execute(
            "INSERT INTO keks (kek) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&kek],
        )
        .map_err(be("record epoch"))?;
        let retired: bool = tx
            .query_one("SELECT retired FROM keks WHERE kek = $1 FOR SHARE", &[&kek])
            .map_err(be("check retired epochs"))?
            .get(0);
        if retired {
            return Err(StoreError::Retired {
                what: "key-encryption key",
            });
        }
    }
    Ok(())
}

/// The customer key store ([`KeyStore`]) over one PostgreSQL schema (`shopsafe_keys` by
/// default), owned by a role of its own: the web tier's role reads it, and neither the
/// customer schema's role nor the vault's needs to.
///
/// # Examples
/// ```no_run
/// use shopsafe::store::postgres::{PgKeyStore, PgOptions};
///
/// let keys = PgKeyStore::connect(PgOptions::new("host=/run/postgresql user=shopsafe_keys dbname=shop")?)?;
/// # Ok::<(), shopsafe::persist::StoreError>(())
/// ```
#[derive(Debug)]
pub struct PgKeyStore {
    pool: Pool,
    id: [u8; 16],
}

impl PgKeyStore {
    /// Connects, creates the schema if needed (and if the role may), refuses a schema
    /// that holds other tables, and migrates.
    ///
    /// # Errors
    /// A backend failure, [`StoreError::WrongDatabase`] for another store's schema or
    /// one with other tables, [`StoreError::SchemaTooNew`].
    pub fn connect(options: PgOptions) -> Result<Self, StoreError> {
        let pool = Pool::open(options, &SCHEMA)?;
        let id = pool.with(|c| {
            let mut fresh = [0u8; 16];
            fill_random(&mut fresh)?;
            c.execute(
                "INSERT INTO key_store (id) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&&fresh[..]],
            )
            .map_err(be("make key store id"))?;
            let id: Vec<u8> = c
                .query_one("SELECT id FROM key_store", &[])
                .map_err(be("read key store id"))?
                .get(0);
            id.try_into().map_err(|_| StoreError::Corrupt {
                what: "key store id",
            })
        })?;
        Ok(Self { pool, id })
    }
}

fn read_key(r: &Row) -> Result<WrappedKey, StoreError> {
    wrapped_key((
        r.get(0),
        i64::from(r.get::<_, i32>(1)),
        r.get(2),
        r.get(3),
        r.get(4),
    ))
}

fn version(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

impl KeyStore for PgKeyStore {
    fn store_id(&self) -> Result<[u8; 16], StoreError> {
        Ok(self.id)
    }

    fn insert_data_keys(
        &self,
        keys: &[WrappedKey],
        unless_erased: &[[u8; 16]],
    ) -> Result<Vec<WrappedKey>, StoreError> {
        let tombstones: Vec<&[u8]> = unless_erased.iter().map(|t| &t[..]).collect();
        // In (customer, version) order, so that two batches that overlap take their row
        // locks in the same order and cannot deadlock.
        let mut sorted: Vec<&WrappedKey> = keys.iter().collect();
        sorted.sort_by(|a, b| (&a.customer, a.version).cmp(&(&b.customer, b.version)));
        let customers: Vec<&str> = sorted.iter().map(|k| k.customer.as_str()).collect();
        let versions: Vec<i32> = sorted.iter().map(|k| version(k.version)).collect();
        let keks: Vec<&str> = sorted.iter().map(|k| k.kek.as_str()).collect();
        let wrapped: Vec<&[u8]> = sorted.iter().map(|k| k.wrapped.as_slice()).collect();
        let created: Vec<i64> = sorted.iter().map(|k| k.created_at.as_millis()).collect();
        self.pool.with(|c| {
            let mut tx = c.transaction().map_err(be("begin data key insert"))?;
            refuse_retired(&mut tx, keys.iter().map(|k| &k.kek))?;
            // The customers' locks, then their tombstones: an erasure holds the same
            // locks from before it destroys keys until it has committed its tombstones.
            lock_customers(&mut tx, &customers)?;
            // Shared with every other insert, exclusive against a replay's tombstones:
            // an insert whose check came before those tombstones has committed before
            // they do (and the replay's scan that follows sees its key).
            tx.batch_execute(&format!(
                "SELECT pg_advisory_xact_lock_shared({REPLAY_LOCK})"
            ))
            .map_err(be("lock against a replay"))?;
            let erased: i64 = tx
                .query_one(
                    "SELECT count(*) FROM erased WHERE tombstone = ANY($1)",
                    &[&tombstones],
                )
                .map_err(be("check erasures"))?
                .get(0);
            if erased > 0 {
                return Err(StoreError::Retired {
                    what: "erased customer",
                });
            }
            tx.execute(
                "INSERT INTO data_keys (customer, version, kek, wrapped, created_at)
                 SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::bytea[], $5::bigint[])
                 ON CONFLICT DO NOTHING",
                &[&customers, &versions, &keks, &wrapped, &created],
            )
            .map_err(be("insert data keys"))?;
            let rows = tx
                .query(
                    &format!(
                        "{SELECT_KEY} WHERE (customer, version) IN
                         (SELECT * FROM unnest($1::text[], $2::int[]))"
                    ),
                    &[&customers, &versions],
                )
                .map_err(be("read data keys"))?;
            tx.commit().map_err(be("commit data key insert"))?;
            let mut stored = std::collections::HashMap::with_capacity(rows.len());
            for r in &rows {
                let k = read_key(r)?;
                stored.insert((k.customer.clone(), k.version), k);
            }
            keys.iter()
                .map(|k| {
                    stored
                        .get(&(k.customer.clone(), k.version))
                        .cloned()
                        .ok_or(StoreError::Corrupt { what: "data key" })
                })
                .collect()
        })
    }

    fn data_keys(&self, customers: &[AccountId]) -> Result<Vec<WrappedKey>, StoreError> {
        let ids: Vec<&str> = customers.iter().map(AccountId::as_str).collect();
        self.pool.with(|c| {
            c.query(&format!("{SELECT_KEY} WHERE customer = ANY($1)"), &[&ids])
                .map_err(be("read data keys"))?
                .iter()
                .map(read_key)
                .collect()
        })
    }

    fn keys_not_under(
        &self,
        kek: &VaultKeyId,
        after: Option<(&AccountId, u32)>,
        limit: usize,
    ) -> Result<Vec<WrappedKey>, StoreError> {
        let (customer, v) = after.map_or(("", -1), |(a, v)| (a.as_str(), version(v)));
        self.pool.with(|c| {
            c.query(
                &format!(
                    "{SELECT_KEY} WHERE kek <> $1 AND (customer, version) > ($2, $3)
                     ORDER BY customer, version LIMIT $4"
                ),
                &[&kek.as_str(), &customer, &v, &to_i64(limit as u64)],
            )
            .map_err(be("read keys to rewrap"))?
            .iter()
            .map(read_key)
            .collect()
        })
    }

    fn rewrap_data_keys(&self, keys: &[(VaultKeyId, WrappedKey)]) -> Result<u64, StoreError> {
        let mut customers = Vec::with_capacity(keys.len());
        let mut versions = Vec::with_capacity(keys.len());
        let mut from = Vec::with_capacity(keys.len());
        let mut to = Vec::with_capacity(keys.len());
        let mut wrapped = Vec::with_capacity(keys.len());
        for (old, key) in keys {
            customers.push(key.customer.as_str());
            versions.push(version(key.version));
            from.push(old.as_str());
            to.push(key.kek.as_str());
            wrapped.push(key.wrapped.as_slice());
        }
        self.pool.with(|c| {
            let mut tx = c.transaction().map_err(be("begin rewrap"))?;
            refuse_retired(&mut tx, keys.iter().map(|(_, k)| &k.kek))?;
            let n = tx
                .execute(
                    "UPDATE data_keys d SET kek = u.kek, wrapped = u.wrapped
                     FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::bytea[])
                          AS u(customer, version, old, kek, wrapped)
                     WHERE d.customer = u.customer AND d.version = u.version AND d.kek = u.old",
                    &[&customers, &versions, &from, &to, &wrapped],
                )
                .map_err(be("rewrap data keys"))?;
            tx.commit().map_err(be("commit rewrap"))?;
            Ok(n)
        })
    }

    fn erase_customers(
        &self,
        customers: &[AccountId],
        tombstones: &[[u8; 16]],
    ) -> Result<u64, StoreError> {
        let customers: Vec<&str> = customers.iter().map(AccountId::as_str).collect();
        let tombstones: Vec<&[u8]> = tombstones.iter().map(|t| &t[..]).collect();
        let now = crate::kernel::Timestamp::now().as_millis();
        self.pool.with(|c| {
            let mut tx = c.transaction().map_err(be("begin erasure"))?;
            lock_customers(&mut tx, &customers)?;
            if customers.is_empty() && !tombstones.is_empty() {
                // Tombstones of ids not named (a replay's): wait for every key insert
                // under way, and keep new ones out until they are written.
                tx.batch_execute(&format!("SELECT pg_advisory_xact_lock({REPLAY_LOCK})"))
                    .map_err(be("lock against key inserts"))?;
            }
            let destroyed = tx
                .execute(
                    "DELETE FROM data_keys WHERE customer = ANY($1)",
                    &[&customers],
                )
                .map_err(be("destroy data keys"))?;
            tx.execute(
                "INSERT INTO erased (tombstone, at)
                 SELECT t, $2 FROM unnest($1::bytea[]) AS t ORDER BY t
                 ON CONFLICT DO NOTHING",
                &[&tombstones, &now],
            )
            .map_err(be("record erasure"))?;
            tx.commit().map_err(be("commit erasure"))?;
            Ok(destroyed)
        })
    }

    fn data_key_customers(
        &self,
        after: Option<&AccountId>,
        limit: usize,
    ) -> Result<Vec<AccountId>, StoreError> {
        let after = after.map_or("", AccountId::as_str);
        let limit = to_i64(limit as u64);
        self.pool.with(|c| {
            c.query(
                "SELECT DISTINCT customer FROM data_keys WHERE customer > $1
                 ORDER BY customer LIMIT $2",
                &[&after, &limit],
            )
            .map_err(be("read customers with keys"))?
            .iter()
            .map(|r| {
                AccountId::new(r.get::<_, String>(0)).map_err(|_| StoreError::Corrupt {
                    what: "data key customer",
                })
            })
            .collect()
        })
    }

    fn ledger_applied(&self) -> Result<Option<(u64, [u8; 32])>, StoreError> {
        self.pool.with(|c| {
            let row = c
                .query_opt("SELECT seq, mac FROM ledger_applied", &[])
                .map_err(be("read ledger mark"))?;
            crate::store::rows::ledger_mark(row.map(|r| (r.get(0), r.get(1))))
        })
    }

    fn advance_ledger(
        &self,
        from: u64,
        seq: u64,
        mac: &[u8; 32],
        applied: &[[u8; 16]],
    ) -> Result<bool, StoreError> {
        let (from, seq, mac) = (to_i64(from), to_i64(seq), &mac[..]);
        let mut asked: Vec<&[u8]> = applied.iter().map(|t| &t[..]).collect();
        asked.sort_unstable();
        asked.dedup();
        let want = to_i64(asked.len() as u64);
        self.pool.with(|c| {
            // The mark need not survive a crash (a lost one is checked again), so its
            // commit does not wait for the WAL flush. The tombstones are locked while it
            // moves: no restore or delete takes them from under the mark.
            let mut tx = c.transaction().map_err(be("begin ledger mark"))?;
            tx.batch_execute("SET LOCAL synchronous_commit = off")
                .map_err(be("begin ledger mark"))?;
            // The mark's row locked (or, with none yet, the insert below conflicts with
            // another's): it cannot go back between this read and the write.
            let now: i64 = tx
                .query_opt("SELECT seq FROM ledger_applied FOR UPDATE", &[])
                .map_err(be("read ledger mark"))?
                .map_or(0, |r| r.get(0));
            if now < from {
                return Ok(false);
            }
            let found: i64 = tx
                .query_one(
                    "SELECT count(*) FROM (SELECT 1 FROM erased WHERE tombstone = ANY($1)
                     ORDER BY tombstone FOR SHARE) AS held",
                    &[&asked],
                )
                .map_err(be("check erasures"))?
                .get(0);
            if found != want {
                return Ok(false);
            }
            let moved = tx
                .execute(
                    "INSERT INTO ledger_applied (one, seq, mac) VALUES (TRUE, $1, $2)
                     ON CONFLICT (one) DO UPDATE SET seq = excluded.seq, mac = excluded.mac
                     WHERE excluded.seq > ledger_applied.seq",
                    &[&seq, &mac],
                )
                .map_err(be("advance ledger mark"))?;
            tx.commit().map_err(be("commit ledger mark"))?;
            Ok(moved > 0)
        })
    }

    fn reset_ledger_mark(&self, to: Option<(u64, [u8; 32])>) -> Result<(), StoreError> {
        self.pool.with(|c| {
            let mut tx = c.transaction().map_err(be("begin ledger mark reset"))?;
            tx.execute("DELETE FROM ledger_applied", &[])
                .map_err(be("reset ledger mark"))?;
            if let Some((seq, mac)) = to {
                let (seq, mac) = (to_i64(seq), &mac[..]);
                tx.execute(
                    "INSERT INTO ledger_applied (one, seq, mac) VALUES (TRUE, $1, $2)",
                    &[&seq, &mac],
                )
                .map_err(be("reset ledger mark"))?;
            }
            tx.commit().map_err(be("commit ledger mark reset"))
        })
    }

    fn erased(&self, tombstones: &[[u8; 16]]) -> Result<Vec<[u8; 16]>, StoreError> {
        let asked: Vec<&[u8]> = tombstones.iter().map(|t| &t[..]).collect();
        self.pool.with(|c| {
            c.query(
                "SELECT tombstone FROM erased WHERE tombstone = ANY($1)",
                &[&asked],
            )
            .map_err(be("read erasures"))?
            .iter()
            .map(|r| {
                let t: Vec<u8> = r.get(0);
                t.try_into()
                    .map_err(|_| StoreError::Corrupt { what: "tombstone" })
            })
            .collect()
        })
    }

    fn retire_kek(&self, kek: &VaultKeyId) -> Result<u64, StoreError> {
        self.pool.with(|c| {
            let mut tx = c.transaction().map_err(be("begin retire epoch"))?;
            tx.execute(
                "INSERT INTO keks (kek) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&kek.as_str()],
            )
            .map_err(be("record epoch"))?;
            // Waits for every writer holding the epoch FOR SHARE; later ones wait here.
            tx.execute(
                "SELECT 1 FROM keks WHERE kek = $1 FOR UPDATE",
                &[&kek.as_str()],
            )
            .map_err(be("lock epoch"))?;
            let n: i64 = tx
                .query_one(
                    "SELECT (SELECT count(*) FROM data_keys WHERE kek = $1)
                          + (SELECT count(*) FROM index_keys WHERE kek = $1)",
                    &[&kek.as_str()],
                )
                .map_err(be("count keys under epoch"))?
                .get(0);
            if n == 0 {
                tx.execute(
                    "UPDATE keks SET retired = TRUE WHERE kek = $1",
                    &[&kek.as_str()],
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
                .query(
                    "SELECT kek, count(*) FROM (SELECT kek FROM data_keys UNION ALL
                     SELECT kek FROM index_keys) k GROUP BY kek ORDER BY kek",
                    &[],
                )
                .map_err(be("count keys by epoch"))?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            kek_counts(rows)
        })
    }

    fn insert_index_key(&self, key: &WrappedIndexKey) -> Result<WrappedIndexKey, StoreError> {
        self.pool.with(|c| {
            let mut tx = c.transaction().map_err(be("begin index key insert"))?;
            refuse_retired(&mut tx, [&key.kek])?;
            tx.execute(
                "INSERT INTO index_keys (col, kek, wrapped) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&key.column, &key.kek.as_str(), &key.wrapped],
            )
            .map_err(be("insert index key"))?;
            let r = tx
                .query_one(
                    "SELECT col, kek, wrapped FROM index_keys WHERE col = $1",
                    &[&key.column],
                )
                .map_err(be("read index key"))?;
            tx.commit().map_err(be("commit index key insert"))?;
            wrapped_index_key((r.get(0), r.get(1), r.get(2)))
        })
    }

    fn index_keys(&self) -> Result<Vec<WrappedIndexKey>, StoreError> {
        self.pool.with(|c| {
            c.query("SELECT col, kek, wrapped FROM index_keys ORDER BY col", &[])
                .map_err(be("read index keys"))?
                .iter()
                .map(|r| wrapped_index_key((r.get(0), r.get(1), r.get(2))))
                .collect()
        })
    }

    fn rewrap_index_key(
        &self,
        from: &VaultKeyId,
        key: &WrappedIndexKey,
    ) -> Result<bool, StoreError> {
        self.pool.with(|c| {
            let mut tx = c.transaction().map_err(be("begin index key rewrap"))?;
            refuse_retired(&mut tx, [&key.kek])?;
            let n = tx
                .execute(
                    "UPDATE index_keys SET kek = $1, wrapped = $2 WHERE col = $3 AND kek = $4",
                    &[&key.kek.as_str(), &key.wrapped, &key.column, &from.as_str()],
                )
                .map_err(be("rewrap index key"))?;
            tx.commit().map_err(be("commit index key rewrap"))?;
            Ok(n == 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::super::{test_schema, test_url};
    use super::*;

    #[test]
    fn postgres_passes_the_key_store_conformance_suite() {
        let Some(url) = test_url("postgres_passes_the_key_store_conformance_suite") else {
            return;
        };
        let schemas = Mutex::new(Vec::new());
        let fresh = || {
            let name = test_schema("conformance_keys");
            schemas.lock().expect("lock").push(name.clone());
            let options = PgOptions::new(&url)
                .and_then(|o| o.schema(&name))
                .expect("options");
            PgKeyStore::connect(options).expect("connect")
        };
        crate::conformance::run_key_store(&fresh);
        let first = schemas.lock().expect("lock")[0].clone();
        // Reconnecting keeps the id; the customer store refuses the schema.
        let options = || {
            PgOptions::new(&url)
                .and_then(|o| o.schema(&first))
                .expect("options")
        };
        let a = PgKeyStore::connect(options())
            .expect("connect")
            .store_id()
            .expect("id");
        let b = PgKeyStore::connect(options())
            .expect("connect")
            .store_id()
            .expect("id");
        assert_eq!(a, b);
        let err = super::super::PgStore::connect(options()).expect_err("refused");
        assert!(err.to_string().contains("key store"), "{err}");
        let schemas = schemas.into_inner().expect("lock");
        assert_eq!(schemas.len(), 10, "every check ran on its own schema");
        let mut admin = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        for s in schemas {
            admin
                .batch_execute(&format!("DROP SCHEMA \"{s}\" CASCADE"))
                .expect("drop schema");
        }
    }
}
