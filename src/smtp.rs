//! Breach notices and reset mails over SMTP (feature `smtp`), on `lettre` with rustls.
//!
//! [`SmtpNotifier`] is a campaign [`Notifier`]: it looks the account's address up in the
//! application's [`AddressBook`] (this crate holds no email address), renders the
//! brand's templates (plain text and HTML, the exposure text, the reset link, the advice
//! to change a reused password elsewhere) and hands the mail to the relay over a pool of
//! connections, with the [`Notice`] id as `Message-ID`. What comes back decides the
//! notice's fate:
//!
//! | relay's answer | outcome |
//! |---|---|
//! | 2xx | [`Delivery::Accepted`] |
//! | 4xx, a dropped connection, a timeout | retried with exponential backoff; when the attempts run out, an error that stops the campaign (it resumes at this notice) |
//! | 5xx | [`Delivery::Undeliverable`] (`Rejected { code }`): recorded, counted, never counted as sent |
//! | no address, or one that does not parse | [`Delivery::Undeliverable`] (`NoAddress`, `InvalidAddress`) |
//! | a TLS failure | an error at once (no retry: a certificate does not fix itself) |
//!
//! SMTP has no idempotency key, so the notifier says so
//! ([`Notifier::deduplicates`] is `false`) and the campaign records its progress after
//! every accepted notice: a resumed campaign repeats at most the one notice that a crash
//! cut off between the relay's 250 and that write, and that one carries the same
//! `Message-ID`.
//!
//! # Security
//! `smtps://` (implicit TLS) and `smtp://…?tls=required` (STARTTLS) verify the relay's
//! certificate against the platform's roots, or the CA file given. Plain `smtp://` is
//! accepted only for a relay on a loopback address (a local MTA); anything else is
//! refused when the notifier is built, as is `tls=opportunistic`, which a
//! man-in-the-middle downgrades. Reset links are secrets: they go into the mail body and
//! nowhere else (not into errors, not into logs).

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use lettre::message::{Mailbox, Message, MultiPart, header::ContentType};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{SmtpTransport, Transport};

use crate::kernel::{AccountId, BrandId, Timestamp};
use crate::rotation::{Delivery, Notice, Notifier, NotifyError, ResetLink, Undeliverable};

/// Building an [`SmtpNotifier`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The relay URL does not parse, or has a scheme other than `smtp` and `smtps`.
    #[error("invalid SMTP relay URL")]
    InvalidUrl,
    /// Plain SMTP to a relay that is not on a loopback address.
    #[error("plain SMTP to {host} refused: use smtps:// or smtp://...?tls=required")]
    PlaintextToRemote {
        /// The relay's host.
        host: String,
    },
    /// `tls=opportunistic`, which a man-in-the-middle turns into plain text.
    #[error("opportunistic STARTTLS refused: use tls=required")]
    OpportunisticTls,
    /// The CA file could not be read or holds no certificate.
    #[error("CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// A sender address that does not parse.
    #[error("invalid sender address")]
    InvalidSender,
    /// The mail library refused the settings.
    #[error("SMTP settings refused")]
    Settings(#[source] lettre::transport::smtp::Error),
}

/// Where a notice or a reset mail could not go, as the campaign sees it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The relay answered with a transient (4xx) code on every attempt.
    #[error("SMTP relay deferred the mail {attempts} times (last reply {code})")]
    Deferred {
        /// The last reply code.
        code: u16,
        /// Attempts made.
        attempts: u32,
    },
    /// The relay could not be reached or the connection failed, on every attempt.
    #[error("SMTP relay unreachable after {attempts} attempts")]
    Unreachable {
        /// Attempts made.
        attempts: u32,
        /// The last failure (no message text of the relay: it may name the recipient).
        #[source]
        source: lettre::transport::smtp::Error,
    },
    /// The TLS handshake with the relay failed (a wrong certificate or name).
    #[error("TLS with the SMTP relay failed")]
    Tls(#[source] lettre::transport::smtp::Error),
    /// The mail could not be built.
    #[error("mail could not be built")]
    Build,
    /// The application's address book failed.
    #[error("address book failed")]
    AddressBook(#[source] Box<dyn std::error::Error + Send + Sync>),
}

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

/// The breach notice's subject unless a brand says otherwise.
pub const NOTICE_SUBJECT: &str = "Important: reset your {brand} password";
/// The breach notice's plain text unless a brand says otherwise.
pub const NOTICE_TEXT: &str = "We are writing about a security incident at {brand}.\n\n{exposure}\n\nYour password has been expired. Choose a new one here (the link works once, until {expires}):\n{link}\n\n{advice}\n";
/// The breach notice's HTML unless a brand says otherwise (values are HTML-escaped).
pub const NOTICE_HTML: &str = "<p>We are writing about a security incident at {brand}.</p><p>{exposure}</p><p>Your password has been expired. <a href=\"{link}\">Choose a new one</a> (the link works once, until {expires}).</p><p>{advice}</p>";
/// The reset mail's subject unless a brand says otherwise.
pub const RESET_SUBJECT: &str = "Reset your {brand} password";
/// The reset mail's plain text unless a brand says otherwise.
pub const RESET_TEXT: &str = "Someone asked to reset the password of your {brand} account. If it was you, choose a new one here (the link works once, until {expires}):\n{link}\n\nIf it was not you, ignore this mail.\n";

/// One brand's sender and templates. Placeholders: `{brand}`, `{link}`, `{expires}`
/// (UTC), `{exposure}` (the exposure report's text, when the campaign has one) and
/// `{advice}` ([`REUSE_ADVICE`](crate::rotation::REUSE_ADVICE)); in HTML every value is
/// escaped.
///
/// # Examples
/// ```
/// use shopsafe::smtp::BrandMail;
///
/// let mail = BrandMail::new("Shoes <no-reply@shoes.example>", "Shoes")?
///     .notice_subject("Action needed: your Shoes password");
/// assert!(BrandMail::new("not an address", "Shoes").is_err());
/// # Ok::<(), shopsafe::smtp::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct BrandMail {
    from: Mailbox,
    name: String,
    notice_subject: String,
    notice_text: String,
    notice_html: Option<String>,
    reset_subject: String,
    reset_text: String,
}

