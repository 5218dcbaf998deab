//! What the shop keeps that shopsafe does not: a customer's email, name, phone, home
//! address and the addresses shipped to, plus which campaigns are running. Every
//! personal value is **sealed** (`shopsafe::seal`) under the customer's own data key
//! before it reaches a table, and found again through blind indexes (the email for
//! login and uniqueness, each address for de-duplication): the tables, in the customer
//! database (SQLite) or beside it (PostgreSQL), hold no name, email, phone or address in
//! clear. Every call blocks: the handlers run them through `shopsafe::aio::blocking`.
//!
//! Two layers: [`Rows`] stores bytes (one implementation per database), and
//! [`SealedProfiles`] seals and opens them, once for both.

use std::path::Path;
use std::sync::{Arc, Mutex};

use shopsafe::audit::AuditCheckpoint;
use shopsafe::kernel::AccountId;
use shopsafe::minimize::PiiKind;
use shopsafe::seal::{Column, Erasure, KeyStore, Sealed, Sealer};

pub(crate) type AppError = Box<dyn std::error::Error + Send + Sync>;

/// The sealer the shop uses: over its key store, whichever database holds it.
pub(crate) type ShopSealer = Sealer<Arc<dyn KeyStore>>;

/// A new customer's profile, in clear (sealed on the way in).
pub(crate) struct NewProfile<'a> {
    pub(crate) account: &'a str,
    pub(crate) email: &'a str,
    pub(crate) name: Option<&'a str>,
    pub(crate) phone: Option<&'a str>,
    pub(crate) home: &'a [String],
}

/// A customer's profile, opened.
pub(crate) struct Profile {
    pub(crate) email: String,
    pub(crate) name: Option<String>,
    pub(crate) phone: Option<String>,
    pub(crate) home: Vec<String>,
}

/// The shop's own records.
pub(crate) trait Profiles: Send + Sync + 'static {
    /// Stores a new customer's profile, pending (no lookup sees it until
    /// [`Profiles::activate`]); `false` when the account or the email (by its blind
    /// index) already has one. Pending profiles older than an hour whose account has no
    /// credential (a sign-up cut off between the two steps) are removed first; one whose
    /// account has a credential (its activation failed) is left for an operator, never
    /// removed, so the account does not lose its email to the next sign-up.
    fn create(&self, profile: &NewProfile<'_>) -> Result<bool, AppError>;
    /// Makes a pending profile visible (its credential was stored).
    fn activate(&self, account: &str) -> Result<(), AppError>;
    /// Removes a pending profile (a sign-up whose credential was refused).
    fn remove(&self, account: &str) -> Result<(), AppError>;
    /// The email address, if the account has a profile.
    fn email(&self, account: &str) -> Result<Option<String>, AppError>;
    /// The email addresses of a batch of accounts, in order: one read of the sealed rows
    /// and one of the key store.
    fn emails(&self, accounts: &[AccountId]) -> Result<Vec<Option<String>>, AppError>;
    /// The account whose email this is (normalized as the index is), and the seed of an
    /// unknown email's stand-in account (an index of the email under a key of its own,
    /// so that the stand-in cannot be linked to the stored email index).
    fn account_by_email(&self, email: &str) -> Result<(Option<String>, [u8; 16]), AppError>;
    /// The whole profile.
    fn profile(&self, account: &str) -> Result<Option<Profile>, AppError>;
    /// The home address and every address shipped to before.
    fn addresses(&self, account: &str) -> Result<Vec<Vec<String>>, AppError>;
    /// Records a delivered order's address.
    fn record_shipment(&self, account: &str, ship_to: &[String]) -> Result<(), AppError>;
    /// Records an order (its address sealed, keyed by the order id).
    fn record_order(
        &self,
        account: &str,
        id: &str,
        amount_cents: u64,
        ship_to: &[String],
    ) -> Result<(), AppError>;
    /// The account's orders, their addresses opened (`None` once stripped), by id.
    fn orders(&self, account: &str) -> Result<Vec<OrderView>, AppError>;
    /// The account's orders' ids and creation times, by id (what an erasure plans over).
    fn order_keys(&self, account: &str) -> Result<Vec<(String, i64)>, AppError>;
    /// Erases a customer: records the erasure in the ledger, destroys their data key (so
    /// every sealed value of theirs, in this database and in every copy of it, is
    /// noise), then removes their rows.
    fn erase(&self, account: &str, erasure: &Erasure) -> Result<(), AppError>;
    /// The legal hold on the account (its reason), if there is one.
    fn hold(&self, account: &str) -> Result<Option<String>, AppError>;
    /// Puts the account under a legal hold (`Some(reason)`) or lifts it (`None`).
    fn set_hold(&self, account: &str, reason: Option<&str>) -> Result<(), AppError>;
    /// A checkpoint of the erasure ledger, to ship off the machine.
    fn erasure_checkpoint(&self) -> Result<AuditCheckpoint, AppError>;
    /// Replays the erasure ledger against the key store: (entries replayed, keys
    /// destroyed).
    fn replay_erasures(&self) -> Result<(u64, u64), AppError>;
    /// Records a campaign as started (`finished` false) or ended, with its counts.
    fn set_campaign(
        &self,
        incident: i64,
        finished: bool,
        done: u64,
        total: u64,
    ) -> Result<(), AppError>;
    /// A campaign's last recorded state: finished, done, total.
    fn campaign(&self, incident: i64) -> Result<Option<(bool, u64, u64)>, AppError>;
    /// Campaigns started and not finished (resumed at start-up).
    fn unfinished_campaigns(&self) -> Result<Vec<i64>, AppError>;
}

