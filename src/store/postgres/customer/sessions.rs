//! Sessions and remember-device tokens: by digest, live only while their credential is.

use std::sync::LazyLock;

use postgres::types::Type;
use postgres::{GenericClient, Row};

use super::{PgStore, StoreError, be};
use crate::kernel::{AccountId, Timestamp};
use crate::rotation::{
    DeviceRecord, DeviceUse, IncidentId, SessionId, SessionRecord, SessionStore,
};
use crate::store::rows::{
    INCIDENT_COMPROMISES, LIVE_CREDENTIAL, SESSION_COLUMNS, device_record, session_record,
};

static LIVE_SESSION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {SESSION_COLUMNS} FROM sessions s JOIN credentials c ON c.account = s.account
         WHERE s.digest = $1 AND {LIVE_CREDENTIAL}"
    )
});

fn session_row(row: &Row) -> Result<SessionRecord, StoreError> {
    session_record((
        row.get(0),
        row.get(1),
        row.get(2),
        row.get(3),
        row.get(4),
        row.get(5),
        row.get(6),
        row.get(7),
    ))
}

/// Stores a device token (a new one, or the successor a use hands out).
fn insert_device(
    c: &mut impl GenericClient,
    digest: &[u8; 32],
    r: &DeviceRecord,
) -> Result<(), StoreError> {
    let n = c
        .execute(
            "INSERT INTO device_tokens (digest, family, account, stamp, issued_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            &[
                &&digest[..],
                &&r.family.as_bytes()[..],
                &r.account.as_str(),
                &&r.stamp.as_bytes()[..],
                &r.issued_at.as_millis(),
                &r.expires_at.as_millis(),
            ],
        )
        .map_err(be("insert device token"))?;
    if n == 0 {
        return Err(StoreError::AlreadyExists);
    }
    Ok(())
}

impl SessionStore for PgStore {
    fn create_session(&self, digest: &[u8; 32], r: &SessionRecord) -> Result<(), StoreError> {
        self.pool.with(|c| {
            let n = c
                .execute(
                    "INSERT INTO sessions (digest, id, account, stamp, created_at, last_seen, expires_at, source, agent)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
                    &[
                        &&digest[..],
                        &&r.id.as_bytes()[..],
                        &r.account.as_str(),
                        &&r.stamp.as_bytes()[..],
                        &r.created_at.as_millis(),
                        &r.last_seen.as_millis(),
                        &r.expires_at.as_millis(),
                        &r.source,
                        &r.agent,
                    ],
                )
                .map_err(be("insert session"))?;
            if n == 0 {
                return Err(StoreError::AlreadyExists);
            }
            Ok(())
        })
    }

    fn live_session(&self, digest: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
        self.pool.with(|c| {
            // Typed: one round trip (parse, bind and execute together), where a query
            // with untyped parameters takes two; and no named statement, so it works
            // behind a pooler in transaction mode.
            c.query_typed_opt(&LIVE_SESSION, &[(&&digest[..], Type::BYTEA)])
                .map_err(be("find session"))?
                .map(|r| session_row(&r))
                .transpose()
        })
    }

    fn touch_session(&self, digest: &[u8; 32], now: Timestamp) -> Result<(), StoreError> {
        self.pool.with(|c| {
            c.execute(
                "UPDATE sessions SET last_seen = greatest(last_seen, $2) WHERE digest = $1",
                &[&&digest[..], &now.as_millis()],
            )
            .map_err(be("touch session"))?;
            Ok(())
        })
    }

