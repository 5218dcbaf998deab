//! Campaigns and retention runs as background tasks with progress.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::pool::join;
use crate::minimize::{
    Error as MinimizeError, Planned, RetentionStore, RunReport, TableSpec, apply_plan,
};
use crate::rotation::{
    BrandLinks, Campaign, CampaignOptions, CampaignReport, Delivery, Error, Notice, Notifier,
    NotifyError, Progress,
};
use crate::rotation::{CampaignStore, Incident};

/// How a background campaign run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CampaignEnd {
    /// The run went through (`finished` says whether every affected account is done).
    Completed(CampaignReport),
    /// [`CampaignTask::stop`] stopped it between two notices; progress is saved and the
    /// next run resumes at the first notice not sent.
    Stopped,
}

/// A campaign running on a blocking thread. Dropping the handle does not stop it: call
/// [`stop`](Self::stop).
#[derive(Debug)]
pub struct CampaignTask {
    progress: watch::Receiver<Option<Progress>>,
    stop: Arc<AtomicBool>,
    task: JoinHandle<Result<CampaignEnd, Error>>,
}

impl CampaignTask {
    /// The latest progress (after each batch), `None` before the first.
    #[must_use]
    pub fn progress(&self) -> Option<Progress> {
        *self.progress.borrow()
    }

    /// A receiver that wakes on each batch's progress.
    #[must_use]
    pub fn watch(&self) -> watch::Receiver<Option<Progress>> {
        self.progress.clone()
    }

    /// Asks the run to stop before its next notice (a graceful shutdown). The notice in
    /// the notifier's hands finishes first; nothing already sent is sent again.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Whether the run has ended.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits for the run to end.
    ///
    /// # Errors
    /// As [`Campaign::run`].
    pub async fn join(self) -> Result<CampaignEnd, Error> {
        join(self.task).await
    }
}

#[derive(Debug, thiserror::Error)]
#[error("campaign stopped on request")]
struct StopRequested;

/// Runs (or resumes) the campaign of `incident` on a blocking thread, sending through
/// `notifier`, with the options `options` builds (it runs on that thread, so the options
/// may hold closures that are not `Send`; a progress callback there is replaced by the
/// task's own).
///
/// # Examples
/// ```
/// # #[cfg(feature = "sqlite")]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use shopsafe::aio::{CampaignEnd, spawn_campaign};
/// use shopsafe::rotation::{BrandLinks, CampaignOptions, Notice, NotifyError, ResetUrlTemplate};
/// use shopsafe::kernel::Timestamp;
/// use shopsafe::rotation::{Incident, IncidentScope};
/// use shopsafe::store::sqlite::SqliteStore;
///
/// # let dir = tempfile::tempdir()?;
/// let store = Arc::new(SqliteStore::open(dir.path().join("customers.db"))?);
/// let links = Arc::new(BrandLinks::new()
///     .default_template(ResetUrlTemplate::new("https://shop.example/reset/{token}")?));
/// let incident = Incident::declare(&*store, IncidentScope::All, Timestamp::now(), "db copied")?;
/// let send = |_: &Notice| -> Result<(), NotifyError> { Ok(()) };
/// let task = spawn_campaign(store, links, incident, send, CampaignOptions::new);
/// assert!(matches!(task.join().await?, CampaignEnd::Completed(r) if r.finished));
/// # Ok(()) }
/// # #[cfg(not(feature = "sqlite"))] fn main() {}
/// ```
pub fn spawn_campaign<S, N>(
    store: Arc<S>,
    links: Arc<BrandLinks>,
    incident: Incident,
    notifier: N,
    options: impl FnOnce() -> CampaignOptions<'static> + Send + 'static,
) -> CampaignTask
where
    S: CampaignStore + 'static,
    N: Notifier + Send + 'static,
{
    let (tx, progress) = watch::channel(None);
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = Arc::clone(&stop);
    let task = tokio::task::spawn_blocking(move || {
        let stoppable = Stoppable {
            notifier,
            stop: stopping,
        };
        let options = options().progress(move |p| {
            let _ = tx.send(Some(*p));
        });
        match Campaign::new(&*store, &links).run(&incident, &stoppable, options) {
            Ok(report) => Ok(CampaignEnd::Completed(report)),
            Err(Error::Notify(e)) if e.0.is::<StopRequested>() => Ok(CampaignEnd::Stopped),
            Err(e) => Err(e),
        }
    });
    CampaignTask {
        progress,
        stop,
        task,
    }
}

/// The application's notifier, which refuses the next notice once a stop is asked for;
/// everything else (outcomes, deduplication) is the notifier's own.
struct Stoppable<N> {
    notifier: N,
    stop: Arc<AtomicBool>,
}

impl<N: Notifier> Stoppable<N> {
    fn go_on(&self) -> Result<(), NotifyError> {
        if self.stop.load(Ordering::SeqCst) {
            Err(NotifyError(Box::new(StopRequested)))
        } else {
            Ok(())
        }
    }
}

impl<N: Notifier> Notifier for Stoppable<N> {
    fn send(&self, notice: &Notice) -> Result<(), NotifyError> {
        self.go_on()?;
        self.notifier.send(notice)
    }

    fn deliver(&self, notice: &Notice) -> Result<Delivery, NotifyError> {
        self.go_on()?;
        self.notifier.deliver(notice)
    }

    fn deduplicates(&self) -> bool {
        self.notifier.deduplicates()
    }

    fn parallelism(&self) -> usize {
        self.notifier.parallelism()
    }

    fn deliver_all(&self, notices: &[Notice]) -> Vec<Result<Delivery, NotifyError>> {
        if let Err(stop) = self.go_on() {
            return vec![Err(stop)];
        }
        self.notifier.deliver_all(notices)
    }
}

/// A retention run on a blocking thread.
#[derive(Debug)]
pub struct RetentionTask {
    seen: Arc<AtomicU64>,
    task: JoinHandle<Result<RunReport, MinimizeError>>,
}

impl RetentionTask {
    /// Planned records taken from the plan so far (applied, or skipped as applied by an
    /// earlier attempt of the run).
    #[must_use]
    pub fn records_seen(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }

    /// Whether the run has ended.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits for the run to end.
    ///
    /// # Errors
    /// As [`apply_plan`].
    pub async fn join(self) -> Result<RunReport, MinimizeError> {
        join(self.task).await
    }
}

/// [`apply_plan`] on a blocking thread. A run stopped by a crash or a shutdown resumes
/// when started again with the same `run` name and plan.
pub fn spawn_retention<S, P>(
    store: Arc<S>,
    run: String,
    table: TableSpec,
    planned: P,
    batch: usize,
) -> RetentionTask
where
    S: RetentionStore + 'static,
    P: IntoIterator<Item = Planned> + Send + 'static,
{
    let seen = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&seen);
    let task = tokio::task::spawn_blocking(move || {
        let counted = planned.into_iter().inspect(|_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        apply_plan(&*store, &run, &table, counted, batch)
    });
    RetentionTask { seen, task }
}
