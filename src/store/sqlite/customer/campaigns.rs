//! Campaign lanes: split, count and claim affected accounts, checkpoints.

use super::{
    AccountId, CampaignId, CampaignState, CampaignStore, ClaimedAccount, Connection, Incident,
    IncidentId, IncidentScope, IncidentStore, LaneRow, SqliteStore, StoreError, Timestamp,
    TokenRecord, UNBOUNDED, Undelivered, be, begin, insert_token, lane_state, params, to_i64,
    to_u64,
};
use crate::store::rows::{LaneSplit, affected_row, open_lanes};

/// The affected-accounts query for an incident (`set_at <= cutoff` mirrors
/// [`Incident::compromises_set_at`]). Parameters, the same for every variant: `?1` after,
/// `?2` cutoff, `?3` limit, `?4` brand or incident id, `?5` until (rows: account,
/// generation, brand).
fn affected_sql(scope: &IncidentScope, count: bool) -> &'static str {
    match (scope, count) {
        (IncidentScope::All, false) => {
            "SELECT c.account, c.generation,
               (SELECT b.brand FROM account_brands b WHERE b.account = c.account ORDER BY b.position LIMIT 1)
             FROM credentials c WHERE c.account > ?1 AND c.account <= ?5 AND c.set_at <= ?2
             ORDER BY c.account LIMIT ?3"
        }
        (IncidentScope::Brand(_), false) => {
            "SELECT c.account, c.generation, b.brand FROM account_brands b JOIN credentials c ON c.account = b.account
             WHERE b.brand = ?4 AND b.account > ?1 AND b.account <= ?5 AND c.set_at <= ?2
             ORDER BY b.account LIMIT ?3"
        }
        (IncidentScope::Accounts, false) => {
            "SELECT c.account, c.generation,
               (SELECT b.brand FROM account_brands b WHERE b.account = c.account ORDER BY b.position LIMIT 1)
             FROM incident_accounts i JOIN credentials c ON c.account = i.account
             WHERE i.incident = ?4 AND i.account > ?1 AND i.account <= ?5 AND c.set_at <= ?2
             ORDER BY i.account LIMIT ?3"
        }
        (IncidentScope::All, true) => {
            "SELECT count(*) FROM credentials c
             WHERE c.account > ?1 AND c.account <= ?5 AND c.set_at <= ?2"
        }
        (IncidentScope::Brand(_), true) => {
            "SELECT count(*) FROM account_brands b JOIN credentials c ON c.account = b.account
             WHERE b.brand = ?4 AND b.account > ?1 AND b.account <= ?5 AND c.set_at <= ?2"
        }
        (IncidentScope::Accounts, true) => {
            "SELECT count(*) FROM incident_accounts i JOIN credentials c ON c.account = i.account
             WHERE i.incident = ?4 AND i.account > ?1 AND i.account <= ?5 AND c.set_at <= ?2"
        }
    }
}

/// The five parameters of [`affected_sql`].
fn affected_params(
    incident: &Incident,
    after: Option<&AccountId>,
    until: Option<&AccountId>,
    limit: Option<usize>,
) -> [rusqlite::types::Value; 5] {
    use rusqlite::types::Value;
    let scope = match &incident.scope {
        IncidentScope::Brand(b) => Value::Text(b.as_str().to_owned()),
        IncidentScope::All | IncidentScope::Accounts => Value::Integer(incident.id.0),
    };
    [
        Value::Text(after.map_or("", AccountId::as_str).to_owned()),
        Value::Integer(incident.cutoff.as_millis()),
        limit.map_or(Value::Null, |n| Value::Integer(to_i64(n as u64))),
        scope,
        Value::Text(until.map_or(UNBOUNDED, AccountId::as_str).to_owned()),
    ]
}

fn lane_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LaneRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

const SELECT_LANES: &str =
    "SELECT id, lane, lanes, range_after, range_until, sent_cursor, sent, finished_at
     FROM campaign_lanes WHERE incident = ?1 ORDER BY lane";

/// Opening a campaign's lanes in one SQLite transaction.
struct Opening<'a> {
    tx: &'a Connection,
    incident: &'a Incident,
    now: Timestamp,
}

impl LaneSplit for Opening<'_> {
    fn lanes(&mut self) -> Result<Vec<LaneRow>, StoreError> {
        self.tx
            .prepare_cached(SELECT_LANES)
            .and_then(|mut s| {
                s.query_map([self.incident.id.0], lane_from_row)?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(be("load campaign lanes"))
    }

    fn count_affected(&mut self) -> Result<u64, StoreError> {
        self.tx
            .prepare_cached(affected_sql(&self.incident.scope, true))
            .and_then(|mut s| {
                s.query_row(
                    rusqlite::params_from_iter(affected_params(self.incident, None, None, None)),
                    |r| r.get::<_, i64>(0),
                )
            })
            .map(to_u64)
            .map_err(be("count affected"))
    }

    fn affected_at(&mut self, offset: u64) -> Result<String, StoreError> {
        let sql = format!(
            "{} OFFSET {offset}",
            affected_sql(&self.incident.scope, false)
        );
        self.tx
            .query_row(
                &sql,
                rusqlite::params_from_iter(affected_params(self.incident, None, None, Some(1))),
                |r| r.get(0),
            )
            .map_err(be("split campaign"))
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
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![self.incident.id.0, lane, lanes, after, until, self.now.as_millis()],
            )
            .map(drop)
            .map_err(be("open campaign"))
    }
}

