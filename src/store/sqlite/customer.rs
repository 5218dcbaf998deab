//! The customer-side SQLite store: credentials, incidents, reset tokens, campaigns and
//! cards on file, in one file so that every multi-row change is one transaction.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::{Pool, Schema, be, begin, to_i64, to_u64};
use crate::card::{CardOnFile, CardOnFileStore};
use crate::minimize::{Action, Planned, RetentionStore, RunReport, TableSpec};
use crate::password::PasswordHash;
use crate::store::rows::{
    CardRow, LaneRow, TokenRow, UNBOUNDED, brand_str, card_from_row, flags_from, generation_from,
    incident_scope, lane_offsets, lane_ranges, lane_state, parse_phc, purpose_str, redeem_refusal,
    stamp_from, token_record,
};
use crate::store::{
    AccountId, BrandId, CampaignId, CampaignState, CampaignStore, ClaimedAccount, CredentialFlags,
    CredentialRecord, CredentialStore, Incident, IncidentId, IncidentScope, IncidentStore,
    RedeemOutcome, Redemption, ResetTokenStore, SELF_SERVICE_LIVE, SecurityStamp, StoreError,
    Timestamp, TokenPurpose, TokenRecord,
};

/// Schema migrations, applied in order; the database's `user_version` is how many ran.
const MIGRATIONS: &[&str] = &[
    // 1: credentials, brands, history, incidents, reset tokens, campaigns.
    "CREATE TABLE credentials (
        account TEXT PRIMARY KEY,
        phc TEXT NOT NULL,
        generation INTEGER NOT NULL,
        set_at INTEGER NOT NULL,
        stamp BLOB NOT NULL,
        flags INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    CREATE TABLE account_brands (
        account TEXT NOT NULL,
        brand TEXT NOT NULL,
        position INTEGER NOT NULL,
        PRIMARY KEY (account, brand)
    ) WITHOUT ROWID;
    CREATE INDEX account_brands_by_brand ON account_brands (brand, account);
    CREATE TABLE password_history (
        account TEXT NOT NULL,
        seq INTEGER NOT NULL,
        phc TEXT NOT NULL,
        PRIMARY KEY (account, seq)
    ) WITHOUT ROWID;
    CREATE TABLE incidents (
        id INTEGER PRIMARY KEY,
        scope TEXT NOT NULL CHECK (scope IN ('all', 'brand', 'accounts')),
        brand TEXT,
        cutoff INTEGER NOT NULL,
        declared_at INTEGER NOT NULL,
        reason TEXT NOT NULL
    );
    CREATE TABLE incident_accounts (
        incident INTEGER NOT NULL,
        account TEXT NOT NULL,
        PRIMARY KEY (incident, account)
    ) WITHOUT ROWID;
    CREATE TABLE reset_tokens (
        account TEXT NOT NULL,
        digest BLOB NOT NULL,
        generation INTEGER NOT NULL,
        purpose TEXT NOT NULL CHECK (purpose IN ('incident', 'self-service')),
        issued_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at INTEGER,
        PRIMARY KEY (account, digest)
    ) WITHOUT ROWID;
    CREATE TABLE campaigns (
        id INTEGER PRIMARY KEY,
        incident INTEGER NOT NULL UNIQUE,
        sent_cursor TEXT,
        sent INTEGER NOT NULL DEFAULT 0,
        started_at INTEGER NOT NULL,
        finished_at INTEGER
    );",
    // 2: cards on file (token, brand, last four, expiry, fingerprint: never a number).
    "CREATE TABLE cards_on_file (
        account TEXT NOT NULL,
        token TEXT NOT NULL,
        brand TEXT NOT NULL,
        last4 TEXT NOT NULL CHECK (length(last4) = 4),
        exp_month INTEGER NOT NULL,
        exp_year INTEGER NOT NULL,
        fingerprint_key TEXT NOT NULL,
        fingerprint BLOB NOT NULL,
        added_at INTEGER NOT NULL,
        PRIMARY KEY (account, token)
    ) WITHOUT ROWID;
    CREATE INDEX cards_on_file_by_fingerprint ON cards_on_file (fingerprint);",
    // 3: retention runs: counts and resume point per run, the proof a run leaves.
    "CREATE TABLE retention_runs (
        run TEXT NOT NULL,
        table_name TEXT NOT NULL,
        last_key TEXT,
        purged INTEGER NOT NULL DEFAULT 0,
        stripped INTEGER NOT NULL DEFAULT 0,
        kept INTEGER NOT NULL DEFAULT 0,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        PRIMARY KEY (run, table_name)
    ) WITHOUT ROWID;",
    // 4: campaigns split into lanes (ranges of accounts, a cursor each) for several
    // workers; an existing campaign becomes lane 0 of 1.
    "CREATE TABLE campaign_lanes (
        id INTEGER PRIMARY KEY,
        incident INTEGER NOT NULL,
        lane INTEGER NOT NULL,
        lanes INTEGER NOT NULL,
        range_after TEXT,
        range_until TEXT,
        sent_cursor TEXT,
        sent INTEGER NOT NULL DEFAULT 0,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        UNIQUE (incident, lane)
    );
    INSERT INTO campaign_lanes (id, incident, lane, lanes, sent_cursor, sent, started_at, finished_at)
        SELECT id, incident, 0, 1, sent_cursor, sent, started_at, finished_at FROM campaigns;
    DROP TABLE campaigns;",
];

