//! The login path and the reset path: `Authenticator`.

use std::sync::Arc;
use std::time::Duration;

use super::Error;
use super::clock::{Clock, SystemClock};
use super::ratelimit::{Admission, AttemptOutcome, InMemoryRateLimiter, RateLimiter};
use super::reset_token::{BrandLinks, ResetLink, ResetToken};
use crate::kernel::{AccountId, BrandId};
use crate::password::{
    AcceptancePolicy, Error as PasswordError, Hasher, Password, PasswordContext, PasswordHash,
    Rejection, Verification,
};
use crate::rotation::{
    CredentialFlags, CredentialRecord, CredentialStore, IncidentId, IncidentScope, IncidentStore,
    RedeemOutcome, Redemption, ResetTokenStore, SecurityStamp, TokenPurpose, TokenRecord,
};

/// Default lifetime of a token sent by an incident campaign (OWASP: short-lived; a breach
/// notice may sit unread over a weekend, hence days, like one Python framework's default).
pub const INCIDENT_TOKEN_TTL: Duration = Duration::from_secs(72 * 3600);
/// Default lifetime of a "forgot password" token.
pub const SELF_SERVICE_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// Default number of previous passwords a reset may not reuse.
pub const DEFAULT_HISTORY: usize = 5;
/// Default limits on "forgot password" requests: per account and per source, per hour.
pub const RESET_REQUESTS_PER_HOUR: (u32, u32) = (5, 50);

/// What the login path decided.
#[must_use = "a login decision that is not looked at lets everyone in or no one"]
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginDecision {
    /// The password is right and the credential is not compromised: start a session that
    /// carries `session_stamp` and check it with [`Authenticator::validate_session`].
    Accepted {
        /// The credential's current security stamp.
        session_stamp: SecurityStamp,
        /// Whether an upgraded hash was written back.
        rehashed: bool,
    },
    /// The credential must be reset before any login. Decided *without* checking the
    /// password: a cracked copy of a compromised hash must be worth nothing.
    ///
    /// # Security
    /// Show the same page as for [`LoginDecision::Rejected`] ("if this account exists, we
    /// have sent a reset link"), or the answer tells anyone which accounts exist.
    ResetRequired {
        /// Why.
        reason: ResetReason,
    },
    /// The password is right, but the account is past its failure limit (someone else
    /// is guessing) and this source has no failure on it: the limiter let it through so
    /// that the customer is not locked out by the attacker. Ask for a second signal (a
    /// CAPTCHA, a code mailed to the customer) and start the session with
    /// `session_stamp` only when it passes; treat a failed one as a failed login. The
    /// attempt counts as a failure of this source on the account, exactly as a wrong
    /// password would: nothing the limiter answers afterwards tells the two apart, and
    /// the lockout stays until a plain `Accepted`.
    SecondSignalRequired {
        /// The credential's current security stamp, for the session once the second
        /// signal passes.
        session_stamp: SecurityStamp,
    },
    /// Wrong password, unknown or disabled account: the same answer and the same cost.
    Rejected,
    /// Too many failures for this account or source; try again later.
    Throttled {
        /// When to retry.
        retry_after: Duration,
    },
}

/// Why a reset is required.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResetReason {
    /// The credential was set at or before this incident's cutoff and is in its scope.
    Incident(IncidentId),
    /// An operator flagged the account ([`CredentialFlags::MUST_RESET`]).
    Flagged,
}

/// Login, session checks, self-service reset and token redemption over a store.
///
/// # Examples
/// See `examples/login_flow.rs` and [`guide::breach_day`](crate::guide::breach_day).
pub struct Authenticator<S> {
    store: Arc<S>,
    hasher: Arc<Hasher>,
    policy: AcceptancePolicy,
    rate: Arc<dyn RateLimiter>,
    reset_rate: Arc<dyn RateLimiter>,
    clock: Arc<dyn Clock>,
    links: BrandLinks,
    history: usize,
    self_service_ttl: Duration,
}

impl<S> core::fmt::Debug for Authenticator<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Authenticator")
            .field("hasher", &self.hasher)
            .field("history", &self.history)
            .finish_non_exhaustive()
    }
}

