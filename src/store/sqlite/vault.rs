//! The card vault's SQLite store: sealed card numbers and the detokenize audit trail, in
//! a file that holds nothing else (it refuses the customer database's file).

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::{Pool, Schema, be, begin, to_i64, to_u64};
use crate::audit::table;
use crate::audit::{AuditCheckpoint, AuditKey, AuditRecord, AuditSink, AuditVerified};
use crate::audit::{AuditError, AuditTx, KeyedAudit, LastRow, PAGE, StoredRow};
use crate::card::{
    CardToken, FindOrInsert, Fingerprint, HeldCard, SealedCard, VaultKeyId, VaultStore,
};
use crate::kernel::Timestamp;
use crate::persist::StoreError;
use crate::store::rows::{
    BUMP_KEY_GENERATION, READ_KEY_GENERATION, SealedRow, fingerprint8, held_card, sealed_card,
};

/// The vault file's schema migrations, applied in order; the database's `user_version`
/// is how many ran.
const MIGRATIONS: &[&str] = &[
    // 1: sealed cards and the audit trail.
    //
    // Rows append in rowid order (tokens are time-ordered too); the one index that takes
    // random writes, by fingerprint, holds only its first 8 bytes as an integer: about
    // 15 bytes an entry against 70 for (key id, fingerprint, token), so a batch of
    // inserts dirties fewer pages.
    "CREATE TABLE sealed_cards (
        id INTEGER PRIMARY KEY,
        token TEXT NOT NULL UNIQUE,
        key_id TEXT NOT NULL,
        nonce BLOB NOT NULL CHECK (length(nonce) = 24),
        ciphertext BLOB NOT NULL,
        fingerprint_key TEXT NOT NULL,
        fingerprint BLOB NOT NULL CHECK (length(fingerprint) = 32),
        fingerprint8 INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX sealed_cards_by_fingerprint8 ON sealed_cards (fingerprint8);
    CREATE INDEX sealed_cards_by_key ON sealed_cards (key_id);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        token TEXT NOT NULL,
        purpose TEXT NOT NULL,
        caller TEXT NOT NULL,
        at INTEGER NOT NULL
    );",
    // 2: the key generation every server sharing the vault checks before it answers.
    "CREATE TABLE key_generation (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        generation INTEGER NOT NULL
    );
    INSERT INTO key_generation (id, generation) VALUES (1, 0);",
    // 3: the keyed audit chain (rows of 0.1 keep NULLs: unkeyed) and its checkpoints.
    "ALTER TABLE audit ADD COLUMN seq INTEGER;
    ALTER TABLE audit ADD COLUMN mac BLOB CHECK (mac IS NULL OR length(mac) = 32);
    CREATE UNIQUE INDEX audit_by_seq ON audit (seq);
    CREATE TABLE audit_checkpoint (
        id INTEGER PRIMARY KEY,
        records INTEGER NOT NULL,
        at INTEGER NOT NULL,
        head BLOB NOT NULL,
        mac BLOB NOT NULL
    );",
];

const SCHEMA: Schema = Schema {
    kind: "vault",
    application_id: super::VAULT_APPLICATION_ID,
    migrations: MIGRATIONS,
    dedicated: true,
};

/// The vault store and audit sink over one SQLite file of its own.
///
/// # Examples
/// ```
/// use shopsafe::store::sqlite::{SqliteStore, SqliteVault};
///
/// let dir = tempfile::tempdir()?;
/// let customers = SqliteStore::open(dir.path().join("customers.db"))?;
/// let vault = SqliteVault::open(dir.path().join("vault.db"))?;
/// assert!(SqliteVault::open(customers.path()).is_err(), "never the customer file");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SqliteVault {
    pool: Pool,
    audit: KeyedAudit,
}

