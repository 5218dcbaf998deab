//! A small shop backend on axum and shopsafe's async API (`shopsafe::aio`): accounts,
//! logins with sessions, password resets by mail, cards in a separate vault, stored-card
//! charges with step-up, the breach notice, and the breach-day admin calls (declare an
//! incident, run its mail campaign).
//!
//! ```text
//! cargo run --release -p shop-server
//! cargo run --release -p shop-server -- --listen 127.0.0.1:0 --data /tmp/shop
//! SHOPSAFE_ADMIN_TOKEN=secret cargo run --release -p shop-server --features postgres -- --postgres 'host=/tmp dbname=shop'
//! ```
//!
//! The first line on stdout is `listening on http://ADDR`. Logs go to stderr through
//! shopsafe's redacting writer. SIGINT/SIGTERM: requests in flight finish (for at most
//! `--shutdown-deadline-secs`, then their connections are dropped), a running campaign
//! stops between two notices and resumes at the next start.
//!
//! Every path that hashes a password is limited per source (the client address; behind
//! a reverse proxy pass `--trusted-proxy CIDR` so that it is the client's, not the
//! proxy's), in counters kept in the customer database, shared by every server on it.
//! Account ids are public names: sign-up answers 409 for a taken one, as any shop's
//! "this name is taken" does, and is limited per source like a login.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // example code

mod accounts;
mod admin;
mod answers;
mod app;
mod cards;
mod erasure;
mod mail;
mod net;
mod profiles;
mod session;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use clap::Parser;
use shopsafe::minimize::RedactingWriter;

use crate::app::serve;
use crate::profiles::{AppError, Profiles, SealedProfiles, ShopSealer};

#[derive(Parser, Debug)]
#[command(about = "A shop backend on shopsafe (axum, tokio)")]
struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Folder for the databases, the vault's key file, the audit log and the outbox.
    #[arg(long, default_value = "shop-data")]
    data: PathBuf,
    /// Start on a customer database restored from a backup older than the key store:
    /// accept its erasure ledger, which ends before the erasures the key store applied
    /// (they stay done; record them again). Without it such a start is refused.
    #[arg(long)]
    accept_erasure_ledger_cut: bool,
    /// The vault side: the card vault, the customer key store, every key file, the
    /// audit trail (default `<data>/vault`). Everything else under
    /// `--data` is the customer side.
    #[arg(long)]
    vault_dir: Option<PathBuf>,
    /// PostgreSQL connection string (customer data and vault in schemas of their own).
    #[arg(long)]
    postgres: Option<String>,
    /// Schema name on PostgreSQL (the vault's is this with `_vault`).
    #[arg(long, default_value = "shop")]
    pg_schema: String,
    /// A brand and its reset link, `NAME=https://…{token}` (adds or replaces).
    #[arg(long = "brand")]
    brands: Vec<String>,
    /// Where mail goes as `.eml` files (default: `outbox` in the data folder).
    #[arg(long)]
    outbox: Option<PathBuf>,
    /// Waits this long after each campaign mail (a slow mail relay, for drills and tests).
    #[arg(long, default_value_t = 0)]
    mail_delay_ms: u64,
    /// Memory for concurrent password hashes, in MiB (default: shopsafe's).
    #[arg(long)]
    hash_memory_mib: Option<usize>,
    /// Sends mail through this SMTP relay instead of the outbox:
    /// `smtps://user:pass@host:465`, `smtp://user:pass@host:587?tls=required`, or plain
    /// `smtp://127.0.0.1:25` to a local relay. The password may come from
    /// `SHOPSAFE_SMTP_PASSWORD` instead.
    #[arg(long)]
    smtp: Option<String>,
    /// Verifies the relay against this CA file (PEM) instead of the platform's roots.
    #[arg(long)]
    smtp_ca: Option<PathBuf>,
    /// The sender of every mail.
    #[arg(long, default_value = "Shop <no-reply@shop.example>")]
    mail_from: String,
    /// Refuses new passwords found in this offline Pwned Passwords index (built with
    /// `examples/pwned_index.rs`) at sign-up and reset; a failed lookup refuses too.
    #[arg(long)]
    pwned_index: Option<PathBuf>,
    /// A reverse proxy (an address or `ADDR/LEN`) whose `X-Forwarded-For` names the
    /// client; repeat for several. Without it every client behind the proxy would count
    /// as the proxy's address, and one budget would throttle the whole site.
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    trusted_proxies: Vec<shopsafe::web::Cidr>,
    /// The shop's origin: a state-changing request by cookie must come from it
    /// (`Origin`, `Sec-Fetch-Site`) or carry its CSRF token.
    #[arg(long, value_name = "URL", default_value = shopsafe::web::DEFAULT_ORIGIN)]
    origin: String,
    /// Connections open at once (one more is closed at once).
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Requests handled at once (more wait for a turn).
    #[arg(long, default_value_t = 512)]
    max_in_flight: usize,
    /// Seconds a client may take to send a request's headers.
    #[arg(long, default_value_t = 10)]
    header_timeout_secs: u64,
    /// Seconds a shutdown waits for requests in flight before dropping them.
    #[arg(long, default_value_t = 10)]
    shutdown_deadline_secs: u64,
    /// Sign-ups per source per hour.
    #[arg(long, default_value_t = 20)]
    signups_per_hour: u32,
    /// Charges per account per hour (the vault's 600 reveals a minute stay the last line).
    #[arg(long, default_value_t = 30)]
    charges_per_hour: u32,
}

// ---------------------------------------------------------------------------------------
// Logs: every line through shopsafe's redacting writer, so a card number that reaches a
// log line by mistake is masked.

static LOG: Mutex<Option<RedactingWriter<std::io::Stderr>>> = Mutex::new(None);

