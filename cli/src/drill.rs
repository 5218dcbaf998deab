//! The breach drill itself, shared by `shopsafe drill` (`main.rs`, which prints it) and
//! `tests/drill.rs` (which checks it): seed a retailer, copy its customer database
//! as an intruder would, and then do what breach day asks, phase by phase, timed.

// Each of the two users calls a different part of this module.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::hash::{DefaultHasher, Hash, Hasher as _};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use regex::bytes::Regex;
use rusqlite::{Connection, OpenFlags, params};
use shopsafe::card::{Expiry, FileKeySource, Pan, Vault, VaultKeyId, luhn_check_digit};
use shopsafe::kernel::{AccountId, BrandId, Timestamp};
use shopsafe::minimize::{
    Category, CategoryRule, DataMap, Form, Pii, PiiKind, RecordMeta, RedactingWriter,
    RetentionPolicy, Summary,
};
use shopsafe::password::{Hasher, Params, Password, PasswordContext};
use shopsafe::rotation::{
    Authenticator, BrandLinks, Campaign, CampaignOptions, Delivery, LoginDecision, Notice,
    Notifier, NotifyError, ResetToken, ResetUrlTemplate,
};
use shopsafe::rotation::{Incident, IncidentScope};
use shopsafe::seal::{Column, Sealed, Sealer};
use shopsafe::store::sqlite::{SqliteKeyStore, SqliteStore, SqliteVault};

type BoxError = Box<dyn std::error::Error>;

const YEAR_MS: i64 = 365 * 86_400_000;
const YEAR: Duration = Duration::from_secs(365 * 86_400);
/// Distinct passwords hashed for seeding; account `i` uses `pool[i % POOL]`.
pub(crate) const POOL: usize = 8;
/// Customers seeded per transaction.
const SEED_CHUNK: usize = 10_000;
/// The store names of the data map.
pub(crate) const CUSTOMER_DB: &str = "customer_db";
pub(crate) const VAULT: &str = "vault";
/// Where customers' data keys are (wrapped), and where the key that wraps them is.
pub(crate) const KEY_STORE: &str = "key_store";
pub(crate) const KEK_FILE: &str = "kek_file";

/// What the drill is asked to do.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// Customers to seed.
    pub customers: usize,
    /// Storefronts (brands) sharing one account base.
    pub brands: usize,
    /// Where the databases go.
    pub dir: PathBuf,
    /// Show progress bars (the example) or not (the test).
    pub progress: bool,
    /// Keep the reset links of the first this many customers, to follow them.
    pub keep_links: usize,
}

/// One customer of the synthetic retailer, derived from its number alone, so that every
/// phase (and the test) can tell what a customer has without reading it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Synthetic(pub usize);

impl Synthetic {
    pub(crate) fn account(self) -> AccountId {
        AccountId::new(format!("cust-{:08}", self.0)).expect("a valid account id")
    }

    /// Two in three customers gave a phone number.
    pub(crate) fn has_phone(self) -> bool {
        !self.0.is_multiple_of(3)
    }

    /// Four in five keep a card on file.
    pub(crate) fn has_card(self) -> bool {
        !self.0.is_multiple_of(5)
    }

    /// One in three bought once and never came back.
    pub(crate) fn one_time_buyer(self) -> bool {
        self.0 % 3 == 1
    }

    /// One in a thousand is under a legal hold (a dispute, a chargeback).
    pub(crate) fn legal_hold(self) -> bool {
        self.0 % 1_000 == 7
    }

    pub(crate) fn password(self) -> String {
        pool_password(self.0 % POOL)
    }

    /// Brands: round robin; one in ten also shops on the next brand.
    pub(crate) fn brands(self, brands: &[BrandId]) -> Vec<BrandId> {
        let first = self.0 % brands.len();
        let mut out = vec![brands[first].clone()];
        if self.0.is_multiple_of(10) && brands.len() > 1 {
            out.push(brands[(first + 1) % brands.len()].clone());
        }
        out
    }

    /// The fields this customer has, as the data map names them.
    pub(crate) fn fields(self) -> &'static [&'static str] {
        FIELD_SETS[field_set(self.has_phone(), self.has_card())]
    }
}

/// Where in [`FIELD_SETS`] a customer with or without a phone and a card is.
fn field_set(phone: bool, card: bool) -> usize {
    usize::from(phone) * 2 + usize::from(card)
}

/// The fields of a customer by (phone, card).
const FIELD_SETS: [&[&str]; 4] = [
    &[
        "name",
        "email address",
        "postal address",
        "order history",
        "password",
    ],
    &[
        "name",
        "email address",
        "postal address",
        "order history",
        "password",
        "card number",
    ],
    &[
        "name",
        "email address",
        "postal address",
        "order history",
        "password",
        "phone number",
    ],
    &[
        "name",
        "email address",
        "postal address",
        "order history",
        "password",
        "phone number",
        "card number",
    ],
];

/// The retailer's data map: where each field of a customer lives, and in what form.
pub(crate) fn data_map() -> DataMap {
    DataMap::new()
        .holds(CUSTOMER_DB, "name", Form::Sealed)
        .holds(CUSTOMER_DB, "email address", Form::Sealed)
        .holds(CUSTOMER_DB, "postal address", Form::Sealed)
        .holds(CUSTOMER_DB, "phone number", Form::Sealed)
        // What was bought, when and for how much: in clear (the name and address on
        // an order are sealed).
        .holds(CUSTOMER_DB, "order history", Form::Plain)
        .sealed_with(CUSTOMER_DB, &[KEY_STORE, KEK_FILE])
        .holds(CUSTOMER_DB, "password", Form::HashedArgon2id)
        // Token, brand, last four and expiry: the number in part only.
        .holds(CUSTOMER_DB, "card number", Form::Masked)
        .holds(VAULT, "card number", Form::EncryptedElsewhere)
}

