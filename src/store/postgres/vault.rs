//! The PostgreSQL vault: sealed card numbers and the detokenize audit trail, in a schema
//! that holds nothing else (`shopsafe_vault` by default), readable by its owner only.

use postgres::{GenericClient, Row};

use super::{PgOptions, Pool, Schema, be, to_i64, to_u64};
use crate::audit::table;
use crate::audit::{AuditCheckpoint, AuditKey, AuditRecord, AuditSink, AuditVerified};
use crate::audit::{AuditError, AuditTx, KeyedAudit, LastRow, PAGE, StoredRow};
use crate::card::{
    CardToken, FindOrInsert, Fingerprint, HeldCard, SealedCard, VaultKeyId, VaultStore,
};
use crate::kernel::Timestamp;
use crate::persist::StoreError;
use crate::store::rows::{
    BUMP_KEY_GENERATION, READ_KEY_GENERATION, fingerprint8, held_card, sealed_card,
};

/// The vault schema's migrations, applied in order; `shopsafe_meta.version` is how many
/// ran.
const MIGRATIONS: &[&str] = &[
    // 1: sealed cards (ciphertext only) and the audit trail; nobody but the owner.
    "CREATE TABLE sealed_cards (
        id BIGSERIAL PRIMARY KEY,
        token TEXT COLLATE \"C\" NOT NULL UNIQUE,
        key_id TEXT NOT NULL,
        nonce BYTEA NOT NULL CHECK (length(nonce) = 24),
        ciphertext BYTEA NOT NULL,
        fingerprint_key TEXT NOT NULL,
        fingerprint BYTEA NOT NULL CHECK (length(fingerprint) = 32),
        fingerprint8 BIGINT NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE INDEX sealed_cards_by_fingerprint8 ON sealed_cards (fingerprint8);
    CREATE INDEX sealed_cards_by_key ON sealed_cards (key_id);
    CREATE TABLE audit (
        id BIGSERIAL PRIMARY KEY,
        token TEXT NOT NULL,
        purpose TEXT NOT NULL,
        caller TEXT NOT NULL,
        at BIGINT NOT NULL
    );
    REVOKE ALL ON SCHEMA \"{schema}\" FROM PUBLIC;
    REVOKE ALL ON ALL TABLES IN SCHEMA \"{schema}\" FROM PUBLIC;
    REVOKE ALL ON ALL SEQUENCES IN SCHEMA \"{schema}\" FROM PUBLIC;",
    // 2: the key generation every server sharing the vault checks before it answers.
    "CREATE TABLE key_generation (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        generation BIGINT NOT NULL
    );
    INSERT INTO key_generation (id, generation) VALUES (1, 0);
    REVOKE ALL ON key_generation FROM PUBLIC;",
    // 3: the keyed audit chain (rows of 0.1 keep NULLs: unkeyed) and its checkpoints.
    "ALTER TABLE audit ADD COLUMN seq BIGINT,
        ADD COLUMN mac BYTEA CHECK (mac IS NULL OR length(mac) = 32);
    CREATE UNIQUE INDEX audit_by_seq ON audit (seq);
    CREATE TABLE audit_checkpoint (
        id BIGSERIAL PRIMARY KEY,
        records BIGINT NOT NULL,
        at BIGINT NOT NULL,
        head BYTEA NOT NULL,
        mac BYTEA NOT NULL
    );
    REVOKE ALL ON audit_checkpoint FROM PUBLIC;
    REVOKE ALL ON ALL SEQUENCES IN SCHEMA \"{schema}\" FROM PUBLIC;",
];

const SCHEMA: Schema = Schema {
    kind: "vault",
    default_name: "shopsafe_vault",
    migrations: MIGRATIONS,
    dedicated: true,
};

/// Sealed card numbers and the audit trail over one PostgreSQL schema
/// (`shopsafe_vault` by default), owned by the payment service's role.
///
/// # Examples
/// ```no_run
/// use shopsafe::store::postgres::{PgOptions, PgVault};
///
/// let vault = PgVault::connect(PgOptions::new("host=/run/postgresql user=shopsafe_vault dbname=shop")?)?;
/// # Ok::<(), shopsafe::persist::StoreError>(())
/// ```
#[derive(Debug)]
pub struct PgVault {
    pool: Pool,
    audit: KeyedAudit,
}

impl PgVault {
    /// Connects, creates the schema if needed (and if the role may), refuses a schema
    /// that holds other tables, and migrates.
    ///
    /// # Errors
    /// A backend failure, [`StoreError::WrongDatabase`] for the customer schema or one
    /// with other tables, [`StoreError::SchemaTooNew`].
    pub fn connect(options: PgOptions) -> Result<Self, StoreError> {
        Ok(Self {
            pool: Pool::open(options, &SCHEMA)?,
            audit: KeyedAudit::NONE,
        })
    }

