//! Breach day through the public API: incidents, login decisions, reset tokens, history,
//! sessions, and the notification campaign over the SQLite store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here
#![cfg(feature = "sqlite")]

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shopsafe::password::{Hasher, Params, Password, PasswordContext, Rejection};
use shopsafe::rotation::{
    Authenticator, BrandLinks, Campaign, CampaignOptions, Clock, Error, InMemoryRateLimiter,
    LoginDecision, ManualClock, Notice, NotifyError, ResetReason, ResetToken, ResetUrlTemplate,
};
use shopsafe::store::sqlite::SqliteStore;
use shopsafe::store::{
    AccountId, BrandId, CredentialFlags, CredentialStore, Incident, IncidentScope, Timestamp,
};

const T0: i64 = 1_700_000_000_000;

fn weak_hasher() -> Arc<Hasher> {
    Arc::new(Hasher::new(
        Params::insecure_for_tests(64, 1, 1).expect("valid test params"),
    ))
}

fn acct(s: &str) -> AccountId {
    AccountId::new(s).expect("valid account id")
}

fn brand(s: &str) -> BrandId {
    BrandId::new(s).expect("valid brand id")
}

fn pw(s: &str) -> Password {
    Password::new(s)
}

fn links() -> BrandLinks {
    BrandLinks::new()
        .brand(
            brand("shoes"),
            ResetUrlTemplate::new("https://shoes.example/reset?token={token}").expect("template"),
        )
        .brand(
            brand("boots"),
            ResetUrlTemplate::new("https://boots.example/r/{token}").expect("template"),
        )
}

struct Shop {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    clock: Arc<ManualClock>,
    auth: Authenticator<SqliteStore>,
}

fn shop() -> Shop {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("customers.db")).expect("open"));
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(T0)));
    let auth = Authenticator::new(Arc::clone(&store), weak_hasher())
        .with_clock(clock.clone())
        .with_links(links());
    Shop {
        _dir: dir,
        store,
        clock,
        auth,
    }
}

impl Shop {
    fn register(&self, id: &str, brands: &[&str], password: &str) {
        let brands: Vec<BrandId> = brands.iter().map(|b| brand(b)).collect();
        self.auth
            .register(&acct(id), &brands, &pw(password), &PasswordContext::new())
            .expect("register");
    }

    fn login(&self, id: &str, password: &str) -> LoginDecision {
        self.auth
            .login_from(&acct(id), &pw(password), id)
            .expect("login")
    }

    fn reset_link(&self, id: &str) -> ResetToken {
        let link = self
            .auth
            .request_reset(&acct(id), None)
            .expect("request")
            .expect("known account");
        ResetToken::from_link(link.expose_secret()).expect("link holds a token")
    }
}

fn accepted(d: &LoginDecision) -> bool {
    matches!(d, LoginDecision::Accepted { .. })
}

#[test]
fn an_incident_makes_old_passwords_worthless_without_checking_them() {
    let s = shop();
    s.register("jane", &["shoes"], "walnut cobbler lantern river");
    s.register("omar", &["boots"], "quiet harbour copper kettle");
    assert!(accepted(&s.login("jane", "walnut cobbler lantern river")));

    s.clock.advance(Duration::from_secs(60));
    let incident = Incident::declare(
        &*s.store,
        IncidentScope::All,
        s.clock.now(),
        "customer db copied",
    )
    .expect("declare");
    let expect = LoginDecision::ResetRequired {
        reason: ResetReason::Incident(incident.id),
    };
    // The right password and a wrong one get the same answer: nothing was verified.
    assert_eq!(s.login("jane", "walnut cobbler lantern river"), expect);
    assert_eq!(s.login("jane", "not the password at all"), expect);
    assert_eq!(s.login("omar", "quiet harbour copper kettle"), expect);
    assert_eq!(
        s.login("nobody", "walnut cobbler lantern river"),
        LoginDecision::Rejected
    );
    assert_eq!(
        s.store
            .load_credential(&acct("jane"))
            .expect("load")
            .expect("known")
            .generation,
        0,
        "nothing rewritten"
    );

    // A credential set at the cutoff is affected; one set after it is not.
    s.register("edge", &["shoes"], "amber meadow tractor violin");
    assert_eq!(s.login("edge", "amber meadow tractor violin"), expect);
    s.clock.advance(Duration::from_millis(1));
    s.register("late", &["shoes"], "amber meadow tractor violin");
    assert!(accepted(&s.login("late", "amber meadow tractor violin")));
}

#[test]
fn brand_and_list_scopes_reach_only_their_accounts() {
    let s = shop();
    s.register("a-shoes", &["shoes"], "walnut cobbler lantern river");
    s.register(
        "b-both",
        &["shoes", "boots"],
        "walnut cobbler lantern river",
    );
    s.register("c-boots", &["boots"], "walnut cobbler lantern river");
    s.register("d-listed", &["shoes"], "walnut cobbler lantern river");
    s.clock.advance(Duration::from_secs(1));
    Incident::declare(
        &*s.store,
        IncidentScope::Brand(brand("boots")),
        s.clock.now(),
        "boots db",
    )
    .expect("declare");
    let (listed, n) = Incident::declare_accounts(
        &*s.store,
        [acct("d-listed"), acct("ghost")],
        s.clock.now(),
        "list",
    )
    .expect("list");
    assert_eq!(n, 2);
    assert_eq!(listed.scope, IncidentScope::Accounts);
    let reset = |id| {
        matches!(
            s.login(id, "walnut cobbler lantern river"),
            LoginDecision::ResetRequired { .. }
        )
    };
    assert!(!reset("a-shoes"));
    assert!(reset("b-both"));
    assert!(reset("c-boots"));
    assert!(reset("d-listed"));
    assert!(matches!(
        Incident::declare(&*s.store, IncidentScope::Accounts, s.clock.now(), "x"),
        Err(Error::ScopeNeedsList)
    ));
}