fn log(line: &str) {
    let mut guard = LOG
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let w = guard.get_or_insert_with(|| RedactingWriter::new(std::io::stderr()));
    let _ = writeln!(w, "{line}");
    let _ = w.flush();
}

impl Args {
    fn vault_dir(&self) -> PathBuf {
        self.vault_dir
            .clone()
            .unwrap_or_else(|| self.data.join("vault"))
    }
}

/// Creates the vault folder (0700), and moves the vault-side files an earlier version
/// kept at the top of `--data` into it.
fn vault_side(args: &Args) -> Result<PathBuf, AppError> {
    let dir = args.vault_dir();
    std::fs::create_dir_all(&dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    }
    if !dir.join("vault.db").exists() {
        for entry in std::fs::read_dir(&args.data)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if entry.file_type()?.is_file() && (name.starts_with("vault") || name == "session.key")
            {
                std::fs::rename(entry.path(), dir.join(&*name))?;
                log(&format!("moved {name} into the vault folder"));
            }
        }
    }
    Ok(dir)
}

/// The customer-data KEK (its own key file on the vault side) and the sealer over
/// `keys`, recording erasures in the ledger in `ledger` (the customer database), keyed
/// by the KEK file's audit key (`customer.keys.audit-key`, on the vault side too).
///
/// At start the ledger is checked whole (a ledger edited, or cut back below a checkpoint
/// kept beside it, stops the start) and replayed: a key store restored from a backup
/// older than an erasure has the listed keys destroyed again before anything opens.
fn sealer(
    vault: &std::path::Path,
    keys: Arc<dyn shopsafe::seal::KeyStore>,
    ledger: Arc<dyn shopsafe::seal::LedgerStore>,
    accept_cut: bool,
) -> Result<Arc<ShopSealer>, AppError> {
    let kek = shopsafe::card::FileKeySource::open_or_create(
        vault.join("customer.keys"),
        &shopsafe::card::VaultKeyId::new("kek-1")?,
    )?;
    let ledger =
        shopsafe::seal::ErasureLedger::new(ledger, &shopsafe::card::KeySource::audit_key(&kek)?);
    let checked = ledger.verify(&[])?;
    let sealer = ShopSealer::new(keys, &kek)?.with_ledger(ledger)?;
    let replay = match sealer.replay(10_000, |_| {}) {
        Err(shopsafe::seal::Error::LedgerCut {
            checkpoint,
            entries,
        }) if accept_cut => {
            log(&format!(
                "erasure ledger: accepting a ledger of {entries} entries where the key \
                 store had applied {checkpoint} (--accept-erasure-ledger-cut): record the \
                 erasures after it again"
            ));
            sealer.accept_ledger_cut()?;
            sealer.replay(10_000, |_| {})?
        }
        Err(e @ shopsafe::seal::Error::LedgerCut { .. }) => {
            return Err(format!(
                "{e}: the customer database is older than the key store; start once with \
                 --accept-erasure-ledger-cut to go on from it"
            )
            .into());
        }
        other => other?,
    };
    if replay.entries > 0 {
        log(&format!(
            "erasure ledger: the key store was {} erasures behind; {} keys destroyed again",
            replay.entries, replay.destroyed
        ));
    }
    log(&format!(
        "erasure ledger: {} entries, checked",
        checked.entries
    ));
    Ok(Arc::new(sealer))
}

fn main() -> Result<(), AppError> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.data)?;
    let vault_dir = vault_side(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // The stores are opened before the runtime runs anything: the sync PostgreSQL client
    // must not be built on one of its threads.
    if let Some(url) = args.postgres.clone() {
        #[cfg(feature = "postgres")]
        {
            use shopsafe::store::postgres::{PgOptions, PgStore, PgVault};
            let schema = args.pg_schema.clone();
            let options = PgOptions::new(&url)?.schema(&schema)?;
            let store = Arc::new(PgStore::connect(options.clone())?);
            let vault = Arc::new(PgVault::connect(
                PgOptions::new(&url)?.schema(&format!("{schema}_vault"))?,
            )?);
            let keys = Arc::new(shopsafe::store::postgres::PgKeyStore::connect(
                PgOptions::new(&url)?.schema(&format!("{schema}_keys"))?,
            )?);
            let rows = profiles::PgRows::connect(&options, &schema)?;
            profiles::check_keys_are_there(&rows, &*keys, &vault_dir.join("customer.keys"))?;
            let sealer = sealer(
                &vault_dir,
                keys,
                Arc::clone(&store) as _,
                args.accept_erasure_ledger_cut,
            )?;
            let profiles: Arc<dyn Profiles> = Arc::new(SealedProfiles::new(rows, sealer)?);
            return runtime.block_on(serve(args, vault_dir, store, vault, profiles));
        }
        #[cfg(not(feature = "postgres"))]
        {
            let _ = url;
            return Err("--postgres needs the `postgres` feature".into());
        }
    }
    use shopsafe::store::sqlite::{SqliteKeyStore, SqliteStore, SqliteVault};
    let store = Arc::new(SqliteStore::open(args.data.join("customers.db"))?);
    let vault = Arc::new(SqliteVault::open(vault_dir.join("vault.db"))?);
    let rows = profiles::SqliteRows::open(store.path())?;
    let keys = Arc::new(SqliteKeyStore::open(vault_dir.join("keys.db"))?);
    profiles::check_keys_are_there(&rows, &*keys, &vault_dir.join("customer.keys"))?;
    let profiles: Arc<dyn Profiles> = Arc::new(SealedProfiles::new(
        rows,
        sealer(
            &vault_dir,
            keys,
            Arc::clone(&store) as _,
            args.accept_erasure_ledger_cut,
        )?,
    )?);
    runtime.block_on(serve(args, vault_dir, store, vault, profiles))
}