impl SqliteVault {
    /// Opens (creating if needed) and migrates the vault database at `path`.
    ///
    /// # Errors
    /// [`StoreError::WrongDatabase`] for a customer database or any file with other
    /// tables, [`StoreError::SchemaTooNew`], or a backend failure.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Ok(Self {
            pool: Pool::open(path.as_ref(), &SCHEMA)?,
            audit: KeyedAudit::NONE,
        })
    }

    /// Keys the audit trail: every record from now on carries its sequence number and
    /// its MAC under `key` (see [`AuditKey`]), and a checkpoint goes into the
    /// `audit_checkpoint` table every 1,000 records. Rows written before stay unkeyed
    /// and are counted as such by [`SqliteVault::verify_audit`].
    ///
    /// # Security
    /// Once keyed, every writer of the trail must have the key: an unkeyed row after a
    /// keyed one is reported as [`AuditBreak::Downgraded`](crate::audit::AuditBreak).
    #[must_use]
    pub fn with_audit_key(mut self, key: AuditKey) -> Self {
        self.audit.key = Some(key);
        self
    }

    /// A checkpoint every `records` records (0: only on demand).
    #[must_use]
    pub fn checkpoint_every(mut self, records: u64) -> Self {
        self.audit.every = records;
        self
    }

    /// The one-time migration of an unkeyed (0.1) audit table to the keyed chain: when
    /// the table ends in unkeyed rows, writes a keyed record (purpose
    /// [`AUDIT_MIGRATION`](crate::audit::AUDIT_MIGRATION)) that takes them over, and
    /// returns how many it took over (0: nothing to migrate). Until then a keyed vault
    /// refuses to append after unkeyed rows ([`AuditError::MigrationRequired`]).
    ///
    /// # Security
    /// Check the unkeyed rows first (their count, against what the 0.1 service wrote):
    /// the migration vouches for how many there were, not for what they say, since
    /// unkeyed table rows carry no chain.
    ///
    /// # Errors
    /// [`AuditError::KeyRequired`] without an audit key, a backend failure.
    pub fn migrate_audit(&self) -> Result<u64, AuditError> {
        let key = self.audit.key()?;
        self.pool.with_any(|c| {
            // IMMEDIATE: one writer of the chain at a time, across processes.
            let tx = begin(c, "begin audit migration")?;
            let taken = table::migrate(&mut AuditTables(&tx), key)?;
            tx.commit().map_err(be("commit audit migration"))?;
            Ok(taken)
        })
    }

    /// Checks the audit table under `key`: every keyed row's MAC and sequence number, in
    /// insertion order, and the trail against the checkpoints in the table and `shipped`.
    ///
    /// # Errors
    /// [`AuditError::Tampered`] naming what was changed, a backend failure.
    pub fn verify_audit(
        &self,
        key: &AuditKey,
        shipped: &[AuditCheckpoint],
    ) -> Result<AuditVerified, AuditError> {
        table::verify(key, self.audit_checkpoints()?, shipped, |from| {
            Ok(self.pool.with(|c| {
                c.prepare_cached(
                    "SELECT id, token, purpose, caller, at, seq, mac FROM audit
                     WHERE id >= ?1 ORDER BY id LIMIT ?2",
                )
                .and_then(|mut stmt| {
                    stmt.query_map(params![from, PAGE], |r| {
                        Ok(StoredRow {
                            id: r.get(0)?,
                            record: AuditRecord::from_stored(
                                r.get(1)?,
                                &r.get::<_, String>(2)?,
                                r.get(3)?,
                                Timestamp::from_millis(r.get(4)?),
                            ),
                            seq: r.get(5)?,
                            mac: r.get(6)?,
                        })
                    })?
                    .collect()
                })
                .map_err(be("read audit trail"))
            })?)
        })
    }

    /// The checkpoints kept in the table, oldest first (checked by
    /// [`SqliteVault::verify_audit`], not here).
    ///
    /// # Errors
    /// A backend failure, [`StoreError::Corrupt`] for a row that is not a checkpoint.
    pub fn audit_checkpoints(&self) -> Result<Vec<AuditCheckpoint>, AuditError> {
        self.pool.with_any(|c| {
            let mut stmt = c
                .prepare_cached("SELECT records, at, head, mac FROM audit_checkpoint ORDER BY id")
                .map_err(be("read audit checkpoints"))?;
            let rows: Vec<(i64, i64, Vec<u8>, Vec<u8>)> = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .and_then(Iterator::collect)
                .map_err(be("read audit checkpoints"))?;
            rows.iter()
                .map(|(n, at, head, mac)| AuditCheckpoint::from_columns(*n, *at, head, mac))
                .collect()
        })
    }

    /// The database file.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.pool.path()
    }

    /// The audit trail, oldest first, at most `limit` records.
    ///
    /// # Errors
    /// A backend failure.
    pub fn audit_trail(&self, limit: usize) -> Result<Vec<AuditRecord>, AuditError> {
        Ok(self.pool.with(|c| {
            let mut stmt = c
                .prepare_cached("SELECT token, purpose, caller, at FROM audit ORDER BY id LIMIT ?1")
                .map_err(be("read audit trail"))?;
            stmt.query_map([to_i64(limit as u64)], |r| {
                Ok(AuditRecord::from_stored(
                    r.get(0)?,
                    &r.get::<_, String>(1)?,
                    r.get(2)?,
                    Timestamp::from_millis(r.get(3)?),
                ))
            })
            .and_then(Iterator::collect)
            .map_err(be("read audit trail"))
        })?)
    }
}

