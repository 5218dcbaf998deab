//! The bounded in-memory limiter: one process's default.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::gcra::{Rate, nanos};
use super::limiter::{Admission, AttemptOutcome, RateLimiter, Reservation};
use super::limits::{Key, Limits, Slots, admission, attempt_keys, effective};
use crate::kernel::{AccountId, Timestamp};
use crate::persist::StoreError;

/// Per-account and per-source limits (GCRA: a burst, then a steady rate, no window
/// edge), in memory, bounded.
///
/// Defaults: 10 attempts per account and 100 per source in 15 minutes (NIST SP 800-63B
/// §3.2.2 asks for no more than 100 consecutive failures per account): after a burst of
/// 10 failures an account gets one more attempt every 90 s. A success clears the
/// account. An empty source means "unknown": only the account is limited.
/// [`InMemoryRateLimiter::with_global`] adds a site-wide ceiling.
///
/// Memory is bounded: keys are stored as 16-byte digests (a source string of any length
/// costs the same), and at most `capacity` keys (100,000 by default, about 8 MiB) are
/// tracked. When full, the key touched longest ago is evicted: every new key is still
/// counted, so a spray of sources never turns counting off. Evicting a quiet key
/// forgets its count; to push a key out, an attacker must make `capacity` other
/// attempts first, each of which costs the server a hash (the per-source limit and the
/// hashing limiter bound those). Several servers: use the store limiter instead, or each
/// server counts alone.
///
/// # Examples
/// ```
/// use shopsafe::rotation::{Admission, AttemptOutcome, InMemoryRateLimiter, RateLimiter};
/// use shopsafe::kernel::{AccountId, Timestamp};
///
/// let limiter = InMemoryRateLimiter::new(2, 100, std::time::Duration::from_secs(60));
/// let (jane, now) = (AccountId::new("jane")?, Timestamp::from_millis(0));
/// for _ in 0..2 {
///     let Admission::Allowed(r) = limiter.reserve(&jane, "10.0.0.1", now)? else { panic!() };
///     limiter.settle(r, AttemptOutcome::Failure, now)?;
/// }
/// assert!(matches!(limiter.reserve(&jane, "10.0.0.1", now)?, Admission::Throttled { .. }));
/// # Ok::<(), shopsafe::persist::StoreError>(())
/// ```
#[derive(Debug)]
pub struct InMemoryRateLimiter {
    limits: Limits,
    capacity: usize,
    state: Mutex<State>,
}

const DEFAULT_CAPACITY: usize = 100_000;

#[derive(Debug, Default)]
struct State {
    tats: HashMap<Key, Entry>,
    order: VecDeque<(u64, Key)>,
    touches: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    tat: i64,
    touched: u64,
}

impl State {
    /// The stored TAT of `k`, marking it touched (and making room for it).
    fn get(&mut self, k: Key, capacity: usize) -> Option<i64> {
        self.touches += 1;
        let touched = self.touches;
        if !self.tats.contains_key(&k) {
            return None;
        }
        self.order.push_back((touched, k));
        self.compact(capacity);
        let e = self.tats.get_mut(&k)?;
        e.touched = touched;
        Some(e.tat)
    }

    /// Stores `k`'s TAT (`None` forgets it); a stored key goes to the back of the
    /// eviction order.
    fn put(&mut self, k: Key, tat: Option<i64>, capacity: usize) {
        match tat {
            Some(tat) => {
                if !self.tats.contains_key(&k) {
                    while self.tats.len() >= capacity.max(1) && self.evict_oldest() {}
                }
                self.touches += 1;
                let touched = self.touches;
                self.tats.insert(k, Entry { tat, touched });
                self.order.push_back((touched, k));
                self.compact(capacity);
            }
            None => {
                self.tats.remove(&k);
            }
        }
    }

    /// Evicts the key touched longest ago; false when there is none to evict.
    fn evict_oldest(&mut self) -> bool {
        while let Some((touched, k)) = self.order.pop_front() {
            if self.tats.get(&k).is_some_and(|e| e.touched == touched) {
                self.tats.remove(&k);
                return true;
            }
        }
        false
    }

    /// Drops stale order entries once they outnumber the live ones, so the queue stays
    /// within a small multiple of the key count.
    fn compact(&mut self, capacity: usize) {
        if self.order.len() > 2 * capacity.max(self.tats.len()) + 16 {
            let tats = &self.tats;
            self.order
                .retain(|(touched, k)| tats.get(k).is_some_and(|e| e.touched == *touched));
        }
    }