#[test]
fn a_reset_sets_a_new_password_and_kills_every_session_and_token() {
    let s = shop();
    s.register("jane", &["shoes"], "walnut cobbler lantern river");
    let LoginDecision::Accepted { session_stamp, .. } =
        s.login("jane", "walnut cobbler lantern river")
    else {
        panic!("login failed")
    };
    assert!(
        s.auth
            .validate_session(&acct("jane"), &session_stamp)
            .expect("validate")
    );
    s.clock.advance(Duration::from_secs(1));
    Incident::declare(&*s.store, IncidentScope::All, s.clock.now(), "copied").expect("declare");
    assert!(
        !s.auth
            .validate_session(&acct("jane"), &session_stamp)
            .expect("validate"),
        "sessions end at once"
    );

    let token = s.reset_link("jane");
    let ctx = PasswordContext::new().brand("shoes");
    // Refusals leave the token usable.
    let short = s.auth.redeem(&token, &pw("too short"), &ctx);
    assert!(
        matches!(
            short,
            Err(Error::PasswordRejected(Rejection::TooShort { .. }))
        ),
        "{short:?}"
    );
    let same = s
        .auth
        .redeem(&token, &pw("walnut cobbler lantern river"), &ctx);
    assert!(
        matches!(same, Err(Error::PasswordRejected(Rejection::Compromised))),
        "{same:?}"
    );

    s.clock.advance(Duration::from_secs(1));
    assert_eq!(
        s.auth
            .redeem(&token, &pw("granite otter saffron bell"), &ctx)
            .expect("redeem"),
        acct("jane")
    );
    assert!(matches!(
        s.auth.redeem(&token, &pw("another fresh passphrase"), &ctx),
        Err(Error::TokenAlreadyUsed)
    ));
    assert_eq!(
        s.login("jane", "walnut cobbler lantern river"),
        LoginDecision::Rejected,
        "old password is dead"
    );
    let LoginDecision::Accepted {
        session_stamp: new_stamp,
        ..
    } = s.login("jane", "granite otter saffron bell")
    else {
        panic!("new password refused")
    };
    assert_ne!(new_stamp, session_stamp);
    assert!(
        !s.auth
            .validate_session(&acct("jane"), &session_stamp)
            .expect("validate")
    );
    assert!(
        s.auth
            .validate_session(&acct("jane"), &new_stamp)
            .expect("validate")
    );
}

#[test]
fn tokens_expire_earlier_links_stay_and_garbage_is_unknown() {
    let s = shop();
    s.register("jane", &["shoes"], "walnut cobbler lantern river");
    let ctx = PasswordContext::new();
    let first = s.reset_link("jane");
    let second = s.reset_link("jane");
    // A second request does not void the first link (only the oldest beyond five go):
    // the first is still found, and refuses a short password like any live token.
    assert!(matches!(
        s.auth.redeem(&first, &pw("short"), &ctx),
        Err(Error::PasswordRejected(_))
    ));
    s.clock.advance(Duration::from_secs(3600));
    assert!(matches!(
        s.auth
            .redeem(&second, &pw("granite otter saffron bell"), &ctx),
        Err(Error::TokenExpired)
    ));
    // Well formed but never issued, for a known ("amFuZQ" = "jane") and an unknown
    // ("bm9ib2R5" = "nobody") account: the same answer.
    for forged in ["amFuZQ", "bm9ib2R5"] {
        let text = format!("{forged}.{}A", "Q".repeat(42));
        let garbage = ResetToken::parse(&text).expect("well formed");
        let answer = s
            .auth
            .redeem(&garbage, &pw("granite otter saffron bell"), &ctx);
        assert!(matches!(answer, Err(Error::TokenUnknown)), "{answer:?}");
    }
    assert!(
        s.auth
            .request_reset(&acct("nobody"), None)
            .expect("request")
            .is_none()
    );
    // Asking for a reset changes nothing about the account.
    assert!(accepted(&s.login("jane", "walnut cobbler lantern river")));
}

#[test]
fn recent_passwords_cannot_come_back() {
    let s = shop();
    s.register("jane", &["shoes"], "walnut cobbler lantern river");
    let ctx = PasswordContext::new();
    for next in ["granite otter saffron bell", "velvet compass orchard lime"] {
        let t = s.reset_link("jane");
        s.clock.advance(Duration::from_secs(1));
        s.auth.redeem(&t, &pw(next), &ctx).expect("redeem");
    }
    let t = s.reset_link("jane");
    let again = s.auth.redeem(&t, &pw("walnut cobbler lantern river"), &ctx);
    assert!(
        matches!(again, Err(Error::PasswordRejected(Rejection::RecentlyUsed))),
        "{again:?}"
    );
    let current = s.auth.redeem(&t, &pw("velvet compass orchard lime"), &ctx);
    assert!(
        matches!(
            current,
            Err(Error::PasswordRejected(Rejection::RecentlyUsed))
        ),
        "{current:?}"
    );
    s.auth
        .redeem(&t, &pw("harvest pebble tangerine dune"), &ctx)
        .expect("a new one is fine");
}

