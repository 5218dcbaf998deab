//! Async entry points for tokio services (feature `tokio`).
//!
//! Every shopsafe call blocks: a login runs argon2id (15–25 ms of CPU at the OWASP
//! parameters) and the stores do file or network I/O. Called on a runtime worker thread,
//! that stalls every other request on the thread, and the sync PostgreSQL client panics
//! there ("Cannot start a runtime from within a runtime"). The types here run that work
//! off the runtime:
//!
//! - Hashing (login, register, reset, [`AsyncHasher`]) waits *asynchronously* for a slot of
//!   a [`HashPool`], sized from the hasher's memory budget and the cores, then runs on
//!   tokio's blocking threads. 10,000 pending logins are 10,000 small futures, not
//!   threads; a caller that waits longer than the hasher's timeout gets the same
//!   `Overloaded` as the sync API (answer 503).
//! - Store calls with no hashing (session checks, reset requests, the vault) run on the
//!   blocking threads without a slot.
//! - Campaigns and retention runs are background tasks ([`spawn_campaign`],
//!   [`spawn_retention`]) with progress on a `watch` channel; a campaign stops between
//!   notices when asked and resumes where it stopped.
//!
//! The sync API is unchanged and the store traits stay synchronous: these wrappers take
//! the same stores.
//!
//! # Cancellation
//! A request future dropped while it waits for a slot takes nothing. Dropped after the
//! work started, the work runs to its end on its blocking thread (a login's rate-limit
//! settle and rehash, a redemption's transaction) and then gives the slot back: no slot,
//! memory permit or half-written row is left behind, and the client simply never sees
//! the answer.
//!
//! # Runtime
//! Needs a tokio runtime with the time driver (`#[tokio::main]` has it). Build
//! PostgreSQL stores off the runtime too: [`blocking`]`(|| PgStore::connect(options))`.

mod auth;
mod incidents;
mod pool;
mod seal;
mod sessions;
mod tasks;
mod vault;

pub use auth::{AsyncAuthenticator, AsyncHasher};
pub use incidents::AsyncIncidents;
pub use pool::{HashPool, blocking};
pub use seal::AsyncSealer;
pub use sessions::AsyncSessions;
pub use tasks::{CampaignEnd, CampaignTask, RetentionTask, spawn_campaign, spawn_retention};
pub use vault::AsyncVault;

#[cfg(all(test, feature = "sqlite"))]
mod tests;
