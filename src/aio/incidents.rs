//! Incidents and their campaigns, awaited.

use std::sync::Arc;

use super::pool::blocking;
use crate::kernel::Timestamp;
use crate::rotation::{CampaignStore, Error, Incident, IncidentId, IncidentScope, IncidentStore};

/// [`Incident`]'s calls for async handlers, over a shared store: declare, get by id, list,
/// and the incidents whose campaign has not finished (what to resume after a restart,
/// with [`spawn_campaign`](super::spawn_campaign): a campaign resumes at its cursor).
/// The arguments are the sync calls' own.
pub struct AsyncIncidents<S> {
    store: Arc<S>,
}

impl<S> Clone for AsyncIncidents<S> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
        }
    }
}

impl<S> core::fmt::Debug for AsyncIncidents<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AsyncIncidents").finish_non_exhaustive()
    }
}

impl<S: IncidentStore + CampaignStore + 'static> AsyncIncidents<S> {
    /// Over `store`.
    #[must_use]
    pub fn new(store: Arc<S>) -> Self {
        Self { store }
    }

    /// [`Incident::declare`], awaited.
    ///
    /// # Errors
    /// As [`Incident::declare`].
    pub async fn declare(
        &self,
        scope: IncidentScope,
        cutoff: Timestamp,
        reason: &str,
    ) -> Result<Incident, Error> {
        let (store, reason) = (Arc::clone(&self.store), reason.to_owned());
        blocking(move || Incident::declare(&*store, scope, cutoff, &reason)).await
    }

    /// [`Incident::get`], awaited.
    ///
    /// # Errors
    /// As [`Incident::get`].
    pub async fn get(&self, id: IncidentId) -> Result<Option<Incident>, Error> {
        let store = Arc::clone(&self.store);
        blocking(move || Incident::get(&*store, id)).await
    }

    /// [`Incident::list`], awaited.
    ///
    /// # Errors
    /// As [`Incident::list`].
    pub async fn list(&self) -> Result<Vec<Incident>, Error> {
        let store = Arc::clone(&self.store);
        blocking(move || Incident::list(&*store)).await
    }

    /// The incidents whose campaign was started and has a lane not finished: after a
    /// restart, [`spawn_campaign`](super::spawn_campaign) each to resume it where it
    /// stopped.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn unfinished_campaigns(&self) -> Result<Vec<Incident>, Error> {
        let store = Arc::clone(&self.store);
        blocking(move || {
            let mut open = Vec::new();
            for incident in Incident::list(&*store)? {
                let lanes = store.lanes(incident.id)?;
                if lanes.iter().any(|l| l.finished_at.is_none()) {
                    open.push(incident);
                }
            }
            Ok(open)
        })
        .await
    }
}
