//! Forced rotation after a compromise: incidents, login decisions, reset tokens and the
//! breach-day notification campaign.
//!
//! - [`Incident::declare`](crate::rotation::Incident::declare) marks every credential set
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
//! [`guide::breach_day`](crate::guide::breach_day) walks through the calls in order.

mod authenticator;
mod bearer;
mod campaign;
mod campaigns;
mod clock;
mod credentials;
mod error;
mod incidents;
mod notifier;
mod ratelimit;
mod reset_token;
mod session;
mod sessions;
mod tokens;

pub use authenticator::{
    Authenticator, DEFAULT_HISTORY, INCIDENT_TOKEN_TTL, LoginDecision, RESET_REQUESTS_PER_HOUR,
    ResetReason, SELF_SERVICE_TOKEN_TTL,
};
pub use bearer::{DeviceToken, SessionToken};
pub use campaign::{Campaign, CampaignOptions, CampaignReport, DEFAULT_CHECKPOINT_EVERY, Progress};
pub use campaigns::{CampaignId, CampaignState, CampaignStore, ClaimedAccount, Undelivered};
pub use clock::{Clock, ManualClock, SystemClock};
pub use credentials::{CredentialFlags, CredentialRecord, CredentialStore, SecurityStamp};
pub use error::{Error, NotifyError};
pub use incidents::{Incident, IncidentId, IncidentScope, IncidentStore};
pub use notifier::{Delivery, Notice, NoticeId, Notifier, REUSE_ADVICE, Undeliverable};
pub use ratelimit::{
    Admission, AttemptOutcome, InMemoryRateLimiter, LOCKOUT_BACKOFF_BASE, LOCKOUT_BACKOFF_CAP,
    Rate, RateLimiter, Reservation, StoreRateLimiter, ThrottleAdjust, ThrottleStore,
};
pub use reset_token::{BrandLinks, ResetLink, ResetToken, ResetUrlTemplate, SECRET_CHARS};
pub use session::{Remembered, SessionPolicy, Sessions, coarse_agent};
pub use sessions::{DeviceRecord, DeviceUse, SessionId, SessionRecord, SessionStore};
pub use tokens::{
    RedeemOutcome, Redemption, ResetTokenStore, SELF_SERVICE_LIVE, TokenPurpose, TokenRecord,
};