#[test]
fn login_upgrades_weak_hashes_and_refuses_disabled_accounts() {
    let s = shop();
    s.register("jane", &["shoes"], "walnut cobbler lantern river");
    let before = s
        .store
        .load_credential(&acct("jane"))
        .expect("load")
        .expect("known")
        .hash;
    let stronger = Arc::new(Hasher::new(
        Params::insecure_for_tests(128, 2, 1).expect("params"),
    ));
    let auth = Authenticator::new(Arc::clone(&s.store), stronger).with_clock(s.clock.clone());
    let first = auth
        .login(&acct("jane"), &pw("walnut cobbler lantern river"))
        .expect("login");
    assert!(
        matches!(first, LoginDecision::Accepted { rehashed: true, .. }),
        "{first:?}"
    );
    let after = s
        .store
        .load_credential(&acct("jane"))
        .expect("load")
        .expect("known")
        .hash;
    assert_ne!(after, before);
    assert_eq!(after.params().m_kib(), 128);
    let second = auth
        .login(&acct("jane"), &pw("walnut cobbler lantern river"))
        .expect("login");
    assert!(
        matches!(
            second,
            LoginDecision::Accepted {
                rehashed: false,
                ..
            }
        ),
        "{second:?}"
    );

    // A reset link sent before the account was disabled (an erasure) sets no password.
    let token = s.reset_link("jane");
    s.store
        .set_flags(&acct("jane"), CredentialFlags::DISABLED)
        .expect("flag");
    assert_eq!(
        s.login("jane", "walnut cobbler lantern river"),
        LoginDecision::Rejected
    );
    let hash = s
        .store
        .load_credential(&acct("jane"))
        .expect("load")
        .expect("known")
        .hash;
    assert!(matches!(
        s.auth.redeem(
            &token,
            &pw("granite otter saffron bell"),
            &PasswordContext::new()
        ),
        Err(Error::TokenUnknown)
    ));
    let unchanged = s
        .store
        .load_credential(&acct("jane"))
        .expect("load")
        .expect("known");
    assert_eq!(unchanged.hash, hash, "the old link changed nothing");
    assert!(unchanged.flags.contains(CredentialFlags::DISABLED));
    s.store
        .set_flags(&acct("jane"), CredentialFlags::MUST_RESET)
        .expect("flag");
    assert_eq!(
        s.login("jane", "walnut cobbler lantern river"),
        LoginDecision::ResetRequired {
            reason: ResetReason::Flagged
        }
    );
}

#[test]
fn repeated_failures_are_throttled_for_known_and_unknown_accounts_alike() {
    let s = shop();
    s.register("jane", &["shoes"], "walnut cobbler lantern river");
    for id in ["jane", "nobody"] {
        for _ in 0..10 {
            assert_eq!(
                s.login(id, "wrong guess number one"),
                LoginDecision::Rejected
            );
        }
        assert!(
            matches!(
                s.login(id, "walnut cobbler lantern river"),
                LoginDecision::Throttled { .. }
            ),
            "{id}"
        );
    }
    s.clock.advance(Duration::from_secs(15 * 60));
    assert!(accepted(&s.login("jane", "walnut cobbler lantern river")));
}

#[test]
fn two_threads_redeeming_one_token_succeed_exactly_once_each_time() {
    let s = shop();
    s.register("jane", &["shoes"], "walnut cobbler lantern river");
    // A thousand requests for one account: past the default reset request limit.
    let unlimited = InMemoryRateLimiter::new(u32::MAX, u32::MAX, Duration::from_secs(1));
    let auth = Arc::new(s.auth.with_reset_rate_limiter(Arc::new(unlimited)));
    let ctx = Arc::new(PasswordContext::new());
    let rounds = 1_000;
    let mut already_used = 0;
    for round in 0..rounds {
        let link = auth
            .request_reset(&acct("jane"), None)
            .expect("request")
            .expect("known");
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let racers: Vec<_> = (0..2)
            .map(|i| {
                let (auth, ctx, barrier) =
                    (Arc::clone(&auth), Arc::clone(&ctx), Arc::clone(&barrier));
                let token = ResetToken::from_link(link.expose_secret()).expect("token");
                // Each racer sets a password of its own, fresh for every round.
                let new = format!("round {round} racer {i} chooses walnut");
                std::thread::spawn(move || {
                    barrier.wait();
                    auth.redeem(&token, &pw(&new), &ctx)
                })
            })
            .collect();
        let results: Vec<_> = racers
            .into_iter()
            .map(|r| r.join().expect("no panic"))
            .collect();
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: {results:?}");
        for r in results.iter().filter_map(|r| r.as_ref().err()) {
            assert!(matches!(r, Error::TokenAlreadyUsed), "round {round}: {r:?}");
            already_used += 1;
        }
    }
    assert_eq!(already_used, rounds);
    let generation = s
        .store
        .load_credential(&acct("jane"))
        .expect("load")
        .expect("known")
        .generation;
    assert_eq!(generation, rounds, "one password change per round");
}

