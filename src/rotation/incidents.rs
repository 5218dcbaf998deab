//! The incident port: declared incidents, their explicit account lists, and declaring one.

use core::fmt;

use super::Error;
use crate::kernel::{AccountId, BrandId, Timestamp};
use crate::persist::StoreError;

/// A declared incident's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IncidentId(pub i64);

impl fmt::Display for IncidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "incident-{}", self.0)
    }
}

/// Which credentials an incident compromises (those set at or before its cutoff, in scope).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IncidentScope {
    /// Every account.
    All,
    /// Every account of one brand.
    Brand(BrandId),
    /// An explicit list of accounts, added to the store as a stream.
    Accounts,
}

/// A declared incident.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Incident {
    /// Its id.
    pub id: IncidentId,
    /// Its scope.
    pub scope: IncidentScope,
    /// Credentials set at or before this time (and in scope) are compromised.
    pub cutoff: Timestamp,
    /// When it was declared.
    pub declared_at: Timestamp,
    /// Operator's note (not shown to customers).
    pub reason: String,
}

impl Incident {
    /// Whether a credential set at `set_at` falls before this incident's cutoff. The
    /// cutoff itself counts as compromised: a password set in the very millisecond an
    /// incident is declared at "now" may predate the operator's knowledge of it, and an
    /// extra reset is the cheaper mistake. (Scope is checked separately.)
    #[must_use]
    pub fn compromises_set_at(&self, set_at: Timestamp) -> bool {
        set_at <= self.cutoff
    }
}

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
    /// use shopsafe::kernel::Timestamp;
    /// use shopsafe::rotation::{Incident, IncidentScope};
    /// use shopsafe::store::sqlite::SqliteStore;
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
        let incident = store.declare_incident(&scope, cutoff, Timestamp::now(), reason)?;
        incident.announce();
        Ok(incident)
    }

    /// The `shopsafe::incident` event.
    fn announce(&self) {
        let scope = match &self.scope {
            IncidentScope::All => "all",
            IncidentScope::Brand(_) => "brand",
            IncidentScope::Accounts => "accounts",
        };
        crate::events::incident_declared(&self.id, scope, self.cutoff.as_millis());
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
        incident.announce();
        Ok((incident, listed))
    }

    /// The incident `id`, if it was declared.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub fn get(store: &dyn IncidentStore, id: IncidentId) -> Result<Option<Self>, Error> {
        Ok(store.incidents()?.into_iter().find(|i| i.id == id))
    }

    /// Every incident declared, oldest first.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub fn list(store: &dyn IncidentStore) -> Result<Vec<Self>, Error> {
        let mut all = store.incidents()?;
        all.sort_by_key(|i| i.id.0);
        Ok(all)
    }
}

/// Incidents.
pub trait IncidentStore: Send + Sync {
    /// Records an incident. O(1): nothing else is written.
    ///
    /// # Errors
    /// A backend failure.
    fn declare_incident(
        &self,
        scope: &IncidentScope,
        cutoff: Timestamp,
        declared_at: Timestamp,
        reason: &str,
    ) -> Result<Incident, StoreError>;

    /// Adds accounts to an [`IncidentScope::Accounts`] incident, streaming, in batches;
    /// returns how many were added (repeats count once).
    ///
    /// # Errors
    /// [`StoreError::NoSuchIncident`], or a backend failure.
    fn add_incident_accounts(
        &self,
        incident: IncidentId,
        accounts: &mut dyn Iterator<Item = AccountId>,
    ) -> Result<u64, StoreError>;

    /// Every incident, oldest first (a short list: one row per incident).
    ///
    /// # Errors
    /// A backend failure or a corrupt row.
    fn incidents(&self) -> Result<Vec<Incident>, StoreError>;

    /// Whether `account` is on the list of an [`IncidentScope::Accounts`] incident.
    ///
    /// # Errors
    /// A backend failure.
    fn is_listed(&self, incident: IncidentId, account: &AccountId) -> Result<bool, StoreError>;
}