impl BrandMail {
    /// A brand writing as `from` (`Name <address>` or an address), called `name` in the
    /// text, with the default templates.
    ///
    /// # Errors
    /// [`Error::InvalidSender`].
    pub fn new(from: &str, name: &str) -> Result<Self, Error> {
        Ok(Self {
            from: from.parse().map_err(|_| Error::InvalidSender)?,
            name: name.to_owned(),
            notice_subject: NOTICE_SUBJECT.to_owned(),
            notice_text: NOTICE_TEXT.to_owned(),
            notice_html: Some(NOTICE_HTML.to_owned()),
            reset_subject: RESET_SUBJECT.to_owned(),
            reset_text: RESET_TEXT.to_owned(),
        })
    }

    /// The breach notice's subject.
    #[must_use]
    pub fn notice_subject(mut self, template: &str) -> Self {
        template.clone_into(&mut self.notice_subject);
        self
    }

    /// The breach notice's plain text.
    #[must_use]
    pub fn notice_text(mut self, template: &str) -> Self {
        template.clone_into(&mut self.notice_text);
        self
    }

    /// The breach notice's HTML part (`None`: plain text only).
    #[must_use]
    pub fn notice_html(mut self, template: Option<&str>) -> Self {
        self.notice_html = template.map(str::to_owned);
        self
    }

    /// The reset mail's subject and plain text.
    #[must_use]
    pub fn reset(mut self, subject: &str, text: &str) -> Self {
        subject.clone_into(&mut self.reset_subject);
        text.clone_into(&mut self.reset_text);
        self
    }

    fn domain(&self) -> &str {
        self.from.email.domain()
    }
}

