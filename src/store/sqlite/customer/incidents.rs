//! Incidents: declare, list accounts, read back, membership.

use super::{
    AccountId, Incident, IncidentId, IncidentScope, IncidentStore, LIST_BATCH, SqliteStore,
    StoreError, Timestamp, be, begin, params,
};
use crate::store::rows::{ensure_account_list, incident_from, scope_columns};

impl IncidentStore for SqliteStore {
    fn declare_incident(
        &self,
        scope: &IncidentScope,
        cutoff: Timestamp,
        declared_at: Timestamp,
        reason: &str,
    ) -> Result<Incident, StoreError> {
        let (kind, brand) = scope_columns(scope);
        self.with(|c| {
            c.execute(
                "INSERT INTO incidents (scope, brand, cutoff, declared_at, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![kind, brand, cutoff.as_millis(), declared_at.as_millis(), reason],
            )
            .map_err(be("declare incident"))?;
            Ok(Incident {
                id: IncidentId(c.last_insert_rowid()),
                scope: scope.clone(),
                cutoff,
                declared_at,
                reason: reason.to_owned(),
            })
        })
    }

    fn add_incident_accounts(
        &self,
        incident: IncidentId,
        accounts: &mut dyn Iterator<Item = AccountId>,
    ) -> Result<u64, StoreError> {
        ensure_account_list(&self.incidents()?, incident)?;
        let mut added = 0u64;
        loop {
            let batch: Vec<AccountId> = (&mut *accounts).take(LIST_BATCH).collect();
            if batch.is_empty() {
                return Ok(added);
            }
            added += self.with(|c| {
                let tx = begin(c, "begin")?;
                let mut n = 0u64;
                {
                    let mut stmt = tx
                        .prepare_cached("INSERT OR IGNORE INTO incident_accounts (incident, account) VALUES (?1, ?2)")
                        .map_err(be("list account"))?;
                    for a in &batch {
                        n += stmt.execute(params![incident.0, a.as_str()]).map_err(be("list account"))? as u64;
                    }
                }
                tx.commit().map_err(be("commit account list"))?;
                Ok(n)
            })?;
        }
    }

    fn incidents(&self) -> Result<Vec<Incident>, StoreError> {
        self.with(|c| {
            let mut stmt = c
                .prepare_cached("SELECT id, scope, brand, cutoff, declared_at, reason FROM incidents ORDER BY id")
                .map_err(be("load incidents"))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
                })
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(be("load incidents"))?;
            rows.into_iter()
                .map(|(id, scope, brand, cutoff, declared_at, reason)| {
                    incident_from(id, &scope, brand, cutoff, declared_at, reason)
                })
                .collect()
        })
    }

    fn is_listed(&self, incident: IncidentId, account: &AccountId) -> Result<bool, StoreError> {
        self.with(|c| {
            c.prepare_cached("SELECT 1 FROM incident_accounts WHERE incident = ?1 AND account = ?2")
                .and_then(|mut s| s.exists(params![incident.0, account.as_str()]))
                .map_err(be("check incident list"))
        })
    }
}
