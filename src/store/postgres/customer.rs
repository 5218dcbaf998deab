//! The customer-side PostgreSQL store: credentials, incidents, reset tokens, campaigns,
//! cards on file and retention runs, in one schema so that every multi-row change is one
//! transaction.

use postgres::{GenericClient, Row};

use super::{PgOptions, Pool, Schema, be, to_i64, to_u64};
use crate::card::{CardOnFile, CardOnFileStore};
use crate::minimize::{Action, Planned, RetentionStore, RunReport, TableSpec};
use crate::password::PasswordHash;
use crate::store::rows::{
    CardRow, LaneRow, TokenRow, UNBOUNDED, brand_str, card_from_row, flags_from, generation_from,
    lane_offsets, lane_ranges, lane_state, parse_phc, purpose_str, stamp_from, token_record,
};
use crate::store::{
    AccountId, BrandId, CampaignId, CampaignState, CampaignStore, ClaimedAccount, CredentialFlags,
    CredentialRecord, CredentialStore, Incident, IncidentId, IncidentScope, IncidentStore,
    RedeemOutcome, Redemption, ResetTokenStore, SELF_SERVICE_LIVE, SecurityStamp, StoreError,
    Timestamp, TokenPurpose, TokenRecord,
};

/// Schema migrations, applied in order; `shopsafe_meta.version` is how many ran. Account
/// ids are `COLLATE "C"`: campaign cursors walk byte order, as on SQLite.
const MIGRATIONS: &[&str] = &[
    // 1: credentials, brands, history, incidents, reset tokens, campaigns.
    "CREATE TABLE credentials (
        account TEXT COLLATE \"C\" PRIMARY KEY,
        phc TEXT NOT NULL,
        generation BIGINT NOT NULL,
        set_at BIGINT NOT NULL,
        stamp BYTEA NOT NULL,
        flags BIGINT NOT NULL DEFAULT 0
    );
    CREATE TABLE account_brands (
        account TEXT COLLATE \"C\" NOT NULL,
        brand TEXT NOT NULL,
        position BIGINT NOT NULL,
        PRIMARY KEY (account, brand)
    );
    CREATE INDEX account_brands_by_brand ON account_brands (brand, account);
    CREATE TABLE password_history (
        account TEXT COLLATE \"C\" NOT NULL,
        seq BIGINT NOT NULL,
        phc TEXT NOT NULL,
        PRIMARY KEY (account, seq)
    );
    CREATE TABLE incidents (
        id BIGSERIAL PRIMARY KEY,
        scope TEXT NOT NULL CHECK (scope IN ('all', 'brand', 'accounts')),
        brand TEXT,
        cutoff BIGINT NOT NULL,
        declared_at BIGINT NOT NULL,
        reason TEXT NOT NULL
    );
    CREATE TABLE incident_accounts (
        incident BIGINT NOT NULL,
        account TEXT COLLATE \"C\" NOT NULL,
        PRIMARY KEY (incident, account)
    );
    CREATE TABLE reset_tokens (
        account TEXT COLLATE \"C\" NOT NULL,
        digest BYTEA NOT NULL,
        generation BIGINT NOT NULL,
        purpose TEXT NOT NULL CHECK (purpose IN ('incident', 'self-service')),
        issued_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        used_at BIGINT,
        PRIMARY KEY (account, digest)
    );
    CREATE TABLE campaigns (
        id BIGSERIAL PRIMARY KEY,
        incident BIGINT NOT NULL UNIQUE,
        sent_cursor TEXT COLLATE \"C\",
        sent BIGINT NOT NULL DEFAULT 0,
        started_at BIGINT NOT NULL,
        finished_at BIGINT
    );",
    // 2: cards on file (token, brand, last four, expiry, fingerprint: never a number).
    "CREATE TABLE cards_on_file (
        account TEXT COLLATE \"C\" NOT NULL,
        token TEXT COLLATE \"C\" NOT NULL,
        brand TEXT NOT NULL,
        last4 TEXT NOT NULL CHECK (length(last4) = 4),
        exp_month BIGINT NOT NULL,
        exp_year BIGINT NOT NULL,
        fingerprint_key TEXT NOT NULL,
        fingerprint BYTEA NOT NULL,
        added_at BIGINT NOT NULL,
        PRIMARY KEY (account, token)
    );
    CREATE INDEX cards_on_file_by_fingerprint ON cards_on_file (fingerprint);",
    // 3: retention runs: counts and resume point per run, the proof a run leaves.
    "CREATE TABLE retention_runs (
        run TEXT NOT NULL,
        table_name TEXT NOT NULL,
        last_key TEXT COLLATE \"C\",
        purged BIGINT NOT NULL DEFAULT 0,
        stripped BIGINT NOT NULL DEFAULT 0,
        kept BIGINT NOT NULL DEFAULT 0,
        started_at BIGINT NOT NULL,
        finished_at BIGINT,
        PRIMARY KEY (run, table_name)
    );",
    // 4: campaigns split into lanes (ranges of accounts, a cursor each) for several
    // workers; an existing campaign becomes lane 0 of 1.
    "CREATE TABLE campaign_lanes (
        id BIGSERIAL PRIMARY KEY,
        incident BIGINT NOT NULL,
        lane BIGINT NOT NULL,
        lanes BIGINT NOT NULL,
        range_after TEXT COLLATE \"C\",
        range_until TEXT COLLATE \"C\",
        sent_cursor TEXT COLLATE \"C\",
        sent BIGINT NOT NULL DEFAULT 0,
        started_at BIGINT NOT NULL,
        finished_at BIGINT,
        UNIQUE (incident, lane)
    );
    INSERT INTO campaign_lanes (id, incident, lane, lanes, sent_cursor, sent, started_at, finished_at)
        SELECT id, incident, 0, 1, sent_cursor, sent, started_at, finished_at FROM campaigns;
    SELECT setval(pg_get_serial_sequence('campaign_lanes', 'id'), coalesce(max(id), 0) + 1, false)
        FROM campaign_lanes;
    DROP TABLE campaigns;",
];