/// Fills `{name}` placeholders; `escape` each value for HTML.
fn render(template: &str, values: &[(&str, &str)], escape: bool) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}').and_then(|close| {
            values
                .iter()
                .find(|(k, _)| *k == &after[..close])
                .map(|v| (close, v.1))
        }) {
            Some((close, value)) => {
                if escape {
                    html_escape(value, &mut out);
                } else {
                    out.push_str(value);
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn html_escape(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// How often and how patiently a deferred (4xx) or failed send is tried again.
#[derive(Clone, Copy, Debug)]
struct Retry {
    attempts: u32,
    first: Duration,
    max: Duration,
}

/// Builds an [`SmtpNotifier`].
#[must_use]
pub struct SmtpNotifierBuilder {
    url: String,
    ca_file: Option<std::path::PathBuf>,
    pool_size: u32,
    timeout: Duration,
    retry: Retry,
    brands: HashMap<BrandId, BrandMail>,
    default: Option<BrandMail>,
}

impl fmt::Debug for SmtpNotifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry the relay's password.
        f.debug_struct("SmtpNotifierBuilder")
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

impl SmtpNotifierBuilder {
    /// Verifies the relay's certificate against the CA certificates (PEM) in `path`
    /// instead of the platform's roots.
    pub fn ca_file(mut self, path: impl AsRef<Path>) -> Self {
        self.ca_file = Some(path.as_ref().to_path_buf());
        self
    }

    /// Connections kept open to the relay (4 unless set).
    pub fn pool_size(mut self, connections: u32) -> Self {
        self.pool_size = connections.max(1);
        self
    }

    /// How long one SMTP command may wait for the relay (30 s unless set).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Tries a deferred or failed send `attempts` times in all (4 unless set), waiting
    /// `first` after the first failure and doubling up to 60 s (1 s unless set).
    pub fn retry(mut self, attempts: u32, first: Duration) -> Self {
        self.retry = Retry {
            attempts: attempts.max(1),
            first,
            max: Duration::from_secs(60).max(first),
        };
        self
    }

    /// The sender and templates for notices of `brand`.
    pub fn brand(mut self, brand: BrandId, mail: BrandMail) -> Self {
        self.brands.insert(brand, mail);
        self
    }

    /// The sender and templates for notices of other brands (and of none).
    pub fn default_brand(mut self, mail: BrandMail) -> Self {
        self.default = Some(mail);
        self
    }

    /// The notifier, looking addresses up in `addresses`. Connects lazily.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`], [`Error::PlaintextToRemote`], [`Error::OpportunisticTls`],
    /// [`Error::CaFile`], [`Error::InvalidSender`] when no default brand was given,
    /// [`Error::Settings`].
    pub fn build<A: AddressBook>(self, addresses: A) -> Result<SmtpNotifier<A>, Error> {
        let url = url::Url::parse(&self.url).map_err(|_| Error::InvalidUrl)?;
        let host = url.host_str().ok_or(Error::InvalidUrl)?.to_owned();
        let host_unbracketed = host.trim_start_matches('[').trim_end_matches(']');
        let tls_mode = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let params = || -> Result<TlsParameters, Error> {
            let mut b = TlsParameters::builder(host_unbracketed.to_owned());
            if let Some(path) = &self.ca_file {
                let pem = std::fs::read(path).map_err(|e| Error::CaFile {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                let cert = Certificate::from_pem(&pem).map_err(|_| Error::CaFile {
                    path: path.display().to_string(),
                    reason: "no PEM certificate".into(),
                })?;
                b = b
                    .certificate_store(lettre::transport::smtp::client::CertificateStore::None)
                    .add_root_certificate(cert);
            }
            b.build_rustls().map_err(Error::Settings)
        };
        let (tls, default_port) = match (url.scheme(), tls_mode.as_deref()) {
            ("smtps", None) => (Tls::Wrapper(params()?), 465),
            ("smtp", Some("required")) => (Tls::Required(params()?), 587),
            ("smtp", Some("opportunistic")) => return Err(Error::OpportunisticTls),
            ("smtp", None) => {
                let loopback = host_unbracketed == "localhost"
                    || host_unbracketed
                        .parse::<IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback());
                if !loopback {
                    return Err(Error::PlaintextToRemote { host });
                }
                (Tls::None, 25)
            }
            _ => return Err(Error::InvalidUrl),
        };
        let mut transport = SmtpTransport::builder_dangerous(host_unbracketed)
            .port(url.port().unwrap_or(default_port))
            .tls(tls)
            .timeout(Some(self.timeout))
            .pool_config(PoolConfig::new().max_size(self.pool_size));
        if !url.username().is_empty() {
            let user = percent_decode(url.username());
            let pass = percent_decode(url.password().unwrap_or(""));
            transport = transport.credentials(
                lettre::transport::smtp::authentication::Credentials::new(user, pass),
            );
        }
        Ok(SmtpNotifier {
            transport: transport.build(),
            addresses,
            default: self.default.ok_or(Error::InvalidSender)?,
            brands: self.brands,
            retry: self.retry,
            pool_size: self.pool_size,
        })
    }
}

/// Decodes the `%XX` escapes of a URL's user or password (a `+` stays a `+`: this is
/// not a form).
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Sends breach notices and reset mails through an SMTP relay; see the [module
/// docs](self).
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
    transport: SmtpTransport,
    addresses: A,
    default: BrandMail,
    brands: HashMap<BrandId, BrandMail>,
    retry: Retry,
    pool_size: u32,
}

impl<A> fmt::Debug for SmtpNotifier<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpNotifier")
            .field("brands", &self.brands.len())
            .finish_non_exhaustive()
    }
}

/// A timestamp as `YYYY-MM-DD HH:MM UTC`.
fn utc(at: Timestamp) -> String {
    let secs = at.as_millis().div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// Whether `e` is a failed TLS handshake: lettre reports a certificate rustls refused as
/// a network error whose I/O source is `InvalidData`.
fn tls_failure(e: &lettre::transport::smtp::Error) -> bool {
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

impl SmtpNotifier<()> {
    /// A builder for the relay at `url`: `smtps://user:pass@host:465` (implicit TLS),
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS), or `smtp://127.0.0.1:25`
    /// (plain, loopback only).
    pub fn builder(url: &str) -> SmtpNotifierBuilder {
        SmtpNotifierBuilder {
            url: url.to_owned(),
            ca_file: None,
            pool_size: 4,
            timeout: Duration::from_secs(30),
            retry: Retry {
                attempts: 4,
                first: Duration::from_secs(1),
                max: Duration::from_secs(60),
            },
            brands: HashMap::new(),
            default: None,
        }
    }
}

impl<A: AddressBook> SmtpNotifier<A> {
    fn brand(&self, brand: Option<&BrandId>) -> &BrandMail {
        brand
            .and_then(|b| self.brands.get(b))
            .unwrap_or(&self.default)
    }

    /// The recipient, or why there is none.
    fn recipient(&self, account: &AccountId) -> Result<Result<Mailbox, Undeliverable>, SendError> {
        match self
            .addresses
            .address(account)
            .map_err(SendError::AddressBook)?
        {
            None => Ok(Err(Undeliverable::NoAddress)),
            Some(address) => Ok(address
                .parse::<Mailbox>()
                .map_err(|_| Undeliverable::InvalidAddress)),
        }
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
        let to = match self.recipient(account)? {
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
        let to = match self.recipient(&notice.account) {
            Ok(Ok(to)) => to,
            Ok(Err(why)) => return Ok(Delivery::Undeliverable(why)),
            Err(e) => return Err(NotifyError(Box::new(e))),
        };
        let message = self
            .notice_message(notice, to)
            .map_err(|e| NotifyError(Box::new(e)))?;
        self.send_with_retry(&message)
            .map_err(|e| NotifyError(Box::new(e)))
    }

    fn deduplicates(&self) -> bool {
        false
    }

    /// The connection pool's size: that many notices go out at once.
    fn parallelism(&self) -> usize {
        usize::try_from(self.pool_size).unwrap_or(1)
    }

    fn deliver_all(&self, notices: &[Notice]) -> Vec<Result<Delivery, NotifyError>> {
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
                            mine.push((i, self.deliver(notice)));
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn templates_fill_known_placeholders_and_escape_html() {
        let values = [
            ("link", "https://x.example/r?a=1&b=<2>"),
            ("brand", "Shoes"),
        ];
        assert_eq!(
            render("{brand}: {link} {unknown} {", &values, false),
            "Shoes: https://x.example/r?a=1&b=<2> {unknown} {"
        );
        assert_eq!(
            render("<a href=\"{link}\">{brand}</a>", &values, true),
            "<a href=\"https://x.example/r?a=1&amp;b=&lt;2&gt;\">Shoes</a>"
        );
    }

    #[test]
    fn url_credentials_decode_percent_escapes_only() {
        assert_eq!(percent_decode("a%2Bb+c%40d%zz%4"), "a+b+c@d%zz%4");
        assert_eq!(percent_decode("%E2%82%AC"), "€");
    }

    #[test]
    fn utc_dates_are_civil() {
        assert_eq!(utc(Timestamp::from_millis(0)), "1970-01-01 00:00 UTC");
        assert_eq!(
            utc(Timestamp::from_millis(1_709_210_096_000)),
            "2024-02-29 12:34 UTC"
        );
    }

    #[test]
    fn only_tls_or_loopback_relays_are_accepted() {
        let build = |url: &str| {
            SmtpNotifier::builder(url)
                .default_brand(BrandMail::new("no-reply@shop.example", "Shop").expect("from"))
                .build(|_: &AccountId| -> Result<Option<String>, Box<dyn std::error::Error + Send + Sync>> { Ok(None) })
                .map(drop)
        };
        assert!(build("smtp://127.0.0.1:2525").is_ok());
        assert!(build("smtp://[::1]:2525").is_ok());
        assert!(build("smtp://localhost").is_ok());
        assert!(build("smtps://smtp.example.com").is_ok());
        assert!(build("smtp://smtp.example.com?tls=required").is_ok());
        assert!(matches!(
            build("smtp://smtp.example.com"),
            Err(Error::PlaintextToRemote { .. })
        ));
        assert!(matches!(
            build("smtp://10.0.0.5:25"),
            Err(Error::PlaintextToRemote { .. })
        ));
        assert!(matches!(
            build("smtp://smtp.example.com?tls=opportunistic"),
            Err(Error::OpportunisticTls)
        ));
        assert!(matches!(
            build("http://smtp.example.com"),
            Err(Error::InvalidUrl)
        ));
        assert!(matches!(build("not a url"), Err(Error::InvalidUrl)));
    }

    proptest! {
        #[test]
        fn percent_decoding_never_panics(s in "\\PC{0,40}") {
            let _ = percent_decode(&s);
        }

        #[test]
        fn rendering_never_panics_and_html_never_carries_raw_markup(
            template in "\\PC{0,80}",
            value in "\\PC{0,40}",
        ) {
            let out = render(&template, &[("link", &value)], true);
            if template == "{link}" {
                prop_assert!(!out.contains('<') && !out.contains('"'));
            }
        }
    }
}
