//! Which callers may reveal card numbers, for which purposes, and how fast.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Why a card number is revealed: goes into the audit record.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Purpose {
    /// To charge the card.
    Charge,
    /// To refund to the card.
    Refund,
    /// To move the card to another processor or vault.
    Migrate,
}

impl Purpose {
    /// The purpose's name in the audit trail.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Charge => "charge",
            Self::Refund => "refund",
            Self::Migrate => "migrate",
        }
    }
}

/// The vault's grant policy, fixed when the vault is built
/// ([`Vault::with_grant_policy`](super::Vault::with_grant_policy)): which callers may
/// detokenize for which purposes, and how many numbers a minute this vault process
/// reveals at most. A detokenize outside it is refused before any lookup, and recorded
/// in the audit trail as refused.
///
/// # Examples
/// ```
/// use shopsafe::card::{GrantPolicy, Purpose};
///
/// let policy = GrantPolicy::deny_all()
///     .allow("checkout", &[Purpose::Charge])
///     .allow("support-refunds", &[Purpose::Refund])
///     .max_per_minute(600);
/// assert!(policy.admits("checkout", &Purpose::Charge));
/// assert!(!policy.admits("checkout", &Purpose::Refund));
/// assert!(!policy.admits("intern-laptop", &Purpose::Charge));
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct GrantPolicy {
    /// `None`: any caller, any purpose.
    allowed: Option<Vec<(String, Vec<Purpose>)>>,
    per_minute: Option<u32>,
}

impl GrantPolicy {
    /// Any caller, any purpose, no rate limit: what a vault without a policy does (the
    /// 0.1 behaviour). Prefer [`deny_all`](Self::deny_all) with the callers you have.
    pub fn permissive() -> Self {
        Self {
            allowed: None,
            per_minute: None,
        }
    }

    /// No caller may reveal anything until [`allow`](Self::allow) names it.
    pub fn deny_all() -> Self {
        Self {
            allowed: Some(Vec::new()),
            per_minute: None,
        }
    }

    /// Lets `caller` reveal numbers for `purposes` (added to what it had).
    pub fn allow(mut self, caller: &str, purposes: &[Purpose]) -> Self {
        let allowed = self.allowed.get_or_insert_with(Vec::new);
        match allowed.iter_mut().find(|(c, _)| c == caller) {
            Some((_, had)) => had.extend(purposes.iter().cloned()),
            None => allowed.push((caller.to_owned(), purposes.to_vec())),
        }
        self
    }

    /// At most `n` numbers revealed in any 60 seconds by this vault process.
    pub fn max_per_minute(mut self, n: u32) -> Self {
        self.per_minute = Some(n);
        self
    }

    /// The per-minute limit, if any.
    pub(super) fn per_minute(&self) -> Option<u32> {
        self.per_minute
    }

    /// Whether `caller` may reveal numbers for `purpose` (the rate aside).
    #[must_use]
    pub fn admits(&self, caller: &str, purpose: &Purpose) -> bool {
        self.allowed.as_ref().is_none_or(|allowed| {
            allowed
                .iter()
                .any(|(c, purposes)| c == caller && purposes.contains(purpose))
        })
    }
}

/// The sliding minute of reveals behind [`GrantPolicy::max_per_minute`].
#[derive(Debug, Default)]
pub(super) struct RevealRate(Mutex<VecDeque<Instant>>);

impl RevealRate {
    /// Takes one reveal from the last minute's allowance, if any is left.
    pub(super) fn take(&self, per_minute: Option<u32>, now: Instant) -> bool {
        let Some(limit) = per_minute else {
            return true;
        };
        let mut window = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            window.pop_front();
        }
        if window.len() >= usize::try_from(limit).unwrap_or(usize::MAX) {
            return false;
        }
        window.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minute_slides_rather_than_resets() {
        let rate = RevealRate::default();
        let t0 = Instant::now();
        assert!(rate.take(Some(2), t0));
        assert!(rate.take(Some(2), t0 + Duration::from_secs(59)));
        assert!(
            !rate.take(Some(2), t0 + Duration::from_secs(59)),
            "two in the minute"
        );
        assert!(
            rate.take(Some(2), t0 + Duration::from_secs(60)),
            "the first one left it"
        );
        assert!(!rate.take(Some(2), t0 + Duration::from_secs(61)));
        assert!(rate.take(None, t0), "no limit");
    }
}
