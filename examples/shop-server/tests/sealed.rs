//! What a copy of the shop server's customer side gives an intruder: no name, email,
//! phone or address in clear. Customers sign up over HTTP with values made for this run;
//! then every byte of the customer side is searched for them (on SQLite, every file
//! under `--data` but the vault folder and the outbox; on PostgreSQL, every file of the
//! server's data folder, WAL included, after a checkpoint), and so is the server's log.
//! Each search is first shown to find a value where one is in clear.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

// `unique` is for the PostgreSQL test only.
#[allow(dead_code)] // only `unique` here
#[path = "../../../tests/support/servers.rs"]
mod servers;
#[path = "support/shop.rs"]
mod shop;

use std::path::{Path, PathBuf};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use shop::Server;

const PW: &str = "correct horse battery staple";

async fn call(c: &Client, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let _ = c;
    let r = req.send().await.expect("request");
    let status = r.status();
    let text = r.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// One customer's values, unique to this run.
struct Person {
    account: String,
    email: String,
    name: String,
    phone: String,
    address: [String; 2],
}

fn people(tag: u32) -> Vec<Person> {
    (0..3)
        .map(|i| Person {
            account: format!("sealed-{i}"),
            email: format!("quentin.zablocki.{tag}.{i}@mail.test"),
            name: format!("Quentin Zabłocki-{tag}{i}"),
            phone: format!("+44 20 79{tag:04} {i:04}"),
            address: [format!("{tag}{i} Nightingale Lane"), format!("Wexford {i}")],
        })
        .collect()
}

/// The values a copy must not hold, as a customer typed them.
fn needles(people: &[Person]) -> Vec<String> {
    people
        .iter()
        .flat_map(|p| {
            [
                p.email.clone(),
                p.name.clone(),
                p.phone.clone(),
                p.address[0].clone(),
                p.address[1].clone(),
            ]
        })
        .collect()
}

/// Every regular file under `root`, but those under `skip`.
fn files(root: &Path, skip: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if skip.iter().any(|s| p.starts_with(s)) {
                continue;
            }
            match e.file_type() {
                Ok(t) if t.is_dir() => dirs.push(p),
                Ok(t) if t.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out
}

/// (file, value) for each value found in clear in one of `files`.
fn found_in(files: &[PathBuf], needles: &[String]) -> Vec<(String, String)> {
    let mut hits = Vec::new();
    for f in files {
        let Ok(bytes) = std::fs::read(f) else {
            continue;
        };
        for n in needles {
            if memchr::memmem::find(&bytes, n.as_bytes()).is_some() {
                hits.push((f.display().to_string(), n.clone()));
            }
        }
    }
    hits
}

/// Signs the people up and uses every new call (a reset mail goes to `outbox`).
async fn sign_up_and_use(s: &Server, people: &[Person], outbox: &Path) {
    let c = Client::new();
    for p in people {
        let body = json!({"account": p.account, "email": p.email, "password": PW,
            "brand": "shoes", "address": p.address, "name": p.name, "phone": p.phone});
        let (status, body) = call(&c, c.post(s.url("/accounts")).json(&body)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // Another account with the first one's email, typed otherwise: taken, as a taken id.
    let again = json!({"account": "someone-else", "email": format!("  {} ", people[0].email.to_uppercase()),
        "password": PW, "brand": "shoes", "address": ["1 Main St"]});
    let (status, body) = call(&c, c.post(s.url("/accounts")).json(&again)).await;
    assert_eq!(
        (status, body),
        (StatusCode::CONFLICT, json!({"error": "account_exists"}))
    );
    let taken_id = json!({"account": people[1].account, "email": "new@mail.test",
        "password": PW, "brand": "shoes", "address": ["1 Main St"]});
    let (status, body) = call(&c, c.post(s.url("/accounts")).json(&taken_id)).await;
    assert_eq!(
        (status, body),
        (StatusCode::CONFLICT, json!({"error": "account_exists"}))
    );
    // A refused password is answered before the email is looked at: the same 400 for
    // a taken email as for a new one, so a weak password is no free probe.
    let weak = |email: &str| {
        json!({"account": format!("probe-{}", email.len()), "email": email,
            "password": "password", "brand": "shoes", "address": ["1 Main St"]})
    };
    let taken = call(&c, c.post(s.url("/accounts")).json(&weak(&people[0].email))).await;
    let fresh = call(
        &c,
        c.post(s.url("/accounts"))
            .json(&weak("fresh.one@mail.test")),
    )
    .await;
    assert_eq!(taken.0, StatusCode::BAD_REQUEST, "{}", taken.1);
    assert_eq!(taken.1, fresh.1);
    // The refused sign-up (a taken id, with a new email) left no profile behind: its
    // email is free for the next one.
    let free = json!({"account": "sealed-late", "email": "new@mail.test",
        "password": PW, "brand": "shoes", "address": ["2 Main St"]});
    let (status, body) = call(&c, c.post(s.url("/accounts")).json(&free)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Login by email, however it is typed; an unknown email answers as a wrong password.
    let login = |email: String, password: &str| {
        c.post(s.url("/login"))
            .json(&json!({"email": email, "password": password}))
    };
    let (status, body) = call(&c, login(people[2].email.to_uppercase(), PW)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let session = body["session"].as_str().expect("session").to_owned();
    let wrong = call(
        &c,
        login(people[2].email.clone(), "not the password at all"),
    )
    .await;
    let unknown = call(&c, login("nobody.here@mail.test".into(), PW)).await;
    assert_eq!(
        wrong, unknown,
        "an unknown email answers as a wrong password"
    );
    assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
    // Unknown emails do not share one rate-limit counter (which a few requests would
    // fill, so that unknown emails answered 429 and known ones 401): each has its own,
    // as an account has. Twelve of them, once each, past the per-account limit of 10.
    for k in 0..12 {
        let (status, _) = call(&c, login(format!("nobody.{k}@mail.test"), PW)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "unknown email {k}");
    }
    let (status, _) = call(
        &c,
        login(people[1].email.clone(), "not the password at all"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let both = call(
        &c,
        c.post(s.url("/login"))
            .json(&json!({"account": "a", "email": "b@mail.test", "password": PW})),
    )
    .await;
    assert_eq!(both.0, StatusCode::UNPROCESSABLE_ENTITY);

    // The profile, opened for its owner.
    let (status, body) = call(&c, c.get(s.url("/me/profile")).bearer_auth(&session)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let p = &people[2];
    assert_eq!(
        body,
        json!({"account": p.account, "email": p.email, "name": p.name, "phone": p.phone,
            "address": p.address})
    );
    let (status, _) = call(&c, c.get(s.url("/me/profile"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A reset mail: the address is opened to send it (into the outbox).
    let (status, _) = call(
        &c,
        c.post(s.url("/password/forgot"))
            .json(&json!({"account": people[0].account})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // It went to the address given at sign-up, opened from its sealed row.
    let mut mailed = false;
    for _ in 0..100 {
        mailed = !found_in(&files(outbox, &[]), std::slice::from_ref(&people[0].email)).is_empty();
        if mailed {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        mailed,
        "the reset mail reached the outbox, addressed to the customer"
    );
}

/// Runs the server and expects it to refuse to start: its exit status and log, within
/// 10 s (a server that starts instead is killed, and the test fails).
fn refused_start(data: &Path) -> String {
    let mut child = std::process::Command::new(shop::binary())
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(!status.success(), "exited 0");
            let mut log = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut log)
                .expect("log");
            return log;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server started instead of refusing");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A number of this run's, so that no other run's rows match.
fn tag() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (std::process::id() ^ nanos) % 10_000
}

#[tokio::test(flavor = "current_thread")]
async fn a_copy_of_the_customer_side_on_sqlite_holds_no_personal_value_in_clear() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let people = people(tag());
    let (server, log) = Server::start_logged(&data, &[]);
    sign_up_and_use(&server, &people, &data.join("outbox")).await;
    assert!(
        server.stop(std::time::Duration::from_secs(10)),
        "graceful exit"
    );
    let needles = needles(&people);
    // The search finds what is in clear: the mail handed to the outbox (the mail relay's
    // side) names its recipient.
    let outbox = files(&data.join("outbox"), &[]);
    assert!(
        found_in(&outbox, &needles)
            .iter()
            .any(|(_, n)| *n == people[0].email),
        "the search is not blind"
    );
    let customer_side = files(&data, &[data.join("vault"), data.join("outbox")]);
    assert!(
        customer_side.iter().any(|f| f.ends_with("customers.db")),
        "{customer_side:?}"
    );
    assert_eq!(
        found_in(&customer_side, &needles),
        Vec::<(String, String)>::new()
    );
    // Nor the vault side (wrapped keys, sealed cards, the trail), nor the log.
    assert_eq!(
        found_in(&files(&data.join("vault"), &[]), &needles),
        Vec::<(String, String)>::new()
    );
    let log = log.lock().expect("log").clone();
    for n in &needles {
        assert!(!log.contains(n.as_str()), "the log names {n}");
    }
    // The vault side holds what it should, apart from the customer database.
    for f in ["vault.db", "keys.db", "customer.keys", "vault.keys"] {
        assert!(data.join("vault").join(f).exists(), "{f}");
    }
    // A lost key store (or KEK file) is not replaced by an empty one without a word.
    for lost in ["keys.db", "customer.keys"] {
        let vault = data.join("vault");
        let aside = dir.path().join("aside");
        std::fs::create_dir_all(&aside).expect("dir");
        for f in std::fs::read_dir(&vault).expect("vault").flatten() {
            if f.file_name().to_string_lossy().starts_with(lost) {
                std::fs::rename(f.path(), aside.join(f.file_name())).expect("move aside");
            }
        }
        let stderr = refused_start(&data);
        assert!(stderr.contains("restore it from its backup"), "{stderr}");
        // Put it back (and drop what the refused start made in its place).
        for f in std::fs::read_dir(&vault).expect("vault").flatten() {
            if f.file_name().to_string_lossy().starts_with(lost) {
                std::fs::remove_file(f.path()).expect("remove");
            }
        }
        for f in std::fs::read_dir(&aside).expect("aside").flatten() {
            std::fs::rename(f.path(), vault.join(f.file_name())).expect("restore");
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_copy_of_the_customer_side_on_postgres_holds_no_personal_value_in_clear() {
    let Some(url) = shop::postgres_url(
        "a_copy_of_the_customer_side_on_postgres_holds_no_personal_value_in_clear",
    ) else {
        return;
    };
    #[cfg(feature = "postgres")]
    postgres_copy(&url).await;
    #[cfg(not(feature = "postgres"))]
    let _ = url;
}

#[cfg(feature = "postgres")]
async fn postgres_copy(url: &str) {
    // The server's data folder: `host=<dir>` of the test server (`.ci/pg-start`).
    let host = url
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("host="))
        .expect("a host= socket folder");
    let pg_data = Path::new(host).join("data");
    assert!(pg_data.join("PG_VERSION").exists(), "{}", pg_data.display());
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    // Values of their own, so another test's rows cannot match.
    let people = people(tag() + 1);
    let schema = servers::unique("shop_sealed_");
    let (server, log) = Server::start_logged(&data, &["--postgres", url, "--pg-schema", &schema]);
    sign_up_and_use(&server, &people, &data.join("outbox")).await;
    assert!(
        server.stop(std::time::Duration::from_secs(10)),
        "graceful exit"
    );
    let needles = needles(&people);
    let log = log.lock().expect("log").clone();
    for n in &needles {
        assert!(!log.contains(n.as_str()), "the log names {n}");
    }
    let mut admin = tokio::task::spawn_blocking({
        let url = url.to_owned();
        move || postgres::Client::connect(&url, postgres::NoTls).expect("connect")
    })
    .await
    .expect("join");
    let (hits, mut admin) = tokio::task::spawn_blocking(move || {
        admin.batch_execute("CHECKPOINT").expect("checkpoint");
        (found_in(&files(&pg_data, &[]), &needles), admin)
    })
    .await
    .expect("join");
    assert_eq!(hits, Vec::<(String, String)>::new());
    // The same search finds a value the server does hold in clear.
    let control = format!("control-{}-{}", people[0].email, std::process::id());
    let pg_data = Path::new(host).join("data");
    let found = tokio::task::spawn_blocking(move || {
        admin
            .execute(
                "CREATE TABLE IF NOT EXISTS public.sealed_control (v TEXT)",
                &[],
            )
            .expect("table");
        admin
            .execute("INSERT INTO public.sealed_control VALUES ($1)", &[&control])
            .expect("insert");
        admin.batch_execute("CHECKPOINT").expect("checkpoint");
        let found = !found_in(&files(&pg_data, &[]), &[control]).is_empty();
        admin
            .batch_execute(&format!(
                "DROP TABLE public.sealed_control; DROP SCHEMA \"{schema}\" CASCADE;
                 DROP SCHEMA \"{schema}_vault\" CASCADE; DROP SCHEMA \"{schema}_keys\" CASCADE"
            ))
            .expect("clean up");
        found
    })
    .await
    .expect("join");
    assert!(found, "the search is not blind");
}