const LIST_BATCH: usize = 10_000;

/// All four stores over one SQLite file.
///
/// # Examples
/// ```
/// use shopsafe::store::sqlite::SqliteStore;
///
/// let dir = std::env::temp_dir().join(format!("shopsafe-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let store = SqliteStore::open(dir.join("customers.db"))?;
/// assert_eq!(store.schema_version()?, 4);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SqliteStore {
    pool: Pool,
}

const SCHEMA: Schema = Schema {
    kind: "customer",
    application_id: super::CUSTOMER_APPLICATION_ID,
    migrations: MIGRATIONS,
    dedicated: false,
};

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `path`.
    ///
    /// # Errors
    /// A backend failure, or [`StoreError::SchemaTooNew`] for a database written by a
    /// newer release.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Ok(Self {
            pool: Pool::open(path.as_ref(), &SCHEMA)?,
        })
    }

    /// The database file.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.pool.path()
    }

    /// The schema version (number of migrations applied).
    ///
    /// # Errors
    /// A backend failure.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.pool.schema_version()
    }

    /// Number of credential records.
    ///
    /// # Errors
    /// A backend failure.
    pub fn count_credentials(&self) -> Result<u64, StoreError> {
        self.with(|c| {
            let n: i64 = c
                .query_row("SELECT count(*) FROM credentials", [], |r| r.get(0))
                .map_err(be("count"))?;
            Ok(to_u64(n))
        })
    }

    /// Inserts many credentials in one transaction (seeding, imports). Each item is
    /// `(account, brands, hash, set_at)`; stamps are generated.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] if any account exists (then none is inserted).
    pub fn insert_credentials_bulk<'a>(
        &self,
        items: impl IntoIterator<Item = (&'a AccountId, &'a [BrandId], &'a PasswordHash, Timestamp)>,
    ) -> Result<u64, StoreError> {
        self.with(|c| {
            let tx = begin(c, "begin")?;
            let mut n = 0;
            for (account, brands, hash, set_at) in items {
                insert_credential_in(
                    &tx,
                    account,
                    brands,
                    hash,
                    &SecurityStamp::generate()?,
                    set_at,
                )?;
                n += 1;
            }
            tx.commit().map_err(be("commit bulk insert"))?;
            Ok(n)
        })
    }

    /// Saves many cards on file in one transaction (seeding, imports from a previous
    /// processor). Each item is `(account, card)`, saved as [`CardOnFileStore::save_card`]
    /// saves one.
    ///
    /// # Errors
    /// [`StoreError::Backend`] (then none is saved).
    pub fn save_cards_bulk<'a>(
        &self,
        items: impl IntoIterator<Item = (&'a AccountId, &'a CardOnFile)>,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.with(|c| {
            let tx = begin(c, "begin")?;
            let mut n = 0;
            for (account, card) in items {
                save_card_in(&tx, account, card, now)?;
                n += 1;
            }
            tx.commit().map_err(be("commit bulk card save"))?;
            Ok(n)
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.pool.with(f)
    }
}

fn save_card_in(
    c: &Connection,
    account: &AccountId,
    card: &CardOnFile,
    now: Timestamp,
) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT OR REPLACE INTO cards_on_file
         (account, token, brand, last4, exp_month, exp_year, fingerprint_key, fingerprint, added_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .and_then(|mut s| {
        s.execute(params![
            account.as_str(),
            card.token.as_str(),
            brand_str(card.brand),
            card.last4.as_str(),
            i64::from(card.expiry.month()),
            i64::from(card.expiry.year()),
            card.fingerprint.key_id.as_str(),
            &card.fingerprint.mac[..],
            now.as_millis()
        ])
    })
    .map(drop)
    .map_err(be("save card on file"))
}

fn insert_credential_in(
    tx: &Connection,
    account: &AccountId,
    brands: &[BrandId],
    hash: &PasswordHash,
    stamp: &SecurityStamp,
    now: Timestamp,
) -> Result<(), StoreError> {
    let inserted = tx
        .prepare_cached(
            "INSERT INTO credentials (account, phc, generation, set_at, stamp, flags) VALUES (?1, ?2, 0, ?3, ?4, 0)
             ON CONFLICT (account) DO NOTHING",
        )
        .and_then(|mut s| s.execute(params![account.as_str(), hash.to_phc_string(), now.as_millis(), &stamp.as_bytes()[..]]))
        .map_err(be("insert credential"))?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists);
    }
    let mut stmt = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO account_brands (account, brand, position) VALUES (?1, ?2, ?3)",
        )
        .map_err(be("insert brand"))?;
    for (pos, brand) in brands.iter().enumerate() {
        stmt.execute(params![
            account.as_str(),
            brand.as_str(),
            to_i64(pos as u64)
        ])
        .map_err(be("insert brand"))?;
    }
    Ok(())
}

fn token_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
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

