//! The rate-limiting hook of the login and reset paths, and a bounded in-memory default.
//!
//! An attempt is *reserved* before the password is looked at and *settled* after: the
//! reservation counts as a failure from the moment it is granted, so N concurrent guesses
//! cannot all pass a check that only counts failures once they are recorded, and a
//! guess whose future is dropped or whose thread panics stays counted (fail closed).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::gcra::{Rate, nanos};
use crate::kernel::{AccountId, Timestamp};
use crate::store::{StoreError, ThrottleAdjust, ThrottleStore};

/// Decides whether an attempt may proceed, counting it before it runs. Implement it over
/// a shared store when several servers share the load; the default counts in process
/// memory.
///
/// Called with the account name *as typed*, whether or not it exists, and on every path
/// (unknown account, wrong password, compromised credential alike), so throttling says
/// nothing about which accounts exist or are compromised.
///
/// # Errors
/// A limiter that cannot answer (its store is down) returns an error; the caller then
/// refuses the attempt: a limiter fails closed.
pub trait RateLimiter: Send + Sync {
    /// Reserves one attempt for `account` from `source`: it counts against both limits
    /// at once, as a failure, until it is settled otherwise.
    ///
    /// # Errors
    /// The limiter could not answer: refuse the attempt.
    fn reserve(
        &self,
        account: &AccountId,
        source: &str,
        now: Timestamp,
    ) -> Result<Admission, StoreError>;

    /// Settles a reservation once the attempt's outcome is known.
    ///
    /// # Errors
    /// The limiter could not record it.
    fn settle(
        &self,
        reservation: Reservation,
        outcome: AttemptOutcome,
        now: Timestamp,
    ) -> Result<(), StoreError>;
}

/// What [`RateLimiter::reserve`] answered.
#[must_use = "an admission that is not looked at lets every attempt through"]
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead; settle the reservation afterwards.
    Allowed(Reservation),
    /// Too many attempts for this account or source.
    Throttled {
        /// When to retry.
        retry_after: Duration,
    },
}

/// One reserved attempt: already counted as a failure. Settle it with
/// [`RateLimiter::settle`]; one never settled stays a failure.
#[must_use = "settle the reservation, or it counts as a failure"]
#[derive(Debug, PartialEq, Eq)]
pub struct Reservation {
    account: AccountId,
    source: String,
    at: Timestamp,
    second_signal: bool,
    /// The counters (bits in [`Slots`] order) that the reservation advanced: settling it
    /// as not tried gives back these and no other.
    taken: u8,
}

impl Reservation {
    /// A reservation for `account` from `source`, made at `at` (for limiters of your own).
    ///
    /// It records no counter as taken: settled as [`AttemptOutcome::NotTried`] by one of
    /// this crate's limiters, it gives nothing back (fail closed).
    pub fn new(account: AccountId, source: &str, at: Timestamp) -> Self {
        Self {
            account,
            source: source.to_owned(),
            at,
            second_signal: false,
            taken: 0,
        }
    }

    /// The same reservation, flagged (or not) as needing a second signal.
    pub fn with_second_signal(mut self, required: bool) -> Self {
        self.second_signal = required;
        self
    }

    /// Whether the account is past its failure limit and this source has no failure on
    /// it: the attempt may go on, but a right password should get a second signal (a
    /// CAPTCHA, a mailed code) before a session
    /// ([`LoginDecision::SecondSignalRequired`](super::LoginDecision::SecondSignalRequired)).
    #[must_use]
    pub fn second_signal_required(&self) -> bool {
        self.second_signal
    }

    /// The account as typed.
    #[must_use]
    pub fn account(&self) -> &AccountId {
        &self.account
    }

    /// The source.
    #[must_use]
    pub fn source(&self) -> &str {
        &self.source
    }

    /// When it was made.
    #[must_use]
    pub fn at(&self) -> Timestamp {
        self.at
    }
}

