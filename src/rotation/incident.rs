//! Declaring incidents.

use super::Error;
use crate::kernel::{AccountId, Timestamp};
use crate::store::{Incident, IncidentScope, IncidentStore};

impl Incident {
    /// Declares that every credential in `scope` set at or before `cutoff` is compromised.
    ///
    /// O(1) for [`IncidentScope::All`] and [`IncidentScope::Brand`]: one row is written and
    /// nothing is rewritten; from the next login on, affected credentials get
    /// `ResetRequired`. Use [`Incident::declare_accounts`] for an explicit list.
    ///
    /// # Errors
    /// [`Error::Store`]; [`Error::ScopeNeedsList`] for [`IncidentScope::Accounts`].
    ///
    /// # Examples
    /// ```
    /// # #[cfg(feature = "sqlite")] {
    /// use shopsafe::store::{sqlite::SqliteStore, Incident, IncidentScope, Timestamp};
    ///
    /// # let dir = tempfile::tempdir()?;
    /// let store = SqliteStore::open(dir.path().join("customers.db"))?;
    /// let incident = Incident::declare(&store, IncidentScope::All, Timestamp::now(), "db copied via web-7")?;
    /// assert_eq!(incident.scope, IncidentScope::All);
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn declare(
        store: &dyn IncidentStore,
        scope: IncidentScope,
        cutoff: Timestamp,
        reason: &str,
    ) -> Result<Self, Error> {
        if scope == IncidentScope::Accounts {
            return Err(Error::ScopeNeedsList);
        }
        Ok(store.declare_incident(&scope, cutoff, Timestamp::now(), reason)?)
    }

    /// Declares an incident for an explicit list of accounts, streamed into the store in
    /// batches (never held in memory whole). Returns the incident and how many accounts
    /// were listed.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub fn declare_accounts(
        store: &dyn IncidentStore,
        accounts: impl IntoIterator<Item = AccountId>,
        cutoff: Timestamp,
        reason: &str,
    ) -> Result<(Self, u64), Error> {
        let incident =
            store.declare_incident(&IncidentScope::Accounts, cutoff, Timestamp::now(), reason)?;
        let listed = store.add_incident_accounts(incident.id, &mut accounts.into_iter())?;
        Ok((incident, listed))
    }
}