    fn rotate_session(
        &self,
        old: &[u8; 32],
        new: &[u8; 32],
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.pool.with(|c| {
            let n = c
                .execute(
                    &format!(
                        "UPDATE sessions SET digest = $2, last_seen = $3 WHERE digest IN (
                             SELECT s.digest FROM sessions s JOIN credentials c ON c.account = s.account
                             WHERE s.digest = $1 AND {LIVE_CREDENTIAL})"
                    ),
                    &[&&old[..], &&new[..], &now.as_millis()],
                )
                .map_err(be("rotate session"))?;
            Ok(n == 1)
        })
    }

    fn sessions_of(&self, account: &AccountId) -> Result<Vec<SessionRecord>, StoreError> {
        self.pool.with(|c| {
            c.query(
                &format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions s JOIN credentials c ON c.account = s.account
                     WHERE s.account = $1 AND {LIVE_CREDENTIAL} ORDER BY s.created_at DESC, s.id"
                ),
                &[&account.as_str()],
            )
            .map_err(be("list sessions"))?
            .iter()
            .map(session_row)
            .collect()
        })
    }

    fn end_session(&self, account: &AccountId, id: &SessionId) -> Result<bool, StoreError> {
        self.pool.with(|c| {
            let n = c
                .execute(
                    "DELETE FROM sessions WHERE id = $1 AND account = $2",
                    &[&&id.as_bytes()[..], &account.as_str()],
                )
                .map_err(be("end session"))?;
            Ok(n == 1)
        })
    }

    fn end_sessions_of(&self, account: &AccountId) -> Result<u64, StoreError> {
        self.pool.with(|c| {
            let mut tx = c.transaction().map_err(be("begin end sessions"))?;
            let n = tx
                .execute(
                    "DELETE FROM sessions WHERE account = $1",
                    &[&account.as_str()],
                )
                .map_err(be("end sessions"))?;
            tx.execute(
                "DELETE FROM device_tokens WHERE account = $1",
                &[&account.as_str()],
            )
            .map_err(be("end device tokens"))?;
            tx.commit().map_err(be("commit end sessions"))?;
            Ok(n)
        })
    }

    fn end_incident_sessions(&self, incident: IncidentId) -> Result<u64, StoreError> {
        self.pool.with(|c| {
            let mut tx = c.transaction().map_err(be("begin end incident sessions"))?;
            let known = tx
                .query_opt("SELECT 1 FROM incidents WHERE id = $1", &[&incident.0])
                .map_err(be("find incident"))?;
            if known.is_none() {
                return Err(StoreError::NoSuchIncident);
            }
            let mut n = 0;
            for table in ["sessions", "device_tokens"] {
                let ended = tx
                    .execute(
                        &format!(
                            "DELETE FROM {table} WHERE EXISTS (
                                 SELECT 1 FROM credentials c, incidents i
                                 WHERE i.id = $1 AND c.account = {table}.account AND {INCIDENT_COMPROMISES})"
                        ),
                        &[&incident.0],
                    )
                    .map_err(be("end incident sessions"))?;
                if table == "sessions" {
                    n = ended;
                }
            }
            tx.commit().map_err(be("commit end incident sessions"))?;
            Ok(n)
        })
    }

    fn end_all_sessions(&self) -> Result<u64, StoreError> {
        self.pool.with(|c| {
            let mut tx = c.transaction().map_err(be("begin end all sessions"))?;
            let n = tx
                .execute("DELETE FROM sessions", &[])
                .map_err(be("end all sessions"))?;
            tx.execute("DELETE FROM device_tokens", &[])
                .map_err(be("end all device tokens"))?;
            tx.commit().map_err(be("commit end all sessions"))?;
            Ok(n)
        })
    }

    fn purge_sessions(&self, now: Timestamp, idle_before: Timestamp) -> Result<u64, StoreError> {
        self.pool.with(|c| {
            let mut tx = c.transaction().map_err(be("begin purge sessions"))?;
            let n = tx
                .execute(
                    "DELETE FROM sessions WHERE expires_at <= $1 OR last_seen <= $2",
                    &[&now.as_millis(), &idle_before.as_millis()],
                )
                .map_err(be("purge sessions"))?;
            tx.execute(
                "DELETE FROM device_tokens WHERE expires_at <= $1",
                &[&now.as_millis()],
            )
            .map_err(be("purge device tokens"))?;
            tx.commit().map_err(be("commit purge sessions"))?;
            Ok(n)
        })
    }

    fn issue_device(&self, digest: &[u8; 32], r: &DeviceRecord) -> Result<(), StoreError> {
        self.pool.with(|c| insert_device(c, digest, r))
    }

    fn use_device(
        &self,
        digest: &[u8; 32],
        next_digest: &[u8; 32],
        now: Timestamp,
        next_expires_at: Timestamp,
    ) -> Result<DeviceUse, StoreError> {
        self.pool.with(|c| {
            let mut tx = c.transaction().map_err(be("begin use device token"))?;
            // The row locked: a second use of the same token waits here, then reads it
            // used.
            let row = tx
                .query_opt(
                    &format!(
                        "SELECT s.family, s.account, s.stamp, s.issued_at, s.expires_at, s.used_at,
                             EXISTS (SELECT 1 FROM credentials c WHERE c.account = s.account AND {LIVE_CREDENTIAL})
                         FROM device_tokens s WHERE s.digest = $1 FOR UPDATE OF s"
                    ),
                    &[&&digest[..]],
                )
                .map_err(be("find device token"))?;
            let Some(row) = row else {
                return Ok(DeviceUse::Unknown);
            };
            let (used_at, live): (Option<i64>, bool) = (row.get(5), row.get(6));
            let record =
                device_record((row.get(0), row.get(1), row.get(2), row.get(3), row.get(4)))?;
            if used_at.is_some() {
                tx.execute(
                    "DELETE FROM device_tokens WHERE family = $1",
                    &[&&record.family.as_bytes()[..]],
                )
                .map_err(be("end device family"))?;
                tx.commit().map_err(be("commit device reuse"))?;
                return Ok(DeviceUse::Reused {
                    account: record.account,
                });
            }
            if !live || record.expires_at <= now {
                return Ok(DeviceUse::Unknown);
            }
            tx.execute(
                "UPDATE device_tokens SET used_at = $2 WHERE digest = $1",
                &[&&digest[..], &now.as_millis()],
            )
            .map_err(be("use device token"))?;
            let next = DeviceRecord::new(
                record.family.clone(),
                record.account.clone(),
                record.stamp.clone(),
                now,
                next_expires_at,
            );
            insert_device(&mut tx, next_digest, &next)?;
            tx.commit().map_err(be("commit device rotation"))?;
            Ok(DeviceUse::Rotated(next))
        })
    }
}
