//! The authenticator and the hasher, awaited.

use std::sync::Arc;

use super::pool::{HashPool, blocking};
use crate::kernel::{AccountId, BrandId};
use crate::password::{
    Error as PasswordError, Hasher, Password, PasswordContext, PasswordHash, Verification,
};
use crate::rotation::{Authenticator, Error, LoginDecision, ResetLink, ResetToken};
use crate::rotation::{CredentialStore, IncidentStore, ResetTokenStore, SecurityStamp};

/// An [`Authenticator`] for async handlers: hashing waits for a [`HashPool`] slot
/// without a thread, then runs with the store calls on tokio's blocking threads. The
/// answers, errors and timing rules are the sync ones.
///
/// # Examples
/// ```
/// # #[cfg(feature = "sqlite")]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use shopsafe::aio::AsyncAuthenticator;
/// use shopsafe::password::{Hasher, Params, Password, PasswordContext};
/// use shopsafe::rotation::{Authenticator, LoginDecision};
/// use shopsafe::kernel::{AccountId, BrandId};
/// use shopsafe::store::sqlite::SqliteStore;
///
/// # let dir = tempfile::tempdir()?;
/// let store = Arc::new(SqliteStore::open(dir.path().join("customers.db"))?);
/// # let params = Params::insecure_for_tests(1024, 1, 1)?;
/// # let hasher = Arc::new(Hasher::new(params));
/// // let hasher = Arc::new(Hasher::new(Params::owasp()));
/// let auth = AsyncAuthenticator::new(Authenticator::new(store, hasher));
/// let alice = AccountId::new("alice")?;
/// auth.register(alice.clone(), vec![BrandId::new("shoes")?],
///     Password::new("correct horse battery staple"), PasswordContext::new()).await?;
/// let decision = auth.login_from(alice, Password::new("correct horse battery staple"), "198.51.100.7").await?;
/// assert!(matches!(decision, LoginDecision::Accepted { .. }));
/// # Ok(()) }
/// # #[cfg(not(feature = "sqlite"))] fn main() {}
/// ```
pub struct AsyncAuthenticator<S> {
    inner: Arc<Authenticator<S>>,
    pool: HashPool,
}

impl<S> Clone for AsyncAuthenticator<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            pool: self.pool.clone(),
        }
    }
}

impl<S> core::fmt::Debug for AsyncAuthenticator<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AsyncAuthenticator")
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