pub(crate) fn pool_password(k: usize) -> String {
    const WORDS: [&str; 16] = [
        "walnut", "harbour", "copper", "meadow", "lantern", "violin", "saffron", "otter",
        "granite", "willow", "pancake", "orbit", "kettle", "fern", "tractor", "mango",
    ];
    format!(
        "{} {} {} {}",
        WORDS[k % 16],
        WORDS[(k * 5 + 3) % 16],
        WORDS[(k * 7 + 11) % 16],
        WORDS[(k * 3 + 6) % 16]
    )
}

/// SplitMix64: synthetic data only (names, dates, test card numbers), never a secret.
struct Synth(u64);

impl Synth {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// An index below `n`.
    fn index(&mut self, n: usize) -> usize {
        usize::try_from(self.below(n as u64)).unwrap_or(0)
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[usize::try_from(self.below(xs.len() as u64)).unwrap_or(0)]
    }
}

/// A Luhn-valid test number of a common brand.
fn synthetic_pan(r: &mut Synth) -> String {
    let (prefix, len) = match r.below(10) {
        0..=5 => ("4", 16),
        6..=8 => (["51", "52", "53", "54", "55"][r.index(5)], 16),
        _ => (["34", "37"][r.index(2)], 15),
    };
    let mut text = prefix.to_owned();
    while text.len() < len - 1 {
        text.push(char::from(
            b'0' + u8::try_from(r.below(10)).expect("a digit"),
        ));
    }
    let check = luhn_check_digit(text.as_bytes()).unwrap_or(b'0');
    text.push(char::from(check));
    text
}

/// The retailer: its two databases, its keys, and the services over them.
pub(crate) struct Shop {
    pub dir: PathBuf,
    pub store: Arc<SqliteStore>,
    pub vault_db: Arc<SqliteVault>,
    pub vault: Vault<Arc<SqliteVault>>,
    pub brands: Vec<BrandId>,
    pub links: BrandLinks,
    pub auth: Authenticator<SqliteStore>,
    /// Seals and opens the customers' personal data (its key store and KEK file sit
    /// beside the vault, not in the customer database).
    pub sealer: Sealer<SqliteKeyStore>,
    /// Hashes of every personal value seeded, sorted: what the intrusion looks for.
    pub seeded: Vec<u64>,
    pub customers: usize,
    pub cards: u64,
    pub orders: u64,
    /// The application log, which goes to disk through a card-number redactor.
    pub log: RefCell<RedactingWriter<BufWriter<File>>>,
}

