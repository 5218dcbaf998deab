//! The minimal shop over HTTP: sign-up, a session, sign-out everywhere, forgot/reset,
//! breach day (declare, every session ended, every customer mailed), a card at checkout,
//! and the refusals that must look alike.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

struct Running {
    base: String,
    http: Client,
    shop: axum_minimal::Shop,
    _dir: tempfile::TempDir,
}

async fn start() -> Running {
    let dir = tempfile::tempdir().unwrap();
    let (routes, shop) = axum_minimal::app(dir.path()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let service = routes.into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await });
    Running { base, http: Client::new(), shop, _dir: dir }
}

impl Running {
    async fn post(&self, path: &str, body: Value, session: Option<&str>) -> (StatusCode, Value) {
        let mut r = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(s) = session {
            r = r.bearer_auth(s);
        }
        let r = r.send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn me(&self, session: &str) -> StatusCode {
        let r = self.http.get(format!("{}/me", self.base)).bearer_auth(session);
        r.send().await.unwrap().status()
    }

    async fn login(&self, account: &str, password: &str) -> (StatusCode, Value) {
        self.post("/login", json!({"account": account, "password": password}), None).await
    }

    async fn session(&self, account: &str, password: &str) -> String {
        let (status, body) = self.login(account, password).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["session"].as_str().unwrap().to_owned()
    }

    /// The newest link mailed to `account`, waiting for the spawned mail.
    async fn link(&self, account: &str) -> String {
        for _ in 0..200 {
            let outbox = self.shop.outbox.lock().unwrap().clone();
            if let Some((_, link)) = outbox.iter().rev().find(|(a, _)| a == account) {
                return link.rsplit('/').next().unwrap().to_owned();
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("no mail for {account}");
    }
}

const PASSWORD: &str = "walnut cobbler lantern river";
const NEW_PASSWORD: &str = "amber meadow tractor violin";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_minimal_shop_end_to_end() {
    let shop = start().await;
    let new = json!({"account": "cust-1", "password": PASSWORD});
    assert_eq!(shop.post("/accounts", new.clone(), None).await.0, StatusCode::CREATED);
    let (status, body) = shop.post("/accounts", new, None).await;
    assert_eq!((status, body), (StatusCode::CONFLICT, json!({"error": "account_exists"})));

    // Two sessions (two devices); one "sign out everywhere" ends both.
    let (laptop, phone) =
        (shop.session("cust-1", PASSWORD).await, shop.session("cust-1", PASSWORD).await);
    assert_eq!(shop.me(&laptop).await, StatusCode::OK);
    let (status, _) = shop.post("/logout-everywhere", json!({}), Some(&phone)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(shop.me(&laptop).await, StatusCode::UNAUTHORIZED);
    assert_eq!(shop.me(&phone).await, StatusCode::UNAUTHORIZED);

    // A card at checkout needs a session.
    let card = json!({"number": "4111 1111 1111 1111", "expiry": "08/39"});
    assert_eq!(shop.post("/checkout", card.clone(), None).await.0, StatusCode::UNAUTHORIZED);
    let s = shop.session("cust-1", PASSWORD).await;
    let (status, body) = shop.post("/checkout", card, Some(&s)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["last4"], "1111");
    let bad = json!({"number": "4111 1111 1111 1112", "expiry": "08/39"});
    assert_eq!(
        shop.post("/checkout", bad, Some(&s)).await,
        (StatusCode::BAD_REQUEST, json!({"error": "card_invalid"}))
    );

    // Forgot/reset: the link works once, and ends the session that was open.
    let (status, _) = shop.post("/password/forgot", json!({"account": "cust-1"}), None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let token = shop.link("cust-1").await;
    let reset = json!({"token": token, "password": NEW_PASSWORD});
    assert_eq!(shop.post("/password/reset", reset.clone(), None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(shop.post("/password/reset", reset, None).await.1, json!({"error": "token_used"}));
    assert_eq!(shop.me(&s).await, StatusCode::UNAUTHORIZED);

    // Breach day: sessions end, everyone is mailed, the old password answers as a wrong one.
    let s = shop.session("cust-1", NEW_PASSWORD).await;
    shop.shop.outbox.lock().unwrap().clear();
    let body = axum_minimal::breach_day(&shop.shop).await.unwrap();
    assert_eq!((body["sessions_ended"].as_u64(), body["notified"].as_u64()), (Some(1), Some(1)));
    assert_eq!(shop.me(&s).await, StatusCode::UNAUTHORIZED);
    let must_reset = shop.login("cust-1", NEW_PASSWORD).await;
    let wrong = shop.login("cust-1", "not the password at all").await;
    let unknown = shop.login("nobody", NEW_PASSWORD).await;
    assert_eq!(must_reset, (StatusCode::UNAUTHORIZED, json!({"error": "invalid_credentials"})));
    assert_eq!(wrong, must_reset);
    assert_eq!(unknown, must_reset);
    // The campaign's link resets the compromised password.
    let token = shop.link("cust-1").await;
    let reset = json!({"token": token, "password": "silver fern lighthouse mango"});
    assert_eq!(shop.post("/password/reset", reset, None).await.0, StatusCode::NO_CONTENT);
    shop.session("cust-1", "silver fern lighthouse mango").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_parse_is_not_quoted_back() {
    let shop = start().await;
    let r = shop
        .http
        .post(format!("{}/login", shop.base))
        .header("content-type", "application/json")
        .body(r#"{"account": "cust-1", "password": 12345678901}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.text().await.unwrap(), r#"{"error":"invalid_body"}"#);
}