impl<S: CredentialStore + IncidentStore + ResetTokenStore> Authenticator<S> {
    /// An authenticator with the single-factor acceptance policy, the in-memory rate
    /// limiter, the system clock, a history of 5 and no reset links (set them with
    /// [`with_links`](Self::with_links) before [`request_reset`](Self::request_reset)).
    pub fn new(store: Arc<S>, hasher: Arc<Hasher>) -> Self {
        Self {
            store,
            hasher,
            policy: AcceptancePolicy::single_factor(),
            rate: Arc::new(InMemoryRateLimiter::default()),
            reset_rate: Arc::new(InMemoryRateLimiter::new(
                RESET_REQUESTS_PER_HOUR.0,
                RESET_REQUESTS_PER_HOUR.1,
                Duration::from_secs(3600),
            )),
            clock: Arc::new(SystemClock),
            links: BrandLinks::new(),
            history: DEFAULT_HISTORY,
            self_service_ttl: SELF_SERVICE_TOKEN_TTL,
        }
    }

    /// The acceptance policy for new passwords.
    #[must_use]
    pub fn with_policy(mut self, policy: AcceptancePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The rate-limiting hook of the login path.
    #[must_use]
    pub fn with_rate_limiter(mut self, rate: Arc<dyn RateLimiter>) -> Self {
        self.rate = rate;
        self
    }

    /// The rate-limiting hook of "forgot password" requests (default: 5 per account and
    /// 50 per source per hour, in memory). Every request counts, known account or not.
    #[must_use]
    pub fn with_reset_rate_limiter(mut self, rate: Arc<dyn RateLimiter>) -> Self {
        self.reset_rate = rate;
        self
    }

    /// The clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Per-brand reset link templates, for self-service resets.
    #[must_use]
    pub fn with_links(mut self, links: BrandLinks) -> Self {
        self.links = links;
        self
    }

    /// How many previous passwords a reset may not reuse (0 turns the history off).
    #[must_use]
    pub fn with_history(mut self, history: usize) -> Self {
        self.history = history;
        self
    }

    /// The hasher.
    #[must_use]
    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    /// Creates an account's credential, after the acceptance policy.
    ///
    /// # Errors
    /// [`Error::PasswordRejected`], [`Error::Store`] (e.g. the account exists),
    /// [`Error::Password`].
    pub fn register(
        &self,
        account: &AccountId,
        brands: &[BrandId],
        password: &Password,
        context: &PasswordContext,
    ) -> Result<(), Error> {
        self.policy
            .check(password, context)
            .map_err(Error::PasswordRejected)?;
        let hash = self.hasher.hash(password)?;
        let stamp = SecurityStamp::generate()?;
        self.store
            .insert_credential(account, brands, &hash, &stamp, self.clock.now())?;
        Ok(())
    }

    /// [`login_from`](Self::login_from) with no source: only the per-account limit applies
    /// (with the default limiter).
    ///
    /// # Errors
    /// As [`login_from`](Self::login_from).
    pub fn login(&self, account: &AccountId, password: &Password) -> Result<LoginDecision, Error> {
        self.login_from(account, password, "")
    }

    /// Decides a login attempt from `source` (an IP address, a device id).
    ///
    /// Order: reserve the attempt with the rate limiter (it counts from here on, so
    /// concurrent guesses cannot all pass); load; compromised (open incident or flag) →
    /// `ResetRequired` without checking the password; unknown or disabled → decoy verify,
    /// `Rejected`; verify → `Accepted` (writing an upgraded hash back) or `Rejected`.
    /// Every path that reads the password costs one argon2id at the current policy, and
    /// every path but `Accepted` counts as a failure, so neither the time nor the
    /// throttle tells a compromised account from an unknown or ordinary one.
    ///
    /// # Errors
    /// [`Error::Password`] with [`PasswordError::Overloaded`] when hashing is saturated
    /// (answer 503; the reservation is given back, as nothing was checked);
    /// [`Error::RateLimiterUnavailable`] (the limiter could not answer: the attempt is
    /// refused unchecked); [`Error::Store`].
    pub fn login_from(
        &self,
        account: &AccountId,
        password: &Password,
        source: &str,
    ) -> Result<LoginDecision, Error> {
        let now = self.clock.now();
        let reservation = match self
            .rate
            .reserve(account, source, now)
            .map_err(Error::RateLimiterUnavailable)?
        {
            Admission::Allowed(r) => r,
            Admission::Throttled { retry_after } => {
                crate::events::throttled("login", retry_after);
                crate::events::login("throttled", account.as_str());
                return Ok(LoginDecision::Throttled { retry_after });
            }
        };
        // Whatever happens below, the reservation is settled: a panic or an early return
        // leaves it counted as a failure (fail closed).
        let decided = self
            .decide_login(account, password, reservation.second_signal_required())
            .map(|d| match d {
                LoginDecision::Accepted { session_stamp, .. }
                    if reservation.second_signal_required() =>
                {
                    LoginDecision::SecondSignalRequired { session_stamp }
                }
                other => other,
            });
        let outcome = match &decided {
            Ok(LoginDecision::Accepted { .. }) => AttemptOutcome::Success,
            // Counted as the wrong password it might have been: what the next attempt
            // answers must not tell the two apart, and the lock stays.
            Ok(LoginDecision::SecondSignalRequired { .. }) => AttemptOutcome::Failure,
            Err(Error::Password(PasswordError::Overloaded { .. })) => AttemptOutcome::NotTried,
            _ => AttemptOutcome::Failure,
        };
        self.rate
            .settle(reservation, outcome, self.clock.now())
            .map_err(Error::RateLimiterUnavailable)?;
        if let Ok(d) = &decided {
            let outcome = match d {
                LoginDecision::Accepted { .. } => "accepted",
                LoginDecision::ResetRequired { .. } => "reset_required",
                LoginDecision::SecondSignalRequired { .. } => "second_signal",
                LoginDecision::Throttled { .. } => "throttled",
                LoginDecision::Rejected => "rejected",
            };
            crate::events::login(outcome, account.as_str());
        }
        decided
    }

    /// The login decision once the attempt is reserved.
    /// `quiet`: a second signal is due, so a right password must cost what a wrong one
    /// does (no rehash, no write-back; the next plain login upgrades the hash).
    fn decide_login(
        &self,
        account: &AccountId,
        password: &Password,
        quiet: bool,
    ) -> Result<LoginDecision, Error> {
        let record = self.store.load_credential(account)?;
        let Some(record) = record.filter(|r| !r.flags.contains(CredentialFlags::DISABLED)) else {
            // The reads a known account's check makes (its incidents), then the decoy
            // verify: the same work, so the same timing class.
            let _ = self.store.incidents()?;
            let _ = self.hasher.dummy_verify(password)?;
            return Ok(LoginDecision::Rejected);
        };
        if let Some(reason) = self.reset_reason(&record)? {
            // Same cost as a real verify, so the answer's timing says nothing more.
            let _ = self.hasher.dummy_verify(password)?;
            return Ok(LoginDecision::ResetRequired { reason });
        }
        match self.hasher.verify_then(password, &record.hash, !quiet)? {
            Verification::Mismatch => Ok(LoginDecision::Rejected),
            Verification::Match { rehash } => {
                let rehashed = match rehash {
                    Some(new) => self.store.replace_hash(account, record.generation, &new)?,
                    None => false,
                };
                Ok(LoginDecision::Accepted {
                    session_stamp: record.stamp,
                    rehashed,
                })
            }
        }
    }

    /// Whether a session carrying `stamp` is still valid: false once the password changed
    /// (by reset) or the account is unknown, disabled or must reset.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub fn validate_session(
        &self,
        account: &AccountId,
        stamp: &SecurityStamp,
    ) -> Result<bool, Error> {
        let Some(record) = self.store.load_credential(account)? else {
            return Ok(false);
        };
        Ok(record.stamp == *stamp
            && !record.flags.contains(CredentialFlags::DISABLED)
            && self.reset_reason(&record)?.is_none())
    }

