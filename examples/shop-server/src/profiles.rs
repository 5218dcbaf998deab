//! What the shop keeps that shopsafe does not: the email address, the home address and
//! the addresses shipped to, plus which campaigns are running. In tables of the shop's
//! own, in the customer database (SQLite) or beside it (PostgreSQL). Every call blocks:
//! the handlers run them through `shopsafe::aio::blocking`.

use std::path::Path;
use std::sync::Mutex;

pub(crate) type AppError = Box<dyn std::error::Error + Send + Sync>;

/// The shop's own records.
pub(crate) trait Profiles: Send + Sync + 'static {
    /// Stores a new customer's email and home address.
    fn create(&self, account: &str, email: &str, home: &[String]) -> Result<(), AppError>;
    /// The email address, if the account has a profile.
    fn email(&self, account: &str) -> Result<Option<String>, AppError>;
    /// The home address and every address shipped to before.
    fn addresses(&self, account: &str) -> Result<Vec<Vec<String>>, AppError>;
    /// Records a delivered order's address.
    fn record_shipment(&self, account: &str, ship_to: &[String]) -> Result<(), AppError>;
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

fn join_lines(lines: &[String]) -> String {
    lines.join("\n")
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn split_lines(text: &str) -> Vec<String> {
    text.split('\n').map(str::to_owned).collect()
}

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS shop_profiles (
        account TEXT PRIMARY KEY, email TEXT NOT NULL, home TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS shop_shipments (
        account TEXT NOT NULL, address TEXT NOT NULL, PRIMARY KEY (account, address));
    CREATE TABLE IF NOT EXISTS shop_campaigns (
        incident BIGINT PRIMARY KEY, finished BOOLEAN NOT NULL,
        done BIGINT NOT NULL DEFAULT 0, total BIGINT NOT NULL DEFAULT 0);";

/// Profiles in the SQLite customer database.
pub(crate) struct SqliteProfiles(Mutex<rusqlite::Connection>);

impl SqliteProfiles {
    /// Opens the shop's tables in `path` (after `SqliteStore` has made the file).
    pub(crate) fn open(path: &Path) -> Result<Self, AppError> {
        let c = rusqlite::Connection::open(path)?;
        c.busy_timeout(std::time::Duration::from_secs(5))?;
        c.execute_batch(SCHEMA)?;
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

impl Profiles for SqliteProfiles {
    fn create(&self, account: &str, email: &str, home: &[String]) -> Result<(), AppError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO shop_profiles (account, email, home) VALUES (?1, ?2, ?3)",
                (account, email, join_lines(home)),
            )
            .map(drop)
        })
    }

    fn email(&self, account: &str) -> Result<Option<String>, AppError> {
        use rusqlite::OptionalExtension as _;
        self.with(|c| {
            c.query_row(
                "SELECT email FROM shop_profiles WHERE account = ?1",
                [account],
                |r| r.get(0),
            )
            .optional()
        })
    }

    fn addresses(&self, account: &str) -> Result<Vec<Vec<String>>, AppError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT home FROM shop_profiles WHERE account = ?1
                 UNION ALL SELECT address FROM shop_shipments WHERE account = ?1",
            )?;
            stmt.query_map([account], |r| r.get::<_, String>(0))?
                .map(|r| r.map(|t| split_lines(&t)))
                .collect()
        })
    }

    fn record_shipment(&self, account: &str, ship_to: &[String]) -> Result<(), AppError> {
        self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO shop_shipments (account, address) VALUES (?1, ?2)",
                (account, join_lines(ship_to)),
            )
            .map(drop)
        })
    }

    fn set_campaign(
        &self,
        incident: i64,
        finished: bool,
        done: u64,
        total: u64,
    ) -> Result<(), AppError> {
        let (done, total) = (to_i64(done), to_i64(total));
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

    fn campaign(&self, incident: i64) -> Result<Option<(bool, u64, u64)>, AppError> {
        use rusqlite::OptionalExtension as _;
        self.with(|c| {
            c.query_row(
                "SELECT finished, done, total FROM shop_campaigns WHERE incident = ?1",
                [incident],
                |r| Ok((r.get(0)?, to_u64(r.get(1)?), to_u64(r.get(2)?))),
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
}

/// Profiles in PostgreSQL (the `public` schema of the customer database).
#[cfg(feature = "postgres")]
pub(crate) struct PgProfiles(Mutex<Option<postgres::Client>>);

#[cfg(feature = "postgres")]
impl PgProfiles {
    /// Connects with the store's settings and TLS, in the store's schema (call it off
    /// the runtime: the sync client runs its own).
    pub(crate) fn connect(
        options: &shopsafe::store::postgres::PgOptions,
        schema: &str,
    ) -> Result<Self, AppError> {
        let mut c = options.connect_client()?;
        // The name was checked by `PgOptions::schema`.
        c.batch_execute(&format!("SET search_path TO \"{schema}\""))?;
        c.batch_execute(SCHEMA)?;
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
impl Drop for PgProfiles {
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
impl Profiles for PgProfiles {
    fn create(&self, account: &str, email: &str, home: &[String]) -> Result<(), AppError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO shop_profiles (account, email, home) VALUES ($1, $2, $3)",
                &[&account, &email, &join_lines(home)],
            )
            .map(drop)
        })
    }

    fn email(&self, account: &str) -> Result<Option<String>, AppError> {
        self.with(|c| {
            c.query_opt(
                "SELECT email FROM shop_profiles WHERE account = $1",
                &[&account],
            )
            .map(|r| r.map(|r| r.get(0)))
        })
    }

    fn addresses(&self, account: &str) -> Result<Vec<Vec<String>>, AppError> {
        self.with(|c| {
            c.query(
                "SELECT home FROM shop_profiles WHERE account = $1
                 UNION ALL SELECT address FROM shop_shipments WHERE account = $1",
                &[&account],
            )
            .map(|rows| rows.iter().map(|r| split_lines(r.get(0))).collect())
        })
    }

    fn record_shipment(&self, account: &str, ship_to: &[String]) -> Result<(), AppError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO shop_shipments (account, address) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
                &[&account, &join_lines(ship_to)],
            )
            .map(drop)
        })
    }

    fn set_campaign(
        &self,
        incident: i64,
        finished: bool,
        done: u64,
        total: u64,
    ) -> Result<(), AppError> {
        let (done, total) = (to_i64(done), to_i64(total));
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

    fn campaign(&self, incident: i64) -> Result<Option<(bool, u64, u64)>, AppError> {
        self.with(|c| {
            c.query_opt(
                "SELECT finished, done, total FROM shop_campaigns WHERE incident = $1",
                &[&incident],
            )
            .map(|r| r.map(|r| (r.get(0), to_u64(r.get(1)), to_u64(r.get(2)))))
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
}