    /// Runs `f` on the slots of `keys`, then stores what it left.
    fn with_slots<T>(
        &mut self,
        keys: &[Option<Key>; 4],
        capacity: usize,
        f: impl FnOnce(&mut Slots) -> T,
    ) -> T {
        let mut slots: Slots = [None; 4];
        for (slot, k) in slots.iter_mut().zip(keys) {
            if let Some(k) = k {
                *slot = self.get(*k, capacity);
            }
        }
        let before = slots;
        let out = f(&mut slots);
        for ((k, new), old) in keys.iter().zip(slots).zip(before) {
            if let Some(k) = k
                && (new != old || new.is_some())
            {
                self.put(*k, new, capacity);
            }
        }
        out
    }
}

impl InMemoryRateLimiter {
    /// Limits per account and per source: `per_account` and `per_source` attempts in
    /// `window` (a burst of that many, then one per `window / limit`).
    #[must_use]
    pub fn new(per_account: u32, per_source: u32, window: Duration) -> Self {
        Self {
            limits: Limits {
                account: Rate::new(per_account, window),
                source: Rate::new(per_source, window),
                global: None,
            },
            capacity: DEFAULT_CAPACITY,
            state: Mutex::new(State::default()),
        }
    }

    /// A site-wide ceiling on attempts (every account and source together).
    #[must_use]
    pub fn with_global(mut self, rate: Rate) -> Self {
        self.limits.global = Some(rate);
        self
    }

    /// How many keys (accounts and sources together) to track at most.
    #[must_use]
    pub fn with_capacity(mut self, keys: usize) -> Self {
        self.capacity = keys.max(2);
        self
    }

    /// How many keys are tracked now.
    #[must_use]
    pub fn tracked(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tats
            .len()
    }
}

impl Default for InMemoryRateLimiter {
    fn default() -> Self {
        Self::new(10, 100, Duration::from_secs(15 * 60))
    }
}

impl RateLimiter for InMemoryRateLimiter {
    fn reserve(
        &self,
        account: &AccountId,
        source: &str,
        now: Timestamp,
    ) -> Result<Admission, StoreError> {
        let keys = attempt_keys("", account, source, self.limits.global.is_some());
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // Counted now, before anything is checked, under the same lock as the check.
        let counted = state.with_slots(&keys, self.capacity, |slots| {
            self.limits
                .reserve(slots, !source.is_empty(), nanos(now.as_millis()))
        });
        Ok(admission(counted, account, source, now))
    }