    /// Keys the audit trail: every record from now on carries its sequence number and
    /// its MAC under `key` (see [`AuditKey`]), written under a lock on the table so that
    /// every server sharing the vault extends one chain, and a checkpoint goes into the
    /// `audit_checkpoint` table every 1,000 records. Rows written before stay unkeyed and
    /// are counted as such by [`PgVault::verify_audit`].
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

    /// The one-time migration of an unkeyed (0.1) audit table to the keyed chain, as
    /// `SqliteVault::migrate_audit` (returns how many unkeyed rows it took over; 0: nothing to migrate).
    ///
    /// # Errors
    /// [`AuditError::KeyRequired`] without an audit key, a backend failure.
    pub fn migrate_audit(&self) -> Result<u64, AuditError> {
        let key = self.audit.key()?;
        self.pool.with_any(|c| {
            let mut tx = c.transaction().map_err(be("begin audit migration"))?;
            let taken = table::migrate(&mut AuditTables(&mut tx), key)?;
            tx.commit().map_err(be("commit audit migration"))?;
            Ok(taken)
        })
    }

    /// Checks the audit table under `key`: every keyed row's MAC and sequence number, in
    /// insertion order, and the trail against the checkpoints in the table and `shipped`.
    /// Reads 10,000 rows at a time.
    ///
    /// # Errors
    /// [`AuditError::Tampered`] naming what was changed, a backend failure.
    pub fn verify_audit(
        &self,
        key: &AuditKey,
        shipped: &[AuditCheckpoint],
    ) -> Result<AuditVerified, AuditError> {
        table::verify(key, self.audit_checkpoints()?, shipped, |from| {
            let rows = self.pool.with(|c| {
                c.query(
                    "SELECT id, token, purpose, caller, at, seq, mac FROM audit
                     WHERE id >= $1 ORDER BY id LIMIT $2",
                    &[&from, &PAGE],
                )
                .map_err(be("read audit trail"))
            })?;
            Ok(rows
                .iter()
                .map(|r| StoredRow {
                    id: r.get(0),
                    record: AuditRecord::from_stored(
                        r.get(1),
                        r.get::<_, &str>(2),
                        r.get(3),
                        Timestamp::from_millis(r.get(4)),
                    ),
                    seq: r.get(5),
                    mac: r.get(6),
                })
                .collect())
        })
    }

