//! Revocable server-side sessions over a [`SessionStore`]: `Sessions`.

use std::sync::Arc;
use std::time::Duration;

use super::Error;
use super::bearer::{DeviceToken, SessionToken};
use super::clock::{Clock, SystemClock};
use super::credentials::SecurityStamp;
use super::incidents::IncidentId;
use super::sessions::{DeviceRecord, DeviceUse, SessionId, SessionRecord, SessionStore};
use crate::kernel::{AccountId, Timestamp};

/// The longest source a session keeps (an IPv6 address with a zone fits).
const MAX_SOURCE: usize = 64;

/// How long sessions and device tokens last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionPolicy {
    /// A session unused this long ends (default two hours).
    pub idle: Duration,
    /// A session ends this long after the login whatever happens (default twelve hours).
    pub absolute: Duration,
    /// `last_seen` moves at most this often (default one minute): validation is a read,
    /// and a write once a minute per session.
    pub touch_every: Duration,
    /// A remember-device token lasts this long from its issue (default thirty days).
    pub device: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(2 * 3600),
            absolute: Duration::from_secs(12 * 3600),
            touch_every: Duration::from_secs(60),
            device: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

impl SessionPolicy {
    /// The policy with other idle and absolute limits.
    #[must_use]
    pub fn with_limits(mut self, idle: Duration, absolute: Duration) -> Self {
        self.idle = idle;
        self.absolute = absolute;
        self
    }
}

/// What a remember-device token was worth.
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
pub enum Remembered {
    /// It was good: start a session for `account`, and hand the client `next` in place of
    /// the token it sent (which no longer works).
    Rotated {
        /// Whose device.
        account: AccountId,
        /// The credential's stamp, for the session.
        stamp: SecurityStamp,
        /// The token's successor.
        next: DeviceToken,
    },
    /// It had been used before: a copy is in someone else's hands. Its family is ended;
    /// ask for the password, and consider telling the customer.
    Reused {
        /// Whose.
        account: AccountId,
    },
    /// Unknown, expired, or from before a password change or an incident.
    Unknown,
}

/// Sessions: start one on an accepted login, validate it on every request, list and end
/// them, rotate on a privilege change, and remember devices.
///
/// A session is live while its row exists, its credential keeps the security stamp it
/// began with (a reset changes it), the account is neither disabled nor flagged, no
/// incident compromises the credential, and neither expiry has passed. Ending is a
/// delete: the next request with the token is refused, on every server.
///
/// # Examples
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use std::sync::Arc;
/// use shopsafe::kernel::AccountId;
/// use shopsafe::password::{Hasher, Params, Password, PasswordContext};
/// use shopsafe::rotation::{Authenticator, LoginDecision, Sessions};
/// use shopsafe::store::sqlite::SqliteStore;
///
/// # let dir = tempfile::tempdir()?;
/// let store = Arc::new(SqliteStore::open(dir.path().join("customers.db"))?);
/// # let params = Params::insecure_for_tests(256, 1, 1)?;
/// let auth = Authenticator::new(Arc::clone(&store), Arc::new(Hasher::new(params)));
/// let sessions = Sessions::new(Arc::clone(&store));
/// let jane = AccountId::new("cust-000042")?;
/// let typed = Password::new("walnut cobbler lantern river");
/// auth.register(&jane, &[], &typed, &PasswordContext::new())?;
/// let LoginDecision::Accepted { session_stamp, .. } = auth.login(&jane, &typed)? else {
///     unreachable!("the right password")
/// };
/// let (token, _) = sessions.start(&jane, &session_stamp, "203.0.113.7", "Firefox on Linux")?;
/// assert_eq!(sessions.validate(&token)?.map(|s| s.account), Some(jane.clone()));
/// assert_eq!(sessions.end_all_of(&jane)?, 1); // "sign me out everywhere"
/// assert!(sessions.validate(&token)?.is_none());
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Sessions<S: ?Sized> {
    store: Arc<S>,
    policy: SessionPolicy,
    clock: Arc<dyn Clock>,
}

