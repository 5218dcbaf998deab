//! Throttling shared through the store: every server (here: processes and handles) of a
//! deployment counts against one budget, and a restart forgets nothing.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

#[path = "support/guesses.rs"]
mod guesses;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use shopsafe::rotation::{Admission, AttemptOutcome, RateLimiter, StoreRateLimiter};
use shopsafe::store::sqlite::SqliteStore;
use shopsafe::store::{AccountId, ThrottleStore, Timestamp};

const CHILD: &str = "SHOPSAFE_THROTTLE_CHILD";
const WINDOW: Duration = Duration::from_secs(900);

fn limiter(path: &Path) -> StoreRateLimiter<Arc<SqliteStore>> {
    StoreRateLimiter::new(
        Arc::new(SqliteStore::open(path).expect("store")),
        10,
        1_000,
        WINDOW,
    )
}

/// [`guesses::unflagged_failures`] on the account `victim`.
fn guess(l: &StoreRateLimiter<Arc<SqliteStore>>, tag: &str, n: usize, now: Timestamp) -> usize {
    let victim = AccountId::new("victim").expect("id");
    guesses::unflagged_failures(l, &victim, tag, n, now)
}

const GO: &str = "SHOPSAFE_THROTTLE_GO";
const THREADS: usize = 4;

/// The child's half of `two_processes_on_one_file_share_one_budget`: not a test of its
/// own (it returns at once unless the parent started it). It opens its store, says it is
/// ready, waits for the parent's go (a file appearing), then guesses from 4 threads at
/// once, each with a store handle of its own, so that the two processes' transactions
/// overlap as much as they can.
#[test]
fn child_process_guesses() {
    let (Ok(path), Ok(go)) = (std::env::var(CHILD), std::env::var(GO)) else {
        return;
    };
    let limiters: Vec<_> = (0..THREADS).map(|_| limiter(Path::new(&path))).collect();
    println!("\nready");
    let go = Path::new(&go);
    while !go.exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let barrier = std::sync::Barrier::new(THREADS);
    let passed: usize = std::thread::scope(|s| {
        let handles: Vec<_> = limiters
            .iter()
            .enumerate()
            .map(|(t, l)| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    guess(
                        l,
                        &format!("p{}-t{t}", std::process::id()),
                        15,
                        Timestamp::from_millis(1_000_000),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).sum()
    });
    println!("\npassed={passed}");
}

#[test]
fn two_processes_on_one_file_share_one_budget() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("c.db");
    let go = dir.path().join("go");
    drop(SqliteStore::open(&path).expect("create"));
    let exe = std::env::current_exe().expect("test binary");
    let mut children: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "child_process_guesses",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD, &path)
                .env(GO, &go)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    // Both ready (stores open, threads about to start), then one go for both.
    let mut outputs: Vec<Vec<String>> = Vec::new();
    let mut readers = Vec::new();
    for child in &mut children {
        let mut reader = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut seen = Vec::new();
        loop {
            let mut line = String::new();
            assert!(reader.read_line(&mut line).expect("read") > 0, "child died");
            let ready = line.trim() == "ready";
            seen.push(line);
            if ready {
                break;
            }
        }
        outputs.push(seen);
        readers.push(reader);
    }
    std::fs::write(&go, b"go").expect("go");
    let passed: usize = children
        .into_iter()
        .zip(readers)
        .map(|(mut c, mut reader)| {
            let mut rest = String::new();
            std::io::Read::read_to_string(&mut reader, &mut rest).expect("output");
            assert!(c.wait().expect("child").success(), "{rest}");
            rest.lines()
                .find_map(|l| l.split("passed=").nth(1))
                .expect("the child's count")
                .trim()
                .parse::<usize>()
                .expect("a number")
        })
        .sum();
    assert_eq!(
        passed, 10,
        "120 guesses from two processes of four threads, one budget of 10"
    );
    // A restart (a new handle, a new limiter) remembers: still throttled.
    let l = limiter(&path);
    assert_eq!(
        guess(&l, "after-restart", 5, Timestamp::from_millis(1_000_000)),
        0
    );
}

