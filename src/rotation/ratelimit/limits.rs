//! The limits every limiter of this crate enforces (GCRA per account, per source and
//! site-wide, the account/source pair's back-off), decided over an attempt's slots, and
//! the keys those slots are stored under.

use std::time::Duration;

use sha2::{Digest, Sha256};

use super::gcra::Rate;
use super::limiter::{Admission, AttemptOutcome, Reservation};
use super::throttle::ThrottleAdjust;
use crate::kernel::{AccountId, Timestamp};

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

pub(super) fn ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// A pair's slot: its failures `k` (at most 63) and the end of its wait, kept until the
/// wait ends plus the cap (so the count outlives one wait), in one number:
/// `(until + cap)` with its low 6 bits holding `k`.
pub(super) fn pair_decode(v: Option<i64>) -> (i64, i64) {
    v.map_or((0, i64::MIN), |v| {
        (v & 63, (v & !63).saturating_sub(ns(LOCKOUT_BACKOFF_CAP)))
    })
}

pub(super) fn pair_encode(k: i64, until: i64) -> Option<i64> {
    (k > 0).then(|| (until.saturating_add(ns(LOCKOUT_BACKOFF_CAP)) & !63) | k.min(63))
}

/// One more failure of the pair at `now`: the wait grows from 1 s, doubling, to 15 min.
pub(super) fn pair_bump(v: Option<i64>, now: i64) -> Option<i64> {
    let (k, _) = pair_decode(v);
    let k = (k + 1).min(63);
    let wait = ns(LOCKOUT_BACKOFF_BASE)
        .saturating_mul(1i64 << (k - 1).min(40))
        .min(ns(LOCKOUT_BACKOFF_CAP));
    pair_encode(k, now.saturating_add(wait))
}

/// What [`Limits::reserve`] decided, as the [`RateLimiter`] answers it.
pub(super) fn admission(
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
pub(super) fn effective(reservation: &Reservation, outcome: AttemptOutcome) -> AttemptOutcome {
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

pub(super) type Key = [u8; 16];

pub(super) fn key(scope: &str, kind: u8, text: &str) -> Key {
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
