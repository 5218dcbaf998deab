//! The SMTP notifier against a real relay: `.ci/smtp-start` (aiosmtpd on 127.0.0.1), its
//! folder in `SHOPSAFE_SMTP_DIR`. Without it these tests say SKIPPED; with
//! `SHOPSAFE_REQUIRE_SMTP` set (this project's `.ci/run` sets it) they fail instead.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

#[path = "support/servers.rs"]
mod servers;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use servers::{server_env, unique};

use serde_json::Value;
use shopsafe::password::{Hasher, Params, Password};
use shopsafe::rotation::{
    BrandLinks, Campaign, CampaignOptions, Error as RotationError, ResetUrlTemplate,
};
use shopsafe::smtp::{BrandMail, SendError, SmtpNotifier};
use shopsafe::store::sqlite::SqliteStore;
use shopsafe::store::{AccountId, BrandId, CampaignStore, Incident, IncidentScope, Timestamp};

type AnyError = Box<dyn std::error::Error + Send + Sync>;

fn relay(test: &str) -> Option<PathBuf> {
    server_env(
        test,
        "SHOPSAFE_SMTP_DIR",
        "SHOPSAFE_REQUIRE_SMTP",
        "set SHOPSAFE_SMTP_DIR=$(bash .ci/smtp-start) to run it",
    )
    .map(PathBuf::from)
}

fn port(dir: &std::path::Path, which: &str) -> u16 {
    std::fs::read_to_string(dir.join(which))
        .expect("port file")
        .trim()
        .parse()
        .expect("port")
}

/// The mails the relay accepted for recipients containing `tag`. The relay is shared by
/// the tests running beside this one: a line it is still writing (no newline yet) is
/// not read.
fn accepted(dir: &std::path::Path, tag: &str) -> Vec<Value> {
    let log = std::fs::read_to_string(dir.join("mail.jsonl")).unwrap_or_default();
    log[..log.rfind('\n').map_or(0, |end| end + 1)]
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json line"))
        .filter(|m| m["to"].to_string().contains(tag))
        .collect()
}

fn hasher() -> Arc<Hasher> {
    Arc::new(
        Hasher::builder()
            .params(Params::insecure_for_tests(64, 1, 1).expect("params"))
            .build()
            .expect("hasher"),
    )
}

fn brand_mail() -> BrandMail {
    BrandMail::new("Shoes <no-reply@shoes.example>", "Shoes").expect("sender")
}

/// A customer store with `n` accounts `acct0000`.. on brand `shoes`, and an incident.
fn shop(n: usize) -> (tempfile::TempDir, SqliteStore, Incident) {
    let dir = tempfile::tempdir().expect("dir");
    let store = SqliteStore::open(dir.path().join("c.db")).expect("store");
    let hash = hasher()
        .hash(&Password::new("correct horse battery staple"))
        .expect("hash");
    let accounts: Vec<AccountId> = (0..n)
        .map(|i| AccountId::new(format!("acct{i:04}")).expect("id"))
        .collect();
    let brands = [BrandId::new("shoes").expect("brand")];
    store
        .insert_credentials_bulk(
            accounts
                .iter()
                .map(|a| (a, &brands[..], &hash, Timestamp::from_millis(1))),
        )
        .expect("seed");
    let incident = Incident::declare(&store, IncidentScope::All, Timestamp::now(), "db copied")
        .expect("incident");
    (dir, store, incident)
}

fn links() -> BrandLinks {
    BrandLinks::new().default_template(
        ResetUrlTemplate::new("https://shoes.example/reset/{token}").expect("template"),
    )
}

