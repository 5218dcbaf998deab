//! Export and erasure on request over HTTP: `GET /me/export`, `DELETE /me`, and the
//! admin forms; afterwards the customer's login answers as an unknown account's, their
//! session 401, and a copy of the customer database taken before the erasure does not
//! open for them with the live key store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

#[allow(dead_code)] // only `unique` here
#[path = "../../../tests/support/servers.rs"]
mod servers;
#[path = "support/shop.rs"]
mod shop;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use shop::{ADMIN, Server};

const PW: &str = "correct horse battery staple";

async fn call(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let r = req.send().await.expect("request");
    let status = r.status();
    let text = r.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn sign_up(c: &Client, s: &Server, account: &str) {
    let body = json!({"account": account, "email": format!("{account}@mail.test"),
        "password": PW, "brand": "shoes", "address": [format!("1 {account} Lane"), "Wexford"],
        "name": format!("{account} Example"), "phone": "+44 20 7946 0000"});
    let (status, body) = call(c.post(s.url("/accounts")).json(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn login(c: &Client, s: &Server, body: Value) -> (StatusCode, Value) {
    call(c.post(s.url("/login")).json(&body)).await
}

async fn erasure_over_http(data: &std::path::Path, extra: &[&str]) {
    let server = Server::start(data, extra);
    let (c, s) = (Client::new(), &server);
    for who in ["alice", "bob", "carol"] {
        sign_up(&c, s, who).await;
    }
    let (status, body) = login(&c, s, json!({"account": "alice", "password": PW})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let session = body["session"].as_str().expect("session").to_owned();
    // An order to her home address, and a reset link she asks for.
    let (status, card) = call(
        c.post(s.url("/cards"))
            .bearer_auth(&session)
            .json(&json!({"number": "4111 1111 1111 1111", "expiry": "08/29"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{card}");
    let (status, order) = call(
        c.post(s.url("/charges"))
            .bearer_auth(&session)
            .json(&json!({"card_token": card["token"], "amount_cents": 4999,
                "ship_to": ["1 alice Lane", "Wexford"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let (status, _) = call(
        c.post(s.url("/password/forgot"))
            .json(&json!({"account": "alice"})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let mut link = None;
    for _ in 0..100 {
        link = shop::link_in_outbox(&data.join("outbox"), "alice@mail.test");
        if link.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let link = link.expect("the reset mail");
    let reset_token = link.rsplit('/').next().expect("token").to_owned();

    // Export: every personal value the shop keeps, opened.
    let (status, export) = call(c.get(s.url("/me/export")).bearer_auth(&session)).await;
    assert_eq!(status, StatusCode::OK, "{export}");
    assert_eq!(export["email"], "alice@mail.test");
    assert_eq!(export["name"], "alice Example");
    assert_eq!(export["phone"], "+44 20 7946 0000");
    assert_eq!(export["address"], json!(["1 alice Lane", "Wexford"]));
    assert_eq!(export["cards"][0]["last4"], "1111", "{export}");
    assert_eq!(export["orders"][0]["id"], order["order"]);
    assert_eq!(
        export["orders"][0]["ship_to"],
        json!(["1 alice Lane", "Wexford"])
    );
    assert_eq!(export["withheld"][0]["what"], "password", "{export}");

    // A copy of the customer database before the erasure (SQLite: the file and WAL),
    // and a backup of the key store (a consistent snapshot of the live file).
    let backup = data.join("backup");
    if extra.is_empty() {
        std::fs::create_dir_all(&backup).expect("dir");
        for f in ["customers.db", "customers.db-wal"] {
            if data.join(f).exists() {
                std::fs::copy(data.join(f), backup.join(f)).expect("copy");
            }
        }
        rusqlite::Connection::open(data.join("vault").join("keys.db"))
            .and_then(|c| c.execute("VACUUM INTO ?1", [backup.join("keys.db").to_str()]))
            .expect("key store backup");
    }

    // Under a legal hold, neither form of erasure happens.
    let hold = |verb: reqwest::Method| {
        c.request(verb, s.url("/admin/customers/carol/hold"))
            .bearer_auth(ADMIN)
    };
    let (status, _) = call(hold(reqwest::Method::PUT).json(&json!({"reason": "litigation"}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = call(
        c.post(s.url("/admin/customers/carol/erase"))
            .bearer_auth(ADMIN)
            .json(&json!({"reason": "asked"})),
    )
    .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::CONFLICT, &json!("legal_hold"))
    );
    let (_, carol) = login(&c, s, json!({"account": "carol", "password": PW})).await;
    let carol_session = carol["session"].as_str().expect("session").to_owned();
    let (status, _) = call(
        c.delete(s.url("/me"))
            .bearer_auth(&carol_session)
            .json(&json!({"password": PW})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = call(hold(reqwest::Method::DELETE)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(c.get(s.url("/me")).bearer_auth(&carol_session)).await;
    assert_eq!(status, StatusCode::OK, "carol is still there");

    // Erasure: the password again (a session alone erases nothing).
    let erase = |password: &str| {
        c.delete(s.url("/me"))
            .bearer_auth(&session)
            .json(&json!({"password": password}))
    };
    let (status, _) = call(erase("not the password at all")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, answer) = call(erase(PW)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert!(
        answer["erased"]
            .as_array()
            .expect("erased")
            .contains(&json!("email address"))
    );
    assert!(!answer["retained"].as_array().expect("retained").is_empty());
    for r in answer["retained"].as_array().expect("retained") {
        assert!(r["what"].is_string() && r["why"].is_string(), "{r}");
    }

    // Afterwards: the session is over, the login answers as an unknown account's.
    for path in ["/me", "/me/export", "/me/profile"] {
        let (status, _) = call(c.get(s.url(path)).bearer_auth(&session)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let unknown = login(&c, s, json!({"account": "nobody-at-all", "password": PW})).await;
    assert_eq!(unknown.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        login(&c, s, json!({"account": "alice", "password": PW})).await,
        unknown
    );
    let by_email = login(&c, s, json!({"email": "alice@mail.test", "password": PW})).await;
    assert_eq!(by_email, unknown);
    // The reset link sent before sets no password now.
    let (status, _) = call(
        c.post(s.url("/password/reset"))
            .json(&json!({"token": reset_token, "password": "granite otter saffron bell"})),
    )
    .await;
    assert_ne!(
        status,
        StatusCode::NO_CONTENT,
        "an erased account's link is dead"
    );
    let (status, _) = login(
        &c,
        s,
        json!({"account": "alice", "password": "granite otter saffron bell"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The id cannot be signed up again.
    let again = json!({"account": "alice", "email": "alice2@mail.test", "password": PW,
        "brand": "shoes", "address": ["1 Main St"]});
    let (status, _) = call(c.post(s.url("/accounts")).json(&again)).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // The admin forms.
    let (status, answer) = call(
        c.post(s.url("/admin/customers/bob/erase"))
            .bearer_auth(ADMIN)
            .json(&json!({"reason": "customer asked by letter"})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let (status, _) = call(
        c.post(s.url("/admin/customers/bob/erase"))
            .json(&json!({"reason": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "admin only");
    // The erasure ledger's checkpoint, to ship: two entries.
    let (status, cp) = call(
        c.post(s.url("/admin/erasures/checkpoint"))
            .bearer_auth(ADMIN),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{cp}");
    assert!(
        cp["checkpoint"]
            .as_str()
            .expect("line")
            .starts_with("shopsafe-audit-checkpoint v1 2 "),
        "{cp}"
    );
    for (who, want) in [
        ("alice", StatusCode::NOT_FOUND),
        ("bob", StatusCode::NOT_FOUND),
        ("carol", StatusCode::OK),
    ] {
        let (status, body) = call(
            c.get(s.url(&format!("/admin/customers/{who}/export")))
                .bearer_auth(ADMIN),
        )
        .await;
        assert_eq!(status, want, "{who}: {body}");
    }
    assert!(
        server.stop(std::time::Duration::from_secs(10)),
        "graceful exit"
    );

    // Both erasures are in the audit trail.
    let trail = std::fs::read_to_string(data.join("vault").join("vault-audit.log")).expect("trail");
    assert_eq!(trail.matches("erasure#").count(), 2, "{trail}");
    // And the exports given: alice's own, and carol's by the admin.
    assert_eq!(trail.matches("export#").count(), 2, "{trail}");

    // The copy from before the erasure does not open for alice with the live keys.
    if extra.is_empty() {
        // Her order is kept, for tax, without the address; the card on file as its
        // token, brand, last four and expiry.
        let live = rusqlite::Connection::open(data.join("customers.db")).expect("db");
        let (amount, ship_to): (i64, Option<Vec<u8>>) = live
            .query_row(
                "SELECT amount_cents, ship_to FROM shop_orders WHERE account = 'alice'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("the order is kept");
        assert_eq!((amount, ship_to), (4999, None));
        let stripped: i64 = live
            .query_row(
                "SELECT stripped FROM retention_runs WHERE run = 'erasure_alice'",
                [],
                |r| r.get(0),
            )
            .expect("the run's record");
        assert_eq!(stripped, 1, "through the retention planner");
        use shopsafe::seal::{Column, Error, Sealed, Sealer};
        let db = rusqlite::Connection::open(backup.join("customers.db")).expect("backup");
        let (email, index): (Vec<u8>, Vec<u8>) = db
            .query_row(
                "SELECT email, email_index FROM shop_customers WHERE account = 'alice'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("alice's row in the old copy");
        assert_eq!(index.len(), 16);
        let vault = data.join("vault");
        let keks = shopsafe::card::FileKeySource::open_or_create(
            vault.join("customer.keys"),
            &shopsafe::card::VaultKeyId::new("kek-1").expect("id"),
        )
        .expect("keks");
        let keys = shopsafe::store::sqlite::SqliteKeyStore::open_existing(vault.join("keys.db"))
            .expect("key store");
        let sealer = Sealer::new(keys, &keks).expect("sealer");
        let column = Column::new(
            "shop_customers",
            "email",
            shopsafe::minimize::PiiKind::Email,
        )
        .expect("column");
        let alice = shopsafe::kernel::AccountId::new("alice").expect("id");
        let sealed = Sealed::from_bytes(&email).expect("sealed");
        assert!(matches!(
            sealer.open(&alice, &column, "alice", &sealed),
            Err(Error::Erased)
        ));
        // Carol's row in the same copy still opens: only the erased key is gone.
        let (email,): (Vec<u8>,) = db
            .query_row(
                "SELECT email FROM shop_customers WHERE account = 'carol'",
                [],
                |r| Ok((r.get(0)?,)),
            )
            .expect("carol's row");
        let carol = shopsafe::kernel::AccountId::new("carol").expect("id");
        let opened = sealer
            .open(
                &carol,
                &column,
                "carol",
                &Sealed::from_bytes(&email).expect("sealed"),
            )
            .expect("opens");
        assert_eq!(opened.expose(), "carol@mail.test");
        drop(sealer);

        // The key store restored from the backup taken before the erasures: alice's and
        // bob's keys are in it again. The restart replays the ledger before it serves.
        let live = vault.join("keys.db");
        for tail in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(vault.join(format!("keys.db{tail}")));
        }
        std::fs::copy(backup.join("keys.db"), &live).expect("restore");
        let restored = shopsafe::store::sqlite::SqliteKeyStore::open_existing(&live).expect("keys");
        let before = Sealer::new(restored, &keks).expect("sealer");
        assert!(
            before.open(&alice, &column, "alice", &sealed).is_ok(),
            "the backup opens alice with the live KEK: what the replay must undo"
        );
        drop(before);
        let (server, log) = Server::start_logged(data, extra);
        let c = Client::new();
        let said = log.lock().expect("log").clone();
        assert!(
            said.contains("2 erasures behind; 2 keys destroyed again"),
            "{said}"
        );
        for who in ["alice", "bob"] {
            let (status, _) = login(&c, &server, json!({"account": who, "password": PW})).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{who}");
        }
        let (status, _) = login(&c, &server, json!({"account": "carol", "password": PW})).await;
        assert_eq!(status, StatusCode::OK);
        assert!(server.stop(std::time::Duration::from_secs(10)));
        let keys = shopsafe::store::sqlite::SqliteKeyStore::open_existing(&live).expect("keys");
        let after = Sealer::new(keys, &keks).expect("sealer");
        assert!(matches!(
            after.open(&alice, &column, "alice", &sealed),
            Err(Error::Erased)
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_and_erasure_on_request_on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    erasure_over_http(&dir.path().join("data"), &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_and_erasure_on_request_on_postgres() {
    let Some(url) = shop::postgres_url("export_and_erasure_on_request_on_postgres") else {
        return;
    };
    let schema = servers::unique("shop_erase_");
    let dir = tempfile::tempdir().expect("dir");
    erasure_over_http(
        &dir.path().join("data"),
        &["--postgres", &url, "--pg-schema", &schema],
    )
    .await;
}