/// How a reserved attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// The password was right: the account's failures are cleared and this attempt no
    /// longer counts against the source. On a reservation that
    /// [requires a second signal](Reservation::second_signal_required) a success counts
    /// as a [`Failure`](Self::Failure): what a flagged attempt leaves behind must not say
    /// whether its password was right, nor lift the lock.
    Success,
    /// Wrong password, unknown or disabled account, compromised credential: it stays
    /// counted.
    Failure,
    /// Nothing was checked (hashing answered `Overloaded`, the store was down before the
    /// password was looked at): the counters the reservation advanced are given back, and
    /// no other (a locked account's, which a flagged reservation never took, stays).
    NotTried,
}

/// The limits a limiter enforces: per account, per source, and a site-wide ceiling on
/// attempts (each a [`Rate`], checked with GCRA), and the lockout of an account past its
/// limit. The in-memory limiter and the store limiter apply the same ones the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) account: Rate,
    pub(crate) source: Rate,
    pub(crate) global: Option<Rate>,
}

/// The TATs of one attempt's keys: account, source (when known), the site-wide one, and
/// the pair (account, source): its failures and how long it must wait.
pub(crate) type Slots = [Option<i64>; 4];

/// The first wait of a source that failed on a locked account; it doubles with each of
/// its failures there.
pub const LOCKOUT_BACKOFF_BASE: Duration = Duration::from_secs(1);
/// The longest such wait.
pub const LOCKOUT_BACKOFF_CAP: Duration = Duration::from_secs(15 * 60);

fn ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// A pair's slot: its failures `k` (at most 63) and the end of its wait, kept until the
/// wait ends plus the cap (so the count outlives one wait), in one number:
/// `(until + cap)` with its low 6 bits holding `k`.
fn pair_decode(v: Option<i64>) -> (i64, i64) {
    v.map_or((0, i64::MIN), |v| {
        (v & 63, (v & !63).saturating_sub(ns(LOCKOUT_BACKOFF_CAP)))
    })
}

fn pair_encode(k: i64, until: i64) -> Option<i64> {
    (k > 0).then(|| (until.saturating_add(ns(LOCKOUT_BACKOFF_CAP)) & !63) | k.min(63))
}

/// One more failure of the pair at `now`: the wait grows from 1 s, doubling, to 15 min.
fn pair_bump(v: Option<i64>, now: i64) -> Option<i64> {
    let (k, _) = pair_decode(v);
    let k = (k + 1).min(63);
    let wait = ns(LOCKOUT_BACKOFF_BASE)
        .saturating_mul(1i64 << (k - 1).min(40))
        .min(ns(LOCKOUT_BACKOFF_CAP));
    pair_encode(k, now.saturating_add(wait))
}

/// What [`Limits::reserve`] decided, as the [`RateLimiter`] answers it.
fn admission(
    counted: Result<Counted, Duration>,
    account: &AccountId,
    source: &str,
    now: Timestamp,
) -> Admission {
    match counted {
        Ok(Counted {
            second_signal,
            taken,
        }) => Admission::Allowed(Reservation {
            taken,
            ..Reservation::new(account.clone(), source, now).with_second_signal(second_signal)
        }),
        Err(retry_after) => Admission::Throttled { retry_after },
    }
}

/// What [`Limits::reserve`] counted: whether the attempt is flagged, and which slots it
/// advanced (bits in [`Slots`] order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Counted {
    pub(crate) second_signal: bool,
    pub(crate) taken: u8,
}

/// How a reservation is settled by this crate's limiters: a flagged attempt's success
/// counts as a failure, so that a right and a wrong password on a locked account leave
/// the same state (and the same next answer) behind, and a flagged login never lifts
/// the lock.
fn effective(reservation: &Reservation, outcome: AttemptOutcome) -> AttemptOutcome {
    if reservation.second_signal && outcome == AttemptOutcome::Success {
        AttemptOutcome::Failure
    } else {
        outcome
    }
}