/// A profile row as stored: sealed values and the email's blind index.
pub(crate) struct ProfileRow {
    pub(crate) account: String,
    pub(crate) email: Vec<u8>,
    pub(crate) email_index: Vec<u8>,
    pub(crate) name: Option<Vec<u8>>,
    pub(crate) phone: Option<Vec<u8>>,
    pub(crate) home: Vec<u8>,
}

/// An order, opened.
pub(crate) struct OrderView {
    pub(crate) id: String,
    pub(crate) amount_cents: u64,
    pub(crate) created_ms: i64,
    pub(crate) ship_to: Option<Vec<String>>,
}

/// An order as stored: id, amount, created, sealed address (NULL once stripped).
pub(crate) type OrderRow = (String, i64, i64, Option<Vec<u8>>);

/// A shipment as stored: the sealed address and its blind index.
pub(crate) type ShipmentRow = (Vec<u8>, Vec<u8>);

/// The shop's tables, as bytes.
pub(crate) trait Rows: Send + Sync + 'static {
    /// Inserts, pending, unless the account or the email index is taken; whether it did.
    /// Pending rows made before `stale_before` (ms) go first.
    fn insert_profile(
        &self,
        row: &ProfileRow,
        now: i64,
        stale_before: i64,
    ) -> Result<bool, AppError>;
    fn activate_profile(&self, account: &str) -> Result<(), AppError>;
    /// Deletes the account's profile if it is pending.
    fn delete_profile(&self, account: &str) -> Result<(), AppError>;
    /// Removes every row of the account (profile and shipments).
    fn delete_customer(&self, account: &str) -> Result<(), AppError>;
    /// Whether any profile is stored (pending or not).
    fn has_profiles(&self) -> Result<bool, AppError>;
    /// Active profiles only.
    fn profile_rows(&self, accounts: &[&str]) -> Result<Vec<ProfileRow>, AppError>;
    /// The active profile whose email has this index.
    fn account_by_email_index(&self, index: &[u8]) -> Result<Option<String>, AppError>;
    /// (sealed address, its index) of every shipment of the account.
    fn shipments(&self, account: &str) -> Result<Vec<ShipmentRow>, AppError>;
    fn insert_shipment(&self, account: &str, sealed: &[u8], index: &[u8]) -> Result<(), AppError>;
    fn set_campaign(
        &self,
        incident: i64,
        finished: bool,
        done: i64,
        total: i64,
    ) -> Result<(), AppError>;
    fn campaign(&self, incident: i64) -> Result<Option<(bool, i64, i64)>, AppError>;
    fn unfinished_campaigns(&self) -> Result<Vec<i64>, AppError>;
    fn hold(&self, account: &str) -> Result<Option<String>, AppError>;
    /// Sets (`Some`) or lifts (`None`) the account's legal hold.
    fn set_hold(&self, account: &str, reason: Option<&str>, now: i64) -> Result<(), AppError>;
    fn insert_order(&self, account: &str, row: &OrderRow) -> Result<(), AppError>;
    /// The account's orders, by id.
    fn orders(&self, account: &str) -> Result<Vec<OrderRow>, AppError>;
}

/// The sealed columns.
struct Columns {
    email: Column,
    name: Column,
    phone: Column,
    home: Column,
    ship_to: Column,
    order_ship_to: Column,
    /// No stored column: the key of the seed an unknown email's stand-in account has.
    unknown: Column,
}

fn columns() -> Result<Columns, AppError> {
    Ok(Columns {
        email: Column::new("shop_customers", "email", PiiKind::Email)?,
        name: Column::new("shop_customers", "name", PiiKind::PersonName)?,
        phone: Column::new("shop_customers", "phone", PiiKind::Phone)?,
        home: Column::new("shop_customers", "home", PiiKind::PostalAddress)?,
        ship_to: Column::new("shop_ship_to", "address", PiiKind::PostalAddress)?,
        order_ship_to: Column::new("shop_orders", "ship_to", PiiKind::PostalAddress)?,
        unknown: Column::new("shop_login", "unknown_email", PiiKind::Email)?,
    })
}