#[test]
fn two_handles_share_one_budget_and_a_success_clears_it() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("c.db");
    let (a, b) = (limiter(&path), limiter(&path));
    let t0 = Timestamp::from_millis(5_000_000);
    let passed: usize = std::thread::scope(|s| {
        let ha = s.spawn(|| guess(&a, "a", 20, t0));
        let hb = s.spawn(|| guess(&b, "b", 20, t0));
        ha.join().expect("a") + hb.join().expect("b")
    });
    assert_eq!(passed, 10);
    let jane = AccountId::new("jane").expect("id");
    let Admission::Allowed(r) = a.reserve(&jane, "home", t0).expect("answer") else {
        panic!("jane's first attempt")
    };
    a.settle(r, AttemptOutcome::Success, t0).expect("settle");
    for _ in 0..10 {
        assert!(
            matches!(
                a.reserve(&jane, "home", t0).expect("answer"),
                Admission::Allowed(_)
            ),
            "a success gave jane her whole budget back"
        );
    }
}

#[test]
fn a_spray_of_sources_never_fails_open_and_the_table_shrinks_back() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("c.db")).expect("store"));
    // One failure keeps a source's row for 9 s (100 per 15 min).
    let l = StoreRateLimiter::new(Arc::clone(&store), 10, 100, WINDOW);
    let victim = AccountId::new("victim").expect("id");
    let mut on_victim = 0;
    let mut peak = 0;
    for i in 0..20_000i64 {
        // 1 ms apart: 20 s in all, so early rows expire while the spray goes on.
        let now = Timestamp::from_millis(10_000_000 + i);
        let account = if i % 100 == 0 {
            victim.clone()
        } else {
            AccountId::new(format!("u{}", i % 7)).expect("id")
        };
        if let Admission::Allowed(r) = l
            .reserve(&account, &format!("198.51.{}.{}", i / 256, i % 256), now)
            .expect("answer")
        {
            if account == victim && !r.second_signal_required() {
                on_victim += 1;
            }
            l.settle(r, AttemptOutcome::Failure, now).expect("settle");
        }
        if i % 1_000 == 0 {
            peak = peak.max(store.throttle_rows().expect("rows"));
        }
    }
    assert!(on_victim <= 10 + 1, "the victim's budget held: {on_victim}");
    // At most one row per live source (9 s at one a millisecond: 9,000) and one per
    // (account, source) pair that failed in the last 15 minutes (each attempt here):
    // bounded by the attempts of one lockout horizon, never by anything else.
    assert!(peak <= 9_000 + 20_000 + 16, "{peak} rows at the peak");
    // Long after (past the 15-minute horizon), writes sweep the expired rows away, 8
    // per write (each write here adds one account row of its own).
    let later = Timestamp::from_millis(20_000_000);
    for i in 0..4_000 {
        let _ = l
            .reserve(&AccountId::new(format!("late{i}")).expect("id"), "", later)
            .expect("answer");
    }
    let left = store.throttle_rows().expect("rows");
    assert!(
        left <= 4_000 + 16,
        "{left} rows left: the spray's rows are gone"
    );
}

// ---------------------------------------------------------------------------------------
// What a flagged attempt (a new source on a locked account) may leave behind: the same
// state whatever its password, never a lifted lock; and a per-account reset limit that
// no number of sources gets around. Each runs on the in-memory and the store limiter.

mod oracles {
    use std::sync::Arc;
    use std::time::Duration;

    use shopsafe::password::{Hasher, Params, Password, PasswordContext};
    use shopsafe::rotation::{
        Admission, AttemptOutcome, Authenticator, BrandLinks, InMemoryRateLimiter, LoginDecision,
        ManualClock, RateLimiter, ResetUrlTemplate, StoreRateLimiter,
    };
    use shopsafe::store::sqlite::SqliteStore;
    use shopsafe::store::{AccountId, BrandId, Timestamp};

    const RIGHT: &str = "walnut cobbler lantern river";
    const WINDOW: Duration = Duration::from_secs(900);

    struct Shop {
        _dir: tempfile::TempDir,
        clock: Arc<ManualClock>,
        auth: Authenticator<SqliteStore>,
    }