fn sealed_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SealedRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

const SELECT_SEALED: &str = "SELECT token, key_id, nonce, ciphertext, fingerprint_key, fingerprint, created_at FROM sealed_cards";

const INSERT_SEALED: &str = "INSERT INTO sealed_cards
    (token, key_id, nonce, ciphertext, fingerprint_key, fingerprint, created_at, fingerprint8)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
const REPLACE_SEALED: &str =
    "UPDATE sealed_cards SET key_id = ?2, nonce = ?3, ciphertext = ?4, fingerprint_key = ?5,
    fingerprint = ?6, created_at = ?7, fingerprint8 = ?8 WHERE token = ?1";

fn write_in(
    tx: &Connection,
    card: &SealedCard,
    sql: &str,
    what: &'static str,
) -> Result<(), StoreError> {
    tx.prepare_cached(sql)
        .and_then(|mut stmt| {
            stmt.execute(params![
                card.token.as_str(),
                card.key_id.as_str(),
                &card.nonce[..],
                card.ciphertext,
                card.fingerprint.key_id.as_str(),
                &card.fingerprint.mac[..],
                card.created_at.as_millis(),
                fingerprint8(&card.fingerprint.mac)
            ])
        })
        .map(drop)
        .map_err(be(what))
}

/// The first of `fingerprints` (in their order) that a stored card carries, with its token.
fn find_in(c: &Connection, fingerprints: &[Fingerprint]) -> Result<Option<HeldCard>, StoreError> {
    let mut find = c
        .prepare_cached(
            "SELECT token FROM sealed_cards
             WHERE fingerprint8 = ?3 AND fingerprint_key = ?1 AND fingerprint = ?2 LIMIT 1",
        )
        .map_err(be("find by fingerprint"))?;
    for fp in fingerprints {
        let found: Option<String> = find
            .query_row(
                params![fp.key_id.as_str(), &fp.mac[..], fingerprint8(&fp.mac)],
                |r| r.get(0),
            )
            .optional()
            .map_err(be("find by fingerprint"))?;
        if let Some(token) = found {
            return held_card(&token, fp).map(Some);
        }
    }
    Ok(None)
}

fn insert_in(tx: &Connection, card: &SealedCard) -> Result<(), StoreError> {
    write_in(tx, card, INSERT_SEALED, "insert sealed card")
}

fn write_all(
    c: &mut Connection,
    cards: &[SealedCard],
    sql: &str,
    what: &'static str,
) -> Result<(), StoreError> {
    let tx = begin(c, what)?;
    for card in cards {
        write_in(&tx, card, sql, what)?;
    }
    tx.commit().map_err(be(what))
}

impl VaultStore for SqliteVault {
    fn insert_sealed(&self, cards: &[SealedCard]) -> Result<(), StoreError> {
        self.pool
            .with(|c| write_all(c, cards, INSERT_SEALED, "insert sealed cards"))
    }

    fn find_card(&self, fingerprints: &[Fingerprint]) -> Result<Option<HeldCard>, StoreError> {
        self.pool.with(|c| find_in(c, fingerprints))
    }

    fn find_or_insert(
        &self,
        fingerprints: &[Fingerprint],
        card: &SealedCard,
    ) -> Result<FindOrInsert, StoreError> {
        self.pool.with(|c| {
            let tx = begin(c, "begin tokenize")?;
            if let Some(held) = find_in(&tx, fingerprints)? {
                return Ok(FindOrInsert::Found(held));
            }
            insert_in(&tx, card)?;
            tx.commit().map_err(be("commit tokenize"))?;
            Ok(FindOrInsert::Inserted)
        })
    }

