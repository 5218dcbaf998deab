//! The kit: what the extractors need from the service's state.

use std::sync::Arc;

use crate::aio::AsyncSessions;
use crate::rotation::{SessionStore, Sessions};

use super::source::Cidr;

/// The default name of the session cookie: `__Host-` makes a browser refuse it unless it
/// is `Secure`, for `Path=/` and without a `Domain` (no sibling subdomain can set it).
pub const DEFAULT_COOKIE: &str = "__Host-session";

/// The default origin of the shop (`--origin` of the shop server).
pub const DEFAULT_ORIGIN: &str = "https://shop.example";

/// The header a cookie client without `Origin` and `Sec-Fetch-Site` sends its CSRF
/// token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What the web layer's extractors read from the service's state: the sessions, the
/// cookie's name, the shop's origin (the cross-site check) and the trusted proxies (the
/// client source). Cheap to clone; give the state a `FromRef` to it (or make it the state).
///
/// # Examples
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use std::sync::Arc;
/// use shopsafe::rotation::Sessions;
/// use shopsafe::store::sqlite::SqliteStore;
/// use shopsafe::web::Kit;
///
/// # let dir = tempfile::tempdir()?;
/// let store = Arc::new(SqliteStore::open(dir.path().join("customers.db"))?);
/// let kit = Kit::new(Sessions::new(store))
///     .with_origin("https://shop.example")?
///     .with_trusted_proxies(vec!["10.0.0.0/8".parse()?]);
/// assert_eq!(kit.cookie_name(), "__Host-session");
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Kit {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    sessions: AsyncSessions<dyn SessionStore>,
    cookie: String,
    origin: String,
    proxies: Vec<Cidr>,
}

impl core::fmt::Debug for Kit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Kit")
            .field("cookie", &self.inner.cookie)
            .field("origin", &self.inner.origin)
            .field("proxies", &self.inner.proxies)
            .finish_non_exhaustive()
    }
}

/// A setting the kit refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KitError {
    /// Not an origin: `scheme://host[:port]`, no path, no trailing slash.
    #[error("not an origin (scheme://host[:port])")]
    InvalidOrigin,
    /// Not a cookie name (RFC 6265 token characters).
    #[error("not a cookie name")]
    InvalidCookieName,
}

impl Kit {
    /// The kit for `sessions`, with the default cookie name, origin, and no trusted proxy.
    #[must_use]
    pub fn new<S: SessionStore + 'static>(sessions: Sessions<S>) -> Self {
        Self::from_async(AsyncSessions::new(sessions.into_dyn()))
    }

    /// The kit for sessions the service already shares.
    #[must_use]
    pub fn from_async(sessions: AsyncSessions<dyn SessionStore>) -> Self {
        Self {
            inner: Arc::new(Inner {
                sessions,
                cookie: DEFAULT_COOKIE.to_owned(),
                origin: DEFAULT_ORIGIN.to_owned(),
                proxies: Vec::new(),
            }),
        }
    }

    /// A setting changed: in place, or on a copy when the kit is already shared.
    fn edit(mut self, f: impl FnOnce(&mut Inner)) -> Self {
        f(Arc::make_mut(&mut self.inner));
        self
    }

    /// The shop's origin, which a state-changing request by cookie must come from.
    ///
    /// # Errors
    /// [`KitError::InvalidOrigin`] unless it is `scheme://host[:port]` as a browser
    /// writes `Origin` (lower case, no path, no trailing slash).
    pub fn with_origin(self, origin: &str) -> Result<Self, KitError> {
        let url = url::Url::parse(origin).map_err(|_| KitError::InvalidOrigin)?;
        let serialized = url.origin().ascii_serialization();
        if serialized != origin || serialized == "null" {
            return Err(KitError::InvalidOrigin);
        }
        Ok(self.edit(|i| i.origin = serialized))
    }

    /// The session cookie's name (default [`DEFAULT_COOKIE`]).
    ///
    /// # Errors
    /// [`KitError::InvalidCookieName`] for an empty name or one with characters a
    /// cookie name may not have.
    pub fn with_cookie_name(self, name: &str) -> Result<Self, KitError> {
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || !name.bytes().all(token) {
            return Err(KitError::InvalidCookieName);
        }
        Ok(self.edit(|i| i.cookie = name.to_owned()))
    }

    /// The proxies whose `X-Forwarded-For` is believed.
    #[must_use]
    pub fn with_trusted_proxies(self, proxies: Vec<Cidr>) -> Self {
        self.edit(|i| i.proxies = proxies)
    }

    /// The sessions.
    #[must_use]
    pub fn sessions(&self) -> &AsyncSessions<dyn SessionStore> {
        &self.inner.sessions
    }

    /// The session cookie's name.
    #[must_use]
    pub fn cookie_name(&self) -> &str {
        &self.inner.cookie
    }

    /// The shop's origin.
    #[must_use]
    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// The trusted proxies.
    #[must_use]
    pub fn trusted_proxies(&self) -> &[Cidr] {
        &self.inner.proxies
    }
}