impl CredentialStore for SqliteStore {
    fn insert_credential(
        &self,
        account: &AccountId,
        brands: &[BrandId],
        hash: &PasswordHash,
        stamp: &SecurityStamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = begin(c, "begin")?;
            insert_credential_in(&tx, account, brands, hash, stamp, now)?;
            tx.commit().map_err(be("commit credential"))
        })
    }

    fn load_credential(&self, account: &AccountId) -> Result<Option<CredentialRecord>, StoreError> {
        self.with(|c| {
            let row = c
                .prepare_cached("SELECT phc, generation, set_at, stamp, flags FROM credentials WHERE account = ?1")
                .and_then(|mut s| {
                    s.query_row([account.as_str()], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, r.get::<_, Vec<u8>>(3)?, r.get::<_, i64>(4)?))
                    })
                    .optional()
                })
                .map_err(be("load credential"))?;
            let Some((phc, generation, set_at, stamp, flags)) = row else { return Ok(None) };
            let mut stmt = c
                .prepare_cached("SELECT brand FROM account_brands WHERE account = ?1 ORDER BY position")
                .map_err(be("load brands"))?;
            let brands = stmt
                .query_map([account.as_str()], |r| r.get::<_, String>(0))
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(be("load brands"))?
                .into_iter()
                .map(|b| BrandId::new(b).map_err(|_| StoreError::Corrupt { what: "brand id" }))
                .collect::<Result<_, _>>()?;
            Ok(Some(CredentialRecord {
                account: account.clone(),
                hash: parse_phc(&phc)?,
                generation: generation_from(generation)?,
                set_at: Timestamp::from_millis(set_at),
                stamp: stamp_from(&stamp)?,
                flags: flags_from(flags)?,
                brands,
            }))
        })
    }

    fn replace_hash(
        &self,
        account: &AccountId,
        generation: u64,
        hash: &PasswordHash,
    ) -> Result<bool, StoreError> {
        self.with(|c| {
            c.prepare_cached(
                "UPDATE credentials SET phc = ?3 WHERE account = ?1 AND generation = ?2",
            )
            .and_then(|mut s| {
                s.execute(params![
                    account.as_str(),
                    to_i64(generation),
                    hash.to_phc_string()
                ])
            })
            .map(|n| n == 1)
            .map_err(be("replace hash"))
        })
    }

    fn set_flags(&self, account: &AccountId, flags: CredentialFlags) -> Result<bool, StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE credentials SET flags = ?2 WHERE account = ?1",
                params![account.as_str(), i64::from(flags.bits())],
            )
            .map(|n| n == 1)
            .map_err(be("set flags"))
        })
    }

    fn password_history(
        &self,
        account: &AccountId,
        limit: usize,
    ) -> Result<Vec<PasswordHash>, StoreError> {
        self.with(|c| {
            let mut stmt = c
                .prepare_cached("SELECT phc FROM password_history WHERE account = ?1 ORDER BY seq DESC LIMIT ?2")
                .map_err(be("load history"))?;
            let rows = stmt
                .query_map(params![account.as_str(), to_i64(limit as u64)], |r| r.get::<_, String>(0))
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(be("load history"))?;
            rows.iter().map(|s| parse_phc(s)).collect()
        })
    }
}

impl IncidentStore for SqliteStore {
    fn declare_incident(
        &self,
        scope: &IncidentScope,
        cutoff: Timestamp,
        declared_at: Timestamp,
        reason: &str,
    ) -> Result<Incident, StoreError> {
        let (kind, brand) = match scope {
            IncidentScope::All => ("all", None),
            IncidentScope::Brand(b) => ("brand", Some(b.as_str())),
            IncidentScope::Accounts => ("accounts", None),
        };
        self.with(|c| {
            c.execute(
                "INSERT INTO incidents (scope, brand, cutoff, declared_at, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![kind, brand, cutoff.as_millis(), declared_at.as_millis(), reason],
            )
            .map_err(be("declare incident"))?;
            Ok(Incident {
                id: IncidentId(c.last_insert_rowid()),
                scope: scope.clone(),
                cutoff,
                declared_at,
                reason: reason.to_owned(),
            })
        })
    }

    fn add_incident_accounts(
        &self,
        incident: IncidentId,
        accounts: &mut dyn Iterator<Item = AccountId>,
    ) -> Result<u64, StoreError> {
        let listed = self
            .incidents()?
            .iter()
            .any(|i| i.id == incident && i.scope == IncidentScope::Accounts);
        if !listed {
            return Err(StoreError::NoSuchIncident);
        }
        let mut added = 0u64;
        loop {
            let batch: Vec<AccountId> = (&mut *accounts).take(LIST_BATCH).collect();
            if batch.is_empty() {
                return Ok(added);
            }
            added += self.with(|c| {
                let tx = begin(c, "begin")?;
                let mut n = 0u64;
                {
                    let mut stmt = tx
                        .prepare_cached("INSERT OR IGNORE INTO incident_accounts (incident, account) VALUES (?1, ?2)")
                        .map_err(be("list account"))?;
                    for a in &batch {
                        n += stmt.execute(params![incident.0, a.as_str()]).map_err(be("list account"))? as u64;
                    }
                }
                tx.commit().map_err(be("commit account list"))?;
                Ok(n)
            })?;
        }
    }

