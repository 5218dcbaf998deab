//! The customer-side SQLite store: credentials, incidents, reset tokens, campaigns and
//! cards on file, in one file so that every multi-row change is one transaction.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::{Pool, Schema, be, begin, to_i64, to_u64};
use crate::card::{CardOnFile, CardOnFileStore};
use crate::kernel::{AccountId, BrandId, Timestamp};
use crate::minimize::{Action, Planned, RetentionStore, RunReport, TableSpec};
use crate::password::PasswordHash;
use crate::persist::StoreError;
use crate::rotation::{
    CampaignId, CampaignState, CampaignStore, ClaimedAccount, CredentialFlags, CredentialRecord,
    CredentialStore, Incident, IncidentId, IncidentScope, IncidentStore, RedeemOutcome, Redemption,
    ResetTokenStore, SELF_SERVICE_LIVE, SecurityStamp, ThrottleStore, TokenPurpose, TokenRecord,
    Undelivered,
};
use crate::store::rows::{
    CardRow, LaneRow, TokenRow, UNBOUNDED, brand_str, card_from_row, flags_from, generation_from,
    lane_state, parse_phc, purpose_str, redeem_refusal, stamp_from, token_record,
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
    // 5: notices a campaign could not deliver (no address, a permanent rejection).
    "CREATE TABLE campaign_undeliverable (
        lane_id INTEGER NOT NULL,
        account TEXT NOT NULL,
        reason TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (lane_id, account)
    ) WITHOUT ROWID;",
    // 6: rate-limit state shared by every server (GCRA: one time per hashed key).
    "CREATE TABLE throttle (
        key BLOB PRIMARY KEY CHECK (length(key) = 16),
        tat INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX throttle_by_tat ON throttle (tat);",
    // 7: the erasure ledger (a keyed chain: digests of erased ids, never the ids) and
    // the checkpoints kept beside it.
    "CREATE TABLE erasure_ledger (
        seq INTEGER PRIMARY KEY CHECK (seq > 0),
        at INTEGER NOT NULL,
        customer BLOB NOT NULL CHECK (length(customer) = 16),
        erased TEXT NOT NULL,
        retained TEXT NOT NULL,
        mac BLOB NOT NULL CHECK (length(mac) = 32)
    );
    CREATE TABLE erasure_ledger_applied (
        one INTEGER PRIMARY KEY CHECK (one = 1),
        seq INTEGER NOT NULL
    );
    CREATE TABLE erasure_ledger_checkpoints (
        id INTEGER PRIMARY KEY,
        line TEXT NOT NULL
    );",
    // 8: server-side sessions and remember-device tokens, by the digest of their secret
    // (never the secret); the id names a session in the customer's list.
    "CREATE TABLE sessions (
        digest BLOB PRIMARY KEY CHECK (length(digest) = 32),
        id BLOB NOT NULL UNIQUE CHECK (length(id) = 16),
        account TEXT NOT NULL,
        stamp BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        source TEXT NOT NULL,
        agent TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX sessions_by_account ON sessions (account, created_at);
    CREATE TABLE device_tokens (
        digest BLOB PRIMARY KEY CHECK (length(digest) = 32),
        family BLOB NOT NULL CHECK (length(family) = 16),
        account TEXT NOT NULL,
        stamp BLOB NOT NULL,
        issued_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at INTEGER
    ) WITHOUT ROWID;
    CREATE INDEX device_tokens_by_family ON device_tokens (family);
    CREATE INDEX device_tokens_by_account ON device_tokens (account);",
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
/// assert_eq!(store.schema_version()?, 8);
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
        crate::conformance::run_all(&fresh);
        assert_eq!(
            n.load(Ordering::SeqCst),
            12,
            "every check ran on its own database"
        );
        crate::conformance::run_cards(&fresh);
        crate::conformance::run_retention(&fresh);
        crate::conformance::run_throttle(&fresh);
        crate::conformance::run_ledger(&fresh);
        crate::conformance::run_sessions(&fresh);
        assert_eq!(n.load(Ordering::SeqCst), 25);
        let vault = || {
            let i = n.fetch_add(1, Ordering::SeqCst);
            super::super::SqliteVault::open(root.path().join(format!("vault-{i}.db")))
                .expect("open")
        };
        crate::conformance::run_vault(&vault);
        assert_eq!(
            n.load(Ordering::SeqCst),
            30,
            "every vault check ran on its own file"
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
        assert_eq!(
            store.schema_version().expect("version"),
            MIGRATIONS.len() as i64
        );
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