const SCHEMA: Schema = Schema {
    kind: "customer",
    default_name: "shopsafe",
    migrations: MIGRATIONS,
    dedicated: false,
};

const LIST_BATCH: usize = 10_000;

/// Every customer-side store over one PostgreSQL schema (`shopsafe` by default).
///
/// # Examples
/// ```no_run
/// use shopsafe::store::postgres::{PgOptions, PgStore};
///
/// let store = PgStore::connect(PgOptions::new("host=/run/postgresql user=shopsafe_customer dbname=shop")?)?;
/// assert_eq!(store.schema_version()?, 4);
/// # Ok::<(), shopsafe::store::StoreError>(())
/// ```
#[derive(Debug)]
pub struct PgStore {
    pool: Pool,
}

impl PgStore {
    /// Connects, creates the schema if needed (and if the role may), and migrates it.
    ///
    /// # Errors
    /// A backend failure, [`StoreError::WrongDatabase`] for a vault's schema, or
    /// [`StoreError::SchemaTooNew`] for a schema written by a newer release.
    pub fn connect(options: PgOptions) -> Result<Self, StoreError> {
        Ok(Self {
            pool: Pool::open(options, &SCHEMA)?,
        })
    }

    /// The schema this store lives in.
    #[must_use]
    pub fn schema(&self) -> &str {
        &self.pool.schema
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
        self.pool.with(|c| {
            c.query_one("SELECT count(*) FROM credentials", &[])
                .map(|r| to_u64(r.get(0)))
                .map_err(be("count"))
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
        self.pool.with(|c| {
            let mut tx = c.transaction().map_err(be("begin"))?;
            let mut n = 0;
            for (account, brands, hash, set_at) in items {
                let stamp = SecurityStamp::generate()?;
                insert_credential_in(&mut tx, account, brands, hash, &stamp, set_at)?;
                n += 1;
            }
            tx.commit().map_err(be("commit bulk insert"))?;
            Ok(n)
        })
    }

    /// Saves many cards on file in one transaction (seeding, imports).
    ///
    /// # Errors
    /// [`StoreError::Backend`] (then none is saved).
    pub fn save_cards_bulk<'a>(
        &self,
        items: impl IntoIterator<Item = (&'a AccountId, &'a CardOnFile)>,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.pool.with(|c| {
            let mut tx = c.transaction().map_err(be("begin"))?;
            let mut n = 0;
            for (account, card) in items {
                save_card_in(&mut tx, account, card, now)?;
                n += 1;
            }
            tx.commit().map_err(be("commit bulk card save"))?;
            Ok(n)
        })
    }
}

fn insert_credential_in(
    tx: &mut impl GenericClient,
    account: &AccountId,
    brands: &[BrandId],
    hash: &PasswordHash,
    stamp: &SecurityStamp,
    now: Timestamp,
) -> Result<(), StoreError> {
    let inserted = tx
        .execute(
            "INSERT INTO credentials (account, phc, generation, set_at, stamp, flags)
             VALUES ($1, $2, 0, $3, $4, 0) ON CONFLICT (account) DO NOTHING",
            &[
                &account.as_str(),
                &hash.to_phc_string(),
                &now.as_millis(),
                &&stamp.as_bytes()[..],
            ],
        )
        .map_err(be("insert credential"))?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists);
    }
    for (pos, brand) in brands.iter().enumerate() {
        tx.execute(
            "INSERT INTO account_brands (account, brand, position) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&account.as_str(), &brand.as_str(), &to_i64(pos as u64)],
        )
        .map_err(be("insert brand"))?;
    }
    Ok(())
}

