//! The limiter port of the login and reset paths: reserve an attempt before the password
//! is looked at, settle it after.

use std::time::Duration;

use crate::kernel::{AccountId, Timestamp};
use crate::persist::StoreError;

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
    pub(super) account: AccountId,
    pub(super) source: String,
    pub(super) at: Timestamp,
    pub(super) second_signal: bool,
    /// The counters (bits in `Slots` order) that the reservation advanced: settling it
    /// as not tried gives back these and no other.
    pub(super) taken: u8,
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
    /// ([`LoginDecision::SecondSignalRequired`](crate::rotation::LoginDecision::SecondSignalRequired)).
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
