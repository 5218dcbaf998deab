//! Campaign lanes: split, count and claim affected accounts, checkpoints.

use super::{
    AccountId, CampaignId, CampaignState, CampaignStore, ClaimedAccount, GenericClient, Incident,
    IncidentId, IncidentScope, IncidentStore, LaneRow, PgStore, Row, StoreError, Timestamp,
    TokenRecord, UNBOUNDED, Undelivered, be, insert_tokens, lane_state, to_i64, to_u64,
};
use crate::store::rows::{LaneSplit, affected_row, open_lanes};

/// The affected-accounts query for an incident (`set_at <= cutoff` mirrors
/// [`Incident::compromises_set_at`]): `$1` = after, `$2` = cutoff, `$3` = brand or
/// incident id (as text), `$4` = until, then for the batch `$5` = limit (rows: account,
/// generation, brand).
fn affected_sql(scope: &IncidentScope, count: bool) -> &'static str {
    match (scope, count) {
        (IncidentScope::All, false) => {
            "SELECT c.account, c.generation,
               (SELECT b.brand FROM account_brands b WHERE b.account = c.account ORDER BY b.position LIMIT 1)
             FROM credentials c WHERE c.account > $1 AND c.account <= $4 AND c.set_at <= $2
               AND $3::text IS NOT NULL
             ORDER BY c.account LIMIT $5"
        }
        (IncidentScope::Brand(_), false) => {
            "SELECT c.account, c.generation, b.brand FROM account_brands b JOIN credentials c ON c.account = b.account
             WHERE b.brand = $3 AND b.account > $1 AND b.account <= $4 AND c.set_at <= $2
             ORDER BY b.account LIMIT $5"
        }
        (IncidentScope::Accounts, false) => {
            "SELECT c.account, c.generation,
               (SELECT b.brand FROM account_brands b WHERE b.account = c.account ORDER BY b.position LIMIT 1)
             FROM incident_accounts i JOIN credentials c ON c.account = i.account
             WHERE i.incident = $3::text::bigint AND i.account > $1 AND i.account <= $4 AND c.set_at <= $2
             ORDER BY i.account LIMIT $5"
        }
        (IncidentScope::All, true) => {
            "SELECT count(*) FROM credentials c
             WHERE c.account > $1 AND c.account <= $4 AND c.set_at <= $2 AND $3::text IS NOT NULL"
        }
        (IncidentScope::Brand(_), true) => {
            "SELECT count(*) FROM account_brands b JOIN credentials c ON c.account = b.account
             WHERE b.brand = $3 AND b.account > $1 AND b.account <= $4 AND c.set_at <= $2"
        }
        (IncidentScope::Accounts, true) => {
            "SELECT count(*) FROM incident_accounts i JOIN credentials c ON c.account = i.account
             WHERE i.incident = $3::text::bigint AND i.account > $1 AND i.account <= $4 AND c.set_at <= $2"
        }
    }
}

/// The first four parameters of [`affected_sql`].
struct Affected {
    after: String,
    cutoff: i64,
    scope: String,
    until: String,
}

impl Affected {
    fn new(incident: &Incident, after: Option<&AccountId>, until: Option<&AccountId>) -> Self {
        Self {
            after: after.map_or("", AccountId::as_str).to_owned(),
            cutoff: incident.cutoff.as_millis(),
            scope: match &incident.scope {
                IncidentScope::Brand(b) => b.as_str().to_owned(),
                IncidentScope::All | IncidentScope::Accounts => incident.id.0.to_string(),
            },
            until: until.map_or(UNBOUNDED, AccountId::as_str).to_owned(),
        }
    }

    fn count(&self, c: &mut impl GenericClient, scope: &IncidentScope) -> Result<u64, StoreError> {
        c.query_one(
            affected_sql(scope, true),
            &[&self.after, &self.cutoff, &self.scope, &self.until],
        )
        .map(|r| to_u64(r.get(0)))
        .map_err(be("count affected"))
    }