    fn incidents(&self) -> Result<Vec<Incident>, StoreError> {
        self.with(|c| {
            let mut stmt = c
                .prepare_cached("SELECT id, scope, brand, cutoff, declared_at, reason FROM incidents ORDER BY id")
                .map_err(be("load incidents"))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
                })
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(be("load incidents"))?;
            rows.into_iter()
                .map(|(id, scope, brand, cutoff, declared_at, reason)| {
                    Ok(Incident {
                        id: IncidentId(id),
                        scope: incident_scope(&scope, brand)?,
                        cutoff: Timestamp::from_millis(cutoff),
                        declared_at: Timestamp::from_millis(declared_at),
                        reason,
                    })
                })
                .collect()
        })
    }

    fn is_listed(&self, incident: IncidentId, account: &AccountId) -> Result<bool, StoreError> {
        self.with(|c| {
            c.prepare_cached("SELECT 1 FROM incident_accounts WHERE incident = ?1 AND account = ?2")
                .and_then(|mut s| s.exists(params![incident.0, account.as_str()]))
                .map_err(be("check incident list"))
        })
    }
}

impl ResetTokenStore for SqliteStore {
    fn issue_token(&self, record: &TokenRecord) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = begin(c, "begin")?;
            if record.purpose == TokenPurpose::SelfService {
                tx.prepare_cached(
                    "DELETE FROM reset_tokens WHERE account = ?1 AND purpose = 'self-service' AND used_at IS NULL
                     AND (expires_at <= ?2 OR digest NOT IN (
                         SELECT digest FROM reset_tokens WHERE account = ?1 AND purpose = 'self-service'
                         AND used_at IS NULL ORDER BY issued_at DESC, digest DESC LIMIT ?3))",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        record.account.as_str(),
                        record.issued_at.as_millis(),
                        to_i64(SELF_SERVICE_LIVE as u64 - 1)
                    ])
                })
                .map_err(be("drop old self-service tokens"))?;
            }
            insert_token(&tx, record)?;
            tx.commit().map_err(be("commit token"))
        })
    }

    fn find_token(
        &self,
        account: &AccountId,
        digest: &[u8; 32],
    ) -> Result<Option<TokenRecord>, StoreError> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT account, digest, generation, purpose, issued_at, expires_at, used_at FROM reset_tokens WHERE account = ?1 AND digest = ?2",
            )
            .and_then(|mut s| s.query_row(params![account.as_str(), &digest[..]], token_from_row).optional())
            .map_err(be("find token"))?
            .map(token_record)
            .transpose()
        })
    }

    fn redeem_token(&self, r: &Redemption<'_>) -> Result<RedeemOutcome, StoreError> {
        self.with(|c| {
            let tx = begin(c, "begin redemption")?;
            let row = tx
                .prepare_cached(
                    "SELECT t.account, t.generation, t.expires_at, t.used_at, c.generation, c.phc
                     FROM reset_tokens t JOIN credentials c ON c.account = t.account WHERE t.account = ?1 AND t.digest = ?2",
                )
                .and_then(|mut s| {
                    s.query_row(params![r.account.as_str(), &r.digest[..]], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, i64>(1)?,
                            row.get::<_, i64>(2)?,
                            row.get::<_, Option<i64>>(3)?,
                            row.get::<_, i64>(4)?,
                            row.get::<_, String>(5)?,
                        ))
                    })
                    .optional()
                })
                .map_err(be("find token"))?;
            let Some((account, token_gen, expires_at, used_at, cred_gen, old_phc)) = row else {
                return Ok(RedeemOutcome::Unknown);
            };
            if let Some(refused) = redeem_refusal(used_at, expires_at, r.now, token_gen, cred_gen) {
                return Ok(refused);
            }
            tx.execute(
                "UPDATE reset_tokens SET used_at = ?3 WHERE account = ?1 AND digest = ?2",
                params![r.account.as_str(), &r.digest[..], r.now.as_millis()],
            )
                .map_err(be("mark token used"))?;
            let keep = to_i64(r.history_keep as u64);
            if keep > 0 {
                tx.execute(
                    "INSERT INTO password_history (account, seq, phc)
                     VALUES (?1, coalesce((SELECT max(seq) FROM password_history WHERE account = ?1), 0) + 1, ?2)",
                    params![account, old_phc],
                )
                .map_err(be("record history"))?;
            }
            tx.execute(
                "DELETE FROM password_history WHERE account = ?1 AND seq <=
                   coalesce((SELECT max(seq) FROM password_history WHERE account = ?1), 0) - ?2",
                params![account, keep],
            )
            .map_err(be("trim history"))?;
            tx.execute(
                "UPDATE credentials SET phc = ?2, generation = generation + 1, set_at = ?3, stamp = ?4,
                   flags = flags & ~?5 WHERE account = ?1",
                params![
                    account,
                    r.new_hash.to_phc_string(),
                    r.now.as_millis(),
                    &r.new_stamp.as_bytes()[..],
                    i64::from(CredentialFlags::MUST_RESET.bits())
                ],
            )
            .map_err(be("write new password"))?;
            tx.commit().map_err(be("commit redemption"))?;
            Ok(RedeemOutcome::Redeemed { account: AccountId::new(account).map_err(|_| StoreError::Corrupt { what: "account id" })? })
        })
    }
}

fn insert_token(c: &Connection, record: &TokenRecord) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO reset_tokens (account, digest, generation, purpose, issued_at, expires_at, used_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL)",
    )
    .and_then(|mut s| {
        s.execute(params![
            record.account.as_str(),
            &record.digest[..],
            to_i64(record.generation),
            purpose_str(record.purpose),
            record.issued_at.as_millis(),
            record.expires_at.as_millis()
        ])
    })
    .map(drop)
    .map_err(be("issue token"))
}

