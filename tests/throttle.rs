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

/// The child's half of `two_processes_on_one_file_share_one_budget`: not a test of its
/// own (it returns at once unless the parent started it).
#[test]
fn child_process_guesses() {
    let Ok(path) = std::env::var(CHILD) else {
        return;
    };
    let l = limiter(Path::new(&path));
    let passed = guess(
        &l,
        &format!("p{}", std::process::id()),
        30,
        Timestamp::from_millis(1_000_000),
    );
    println!("\npassed={passed}");
}

#[test]
fn two_processes_on_one_file_share_one_budget() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("c.db");
    drop(SqliteStore::open(&path).expect("create"));
    let exe = std::env::current_exe().expect("test binary");
    let children: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "child_process_guesses",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD, &path)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let passed: usize = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().expect("child");
            assert!(out.status.success());
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .find_map(|l| l.split("passed=").nth(1))
                .expect("the child's count")
                .trim()
                .parse::<usize>()
                .expect("a number")
        })
        .sum();
    assert_eq!(
        passed, 10,
        "60 guesses from two processes, one budget of 10"
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