    /// Jane's shop, with a login limiter (10 per account, 100 per source in 15 min) and a
    /// reset limiter (5 per account, 50 per source an hour), both in memory or both in
    /// the store.
    fn shop(in_store: bool) -> Shop {
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(SqliteStore::open(dir.path().join("c.db")).expect("store"));
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_700_000_000_000)));
        let (login, reset): (Arc<dyn RateLimiter>, Arc<dyn RateLimiter>) = if in_store {
            (
                Arc::new(StoreRateLimiter::new(Arc::clone(&store), 10, 100, WINDOW)),
                Arc::new(StoreRateLimiter::new(
                    Arc::clone(&store),
                    5,
                    50,
                    Duration::from_secs(3600),
                )),
            )
        } else {
            (
                Arc::new(InMemoryRateLimiter::new(10, 100, WINDOW)),
                Arc::new(InMemoryRateLimiter::new(5, 50, Duration::from_secs(3600))),
            )
        };
        let hasher = Arc::new(Hasher::new(
            Params::insecure_for_tests(64, 1, 1).expect("test params"),
        ));
        let links = BrandLinks::new().brand(
            BrandId::new("shoes").expect("brand"),
            ResetUrlTemplate::new("https://shoes.example/r/{token}").expect("template"),
        );
        let auth = Authenticator::new(Arc::clone(&store), hasher)
            .with_clock(clock.clone())
            .with_links(links)
            .with_rate_limiter(login)
            .with_reset_rate_limiter(reset);
        auth.register(
            &jane(),
            &[BrandId::new("shoes").expect("brand")],
            &Password::new(RIGHT),
            &PasswordContext::new(),
        )
        .expect("register");
        Shop {
            _dir: dir,
            clock,
            auth,
        }
    }

    fn jane() -> AccountId {
        AccountId::new("jane").expect("id")
    }

    impl Shop {
        fn login(&self, password: &str, source: &str) -> LoginDecision {
            self.auth
                .login_from(&jane(), &Password::new(password), source)
                .expect("login")
        }

        /// Ten wrong passwords from one source: the account is locked.
        fn lock(&self) {
            for i in 0..10 {
                assert_eq!(
                    self.login(&format!("wrong guess {i}"), "attacker"),
                    LoginDecision::Rejected
                );
            }
        }
    }

    /// The answers a source gets on a locked account: its first try, then three more
    /// (one second apart), with the same password each time.
    fn answers(s: &Shop, password: &str, source: &str) -> Vec<String> {
        (0..4)
            .map(|i| {
                if i > 0 {
                    s.clock.advance(Duration::from_secs(1));
                }
                // The variant and its wait; the stamp of a right password is not compared.
                match s.login(password, source) {
                    LoginDecision::SecondSignalRequired { .. } => "flagged".to_owned(),
                    LoginDecision::Rejected => "flagged".to_owned(),
                    LoginDecision::Throttled { retry_after } => {
                        format!("throttled {}", retry_after.as_secs())
                    }
                    other => format!("{other:?}"),
                }
            })
            .collect()
    }

    #[test]
    fn a_flagged_right_password_and_a_wrong_one_get_the_same_answers_after() {
        for in_store in [false, true] {
            // Two identical shops, one guesser each: one types the right password, the
            // other a wrong one, from a new source.
            let (right, wrong) = (shop(in_store), shop(in_store));
            right.lock();
            wrong.lock();
            assert!(matches!(
                right.login(RIGHT, "new-source"),
                LoginDecision::SecondSignalRequired { .. }
            ));
            assert_eq!(
                wrong.login("not it either", "new-source"),
                LoginDecision::Rejected
            );
            // What follows must not tell the two apart (the old code let the right
            // password's source try again at once, and throttled the wrong one's).
            let a = answers(&right, RIGHT, "new-source");
            let b = answers(&wrong, "not it either", "new-source");
            assert_eq!(a, b, "in_store={in_store}");
            assert!(a[0].starts_with("throttled"), "{a:?}");
        }
    }

    #[test]
    fn a_flagged_right_login_does_not_lift_the_lock() {
        for in_store in [false, true] {
            let s = shop(in_store);
            s.lock();
            assert!(matches!(
                s.login(RIGHT, "second-source"),
                LoginDecision::SecondSignalRequired { .. }
            ));
            // A third source with the right password: still flagged, not a session (the
            // old code had given the lock's interval back and answered Accepted).
            assert!(
                matches!(
                    s.login(RIGHT, "third-source"),
                    LoginDecision::SecondSignalRequired { .. }
                ),
                "in_store={in_store}"
            );
        }
    }

    #[test]
    fn a_flagged_attempt_not_tried_gives_back_only_what_it_took() {
        // Hashing answered Overloaded (which an attacker can cause) on a locked account:
        // the reservation is settled NotTried, and must not unlock the account.
        type Make = Box<dyn Fn(&std::path::Path) -> Arc<dyn RateLimiter>>;
        let limiters: [Make; 2] = [
            Box::new(|_| Arc::new(InMemoryRateLimiter::new(10, 100, WINDOW))),
            Box::new(|dir| {
                let store = Arc::new(SqliteStore::open(dir.join("t.db")).expect("store"));
                Arc::new(StoreRateLimiter::new(store, 10, 100, WINDOW))
            }),
        ];
        for make in &limiters {
            let dir = tempfile::tempdir().expect("dir");
            let l = make(dir.path());
            let now = Timestamp::from_millis(1_000_000);
            for i in 0..10 {
                let Admission::Allowed(r) = l.reserve(&jane(), "attacker", now).expect("answer")
                else {
                    panic!("within the burst: {i}")
                };
                l.settle(r, AttemptOutcome::Failure, now).expect("settle");
            }
            for i in 0..20 {
                let Admission::Allowed(r) = l
                    .reserve(&jane(), &format!("flood-{i}"), now)
                    .expect("answer")
                else {
                    panic!("a new source may try")
                };
                assert!(r.second_signal_required(), "locked: {i}");
                l.settle(r, AttemptOutcome::NotTried, now).expect("settle");
            }
            let Admission::Allowed(r) = l.reserve(&jane(), "customer", now).expect("answer") else {
                panic!("a new source may try")
            };
            assert!(
                r.second_signal_required(),
                "twenty Overloaded attempts gave back an interval they never took"
            );
            // And the same source, once its NotTried is settled, is where it was.
            l.settle(r, AttemptOutcome::NotTried, now).expect("settle");
            let Admission::Allowed(r) = l.reserve(&jane(), "customer", now).expect("answer") else {
                panic!("a source with nothing counted may try again")
            };
            l.settle(r, AttemptOutcome::Failure, now).expect("settle");
        }
    }

    #[test]
    fn the_per_account_reset_limit_holds_across_sixty_sources() {
        for in_store in [false, true] {
            let s = shop(in_store);
            // Links issued for requests from sources `from`..`to`, one each.
            let links_from = |from: usize, to: usize| {
                (from..to)
                    .filter(|i| {
                        matches!(
                            s.auth
                                .request_reset_from(&jane(), None, &format!("203.0.113.{i}")),
                            Ok(Some(_))
                        )
                    })
                    .count()
            };
            let links = links_from(0, 60);
            assert_eq!(
                links, 5,
                "in_store={in_store}: 5 an hour, whatever the sources"
            );
            // Twelve minutes on (one interval of 5 an hour), one more, from anywhere.
            s.clock.advance(Duration::from_secs(12 * 60));
            let links = links_from(60, 120);
            assert_eq!(links, 1, "in_store={in_store}");
        }
    }

    #[test]
    fn limiters_of_two_scopes_on_one_store_share_no_counter() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(SqliteStore::open(dir.path().join("t.db")).expect("store"));
        let login = StoreRateLimiter::new(Arc::clone(&store), 3, 100, WINDOW).with_scope("login");
        let reset = StoreRateLimiter::new(Arc::clone(&store), 3, 100, WINDOW).with_scope("reset");
        let now = Timestamp::from_millis(1_000_000);
        let fails = |l: &dyn RateLimiter| {
            (0..5)
                .filter(|_| match l.reserve(&jane(), "", now).expect("answer") {
                    Admission::Allowed(r) => {
                        l.settle(r, AttemptOutcome::Failure, now).expect("settle");
                        true
                    }
                    Admission::Throttled { .. } => false,
                })
                .count()
        };
        assert_eq!(fails(&login), 3);
        assert_eq!(
            fails(&reset),
            3,
            "the login scope's failures are not the reset's"
        );
        let again = StoreRateLimiter::new(Arc::clone(&store), 3, 100, WINDOW).with_scope("login");
        assert_eq!(fails(&again), 0, "one scope on one store is one budget");
    }
}
