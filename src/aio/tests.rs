//! The async layer against a real SQLite store on a multi-thread runtime.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::kernel::{AccountId, BrandId, Timestamp};
use crate::password::{Error as PasswordError, Hasher, Params, Password, PasswordContext};
use crate::rotation::{
    Authenticator, BrandLinks, CampaignOptions, Error, LoginDecision, Notice, NotifyError,
    ResetUrlTemplate,
};
use crate::rotation::{Incident, IncidentId, IncidentScope};
use crate::store::sqlite::SqliteStore;

fn hasher() -> Arc<Hasher> {
    hasher_of(1024)
}

/// Test-only parameters of `m_kib`: these tests count slots and threads, not argon2's
/// cost.
fn hasher_of(m_kib: u32) -> Arc<Hasher> {
    let params = Params::insecure_for_tests(m_kib, 1, 1).expect("params");
    Arc::new(
        Hasher::builder()
            .params(params)
            .timeout(Duration::from_secs(5))
            .build()
            .expect("hasher"),
    )
}

fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_waiters_hold_no_threads_and_time_out_as_overloaded() {
    let pool = HashPool::new(1, Duration::from_millis(200));
    // One long job holds the only slot.
    let busy = {
        let pool = pool.clone();
        tokio::spawn(async move {
            pool.run(|| {
                std::thread::sleep(Duration::from_millis(600));
                Ok::<_, PasswordError>(())
            })
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = threads();
    let waiting: Vec<_> = (0..10_000)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(|| Ok::<_, PasswordError>(())).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let during = threads();
    assert!(
        during <= before + 4,
        "10,000 waiters made threads: {before} → {during}"
    );
    let mut overloaded = 0;
    for w in waiting {
        match w.await.expect("task") {
            Err(PasswordError::Overloaded { waited }) => {
                assert!(waited >= Duration::from_millis(150), "{waited:?}");
                overloaded += 1;
            }
            other => panic!("expected Overloaded, got {other:?}"),
        }
    }
    assert_eq!(overloaded, 10_000);
    busy.await.expect("task").expect("the long job ran");
    assert_eq!(pool.available(), 1, "the slot came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_dropped_mid_flight_leak_no_slot_and_no_memory_permit() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("c.db")).expect("store"));
    // Big enough that a hash outlasts the caller's patience (several ms).
    let hasher = hasher_of(16 * 1024);
    let auth = AsyncAuthenticator::new(Authenticator::new(store, Arc::clone(&hasher)));
    let pool = auth.pool().clone();
    let alice = AccountId::new("alice").expect("id");
    let password = "correct horse battery staple";
    auth.register(
        alice.clone(),
        vec![BrandId::new("shoes").expect("brand")],
        Password::new(password),
        PasswordContext::new(),
    )
    .await
    .expect("register");

    // 200 logins whose callers give up after a millisecond: some while waiting for a
    // slot, some while their hash runs.
    let mut gave_up = 0;
    for _ in 0..200 {
        let login = auth.login_from(alice.clone(), Password::new(password), "203.0.113.9");
        if tokio::time::timeout(Duration::from_millis(1), login)
            .await
            .is_err()
        {
            gave_up += 1;
        }
    }
    assert!(gave_up > 0, "some futures were dropped mid-flight");
    // The work that had started finishes on its own and hands everything back.
    for _ in 0..500 {
        if pool.available() == pool.size() && hasher.limiter().stats().in_flight == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(pool.available(), pool.size(), "every slot is back");
    assert_eq!(
        hasher.limiter().stats().in_flight,
        0,
        "every memory permit is back"
    );

    // The next burst gets every slot: all of it succeeds.
    let burst: Vec<_> = (0..20)
        .map(|_| {
            let auth = auth.clone();
            let alice = alice.clone();
            tokio::spawn(async move {
                auth.login_from(alice, Password::new(password), "203.0.113.9")
                    .await
            })
        })
        .collect();
    for login in burst {
        assert!(matches!(
            login.await.expect("task"),
            Ok(LoginDecision::Accepted { .. })
        ));
    }
    assert!(hasher.limiter().stats().peak_in_flight <= pool.size());
}

/// A store with `n` accounts `acct0000`.. and an incident over all of them, with links.
fn campaign_shop(
    n: usize,
) -> (
    tempfile::TempDir,
    Arc<SqliteStore>,
    Incident,
    Arc<BrandLinks>,
) {
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("c.db")).expect("store"));
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
    let incident =
        Incident::declare(&*store, IncidentScope::All, Timestamp::now(), "test").expect("incident");
    let links = Arc::new(BrandLinks::new().default_template(
        ResetUrlTemplate::new("https://shop.example/reset/{token}").expect("template"),
    ));
    (dir, store, incident, links)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_campaign_resumes_and_sends_each_notice_once() {
    let (_dir, store, incident, links) = campaign_shop(300);
    let sent: Arc<Mutex<HashMap<AccountId, u32>>> = Arc::default();
    let notifier = |sent: Arc<Mutex<HashMap<AccountId, u32>>>| {
        move |n: &Notice| -> Result<(), NotifyError> {
            std::thread::sleep(Duration::from_millis(2));
            *sent
                .lock()
                .expect("lock")
                .entry(n.account.clone())
                .or_default() += 1;
            Ok(())
        }
    };
    let options = || CampaignOptions::new().batch_size(10);
    let first = spawn_campaign(
        Arc::clone(&store),
        Arc::clone(&links),
        incident.clone(),
        notifier(Arc::clone(&sent)),
        options,
    );
    let mut watch = first.watch();
    while watch.borrow().is_none_or(|p| p.done < 50) {
        watch.changed().await.expect("progress");
    }
    first.stop();
    assert_eq!(first.join().await.expect("run"), CampaignEnd::Stopped);
    let after_stop = sent.lock().expect("lock").len();
    assert!((50..300).contains(&after_stop), "{after_stop}");

    // After a restart: the stopped campaign is the one to resume.
    let incidents = AsyncIncidents::new(Arc::clone(&store));
    let open = incidents.unfinished_campaigns().await.expect("lanes");
    assert_eq!(open, std::slice::from_ref(&incident));
    assert_eq!(
        incidents.get(incident.id).await.expect("get"),
        Some(incident.clone())
    );
    assert_eq!(
        incidents
            .get(IncidentId(incident.id.0 + 1))
            .await
            .expect("get"),
        None
    );
    assert_eq!(
        incidents.list().await.expect("list"),
        std::slice::from_ref(&incident)
    );
    let incident = open.into_iter().next().expect("one");
    let second = spawn_campaign(
        Arc::clone(&store),
        links,
        incident,
        notifier(Arc::clone(&sent)),
        options,
    );
    match second.join().await.expect("run") {
        CampaignEnd::Completed(report) => {
            assert!(report.finished);
            assert_eq!(report.sent_total, 300);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        incidents
            .unfinished_campaigns()
            .await
            .expect("lanes")
            .is_empty()
    );
    let sent = sent.lock().expect("lock");
    assert_eq!(sent.len(), 300, "every account");
    assert!(sent.values().all(|&n| n == 1), "no notice twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_and_answers_are_the_sync_ones() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("c.db")).expect("store"));
    let auth = AsyncAuthenticator::new(Authenticator::new(store, hasher()));
    let bob = AccountId::new("bob").expect("id");
    assert!(matches!(
        auth.register(
            bob.clone(),
            vec![],
            Password::new("short"),
            PasswordContext::new()
        )
        .await,
        Err(Error::PasswordRejected(_))
    ));
    assert!(matches!(
        auth.login_from(bob.clone(), Password::new("whatever it is"), "")
            .await,
        Ok(LoginDecision::Rejected)
    ));
    assert_eq!(
        auth.request_reset_from(bob, None, "")
            .await
            .expect("reset")
            .map(|_| ()),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "boom in blocking work")]
async fn a_panic_in_blocking_work_reaches_the_caller() {
    let _ =
        blocking(|| -> Result<(), crate::persist::StoreError> { panic!("boom in blocking work") })
            .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_retention_run_reports_progress_and_its_report() {
    use crate::minimize::{Action, Category, Planned, RecordMeta, TableSpec};

    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("c.db")).expect("store"));
    let conn = rusqlite::Connection::open(store.path()).expect("raw");
    conn.execute_batch(
        "CREATE TABLE profiles (id TEXT PRIMARY KEY, email TEXT);
         INSERT INTO profiles VALUES ('a', 'a@example.com'), ('b', 'b@example.com'), ('c', 'c@example.com');",
    )
    .expect("table");
    let table = TableSpec::new("profiles", "id", &["email"]).expect("table spec");
    let category = Category::new("profile").expect("category");
    let planned: Vec<Planned> = ["a", "b", "c"]
        .into_iter()
        .map(|id| {
            Planned::new(
                RecordMeta::new(id, category.clone(), Timestamp::from_millis(1)),
                Action::Purge,
            )
        })
        .collect();
    let task = spawn_retention(Arc::clone(&store), "purge-1".into(), table, planned, 2);
    while !task.is_finished() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(task.records_seen(), 3);
    let report = task.join().await.expect("run");
    assert_eq!(report.purged, 3);
    let left: i64 = conn
        .query_row("SELECT count(*) FROM profiles", [], |r| r.get(0))
        .expect("count");
    assert_eq!(left, 0);
}

/// Says "no address" for every account ending in 7, and that it has no idempotency key;
/// checks, before each notice, that the one before it was already recorded.
struct NoKeyNotifier {
    store: Arc<SqliteStore>,
    incident: Incident,
    last: Mutex<Option<AccountId>>,
    accepted: Mutex<u64>,
}

impl crate::rotation::Notifier for NoKeyNotifier {
    fn send(&self, _: &Notice) -> Result<(), NotifyError> {
        unreachable!("the campaign asks deliver()")
    }

    fn deliver(&self, n: &Notice) -> Result<crate::rotation::Delivery, NotifyError> {
        use crate::rotation::CampaignStore;
        let lane = self
            .store
            .open_lanes(&self.incident, 1, Timestamp::now())
            .expect("lanes")
            .remove(0);
        let mut last = self.last.lock().expect("lock");
        let mut accepted = self.accepted.lock().expect("lock");
        assert_eq!(
            (&lane.sent_cursor, lane.sent),
            (&*last, *accepted),
            "the notice before this one is on record before this one goes out"
        );
        *last = Some(n.account.clone());
        if n.account.as_str().ends_with('7') {
            return Ok(crate::rotation::Delivery::Undeliverable(
                crate::rotation::Undeliverable::NoAddress,
            ));
        }
        *accepted += 1;
        Ok(crate::rotation::Delivery::Accepted)
    }

    fn deduplicates(&self) -> bool {
        false
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_task_keeps_the_notifiers_outcomes_and_records_each_acceptance_at_once() {
    use crate::rotation::CampaignStore;
    let (_dir, store, incident, links) = campaign_shop(100);
    let notifier = NoKeyNotifier {
        store: Arc::clone(&store),
        incident: incident.clone(),
        last: Mutex::new(None),
        accepted: Mutex::new(0),
    };
    let task = spawn_campaign(
        Arc::clone(&store),
        links,
        incident.clone(),
        notifier,
        || CampaignOptions::new().batch_size(16),
    );
    let CampaignEnd::Completed(report) = task.join().await.expect("run") else {
        panic!("stopped")
    };
    assert_eq!(
        (
            report.sent_total,
            report.undeliverable_this_run,
            report.undeliverable_total
        ),
        (90, 10, 10),
        "undeliverable notices are counted as such, never as sent"
    );
    let lane = store
        .open_lanes(&incident, 1, Timestamp::now())
        .expect("lanes")
        .remove(0);
    let listed = store.undeliverable(lane.id, None, 100).expect("list");
    assert_eq!(listed.len(), 10);
    assert!(
        listed
            .iter()
            .all(|u| u.reason == "no-address" && u.account.as_str().ends_with('7'))
    );
    let page = store
        .undeliverable(lane.id, Some(&listed[4].account), 3)
        .expect("page");
    assert_eq!(page, listed[5..8]);
}

/// A breach corpus that answers after 400 ms, like a slow remote service.
struct SlowCorpus;

impl crate::password::BreachedPasswords for SlowCorpus {
    fn times_seen(
        &self,
        _: &crate::password::PwnedDigest,
    ) -> Result<u64, crate::password::BreachLookupError> {
        std::thread::sleep(Duration::from_millis(400));
        Ok(3)
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_breach_check_runs_off_the_runtime_and_its_refusal_comes_back() {
    use crate::password::{AcceptancePolicy, OnLookupFailure, Rejection};
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("c.db")).expect("store"));
    let policy = AcceptancePolicy::single_factor()
        .with_breached_passwords(Arc::new(SlowCorpus), OnLookupFailure::Refuse);
    let auth = AsyncAuthenticator::new(Authenticator::new(store, hasher()).with_policy(policy));
    // One runtime thread: if the lookup blocked it, the ticker would not tick.
    let ticks = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = ticks.clone();
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let refused = auth
        .register(
            AccountId::new("carol").expect("id"),
            vec![],
            Password::new("walnut cobbler lantern river"),
            PasswordContext::new(),
        )
        .await;
    ticker.abort();
    assert!(
        matches!(
            refused,
            Err(Error::PasswordRejected(Rejection::Breached { times: 3 }))
        ),
        "{refused:?}"
    );
    let ticked = ticks.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        ticked >= 20,
        "the runtime thread was blocked: {ticked} ticks in 400 ms"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn sealing_runs_off_a_single_threaded_runtime() {
    use crate::card::{FileKeySource, VaultKeyId};
    use crate::minimize::{Pii, PiiKind};
    use crate::seal::{Column, Sealer};
    use crate::store::sqlite::SqliteKeyStore;

    let dir = tempfile::tempdir().expect("dir");
    let root = dir.path().to_path_buf();
    let sealer = blocking(move || {
        let keks = FileKeySource::open_or_create(
            root.join("c.keys"),
            &VaultKeyId::new("e1").expect("id"),
        )?;
        let store = SqliteKeyStore::open(root.join("keys.db"))?;
        Sealer::new(store, &keks)
    })
    .await
    .expect("sealer");
    let sealer = AsyncSealer::new(sealer);
    let email = Column::new("profiles", "email", PiiKind::Email).expect("column");
    let jane = AccountId::new("jane").expect("id");
    let value = || Pii::new(PiiKind::Email, "jane@example.com".to_owned());
    let sealed = sealer
        .seal(jane.clone(), email.clone(), "1".into(), value())
        .await
        .expect("seal");
    let opened = sealer
        .open(jane.clone(), email.clone(), "1".into(), sealed.clone())
        .await
        .expect("open");
    assert_eq!(opened.expose(), "jane@example.com");
    let all = sealer
        .open_all(email.clone(), vec![(jane, "1".into(), sealed)])
        .await
        .expect("batch");
    assert_eq!(all.len(), 1);
    let a = sealer
        .blind_index(email.clone(), value())
        .await
        .expect("index");
    let b = sealer
        .blind_index(email, Pii::new(PiiKind::Email, " JANE@example.com".into()))
        .await
        .expect("index");
    assert_eq!(a, b);
}
