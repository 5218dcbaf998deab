//! Sealed customer data, awaited.

use std::sync::Arc;

use super::pool::blocking;
use crate::kernel::AccountId;
use crate::minimize::Pii;
use crate::seal::{BlindIndex, Column, Erasure, Error, KeyStore, Replay, Sealed, Sealer};

/// A [`Sealer`] for async handlers: every call runs on tokio's blocking threads (the
/// sealing is microseconds, the key-store read is I/O). Build the `Sealer` off the
/// runtime too (`Sealer::new` reads the key source and the store).
pub struct AsyncSealer<S> {
    inner: Arc<Sealer<S>>,
}

impl<S> Clone for AsyncSealer<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S> core::fmt::Debug for AsyncSealer<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AsyncSealer").finish_non_exhaustive()
    }
}

impl<S: KeyStore + 'static> AsyncSealer<S> {
    /// Wraps `sealer`.
    #[must_use]
    pub fn new(sealer: Sealer<S>) -> Self {
        Self {
            inner: Arc::new(sealer),
        }
    }

    /// The sync sealer (for [`Sealer::rewrap`] and batches: run them with
    /// [`super::blocking`]).
    #[must_use]
    pub fn sync(&self) -> &Arc<Sealer<S>> {
        &self.inner
    }

    /// [`Sealer::seal`], awaited.
    ///
    /// # Errors
    /// As [`Sealer::seal`].
    pub async fn seal(
        &self,
        customer: AccountId,
        column: Column,
        record: String,
        value: Pii<String>,
    ) -> Result<Sealed, Error> {
        let sealer = Arc::clone(&self.inner);
        blocking(move || sealer.seal(&customer, &column, &record, &value)).await
    }

    /// [`Sealer::open`], awaited.
    ///
    /// # Errors
    /// As [`Sealer::open`].
    pub async fn open(
        &self,
        customer: AccountId,
        column: Column,
        record: String,
        sealed: Sealed,
    ) -> Result<Pii<String>, Error> {
        let sealer = Arc::clone(&self.inner);
        blocking(move || sealer.open(&customer, &column, &record, &sealed)).await
    }

    /// [`Sealer::open_all`], awaited: one key-store read for the batch.
    ///
    /// # Errors
    /// As [`Sealer::open_all`].
    pub async fn open_all(
        &self,
        column: Column,
        rows: Vec<(AccountId, String, Sealed)>,
    ) -> Result<Vec<Result<Pii<String>, Error>>, Error> {
        let sealer = Arc::clone(&self.inner);
        blocking(move || sealer.open_all(&column, &rows)).await
    }

    /// [`Sealer::blind_index`], awaited (a store read only on the column's first use).
    ///
    /// # Errors
    /// As [`Sealer::blind_index`].
    pub async fn blind_index(
        &self,
        column: Column,
        value: Pii<String>,
    ) -> Result<BlindIndex, Error> {
        let sealer = Arc::clone(&self.inner);
        blocking(move || sealer.blind_index(&column, &value)).await
    }

    /// [`Sealer::erase`], awaited. A dropped future does not stop it: the erasure runs
    /// to its end on the blocking thread (a half-done batch is never left behind by a
    /// client that hung up).
    ///
    /// # Errors
    /// As [`Sealer::erase`].
    pub async fn erase(
        &self,
        customers: Vec<AccountId>,
        erasure: Erasure,
        batch: usize,
    ) -> Result<u64, Error> {
        let sealer = Arc::clone(&self.inner);
        blocking(move || sealer.erase(&customers, &erasure, batch, |_| {})).await
    }

    /// [`Sealer::replay`], awaited.
    ///
    /// # Errors
    /// As [`Sealer::replay`].
    pub async fn replay(&self, batch: usize) -> Result<Replay, Error> {
        let sealer = Arc::clone(&self.inner);
        blocking(move || sealer.replay(batch, |_| {})).await
    }
}
