//! Server-side sessions, awaited.

use std::sync::Arc;

use super::pool::blocking;
use crate::kernel::AccountId;
use crate::rotation::{
    DeviceToken, Error, IncidentId, Remembered, SecurityStamp, SessionId, SessionRecord,
    SessionStore, SessionToken, Sessions,
};

/// [`Sessions`] for async handlers: every call runs on tokio's blocking threads (each is
/// one or two store calls). The arguments are the sync calls' own (borrowed): what must
/// cross to the blocking thread is copied inside.
///
/// `S` may be unsized: `AsyncSessions<dyn SessionStore>` is what
/// [`web::Kit`](crate::web) holds when the feature `axum` is on.
pub struct AsyncSessions<S: ?Sized> {
    inner: Arc<Sessions<S>>,
}

impl<S: ?Sized> Clone for AsyncSessions<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: ?Sized> core::fmt::Debug for AsyncSessions<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AsyncSessions").finish_non_exhaustive()
    }
}

impl<S: SessionStore + ?Sized + 'static> AsyncSessions<S> {
    /// Wraps `sessions`.
    #[must_use]
    pub fn new(sessions: Sessions<S>) -> Self {
        Self {
            inner: Arc::new(sessions),
        }
    }

    /// The sync sessions (for code already on a blocking thread).
    #[must_use]
    pub fn sync(&self) -> &Arc<Sessions<S>> {
        &self.inner
    }

    /// [`Sessions::start`], awaited.
    ///
    /// # Errors
    /// As [`Sessions::start`].
    pub async fn start(
        &self,
        account: &AccountId,
        stamp: &SecurityStamp,
        source: &str,
        agent: &str,
    ) -> Result<(SessionToken, SessionRecord), Error> {
        let inner = Arc::clone(&self.inner);
        let (account, stamp) = (account.clone(), stamp.clone());
        let (source, agent) = (source.to_owned(), agent.to_owned());
        blocking(move || inner.start(&account, &stamp, &source, &agent)).await
    }

    /// [`Sessions::validate`], awaited.
    ///
    /// # Errors
    /// As [`Sessions::validate`].
    pub async fn validate(&self, token: &SessionToken) -> Result<Option<SessionRecord>, Error> {
        let inner = Arc::clone(&self.inner);
        let token = token.duplicate();
        blocking(move || inner.validate(&token)).await
    }

    /// [`Sessions::list`], awaited.
    ///
    /// # Errors
    /// As [`Sessions::list`].
    pub async fn list(&self, account: &AccountId) -> Result<Vec<SessionRecord>, Error> {
        let inner = Arc::clone(&self.inner);
        let account = account.clone();
        blocking(move || inner.list(&account)).await
    }

    /// [`Sessions::end`], awaited.
    ///
    /// # Errors
    /// As [`Sessions::end`].
    pub async fn end(&self, account: &AccountId, id: &SessionId) -> Result<bool, Error> {
        let inner = Arc::clone(&self.inner);
        let (account, id) = (account.clone(), id.clone());
        blocking(move || inner.end(&account, &id)).await
    }

    /// [`Sessions::end_token`], awaited (a sign-out).
    ///
    /// # Errors
    /// As [`Sessions::end_token`].
    pub async fn end_token(&self, token: &SessionToken) -> Result<bool, Error> {
        let inner = Arc::clone(&self.inner);
        let token = token.duplicate();
        blocking(move || inner.end_token(&token)).await
    }

    /// [`Sessions::end_all_of`], awaited.
    ///
    /// # Errors
    /// As [`Sessions::end_all_of`].
    pub async fn end_all_of(&self, account: &AccountId) -> Result<u64, Error> {
        let inner = Arc::clone(&self.inner);
        let account = account.clone();
        blocking(move || inner.end_all_of(&account)).await
    }

    /// [`Sessions::end_incident`], awaited.
    ///
    /// # Errors
    /// As [`Sessions::end_incident`].
    pub async fn end_incident(&self, incident: IncidentId) -> Result<u64, Error> {
        let inner = Arc::clone(&self.inner);
        blocking(move || inner.end_incident(incident)).await
    }

    /// [`Sessions::end_everyone`], awaited.
    ///
    /// # Errors
    /// As [`Sessions::end_everyone`].
    pub async fn end_everyone(&self) -> Result<u64, Error> {
        let inner = Arc::clone(&self.inner);
        blocking(move || inner.end_everyone()).await
    }

    /// [`Sessions::rotate`], awaited.
    ///
    /// # Errors
    /// As [`Sessions::rotate`].
    pub async fn rotate(&self, token: &SessionToken) -> Result<Option<SessionToken>, Error> {
        let inner = Arc::clone(&self.inner);
        let token = token.duplicate();
        blocking(move || inner.rotate(&token)).await
    }

    /// [`Sessions::purge`], awaited.
    ///
    /// # Errors
    /// As [`Sessions::purge`].
    pub async fn purge(&self) -> Result<u64, Error> {
        let inner = Arc::clone(&self.inner);
        blocking(move || inner.purge()).await
    }

    /// [`Sessions::remember`], awaited.
    ///
    /// # Errors
    /// As [`Sessions::remember`].
    pub async fn remember(
        &self,
        account: &AccountId,
        stamp: &SecurityStamp,
    ) -> Result<DeviceToken, Error> {
        let inner = Arc::clone(&self.inner);
        let (account, stamp) = (account.clone(), stamp.clone());
        blocking(move || inner.remember(&account, &stamp)).await
    }

    /// [`Sessions::use_device`], awaited.
    ///
    /// # Errors
    /// As [`Sessions::use_device`].
    pub async fn use_device(&self, token: &DeviceToken) -> Result<Remembered, Error> {
        let inner = Arc::clone(&self.inner);
        let token = token.duplicate();
        blocking(move || inner.use_device(&token)).await
    }
}