/// The customer database's own tables, beside the crate's: profiles and orders.
/// Names, emails, phones and addresses are sealed (`BLOB`s that read as noise), the
/// email with a blind index for lookups.
const APP_SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS profiles (
        id TEXT PRIMARY KEY, name BLOB, email BLOB, email_index BLOB UNIQUE, phone BLOB,
        address BLOB, created_ms INTEGER NOT NULL, last_activity_ms INTEGER NOT NULL,
        legal_hold INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS orders (
        id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, customer_name BLOB, ship_to BLOB,
        total_cents INTEGER NOT NULL, created_ms INTEGER NOT NULL);";

/// The sealed columns of the drill's tables.
pub(crate) struct Columns {
    pub name: Column,
    pub email: Column,
    pub phone: Column,
    pub address: Column,
    pub order_name: Column,
    pub ship_to: Column,
}

pub(crate) fn columns() -> Columns {
    let c = |t, c, k| Column::new(t, c, k).expect("a valid column");
    Columns {
        name: c("profiles", "name", PiiKind::PersonName),
        email: c("profiles", "email", PiiKind::Email),
        phone: c("profiles", "phone", PiiKind::Phone),
        address: c("profiles", "address", PiiKind::PostalAddress),
        order_name: c("orders", "customer_name", PiiKind::PersonName),
        ship_to: c("orders", "ship_to", PiiKind::PostalAddress),
    }
}

/// The hash the intrusion's set holds for a personal value (synthetic data: a fixed
/// SipHash key is enough to tell values apart).
pub(crate) fn value_hash(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

const FIRST: [&str; 16] = [
    "Jane", "Omar", "Mei", "Carlos", "Aisha", "Liam", "Sofia", "Kenji", "Fatima", "Noah", "Zoë",
    "Mateo", "Priya", "Lukas", "Amara", "Ivan",
];
const LAST: [&str; 16] = [
    "Doe", "Ali", "Chen", "García", "Okafor", "Murphy", "Rossi", "Sato", "Haddad", "Smith",
    "Müller", "López", "Patel", "Novak", "Mensah", "Petrov",
];
const STREETS: [&str; 8] = [
    "Main St",
    "Elm Rd",
    "Harbour Way",
    "Mill Lane",
    "Oak Ave",
    "Station Rd",
    "High St",
    "Cedar Ct",
];
const CITIES: [&str; 8] = [
    "Springfield",
    "Riverton",
    "Lakeside",
    "Fairview",
    "Kingsport",
    "Ashford",
    "Bayview",
    "Millbrook",
];

/// Seeds the retailer: profiles and orders (the app's tables), argon2id credentials and
/// cards on file in the customer database, sealed numbers in the vault database.
///
/// Credentials: [`POOL`] passwords are hashed with the production parameters and each
/// hash is reused across accounts (seeding a million argon2id hashes would take hours);
/// the parameters are not weakened.
pub(crate) fn seed(cfg: &Config) -> Result<Shop, BoxError> {
    std::fs::create_dir_all(&cfg.dir)?;
    let store = Arc::new(SqliteStore::open(cfg.dir.join("customers.db"))?);
    let vault_db = Arc::new(SqliteVault::open(cfg.dir.join("vault.db"))?);
    let keys =
        FileKeySource::open_or_create(cfg.dir.join("vault.keys"), &VaultKeyId::new("2026-11")?)?;
    let vault = Vault::new(
        Arc::clone(&vault_db),
        Box::new(keys),
        Box::new(Arc::clone(&vault_db)),
    )?;
    // The customer key store and its KEK: on the vault side, apart from both databases.
    let keks = FileKeySource::open_or_create(
        cfg.dir.join("customer.keys"),
        &VaultKeyId::new("kek-2026-12")?,
    )?;
    let sealer = Sealer::new(SqliteKeyStore::open(cfg.dir.join("keys.db"))?, &keks)?;
    let cols = columns();
    let mut seeded: Vec<u64> = Vec::with_capacity(cfg.customers * 4);
    let brand_names = ["shoes", "boots", "socks", "laces"];
    let brands: Vec<BrandId> = (0..cfg.brands.clamp(1, brand_names.len()))
        .map(|b| BrandId::new(brand_names[b]))
        .collect::<Result<_, _>>()?;
    let mut links = BrandLinks::new();
    for b in &brands {
        links = links.brand(
            b.clone(),
            ResetUrlTemplate::new(&format!(
                "https://{b}.example/account/reset?token={{token}}"
            ))?,
        );
    }
    let hasher = Arc::new(Hasher::new(Params::owasp()));
    let auth =
        Authenticator::new(Arc::clone(&store), Arc::clone(&hasher)).with_links(links.clone());
    let log = File::create(cfg.dir.join("app.log"))?;
    let log = RefCell::new(RedactingWriter::new(BufWriter::new(log)));

    let hashes = (0..POOL)
        .map(|k| hasher.hash(&Password::new(pool_password(k))))
        .collect::<Result<Vec<_>, _>>()?;

    let app = Connection::open(store.path())?;
    app.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
    app.execute_batch(APP_SCHEMA)?;
    let now = Timestamp::now().as_millis();
    let bar = bar(cfg, cfg.customers as u64, "seeding");
    let (mut cards, mut orders) = (0u64, 0u64);
    let mut r = Synth(0x5eed);
    for chunk_start in (0..cfg.customers).step_by(SEED_CHUNK) {
        let chunk: Vec<Synthetic> = (chunk_start..(chunk_start + SEED_CHUNK).min(cfg.customers))
            .map(Synthetic)
            .collect();
        // Profiles and orders, sealed under each customer's own key (made here, in one
        // key-store transaction for the chunk).
        let accounts: Vec<AccountId> = chunk.iter().map(|c| c.account()).collect();
        let keys = sealer.keys_for_sealing(&accounts)?;
        let tx = app.unchecked_transaction()?;
        {
            let mut profile = tx.prepare_cached(
                "INSERT INTO profiles VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            let mut order =
                tx.prepare_cached("INSERT INTO orders VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
            for c in &chunk {
                let (first, last) = (r.pick(&FIRST), r.pick(&LAST));
                let name = Pii::new(PiiKind::PersonName, format!("{first} {last}"));
                let email = Pii::new(
                    PiiKind::Email,
                    format!(
                        "{}.{}{}@example.com",
                        first.to_lowercase(),
                        last.to_lowercase(),
                        c.0
                    ),
                );
                let phone = c.has_phone().then(|| {
                    Pii::new(
                        PiiKind::Phone,
                        format!("+1 {:03} 555 {:04}", 200 + r.below(700), r.below(10_000)),
                    )
                });
                let address = Pii::new(
                    PiiKind::PostalAddress,
                    format!(
                        "{} {}, {} {:05}",
                        1 + r.below(400),
                        r.pick(&STREETS),
                        r.pick(&CITIES),
                        r.below(100_000)
                    ),
                );
                let created = now - i64::try_from(r.below(10 * YEAR_MS as u64))?;
                let last_activity = if c.one_time_buyer() {
                    created
                } else {
                    created + i64::try_from(r.below(u64::try_from(now - created)?))?
                };
                let account = c.account();
                let id = account.as_str();
                for v in [&name, &email, &address].into_iter().chain(phone.as_ref()) {
                    seeded.push(value_hash(v.expose().as_bytes()));
                }
                let seal = |col: &Column, record: &str, v: &Pii<String>| {
                    keys.seal(&account, col, record, v)
                        .map(|s| s.as_bytes().to_vec())
                };
                profile.execute(params![
                    id,
                    seal(&cols.name, id, &name)?,
                    seal(&cols.email, id, &email)?,
                    sealer.blind_index(&cols.email, &email)?.as_bytes(),
                    phone
                        .as_ref()
                        .map(|p| seal(&cols.phone, id, p))
                        .transpose()?,
                    seal(&cols.address, id, &address)?,
                    created,
                    last_activity,
                    c.legal_hold()
                ])?;
                let n = if c.one_time_buyer() {
                    1
                } else {
                    1 + r.below(3)
                };
                for k in 0..n {
                    let at = if n == 1 {
                        created
                    } else {
                        created
                            + (last_activity - created) * i64::try_from(k)? / i64::try_from(n - 1)?
                    };
                    let order_id = format!("ord-{:08}-{k}", c.0);
                    order.execute(params![
                        order_id,
                        id,
                        seal(&cols.order_name, &order_id, &name)?,
                        seal(&cols.ship_to, &order_id, &address)?,
                        i64::try_from(1_000 + r.below(30_000))?,
                        at
                    ])?;
                    orders += 1;
                }
            }
        }
        tx.commit()?;
        drop(keys);

        // Credentials: argon2id PHC strings, set before the incident.
        let ids = accounts;
        let member: Vec<Vec<BrandId>> = chunk.iter().map(|c| c.brands(&brands)).collect();
        store.insert_credentials_bulk(ids.iter().zip(&member).zip(&chunk).map(|((a, b), c)| {
            (
                a,
                b.as_slice(),
                &hashes[c.0 % POOL],
                Timestamp::from_millis(now),
            )
        }))?;

        // Cards: the number goes to the vault, the customer side keeps the card on file.
        let with_card: Vec<(usize, Pan)> = chunk
            .iter()
            .enumerate()
            .filter(|(_, c)| c.has_card())
            .map(|(k, _)| Pan::parse(&synthetic_pan(&mut r)).map(|p| (k, p)))
            .collect::<Result<_, _>>()?;
        let month = u8::try_from(chunk_start / SEED_CHUNK % 12).expect("a month");
        let expiry = Expiry::new(1 + month, 2029)?;
        let on_file = vault.tokenize_batch(with_card.iter().map(|(_, p)| (p, expiry)))?;
        store.save_cards_bulk(
            with_card
                .iter()
                .zip(&on_file)
                .map(|((k, _), card)| (&ids[*k], card)),
            Timestamp::from_millis(now),
        )?;
        // A careless debug line at checkout: the redactor keeps the number off the disk.
        if let Some((k, pan)) = with_card.first() {
            writeln!(
                log.borrow_mut(),
                "DEBUG gateway request account={} card={} amount=42.00",
                ids[*k],
                pan.expose_secret()
            )?;
        }
        cards += on_file.len() as u64;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    drop(app);
    seeded.sort_unstable();
    seeded.dedup();
    Ok(Shop {
        dir: cfg.dir.clone(),
        store,
        vault_db,
        vault,
        brands,
        links,
        auth,
        sealer,
        seeded,
        customers: cfg.customers,
        cards,
        orders,
        log,
    })
}

fn bar(cfg: &Config, len: u64, what: &str) -> ProgressBar {
    if !cfg.progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

/// What the intruder's copy holds.
#[derive(Debug, Default)]
pub(crate) struct Loot {
    pub files: Vec<(String, u64)>,
    pub card_numbers: u64,
    pub plaintext_passwords: u64,
    /// Seeded names, emails, phones and addresses found in the copy, in clear.
    pub personal_values: u64,
    /// How many distinct personal values were seeded (and looked for).
    pub personal_searched: u64,
    pub tables: Vec<(String, u64)>,
    pub sample_hash: String,
    /// Time spent copying and searching (one pass), and counting rows.
    pub copy_and_search_time: Duration,
    pub count_time: Duration,
}

/// Copies the customer database (and its WAL) as an intruder on that server would, and
/// searches the copy for card numbers and for the passwords in clear.
pub(crate) fn intrude(shop: &Shop) -> Result<Loot, BoxError> {
    let loot_dir = shop.dir.join("attacker");
    std::fs::create_dir_all(&loot_dir)?;
    let mut loot = Loot::default();
    let passwords: Vec<String> = (0..POOL)
        .map(|k| regex::escape(&pool_password(k)))
        .collect();
    let clear = Regex::new(&passwords.join("|"))?;
    let anchors = personal_anchors()?;
    loot.personal_searched = shop.seeded.len() as u64;
    let needles = Needles {
        clear: &clear,
        personal: Some((&anchors, &shop.seeded)),
    };
    for suffix in ["", "-wal"] {
        let from = PathBuf::from(format!("{}{suffix}", shop.store.path().display()));
        if !from.exists() {
            continue;
        }
        let to = loot_dir.join(format!("customers.db{suffix}"));
        // The copy and the searches in one pass: each piece is written to the copy and
        // searched as it is read.
        let started = Instant::now();
        let found = copy_and_search(&from, Some(&to), &needles)?;
        loot.copy_and_search_time += started.elapsed();
        loot.files.push((
            format!("customers.db{suffix}"),
            std::fs::metadata(&to)?.len(),
        ));
        loot.card_numbers += found.cards;
        loot.plaintext_passwords += found.passwords;
        loot.personal_values += found.personal;
    }
    let started = Instant::now();
    let copy = Connection::open_with_flags(
        loot_dir.join("customers.db"),
        OpenFlags::SQLITE_OPEN_READ_WRITE,
    )?;
    for table in ["profiles", "orders", "credentials", "cards_on_file"] {
        let n: i64 = copy.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
        loot.tables.push((table.to_owned(), u64::try_from(n)?));
    }
    loot.sample_hash = copy.query_row("SELECT phc FROM credentials LIMIT 1", [], |r| r.get(0))?;
    loot.count_time = started.elapsed();
    Ok(loot)
}

/// What every seeded personal value contains: an email `@example.com`, a phone ` 555 `,
/// an address one of the streets, a name a first and a last name.
pub(crate) fn personal_anchors() -> Result<Regex, BoxError> {
    let names = format!(
        "(?:{}) (?:{})",
        FIRST.map(regex::escape).join("|"),
        LAST.map(regex::escape).join("|")
    );
    let streets = STREETS.map(regex::escape).join("|");
    Ok(Regex::new(&format!(
        r"@example\.com| 555 |{streets}|{names}"
    ))?)
}

/// What the intrusion looks for in a copy.
pub(crate) struct Needles<'a> {
    /// The seeding passwords in clear.
    pub clear: &'a Regex,
    /// The anchors of the personal values ([`personal_anchors`]) and the sorted hashes
    /// of every seeded value (`None`: not searched).
    pub personal: Option<(&'a Regex, &'a [u64])>,
}

/// What one search found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Found {
    pub cards: u64,
    pub passwords: u64,
    pub personal: u64,
}

/// Reads `from` in pieces, writes each piece to `to` (the intruder's copy) when given,
/// and searches every piece as it goes, the searches on two threads beside the write:
///
/// - **card numbers**: every window of 12–19 consecutive ASCII digits that passes Luhn
///   and has a known brand's IIN at one of its lengths, wherever it stands. Unlike the
///   log redactor, this scan has no boundary rule: SQLite writes a row's values back to
///   back, so a number leaked beside `visa` or an account id would be glued to it;
/// - **passwords**: the seeding passwords in clear;
/// - **personal values** (the seeded names, emails, phones, addresses): each place where
///   a value's anchor matches is widened to the printable run around it, and every
///   stretch of that run holding the anchor is looked up in the set of seeded values. A
///   sealed value never matches an anchor.
///
/// The last `OVERLAP` bytes of a piece start the next one; a match is counted in the
/// piece where it ends before the last `HALF` bytes (or where the file ends), so a match
/// and its context are always whole in the piece that counts it, and none is counted
/// twice.
pub(crate) fn copy_and_search(
    from: &Path,
    to: Option<&Path>,
    needles: &Needles<'_>,
) -> Result<Found, BoxError> {
    copy_and_search_in(from, to, needles, 8 << 20)
}

/// [`copy_and_search`] in pieces of `piece` bytes (tests use small ones, to put matches
/// across the boundaries).
pub(crate) fn copy_and_search_in(
    from: &Path,
    to: Option<&Path>,
    needles: &Needles<'_>,
    piece: usize,
) -> Result<Found, BoxError> {
    const OVERLAP: usize = 512;
    const HALF: usize = OVERLAP / 2;
    let mut found = Found::default();
    let mut file = File::open(from)?;
    let mut out = to.map(File::create).transpose()?;
    let mut buf = vec![0u8; piece.max(OVERLAP) + OVERLAP];
    let (mut kept, mut first) = (0, true);
    loop {
        // Fill the piece whole (a short read is not the end of the file).
        let mut len = kept;
        while len < buf.len() {
            match file.read(&mut buf[len..])? {
                0 => break,
                n => len += n,
            }
        }
        let eof = len < buf.len();
        let window = &buf[..len];
        let skip = if first { 0 } else { HALF };
        let limit = if eof { len } else { len - HALF };
        let written = std::thread::scope(|scope| {
            let personal = scope.spawn(|| match needles.personal {
                Some((anchors, seeded)) => personal_in(window, skip, limit, anchors, seeded),
                None => 0,
            });
            let others = scope.spawn(|| {
                let passwords = needles
                    .clear
                    .find_iter(window)
                    .filter(|m| m.end() > skip && m.end() <= limit)
                    .count() as u64;
                (card_windows(window, skip, limit), passwords)
            });
            let written = out
                .as_mut()
                .map_or(Ok(()), |o| o.write_all(&window[kept..]));
            let others = others.join();
            let personal = personal.join();
            (written, others, personal)
        });
        let (written, others, personal) = written;
        written?;
        let (cards, passwords) = others.map_err(|_| "the card and password search panicked")?;
        found.cards += cards;
        found.passwords += passwords;
        found.personal += personal.map_err(|_| "the personal-value search panicked")?;
        if eof {
            break;
        }
        first = false;
        kept = OVERLAP;
        buf.copy_within(len - kept..len, 0);
    }
    if let Some(o) = out {
        o.sync_all()?;
    }
    Ok(found)
}

/// The personal values standing in clear in `window`, counting anchors that end in
/// `(skip, limit]`.
fn personal_in(window: &[u8], skip: usize, limit: usize, anchors: &Regex, seeded: &[u64]) -> u64 {
    const REACH: usize = 96;
    let printable = |b: u8| (0x20..0x7f).contains(&b) || b >= 0x80;
    let mut found = 0;
    for m in anchors.find_iter(window) {
        if m.end() <= skip || m.end() > limit {
            continue;
        }
        let mut from = m.start();
        while from > 0 && m.start() - from < REACH && printable(window[from - 1]) {
            from -= 1;
        }
        let mut to = m.end();
        while to < window.len() && to - m.end() < REACH && printable(window[to]) {
            to += 1;
        }
        let hit = (from..=m.start()).any(|a| {
            (m.end()..=to).any(|b| seeded.binary_search(&value_hash(&window[a..b])).is_ok())
        });
        found += u64::from(hit);
    }
    found
}

/// The seeded personal values in clear in a stored file ([`copy_and_search`]).
pub(crate) fn personal_in_file(
    path: &Path,
    seeded: &[u64],
    anchors: &Regex,
) -> Result<u64, BoxError> {
    let never = Regex::new("$^")?;
    let needles = Needles {
        clear: &never,
        personal: Some((anchors, seeded)),
    };
    Ok(copy_and_search(path, None, &needles)?.personal)
}

/// Card numbers and the seeding passwords in clear in a stored file
/// ([`copy_and_search`]).
pub(crate) fn search_file(path: &Path, clear: &Regex) -> Result<(u64, u64), BoxError> {
    let found = copy_and_search(
        path,
        None,
        &Needles {
            clear,
            personal: None,
        },
    )?;
    Ok((found.cards, found.passwords))
}

/// Luhn-valid windows of 12–19 digits with a known brand at a length it issues, inside
/// the digit runs of `bytes`, counting only windows that end in `(seen, limit]`.
pub(crate) fn card_windows(bytes: &[u8], seen: usize, limit: usize) -> u64 {
    let mut found = 0;
    let mut start = 0;
    for run in bytes.split(|b| !b.is_ascii_digit()) {
        let at = start;
        start += run.len() + 1;
        if run.len() < 12 {
            continue;
        }
        for len in 12..=19.min(run.len()) {
            for (k, w) in run.windows(len).enumerate() {
                let end = at + k + len;
                if end > seen
                    && end <= limit
                    && shopsafe::card::luhn_valid(w)
                    && matches!(shopsafe::card::Brand::detect(w), Some((_, true)))
                {
                    found += 1;
                }
            }
        }
    }
    found
}

/// What the rotation phase did.
#[derive(Debug, Default)]
pub(crate) struct Rotation {
    pub incident: String,
    pub old_password_before: String,
    pub old_password_after: String,
    pub affected: u64,
    pub sent: u64,
    pub per_brand: BTreeMap<String, u64>,
    /// Notices per customer number: exactly one each when all is well.
    pub notices: Vec<u8>,
    /// Links kept for the first customers, to follow them.
    pub links: Vec<String>,
    pub campaign_time: Duration,
    /// Sealed email addresses the notifier opened (one per notice).
    pub addresses_opened: u64,
}

/// The campaign's notifier: for each batch the campaign hands it, one read of the
/// sealed emails and one key-store read (`Sealer::open_all`), then one count per notice
/// (a real notifier would enqueue an email keyed by the notice id).
struct DrillNotifier<'a> {
    shop: &'a Shop,
    keep_links: usize,
    /// One read-only connection per opening thread.
    db: [std::sync::Mutex<Connection>; 2],
    email: Column,
    notices: RefCell<Vec<u8>>,
    per_brand: RefCell<BTreeMap<String, u64>>,
    links: RefCell<Vec<(usize, String)>>,
    stray: Cell<u64>,
    opened: Cell<u64>,
}

impl DrillNotifier<'_> {
    /// The opened email of each notice's customer, in order: each half of the batch on a
    /// thread of its own (one sealed-row read and one key-store read each).
    fn addresses(&self, notices: &[Notice]) -> Result<Vec<Option<String>>, BoxError> {
        let (sealer, email, dbs) = (&self.shop.sealer, &self.email, &self.db);
        if notices.len() < 64 {
            return addresses_on(sealer, email, &dbs[0], notices);
        }
        let (a, b) = notices.split_at(notices.len() / 2);
        let (first, second) = std::thread::scope(|scope| {
            let second =
                scope.spawn(|| addresses_on(sealer, email, &dbs[1], b).map_err(|e| e.to_string()));
            let first = addresses_on(sealer, email, &dbs[0], a).map_err(|e| e.to_string());
            (
                first,
                second
                    .join()
                    .map_err(|_| "an opening thread panicked".to_owned()),
            )
        });
        let mut out = first?;
        out.extend(second??);
        Ok(out)
    }
}

/// The opened email of each notice's customer, in order, through `db`.
fn addresses_on(
    sealer: &Sealer<SqliteKeyStore>,
    email: &Column,
    db: &std::sync::Mutex<Connection>,
    notices: &[Notice],
) -> Result<Vec<Option<String>>, BoxError> {
    let db = db.lock().map_err(|_| "a poisoned connection")?;
    let (Some(low), Some(high)) = (
        notices.iter().map(|n| &n.account).min(),
        notices.iter().map(|n| &n.account).max(),
    ) else {
        return Ok(Vec::new());
    };
    let mut stmt =
        db.prepare_cached("SELECT id, email FROM profiles WHERE id BETWEEN ?1 AND ?2")?;
    let mut sealed: HashMap<String, Vec<u8>> = stmt
        .query_map(params![low.as_str(), high.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut rows = Vec::with_capacity(notices.len());
    let mut at = Vec::with_capacity(notices.len());
    for n in notices {
        match sealed.remove(n.account.as_str()) {
            Some(bytes) => {
                at.push(Some(rows.len()));
                rows.push((
                    n.account.clone(),
                    n.account.as_str().to_owned(),
                    Sealed::from_bytes(&bytes)?,
                ));
            }
            None => at.push(None),
        }
    }
    let mut opened = sealer.open_all(email, &rows)?.into_iter();
    let mut out = Vec::with_capacity(notices.len());
    for slot in at {
        out.push(match slot {
            Some(_) => {
                let pii = opened.next().ok_or("a missing outcome")??;
                Some(pii.expose().clone())
            }
            None => None,
        });
    }
    Ok(out)
}

impl DrillNotifier<'_> {
    fn count(&self, n: &Notice, address: Option<String>) -> Delivery {
        let Some(address) = address else {
            return Delivery::Undeliverable(shopsafe::rotation::Undeliverable::NoAddress);
        };
        if address.ends_with("@example.com") {
            self.opened.set(self.opened.get() + 1);
        }
        let number = n
            .account
            .as_str()
            .strip_prefix("cust-")
            .and_then(|d| d.parse::<usize>().ok());
        let mut counts = self.notices.borrow_mut();
        match number.filter(|k| *k < counts.len()) {
            Some(k) => {
                counts[k] = counts[k].saturating_add(1);
                if k < self.keep_links {
                    self.links
                        .borrow_mut()
                        .push((k, n.link.expose_secret().to_owned()));
                }
            }
            None => self.stray.set(self.stray.get() + 1),
        }
        let brand = n.brand.as_ref().map_or("-", BrandId::as_str).to_owned();
        *self.per_brand.borrow_mut().entry(brand).or_insert(0) += 1;
        Delivery::Accepted
    }
}

impl Notifier for DrillNotifier<'_> {
    fn send(&self, notice: &Notice) -> Result<(), NotifyError> {
        self.deliver(notice).map(drop)
    }

    fn deliver(&self, notice: &Notice) -> Result<Delivery, NotifyError> {
        self.deliver_all(std::slice::from_ref(notice))
            .pop()
            .unwrap_or_else(|| Err(NotifyError("no outcome".into())))
    }

    /// The campaign's whole claimed batch at once.
    fn parallelism(&self) -> usize {
        2_000
    }

    fn deliver_all(&self, notices: &[Notice]) -> Vec<Result<Delivery, NotifyError>> {
        match self.addresses(notices) {
            Ok(addresses) => notices
                .iter()
                .zip(addresses)
                .map(|(n, a)| Ok(self.count(n, a)))
                .collect(),
            Err(e) => vec![Err(NotifyError(e.to_string().into()))],
        }
    }
}

/// Declares the incident (every password set before now), shows what an old password
/// gets, and runs the notification campaign over every account.
pub(crate) fn rotate(shop: &Shop, cfg: &Config) -> Result<Rotation, BoxError> {
    let first = Synthetic(0);
    let mut out = Rotation {
        old_password_before: decision(
            &shop
                .auth
                .login(&first.account(), &Password::new(first.password()))?,
        ),
        ..Rotation::default()
    };
    let incident = Incident::declare(
        &*shop.store,
        IncidentScope::All,
        Timestamp::now(),
        "customer database copied from one server",
    )?;
    out.incident = incident.id.to_string();
    out.old_password_after = decision(
        &shop
            .auth
            .login(&first.account(), &Password::new(first.password()))?,
    );

    let notifier = DrillNotifier {
        shop,
        keep_links: cfg.keep_links,
        db: [
            std::sync::Mutex::new(Connection::open_with_flags(
                shop.store.path(),
                OpenFlags::SQLITE_OPEN_READ_ONLY,
            )?),
            std::sync::Mutex::new(Connection::open_with_flags(
                shop.store.path(),
                OpenFlags::SQLITE_OPEN_READ_ONLY,
            )?),
        ],
        email: columns().email,
        notices: RefCell::new(vec![0u8; shop.customers]),
        per_brand: RefCell::new(BTreeMap::new()),
        links: RefCell::new(Vec::new()),
        stray: Cell::new(0),
        opened: Cell::new(0),
    };
    let report_map = data_map().incident(&[CUSTOMER_DB]);
    let paragraphs: Vec<String> = FIELD_SETS.iter().map(|f| report_map.notice(f)).collect();
    let exposure = |a: &AccountId| {
        let k = a.as_str().strip_prefix("cust-")?.parse::<usize>().ok()?;
        let c = Synthetic(k);
        Some(paragraphs[field_set(c.has_phone(), c.has_card())].clone())
    };
    let bar = bar(cfg, shop.customers as u64, "notifying");
    let options = CampaignOptions::new()
        .exposure(exposure)
        .progress(|p| bar.set_position(p.done));
    let started = Instant::now();
    let report = Campaign::new(&*shop.store, &shop.links).run(&incident, &notifier, options)?;
    out.campaign_time = started.elapsed();
    bar.finish_and_clear();
    writeln!(
        shop.log.borrow_mut(),
        "INFO campaign {} sent={} affected={} finished={}",
        incident.id,
        report.sent_total,
        report.affected,
        report.finished
    )?;
    if notifier.stray.get() > 0 {
        return Err(format!(
            "{} notices for accounts the drill did not seed",
            notifier.stray.get()
        )
        .into());
    }
    out.affected = report.affected;
    out.sent = report.sent_total;
    out.addresses_opened = notifier.opened.get();
    out.notices = notifier.notices.into_inner();
    out.per_brand = notifier.per_brand.into_inner();
    let mut kept = notifier.links.into_inner();
    kept.sort();
    out.links = kept.into_iter().map(|(_, l)| l).collect();
    Ok(out)
}

/// A customer follows the link: the stolen password is refused as the new one, a fresh
/// passphrase is accepted, and then only the new password logs in.
#[derive(Debug)]
pub(crate) struct Reset {
    pub stolen_as_new: String,
    pub new_login: String,
    pub old_login: String,
}

pub(crate) fn follow_link(
    shop: &Shop,
    link: &str,
    customer: Synthetic,
    new: &str,
) -> Result<Reset, BoxError> {
    let token = ResetToken::from_link(link)?;
    let context = PasswordContext::new().brand(shop.brands[0].as_str());
    let old = Password::new(customer.password());
    let stolen_as_new = match shop.auth.redeem(&token, &old, &context) {
        Ok(_) => "accepted".to_owned(),
        Err(e) => format!("refused ({e})"),
    };
    shop.auth.redeem(&token, &Password::new(new), &context)?;
    Ok(Reset {
        stolen_as_new,
        new_login: decision(&shop.auth.login(&customer.account(), &Password::new(new))?),
        old_login: decision(&shop.auth.login(&customer.account(), &old)?),
    })
}

pub(crate) fn decision(d: &LoginDecision) -> String {
    match d {
        LoginDecision::Accepted { .. } => "Accepted".into(),
        LoginDecision::ResetRequired { .. } => "ResetRequired".into(),
        LoginDecision::Rejected => "Rejected".into(),
        LoginDecision::Throttled { .. } => "Throttled".into(),
        other => format!("{other:?}"),
    }
}

/// The exposure report over every customer, from what the customer database holds.
#[derive(Debug, Default)]
pub(crate) struct Exposure {
    pub counts: BTreeMap<(String, Form), u64>,
    pub not_exposed: Vec<String>,
    pub sample_notice: String,
}

pub(crate) fn exposure(shop: &Shop) -> Result<Exposure, BoxError> {
    let report = data_map().incident(&[CUSTOMER_DB]);
    let db = Connection::open_with_flags(shop.store.path(), OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut rows = db.prepare(
        "SELECT p.phone IS NOT NULL,
                EXISTS (SELECT 1 FROM cards_on_file c WHERE c.account = p.id)
         FROM profiles p ORDER BY p.id",
    )?;
    let sets = rows
        .query_map([], |r| Ok(FIELD_SETS[field_set(r.get(0)?, r.get(1)?)]))?
        .collect::<Result<Vec<_>, _>>()?;
    let full = FIELD_SETS[3];
    Ok(Exposure {
        counts: report.aggregate(sets),
        not_exposed: report.customer(full).not_exposed,
        sample_notice: report.notice(full),
    })
}

/// The retention plan as a dry run: counts per category and action.
pub(crate) fn retention(shop: &Shop) -> Result<Summary, BoxError> {
    let cat = |s: &str| Category::new(s);
    let policy = RetentionPolicy::new()
        .rule(cat("profiles")?, CategoryRule::purge_when_dormant(3 * YEAR))?
        .rule(
            cat("orders")?,
            CategoryRule::strip_after(3 * YEAR, &["customer_name", "ship_to"]),
        )?;
    let db = Connection::open_with_flags(shop.store.path(), OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let now = Timestamp::now();
    let mut summary = Summary::default();
    let (profiles, orders) = (cat("profiles")?, cat("orders")?);
    let mut q = db
        .prepare("SELECT id, created_ms, last_activity_ms, legal_hold FROM profiles ORDER BY id")?;
    let records = q.query_map([], |r| {
        Ok(RecordMeta::new(
            r.get::<_, String>(0)?,
            profiles.clone(),
            Timestamp::from_millis(r.get(1)?),
        )
        .last_activity(Timestamp::from_millis(r.get(2)?))
        .legal_hold(r.get(3)?))
    })?;
    plan_rows(&policy, records, now, &mut summary)?;
    let mut q = db.prepare(
        "SELECT o.id, o.created_ms, p.legal_hold FROM orders o JOIN profiles p ON p.id = o.customer_id ORDER BY o.id",
    )?;
    let thirty_days = now.as_millis() - 30 * 86_400_000;
    let records = q.query_map([], |r| {
        let created: i64 = r.get(1)?;
        Ok(RecordMeta::new(
            r.get::<_, String>(0)?,
            orders.clone(),
            Timestamp::from_millis(created),
        )
        .legal_hold(r.get(2)?)
        .in_flight(created > thirty_days))
    })?;
    plan_rows(&policy, records, now, &mut summary)?;
    Ok(summary)
}

/// Plans rows as they are read (a million records never sit in memory at once), and
/// stops at the first row that cannot be read.
fn plan_rows(
    policy: &RetentionPolicy,
    rows: impl Iterator<Item = rusqlite::Result<RecordMeta>>,
    now: Timestamp,
    summary: &mut Summary,
) -> Result<(), BoxError> {
    let mut failed = None;
    let records = rows.map_while(|r| r.map_err(|e| failed = Some(e)).ok());
    policy.plan(records, now, summary).for_each(drop);
    failed.map_or(Ok(()), |e| Err(e.into()))
}

/// The phase timings and the answers of one run.
#[derive(Debug, Default)]
pub(crate) struct Timings(pub Vec<(&'static str, Duration)>);

impl Timings {
    pub(crate) fn time<T>(&mut self, phase: &'static str, f: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let out = f();
        self.0.push((phase, started.elapsed()));
        out
    }

    /// All phases but seeding.
    pub(crate) fn after_seeding(&self) -> Duration {
        self.0
            .iter()
            .filter(|(p, _)| *p != "seed")
            .map(|(_, d)| *d)
            .sum()
    }
}

/// Peak resident memory of this process (Linux), in bytes.
pub(crate) fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
