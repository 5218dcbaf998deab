//! `tracing` events at the library's decisions (feature `tracing`; without it every
//! function here is empty and compiles away).
//!
//! Each event has a target of its own under `shopsafe::` and fixed field names, so a
//! team can filter and alert on them. No event carries a password, a token, a card
//! number or a customer's personal data; the account id is left out unless
//! [`include_account_ids`] turned it on (an id is a pseudonym, but one that joins
//! across logs).
//!
//! | target | level | fields | when |
//! |---|---|---|---|
//! | `shopsafe::login` | info | `outcome` (`accepted`, `rejected`, `reset_required`, `second_signal`, `throttled`), `account`? | every login decision |
//! | `shopsafe::throttle` | warn | `flow` (`login`, `reset`), `retry_after_ms` | an attempt refused by a limiter |
//! | `shopsafe::incident` | warn | `incident`, `scope` (`all`, `brand`, `accounts`), `cutoff_ms` | an incident declared |
//! | `shopsafe::campaign` | info | `campaign`, `sent`, `undeliverable`, `state` (`running`, `complete`, `stopped`) | each checkpoint and the end |
//! | `shopsafe::reset` | info | `step` (`issued`, `redeemed`), `purpose` (`self_service`, `incident`, ``), `account`? | a reset link issued, a token redeemed |
//! | `shopsafe::session` | info | `how` (`one`, `account`, `incident`, `everyone`, `rotated`, `purged`, `device_reuse`), `count` | sessions ended |
//! | `shopsafe::card` | warn | `caller` (the grant's: give grants a service or role name, not a person's login), `purpose` | a card number revealed (after its audit record) |
//! | `shopsafe::erasure` | warn | `customers`, `keys_destroyed` (never the account) | customers erased |
//! | `shopsafe::web` | error | `what`, `cause` | an error the answer table maps to 500 or 503 |

use core::sync::atomic::{AtomicBool, Ordering};

static ACCOUNT_IDS: AtomicBool = AtomicBool::new(false);

/// Whether events carry the `account` field (off by default). Process-wide, as a log
/// level is.
pub fn include_account_ids(on: bool) {
    ACCOUNT_IDS.store(on, Ordering::Relaxed);
}

#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
fn account(id: &str) -> &str {
    if ACCOUNT_IDS.load(Ordering::Relaxed) {
        id
    } else {
        ""
    }
}

/// Emits at every call site the same way; `$level` is a `tracing` macro.
macro_rules! event {
    ($level:ident, $target:literal, $($field:tt)*) => {
        #[cfg(feature = "tracing")]
        tracing::$level!(target: $target, $($field)*);
    };
}

#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn login(outcome: &'static str, account_id: &str) {
    event!(
        info,
        "shopsafe::login",
        outcome,
        account = account(account_id)
    );
}

#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn throttled(flow: &'static str, retry_after: core::time::Duration) {
    let retry_after_ms = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX);
    event!(warn, "shopsafe::throttle", flow, retry_after_ms);
}

#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn incident_declared(
    incident: &dyn core::fmt::Display,
    scope: &'static str,
    cutoff_ms: i64,
) {
    event!(warn, "shopsafe::incident", incident = %incident, scope, cutoff_ms);
}

#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn campaign(campaign: i64, sent: u64, undeliverable: u64, state: &'static str) {
    event!(
        info,
        "shopsafe::campaign",
        campaign,
        sent,
        undeliverable,
        state
    );
}

#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn reset(step: &'static str, purpose: &'static str, account_id: &str) {
    event!(
        info,
        "shopsafe::reset",
        step,
        purpose,
        account = account(account_id)
    );
}

#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn sessions_ended(how: &'static str, count: u64) {
    event!(info, "shopsafe::session", how, count);
}

#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn card_revealed(caller: &str, purpose: &str) {
    event!(warn, "shopsafe::card", caller, purpose);
}

/// Never with the account: an erased customer's id in the logs would outlive the erasure.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn erased(customers: u64, keys_destroyed: u64) {
    event!(warn, "shopsafe::erasure", customers, keys_destroyed);
}

#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
#[cfg_attr(not(feature = "axum"), allow(dead_code))]
pub(crate) fn internal_error(what: &'static str, cause: &dyn core::fmt::Display) {
    event!(error, "shopsafe::web", what, cause = %cause);
}
