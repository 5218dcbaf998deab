//! The hashing pool and the one way blocking work leaves the runtime.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::password::{Error as PasswordError, Hasher};
use crate::persist::StoreError;

/// Slots for concurrent hashes: at most as many as the cores, and as many as the
/// hasher's memory budget holds at its parameters. A caller waits for a slot without
/// holding a thread, at most the hasher's timeout.
///
/// # Examples
/// ```
/// use shopsafe::aio::HashPool;
/// use shopsafe::password::{Hasher, Params};
///
/// let hasher = Hasher::builder().params(Params::owasp()).memory_budget(64 << 20).build()?;
/// let pool = HashPool::for_hasher(&hasher);
/// assert!(pool.size() >= 1 && pool.size() <= 3, "64 MiB holds three 19 MiB hashes");
/// # Ok::<(), shopsafe::password::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct HashPool {
    slots: Arc<Semaphore>,
    size: usize,
    timeout: Duration,
}

impl HashPool {
    /// A pool of `min(cores, budget / one hash's memory)` slots (at least one) with the
    /// hasher's timeout.
    #[must_use]
    pub fn for_hasher(hasher: &Hasher) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let per_hash = hasher.params().memory_bytes().max(1);
        let fit = hasher.limiter().budget_bytes() / per_hash;
        Self::new(cores.min(fit).max(1), hasher.limiter().timeout())
    }

    /// A pool of `size` slots (at least one); a caller waits at most `timeout` for one.
    #[must_use]
    pub fn new(size: usize, timeout: Duration) -> Self {
        let size = size.max(1);
        Self {
            slots: Arc::new(Semaphore::new(size)),
            size,
            timeout,
        }
    }

    /// How many hashes run at once at most.
    #[must_use]
    pub fn size(&self) -> usize {
        self.size
    }

    /// Slots free right now (all of them when nothing runs: a test of no leak).
    #[must_use]
    pub fn available(&self) -> usize {
        self.slots.available_permits()
    }

    /// Waits for a slot, without a thread, at most the timeout.
    async fn slot(&self) -> Result<OwnedSemaphorePermit, PasswordError> {
        let start = Instant::now();
        match tokio::time::timeout(self.timeout, Arc::clone(&self.slots).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // Timed out, or the semaphore was closed (never here): both are "try later".
            _ => Err(PasswordError::Overloaded {
                waited: start.elapsed(),
            }),
        }
    }

    /// Runs `f` (which hashes) on a blocking thread once a slot is free; the slot goes
    /// back when `f` returns, even if the caller stopped waiting.
    ///
    /// # Errors
    /// `Overloaded` (as `E`) when no slot came free within the timeout, or when the
    /// runtime shut down before `f` could start; `f`'s own errors.
    pub(crate) async fn run<T, E>(
        &self,
        f: impl FnOnce() -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<PasswordError> + Send + 'static,
    {
        let start = Instant::now();
        let permit = self.slot().await?;
        spawn(move || {
            let result = f();
            drop(permit);
            result
        })
        .await
        .unwrap_or_else(|_| {
            Err(PasswordError::Overloaded {
                waited: start.elapsed(),
            }
            .into())
        })
    }
}

/// Runs blocking shopsafe work (a store call, building a `PgStore`) on tokio's blocking
/// threads and waits for it without holding a runtime thread. A panic in `f` is resumed
/// in the caller, as a direct call would panic.
///
/// # Errors
/// `f`'s own errors; [`StoreError::Backend`] (as `E`) if the runtime shut down before `f`
/// could start.
///
/// # Examples
/// ```no_run
/// # #[cfg(feature = "postgres")]
/// # async fn connect() -> Result<(), shopsafe::persist::StoreError> {
/// use shopsafe::store::postgres::{PgOptions, PgStore};
///
/// let options = PgOptions::new("host=/run/postgresql dbname=shop")?;
/// let store = shopsafe::aio::blocking(move || PgStore::connect(options)).await?;
/// # Ok(()) }
/// ```
pub async fn blocking<T, E>(f: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, E>
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    join(tokio::task::spawn_blocking(f)).await
}

/// Waits for a blocking task: a panic is resumed here, a cancellation (only at runtime
/// shutdown) is a [`StoreError::Backend`].
pub(crate) async fn join<T, E: From<StoreError>>(
    task: tokio::task::JoinHandle<Result<T, E>>,
) -> Result<T, E> {
    resumed(task.await).unwrap_or_else(|e| {
        Err(StoreError::Backend {
            operation: "run a blocking task (the runtime is shutting down)",
            source: Box::new(e),
        }
        .into())
    })
}

/// `f` on a blocking thread; a panic is resumed here, and the error is the task's
/// cancellation (only at runtime shutdown: blocking tasks are never aborted here).
async fn spawn<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    resumed(tokio::task::spawn_blocking(f).await)
}

/// A joined task's value, with its panic (if it panicked) resumed in the caller.
fn resumed<T>(joined: Result<T, tokio::task::JoinError>) -> Result<T, tokio::task::JoinError> {
    match joined {
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        other => other,
    }
}
