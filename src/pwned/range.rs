//! The online check: the Pwned Passwords k-anonymity range API over HTTPS (feature
//! `pwned-api`, `ureq` on rustls).

use std::time::Duration;

use zeroize::Zeroizing;

use crate::password::{BreachLookupError, BreachedPasswords, PwnedDigest};

use super::Error;

/// The public service's range endpoint; the 5-hex-digit prefix is appended.
pub const DEFAULT_RANGE_URL: &str = "https://api.pwnedpasswords.com/range/";
/// How long one lookup may take, connection included, before it fails as
/// [`BreachLookupError::Timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest response read (a padded range answer is about 40 KB).
const MAX_RESPONSE_BYTES: u64 = 1 << 20;

/// A client of the range API: `GET <base><first 5 hex digits of SHA-1>` with
/// `Add-Padding: true`, answered by `<35 hex digits>:<count>` lines (padding lines carry a
/// count of 0).
///
/// # Security
/// Only the five-digit prefix leaves the machine; with padding, the response size does
/// not tell an observer of the TLS stream which range was asked for either. The server
/// learns that someone checked one of the ~500 hashes of that range at this time.
///
/// # Examples
/// ```no_run
/// use std::sync::Arc;
/// use shopsafe::password::{AcceptancePolicy, OnLookupFailure};
/// use shopsafe::pwned::RangeClient;
///
/// let policy = AcceptancePolicy::single_factor()
///     .with_breached_passwords(Arc::new(RangeClient::new()), OnLookupFailure::Accept);
/// ```
#[derive(Debug)]
pub struct RangeClient {
    agent: ureq::Agent,
    base: String,
    timeout: Duration,
}

impl Default for RangeClient {
    fn default() -> Self {
        Self::new()
    }
}

impl RangeClient {
    /// The public service, with [`DEFAULT_TIMEOUT`].
    #[must_use]
    pub fn new() -> Self {
        Self {
            agent: agent(DEFAULT_TIMEOUT),
            base: DEFAULT_RANGE_URL.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Another server with the same API (a mirror inside the deployment, or a test
    /// server). `base` ends where the prefix goes, e.g. `https://mirror.internal/range/`.
    ///
    /// # Errors
    /// [`Error::BadUrl`] unless it is `https://`, or `http://` to `127.0.0.1`, `[::1]` or
    /// `localhost` (plain HTTP would show the prefix and the answer to the network).
    pub fn with_base_url(self, base: &str) -> Result<Self, Error> {
        let rest = if let Some(rest) = base.strip_prefix("https://") {
            rest
        } else if let Some(rest) = base.strip_prefix("http://") {
            let host = rest.split('/').next().unwrap_or_default();
            let host = host.rsplit_once(':').map_or(host, |(h, port)| {
                if port.bytes().all(|b| b.is_ascii_digit()) {
                    h
                } else {
                    host
                }
            });
            if !matches!(host, "127.0.0.1" | "[::1]" | "localhost") {
                return Err(Error::BadUrl(
                    "plain http:// is allowed to loopback only; use https://".into(),
                ));
            }
            rest
        } else {
            return Err(Error::BadUrl("not an http(s) URL".into()));
        };
        if rest.split('/').next().unwrap_or_default().is_empty() {
            return Err(Error::BadUrl("no host".into()));
        }
        Ok(Self {
            base: base.to_owned(),
            ..self
        })
    }

    /// How long one lookup may take in all.
    #[must_use]
    pub fn with_timeout(self, timeout: Duration) -> Self {
        Self {
            agent: agent(timeout),
            timeout,
            ..self
        }
    }
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("shopsafe/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

impl BreachedPasswords for RangeClient {
    /// One HTTPS request (BENCHMARKS.md). No secret reaches an error: neither the
    /// digest nor its prefix.
    fn times_seen(&self, digest: &PwnedDigest) -> Result<u64, BreachLookupError> {
        let hex = Zeroizing::new(base16ct::upper::encode_string(digest.as_bytes()));
        let (prefix, suffix) = hex.split_at(5);
        let failed = |e: ureq::Error| match e {
            ureq::Error::Timeout(_) => BreachLookupError::Timeout(self.timeout),
            other => BreachLookupError::Service(other.to_string()),
        };
        let mut response = self
            .agent
            .get(format!("{}{prefix}", self.base))
            .header("Add-Padding", "true")
            .call()
            .map_err(failed)?;
        if response.status() != 200 {
            return Err(BreachLookupError::Service(format!(
                "HTTP status {}",
                response.status().as_u16()
            )));
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_string()
            .map_err(failed)?;
        parse_range(&body, suffix)
    }
}

/// Finds `suffix` in a range response; every line must be well formed.
fn parse_range(body: &str, suffix: &str) -> Result<u64, BreachLookupError> {
    let mut found = 0;
    for line in body.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let malformed = || BreachLookupError::Service("malformed range response line".into());
        let (hex, count) = line.split_once(':').ok_or_else(malformed)?;
        if hex.len() != 35 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(malformed());
        }
        let count = count.trim();
        if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed());
        }
        if hex.eq_ignore_ascii_case(suffix) {
            found = count.parse().unwrap_or(u64::MAX);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn only_https_or_loopback_http() {
        let c = || RangeClient::new();
        assert!(c().with_base_url("https://mirror.example/range/").is_ok());
        assert!(c().with_base_url("http://127.0.0.1:8080/range/").is_ok());
        assert!(c().with_base_url("http://localhost/range/").is_ok());
        assert!(c().with_base_url("http://[::1]:9/range/").is_ok());
        for bad in [
            "http://mirror.example/range/",
            "http://127.0.0.1.evil.example/range/",
            "ftp://x/",
            "https:///range/",
        ] {
            assert!(
                matches!(c().with_base_url(bad), Err(Error::BadUrl(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn padding_lines_count_zero_and_case_does_not_matter() {
        let body = "0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n\
                    00D4F6E8FA6EECAD2A3AA415EEC418D38EC:0\r\n\
                    1E4C9B93F3F0682250B6CF8331B7EE68FD8:52256179\r\n";
        assert_eq!(
            parse_range(body, "1e4c9b93f3f0682250b6cf8331b7ee68fd8").unwrap(),
            52_256_179
        );
        assert_eq!(
            parse_range(body, "00D4F6E8FA6EECAD2A3AA415EEC418D38EC").unwrap(),
            0
        );
        assert!(parse_range("garbage\r\n", "00D4F6E8FA6EECAD2A3AA415EEC418D38EC").is_err());
    }

    proptest! {
        #[test]
        fn any_response_is_an_answer_or_an_error(body in ".{0,400}") {
            let _ = parse_range(&body, "1E4C9B93F3F0682250B6CF8331B7EE68FD8");
        }
    }
}
