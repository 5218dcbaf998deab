//! A login service on breach day, in order: sign-ups on two brands, a login, the
//! incident, `ResetRequired`, the notification campaign, a redeemed reset link, and a
//! login with the new password.
//!
//! ```sh
//! cargo run --release --example login_flow
//! ```
//!
//! Uses the production hashing parameters (argon2id, OWASP) and a SQLite file in a
//! temporary folder, and prints what happens at each step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

use std::cell::RefCell;
use std::sync::Arc;

use shopsafe::kernel::{AccountId, BrandId, Timestamp};
use shopsafe::password::{Hasher, Params, Password, PasswordContext};
use shopsafe::rotation::{
    Authenticator, BrandLinks, Campaign, CampaignOptions, LoginDecision, Notice, NotifyError,
    ResetToken, ResetUrlTemplate,
};
use shopsafe::rotation::{Incident, IncidentScope};
use shopsafe::store::sqlite::SqliteStore;

const CUSTOMERS: [(&str, &[&str], &str); 5] = [
    ("cust-000042", &["shoes"], "walnut cobbler lantern river"),
    ("cust-000043", &["boots"], "quiet harbour copper kettle"),
    (
        "cust-000044",
        &["shoes", "boots"],
        "amber meadow tractor violin",
    ),
    ("cust-000045", &["boots"], "silver fern lighthouse mango"),
    ("cust-000046", &["shoes"], "orbit pancake willow saddle"),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("shopsafe-login-flow-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store = Arc::new(SqliteStore::open(dir.join("customers.db"))?);
    let links = BrandLinks::new()
        .brand(
            BrandId::new("shoes")?,
            ResetUrlTemplate::new("https://shoes.example/account/reset?token={token}")?,
        )
        .brand(
            BrandId::new("boots")?,
            ResetUrlTemplate::new("https://boots.example/reset/{token}")?,
        );
    let hasher = Arc::new(Hasher::new(Params::owasp()));
    let auth = Authenticator::new(Arc::clone(&store), hasher).with_links(links.clone());

    for (id, brands, password) in CUSTOMERS {
        let brands = brands
            .iter()
            .map(|b| BrandId::new(*b))
            .collect::<Result<Vec<_>, _>>()?;
        let context = PasswordContext::new().brand(brands[0].as_str());
        auth.register(
            &AccountId::new(id)?,
            &brands,
            &Password::new(password),
            &context,
        )?;
    }
    println!(
        "signed up {} customers on brands shoes and boots (argon2id, OWASP parameters)",
        CUSTOMERS.len()
    );

    let jane = AccountId::new(CUSTOMERS[0].0)?;
    let old_password = Password::new(CUSTOMERS[0].2);
    let first = auth.login(&jane, &old_password)?;
    println!("{jane} logs in with her password: {}", describe(&first));
    let LoginDecision::Accepted { session_stamp, .. } = first else {
        return Err("the first login should be accepted".into());
    };

    // Breach day: every credential set before now is compromised. O(1): one row.
    let incident = Incident::declare(
        &*store,
        IncidentScope::All,
        Timestamp::now(),
        "customer db copied",
    )?;
    println!("\ndeclared {} (scope: all accounts)", incident.id);
    println!(
        "{jane} logs in with the same password: {}",
        describe(&auth.login(&jane, &old_password)?)
    );
    println!(
        "{jane} logs in with a wrong password: {}",
        describe(&auth.login(&jane, &Password::new("nope"))?)
    );
    println!(
        "her open session is still valid: {}",
        auth.validate_session(&jane, &session_stamp)?
    );

    // The campaign hands one notice per affected account to the mail system. (A real
    // notifier enqueues an email keyed by `n.id`; this one prints and keeps the links.)
    println!("\nnotification campaign:");
    let outbox = RefCell::new(Vec::new());
    let notifier = |n: &Notice| -> Result<(), NotifyError> {
        let link = n.link.expose_secret();
        let brand = n.brand.as_ref().map_or("-", BrandId::as_str);
        println!(
            "  {} as {brand:<5} link {}… ({} chars)",
            n.id,
            &link[..link.len() - 36],
            link.len()
        );
        outbox.borrow_mut().push(link.to_owned());
        Ok(())
    };
    let report =
        Campaign::new(&*store, &links).run(&incident, &notifier, CampaignOptions::new())?;
    println!(
        "  {} of {} accounts notified in {:?}, finished: {}",
        report.sent_total, report.affected, report.elapsed, report.finished
    );

    // Jane follows her link and chooses a new password.
    let token = ResetToken::from_link(&outbox.borrow()[0])?;
    let context = PasswordContext::new()
        .brand("shoes")
        .email("jane.doe@example.com");
    let refused = auth.redeem(&token, &old_password, &context);
    println!(
        "\nreset to the stolen password: {}",
        outcome(refused.map(drop))
    );
    let too_short = auth.redeem(&token, &Password::new("shoes2026"), &context);
    println!("reset to \"shoes2026\": {}", outcome(too_short.map(drop)));
    auth.redeem(
        &token,
        &Password::new("granite otter saffron bell"),
        &context,
    )?;
    println!("reset to a new passphrase: done (her sessions and other links are now dead)");
    println!(
        "her old session is still valid: {}",
        auth.validate_session(&jane, &session_stamp)?
    );
    let again = auth.redeem(&token, &Password::new("another new passphrase"), &context);
    println!("the same link again: {}", outcome(again.map(drop)));

    println!(
        "\n{jane} logs in with the old password: {}",
        describe(&auth.login(&jane, &old_password)?)
    );
    let new = auth.login(&jane, &Password::new("granite otter saffron bell"))?;
    println!("{jane} logs in with the new password: {}", describe(&new));
    let omar = AccountId::new(CUSTOMERS[1].0)?;
    let omar_says = auth.login(&omar, &Password::new(CUSTOMERS[1].2))?;
    println!("{omar}, who has not reset yet: {}", describe(&omar_says));
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn describe(d: &LoginDecision) -> String {
    match d {
        LoginDecision::Accepted { rehashed, .. } => format!("accepted (rehashed: {rehashed})"),
        LoginDecision::ResetRequired { reason } => {
            format!("reset required ({reason:?}); the password was not even checked")
        }
        LoginDecision::Rejected => "rejected".into(),
        LoginDecision::Throttled { retry_after } => format!("throttled for {retry_after:?}"),
        other => format!("{other:?}"),
    }
}

fn outcome(r: Result<(), shopsafe::rotation::Error>) -> String {
    r.map_or_else(|e| format!("refused ({e})"), |()| "accepted".into())
}
