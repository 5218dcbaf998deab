//! The reference service over real HTTP: the shop server (`examples/shop-server`) as a child process,
//! driven with reqwest through the whole breach day, on SQLite and (with
//! `SHOPSAFE_PG_URL`) on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

#[path = "../../../tests/support/servers.rs"]
mod servers;
#[path = "support/shop.rs"]
mod shop;

use std::path::Path;
use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use shop::{ADMIN, Server, link_in_outbox};

const ALICE_PW: &str = "correct horse battery staple";
const ALICE_NEW_PW: &str = "violet elephant under the stairs";

async fn post(c: &Client, url: String, body: Value, bearer: Option<&str>) -> (StatusCode, Value) {
    let mut req = c.post(url).json(&body);
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    let r = req.send().await.expect("request");
    let status = r.status();
    let text = r.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn get(c: &Client, url: String, bearer: Option<&str>) -> (StatusCode, Value) {
    let mut req = c.get(url);
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    let r = req.send().await.expect("request");
    let status = r.status();
    let text = r.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Logs in (200 expected) and returns the session.
async fn session_of(c: &Client, s: &Server, account: &str, password: &str) -> String {
    let (status, body) = post(
        c,
        s.url("/login"),
        json!({"account": account, "password": password}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["session"].as_str().expect("session").to_owned()
}

/// Polls a campaign's state until it is finished (10 s at most) and returns it.
async fn campaign_when_finished(c: &Client, url: String) -> Value {
    let mut status = Value::Null;
    for _ in 0..200 {
        status = get(c, url.clone(), Some(ADMIN)).await.1;
        if status["finished"] == json!(true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    status
}

async fn breach_day(data: &Path, extra: &[&str]) {
    let server = Server::start(data, extra);
    let c = Client::new();
    let s = &server;

    assert_eq!(get(&c, s.url("/health"), None).await.0, StatusCode::OK);

    // Sign-up: two customers on two brands; a duplicate and a weak password refused.
    let alice = json!({"account": "alice", "email": "alice@example.com", "password": ALICE_PW,
        "brand": "shoes", "address": ["1 Main St", "Springfield"]});
    assert_eq!(
        post(&c, s.url("/accounts"), alice.clone(), None).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        post(&c, s.url("/accounts"), alice, None).await.0,
        StatusCode::CONFLICT
    );
    let (status, body) = post(
        &c,
        s.url("/accounts"),
        json!({"account": "bob",
        "email": "bob@example.com", "password": "password", "brand": "boots",
        "address": ["2 Elm St"]}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "password_rejected", "{body}");
    assert_eq!(
        post(
            &c,
            s.url("/accounts"),
            json!({"account": "bob", "email": "bob@example.com",
            "password": "a long and unusual passphrase", "brand": "boots",
            "address": ["2 Elm St"]}),
            None
        )
        .await
        .0,
        StatusCode::CREATED
    );

    // Login, session, a card, a charge home and one to a new address.
    let session = session_of(&c, s, "alice", ALICE_PW).await;
    let (status, body) = get(&c, s.url("/me"), Some(&session)).await;
    assert_eq!(
        (status, &body["account"]),
        (StatusCode::OK, &json!("alice"))
    );
    // The same session with one character changed: opens nothing.
    let last = if session.ends_with('A') { "B" } else { "A" };
    let relabelled = format!("{}{last}", &session[..session.len() - 1]);
    assert_ne!(relabelled, session);
    assert_eq!(
        get(&c, s.url("/me"), Some(&relabelled)).await.0,
        StatusCode::UNAUTHORIZED
    );

    let (status, body) = post(
        &c,
        s.url("/cards"),
        json!({"number": "4111 1111 1111 1112", "expiry": "08/29"}),
        Some(&session),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        !body.to_string().contains("4111"),
        "the body never repeats the number: {body}"
    );
    let (status, card) = post(
        &c,
        s.url("/cards"),
        json!({"number": "4111 1111 1111 1111", "expiry": "08/29"}),
        Some(&session),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{card}");
    assert_eq!(
        (&card["brand"], &card["last4"]),
        (&json!("Visa"), &json!("1111"))
    );
    let token = card["token"].as_str().expect("token").to_owned();
    let (status, _) = post(
        &c,
        s.url("/charges"),
        json!({"card_token": token,
        "amount_cents": 4999, "ship_to": ["1 Main St", "Springfield"]}),
        Some(&session),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = post(
        &c,
        s.url("/charges"),
        json!({"card_token": token,
        "amount_cents": 4999, "ship_to": ["99 Drop Point", "Elsewhere"]}),
        Some(&session),
    )
    .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::FORBIDDEN, &json!("step_up_required"))
    );

    // The charge left one keyed audit record; a checkpoint of it proves it is there.
    assert_eq!(
        post(&c, s.url("/admin/audit/checkpoint"), json!({}), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (status, body) = post(&c, s.url("/admin/audit/checkpoint"), json!({}), Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let shipped: shopsafe::audit::AuditCheckpoint = body["checkpoint"]
        .as_str()
        .expect("checkpoint line")
        .parse()
        .expect("a checkpoint");
    let key = shopsafe::card::KeySource::audit_key(
        &shopsafe::card::FileKeySource::open_or_create(
            data.join("vault").join("vault.keys"),
            &shopsafe::card::VaultKeyId::new("k1").expect("id"),
        )
        .expect("keys"),
    )
    .expect("audit key");
    let trail = shopsafe::audit::AuditLog::verify_keyed(
        data.join("vault").join("vault-audit.log"),
        &key,
        &[shipped],
    )
    .expect("the trail meets its checkpoint");
    assert_eq!((trail.records, shipped.records), (1, 1));

    // Breach: an incident over every account.
    let (status, body) = post(
        &c,
        s.url("/admin/incidents"),
        json!({"scope": "all", "reason": "customer db copied"}),
        Some("not-the-token"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = post(
        &c,
        s.url("/admin/incidents"),
        json!({"scope": "all", "reason": "customer db copied"}),
        Some(ADMIN),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let incident = body["incident"].as_i64().expect("incident id");

    // The old session is dead; the old password gets the answer a wrong one gets.
    assert_eq!(
        get(&c, s.url("/me"), Some(&session)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let expired = post(
        &c,
        s.url("/login"),
        json!({"account": "alice", "password": ALICE_PW}),
        None,
    )
    .await;
    let wrong = post(
        &c,
        s.url("/login"),
        json!({"account": "alice", "password": "not it at all"}),
        None,
    )
    .await;
    let unknown = post(
        &c,
        s.url("/login"),
        json!({"account": "nobody", "password": ALICE_PW}),
        None,
    )
    .await;
    assert_eq!(expired.0, StatusCode::UNAUTHORIZED);
    assert_eq!(expired, wrong);
    assert_eq!(expired, unknown);
    let huge = post(
        &c,
        s.url("/login"),
        json!({"account": "alice", "password": "x".repeat(100_000)}),
        None,
    )
    .await;
    assert_eq!(expired, huge, "an overlong password is just a wrong one");
    for forged in ["v1.616c696365.00.0.00", "v1", "", "Bearer"] {
        assert_eq!(
            get(&c, s.url("/me"), Some(forged)).await.0,
            StatusCode::UNAUTHORIZED
        );
    }

    // The campaign mails everyone once.
    let campaign = s.url(&format!("/admin/incidents/{incident}/campaign"));
    assert_eq!(
        post(&c, campaign.clone(), json!({}), Some(ADMIN)).await.0,
        StatusCode::ACCEPTED
    );
    let status = campaign_when_finished(&c, campaign.clone()).await;
    assert_eq!(
        status,
        json!({"done": 2, "total": 2, "finished": true, "undeliverable": 0})
    );

    // The link from alice's notice, a new password, a login.
    let outbox = data.join("outbox");
    let link = link_in_outbox(&outbox, &format!("Message-ID: <incident-{incident}/alice@"))
        .expect("alice's notice in the outbox");
    assert!(link.starts_with("https://shoes.example/reset/"), "{link}");
    let reset_token = link.rsplit('/').next().expect("token");
    let reset = json!({"token": reset_token, "password": ALICE_NEW_PW});
    assert_eq!(
        post(&c, s.url("/password/reset"), reset.clone(), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (status, body) = post(&c, s.url("/password/reset"), reset, None).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("token_used"))
    );
    let session = session_of(&c, s, "alice", ALICE_NEW_PW).await;

    // What was taken, for alice.
    let (status, body) = get(&c, s.url("/me/exposure"), Some(&session)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let notice = body["notice"].as_str().expect("notice");
    assert!(
        notice.contains("your card number (only the last four digits)"),
        "{notice}"
    );
    assert!(
        notice.contains("your password (as an argon2id hash"),
        "{notice}"
    );
    assert!(
        notice.contains("Not included: your full card number"),
        "{notice}"
    );

    // "Forgot password" answers 202 whoever asks.
    for account in ["bob", "nobody"] {
        assert_eq!(
            post(
                &c,
                s.url("/password/forgot"),
                json!({"account": account}),
                None
            )
            .await
            .0,
            StatusCode::ACCEPTED
        );
    }
    assert!(
        server.stop(Duration::from_secs(10)),
        "graceful exit on SIGTERM"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breach_day_over_http_on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    breach_day(dir.path(), &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breach_day_over_http_on_postgres() {
    let Some(url) = shop::postgres_url("the_breach_day_over_http_on_postgres") else {
        return;
    };
    let schema = format!("shop_http_{}", std::process::id());
    let dir = tempfile::tempdir().expect("dir");
    breach_day(dir.path(), &["--postgres", &url, "--pg-schema", &schema]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_stopped_by_sigterm_resumes_at_the_next_start() {
    let dir = tempfile::tempdir().expect("dir");
    // A slow mail relay (40 ms a mail), so the SIGTERM lands mid-campaign.
    let slow = ["--mail-delay-ms", "40", "--signups-per-hour", "1000"];
    let server = Server::start(dir.path(), &slow);
    let c = Client::new();
    // 40 accounts, then a campaign, then SIGTERM while it runs.
    for i in 0..40 {
        let (status, body) = post(
            &c,
            server.url("/accounts"),
            json!({"account": format!("c{i:02}"),
            "email": format!("c{i:02}@example.com"), "password": ALICE_PW, "brand": "boots",
            "address": ["3 Oak St"]}),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (_, body) = post(
        &c,
        server.url("/admin/incidents"),
        json!({"scope": {"brand": "boots"}, "reason": "boots db copied"}),
        Some(ADMIN),
    )
    .await;
    let incident = body["incident"].as_i64().expect("id");
    let campaign = format!("/admin/incidents/{incident}/campaign");
    assert_eq!(
        post(&c, server.url(&campaign), json!({}), Some(ADMIN))
            .await
            .0,
        StatusCode::ACCEPTED
    );
    // SIGTERM once the first notice is out (not after a fixed sleep, which a busy
    // machine can outrun either way).
    let sent_log = dir.path().join("outbox").join("sent.log");
    let sent_so_far = || {
        std::fs::read_to_string(&sent_log)
            .unwrap_or_default()
            .lines()
            .count()
    };
    for _ in 0..1_000 {
        if sent_so_far() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        server.stop(Duration::from_secs(10)),
        "graceful exit on SIGTERM"
    );
    let before = std::fs::read_to_string(&sent_log)
        .unwrap_or_default()
        .lines()
        .count();
    assert!(
        before > 0 && before < 40,
        "stopped mid-campaign: {before} of 40 sent"
    );

    // Started again: the campaign carries on by itself and ends with every notice once.
    let server = Server::start(dir.path(), &slow);
    let status = campaign_when_finished(&c, server.url(&campaign)).await;
    assert_eq!(
        status,
        json!({"done": 40, "total": 40, "finished": true, "undeliverable": 0})
    );
    let sent = std::fs::read_to_string(&sent_log).expect("sent log");
    let mut ids: Vec<&str> = sent.lines().collect();
    assert_eq!(ids.len(), 40, "40 notices handed over in all: {ids:?}");
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 40, "none of them twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_through_a_real_relay_with_smtp() {
    let Some(relay) = servers::server_env(
        "mail_goes_through_a_real_relay_with_smtp",
        "SHOPSAFE_SMTP_DIR",
        "SHOPSAFE_REQUIRE_SMTP",
        "set SHOPSAFE_SMTP_DIR=$(bash .ci/smtp-start) to run it",
    ) else {
        return;
    };
    let relay = Path::new(&relay);
    let port = std::fs::read_to_string(relay.join("plain.port")).expect("port");
    let tag = servers::unique("shop");
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("smtp://127.0.0.1:{}", port.trim());
    let server = Server::start(dir.path(), &["--smtp", &url]);
    let c = Client::new();
    let s = &server;
    for (account, email) in [
        ("alice", format!("{tag}-alice@customers.example")),
        ("carol", format!("reject-{tag}@customers.example")),
    ] {
        let body = json!({"account": account, "email": email, "password": ALICE_PW,
            "brand": "shoes", "address": ["1 Main St", "Springfield"]});
        assert_eq!(
            post(&c, s.url("/accounts"), body, None).await.0,
            StatusCode::CREATED
        );
    }
    let mails = |tag: &str| -> Vec<Value> {
        // Other tests share the relay: a line it is still writing is not read.
        let log = std::fs::read_to_string(relay.join("mail.jsonl")).unwrap_or_default();
        log[..log.rfind('\n').map_or(0, |end| end + 1)]
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("json"))
            .filter(|m| m["to"].to_string().contains(tag))
            .collect()
    };
    // A reset mail, through the relay.
    assert_eq!(
        post(
            &c,
            s.url("/password/forgot"),
            json!({"account": "alice"}),
            None
        )
        .await
        .0,
        StatusCode::ACCEPTED
    );
    let mut reset = Vec::new();
    for _ in 0..100 {
        reset = mails(&tag);
        if !reset.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(reset.len(), 1, "alice's reset mail");
    assert!(
        reset[0]["text"]
            .as_str()
            .expect("text")
            .contains("https://shoes.example/reset/")
    );

    // The campaign: alice's notice accepted, carol's refused by the relay (550) and
    // counted as undeliverable, not as sent.
    let (status, body) = post(
        &c,
        s.url("/admin/incidents"),
        json!({"scope": "all", "reason": "customer db copied"}),
        Some(ADMIN),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let campaign = s.url(&format!("/admin/incidents/{}/campaign", body["incident"]));
    assert_eq!(
        post(&c, campaign.clone(), json!({}), Some(ADMIN)).await.0,
        StatusCode::ACCEPTED
    );
    let status = campaign_when_finished(&c, campaign).await;
    assert_eq!(
        status,
        json!({"done": 1, "total": 2, "finished": true, "undeliverable": 1})
    );
    let all = mails(&tag);
    assert_eq!(all.len(), 2, "the reset mail and alice's notice");
    assert!(
        all[1]["message_id"]
            .as_str()
            .expect("Message-ID")
            .starts_with("<incident-")
    );
    assert!(server.stop(Duration::from_secs(10)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_refuses_a_breached_password_with_its_count_over_http() {
    let dir = tempfile::tempdir().expect("dir");
    let index = dir.path().join("pwned.idx");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/pwned");
    shopsafe::pwned::build_index(&data.join("ordered-by-hash.txt"), &index).expect("index");
    let (breached, times) = std::fs::read_to_string(data.join("passwords.tsv"))
        .expect("tsv")
        .lines()
        .find_map(|l| {
            let (p, c) = l.split_once('\t')?;
            (p.len() >= 15).then(|| (p.to_owned(), c.to_owned()))
        })
        .expect("a long one");
    let s = Server::start(
        &dir.path().join("shop"),
        &["--pwned-index", index.to_str().unwrap()],
    );
    let c = Client::new();
    let account = |pw: &str| {
        json!({"account": "dora", "email": "dora@example.com", "password": pw,
               "brand": "shoes", "address": ["3 Oak St"]})
    };
    let (status, body) = post(&c, s.url("/accounts"), account(&breached), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["reason"],
        format!("this password has appeared in a data breach {times} times; choose another")
    );
    let (status, body) = post(&c, s.url("/accounts"), account(ALICE_NEW_PW), None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(s.stop(Duration::from_secs(10)));
}