fn save_card_in(
    c: &mut impl GenericClient,
    account: &AccountId,
    card: &CardOnFile,
    now: Timestamp,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO cards_on_file
         (account, token, brand, last4, exp_month, exp_year, fingerprint_key, fingerprint, added_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (account, token) DO UPDATE SET brand = EXCLUDED.brand, last4 = EXCLUDED.last4,
           exp_month = EXCLUDED.exp_month, exp_year = EXCLUDED.exp_year,
           fingerprint_key = EXCLUDED.fingerprint_key, fingerprint = EXCLUDED.fingerprint,
           added_at = EXCLUDED.added_at",
        &[
            &account.as_str(),
            &card.token.as_str(),
            &brand_str(card.brand),
            &card.last4.as_str(),
            &i64::from(card.expiry.month()),
            &i64::from(card.expiry.year()),
            &card.fingerprint.key_id.as_str(),
            &&card.fingerprint.mac[..],
            &now.as_millis(),
        ],
    )
    .map(drop)
    .map_err(be("save card on file"))
}

fn token_row(r: &Row) -> TokenRow {
    (
        r.get(0),
        r.get(1),
        r.get(2),
        r.get(3),
        r.get(4),
        r.get(5),
        r.get(6),
    )
}

fn insert_token(c: &mut impl GenericClient, record: &TokenRecord) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO reset_tokens (account, digest, generation, purpose, issued_at, expires_at, used_at)
         VALUES ($1, $2, $3, $4, $5, $6, NULL)",
        &[
            &record.account.as_str(),
            &&record.digest[..],
            &to_i64(record.generation),
            &purpose_str(record.purpose),
            &record.issued_at.as_millis(),
            &record.expires_at.as_millis(),
        ],
    )
    .map(drop)
    .map_err(be("issue token"))
}

fn corrupt_account(_: crate::kernel::InvalidId) -> StoreError {
    StoreError::Corrupt { what: "account id" }
}

impl CredentialStore for PgStore {
    fn insert_credential(
        &self,
        account: &AccountId,
        brands: &[BrandId],
        hash: &PasswordHash,
        stamp: &SecurityStamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.pool.with(|c| {
            let mut tx = c.transaction().map_err(be("begin"))?;
            insert_credential_in(&mut tx, account, brands, hash, stamp, now)?;
            tx.commit().map_err(be("commit credential"))
        })
    }