#[test]
fn a_campaign_over_a_real_relay_retries_451_records_550_and_sends_each_notice_once() {
    let Some(dir) =
        relay("a_campaign_over_a_real_relay_retries_451_records_550_and_sends_each_notice_once")
    else {
        return;
    };
    let tag = unique("c");
    let (_tmp, store, incident) = shop(40);
    let book = {
        let tag = tag.clone();
        move |a: &AccountId| -> Result<Option<String>, AnyError> {
            Ok(match a.as_str() {
                "acct0003" => Some(format!("reject-{tag}@customers.example")),
                "acct0005" => Some(format!("defer-{tag}@customers.example")),
                "acct0007" => None,
                "acct0009" => Some("not an address".into()),
                other => Some(format!("{other}-{tag}@customers.example")),
            })
        }
    };
    let notifier = SmtpNotifier::builder(&format!("smtp://127.0.0.1:{}", port(&dir, "plain.port")))
        .default_brand(brand_mail())
        .retry(3, Duration::from_millis(20))
        .pool_size(2)
        .build(book)
        .expect("notifier");
    let links = links();
    let campaign = Campaign::new(&store, &links);
    // A first run stopped after 15 notices, then a second to the end.
    let first = campaign
        .run(&incident, &notifier, CampaignOptions::new().max_notices(15))
        .expect("first run");
    assert!(!first.finished);
    let second = campaign
        .run(&incident, &notifier, CampaignOptions::new())
        .expect("second run");
    assert!(second.finished);
    assert_eq!(second.sent_total, 37, "40 accounts, 3 undeliverable");
    assert_eq!(
        first.undeliverable_this_run + second.undeliverable_this_run,
        3
    );
    assert_eq!(second.undeliverable_total, 3);
    let lane = store
        .open_lanes(&incident, 1, Timestamp::now())
        .expect("lanes")
        .remove(0);
    let undelivered: Vec<(String, String)> = store
        .undeliverable(lane.id, None, 10)
        .expect("list")
        .into_iter()
        .map(|u| (u.account.as_str().to_owned(), u.reason))
        .collect();
    assert_eq!(
        undelivered,
        [
            ("acct0003".to_owned(), "rejected 550".to_owned()),
            ("acct0007".to_owned(), "no-address".to_owned()),
            ("acct0009".to_owned(), "invalid-address".to_owned()),
        ]
    );

    let mails = accepted(&dir, &tag);
    assert_eq!(
        mails.len(),
        37,
        "each deliverable notice once, the deferred one included"
    );
    let mut ids: Vec<String> = mails
        .iter()
        .map(|m| m["message_id"].as_str().expect("Message-ID").to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 37, "one Message-ID per notice");
    let id = format!(
        "<{}.{}@shoes.example>",
        incident.id,
        "acct0001"
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let alice = mails
        .iter()
        .find(|m| m["message_id"] == Value::String(id.clone()))
        .expect("acct0001's notice, by its Message-ID");
    let data = alice["data"].as_str().expect("data");
    let text = alice["text"].as_str().expect("decoded text");
    assert!(text.contains("https://shoes.example/reset/"), "the link");
    assert!(text.contains("change it there too"), "the reuse advice");
    assert!(data.contains("text/html"), "an HTML part");
    assert!(mails.iter().any(|m| m["to"].to_string().contains("defer-")));
    // A third run sends nothing.
    let third = campaign
        .run(&incident, &notifier, CampaignOptions::new())
        .expect("third run");
    assert_eq!(third.sent_this_run, 0);
    assert_eq!(accepted(&dir, &tag).len(), 37);
}

#[test]
fn a_relay_that_keeps_deferring_stops_the_campaign_where_it_was() {
    let Some(dir) = relay("a_relay_that_keeps_deferring_stops_the_campaign_where_it_was") else {
        return;
    };
    let tag = unique("d");
    let (_tmp, store, incident) = shop(6);
    let book = {
        let tag = tag.clone();
        move |a: &AccountId| -> Result<Option<String>, AnyError> {
            Ok(Some(if a.as_str() == "acct0002" {
                format!("deferall-{tag}@customers.example")
            } else {
                format!("{}-{tag}@customers.example", a.as_str())
            }))
        }
    };
    let notifier = SmtpNotifier::builder(&format!("smtp://127.0.0.1:{}", port(&dir, "plain.port")))
        .default_brand(brand_mail())
        .retry(3, Duration::from_millis(10))
        .build(book)
        .expect("notifier");
    let links = links();
    let err = Campaign::new(&store, &links)
        .run(&incident, &notifier, CampaignOptions::new())
        .expect_err("the relay defers acct0002 for good");
    let RotationError::Notify(e) = err else {
        panic!("{err}")
    };
    assert!(
        matches!(
            e.0.downcast_ref::<SendError>(),
            Some(SendError::Deferred {
                code: 451,
                attempts: 3
            })
        ),
        "{e:?}"
    );
    let lane = store
        .open_lanes(&incident, 1, Timestamp::now())
        .expect("lanes")
        .remove(0);
    assert_eq!(
        (lane.sent_cursor.as_ref().map(AccountId::as_str), lane.sent),
        (Some("acct0001"), 2),
        "resumes at the deferred notice"
    );
    // Four notices went out at once (the pool's size): acct0003 was accepted beside the
    // deferred acct0002, and is the one repeat a resumed run will make.
    assert_eq!(accepted(&dir, &tag).len(), 3);
}

#[test]
fn starttls_verifies_the_relay_and_never_falls_back_to_plain_text() {
    let Some(dir) = relay("starttls_verifies_the_relay_and_never_falls_back_to_plain_text") else {
        return;
    };
    let tag = unique("t");
    let (_tmp, store, incident) = shop(2);
    let book = {
        let tag = tag.clone();
        move |a: &AccountId| -> Result<Option<String>, AnyError> {
            Ok(Some(format!("{}-{tag}@customers.example", a.as_str())))
        }
    };
    let tls_port = port(&dir, "starttls.port");
    let notifier = |host: &str, p: u16, ca: &str| {
        SmtpNotifier::builder(&format!("smtp://{host}:{p}?tls=required"))
            .ca_file(dir.join("tls").join(ca))
            .default_brand(brand_mail())
            .retry(2, Duration::from_millis(10))
            .timeout(Duration::from_secs(5))
            .build(book.clone())
            .expect("notifier")
    };
    let links = links();
    let campaign = Campaign::new(&store, &links);
    let refused = |n: &SmtpNotifier<_>| match campaign.run(&incident, n, CampaignOptions::new()) {
        Err(RotationError::Notify(e)) => e,
        other => panic!("expected a refusal, got {other:?}"),
    };
    // Another CA, the wrong name, a relay that offers no STARTTLS: refused, nothing sent.
    let other_ca = refused(&notifier("localhost", tls_port, "other-ca.crt"));
    assert!(
        matches!(
            other_ca.0.downcast_ref::<SendError>(),
            Some(SendError::Tls(_))
        ),
        "{other_ca:?}"
    );
    let wrong_name = refused(&notifier("127.0.0.1", tls_port, "ca.crt"));
    assert!(
        matches!(
            wrong_name.0.downcast_ref::<SendError>(),
            Some(SendError::Tls(_))
        ),
        "{wrong_name:?}"
    );
    let no_starttls = refused(&notifier("localhost", port(&dir, "plain.port"), "ca.crt"));
    assert!(
        no_starttls.0.downcast_ref::<SendError>().is_some(),
        "{no_starttls:?}"
    );
    assert!(
        accepted(&dir, &tag).is_empty(),
        "nothing went out in plain text"
    );
    // The right CA and name.
    let report = campaign
        .run(
            &incident,
            &notifier("localhost", tls_port, "ca.crt"),
            CampaignOptions::new(),
        )
        .expect("sent over TLS");
    assert_eq!(report.sent_total, 2);
    let mails = accepted(&dir, &tag);
    assert_eq!(mails.len(), 2);
    assert!(mails.iter().all(|m| m["tls"] == Value::Bool(true)));
}

#[test]
fn a_reset_mail_goes_out_and_an_unknown_address_is_undeliverable() {
    let Some(dir) = relay("a_reset_mail_goes_out_and_an_unknown_address_is_undeliverable") else {
        return;
    };
    let tag = unique("r");
    let book = {
        let tag = tag.clone();
        move |a: &AccountId| -> Result<Option<String>, AnyError> {
            Ok((a.as_str() == "bob").then(|| format!("bob-{tag}@customers.example")))
        }
    };
    let notifier = Arc::new(
        SmtpNotifier::builder(&format!("smtp://127.0.0.1:{}", port(&dir, "plain.port")))
            .default_brand(brand_mail())
            .brand(
                BrandId::new("boots").expect("brand"),
                BrandMail::new("Boots <hello@boots.example>", "Boots")
                    .expect("sender")
                    .reset("Boots: your reset link", "Here: {link} (until {expires})"),
            )
            .build(book)
            .expect("notifier"),
    );
    let (_tmp, store, _) = shop(0);
    let auth = shopsafe::rotation::Authenticator::new(Arc::new(store), hasher()).with_links(
        BrandLinks::new().default_template(
            ResetUrlTemplate::new("https://boots.example/r/{token}").expect("template"),
        ),
    );
    let bob = AccountId::new("bob").expect("id");
    auth.register(
        &bob,
        &[],
        &Password::new("correct horse battery staple"),
        &shopsafe::password::PasswordContext::new(),
    )
    .expect("register");
    let link = auth
        .request_reset(&bob, None)
        .expect("reset")
        .expect("a link for a known account");
    let boots = BrandId::new("boots").expect("brand");
    assert_eq!(
        notifier
            .send_reset(&bob, Some(&boots), &link, Timestamp::from_millis(0))
            .expect("sent"),
        shopsafe::rotation::Delivery::Accepted
    );
    let mails = accepted(&dir, &tag);
    assert_eq!(mails.len(), 1);
    let data = mails[0]["data"].as_str().expect("data");
    let text = mails[0]["text"].as_str().expect("decoded text");
    assert!(data.contains("Boots: your reset link"));
    assert!(data.contains("hello@boots.example"));
    assert!(text.contains(link.expose_secret()));
    assert!(text.contains("until 1970-01-01 00:00 UTC"));
    assert_eq!(
        notifier
            .send_reset(
                &AccountId::new("eve").expect("id"),
                None,
                &link,
                Timestamp::now()
            )
            .expect("answered"),
        shopsafe::rotation::Delivery::Undeliverable(shopsafe::rotation::Undeliverable::NoAddress)
    );
}
