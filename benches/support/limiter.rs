//! One login's worth of rate limiting, for the benches that price it on each store.

use shopsafe::rotation::{Admission, AttemptOutcome, RateLimiter};
use shopsafe::store::{AccountId, Timestamp};

/// Reserves and settles (a success) the `n`th attempt: a new account and a new source
/// each time, so no limit is ever reached.
pub(crate) fn reserve_and_settle(limiter: &dyn RateLimiter, n: u64) {
    let account = AccountId::new(format!("acct-{n}")).expect("id");
    let now = Timestamp::now();
    let source = format!("10.{}.{}.{}", n >> 16 & 255, n >> 8 & 255, n & 255);
    let Admission::Allowed(r) = limiter.reserve(&account, &source, now).expect("answer") else {
        panic!("a new account and source pass")
    };
    limiter
        .settle(r, AttemptOutcome::Success, now)
        .expect("settle");
}