    /// Why `record` must be reset, if it must: O(number of incidents), one indexed lookup
    /// per account-list incident; nothing is rewritten when an incident is declared.
    fn reset_reason(&self, record: &CredentialRecord) -> Result<Option<ResetReason>, Error> {
        if record.flags.contains(CredentialFlags::MUST_RESET) {
            return Ok(Some(ResetReason::Flagged));
        }
        for incident in self.store.incidents()? {
            if !incident.compromises_set_at(record.set_at) {
                continue;
            }
            let in_scope = match &incident.scope {
                IncidentScope::All => true,
                IncidentScope::Brand(b) => record.brands.contains(b),
                IncidentScope::Accounts => self.store.is_listed(incident.id, &record.account)?,
            };
            if in_scope {
                return Ok(Some(ResetReason::Incident(incident.id)));
            }
        }
        Ok(None)
    }

    /// [`request_reset_from`](Self::request_reset_from) with no source: only the
    /// per-account limit applies (with the default limiter).
    ///
    /// # Errors
    /// As [`request_reset_from`](Self::request_reset_from).
    pub fn request_reset(
        &self,
        account: &AccountId,
        brand: Option<&BrandId>,
    ) -> Result<Option<ResetLink>, Error> {
        self.request_reset_from(account, brand, "")
    }