    fn rows(
        &self,
        c: &mut impl GenericClient,
        scope: &IncidentScope,
        limit: usize,
        offset: u64,
    ) -> Result<Vec<Row>, StoreError> {
        let sql = format!("{} OFFSET {offset}", affected_sql(scope, false));
        c.query(
            &sql,
            &[
                &self.after,
                &self.cutoff,
                &self.scope,
                &self.until,
                &to_i64(limit as u64),
            ],
        )
        .map_err(be("select affected accounts"))
    }
}

const SELECT_LANES: &str =
    "SELECT id, lane, lanes, range_after, range_until, sent_cursor, sent, finished_at
     FROM campaign_lanes WHERE incident = $1 ORDER BY lane";

fn lane_row(r: &Row) -> LaneRow {
    (
        r.get(0),
        r.get(1),
        r.get(2),
        r.get(3),
        r.get(4),
        r.get(5),
        r.get(6),
        r.get(7),
    )
}

/// Opening a campaign's lanes in one PostgreSQL transaction.
struct Opening<'a, 't> {
    tx: &'a mut postgres::Transaction<'t>,
    all: Affected,
    incident: &'a Incident,
    now: Timestamp,
}

impl LaneSplit for Opening<'_, '_> {
    fn lanes(&mut self) -> Result<Vec<LaneRow>, StoreError> {
        Ok(self
            .tx
            .query(SELECT_LANES, &[&self.incident.id.0])
            .map_err(be("load campaign lanes"))?
            .iter()
            .map(lane_row)
            .collect())
    }

    fn count_affected(&mut self) -> Result<u64, StoreError> {
        self.all.count(&mut *self.tx, &self.incident.scope)
    }

    fn affected_at(&mut self, offset: u64) -> Result<String, StoreError> {
        let row = self
            .all
            .rows(&mut *self.tx, &self.incident.scope, 1, offset)?;
        let first = row.first().ok_or(StoreError::Corrupt {
            what: "campaign split",
        })?;
        Ok(first.get::<_, String>(0))
    }

    fn insert_lane(
        &mut self,
        lane: i64,
        lanes: i64,
        after: Option<&str>,
        until: Option<&str>,
    ) -> Result<(), StoreError> {
        self.tx
            .execute(
                "INSERT INTO campaign_lanes (incident, lane, lanes, range_after, range_until, started_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&self.incident.id.0, &lane, &lanes, &after, &until, &self.now.as_millis()],
            )
            .map(drop)
            .map_err(be("open campaign"))
    }
}