/// The affected-accounts query for an incident (`set_at <= cutoff` mirrors
/// [`Incident::compromises_set_at`]). Parameters, the same for every variant: `?1` after,
/// `?2` cutoff, `?3` limit, `?4` brand or incident id, `?5` until (rows: account,
/// generation, brand).
fn affected_sql(scope: &IncidentScope, count: bool) -> &'static str {
    match (scope, count) {
        (IncidentScope::All, false) => {
            "SELECT c.account, c.generation,
               (SELECT b.brand FROM account_brands b WHERE b.account = c.account ORDER BY b.position LIMIT 1)
             FROM credentials c WHERE c.account > ?1 AND c.account <= ?5 AND c.set_at <= ?2
             ORDER BY c.account LIMIT ?3"
        }
        (IncidentScope::Brand(_), false) => {
            "SELECT c.account, c.generation, b.brand FROM account_brands b JOIN credentials c ON c.account = b.account
             WHERE b.brand = ?4 AND b.account > ?1 AND b.account <= ?5 AND c.set_at <= ?2
             ORDER BY b.account LIMIT ?3"
        }
        (IncidentScope::Accounts, false) => {
            "SELECT c.account, c.generation,
               (SELECT b.brand FROM account_brands b WHERE b.account = c.account ORDER BY b.position LIMIT 1)
             FROM incident_accounts i JOIN credentials c ON c.account = i.account
             WHERE i.incident = ?4 AND i.account > ?1 AND i.account <= ?5 AND c.set_at <= ?2
             ORDER BY i.account LIMIT ?3"
        }
        (IncidentScope::All, true) => {
            "SELECT count(*) FROM credentials c
             WHERE c.account > ?1 AND c.account <= ?5 AND c.set_at <= ?2"
        }
        (IncidentScope::Brand(_), true) => {
            "SELECT count(*) FROM account_brands b JOIN credentials c ON c.account = b.account
             WHERE b.brand = ?4 AND b.account > ?1 AND b.account <= ?5 AND c.set_at <= ?2"
        }
        (IncidentScope::Accounts, true) => {
            "SELECT count(*) FROM incident_accounts i JOIN credentials c ON c.account = i.account
             WHERE i.incident = ?4 AND i.account > ?1 AND i.account <= ?5 AND c.set_at <= ?2"
        }
    }
}

/// The five parameters of [`affected_sql`].
fn affected_params(
    incident: &Incident,
    after: Option<&AccountId>,
    until: Option<&AccountId>,
    limit: Option<usize>,
) -> [rusqlite::types::Value; 5] {
    use rusqlite::types::Value;
    let scope = match &incident.scope {
        IncidentScope::Brand(b) => Value::Text(b.as_str().to_owned()),
        IncidentScope::All | IncidentScope::Accounts => Value::Integer(incident.id.0),
    };
    [
        Value::Text(after.map_or("", AccountId::as_str).to_owned()),
        Value::Integer(incident.cutoff.as_millis()),
        limit.map_or(Value::Null, |n| Value::Integer(to_i64(n as u64))),
        scope,
        Value::Text(until.map_or(UNBOUNDED, AccountId::as_str).to_owned()),
    ]
}

fn lane_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LaneRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

const SELECT_LANES: &str =
    "SELECT id, lane, lanes, range_after, range_until, sent_cursor, sent, finished_at
     FROM campaign_lanes WHERE incident = ?1 ORDER BY lane";

