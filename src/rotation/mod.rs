//! Forced rotation after a compromise: incidents, login decisions, reset tokens and the
//! breach-day notification campaign.
//!
//! - [`Incident::declare`](crate::store::Incident::declare) marks every credential set
//!   at or before a cutoff (all, one brand, or a listed set of accounts) as compromised: O(1),
//!   nothing is rewritten.
//! - [`Authenticator::login`] answers [`LoginDecision::ResetRequired`] for those without
//!   looking at the password, `Accepted` (with a write-back rehash) or `Rejected` for the
//!   rest; unknown accounts cost the same decoy verify.
//! - [`Campaign::run`] sends one [`Notice`] with a reset link per affected account,
//!   resumable after a crash.
//! - [`Authenticator::redeem`] turns a [`ResetToken`] into a new password: policy,
//!   history, single use, every old session and token dead.
//!
//! The README's "Operating on breach day" walks through the calls in order.

mod authenticator;
mod campaign;
mod clock;
mod error;
mod gcra;
mod incident;
mod ratelimit;
mod token;

pub use authenticator::{
    Authenticator, DEFAULT_HISTORY, INCIDENT_TOKEN_TTL, LoginDecision, RESET_REQUESTS_PER_HOUR,
    ResetReason, SELF_SERVICE_TOKEN_TTL,
};
pub use campaign::{
    Campaign, CampaignOptions, CampaignReport, DEFAULT_CHECKPOINT_EVERY, Delivery, Notice,
    NoticeId, Notifier, NotifyError, Progress, REUSE_ADVICE, Undeliverable,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::Error;
pub use gcra::Rate;
pub use ratelimit::{
    Admission, AttemptOutcome, InMemoryRateLimiter, LOCKOUT_BACKOFF_BASE, LOCKOUT_BACKOFF_CAP,
    RateLimiter, Reservation, StoreRateLimiter,
};
pub use token::{BrandLinks, ResetLink, ResetToken, ResetUrlTemplate, SECRET_CHARS};
