//! Breach day, at your size: seed a retailer, let an intruder copy its customer database,
//! and run the response: incident, forced reset, notification campaign across brands,
//! exposure report, retention plan. Every phase is timed.
//!
//! `shopsafe drill`:
//!
//! ```sh
//! cargo run --release -p shopsafe-cli -- drill                      # 100,000 customers
//! cargo run --release -p shopsafe-cli -- drill --customers 1000000 --dir /tmp/drill --keep
//! ```
//!
//! A later release adds the breach-day operator commands to this binary.
//!
//! The production hashing parameters (argon2id, OWASP) throughout. Seeding hashes a pool
//! of eight passwords and reuses those hashes across accounts; it says so when it runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

mod drill;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use drill::{Config, Synthetic, Timings};

/// shopsafe's operator tool.
#[derive(Parser, Debug)]
#[command(name = "shopsafe", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Breach day for a synthetic retailer: what it costs, phase by phase.
    Drill(Args),
}

/// The drill's options.
#[derive(clap::Args, Debug)]
struct Args {
    /// Customers to seed.
    #[arg(long, default_value_t = 100_000)]
    customers: usize,
    /// Storefronts sharing the account base (1 to 4).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=4))]
    brands: u8,
    /// Where to put the databases (default: a new temporary folder).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the databases afterwards.
    #[arg(long)]
    keep: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Cli::parse().command {
        Command::Drill(args) => drill(&args),
    }
}

fn drill(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let temp = match &args.dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("shopsafe-drill-")
                .tempdir()?,
        ),
    };
    let dir = args
        .dir
        .clone()
        .or_else(|| temp.as_ref().map(|t| t.path().to_path_buf()))
        .ok_or("no folder for the databases")?;
    if dir.join("customers.db").exists() {
        return Err(format!(
            "{} already holds a drill; pick another --dir",
            dir.display()
        )
        .into());
    }
    let cfg = Config {
        customers: args.customers,
        brands: usize::from(args.brands),
        dir: dir.clone(),
        progress: true,
        keep_links: 1,
    };
    let mut t = Timings::default();

    println!(
        "== seeding {} customers on {} brand(s) in {}",
        cfg.customers,
        cfg.brands,
        dir.display()
    );
    println!(
        "   credentials: {} distinct passwords hashed with argon2id (OWASP: m=19 MiB, t=2, p=1),\n   \
         each hash reused across accounts to keep seeding short; the parameters are not lowered",
        drill::POOL
    );
    let shop = t.time("seed", || drill::seed(&cfg))?;
    println!(
        "   {} profiles, {} orders, {} cards on file (numbers sealed in the separate vault file)",
        shop.customers, shop.orders, shop.cards
    );
    for (name, path) in [
        ("customer db", shop.store.path()),
        ("vault db", shop.vault_db.path()),
        ("key store", shop.sealer.store().path()),
    ] {
        println!(
            "   {name:<12} {} ({})",
            path.display(),
            mib(std::fs::metadata(path)?.len())
        );
    }

    println!("\n== intrusion: the customer database is copied from one server");
    let loot = t.time("intrusion", || drill::intrude(&shop))?;
    for (file, size) in &loot.files {
        println!("   copied {file} ({})", mib(*size));
    }
    for (table, n) in &loot.tables {
        println!("   attacker holds {table}: {n} rows");
    }
    println!(
        "   a stolen credential: {}…",
        &loot.sample_hash[..loot.sample_hash.len().min(48)]
    );
    println!(
        "   personal values found in the copy: {} of {} seeded (names, emails, phones, addresses: sealed)",
        loot.personal_values, loot.personal_searched
    );
    println!(
        "   card numbers found: {}; passwords in clear: {}",
        loot.card_numbers, loot.plaintext_passwords
    );
    println!(
        "   (copy and search in one pass {:.2} s, row counts {:.2} s)",
        loot.copy_and_search_time.as_secs_f64(),
        loot.count_time.as_secs_f64()
    );

    println!("\n== incident declared: every password set before now is compromised");
    let rot = t.time("incident + campaign", || drill::rotate(&shop, &cfg))?;
    println!(
        "   {}: old password before: {}, after: {}",
        rot.incident, rot.old_password_before, rot.old_password_after
    );
    let once = rot.notices.iter().filter(|&&n| n == 1).count();
    println!(
        "   campaign: {} of {} accounts notified in {:.2} s ({:.0} accounts/s); exactly once: {once}",
        rot.sent,
        rot.affected,
        rot.campaign_time.as_secs_f64(),
        per_second(rot.sent, rot.campaign_time)
    );
    println!(
        "   addresses opened from sealed rows, a batch at a time: {}",
        rot.addresses_opened
    );
    for (brand, n) in &rot.per_brand {
        println!("   as {brand}: {n} notices");
    }
    if let Some(link) = rot.links.first() {
        let reset = t.time("reset by link", || {
            drill::follow_link(&shop, link, Synthetic(0), "granite otter saffron bell")
        })?;
        println!(
            "   cust-00000000 follows the link: the stolen password as the new one: {}",
            reset.stolen_as_new
        );
        println!(
            "   after the reset: new password {}, old password {}",
            reset.new_login, reset.old_login
        );
    }

    println!("\n== exposure report (customer database reached, vault not reached)");
    let exposure = t.time("exposure report", || drill::exposure(&shop))?;
    for ((field, form), n) in &exposure.counts {
        println!("   {field:<15} {n:>9} customers  ({form:?})");
    }
    println!(
        "   held whole only where the intruder did not reach: {}",
        exposure.not_exposed.join(", ")
    );
    println!(
        "   one customer's notice:\n     {}",
        wrap(&exposure.sample_notice, 84, "     ")
    );

    println!("\n== retention plan (dry run: nothing deleted)");
    let summary = t.time("retention plan", || drill::retention(&shop))?;
    for ((category, action), n) in &summary.counts {
        println!("   {category:<9} {action:<22} {n:>9}");
    }

    writer_flush(&shop)?;
    println!(
        "\n   app.log: {} card number(s) redacted on the way to disk",
        shop.log.borrow().redacted()
    );

    println!("\n== timings");
    for (phase, d) in &t.0 {
        println!("   {phase:<20} {:>9.2} s", d.as_secs_f64());
    }
    let after = t.after_seeding();
    println!(
        "   {:<20} {:>9.2} s",
        "all but seeding",
        after.as_secs_f64()
    );
    let rate = per_second(rot.sent, rot.campaign_time);
    println!(
        "   campaign rate {rate:.0} accounts/s: 24 million accounts in about {:.1} min",
        24e6 / rate.max(1.0) / 60.0
    );
    match drill::peak_rss() {
        Some(b) => println!("   peak memory (RSS) {}", mib(b)),
        None => println!("   peak memory: not measured on this platform"),
    }

    drop(shop);
    match temp {
        Some(t) if args.keep => println!("\nkept {}", t.keep().display()),
        Some(t) => t.close()?,
        None => println!("\nthe databases are in {}", dir.display()),
    }
    Ok(())
}

fn writer_flush(shop: &drill::Shop) -> std::io::Result<()> {
    use std::io::Write;
    shop.log.borrow_mut().flush()
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn per_second(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut line = 0;
    for word in text.split(' ') {
        if line > 0 && line + 1 + word.chars().count() > width {
            out.push('\n');
            out.push_str(indent);
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += word.chars().count();
    }
    out
}
