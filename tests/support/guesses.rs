//! Wrong passwords against one account from many sources, for the shared-throttle tests.

use shopsafe::rotation::{Admission, AttemptOutcome, RateLimiter};
use shopsafe::store::{AccountId, Timestamp};

/// Tries `n` wrong passwords on `victim`, each from its own source `<tag>-<i>`; returns
/// how many the limiter let through unflagged.
///
/// Past the limit a new source still tries, flagged for a second signal: only unflagged
/// attempts could log in directly, and those are the budget.
pub(crate) fn unflagged_failures(
    l: &dyn RateLimiter,
    victim: &AccountId,
    tag: &str,
    n: usize,
    now: Timestamp,
) -> usize {
    (0..n)
        .filter(|i| {
            match l
                .reserve(victim, &format!("{tag}-{i}"), now)
                .expect("answer")
            {
                Admission::Allowed(r) => {
                    let plain = !r.second_signal_required();
                    l.settle(r, AttemptOutcome::Failure, now).expect("settle");
                    plain
                }
                Admission::Throttled { .. } => false,
            }
        })
        .count()
}
