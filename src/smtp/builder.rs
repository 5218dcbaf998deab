//! [`SmtpNotifierBuilder`]: the relay's URL and TLS settings, the pool, the retries and
//! the brands, checked when the notifier is built.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use lettre::SmtpTransport;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};

use super::error::Error;
use super::notifier::{AddressBook, Retry, SmtpNotifier};
use super::template::BrandMail;
use crate::kernel::BrandId;

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
pub(super) fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
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