    fn settle(
        &self,
        reservation: Reservation,
        outcome: AttemptOutcome,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let keys = attempt_keys(
            "",
            &reservation.account,
            &reservation.source,
            self.limits.global.is_some(),
        );
        let outcome = effective(&reservation, outcome);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.with_slots(&keys, self.capacity, |slots| {
            self.limits.settle(
                slots,
                !reservation.source.is_empty(),
                reservation.taken,
                outcome,
                nanos(now.as_millis()),
            );
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::limits::LOCKOUT_BACKOFF_CAP;
    use super::*;

    fn reserve(l: &InMemoryRateLimiter, a: &AccountId, s: &str, now: Timestamp) -> Admission {
        l.reserve(a, s, now).expect("in-memory limiters answer")
    }

    fn fail(l: &InMemoryRateLimiter, a: &AccountId, s: &str, now: Timestamp) {
        if let Admission::Allowed(r) = reserve(l, a, s, now) {
            l.settle(r, AttemptOutcome::Failure, now).expect("settle");
        }
    }

    #[test]
    fn account_and_source_windows_throttle_and_expire() {
        let l = InMemoryRateLimiter::new(3, 5, Duration::from_secs(60));
        let t0 = Timestamp::from_millis(1_000_000);
        let a = AccountId::new("a").expect("valid");
        for _ in 0..3 {
            fail(&l, &a, "s1", t0);
        }
        // Three in 60 s: the next one after an interval of 20 s (GCRA), not at the end
        // of a window.
        assert_eq!(
            reserve(&l, &a, "s1", t0),
            Admission::Throttled {
                retry_after: Duration::from_secs(20)
            }
        );
        assert!(
            matches!(
                reserve(&l, &a, "s1", t0.plus(Duration::from_secs(61))),
                Admission::Allowed(_)
            ),
            "window expired"
        );
        // The source limit applies across accounts.
        for i in 0..5 {
            fail(
                &l,
                &AccountId::new(format!("b{i}")).expect("valid"),
                "s2",
                t0,
            );
        }
        assert!(matches!(
            reserve(&l, &AccountId::new("fresh").expect("valid"), "s2", t0),
            Admission::Throttled { .. }
        ));
        // A success clears the account's counter.
        let b = AccountId::new("b").expect("valid");
        fail(&l, &b, "s3", t0);
        fail(&l, &b, "s3", t0);
        let Admission::Allowed(r) = reserve(&l, &b, "s3", t0) else {
            panic!("third attempt allowed")
        };
        l.settle(r, AttemptOutcome::Success, t0).expect("settle");
        for _ in 0..3 {
            assert!(matches!(reserve(&l, &b, "s3", t0), Admission::Allowed(_)));
        }
    }

    #[test]
    fn failures_just_before_and_just_after_a_window_edge_do_not_all_pass() {
        // A fixed window of 15 minutes let 10 failures through at 14:59 and 10 more at
        // 15:00; GCRA lets the second ten through one per 90 s.
        let l = InMemoryRateLimiter::new(10, 1_000, Duration::from_secs(900));
        let a = AccountId::new("victim").expect("valid");
        let edge = Timestamp::from_millis(900_000);
        let mut passed = 0;
        for (i, at) in (0..10)
            .map(|_| Timestamp::from_millis(899_000))
            .chain((0..10).map(|_| edge))
            .enumerate()
        {
            if let Admission::Allowed(r) = reserve(&l, &a, &format!("s{i}"), at)
                && !r.second_signal_required()
            {
                passed += 1;
                l.settle(r, AttemptOutcome::Failure, at).expect("settle");
            }
        }
        assert_eq!(passed, 10);
        // A site-wide ceiling holds across accounts and sources.
        let g = InMemoryRateLimiter::new(10, 100, Duration::from_secs(900))
            .with_global(Rate::new(50, Duration::from_secs(60)));
        let t0 = Timestamp::from_millis(0);
        let allowed = (0..200)
            .filter(|i| {
                let a = AccountId::new(format!("user{i}")).expect("valid");
                matches!(
                    reserve(&g, &a, &format!("10.0.{}.{}", i / 256, i % 256), t0),
                    Admission::Allowed(_)
                )
            })
            .count();
        assert_eq!(allowed, 50);
    }

    #[test]
    fn an_unknown_source_is_not_one_source_for_everyone() {
        let l = InMemoryRateLimiter::new(3, 5, Duration::from_secs(60));
        let t0 = Timestamp::from_millis(0);
        for i in 0..50 {
            let a = AccountId::new(format!("user-{i}")).expect("valid");
            assert!(
                matches!(reserve(&l, &a, "", t0), Admission::Allowed(_)),
                "{i}"
            );
        }
        let a = AccountId::new("user-0").expect("valid");
        fail(&l, &a, "", t0);
        fail(&l, &a, "", t0);
        assert!(matches!(
            reserve(&l, &a, "", t0),
            Admission::Throttled { .. }
        ));
    }

    #[test]
    fn concurrent_reservations_cannot_all_pass() {
        // Reservations made before any is settled count at once: the limit holds even
        // when every attempt is still being verified.
        let l = InMemoryRateLimiter::new(10, 1_000, Duration::from_secs(60));
        let a = AccountId::new("victim").expect("valid");
        let t0 = Timestamp::from_millis(0);
        let granted: Vec<_> = (0..100)
            .filter_map(|i| match reserve(&l, &a, &format!("s{i}"), t0) {
                Admission::Allowed(r) => Some(r),
                Admission::Throttled { .. } => None,
            })
            .collect();
        // Past the limit, each new source still gets its try, flagged: a right password
        // there needs a second signal before any session.
        let (plain, flagged): (Vec<_>, Vec<_>) =
            granted.iter().partition(|r| !r.second_signal_required());
        assert_eq!((plain.len(), flagged.len()), (10, 90));
    }

    #[test]
    fn a_locked_account_makes_failing_sources_back_off_and_lets_a_new_one_try() {
        let l = InMemoryRateLimiter::new(3, 1_000, Duration::from_secs(60));
        let a = AccountId::new("victim").expect("valid");
        let t0 = Timestamp::from_millis(0);
        for _ in 0..3 {
            fail(&l, &a, "attacker", t0);
        }
        // The attacker waits the account's interval (20 s), then longer and longer.
        let mut waits = Vec::new();
        let mut now = t0;
        for _ in 0..16 {
            match reserve(&l, &a, "attacker", now) {
                Admission::Throttled { retry_after } => {
                    waits.push(retry_after.as_secs());
                    now = now.plus(retry_after);
                }
                Admission::Allowed(r) => {
                    l.settle(r, AttemptOutcome::Failure, now).expect("settle");
                }
            }
        }
        assert!(waits.windows(2).all(|w| w[0] <= w[1]), "{waits:?}");
        assert!(waits.iter().any(|&w| w >= 64), "exponential: {waits:?}");
        assert!(
            waits.iter().all(|&w| w <= LOCKOUT_BACKOFF_CAP.as_secs()),
            "capped: {waits:?}"
        );
        // The customer, from home (no failure there): through, flagged.
        let Admission::Allowed(r) = reserve(&l, &a, "home", now) else {
            panic!("the customer is not locked out by the attacker")
        };
        assert!(r.second_signal_required());
        // Without a source, past the limit: refused.
        assert!(matches!(
            reserve(&l, &a, "", now),
            Admission::Throttled { .. }
        ));
    }

    #[test]
    fn threads_racing_on_one_account_get_exactly_the_limit() {
        let l = std::sync::Arc::new(InMemoryRateLimiter::new(10, 1_000, Duration::from_secs(60)));
        let a = AccountId::new("victim").expect("valid");
        let granted = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for t in 0..8 {
                let (l, a, granted) = (&l, &a, &granted);
                scope.spawn(move || {
                    for i in 0..50 {
                        let now = Timestamp::from_millis(0);
                        if let Admission::Allowed(r) = reserve(l, a, &format!("{t}-{i}"), now) {
                            if !r.second_signal_required() {
                                granted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            }
                            // Verifying takes a while; settling comes late.
                            std::thread::yield_now();
                            l.settle(r, AttemptOutcome::Failure, now).expect("settle");
                        }
                    }
                });
            }
        });
        assert_eq!(granted.load(std::sync::atomic::Ordering::SeqCst), 10);
    }

    #[test]
    fn a_reservation_not_tried_is_given_back() {
        let l = InMemoryRateLimiter::new(2, 100, Duration::from_secs(60));
        let a = AccountId::new("a").expect("valid");
        let t0 = Timestamp::from_millis(0);
        for _ in 0..10 {
            let Admission::Allowed(r) = reserve(&l, &a, "s", t0) else {
                panic!("released reservations do not count")
            };
            l.settle(r, AttemptOutcome::NotTried, t0).expect("settle");
        }
        // A dropped (never settled) reservation stays counted.
        let Admission::Allowed(_dropped) = reserve(&l, &a, "s", t0) else {
            panic!("allowed")
        };
        fail(&l, &a, "s", t0);
        assert!(matches!(
            reserve(&l, &a, "s", t0),
            Admission::Throttled { .. }
        ));
    }

    #[test]
    fn a_spray_of_a_million_sources_never_turns_counting_off() {
        let l = InMemoryRateLimiter::new(10, 100, Duration::from_secs(900));
        let victim = AccountId::new("victim").expect("valid");
        let t0 = Timestamp::from_millis(0);
        let long = "x".repeat(4096);
        let mut allowed_on_victim = 0;
        for i in 0..1_000_000u32 {
            // Every source new (and some huge): the old limiter stopped tracking new keys
            // at 100,000 and then let every new source through.
            let source = if i % 1000 == 0 {
                format!("{long}{i}")
            } else {
                format!("203.0.{}.{}", i / 256, i % 256)
            };
            let account = if i % 100 == 0 {
                victim.clone()
            } else {
                AccountId::new(format!("user-{}", i % 7)).expect("valid")
            };
            if let Admission::Allowed(r) = reserve(&l, &account, &source, t0) {
                if account == victim && !r.second_signal_required() {
                    allowed_on_victim += 1;
                }
                l.settle(r, AttemptOutcome::Failure, t0).expect("settle");
            }
            if i % 100_000 == 0 {
                assert!(l.tracked() <= DEFAULT_CAPACITY, "{}", l.tracked());
            }
        }
        assert_eq!(
            allowed_on_victim, 10,
            "the victim's limit held through the spray"
        );
        assert!(l.tracked() <= DEFAULT_CAPACITY);
        let state = l.state.lock().expect("lock");
        assert!(
            state.order.len() <= 2 * DEFAULT_CAPACITY + 16,
            "{}",
            state.order.len()
        );
    }
}
