//! Incidents: declare, list accounts, read back, membership.

use super::{
    AccountId, Incident, IncidentId, IncidentScope, IncidentStore, LIST_BATCH, PgStore, StoreError,
    Timestamp, be,
};
use crate::store::rows::{ensure_account_list, incident_from, scope_columns};

impl IncidentStore for PgStore {
    fn declare_incident(
        &self,
        scope: &IncidentScope,
        cutoff: Timestamp,
        declared_at: Timestamp,
        reason: &str,
    ) -> Result<Incident, StoreError> {
        let (kind, brand) = scope_columns(scope);
        self.pool.with(|c| {
            let id: i64 = c
                .query_one(
                    "INSERT INTO incidents (scope, brand, cutoff, declared_at, reason)
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                    &[
                        &kind,
                        &brand,
                        &cutoff.as_millis(),
                        &declared_at.as_millis(),
                        &reason,
                    ],
                )
                .map_err(be("declare incident"))?
                .get(0);
            Ok(Incident {
                id: IncidentId(id),
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
            let batch: Vec<String> = (&mut *accounts)
                .take(LIST_BATCH)
                .map(|a| a.as_str().to_owned())
                .collect();
            if batch.is_empty() {
                return Ok(added);
            }
            added += self.pool.with(|c| {
                c.execute(
                    "INSERT INTO incident_accounts (incident, account)
                     SELECT $1, a FROM unnest($2::text[]) AS a ON CONFLICT DO NOTHING",
                    &[&incident.0, &batch],
                )
                .map_err(be("list accounts"))
            })?;
        }
    }

    fn incidents(&self) -> Result<Vec<Incident>, StoreError> {
        self.pool.with(|c| {
            c.query(
                "SELECT id, scope, brand, cutoff, declared_at, reason FROM incidents ORDER BY id",
                &[],
            )
            .map_err(be("load incidents"))?
            .iter()
            .map(|r| incident_from(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
            .collect()
        })
    }

    fn is_listed(&self, incident: IncidentId, account: &AccountId) -> Result<bool, StoreError> {
        self.pool.with(|c| {
            c.query_opt(
                "SELECT 1 FROM incident_accounts WHERE incident = $1 AND account = $2",
                &[&incident.0, &account.as_str()],
            )
            .map(|r| r.is_some())
            .map_err(be("check incident list"))
        })
    }
}
