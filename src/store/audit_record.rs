//! The vault's audit record: plain data (the sealed rows carry `card`'s typed token and
//! key id, so they and their store trait live in `card::vault_store`).

use super::Timestamp;

/// One detokenize, as the audit trail keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditRecord {
    /// The card token revealed.
    pub token: String,
    /// Why (`charge`, `refund`, ...).
    pub purpose: String,
    /// Who asked (a service or operator id).
    pub caller: String,
    /// When.
    pub at: Timestamp,
}

impl AuditRecord {
    /// A record.
    #[must_use]
    pub fn new(token: String, purpose: String, caller: String, at: Timestamp) -> Self {
        Self {
            token,
            purpose,
            caller,
            at,
        }
    }
}