    /// The checkpoints kept in the table, oldest first (checked by
    /// [`PgVault::verify_audit`], not here).
    ///
    /// # Errors
    /// A backend failure, [`StoreError::Corrupt`] for a row that is not a checkpoint.
    pub fn audit_checkpoints(&self) -> Result<Vec<AuditCheckpoint>, AuditError> {
        self.pool.with_any(|c| {
            c.query(
                "SELECT records, at, head, mac FROM audit_checkpoint ORDER BY id",
                &[],
            )
            .map_err(be("read audit checkpoints"))?
            .iter()
            .map(|r| AuditCheckpoint::from_columns(r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect()
        })
    }

    /// The schema this vault lives in.
    #[must_use]
    pub fn schema(&self) -> &str {
        &self.pool.schema
    }

    /// The first `limit` audit records, oldest first.
    ///
    /// # Errors
    /// A backend failure.
    pub fn audit_trail(&self, limit: usize) -> Result<Vec<AuditRecord>, AuditError> {
        Ok(self.pool.with(|c| {
            c.query(
                "SELECT token, purpose, caller, at FROM audit ORDER BY id LIMIT $1",
                &[&to_i64(limit as u64)],
            )
            .map_err(be("read audit trail"))
            .map(|rows| {
                rows.iter()
                    .map(|r| {
                        AuditRecord::from_stored(
                            r.get(0),
                            r.get::<_, &str>(1),
                            r.get(2),
                            Timestamp::from_millis(r.get(3)),
                        )
                    })
                    .collect()
            })
        })?)
    }
}

fn sealed(r: &Row) -> Result<SealedCard, StoreError> {
    sealed_card((
        r.get(0),
        r.get(1),
        r.get(2),
        r.get(3),
        r.get(4),
        r.get(5),
        r.get(6),
    ))
}

const SELECT_SEALED: &str = "SELECT token, key_id, nonce, ciphertext, fingerprint_key, fingerprint, created_at FROM sealed_cards";

const INSERT_SEALED: &str = "INSERT INTO sealed_cards
    (token, key_id, nonce, ciphertext, fingerprint_key, fingerprint, created_at, fingerprint8)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
/// The first of `fingerprints` (in their order) that a stored card carries, with its token.
fn find_in(
    c: &mut impl GenericClient,
    fingerprints: &[Fingerprint],
) -> Result<Option<HeldCard>, StoreError> {
    for fp in fingerprints {
        let found = c
            .query_opt(
                "SELECT token FROM sealed_cards
                 WHERE fingerprint8 = $3 AND fingerprint_key = $1 AND fingerprint = $2 LIMIT 1",
                &[&fp.key_id.as_str(), &&fp.mac[..], &fingerprint8(&fp.mac)],
            )
            .map_err(be("find by fingerprint"))?;
        if let Some(r) = found {
            return held_card(r.get(0), fp).map(Some);
        }
    }
    Ok(None)
}

fn write_in(
    c: &mut impl GenericClient,
    card: &SealedCard,
    sql: &str,
    what: &'static str,
) -> Result<(), StoreError> {
    c.execute(
        sql,
        &[
            &card.token.as_str(),
            &card.key_id.as_str(),
            &&card.nonce[..],
            &card.ciphertext,
            &card.fingerprint.key_id.as_str(),
            &&card.fingerprint.mac[..],
            &card.created_at.as_millis(),
            &fingerprint8(&card.fingerprint.mac),
        ],
    )
    .map(drop)
    .map_err(be(what))
}

impl PgVault {
    /// Writes `cards` with `sql` over the eight unnested column arrays (`$1`..`$8`, in
    /// [`INSERT_SEALED`]'s column order), 5,000 rows a statement, in one transaction: one round
    /// trip per 5,000 cards rather than one per card.
    fn write_all(
        &self,
        cards: &[SealedCard],
        sql: &str,
        what: &'static str,
    ) -> Result<(), StoreError> {
        self.pool.with(|c| {
            let mut tx = c.transaction().map_err(be(what))?;
            let statement = tx.prepare(sql).map_err(be(what))?;
            for chunk in cards.chunks(5_000) {
                let tokens: Vec<&str> = chunk.iter().map(|c| c.token.as_str()).collect();
                let keys: Vec<&str> = chunk.iter().map(|c| c.key_id.as_str()).collect();
                let nonces: Vec<&[u8]> = chunk.iter().map(|c| &c.nonce[..]).collect();
                let sealed: Vec<&[u8]> = chunk.iter().map(|c| c.ciphertext.as_slice()).collect();
                let fp_keys: Vec<&str> = chunk
                    .iter()
                    .map(|c| c.fingerprint.key_id.as_str())
                    .collect();
                let fps: Vec<&[u8]> = chunk.iter().map(|c| &c.fingerprint.mac[..]).collect();
                let created: Vec<i64> = chunk.iter().map(|c| c.created_at.as_millis()).collect();
                let fp8: Vec<i64> = chunk
                    .iter()
                    .map(|c| fingerprint8(&c.fingerprint.mac))
                    .collect();
                tx.execute(
                    &statement,
                    &[
                        &tokens, &keys, &nonces, &sealed, &fp_keys, &fps, &created, &fp8,
                    ],
                )
                .map_err(be(what))?;
            }
            tx.commit().map_err(be(what))
        })
    }
}

/// The unnested rows of [`PgVault::write_all`].
const UNNEST_SEALED: &str = "unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[], $5::text[],
    $6::bytea[], $7::bigint[], $8::bigint[])
    AS u (token, key_id, nonce, ciphertext, fingerprint_key, fingerprint, created_at, fingerprint8)";

impl VaultStore for PgVault {
    fn insert_sealed(&self, cards: &[SealedCard]) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO sealed_cards
             (token, key_id, nonce, ciphertext, fingerprint_key, fingerprint, created_at, fingerprint8)
             SELECT * FROM {UNNEST_SEALED}"
        );
        self.write_all(cards, &sql, "insert sealed cards")
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
            let mut tx = c.transaction().map_err(be("begin tokenize"))?;
            // Two checkouts storing the same new card at once: the second waits here for
            // the first to commit, then finds its token.
            tx.execute(
                "SELECT pg_advisory_xact_lock($1)",
                &[&fingerprint8(&card.fingerprint.mac)],
            )
            .map_err(be("lock fingerprint"))?;
            if let Some(held) = find_in(&mut tx, fingerprints)? {
                return Ok(FindOrInsert::Found(held));
            }
            write_in(&mut tx, card, INSERT_SEALED, "insert sealed card")?;
            tx.commit().map_err(be("commit tokenize"))?;
            Ok(FindOrInsert::Inserted)
        })
    }

    fn load_sealed(&self, token: &CardToken) -> Result<Option<SealedCard>, StoreError> {
        self.pool.with(|c| {
            c.query_opt(
                &format!("{SELECT_SEALED} WHERE token = $1"),
                &[&token.as_str()],
            )
            .map_err(be("load sealed card"))?
            .map(|r| sealed(&r))
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
            c.query(
                &format!(
                    "{SELECT_SEALED} WHERE key_id <> $1 AND token > $2 ORDER BY token LIMIT $3"
                ),
                &[
                    &key_id.as_str(),
                    &after.map_or("", CardToken::as_str),
                    &to_i64(limit as u64),
                ],
            )
            .map_err(be("select rows to rewrap"))?
            .iter()
            .map(sealed)
            .collect()
        })
    }

    fn replace_sealed(&self, cards: &[SealedCard]) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE sealed_cards s SET key_id = u.key_id, nonce = u.nonce,
               ciphertext = u.ciphertext, fingerprint_key = u.fingerprint_key,
               fingerprint = u.fingerprint, created_at = u.created_at,
               fingerprint8 = u.fingerprint8
             FROM {UNNEST_SEALED} WHERE s.token = u.token"
        );
        self.write_all(cards, &sql, "replace sealed cards")
    }

    fn key_generation(&self) -> Result<u64, StoreError> {
        self.generation(READ_KEY_GENERATION, "read key generation")
    }

    fn bump_key_generation(&self) -> Result<u64, StoreError> {
        self.generation(BUMP_KEY_GENERATION, "bump key generation")
    }

    fn count_under(&self, key_id: &VaultKeyId) -> Result<u64, StoreError> {
        self.pool.with(|c| {
            c.query_one(
                "SELECT count(*) FROM sealed_cards WHERE key_id = $1",
                &[&key_id.as_str()],
            )
            .map(|r| to_u64(r.get(0)))
            .map_err(be("count sealed cards"))
        })
    }
}

