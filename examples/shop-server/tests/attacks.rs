//! The shop server (`examples/shop-server`) attacked over HTTP and raw TCP, as a child process: what one
//! client (or one proxy's worth of clients) must not be able to do to it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

#[path = "support/shop.rs"]
mod shop;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use shop::{ADMIN, Server};

const PW: &str = "correct horse battery staple";

async fn post(c: &Client, s: &Server, path: &str, body: Value, xff: Option<&str>) -> StatusCode {
    post_full(c, s, path, body, xff, None).await.0
}

async fn post_full(
    c: &Client,
    s: &Server,
    path: &str,
    body: Value,
    xff: Option<&str>,
    bearer: Option<&str>,
) -> (StatusCode, String) {
    let mut req = c.post(s.url(path)).json(&body);
    if let Some(x) = xff {
        req = req.header("x-forwarded-for", x);
    }
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    let r = req.send().await.expect("answer");
    (r.status(), r.text().await.expect("body"))
}

fn customer(name: &str) -> Value {
    json!({"account": name, "email": format!("{name}@example.com"), "password": PW,
        "brand": "shoes", "address": ["1 Main St", "Springfield"]})
}

async fn session(c: &Client, s: &Server, name: &str) -> String {
    let (status, body) = post_full(
        c,
        s,
        "/login",
        json!({"account": name, "password": PW}),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    v["session"].as_str().expect("session").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_account_id_is_limited_per_source_like_any_login() {
    // It ran a decoy argon2 without touching the limiter: one client could keep the
    // hashing pool busy for ever.
    let dir = tempfile::tempdir().expect("dir");
    let s = Server::start(dir.path(), &[]);
    let c = Client::new();
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..110 {
        let status = post(
            &c,
            &s,
            "/login",
            json!({"account": format!("\u{7}bad{i}"), "password": "whatever it is"}),
            None,
        )
        .await;
        *statuses.entry(status.as_u16()).or_insert(0) += 1;
    }
    // Every malformed name is the same unmatchable account: ten failures lock it, and
    // the source that failed there waits (the per-source limit, 100 per 15 minutes,
    // bounds a client that changes addresses too). Before the fix: 110 times 401.
    assert_eq!(
        statuses,
        [(401, 10), (429, 100)].into_iter().collect(),
        "only the first ten are hashed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_is_limited_per_source_and_a_trusted_proxy_names_the_client() {
    let dir = tempfile::tempdir().expect("dir");
    // No trusted proxy: X-Forwarded-For is the client's own words and counts for nothing.
    let s = Server::start(dir.path(), &["--signups-per-hour", "2"]);
    let c = Client::new();
    let spoofed = ["203.0.113.1", "203.0.113.2", "203.0.113.3"];
    let statuses: Vec<u16> = futures_in_order(&c, &s, &spoofed, "plain").await;
    assert_eq!(statuses, [201, 201, 429], "one source, whatever it claims");
    // A taken id answers 409 while the budget lasts; the probe spends it too.
    drop(s);

    let dir = tempfile::tempdir().expect("dir");
    let s = Server::start(
        dir.path(),
        &["--signups-per-hour", "2", "--trusted-proxy", "127.0.0.0/8"],
    );
    let statuses = futures_in_order(&c, &s, &spoofed, "proxied").await;
    assert_eq!(statuses, [201, 201, 201], "three clients behind the proxy");
    // One client behind the proxy: its own budget.
    let one = ["198.51.100.9"; 3];
    let statuses = futures_in_order(&c, &s, &one, "same").await;
    assert_eq!(statuses, [201, 201, 429]);
    // The taken-id probe: 409, then 429 once the source's budget is spent.
    let probe = |x: &'static str| {
        let (c, s) = (&c, &s);
        async move { post(c, s, "/accounts", customer("proxied0"), Some(x)).await }
    };
    assert_eq!(probe("192.0.2.50").await, StatusCode::CONFLICT);
    assert_eq!(probe("192.0.2.50").await, StatusCode::CONFLICT);
    assert_eq!(probe("192.0.2.50").await, StatusCode::TOO_MANY_REQUESTS);
}

/// Sign-ups `<tag>0`, `<tag>1`, … one after the other, each with its X-Forwarded-For.
async fn futures_in_order(c: &Client, s: &Server, xff: &[&str], tag: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for (i, x) in xff.iter().enumerate() {
        out.push(
            post(c, s, "/accounts", customer(&format!("{tag}{i}")), Some(x))
                .await
                .as_u16(),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charges_are_limited_per_account_before_the_vault_wide_limit() {
    let dir = tempfile::tempdir().expect("dir");
    let s = Server::start(dir.path(), &["--charges-per-hour", "3"]);
    let c = Client::new();
    for name in ["alice", "bob"] {
        assert_eq!(
            post(&c, &s, "/accounts", customer(name), None).await,
            StatusCode::CREATED
        );
    }
    let mut charged = Vec::new();
    for name in ["alice", "bob"] {
        let session = session(&c, &s, name).await;
        let (status, card) = post_full(
            &c,
            &s,
            "/cards",
            json!({"number": "4111 1111 1111 1111", "expiry": "08/39"}),
            None,
            Some(&session),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{card}");
        let card: Value = serde_json::from_str(&card).expect("json");
        let token = card["token"].as_str().expect("token").to_owned();
        let mut statuses = Vec::new();
        for _ in 0..5 {
            let (status, _) = post_full(
                &c,
                &s,
                "/charges",
                json!({"card_token": token, "amount_cents": 100,
                    "ship_to": ["1 Main St", "Springfield"]}),
                None,
                Some(&session),
            )
            .await;
            statuses.push(status.as_u16());
        }
        charged.push(statuses);
    }
    // Alice's loop stops at her limit; Bob is still charged.
    assert_eq!(
        charged,
        [[201, 201, 201, 429, 429], [201, 201, 201, 429, 429]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_a_campaign_status_creates_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let s = Server::start(dir.path(), &[]);
    let c = Client::new();
    assert_eq!(
        post(&c, &s, "/accounts", customer("alice"), None).await,
        StatusCode::CREATED
    );
    let (status, body) = post_full(
        &c,
        &s,
        "/admin/incidents",
        json!({"scope": "all", "reason": "drill"}),
        None,
        Some(ADMIN),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = serde_json::from_str::<Value>(&body).expect("json")["incident"]
        .as_i64()
        .expect("id");
    // A campaign recorded as started whose lanes were never opened (a crash between
    // the two, or another server's record): the status read must not open them.
    let db = rusqlite::Connection::open(dir.path().join("customers.db")).expect("db");
    db.busy_timeout(Duration::from_secs(5)).expect("timeout");
    db.execute(
        "INSERT INTO shop_campaigns (incident, finished) VALUES (?1, 0)",
        [id],
    )
    .expect("record");
    let lanes = || -> i64 {
        db.query_row("SELECT count(*) FROM campaign_lanes", [], |r| r.get(0))
            .expect("count")
    };
    for _ in 0..3 {
        let r = c
            .get(s.url(&format!("/admin/incidents/{id}/campaign")))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status(), StatusCode::OK);
    }
    assert_eq!(lanes(), 0, "GET opened the campaign");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_on_a_compromised_account_from_many_sources_mail_at_most_five_links() {
    let dir = tempfile::tempdir().expect("dir");
    let s = Server::start(dir.path(), &["--trusted-proxy", "127.0.0.1"]);
    let c = Client::new();
    assert_eq!(
        post(&c, &s, "/accounts", customer("alice"), None).await,
        StatusCode::CREATED
    );
    let (status, _) = post_full(
        &c,
        &s,
        "/admin/incidents",
        json!({"scope": "all", "reason": "copied"}),
        None,
        Some(ADMIN),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    // Every login on the compromised account mails a reset link (off the request path),
    // from the caller's address: sixty callers.
    for i in 0..60 {
        let xff = format!("203.0.113.{i}");
        let status = post(
            &c,
            &s,
            "/login",
            json!({"account": "alice", "password": PW}),
            Some(&xff),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let outbox = dir.path().join("outbox");
    let mails = || {
        std::fs::read_dir(&outbox)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .count()
            })
            .unwrap_or(0)
    };
    // The mails go out in the background: wait until five are there, then a little
    // longer for any more.
    for _ in 0..100 {
        if mails() >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(mails(), 5, "five reset links an hour, whatever the sources");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_body_is_answered_without_quoting_it_and_a_session_has_one_spelling() {
    let dir = tempfile::tempdir().expect("dir");
    let s = Server::start(dir.path(), &[]);
    let c = Client::new();
    for (path, body) in [
        (
            "/login",
            json!({"account": "alice", "password": 12345678901u64}),
        ),
        (
            "/accounts",
            json!({"account": "alice", "password": 12345678901u64}),
        ),
        (
            "/password/reset",
            json!({"token": 12345678901u64, "password": "x"}),
        ),
    ] {
        let (status, text) = post_full(&c, &s, path, body, None, None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert_eq!(text, r#"{"error":"invalid_body"}"#, "{path}");
    }
    let r = c
        .post(s.url("/login"))
        .header("content-type", "application/json")
        .body("{\"password\": \"hunter2-secret")
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let text = r.text().await.expect("body");
    assert!(!text.contains("hunter2"), "{text}");

    assert_eq!(
        post(&c, &s, "/accounts", customer("alice"), None).await,
        StatusCode::CREATED
    );
    let token = session(&c, &s, "alice").await;
    let me = |t: String| {
        let c = c.clone();
        let url = s.url("/me");
        async move {
            c.get(url)
                .bearer_auth(t)
                .send()
                .await
                .expect("answer")
                .status()
        }
    };
    assert_eq!(me(token.clone()).await, StatusCode::OK);
    let (head, secret) = token.split_at("sess_".len());
    let upper = format!("{head}{}", secret.to_ascii_uppercase());
    assert_ne!(upper, token);
    assert_eq!(
        me(upper).await,
        StatusCode::UNAUTHORIZED,
        "one session, one string"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_warns_without_an_admin_token_and_the_data_folder_is_ignored_by_git() {
    let dir = tempfile::tempdir().expect("dir");
    let (s, log) = Server::start_without_admin(dir.path());
    assert!(
        log.iter()
            .any(|l| l.starts_with("warning:") && l.contains("SHOPSAFE_ADMIN_TOKEN")),
        "{log:?}"
    );
    drop(s);
    // The default data folder (`shop-data` under the folder `cargo run` starts in: the
    // workspace root) is ignored by git.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let ignore = std::fs::read_to_string(root.join(".gitignore")).expect(".gitignore");
    assert!(
        ignore.lines().any(|l| l.trim() == "shop-data/"),
        "the default data folder holds the vault's keys: {ignore}"
    );
    // The header's run commands name the package, and the feature that `--postgres`
    // needs where they use it.
    let main = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/main.rs"))
        .expect("main");
    let runs: Vec<&str> = main
        .lines()
        .filter(|l| l.starts_with("//!") && l.contains("cargo run"))
        .collect();
    assert!(!runs.is_empty());
    for run in runs {
        assert!(run.contains("-p shop-server"), "{run:?} names no package");
        if run.contains("--postgres") {
            let features = run
                .split("--features ")
                .nth(1)
                .and_then(|f| f.split_whitespace().next())
                .unwrap_or("");
            assert!(
                features.split(',').any(|f| f == "postgres"),
                "{run:?} lacks the postgres feature"
            );
        }
    }
}

/// Half a request: the request line and one header, never the blank line.
fn half_request(addr: &str) -> TcpStream {
    let mut t = TcpStream::connect(addr).expect("connect");
    t.write_all(b"POST /login HTTP/1.1\r\nHost: shop\r\n")
        .expect("write");
    t
}

fn addr(s: &Server) -> String {
    s.base.trim_start_matches("http://").to_owned()
}

#[test]
fn slow_clients_are_cut_off_and_cannot_hold_a_shutdown_open() {
    let dir = tempfile::tempdir().expect("dir");
    let s = Server::start(
        dir.path(),
        &[
            "--header-timeout-secs",
            "1",
            "--shutdown-deadline-secs",
            "1",
            "--max-connections",
            "300",
        ],
    );
    // A half-sent request is closed once the header timeout passes (read returns, with
    // whatever the server said or nothing); without one it stays open for ever.
    let mut slow = half_request(&addr(&s));
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut buf = Vec::new();
    let read = slow.read_to_end(&mut buf);
    assert!(read.is_ok(), "still open after 20 s: {read:?}");
    drop(slow);

    // 201 half-sent requests kept SIGTERM waiting; with the header timeout raised out of
    // the way, only the shutdown deadline (1 s) can end them.
    drop(s);
    let dir = tempfile::tempdir().expect("dir");
    let s = Server::start(
        dir.path(),
        &[
            "--header-timeout-secs",
            "600",
            "--shutdown-deadline-secs",
            "1",
            "--max-connections",
            "300",
        ],
    );
    let held: Vec<TcpStream> = (0..201).map(|_| half_request(&addr(&s))).collect();
    // The server has them all (it answers a request beside them).
    let mut probe = TcpStream::connect(addr(&s)).expect("connect");
    probe
        .write_all(b"GET /health HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut answer = String::new();
    probe.read_to_string(&mut answer).expect("answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        s.stop(Duration::from_secs(15)),
        "the server outlived its shutdown deadline (1 s) by 14 s with 201 slow clients"
    );
    drop(held);
}

#[test]
fn connections_past_the_cap_are_closed_at_once() {
    let dir = tempfile::tempdir().expect("dir");
    let s = Server::start(
        dir.path(),
        &["--max-connections", "3", "--header-timeout-secs", "600"],
    );
    let held: Vec<TcpStream> = (0..3).map(|_| half_request(&addr(&s))).collect();
    // Give the server the three before the fourth.
    std::thread::sleep(Duration::from_millis(300));
    let health = || {
        let mut t = TcpStream::connect(addr(&s)).expect("connect");
        t.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let _ = t.write_all(b"GET /health HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n");
        let mut answer = Vec::new();
        let _ = t.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    };
    assert_eq!(health(), "", "a fourth connection is closed unanswered");
    drop(held);
    // The slots come back as the held connections close.
    let mut answer = String::new();
    for _ in 0..100 {
        answer = health();
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
}
