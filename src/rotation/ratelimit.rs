//! The rate-limiting hook of the login path, and a simple in-memory default.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::store::{AccountId, Timestamp};

/// Decides whether a login attempt may proceed. Implement it over Redis or the like when
/// several servers share the load; the default counts in process memory.
///
/// Called with the account name *as typed*, whether or not it exists, so throttling does
/// not reveal which accounts exist.
pub trait RateLimiter: Send + Sync {
    /// `Some(retry_after)` to refuse this attempt now.
    fn check(&self, account: &AccountId, source: &str, now: Timestamp) -> Option<Duration>;

    /// Records an attempt's outcome.
    fn record(&self, account: &AccountId, source: &str, success: bool, now: Timestamp);
}

/// Fixed-window failure counters per account and per source, in memory.
///
/// Defaults: 10 failures per account and 100 per source in 15 minutes (NIST SP 800-63B
/// §3.2.2 asks for no more than 100 consecutive failures per account). A success clears
/// the account's counter. At most 100,000 keys are tracked: past that, expired windows
/// are dropped, and new keys are not tracked until there is room (the limiter fails open
/// on memory rather than refusing everyone).
///
/// # Examples
/// ```
/// use shopsafe::rotation::{InMemoryRateLimiter, RateLimiter};
/// use shopsafe::store::{AccountId, Timestamp};
///
/// let limiter = InMemoryRateLimiter::new(2, 100, std::time::Duration::from_secs(60));
/// let (jane, now) = (AccountId::new("jane")?, Timestamp::from_millis(0));
/// limiter.record(&jane, "10.0.0.1", false, now);
/// limiter.record(&jane, "10.0.0.1", false, now);
/// assert!(limiter.check(&jane, "10.0.0.1", now).is_some());
/// # Ok::<(), shopsafe::store::StoreError>(())
/// ```
#[derive(Debug)]
pub struct InMemoryRateLimiter {
    per_account: u32,
    per_source: u32,
    window: Duration,
    windows: Mutex<HashMap<Key, Window>>,
}

const MAX_KEYS: usize = 100_000;

#[derive(Debug, Hash, PartialEq, Eq)]
enum Key {
    Account(String),
    Source(String),
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Timestamp,
    failures: u32,
}

impl InMemoryRateLimiter {
    /// Limits per window.
    #[must_use]
    pub fn new(per_account: u32, per_source: u32, window: Duration) -> Self {
        Self {
            per_account,
            per_source,
            window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn retry_after(&self, w: Option<&Window>, limit: u32, now: Timestamp) -> Option<Duration> {
        let w = w?;
        let ends = w.start.plus(self.window);
        (w.failures >= limit && now < ends).then(|| {
            Duration::from_millis(u64::try_from(ends.as_millis() - now.as_millis()).unwrap_or(0))
        })
    }
}

impl Default for InMemoryRateLimiter {
    fn default() -> Self {
        Self::new(10, 100, Duration::from_secs(15 * 60))
    }
}

impl RateLimiter for InMemoryRateLimiter {
    fn check(&self, account: &AccountId, source: &str, now: Timestamp) -> Option<Duration> {
        let map = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let a = self.retry_after(
            map.get(&Key::Account(account.as_str().to_owned())),
            self.per_account,
            now,
        );
        let s = self.retry_after(
            map.get(&Key::Source(source.to_owned())),
            self.per_source,
            now,
        );
        a.max(s)
    }

    fn record(&self, account: &AccountId, source: &str, success: bool, now: Timestamp) {
        let mut map = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let account_key = Key::Account(account.as_str().to_owned());
        if success {
            map.remove(&account_key);
            return;
        }
        if map.len() >= MAX_KEYS {
            let window = self.window;
            map.retain(|_, w| now < w.start.plus(window));
        }
        for key in [account_key, Key::Source(source.to_owned())] {
            let room = map.len() < MAX_KEYS;
            match map.get_mut(&key) {
                Some(w) if now < w.start.plus(self.window) => {
                    w.failures = w.failures.saturating_add(1)
                }
                Some(w) => {
                    *w = Window {
                        start: now,
                        failures: 1,
                    }
                }
                None if room => {
                    map.insert(
                        key,
                        Window {
                            start: now,
                            failures: 1,
                        },
                    );
                }
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_and_source_windows_throttle_and_expire() {
        let l = InMemoryRateLimiter::new(3, 5, Duration::from_secs(60));
        let t0 = Timestamp::from_millis(1_000_000);
        let a = AccountId::new("a").expect("valid");
        for _ in 0..3 {
            assert!(l.check(&a, "s1", t0).is_none());
            l.record(&a, "s1", false, t0);
        }
        assert_eq!(l.check(&a, "s1", t0), Some(Duration::from_secs(60)));
        assert!(
            l.check(&a, "s1", t0.plus(Duration::from_secs(61)))
                .is_none(),
            "window expired"
        );
        // The source limit applies across accounts.
        for i in 0..5 {
            l.record(
                &AccountId::new(format!("b{i}")).expect("valid"),
                "s2",
                false,
                t0,
            );
        }
        assert!(
            l.check(&AccountId::new("fresh").expect("valid"), "s2", t0)
                .is_some()
        );
        // A success clears the account's counter.
        l.record(&a, "s3", true, t0);
        assert!(l.check(&a, "s3", t0).is_none());
    }
}