impl PgVault {
    fn generation(&self, sql: &str, what: &'static str) -> Result<u64, StoreError> {
        self.pool.with(|c| {
            c.query_one(sql, &[])
                .map(|r| to_u64(r.get(0)))
                .map_err(be(what))
        })
    }
}

/// The audit tables, through a client or a transaction on it.
struct AuditTables<'a, C>(&'a mut C);

impl<C: GenericClient> AuditTx for AuditTables<'_, C> {
    fn last_row(&mut self) -> Result<LastRow, StoreError> {
        self.0
            .batch_execute("LOCK TABLE audit IN SHARE ROW EXCLUSIVE MODE")
            .map_err(be("lock audit trail"))?;
        Ok(self
            .0
            .query_opt("SELECT seq, mac FROM audit ORDER BY id DESC LIMIT 1", &[])
            .map_err(be("read audit head"))?
            .map(|r| (r.get(0), r.get(1))))
    }

    fn count(&mut self, keyed_only: bool) -> Result<u64, StoreError> {
        let sql = if keyed_only {
            "SELECT count(*) FROM audit WHERE seq IS NOT NULL"
        } else {
            "SELECT count(*) FROM audit"
        };
        self.0
            .query_one(sql, &[])
            .map(|r| to_u64(r.get(0)))
            .map_err(be("count audit records"))
    }

    fn insert(
        &mut self,
        entry: &AuditRecord,
        link: Option<(u64, &[u8; 32])>,
    ) -> Result<(), StoreError> {
        self.0
            .execute(
                "INSERT INTO audit (token, purpose, caller, at, seq, mac)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &entry.token,
                    &entry.stored_purpose(),
                    &entry.caller,
                    &entry.at.as_millis(),
                    &link.map(|(seq, _)| to_i64(seq)),
                    &link.map(|(_, mac)| &mac[..]),
                ],
            )
            .map(drop)
            .map_err(be("write audit record"))
    }

    fn insert_checkpoint(&mut self, cp: &AuditCheckpoint) -> Result<(), StoreError> {
        self.0
            .execute(
                "INSERT INTO audit_checkpoint (records, at, head, mac) VALUES ($1, $2, $3, $4)",
                &[
                    &to_i64(cp.records),
                    &cp.at.as_millis(),
                    &&cp.head[..],
                    &&cp.mac()[..],
                ],
            )
            .map(drop)
            .map_err(be("write audit checkpoint"))
    }
}

impl AuditSink for PgVault {
    fn record(&self, entry: &AuditRecord) -> Result<(), AuditError> {
        if self.audit.key.is_none() {
            return self
                .pool
                .with_any(|c| table::append(&mut AuditTables(c), &self.audit, entry));
        }
        self.pool.with_any(|c| {
            let mut tx = c.transaction().map_err(be("begin audit record"))?;
            table::append(&mut AuditTables(&mut tx), &self.audit, entry)?;
            tx.commit().map_err(be("commit audit record"))?;
            Ok(())
        })
    }

    fn checkpoint(&self) -> Result<AuditCheckpoint, AuditError> {
        let key = self.audit.key()?;
        self.pool.with_any(|c| {
            let mut tx = c.transaction().map_err(be("begin audit checkpoint"))?;
            let cp = table::checkpoint(&mut AuditTables(&mut tx), key)?;
            tx.commit().map_err(be("commit audit checkpoint"))?;
            Ok(cp)
        })
    }
}