impl Limits {
    /// Counts an attempt at `now` (ns) against every key it touches, or says how long to
    /// wait (the longest wait of the keys that refuse it; nothing is counted then).
    ///
    /// The source and site-wide limits are hard. The account's is a lockout that spares
    /// the customer: past it, a source that has failed on the account waits for the
    /// account's next interval and at least its own backoff (1 s, doubling per failure
    /// there, at most 15 min), while a source with no failure on it may still try,
    /// flagged: `Ok(true)` asks for a second signal if the password is right. Without a
    /// source every attempt past the limit waits.
    pub(crate) fn reserve(
        &self,
        slots: &mut Slots,
        has_source: bool,
        now: i64,
    ) -> Result<Counted, Duration> {
        let mut next = *slots;
        let mut taken = 0u8;
        let mut wait: Option<Duration> = None;
        let mut refuse = |w: Duration| wait = Some(wait.map_or(w, |v: Duration| v.max(w)));
        let hard = [(1, has_source.then_some(self.source)), (2, self.global)];
        for (i, rate) in hard {
            let Some(rate) = rate else { continue };
            match rate.admit(slots[i], now) {
                Ok(t) => {
                    next[i] = Some(t);
                    taken |= 1 << i;
                }
                Err(w) => refuse(w),
            }
        }
        let second_signal = match self.account.admit(slots[0], now) {
            Ok(t) => {
                next[0] = Some(t);
                taken |= 1;
                false
            }
            Err(w) if !has_source => {
                refuse(w);
                false
            }
            Err(w) => {
                // Locked. A source that failed here waits for the account and at least
                // its own backoff; a source that never failed here may try, flagged.
                let (k, until) = pair_decode(slots[3]);
                if k > 0 {
                    let backoff =
                        Duration::from_nanos(u64::try_from(until.saturating_sub(now)).unwrap_or(0));
                    refuse(w.max(backoff));
                }
                true
            }
        };
        if let Some(w) = wait {
            return Err(w);
        }
        // Every attempt of a source on an account counts in the pair (its row lives
        // until its wait ends plus 15 min), so the sources that locked it back off.
        if has_source {
            next[3] = pair_bump(slots[3], now);
            taken |= 1 << 3;
        }
        *slots = next;
        Ok(Counted {
            second_signal,
            taken,
        })
    }

    /// What a success does to each slot, none of it depending on the slot's value: the
    /// account and the pair are cleared, the source and the site-wide ceiling get their
    /// attempt back.
    pub(crate) fn on_success(&self, has_source: bool) -> [Option<ThrottleAdjust>; 4] {
        [
            Some(ThrottleAdjust::Clear),
            has_source.then(|| ThrottleAdjust::GiveBack(self.source.interval_ns())),
            self.global
                .map(|rate| ThrottleAdjust::GiveBack(rate.interval_ns())),
            Some(ThrottleAdjust::Clear),
        ]
    }

