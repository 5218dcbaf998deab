//! [`SmtpNotifier`]: one mail per notice, through the relay's pool, with retries and the
//! relay's answer turned into the notice's outcome.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use lettre::message::{Mailbox, Message, MultiPart, header::ContentType};
use lettre::{SmtpTransport, Transport};

use super::error::SendError;
use super::template::{BrandMail, render, utc};
use crate::kernel::{AccountId, BrandId, Timestamp};
use crate::rotation::{Delivery, Notice, Notifier, NotifyError, ResetLink, Undeliverable};

/// The application's directory of customer email addresses: this crate keeps none.
pub trait AddressBook: Send + Sync {
    /// The address to write to, or `None` when the account has none.
    ///
    /// # Errors
    /// Whatever kept the directory from answering (the campaign stops and resumes at
    /// this notice).
    fn address(
        &self,
        account: &AccountId,
    ) -> Result<Option<String>, Box<dyn std::error::Error + Send + Sync>>;

    /// The addresses of a batch, one per account in order: the notifier asks once per
    /// batch it sends. The default asks [`AddressBook::address`] for each; a directory
    /// over sealed data answers the batch with one key-store read and one read of the
    /// sealed rows (`seal::Sealer::open_all`).
    ///
    /// # Errors
    /// As [`AddressBook::address`] (the batch is not sent; the campaign resumes at its
    /// first notice).
    fn addresses(
        &self,
        accounts: &[AccountId],
    ) -> Result<Vec<Option<String>>, Box<dyn std::error::Error + Send + Sync>> {
        accounts.iter().map(|a| self.address(a)).collect()
    }
}

impl<F> AddressBook for F
where
    F: Fn(&AccountId) -> Result<Option<String>, Box<dyn std::error::Error + Send + Sync>>
        + Send
        + Sync,
{
    fn address(
        &self,
        account: &AccountId,
    ) -> Result<Option<String>, Box<dyn std::error::Error + Send + Sync>> {
        self(account)
    }
}

/// How often and how patiently a deferred (4xx) or failed send is tried again.
#[derive(Clone, Copy, Debug)]
pub(super) struct Retry {
    pub(super) attempts: u32,
    pub(super) first: Duration,
    pub(super) max: Duration,
}

/// Sends breach notices and reset mails through an SMTP relay; see the [module
/// docs](crate::smtp).
///
/// # Examples
/// ```
/// use shopsafe::kernel::AccountId;
/// use shopsafe::smtp::{BrandMail, SmtpNotifier};
///
/// let notifier = SmtpNotifier::builder("smtps://mailer:secret@smtp.example.com")
///     .default_brand(BrandMail::new("Shop <no-reply@shop.example>", "Shop")?)
///     .build(|account: &AccountId| -> Result<Option<String>, Box<dyn std::error::Error + Send + Sync>> {
///         Ok(Some(format!("{}@customers.example", account.as_str()))) // the app's lookup
///     })?;
/// // Plain text to a remote relay is refused.
/// assert!(SmtpNotifier::builder("smtp://smtp.example.com")
///     .default_brand(BrandMail::new("no-reply@shop.example", "Shop")?)
///     .build(|_: &AccountId| -> Result<Option<String>, Box<dyn std::error::Error + Send + Sync>> { Ok(None) })
///     .is_err());
/// # drop(notifier);
/// # Ok::<(), shopsafe::smtp::Error>(())
/// ```
pub struct SmtpNotifier<A> {
    pub(super) transport: SmtpTransport,
    pub(super) addresses: A,
    pub(super) default: BrandMail,
    pub(super) brands: HashMap<BrandId, BrandMail>,
    pub(super) retry: Retry,
    pub(super) pool_size: u32,
}

impl<A> fmt::Debug for SmtpNotifier<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpNotifier")
            .field("brands", &self.brands.len())
            .finish_non_exhaustive()
    }
}

/// Whether `e` is a failed TLS handshake: lettre reports a certificate rustls refused as
/// a network error whose I/O source is `InvalidData`.
pub(super) fn tls_failure(e: &lettre::transport::smtp::Error) -> bool {
    if e.is_tls() {
        return true;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::InvalidData)
        {
            return true;
        }
        source = s.source();
    }
    false
}

impl<A: AddressBook> SmtpNotifier<A> {
    fn brand(&self, brand: Option<&BrandId>) -> &BrandMail {
        brand
            .and_then(|b| self.brands.get(b))
            .unwrap_or(&self.default)
    }

    /// The recipient, or why there is none.
    fn recipient(address: Option<&str>) -> Result<Mailbox, Undeliverable> {
        match address {
            None => Err(Undeliverable::NoAddress),
            Some(address) => address
                .parse::<Mailbox>()
                .map_err(|_| Undeliverable::InvalidAddress),
        }
    }

    /// Sends `notice` to `address` (as the address book gave it).
    fn deliver_to(&self, notice: &Notice, address: Option<&str>) -> Result<Delivery, NotifyError> {
        let to = match Self::recipient(address) {
            Ok(to) => to,
            Err(why) => return Ok(Delivery::Undeliverable(why)),
        };
        let message = self
            .notice_message(notice, to)
            .map_err(|e| NotifyError(Box::new(e)))?;
        self.send_with_retry(&message)
            .map_err(|e| NotifyError(Box::new(e)))
    }