// ---------------------------------------------------------------------------------------
// The campaign: crash and resume.
// ---------------------------------------------------------------------------------------

/// A mail provider that honours idempotency keys, as the campaign docs ask of one: a
/// repeated `NoticeId` is accepted and dropped.
#[derive(Default)]
struct MailProvider {
    delivered: HashMap<String, (Option<String>, String)>,
    repeats: u64,
}

use shopsafe::store::{
    CampaignId, CampaignState, CampaignStore, ClaimedAccount, StoreError, TokenRecord,
};

/// How the "process" stops, at the n-th notice of a run.
#[derive(Clone, Copy, Debug)]
enum Crash {
    /// The notifier panics before delivering (unwinding).
    PanicBeforeDelivery,
    /// The notifier reports a failure.
    NotifierError,
    /// Killed hard right after the provider accepted the notice.
    KillAfterDelivery,
    /// Killed hard inside the next claim, after its transaction committed.
    KillAfterClaimCommit,
    /// Killed hard at the next checkpoint write (which never happens).
    KillInCheckpoint,
}

/// The store as one process sees it: once killed, no write of it reaches the database.
struct Process<'a> {
    store: &'a SqliteStore,
    dead: AtomicBool,
    kill_in_next_claim: AtomicBool,
    kill_in_checkpoint: AtomicBool,
}

impl Process<'_> {
    fn alive(&self) -> Result<(), StoreError> {
        if self.dead.load(SeqCst) {
            Err(StoreError::Corrupt {
                what: "nothing: the process was killed",
            })
        } else {
            Ok(())
        }
    }
}

impl CampaignStore for Process<'_> {
    fn open_lanes(
        &self,
        incident: &Incident,
        lanes: usize,
        now: Timestamp,
    ) -> Result<Vec<CampaignState>, StoreError> {
        self.alive()?;
        self.store.open_lanes(incident, lanes, now)
    }
    fn lanes(
        &self,
        incident: shopsafe::store::IncidentId,
    ) -> Result<Vec<CampaignState>, StoreError> {
        self.alive()?;
        self.store.lanes(incident)
    }
    fn count_affected(
        &self,
        incident: &Incident,
        after: Option<&AccountId>,
        until: Option<&AccountId>,
    ) -> Result<u64, StoreError> {
        self.alive()?;
        self.store.count_affected(incident, after, until)
    }
    fn claim_batch(
        &self,
        incident: &Incident,
        after: Option<&AccountId>,
        until: Option<&AccountId>,
        limit: usize,
        issue: &mut dyn FnMut(&AccountId, u64) -> Result<TokenRecord, StoreError>,
    ) -> Result<Vec<ClaimedAccount>, StoreError> {
        self.alive()?;
        let claimed = self
            .store
            .claim_batch(incident, after, until, limit, issue)?;
        if self.kill_in_next_claim.load(SeqCst) {
            self.dead.store(true, SeqCst);
        }
        self.alive()?;
        Ok(claimed)
    }
    fn checkpoint(
        &self,
        campaign: CampaignId,
        cursor: &AccountId,
        sent: u64,
    ) -> Result<(), StoreError> {
        if self.kill_in_checkpoint.load(SeqCst) {
            self.dead.store(true, SeqCst);
        }
        self.alive()?;
        self.store.checkpoint(campaign, cursor, sent)
    }
    fn finish_campaign(&self, campaign: CampaignId, now: Timestamp) -> Result<(), StoreError> {
        self.alive()?;
        self.store.finish_campaign(campaign, now)
    }
    fn record_undeliverable(
        &self,
        campaign: CampaignId,
        entry: &shopsafe::store::Undelivered,
    ) -> Result<(), StoreError> {
        self.alive()?;
        self.store.record_undeliverable(campaign, entry)
    }
    fn undeliverable(
        &self,
        campaign: CampaignId,
        after: Option<&AccountId>,
        limit: usize,
    ) -> Result<Vec<shopsafe::store::Undelivered>, StoreError> {
        self.alive()?;
        self.store.undeliverable(campaign, after, limit)
    }
    fn count_undeliverable(&self, campaign: CampaignId) -> Result<u64, StoreError> {
        self.alive()?;
        self.store.count_undeliverable(campaign)
    }
}

/// What 25 stopped runs and a final one left behind.
struct CrashOutcome {
    /// Each crash, with the repeats the run after it sent (the provider dropped them).
    repeats_after: Vec<(Crash, u64)>,
}

fn repeats(mail: &Mutex<MailProvider>) -> u64 {
    mail.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .repeats
}