impl CampaignStore for SqliteStore {
    fn open_lanes(
        &self,
        incident: &Incident,
        lanes: usize,
        now: Timestamp,
    ) -> Result<Vec<CampaignState>, StoreError> {
        if !self.incidents()?.iter().any(|i| i.id == incident.id) {
            return Err(StoreError::NoSuchIncident);
        }
        self.with(|c| {
            // IMMEDIATE: the first worker splits the campaign, the others wait and read it.
            let tx = begin(c, "begin opening campaign")?;
            let rows = open_lanes(
                &mut Opening {
                    tx: &tx,
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
        self.with(|c| {
            let rows = c
                .prepare_cached(SELECT_LANES)
                .and_then(|mut s| {
                    s.query_map([incident.0], lane_from_row)?
                        .collect::<Result<Vec<_>, _>>()
                })
                .map_err(be("load campaign lanes"))?;
            rows.into_iter()
                .map(|row| lane_state(incident, row))
                .collect()
        })
    }

    fn count_affected(
        &self,
        incident: &Incident,
        after: Option<&AccountId>,
        until: Option<&AccountId>,
    ) -> Result<u64, StoreError> {
        self.with(|c| {
            let n: i64 = c
                .prepare_cached(affected_sql(&incident.scope, true))
                .and_then(|mut s| {
                    s.query_row(
                        rusqlite::params_from_iter(affected_params(incident, after, until, None)),
                        |r| r.get(0),
                    )
                })
                .map_err(be("count affected"))?;
            Ok(to_u64(n))
        })
    }

    fn claim_batch(
        &self,
        incident: &Incident,
        after: Option<&AccountId>,
        until: Option<&AccountId>,
        limit: usize,
        issue: &mut dyn FnMut(&AccountId, u64) -> Result<TokenRecord, StoreError>,
    ) -> Result<Vec<ClaimedAccount>, StoreError> {
        self.with(|c| {
            let tx = begin(c, "begin claim")?;
            let rows: Vec<(String, i64, Option<String>)> = tx
                .prepare_cached(affected_sql(&incident.scope, false))
                .and_then(|mut stmt| {
                    stmt.query_map(
                        rusqlite::params_from_iter(affected_params(
                            incident,
                            after,
                            until,
                            Some(limit),
                        )),
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )?
                    .collect()
                })
                .map_err(be("select batch"))?;
            let mut claimed = Vec::with_capacity(rows.len());
            for (account, generation, brand) in rows {
                let (account, generation) = affected_row(account, generation, brand)?;
                insert_token(&tx, &issue(&account.account, generation)?)?;
                claimed.push(account);
            }
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
        self.with(|c| {
            c.prepare_cached("UPDATE campaign_lanes SET sent_cursor = ?2, sent = ?3 WHERE id = ?1")
                .and_then(|mut s| {
                    s.execute(params![campaign.0, sent_cursor.as_str(), to_i64(sent)])
                })
                .map(drop)
                .map_err(be("checkpoint campaign"))
        })
    }

    fn finish_campaign(&self, campaign: CampaignId, now: Timestamp) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE campaign_lanes SET finished_at = ?2 WHERE id = ?1",
                params![campaign.0, now.as_millis()],
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
        self.with(|c| {
            c.prepare_cached(
                "INSERT INTO campaign_undeliverable (lane_id, account, reason, at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (lane_id, account) DO UPDATE SET reason = excluded.reason, at = excluded.at",
            )
            .and_then(|mut s| {
                s.execute(params![
                    campaign.0,
                    entry.account.as_str(),
                    entry.reason,
                    entry.at.as_millis()
                ])
            })
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
        let rows: Vec<(String, String, i64)> = self.with(|c| {
            c.prepare_cached(
                "SELECT account, reason, at FROM campaign_undeliverable
                 WHERE lane_id = ?1 AND account > ?2 ORDER BY account LIMIT ?3",
            )
            .and_then(|mut s| {
                s.query_map(
                    params![
                        campaign.0,
                        after.map_or("", AccountId::as_str),
                        to_i64(limit as u64)
                    ],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .and_then(Iterator::collect)
            })
            .map_err(be("list undeliverable notices"))
        })?;
        rows.into_iter()
            .map(|(account, reason, at)| {
                Ok(Undelivered::new(
                    AccountId::new(&account)?,
                    reason,
                    Timestamp::from_millis(at),
                ))
            })
            .collect()
    }

    fn count_undeliverable(&self, campaign: CampaignId) -> Result<u64, StoreError> {
        self.with(|c| {
            c.prepare_cached("SELECT count(*) FROM campaign_undeliverable WHERE lane_id = ?1")
                .and_then(|mut s| s.query_row([campaign.0], |r| r.get::<_, i64>(0)))
                .map(to_u64)
                .map_err(be("count undeliverable notices"))
        })
    }
}