    fn load_sealed(&self, token: &CardToken) -> Result<Option<SealedCard>, StoreError> {
        self.pool.with(|c| {
            c.prepare_cached(&format!("{SELECT_SEALED} WHERE token = ?1"))
                .and_then(|mut s| s.query_row([token.as_str()], sealed_from_row).optional())
                .map_err(be("load sealed card"))?
                .map(sealed_card)
                .transpose()
        })
    }

    fn sealed_not_under(
        &self,
        key_id: &VaultKeyId,
        after: Option<&CardToken>,
        limit: usize,
    ) -> Result<Vec<SealedCard>, StoreError> {
        self.pool.with(|c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "{SELECT_SEALED} WHERE key_id <> ?1 AND token > ?2 ORDER BY token LIMIT ?3"
                ))
                .map_err(be("select rows to rewrap"))?;
            let rows = stmt
                .query_map(
                    params![
                        key_id.as_str(),
                        after.map_or("", CardToken::as_str),
                        to_i64(limit as u64)
                    ],
                    sealed_from_row,
                )
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(be("select rows to rewrap"))?;
            rows.into_iter().map(sealed_card).collect()
        })
    }

    fn replace_sealed(&self, cards: &[SealedCard]) -> Result<(), StoreError> {
        self.pool
            .with(|c| write_all(c, cards, REPLACE_SEALED, "replace sealed cards"))
    }

    fn key_generation(&self) -> Result<u64, StoreError> {
        self.generation(READ_KEY_GENERATION, "read key generation")
    }

    fn bump_key_generation(&self) -> Result<u64, StoreError> {
        self.generation(BUMP_KEY_GENERATION, "bump key generation")
    }

    fn count_under(&self, key_id: &VaultKeyId) -> Result<u64, StoreError> {
        self.pool.with(|c| {
            c.prepare_cached("SELECT count(*) FROM sealed_cards WHERE key_id = ?1")
                .and_then(|mut s| s.query_row([key_id.as_str()], |r| r.get::<_, i64>(0)))
                .map(to_u64)
                .map_err(be("count sealed cards"))
        })
    }
}

impl SqliteVault {
    fn generation(&self, sql: &str, what: &'static str) -> Result<u64, StoreError> {
        self.pool.with(|c| {
            c.prepare_cached(sql)
                .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
                .map(to_u64)
                .map_err(be(what))
        })
    }
}

/// The audit tables, through a connection or a transaction on it (an IMMEDIATE one
/// when keyed: one writer of the chain at a time, across processes).
struct AuditTables<'c>(&'c Connection);

impl AuditTx for AuditTables<'_> {
    fn last_row(&mut self) -> Result<LastRow, StoreError> {
        self.0
            .prepare_cached("SELECT seq, mac FROM audit ORDER BY id DESC LIMIT 1")
            .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(be("read audit head"))
    }

    fn count(&mut self, keyed_only: bool) -> Result<u64, StoreError> {
        let sql = if keyed_only {
            "SELECT count(*) FROM audit WHERE seq IS NOT NULL"
        } else {
            "SELECT count(*) FROM audit"
        };
        self.0
            .query_row(sql, [], |r| r.get::<_, i64>(0))
            .map(to_u64)
            .map_err(be("count audit records"))
    }

    fn insert(
        &mut self,
        entry: &AuditRecord,
        link: Option<(u64, &[u8; 32])>,
    ) -> Result<(), StoreError> {
        self.0
            .prepare_cached(
                "INSERT INTO audit (token, purpose, caller, at, seq, mac)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    entry.token,
                    entry.stored_purpose(),
                    entry.caller,
                    entry.at.as_millis(),
                    link.map(|(seq, _)| to_i64(seq)),
                    link.map(|(_, mac)| &mac[..]),
                ])
            })
            .map(drop)
            .map_err(be("write audit record"))
    }

    fn insert_checkpoint(&mut self, cp: &AuditCheckpoint) -> Result<(), StoreError> {
        self.0
            .prepare_cached(
                "INSERT INTO audit_checkpoint (records, at, head, mac) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    to_i64(cp.records),
                    cp.at.as_millis(),
                    &cp.head[..],
                    &cp.mac()[..]
                ])
            })
            .map(drop)
            .map_err(be("write audit checkpoint"))
    }
}