/// Seeds 10,000 accounts on two brands, declares an incident, runs the campaign and
/// stops it at 25 pseudo-random points (each way five times), each run in a "new
/// process"; then resumes it to the end and checks every account was reached once.
fn crash_and_resume(options: impl Fn() -> CampaignOptions<'static>) -> CrashOutcome {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("customers.db");
    let hasher = weak_hasher();
    let customers = 10_000usize;
    {
        let store = SqliteStore::open(&path).expect("open");
        let hash = hasher
            .hash(&pw("seeded password for every account"))
            .expect("hash");
        let ids: Vec<AccountId> = (0..customers)
            .map(|i| acct(&format!("cust-{i:06}")))
            .collect();
        let (shoes, boots, both) = (
            [brand("shoes")],
            [brand("boots")],
            [brand("boots"), brand("shoes")],
        );
        let items = ids.iter().enumerate().map(|(i, a)| {
            let brands: &[BrandId] = match i % 3 {
                0 => &shoes,
                1 => &boots,
                _ => &both,
            };
            (a, brands, &hash, Timestamp::from_millis(T0))
        });
        assert_eq!(
            store.insert_credentials_bulk(items).expect("seed"),
            customers as u64
        );
    }
    let incident = Incident::declare(
        &SqliteStore::open(&path).expect("open"),
        IncidentScope::All,
        Timestamp::from_millis(T0 + 1),
        "drill",
    )
    .expect("declare");

    let modes = [
        Crash::PanicBeforeDelivery,
        Crash::NotifierError,
        Crash::KillAfterDelivery,
        Crash::KillAfterClaimCommit,
        Crash::KillInCheckpoint,
    ];
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mail = Mutex::new(MailProvider::default());
    let links = links();
    let (mut panics, mut notify_errors, mut store_errors) = (0, 0, 0);
    let mut repeats_after: Vec<(Crash, u64)> = Vec::new();
    let mut repeats_before = 0;
    for (i, mode) in modes.iter().cycle().take(25).copied().enumerate() {
        let crash_at = 1 + next() % 600; // notices into this run
        let store = SqliteStore::open(&path).expect("a new process opens the database");
        let process = Process {
            store: &store,
            dead: AtomicBool::new(false),
            kill_in_next_claim: AtomicBool::new(false),
            kill_in_checkpoint: AtomicBool::new(false),
        };
        let sent_in_run = std::cell::Cell::new(0u64);
        let notifier = |n: &Notice| -> Result<(), NotifyError> {
            let k = sent_in_run.get() + 1;
            if k == crash_at {
                match mode {
                    Crash::PanicBeforeDelivery => panic!("notifier crashed"),
                    Crash::NotifierError => return Err(NotifyError("smtp 451".into())),
                    Crash::KillAfterDelivery => {
                        deliver(&mail, n);
                        process.dead.store(true, SeqCst);
                        panic!("killed after delivery");
                    }
                    Crash::KillAfterClaimCommit => process.kill_in_next_claim.store(true, SeqCst),
                    Crash::KillInCheckpoint => process.kill_in_checkpoint.store(true, SeqCst),
                }
            }
            deliver(&mail, n);
            sent_in_run.set(k);
            Ok(())
        };
        let campaign = Campaign::new(&process, &links);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            campaign.run(&incident, &notifier, options().batch_size(97))
        }));
        // This run's repeats resend what the previous crash left unrecorded.
        let now_repeated = repeats(&mail);
        if let Some(last) = repeats_after.last_mut() {
            last.1 = now_repeated - repeats_before;
        }
        repeats_after.push((mode, 0));
        repeats_before = now_repeated;
        match outcome {
            Ok(Ok(report)) => {
                panic!("crash {i} ({mode:?}) at {crash_at} did not stop the run: {report:?}")
            }
            Ok(Err(Error::Notify(_))) => notify_errors += 1,
            Ok(Err(Error::Store(_))) => store_errors += 1,
            Ok(Err(e)) => panic!("crash {i}: unexpected {e:?}"),
            Err(_) => panics += 1,
        }
    }
    assert_eq!(
        (panics, notify_errors, store_errors),
        (10, 5, 10),
        "every crash stopped its run as planned"
    );

    // Resume to the end in a clean process.
    let store = SqliteStore::open(&path).expect("open");
    let notifier = |n: &Notice| -> Result<(), NotifyError> {
        deliver(&mail, n);
        Ok(())
    };
    let report = Campaign::new(&store, &links)
        .run(&incident, &notifier, options().batch_size(97))
        .expect("final run");
    assert!(report.finished, "{report:?}");
    assert_eq!(
        (report.affected, report.sent_total),
        (customers as u64, customers as u64),
        "{report:?}"
    );

    let last = repeats_after.last_mut().expect("25 crashes");
    last.1 = repeats(&mail) - repeats_before;
    let mail = mail.into_inner().expect("not poisoned");
    assert_eq!(mail.delivered.len(), customers, "0 accounts missed");
    // Each account's first delivered notice was written as the right brand...
    for (id, (brand_name, link)) in &mail.delivered {
        let n: usize = id
            .rsplit("/cust-")
            .next()
            .and_then(|n| n.parse().ok())
            .expect("numbered account");
        let expected = if n.is_multiple_of(3) {
            "shoes"
        } else {
            "boots"
        };
        assert_eq!(brand_name.as_deref(), Some(expected), "{id}");
        assert!(
            link.starts_with(&format!("https://{expected}.example/")),
            "{id}: link for the wrong brand"
        );
    }
    // ...and its link works, even where a later (dropped) repeat carried another token.
    let auth = Authenticator::new(Arc::new(store), Arc::clone(&hasher));
    for (id, (_, link)) in mail.delivered.iter().step_by(97) {
        let token = ResetToken::from_link(link).expect("token");
        let account = auth.redeem(
            &token,
            &pw("brand new passphrase after the breach"),
            &PasswordContext::new(),
        );
        assert_eq!(
            Some(account.expect("delivered link redeems").as_str()),
            id.rsplit('/').next()
        );
    }

    // A finished campaign sends nothing more.
    let again = Campaign::new(&SqliteStore::open(&path).expect("open"), &links)
        .run(
            &incident,
            &|_: &Notice| -> Result<(), NotifyError> { panic!("nothing to send") },
            options(),
        )
        .expect("rerun");
    assert_eq!((again.sent_this_run, again.finished), (0, true));
    CrashOutcome { repeats_after }
}