    fn load_credential(&self, account: &AccountId) -> Result<Option<CredentialRecord>, StoreError> {
        self.pool.with(|c| {
            let Some(row) = c
                .query_opt(
                    "SELECT phc, generation, set_at, stamp, flags FROM credentials WHERE account = $1",
                    &[&account.as_str()],
                )
                .map_err(be("load credential"))?
            else {
                return Ok(None);
            };
            let brands = c
                .query(
                    "SELECT brand FROM account_brands WHERE account = $1 ORDER BY position",
                    &[&account.as_str()],
                )
                .map_err(be("load brands"))?
                .iter()
                .map(|r| {
                    BrandId::new(r.get::<_, String>(0))
                        .map_err(|_| StoreError::Corrupt { what: "brand id" })
                })
                .collect::<Result<_, _>>()?;
            let phc: String = row.get(0);
            let stamp: Vec<u8> = row.get(3);
            Ok(Some(CredentialRecord {
                account: account.clone(),
                hash: parse_phc(&phc)?,
                generation: generation_from(row.get(1))?,
                set_at: Timestamp::from_millis(row.get(2)),
                stamp: stamp_from(&stamp)?,
                flags: flags_from(row.get(4))?,
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
        self.pool.with(|c| {
            c.execute(
                "UPDATE credentials SET phc = $3 WHERE account = $1 AND generation = $2",
                &[
                    &account.as_str(),
                    &to_i64(generation),
                    &hash.to_phc_string(),
                ],
            )
            .map(|n| n == 1)
            .map_err(be("replace hash"))
        })
    }

    fn set_flags(&self, account: &AccountId, flags: CredentialFlags) -> Result<bool, StoreError> {
        self.pool.with(|c| {
            c.execute(
                "UPDATE credentials SET flags = $2 WHERE account = $1",
                &[&account.as_str(), &i64::from(flags.bits())],
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
        self.pool.with(|c| {
            c.query(
                "SELECT phc FROM password_history WHERE account = $1 ORDER BY seq DESC LIMIT $2",
                &[&account.as_str(), &to_i64(limit as u64)],
            )
            .map_err(be("load history"))?
            .iter()
            .map(|r| parse_phc(r.get(0)))
            .collect()
        })
    }
}

impl IncidentStore for PgStore {
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
        self.pool.with(|c| {
            let id: i64 = c
                .query_one(
                    "INSERT INTO incidents (scope, brand, cutoff, declared_at, reason)
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                    &[
                        &kind,
                        &brand,
                        &cutoff.as_millis(),
                        &declared_at.as_millis(),
                        &reason,
                    ],
                )
                .map_err(be("declare incident"))?
                .get(0);
            Ok(Incident {
                id: IncidentId(id),
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
            let batch: Vec<String> = (&mut *accounts)
                .take(LIST_BATCH)
                .map(|a| a.as_str().to_owned())
                .collect();
            if batch.is_empty() {
                return Ok(added);
            }
            added += self.pool.with(|c| {
                c.execute(
                    "INSERT INTO incident_accounts (incident, account)
                     SELECT $1, a FROM unnest($2::text[]) AS a ON CONFLICT DO NOTHING",
                    &[&incident.0, &batch],
                )
                .map_err(be("list accounts"))
            })?;
        }
    }

    fn incidents(&self) -> Result<Vec<Incident>, StoreError> {
        self.pool.with(|c| {
            c.query(
                "SELECT id, scope, brand, cutoff, declared_at, reason FROM incidents ORDER BY id",
                &[],
            )
            .map_err(be("load incidents"))?
            .iter()
            .map(|r| {
                let scope = match (r.get::<_, &str>(1), r.get::<_, Option<String>>(2)) {
                    ("all", _) => IncidentScope::All,
                    ("accounts", _) => IncidentScope::Accounts,
                    ("brand", Some(b)) => IncidentScope::Brand(
                        BrandId::new(b).map_err(|_| StoreError::Corrupt { what: "brand id" })?,
                    ),
                    _ => {
                        return Err(StoreError::Corrupt {
                            what: "incident scope",
                        });
                    }
                };
                Ok(Incident {
                    id: IncidentId(r.get(0)),
                    scope,
                    cutoff: Timestamp::from_millis(r.get(3)),
                    declared_at: Timestamp::from_millis(r.get(4)),
                    reason: r.get(5),
                })
            })
            .collect()
        })
    }

    fn is_listed(&self, incident: IncidentId, account: &AccountId) -> Result<bool, StoreError> {
        self.pool.with(|c| {
            c.query_opt(
                "SELECT 1 FROM incident_accounts WHERE incident = $1 AND account = $2",
                &[&incident.0, &account.as_str()],
            )
            .map(|r| r.is_some())
            .map_err(be("check incident list"))
        })
    }
}

impl ResetTokenStore for PgStore {
    fn issue_token(&self, record: &TokenRecord) -> Result<(), StoreError> {
        self.pool.with(|c| {
            let mut tx = c.transaction().map_err(be("begin"))?;
            if record.purpose == TokenPurpose::SelfService {
                tx.execute(
                    "DELETE FROM reset_tokens WHERE account = $1 AND purpose = 'self-service' AND used_at IS NULL
                     AND (expires_at <= $2 OR digest NOT IN (
                         SELECT digest FROM reset_tokens WHERE account = $1 AND purpose = 'self-service'
                         AND used_at IS NULL ORDER BY issued_at DESC, digest DESC LIMIT $3))",
                    &[
                        &record.account.as_str(),
                        &record.issued_at.as_millis(),
                        &to_i64(SELF_SERVICE_LIVE as u64 - 1),
                    ],
                )
                .map_err(be("drop old self-service tokens"))?;
            }
            insert_token(&mut tx, record)?;
            tx.commit().map_err(be("commit token"))
        })
    }

    fn find_token(
        &self,
        account: &AccountId,
        digest: &[u8; 32],
    ) -> Result<Option<TokenRecord>, StoreError> {
        self.pool.with(|c| {
            c.query_opt(
                "SELECT account, digest, generation, purpose, issued_at, expires_at, used_at
                 FROM reset_tokens WHERE account = $1 AND digest = $2",
                &[&account.as_str(), &&digest[..]],
            )
            .map_err(be("find token"))?
            .map(|r| token_record(token_row(&r)))
            .transpose()
        })
    }

    fn redeem_token(&self, r: &Redemption<'_>) -> Result<RedeemOutcome, StoreError> {
        self.pool.with(|c| {
            let mut tx = c.transaction().map_err(be("begin redemption"))?;
            // Both rows locked: a second server redeeming the same token waits here, then
            // reads `used_at` as the first one left it.
            let row = tx
                .query_opt(
                    "SELECT t.account, t.generation, t.expires_at, t.used_at, c.generation, c.phc
                     FROM reset_tokens t JOIN credentials c ON c.account = t.account
                     WHERE t.account = $1 AND t.digest = $2 FOR UPDATE",
                    &[&r.account.as_str(), &&r.digest[..]],
                )
                .map_err(be("find token"))?;
            let Some(row) = row else {
                return Ok(RedeemOutcome::Unknown);
            };
            let account: String = row.get(0);
            let (token_gen, expires_at): (i64, i64) = (row.get(1), row.get(2));
            let (used_at, cred_gen): (Option<i64>, i64) = (row.get(3), row.get(4));
            let old_phc: String = row.get(5);
            if used_at.is_some() {
                return Ok(RedeemOutcome::AlreadyUsed);
            }
            if expires_at <= r.now.as_millis() {
                return Ok(RedeemOutcome::Expired);
            }
            if token_gen != cred_gen {
                return Ok(RedeemOutcome::Superseded);
            }
            tx.execute(
                "UPDATE reset_tokens SET used_at = $3 WHERE account = $1 AND digest = $2",
                &[&r.account.as_str(), &&r.digest[..], &r.now.as_millis()],
            )
            .map_err(be("mark token used"))?;
            let keep = to_i64(r.history_keep as u64);
            if keep > 0 {
                tx.execute(
                    "INSERT INTO password_history (account, seq, phc)
                     VALUES ($1, coalesce((SELECT max(seq) FROM password_history WHERE account = $1), 0) + 1, $2)",
                    &[&account, &old_phc],
                )
                .map_err(be("record history"))?;
            }
            tx.execute(
                "DELETE FROM password_history WHERE account = $1 AND seq <=
                   coalesce((SELECT max(seq) FROM password_history WHERE account = $1), 0) - $2",
                &[&account, &keep],
            )
            .map_err(be("trim history"))?;
            tx.execute(
                "UPDATE credentials SET phc = $2, generation = generation + 1, set_at = $3, stamp = $4,
                   flags = flags & ~$5::bigint WHERE account = $1",
                &[
                    &account,
                    &r.new_hash.to_phc_string(),
                    &r.now.as_millis(),
                    &&r.new_stamp.as_bytes()[..],
                    &i64::from(CredentialFlags::MUST_RESET.bits()),
                ],
            )
            .map_err(be("write new password"))?;
            tx.commit().map_err(be("commit redemption"))?;
            Ok(RedeemOutcome::Redeemed {
                account: AccountId::new(account).map_err(corrupt_account)?,
            })
        })
    }
}

/// The affected-accounts query for an incident (`set_at <= cutoff` mirrors
/// [`Incident::compromises_set_at`]): `$1` = after, `$2` = cutoff, `$3` = brand or
/// incident id (as text), `$4` = until, then for the batch `$5` = limit (rows: account,
/// generation, brand).
fn affected_sql(scope: &IncidentScope, count: bool) -> &'static str {
    match (scope, count) {
        (IncidentScope::All, false) => {
            "SELECT c.account, c.generation,
               (SELECT b.brand FROM account_brands b WHERE b.account = c.account ORDER BY b.position LIMIT 1)
             FROM credentials c WHERE c.account > $1 AND c.account <= $4 AND c.set_at <= $2
               AND $3::text IS NOT NULL
             ORDER BY c.account LIMIT $5"
        }
        (IncidentScope::Brand(_), false) => {
            "SELECT c.account, c.generation, b.brand FROM account_brands b JOIN credentials c ON c.account = b.account
             WHERE b.brand = $3 AND b.account > $1 AND b.account <= $4 AND c.set_at <= $2
             ORDER BY b.account LIMIT $5"
        }
        (IncidentScope::Accounts, false) => {
            "SELECT c.account, c.generation,
               (SELECT b.brand FROM account_brands b WHERE b.account = c.account ORDER BY b.position LIMIT 1)
             FROM incident_accounts i JOIN credentials c ON c.account = i.account
             WHERE i.incident = $3::text::bigint AND i.account > $1 AND i.account <= $4 AND c.set_at <= $2
             ORDER BY i.account LIMIT $5"
        }
        (IncidentScope::All, true) => {
            "SELECT count(*) FROM credentials c
             WHERE c.account > $1 AND c.account <= $4 AND c.set_at <= $2 AND $3::text IS NOT NULL"
        }
        (IncidentScope::Brand(_), true) => {
            "SELECT count(*) FROM account_brands b JOIN credentials c ON c.account = b.account
             WHERE b.brand = $3 AND b.account > $1 AND b.account <= $4 AND c.set_at <= $2"
        }
        (IncidentScope::Accounts, true) => {
            "SELECT count(*) FROM incident_accounts i JOIN credentials c ON c.account = i.account
             WHERE i.incident = $3::text::bigint AND i.account > $1 AND i.account <= $4 AND c.set_at <= $2"
        }
    }
}

/// The first four parameters of [`affected_sql`].
struct Affected {
    after: String,
    cutoff: i64,
    scope: String,
    until: String,
}

impl Affected {
    fn new(incident: &Incident, after: Option<&AccountId>, until: Option<&AccountId>) -> Self {
        Self {
            after: after.map_or("", AccountId::as_str).to_owned(),
            cutoff: incident.cutoff.as_millis(),
            scope: match &incident.scope {
                IncidentScope::Brand(b) => b.as_str().to_owned(),
                IncidentScope::All | IncidentScope::Accounts => incident.id.0.to_string(),
            },
            until: until.map_or(UNBOUNDED, AccountId::as_str).to_owned(),
        }
    }

    fn count(&self, c: &mut impl GenericClient, scope: &IncidentScope) -> Result<u64, StoreError> {
        c.query_one(
            affected_sql(scope, true),
            &[&self.after, &self.cutoff, &self.scope, &self.until],
        )
        .map(|r| to_u64(r.get(0)))
        .map_err(be("count affected"))
    }

    fn rows(
        &self,
        c: &mut impl GenericClient,
        scope: &IncidentScope,
        limit: usize,
        offset: u64,
    ) -> Result<Vec<Row>, StoreError> {
        let sql = format!("{} OFFSET {offset}", affected_sql(scope, false));
        c.query(
            &sql,
            &[
                &self.after,
                &self.cutoff,
                &self.scope,
                &self.until,
                &to_i64(limit as u64),
            ],
        )
        .map_err(be("select affected accounts"))
    }
}

const SELECT_LANES: &str =
    "SELECT id, lane, lanes, range_after, range_until, sent_cursor, sent, finished_at
     FROM campaign_lanes WHERE incident = $1 ORDER BY lane";

fn lane_row(r: &Row) -> LaneRow {
    (
        r.get(0),
        r.get(1),
        r.get(2),
        r.get(3),
        r.get(4),
        r.get(5),
        r.get(6),
        r.get(7),
    )
}

impl CampaignStore for PgStore {
    fn open_lanes(
        &self,
        incident: &Incident,
        lanes: usize,
        now: Timestamp,
    ) -> Result<Vec<CampaignState>, StoreError> {
        if !self.incidents()?.iter().any(|i| i.id == incident.id) {
            return Err(StoreError::NoSuchIncident);
        }
        self.pool.with(|c| {
            let mut tx = c.transaction().map_err(be("begin opening campaign"))?;
            // Workers opening the campaign together: the first splits it, the others wait
            // and read its split.
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('shopsafe campaign', $1))",
                &[&incident.id.0],
            )
            .map_err(be("lock campaign"))?;
            let mut rows = tx
                .query(SELECT_LANES, &[&incident.id.0])
                .map_err(be("load campaign lanes"))?;
            if rows.is_empty() {
                let all = Affected::new(incident, None, None);
                // One lane needs no cut, and so no count (a pass over every account).
                let total = if lanes <= 1 {
                    0
                } else {
                    all.count(&mut tx, &incident.scope)?
                };
                let mut bounds = Vec::new();
                for offset in lane_offsets(total, lanes) {
                    let row = all.rows(&mut tx, &incident.scope, 1, offset)?;
                    let first = row.first().ok_or(StoreError::Corrupt {
                        what: "campaign split",
                    })?;
                    bounds.push(first.get::<_, String>(0));
                }
                let n = to_i64(bounds.len() as u64 + 1);
                for (lane, (after, until)) in lane_ranges(&bounds).into_iter().enumerate() {
                    tx.execute(
                        "INSERT INTO campaign_lanes (incident, lane, lanes, range_after, range_until, started_at)
                         VALUES ($1, $2, $3, $4, $5, $6)",
                        &[&incident.id.0, &to_i64(lane as u64), &n, &after, &until, &now.as_millis()],
                    )
                    .map_err(be("open campaign"))?;
                }
                rows = tx
                    .query(SELECT_LANES, &[&incident.id.0])
                    .map_err(be("load campaign lanes"))?;
            }
            tx.commit().map_err(be("commit campaign lanes"))?;
            rows.iter()
                .map(|r| lane_state(incident.id, lane_row(r)))
                .collect()
        })
    }

    fn count_affected(
        &self,
        incident: &Incident,
        after: Option<&AccountId>,
        until: Option<&AccountId>,
    ) -> Result<u64, StoreError> {
        let params = Affected::new(incident, after, until);
        self.pool.with(|c| params.count(c, &incident.scope))
    }

    fn claim_batch(
        &self,
        incident: &Incident,
        after: Option<&AccountId>,
        until: Option<&AccountId>,
        limit: usize,
        issue: &mut dyn FnMut(&AccountId, u64) -> Result<TokenRecord, StoreError>,
    ) -> Result<Vec<ClaimedAccount>, StoreError> {
        let params = Affected::new(incident, after, until);
        self.pool.with(|c| {
            let mut tx = c.transaction().map_err(be("begin claim"))?;
            let rows = params.rows(&mut tx, &incident.scope, limit, 0)?;
            let mut claimed = Vec::with_capacity(rows.len());
            let mut records = Vec::with_capacity(rows.len());
            for r in &rows {
                let account = AccountId::new(r.get::<_, String>(0)).map_err(corrupt_account)?;
                records.push(issue(&account, generation_from(r.get(1))?)?);
                let brand = r
                    .get::<_, Option<String>>(2)
                    .map(BrandId::new)
                    .transpose()
                    .map_err(|_| StoreError::Corrupt { what: "brand id" })?;
                claimed.push(ClaimedAccount { account, brand });
            }
            insert_tokens(&mut tx, &records)?;
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
        self.pool.with(|c| {
            c.execute(
                "UPDATE campaign_lanes SET sent_cursor = $2, sent = $3 WHERE id = $1",
                &[&campaign.0, &sent_cursor.as_str(), &to_i64(sent)],
            )
            .map(drop)
            .map_err(be("checkpoint campaign"))
        })
    }

    fn finish_campaign(&self, campaign: CampaignId, now: Timestamp) -> Result<(), StoreError> {
        self.pool.with(|c| {
            c.execute(
                "UPDATE campaign_lanes SET finished_at = $2 WHERE id = $1",
                &[&campaign.0, &now.as_millis()],
            )
            .map(drop)
            .map_err(be("finish campaign"))
        })
    }
}

/// A batch of tokens in one statement (arrays unnested): one round trip, not one each.
fn insert_tokens(c: &mut impl GenericClient, records: &[TokenRecord]) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let accounts: Vec<&str> = records.iter().map(|r| r.account.as_str()).collect();
    let digests: Vec<&[u8]> = records.iter().map(|r| &r.digest[..]).collect();
    let generations: Vec<i64> = records.iter().map(|r| to_i64(r.generation)).collect();
    let purposes: Vec<&str> = records.iter().map(|r| purpose_str(r.purpose)).collect();
    let issued: Vec<i64> = records.iter().map(|r| r.issued_at.as_millis()).collect();
    let expires: Vec<i64> = records.iter().map(|r| r.expires_at.as_millis()).collect();
    c.execute(
        "INSERT INTO reset_tokens (account, digest, generation, purpose, issued_at, expires_at)
         SELECT * FROM unnest($1::text[], $2::bytea[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[])",
        &[&accounts, &digests, &generations, &purposes, &issued, &expires],
    )
    .map(drop)
    .map_err(be("issue tokens"))
}

impl CardOnFileStore for PgStore {
    fn save_card(
        &self,
        account: &AccountId,
        card: &CardOnFile,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.pool.with(|c| save_card_in(c, account, card, now))
    }

    fn cards(&self, account: &AccountId) -> Result<Vec<CardOnFile>, StoreError> {
        self.pool.with(|c| {
            c.query(
                "SELECT token, brand, last4, exp_month, exp_year, fingerprint_key, fingerprint
                 FROM cards_on_file WHERE account = $1 ORDER BY added_at, token",
                &[&account.as_str()],
            )
            .map_err(be("load cards on file"))?
            .iter()
            .map(|r| {
                let row: CardRow = (
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    r.get(3),
                    r.get(4),
                    r.get(5),
                    r.get(6),
                );
                card_from_row(row)
            })
            .collect()
        })
    }
}

impl RetentionStore for PgStore {
    fn resume_point(&self, run: &str, table: &TableSpec) -> Result<Option<String>, StoreError> {
        self.pool.with(|c| {
            c.query_opt(
                "SELECT last_key FROM retention_runs WHERE run = $1 AND table_name = $2",
                &[&run, &table.name()],
            )
            .map(|r| r.and_then(|r| r.get::<_, Option<String>>(0)))
            .map_err(be("read retention run"))
        })
    }

    fn apply_batch(
        &self,
        run: &str,
        table: &TableSpec,
        batch: &[Planned],
    ) -> Result<(), StoreError> {
        if let Some(refused) = table.refusal(batch) {
            return Err(StoreError::RetentionRefused(Box::new(refused)));
        }
        // Identifiers were validated by TableSpec (letters, digits, `_`), so quoting them
        // is enough; every value is a bound parameter. The key parameter is cast to the
        // key column's own type (casting the column instead defeats its index: one
        // sequential scan per record).
        let held = table.not_held_sql();
        self.pool.with(|c| {
            let mut tx = c.transaction().map_err(be("begin retention batch"))?;
            let key_type: String = tx
                .query_one(
                    "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
                     WHERE a.attrelid = to_regclass(quote_ident($1)) AND a.attname = $2 AND NOT a.attisdropped",
                    &[&table.name(), &table.key()],
                )
                .map_err(be("read key column type"))?
                .get(0);
            let key = format!("\"{}\" = CAST($1::text AS {key_type})", table.key());
            let delete = format!("DELETE FROM \"{}\" WHERE {key}{held}", table.name());
            start_run(&mut tx, run, table, Timestamp::now())?;
            let (mut purged, mut stripped, mut kept) = (0i64, 0i64, 0i64);
            for p in batch {
                match &p.action {
                    Action::Purge => {
                        // A row held now (or already gone) is not deleted: counted as kept.
                        let n = tx
                            .execute(&delete, &[&p.record.id])
                            .map_err(be("purge record"))?;
                        if n > 0 {
                            purged += 1;
                        } else {
                            kept += 1;
                        }
                    }
                    Action::StripPii { fields } => {
                        let sets: Vec<String> =
                            fields.iter().map(|f| format!("\"{f}\" = NULL")).collect();
                        let sql = format!(
                            "UPDATE \"{}\" SET {} WHERE {key}{held}",
                            table.name(),
                            sets.join(", "),
                        );
                        let n = tx
                            .execute(&sql, &[&p.record.id])
                            .map_err(be("strip record"))?;
                        if n > 0 {
                            stripped += 1;
                        } else {
                            kept += 1;
                        }
                    }
                    _ => kept += 1,
                }
            }
            let last = batch.last().map(|p| p.record.id.as_str());
            tx.execute(
                "UPDATE retention_runs SET last_key = $3, purged = purged + $4,
                   stripped = stripped + $5, kept = kept + $6 WHERE run = $1 AND table_name = $2",
                &[&run, &table.name(), &last, &purged, &stripped, &kept],
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
        self.pool.with(|c| {
            start_run(c, run, table, now)?;
            c.execute(
                "UPDATE retention_runs SET finished_at = coalesce(finished_at, $3)
                 WHERE run = $1 AND table_name = $2",
                &[&run, &table.name(), &now.as_millis()],
            )
            .map_err(be("finish retention run"))?;
            let r = c
                .query_one(
                    "SELECT last_key, purged, stripped, kept, finished_at FROM retention_runs
                     WHERE run = $1 AND table_name = $2",
                    &[&run, &table.name()],
                )
                .map_err(be("read retention run"))?;
            Ok(RunReport::new(
                run.to_owned(),
                table.name().to_owned(),
                [to_u64(r.get(1)), to_u64(r.get(2)), to_u64(r.get(3))],
                r.get(0),
                r.get::<_, Option<i64>>(4).map(Timestamp::from_millis),
            ))
        })
    }
}

fn start_run(
    c: &mut impl GenericClient,
    run: &str,
    table: &TableSpec,
    now: Timestamp,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO retention_runs (run, table_name, started_at) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
        &[&run, &table.name(), &now.as_millis()],
    )
    .map(drop)
    .map_err(be("start retention run"))
}

impl PgStore {
    #[cfg(test)]
    fn with<T>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.pool.with(f)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::super::{test_schema, test_url};
    use super::*;

    #[test]
    fn postgres_passes_the_store_conformance_suite() {
        let Some(url) = test_url("postgres_passes_the_store_conformance_suite") else {
            return;
        };
        let schemas = Mutex::new(Vec::new());
        let fresh = || {
            let name = test_schema("conformance");
            schemas.lock().expect("lock").push(name.clone());
            let options = PgOptions::new(&url)
                .and_then(|o| o.schema(&name))
                .expect("options");
            PgStore::connect(options).expect("connect")
        };
        crate::store::conformance::run_all(&fresh);
        let schemas = schemas.into_inner().expect("lock");
        assert_eq!(schemas.len(), 11, "every check ran on its own schema");
        let mut admin = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        for s in schemas {
            admin
                .batch_execute(&format!("DROP SCHEMA \"{s}\" CASCADE"))
                .expect("drop schema");
        }
    }

    #[test]
    fn schema_version_and_reconnect() {
        let Some(url) = test_url("schema_version_and_reconnect") else {
            return;
        };
        let name = test_schema("reconnect");
        let options = PgOptions::new(&url)
            .and_then(|o| o.schema(&name))
            .expect("options");
        let store = PgStore::connect(options.clone()).expect("connect");
        assert_eq!(store.schema_version().expect("version"), 4);
        let incident = store
            .declare_incident(
                &IncidentScope::All,
                Timestamp::from_millis(1),
                Timestamp::from_millis(2),
                "x",
            )
            .expect("declare");
        drop(store);
        let store = PgStore::connect(options).expect("reconnect");
        assert_eq!(store.incidents().expect("list"), vec![incident]);
        let path: String = store
            .with(|c| {
                c.query_one("SHOW search_path", &[])
                    .map(|r| r.get(0))
                    .map_err(be("show"))
            })
            .expect("search path");
        assert_eq!(path, name);
        store
            .with(|c| {
                c.batch_execute(&format!("DROP SCHEMA \"{name}\" CASCADE"))
                    .map_err(be("drop"))
            })
            .expect("drop");
    }
}
