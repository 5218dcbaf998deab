//! The limiter over a [`ThrottleStore`](super::throttle::ThrottleStore) that every server
//! of a deployment shares.

use std::time::Duration;

use super::gcra::{Rate, nanos};
use super::limiter::{Admission, AttemptOutcome, RateLimiter, Reservation};
use super::limits::{Limits, Slots, admission, attempt_keys, effective};
use super::throttle::{ThrottleAdjust, ThrottleStore};
use crate::kernel::{AccountId, Timestamp};
use crate::persist::StoreError;

/// Rows of expired keys a store limiter deletes per write.
const SWEEP_PER_WRITE: usize = 8;

/// The same limits as [`InMemoryRateLimiter`](super::InMemoryRateLimiter) (GCRA per account, per source, an optional
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
/// use shopsafe::kernel::{AccountId, Timestamp};
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