impl CrashOutcome {
    /// Checks every crash's repeats against what it may cost: nothing for a stop the
    /// process survives (panic, error, kill before any unrecorded delivery), between 1
    /// and `window` for a hard kill after deliveries the checkpoint had not recorded.
    fn assert_repeats_within(&self, window: u64) {
        for (i, (mode, n)) in self.repeats_after.iter().enumerate() {
            match mode {
                Crash::PanicBeforeDelivery | Crash::NotifierError | Crash::KillAfterClaimCommit => {
                    assert_eq!(*n, 0, "crash {i} ({mode:?})");
                }
                Crash::KillAfterDelivery | Crash::KillInCheckpoint => {
                    assert!(
                        (1..=window).contains(n),
                        "crash {i} ({mode:?}): {n} repeats"
                    );
                }
            }
        }
    }
}

#[test]
fn campaign_checkpointing_every_notice_repeats_only_the_notice_a_kill_interrupted() {
    crash_and_resume(|| CampaignOptions::new().checkpoint_every(1)).assert_repeats_within(1);
}

#[test]
fn campaign_with_default_checkpoints_repeats_at_most_one_interval_per_hard_kill() {
    let out = crash_and_resume(CampaignOptions::new);
    out.assert_repeats_within(shopsafe::rotation::DEFAULT_CHECKPOINT_EVERY);
    let total: u64 = out.repeats_after.iter().map(|(_, n)| n).sum();
    assert!(
        total > 10,
        "the default interval is wider than one notice: {total}"
    );
}

fn deliver(mail: &Mutex<MailProvider>, n: &Notice) {
    let mut mail = mail
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let key = n.id.to_string();
    match mail.delivered.entry(key) {
        std::collections::hash_map::Entry::Occupied(_) => mail.repeats += 1,
        std::collections::hash_map::Entry::Vacant(slot) => {
            slot.insert((
                n.brand.as_ref().map(|b| b.as_str().to_owned()),
                n.link.expose_secret().to_owned(),
            ));
        }
    }
}

#[test]
fn dry_run_counts_and_throttle_and_budget_are_honoured() {
    let s = shop();
    for i in 0..30 {
        s.register(
            &format!("c{i:02}"),
            &["shoes"],
            "walnut cobbler lantern river",
        );
    }
    s.clock.advance(Duration::from_secs(1));
    let incident =
        Incident::declare(&*s.store, IncidentScope::All, s.clock.now(), "drill").expect("declare");
    let links = links();
    let campaign = Campaign::new(&*s.store, &links).with_clock(&*s.clock);
    let never = |_: &Notice| -> Result<(), NotifyError> { panic!("dry run sends nothing") };
    let dry = campaign
        .run(&incident, &never, CampaignOptions::new().dry_run(true))
        .expect("dry run");
    assert_eq!(
        (
            dry.affected,
            dry.sent_this_run,
            dry.sent_total,
            dry.finished
        ),
        (30, 30, 0, false)
    );

    let count = std::cell::Cell::new(0);
    let notifier = |n: &Notice| -> Result<(), NotifyError> {
        assert_eq!(n.advice, shopsafe::rotation::REUSE_ADVICE);
        assert_eq!(n.exposure.as_deref(), Some("email, hashed password"));
        count.set(count.get() + 1);
        Ok(())
    };
    let mut seen = Vec::new();
    let staged = campaign
        .run(
            &incident,
            &notifier,
            CampaignOptions::new()
                .batch_size(4)
                .max_notices(10)
                .max_per_second(200.0)
                .exposure(|_| Some("email, hashed password".to_owned()))
                .progress(|p| seen.push(p.done)),
        )
        .expect("staged run");
    assert_eq!(
        (staged.sent_this_run, staged.finished, count.get()),
        (10, false, 10)
    );
    assert_eq!(seen, vec![4, 8, 10]);
    assert!(
        staged.elapsed >= Duration::from_millis(40),
        "10 notices at 200/s take ≥ 45 ms: {:?}",
        staged.elapsed
    );
    let rest = campaign.run(
        &incident,
        &notifier,
        CampaignOptions::new().exposure(|_| Some("email, hashed password".into())),
    );
    let rest = rest.expect("rest");
    assert_eq!(
        (
            rest.sent_this_run,
            rest.sent_total,
            rest.finished,
            count.get()
        ),
        (20, 30, true, 30)
    );
}

#[test]
fn compromised_accounts_throttle_like_every_other_account() {
    // The ResetRequired path used to record no failure: after ten guesses an unknown or
    // ordinary account answered Throttled and a compromised one never did.
    let s = shop();
    s.register("jane", &["shoes"], "walnut cobbler lantern river");
    s.register("omar", &["boots"], "quiet harbour copper kettle");
    s.clock.advance(Duration::from_secs(60));
    Incident::declare(
        &*s.store,
        IncidentScope::Brand(brand("shoes")),
        s.clock.now(),
        "x",
    )
    .expect("declare");
    for id in ["jane", "omar", "nobody"] {
        for _ in 0..10 {
            assert!(!matches!(
                s.login(id, "wrong guess number one"),
                LoginDecision::Throttled { .. }
            ));
        }
        assert!(
            matches!(
                s.login(id, "wrong guess number two"),
                LoginDecision::Throttled { .. }
            ),
            "{id} answers like the others after ten failures"
        );
    }
}