impl CampaignStore for SqliteStore {
    fn open_lanes(
        &self,
        incident: &Incident,
        lanes: usize,
        now: Timestamp,
    ) -> Result<Vec<CampaignState>, StoreError> {
        if !self.incidents()?.iter().any(|i| i.id == incident.id) {
            return Err(StoreError::NoSuchIncident);
        }
        self.with(|c| {
            let tx = begin(c, "begin opening campaign")?;
            let read = |tx: &Connection| {
                tx.prepare_cached(SELECT_LANES)
                    .and_then(|mut s| {
                        s.query_map([incident.id.0], lane_from_row)?
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .map_err(be("load campaign lanes"))
            };
            let mut rows = read(&tx)?;
            if rows.is_empty() {
                let sql = affected_sql(&incident.scope, true);
                // One lane needs no cut, and so no count (a pass over every account).
                let total: i64 = if lanes <= 1 {
                    0
                } else {
                    tx
                    .prepare_cached(sql)
                    .and_then(|mut s| {
                        s.query_row(
                            rusqlite::params_from_iter(affected_params(incident, None, None, None)),
                            |r| r.get(0),
                        )
                    })
                    .map_err(be("count affected"))?
                };
                let mut bounds = Vec::new();
                for offset in lane_offsets(to_u64(total), lanes) {
                    let sql = format!("{} OFFSET {offset}", affected_sql(&incident.scope, false));
                    let account: String = tx
                        .query_row(
                            &sql,
                            rusqlite::params_from_iter(affected_params(incident, None, None, Some(1))),
                            |r| r.get(0),
                        )
                        .map_err(be("split campaign"))?;
                    bounds.push(account);
                }
                let n = to_i64(bounds.len() as u64 + 1);
                for (lane, (after, until)) in lane_ranges(&bounds).into_iter().enumerate() {
                    tx.execute(
                        "INSERT INTO campaign_lanes (incident, lane, lanes, range_after, range_until, started_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![incident.id.0, to_i64(lane as u64), n, after, until, now.as_millis()],
                    )
                    .map_err(be("open campaign"))?;
                }
                rows = read(&tx)?;
            }
            tx.commit().map_err(be("commit campaign lanes"))?;
            rows.into_iter().map(|row| lane_state(incident.id, row)).collect()
        })
    }

    fn count_affected(
        &self,
        incident: &Incident,
        after: Option<&AccountId>,
        until: Option<&AccountId>,
    ) -> Result<u64, StoreError> {
        self.with(|c| {
            let n: i64 = c
                .prepare_cached(affected_sql(&incident.scope, true))
                .and_then(|mut s| {
                    s.query_row(
                        rusqlite::params_from_iter(affected_params(incident, after, until, None)),
                        |r| r.get(0),
                    )
                })
                .map_err(be("count affected"))?;
            Ok(to_u64(n))
        })
    }

    fn claim_batch(
        &self,
        incident: &Incident,
        after: Option<&AccountId>,
        until: Option<&AccountId>,
        limit: usize,
        issue: &mut dyn FnMut(&AccountId, u64) -> Result<TokenRecord, StoreError>,
    ) -> Result<Vec<ClaimedAccount>, StoreError> {
        self.with(|c| {
            let tx = begin(c, "begin claim")?;
            let rows: Vec<(String, i64, Option<String>)> = tx
                .prepare_cached(affected_sql(&incident.scope, false))
                .and_then(|mut stmt| {
                    stmt.query_map(
                        rusqlite::params_from_iter(affected_params(
                            incident,
                            after,
                            until,
                            Some(limit),
                        )),
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )?
                    .collect()
                })
                .map_err(be("select batch"))?;
            let mut claimed = Vec::with_capacity(rows.len());
            for (account, generation, brand) in rows {
                let account = AccountId::new(account)
                    .map_err(|_| StoreError::Corrupt { what: "account id" })?;
                let record = issue(&account, generation_from(generation)?)?;
                insert_token(&tx, &record)?;
                let brand = brand
                    .map(BrandId::new)
                    .transpose()
                    .map_err(|_| StoreError::Corrupt { what: "brand id" })?;
                claimed.push(ClaimedAccount { account, brand });
            }
            tx.commit().map_err(be("commit claim"))?;
            Ok(claimed)
        })
    }

    fn checkpoint(
        &self,
        campaign: CampaignId,
        sent_cursor: &AccountId,
        sent: u64,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            c.prepare_cached("UPDATE campaign_lanes SET sent_cursor = ?2, sent = ?3 WHERE id = ?1")
                .and_then(|mut s| {
                    s.execute(params![campaign.0, sent_cursor.as_str(), to_i64(sent)])
                })
                .map(drop)
                .map_err(be("checkpoint campaign"))
        })
    }

    fn finish_campaign(&self, campaign: CampaignId, now: Timestamp) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE campaign_lanes SET finished_at = ?2 WHERE id = ?1",
                params![campaign.0, now.as_millis()],
            )
            .map(drop)
            .map_err(be("finish campaign"))
        })
    }
}

impl CardOnFileStore for SqliteStore {
    fn save_card(
        &self,
        account: &AccountId,
        card: &CardOnFile,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.with(|c| save_card_in(c, account, card, now))
    }

    fn cards(&self, account: &AccountId) -> Result<Vec<CardOnFile>, StoreError> {
        self.with(|c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT token, brand, last4, exp_month, exp_year, fingerprint_key, fingerprint
                     FROM cards_on_file WHERE account = ?1 ORDER BY added_at, token",
                )
                .map_err(be("load cards on file"))?;
            let rows = stmt
                .query_map([account.as_str()], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                })
                .and_then(Iterator::collect::<Result<Vec<CardRow>, _>>)
                .map_err(be("load cards on file"))?;
            rows.into_iter().map(card_from_row).collect()
        })
    }
}