/// [`Profiles`] over any [`Rows`]: seals on the way in, opens on the way out.
pub(crate) struct SealedProfiles<R> {
    rows: R,
    sealer: Arc<ShopSealer>,
    cols: Columns,
}

/// Refuses to start with a key store or a KEK file made afresh beside sealed profiles:
/// a lost `keys.db` (or key schema) or `customer.keys` would otherwise be replaced by an
/// empty one without a word, under which none of the stored values opens while new
/// keys keep being made.
pub(crate) fn check_keys_are_there(
    rows: &dyn Rows,
    keys: &dyn KeyStore,
    kek_file: &Path,
) -> Result<(), AppError> {
    if !rows.has_profiles()? {
        return Ok(());
    }
    if !kek_file.exists() {
        return Err(format!(
            "the customer-data key file {} is missing, but the customer database holds \
             sealed profiles: restore it from its backup",
            kek_file.display()
        )
        .into());
    }
    if keys.count_by_kek()?.is_empty() {
        return Err(
            "the customer key store is empty, but the customer database holds \
                    sealed profiles: restore it from its backup"
                .into(),
        );
    }
    Ok(())
}

impl<R: Rows> SealedProfiles<R> {
    pub(crate) fn new(rows: R, sealer: Arc<ShopSealer>) -> Result<Self, AppError> {
        Ok(Self {
            rows,
            sealer,
            cols: columns()?,
        })
    }

    fn account(name: &str) -> Result<AccountId, AppError> {
        Ok(AccountId::new(name)?)
    }

    /// The shipment's record key: the account and the address's index.
    fn shipment_record(account: &str, index: &[u8]) -> String {
        let hex: String = index.iter().map(|b| format!("{b:02x}")).collect();
        format!("{account}/{hex}")
    }
}

fn join_lines(lines: &[String]) -> String {
    lines.join("\n")
}

