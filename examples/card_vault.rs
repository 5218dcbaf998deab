//! Cards on file, kept apart: the payment service tokenizes into its own vault file, the
//! customer service keeps only `CardOnFile` rows in its own database, a checkout to a new
//! address asks for step-up, and a charge reveals the number with a grant and an audit
//! record.
//!
//! ```sh
//! cargo run --release --example card_vault
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

use std::sync::Arc;

use shopsafe::card::CardOnFileStore;
use shopsafe::card::{
    Expiry, FileKeySource, Order, Pan, Purpose, ShippingAddress, StepUp, Vault, VaultKeyId,
};
use shopsafe::kernel::{AccountId, Timestamp};
use shopsafe::store::sqlite::{SqliteStore, SqliteVault};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("shopsafe-card-vault-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    // The payment service: its own database file and its own keys.
    let vault_db = Arc::new(SqliteVault::open(dir.join("vault.db"))?);
    let keys = FileKeySource::open_or_create(dir.join("vault.keys"), &VaultKeyId::new("2026-11")?)?;
    let vault = Vault::new(
        Arc::clone(&vault_db),
        Box::new(keys),
        Box::new(Arc::clone(&vault_db)),
    )?;
    // The customer service: another file, which the vault refuses to open.
    let customers = SqliteStore::open(dir.join("customers.db"))?;
    println!("vault:     {}", vault_db.path().display());
    println!("customers: {}", customers.path().display());
    let refused = SqliteVault::open(customers.path()).map(drop);
    println!(
        "opening the vault on the customer file: {}",
        refused.map_or_else(|e| format!("refused ({e})"), |()| "allowed?!".into())
    );

    // Checkout: the number goes to the vault; the customer side keeps the card on file.
    let jane = AccountId::new("cust-000042")?;
    let pan = Pan::parse("4111 1111 1111 1111")?;
    println!(
        "\ncustomer typed {pan} (masked for display: {})",
        pan.mask_bin_last4()
    );
    let card = vault.tokenize(&pan, Expiry::parse("08/29")?)?;
    drop(pan); // wiped
    customers.save_card(&jane, &card, Timestamp::now())?;
    println!(
        "customer database keeps: {} {} ending {} exp {} fingerprint {:?}",
        card.token, card.brand, card.last4, card.expiry, card.fingerprint
    );
    let again = vault.tokenize(&Pan::parse("4111-1111-1111-1111")?, Expiry::parse("08/29")?)?;
    println!(
        "the same card at another checkout: same token: {}",
        again.token == card.token
    );

    // A later order with the stored card.
    let home = ShippingAddress::new(&["12 Main St.", "Springfield 12345"]);
    let known = [home.clone()];
    let stored = &customers.cards(&jane)?[0];
    let usual = StepUp::assess(
        stored,
        &Order::new(
            &ShippingAddress::new(&["12 main st", "springfield, 12345"]),
            &known,
            Timestamp::now(),
        ),
    );
    println!("\nstored card to her usual address: {usual:?}");
    let elsewhere = ShippingAddress::new(&["99 Warehouse Rd", "Shelbyville"]);
    let risky = StepUp::assess(
        stored,
        &Order::new(&elsewhere, &known, Timestamp::now()).known_device(false),
    );
    println!("stored card to a new address from a new device: {risky:?}");

    // The charge: the payment service reveals the number with a grant; audit first.
    let grant = vault.grant(Purpose::Charge, "checkout-svc");
    let revealed = vault.detokenize(&stored.token, &grant)?;
    println!("\ncharging {revealed} (the processor gets the digits; they are wiped after)");
    drop(revealed);
    let refund = vault.grant(Purpose::Refund, "support-tool");
    drop(vault.detokenize(&stored.token, &refund)?);
    println!("audit trail:");
    for r in vault_db.audit_trail(10)? {
        println!(
            "  {:?}  {}  {:<7} by {}",
            r.at, r.token, r.purpose, r.caller
        );
    }

    // Key rotation: new key, old rows re-sealed, old key destroyed.
    vault.rotate(VaultKeyId::new("2027-05")?)?;
    let report = vault.rewrap(1_000)?;
    let lost = vault.shred(&VaultKeyId::new("2026-11")?)?;
    println!(
        "\nrotated to {}; rewrapped {} card(s); shredded the old key ({lost} card(s) lost)",
        vault.current_key(),
        report.rewrapped
    );
    println!(
        "card still opens: {}",
        vault.detokenize(&stored.token, &grant).is_ok()
    );

    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