impl AuditSink for SqliteVault {
    fn record(&self, entry: &AuditRecord) -> Result<(), AuditError> {
        if self.audit.key.is_none() {
            return self
                .pool
                .with_any(|c| table::append(&mut AuditTables(c), &self.audit, entry));
        }
        self.pool.with_any(|c| {
            let tx = begin(c, "begin audit record")?;
            table::append(&mut AuditTables(&tx), &self.audit, entry)?;
            tx.commit().map_err(be("commit audit record"))?;
            Ok(())
        })
    }

    fn checkpoint(&self) -> Result<AuditCheckpoint, AuditError> {
        let key = self.audit.key()?;
        self.pool.with_any(|c| {
            let tx = begin(c, "begin audit checkpoint")?;
            let cp = table::checkpoint(&mut AuditTables(&tx), key)?;
            tx.commit().map_err(be("commit audit checkpoint"))?;
            Ok(cp)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditBreak;

    fn rec(token: &str) -> AuditRecord {
        AuditRecord::new(
            token.into(),
            "charge".into(),
            "svc".into(),
            Timestamp::from_millis(1_700_000_000_000),
        )
    }

    fn key() -> AuditKey {
        AuditKey::from_bytes([5; 32])
    }

    fn broke(r: Result<AuditVerified, AuditError>) -> Option<AuditBreak> {
        match r {
            Err(AuditError::Tampered(b)) => Some(b),
            _ => None,
        }
    }

    #[test]
    fn a_row_planted_at_the_lowest_id_is_read_by_the_check() {
        let dir = tempfile::tempdir().expect("dir");
        let vault = SqliteVault::open(dir.path().join("vault.db"))
            .expect("open")
            .with_audit_key(key());
        vault.record(&rec("card_a")).expect("append");
        vault.record(&rec("card_b")).expect("append");
        assert!(vault.verify_audit(&key(), &[]).is_ok());
        // Someone who can write the file but has no key adds a row before all others.
        vault
            .pool
            .with(|c| {
                c.execute_batch(
                    "INSERT INTO audit (id, token, purpose, caller, at)
                     VALUES (-9223372036854775808, 'card_forged', 'charge', 'svc', 1)",
                )
                .map_err(be("plant"))
            })
            .expect("sql");
        assert_eq!(vault.audit_trail(1).expect("trail")[0].token, "card_forged");
        assert!(
            matches!(
                vault.verify_audit(&key(), &[]),
                Err(AuditError::Tampered(_))
            ),
            "the planted row is read and breaks the chain"
        );
    }

    #[test]
    fn every_kind_reads_back_from_the_table_and_a_kind_edited_away_is_caught() {
        use crate::audit::AuditKind;
        let dir = tempfile::tempdir().expect("dir");
        let vault = SqliteVault::open(dir.path().join("vault.db"))
            .expect("open")
            .with_audit_key(key());
        let kinds = AuditKind::every_one();
        for kind in &kinds {
            vault
                .record(&rec("card_x").with_kind(kind.clone()))
                .expect("append");
        }
        let read: Vec<AuditKind> = vault
            .audit_trail(10)
            .expect("trail")
            .into_iter()
            .map(|r| r.kind)
            .collect();
        assert_eq!(read, kinds);
        assert_eq!(vault.verify_audit(&key(), &[]).expect("intact").records, 6);
        vault
            .pool
            .with(|c| {
                c.execute_batch(
                    "UPDATE audit SET purpose = 'charge' WHERE purpose = 'operator#charge'",
                )
                .map_err(be("tamper"))
            })
            .expect("sql");
        assert_eq!(
            broke(vault.verify_audit(&key(), &[])),
            Some(AuditBreak::Edited { record: 2 })
        );
    }

    #[test]
    fn the_audit_table_is_one_keyed_chain_that_names_edits_truncation_and_downgrades() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("vault.db");
        let old = SqliteVault::open(&path).expect("a 0.1 writer");
        old.record(&rec("card_old1")).expect("write");
        old.record(&rec("card_old2")).expect("write");
        // Two processes, as far as the file knows.
        let servers = [
            SqliteVault::open(&path)
                .expect("one")
                .with_audit_key(key())
                .checkpoint_every(5),
            SqliteVault::open(&path)
                .expect("two")
                .with_audit_key(key())
                .checkpoint_every(5),
        ];
        // A keyed writer does not take unkeyed rows over by appending after them.
        assert!(matches!(
            servers[0].record(&rec("card_too_early")),
            Err(AuditError::MigrationRequired)
        ));
        assert_eq!(servers[0].migrate_audit().expect("migrate"), 2);
        assert_eq!(servers[1].migrate_audit().expect("once"), 0);
        std::thread::scope(|s| {
            for (w, v) in servers.iter().enumerate() {
                s.spawn(move || {
                    for i in 0..6 {
                        v.record(&rec(&format!("card_{w}_{i}"))).expect("append");
                    }
                });
            }
        });
        let ok = servers[0].verify_audit(&key(), &[]).expect("intact");
        assert_eq!((ok.records, ok.unkeyed, ok.checkpoints), (15, 2, 3));
        let shipped = servers[1].checkpoint().expect("on demand");
        assert_eq!(shipped.records, 15);
        assert!(matches!(old.checkpoint(), Err(AuditError::KeyRequired)));

        let sql = |q: &str| {
            servers[0]
                .pool
                .with(|c| c.execute_batch(q).map_err(be("tamper")))
                .expect("sql");
        };
        sql("UPDATE audit SET caller = 'nobody' WHERE seq = 7");
        assert_eq!(
            broke(servers[0].verify_audit(&key(), &[shipped])),
            Some(AuditBreak::Edited { record: 7 })
        );
        sql("UPDATE audit SET caller = 'svc' WHERE seq = 7");
        assert!(servers[0].verify_audit(&key(), &[shipped]).is_ok());
        // Its time moved by a millisecond: an edit too.
        sql("UPDATE audit SET at = at + 1 WHERE seq = 8");
        assert_eq!(
            broke(servers[0].verify_audit(&key(), &[shipped])),
            Some(AuditBreak::Edited { record: 8 })
        );
        sql("UPDATE audit SET at = at - 1 WHERE seq = 8");
        assert!(servers[0].verify_audit(&key(), &[shipped]).is_ok());
        sql("UPDATE audit SET seq = 100 WHERE seq = 9");
        assert_eq!(
            broke(servers[0].verify_audit(&key(), &[shipped])),
            Some(AuditBreak::OutOfOrder {
                record: 9,
                sequence: 100
            })
        );
        sql("UPDATE audit SET seq = 9 WHERE seq = 100");
        // The tail cut off with the table's own checkpoints: the shipped one tells.
        sql("DELETE FROM audit WHERE seq > 11; DELETE FROM audit_checkpoint;");
        assert!(
            servers[0].verify_audit(&key(), &[]).is_ok(),
            "only a checkpoint can tell"
        );
        assert_eq!(
            broke(servers[0].verify_audit(&key(), &[shipped])),
            Some(AuditBreak::Truncated {
                checkpoint: 15,
                records: 11
            })
        );
        // A writer without the key after keyed rows: reported, and no keyed writer goes
        // on after it.
        old.record(&rec("card_unkeyed")).expect("write");
        assert_eq!(
            broke(servers[0].verify_audit(&key(), &[])),
            Some(AuditBreak::Downgraded { record: 12 })
        );
        assert!(matches!(
            servers[0].record(&rec("card_after")),
            Err(AuditError::MigrationRequired)
        ));
        // Nor does a migration take a downgrade over.
        assert!(matches!(
            servers[0].migrate_audit(),
            Err(AuditError::Tampered(AuditBreak::Downgraded { .. }))
        ));
        // The whole table replaced by unkeyed rows (the checkpoints gone too): refused.
        sql("DELETE FROM audit; DELETE FROM audit_checkpoint;");
        old.record(&rec("card_made_up")).expect("write");
        assert_eq!(
            broke(servers[0].verify_audit(&key(), &[])),
            Some(AuditBreak::Unmigrated { records: 1 })
        );
    }
}
