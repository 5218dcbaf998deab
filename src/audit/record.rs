//! The vault's audit record: plain data (the sealed rows carry `card`'s typed token and
//! key id, so they and their store trait live in `card::vault_store`).

use crate::kernel::Timestamp;

/// What came of a detokenize attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditOutcome {
    /// The number was revealed (the record is written before it is).
    Revealed,
    /// The grant was refused (another vault's, outside the grant policy, or over its
    /// rate): nothing was looked up.
    Refused,
    /// The attempt failed: no such token, a key shredded, a row tampered with.
    Failed,
}

impl AuditOutcome {
    /// Its name in the trail.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Revealed => "revealed",
            Self::Refused => "refused",
            Self::Failed => "failed",
        }
    }
}

/// One detokenize attempt, as the audit trail keeps it.
///
/// Stores keep the outcome in the purpose column, as `<purpose>!refused` or
/// `<purpose>!failed` (a revealed record is the purpose alone, as every record of a 0.1
/// trail is), so trails written before outcomes existed read back as revealed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditRecord {
    /// The card token asked for.
    pub token: String,
    /// Why (`charge`, `refund`, ...).
    pub purpose: String,
    /// Who asked (a service or operator id).
    pub caller: String,
    /// When.
    pub at: Timestamp,
    /// What came of it.
    pub outcome: AuditOutcome,
}

impl AuditRecord {
    /// A record of a number revealed.
    #[must_use]
    pub fn new(token: String, purpose: String, caller: String, at: Timestamp) -> Self {
        Self {
            token,
            purpose,
            caller,
            at,
            outcome: AuditOutcome::Revealed,
        }
    }

    /// The same record with another outcome.
    #[must_use]
    pub fn with_outcome(mut self, outcome: AuditOutcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// The purpose column as stores keep it.
    pub(crate) fn stored_purpose(&self) -> String {
        match self.outcome {
            AuditOutcome::Revealed => self.purpose.clone(),
            other => format!("{}!{}", self.purpose, other.as_str()),
        }
    }

    /// A record read back from a store's columns.
    pub(crate) fn from_stored(token: String, stored: &str, caller: String, at: Timestamp) -> Self {
        let (purpose, outcome) = match stored.rsplit_once('!') {
            Some((p, "refused")) => (p, AuditOutcome::Refused),
            Some((p, "failed")) => (p, AuditOutcome::Failed),
            _ => (stored, AuditOutcome::Revealed),
        };
        Self::new(token, purpose.to_owned(), caller, at).with_outcome(outcome)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn outcomes_round_trip_through_the_purpose_column(
            purpose in "[a-z!-]{0,12}",
            k in 0usize..3,
        ) {
            let outcome = [AuditOutcome::Revealed, AuditOutcome::Refused, AuditOutcome::Failed][k];
            let r = AuditRecord::new("card_x".into(), purpose, "svc".into(), Timestamp::from_millis(1))
                .with_outcome(outcome);
            let back = AuditRecord::from_stored(r.token.clone(), &r.stored_purpose(), r.caller.clone(), r.at);
            // A purpose that itself ends in `!refused` or `!failed` is the one ambiguity;
            // purposes are the vault's fixed names, which never do.
            if !(r.purpose.ends_with("!refused") || r.purpose.ends_with("!failed")) || outcome != AuditOutcome::Revealed {
                prop_assert_eq!(back, r);
            }
        }
    }

    #[test]
    fn a_trail_written_before_outcomes_reads_as_revealed() {
        let r = AuditRecord::from_stored(
            "card_x".into(),
            "charge",
            "svc".into(),
            Timestamp::from_millis(1),
        );
        assert_eq!(
            (r.purpose.as_str(), r.outcome),
            ("charge", AuditOutcome::Revealed)
        );
    }
}