impl<S> AsyncAuthenticator<S>
where
    S: CredentialStore + IncidentStore + ResetTokenStore + 'static,
{
    /// Wraps `auth`, with a [`HashPool`] sized from its hasher.
    #[must_use]
    pub fn new(auth: Authenticator<S>) -> Self {
        let pool = HashPool::for_hasher(auth.hasher());
        Self {
            inner: Arc::new(auth),
            pool,
        }
    }

    /// Shares `pool` (one pool per process, shared by every hashing wrapper, keeps the
    /// bound global).
    #[must_use]
    pub fn with_pool(mut self, pool: HashPool) -> Self {
        self.pool = pool;
        self
    }

    /// The sync authenticator (for code that already runs on a blocking thread).
    #[must_use]
    pub fn sync(&self) -> &Arc<Authenticator<S>> {
        &self.inner
    }

    /// The hashing pool.
    #[must_use]
    pub fn pool(&self) -> &HashPool {
        &self.pool
    }

    /// [`Authenticator::register`], awaited.
    ///
    /// # Errors
    /// As [`Authenticator::register`]; `Overloaded` (in [`Error::Password`]) when no
    /// hashing slot came free in time.
    pub async fn register(
        &self,
        account: AccountId,
        brands: Vec<BrandId>,
        password: Password,
        context: PasswordContext,
    ) -> Result<(), Error> {
        let auth = Arc::clone(&self.inner);
        self.pool
            .run(move || auth.register(&account, &brands, &password, &context))
            .await
    }

    /// [`Authenticator::login_from`], awaited.
    ///
    /// # Errors
    /// As [`Authenticator::login_from`]: `Overloaded` (in [`Error::Password`]; answer
    /// 503) when no hashing slot came free within the hasher's timeout, and then the
    /// attempt is neither checked nor counted.
    pub async fn login_from(
        &self,
        account: AccountId,
        password: Password,
        source: impl Into<String>,
    ) -> Result<LoginDecision, Error> {
        let auth = Arc::clone(&self.inner);
        let source = source.into();
        self.pool
            .run(move || auth.login_from(&account, &password, &source))
            .await
    }

    /// [`Authenticator::validate_session`], awaited (a store read, no hashing).
    ///
    /// # Errors
    /// As [`Authenticator::validate_session`].
    pub async fn validate_session(
        &self,
        account: AccountId,
        stamp: SecurityStamp,
    ) -> Result<bool, Error> {
        let auth = Arc::clone(&self.inner);
        blocking(move || auth.validate_session(&account, &stamp)).await
    }

    /// [`Authenticator::request_reset_from`], awaited (no hashing).
    ///
    /// # Errors
    /// As [`Authenticator::request_reset_from`].
    pub async fn request_reset_from(
        &self,
        account: AccountId,
        brand: Option<BrandId>,
        source: impl Into<String>,
    ) -> Result<Option<ResetLink>, Error> {
        let auth = Arc::clone(&self.inner);
        let source = source.into();
        blocking(move || auth.request_reset_from(&account, brand.as_ref(), &source)).await
    }

    /// [`Authenticator::redeem`], awaited.
    ///
    /// # Errors
    /// As [`Authenticator::redeem`]; `Overloaded` as for [`login_from`](Self::login_from).
    pub async fn redeem(
        &self,
        token: ResetToken,
        new_password: Password,
        context: PasswordContext,
    ) -> Result<AccountId, Error> {
        let auth = Arc::clone(&self.inner);
        self.pool
            .run(move || auth.redeem(&token, &new_password, &context))
            .await
    }
}

/// A [`Hasher`] for async code: each hash or verify waits for a [`HashPool`] slot without
/// a thread and runs on tokio's blocking threads.
#[derive(Clone, Debug)]
pub struct AsyncHasher {
    inner: Arc<Hasher>,
    pool: HashPool,
}

impl AsyncHasher {
    /// Wraps `hasher`, with a pool sized from it.
    #[must_use]
    pub fn new(hasher: Arc<Hasher>) -> Self {
        let pool = HashPool::for_hasher(&hasher);
        Self {
            inner: hasher,
            pool,
        }
    }

    /// Shares `pool` with other wrappers.
    #[must_use]
    pub fn with_pool(mut self, pool: HashPool) -> Self {
        self.pool = pool;
        self
    }

    /// [`Hasher::hash`], awaited.
    ///
    /// # Errors
    /// As [`Hasher::hash`]; `Overloaded` when no slot came free in time.
    pub async fn hash(&self, password: Password) -> Result<PasswordHash, PasswordError> {
        let hasher = Arc::clone(&self.inner);
        self.pool.run(move || hasher.hash(&password)).await
    }

    /// [`Hasher::dummy_verify`], awaited: the cost of a verify for a caller that has no
    /// account to check (an id that does not even parse), so the answer takes as long.
    ///
    /// # Errors
    /// As [`Hasher::dummy_verify`]; `Overloaded` when no slot came free in time.
    pub async fn dummy_verify(&self, password: Password) -> Result<Verification, PasswordError> {
        let hasher = Arc::clone(&self.inner);
        self.pool.run(move || hasher.dummy_verify(&password)).await
    }

    /// [`Hasher::verify`], awaited.
    ///
    /// # Errors
    /// As [`Hasher::verify`]; `Overloaded` when no slot came free in time.
    pub async fn verify(
        &self,
        password: Password,
        stored: PasswordHash,
    ) -> Result<Verification, PasswordError> {
        let hasher = Arc::clone(&self.inner);
        self.pool
            .run(move || hasher.verify(&password, &stored))
            .await
    }
}