impl RetentionStore for SqliteStore {
    fn resume_point(&self, run: &str, table: &TableSpec) -> Result<Option<String>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT last_key FROM retention_runs WHERE run = ?1 AND table_name = ?2",
                params![run, table.name()],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(be("read retention run"))
        })
    }

    fn apply_batch(
        &self,
        run: &str,
        table: &TableSpec,
        batch: &[Planned],
    ) -> Result<(), StoreError> {
        // Identifiers were validated by TableSpec (letters, digits, `_`), so quoting them
        // is enough; every value is a bound parameter.
        if let Some(refused) = table.refusal(batch) {
            return Err(StoreError::RetentionRefused(Box::new(refused)));
        }
        let held = table.not_held_sql();
        let delete = format!(
            "DELETE FROM \"{}\" WHERE \"{}\" = ?1{held}",
            table.name(),
            table.key()
        );
        self.with(|c| {
            let tx = begin(c, "begin retention batch")?;
            tx.execute(
                "INSERT OR IGNORE INTO retention_runs (run, table_name, started_at) VALUES (?1, ?2, ?3)",
                params![run, table.name(), Timestamp::now().as_millis()],
            )
            .map_err(be("start retention run"))?;
            let (mut purged, mut stripped, mut kept) = (0i64, 0i64, 0i64);
            for p in batch {
                match &p.action {
                    Action::Purge => {
                        // A row held now (or already gone) is not deleted: counted as kept.
                        let n = tx.prepare_cached(&delete)
                            .and_then(|mut s| s.execute([&p.record.id]))
                            .map_err(be("purge record"))?;
                        if n > 0 { purged += 1 } else { kept += 1 }
                    }
                    Action::StripPii { fields } => {
                        let sets: Vec<String> = fields.iter().map(|f| format!("\"{f}\" = NULL")).collect();
                        let sql = format!("UPDATE \"{}\" SET {} WHERE \"{}\" = ?1{held}", table.name(), sets.join(", "), table.key());
                        let n = tx.prepare_cached(&sql)
                            .and_then(|mut s| s.execute([&p.record.id]))
                            .map_err(be("strip record"))?;
                        if n > 0 { stripped += 1 } else { kept += 1 }
                    }
                    _ => kept += 1,
                }
            }
            let last = batch.last().map(|p| p.record.id.as_str());
            tx.execute(
                "UPDATE retention_runs SET last_key = ?3, purged = purged + ?4, stripped = stripped + ?5,
                   kept = kept + ?6 WHERE run = ?1 AND table_name = ?2",
                params![run, table.name(), last, purged, stripped, kept],
            )
            .map_err(be("record retention progress"))?;
            tx.commit().map_err(be("commit retention batch"))
        })
    }

    fn finish_run(
        &self,
        run: &str,
        table: &TableSpec,
        now: Timestamp,
    ) -> Result<RunReport, StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO retention_runs (run, table_name, started_at) VALUES (?1, ?2, ?3)",
                params![run, table.name(), now.as_millis()],
            )
            .map_err(be("start retention run"))?;
            c.execute(
                "UPDATE retention_runs SET finished_at = coalesce(finished_at, ?3) WHERE run = ?1 AND table_name = ?2",
                params![run, table.name(), now.as_millis()],
            )
            .map_err(be("finish retention run"))?;
            c.query_row(
                "SELECT last_key, purged, stripped, kept, finished_at FROM retention_runs WHERE run = ?1 AND table_name = ?2",
                params![run, table.name()],
                |r| {
                    Ok(RunReport::new(
                        run.to_owned(),
                        table.name().to_owned(),
                        [to_u64(r.get(1)?), to_u64(r.get(2)?), to_u64(r.get(3)?)],
                        r.get(0)?,
                        r.get::<_, Option<i64>>(4)?.map(Timestamp::from_millis),
                    ))
                },
            )
            .map_err(be("read retention run"))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn temp_db() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("customers.db");
        (dir, path)
    }

    #[test]
    fn sqlite_passes_the_store_conformance_suite() {
        let root = tempfile::tempdir().expect("temp dir");
        let n = AtomicUsize::new(0);
        let fresh = || {
            let i = n.fetch_add(1, Ordering::SeqCst);
            SqliteStore::open(root.path().join(format!("conformance-{i}.db"))).expect("open")
        };
        crate::store::conformance::run_all(&fresh);
        assert_eq!(
            n.load(Ordering::SeqCst),
            11,
            "every check ran on its own database"
        );
    }

    #[test]
    fn reopening_keeps_data_and_schema_version() {
        let (_dir, path) = temp_db();
        let store = SqliteStore::open(&path).expect("open");
        let incident = store.declare_incident(
            &IncidentScope::All,
            Timestamp::from_millis(1),
            Timestamp::from_millis(2),
            "x",
        );
        let incident = incident.expect("declare");
        drop(store);
        let store = SqliteStore::open(&path).expect("reopen");
        assert_eq!(
            store.schema_version().expect("version"),
            i64::try_from(MIGRATIONS.len()).expect("small")
        );
        assert_eq!(store.incidents().expect("list"), vec![incident]);
        let mode: String = store
            .with(|c| {
                c.pragma_query_value(None, "journal_mode", |r| r.get(0))
                    .map_err(be("mode"))
            })
            .expect("mode");
        assert_eq!(mode, "wal");
    }

    #[test]
    fn a_database_from_a_newer_release_is_refused() {
        let (_dir, path) = temp_db();
        drop(SqliteStore::open(&path).expect("open"));
        Connection::open(&path)
            .and_then(|c| c.pragma_update(None, "user_version", 99))
            .expect("bump version");
        let err = SqliteStore::open(&path).expect_err("newer schema");
        assert!(
            matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn a_campaign_under_way_survives_the_upgrade_to_lanes() {
        // A file as release 3 left it: a campaign sent up to c0009.
        let (_dir, path) = temp_db();
        {
            let c = Connection::open(&path).expect("raw connection");
            for sql in &MIGRATIONS[..3] {
                c.execute_batch(sql).expect("old migration");
            }
            c.pragma_update(
                None,
                "application_id",
                super::super::CUSTOMER_APPLICATION_ID,
            )
            .expect("mark");
            c.pragma_update(None, "user_version", 3).expect("version");
            c.execute_batch(
                "INSERT INTO incidents (id, scope, cutoff, declared_at, reason) VALUES (7, 'all', 100, 100, 'x');
                 INSERT INTO campaigns (id, incident, sent_cursor, sent, started_at) VALUES (3, 7, 'c0009', 10, 100);",
            )
            .expect("old campaign");
        }
        let store = SqliteStore::open(&path).expect("upgrade");
        assert_eq!(store.schema_version().expect("version"), 4);
        let incident = store.incidents().expect("incidents").remove(0);
        let lanes = store
            .open_lanes(&incident, 4, Timestamp::from_millis(200))
            .expect("lanes");
        assert_eq!(lanes.len(), 1, "the campaign keeps its one lane");
        assert_eq!(
            (lanes[0].id, lanes[0].sent, lanes[0].sent_cursor.clone()),
            (
                CampaignId(3),
                10,
                Some(AccountId::new("c0009").expect("id"))
            )
        );
    }

    #[test]
    fn corrupt_rows_are_typed_errors_not_panics() {
        let (_dir, path) = temp_db();
        let store = SqliteStore::open(&path).expect("open");
        let c = Connection::open(&path).expect("raw connection");
        c.execute(
            "INSERT INTO credentials (account, phc, generation, set_at, stamp, flags) VALUES ('bad', '$argon2id$nope', 0, 0, x'00', 0)",
            [],
        )
        .expect("raw insert");
        let err = store
            .load_credential(&AccountId::new("bad").expect("valid"))
            .expect_err("corrupt");
        assert!(
            matches!(
                err,
                StoreError::Corrupt {
                    what: "password hash"
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn negative_or_oversized_flags_and_generations_are_corrupt() {
        let (_dir, path) = temp_db();
        let store = SqliteStore::open(&path).expect("open");
        let alice = AccountId::new("alice").expect("id");
        let hash = PasswordHash::parse(
            "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$ZxzuUbUsq8PBrbsMvrjJfDQuNcnfiFnVL9F9sIKTZAI",
        )
        .expect("valid phc");
        let stamp = SecurityStamp::from_bytes([3; 16]);
        store
            .insert_credential(&alice, &[], &hash, &stamp, Timestamp::from_millis(1))
            .expect("insert");
        let c = Connection::open(&path).expect("raw connection");
        for (column, value, what) in [
            ("flags", -1_i64, "credential flags"),
            ("flags", 1_i64 << 33, "credential flags"),
            ("generation", -1, "generation"),
        ] {
            c.execute(
                &format!("UPDATE credentials SET flags = 0, generation = 0, {column} = ?1"),
                [value],
            )
            .expect("raw update");
            let err = store.load_credential(&alice).expect_err("corrupt");
            assert!(
                matches!(err, StoreError::Corrupt { what: w } if w == what),
                "{column} = {value}: {err:?}"
            );
        }
        c.execute("UPDATE credentials SET flags = 3, generation = 0", [])
            .expect("raw update");
        let record = store.load_credential(&alice).expect("load").expect("found");
        assert!(record.flags.contains(CredentialFlags::DISABLED));
    }

    #[test]
    fn bulk_insert_is_all_or_nothing() {
        let (_dir, path) = temp_db();
        let store = SqliteStore::open(&path).expect("open");
        let hash = crate::password::Hasher::new(
            crate::password::Params::insecure_for_tests(64, 1, 1).expect("params"),
        )
        .hash(&crate::password::Password::new("bulk insert password"))
        .expect("hash");
        let ids: Vec<AccountId> = ["a", "b", "a"]
            .into_iter()
            .map(|s| AccountId::new(s).expect("valid"))
            .collect();
        let brands = [BrandId::new("shoes").expect("valid")];
        let items = ids
            .iter()
            .map(|a| (a, &brands[..], &hash, Timestamp::from_millis(5)));
        assert!(matches!(
            store.insert_credentials_bulk(items),
            Err(StoreError::AlreadyExists)
        ));
        assert_eq!(store.count_credentials().expect("count"), 0, "rolled back");
        let items = ids[..2]
            .iter()
            .map(|a| (a, &brands[..], &hash, Timestamp::from_millis(5)));
        assert_eq!(store.insert_credentials_bulk(items).expect("insert"), 2);
        assert_eq!(store.count_credentials().expect("count"), 2);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn any_valid_account_id_and_times_round_trip_through_sqlite(
            id in "[^\\p{Cc}]{1,40}",
            set_at in proptest::prelude::any::<i64>(),
            flags in proptest::prelude::any::<u32>(),
        ) {
            let (_dir, path) = temp_db();
            let store = SqliteStore::open(&path).expect("open");
            let account = AccountId::new(id).expect("generated ids are valid");
            let hash = PasswordHash::parse(
                "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$ZxzuUbUsq8PBrbsMvrjJfDQuNcnfiFnVL9F9sIKTZAI",
            )
            .expect("valid phc");
            let stamp = SecurityStamp::from_bytes([3; 16]);
            store.insert_credential(&account, &[], &hash, &stamp, Timestamp::from_millis(set_at)).expect("insert");
            store.set_flags(&account, CredentialFlags::from_bits(flags)).expect("flags");
            let r = store.load_credential(&account).expect("load").expect("present");
            proptest::prop_assert_eq!(r.account, account);
            proptest::prop_assert_eq!(r.set_at, Timestamp::from_millis(set_at));
            proptest::prop_assert_eq!(r.flags.bits(), flags);
            proptest::prop_assert_eq!(r.hash, hash);
        }
    }
}