    /// Settles a counted attempt: a failure stays counted; one not tried gives back what
    /// its reservation took (`taken`, bits in [`Slots`] order) and nothing else; a
    /// success clears the account (and the pair) and gives the rest back.
    pub(crate) fn settle(
        &self,
        slots: &mut Slots,
        has_source: bool,
        taken: u8,
        outcome: AttemptOutcome,
        now: i64,
    ) {
        let took = |i: u8| taken & (1 << i) != 0;
        match outcome {
            AttemptOutcome::Failure => {}
            AttemptOutcome::Success => {
                for (slot, adjust) in slots.iter_mut().zip(self.on_success(has_source)) {
                    if let Some(adjust) = adjust {
                        *slot = adjust.apply(*slot, now);
                    }
                }
            }
            AttemptOutcome::NotTried => {
                let [account, source, global, pair] = slots;
                if took(0) {
                    *account = self.account.give_back(*account, now);
                }
                if took(3) {
                    let (k, until) = pair_decode(*pair);
                    *pair = pair_encode(k - 1, until);
                }
                if has_source && took(1) {
                    *source = self.source.give_back(*source, now);
                }
                if let Some(rate) = self.global.filter(|_| took(2)) {
                    *global = rate.give_back(*global, now);
                }
            }
        }
    }
}

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
/// use shopsafe::store::{AccountId, Timestamp};
///
/// let limiter = InMemoryRateLimiter::new(2, 100, std::time::Duration::from_secs(60));
/// let (jane, now) = (AccountId::new("jane")?, Timestamp::from_millis(0));
/// for _ in 0..2 {
///     let Admission::Allowed(r) = limiter.reserve(&jane, "10.0.0.1", now)? else { panic!() };
///     limiter.settle(r, AttemptOutcome::Failure, now)?;
/// }
/// assert!(matches!(limiter.reserve(&jane, "10.0.0.1", now)?, Admission::Throttled { .. }));
/// # Ok::<(), shopsafe::store::StoreError>(())
/// ```
#[derive(Debug)]
pub struct InMemoryRateLimiter {
    limits: Limits,
    capacity: usize,
    state: Mutex<State>,
}

const DEFAULT_CAPACITY: usize = 100_000;

type Key = [u8; 16];

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

fn key(scope: &str, kind: u8, text: &str) -> Key {
    let mut hash = Sha256::new();
    if !scope.is_empty() {
        // Keys of the default scope are the ones stored before scopes existed.
        hash.update(b"\0scope\0");
        hash.update(scope.as_bytes());
        hash.update([0]);
    }
    let digest = hash
        .chain_update([kind])
        .chain_update(text.as_bytes())
        .finalize();
    let mut k = [0u8; 16];
    k.copy_from_slice(&digest[..16]);
    k
}