impl<S: ?Sized> core::fmt::Debug for Sessions<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sessions")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<S: SessionStore + ?Sized> Sessions<S> {
    /// Sessions under the default policy and the system clock.
    pub fn new(store: Arc<S>) -> Self {
        Self {
            store,
            policy: SessionPolicy::default(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Other lifetimes.
    #[must_use]
    pub fn with_policy(mut self, policy: SessionPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Another clock (tests, simulations).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The same sessions over the store as a trait object (one type for every backend,
    /// as a service's state or the web layer's kit holds it).
    #[must_use]
    pub fn into_dyn(self) -> Sessions<dyn SessionStore>
    where
        S: Sized + 'static,
    {
        Sessions {
            store: self.store,
            policy: self.policy,
            clock: self.clock,
        }
    }

    /// The policy in force.
    #[must_use]
    pub fn policy(&self) -> &SessionPolicy {
        &self.policy
    }

    /// Starts a session for an accepted login: `stamp` is the one
    /// [`LoginDecision::Accepted`](super::LoginDecision::Accepted) carried. `source` is
    /// kept to its first 64 characters; `agent` should already be coarse
    /// ([`coarse_agent`]).
    ///
    /// # Errors
    /// [`Error::Rng`], [`Error::Store`].
    pub fn start(
        &self,
        account: &AccountId,
        stamp: &SecurityStamp,
        source: &str,
        agent: &str,
    ) -> Result<(SessionToken, SessionRecord), Error> {
        let now = self.clock.now();
        let token = SessionToken::generate()?;
        let record = SessionRecord::new(
            SessionId::generate()?,
            account.clone(),
            stamp.clone(),
            now,
            now.plus(self.policy.absolute),
            source.chars().take(MAX_SOURCE).collect(),
            agent.chars().take(MAX_SOURCE).collect(),
        );
        self.store.create_session(token.digest(), &record)?;
        Ok((token, record))
    }

    /// The session `token` opens, if it is live now: one indexed read, and a write at
    /// most once a [`touch_every`](SessionPolicy::touch_every).
    ///
    /// # Errors
    /// [`Error::Store`].
    pub fn validate(&self, token: &SessionToken) -> Result<Option<SessionRecord>, Error> {
        let now = self.clock.now();
        let Some(mut record) = self.store.live_session(token.digest())? else {
            return Ok(None);
        };
        if !self.within_limits(&record, now) {
            return Ok(None);
        }
        if record.last_seen.plus(self.policy.touch_every) <= now {
            self.store.touch_session(token.digest(), now)?;
            record.last_seen = now;
        }
        Ok(Some(record))
    }

    fn within_limits(&self, record: &SessionRecord, now: Timestamp) -> bool {
        now < record.expires_at && now < record.last_seen.plus(self.policy.idle)
    }

    /// The account's live sessions, newest first (for "where am I signed in").
    ///
    /// # Errors
    /// [`Error::Store`].
    pub fn list(&self, account: &AccountId) -> Result<Vec<SessionRecord>, Error> {
        let now = self.clock.now();
        let mut all = self.store.sessions_of(account)?;
        all.retain(|r| self.within_limits(r, now));
        Ok(all)
    }

    /// Ends the account's session `id`; whether one ended (another account's id: false).
    ///
    /// # Errors
    /// [`Error::Store`].
    pub fn end(&self, account: &AccountId, id: &SessionId) -> Result<bool, Error> {
        let ended = self.store.end_session(account, id)?;
        crate::events::sessions_ended("one", u64::from(ended));
        Ok(ended)
    }

    /// Ends the session `token` opens (a sign-out); whether there was one.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub fn end_token(&self, token: &SessionToken) -> Result<bool, Error> {
        match self.store.live_session(token.digest())? {
            Some(r) => Ok(self.store.end_session(&r.account, &r.id)?),
            None => Ok(false),
        }
    }

    /// Ends every session and remembered device of the account ("sign me out
    /// everywhere"; after a reset, an erasure); how many sessions ended.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub fn end_all_of(&self, account: &AccountId) -> Result<u64, Error> {
        let n = self.store.end_sessions_of(account)?;
        crate::events::sessions_ended("account", n);
        Ok(n)
    }

    /// Ends every session and remembered device the incident compromises (as part of its
    /// declaration); how many sessions ended. Sessions it compromises are refused from
    /// the declaration on in any case: this removes them from the lists, at once.
    ///
    /// # Errors
    /// [`Error::Store`] (`NoSuchIncident` among them).
    pub fn end_incident(&self, incident: IncidentId) -> Result<u64, Error> {
        let n = self.store.end_incident_sessions(incident)?;
        crate::events::sessions_ended("incident", n);
        Ok(n)
    }

    /// Ends every session and remembered device of everyone; how many sessions ended.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub fn end_everyone(&self) -> Result<u64, Error> {
        let n = self.store.end_all_sessions()?;
        crate::events::sessions_ended("everyone", n);
        Ok(n)
    }

    /// A new token for the session `token` opens, after a privilege change (a step-up,
    /// a password change in session): the old token stops working at once. `None` when
    /// the session is not live.
    ///
    /// # Errors
    /// [`Error::Rng`], [`Error::Store`].
    pub fn rotate(&self, token: &SessionToken) -> Result<Option<SessionToken>, Error> {
        if self.validate(token)?.is_none() {
            return Ok(None);
        }
        let next = SessionToken::generate()?;
        let now = self.clock.now();
        let rotated = self
            .store
            .rotate_session(token.digest(), next.digest(), now)?;
        crate::events::sessions_ended("rotated", u64::from(rotated));
        Ok(rotated.then_some(next))
    }

    /// Drops expired sessions and device tokens (a sweep; validation refuses them
    /// anyway); how many sessions went.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub fn purge(&self) -> Result<u64, Error> {
        let now = self.clock.now();
        let idle_before = Timestamp::from_millis(
            now.as_millis()
                .saturating_sub(i64::try_from(self.policy.idle.as_millis()).unwrap_or(i64::MAX)),
        );
        let n = self.store.purge_sessions(now, idle_before)?;
        crate::events::sessions_ended("purged", n);
        Ok(n)
    }

    /// A remember-device token for an accepted login (the customer ticked "remember this
    /// device"); ended with the account's sessions.
    ///
    /// # Errors
    /// [`Error::Rng`], [`Error::Store`].
    pub fn remember(
        &self,
        account: &AccountId,
        stamp: &SecurityStamp,
    ) -> Result<DeviceToken, Error> {
        let now = self.clock.now();
        let token = DeviceToken::generate()?;
        let record = DeviceRecord::new(
            SessionId::generate()?,
            account.clone(),
            stamp.clone(),
            now,
            now.plus(self.policy.device),
        );
        self.store.issue_device(token.digest(), &record)?;
        Ok(token)
    }

    /// Uses a remember-device token: good once, then replaced by its successor; a second
    /// use of the same token ends its whole family ([`Remembered::Reused`]).
    ///
    /// # Errors
    /// [`Error::Rng`], [`Error::Store`].
    pub fn use_device(&self, token: &DeviceToken) -> Result<Remembered, Error> {
        let now = self.clock.now();
        let next = DeviceToken::generate()?;
        let outcome = self.store.use_device(
            token.digest(),
            next.digest(),
            now,
            now.plus(self.policy.device),
        )?;
        Ok(match outcome {
            DeviceUse::Rotated(record) => Remembered::Rotated {
                account: record.account,
                stamp: record.stamp,
                next,
            },
            DeviceUse::Reused { account } => {
                // A stolen token used twice: its whole family ended.
                crate::events::sessions_ended("device_reuse", 0);
                Remembered::Reused { account }
            }
            _ => Remembered::Unknown,
        })
    }
}

/// A user agent reduced to what a customer needs to recognise a device: a browser family
/// and an operating system ("Firefox on Linux"), never the version string (which, whole,
/// nearly identifies a person).
///
/// # Examples
/// ```
/// use shopsafe::rotation::coarse_agent;
///
/// let ua = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
/// assert_eq!(coarse_agent(ua), "Firefox on Linux");
/// assert_eq!(coarse_agent(""), "unknown browser");
/// ```
#[must_use]
pub fn coarse_agent(user_agent: &str) -> String {
    let ua = user_agent;
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| *name);
    let os = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| *name);
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(o)) => format!("a browser on {o}"),
        (None, None) => "unknown browser".to_owned(),
    }
}