impl CampaignStore for PgStore {
    fn open_lanes(
        &self,
        incident: &Incident,
        lanes: usize,
        now: Timestamp,
    ) -> Result<Vec<CampaignState>, StoreError> {
        if !self.incidents()?.iter().any(|i| i.id == incident.id) {
            return Err(StoreError::NoSuchIncident);
        }
        self.pool.with(|c| {
            let mut tx = c.transaction().map_err(be("begin opening campaign"))?;
            // Workers opening the campaign together: the first splits it, the others wait
            // and read its split.
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('shopsafe campaign', $1))",
                &[&incident.id.0],
            )
            .map_err(be("lock campaign"))?;
            let rows = open_lanes(
                &mut Opening {
                    tx: &mut tx,
                    all: Affected::new(incident, None, None),
                    incident,
                    now,
                },
                lanes,
            )?;
            tx.commit().map_err(be("commit campaign lanes"))?;
            rows.into_iter()
                .map(|row| lane_state(incident.id, row))
                .collect()
        })
    }

    fn lanes(&self, incident: IncidentId) -> Result<Vec<CampaignState>, StoreError> {
        self.pool.with(|c| {
            let rows = c
                .query(SELECT_LANES, &[&incident.0])
                .map_err(be("load campaign lanes"))?;
            rows.iter()
                .map(|r| lane_state(incident, lane_row(r)))
                .collect()
        })
    }

    fn count_affected(
        &self,
        incident: &Incident,
        after: Option<&AccountId>,
        until: Option<&AccountId>,
    ) -> Result<u64, StoreError> {
        let params = Affected::new(incident, after, until);
        self.pool.with(|c| params.count(c, &incident.scope))
    }

    fn claim_batch(
        &self,
        incident: &Incident,
        after: Option<&AccountId>,
        until: Option<&AccountId>,
        limit: usize,
        issue: &mut dyn FnMut(&AccountId, u64) -> Result<TokenRecord, StoreError>,
    ) -> Result<Vec<ClaimedAccount>, StoreError> {
        let params = Affected::new(incident, after, until);
        self.pool.with(|c| {
            let mut tx = c.transaction().map_err(be("begin claim"))?;
            let rows = params.rows(&mut tx, &incident.scope, limit, 0)?;
            let mut claimed = Vec::with_capacity(rows.len());
            let mut records = Vec::with_capacity(rows.len());
            for r in &rows {
                let (account, generation) = affected_row(r.get(0), r.get(1), r.get(2))?;
                records.push(issue(&account.account, generation)?);
                claimed.push(account);
            }
            insert_tokens(&mut tx, &records)?;
            tx.commit().map_err(be("commit claim"))?;
            Ok(claimed)
        })
    }

    fn checkpoint(
        &self,
        campaign: CampaignId,
        sent_cursor: &AccountId,
        sent: u64,
    ) -> Result<(), StoreError> {
        self.pool.with(|c| {
            c.execute(
                "UPDATE campaign_lanes SET sent_cursor = $2, sent = $3 WHERE id = $1",
                &[&campaign.0, &sent_cursor.as_str(), &to_i64(sent)],
            )
            .map(drop)
            .map_err(be("checkpoint campaign"))
        })
    }

    fn finish_campaign(&self, campaign: CampaignId, now: Timestamp) -> Result<(), StoreError> {
        self.pool.with(|c| {
            c.execute(
                "UPDATE campaign_lanes SET finished_at = $2 WHERE id = $1",
                &[&campaign.0, &now.as_millis()],
            )
            .map(drop)
            .map_err(be("finish campaign"))
        })
    }

    fn record_undeliverable(
        &self,
        campaign: CampaignId,
        entry: &Undelivered,
    ) -> Result<(), StoreError> {
        self.pool.with(|c| {
            c.execute(
                "INSERT INTO campaign_undeliverable (lane_id, account, reason, at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (lane_id, account) DO UPDATE SET reason = excluded.reason, at = excluded.at",
                &[
                    &campaign.0,
                    &entry.account.as_str(),
                    &entry.reason,
                    &entry.at.as_millis(),
                ],
            )
            .map(drop)
            .map_err(be("record undeliverable notice"))
        })
    }

    fn undeliverable(
        &self,
        campaign: CampaignId,
        after: Option<&AccountId>,
        limit: usize,
    ) -> Result<Vec<Undelivered>, StoreError> {
        let rows = self.pool.with(|c| {
            c.query(
                "SELECT account, reason, at FROM campaign_undeliverable
                 WHERE lane_id = $1 AND account > $2 ORDER BY account LIMIT $3",
                &[
                    &campaign.0,
                    &after.map_or("", AccountId::as_str),
                    &to_i64(limit as u64),
                ],
            )
            .map_err(be("list undeliverable notices"))
        })?;
        rows.iter()
            .map(|r| {
                Ok(Undelivered::new(
                    AccountId::new(r.get::<_, &str>(0))?,
                    r.get(1),
                    Timestamp::from_millis(r.get(2)),
                ))
            })
            .collect()
    }

    fn count_undeliverable(&self, campaign: CampaignId) -> Result<u64, StoreError> {
        self.pool.with(|c| {
            c.query_one(
                "SELECT count(*) FROM campaign_undeliverable WHERE lane_id = $1",
                &[&campaign.0],
            )
            .map(|r| to_u64(r.get(0)))
            .map_err(be("count undeliverable notices"))
        })
    }
}