/// The keys of an attempt, in [`Slots`] order; `None` for a slot it does not touch.
pub(crate) fn attempt_keys(
    scope: &str,
    account: &AccountId,
    source: &str,
    global: bool,
) -> [Option<Key>; 4] {
    [
        Some(key(scope, b'a', account.as_str())),
        (!source.is_empty()).then(|| key(scope, b's', source)),
        global.then(|| key(scope, b'g', "")),
        (!source.is_empty()).then(|| key(scope, b'p', &format!("{}\0{source}", account.as_str()))),
    ]
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

/// Rows of expired keys a store limiter deletes per write.
const SWEEP_PER_WRITE: usize = 8;

/// The same limits as [`InMemoryRateLimiter`] (GCRA per account, per source, an optional
/// site-wide ceiling), kept in a [`ThrottleStore`] that every server of a deployment
/// shares: with N login servers on one database an attacker gets one budget, not N, and
/// a restart forgets nothing.
///
/// Each reservation and each settlement is one transaction over the attempt's keys (two
/// or three rows, locked). Keys are 16-byte SHA-256 prefixes of the account name or the
/// source, never the names themselves. A key's row disappears once its time has passed
/// (its state is then the same as no state): each write deletes up to 8 such rows, so a
/// spray of a million distinct sources leaves a table that shrinks back as fast as it
/// grew, and the limiter never stops counting. A store that cannot answer fails the
/// attempt (closed).
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use shopsafe::rotation::{Admission, RateLimiter, StoreRateLimiter};
/// use shopsafe::store::{AccountId, Timestamp};
///
/// let dir = tempfile::tempdir()?;
/// let store = Arc::new(shopsafe::store::sqlite::SqliteStore::open(dir.path().join("c.db"))?);
/// let limiter = StoreRateLimiter::new(Arc::clone(&store), 10, 100, Duration::from_secs(900));
/// let Admission::Allowed(_r) = limiter.reserve(&AccountId::new("jane")?, "10.0.0.1", Timestamp::now())? else {
///     panic!("a first attempt passes")
/// };
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct StoreRateLimiter<S> {
    store: S,
    limits: Limits,
    scope: String,
}

impl<S: ThrottleStore> StoreRateLimiter<S> {
    /// `per_account` and `per_source` attempts in `window`, kept in `store`.
    #[must_use]
    pub fn new(store: S, per_account: u32, per_source: u32, window: Duration) -> Self {
        Self {
            store,
            limits: Limits {
                account: Rate::new(per_account, window),
                source: Rate::new(per_source, window),
                global: None,
            },
            scope: String::new(),
        }
    }

    /// A site-wide ceiling on attempts (every account and source together).
    #[must_use]
    pub fn with_global(mut self, rate: Rate) -> Self {
        self.limits.global = Some(rate);
        self
    }

    /// Counts in a scope of its own (`"login"`, `"reset"`, `"sign-up"`): limiters of
    /// different scopes on one store never share a counter, while limiters of one scope
    /// on every server share them all. The default scope is the empty one; give every
    /// other limiter on the same store its own.
    #[must_use]
    pub fn with_scope(mut self, scope: &str) -> Self {
        self.scope = scope.to_owned();
        self
    }

    /// Runs `f` on the attempt's slots inside one store transaction.
    fn with_slots<T>(
        &self,
        account: &AccountId,
        source: &str,
        now: Timestamp,
        f: impl FnOnce(&mut Slots) -> T,
    ) -> Result<T, StoreError> {
        let keys = attempt_keys(&self.scope, account, source, self.limits.global.is_some());
        let present: Vec<[u8; 16]> = keys.iter().flatten().copied().collect();
        let mut f = Some(f);
        let mut out = None;
        self.store.update_throttle(
            &present,
            nanos(now.as_millis()),
            SWEEP_PER_WRITE,
            &mut |values| {
                let mut slots: Slots = [None; 4];
                let mut stored = values.iter();
                for (slot, k) in slots.iter_mut().zip(&keys) {
                    if k.is_some() {
                        *slot = stored.next().copied().flatten();
                    }
                }
                if let Some(f) = f.take() {
                    out = Some(f(&mut slots));
                }
                let mut back = values.iter_mut();
                for (slot, k) in slots.iter().zip(&keys) {
                    if k.is_some()
                        && let Some(v) = back.next()
                    {
                        *v = *slot;
                    }
                }
            },
        )?;
        out.ok_or(StoreError::Corrupt {
            what: "throttle update that never ran",
        })
    }
}

impl<S: ThrottleStore> RateLimiter for StoreRateLimiter<S> {
    fn reserve(
        &self,
        account: &AccountId,
        source: &str,
        now: Timestamp,
    ) -> Result<Admission, StoreError> {
        let counted = self.with_slots(account, source, now, |slots| {
            self.limits
                .reserve(slots, !source.is_empty(), nanos(now.as_millis()))
        })?;
        Ok(admission(counted, account, source, now))
    }

    fn settle(
        &self,
        reservation: Reservation,
        outcome: AttemptOutcome,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let outcome = effective(&reservation, outcome);
        if outcome == AttemptOutcome::Failure {
            return Ok(()); // Counted when reserved: nothing to write.
        }
        if outcome == AttemptOutcome::Success {
            // Nothing to read first: one write (one round trip on PostgreSQL).
            let keys = attempt_keys(
                &self.scope,
                &reservation.account,
                &reservation.source,
                self.limits.global.is_some(),
            );
            let adjustments: Vec<([u8; 16], ThrottleAdjust)> = keys
                .iter()
                .zip(self.limits.on_success(!reservation.source.is_empty()))
                .filter_map(|(key, adjust)| Some(((*key)?, adjust?)))
                .collect();
            return self
                .store
                .adjust_throttle(&adjustments, nanos(now.as_millis()));
        }
        self.with_slots(&reservation.account, &reservation.source, now, |slots| {
            self.limits.settle(
                slots,
                !reservation.source.is_empty(),
                reservation.taken,
                outcome,
                nanos(now.as_millis()),
            );
        })
    }
}

#[cfg(test)]
mod tests {
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