#[test]
fn concurrent_guesses_cannot_pass_the_throttle_together() {
    // Check and record were separate, with an argon2 run between them: every one of N
    // concurrent guesses passed before the first failure was recorded. Forty guesses
    // from one source, released together: exactly the ten of the account's budget are
    // verified, the other thirty are throttled unverified.
    let s = shop();
    s.register("jane", &["shoes"], "walnut cobbler lantern river");
    let auth = Arc::new(s.auth);
    let barrier = Arc::new(std::sync::Barrier::new(40));
    let threads: Vec<_> = (0..40)
        .map(|i| {
            let (auth, barrier) = (Arc::clone(&auth), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                auth.login_from(&acct("jane"), &pw(&format!("guess {i} of many")), "bot-0")
                    .expect("login")
            })
        })
        .collect();
    let decisions: Vec<LoginDecision> = threads
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    let checked = decisions
        .iter()
        .filter(|d| **d == LoginDecision::Rejected)
        .count();
    let throttled = decisions
        .iter()
        .filter(|d| matches!(d, LoginDecision::Throttled { .. }))
        .count();
    assert_eq!((checked, throttled), (10, 30), "{decisions:?}");
    // Past the account's limit a new source still gets one try (so that the customer
    // is not locked out by the bots), flagged.
    assert_eq!(
        auth.login_from(&acct("jane"), &pw("another guess"), "bot-1")
            .expect("login"),
        LoginDecision::Rejected
    );
    // A bot that failed tries again: it waits.
    assert!(matches!(
        auth.login_from(&acct("jane"), &pw("guess again"), "bot-0")
            .expect("login"),
        LoginDecision::Throttled { .. }
    ));
    // And jane, from a source of her own, with her password: a second signal, not a
    // session and not a refusal.
    assert!(matches!(
        auth.login_from(
            &acct("jane"),
            &pw("walnut cobbler lantern river"),
            "jane-home"
        )
        .expect("login"),
        LoginDecision::SecondSignalRequired { .. }
    ));
}

#[test]
fn anonymous_reset_requests_never_void_the_breach_notice_link() {
    // request_reset used to delete every unused token of the account, the campaign's
    // 72 h link included; account ids ride in every link, so one loop over ids voided a
    // whole campaign.
    let s = shop();
    for id in ["jane", "omar"] {
        s.register(id, &["shoes"], "walnut cobbler lantern river");
    }
    s.clock.advance(Duration::from_secs(60));
    let incident =
        Incident::declare(&*s.store, IncidentScope::All, s.clock.now(), "copied").expect("declare");
    let sent = Mutex::new(Vec::new());
    let notifier = |n: &Notice| -> Result<(), NotifyError> {
        sent.lock()
            .expect("lock")
            .push(n.link.expose_secret().to_owned());
        Ok(())
    };
    let links = links();
    Campaign::new(&*s.store, &links)
        .run(&incident, &notifier, CampaignOptions::new())
        .expect("campaign");
    // The attacker asks for resets of both accounts, again and again, from many sources.
    for round in 0..4 {
        for id in ["jane", "omar", "nobody"] {
            let _ = s
                .auth
                .request_reset_from(&acct(id), None, &format!("attacker-{round}"));
        }
    }
    for link in sent.lock().expect("lock").iter() {
        let token = ResetToken::from_link(link).expect("token");
        s.auth
            .redeem(
                &token,
                &pw("granite otter saffron bell"),
                &PasswordContext::new(),
            )
            .expect("the notice's link still works");
    }
}

#[test]
fn reset_requests_are_limited_per_account_and_per_source_for_everyone() {
    let s = shop();
    s.register("jane", &["shoes"], "walnut cobbler lantern river");
    for id in ["jane", "nobody"] {
        for i in 0..5 {
            assert!(
                s.auth
                    .request_reset_from(&acct(id), None, &format!("10.0.0.{i}"))
                    .is_ok(),
                "{id} request {i}"
            );
        }
        let sixth = s.auth.request_reset_from(&acct(id), None, "10.0.1.1");
        assert!(
            matches!(sixth, Err(Error::ResetThrottled { .. })),
            "{id}: {sixth:?}"
        );
    }
    // Per source: fifty requests for fifty different names, then the source is stopped.
    for i in 0..50 {
        let _ = s
            .auth
            .request_reset_from(&acct(&format!("name-{i}")), None, "198.51.100.7");
    }
    assert!(matches!(
        s.auth
            .request_reset_from(&acct("jane-again"), None, "198.51.100.7"),
        Err(Error::ResetThrottled { .. })
    ));
    // An hour later the account may ask again.
    s.clock.advance(Duration::from_secs(3600));
    assert!(
        s.auth
            .request_reset_from(&acct("jane"), None, "10.0.0.9")
            .expect("request")
            .is_some()
    );
}