fn split_lines(text: &str) -> Vec<String> {
    text.split('\n').map(str::to_owned).collect()
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl<R: Rows> Profiles for SealedProfiles<R> {
    fn create(&self, p: &NewProfile<'_>) -> Result<bool, AppError> {
        let account = Self::account(p.account)?;
        let keys = self
            .sealer
            .keys_for_sealing(std::slice::from_ref(&account))?;
        let seal = |col: &Column, v: &str| -> Result<Vec<u8>, AppError> {
            Ok(keys.seal(&account, col, p.account, v)?.as_bytes().to_vec())
        };
        let row = ProfileRow {
            account: p.account.to_owned(),
            email: seal(&self.cols.email, p.email)?,
            email_index: self
                .sealer
                .blind_index(&self.cols.email, p.email)?
                .as_bytes()
                .to_vec(),
            name: p.name.map(|n| seal(&self.cols.name, n)).transpose()?,
            phone: p.phone.map(|n| seal(&self.cols.phone, n)).transpose()?,
            home: seal(&self.cols.home, &join_lines(p.home))?,
        };
        let now = shopsafe::kernel::Timestamp::now().as_millis();
        self.rows.insert_profile(&row, now, now - 3_600_000)
    }

    fn activate(&self, account: &str) -> Result<(), AppError> {
        self.rows.activate_profile(account)
    }

    fn remove(&self, account: &str) -> Result<(), AppError> {
        self.rows.delete_profile(account)
    }

    fn email(&self, account: &str) -> Result<Option<String>, AppError> {
        let id = Self::account(account)?;
        Ok(self.emails(&[id])?.pop().flatten())
    }

    fn emails(&self, accounts: &[AccountId]) -> Result<Vec<Option<String>>, AppError> {
        let names: Vec<&str> = accounts.iter().map(AccountId::as_str).collect();
        let mut rows: std::collections::HashMap<String, Vec<u8>> = self
            .rows
            .profile_rows(&names)?
            .into_iter()
            .map(|r| (r.account, r.email))
            .collect();
        let mut batch = Vec::new();
        let mut at = Vec::with_capacity(accounts.len());
        for a in accounts {
            match rows.remove(a.as_str()) {
                Some(bytes) => {
                    at.push(true);
                    batch.push((
                        a.clone(),
                        a.as_str().to_owned(),
                        Sealed::from_bytes(&bytes)?,
                    ));
                }
                None => at.push(false),
            }
        }
        let mut opened = self.sealer.open_all(&self.cols.email, &batch)?.into_iter();
        at.into_iter()
            .map(|has| {
                if !has {
                    return Ok(None);
                }
                let pii = opened.next().ok_or("a missing outcome")??;
                Ok(Some(pii.expose().clone()))
            })
            .collect()
    }

    fn account_by_email(&self, email: &str) -> Result<(Option<String>, [u8; 16]), AppError> {
        // One indexed read, found or not: opening the stored email to confirm a hit
        // would make a known email measurably slower than an unknown one, before any
        // limiter. The index is 128 bits, and the password check that follows is the
        // confirmation that matters.
        let index = self.sealer.blind_index(&self.cols.email, email)?;
        let seed = self.sealer.blind_index(&self.cols.unknown, email)?;
        let account = self.rows.account_by_email_index(index.as_bytes())?;
        Ok((account, *seed.as_bytes()))
    }

    fn profile(&self, account: &str) -> Result<Option<Profile>, AppError> {
        let id = Self::account(account)?;
        let Some(row) = self.rows.profile_rows(&[account])?.pop() else {
            return Ok(None);
        };
        let keys = self.sealer.keys(std::slice::from_ref(&id))?;
        let open = |col: &Column, bytes: &[u8]| -> Result<String, AppError> {
            let sealed = Sealed::from_bytes(bytes)?;
            Ok(keys.open(&id, col, account, &sealed)?.expose().clone())
        };
        Ok(Some(Profile {
            email: open(&self.cols.email, &row.email)?,
            name: row.name.map(|b| open(&self.cols.name, &b)).transpose()?,
            phone: row.phone.map(|b| open(&self.cols.phone, &b)).transpose()?,
            home: split_lines(&open(&self.cols.home, &row.home)?),
        }))
    }

    fn addresses(&self, account: &str) -> Result<Vec<Vec<String>>, AppError> {
        let id = Self::account(account)?;
        let Some(row) = self.rows.profile_rows(&[account])?.pop() else {
            return Ok(Vec::new());
        };
        let keys = self.sealer.keys(std::slice::from_ref(&id))?;
        let home = keys.open(
            &id,
            &self.cols.home,
            account,
            &Sealed::from_bytes(&row.home)?,
        )?;
        let mut out = vec![split_lines(home.expose())];
        for (sealed, index) in self.rows.shipments(account)? {
            let record = Self::shipment_record(account, &index);
            let opened = keys.open(
                &id,
                &self.cols.ship_to,
                &record,
                &Sealed::from_bytes(&sealed)?,
            )?;
            out.push(split_lines(opened.expose()));
        }
        Ok(out)
    }

    fn record_shipment(&self, account: &str, ship_to: &[String]) -> Result<(), AppError> {
        let id = Self::account(account)?;
        let text = join_lines(ship_to);
        let index = self.sealer.blind_index(&self.cols.ship_to, &text)?;
        let record = Self::shipment_record(account, index.as_bytes());
        let sealed = self.sealer.seal(&id, &self.cols.ship_to, &record, &text)?;
        self.rows
            .insert_shipment(account, sealed.as_bytes(), index.as_bytes())
    }

    fn erase(&self, account: &str, erasure: &Erasure) -> Result<(), AppError> {
        // The ledger entry and the key first: once the key is gone the rows are noise,
        // wherever they are copied.
        let id = Self::account(account)?;
        self.sealer
            .erase(std::slice::from_ref(&id), erasure, 1, |_| {})?;
        self.rows.delete_customer(account)
    }

    fn hold(&self, account: &str) -> Result<Option<String>, AppError> {
        self.rows.hold(account)
    }

    fn record_order(
        &self,
        account: &str,
        id: &str,
        amount_cents: u64,
        ship_to: &[String],
    ) -> Result<(), AppError> {
        let customer = Self::account(account)?;
        let sealed = self.sealer.seal(
            &customer,
            &self.cols.order_ship_to,
            id,
            &join_lines(ship_to),
        )?;
        let now = shopsafe::kernel::Timestamp::now().as_millis();
        self.rows.insert_order(
            account,
            &(
                id.to_owned(),
                to_i64(amount_cents),
                now,
                Some(sealed.as_bytes().to_vec()),
            ),
        )
    }

    fn orders(&self, account: &str) -> Result<Vec<OrderView>, AppError> {
        let customer = Self::account(account)?;
        let rows = self.rows.orders(account)?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let keys = self.sealer.keys(std::slice::from_ref(&customer))?;
        rows.into_iter()
            .map(|(id, amount, created_ms, sealed)| {
                let ship_to = match sealed {
                    Some(bytes) => Some(split_lines(
                        keys.open(
                            &customer,
                            &self.cols.order_ship_to,
                            &id,
                            &Sealed::from_bytes(&bytes)?,
                        )?
                        .expose(),
                    )),
                    None => None,
                };
                Ok(OrderView {
                    id,
                    amount_cents: to_u64(amount),
                    created_ms,
                    ship_to,
                })
            })
            .collect()
    }

    fn order_keys(&self, account: &str) -> Result<Vec<(String, i64)>, AppError> {
        Ok(self
            .rows
            .orders(account)?
            .into_iter()
            .map(|(id, _, created, _)| (id, created))
            .collect())
    }

    fn set_hold(&self, account: &str, reason: Option<&str>) -> Result<(), AppError> {
        self.rows.set_hold(
            account,
            reason,
            shopsafe::kernel::Timestamp::now().as_millis(),
        )
    }

    fn replay_erasures(&self) -> Result<(u64, u64), AppError> {
        let r = self.sealer.replay(10_000, |_| {})?;
        Ok((r.entries, r.destroyed))
    }

    fn erasure_checkpoint(&self) -> Result<AuditCheckpoint, AppError> {
        let ledger = self
            .sealer
            .ledger()
            .ok_or("the sealer has no erasure ledger")?;
        Ok(ledger.checkpoint()?)
    }

    fn set_campaign(
        &self,
        incident: i64,
        finished: bool,
        done: u64,
        total: u64,
    ) -> Result<(), AppError> {
        self.rows
            .set_campaign(incident, finished, to_i64(done), to_i64(total))
    }

    fn campaign(&self, incident: i64) -> Result<Option<(bool, u64, u64)>, AppError> {
        Ok(self
            .rows
            .campaign(incident)?
            .map(|(f, d, t)| (f, to_u64(d), to_u64(t))))
    }

    fn unfinished_campaigns(&self) -> Result<Vec<i64>, AppError> {
        self.rows.unfinished_campaigns()
    }
}

/// The tables. `shop_profiles` and `shop_shipments` were the clear-text tables of
/// earlier versions: a database that still has them is refused, not silently kept.
const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS shop_customers (
        account TEXT PRIMARY KEY, email {blob} NOT NULL, email_index {blob} NOT NULL UNIQUE,
        name {blob}, phone {blob}, home {blob} NOT NULL,
        pending BOOLEAN NOT NULL, created_ms BIGINT NOT NULL);
    CREATE TABLE IF NOT EXISTS shop_ship_to (
        account TEXT NOT NULL, address {blob} NOT NULL, address_index {blob} NOT NULL,
        PRIMARY KEY (account, address_index));
    CREATE TABLE IF NOT EXISTS shop_orders (
        id TEXT PRIMARY KEY, account TEXT NOT NULL, amount_cents BIGINT NOT NULL,
        created_ms BIGINT NOT NULL, ship_to {blob});
    CREATE INDEX IF NOT EXISTS shop_orders_by_account ON shop_orders (account);
    CREATE TABLE IF NOT EXISTS shop_holds (
        account TEXT PRIMARY KEY, reason TEXT NOT NULL, since_ms BIGINT NOT NULL);
    CREATE TABLE IF NOT EXISTS shop_campaigns (
        incident BIGINT PRIMARY KEY, finished BOOLEAN NOT NULL,
        done BIGINT NOT NULL DEFAULT 0, total BIGINT NOT NULL DEFAULT 0);";

const CLEAR_TEXT_TABLES: &str = "this database holds the clear-text profile tables of an \
    earlier shop server (shop_profiles): start on a fresh --data, or move them to the \
    sealed tables first";

/// Rows in the SQLite customer database.
pub(crate) struct SqliteRows(Mutex<rusqlite::Connection>);

impl SqliteRows {
    /// Opens the shop's tables in `path` (after `SqliteStore` has made the file).
    pub(crate) fn open(path: &Path) -> Result<Self, AppError> {
        let c = rusqlite::Connection::open(path)?;
        c.busy_timeout(std::time::Duration::from_secs(5))?;
        let old: i64 = c.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'shop_profiles'",
            [],
            |r| r.get(0),
        )?;
        if old > 0 {
            return Err(CLEAR_TEXT_TABLES.into());
        }
        c.execute_batch(&SCHEMA.replace("{blob}", "BLOB"))?;
        Ok(Self(Mutex::new(c)))
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Result<T, AppError> {
        let c = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(f(&c)?)
    }
}

fn sqlite_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ProfileRow> {
    Ok(ProfileRow {
        account: r.get(0)?,
        email: r.get(1)?,
        email_index: r.get(2)?,
        name: r.get(3)?,
        phone: r.get(4)?,
        home: r.get(5)?,
    })
}

/// Active profiles only: a pending one (its sign-up has not stored the credential yet)
/// is seen by no read, so that no reset mail, notice or profile goes to its email.
const SELECT_ROW: &str = "SELECT account, email, email_index, name, phone, home FROM shop_customers
     WHERE NOT pending";

impl Rows for SqliteRows {
    fn delete_customer(&self, account: &str) -> Result<(), AppError> {
        self.with(|c| {
            c.execute("DELETE FROM shop_ship_to WHERE account = ?1", [account])?;
            c.execute("DELETE FROM shop_customers WHERE account = ?1", [account])
                .map(drop)
        })
    }

    fn has_profiles(&self) -> Result<bool, AppError> {
        self.with(|c| {
            c.query_row("SELECT EXISTS (SELECT 1 FROM shop_customers)", [], |r| {
                r.get(0)
            })
        })
    }

    fn insert_profile(
        &self,
        row: &ProfileRow,
        now: i64,
        stale_before: i64,
    ) -> Result<bool, AppError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM shop_customers WHERE pending AND created_ms < ?1
                 AND NOT EXISTS (SELECT 1 FROM credentials c WHERE c.account = shop_customers.account)",
                [stale_before],
            )?;
            c.execute(
                "INSERT INTO shop_customers
                 (account, email, email_index, name, phone, home, pending, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, TRUE, ?7) ON CONFLICT DO NOTHING",
                rusqlite::params![
                    row.account,
                    row.email,
                    row.email_index,
                    row.name,
                    row.phone,
                    row.home,
                    now
                ],
            )
            .map(|n| n == 1)
        })
    }

    fn activate_profile(&self, account: &str) -> Result<(), AppError> {
        let n = self.with(|c| {
            c.execute(
                "UPDATE shop_customers SET pending = FALSE WHERE account = ?1",
                [account],
            )
        })?;
        if n == 1 {
            Ok(())
        } else {
            Err("no pending profile to activate".into())
        }
    }

    fn delete_profile(&self, account: &str) -> Result<(), AppError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM shop_customers WHERE account = ?1 AND pending",
                [account],
            )
            .map(drop)
        })
    }

    fn profile_rows(&self, accounts: &[&str]) -> Result<Vec<ProfileRow>, AppError> {
        self.with(|c| {
            let mut out = Vec::with_capacity(accounts.len());
            for chunk in accounts.chunks(500) {
                let marks = vec!["?"; chunk.len()].join(",");
                let mut stmt =
                    c.prepare_cached(&format!("{SELECT_ROW} AND account IN ({marks})"))?;
                for row in stmt.query_map(rusqlite::params_from_iter(chunk), sqlite_row)? {
                    out.push(row?);
                }
            }
            Ok(out)
        })
    }

    fn account_by_email_index(&self, index: &[u8]) -> Result<Option<String>, AppError> {
        use rusqlite::OptionalExtension as _;
        self.with(|c| {
            c.query_row(
                "SELECT account FROM shop_customers WHERE email_index = ?1 AND NOT pending",
                [index],
                |r| r.get(0),
            )
            .optional()
        })
    }

    fn shipments(&self, account: &str) -> Result<Vec<ShipmentRow>, AppError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT address, address_index FROM shop_ship_to WHERE account = ?1",
            )?;
            stmt.query_map([account], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
    }

    fn insert_shipment(&self, account: &str, sealed: &[u8], index: &[u8]) -> Result<(), AppError> {
        self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO shop_ship_to (account, address, address_index)
                 VALUES (?1, ?2, ?3)",
                rusqlite::params![account, sealed, index],
            )
            .map(drop)
        })
    }

    fn set_campaign(
        &self,
        incident: i64,
        finished: bool,
        done: i64,
        total: i64,
    ) -> Result<(), AppError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO shop_campaigns (incident, finished, done, total) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (incident) DO UPDATE SET finished = excluded.finished,
                   done = excluded.done, total = excluded.total",
                (incident, finished, done, total),
            )
            .map(drop)
        })
    }

    fn campaign(&self, incident: i64) -> Result<Option<(bool, i64, i64)>, AppError> {
        use rusqlite::OptionalExtension as _;
        self.with(|c| {
            c.query_row(
                "SELECT finished, done, total FROM shop_campaigns WHERE incident = ?1",
                [incident],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
        })
    }

    fn unfinished_campaigns(&self) -> Result<Vec<i64>, AppError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT incident FROM shop_campaigns WHERE NOT finished")?;
            stmt.query_map([], |r| r.get(0))?.collect()
        })
    }

    fn hold(&self, account: &str) -> Result<Option<String>, AppError> {
        use rusqlite::OptionalExtension as _;
        self.with(|c| {
            c.query_row(
                "SELECT reason FROM shop_holds WHERE account = ?1",
                [account],
                |r| r.get(0),
            )
            .optional()
        })
    }

    fn insert_order(&self, account: &str, row: &OrderRow) -> Result<(), AppError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO shop_orders (id, account, amount_cents, created_ms, ship_to)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![row.0, account, row.1, row.2, row.3],
            )
            .map(drop)
        })
    }

    fn orders(&self, account: &str) -> Result<Vec<OrderRow>, AppError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, amount_cents, created_ms, ship_to FROM shop_orders
                 WHERE account = ?1 ORDER BY id",
            )?;
            stmt.query_map([account], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect()
        })
    }

    fn set_hold(&self, account: &str, reason: Option<&str>, now: i64) -> Result<(), AppError> {
        self.with(|c| match reason {
            Some(reason) => c
                .execute(
                    "INSERT INTO shop_holds (account, reason, since_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT (account) DO UPDATE SET reason = excluded.reason",
                    rusqlite::params![account, reason, now],
                )
                .map(drop),
            None => c
                .execute("DELETE FROM shop_holds WHERE account = ?1", [account])
                .map(drop),
        })
    }
}