    /// Sends `message`, trying again on 4xx replies and connection failures.
    fn send_with_retry(&self, message: &Message) -> Result<Delivery, SendError> {
        let mut wait = self.retry.first;
        let mut attempt = 1;
        loop {
            let failure = match self.transport.send(message) {
                Ok(_) => return Ok(Delivery::Accepted),
                Err(e) if e.is_permanent() => {
                    let code = e.status().map_or(550, u16::from);
                    return Ok(Delivery::Undeliverable(Undeliverable::Rejected { code }));
                }
                Err(e) if tls_failure(&e) => return Err(SendError::Tls(e)),
                Err(e) => e,
            };
            if attempt >= self.retry.attempts {
                return Err(match failure.status() {
                    Some(code) if failure.is_transient() => SendError::Deferred {
                        code: u16::from(code),
                        attempts: attempt,
                    },
                    _ => SendError::Unreachable {
                        attempts: attempt,
                        source: failure,
                    },
                });
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(self.retry.max);
            attempt += 1;
        }
    }

    /// Sends the reset mail of a self-service reset request.
    ///
    /// # Errors
    /// [`SendError`]: the relay deferred it on every attempt or could not be reached,
    /// TLS failed, the address book failed.
    pub fn send_reset(
        &self,
        account: &AccountId,
        brand: Option<&BrandId>,
        link: &ResetLink,
        expires: Timestamp,
    ) -> Result<Delivery, SendError> {
        let address = self
            .addresses
            .address(account)
            .map_err(SendError::AddressBook)?;
        let to = match Self::recipient(address.as_deref()) {
            Ok(to) => to,
            Err(why) => return Ok(Delivery::Undeliverable(why)),
        };
        let mail = self.brand(brand);
        let expires = utc(expires);
        let values = [
            ("brand", mail.name.as_str()),
            ("link", link.expose_secret()),
            ("expires", expires.as_str()),
        ];
        let message = Message::builder()
            .from(mail.from.clone())
            .to(to)
            .subject(render(&mail.reset_subject, &values, false))
            .header(ContentType::TEXT_PLAIN)
            .body(render(&mail.reset_text, &values, false))
            .map_err(|_| SendError::Build)?;
        self.send_with_retry(&message)
    }

    /// The mail of one breach notice.
    fn notice_message(&self, notice: &Notice, to: Mailbox) -> Result<Message, SendError> {
        let mail = self.brand(notice.brand.as_ref());
        let expires = utc(notice.link_expires_at);
        let values = [
            ("brand", mail.name.as_str()),
            ("link", notice.link.expose_secret()),
            ("expires", expires.as_str()),
            ("exposure", notice.exposure.as_deref().unwrap_or("")),
            ("advice", notice.advice),
        ];
        // `<incident-7.<account, hex>@brand domain>`: stable, whatever the account id holds.
        let message_id = format!(
            "<{}.{}@{}>",
            notice.id.incident,
            base16ct::lower::encode_string(notice.id.account.as_str().as_bytes()),
            mail.domain()
        );
        let builder = Message::builder()
            .from(mail.from.clone())
            .to(to)
            .subject(render(&mail.notice_subject, &values, false))
            .message_id(Some(message_id));
        let text = render(&mail.notice_text, &values, false);
        match &mail.notice_html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                text,
                render(html, &values, true),
            )),
            None => builder.header(ContentType::TEXT_PLAIN).body(text),
        }
        .map_err(|_| SendError::Build)
    }
}

impl<A: AddressBook> Notifier for SmtpNotifier<A> {
    fn send(&self, notice: &Notice) -> Result<(), NotifyError> {
        match self.deliver(notice)? {
            Delivery::Accepted => Ok(()),
            Delivery::Undeliverable(why) => Err(NotifyError(why.to_string().into())),
        }
    }

    fn deliver(&self, notice: &Notice) -> Result<Delivery, NotifyError> {
        let address = self
            .addresses
            .address(&notice.account)
            .map_err(|e| NotifyError(Box::new(SendError::AddressBook(e))))?;
        self.deliver_to(notice, address.as_deref())
    }

    fn deduplicates(&self) -> bool {
        false
    }

    /// The connection pool's size: that many notices go out at once.
    fn parallelism(&self) -> usize {
        usize::try_from(self.pool_size).unwrap_or(1)
    }

    fn deliver_all(&self, notices: &[Notice]) -> Vec<Result<Delivery, NotifyError>> {
        // One address-book call for the batch.
        let accounts: Vec<AccountId> = notices.iter().map(|n| n.account.clone()).collect();
        let addresses = match self.addresses.addresses(&accounts) {
            Ok(a) if a.len() == notices.len() => a,
            Ok(_) => {
                return vec![Err(NotifyError(
                    "the address book answered a batch with another number of addresses".into(),
                ))];
            }
            Err(e) => return vec![Err(NotifyError(Box::new(SendError::AddressBook(e))))],
        };
        // Each thread takes the next notice until none is left and keeps its outcomes
        // with their positions; they are put back in order at the end.
        let next = std::sync::atomic::AtomicUsize::new(0);
        let mut outcomes: Vec<Option<Result<Delivery, NotifyError>>> =
            notices.iter().map(|_| None).collect();
        let done: Vec<(usize, Result<Delivery, NotifyError>)> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..self.parallelism().min(notices.len()))
                .map(|_| {
                    scope.spawn(|| {
                        let mut mine = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(notice) = notices.get(i) else { break };
                            let address = addresses.get(i).and_then(Option::as_deref);
                            mine.push((i, self.deliver_to(notice, address)));
                        }
                        mine
                    })
                })
                .collect();
            workers
                .into_iter()
                // A worker's panic reaches the campaign, as a panic in `deliver` does.
                .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        for (i, outcome) in done {
            if let Some(slot) = outcomes.get_mut(i) {
                *slot = Some(outcome);
            }
        }
        outcomes.into_iter().map_while(|o| o).collect()
    }
}