#[test]
fn unknown_accounts_cost_a_store_write_that_does_not_grow() {
    let s = shop();
    s.register("jane", &["shoes"], "walnut cobbler lantern river");
    let unlimited = InMemoryRateLimiter::new(u32::MAX, u32::MAX, Duration::from_secs(1));
    let auth = s.auth.with_reset_rate_limiter(Arc::new(unlimited));
    let path = s._dir.path().join("customers.db");
    let rows = || -> i64 {
        rusqlite::Connection::open(&path)
            .expect("open")
            .query_row("SELECT count(*) FROM reset_tokens", [], |r| r.get(0))
            .expect("count")
    };
    assert_eq!(rows(), 0);
    for i in 0..2_000 {
        assert!(
            auth.request_reset(&acct(&format!("nobody-{i}")), None)
                .expect("request")
                .is_none()
        );
        s.clock.advance(Duration::from_millis(1));
    }
    let after_spray = rows();
    assert!(
        (1..=5).contains(&after_spray),
        "a write happened for each unknown name, and the rows stay few: {after_spray}"
    );
    // The decoy rows cannot be redeemed: no link can name their owner.
    assert!(
        auth.request_reset(&acct("jane"), None)
            .expect("request")
            .is_some()
    );
    assert_eq!(rows(), after_spray + 1);
}

/// A corpus holding one password; counts how often it is asked.
struct OneBreached {
    asked: std::sync::atomic::AtomicU32,
}

impl shopsafe::password::BreachedPasswords for OneBreached {
    fn times_seen(
        &self,
        digest: &shopsafe::password::PwnedDigest,
    ) -> Result<u64, shopsafe::password::BreachLookupError> {
        self.asked.fetch_add(1, SeqCst);
        let breached = shopsafe::password::PwnedDigest::of(b"granite otter saffron bell");
        Ok(if digest.as_bytes() == breached.as_bytes() {
            41
        } else {
            0
        })
    }
}

#[test]
fn the_breach_corpus_is_asked_at_sign_up_and_reset_and_never_at_login() {
    let s = shop();
    let corpus = Arc::new(OneBreached {
        asked: std::sync::atomic::AtomicU32::new(0),
    });
    let policy = shopsafe::password::AcceptancePolicy::single_factor()
        .with_breached_passwords(corpus.clone(), shopsafe::password::OnLookupFailure::Refuse);
    let auth = Authenticator::new(Arc::clone(&s.store), weak_hasher())
        .with_clock(s.clock.clone())
        .with_links(links())
        .with_policy(policy);
    let ctx = PasswordContext::new();
    let refused = auth.register(
        &acct("ann"),
        &[brand("shoes")],
        &pw("granite otter saffron bell"),
        &ctx,
    );
    assert!(
        matches!(
            refused,
            Err(Error::PasswordRejected(Rejection::Breached { times: 41 }))
        ),
        "{refused:?}"
    );
    auth.register(
        &acct("ann"),
        &[brand("shoes")],
        &pw("walnut cobbler lantern river"),
        &ctx,
    )
    .expect("register");
    let asked = corpus.asked.load(SeqCst);
    assert_eq!(asked, 2);
    for attempt in ["walnut cobbler lantern river", "granite otter saffron bell"] {
        let _ = auth
            .login_from(&acct("ann"), &pw(attempt), "ann")
            .expect("login");
    }
    assert_eq!(
        corpus.asked.load(SeqCst),
        asked,
        "login never asks the corpus"
    );
    let link = auth
        .request_reset(&acct("ann"), None)
        .expect("request")
        .expect("known");
    let token = ResetToken::from_link(link.expose_secret()).expect("token");
    let breached = auth.redeem(&token, &pw("granite otter saffron bell"), &ctx);
    assert!(
        matches!(
            breached,
            Err(Error::PasswordRejected(Rejection::Breached { .. }))
        ),
        "{breached:?}"
    );
    assert_eq!(
        auth.redeem(&token, &pw("juniper harbor velvet clock"), &ctx)
            .expect("the refusal left the token usable"),
        acct("ann")
    );
}

#[test]
fn a_right_password_that_needs_a_second_signal_costs_what_a_wrong_one_does() {
    // The stored hash is weaker than the policy, so a plain accepted login rehashes and
    // writes back. Under a second signal that extra work and write would tell a guesser
    // the password was right: none is done, and the hash stays as it was.
    let s = shop();
    s.register("jane", &["shoes"], "walnut cobbler lantern river");
    let stronger = Arc::new(Hasher::new(
        Params::insecure_for_tests(128, 2, 1).expect("valid test params"),
    ));
    let auth = Authenticator::new(Arc::clone(&s.store), stronger).with_clock(s.clock.clone());
    for i in 0..10 {
        let _ = auth
            .login_from(&acct("jane"), &pw(&format!("guess {i}")), "bot-0")
            .expect("login");
    }
    let before = s
        .store
        .load_credential(&acct("jane"))
        .expect("load")
        .expect("jane");
    let decision = auth
        .login_from(
            &acct("jane"),
            &pw("walnut cobbler lantern river"),
            "jane-home",
        )
        .expect("login");
    assert!(
        matches!(decision, LoginDecision::SecondSignalRequired { .. }),
        "{decision:?}"
    );
    let after = s
        .store
        .load_credential(&acct("jane"))
        .expect("load")
        .expect("jane");
    assert_eq!(after.hash.to_phc_string(), before.hash.to_phc_string());
    assert_eq!(after.generation, before.generation);
}