/// Rows in PostgreSQL (the store's schema of the customer database).
#[cfg(feature = "postgres")]
pub(crate) struct PgRows(Mutex<Option<postgres::Client>>);

#[cfg(feature = "postgres")]
impl PgRows {
    /// Connects with the store's settings and TLS, in the store's schema (call it off
    /// the runtime: the sync client runs its own).
    pub(crate) fn connect(
        options: &shopsafe::store::postgres::PgOptions,
        schema: &str,
    ) -> Result<Self, AppError> {
        let mut c = options.connect_client()?;
        // The name was checked by `PgOptions::schema`.
        c.batch_execute(&format!("SET search_path TO \"{schema}\""))?;
        let old = c
            .query_one("SELECT to_regclass('shop_profiles') IS NOT NULL", &[])?
            .get::<_, bool>(0);
        if old {
            return Err(CLEAR_TEXT_TABLES.into());
        }
        c.batch_execute(&SCHEMA.replace("{blob}", "BYTEA"))?;
        Ok(Self(Mutex::new(Some(c))))
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> Result<T, postgres::Error>,
    ) -> Result<T, AppError> {
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let c = guard.as_mut().ok_or("profiles closed")?;
        Ok(f(c)?)
    }
}

#[cfg(feature = "postgres")]
impl Drop for PgRows {
    /// The sync client's close runs a runtime of its own: not on a tokio worker.
    fn drop(&mut self) {
        let client = self
            .0
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Ok(t) = std::thread::Builder::new().spawn(move || drop(client)) {
            let _ = t.join();
        }
    }
}

