//! The audit record: plain data (the sealed rows carry `card`'s typed token and key id,
//! so they and their store trait live in `card::vault_store`).
//!
//! # The stored purpose
//! Every store (the file log, both tables) keeps a record in the same four fields: time,
//! token, purpose, caller. The kind and the outcome ride in the purpose field, so that
//! both are under the record's MAC and no store changed its format to get them:
//! `[<kind>#]<purpose>[!<outcome>]`. A card reveal carries no kind prefix unless its
//! purpose holds a `#`, when it is written `card-reveal#<purpose>`. A revealed outcome
//! carries no suffix.
//!
//! Records written before kinds existed read as card reveals, with one exception: a
//! purpose that begins with a kind-like name and a `#` (`ticket#123`: lower-case ASCII
//! letters, digits and `-`, then `#`) reads as a record of that kind (`Other("ticket")`,
//! purpose `123`). Its MAC still checks, since the stored text is the same; only a
//! stored purpose that begins `card-reveal#` and holds no second `#` does not, and reads
//! as tampered. The vault's own purposes (`charge`, `refund`, `migrate`, and the
//! trail's `audit-migration` and `audit-log-repair`) hold no `#`: only a trail that an
//! application wrote through [`AuditSink`](super::AuditSink) with purposes of its own
//! can meet this.

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

/// What a record is about. Records written before kinds existed are card reveals.
///
/// A record of another kind uses the same fields: `token` names what it acted on (`-`
/// for nothing), `purpose` what was done, `caller` who did it, and its outcome reads as
/// done ([`AuditOutcome::Revealed`]), refused or failed.
///
/// # Examples
/// ```
/// use shopsafe::audit::{AuditKind, AuditRecord};
/// use shopsafe::kernel::Timestamp;
///
/// let r = AuditRecord::new("-".into(), "rewrap".into(), "ops:alice".into(), Timestamp::now())
///     .with_kind(AuditKind::KeyChange);
/// assert_eq!(r.kind, AuditKind::KeyChange);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AuditKind {
    /// A detokenize attempt on the card vault (revealed, refused or failed).
    #[default]
    CardReveal,
    /// Something an operator did (a breach-day command, an export).
    OperatorAction,
    /// A key made, rotated, rewrapped or destroyed.
    KeyChange,
    /// A customer's data erased.
    Erasure,
    /// A copy of everything held about a customer given out (an export on request).
    Export,
    /// A kind this version does not know (written by a newer one), kept by its name so
    /// that the record's MAC still checks. Names are lower-case ASCII letters, digits and
    /// `-`, at most 32 bytes; another name is written as `other`.
    Other(String),
}

