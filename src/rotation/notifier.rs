//! The campaign's [`Notifier`] port: one [`Notice`] (its stable [`NoticeId`], its reset
//! link, the exposure text and the reuse advice) handed to the application's mail
//! system, and what came of it ([`Delivery`]).

use core::fmt;

use super::error::NotifyError;
use super::incidents::IncidentId;
use super::reset_token::ResetLink;
use crate::kernel::{AccountId, BrandId};

/// The advice every notice carries: passwords reused elsewhere must change there too.
pub const REUSE_ADVICE: &str = "If you used the same password on any other site, change it there too: \
     whoever copied our data will try it on other services.";

/// The stable identity of one notice: `incident-<id>/<account>`. Use it as the idempotency
/// key of the delivery.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NoticeId {
    /// The incident.
    pub incident: IncidentId,
    /// The account.
    pub account: AccountId,
}

impl fmt::Display for NoticeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.incident, self.account)
    }
}

/// One customer's breach notice, for the application to render and send.
#[derive(Debug)]
#[non_exhaustive]
pub struct Notice {
    /// Stable id: the idempotency key.
    pub id: NoticeId,
    /// The storefront to write as (the incident's brand, else the account's first brand).
    pub brand: Option<BrandId>,
    /// Whom (the application looks up the address; this crate never holds it).
    pub account: AccountId,
    /// The reset link (secret until sent).
    pub link: ResetLink,
    /// When the link stops working.
    pub link_expires_at: crate::kernel::Timestamp,
    /// What was exposed for this customer, from
    /// [`CampaignOptions::exposure`](super::CampaignOptions::exposure).
    pub exposure: Option<String>,
    /// [`REUSE_ADVICE`].
    pub advice: &'static str,
}

/// What came of one notice.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// The next hop took it (a mail server's 250, a queue's acknowledgement).
    Accepted,
    /// It cannot be delivered, now or later: recorded for the account
    /// ([`CampaignStore::record_undeliverable`]), counted in
    /// [`CampaignReport::undeliverable_this_run`], never counted as sent, and the
    /// campaign goes on to the next account.
    ///
    /// [`CampaignStore::record_undeliverable`]: super::CampaignStore::record_undeliverable
    /// [`CampaignReport::undeliverable_this_run`]: super::CampaignReport::undeliverable_this_run
    Undeliverable(Undeliverable),
}

/// Why a notice cannot be delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Undeliverable {
    /// The application has no address for the account.
    NoAddress,
    /// The application's address for the account does not parse.
    InvalidAddress,
    /// The next hop refused it for good (an SMTP 5xx reply: its code).
    Rejected {
        /// The reply code.
        code: u16,
    },
}

impl fmt::Display for Undeliverable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoAddress => f.write_str("no-address"),
            Self::InvalidAddress => f.write_str("invalid-address"),
            Self::Rejected { code } => write!(f, "rejected {code}"),
        }
    }
}

/// Delivers notices (an email queue, a message broker).
pub trait Notifier {
    /// Sends one notice. Return an error to stop the campaign (it resumes at this notice).
    ///
    /// # Errors
    /// Whatever stops delivery.
    fn send(&self, notice: &Notice) -> Result<(), NotifyError>;

    /// Sends one notice and says what came of it: the campaign calls this one. The
    /// default is [`Notifier::send`], every success [`Delivery::Accepted`]. A notifier
    /// that can tell a notice that will never arrive (no address, a permanent
    /// rejection) from a failure worth a retry returns [`Delivery::Undeliverable`] for
    /// the first and an error (which stops the campaign; it resumes at this notice) for
    /// the second.
    ///
    /// # Errors
    /// Whatever stops delivery.
    fn deliver(&self, notice: &Notice) -> Result<Delivery, NotifyError> {
        self.send(notice).map(|()| Delivery::Accepted)
    }

    /// Whether the next hop drops a notice whose [`NoticeId`] it has seen (an idempotency
    /// key). `true` by default. A notifier without one (SMTP) says `false`, and the
    /// campaign then records its progress after every accepted notice, so a resumed run
    /// repeats at most the one notice a crash cut off between the server's acceptance
    /// and that write.
    fn deduplicates(&self) -> bool {
        true
    }

    /// How many notices this notifier delivers at once (1 by default): the campaign
    /// hands it that many at a time through [`Notifier::deliver_all`].
    fn parallelism(&self) -> usize {
        1
    }

    /// Delivers `notices` (at most [`Notifier::parallelism`] of them), at the same time
    /// where it can, and returns one outcome per notice, in order. The campaign moves its
    /// cursor through the outcomes in order and stops at the first error, so a notice
    /// accepted after a failed one is sent again on resume: with a notifier that does not
    /// [deduplicate](Notifier::deduplicates), a crash or an error repeats at most
    /// `parallelism` notices. The default delivers them one by one and stops after the
    /// first error (a missing outcome counts as not delivered).
    fn deliver_all(&self, notices: &[Notice]) -> Vec<Result<Delivery, NotifyError>> {
        let mut out = Vec::with_capacity(notices.len());
        for notice in notices {
            let outcome = self.deliver(notice);
            let failed = outcome.is_err();
            out.push(outcome);
            if failed {
                break;
            }
        }
        out
    }
}

impl<F: Fn(&Notice) -> Result<(), NotifyError>> Notifier for F {
    fn send(&self, notice: &Notice) -> Result<(), NotifyError> {
        self(notice)
    }
}
