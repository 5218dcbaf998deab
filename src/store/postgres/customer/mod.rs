//! The customer-side PostgreSQL store: credentials, incidents, reset tokens, campaigns,
//! cards on file and retention runs, in one schema so that every multi-row change is one
//! transaction.

use postgres::{GenericClient, Row};

use super::{PgOptions, Pool, Schema, be, to_i64, to_u64};
use crate::card::{CardOnFile, CardOnFileStore};
use crate::kernel::{AccountId, BrandId, Timestamp};
use crate::minimize::{Action, Planned, RetentionStore, RunReport, TableSpec};
use crate::password::PasswordHash;
use crate::persist::StoreError;
use crate::rotation::{
    CampaignId, CampaignState, CampaignStore, ClaimedAccount, CredentialFlags, CredentialRecord,
    CredentialStore, Incident, IncidentId, IncidentScope, IncidentStore, RedeemOutcome, Redemption,
    ResetTokenStore, SELF_SERVICE_LIVE, SecurityStamp, ThrottleAdjust, ThrottleStore, TokenPurpose,
    TokenRecord, Undelivered,
};
use crate::store::rows::{
    CardRow, LaneRow, TokenRow, UNBOUNDED, brand_str, card_from_row, flags_from, generation_from,
    lane_state, parse_phc, purpose_str, stamp_from, token_record,
};

mod campaigns;
mod cards;
mod credentials;
mod incidents;
mod ledger;
mod retention;
mod sessions;
mod throttle;
mod tokens;

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
    // 5: notices a campaign could not deliver (no address, a permanent rejection).
    "CREATE TABLE campaign_undeliverable (
        lane_id BIGINT NOT NULL,
        account TEXT COLLATE \"C\" NOT NULL,
        reason TEXT NOT NULL,
        at BIGINT NOT NULL,
        PRIMARY KEY (lane_id, account)
    );",
    // 6: rate-limit state shared by every server (GCRA: one time per hashed key).
    "CREATE TABLE throttle (
        key BYTEA PRIMARY KEY CHECK (length(key) = 16),
        tat BIGINT NOT NULL
    );
    CREATE INDEX throttle_by_tat ON throttle (tat);",
    // 7: the erasure ledger (a keyed chain: digests of erased ids, never the ids) and
    // the checkpoints kept beside it.
    "CREATE TABLE erasure_ledger (
        seq BIGINT PRIMARY KEY CHECK (seq > 0),
        at BIGINT NOT NULL,
        customer BYTEA NOT NULL CHECK (length(customer) = 16),
        erased TEXT NOT NULL,
        retained TEXT NOT NULL,
        mac BYTEA NOT NULL CHECK (length(mac) = 32)
    );
    CREATE TABLE erasure_ledger_applied (
        one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
        seq BIGINT NOT NULL
    );
    CREATE TABLE erasure_ledger_checkpoints (
        id BIGSERIAL PRIMARY KEY,
        line TEXT NOT NULL
    );",
    // 8: server-side sessions and remember-device tokens, by the digest of their secret
    // (never the secret); the id names a session in the customer's list.
    "CREATE TABLE sessions (
        digest BYTEA PRIMARY KEY CHECK (length(digest) = 32),
        id BYTEA NOT NULL UNIQUE CHECK (length(id) = 16),
        account TEXT COLLATE \"C\" NOT NULL,
        stamp BYTEA NOT NULL,
        created_at BIGINT NOT NULL,
        last_seen BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        source TEXT NOT NULL,
        agent TEXT NOT NULL
    );
    CREATE INDEX sessions_by_account ON sessions (account, created_at);
    CREATE TABLE device_tokens (
        digest BYTEA PRIMARY KEY CHECK (length(digest) = 32),
        family BYTEA NOT NULL CHECK (length(family) = 16),
        account TEXT COLLATE \"C\" NOT NULL,
        stamp BYTEA NOT NULL,
        issued_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        used_at BIGINT
    );
    CREATE INDEX device_tokens_by_family ON device_tokens (family);
    CREATE INDEX device_tokens_by_account ON device_tokens (account);",
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
/// assert_eq!(store.schema_version()?, 8);
/// # Ok::<(), shopsafe::persist::StoreError>(())
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
        crate::conformance::run_all(&fresh);
        crate::conformance::run_cards(&fresh);
        crate::conformance::run_retention(&fresh);
        crate::conformance::run_throttle(&fresh);
        crate::conformance::run_ledger(&fresh);
        crate::conformance::run_sessions(&fresh);
        let vault = || {
            let name = test_schema("conformance_vault");
            schemas.lock().expect("lock").push(name.clone());
            let options = PgOptions::new(&url)
                .and_then(|o| o.schema(&name))
                .expect("options");
            super::super::PgVault::connect(options).expect("connect")
        };
        crate::conformance::run_vault(&vault);
        let schemas = schemas.into_inner().expect("lock");
        assert_eq!(schemas.len(), 30, "every check ran on its own schema");
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
        assert_eq!(store.schema_version().expect("version"), 8);
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