    /// "Forgot password" from `source`: issues a one-hour token and returns the link to
    /// email, or `None` for an unknown account.
    ///
    /// A request never touches the account's incident tokens (a breach notice's link keeps
    /// working however often someone asks for a reset), and keeps the account's newest
    /// [`SELF_SERVICE_LIVE`](crate::rotation::SELF_SERVICE_LIVE) self-service tokens (older
    /// and expired ones are dropped). Requests are limited per account and per source
    /// ([`with_reset_rate_limiter`](Self::with_reset_rate_limiter)), counted alike for
    /// known and unknown accounts. An unknown account costs the same work as a known one,
    /// store write included: a decoy token is written under an id no account can have,
    /// already expired, and the same bound keeps those rows few however long a spray of
    /// unknown names goes on.
    ///
    /// # Security
    /// Answer the web request identically in every case (sent, unknown, throttled), and
    /// send the email off the request path (a queue), so neither the page nor its timing
    /// says whether the account exists. Asking for a reset never locks or changes the
    /// account.
    ///
    /// # Errors
    /// [`Error::ResetThrottled`], [`Error::RateLimiterUnavailable`],
    /// [`Error::NoTemplateForBrand`], [`Error::Store`], [`Error::Rng`].
    pub fn request_reset_from(
        &self,
        account: &AccountId,
        brand: Option<&BrandId>,
        source: &str,
    ) -> Result<Option<ResetLink>, Error> {
        let now = self.clock.now();
        match self
            .reset_rate
            .reserve(account, source, now)
            .map_err(Error::RateLimiterUnavailable)?
        {
            // A request past the account's limit has no second signal to give: the limit
            // protects the customer's inbox, so it is refused (and given back).
            Admission::Allowed(r) if r.second_signal_required() => {
                self.reset_rate
                    .settle(r, AttemptOutcome::NotTried, now)
                    .map_err(Error::RateLimiterUnavailable)?;
                return Err(Error::ResetThrottled {
                    retry_after: Duration::from_secs(
                        3600 / u64::from(RESET_REQUESTS_PER_HOUR.0.max(1)),
                    ),
                });
            }
            // Every request counts, whatever its outcome: it is never settled otherwise.
            Admission::Allowed(r) => self
                .reset_rate
                .settle(r, AttemptOutcome::Failure, now)
                .map_err(Error::RateLimiterUnavailable)?,
            Admission::Throttled { retry_after } => {
                crate::events::throttled("reset", retry_after);
                return Err(Error::ResetThrottled { retry_after });
            }
        }
        // Made before the lookup, so known and unknown accounts cost the same up to here.
        let (token, digest) = ResetToken::generate(account)?;
        let record = self.store.load_credential(account)?;
        let (link, owner, generation) = match &record {
            Some(record) => (
                Some(self.links.link(brand.or(record.brands.first()), &token)?),
                account.clone(),
                record.generation,
            ),
            None => (None, AccountId::decoy(), 0),
        };
        let rec = TokenRecord::new(
            digest,
            owner,
            generation,
            TokenPurpose::SelfService,
            now,
            if link.is_some() {
                self.self_service_ttl
            } else {
                Duration::ZERO
            },
        );
        self.store.issue_token(&rec)?;
        if link.is_some() {
            crate::events::reset("issued", "self_service", account.as_str());
        }
        Ok(link)
    }

