//! A login service on breach day, in order: sign-up, login, incident, forced reset,
//! notification, redemption, login with the new password.
//!
//! ```sh
//! cargo run --release --example login_flow
//! ```
//!
//! Uses the production hashing parameters (argon2id, OWASP) and a SQLite file in a
//! temporary folder; prints what happens at each step.

use std::sync::Arc;

use shopsafe::password::{Hasher, Params, Password, PasswordContext};
use shopsafe::rotation::{
    Authenticator, BrandLinks, Campaign, CampaignOptions, LoginDecision, Notice, NotifyError,
    ResetToken, ResetUrlTemplate,
};
use shopsafe::store::sqlite::SqliteStore;
use shopsafe::store::{AccountId, BrandId, Incident, IncidentScope, Timestamp};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile_dir()?;
    let store = Arc::new(SqliteStore::open(dir.join("customers.db"))?);
    let hasher = Arc::new(Hasher::new(Params::owasp()));
    let shoes = BrandId::new("shoes")?;
    let links = BrandLinks::new().brand(
        shoes.clone(),
        ResetUrlTemplate::new("https://shoes.example/account/reset?token={token}")?,
    );
    let auth = Authenticator::new(Arc::clone(&store), hasher).with_links(links.clone());

    let jane = AccountId::new("cust-000042")?;
    let context = PasswordContext::new()
        .brand("shoes")
        .email("jane.doe@example.com");
    auth.register(
        &jane,
        std::slice::from_ref(&shoes),
        &Password::new("walnut cobbler lantern river"),
        &context,
    )?;
    println!("signed up {jane} on brand {shoes} (argon2id, OWASP parameters)");

    let first = auth.login(&jane, &Password::new("walnut cobbler lantern river"))?;
    println!("login with her password: {}", describe(&first));
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
    let after = auth.login(&jane, &Password::new("walnut cobbler lantern river"))?;
    println!("login with the same password now: {}", describe(&after));
    println!(
        "her open session still valid: {}",
        auth.validate_session(&jane, &session_stamp)?
    );

    // The campaign hands one notice per affected account to the mail system.
    // (A real notifier enqueues an email; this one keeps the link to play Jane below.)
    let outbox = std::cell::RefCell::new(Vec::new());
    let notifier = |n: &Notice| -> Result<(), NotifyError> {
        println!("notice {} for brand {:?}: reset link sent", n.id, n.brand);
        outbox.borrow_mut().push(n.link.expose_secret().to_owned());
        Ok(())
    };
    let report =
        Campaign::new(&*store, &links).run(&incident, &notifier, CampaignOptions::new())?;
    println!(
        "campaign: {} of {} accounts notified, finished: {}",
        report.sent_total, report.affected, report.finished
    );

    // Jane clicks the link and chooses a new password.
    let token = ResetToken::from_link(&outbox.borrow()[0])?;
    let refused = auth.redeem(
        &token,
        &Password::new("walnut cobbler lantern river"),
        &context,
    );
    println!(
        "\nreset to the stolen password: {}",
        refused.map_or_else(|e| format!("refused ({e})"), |_| "accepted".into())
    );
    auth.redeem(
        &token,
        &Password::new("granite otter saffron bell"),
        &context,
    )?;
    println!("reset to a new password: done (all sessions and older links are now dead)");
    println!(
        "old session still valid: {}",
        auth.validate_session(&jane, &session_stamp)?
    );
    let again = auth.redeem(&token, &Password::new("another new passphrase"), &context);
    println!(
        "same link again: {}",
        again.map_or_else(|e| format!("refused ({e})"), |_| "accepted".into())
    );

    let old = auth.login(&jane, &Password::new("walnut cobbler lantern river"))?;
    let new = auth.login(&jane, &Password::new("granite otter saffron bell"))?;
    println!("\nlogin with the old password: {}", describe(&old));
    println!("login with the new password: {}", describe(&new));
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn describe(d: &LoginDecision) -> String {
    match d {
        LoginDecision::Accepted { rehashed, .. } => format!("accepted (rehashed: {rehashed})"),
        LoginDecision::ResetRequired { reason } => {
            format!("reset required ({reason:?}), password not even checked")
        }
        LoginDecision::Rejected => "rejected".into(),
        LoginDecision::Throttled { retry_after } => format!("throttled for {retry_after:?}"),
        other => format!("{other:?}"),
    }
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("shopsafe-login-flow-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