impl AuditKind {
    /// Its name in the trail.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::CardReveal => "card-reveal",
            Self::OperatorAction => "operator",
            Self::KeyChange => "key-change",
            Self::Erasure => "erasure",
            Self::Export => "export",
            Self::Other(name) => name,
        }
    }

    /// One of each kind (and one a later version might write), for tests of the stores.
    #[cfg(test)]
    pub(crate) fn every_one() -> [Self; 6] {
        [
            Self::CardReveal,
            Self::OperatorAction,
            Self::KeyChange,
            Self::Erasure,
            Self::Export,
            Self::Other("a-later-kind".into()),
        ]
    }

    fn from_name(name: &str) -> Self {
        match name {
            "card-reveal" => Self::CardReveal,
            "operator" => Self::OperatorAction,
            "key-change" => Self::KeyChange,
            "erasure" => Self::Erasure,
            "export" => Self::Export,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// Whether `name` can be a kind prefix: lower-case letters, digits and `-`.
fn kind_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// One audited event (a detokenize attempt unless its [`AuditKind`] says otherwise), as
/// the audit trail keeps it.
///
/// Stores keep the kind and the outcome in the purpose column (see the module's "The
/// stored purpose"), so trails written before either existed read back as revealed card
/// numbers.
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
    /// What it is about.
    pub kind: AuditKind,
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
            kind: AuditKind::CardReveal,
        }
    }

    /// The same record of another kind.
    #[must_use]
    pub fn with_kind(mut self, kind: AuditKind) -> Self {
        self.kind = kind;
        self
    }

    /// The same record with another outcome.
    #[must_use]
    pub fn with_outcome(mut self, outcome: AuditOutcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// The purpose column as stores keep it (the record's MAC covers it).
    pub(crate) fn stored_purpose(&self) -> String {
        let mut stored = String::new();
        // The kind as it will read back: an `Other` that carries a known kind's name is
        // that kind, and a name that could not be read back as one is written `other`.
        let name = match &self.kind {
            AuditKind::Other(n) if !kind_name(n) => "other",
            kind => kind.as_str(),
        };
        if name != AuditKind::CardReveal.as_str() || self.purpose.contains('#') {
            stored.push_str(name);
            stored.push('#');
        }
        stored.push_str(&self.purpose);
        if self.outcome != AuditOutcome::Revealed {
            stored.push('!');
            stored.push_str(self.outcome.as_str());
        }
        stored
    }

    /// A record read back from a store's columns.
    pub(crate) fn from_stored(token: String, stored: &str, caller: String, at: Timestamp) -> Self {
        let (kind, rest) = match stored.split_once('#') {
            Some((name, rest)) if kind_name(name) => (AuditKind::from_name(name), rest),
            _ => (AuditKind::CardReveal, stored),
        };
        let (purpose, outcome) = match rest.rsplit_once('!') {
            Some((p, "refused")) => (p, AuditOutcome::Refused),
            Some((p, "failed")) => (p, AuditOutcome::Failed),
            _ => (rest, AuditOutcome::Revealed),
        };
        Self::new(token, purpose.to_owned(), caller, at)
            .with_outcome(outcome)
            .with_kind(kind)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn kind(k: usize, other: &str) -> AuditKind {
        match k {
            0 => AuditKind::CardReveal,
            1 => AuditKind::OperatorAction,
            2 => AuditKind::KeyChange,
            3 => AuditKind::Erasure,
            4 => AuditKind::Export,
            _ => AuditKind::Other(other.to_owned()),
        }
    }

    proptest! {
        #[test]
        fn kinds_and_outcomes_round_trip_through_the_purpose_column(
            purpose in "[a-z!#:-]{0,12}",
            k in 0usize..3,
            kd in 0usize..6,
            other in "(card-reveal|operator|key-change|erasure|export|other|[a-zA-Z0-9#!-]{0,40})",
        ) {
            let outcome = [AuditOutcome::Revealed, AuditOutcome::Refused, AuditOutcome::Failed][k];
            let kind = kind(kd, &other);
            let r = AuditRecord::new("card_x".into(), purpose, "svc".into(), Timestamp::from_millis(1))
                .with_outcome(outcome)
                .with_kind(kind);
            let back = AuditRecord::from_stored(r.token.clone(), &r.stored_purpose(), r.caller.clone(), r.at);
            // The one ambiguity left is the outcome's: a revealed record whose purpose
            // itself ends in `!refused` or `!failed` (the vault's purposes never do).
            // An `Other` carrying a known name, or no name at all, reads back as the kind
            // it was stored as; every other record reads back as written.
            let named = !matches!(&r.kind, AuditKind::Other(n)
                if !kind_name(n) || ["card-reveal", "operator", "key-change", "erasure", "export"].contains(&n.as_str()));
            if named && (!(r.purpose.ends_with("!refused") || r.purpose.ends_with("!failed")) || outcome != AuditOutcome::Revealed) {
                prop_assert_eq!(&back, &r);
            }
            // Read back, a record stores the same again: its MAC checks.
            prop_assert_eq!(back.stored_purpose(), r.stored_purpose());
        }

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
    fn a_card_reveal_is_stored_as_before_kinds_existed() {
        // The same stored purpose, so the same MAC: trails written before verify.
        for purpose in ["charge", "refund"] {
            let r = AuditRecord::new(
                "t".into(),
                purpose.into(),
                "c".into(),
                Timestamp::from_millis(1),
            );
            assert_eq!(r.stored_purpose(), purpose);
            let refused = r.clone().with_outcome(AuditOutcome::Refused);
            assert_eq!(refused.stored_purpose(), format!("{purpose}!refused"));
        }
        let op = AuditRecord::new(
            "-".into(),
            "declare".into(),
            "ops".into(),
            Timestamp::from_millis(1),
        )
        .with_kind(AuditKind::OperatorAction);
        assert_eq!(op.stored_purpose(), "operator#declare");
        let odd = AuditRecord::new(
            "t".into(),
            "a#b".into(),
            "c".into(),
            Timestamp::from_millis(1),
        );
        assert_eq!(odd.stored_purpose(), "card-reveal#a#b");
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
            (r.purpose.as_str(), r.outcome, r.kind),
            ("charge", AuditOutcome::Revealed, AuditKind::CardReveal)
        );
    }
}
