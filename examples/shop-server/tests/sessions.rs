//! Server-side sessions over HTTP: a stolen session ends when the customer ends it (one,
//! or all), when they reset their password, on an incident declared with
//! `"end_sessions": true`, and on erasure; `GET /me/sessions` lists ids, never tokens.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

#[allow(dead_code)] // only `unique` here
#[path = "../../../tests/support/servers.rs"]
mod servers;
#[path = "support/shop.rs"]
mod shop;

use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use shop::{ADMIN, Server, link_in_outbox};

const PW: &str = "correct horse battery staple";
const NEW_PW: &str = "a wholly different passphrase";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";

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

/// A login from a laptop (the customer) or the thief's copy of it: the session token.
async fn session(c: &Client, s: &Server, account: &str, password: &str) -> String {
    let (status, body) = call(
        c.post(s.url("/login"))
            .header("user-agent", FIREFOX)
            .json(&json!({"account": account, "password": password})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["session"].as_str().expect("session").to_owned();
    assert!(token.starts_with("sess_"), "an opaque token");
    token
}

async fn me(c: &Client, s: &Server, token: &str) -> StatusCode {
    call(c.get(s.url("/me")).bearer_auth(token)).await.0
}

async fn sessions_over_http(data: &std::path::Path, extra: &[&str]) {
    let server = Server::start(data, extra);
    let (c, s) = (Client::new(), &server);
    for who in ["alice", "bob", "carol"] {
        sign_up(&c, s, who).await;
    }

    // Alice's own session and the one a thief started with her password.
    let mine = session(&c, s, "alice", PW).await;
    let stolen = session(&c, s, "alice", PW).await;
    let (status, list) = call(c.get(s.url("/me/sessions")).bearer_auth(&mine)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let list = list["sessions"].as_array().expect("list").clone();
    assert_eq!(list.len(), 2, "{list:?}");
    let text = serde_json::to_string(&list).expect("json");
    assert!(
        !text.contains(&mine) && !text.contains(&stolen),
        "ids, never tokens"
    );
    assert!(
        list.iter().all(|e| e["agent"] == "Firefox on Linux"),
        "coarse agent: {list:?}"
    );
    let current: Vec<bool> = list
        .iter()
        .map(|e| e["current"].as_bool().expect("bool"))
        .collect();
    assert_eq!(current.iter().filter(|c| **c).count(), 1);
    let other = list
        .iter()
        .find(|e| e["current"] == false)
        .expect("the other session")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // Bob cannot end Alice's session by its id.
    let bob = session(&c, s, "bob", PW).await;
    let (status, _) = call(
        c.delete(s.url(&format!("/me/sessions/{other}")))
            .bearer_auth(&bob),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(me(&c, s, &stolen).await, StatusCode::OK);
    // 1. Alice ends it.
    let (status, _) = call(
        c.delete(s.url(&format!("/me/sessions/{other}")))
            .bearer_auth(&mine),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        me(&c, s, &stolen).await,
        StatusCode::UNAUTHORIZED,
        "ended by the customer"
    );
    assert_eq!(me(&c, s, &mine).await, StatusCode::OK);
    // An upper-cased copy of a live token is not the same session.
    let upper = format!("sess_{}", mine["sess_".len()..].to_ascii_uppercase());
    assert_ne!(upper, mine);
    assert_eq!(
        me(&c, s, &upper).await,
        StatusCode::UNAUTHORIZED,
        "one session, one string"
    );

    // 2. Sign out everywhere.
    let stolen = session(&c, s, "alice", PW).await;
    let (status, body) = call(c.post(s.url("/me/sessions/end-all")).bearer_auth(&mine)).await;
    assert_eq!(
        (status, &body["ended"]),
        (StatusCode::OK, &json!(2)),
        "{body}"
    );
    assert_eq!(me(&c, s, &stolen).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&c, s, &mine).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&c, s, &bob).await, StatusCode::OK, "bob's session stays");

    // 3. A password reset.
    let stolen = session(&c, s, "alice", PW).await;
    let (status, _) = call(
        c.post(s.url("/password/forgot"))
            .json(&json!({"account": "alice"})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let outbox = data.join("outbox");
    let mut link = None;
    for _ in 0..200 {
        link = link_in_outbox(&outbox, "alice@mail.test");
        if link.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let link = link.expect("alice's reset mail");
    let token = link.rsplit('/').next().expect("token").trim().to_owned();
    let (status, body) = call(
        c.post(s.url("/password/reset"))
            .json(&json!({"token": token, "password": NEW_PW})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        me(&c, s, &stolen).await,
        StatusCode::UNAUTHORIZED,
        "ended by the reset"
    );

    // 4. An incident that ends sessions: every compromised one at once.
    let stolen_carol = session(&c, s, "carol", PW).await;
    let alice_after_reset = session(&c, s, "alice", NEW_PW).await;
    let (status, body) = call(
        c.post(s.url("/admin/incidents"))
            .bearer_auth(ADMIN)
            .json(&json!({"scope": "all", "reason": "db copied", "end_sessions": true})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Bob's and Carol's; Alice's too (her new password is before the cutoff as well).
    assert_eq!(body["sessions_ended"], json!(3), "{body}");
    for t in [&stolen_carol, &bob, &alice_after_reset] {
        assert_eq!(
            me(&c, s, t).await,
            StatusCode::UNAUTHORIZED,
            "ended by the incident"
        );
    }

    // 5. Erasure: dave signs up after the incident, so his session was not ended by it.
    sign_up(&c, s, "dave").await;
    let stolen_dave = session(&c, s, "dave", PW).await;
    assert_eq!(me(&c, s, &stolen_dave).await, StatusCode::OK);
    let (status, answer) = call(
        c.post(s.url("/admin/customers/dave/erase"))
            .bearer_auth(ADMIN)
            .json(&json!({"reason": "customer asked by letter"})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(
        me(&c, s, &stolen_dave).await,
        StatusCode::UNAUTHORIZED,
        "ended by the erasure"
    );
    assert!(server.stop(Duration::from_secs(10)), "graceful exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_session_ends_every_way_on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    sessions_over_http(&dir.path().join("data"), &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_session_ends_every_way_on_postgres() {
    let Some(url) = shop::postgres_url("a_stolen_session_ends_every_way_on_postgres") else {
        return;
    };
    let schema = servers::unique("shop_sessions_");
    let dir = tempfile::tempdir().expect("dir");
    sessions_over_http(
        &dir.path().join("data"),
        &["--postgres", &url, "--pg-schema", &schema],
    )
    .await;
}