    /// Redeems a reset token: checks the new password (acceptance policy, not the current
    /// — compromised — password, not one of the last N), then atomically writes it, bumps
    /// the generation and the security stamp (every session and every older token dies).
    /// Does not log the customer in (OWASP): send them to the login page, and send a
    /// "your password was changed" email.
    ///
    /// # Errors
    /// [`Error::TokenUnknown`], [`Error::TokenAlreadyUsed`], [`Error::TokenExpired`],
    /// [`Error::TokenSuperseded`], [`Error::PasswordRejected`] (the token stays usable),
    /// [`Error::Password`], [`Error::Store`]. None of them says whether an account exists.
    pub fn redeem(
        &self,
        token: &ResetToken,
        new_password: &Password,
        context: &PasswordContext,
    ) -> Result<AccountId, Error> {
        let now = self.clock.now();
        let digest = token.digest();
        // Cheap checks first: a garbage token costs one indexed lookup, no hashing.
        let found = self
            .store
            .find_token(token.account(), &digest)?
            .ok_or(Error::TokenUnknown)?;
        if found.used_at.is_some() {
            return Err(Error::TokenAlreadyUsed);
        }
        if found.expires_at <= now {
            return Err(Error::TokenExpired);
        }
        self.policy
            .check(new_password, context)
            .map_err(Error::PasswordRejected)?;
        // A disabled account (an erased customer's, or one an operator shut) takes no
        // new password through a link sent before: the link answers as unknown.
        let record = self
            .store
            .load_credential(&found.account)?
            .filter(|r| !r.flags.contains(CredentialFlags::DISABLED))
            .ok_or(Error::TokenUnknown)?;
        if record.generation != found.generation {
            // A concurrent redemption of this very token may have bumped the generation
            // between the two reads: then the truthful answer is "already used".
            let used = self
                .store
                .find_token(token.account(), &digest)?
                .is_some_and(|t| t.used_at.is_some());
            return Err(if used {
                Error::TokenAlreadyUsed
            } else {
                Error::TokenSuperseded
            });
        }
        if self.matches(new_password, &record.hash)? {
            let why = if self.reset_reason(&record)?.is_some() {
                Rejection::Compromised
            } else {
                Rejection::RecentlyUsed
            };
            return Err(Error::PasswordRejected(why));
        }
        for old in self.store.password_history(&found.account, self.history)? {
            if self.matches(new_password, &old)? {
                return Err(Error::PasswordRejected(Rejection::RecentlyUsed));
            }
        }
        let new_hash = self.hasher.hash(new_password)?;
        let new_stamp = SecurityStamp::generate()?;
        let outcome = self.store.redeem_token(&Redemption::new(
            token.account(),
            digest,
            now,
            &new_hash,
            &new_stamp,
            self.history,
        ))?;
        match outcome {
            RedeemOutcome::Redeemed { account } => {
                let purpose = match found.purpose {
                    TokenPurpose::SelfService => "self_service",
                    TokenPurpose::Incident => "incident",
                };
                crate::events::reset("redeemed", purpose, account.as_str());
                Ok(account)
            }
            RedeemOutcome::AlreadyUsed => Err(Error::TokenAlreadyUsed),
            RedeemOutcome::Expired => Err(Error::TokenExpired),
            RedeemOutcome::Superseded => Err(Error::TokenSuperseded),
            _ => Err(Error::TokenUnknown),
        }
    }

    /// Whether `password` matches an old hash; hashes under a retired pepper or beyond the
    /// verify limits cannot be checked and count as no match.
    fn matches(&self, password: &Password, hash: &PasswordHash) -> Result<bool, Error> {
        match self.hasher.verify(password, hash) {
            Ok(v) => Ok(v.is_match()),
            Err(
                PasswordError::UnknownKeyId { .. }
                | PasswordError::PepperMissing { .. }
                | PasswordError::TooExpensive { .. },
            ) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
