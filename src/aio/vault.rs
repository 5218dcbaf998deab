//! The card vault, awaited.

use std::sync::Arc;

use super::pool::blocking;
use crate::card::{
    CardOnFile, CardToken, DetokenizeGrant, Error, Expiry, Pan, Purpose, Vault, VaultStore,
};

/// A [`Vault`] for async handlers: every call runs on tokio's blocking threads (sealing
/// is microseconds, but the store call is I/O).
///
/// Build the `Vault` itself off the runtime too: `Vault::new` reads the store (its key
/// generation), which the sync PostgreSQL client cannot do on a runtime thread:
/// `AsyncVault::new(shopsafe::aio::blocking(move || Vault::new(store, keys, audit)).await?)`.
pub struct AsyncVault<S> {
    inner: Arc<Vault<S>>,
}

impl<S> Clone for AsyncVault<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S> core::fmt::Debug for AsyncVault<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AsyncVault").finish_non_exhaustive()
    }
}

impl<S: VaultStore + 'static> AsyncVault<S> {
    /// Wraps `vault`.
    #[must_use]
    pub fn new(vault: Vault<S>) -> Self {
        Self {
            inner: Arc::new(vault),
        }
    }

    /// The sync vault (rotation, rewrap, shred: run those with [`super::blocking`]).
    #[must_use]
    pub fn sync(&self) -> &Arc<Vault<S>> {
        &self.inner
    }

    /// [`Vault::grant`] (no I/O).
    ///
    /// # Security
    /// As [`Vault::grant`]: make grants in one place that authenticates the caller.
    #[must_use]
    pub fn grant(&self, purpose: Purpose, caller: &str) -> DetokenizeGrant {
        self.inner.grant(purpose, caller)
    }

    /// [`Vault::tokenize`], awaited. The number is wiped when the call ends.
    ///
    /// # Errors
    /// As [`Vault::tokenize`].
    pub async fn tokenize(&self, pan: Pan, expiry: Expiry) -> Result<CardOnFile, Error> {
        let vault = Arc::clone(&self.inner);
        blocking(move || vault.tokenize(&pan, expiry)).await
    }

    /// [`Vault::detokenize`], awaited: the audit record is written before the number
    /// comes back, as in the sync call.
    ///
    /// # Errors
    /// As [`Vault::detokenize`].
    pub async fn detokenize(&self, token: CardToken, grant: DetokenizeGrant) -> Result<Pan, Error> {
        let vault = Arc::clone(&self.inner);
        blocking(move || vault.detokenize(&token, &grant)).await
    }
}
