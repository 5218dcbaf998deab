//! The rate-limiting hook of the login and reset paths, and a bounded in-memory default.
//!
//! An attempt is *reserved* before the password is looked at and *settled* after: the
//! reservation counts as a failure from the moment it is granted, so N concurrent guesses
//! cannot all pass a check that only counts failures once they are recorded, and a
//! guess whose future is dropped or whose thread panics stays counted (fail closed).
//!
//! One noun per file: the [`RateLimiter`] port (`limiter`), the limits every limiter here
//! enforces (`limits`, over the GCRA of `gcra`), the in-memory limiter (`memory`), the
//! limiter over a shared store (`store`) and that store's port (`throttle`).

mod gcra;
mod limiter;
mod limits;
mod memory;
mod store;
mod throttle;

pub use gcra::Rate;
pub use limiter::{Admission, AttemptOutcome, RateLimiter, Reservation};
pub use limits::{LOCKOUT_BACKOFF_BASE, LOCKOUT_BACKOFF_CAP};
pub use memory::InMemoryRateLimiter;
pub use store::StoreRateLimiter;
pub use throttle::{ThrottleAdjust, ThrottleStore};