#[cfg(feature = "postgres")]
impl Rows for PgRows {
    fn delete_customer(&self, account: &str) -> Result<(), AppError> {
        self.with(|c| {
            c.execute("DELETE FROM shop_ship_to WHERE account = $1", &[&account])?;
            c.execute("DELETE FROM shop_customers WHERE account = $1", &[&account])
                .map(drop)
        })
    }

    fn has_profiles(&self) -> Result<bool, AppError> {
        self.with(|c| {
            c.query_one("SELECT EXISTS (SELECT 1 FROM shop_customers)", &[])
                .map(|r| r.get(0))
        })
    }

    fn insert_profile(
        &self,
        row: &ProfileRow,
        now: i64,
        stale_before: i64,
    ) -> Result<bool, AppError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM shop_customers WHERE pending AND created_ms < $1
                 AND NOT EXISTS (SELECT 1 FROM credentials c WHERE c.account = shop_customers.account)",
                &[&stale_before],
            )?;
            c.execute(
                "INSERT INTO shop_customers
                 (account, email, email_index, name, phone, home, pending, created_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, TRUE, $7) ON CONFLICT DO NOTHING",
                &[
                    &row.account,
                    &row.email,
                    &row.email_index,
                    &row.name,
                    &row.phone,
                    &row.home,
                    &now,
                ],
            )
            .map(|n| n == 1)
        })
    }

    fn activate_profile(&self, account: &str) -> Result<(), AppError> {
        let n = self.with(|c| {
            c.execute(
                "UPDATE shop_customers SET pending = FALSE WHERE account = $1",
                &[&account],
            )
        })?;
        if n == 1 {
            Ok(())
        } else {
            Err("no pending profile to activate".into())
        }
    }

    fn delete_profile(&self, account: &str) -> Result<(), AppError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM shop_customers WHERE account = $1 AND pending",
                &[&account],
            )
            .map(drop)
        })
    }

    fn profile_rows(&self, accounts: &[&str]) -> Result<Vec<ProfileRow>, AppError> {
        self.with(|c| {
            c.query(&format!("{SELECT_ROW} AND account = ANY($1)"), &[&accounts])
                .map(|rows| {
                    rows.iter()
                        .map(|r| ProfileRow {
                            account: r.get(0),
                            email: r.get(1),
                            email_index: r.get(2),
                            name: r.get(3),
                            phone: r.get(4),
                            home: r.get(5),
                        })
                        .collect()
                })
        })
    }

    fn account_by_email_index(&self, index: &[u8]) -> Result<Option<String>, AppError> {
        self.with(|c| {
            c.query_opt(
                "SELECT account FROM shop_customers WHERE email_index = $1 AND NOT pending",
                &[&index],
            )
            .map(|r| r.map(|r| r.get(0)))
        })
    }

    fn shipments(&self, account: &str) -> Result<Vec<ShipmentRow>, AppError> {
        self.with(|c| {
            c.query(
                "SELECT address, address_index FROM shop_ship_to WHERE account = $1",
                &[&account],
            )
            .map(|rows| rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn insert_shipment(&self, account: &str, sealed: &[u8], index: &[u8]) -> Result<(), AppError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO shop_ship_to (account, address, address_index) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&account, &sealed, &index],
            )
            .map(drop)
        })
    }

    fn set_campaign(
        &self,
        incident: i64,
        finished: bool,
        done: i64,
        total: i64,
    ) -> Result<(), AppError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO shop_campaigns (incident, finished, done, total) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (incident) DO UPDATE SET finished = excluded.finished,
                   done = excluded.done, total = excluded.total",
                &[&incident, &finished, &done, &total],
            )
            .map(drop)
        })
    }

    fn campaign(&self, incident: i64) -> Result<Option<(bool, i64, i64)>, AppError> {
        self.with(|c| {
            c.query_opt(
                "SELECT finished, done, total FROM shop_campaigns WHERE incident = $1",
                &[&incident],
            )
            .map(|r| r.map(|r| (r.get(0), r.get(1), r.get(2))))
        })
    }

    fn unfinished_campaigns(&self) -> Result<Vec<i64>, AppError> {
        self.with(|c| {
            c.query(
                "SELECT incident FROM shop_campaigns WHERE NOT finished",
                &[],
            )
            .map(|rows| rows.iter().map(|r| r.get(0)).collect())
        })
    }

    fn hold(&self, account: &str) -> Result<Option<String>, AppError> {
        self.with(|c| {
            c.query_opt(
                "SELECT reason FROM shop_holds WHERE account = $1",
                &[&account],
            )
            .map(|r| r.map(|r| r.get(0)))
        })
    }

    fn insert_order(&self, account: &str, row: &OrderRow) -> Result<(), AppError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO shop_orders (id, account, amount_cents, created_ms, ship_to)
                 VALUES ($1, $2, $3, $4, $5)",
                &[&row.0, &account, &row.1, &row.2, &row.3],
            )
            .map(drop)
        })
    }

    fn orders(&self, account: &str) -> Result<Vec<OrderRow>, AppError> {
        self.with(|c| {
            c.query(
                "SELECT id, amount_cents, created_ms, ship_to FROM shop_orders
                 WHERE account = $1 ORDER BY id",
                &[&account],
            )
            .map(|rows| {
                rows.iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                    .collect()
            })
        })
    }

    fn set_hold(&self, account: &str, reason: Option<&str>, now: i64) -> Result<(), AppError> {
        self.with(|c| match reason {
            Some(reason) => c
                .execute(
                    "INSERT INTO shop_holds (account, reason, since_ms) VALUES ($1, $2, $3)
                     ON CONFLICT (account) DO UPDATE SET reason = excluded.reason",
                    &[&account, &reason, &now],
                )
                .map(drop),
            None => c
                .execute("DELETE FROM shop_holds WHERE account = $1", &[&account])
                .map(drop),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_profile_is_seen_by_no_read_until_activated() {
        let dir = tempfile::tempdir().expect("dir");
        let store = shopsafe::store::sqlite::SqliteStore::open(dir.path().join("customers.db"))
            .expect("store");
        let keks = shopsafe::card::FileKeySource::open_or_create(
            dir.path().join("customer.keys"),
            &shopsafe::card::VaultKeyId::new("kek-1").expect("id"),
        )
        .expect("keks");
        let keys: Arc<dyn KeyStore> = Arc::new(
            shopsafe::store::sqlite::SqliteKeyStore::open(dir.path().join("keys.db"))
                .expect("keys"),
        );
        let sealer = Arc::new(ShopSealer::new(keys, &keks).expect("sealer"));
        let profiles = SealedProfiles::new(SqliteRows::open(store.path()).expect("rows"), sealer)
            .expect("profiles");
        let home = ["1 Main St".to_owned()];
        let new = NewProfile {
            account: "jane",
            email: "jane@mail.test",
            name: Some("Jane Doe"),
            phone: None,
            home: &home,
        };
        assert!(profiles.create(&new).expect("create"));
        let jane = AccountId::new("jane").expect("id");
        // Pending: a reset mail, a notice, a profile page or a login must not find it.
        assert_eq!(profiles.email("jane").expect("email"), None);
        assert_eq!(
            profiles
                .emails(std::slice::from_ref(&jane))
                .expect("emails"),
            [None]
        );
        assert!(profiles.profile("jane").expect("profile").is_none());
        assert!(profiles.addresses("jane").expect("addresses").is_empty());
        assert_eq!(
            profiles
                .account_by_email("jane@mail.test")
                .expect("by email")
                .0,
            None
        );
        // Its email and id are still taken while it is pending.
        assert!(!profiles.create(&new).expect("again"));
        profiles.activate("jane").expect("activate");
        assert_eq!(
            profiles.email("jane").expect("email").as_deref(),
            Some("jane@mail.test")
        );
        assert_eq!(
            profiles
                .account_by_email(" JANE@mail.test")
                .expect("by email")
                .0
                .as_deref(),
            Some("jane")
        );
        assert!(
            profiles.activate("nobody").is_err(),
            "activating nothing is an error"
        );
        // Removing applies to pending profiles only.
        profiles.remove("jane").expect("remove");
        assert!(profiles.profile("jane").expect("profile").is_some());
    }
}
